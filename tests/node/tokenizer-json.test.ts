// SentencePiece vocabularies (llama2.c tokenizer.bin, GGUF `llama`) written as Hugging Face tokenizer.json files
// (tokenizer-json.ts) and read back with @huggingface/tokenizers (hf-tokenizer.ts): llama.cpp's Llama-2 vectors,
// seeded random texts against the original tokenizers, the files' fields, the merge order, and refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { RemaxInputError } from '../../src/core/errors';
import { parseGguf } from '../../src/core/formats/gguf';
import { tokenizerFromGguf } from '../../src/core/tokenizers/gguf-vocab';
import { type HfTokenizer, tokenizerFromHfFiles } from '../../src/core/tokenizers/hf-tokenizer';
import { Tokenizer } from '../../src/core/tokenizers/llama2c';
import { SentencePieceTokenizer, TOKEN_TYPE } from '../../src/core/tokenizers/sentencepiece';
import { sentencePieceTokenizerFiles } from '../../src/core/tokenizers/tokenizer-json';
import type { TextTokenizer } from '../../src/core/tokenizers/types';
import { buildTokenizerBin, syntheticTokenizer } from './fixtures';
import { readShared, skipUnlessShared } from './shared-data';

const SPM_INP = 'tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf.inp';
const SPM_OUT = 'tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf.out';
const LLAMA2_BIN = 'tokenizers/llama2/tokenizer.bin';
const LLAMA2_GGUF = 'models/gguf/llama-2-tiny-random.gguf';
const QWEN = 'models/hf/qwen2-tiny';
const DEFAULT_TASK_TOKENIZER = path.resolve(process.cwd(), 'assets/default-task/tokenizer.bin');

const skipBin = skipUnlessShared(SPM_INP, SPM_OUT, LLAMA2_BIN);
const skipGguf = skipUnlessShared(SPM_INP, SPM_OUT, LLAMA2_GGUF);
const skipQwen = skipUnlessShared(`${QWEN}/tokenizer.json`, `${QWEN}/tokenizer_config.json`);

const utf8 = new TextDecoder();

function throwsInput(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RemaxInputError, `expected a RemaxInputError, got ${String(e)}`);
    for (const f of fragments) assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
    return true;
  });
}

/** llama.cpp's test vectors: 46 cases, ids without BOS. */
function spmVectors(): { text: string; ids: number[] }[] {
  const texts = utf8.decode(readShared(SPM_INP)).split('\n__ggml_vocab_test__\n');
  assert.equal(texts.pop(), '', 'the .inp file ends with the separator');
  const lines = utf8.decode(readShared(SPM_OUT)).split('\n');
  assert.equal(lines.pop(), '', 'the .out file ends with a newline');
  assert.equal(texts.length, 46);
  assert.equal(lines.length, 46);
  return texts.map((text, i) => ({ text, ids: lines[i]!.trim() === '' ? [] : lines[i]!.trim().split(' ').map(Number) }));
}

// The originals and their written-and-reloaded tokenizer.json, built once.
const cache = new Map<string, { original: TextTokenizer; files: Record<string, Uint8Array>; hf: HfTokenizer }>();
function pair(name: 'bin' | 'gguf' | 'default'): { original: TextTokenizer; files: Record<string, Uint8Array>; hf: HfTokenizer } {
  let entry = cache.get(name);
  if (entry === undefined) {
    const original =
      name === 'bin'
        ? Tokenizer.fromBytes(readShared(LLAMA2_BIN), LLAMA2_BIN)
        : name === 'gguf'
          ? tokenizerFromGguf(parseGguf(readShared(LLAMA2_GGUF), LLAMA2_GGUF).metadata, LLAMA2_GGUF)
          : Tokenizer.fromBytes(new Uint8Array(readFileSync(DEFAULT_TASK_TOKENIZER)), DEFAULT_TASK_TOKENIZER);
    const files = sentencePieceTokenizerFiles(original);
    const hf = tokenizerFromHfFiles(files['tokenizer.json']!, files['tokenizer_config.json']!, { source: `${name}/tokenizer.json` });
    entry = { original, files, hf };
    cache.set(name, entry);
  }
  return entry;
}

