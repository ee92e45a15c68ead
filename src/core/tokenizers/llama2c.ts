/**
 * The llama2.c / sentencepiece-BPE tokenizer, read from llama2.c's `tokenizer.bin` format.
 * Portable: takes bytes, uses only TextEncoder/TextDecoder (no Node APIs).
 *
 * File format (little-endian): int32 max_token_length; then per token: float32 score, int32 length, `length` bytes.
 * The file does not store the vocabulary size: it is the number of records, so check it with assertFitsModel().
 */
import { RemaxInputError, requireInput } from '../errors';

export const BOS_ID = 1;
export const EOS_ID = 2;

/** Byte-fallback tokens `<0x00>`..`<0xFF>` sit at ids 3..258 (sentencepiece layout, as llama2.c assumes). */
const BYTE_FALLBACK_OFFSET = 3;
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

const utf8Encoder = new TextEncoder();
// Non-fatal: invalid UTF-8 (e.g. a lone byte-fallback token) becomes U+FFFD instead of throwing.
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

/**
 * Pieces are byte strings, so the lookup map is keyed by a "binary" string (one char per byte, code 0..255).
 * This keeps concatenation of pieces equal to concatenation of their bytes, which is what llama2.c merges on,
 * even when a piece holds only part of a multi-byte UTF-8 character.
 */
