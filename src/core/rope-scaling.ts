// RoPE frequency scaling: the inverse frequencies a model's tables are filled from, as transformers computes them
// (rope_type "llama3", _compute_llama3_parameters) or as llama.cpp stores them (rope_freqs: one divisor each).
import type { RopeScaling } from './config';

/** Rescales inverse frequencies in place (float32, as the tables use them). */
export function scaleInverseFrequencies(freqs: Float32Array, scaling: RopeScaling): void {
  if (scaling.type === 'factors') {
    freqs.forEach((f, i) => { freqs[i] = f / scaling.factors[i]!; });
    return;
  }
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: context } = scaling;
  const lowFreqWavelen = context / lowFreqFactor, highFreqWavelen = context / highFreqFactor;
  freqs.forEach((f, i) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) return; // high frequencies: unchanged
    if (wavelen > lowFreqWavelen) {
      freqs[i] = f / factor; // low frequencies: interpolated by the whole factor
      return;
    }
    const smooth = (context / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    freqs[i] = (1 - smooth) * (f / factor) + smooth * f;
  });
}

/** The per-frequency divisors a scaling amounts to (what a GGUF file's rope_freqs tensor holds). */
export function frequencyDivisors(headSize: number, theta: number, scaling: RopeScaling): number[] {
  if (scaling.type === 'factors') return scaling.factors.slice();
  const base = Float32Array.from({ length: headSize / 2 }, (_, i) => 1 / Math.pow(theta, (2 * i) / headSize));
  const scaled = base.slice();
  scaleInverseFrequencies(scaled, scaling);
  return Array.from(base, (f, i) => f / scaled[i]!);
}
