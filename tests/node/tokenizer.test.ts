import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BOS_ID, EOS_ID, Tokenizer } from '../../src/core/tokenizers/llama2c';
import { RemaxInputError } from '../../src/core/errors';
import { sharedPath, skipUnlessShared } from './shared-data';
import { buildTokenizerBin, syntheticTokenizer } from './fixtures';

const TOKENIZER_PATH = sharedPath('models/aidreams260K.tok512.bin');
const GREEDY_PATH = sharedPath('reference/greedy.json');
const skip = skipUnlessShared('models/aidreams260K.tok512.bin', 'reference/greedy.json');

interface GreedyCase {
  prompt_text: string;
  prompt_ids: number[];
  expected_ids: number[];
  expected_text: string;
}

const loadTokenizerBytes = (): Uint8Array => new Uint8Array(readFileSync(TOKENIZER_PATH));
const loadTokenizer = (): Tokenizer => Tokenizer.fromBytes(loadTokenizerBytes(), 'aidreams260K.tok512.bin');
const loadCases = (): GreedyCase[] =>
  JSON.parse(readFileSync(GREEDY_PATH, 'utf8')).models['aidreams260K.bin'].cases as GreedyCase[];


test('loads the aidreams260K tokenizer', { skip }, () => {
  const tok = loadTokenizer();
  assert.equal(tok.vocabSize, 512);
  assert.equal(tok.maxTokenLength, 10);
  assert.equal(tok.piece(BOS_ID), '\n<s>\n');
  assert.equal(tok.piece(EOS_ID), '\n</s>\n');
  assert.equal(tok.piece(262), ' a');
  assert.equal(tok.score(262), -3);
  tok.assertFitsModel(512, 'aidreams260K.bin'); // does not throw
});

test('encode matches the reference prompt ids (greedy.json, aidreams260K)', { skip }, () => {
  const tok = loadTokenizer();
  const cases = loadCases();
  assert.equal(cases.length, 3);
  for (const c of cases) assert.deepEqual(tok.encode(c.prompt_text), c.prompt_ids, `prompt ${JSON.stringify(c.prompt_text)}`);
  assert.deepEqual(tok.encode(''), [BOS_ID]);
});

test('decode of the generated ids matches expected_text (greedy.json, aidreams260K)', { skip }, () => {
  const tok = loadTokenizer();
  for (const c of loadCases()) {
    // The reference text decodes expected_ids alone; after an empty prompt the first generated token follows BOS.
    const afterBos = c.prompt_text === '';
    assert.equal(tok.decode(c.expected_ids, { afterBos }), c.expected_text, `prompt ${JSON.stringify(c.prompt_text)}`);
    // Same result when the BOS is in the list (it is skipped, and the next piece loses its leading space).
    if (afterBos) assert.equal(tok.decode([BOS_ID, ...c.expected_ids]), c.expected_text);
  }
});

test('decode of prompt ids gives back the prompt text', { skip }, () => {
  const tok = loadTokenizer();
  for (const c of loadCases()) assert.equal(tok.decode(c.prompt_ids), c.prompt_text);
});

test('round trip through byte fallback and multi-byte pieces', { skip }, () => {
  const tok = loadTokenizer();
  const text = 'héllo 🦀 wörld – σ°';
  const ids = tok.encode(text);
  assert.equal(ids[0], BOS_ID);
  // 'é' (2 bytes) and the crab (4 bytes) are not pieces: they fall back to byte ids (byte + 3).
  for (const b of new TextEncoder().encode('🦀')) assert.ok(ids.includes(b + 3), `byte 0x${b.toString(16)} fallback`);
  // 'ö' is a piece of its own (id 508), so it is looked up whole.
  assert.ok(ids.includes(508));
  assert.equal(tok.decode(ids), text);
  // Without BOS, the dummy-prefix space stays in the decoded text.
  assert.equal(tok.decode(tok.encode(text, { bos: false })), ' ' + text);
  // Pieces of a split character decode correctly only as a whole list; alone they are replacement characters.
  const crab = tok.encode('🦀', { bos: false }).slice(1);
  assert.equal(crab.length, 4);
  assert.equal(tok.decode(crab), '🦀');
  assert.equal(tok.decode(crab.slice(0, 1)), '\uFFFD');
});

test('encode options and special ids', { skip }, () => {
  const tok = loadTokenizer();
  const ids = tok.encode('She was happy', { bos: false, eos: true });
  assert.deepEqual(ids, [412, 439, 430, 272, 340, 309, 311, 445, 451, EOS_ID]);
  assert.equal(tok.decode([BOS_ID, ...ids.slice(0, -1), EOS_ID]), 'She was happy');
  assert.deepEqual(tok.encode('', { bos: false, eos: true }), [EOS_ID]);
});

