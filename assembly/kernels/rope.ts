// Rotary position embedding on interleaved pairs (2i, 2i+1) of every head, as llama2.c: angle = pos · freq_i, with
// freq_i = theta^(−2i/headSize) unless the model rescales them (Llama 3.1's RoPE scaling: the host adjusts the
// frequencies before the tables are filled). The tables hold, per position, cos duplicated over each pair
// (c0, c0, c1, c1, …) and sin with the pair's signs (−s0, s0, −s1, s1, …), so one row rotates as
// x·cos + swap_pairs(x)·sin with whole vectors. (Rotate-half checkpoints have their q/k rows permuted at load.)

/** theta^(−i/headSize) for the pair starting at channel i, in f32 as llama2.c and PyTorch compute it. */
// @ts-ignore: decorator
@inline function inverseFrequency(i: i32, headSize: i32, theta: f32): f32 {
  return <f32>1.0 / <f32>Math.pow(<f64>theta, <f64>(<f32>i / <f32>headSize));
}

/** freqs[i] = theta^(−2i/headSize) for i < headSize/2: the host may rescale them (RoPE scaling) before the tables. */
export function ropeInverseFrequencies(freqs: usize, headSize: i32, theta: f32): void {
  for (let i = 0; i < headSize; i += 2) store<f32>(freqs + (<usize>(i >> 1) << 2), inverseFrequency(i, headSize, theta));
}

/** Fills the tables [seqLen, headSize] with the unscaled frequencies of theta. */
export function ropeTablesInit(cosTable: usize, sinTable: usize, seqLen: i32, headSize: i32, theta: f32): void {
  for (let i = 0; i < headSize; i += 2) fillPair(cosTable, sinTable, seqLen, headSize, i, inverseFrequency(i, headSize, theta));
}

/** Fills the tables [seqLen, headSize] from freqs[headSize/2] (ropeInverseFrequencies', perhaps rescaled). */
export function ropeTablesFromFrequencies(cosTable: usize, sinTable: usize, seqLen: i32, headSize: i32, freqs: usize): void {
  for (let i = 0; i < headSize; i += 2) fillPair(cosTable, sinTable, seqLen, headSize, i, load<f32>(freqs + (<usize>(i >> 1) << 2)));
}

/** The table entries of the pair at channel i, every position. The angle is computed in f32 as llama2.c and PyTorch do, cos/sin in f64. */
function fillPair(cosTable: usize, sinTable: usize, seqLen: i32, headSize: i32, i: i32, freq: f32): void {
  for (let pos = 0; pos < seqLen; pos++) {
    const angle: f32 = <f32>pos * freq;
    const c = <f32>Math.cos(<f64>angle), s = <f32>Math.sin(<f64>angle);
    const p = (<usize>pos * headSize + i) << 2;
    store<f32>(cosTable + p, c); store<f32>(cosTable + p + 4, c);
    store<f32>(sinTable + p, -s); store<f32>(sinTable + p + 4, s);
  }
}

/** Rotates nHeads heads of headSize in each of the n rows (row stride rowLen floats); row r sits at positions[r]. */
export function ropeForward(vec: usize, n: i32, rowLen: i32, positions: usize, nHeads: i32, headSize: i32, cosTable: usize, sinTable: usize): void {
  const vecBytes = <usize>(headSize & ~3) << 2;
  const headBytes = <usize>headSize << 2;
  for (let r = 0; r < n; r++) {
    const pos = load<i32>(positions + (<usize>r << 2));
    const c = cosTable + <usize>pos * headBytes, s = sinTable + <usize>pos * headBytes;
    for (let h = 0; h < nHeads; h++) {
      const v = vec + ((<usize>r * rowLen) << 2) + <usize>h * headBytes;
      for (let k: usize = 0; k < vecBytes; k += 16) {
        const x = v128.load(v + k);
        const swapped = i32x4.shuffle(x, x, 1, 0, 3, 2);
        v128.store(v + k, f32x4.add(f32x4.mul(x, v128.load(c + k)), f32x4.mul(swapped, v128.load(s + k))));
      }
      for (let k = vecBytes; k < headBytes; k += 8) {
        const x0 = load<f32>(v + k), x1 = load<f32>(v + k + 4);
        const cs = load<f32>(c + k), sn = load<f32>(s + k + 4);
        store<f32>(v + k, x0 * cs - x1 * sn);
        store<f32>(v + k + 4, x0 * sn + x1 * cs);
      }
    }
  }
}

/** Backward of ropeForward, in place on the gradient rows: the rotation by −angle (the transpose). */
export function ropeBackward(grad: usize, n: i32, rowLen: i32, positions: usize, nHeads: i32, headSize: i32, cosTable: usize, sinTable: usize): void {
  const vecBytes = <usize>(headSize & ~3) << 2;
  const headBytes = <usize>headSize << 2;
  for (let r = 0; r < n; r++) {
    const pos = load<i32>(positions + (<usize>r << 2));
    const c = cosTable + <usize>pos * headBytes, s = sinTable + <usize>pos * headBytes;
    for (let h = 0; h < nHeads; h++) {
      const v = grad + ((<usize>r * rowLen) << 2) + <usize>h * headBytes;
      for (let k: usize = 0; k < vecBytes; k += 16) {
        const g = v128.load(v + k);
        const gs = f32x4.mul(g, v128.load(s + k));
        v128.store(v + k, f32x4.add(f32x4.mul(g, v128.load(c + k)), i32x4.shuffle(gs, gs, 1, 0, 3, 2)));
      }
      for (let k = vecBytes; k < headBytes; k += 8) {
        const g0 = load<f32>(v + k), g1 = load<f32>(v + k + 4);
        const cs = load<f32>(c + k), sn = load<f32>(s + k + 4);
        store<f32>(v + k, g0 * cs + g1 * sn);
        store<f32>(v + k + 4, g1 * cs - g0 * sn);
      }
    }
  }
}