const json = (bytes: Uint8Array | undefined): any => JSON.parse(utf8.decode(bytes));

// ---------------------------------------------------------------------------------------------------------------------
// llama.cpp's vectors

function checkVectors(original: TextTokenizer, hf: HfTokenizer): void {
  for (const [i, { text, ids }] of spmVectors().entries()) {
    const what = `case ${i} ${JSON.stringify(text.slice(0, 40))}`;
    assert.deepEqual(hf.encode(text, { specialTokens: false }), ids, what);
    const withBos = hf.encode(text);
    assert.equal(withBos[0], 1, `${what}: BOS first`);
    assert.deepEqual(withBos, original.encodePrompt(text), `${what}: as the original's encodePrompt`);
    assert.deepEqual(hf.encodePrompt(text), original.encodePrompt(text), `${what}: encodePrompt`);
    assert.equal(hf.decode(ids), text, `${what}: decode`);
    assert.equal(hf.decode(withBos, { skipSpecialTokens: true }), text, `${what}: decode without BOS`);
  }
}

test('tokenizer.json written from llama2.c tokenizer.bin: llama.cpp Llama-2 vectors (46/46)', { skip: skipBin }, () => {
  const { original, hf } = pair('bin');
  assert.equal(hf.vocabSize, 32000);
  assert.equal(hf.bosId, 1);
  assert.deepEqual(hf.eosIds, [2]);
  assert.equal(hf.addBos, true);
  assert.equal(hf.description, 'tokenizer.json (BPE, ByteFallback)');
  // llama2.c's literal spaces are "▁", its BOS/EOS "<s>"/"</s>".
  const ids = Array.from({ length: 32000 }, (_, id) => id);
  const expected = original.tokenStrings(ids).map((p, id) => (id === 1 ? '<s>' : id === 2 ? '</s>' : p.replaceAll(' ', '▁')));
  assert.deepEqual(hf.tokenStrings(ids), expected);
  checkVectors(original, hf);
});

test('tokenizer.json written from the GGUF llama vocabulary: llama.cpp Llama-2 vectors (46/46)', { skip: skipGguf }, () => {
  const { original, hf } = pair('gguf');
  assert.ok(original instanceof SentencePieceTokenizer);
  assert.equal(hf.vocabSize, 32000);
  const ids = Array.from({ length: 32000 }, (_, id) => id);
  assert.deepEqual(hf.tokenStrings(ids), original.tokenStrings(ids));
  for (const id of [0, 1, 2, 3, 258, 259, 29871]) assert.equal(hf.isSpecial(id), original.isSpecial(id), `isSpecial(${id})`);
  checkVectors(original, hf);
  // Both sources give the same file.
  if (!skipBin) assert.deepEqual(pair('bin').files['tokenizer.json'], pair('gguf').files['tokenizer.json']);
});

// ---------------------------------------------------------------------------------------------------------------------
// Seeded random texts

function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = [
  'the', 'The', 'hello', 'Hello', 'world', 'ing', 'tion', 'a', 'an', 'is', 'I', "don't", "y'all", 'aaa', 'ababa', 'll',
  'def', 'return', 'self', 'print', 'function', 'const', 'x', 'zz', 'Qu', 'naïve', 'café', 'Äpfel', 'Straße', 'нещо',
  'Български', '中文', '日本語', '한국어', 'Cửa', 'Việt', 'ελληνικά', 'עברית', 'العربية', 'हिन्दी', 'ไทย',
];
const PUNCTUATION = ['.', ',', '!', '?', ';', ':', '...', '!!', '--', '==', '->', '()', '{}', '[]', '"', "'", '`', '/', '\\', '#', '<', '>', '</', 's>', '<0x41>', '@', '$', '%', '&', '*', '+', '~', '|', '^', '_'];
const MULTIBYTE = [
  'é', 'ü', 'ß', 'Ω', 'ж', '€', '™', '½', '→', '✅', '～', '\u00a0', '\u200b', '\u0301', '🦙', '🙂', '👍🏽', '😶‍🌫️', '🚀',
  '𝓝', '𝕜', '\uFFFD',
];

