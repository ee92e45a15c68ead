// Test fixtures that need no shared data: llama2.c tokenizer files built from (piece, score) records.
import { Tokenizer } from '../../src/core/tokenizers/llama2c';

/** A llama2.c tokenizer.bin; `length` overrides a record's stored length (to build corrupt files). */
export function buildTokenizerBin(records: { piece: string | Uint8Array; score: number; length?: number }[], maxLen = 16): Uint8Array {
  const encoded = records.map((r) => (typeof r.piece === 'string' ? new TextEncoder().encode(r.piece) : r.piece));
  const out = new Uint8Array(4 + encoded.reduce((n, p) => n + 8 + p.length, 0));
  const view = new DataView(out.buffer);
  view.setInt32(0, maxLen, true);
  let o = 4;
  records.forEach((r, i) => {
    view.setFloat32(o, r.score, true);
    view.setInt32(o + 4, r.length ?? encoded[i]!.length, true);
    out.set(encoded[i]!, o + 8);
    o += 8 + encoded[i]!.length;
  });
  return out;
}

/** A sentencepiece-like layout: <unk>, BOS, EOS, the 256 byte-fallback tokens (ids 3..258), then `pieces` from id 259. */
export function syntheticTokenizerBin(pieces: [string, number][] = []): Uint8Array {
  return buildTokenizerBin([
    { piece: '<unk>', score: 0 }, { piece: '\n<s>\n', score: 0 }, { piece: '\n</s>\n', score: 0 },
    ...Array.from({ length: 256 }, (_, b) => ({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, score: 0 })),
    ...pieces.map(([piece, score]) => ({ piece, score })),
  ]);
}

export const syntheticTokenizer = (pieces: [string, number][] = []): Tokenizer =>
  Tokenizer.fromBytes(syntheticTokenizerBin(pieces), 'synthetic.bin');
