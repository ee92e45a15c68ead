/**
 * The vocabulary inside a GGUF file (llama.cpp's `tokenizer.ggml.*` keys) as a TextTokenizer, and back: the keys that
 * describe a tokenizer, so a model can be written to GGUF with its vocabulary. Portable: metadata in, metadata out.
 *
 * `tokenizer.ggml.model`:
 * - `llama`: SentencePiece BPE (tokens, scores, token_type) → SentencePieceTokenizer (sentencepiece.ts).
 * - `gpt2`: byte-level BPE (tokens, merges, token_type; `tokenizer.ggml.pre` picks the pre-tokenizer regex) → a
 *   tokenizer.json-shaped object run by @huggingface/tokenizers (HfTokenizer), so there is one BPE implementation.
 *   The regexes are those of the models' own tokenizer.json files (Hugging Face's syntax; llama.cpp keeps the same
 *   ones, rewritten for its regex engine). `default` uses GPT-2's regex. For `qwen2` the NFC normalizer of Qwen's
 *   tokenizer.json is applied too (llama.cpp leaves it out), so a GGUF Qwen tokenizes exactly as the original.
 */
import { RemaxInputError, requireInput } from '../errors';
import type { GgufMetaType, GgufValue } from '../formats/gguf';
import { CHAT_END_TOKENS } from './common';
import { HfTokenizer } from './hf-tokenizer';
import { Tokenizer as Llama2cTokenizer } from './llama2c';
import { SentencePieceTokenizer, SPACE_SYMBOL, TOKEN_TYPE, type SentencePieceVocabulary } from './sentencepiece';
import type { TextTokenizer } from './types';

/** Pre-tokenizer regexes by `tokenizer.ggml.pre` value (as the models' tokenizer.json files spell them). */
const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const LLAMA3_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

interface PreTokenizerSpec {
  regex: string;
  /** A pre-token that is a whole vocabulary entry is not split by merges (Llama 3's tokenizer.json, llama.cpp). */
  ignoreMerges: boolean;
  nfc: boolean;
  addBos: boolean;
}
const PRE_TOKENIZERS: Record<string, PreTokenizerSpec> = {
  default: { regex: GPT2_REGEX, ignoreMerges: false, nfc: false, addBos: false },
  'gpt-2': { regex: GPT2_REGEX, ignoreMerges: false, nfc: false, addBos: false },
  'llama-bpe': { regex: LLAMA3_REGEX, ignoreMerges: true, nfc: false, addBos: true },
  qwen2: { regex: QWEN2_REGEX, ignoreMerges: false, nfc: true, addBos: false },
};
const SUPPORTED_PRE = Object.keys(PRE_TOKENIZERS).join(', ');
const SUPPORTED_MODELS = 'llama (SentencePiece BPE), gpt2 (byte-level BPE)';

/** One metadata entry to write, with its GGUF type (the types serializeGguf in formats/gguf.ts takes). */
export interface GgufMetadataEntry {
  key: string;
  type: GgufMetaType;
  value: GgufValue;
}

// ---------------------------------------------------------------------------------------------------------------------
// Reading

/** Reads typed values out of the metadata map; every error names the file and the key. */
class MetadataReader {
  constructor(
    private readonly metadata: Map<string, unknown>,
    readonly source: string,
  ) {}

  has(key: string): boolean {
    return this.raw(key) !== undefined;
  }