/** A random text: words, punctuation, digits, whitespace runs and multi-byte characters (many need byte fallback). */
function randomText(rand: () => number, extras: readonly string[]): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  let s = '';
  const parts = Math.floor(rand() * 14);
  for (let i = 0; i < parts; i++) {
    const k = rand();
    if (k < 0.3) s += pick(WORDS);
    else if (k < 0.38) s += Array.from({ length: 1 + Math.floor(rand() * 8) }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join('');
    else if (k < 0.48) s += pick(PUNCTUATION);
    else if (k < 0.55) s += String(Math.floor(rand() * 10 ** (1 + Math.floor(rand() * 7))));
    else if (k < 0.68) s += ' '.repeat(1 + Math.floor(rand() * (rand() < 0.8 ? 4 : 40)));
    else if (k < 0.73) s += pick(['\n', '\n\n', '\t', '\r\n', ' \n', '\t\t', '\n    ']);
    else if (k < 0.8) s += pick(MULTIBYTE);
    else if (k < 0.85) s += String.fromCodePoint(0x4e00 + Math.floor(rand() * 0x5000)); // CJK, mostly not a piece
    else if (k < 0.88) s += String.fromCodePoint(0x1f300 + Math.floor(rand() * 0x300)); // emoji: 4 bytes
    else if (k < 0.9) s += String.fromCodePoint(0x0400 + Math.floor(rand() * 0x100)); // Cyrillic
    else if (k < 0.92 && extras.length > 0) s += pick(extras);
    else s += ' ';
  }
  return s;
}

const RANDOM_CASES = 2000;

interface RandomOptions {
  /** Added to the mix. */
  extras?: readonly string[];
  /** Texts drawn but left out (drawing goes on until RANDOM_CASES are accepted). Default: none. */
  exclude?: RegExp;
  /** Texts whose decoding is not the text itself (the original's decode is the reference). Default: none. */
  notPlain?: RegExp;
}

/**
 * RANDOM_CASES seeded random texts encode alike with the original and the written tokenizer.json (special tokens off
 * and on, encodePrompt) and decode back.
 */
function checkRandom(original: TextTokenizer, hf: HfTokenizer, seed: number, options: RandomOptions = {}): void {
  const rand = mulberry32(seed);
  let fallbacks = 0;
  let longRuns = 0;
  for (let i = 0; i < RANDOM_CASES; i++) {
    let text = randomText(rand, options.extras ?? []);
    while (options.exclude?.test(text)) text = randomText(rand, options.extras ?? []);
    const what = `random case ${i} ${JSON.stringify(text)}`;
    const ids = original.encode(text, { specialTokens: false });
    assert.deepEqual(hf.encode(text, { specialTokens: false }), ids, what);
    assert.deepEqual(hf.encode(text), original.encode(text), `${what}: with special tokens`);
    assert.deepEqual(hf.encodePrompt(text), original.encodePrompt(text), `${what}: encodePrompt`);
    if (!options.notPlain?.test(text)) {
      assert.equal(hf.decode(ids), text, `${what}: decode`);
      assert.equal(hf.decode(hf.encodePrompt(text), { skipSpecialTokens: true }), text, `${what}: decode without BOS`);
    } else {
      assert.equal(hf.decode(ids), original.decode(ids), `${what}: decode as the original`);
    }
    if (ids.some((id) => id >= 3 && id <= 258)) fallbacks++;
    if (/ {17}/.test(text)) longRuns++;
  }
  // The mix really exercises byte fallback and the whitespace pieces' ties.
  assert.ok(fallbacks > RANDOM_CASES / 4, `only ${fallbacks} texts needed byte fallback`);
  assert.ok(longRuns > 20, `only ${longRuns} texts had a run of more than 16 spaces`);
}

