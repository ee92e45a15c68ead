import { madd, exp4 } from "./simd";

// Causal attention of n query rows over their own sequence's KV cache, grouped-query heads.
// Row r belongs to cache slot slots[r] at position positions[r] and attends to positions 0..positions[r]
// of that slot only, so packed rows of different sequences never see each other (no padding needed).
// Cache layout: [slot][pos][kvDim]; query head h reads KV head h / (nHeads / nKvHeads).
// Per head: scores s_t = q·k_t, e_t = exp(scale·(s_t − max)) and out = Σ_t e_t·v_t / Σ_t e_t, the division folded in at
// the end. Positions go four at a time; the last, partial block of scores is computed whole (its missing rows read
// as the last real row, never beyond it) and then masked, so no per-position tail runs the expensive steps.
// scores: attentionScratchFloats(seqLen) floats.
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
      const maxScore = attentionScores(scores, qh, kCache + kvOffset, pos + 1, headSize, kvRowBytes, -Infinity);
      const inv: f32 = <f32>1.0 / expScores(scores, pos + 1, scale, maxScore);
      weightedSum(out + ((<usize>r * dim) << 2) + <usize>h * headBytes, scores, vCache + kvOffset, pos + 1, headSize, kvRowBytes, inv);
      if (savedProbs != 0) scaleInto(headProbs(savedProbs, probOffsets, r, h, pos + 1), scores, inv, pos + 1);
    }
  }
}

/** Floats of attention scratch for a context of seqLen: two rows of scores, each rounded up to whole vectors. */
export function attentionScratchFloats(seqLen: i32): i32 {
  return 2 * ((seqLen + 3) & ~3);
}

/**
 * scores[t] = q·k_t for t < count (k_t at k + t·rowBytes), and scores[t] = pad up to the next multiple of 4.
 * Four positions at a time: four accumulators, then a 4×4 transpose-and-add leaves the four dot products in one vector.
 * Returns the largest of the stored values.
 */
function attentionScores(scores: usize, q: usize, k: usize, count: i32, headSize: i32, rowBytes: usize, pad: f32): f32 {
  const full = count & ~3;
  let m4 = f32x4.splat(-Infinity);
  for (let t = 0; t < full; t += 4) {
    const k0 = k + <usize>t * rowBytes;
    const s = dot4(q, k0, k0 + rowBytes, k0 + 2 * rowBytes, k0 + 3 * rowBytes, headSize);
    v128.store(scores + (<usize>t << 2), s);
    m4 = f32x4.pmax(m4, s);
  }
  if (full < count) {
    // The partial block: rows past the last real one read that row again, and their lanes are replaced by pad.
    const last = count - 1;
    const k0 = k + <usize>full * rowBytes;
    const k1 = k + <usize>min(full + 1, last) * rowBytes, k2 = k + <usize>min(full + 2, last) * rowBytes;
    let s = dot4(q, k0, k1, k2, k + <usize>last * rowBytes, headSize);
    s = v128.bitselect(s, f32x4.splat(pad), i32x4.lt_s(i32x4(full, full + 1, full + 2, full + 3), i32x4.splat(count)));
    v128.store(scores + (<usize>full << 2), s);
    m4 = f32x4.pmax(m4, s);
  }
  return max(max(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)), max(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)));
}

/** The four dot products q·k0 … q·k3 over headSize floats, as one vector. */
// @ts-ignore: decorator
@inline function dot4(q: usize, k0: usize, k1: usize, k2: usize, k3: usize, headSize: i32): v128 {
  const vecBytes = <usize>(headSize & ~3) << 2;
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
  let s = f32x4.add(i32x4.shuffle(u01, u23, 0, 1, 4, 5), i32x4.shuffle(u01, u23, 2, 3, 6, 7));
  if ((headSize & 3) != 0) {
    let tail = f32x4.splat(dotTail(q, k0, headSize));
    tail = f32x4.replace_lane(tail, 1, dotTail(q, k1, headSize));
    tail = f32x4.replace_lane(tail, 2, dotTail(q, k2, headSize));
    tail = f32x4.replace_lane(tail, 3, dotTail(q, k3, headSize));
    s = f32x4.add(s, tail);
  }
  return s;
}

