/**
 * SentencePiece BPE, the tokenizer of Llama 1/2 and of llama.cpp's `llama` GGUF vocabularies: the text (with a
 * dummy-prefix space) is split into UTF-8 characters, each looked up as a piece (else its bytes become the `<0xXX>`
 * byte-fallback pieces), then the adjacent pair whose concatenation is the highest-scoring piece is merged until
 * no pair merges. SentencePieceMerger is that algorithm, shared by llama2.c's tokenizer.bin (llama2c.ts) and
 * SentencePieceTokenizer (GGUF `tokenizer.ggml.model` = `llama`, read by gguf-vocab.ts). Portable: no Node APIs.
 */
import { requireInput } from '../errors';
import { CHAT_END_TOKENS, continuationText, requireTokenIds, uniqueIds } from './common';
import type { DecodeTextOptions, EncodeTextOptions, SpecialTokenStrings, TextTokenizer } from './types';

/** llama.cpp's token types (`tokenizer.ggml.token_type`, sentencepiece's piece types). */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** The space symbol SentencePiece pieces use in place of " " (U+2581, "▁"). */
export const SPACE_SYMBOL = '\u2581';

const utf8Encoder = new TextEncoder();
// Non-fatal: invalid UTF-8 (e.g. a lone byte-fallback token) becomes U+FFFD instead of throwing.
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

/**
 * Pieces are byte strings, so lookups are keyed by a "binary" string (one char per byte, code 0..255). This keeps
 * the concatenation of two pieces equal to the concatenation of their bytes, which is what the merges look up, even
 * when a piece holds only part of a multi-byte UTF-8 character.
 */
export function binaryString(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

interface Candidate {
  score: number;
  /** Index (in the first-pass symbol list) of the left symbol; it keeps its index when it absorbs the right one. */
  left: number;
  right: number;
  leftId: number;
  rightId: number;
  merged: number;
}

/** Higher score first; on equal scores the leftmost pair (what a left-to-right scan for the maximum finds). */
const before = (a: Candidate, b: Candidate): boolean => a.score > b.score || (a.score === b.score && a.left < b.left);

class CandidateHeap {
  private readonly items: Candidate[] = [];
  get size(): number {
    return this.items.length;
  }
  push(c: Candidate): void {
    const items = this.items;
    let i = items.length;
    items.push(c);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(c, items[parent]!)) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = c;
  }
  pop(): Candidate {
    const items = this.items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= items.length) break;
        const r = l + 1;
        const child = r < items.length && before(items[r]!, items[l]!) ? r : l;
        if (!before(items[child]!, last)) break;
        items[i] = items[child]!;
        i = child;
      }
      items[i] = last;
    }
    return top;
  }
}

/**
 * The SentencePiece-BPE merge algorithm over a vocabulary of byte-string keys (see binaryString) and scores.
 *
 * Result: exactly llama2.c's loop — repeatedly merge the adjacent pair whose concatenation is a piece with the
 * highest score (the leftmost such pair on ties; pieces scored −∞ never merge) — computed with a priority queue
 * as llama.cpp and sentencepiece do, so long texts take O(n log n) instead of llama2.c's O(n²).
 */
export class SentencePieceMerger {
  /** Key → id of the pieces that characters and merges may produce (the first id wins when a key repeats). */
  readonly ids: Map<string, number>;

  /**
   * @param keys each piece's bytes as a binary string
   * @param scores each piece's merge score (higher merges first)
   * @param usable which pieces text may turn into (default all); e.g. not control or byte pieces
   */
  constructor(
    private readonly keys: readonly string[],
    private readonly scores: Float32Array,
    usable?: (id: number) => boolean,
  ) {
    this.ids = new Map();
    for (let id = 0; id < keys.length; id++) {
      if (usable !== undefined && !usable(id)) continue;
      if (!this.ids.has(keys[id]!)) this.ids.set(keys[id]!, id);
    }
  }