/**
 * Runs of 1…300 spaces between other text: Llama-2's 16 whitespace pieces all score −1e9, so these are the merges
 * whose order decides ties.
 */
function checkSpaceRuns(original: TextTokenizer, hf: HfTokenizer): void {
  for (let k = 1; k <= 300; k++) {
    for (const [before, after] of [['', ''], ['x', 'y'], ['a.', '\n'], ['\n', ' b']]) {
      const text = `${before}${' '.repeat(k)}${after}`;
      assert.deepEqual(hf.encode(text, { specialTokens: false }), original.encode(text, { specialTokens: false }), `${k} spaces in ${JSON.stringify(text.slice(0, 4))}`);
    }
  }
}

// llama2.c reads "<s>", "</s>", "<unk>" and "▁" as plain text (see the file comment of tokenizer-json.ts), so its texts leave them out.
const LLAMA2C_DIFFERENT = /<s>|<\/s>|<unk>|\u2581/;

test(`${RANDOM_CASES} seeded random texts: llama2.c tokenizer.bin and its tokenizer.json agree`, { skip: skipBin }, () => {
  const { original, hf } = pair('bin');
  checkSpaceRuns(original, hf);
  checkRandom(original, hf, 1, { exclude: LLAMA2C_DIFFERENT });
});

test(`${RANDOM_CASES} seeded random texts: the GGUF llama vocabulary and its tokenizer.json agree (special pieces and "▁" included)`, { skip: skipGguf }, () => {
  const { original, hf } = pair('gguf');
  checkSpaceRuns(original, hf);
  checkRandom(original, hf, 2, { extras: ['<s>', '</s>', '<unk>', '\u2581', '<s>hi', ' </s> '], notPlain: /<s>|<\/s>|<unk>|\u2581/ });
});

test('the default-task byte-level tokenizer.bin round-trips through tokenizer.json (literal spaces)', () => {
  const { original, files, hf } = pair('default');
  assert.equal(hf.vocabSize, original.vocabSize);
  const tj = json(files['tokenizer.json']);
  // No " " piece: a space falls back to <0x20> as in llama2.c, so the pieces keep literal spaces.
  assert.deepEqual(tj.normalizer, { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: ' ' }] });
  assert.deepEqual(tj.model.merges, []);
  assert.equal(tj.model.byte_fallback, true);
  for (const text of ['12+7=19', '', ' ', '  a  b ', 'ünïcødé 🦙', '\u2581x']) {
    assert.deepEqual(hf.encodePrompt(text), original.encodePrompt(text), JSON.stringify(text));
    assert.deepEqual(hf.encode(text, { specialTokens: false }), original.encode(text, { specialTokens: false }), JSON.stringify(text));
    assert.equal(hf.decode(hf.encode(text), { skipSpecialTokens: true }), text);
  }
  for (const line of readFileSync(path.resolve(process.cwd(), 'assets/default-task/eval.jsonl'), 'utf8').trim().split('\n').slice(0, 50)) {
    const { prompt } = JSON.parse(line) as { prompt: string };
    assert.deepEqual(hf.encodePrompt(prompt), original.encodePrompt(prompt), prompt);
  }
  // Literal spaces: "▁" is a plain character for both; only the special-token strings differ.
  checkRandom(original, hf, 3, { extras: ['\u2581'], exclude: /<s>|<\/s>|<unk>/ });
});

// ---------------------------------------------------------------------------------------------------------------------
// The files