function binaryString(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

export interface EncodeOptions {
  /** Prepend BOS (id 1). Default true. */
  bos?: boolean;
  /** Append EOS (id 2). Default false. */
  eos?: boolean;
}

export interface DecodeOptions {
  /** true when ids[0] directly follows a BOS that is not in the list: strip the leading space of that first piece. */
  afterBos?: boolean;
}

export class Tokenizer {
  readonly vocabSize: number;
  readonly maxTokenLength: number;
  /** Where the tokenizer came from (a file name), for error messages. */
  readonly source: string;

  private readonly pieceBytes: Uint8Array[];
  private readonly pieceTexts: string[];
  private readonly scores: Float32Array;
  /** Byte value of a `<0xXX>` piece, or -1 for ordinary pieces. */
  private readonly byteValue: Int16Array;
  /** Binary-string key of each piece, used for merge lookups. */
  private readonly keys: string[];
  /** Binary-string key -> id (the first id wins if a piece repeats). */
  private readonly ids: Map<string, number>;

  private constructor(source: string, maxTokenLength: number, pieces: Uint8Array[], scores: Float32Array) {
    this.source = source;
    this.maxTokenLength = maxTokenLength;
    this.vocabSize = pieces.length;
    this.pieceBytes = pieces;
    this.scores = scores;
    this.pieceTexts = pieces.map((p) => utf8Decoder.decode(p));
    this.keys = pieces.map((p) => binaryString(p));
    this.byteValue = new Int16Array(pieces.length);
    this.ids = new Map();
    for (let id = 0; id < pieces.length; id++) {
      const m = BYTE_PIECE.exec(this.keys[id]!);
      this.byteValue[id] = m ? parseInt(m[1]!, 16) : -1;
      if (!this.ids.has(this.keys[id]!)) this.ids.set(this.keys[id]!, id);
    }
  }

  /** Parses a llama2.c `tokenizer.bin`; `source` (a file name) is named in every error message. */
  static fromBytes(bytes: Uint8Array, source = 'tokenizer bytes'): Tokenizer {
    requireInput(bytes instanceof Uint8Array, `tokenizer ${source}: expected the file contents as a Uint8Array`);
    const hint = 'pass the llama2.c tokenizer.bin that matches the model';
    requireInput(
      bytes.length >= 4,
      `tokenizer ${source} is ${bytes.length === 0 ? 'empty' : `only ${bytes.length} bytes`}: ` +
        `a llama2.c tokenizer.bin starts with an int32 max_token_length followed by the tokens; ${hint}`,
    );
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const maxTokenLength = view.getInt32(0, true);
    requireInput(
      maxTokenLength > 0,
      `tokenizer ${source}: max_token_length at byte 0 is ${maxTokenLength}, expected a positive int32; ` +
        `is this really a llama2.c tokenizer.bin? ${hint}`,
    );

    const pieces: Uint8Array[] = [];
    const scores: number[] = [];
    let offset = 4;
    while (offset < bytes.length) {
      const index = pieces.length;
      const where = `tokenizer ${source}: token ${index} at byte ${offset}`;
      requireInput(
        bytes.length - offset >= 8,
        `${where} is truncated (needs 8 header bytes, ${bytes.length - offset} remain); the file is cut short, ${hint}`,
      );
      const score = view.getFloat32(offset, true);
      const length = view.getInt32(offset + 4, true);
      requireInput(!Number.isNaN(score), `${where} has a NaN score; the file is corrupt, ${hint}`);
      requireInput(length >= 0, `${where} has a negative length ${length}; the file is corrupt, ${hint}`);
      requireInput(
        length <= maxTokenLength,
        `${where} has length ${length}, more than max_token_length ${maxTokenLength}; the file is corrupt, ${hint}`,
      );
      offset += 8;
      requireInput(
        offset + length <= bytes.length,
        `${where} is truncated (needs ${length} piece bytes, ${bytes.length - offset} remain); the file is cut short, ${hint}`,
      );
      pieces.push(bytes.slice(offset, offset + length)); // copy: don't keep the caller's (possibly large) buffer alive
      scores.push(score);
      offset += length;
    }
    requireInput(pieces.length > 0, `tokenizer ${source} holds no tokens (only the 4-byte header); ${hint}`);
    return new Tokenizer(source, maxTokenLength, pieces, Float32Array.from(scores));
  }

  /** The raw piece text of `id` (bytes decoded as UTF-8; a partial character shows as U+FFFD). */
  piece(id: number): string {
    this.checkId(id, 'piece id');
    return this.pieceTexts[id]!;
  }

  /** The merge score of `id` (higher merges first). */
  score(id: number): number {
    this.checkId(id, 'piece id');
    return this.scores[id]!;
  }

  /**
   * Encodes text as llama2.c's `encode`: optional BOS, a dummy-prefix space before non-empty text, each UTF-8
   * character looked up (else its bytes as byte-fallback ids), then greedy merges of the best-scoring adjacent pair.
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    requireInput(typeof text === 'string', `Tokenizer.encode: text must be a string, got ${typeof text}`);
    const { bos = true, eos = false } = options;
    const tokens: number[] = [];
    if (bos) tokens.push(BOS_ID);

    if (text.length > 0) {
      // The dummy prefix " " is ASCII, so prepending it makes it its own character, as in llama2.c.
      const bytes = utf8Encoder.encode(' ' + text);
      let start = 0;
      while (start < bytes.length) {
        // A character = a lead byte plus its continuation bytes (10xxxxxx), at most 4 bytes (llama2.c's grouping).
        let end = start + 1;
        while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80 && end - start < 4) end++;
        const id = this.ids.get(binaryString(bytes, start, end));
        if (id !== undefined) {
          tokens.push(id);
        } else {
          for (let i = start; i < end; i++) tokens.push(this.byteFallbackId(bytes[i]!, text));
        }
        start = end;
      }
      this.mergePairs(tokens, bos ? 1 : 0);
    }

    if (eos) tokens.push(EOS_ID);
    return tokens;
  }

  /**
   * Decodes ids to a string: BOS/EOS ids are skipped, the leading space of the piece right after a BOS is dropped,
   * `<0xXX>` pieces become raw bytes. All bytes are gathered first and decoded once, so a multi-byte character split
   * across byte-fallback tokens comes out whole.
   */
  decode(ids: number[], options: DecodeOptions = {}): string {
    requireInput(Array.isArray(ids), `Tokenizer.decode: ids must be an array of token ids`);
    const out: number[] = [];
    let afterBos = options.afterBos ?? false;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      this.checkId(id, `ids[${i}]`);
      if (id === BOS_ID) {
        afterBos = true;
        continue;
      }
      if (id === EOS_ID) continue;
      const byte = this.byteValue[id]!;
      if (byte >= 0) {
        out.push(byte);
      } else {
        const piece = this.pieceBytes[id]!;
        // Like llama2.c: only a literal space at the start of the raw piece is dropped after BOS.
        const skip = afterBos && piece[0] === 0x20 ? 1 : 0;
        for (let j = skip; j < piece.length; j++) out.push(piece[j]!);
      }
      afterBos = false;
    }
    return utf8Decoder.decode(Uint8Array.from(out));
  }

  /** Throws RemaxInputError when this tokenizer's vocabulary size differs from the model's. */
  assertFitsModel(modelVocabSize: number, modelSource = 'the model'): void {
    if (modelVocabSize === this.vocabSize) return;
    throw new RemaxInputError(
      `tokenizer ${this.source} has ${this.vocabSize} tokens but ${modelSource} has vocab_size ${modelVocabSize}: ` +
        `use the tokenizer.bin that was trained with this model`,
    );
  }

  /**
   * llama2.c's merge loop: repeatedly merge the adjacent pair whose concatenation is a piece with the highest score
   * (first such pair on ties). O(n^2) in the token count, which is fine for prompts of a few thousand characters.
   * Tokens before `from` (the BOS) never take part: llama2.c also scans the BOS, but no piece starts with "\n<s>\n".
   */
  private mergePairs(tokens: number[], from: number): void {
    for (;;) {
      let bestScore = -Infinity;
      let bestId = -1;
      let bestIndex = -1;
      for (let i = from; i < tokens.length - 1; i++) {
        const id = this.ids.get(this.keys[tokens[i]!]! + this.keys[tokens[i + 1]!]!);
        if (id !== undefined && this.scores[id]! > bestScore) {
          bestScore = this.scores[id]!;
          bestId = id;
          bestIndex = i;
        }
      }
      if (bestIndex < 0) return;
      tokens.splice(bestIndex, 2, bestId);
    }
  }

  private byteFallbackId(byte: number, text: string): number {
    const id = byte + BYTE_FALLBACK_OFFSET;
    requireInput(
      id < this.vocabSize,
      `tokenizer ${this.source} (${this.vocabSize} tokens) has no byte-fallback token for byte 0x${byte
        .toString(16)
        .padStart(2, '0')} in the text ${JSON.stringify(text.slice(0, 40))}; use a tokenizer with byte fallback`,
    );
    return id;
  }

  private checkId(id: number, what: string): void {
    requireInput(
      Number.isInteger(id) && id >= 0 && id < this.vocabSize,
      `${what} = ${id} is not a token id of tokenizer ${this.source}: expected an integer in 0..${this.vocabSize - 1}`,
    );
  }
}
