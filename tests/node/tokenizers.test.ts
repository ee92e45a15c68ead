// Every tokenizer behind TextTokenizer: llama2.c's tokenizer.bin, GGUF `llama` (SentencePiece) and `gpt2` (byte-level
// BPE) vocabularies, Hugging Face tokenizer.json files (Qwen3, Llama 3), their chat templates, and the bad-input errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemaxInputError } from '../../src/core/errors';
import { parseGguf } from '../../src/core/formats/gguf';
import { chatPromptIds, renderChat, type ChatMessage } from '../../src/core/tokenizers/chat-template';
import { checkTokenizerFitsModel } from '../../src/core/tokenizers/common';
import { ggufHasTokenizer, ggufTokenizerMetadata, tokenizerFromGguf } from '../../src/core/tokenizers/gguf-vocab';
import { HfTokenizer, tokenizerFromHfFiles } from '../../src/core/tokenizers/hf-tokenizer';
import { BOS_ID, EOS_ID, Tokenizer } from '../../src/core/tokenizers/llama2c';
import { SentencePieceTokenizer } from '../../src/core/tokenizers/sentencepiece';
import type { TextTokenizer } from '../../src/core/tokenizers/types';
import { readShared, readSharedJson, sharedPath, skipUnlessShared } from './shared-data';
import { syntheticTokenizer } from './fixtures';

const SPM_INP = 'tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf.inp';
const SPM_OUT = 'tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf.out';
const LLAMA2_BIN = 'tokenizers/llama2/tokenizer.bin';
const LLAMA2_GGUF = 'models/gguf/llama-2-tiny-random.gguf';
const QWEN = 'models/hf/qwen2-tiny';
const LLAMA3 = 'models/hf/llama3-tiny';

const skipSpm = skipUnlessShared(SPM_INP, SPM_OUT, LLAMA2_BIN);
const skipSpmGguf = skipUnlessShared(SPM_INP, SPM_OUT, LLAMA2_GGUF);
const skipHf = skipUnlessShared(`${QWEN}/tokenizer.json`, `${QWEN}/tokenizer_config.json`, `${LLAMA3}/tokenizer.json`, `${LLAMA3}/tokenizer_config.json`);