  /** The value, unwrapped from a {type, value} record if the map stores those. */
  raw(key: string): unknown {
    const v = this.metadata.get(key);
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v) && 'value' in v && 'type' in v) {
      return (v as { value: unknown }).value;
    }
    return v;
  }

  private fail(key: string, message: string): never {
    throw new RemaxInputError(`${this.source}: metadata ${key} ${message}`);
  }

  string(key: string): string | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') this.fail(key, `is ${describe(v)}, expected a string`);
    return v;
  }

  bool(key: string): boolean | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') this.fail(key, `is ${describe(v)}, expected a bool`);
    return v;
  }

  integer(key: string): number | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) this.fail(key, `is ${describe(v)}, expected an integer`);
    return n;
  }

  /** A token id: an integer in 0 … vocabSize − 1. */
  tokenId(key: string, vocabSize: number, tokensKey: string): number | undefined {
    const id = this.integer(key);
    if (id === undefined) return undefined;
    if (id < 0 || id >= vocabSize) {
      this.fail(key, `= ${id} is outside the vocabulary (${vocabSize} tokens in ${tokensKey}); the file is inconsistent, ` +
        `convert the model again`);
    }
    return id;
  }

  strings(key: string): string[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) this.fail(key, `is ${describe(v)}, expected an array of strings`);
    for (let i = 0; i < v.length; i++) if (typeof v[i] !== 'string') this.fail(key, `[${i}] is ${describe(v[i])}, expected a string`);
    return v as string[];
  }

  numbers(key: string): ArrayLike<number> | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      const a = v as unknown as ArrayLike<number | bigint>;
      return typeof a[0] === 'bigint' ? Array.from(a, Number) : (a as ArrayLike<number>);
    }
    if (!Array.isArray(v)) this.fail(key, `is ${describe(v)}, expected an array of numbers`);
    const out = new Array<number>(v.length);
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      const n = typeof x === 'bigint' ? Number(x) : x;
      if (typeof n !== 'number') this.fail(key, `[${i}] is ${describe(x)}, expected a number`);
      out[i] = n;
    }
    return out;
  }

  requireLength(key: string, values: ArrayLike<unknown> | undefined, n: number, tokensKey: string): void {
    if (values !== undefined && values.length !== n) {
      this.fail(key, `has ${values.length} entries but ${tokensKey} has ${n}: the arrays must be the same length ` +
        `(one per token); the file is inconsistent, convert the model again`);
    }
  }
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.slice(0, 40))}`;
  if (v === null) return 'null';
  return `${typeof v} ${String(v).slice(0, 40)}`;
}

/** Whether the metadata carries a vocabulary (tokenizer.ggml.model); many small test files carry none. */
export function ggufHasTokenizer(metadata: Map<string, unknown>): boolean {
  return new MetadataReader(metadata, '').has('tokenizer.ggml.model');
}

/**
 * The tokenizer in a GGUF file's metadata (as parseGguf returns it; values may also be {type, value} records, and
 * arrays typed arrays). `source` (the file) is named in every error, with the key. Defaults as llama.cpp: `llama`
 * BOS 1, EOS 2, UNK 0 when the keys are absent, add_bos_token true; `gpt2` add_bos_token false except for
 * `llama-bpe`. tokenizer.ggml.eot_token_id ends turns too (eosIds).
 */
export function tokenizerFromGguf(metadata: Map<string, unknown>, source: string): TextTokenizer {
  requireInput(metadata instanceof Map, `${source}: expected the GGUF metadata as a Map`);
  const r = new MetadataReader(metadata, source);
  const model = r.string('tokenizer.ggml.model');
  requireInput(
    model !== undefined,
    `${source} has no metadata tokenizer.ggml.model: the file carries no vocabulary; pass a tokenizer with the model ` +
      `(a tokenizer.json or tokenizer.bin)`,
  );
  if (model === 'llama') return sentencePieceFromGguf(r);
  if (model === 'gpt2') return byteLevelBpeFromGguf(r);
  throw new RemaxInputError(
    `${source}: metadata tokenizer.ggml.model = ${JSON.stringify(model)} is not supported; supported: ${SUPPORTED_MODELS}`,
  );
}

const TOKENS = 'tokenizer.ggml.tokens';

function readTokens(r: MetadataReader): string[] {
  const tokens = r.strings(TOKENS);
  requireInput(tokens !== undefined && tokens.length > 0,
    `${r.source}: metadata ${TOKENS} is ${tokens === undefined ? 'missing' : 'empty'}: the vocabulary's tokens are needed`);
  return tokens;
}

