// An independent, plain float64 Llama forward (llama2.c's architecture, and the optional parts of the others: head
// size ≠ dim/heads, q/k/v biases, per-head q/k RMSNorm, RoPE frequency scaling) for gradient checks: scalar loops, no
// sharing with the WASM kernels. loss = −Σ_examples Σ_t weights[t]·log p(ids[t] | ids[<t]). With a scalar head
// (config.scoreHead) loss = Σ_examples Σ_t weights[t]·score(ids[≤t]), score = score·rmsnorm(x).
// Optionally LoRA adapters (y += scale·B·(A·dropout(x)) on the projections they target), with the dropout multipliers given by `keep`.
import { headSize, kvDim, qDim, weightShapes, type ModelConfig, type ModelWeights, type WeightName } from '../../src/core/config';
import { Prng } from '../../src/core/prng';

export type Weights64 = Partial<Record<WeightName, Float64Array>>;

const rmsnorm = (x: Float64Array, w: Float64Array, wOffset: number, eps: number): Float64Array => {
  let ss = 0;
  for (const v of x) ss += v * v;
  const s = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => w[wOffset + i]! * v * s);
};

/** y = W·x for W [rows, cols] stored at offset. */
const matvec = (w: Float64Array, offset: number, rows: number, cols: number, x: Float64Array): Float64Array => {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += w[offset + r * cols + c]! * x[c]!;
    y[r] = s;
  }
  return y;
};

/** RoPE frequencies: theta^(−i/hs) rounded to float32 as llama2.c and the kernels form them, then scaled if asked. */
function frequencies(c: ModelConfig): number[] {
  const hs = headSize(c);
  return Array.from({ length: hs / 2 }, (_, j) => {
    const freq = Math.fround(1 / Math.fround(Math.pow(c.ropeTheta, (2 * j) / hs)));
    const s = c.ropeScaling;
    if (!s) return freq;
    if (s.type === 'factors') return Math.fround(freq / s.factors[j]!);
    // transformers' llama3 rule, written out per regime.
    const wavelen = (2 * Math.PI) / freq;
    const lo = s.originalMaxPositionEmbeddings / s.lowFreqFactor, hi = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    if (wavelen < hi) return freq;
    if (wavelen > lo) return Math.fround(freq / s.factor);
    const t = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return Math.fround((1 - t) * (freq / s.factor) + t * freq);
  });
}

function rope(v: Float64Array, pos: number, nHeads: number, hs: number, freqs: number[]): void {
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < hs; i += 2) {
      // The angle as llama2.c and the kernels form it: rounded to float32.
      const angle = Math.fround(pos * freqs[i / 2]!);
      const c = Math.cos(angle), s = Math.sin(angle);
      const a = v[h * hs + i]!, b = v[h * hs + i + 1]!;
      v[h * hs + i] = a * c - b * s;
      v[h * hs + i + 1] = a * s + b * c;
    }
  }
}

export interface ReferenceLora {
  rank: number;
  scale: number;
  /** Per target (q, k, v, o, gate, up, down): A [nLayers, rank, in] and B [nLayers, out, rank]. */
  adapters: Record<string, { a: Float64Array; b: Float64Array }>;
  /** The dropout multiplier of an input value (default 1: none). */
  keep?: (seed: number, pos: number, layer: number, target: string, col: number) => number;
}

