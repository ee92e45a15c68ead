/**
 * A SentencePiece vocabulary (llama2.c's tokenizer.bin, a GGUF `llama` vocabulary) written as the Hugging Face files
 * transformers' LlamaTokenizerFast loads: tokenizer.json, tokenizer_config.json and special_tokens_map.json, which
 * tokenize as the original does. Portable: no Node APIs; bytes out.
 *
 * The tokenizer.json follows transformers' LlamaConverter (convert_slow_tokenizer.py, legacy mode):
 * - model: BPE with the vocabulary in id order, `byte_fallback` (when the 256 pieces <0x00>…<0xFF> exist),
 *   `fuse_unk`, `unk_token`, and the merges: every pair (left, right) of pieces whose concatenation is a piece;
 * - normalizer: Sequence[Prepend("▁") (the dummy prefix; absent when the vocabulary has none), Replace(" " → "▁")];
 *   no pre-tokenizer;
 * - decoder: Sequence[Replace("▁" → " "), ByteFallback, Fuse, Strip(" ", 1 left)];
 * - post_processor: TemplateProcessing with BOS in front (and EOS last when the vocabulary adds it);
 * - added_tokens: the control and unknown pieces (<unk>, <s>, </s>) as special tokens, user-defined pieces as
 *   non-special ones, none normalized.
 *
 * Merge order. SentencePiece merges the adjacent pair whose concatenation has the highest score, the leftmost on
 * ties; Hugging Face's BPE merges the pair of lowest rank, the leftmost on ties. Ranking the merges by the merged
 * piece's score (highest first) makes the two agree except where several candidate pairs have the same score: pairs
 * making different pieces of equal score, or different splits of one piece. There the rank is, as transformers'
 * generate_merges: the longer left piece first, then the longer right piece, then the merged piece's id, then the
 * pieces' ids. For Llama-2 the only equal scores among mergeable pieces are its 16 whitespace pieces ("▁" … 16 × "▁",
 * all −1e9): in a run of spaces SentencePiece grows the leftmost symbol one "▁" at a time up to 16, and so does
 * "longer left first" (tests/node/tokenizer-json.test.ts checks this on llama.cpp's vectors and random texts).
 *
 * llama2.c's pieces spell a space as a literal " " where SentencePiece writes "▁", and BOS/EOS as "\n<s>\n" /
 * "\n</s>\n": they are written as "▁", "<s>" and "</s>". A llama2.c vocabulary without a " " piece (a byte-level one,
 * whose spaces fall back to <0x20>) or with a literal "▁" in a piece keeps its literal spaces instead: normalizer
 * Prepend(" ") only, decoder without the Replace, so a space still falls back to <0x20> as in llama2.c.
 *
 * Where the written files and the original differ by construction (Hugging Face's semantics, not a bug here):
 * - llama2.c's tokenizer treats "<s>", "</s>" and "<unk>" in a text as plain text; tokenizer.json's special added
 *   tokens turn them into their ids (as Hugging Face's Llama tokenizers and SentencePieceTokenizer do);
 * - llama2.c looks a literal "▁" (U+2581) in a text up as that character (not a piece: byte fallback); the
 *   tokenizer.json, like SentencePiece, reads it as a space;
 * - decoding: llama2.c keeps the leading space of a text that does not follow BOS; the Strip decoder drops it.
 */
import { RemaxInputError, requireInput } from '../errors';
import { Tokenizer as Llama2cTokenizer } from './llama2c';
import { SentencePieceTokenizer, SPACE_SYMBOL, TOKEN_TYPE } from './sentencepiece';
import type { TextTokenizer } from './types';

export interface TokenizerFilesOptions {
  /**
   * tokenizer_config.json's model_max_length, e.g. the model's context length. Default: transformers' value for "no
   * limit" (int(1e30), what it writes when a tokenizer has none).
   */
  modelMaxLength?: number;
}

/** transformers' VERY_LARGE_INTEGER = int(1e30), written as Python writes it. */
const NO_MAX_LENGTH = '1000000000000000019884624838656';