function throwsInput(fn: () => unknown, ...fragments: (string | RegExp)[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RemaxInputError, `expected a RemaxInputError, got ${String(e)}`);
    for (const f of fragments) {
      if (typeof f === 'string') assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
      else assert.match(e.message, f);
    }
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// Shared files, loaded once

/** llama.cpp's test vectors: 46 cases, ids without BOS. */
function spmVectors(): { text: string; ids: number[] }[] {
  const texts = new TextDecoder().decode(readShared(SPM_INP)).split('\n__ggml_vocab_test__\n');
  assert.equal(texts.pop(), '', 'the .inp file ends with the separator');
  const lines = new TextDecoder().decode(readShared(SPM_OUT)).split('\n');
  assert.equal(lines.pop(), '', 'the .out file ends with a newline');
  assert.equal(texts.length, 46);
  assert.equal(lines.length, 46);
  return texts.map((text, i) => ({ text, ids: lines[i]!.trim() === '' ? [] : lines[i]!.trim().split(' ').map(Number) }));
}

let llama2Gguf: Map<string, unknown> | undefined;
const llama2GgufMetadata = (): Map<string, unknown> =>
  (llama2Gguf ??= parseGguf(readShared(LLAMA2_GGUF), LLAMA2_GGUF).metadata);

const hfCache = new Map<string, { tok: HfTokenizer; parseMs: number; constructMs: number }>();
function hf(dir: string): HfTokenizer {
  let entry = hfCache.get(dir);
  if (entry === undefined) {
    const jsonBytes = readShared(`${dir}/tokenizer.json`);
    const configBytes = readShared(`${dir}/tokenizer_config.json`);
    const t0 = performance.now();
    const json = JSON.parse(new TextDecoder().decode(jsonBytes));
    const config = JSON.parse(new TextDecoder().decode(configBytes));
    const t1 = performance.now();
    const tok = HfTokenizer.fromJson(json, config, { source: sharedPath(`${dir}/tokenizer.json`) });
    entry = { tok, parseMs: t1 - t0, constructMs: performance.now() - t1 };
    hfCache.set(dir, entry);
  }
  return entry.tok;
}

/** Text exercising the byte-level pre-tokenizers: digits, contractions, whitespace runs, CJK, emoji, code, specials. */
const TEXTS = [
  'Hello world',
  "I'm sure you don't",
  "HOW'S IT GOING? We've, they'll, she'd",
  '12345 1234567 3.14159',
  'a  b   c\n\n\nd \n  \t\n',
  '你好世界，中文分词',
  'Emoji: 🦙😀👍🏽 ✅',
  'def f(x):\n\treturn x\t# tab\n\t\tnested',
  '<|im_start|>user\nHi<|im_end|>',
  '<|begin_of_text|>Hi<|eot_id|>',
  '   leading and trailing   ',
  '',
  'Äpfel über Straße, naïve café',
  'Tiếng Việt có nhiều điều hay', // Llama 3: " Việt" is a vocabulary entry that its merges would not reach
];

// ---------------------------------------------------------------------------------------------------------------------
// 1. SentencePiece: llama.cpp's vectors through llama2.c's tokenizer.bin and through the GGUF vocabulary

test('llama-spm vectors: the llama2.c tokenizer.bin encodes all 46 cases (no BOS) and decodes them back', { skip: skipSpm }, () => {
  const tok = Tokenizer.fromBytes(readShared(LLAMA2_BIN), LLAMA2_BIN);
  assert.equal(tok.vocabSize, 32000);
  for (const [i, c] of spmVectors().entries()) {
    assert.deepEqual(tok.encode(c.text, { bos: false }), c.ids, `case ${i} ${JSON.stringify(c.text)}`);
    // The TextTokenizer spelling of the same call.
    assert.deepEqual(tok.encode(c.text, { specialTokens: false }), c.ids, `case ${i} (specialTokens: false)`);
    assert.equal(tok.decode(tok.encode(c.text)), c.text, `case ${i} round trip`);
  }
});

test('llama-spm vectors: the vocabulary inside llama-2-tiny-random.gguf encodes all 46 cases and decodes them back', { skip: skipSpmGguf }, () => {
  const metadata = llama2GgufMetadata();
  assert.ok(ggufHasTokenizer(metadata));
  const tok = tokenizerFromGguf(metadata, LLAMA2_GGUF);
  assert.ok(tok instanceof SentencePieceTokenizer);
  assert.equal(tok.description, 'GGUF llama vocabulary (SentencePiece BPE)');
  assert.equal(tok.vocabSize, 32000);
  assert.equal(tok.bosId, 1);
  assert.deepEqual(tok.eosIds, [2]);
  assert.equal(tok.addBos, true);
  assert.deepEqual(tok.specialTokenStrings, { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' });
  for (const [i, c] of spmVectors().entries()) {
    assert.deepEqual(tok.encode(c.text, { specialTokens: false }), c.ids, `case ${i} ${JSON.stringify(c.text)}`);
    const withBos = tok.encode(c.text);
    assert.deepEqual(withBos, [1, ...c.ids], `case ${i} with BOS`);
    assert.deepEqual(tok.encodePrompt(c.text), withBos);
    assert.equal(tok.decode(withBos, { skipSpecialTokens: true }), c.text, `case ${i} round trip`);
    assert.equal(tok.decode(c.ids), c.text, `case ${i} round trip without BOS`);
  }
});

test('GGUF SentencePiece: special pieces in text, HF Llama-2 decode, continuation', { skip: skipSpmGguf }, () => {
  const tok = tokenizerFromGguf(llama2GgufMetadata(), LLAMA2_GGUF) as SentencePieceTokenizer;
  const ids = (s: string): number[] => tok.encode(s, { specialTokens: false });
  // As HF's Llama-2 tokenizer.json (legacy): "<s>"/"</s>" in text are their ids, each stretch after one gets "▁".
  assert.deepEqual(ids('<s>hello'), [1, 22172]);
  assert.deepEqual(tok.tokenStrings(ids('hello </s> world')), ['▁hello', '▁', '</s>', '▁', '▁world']);
  assert.deepEqual(ids('<unk>'), [0]);
  // Spelled out when special-token parsing is off: never a control id.
  const plain = tok.encode('<s>hello', { specialTokens: false, parseSpecial: false });
  assert.ok(!plain.includes(1) && plain.length > 2);
  assert.equal(tok.decode(plain), '<s>hello');
  assert.equal(tok.encodePrompt('<s>hello').filter((id) => id === 1).length, 1, 'no second BOS');
  // decode: control pieces as text unless skipped, one leading space dropped (HF's Strip decoder).
  assert.equal(tok.decode([1, 15043, 3186]), '<s> Hello world');
  assert.equal(tok.decode([1, 15043, 3186], { skipSpecialTokens: true }), 'Hello world');
  assert.equal(tok.decode([]), '');
  assert.ok(tok.isSpecial(1) && tok.isSpecial(2) && tok.isSpecial(0) && !tok.isSpecial(15043));
  // A continuation keeps its leading space unless it starts the text.
  const prompt = tok.encodePrompt('Once upon');
  assert.equal(tok.decodeContinuation(prompt, ids('a time'), { skipSpecialTokens: true }), ' a time');
  assert.equal(tok.decodeContinuation([1], ids('Once'), { skipSpecialTokens: true }), 'Once');
  // A character split across the boundary: its byte pieces decode whole in the continuation.
  const crab = ids('x🦀'); // ▁x then four byte pieces
  assert.equal(crab.length, 5);
  assert.equal(tok.decodeContinuation([1, ...crab.slice(0, 2)], crab.slice(2), { skipSpecialTokens: true }), '🦀');
  throwsInput(() => tok.decode([32000]), 'ids[0] = 32000', LLAMA2_GGUF);
});

/** A tiny GGUF llama vocabulary with the byte pieces at the END (ids 9..264), not at llama2.c's 3..258. */
function syntheticSpmMetadata(): Map<string, unknown> {
  const pieces = ['<unk>', '<s>', '</s>', '▁', 'a', 'b', '▁a', 'ab', '<tool>'];
  const scores = [0, 0, 0, -5, -5, -5, -1, -2, 0];
  const types = [2, 3, 3, 1, 1, 1, 1, 1, 4];
  for (let b = 0; b < 256; b++) {
    pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    scores.push(0);
    types.push(6);
  }
  return new Map<string, unknown>([
    ['tokenizer.ggml.model', 'llama'],
    ['tokenizer.ggml.tokens', pieces],
    // The other shapes a metadata map may hold: typed arrays, bigints, {type, value} records.
    ['tokenizer.ggml.scores', Float32Array.from(scores)],
    ['tokenizer.ggml.token_type', { type: 'array<i32>', value: Int32Array.from(types) }],
    ['tokenizer.ggml.bos_token_id', 1n],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: 2 }],
  ]);
}

test('GGUF SentencePiece: byte pieces are looked up by name, user-defined pieces always match, typed values read', () => {
  const tok = tokenizerFromGguf(syntheticSpmMetadata(), 'synthetic.gguf');
  const byte = (b: number): number => 9 + b;
  // "▁ab▁é": "▁a" (−1) merges before "ab" (−2); "▁ab" is no piece; é is no piece: its bytes C3 A9.
  assert.deepEqual(tok.encode('ab é', { specialTokens: false }), [6, 5, 3, byte(0xc3), byte(0xa9)]);
  assert.equal(tok.decode(tok.encode('ab é')), '<s> ab é'); // as HF: "<s>" then " ab é" (the strip only at the start)
  assert.equal(tok.decode(tok.encode('ab é'), { skipSpecialTokens: true }), 'ab é');
  // <tool> (user-defined) matches even with parseSpecial off; <s> (control) only with it on.
  assert.deepEqual((tok as SentencePieceTokenizer).encode('a<tool>', { specialTokens: false, parseSpecial: false }), [6, 8]);
  assert.deepEqual(tok.encode('<s>', { specialTokens: false }), [1]);
  assert.ok(!(tok as SentencePieceTokenizer).encode('<s>', { specialTokens: false, parseSpecial: false }).includes(1));
  assert.equal(tok.isSpecial(8), false);
});

test('llama2.c Tokenizer is a TextTokenizer with its old behaviour', { skip: skipSpm }, () => {
  const tok: TextTokenizer = Tokenizer.fromBytes(readShared(LLAMA2_BIN), LLAMA2_BIN);
  assert.equal(tok.description, 'llama2.c tokenizer.bin');
  assert.equal(tok.bosId, BOS_ID);
  assert.deepEqual(tok.eosIds, [EOS_ID]);
  assert.equal(tok.addBos, true);
  assert.equal(tok.chatTemplate, undefined);
  assert.deepEqual(tok.specialTokenStrings, {});
  assert.deepEqual(tok.encodePrompt('Hello world'), [1, 15043, 3186]);
  assert.deepEqual(tok.encode('Hello world'), [1, 15043, 3186]);
  assert.deepEqual(tok.encode('Hello world', { specialTokens: false }), [15043, 3186]);
  assert.deepEqual(tok.tokenStrings([1, 15043, 13]), ['\n<s>\n', ' Hello', '<0x0A>']);
  assert.ok(tok.isSpecial(1) && tok.isSpecial(2) && !tok.isSpecial(3));
  // decodeContinuation is what the engine did: afterBos only after a prompt of just BOS.
  assert.equal(tok.decodeContinuation([1], [15043, 3186]), 'Hello world');
  assert.equal(tok.decodeContinuation([1, 15043], [3186]), ' world');
  // The old option names still win over the new one.
  const llama = tok as Tokenizer;
  assert.deepEqual(llama.encode('Hi', { bos: true, specialTokens: false }), llama.encode('Hi'));
  assert.equal(llama.decode([15043], { afterBos: true }), 'Hello');
  const synthetic = syntheticTokenizer([[' ', -1], ['a', -1]]);
  assert.deepEqual(synthetic.encode('a', { specialTokens: false }), [259, 260]);
});

// ---------------------------------------------------------------------------------------------------------------------
// 2. Hugging Face tokenizer.json: Qwen3 and Llama 3

/** Pieces → ids by vocabulary lookup, asserting each piece exists. */
function idsOf(tok: HfTokenizer, pieces: string[]): number[] {
  return pieces.map((p) => {
    const id = tok.tokenToId(p);
    assert.notEqual(id, undefined, `${JSON.stringify(p)} is in the vocabulary`);
    return id!;
  });
}

function expectPieces(tok: HfTokenizer, text: string, pieces: string[]): void {
  const ids = tok.encode(text);
  assert.deepEqual(tok.tokenStrings(ids), pieces, `pieces of ${JSON.stringify(text)}`);
  assert.deepEqual(ids, idsOf(tok, pieces), `ids of ${JSON.stringify(text)}`);
}

test('Qwen3 tokenizer.json: properties, pre-tokenizer (single digits), special tokens, round trips', { skip: skipHf }, () => {
  const tok = hf(QWEN);
  assert.equal(tok.description, 'tokenizer.json (BPE, ByteLevel)');
  assert.equal(tok.vocabSize, 151669);
  assert.equal(tok.bosId, null);
  assert.equal(tok.addBos, false);
  assert.deepEqual(tok.eosIds, [151645, 151643]); // <|im_end|> (eos_token), <|endoftext|>
  assert.deepEqual(tok.specialTokenStrings, { eos_token: '<|im_end|>', pad_token: '<|endoftext|>' });
  assert.ok(tok.isSpecial(151644) && !tok.isSpecial(151667) && !tok.isSpecial(9707)); // <|im_start|>, <think>, Hello
  assert.deepEqual(tok.encode('Hello world'), [9707, 1879]);
  expectPieces(tok, 'Hello world', ['Hello', 'Ġworld']);
  expectPieces(tok, "I'm sure you don't", ['I', "'m", 'Ġsure', 'Ġyou', 'Ġdon', "'t"]);
  expectPieces(tok, '12345 1234567', ['1', '2', '3', '4', '5', 'Ġ', '1', '2', '3', '4', '5', '6', '7']);
  expectPieces(tok, 'a  b   c\n\n\nd \n', ['a', 'Ġ', 'Ġb', 'ĠĠ', 'Ġc', 'ĊĊĊ', 'd', 'ĠĊ']);
  expectPieces(tok, '你好世界，中文', ['ä½łå¥½', 'ä¸ĸçķĮ', 'ï¼Į', 'ä¸Ńæĸĩ']);
  expectPieces(tok, '🦙', ['ðŁ¦Ļ']);
  expectPieces(tok, 'def f(x):\n\treturn x\t# tab', ['def', 'Ġf', '(x', '):Ċ', 'ĉreturn', 'Ġx', 'ĉ', '#', 'Ġtab']);
  assert.deepEqual(tok.encode('<|im_start|>user\nHi<|im_end|>'), [151644, ...idsOf(tok, ['user', 'Ċ', 'Hi']), 151645]);
  // NFC normalizer: a decomposed é encodes as the composed one.
  assert.deepEqual(tok.encode('e\u0301'), tok.encode('\u00e9'));
  for (const text of TEXTS) assert.equal(tok.decode(tok.encode(text)), text, `round trip ${JSON.stringify(text)}`);
  // No BOS anywhere: prompts are the text's tokens.
  assert.deepEqual(tok.encodePrompt('Hello world'), [9707, 1879]);
  assert.equal(tok.decode([151644, 9707, 151645], { skipSpecialTokens: true }), 'Hello');
});

test('Llama 3 tokenizer.json: properties, pre-tokenizer (digits in threes), BOS for prompts, round trips', { skip: skipHf }, () => {
  const tok = hf(LLAMA3);
  assert.equal(tok.description, 'tokenizer.json (BPE, ByteLevel)');
  assert.equal(tok.vocabSize, 128256);
  assert.equal(tok.bosId, 128000);
  assert.equal(tok.addBos, true, 'PreTrainedTokenizerFast with a bos_token');
  assert.deepEqual(tok.eosIds, [128001, 128009]); // <|end_of_text|>, <|eot_id|>
  assert.deepEqual(tok.specialTokenStrings, { bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>' });
  assert.deepEqual(tok.encode('Hello world'), [9906, 1917]);
  expectPieces(tok, 'Hello world', ['Hello', 'Ġworld']);
  expectPieces(tok, "I'm sure you don't", ['I', "'m", 'Ġsure', 'Ġyou', 'Ġdon', "'t"]);
  expectPieces(tok, '12345 1234567', ['123', '45', 'Ġ', '123', '456', '7']);
  expectPieces(tok, 'a  b   c\n\n\nd \n', ['a', 'Ġ', 'Ġb', 'ĠĠ', 'Ġc', 'ĊĊĊ', 'd', 'ĠĊ']);
  expectPieces(tok, '你好世界，中文', ['ä½ł', 'å¥½', 'ä¸ĸçķĮ', 'ï¼Į', 'ä¸Ńæĸĩ']);
  expectPieces(tok, '🦙', ['ðŁ', '¦', 'Ļ']);
  expectPieces(tok, 'def f(x):\n\treturn x\t# tab', ['def', 'Ġf', '(x', '):Ċ', 'ĉreturn', 'Ġx', 'ĉ', '#', 'Ġtab']);
  assert.deepEqual(tok.encode('<|begin_of_text|>Hi<|eot_id|>'), [128000, ...idsOf(tok, ['Hi']), 128009]);
  // ignore_merges: a pre-token that is a vocabulary entry is that entry (the merges alone give Ġvi, á»ĩ, t).
  assert.deepEqual(tok.encode(' Việt'), [101798]);
  for (const text of TEXTS) assert.equal(tok.decode(tok.encode(text)), text, `round trip ${JSON.stringify(text)}`);
  // The tokenizer.json adds no BOS; prompts start with exactly one.
  assert.deepEqual(tok.encode('Hi', { specialTokens: true }), [13347]);
  assert.deepEqual(tok.encodePrompt('Hi'), [128000, 13347]);
  assert.deepEqual(tok.encodePrompt('<|begin_of_text|>Hi'), [128000, 13347]);
  assert.equal(tok.decode([128000, 13347], { skipSpecialTokens: true }), 'Hi');
  assert.equal(tok.decode([128000, 13347]), '<|begin_of_text|>Hi');
  // decodeContinuation: the continuation starts inside 🦙 (3 byte-level tokens): it completes the character.
  const text = 'I like 🦙s';
  const ids = tok.encodePrompt(text);
  const cut = ids.length - 2; // … 'ðŁ', '¦' | 'Ļ', 's'
  assert.deepEqual(tok.tokenStrings(ids.slice(cut - 1)), ['¦', 'Ļ', 's']);
  const head = tok.decode(ids.slice(0, cut), { skipSpecialTokens: true });
  assert.ok(head.endsWith('\uFFFD'));
  const rest = tok.decodeContinuation(ids.slice(0, cut), ids.slice(cut), { skipSpecialTokens: true });
  assert.equal(head.replace(/\uFFFD+$/, '') + rest, text);
  assert.equal(tok.decodeContinuation(tok.encodePrompt('Hello'), idsOf(tok, ['Ġworld'])), ' world');
  throwsInput(() => tok.decode([128256]), 'ids[0] = 128256', 'llama3-tiny/tokenizer.json');
  throwsInput(() => tok.decode([1.5]), 'ids[0] = 1.5');
});

test('constructing the Qwen3 and Llama 3 tokenizers (9–11 MB tokenizer.json): timings', { skip: skipHf }, (t) => {
  hf(QWEN);
  hf(LLAMA3);
  for (const dir of [QWEN, LLAMA3]) {
    const e = hfCache.get(dir)!;
    const line = `${dir}: JSON.parse ${e.parseMs.toFixed(0)} ms + HfTokenizer ${e.constructMs.toFixed(0)} ms`;
    t.diagnostic(line);
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// 3. GGUF gpt2 vocabularies built from the tokenizer.json files encode exactly as the tokenizer.json does

/** llama.cpp's conversion of a byte-level tokenizer.json: tokens by id, types 3/4 for added tokens, "a b" merges. */
const ggufCache = new Map<string, Map<string, unknown>>();
function ggufFromTokenizerJson(dir: string, pre: string): Map<string, unknown> {
  const key = `${dir} ${pre}`;
  if (!ggufCache.has(key)) ggufCache.set(key, buildGgufFromTokenizerJson(dir, pre));
  return new Map(ggufCache.get(key)!);
}
function buildGgufFromTokenizerJson(dir: string, pre: string): Map<string, unknown> {
  const json = readSharedJson(`${dir}/tokenizer.json`);
  const config = readSharedJson(`${dir}/tokenizer_config.json`);
  const entries = Object.entries(json.model.vocab as Record<string, number>);
  const added = json.added_tokens as { id: number; content: string; special: boolean }[];
  const n = [...entries.map(([, id]) => id), ...added.map((t) => t.id)].reduce((a, b) => Math.max(a, b), 0) + 1;
  const tokens = new Array<string>(n);
  const types = new Array<number>(n).fill(1);
  for (const [piece, id] of entries) tokens[id] = piece;
  for (const t of added) {
    tokens[t.id] = t.content;
    types[t.id] = t.special ? 3 : 4;
  }
  const id = (s: unknown): number | undefined => (typeof s === 'string' ? tokens.indexOf(s) : undefined);
  const m = new Map<string, unknown>([
    ['general.architecture', pre === 'qwen2' ? 'qwen2' : 'llama'],
    ['tokenizer.ggml.model', 'gpt2'],
    ['tokenizer.ggml.pre', pre],
    ['tokenizer.ggml.tokens', tokens],
    ['tokenizer.ggml.token_type', types],
    ['tokenizer.ggml.merges', (json.model.merges as (string | string[])[]).map((x) => (Array.isArray(x) ? x.join(' ') : x))],
    ['tokenizer.ggml.eos_token_id', id(config.eos_token)],
    ['tokenizer.chat_template', config.chat_template],
  ]);
  if (config.bos_token) m.set('tokenizer.ggml.bos_token_id', id(config.bos_token));
  return m;
}

test('GGUF gpt2 (pre qwen2) from the Qwen3 vocabulary and merges encodes every text as the tokenizer.json', { skip: skipHf }, () => {
  const json = hf(QWEN);
  const gguf = tokenizerFromGguf(ggufFromTokenizerJson(QWEN, 'qwen2'), 'qwen.gguf');
  assert.equal(gguf.description, 'GGUF gpt2 vocabulary (byte-level BPE, pre qwen2)');
  assert.equal(gguf.vocabSize, 151669);
  assert.equal(gguf.bosId, null);
  assert.equal(gguf.addBos, false);
  assert.deepEqual(gguf.eosIds, [151645, 151643]);
  assert.equal(gguf.chatTemplate, json.chatTemplate);
  for (const text of [...TEXTS, 'e\u0301 (decomposed)']) {
    assert.deepEqual(gguf.encode(text), json.encode(text), `encode ${JSON.stringify(text)}`);
    assert.deepEqual(gguf.encodePrompt(text), json.encodePrompt(text));
    assert.equal(gguf.decode(gguf.encode(text)), json.decode(json.encode(text)));
  }
});

test('GGUF gpt2 (pre llama-bpe) from the Llama 3 vocabulary and merges encodes every text as the tokenizer.json', { skip: skipHf }, () => {
  const json = hf(LLAMA3);
  const gguf = tokenizerFromGguf(ggufFromTokenizerJson(LLAMA3, 'llama-bpe'), 'llama3.gguf');
  assert.equal(gguf.vocabSize, 128256);
  assert.equal(gguf.bosId, 128000);
  assert.equal(gguf.addBos, true, 'llama-bpe adds BOS by default, as llama.cpp');
  assert.deepEqual(gguf.eosIds, [128001, 128009]);
  for (const text of TEXTS) {
    assert.deepEqual(gguf.encode(text, { specialTokens: false }), json.encode(text, { specialTokens: false }), `encode ${JSON.stringify(text)}`);
    assert.deepEqual(gguf.encodePrompt(text), json.encodePrompt(text));
    assert.equal(gguf.decode(gguf.encode(text)), text);
  }
});

test('ggufTokenizerMetadata writes a tokenizer back as tokenizer.ggml.* entries that read back the same', { skip: skipHf || skipSpm || skipSpmGguf }, () => {
  const toMap = (entries: ReturnType<typeof ggufTokenizerMetadata>): Map<string, unknown> => new Map(entries.map((e) => [e.key, e.value]));
  // Byte-level BPE: the entries are what llama.cpp's conversion writes.
  for (const [dir, pre] of [[QWEN, 'qwen2'], [LLAMA3, 'llama-bpe']] as const) {
    const tok = hf(dir);
    const entries = ggufTokenizerMetadata(tok);
    const types = new Map(entries.map((e) => [e.key, e.type]));
    assert.equal(types.get('tokenizer.ggml.tokens'), 'array<string>');
    assert.equal(types.get('tokenizer.ggml.token_type'), 'array<i32>');
    assert.equal(types.get('tokenizer.ggml.merges'), 'array<string>');
    assert.equal(types.get('tokenizer.ggml.add_bos_token'), 'bool');
    const written = toMap(entries);
    const expected = ggufFromTokenizerJson(dir, pre);
    for (const key of ['tokenizer.ggml.model', 'tokenizer.ggml.pre', 'tokenizer.ggml.tokens', 'tokenizer.ggml.token_type',
      'tokenizer.ggml.merges', 'tokenizer.ggml.eos_token_id', 'tokenizer.ggml.bos_token_id', 'tokenizer.chat_template']) {
      assert.deepEqual(written.get(key), expected.get(key), `${dir}: ${key}`);
    }
    const back = tokenizerFromGguf(written, `${dir}.gguf`);
    assert.deepEqual(back.eosIds, tok.eosIds);
    assert.equal(back.addBos, tok.addBos);
    for (const text of TEXTS) assert.deepEqual(back.encodePrompt(text), tok.encodePrompt(text), `${dir}: ${JSON.stringify(text)}`);
  }
  assert.equal(toMap(ggufTokenizerMetadata(hf(LLAMA3))).get('tokenizer.ggml.eot_token_id'), 128009);
  // SentencePiece: the GGUF vocabulary, and llama2.c's tokenizer.bin (" " → "▁", BOS/EOS spelled <s>/</s>).
  const spm = tokenizerFromGguf(llama2GgufMetadata(), LLAMA2_GGUF);
  const fromSpm = toMap(ggufTokenizerMetadata(spm));
  const fromBin = toMap(ggufTokenizerMetadata(Tokenizer.fromBytes(readShared(LLAMA2_BIN), LLAMA2_BIN)));
  for (const key of ['tokenizer.ggml.model', 'tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type',
    'tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id', 'tokenizer.ggml.unknown_token_id']) {
    const original = llama2GgufMetadata().get(key);
    assert.deepEqual(fromSpm.get(key), original, `GGUF → entries: ${key}`);
    assert.deepEqual(fromBin.get(key), original, `tokenizer.bin → entries: ${key}`);
  }
  const back = tokenizerFromGguf(fromBin, 'from-tokenizer-bin.gguf');
  for (const c of spmVectors()) assert.deepEqual(back.encode(c.text, { specialTokens: false }), c.ids);
});

// ---------------------------------------------------------------------------------------------------------------------
// 4. Chat templates

// Hand-checked against the templates, and identical to Python Jinja2 3.1.6 rendering them as transformers does
// (trim_blocks, lstrip_blocks).
const QWEN_RENDERINGS = {
  user: '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
  system: '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
  noThinking: '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
  multi: '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n',
  reasoning: '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\nhmm\n</think>\n\nHello!<|im_end|>\n',
};
const LLAMA3_RENDERINGS = {
  user: '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
  system: '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
};
const HI: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
const SYSTEM_HI: ChatMessage[] = [{ role: 'system', content: 'You are terse.' }, ...HI];

test('Qwen3 chat template: user, system, enable_thinking, multi-turn, reasoning; prompt ids without BOS', { skip: skipHf }, () => {
  const tok = hf(QWEN);
  const render = (messages: ChatMessage[], addGenerationPrompt = true, variables?: Record<string, unknown>): string =>
    renderChat(tok.chatTemplate!, messages, { addGenerationPrompt, specialTokenStrings: tok.specialTokenStrings, source: tok.source, variables });
  assert.equal(render(HI), QWEN_RENDERINGS.user);
  assert.equal(render(SYSTEM_HI), QWEN_RENDERINGS.system);
  assert.equal(render(HI, true, { enable_thinking: false }), QWEN_RENDERINGS.noThinking);
  assert.equal(render(HI, true, { enable_thinking: true }), QWEN_RENDERINGS.user);
  assert.equal(render([...HI, { role: 'assistant', content: 'Hello!' }, { role: 'user', content: '2+2?' }]), QWEN_RENDERINGS.multi);
  assert.equal(render([...HI, { role: 'assistant', content: '<think>\nhmm\n</think>\n\nHello!' }], false), QWEN_RENDERINGS.reasoning);
  assert.equal(render(HI, false), '<|im_start|>user\nHi<|im_end|>\n');
  const ids = chatPromptIds(tok, HI);
  assert.deepEqual(ids, [151644, ...idsOf(tok, ['user', 'Ċ', 'Hi']), 151645, ...idsOf(tok, ['Ċ']), 151644, ...idsOf(tok, ['assistant', 'Ċ'])]);
  assert.ok(!ids.includes(151643), 'no BOS (<|endoftext|>) for Qwen');
  assert.equal(tok.decode(ids), QWEN_RENDERINGS.user);
});

test('Llama 3 chat template: user and system; prompt ids start with exactly one <|begin_of_text|>', { skip: skipHf }, () => {
  const tok = hf(LLAMA3);
  const render = (messages: ChatMessage[]): string =>
    renderChat(tok.chatTemplate!, messages, { addGenerationPrompt: true, specialTokenStrings: tok.specialTokenStrings, source: tok.source });
  assert.equal(render(HI), LLAMA3_RENDERINGS.user);
  assert.equal(render(SYSTEM_HI), LLAMA3_RENDERINGS.system);
  const ids = chatPromptIds(tok, HI);
  assert.equal(ids[0], 128000);
  assert.equal(ids.filter((id) => id === 128000).length, 1);
  assert.deepEqual(ids, [128000, 128006, ...idsOf(tok, ['user']), 128007, ...idsOf(tok, ['ĊĊ', 'Hi']), 128009, 128006,
    ...idsOf(tok, ['assistant']), 128007, ...idsOf(tok, ['ĊĊ'])]);
  assert.equal(tok.decode(ids), LLAMA3_RENDERINGS.user);
  // The same through a GGUF vocabulary carrying the template.
  const gguf = tokenizerFromGguf(ggufFromTokenizerJson(LLAMA3, 'llama-bpe'), 'llama3.gguf');
  assert.deepEqual(chatPromptIds(gguf, HI), ids);
});

test('a Llama-2 style template through the GGUF SentencePiece vocabulary: one BOS, from the text', { skip: skipSpmGguf }, () => {
  const tok = tokenizerFromGguf(llama2GgufMetadata(), LLAMA2_GGUF);
  const template = "{% for m in messages %}{{ bos_token + '[INST] ' + m.content + ' [/INST]' }}{% endfor %}";
  const ids = chatPromptIds(tok, HI, { template });
  assert.equal(ids[0], 1);
  assert.equal(ids.filter((id) => id === 1).length, 1, 'the template writes BOS; encoding adds none');
  assert.deepEqual(ids.slice(1), tok.encode('[INST] Hi [/INST]', { specialTokens: false }));
});

test('chat templates that raise or do not parse are RemaxInputErrors naming the source', () => {
  const opts = { addGenerationPrompt: true, specialTokenStrings: { bos_token: '<s>' }, source: 'GGUF tokenizer.chat_template' };
  const raising = "{% if messages[0].role != 'system' %}{{ raise_exception('Conversations must start with a system message') }}{% endif %}";
  throwsInput(() => renderChat(raising, HI, opts), 'GGUF tokenizer.chat_template', 'Conversations must start with a system message');
  assert.equal(renderChat(raising + '{{ bos_token }}ok', SYSTEM_HI, opts), '<s>ok');
  throwsInput(() => renderChat('{% for m in messages %}{{ m.content }', HI, opts), 'GGUF tokenizer.chat_template', 'does not parse');
  throwsInput(() => renderChat('{% if %}{% endif %}', HI, { ...opts, source: 'x/tokenizer_config.json' }), 'x/tokenizer_config.json');
  throwsInput(() => renderChat('{{ x }}', [{ role: 'user' } as unknown as ChatMessage], opts), 'messages[0]');
  // A tokenizer without a template.
  throwsInput(() => chatPromptIds(syntheticTokenizer(), HI), 'synthetic.bin', 'no chat template');
  // add_generation_prompt reaches the template.
  assert.equal(renderChat('{{ "A" if add_generation_prompt else "B" }}', HI, { ...opts, addGenerationPrompt: false }), 'B');
});

// ---------------------------------------------------------------------------------------------------------------------
// 5. Bad input

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const TINY_BPE = {
  model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2, '<s>': 3 }, merges: ['a b'] },
  added_tokens: [{ id: 3, content: '<s>', special: true }],
};

test('bad tokenizer.json / tokenizer_config.json: RemaxInputErrors naming the file and the field', () => {
  const opts = { source: 'model/tokenizer.json' };
  throwsInput(() => tokenizerFromHfFiles(utf8('{"model": '), undefined, opts), 'model/tokenizer.json', 'not valid JSON');
  throwsInput(() => tokenizerFromHfFiles(utf8(''), undefined, opts), 'model/tokenizer.json', 'empty');
  throwsInput(() => tokenizerFromHfFiles(new Uint8Array([0xff, 0xfe, 0x00]), undefined, opts), 'model/tokenizer.json', 'not UTF-8');
  throwsInput(() => tokenizerFromHfFiles(utf8('{"added_tokens": []}'), undefined, opts), 'model/tokenizer.json', '"model"');
  throwsInput(() => tokenizerFromHfFiles(utf8('[1, 2]'), undefined, opts), 'model/tokenizer.json', 'a list');
  throwsInput(() => tokenizerFromHfFiles(utf8('{"model": {"type": "BPE", "vocab": {}}}'), undefined, opts), 'merges');
  throwsInput(() => HfTokenizer.fromJson({ ...TINY_BPE, normalizer: { type: 'NoSuchNormalizer' } }, undefined, opts),
    'model/tokenizer.json', 'NoSuchNormalizer');
  throwsInput(() => HfTokenizer.fromJson({ ...TINY_BPE, added_tokens: [{ content: 'x' }] }, undefined, opts), 'added_tokens[0]');
  throwsInput(() => tokenizerFromHfFiles(JSON.stringify(TINY_BPE), '{"bos_token": "<|nope|>"}', opts),
    'model/tokenizer_config.json', 'bos_token', '<|nope|>');
  throwsInput(() => tokenizerFromHfFiles(JSON.stringify(TINY_BPE), '{"bos_token": 7}', opts), 'model/tokenizer_config.json', 'bos_token');
  throwsInput(() => tokenizerFromHfFiles(JSON.stringify(TINY_BPE), 'nope', opts), 'model/tokenizer_config.json', 'not valid JSON');
  throwsInput(() => tokenizerFromHfFiles(JSON.stringify(TINY_BPE), '{"add_bos_token": true}', opts), 'add_bos_token', 'no bos_token');
  throwsInput(() => tokenizerFromHfFiles(JSON.stringify(TINY_BPE), undefined, { ...opts, extraEosIds: [99] }), 'eos', '99');
  // A good tiny one: bos_token as {content}, add_bos_token from the class rule, a named-template list.
  const tok = tokenizerFromHfFiles(JSON.stringify(TINY_BPE), JSON.stringify({
    bos_token: { content: '<s>' }, tokenizer_class: 'LlamaTokenizerFast',
    chat_template: [{ name: 'tool_use', template: 'T' }, { name: 'default', template: 'D' }],
  }), opts);
  assert.equal(tok.bosId, 3);
  assert.equal(tok.addBos, true);
  assert.equal(tok.chatTemplate, 'D');
  assert.deepEqual(tok.encodePrompt('ab'), [3, 2]);
  assert.equal(tok.decode([]), '');
});

test('bad GGUF vocabularies: RemaxInputErrors naming the file, the key and the value', { skip: skipHf }, () => {
  const base = syntheticSpmMetadata();
  const withKey = (m: Map<string, unknown>, key: string, value: unknown): Map<string, unknown> => new Map([...m, [key, value]]);
  throwsInput(() => tokenizerFromGguf(withKey(base, 'tokenizer.ggml.model', 'bert'), 'bad.gguf'),
    'bad.gguf', 'tokenizer.ggml.model', '"bert"', 'llama', 'gpt2');
  const noModel = new Map(base);
  noModel.delete('tokenizer.ggml.model');
  assert.equal(ggufHasTokenizer(noModel), false);
  throwsInput(() => tokenizerFromGguf(noModel, 'bare.gguf'), 'bare.gguf', 'tokenizer.ggml.model');
  throwsInput(() => tokenizerFromGguf(withKey(base, 'tokenizer.ggml.scores', [0, 0, 0]), 'bad.gguf'),
    'bad.gguf', 'tokenizer.ggml.scores', '3 entries', '265', 'tokenizer.ggml.tokens');
  throwsInput(() => tokenizerFromGguf(withKey(base, 'tokenizer.ggml.token_type', [1, 1]), 'bad.gguf'),
    'bad.gguf', 'tokenizer.ggml.token_type', '2 entries');
  throwsInput(() => tokenizerFromGguf(withKey(base, 'tokenizer.ggml.bos_token_id', 40000), 'bad.gguf'),
    'bad.gguf', 'tokenizer.ggml.bos_token_id', '40000', 'outside the vocabulary');
  throwsInput(() => tokenizerFromGguf(withKey(base, 'tokenizer.ggml.eos_token_id', 'two'), 'bad.gguf'), 'tokenizer.ggml.eos_token_id', 'integer');
  throwsInput(() => tokenizerFromGguf(withKey(base, 'tokenizer.ggml.tokens', 'abc'), 'bad.gguf'), 'tokenizer.ggml.tokens', 'array');
  const nanScores = Float32Array.from({ length: 265 }, () => 0);
  nanScores[7] = NaN;
  throwsInput(() => tokenizerFromGguf(withKey(base, 'tokenizer.ggml.scores', nanScores), 'bad.gguf'), 'tokenizer.ggml.scores[7]', 'NaN');

  const qwen = ggufFromTokenizerJson(QWEN, 'qwen2');
  throwsInput(() => tokenizerFromGguf(withKey(qwen, 'tokenizer.ggml.pre', 'deepseek-llm'), 'qwen.gguf'),
    'qwen.gguf', 'tokenizer.ggml.pre', '"deepseek-llm"', 'qwen2', 'llama-bpe', 'gpt-2');
  throwsInput(() => tokenizerFromGguf(withKey(qwen, 'tokenizer.ggml.token_type', [1, 2, 3]), 'qwen.gguf'),
    'qwen.gguf', 'tokenizer.ggml.token_type', '3 entries', '151669');
  throwsInput(() => tokenizerFromGguf(withKey(qwen, 'tokenizer.ggml.bos_token_id', 151669), 'qwen.gguf'),
    'qwen.gguf', 'tokenizer.ggml.bos_token_id', '151669');
  throwsInput(() => tokenizerFromGguf(withKey(qwen, 'tokenizer.ggml.merges', ['Ġ Ġ', 'nospace']), 'qwen.gguf'),
    'tokenizer.ggml.merges[1]', 'nospace');
  throwsInput(() => tokenizerFromGguf(withKey(qwen, 'tokenizer.ggml.add_bos_token', true), 'qwen.gguf'),
    'tokenizer.ggml.add_bos_token', 'bos_token_id');
  // Neither a SentencePiece nor a byte-level BPE tokenizer: no GGUF form.
  throwsInput(() => ggufTokenizerMetadata(HfTokenizer.fromJson(TINY_BPE, undefined, { source: 'tiny/tokenizer.json' })),
    'tiny/tokenizer.json', 'cannot be written as a GGUF vocabulary');
});

// ---------------------------------------------------------------------------------------------------------------------
// 6. Tokenizer against the model's embedding

test('checkTokenizerFitsModel: a larger tokenizer is an error naming both sizes, a smaller one (padded rows) fits', { skip: skipHf }, () => {
  const qwen = hf(QWEN);
  checkTokenizerFitsModel(qwen, 151680, 'qwen2-tiny/config.json'); // 151,669 tokens, 151,680 rows: fine
  checkTokenizerFitsModel(qwen, 151669, 'qwen2-tiny/config.json');
  throwsInput(() => checkTokenizerFitsModel(qwen, 151000, 'qwen2-tiny/config.json'),
    'qwen2-tiny/tokenizer.json', '151669', '151000', 'qwen2-tiny/config.json');
  throwsInput(() => checkTokenizerFitsModel(hf(LLAMA3), 32000, 'llama-2.gguf'), '128256', '32000', 'llama-2.gguf');
  throwsInput(() => checkTokenizerFitsModel(qwen, 0, 'empty.gguf'), 'empty.gguf', 'vocabulary size 0');
  const small = syntheticTokenizer();
  checkTokenizerFitsModel(small, 512, 'stories260K.bin');
  throwsInput(() => checkTokenizerFitsModel(small, 100, 'tiny.bin'), 'synthetic.bin', '259', '100', 'tiny.bin');
});