/** Dot product over the head's last headSize mod 4 floats. */
// @ts-ignore: decorator
@inline function dotTail(a: usize, b: usize, headSize: i32): f32 {
  let s: f32 = 0;
  for (let i = <usize>(headSize & ~3) << 2; i < (<usize>headSize << 2); i += 4) s += load<f32>(a + i) * load<f32>(b + i);
  return s;
}

/**
 * In place over the whole vectors covering count scores: e = exp(scale·(s − maxScore)), −∞ scores (the pad) give
 * exactly 0. Returns Σ e.
 */
function expScores(scores: usize, count: i32, scale: f32, maxScore: f32): f32 {
  const end = <usize>((count + 3) & ~3) << 2;
  const s4 = f32x4.splat(scale), m4 = f32x4.splat(maxScore), ninf = f32x4.splat(-Infinity);
  let acc = f32x4.splat(0);
  for (let k: usize = 0; k < end; k += 16) {
    const s = v128.load(scores + k);
    const e = v128.and(exp4(f32x4.mul(s4, f32x4.sub(s, m4))), f32x4.ne(s, ninf));
    v128.store(scores + k, e);
    acc = f32x4.add(acc, e);
  }
  return (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
}

/**
 * out = scale · Σ_{t < count} weights[t]·v_t. One head-dim vector at a time with four accumulators (one per position of
 * a block of four), so no add waits on the previous one.
 */
function weightedSum(out: usize, weights: usize, v: usize, count: i32, headSize: i32, rowBytes: usize, scale: f32): void {
  const vecBytes = <usize>(headSize & ~3) << 2;
  const headBytes = <usize>headSize << 2;
  const full = count & ~3;
  for (let i: usize = 0; i < vecBytes; i += 16) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let t = 0; t < full; t += 4) {
      const w = weights + (<usize>t << 2), vt = v + <usize>t * rowBytes + i;
      a0 = madd(v128.load32_splat(w), v128.load(vt), a0);
      a1 = madd(v128.load32_splat(w + 4), v128.load(vt + rowBytes), a1);
      a2 = madd(v128.load32_splat(w + 8), v128.load(vt + 2 * rowBytes), a2);
      a3 = madd(v128.load32_splat(w + 12), v128.load(vt + 3 * rowBytes), a3);
    }
    for (let t = full; t < count; t++) {
      a0 = madd(v128.load32_splat(weights + (<usize>t << 2)), v128.load(v + <usize>t * rowBytes + i), a0);
    }
    v128.store(out + i, f32x4.mul(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.splat(scale)));
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
// dq, dK and dV are updated in one pass over the positions, so each K, V, dK and dV row is touched once.
// scratch holds attentionScratchFloats(seqLen) floats. With savedProbs (as attentionForward kept them) the
// probabilities are read, not recomputed.
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
  const dProbs = scratch + (<usize>(attentionScratchFloats(seqLen) >> 1) << 2);
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
        const maxScore = attentionScores(probs, qh, kCache + kvOffset, count, headSize, kvRowBytes, -Infinity);
        scaleInto(probs, probs, <f32>1.0 / expScores(probs, count, scale, maxScore), count);
      }
      attentionScores(dProbs, dOh, vCache + kvOffset, count, headSize, kvRowBytes, 0);
      scoreGradients(dProbs, probs, count);
      backwardRows(dq + headOffset, dKCache + kvOffset, dVCache + kvOffset, qh, dOh, kCache + kvOffset, dProbs, probs,
        count, headSize, kvRowBytes, scale);
    }
  }
}