test('tokenizer.json, tokenizer_config.json and special_tokens_map.json have LlamaConverter / LlamaTokenizerFast fields', { skip: skipBin }, () => {
  const { files } = pair('bin');
  assert.deepEqual(Object.keys(files).sort(), ['special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
  const tj = json(files['tokenizer.json']);
  assert.equal(tj.model.type, 'BPE');
  assert.equal(tj.model.byte_fallback, true);
  assert.equal(tj.model.fuse_unk, true);
  assert.equal(tj.model.unk_token, '<unk>');
  assert.equal(Object.keys(tj.model.vocab).length, 32000);
  assert.equal(tj.model.vocab['<0x0A>'], 13);
  assert.equal(tj.model.vocab['▁the'], 278);
  assert.equal(tj.model.merges.length, 61249);
  assert.deepEqual(tj.model.merges.slice(0, 3), ['▁ t', 'e r', 'i n']);
  assert.equal(tj.pre_tokenizer, null);
  assert.deepEqual(tj.normalizer, {
    type: 'Sequence',
    normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }],
  });
  assert.deepEqual(tj.decoder, {
    type: 'Sequence',
    decoders: [
      { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
      { type: 'ByteFallback' },
      { type: 'Fuse' },
      { type: 'Strip', content: ' ', start: 1, stop: 0 },
    ],
  });
  assert.equal(tj.post_processor.type, 'TemplateProcessing');
  assert.deepEqual(tj.post_processor.single, [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }]);
  assert.deepEqual(tj.post_processor.special_tokens, { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } });
  assert.deepEqual(
    tj.added_tokens.map((t: { id: number; content: string; special: boolean; normalized: boolean }) => [t.id, t.content, t.special, t.normalized]),
    [[0, '<unk>', true, false], [1, '<s>', true, false], [2, '</s>', true, false]],
  );

  const config = json(files['tokenizer_config.json']);
  assert.equal(config.tokenizer_class, 'LlamaTokenizerFast');
  assert.equal(config.bos_token, '<s>');
  assert.equal(config.eos_token, '</s>');
  assert.equal(config.unk_token, '<unk>');
  assert.equal(config.pad_token, null);
  assert.equal(config.add_bos_token, true);
  assert.equal(config.add_eos_token, false);
  assert.equal(config.legacy, true);
  assert.equal(config.clean_up_tokenization_spaces, false);
  assert.equal(config.chat_template, undefined);
  assert.match(utf8.decode(files['tokenizer_config.json']), /"model_max_length": 1000000000000000019884624838656,/);
  assert.deepEqual(config.added_tokens_decoder['1'], { content: '<s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  assert.deepEqual(json(files['special_tokens_map.json']), {
    bos_token: { content: '<s>', lstrip: false, normalized: false, rstrip: false, single_word: false },
    eos_token: { content: '</s>', lstrip: false, normalized: false, rstrip: false, single_word: false },
    unk_token: { content: '<unk>', lstrip: false, normalized: false, rstrip: false, single_word: false },
  });
});

test('model_max_length, chat_template and add_eos_token come from the options and the vocabulary', { skip: skipGguf }, () => {
  const sp = pair('gguf').original as SentencePieceTokenizer;
  const template = "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}";
  const withTemplate = new SentencePieceTokenizer({ ...sp.vocabulary, chatTemplate: template, addEos: true }, 'chat.gguf');
  const files = sentencePieceTokenizerFiles(withTemplate, { modelMaxLength: 4096 });
  const config = json(files['tokenizer_config.json']);
  assert.equal(config.chat_template, template);
  assert.equal(config.model_max_length, 4096);
  assert.equal(config.add_eos_token, true);
  const hf = tokenizerFromHfFiles(files['tokenizer.json']!, files['tokenizer_config.json']!, { source: 'chat/tokenizer.json' });
  assert.equal(hf.chatTemplate, template);
  assert.deepEqual(hf.encode('Hello'), withTemplate.encode('Hello'));
  assert.deepEqual(hf.encode('Hello'), [1, 15043, 2]);
  throwsInput(() => sentencePieceTokenizerFiles(sp, { modelMaxLength: 0 }), 'model_max_length 0');
});

// ---------------------------------------------------------------------------------------------------------------------
// Merge order and its one limit

