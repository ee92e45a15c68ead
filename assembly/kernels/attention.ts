import { madd, hsum } from "./simd";
import { maxValue, expShifted } from "./softmax";

// Causal attention of n query rows over their own sequence's KV cache, grouped-query heads.
// Row r belongs to cache slot slots[r] at position positions[r] and attends to positions 0..positions[r]
// of that slot only, so packed rows of different sequences never see each other (no padding needed).
// Cache layout: [slot][pos][kvDim]; query head h reads KV head h / (nHeads / nKvHeads).
// Per head: scores q·k_t (four positions at a time when the head size is a multiple of 4), then
// e_t = exp(scale·(s_t − max)) and out = Σ_t e_t·v_t / Σ_t e_t, with the sum folded in at the end.
// Training passes savedProbs: the probabilities P_t = e_t / Σ e are kept for the backward pass, row r's heads at
// savedProbs + probOffsets[r] floats, one block of positions+1 values per head.
export function attentionForward(
  out: usize, q: usize, kCache: usize, vCache: usize, n: i32, slots: usize, positions: usize,
  nHeads: i32, nKvHeads: i32, headSize: i32, seqLen: i32, scores: usize, savedProbs: usize = 0, probOffsets: usize = 0,
): void {
  const dim = nHeads * headSize, kvDim = nKvHeads * headSize;
  const group = nHeads / nKvHeads;
  const headBytes = <usize>headSize << 2;
  const kvRowBytes = <usize>kvDim << 2;
  const scale: f32 = <f32>1.0 / Mathf.sqrt(<f32>headSize);
  for (let r = 0; r < n; r++) {
    const slot = load<i32>(slots + (<usize>r << 2));
    const pos = load<i32>(positions + (<usize>r << 2));
    const slotOffset = <usize>slot * seqLen * kvRowBytes;
    for (let h = 0; h < nHeads; h++) {
      const qh = q + ((<usize>r * dim) << 2) + <usize>h * headBytes;
      const kvOffset = slotOffset + <usize>(h / group) * headBytes;
      attentionScores(scores, qh, kCache + kvOffset, pos + 1, headSize, kvRowBytes);
      const inv: f32 = <f32>1.0 / expShifted(scores, scores, pos + 1, scale, maxValue(scores, pos + 1));
      weightedSum(out + ((<usize>r * dim) << 2) + <usize>h * headBytes, scores, vCache + kvOffset, pos + 1, headSize, kvRowBytes, inv);
      if (savedProbs != 0) scaleInto(headProbs(savedProbs, probOffsets, r, h, pos + 1), scores, inv, pos + 1);
    }
  }
}

/** scores[t] = q·k_t for t < count, k_t at k + t·rowBytes. */
function attentionScores(scores: usize, q: usize, k: usize, count: i32, headSize: i32, rowBytes: usize): void {
  const vecBytes = <usize>(headSize & ~3) << 2;
  const headBytes = <usize>headSize << 2;
  let t = 0;
  if ((headSize & 3) == 0) {
    // Four positions at once: four accumulators, then a 4×4 transpose-and-add leaves the four dot products in one vector.
    for (; t + 4 <= count; t += 4) {
      const k0 = k + <usize>t * rowBytes, k1 = k0 + rowBytes, k2 = k1 + rowBytes, k3 = k2 + rowBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let i: usize = 0; i < vecBytes; i += 16) {
        const qv = v128.load(q + i);
        a0 = madd(qv, v128.load(k0 + i), a0);
        a1 = madd(qv, v128.load(k1 + i), a1);
        a2 = madd(qv, v128.load(k2 + i), a2);
        a3 = madd(qv, v128.load(k3 + i), a3);
      }
      const u01 = f32x4.add(i32x4.shuffle(a0, a1, 0, 4, 1, 5), i32x4.shuffle(a0, a1, 2, 6, 3, 7));
      const u23 = f32x4.add(i32x4.shuffle(a2, a3, 0, 4, 1, 5), i32x4.shuffle(a2, a3, 2, 6, 3, 7));
      v128.store(scores + (<usize>t << 2), f32x4.add(i32x4.shuffle(u01, u23, 0, 1, 4, 5), i32x4.shuffle(u01, u23, 2, 3, 6, 7)));
    }
  }
  for (; t < count; t++) {
    const kt = k + <usize>t * rowBytes;
    let acc = f32x4.splat(0);
    for (let i: usize = 0; i < vecBytes; i += 16) acc = madd(v128.load(q + i), v128.load(kt + i), acc);
    let s = hsum(acc);
    for (let i = vecBytes; i < headBytes; i += 4) s += load<f32>(q + i) * load<f32>(kt + i);
    store<f32>(scores + (<usize>t << 2), s);
  }
}