/** In place: dProbs[t] = P_t·(dP_t − Σ_u P_u·dP_u) for t < count. */
function scoreGradients(dProbs: usize, probs: usize, count: i32): void {
  const fullBytes = <usize>(count & ~3) << 2, countBytes = <usize>count << 2;
  let acc = f32x4.splat(0);
  for (let k: usize = 0; k < fullBytes; k += 16) acc = madd(v128.load(probs + k), v128.load(dProbs + k), acc);
  let dot = (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
  for (let k = fullBytes; k < countBytes; k += 4) dot += load<f32>(probs + k) * load<f32>(dProbs + k);
  const dotv = f32x4.splat(dot);
  for (let k: usize = 0; k < fullBytes; k += 16) {
    v128.store(dProbs + k, f32x4.mul(v128.load(probs + k), f32x4.sub(v128.load(dProbs + k), dotv)));
  }
  for (let k = fullBytes; k < countBytes; k += 4) store<f32>(dProbs + k, load<f32>(probs + k) * (load<f32>(dProbs + k) - dot));
}

/**
 * One pass over the positions t < count: dq = scale·Σ_t dS_t·k_t, dK_t += dS_t·(scale·q), dV_t += P_t·dO.
 * One head-dim vector at a time; dq keeps four accumulators (one per position of a block of four).
 */
function backwardRows(dq: usize, dK: usize, dV: usize, q: usize, dO: usize, k: usize, dS: usize, probs: usize,
  count: i32, headSize: i32, rowBytes: usize, scale: f32): void {
  const vecBytes = <usize>(headSize & ~3) << 2;
  const headBytes = <usize>headSize << 2;
  const full = count & ~3;
  const scale4 = f32x4.splat(scale);
  for (let i: usize = 0; i < vecBytes; i += 16) {
    const qs = f32x4.mul(v128.load(q + i), scale4), dOv = v128.load(dO + i);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let t = 0; t < full; t += 4) {
      const at = <usize>t * rowBytes + i;
      const ds = dS + (<usize>t << 2), p = probs + (<usize>t << 2);
      a0 = madd(v128.load32_splat(ds), v128.load(k + at), a0);
      a1 = madd(v128.load32_splat(ds + 4), v128.load(k + at + rowBytes), a1);
      a2 = madd(v128.load32_splat(ds + 8), v128.load(k + at + 2 * rowBytes), a2);
      a3 = madd(v128.load32_splat(ds + 12), v128.load(k + at + 3 * rowBytes), a3);
      for (let j: usize = 0; j < 4; j++) {
        const row = at + j * rowBytes;
        v128.store(dK + row, madd(v128.load32_splat(ds + (j << 2)), qs, v128.load(dK + row)));
        v128.store(dV + row, madd(v128.load32_splat(p + (j << 2)), dOv, v128.load(dV + row)));
      }
    }
    for (let t = full; t < count; t++) {
      const at = <usize>t * rowBytes + i;
      const ds = v128.load32_splat(dS + (<usize>t << 2));
      a0 = madd(ds, v128.load(k + at), a0);
      v128.store(dK + at, madd(ds, qs, v128.load(dK + at)));
      v128.store(dV + at, madd(v128.load32_splat(probs + (<usize>t << 2)), dOv, v128.load(dV + at)));
    }
    v128.store(dq + i, f32x4.mul(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), scale4));
  }
  for (let i = vecBytes; i < headBytes; i += 4) {
    const qs = scale * load<f32>(q + i), dOs = load<f32>(dO + i);
    let acc: f32 = 0;
    for (let t = 0; t < count; t++) {
      const at = <usize>t * rowBytes + i;
      const ds = load<f32>(dS + (<usize>t << 2));
      acc += ds * load<f32>(k + at);
      store<f32>(dK + at, load<f32>(dK + at) + ds * qs);
      store<f32>(dV + at, load<f32>(dV + at) + load<f32>(probs + (<usize>t << 2)) * dOs);
    }
    store<f32>(dq + i, acc * scale);
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