test('merges pick the highest-scoring pair first (synthetic vocabulary)', () => {
  // "abc": candidates "ab" (-5) and "bc" (-1): "bc" wins, then "abc" is not a piece, so tokens are a, bc.
  const tok = syntheticTokenizer([
    [' ', -10], ['a', -10], ['b', -10], ['c', -10], ['ab', -5], ['bc', -1], [' a', -20],
  ]);
  const id = (p: string): number => [...Array(tok.vocabSize).keys()].find((i) => tok.piece(i) === p)!;
  assert.deepEqual(tok.encode('abc'), [BOS_ID, id(' a'), id('bc')]);
  assert.deepEqual(tok.encode('abc', { bos: false }), [id(' a'), id('bc')]);
  // Unknown characters fall back to byte ids.
  assert.deepEqual(tok.encode('z', { bos: false }), [id(' '), 'z'.charCodeAt(0) + 3]);
  assert.equal(tok.decode(tok.encode('abcz')), 'abcz');
});

test('bad tokenizer bytes throw RemaxInputError naming the source', { skip }, () => {
  const bytes = loadTokenizerBytes();
  const expectError = (fn: () => unknown, ...fragments: string[]): void =>
    assert.throws(fn, (e: unknown) => {
      assert.ok(e instanceof RemaxInputError, `expected RemaxInputError, got ${String(e)}`);
      for (const f of fragments) assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
      return true;
    });
  // Records of tokens 2..6 end at bytes 44, 58, 72, 86, 100: 99 bytes ends inside token 6.
  expectError(() => Tokenizer.fromBytes(bytes.subarray(0, 99), 'cut.bin'), 'cut.bin', 'token 6 at byte 86', 'truncated');
  // 100 bytes ends exactly after token 6 (7 tokens): the format can't tell, but the vocabulary check against the model does.
  const cut = Tokenizer.fromBytes(bytes.subarray(0, 100), 'cut.bin');
  assert.equal(cut.vocabSize, 7);
  expectError(() => cut.assertFitsModel(512, 'aidreams260K.bin'), 'cut.bin', '7', '512');
  expectError(() => Tokenizer.fromBytes(new Uint8Array(0), 'empty.bin'), 'empty.bin', 'empty');
  expectError(() => loadTokenizer().assertFitsModel(32000, 'llama2-7b.bin'), 'aidreams260K.tok512.bin', '512', '32000', 'llama2-7b.bin');
});

test('corrupt records throw RemaxInputError with the token index and byte offset', () => {
  const base = [{ piece: 'a', score: 0 }, { piece: 'b', score: 0 }];
  const negative = buildTokenizerBin([...base, { piece: 'c', score: 0, length: -5 }]);
  assert.throws(() => Tokenizer.fromBytes(negative, 'neg.bin'), (e: unknown) =>
    e instanceof RemaxInputError && /neg\.bin: token 2 at byte 22 has a negative length -5/.test(e.message));
  const oversized = buildTokenizerBin([...base, { piece: 'abcdef', score: 0 }], 4);
  assert.throws(() => Tokenizer.fromBytes(oversized, 'big.bin'), (e: unknown) =>
    e instanceof RemaxInputError && /big\.bin: token 2 .*more than max_token_length 4/.test(e.message));
  const nan = buildTokenizerBin([...base, { piece: 'c', score: NaN }]);
  assert.throws(() => Tokenizer.fromBytes(nan, 'nan.bin'), (e: unknown) => e instanceof RemaxInputError && /nan\.bin/.test(e.message));
  const badHeader = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
  assert.throws(() => Tokenizer.fromBytes(badHeader, 'hdr.bin'), (e: unknown) =>
    e instanceof RemaxInputError && /hdr\.bin: max_token_length at byte 0 is -1/.test(e.message));
  const headerOnly = buildTokenizerBin([]);
  assert.throws(() => Tokenizer.fromBytes(headerOnly, 'none.bin'), (e: unknown) =>
    e instanceof RemaxInputError && /none\.bin holds no tokens/.test(e.message));
  // Out-of-range ids name the position in the list.
  const tok = Tokenizer.fromBytes(buildTokenizerBin(base), 'ok.bin');
  assert.throws(() => tok.decode([0, 7]), (e: unknown) => e instanceof RemaxInputError && /ids\[1\] = 7 .*ok\.bin/.test(e.message));
  assert.throws(() => tok.piece(-1), RemaxInputError);
});