/** out = scale · Σ_{t < count} weights[t]·v_t, one head-dim vector at a time so its accumulator stays in a register. */
function weightedSum(out: usize, weights: usize, v: usize, count: i32, headSize: i32, rowBytes: usize, scale: f32): void {
  const vecBytes = <usize>(headSize & ~3) << 2;
  const headBytes = <usize>headSize << 2;
  for (let i: usize = 0; i < vecBytes; i += 16) {
    let acc = f32x4.splat(0);
    for (let t = 0; t < count; t++) {
      acc = madd(v128.load32_splat(weights + (<usize>t << 2)), v128.load(v + <usize>t * rowBytes + i), acc);
    }
    v128.store(out + i, f32x4.mul(acc, f32x4.splat(scale)));
  }
  for (let i = vecBytes; i < headBytes; i += 4) {
    let acc: f32 = 0;
    for (let t = 0; t < count; t++) acc += load<f32>(weights + (<usize>t << 2)) * load<f32>(v + <usize>t * rowBytes + i);
    store<f32>(out + i, acc * scale);
  }
}

// Backward, per row and head, with the probabilities recomputed by the forward's own kernels:
//   P = softmax(scale·q·K), dP_t = dO·v_t, dS_t = P_t·(dP_t − Σ_u P_u·dP_u)
//   dq = scale·Σ_t dS_t·k_t (written), dK_t += scale·dS_t·q and dV_t += P_t·dO (added, in cache layout)
// scratch holds 2·seqLen floats. With savedProbs (as attentionForward kept them) the probabilities are read, not recomputed.
export function attentionBackward(
  dq: usize, dKCache: usize, dVCache: usize, dOut: usize, q: usize, kCache: usize, vCache: usize,
  n: i32, slots: usize, positions: usize, nHeads: i32, nKvHeads: i32, headSize: i32, seqLen: i32, scratch: usize,
  savedProbs: usize = 0, probOffsets: usize = 0,
): void {
  const dim = nHeads * headSize, kvDim = nKvHeads * headSize;
  const group = nHeads / nKvHeads;
  const headBytes = <usize>headSize << 2;
  const kvRowBytes = <usize>kvDim << 2;
  const scale: f32 = <f32>1.0 / Mathf.sqrt(<f32>headSize);
  const dProbs = scratch + (<usize>seqLen << 2);
  for (let r = 0; r < n; r++) {
    const slot = load<i32>(slots + (<usize>r << 2));
    const pos = load<i32>(positions + (<usize>r << 2));
    const count = pos + 1;
    const slotOffset = <usize>slot * seqLen * kvRowBytes;
    for (let h = 0; h < nHeads; h++) {
      const headOffset = ((<usize>r * dim) << 2) + <usize>h * headBytes;
      const qh = q + headOffset, dOh = dOut + headOffset;
      const kvOffset = slotOffset + <usize>(h / group) * headBytes;
      let probs = scratch;
      if (savedProbs != 0) {
        probs = headProbs(savedProbs, probOffsets, r, h, count);
      } else {
        attentionScores(probs, qh, kCache + kvOffset, count, headSize, kvRowBytes);
        scaleInto(probs, probs, <f32>1.0 / expShifted(probs, probs, count, scale, maxValue(probs, count)), count);
      }
      attentionScores(dProbs, dOh, vCache + kvOffset, count, headSize, kvRowBytes);
      let dot: f32 = 0;
      for (let t = 0; t < count; t++) dot += load<f32>(probs + (<usize>t << 2)) * load<f32>(dProbs + (<usize>t << 2));
      for (let t = 0; t < count; t++) {
        const at = dProbs + (<usize>t << 2);
        store<f32>(at, load<f32>(probs + (<usize>t << 2)) * (load<f32>(at) - dot));
      }
      weightedSum(dq + headOffset, dProbs, kCache + kvOffset, count, headSize, kvRowBytes, scale);
      for (let t = 0; t < count; t++) {
        const rowOffset = kvOffset + <usize>t * kvRowBytes;
        axpy(dKCache + rowOffset, qh, scale * load<f32>(dProbs + (<usize>t << 2)), headSize);
        axpy(dVCache + rowOffset, dOh, load<f32>(probs + (<usize>t << 2)), headSize);
      }
    }
  }
}

/** Where row r's head h keeps its count probabilities in savedProbs. */
// @ts-ignore: decorator
@inline function headProbs(savedProbs: usize, probOffsets: usize, r: i32, h: i32, count: i32): usize {
  return savedProbs + ((<usize>load<i32>(probOffsets + (<usize>r << 2)) + <usize>h * count) << 2);
}

/** out = a·x over count floats (out may alias x). */
function scaleInto(out: usize, x: usize, a: f32, count: i32): void {
  const vecBytes = <usize>(count & ~3) << 2;
  const a4 = f32x4.splat(a);
  for (let k: usize = 0; k < vecBytes; k += 16) v128.store(out + k, f32x4.mul(v128.load(x + k), a4));
  for (let k = vecBytes; k < (<usize>count << 2); k += 4) store<f32>(out + k, load<f32>(x + k) * a);
}

/** y += a·x over count floats. */
// @ts-ignore: decorator
@inline function axpy(y: usize, x: usize, a: f32, count: i32): void {
  const vecBytes = <usize>(count & ~3) << 2;
  const a4 = f32x4.splat(a);
  for (let k: usize = 0; k < vecBytes; k += 16) v128.store(y + k, madd(a4, v128.load(x + k), v128.load(y + k)));
  for (let k = vecBytes; k < (<usize>count << 2); k += 4) store<f32>(y + k, load<f32>(y + k) + a * load<f32>(x + k));
}