function readTypes(r: MetadataReader, n: number): ArrayLike<number> | undefined {
  const types = r.numbers('tokenizer.ggml.token_type');
  r.requireLength('tokenizer.ggml.token_type', types, n, TOKENS);
  if (types !== undefined) {
    for (let i = 0; i < n; i++) {
      const t = types[i]!;
      requireInput(Number.isInteger(t) && t >= 0 && t <= 6,
        `${r.source}: metadata tokenizer.ggml.token_type[${i}] = ${t} is not a token type (0–6)`);
    }
  }
  return types;
}

function sentencePieceFromGguf(r: MetadataReader): SentencePieceTokenizer {
  const pieces = readTokens(r);
  const n = pieces.length;
  const scores = r.numbers('tokenizer.ggml.scores');
  requireInput(scores !== undefined,
    `${r.source}: metadata tokenizer.ggml.scores is missing: a llama (SentencePiece) vocabulary merges by score`);
  r.requireLength('tokenizer.ggml.scores', scores, n, TOKENS);
  for (let i = 0; i < n; i++) {
    requireInput(!Number.isNaN(scores[i]), `${r.source}: metadata tokenizer.ggml.scores[${i}] is NaN; the file is corrupt`);
  }
  const given = readTypes(r, n);
  const id = (key: string, fallback: number | null): number | null => {
    const v = r.tokenId(`tokenizer.ggml.${key}`, n, TOKENS);
    return v !== undefined ? v : fallback !== null && fallback < n ? fallback : null;
  };
  const bosId = id('bos_token_id', 1);
  const eosId = id('eos_token_id', 2);
  const unkId = id('unknown_token_id', 0);
  const padId = id('padding_token_id', null);
  const eotId = id('eot_token_id', null);
  let types: ArrayLike<number>;
  if (given !== undefined) {
    types = given;
  } else {
    // Without token types: byte pieces by their spelling, BOS/EOS control, UNK unknown, the rest normal.
    const t = new Int32Array(n).fill(TOKEN_TYPE.normal);
    pieces.forEach((p, i) => { if (/^<0x[0-9A-F]{2}>$/.test(p)) t[i] = TOKEN_TYPE.byte; });
    for (const s of [bosId, eosId, eotId]) if (s !== null) t[s] = TOKEN_TYPE.control;
    if (unkId !== null) t[unkId] = TOKEN_TYPE.unknown;
    types = t;
  }
  const addBos = r.bool('tokenizer.ggml.add_bos_token') ?? true;
  requireInput(!addBos || bosId !== null,
    `${r.source}: metadata tokenizer.ggml.add_bos_token is true but there is no tokenizer.ggml.bos_token_id`);
  const vocabulary: SentencePieceVocabulary = {
    pieces, scores, types, bosId, eosId, unkId, padId,
    extraEosIds: eotId === null ? [] : [eotId],
    addBos,
    addEos: r.bool('tokenizer.ggml.add_eos_token') ?? false,
    addSpacePrefix: r.bool('tokenizer.ggml.add_space_prefix') ?? true,
    chatTemplate: r.string('tokenizer.chat_template'),
  };
  return new SentencePieceTokenizer(vocabulary, r.source, 'GGUF llama vocabulary (SentencePiece BPE)');
}