/** One SentencePiece vocabulary in Hugging Face's spelling: what the three files are written from. */
interface SpmModel {
  /** Each id's token string in tokenizer.json ("▁the", "<0x0A>", "<s>"). */
  names: string[];
  scores: ArrayLike<number>;
  /** Whether text may turn into this piece by merges (the merger's usable pieces). */
  mergeable: (id: number) => boolean;
  /** The added tokens: id → special (control and unknown pieces) or not (user-defined pieces). */
  added: Map<number, boolean>;
  bosId: number | null;
  eosId: number | null;
  unkId: number | null;
  padId: number | null;
  addBos: boolean;
  addEos: boolean;
  addSpacePrefix: boolean;
  /** Spaces are "▁" in the pieces (normalizer Replace " " → "▁"); false: literal spaces (llama2.c byte-level vocabularies). */
  metaspace: boolean;
  chatTemplate?: string;
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const byteName = (b: number): string => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;

/**
 * The Hugging Face tokenizer files of a SentencePiece tokenizer — a llama2.c `Tokenizer` or a `SentencePieceTokenizer`
 * (GGUF `llama`): `tokenizer.json`, `tokenizer_config.json` (LlamaTokenizerFast, legacy) and `special_tokens_map.json`,
 * as UTF-8 bytes by file name. Any other tokenizer is a RemaxInputError naming it.
 */
export function sentencePieceTokenizerFiles(
  tokenizer: TextTokenizer,
  options: TokenizerFilesOptions = {},
): Record<string, Uint8Array> {
  let model: SpmModel;
  if (tokenizer instanceof Llama2cTokenizer) model = llama2cModel(tokenizer);
  else if (tokenizer instanceof SentencePieceTokenizer) model = sentencePieceModel(tokenizer);
  else {
    throw new RemaxInputError(
      `tokenizer ${tokenizer.source} (${tokenizer.description}) cannot be written as a SentencePiece tokenizer.json: ` +
        `supported are a llama2.c tokenizer.bin and a GGUF llama (SentencePiece BPE) vocabulary`,
    );
  }
  const max = options.modelMaxLength;
  requireInput(
    max === undefined || (Number.isSafeInteger(max) && max > 0),
    `model_max_length ${String(max)} is not a positive integer`,
  );
  checkNames(model, tokenizer);
  const encoder = new TextEncoder();
  return {
    'tokenizer.json': encoder.encode(tokenizerJsonText(model)),
    'tokenizer_config.json': encoder.encode(tokenizerConfigText(model, max)),
    'special_tokens_map.json': encoder.encode(`${JSON.stringify(specialTokensMap(model), null, 2)}\n`),
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// The two sources

function llama2cModel(tok: Llama2cTokenizer): SpmModel {
  const v = tok.vocabulary();
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const raw = v.pieces.map((bytes, id) => {
    try {
      return utf8.decode(bytes);
    } catch {
      throw new RemaxInputError(
        `tokenizer ${tok.source} (${tok.description}): piece ${id} is not valid UTF-8 (bytes ` +
          `${Array.from(bytes.slice(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ')}); ` +
          `a tokenizer.json can only hold text pieces`,
      );
    }
  });
  // llama2.c's encoder emits byte + 3 for a byte that no character piece covers.
  for (let b = 0; b < 256; b++) {
    const p = raw[b + 3];
    requireInput(
      p !== undefined && p.toUpperCase() === byteName(b).toUpperCase(),
      `tokenizer ${tok.source} (${tok.description}): piece ${b + 3} is ${p === undefined ? 'missing' : JSON.stringify(p)}, ` +
        `not the byte piece ${byteName(b)}: llama2.c's byte fallback (ids 3…258) cannot be written as a tokenizer.json`,
    );
  }
  // "▁" for spaces, unless a space would fall back to bytes (no " " piece) or "▁" is already a piece's character.
  const metaspace = raw.includes(' ') && !raw.some((p) => p.includes(SPACE_SYMBOL));
  const names = raw.map((p) => (metaspace ? p.replaceAll(' ', SPACE_SYMBOL) : p));
  const renamed = new Set<number>();
  const rename = (id: number, name: string): void => {
    if (names[id] !== name) renamed.add(id);
    names[id] = name;
  };
  if (/^\n?<s>\n?$/.test(raw[1] ?? '')) rename(1, '<s>');
  if (/^\n?<\/s>\n?$/.test(raw[2] ?? '')) rename(2, '</s>');
  for (let b = 0; b < 256; b++) rename(b + 3, byteName(b));
  const unkId = raw[0] === '<unk>' ? 0 : null;
  const added = new Map<number, boolean>();
  if (unkId !== null) added.set(unkId, true);
  added.set(1, true);
  added.set(2, true);
  // llama2.c's merger takes every piece (the first id of a repeated one; checkNames refuses repeats), so these do
  // too, except the special tokens and the pieces whose spelling changed (their concatenations would differ).
  return {
    names,
    scores: v.scores,
    mergeable: (id) => !added.has(id) && !renamed.has(id),
    added,
    bosId: 1,
    eosId: 2,
    unkId,
    padId: null,
    addBos: true,
    addEos: false,
    addSpacePrefix: true,
    metaspace,
    chatTemplate: tok.chatTemplate,
  };
}

function sentencePieceModel(tok: SentencePieceTokenizer): SpmModel {
  const v = tok.vocabulary;
  const names = v.pieces.map((p, id) => {
    const m = BYTE_PIECE.exec(p);
    return m && v.types[id] === TOKEN_TYPE.byte ? byteName(parseInt(m[1]!, 16)) : p;
  });
  const added = new Map<number, boolean>();
  for (let id = 0; id < names.length; id++) {
    const t = v.types[id];
    if (t === TOKEN_TYPE.control || t === TOKEN_TYPE.unknown) added.set(id, true);
    else if (t === TOKEN_TYPE.userDefined) added.set(id, false);
  }
  return {
    names,
    scores: v.scores,
    // SentencePieceTokenizer's rule: text becomes normal, user-defined and unused pieces, never control or byte ones.
    mergeable: (id) => {
      const t = v.types[id];
      return t === TOKEN_TYPE.normal || t === TOKEN_TYPE.userDefined || t === TOKEN_TYPE.unused;
    },
    added,
    bosId: v.bosId,
    eosId: v.eosId,
    unkId: v.unkId,
    padId: v.padId,
    addBos: tok.addBos,
    addEos: v.addEos && v.eosId !== null,
    addSpacePrefix: v.addSpacePrefix,
    metaspace: true,
    chatTemplate: tok.chatTemplate,
  };
}

/** A tokenizer.json maps each token string to one id: refuse a vocabulary that spells two pieces alike. */
function checkNames(model: SpmModel, tok: TextTokenizer): void {
  const seen = new Map<string, number>();
  model.names.forEach((name, id) => {
    const first = seen.get(name);
    requireInput(
      first === undefined,
      `tokenizer ${tok.source} (${tok.description}): pieces ${first} and ${id} are both ${JSON.stringify(name)} ` +
        `(as a tokenizer.json spells them); a tokenizer.json cannot hold two tokens with one spelling`,
    );
    seen.set(name, id);
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// tokenizer.json

interface Merge {
  left: number;
  right: number;
  merged: number;
  score: number;
  /** Lengths in code points (Python's len, as transformers' generate_merges sorts). */
  leftLength: number;
  rightLength: number;
}

/** The merges in rank order (see the file comment). */
function sortedMerges(model: SpmModel): Merge[] {
  const ids = new Map<string, number>();
  model.names.forEach((name, id) => {
    if (model.mergeable(id) && !ids.has(name)) ids.set(name, id);
  });
  const merges: Merge[] = [];
  for (let merged = 0; merged < model.names.length; merged++) {
    const score = model.scores[merged]!;
    // Pieces scored −∞ never merge (SentencePieceMerger).
    if (!model.mergeable(merged) || !(score > -Infinity)) continue;
    const chars = Array.from(model.names[merged]!);
    let left = '';
    for (let i = 1; i < chars.length; i++) {
      left += chars[i - 1]!;
      const l = ids.get(left);
      if (l === undefined) continue;
      const r = ids.get(model.names[merged]!.slice(left.length));
      if (r === undefined) continue;
      merges.push({ left: l, right: r, merged, score, leftLength: i, rightLength: chars.length - i });
    }
  }
  return merges.sort(
    (a, b) =>
      b.score - a.score ||
      b.leftLength - a.leftLength ||
      b.rightLength - a.rightLength ||
      a.merged - b.merged ||
      a.left - b.left ||
      a.right - b.right,
  );
}

const addedToken = (model: SpmModel, id: number, special: boolean): Record<string, unknown> => ({
  id, content: model.names[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special,
});

function postProcessor(model: SpmModel): Record<string, unknown> {
  const bos = model.addBos && model.bosId !== null ? model.names[model.bosId]! : null;
  const eos = model.addEos && model.eosId !== null ? model.names[model.eosId]! : null;
  const special = (id: string, typeId: number) => ({ SpecialToken: { id, type_id: typeId } });
  const sequence = (id: string, typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const part = (seq: string, typeId: number) => [
    ...(bos !== null ? [special(bos, typeId)] : []),
    sequence(seq, typeId),
    ...(eos !== null ? [special(eos, typeId)] : []),
  ];
  const specialTokens: Record<string, unknown> = {};
  for (const [text, id] of [[bos, model.bosId], [eos, model.eosId]] as const) {
    if (text !== null) specialTokens[text] = { id: text, ids: [id], tokens: [text] };
  }
  return { type: 'TemplateProcessing', single: part('A', 0), pair: [...part('A', 0), ...part('B', 1)], special_tokens: specialTokens };
}

function tokenizerJsonText(model: SpmModel): string {
  const space = model.metaspace ? SPACE_SYMBOL : ' ';
  const normalizers: Record<string, unknown>[] = [];
  if (model.addSpacePrefix) normalizers.push({ type: 'Prepend', prepend: space });
  if (model.metaspace) normalizers.push({ type: 'Replace', pattern: { String: ' ' }, content: SPACE_SYMBOL });
  const decoders: Record<string, unknown>[] = [];
  if (model.metaspace) decoders.push({ type: 'Replace', pattern: { String: SPACE_SYMBOL }, content: ' ' });
  decoders.push({ type: 'ByteFallback' }, { type: 'Fuse' });
  if (model.addSpacePrefix) decoders.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });
  const spelled = new Set(model.names);
  const byteFallback = Array.from({ length: 256 }, (_, b) => byteName(b)).every((b) => spelled.has(b));

  const merges = sortedMerges(model);
  const names = model.names;
  // The short "left right" form (what the hub's Llama files use) unless a piece holds a space; else [left, right].
  const pairForm = merges.some((m) => names[m.left]!.includes(' ') || names[m.right]!.includes(' '));
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...model.added].sort(([a], [b]) => a - b).map(([id, special]) => addedToken(model, id, special)),
    normalizer: normalizers.length > 0 ? { type: 'Sequence', normalizers } : null,
    pre_tokenizer: null,
    post_processor: postProcessor(model),
    decoder: { type: 'Sequence', decoders },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: model.unkId !== null ? names[model.unkId] : null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: byteFallback,
      vocab: '\u0001',
      merges: '\u0002',
    },
  };
  // vocab (in id order) and merges are written by hand: a JS object would put integer-like keys ("1", "12") first.
  const vocabText = `{\n${names.map((name, id) => `      ${JSON.stringify(name)}: ${id}`).join(',\n')}\n    }`;
  const mergeText = (m: Merge): string =>
    pairForm ? `[${JSON.stringify(names[m.left])}, ${JSON.stringify(names[m.right])}]` : JSON.stringify(`${names[m.left]} ${names[m.right]}`);
  const mergesText = merges.length === 0 ? '[]' : `[\n${merges.map((m) => `      ${mergeText(m)}`).join(',\n')}\n    ]`;
  return `${JSON.stringify(json, null, 2)
    .replace('"vocab": "\\u0001"', () => `"vocab": ${vocabText}`)
    .replace('"merges": "\\u0002"', () => `"merges": ${mergesText}`)}\n`;
}

// ---------------------------------------------------------------------------------------------------------------------
// tokenizer_config.json and special_tokens_map.json

const tokenName = (model: SpmModel, id: number | null): string | null => (id === null ? null : model.names[id]!);

function tokenizerConfigText(model: SpmModel, modelMaxLength: number | undefined): string {
  const decoder: Record<string, unknown> = {};
  for (const [id, special] of [...model.added].sort(([a], [b]) => a - b)) {
    const { id: _id, ...rest } = addedToken(model, id, special);
    decoder[String(id)] = rest;
  }
  const config: Record<string, unknown> = {
    add_bos_token: model.addBos,
    add_eos_token: model.addEos,
    added_tokens_decoder: decoder,
    bos_token: tokenName(model, model.bosId),
    clean_up_tokenization_spaces: false,
    eos_token: tokenName(model, model.eosId),
    legacy: true,
    model_max_length: modelMaxLength ?? '\u0003',
    pad_token: tokenName(model, model.padId),
    tokenizer_class: 'LlamaTokenizerFast',
    unk_token: tokenName(model, model.unkId),
  };
  if (model.chatTemplate !== undefined) config.chat_template = model.chatTemplate;
  const sorted = Object.fromEntries(Object.keys(config).sort().map((k) => [k, config[k]]));
  return `${JSON.stringify(sorted, null, 2).replace('"model_max_length": "\\u0003"', `"model_max_length": ${NO_MAX_LENGTH}`)}\n`;
}

function specialTokensMap(model: SpmModel): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const entries = [['bos_token', model.bosId], ['eos_token', model.eosId], ['pad_token', model.padId], ['unk_token', model.unkId]] as const;
  for (const [key, id] of entries) {
    if (id === null) continue;
    out[key] = { content: model.names[id], lstrip: false, normalized: false, rstrip: false, single_word: false };
  }
  return out;
}