  /**
   * Appends to `out` the ids of `bytes` (already UTF-8 text with its dummy prefix and space symbol): each character
   * (a lead byte and up to three continuation bytes) is looked up whole, else `byteId` gives an id for each of its
   * bytes; then the pairs are merged.
   */
  encodeBytes(bytes: Uint8Array, byteId: (byte: number) => number, out: number[]): void {
    const from = out.length;
    let start = 0;
    while (start < bytes.length) {
      let end = start + 1;
      while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80 && end - start < 4) end++;
      const id = this.ids.get(binaryString(bytes, start, end));
      if (id !== undefined) {
        out.push(id);
      } else {
        for (let i = start; i < end; i++) out.push(byteId(bytes[i]!));
      }
      start = end;
    }
    this.merge(out, from);
  }

  /** Merges out[from..] in place (see the class comment). */
  private merge(tokens: number[], from: number): void {
    const n = tokens.length - from;
    if (n < 2) return;
    const id = Int32Array.from(tokens.slice(from));
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    const heap = new CandidateHeap();
    const consider = (left: number): void => {
      const right = next[left]!;
      if (left < 0 || right < 0) return;
      const merged = this.ids.get(this.keys[id[left]!]! + this.keys[id[right]!]!);
      if (merged === undefined) return;
      const score = this.scores[merged]!;
      if (!(score > -Infinity)) return; // as llama2.c's `score > best` with best starting at −∞
      heap.push({ score, left, right, leftId: id[left]!, rightId: id[right]!, merged });
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    while (heap.size > 0) {
      const c = heap.pop();
      // Stale when either side has changed since: a merge always lengthens the left symbol's key, so its id differs.
      if (next[c.left] !== c.right || id[c.left] !== c.leftId || id[c.right] !== c.rightId) continue;
      id[c.left] = c.merged;
      const after = next[c.right]!;
      next[c.left] = after;
      if (after >= 0) prev[after] = c.left;
      next[c.right] = -1;
      id[c.right] = -1;
      consider(prev[c.left]!);
      consider(c.left);
    }
    tokens.length = from;
    for (let i = 0; i >= 0; i = next[i]!) tokens.push(id[i]!);
  }
}

/** A GGUF `llama` vocabulary: what tokenizerFromGguf reads (validated there) and SentencePieceTokenizer runs on. */
export interface SentencePieceVocabulary {
  /** Pieces as GGUF stores them: "▁" (U+2581) for spaces, "<0x0A>" byte pieces, "<s>" control pieces. */
  pieces: readonly string[];
  scores: ArrayLike<number>;
  /** TOKEN_TYPE of each piece. */
  types: ArrayLike<number>;
  bosId: number | null;
  eosId: number | null;
  unkId: number | null;
  padId: number | null;
  /** More ids that end a turn (GGUF tokenizer.ggml.eot_token_id). */
  extraEosIds?: readonly number[];
  /** Whether encode(text) (special tokens on) puts BOS first; also the model's prompt convention. */
  addBos: boolean;
  addEos: boolean;
  /** The dummy-prefix space in front of the text (sentencepiece's add_dummy_prefix; GGUF add_space_prefix). */
  addSpacePrefix: boolean;
  chatTemplate?: string;
}

export interface SentencePieceEncodeOptions extends EncodeTextOptions {
  /**
   * Whether control and unknown pieces written out in the text ("<s>", "</s>", "<unk>") become their ids. Default
   * true: Hugging Face's Llama-2 tokenizer.json has them as special added tokens, which it matches in any text
   * whatever add_special_tokens says. User-defined pieces (type 4) are always matched (as llama.cpp does).
   */
  parseSpecial?: boolean;
}

interface SpecialPiece {
  text: string;
  id: number;
  /** Matched only when parseSpecial (control and unknown pieces); user-defined pieces always. */
  control: boolean;
}