test('merges: by the merged piece score, then the longer left piece (whitespace ties grow the leftmost symbol)', { skip: skipBin }, () => {
  const { original, files } = pair('bin');
  const tj = json(files['tokenizer.json']);
  const merges: string[] = tj.model.merges;
  const vocab: Record<string, number> = tj.model.vocab;
  const score = (piece: string): number => original instanceof Tokenizer ? original.score(vocab[piece]!) : NaN;
  const length = (piece: string): number => Array.from(piece).length;
  // Every pair of mergeable pieces whose concatenation is a piece, each once, in rank order.
  assert.equal(new Set(merges).size, merges.length);
  for (let i = 1; i < merges.length; i++) {
    const [l0, r0] = merges[i - 1]!.split(' ') as [string, string];
    const [l1, r1] = merges[i]!.split(' ') as [string, string];
    const s0 = score(l0 + r0);
    const s1 = score(l1 + r1);
    assert.ok(
      s0 > s1 || (s0 === s1 && (length(l0) > length(l1) || (length(l0) === length(l1) && length(r0) >= length(r1)))),
      `merge ${i - 1} ${merges[i - 1]} (${s0}) before merge ${i} ${merges[i]} (${s1})`,
    );
  }
  const rank = (m: string): number => merges.indexOf(m);
  assert.ok(rank('▁th e') >= 0 && rank('▁th e') < rank('▁t he'), 'the longer left piece first');
  // The whitespace pieces (all −1e9) come last, longest left piece first, and "▁ ▁" is the very last.
  const spaces = merges.filter((m) => /^▁+ ▁+$/.test(m));
  assert.equal(spaces.length, 15 * 16 / 2);
  assert.deepEqual(merges.slice(-spaces.length), spaces);
  assert.equal(spaces[0], `${'▁'.repeat(15)} ▁`);
  assert.equal(spaces.at(-1), '▁ ▁');
});

test('known limit: different pieces with equal scores that overlap (ab, ba) cannot match for every text', () => {
  // SentencePiece takes the leftmost of equal-scored pairs; a merge list must rank one of "a b" and "b a" first.
  // "ab" has the lower id, so it ranks first: " aba" matches, " bab" cannot (SentencePiece [▁, ba, b]).
  // Llama-2's only equal scores are its whitespace pieces, which do not conflict (tests above).
  const tok = syntheticTokenizer([[' ', -1], ['a', -2], ['b', -3], ['ab', -10], ['ba', -10]]);
  const files = sentencePieceTokenizerFiles(tok);
  const hf = tokenizerFromHfFiles(files['tokenizer.json']!, files['tokenizer_config.json']!, { source: 'ab/tokenizer.json' });
  const pieces = (t: TextTokenizer, text: string): string[] => t.tokenStrings(t.encode(text, { specialTokens: false }));
  assert.deepEqual(pieces(tok, 'aba'), [' ', 'ab', 'a']);
  assert.deepEqual(pieces(hf, 'aba'), ['▁', 'ab', 'a']);
  assert.deepEqual(pieces(tok, 'bab'), [' ', 'ba', 'b']);
  assert.deepEqual(pieces(hf, 'bab'), ['▁', 'b', 'ab']);
});

test('pieces text cannot become (here a byte-typed "ab") get no merges, as SentencePieceTokenizer never merges into them', () => {
  const pieces = ['<unk>', '<s>', '</s>', 'a', 'b', 'ab', '\u2581'];
  const types = [TOKEN_TYPE.unknown, TOKEN_TYPE.control, TOKEN_TYPE.control, TOKEN_TYPE.normal, TOKEN_TYPE.normal, TOKEN_TYPE.byte, TOKEN_TYPE.normal];
  const sp = new SentencePieceTokenizer(
    { pieces, scores: [0, 0, 0, -1, -2, -0.5, -3], types, bosId: 1, eosId: 2, unkId: 0, padId: null, addBos: true, addEos: false, addSpacePrefix: true },
    'typed.gguf',
  );
  const files = sentencePieceTokenizerFiles(sp);
  assert.deepEqual(json(files['tokenizer.json']).model.merges, []);
  const hf = tokenizerFromHfFiles(files['tokenizer.json']!, files['tokenizer_config.json']!, { source: 'typed/tokenizer.json' });
  assert.deepEqual(sp.encode('ab', { specialTokens: false }), [6, 3, 4]);
  assert.deepEqual(hf.encode('ab', { specialTokens: false }), sp.encode('ab', { specialTokens: false }));
});