function byteLevelBpeFromGguf(r: MetadataReader): HfTokenizer {
  const pre = r.string('tokenizer.ggml.pre') ?? 'default';
  const spec = PRE_TOKENIZERS[pre];
  requireInput(spec !== undefined,
    `${r.source}: metadata tokenizer.ggml.pre = ${JSON.stringify(pre)} is not a supported pre-tokenizer; supported: ${SUPPORTED_PRE}`);
  const tokens = readTokens(r);
  const n = tokens.length;
  const merges = r.strings('tokenizer.ggml.merges');
  requireInput(merges !== undefined,
    `${r.source}: metadata tokenizer.ggml.merges is missing: a gpt2 (byte-level BPE) vocabulary needs its merges`);
  merges.forEach((m, i) => requireInput(/^[^ ]+ [^ ]+$/.test(m),
    `${r.source}: metadata tokenizer.ggml.merges[${i}] = ${JSON.stringify(m.slice(0, 40))} is not two tokens separated by one space`));
  const types = readTypes(r, n);
  const bosId = r.tokenId('tokenizer.ggml.bos_token_id', n, TOKENS) ?? null;
  const eosId = r.tokenId('tokenizer.ggml.eos_token_id', n, TOKENS) ?? null;
  const unkId = r.tokenId('tokenizer.ggml.unknown_token_id', n, TOKENS) ?? null;
  const padId = r.tokenId('tokenizer.ggml.padding_token_id', n, TOKENS) ?? null;
  const eotId = r.tokenId('tokenizer.ggml.eot_token_id', n, TOKENS) ?? null;
  const addBos = r.bool('tokenizer.ggml.add_bos_token') ?? spec.addBos;
  requireInput(!addBos || bosId !== null,
    `${r.source}: metadata tokenizer.ggml.add_bos_token is ` +
      `${r.has('tokenizer.ggml.add_bos_token') ? 'true' : `absent (true by default for pre ${pre})`} ` +
      `but there is no tokenizer.ggml.bos_token_id`);

  const vocab: Record<string, number> = Object.create(null);
  for (let i = 0; i < n; i++) if (!(tokens[i]! in vocab)) vocab[tokens[i]!] = i;
  const special = new Set<number>();
  if (types === undefined) for (const s of [bosId, eosId, eotId]) if (s !== null) special.add(s);
  const addedTokens: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const t = types?.[i];
    const isControl = t === TOKEN_TYPE.control || special.has(i);
    if (isControl || t === TOKEN_TYPE.userDefined) {
      addedTokens.push({
        id: i, content: tokens[i], single_word: false, lstrip: false, rstrip: false, normalized: false, special: isControl,
      });
    }
  }
  const json = {
    version: '1.0',
    added_tokens: addedTokens,
    normalizer: spec.nfc ? { type: 'NFC' } : null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: spec.regex }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: spec.ignoreMerges, vocab, merges,
    },
  };
  const name = (id: number | null): string | undefined => (id === null ? undefined : tokens[id]);
  const config = {
    bos_token: name(bosId) ?? null, eos_token: name(eosId) ?? null, pad_token: name(padId) ?? null, unk_token: name(unkId) ?? null,
    clean_up_tokenization_spaces: false,
  };
  return HfTokenizer.fromJson(json, config, {
    source: r.source,
    configSource: r.source,
    extraEosIds: eotId === null ? [] : [eotId],
    chatTemplate: r.string('tokenizer.chat_template'),
    addBos,
    description: `GGUF gpt2 vocabulary (byte-level BPE, pre ${pre})`,
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// Writing

/**
 * The tokenizer.ggml.* entries (and tokenizer.chat_template) that describe `tokenizer` in a GGUF file, with their
 * GGUF types: add each to serializeGguf's maps (metadata.set(key, value), types.set(key, type)). Supported:
 * SentencePiece tokenizers (a GGUF `llama` vocabulary, llama2.c's tokenizer.bin) → `llama`; tokenizer.json files with
 * a byte-level BPE whose pre-tokenizer llama.cpp names (GPT-2's, Llama 3's, Qwen2's) → `gpt2`. Anything else is a
 * RemaxInputError naming the tokenizer.
 */
export function ggufTokenizerMetadata(tokenizer: TextTokenizer): GgufMetadataEntry[] {
  if (tokenizer instanceof SentencePieceTokenizer) return sentencePieceEntries(tokenizer.vocabulary);
  if (tokenizer instanceof Llama2cTokenizer) return sentencePieceEntries(llama2cVocabulary(tokenizer));
  if (tokenizer instanceof HfTokenizer) return byteLevelBpeEntries(tokenizer);
  throw new RemaxInputError(
    `tokenizer ${tokenizer.source} (${tokenizer.description}) cannot be written as a GGUF vocabulary; ` +
      `supported: SentencePiece (llama) and byte-level BPE (gpt2) tokenizers`,
  );
}

/** llama2.c's tokenizer.bin as a GGUF `llama` vocabulary: " " → "▁", BOS/EOS spelled "<s>"/"</s>", byte pieces typed. */
function llama2cVocabulary(tok: Llama2cTokenizer): SentencePieceVocabulary {
  const n = tok.vocabSize;
  const pieces: string[] = [];
  const scores = new Float32Array(n);
  const types = new Int32Array(n);
  for (let id = 0; id < n; id++) {
    const p = tok.piece(id);
    scores[id] = tok.score(id);
    if (id === 1 && p === '\n<s>\n') { pieces.push('<s>'); types[id] = TOKEN_TYPE.control; continue; }
    if (id === 2 && p === '\n</s>\n') { pieces.push('</s>'); types[id] = TOKEN_TYPE.control; continue; }
    pieces.push(/^<0x[0-9A-Fa-f]{2}>$/.test(p) ? p.toUpperCase().replace('0X', '0x') : p.replaceAll(' ', SPACE_SYMBOL));
    types[id] = /^<0x[0-9A-Fa-f]{2}>$/.test(p) ? TOKEN_TYPE.byte : id === 0 && p === '<unk>' ? TOKEN_TYPE.unknown : TOKEN_TYPE.normal;
  }
  return {
    pieces, scores, types, bosId: 1, eosId: 2, unkId: types[0] === TOKEN_TYPE.unknown ? 0 : null, padId: null,
    addBos: true, addEos: false, addSpacePrefix: true,
  };
}

function sentencePieceEntries(v: SentencePieceVocabulary): GgufMetadataEntry[] {
  const out: GgufMetadataEntry[] = [
    { key: 'tokenizer.ggml.model', type: 'string', value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: 'array<string>', value: [...v.pieces] },
    { key: 'tokenizer.ggml.scores', type: 'array<f32>', value: Array.from(v.scores) },
    { key: 'tokenizer.ggml.token_type', type: 'array<i32>', value: Array.from(v.types) },
  ];
  pushIds(out, { bos: v.bosId, eos: v.eosId, unk: v.unkId, pad: v.padId, eot: v.extraEosIds?.[0] ?? null });
  out.push({ key: 'tokenizer.ggml.add_bos_token', type: 'bool', value: v.addBos });
  out.push({ key: 'tokenizer.ggml.add_eos_token', type: 'bool', value: v.addEos });
  if (!v.addSpacePrefix) out.push({ key: 'tokenizer.ggml.add_space_prefix', type: 'bool', value: false });
  if (v.chatTemplate !== undefined) out.push({ key: 'tokenizer.chat_template', type: 'string', value: v.chatTemplate });
  return out;
}

function pushIds(out: GgufMetadataEntry[], ids: Record<'bos' | 'eos' | 'unk' | 'pad' | 'eot', number | null>): void {
  const keys = { bos: 'bos_token_id', eos: 'eos_token_id', unk: 'unknown_token_id', pad: 'padding_token_id', eot: 'eot_token_id' };
  for (const k of ['bos', 'eos', 'unk', 'pad', 'eot'] as const) {
    const id = ids[k];
    if (id !== null) out.push({ key: `tokenizer.ggml.${keys[k]}`, type: 'u32', value: id });
  }
}

const asObject = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

function byteLevelBpeEntries(tok: HfTokenizer): GgufMetadataEntry[] {
  const cannot = (why: string): never => {
    throw new RemaxInputError(
      `tokenizer ${tok.source} (${tok.description}) cannot be written as a GGUF vocabulary: ${why}; ` +
        `supported: byte-level BPE with the pre-tokenizer of GPT-2, Llama 3 (llama-bpe) or Qwen2 (${SUPPORTED_PRE})`,
    );
  };
  const model = asObject(tok.json.model);
  if (model.type !== 'BPE') cannot(`its model is ${String(model.type)}, not BPE`);
  if (model.byte_fallback === true) cannot('its BPE uses byte fallback');
  if (asObject(tok.json.decoder).type !== 'ByteLevel') cannot('its decoder is not ByteLevel');
  const pre = asObject(tok.json.pre_tokenizer);
  let regex: string | undefined;
  if (pre.type === 'ByteLevel' && pre.use_regex !== false && pre.add_prefix_space !== true) {
    regex = GPT2_REGEX;
  } else if (pre.type === 'Sequence' && Array.isArray(pre.pretokenizers) && pre.pretokenizers.length === 2) {
    const [split, bytes] = pre.pretokenizers.map(asObject) as [Record<string, unknown>, Record<string, unknown>];
    if (split.type === 'Split' && split.behavior === 'Isolated' && split.invert === false &&
        bytes.type === 'ByteLevel' && bytes.use_regex === false && bytes.add_prefix_space !== true) {
      regex = asObject(split.pattern).Regex as string | undefined;
    }
  }
  const preName = ['gpt-2', 'llama-bpe', 'qwen2'].find((name) => PRE_TOKENIZERS[name]!.regex === regex);
  if (preName === undefined) cannot('its pre-tokenizer regex is not one llama.cpp names');
  const spec = PRE_TOKENIZERS[preName!]!;
  const normalizer = asObject(tok.json.normalizer).type;
  if (normalizer !== undefined && !(normalizer === 'NFC' && spec.nfc)) {
    cannot(`its normalizer ${String(normalizer)} has no GGUF equivalent for pre ${preName}`);
  }
  if ((model.ignore_merges === true) !== spec.ignoreMerges) {
    cannot(`ignore_merges ${String(model.ignore_merges)} differs from pre ${preName}'s`);
  }

  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < tok.vocabSize; id++) {
    const text = tok.tokenString(id);
    if (text === undefined) { tokens.push(`[PAD${id}]`); types.push(TOKEN_TYPE.unused); continue; }
    tokens.push(text);
    types.push(TOKEN_TYPE.normal);
  }
  for (const t of (tok.json.added_tokens as { id: number; special?: boolean }[])) {
    types[t.id] = t.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
  }
  const merges = (model.merges as (string | [string, string])[]).map((m) => (Array.isArray(m) ? `${m[0]} ${m[1]}` : m));
  const idOf = (text: string | undefined): number | null => (text === undefined ? null : tok.tokenToId(text) ?? null);
  const eos = idOf(tok.specialTokenStrings.eos_token);
  // A turn end (not a text end) other than EOS is llama.cpp's EOT.
  const turnEnds = ['<|eot_id|>', '<|im_end|>', '<end_of_turn>'].filter((t) => CHAT_END_TOKENS.includes(t));
  const eot = tok.eosIds.find((id) => id !== eos && turnEnds.includes(tokens[id]!)) ?? null;

  const out: GgufMetadataEntry[] = [
    { key: 'tokenizer.ggml.model', type: 'string', value: 'gpt2' },
    { key: 'tokenizer.ggml.pre', type: 'string', value: preName! },
    { key: 'tokenizer.ggml.tokens', type: 'array<string>', value: tokens },
    { key: 'tokenizer.ggml.token_type', type: 'array<i32>', value: types },
    { key: 'tokenizer.ggml.merges', type: 'array<string>', value: merges },
  ];
  pushIds(out, {
    bos: tok.bosId, eos, unk: idOf(tok.specialTokenStrings.unk_token), pad: idOf(tok.specialTokenStrings.pad_token), eot,
  });
  out.push({ key: 'tokenizer.ggml.add_bos_token', type: 'bool', value: tok.addBos });
  if (tok.chatTemplate !== undefined) out.push({ key: 'tokenizer.chat_template', type: 'string', value: tok.chatTemplate });
  return out;
}