/**
 * TextTokenizer over a SentencePiece vocabulary as Hugging Face's (legacy) Llama-2 tokenizer.json and llama.cpp
 * tokenize it.
 *
 * encode(text): the text is cut at the special pieces it spells (leftmost, longest first); each remaining stretch
 * is encoded on its own with the dummy-prefix "▁" in front (so "<s>hi" → [<s>, ▁hi], as HF's Prepend normalizer
 * and llama.cpp do per stretch), spaces as "▁", then SentencePieceMerger. With special tokens on, BOS first
 * (addBos) and EOS last (addEos).
 *
 * decode(ids): byte pieces become bytes, "▁" a space, control pieces their text ("<s>") unless skipSpecialTokens,
 * then one leading space is dropped (HF's Strip decoder; the dummy prefix): decode([▁Hello, ▁world]) = "Hello
 * world", decode([<s>, ▁Hello]) = "<s> Hello", with skipSpecialTokens "Hello".
 */
export class SentencePieceTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosIds: readonly number[];
  readonly addBos: boolean;
  readonly chatTemplate?: string;
  readonly specialTokenStrings: SpecialTokenStrings;

  private readonly merger: SentencePieceMerger;
  private readonly byteIds = new Int32Array(256).fill(-1);
  /** Byte value of each byte piece, −1 for the others. */
  private readonly byteValue: Int16Array;
  private readonly pieceBytes: Uint8Array[];
  private readonly specials = new Map<string, SpecialPiece[]>();

  constructor(
    readonly vocabulary: SentencePieceVocabulary,
    readonly source: string,
    readonly description = 'GGUF llama vocabulary (SentencePiece BPE)',
  ) {
    const { pieces, types } = vocabulary;
    this.vocabSize = pieces.length;
    requireInput(this.vocabSize > 0, `${source}: the vocabulary holds no tokens`);
    requireInput(
      vocabulary.scores.length === pieces.length && types.length === pieces.length,
      `${source}: ${pieces.length} pieces but ${vocabulary.scores.length} scores and ${types.length} token types`,
    );
    this.bosId = vocabulary.bosId;
    this.addBos = vocabulary.addBos && vocabulary.bosId !== null;
    this.chatTemplate = vocabulary.chatTemplate;

    const keys: string[] = [];
    this.pieceBytes = [];
    this.byteValue = new Int16Array(pieces.length).fill(-1);
    for (let id = 0; id < pieces.length; id++) {
      const piece = pieces[id]!;
      const type = types[id]!;
      // Decoding: "▁" is a space in normal (and unused) pieces; user-defined and control pieces are their raw text.
      const isText = type === TOKEN_TYPE.normal || type === TOKEN_TYPE.unused;
      const bytes = utf8Encoder.encode(isText ? piece.replaceAll(SPACE_SYMBOL, ' ') : piece);
      this.pieceBytes.push(bytes);
      keys.push(binaryString(utf8Encoder.encode(piece)));
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
      if (type === TOKEN_TYPE.byte && m) {
        const b = parseInt(m[1]!, 16);
        this.byteValue[id] = b;
        if (this.byteIds[b] === -1) this.byteIds[b] = id;
      }
      const special = type === TOKEN_TYPE.control || type === TOKEN_TYPE.unknown;
      if ((special || type === TOKEN_TYPE.userDefined) && piece.length > 0) {
        const list = this.specials.get(piece[0]!) ?? [];
        list.push({ text: piece, id, control: special });
        this.specials.set(piece[0]!, list);
      }
    }
    for (const list of this.specials.values()) list.sort((a, b) => b.text.length - a.text.length || a.id - b.id);
    // Text becomes only normal, user-defined and unused pieces (sentencepiece's rule), never control or byte pieces.
    this.merger = new SentencePieceMerger(keys, Float32Array.from(vocabulary.scores), (id) => {
      const t = types[id]!;
      return t === TOKEN_TYPE.normal || t === TOKEN_TYPE.userDefined || t === TOKEN_TYPE.unused;
    });

    const chatEnds = CHAT_END_TOKENS.flatMap((text) => {
      const id = pieces.indexOf(text);
      return id >= 0 && (types[id] === TOKEN_TYPE.control || types[id] === TOKEN_TYPE.userDefined) ? [id] : [];
    });
    this.eosIds = uniqueIds(vocabulary.eosId === null ? [] : [vocabulary.eosId], vocabulary.extraEosIds ?? [], chatEnds);
    const strings: SpecialTokenStrings = {};
    if (vocabulary.bosId !== null) strings.bos_token = pieces[vocabulary.bosId];
    if (vocabulary.eosId !== null) strings.eos_token = pieces[vocabulary.eosId];
    if (vocabulary.padId !== null) strings.pad_token = pieces[vocabulary.padId];
    if (vocabulary.unkId !== null) strings.unk_token = pieces[vocabulary.unkId];
    this.specialTokenStrings = strings;
  }

  encode(text: string, options: SentencePieceEncodeOptions = {}): number[] {
    requireInput(typeof text === 'string', `encoding with tokenizer ${this.source}: text must be a string, got ${typeof text}`);
    const { specialTokens = true, parseSpecial = true } = options;
    const v = this.vocabulary;
    const out: number[] = [];
    if (specialTokens && this.addBos) out.push(v.bosId!);
    let afterSpecial = true;
    let start = 0;
    const flush = (end: number): void => {
      if (end > start) {
        const stretch = (v.addSpacePrefix && afterSpecial ? ' ' : '') + text.slice(start, end);
        this.merger.encodeBytes(utf8Encoder.encode(stretch.replaceAll(' ', SPACE_SYMBOL)), (b) => this.byteId(b, text), out);
        afterSpecial = false;
      }
    };
    for (let i = 0; i < text.length; ) {
      const match = this.specials.get(text[i]!)?.find((s) => (parseSpecial || !s.control) && text.startsWith(s.text, i));
      if (match === undefined) {
        i++;
        continue;
      }
      flush(i);
      out.push(match.id);
      afterSpecial = true;
      i += match.text.length;
      start = i;
    }
    flush(text.length);
    if (specialTokens && v.addEos && v.eosId !== null) out.push(v.eosId);
    return out;
  }

  encodePrompt(text: string): number[] {
    const ids = this.encode(text, { specialTokens: false });
    if (this.addBos && ids[0] !== this.bosId) ids.unshift(this.bosId!);
    return ids;
  }

  decode(ids: readonly number[], options: DecodeTextOptions = {}): string {
    requireTokenIds(ids, this.vocabSize, this.source);
    const skip = options.skipSpecialTokens ?? false;
    const bytes: number[] = [];
    for (const id of ids) {
      if (skip && this.isSpecial(id)) continue;
      const b = this.byteValue[id]!;
      if (b >= 0) bytes.push(b);
      else for (const x of this.pieceBytes[id]!) bytes.push(x);
    }
    const text = utf8Decoder.decode(Uint8Array.from(bytes));
    return this.vocabulary.addSpacePrefix && text.startsWith(' ') ? text.slice(1) : text;
  }

  decodeContinuation(promptIds: readonly number[], ids: readonly number[], options?: DecodeTextOptions): string {
    return continuationText((x, o) => this.decode(x, o), promptIds, ids, options);
  }

  tokenStrings(ids: readonly number[]): string[] {
    requireTokenIds(ids, this.vocabSize, this.source);
    return ids.map((id) => this.vocabulary.pieces[id]!);
  }

  isSpecial(id: number): boolean {
    const t = this.vocabulary.types[id];
    return t === TOKEN_TYPE.control || t === TOKEN_TYPE.unknown;
  }

  private byteId(byte: number, text: string): number {
    const id = this.byteIds[byte]!;
    if (id >= 0) return id;
    const unk = this.vocabulary.unkId;
    requireInput(
      unk !== null,
      `tokenizer ${this.source} has no byte piece <0x${byte.toString(16).toUpperCase().padStart(2, '0')}> and no unknown ` +
        `token for the text ${JSON.stringify(text.slice(0, 40))}; use a vocabulary with byte fallback`,
    );
    return unk;
  }
}
