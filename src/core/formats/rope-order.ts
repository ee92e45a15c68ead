// The two orders of a head's channels that RoPE rotates in pairs, and the exact permutation between them.
//   interleaved (llama2.c, Meta, GGUF llama): channels 2i and 2i+1 of a head form pair i.
//   rotate-half (Hugging Face transformers, GGUF qwen2/qwen3): channels i and i + headSize/2 form pair i.
// The engine runs the interleaved order (config.ts); a format storing rotate-half has the rows of q_proj, k_proj
// (and their biases and norm weights) permuted at load and back at export. Pure row moves: exact, bit for bit.

/**
 * Rows of a [nHeads·headSize, cols] matrix (or a vector: cols = 1) from rotate-half order to interleaved:
 * interleaved row 2i of a head = rotate-half row i, row 2i + 1 = row i + headSize/2. (Bytes: rows of `cols` bytes, a
 * quantized tensor's blocks.)
 */
export function halfToInterleaved<T extends Float32Array | Uint8Array>(data: T, nHeads: number, headSize: number, cols: number): T {
  return permuteRows(data, nHeads, headSize, cols, true);
}

/** The inverse of halfToInterleaved. */
export function interleavedToHalf(data: Float32Array, nHeads: number, headSize: number, cols: number): Float32Array {
  return permuteRows(data, nHeads, headSize, cols, false);
}

function permuteRows<T extends Float32Array | Uint8Array>(data: T, nHeads: number, headSize: number, cols: number, toInterleaved: boolean): T {
  if (data.length !== nHeads * headSize * cols) {
    throw new Error(`rope-order: ${data.length} values are not ${nHeads} heads × ${headSize} rows × ${cols} columns`);
  }
  const out = data.slice(0, 0).constructor === Uint8Array ? new Uint8Array(data.length) as T : new Float32Array(data.length) as T;
  const half = headSize / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (const [interleaved, rotateHalf] of [[2 * i, i], [2 * i + 1, i + half]] as const) {
        const to = (h * headSize + (toInterleaved ? interleaved : rotateHalf)) * cols;
        const from = (h * headSize + (toInterleaved ? rotateHalf : interleaved)) * cols;
        out.set(data.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}