/** onLogits, when given, sees the logits of every row that predicts a token (weight 0 too): example index, position. */
export function referenceLoss(c: ModelConfig, w: Weights64, examples: { ids: number[]; weights: number[]; dropoutSeed?: number }[], lora?: ReferenceLora,
  onLogits?: (example: number, pos: number, logits: Float64Array) => void): number {
  const D = c.dim, H = c.hiddenDim, hs = headSize(c), KV = kvDim(c), Q = qDim(c), group = c.nHeads / c.nKvHeads;
  const wcls = c.sharedClassifier ? w.token_embedding_table! : w.wcls!;
  const freqs = frequencies(c);
  /** Adds layer l's bias to a projection and applies the per-head norm, when the model has them. */
  const finish = (y: Float64Array, l: number, heads: number, bias: WeightName, norm: WeightName): Float64Array => {
    if (c.qkvBias) y = y.map((v, i) => v + w[bias]![l * y.length + i]!);
    if (!c.qkNorm || bias === 'bv') return y;
    const out = new Float64Array(y.length);
    for (let h = 0; h < heads; h++) out.set(rmsnorm(y.slice(h * hs, (h + 1) * hs), w[norm]!, l * hs, c.normEps), h * hs);
    return out;
  };
  let seed = 0, pos = 0;
  /** y with layer l's adapter of `target` on input x added. */
  const adapt = (y: Float64Array, target: string, l: number, x: Float64Array): Float64Array => {
    const ad = lora?.adapters[target];
    if (!ad) return y;
    const r = lora!.rank, inDim = x.length, outDim = y.length;
    const xd = x.map((v, col) => v * (lora!.keep ? lora!.keep(seed, pos, l, target, col) : 1));
    const u = new Float64Array(r);
    for (let k = 0; k < r; k++) for (let i = 0; i < inDim; i++) u[k]! += ad.a[l * r * inDim + k * inDim + i]! * xd[i]!;
    return y.map((v, o) => {
      let s = 0;
      for (let k = 0; k < r; k++) s += ad.b[l * outDim * r + o * r + k]! * u[k]!;
      return v + lora!.scale * s;
    });
  };
  let loss = 0;
  for (const [e, ex] of examples.entries()) {
    seed = ex.dropoutSeed ?? 0;
    const keys: Float64Array[][] = Array.from({ length: c.nLayers }, () => []);
    const values: Float64Array[][] = Array.from({ length: c.nLayers }, () => []);
    for (pos = 0; pos < ex.ids.length - (c.scoreHead ? 0 : 1); pos++) {
      let x = w.token_embedding_table!.slice(ex.ids[pos]! * D, (ex.ids[pos]! + 1) * D);
      for (let l = 0; l < c.nLayers; l++) {
        const xb = rmsnorm(x, w.rms_att_weight!, l * D, c.normEps);
        const q = finish(adapt(matvec(w.wq!, l * Q * D, Q, D, xb), 'q', l, xb), l, c.nHeads, 'bq', 'rms_q_weight');
        const k = finish(adapt(matvec(w.wk!, l * KV * D, KV, D, xb), 'k', l, xb), l, c.nKvHeads, 'bk', 'rms_k_weight');
        const v = finish(adapt(matvec(w.wv!, l * KV * D, KV, D, xb), 'v', l, xb), l, c.nKvHeads, 'bv', 'rms_k_weight');
        rope(q, pos, c.nHeads, hs, freqs);
        rope(k, pos, c.nKvHeads, hs, freqs);
        keys[l]!.push(k);
        values[l]!.push(v);
        const att = new Float64Array(Q);
        for (let h = 0; h < c.nHeads; h++) {
          const g = Math.floor(h / group);
          const scores = keys[l]!.map((kt) => {
            let s = 0;
            for (let i = 0; i < hs; i++) s += q[h * hs + i]! * kt[g * hs + i]!;
            return s / Math.sqrt(hs);
          });
          const m = Math.max(...scores);
          const e = scores.map((s) => Math.exp(s - m));
          const sum = e.reduce((a, b) => a + b, 0);
          for (let t = 0; t < e.length; t++) {
            for (let i = 0; i < hs; i++) att[h * hs + i]! += (e[t]! / sum) * values[l]![t]![g * hs + i]!;
          }
        }
        const o = adapt(matvec(w.wo!, l * D * Q, D, Q, att), 'o', l, att);
        x = x.map((xi, i) => xi + o[i]!);
        const xf = rmsnorm(x, w.rms_ffn_weight!, l * D, c.normEps);
        const h1 = adapt(matvec(w.w1!, l * H * D, H, D, xf), 'gate', l, xf);
        const h3 = adapt(matvec(w.w3!, l * H * D, H, D, xf), 'up', l, xf);
        const gated = h1.map((a, i) => (a / (1 + Math.exp(-a))) * h3[i]!);
        const f = adapt(matvec(w.w2!, l * D * H, D, H, gated), 'down', l, gated);
        x = x.map((xi, i) => xi + f[i]!);
      }
      if (c.scoreHead) {
        const normed = rmsnorm(x, w.rms_final_weight!, 0, c.normEps);
        loss += ex.weights[pos]! * normed.reduce((sum, v, i) => sum + v * w.score![i]!, 0);
        continue;
      }
      const weight = ex.weights[pos + 1]!;
      if (weight === 0 && !onLogits) continue;
      const logits = matvec(wcls, 0, c.vocabSize, D, rmsnorm(x, w.rms_final_weight!, 0, c.normEps));
      onLogits?.(e, pos, logits);
      if (weight === 0) continue;
      const m = Math.max(...logits);
      const lse = m + Math.log(logits.reduce((s, z) => s + Math.exp(z - m), 0));
      loss -= weight * (logits[ex.ids[pos + 1]!]! - lse);
    }
  }
  return loss;
}

/**
 * For 6 seeded elements of every tensor: the engine's gradient, the central difference of referenceLoss there, and
 * their relative error |g − fd| / max(|fd|, 1e-2·max|g of the tensor|).
 */
export function finiteDifferenceErrors(c: ModelConfig, w: Weights64, examples: { ids: number[]; weights: number[] }[], grads: ModelWeights):
  { name: WeightName; i: number; gradient: number; fd: number; err: number }[] {
  const rng = new Prng(9);
  const out: { name: WeightName; i: number; gradient: number; fd: number; err: number }[] = [];
  for (const { name } of weightShapes(c)) {
    const t = w[name]!, g = grads[name]!;
    const scale = Array.from(g).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    for (let sample = 0; sample < 6; sample++) {
      const i = Math.floor(rng.nextFloat64() * t.length);
      const h = 1e-5 * Math.max(1, Math.abs(t[i]!));
      const keep = t[i]!;
      t[i] = keep + h;
      const plus = referenceLoss(c, w, examples);
      t[i] = keep - h;
      const minus = referenceLoss(c, w, examples);
      t[i] = keep;
      const fd = (plus - minus) / (2 * h);
      out.push({ name, i, gradient: g[i]!, fd, err: Math.abs(g[i]! - fd) / Math.max(Math.abs(fd), 1e-2 * scale) });
    }
  }
  return out;
}
