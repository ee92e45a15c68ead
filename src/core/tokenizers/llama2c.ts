/**
 * The llama2.c / sentencepiece-BPE tokenizer, read from llama2.c's `tokenizer.bin` format.
 * Portable: takes bytes, uses only TextEncoder/TextDecoder (no Node APIs).
 *
 * File format (little-endian): int32 max_token_length; then per token: float32 score, int32 length, `length` bytes.
 * The file does not store the vocabulary size: it is the number of records, so check it with assertFitsModel().
 *
 * It is also a TextTokenizer (types.ts): BOS 1, EOS 2, prompts start with BOS, no chat template and no special-token
 * strings ("<s>" in a text is plain text: the file spells BOS "\n<s>\n"). The merge algorithm is
 * SentencePieceMerger (sentencepiece.ts), shared with GGUF `llama` vocabularies.
 */
import { RemaxInputError, requireInput } from '../errors';
import { binaryString, SentencePieceMerger } from './sentencepiece';
import type { DecodeTextOptions, EncodeTextOptions, SpecialTokenStrings, TextTokenizer } from './types';

export const BOS_ID = 1;
export const EOS_ID = 2;

/** Byte-fallback tokens `<0x00>`..`<0xFF>` sit at ids 3..258 (sentencepiece layout, as llama2.c assumes). */
const BYTE_FALLBACK_OFFSET = 3;
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

const utf8Encoder = new TextEncoder();
// Non-fatal: invalid UTF-8 (e.g. a lone byte-fallback token) becomes U+FFFD instead of throwing.
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

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

/** A tokenizer.bin's vocabulary as the file stores it (see Tokenizer.vocabulary()). */
export interface Llama2cVocabulary {
  /** Each piece's raw bytes: a literal space (not "▁"), "<0xXX>" byte pieces, BOS "\n<s>\n", EOS "\n</s>\n". */
  pieces: Uint8Array[];
  /** Each piece's merge score (higher merges first). */
  scores: Float32Array;
  maxTokenLength: number;
}

export class Tokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly maxTokenLength: number;
  /** Where the tokenizer came from (a file name), for error messages. */
  readonly source: string;
  readonly description = 'llama2.c tokenizer.bin';
  readonly bosId = BOS_ID;
  readonly eosIds: readonly number[] = [EOS_ID];
  readonly addBos = true;
  readonly chatTemplate: string | undefined = undefined;
  readonly specialTokenStrings: SpecialTokenStrings = {};

  private readonly pieceBytes: Uint8Array[];
  private readonly pieceTexts: string[];
  private readonly scores: Float32Array;
  /** Byte value of a `<0xXX>` piece, or -1 for ordinary pieces. */
  private readonly byteValue: Int16Array;
  /** The merges over every piece's binary-string key (the first id wins if a piece repeats). */
  private readonly merger: SentencePieceMerger;

  private constructor(source: string, maxTokenLength: number, pieces: Uint8Array[], scores: Float32Array) {
    this.source = source;
    this.maxTokenLength = maxTokenLength;
    this.vocabSize = pieces.length;
    this.pieceBytes = pieces;
    this.scores = scores;
    this.pieceTexts = pieces.map((p) => utf8Decoder.decode(p));
    const keys = pieces.map((p) => binaryString(p));
    this.byteValue = new Int16Array(pieces.length);
    for (let id = 0; id < pieces.length; id++) {
      const m = BYTE_PIECE.exec(keys[id]!);
      this.byteValue[id] = m ? parseInt(m[1]!, 16) : -1;
    }
    this.merger = new SentencePieceMerger(keys, scores);
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
   * The whole vocabulary (for converters such as tokenizer-json.ts): raw piece bytes, scores and max_token_length.
   * Copies, so changing them changes nothing here.
   */
  vocabulary(): Llama2cVocabulary {
    return {
      pieces: this.pieceBytes.map((p) => p.slice()),
      scores: this.scores.slice(),
      maxTokenLength: this.maxTokenLength,
    };
  }

  /**
   * Encodes text as llama2.c's `encode`: optional BOS, a dummy-prefix space before non-empty text, each UTF-8
   * character looked up (else its bytes as byte-fallback ids), then greedy merges of the best-scoring adjacent pair.
   * As a TextTokenizer, `{ specialTokens }` stands for `bos` (an explicit `bos` wins).
   */
  encode(text: string, options: EncodeOptions & EncodeTextOptions = {}): number[] {
    requireInput(typeof text === 'string', `Tokenizer.encode: text must be a string, got ${typeof text}`);
    const { bos = options.specialTokens ?? true, eos = false } = options;
    const tokens: number[] = [];
    if (bos) tokens.push(BOS_ID);

    if (text.length > 0) {
      // The dummy prefix " " is ASCII, so prepending it makes it its own character, as in llama2.c. Merges never
      // involve the BOS before it (llama2.c also scans the BOS, but no piece starts with "\n<s>\n").
      this.merger.encodeBytes(utf8Encoder.encode(' ' + text), (b) => this.byteFallbackId(b, text), tokens);
    }

    if (eos) tokens.push(EOS_ID);
    return tokens;
  }

  /** The prompt's ids: BOS then the text (= encode(text)). */
  encodePrompt(text: string): number[] {
    return this.encode(text);
  }

  /**
   * Decodes ids to a string: BOS/EOS ids are skipped, the leading space of the piece right after a BOS is dropped,
   * `<0xXX>` pieces become raw bytes. All bytes are gathered first and decoded once, so a multi-byte character split
   * across byte-fallback tokens comes out whole.
   */
  decode(ids: readonly number[], options: DecodeOptions & DecodeTextOptions = {}): string {
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

  /**
   * The text of ids generated after `promptIds`, as the engine has always decoded it: only a prompt of just BOS
   * changes anything (the first piece loses its leading space). BOS and EOS are always left out.
   */
  decodeContinuation(promptIds: readonly number[], ids: readonly number[], _options?: DecodeTextOptions): string {
    return this.decode(ids, { afterBos: promptIds.length === 1 && promptIds[0] === BOS_ID });
  }

  /** Each id's raw piece (see piece()). */
  tokenStrings(ids: readonly number[]): string[] {
    return ids.map((id, i) => {
      this.checkId(id, `ids[${i}]`);
      return this.pieceTexts[id]!;
    });
  }

  /** BOS and EOS (which decode always leaves out). */
  isSpecial(id: number): boolean {
    return id === BOS_ID || id === EOS_ID;
  }

  /** Throws RemaxInputError when this tokenizer's vocabulary size differs from the model's. */
  assertFitsModel(modelVocabSize: number, modelSource = 'the model'): void {
    if (modelVocabSize === this.vocabSize) return;
    throw new RemaxInputError(
      `tokenizer ${this.source} has ${this.vocabSize} tokens but ${modelSource} has vocab_size ${modelVocabSize}: ` +
        `use the tokenizer.bin that was trained with this model`,
    );
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