// ---------------------------------------------------------------------------------------------------------------------
// llama2.c's own spellings and the refusals

test('llama2.c: "<s>" in a text is plain text there but BOS in tokenizer.json (Hugging Face semantics)', { skip: skipBin }, () => {
  const { original, hf } = pair('bin');
  const hi = hf.encode('hi', { specialTokens: false });
  assert.deepEqual(hf.encode('<s>hi', { specialTokens: false }), [1, ...hi]);
  const plain = original.encode('<s>hi', { specialTokens: false });
  assert.notEqual(plain[0], 1);
  assert.equal(original.decode(plain), ' <s>hi');
});

test('a llama2.c vocabulary with a literal "▁" in a piece keeps literal spaces, so "▁" in a text still matches', () => {
  const tok = syntheticTokenizer([[' ', -1], ['\u2581', -2], ['a', -3], [' a', -4], ['\u2581a', -5], ['aa', -6]]);
  const files = sentencePieceTokenizerFiles(tok);
  // Pieces with spaces: the merges are [left, right] lists.
  assert.deepEqual(json(files['tokenizer.json']).model.merges, [[' ', 'a'], ['\u2581', 'a'], ['a', 'a']]);
  const hf = tokenizerFromHfFiles(files['tokenizer.json']!, files['tokenizer_config.json']!, { source: 'lit/tokenizer.json' });
  for (const text of ['a', '\u2581a', 'a \u2581aa a', '  \u2581\u2581 a', 'äa']) {
    assert.deepEqual(hf.encode(text), tok.encode(text), JSON.stringify(text));
    assert.equal(hf.decode(hf.encode(text), { skipSpecialTokens: true }), text);
  }
});

test('refuses tokenizers that are not SentencePiece, naming them', { skip: skipQwen }, () => {
  const qwen = tokenizerFromHfFiles(readShared(`${QWEN}/tokenizer.json`), readShared(`${QWEN}/tokenizer_config.json`), {
    source: `${QWEN}/tokenizer.json`,
  });
  throwsInput(() => sentencePieceTokenizerFiles(qwen), qwen.description, `${QWEN}/tokenizer.json`, 'cannot be written as a SentencePiece tokenizer.json');
});

test('refuses llama2.c vocabularies a tokenizer.json cannot hold', () => {
  // Two pieces spelled alike once BOS is "<s>".
  throwsInput(() => sentencePieceTokenizerFiles(syntheticTokenizer([['<s>', -1]])), 'pieces 1 and 259 are both "<s>"');
  // Ids 3…258 are not the byte pieces llama2.c's byte fallback emits.
  const short = Tokenizer.fromBytes(buildTokenizerBin([{ piece: '<unk>', score: 0 }, { piece: '\n<s>\n', score: 0 }, { piece: '\n</s>\n', score: 0 }, { piece: 'a', score: -1 }]), 'short.bin');
  throwsInput(() => sentencePieceTokenizerFiles(short), 'short.bin', 'piece 3 is "a", not the byte piece <0x00>');
  // A piece that is not UTF-8 text.
  const records = [
    { piece: '<unk>', score: 0 }, { piece: '\n<s>\n', score: 0 }, { piece: '\n</s>\n', score: 0 },
    ...Array.from({ length: 256 }, (_, b) => ({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, score: 0 })),
    { piece: new Uint8Array([0xe4, 0xb8]), score: -1 },
  ];
  throwsInput(() => sentencePieceTokenizerFiles(Tokenizer.fromBytes(buildTokenizerBin(records), 'bad.bin')), 'bad.bin', 'piece 259 is not valid UTF-8');
});
