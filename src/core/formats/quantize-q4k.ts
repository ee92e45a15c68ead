/**
 * Q4_K quantization (`--quantize q4_k`): float32 rows → ggml's Q4_K blocks, by the algorithm of ggml's reference
 * quantizer (ggml-quants.c quantize_row_q4_K_ref with make_qkx2_quants: per 32 values an importance-weighted search
 * over 21 candidate scales for the best scale and min, then the 8 scales and mins quantized to 6 bits against the
 * block's f16 super-scales, and the values re-quantized with the stored scales). Arithmetic is float32 as in the C
 * (Math.fround after each operation), so blocks agree with llama.cpp's own Q4_K files of the same values.
 *
 * Block (144 bytes per 256 values): f16 d, f16 dmin, 12 bytes of packed 6-bit scales and mins, 128 bytes of nibbles;
 * value = d·scale_j·q − dmin·min_j (gguf-quants.ts dequantQ4_K).
 */
import { f16ToF32, f32ToF16 } from './half';

const QK_K = 256;
export const Q4_K_BLOCK_BYTES = 144;
const f = Math.fround;

/** ggml's nearest_int: round half to even through float32's 2^23 magic (|v| ≤ 4194303). */
const nearestInt = (v: number): number => f(v + 12582912) - 12582912;

/**
 * make_qkx2_quants over 32 values with Q4_K's settings (nmax 15, rmin −1, rdelta 0.1, 20 steps, squared error):
 * writes the levels into `levels` and returns [scale, −min].
 */
function bestScaleMin(x: Float32Array, weights: Float32Array, levels: Uint8Array, aux: Uint8Array): [number, number] {
  const n = 32, nmax = 15;
  let min = x[0]!, max = x[0]!, sumW = weights[0]!, sumX = f(sumW * x[0]!);
  for (let i = 1; i < n; i++) {
    if (x[i]! < min) min = x[i]!;
    if (x[i]! > max) max = x[i]!;
    sumW = f(sumW + weights[i]!);
    sumX = f(sumX + f(weights[i]! * x[i]!));
  }
  if (min > 0) min = 0;
  if (max === min) {
    levels.fill(0);
    return [0, -min];
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(x[i]! - min)))));
    levels[i] = l;
    const diff = f(f(f(scale * l) + min) - x[i]!);
    bestError = f(bestError + f(weights[i]! * f(diff * diff)));
  }
  for (let step = 0; step <= 20; step++) {
    iscale = f(f(f(-1 + f(0.1 * step)) + nmax) / f(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(x[i]! - min)))));
      aux[i] = l;
      const w = weights[i]!;
      sumL = f(sumL + f(w * l));
      sumL2 = f(sumL2 + f(f(w * l) * l));
      sumXL = f(sumXL + f(f(w * l) * x[i]!));
    }
    const det = f(f(sumW * sumL2) - f(sumL * sumL));
    if (!(det > 0)) continue;
    let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / det);
    let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / det);
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = f(sumXL / sumL2);
    }
    let error = 0;
    for (let i = 0; i < n; i++) {
      const diff = f(f(f(thisScale * aux[i]!) + thisMin) - x[i]!);
      error = f(error + f(weights[i]! * f(diff * diff)));
    }
    if (error < bestError) {
      levels.set(aux);
      bestError = error;
      scale = thisScale;
      min = thisMin;
    }
  }
  return [scale, -min];
}

/** Q4_K blocks of `values` (a whole number of 256-value blocks: rows of a multiple of 256). */
export function quantizeQ4_K(values: Float32Array): Uint8Array {
  if (values.length % QK_K !== 0) throw new Error(`quantizeQ4_K: ${values.length} values are not a whole number of ${QK_K}-value blocks`);
  const blocks = values.length / QK_K;
  const out = new Uint8Array(blocks * Q4_K_BLOCK_BYTES);
  const levels = new Uint8Array(QK_K), aux = new Uint8Array(32), weights = new Float32Array(32);
  const scales = new Float32Array(8), mins = new Float32Array(8);
  for (let b = 0; b < blocks; b++) {
    const x = values.subarray(b * QK_K, (b + 1) * QK_K), o = b * Q4_K_BLOCK_BYTES;
    let maxScale = 0, maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const xs = x.subarray(32 * j, 32 * j + 32);
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(xs[l]! * xs[l]!));
      const av = f(Math.sqrt(f(sumX2 / 32)));
      for (let l = 0; l < 32; l++) weights[l] = f(av + Math.abs(xs[l]!));
      [scales[j], mins[j]] = bestScaleMin(xs, weights, levels.subarray(32 * j, 32 * j + 32), aux);
      if (scales[j]! > maxScale) maxScale = scales[j]!;
      if (mins[j]! > maxMin) maxMin = mins[j]!;
    }
    const invScale = maxScale > 0 ? f(63 / maxScale) : 0, invMin = maxMin > 0 ? f(63 / maxMin) : 0;
    const packed = out.subarray(o + 4, o + 16);
    for (let j = 0; j < 8; j++) {
      const ls = Math.min(63, nearestInt(f(invScale * scales[j]!)) & 0xff), lm = Math.min(63, nearestInt(f(invMin * mins[j]!)) & 0xff);
      if (j < 4) {
        packed[j] = ls;
        packed[j + 4] = lm;
      } else {
        packed[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        packed[j - 4]! |= (ls >> 4) << 6;
        packed[j]! |= (lm >> 4) << 6;
      }
    }
    const dBits = f32ToF16(f(maxScale / 63)), minBits = f32ToF16(f(maxMin / 63));
    out[o] = dBits & 0xff; out[o + 1] = dBits >>> 8;
    out[o + 2] = minBits & 0xff; out[o + 3] = minBits >>> 8;
    const d0 = f16ToF32(dBits), m0 = f16ToF32(minBits);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = j < 4 ? [packed[j]! & 63, packed[j + 4]! & 63]
        : [(packed[j + 4]! & 0xf) | ((packed[j - 4]! >> 6) << 4), (packed[j + 4]! >> 4) | ((packed[j]! >> 6) << 4)];
      const d = f(d0 * sc);
      if (!d) continue;
      const dm = f(m0 * m);
      for (let i = 0; i < 32; i++) levels[32 * j + i] = Math.max(0, Math.min(15, nearestInt(f(f(x[32 * j + i]! + dm) / d))));
    }
    for (let j = 0, q = o + 16; j < QK_K; j += 64, q += 32) {
      for (let l = 0; l < 32; l++) out[q + l] = levels[j + l]! | (levels[j + l + 32]! << 4);
    }
  }
  return out;
}
