import { madd, exp4, hsum4 } from "./simd";

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
  const scratchRowBytes = <usize>((seqLen + 3) & ~3) << 2;
  const step = (group & 1) == 0 ? 2 : 1; // query heads taken together (a pair when the group size is even)
  for (let r = 0; r < n; r++) {
    const slot = load<i32>(slots + (<usize>r << 2));
    const pos = load<i32>(positions + (<usize>r << 2));
    const slotOffset = <usize>slot * seqLen * kvRowBytes;
    const count = pos + 1;
    for (let h = 0; h < nHeads; h += step) {
      const headOffset = ((<usize>r * dim) << 2) + <usize>h * headBytes;
      const kvOffset = slotOffset + <usize>(h / group) * headBytes;
      const k = kCache + kvOffset, v = vCache + kvOffset;
      if (step == 2) {
        // Both query heads of a pair against the same K and V rows (loaded once for the two).
        const scores1 = scores + scratchRowBytes;
        attentionScoresPair(scores, scores1, q + headOffset, k, count, headSize, kvRowBytes, -Infinity);
        const sums = expScoresPair(scores, scores1, count, scale, maxScore(scores, count), maxScore(scores1, count));
        const inv0: f32 = <f32>1.0 / f32x4.extract_lane(sums, 0), inv1: f32 = <f32>1.0 / f32x4.extract_lane(sums, 1);
        weightedSumPair(out + headOffset, scores, scores1, v, count, headSize, kvRowBytes, inv0, inv1);
        if (savedProbs != 0) {
          scaleInto(headProbs(savedProbs, probOffsets, r, h, count), scores, inv0, count);
          scaleInto(headProbs(savedProbs, probOffsets, r, h + 1, count), scores1, inv1, count);
        }
      } else {
        const maxS = attentionScores(scores, q + headOffset, k, count, headSize, kvRowBytes, -Infinity);
        const inv: f32 = <f32>1.0 / expScores(scores, count, scale, maxS);
        weightedSum(out + headOffset, scores, v, count, headSize, kvRowBytes, inv);
        if (savedProbs != 0) scaleInto(headProbs(savedProbs, probOffsets, r, h, count), scores, inv, count);
      }
    }
  }
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
 * attentionScores for the two query heads at q and q + headSize floats against the same keys, into s0 and s1
 * (each K row loaded once for both). The maxima are left to maxScore.
 */
function attentionScoresPair(s0: usize, s1: usize, q: usize, k: usize, count: i32, headSize: i32, rowBytes: usize, pad: f32): void {
  const full = count & ~3;
  for (let t = 0; t < full; t += 4) {
    const k0 = k + <usize>t * rowBytes, at = <usize>t << 2;
    dot4Pair(s0 + at, s1 + at, q, k0, k0 + rowBytes, k0 + 2 * rowBytes, k0 + 3 * rowBytes, headSize);
  }
  if (full < count) {
    const last = count - 1, at = <usize>full << 2;
    dot4Pair(s0 + at, s1 + at, q, k + <usize>full * rowBytes, k + <usize>min(full + 1, last) * rowBytes,
      k + <usize>min(full + 2, last) * rowBytes, k + <usize>last * rowBytes, headSize);
    const real = i32x4.lt_s(i32x4(full, full + 1, full + 2, full + 3), i32x4.splat(count));
    v128.store(s0 + at, v128.bitselect(v128.load(s0 + at), f32x4.splat(pad), real));
    v128.store(s1 + at, v128.bitselect(v128.load(s1 + at), f32x4.splat(pad), real));
  }
}

/** The dot products of both heads' queries with k0 … k3, stored as one vector per head at s0 and s1. */
// @ts-ignore: decorator
@inline function dot4Pair(s0: usize, s1: usize, q: usize, k0: usize, k1: usize, k2: usize, k3: usize, headSize: i32): void {
  const vecBytes = <usize>(headSize & ~3) << 2;
  const q1 = q + (<usize>headSize << 2);
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  for (let i: usize = 0; i < vecBytes; i += 16) {
    const qa = v128.load(q + i), qb = v128.load(q1 + i);
    let kv = v128.load(k0 + i);
    a0 = madd(qa, kv, a0); b0 = madd(qb, kv, b0);
    kv = v128.load(k1 + i);
    a1 = madd(qa, kv, a1); b1 = madd(qb, kv, b1);
    kv = v128.load(k2 + i);
    a2 = madd(qa, kv, a2); b2 = madd(qb, kv, b2);
    kv = v128.load(k3 + i);
    a3 = madd(qa, kv, a3); b3 = madd(qb, kv, b3);
  }
  let sa = hsum4(a0, a1, a2, a3), sb = hsum4(b0, b1, b2, b3);
  if ((headSize & 3) != 0) {
    sa = f32x4.add(sa, f32x4(dotTail(q, k0, headSize), dotTail(q, k1, headSize), dotTail(q, k2, headSize), dotTail(q, k3, headSize)));
    sb = f32x4.add(sb, f32x4(dotTail(q1, k0, headSize), dotTail(q1, k1, headSize), dotTail(q1, k2, headSize), dotTail(q1, k3, headSize)));
  }
  v128.store(s0, sa);
  v128.store(s1, sb);
}

/** Largest of the whole vectors covering count scores (the pad included). */
function maxScore(scores: usize, count: i32): f32 {
  const end = <usize>((count + 3) & ~3) << 2;
  let m4 = f32x4.splat(-Infinity);
  for (let k: usize = 0; k < end; k += 16) m4 = f32x4.pmax(m4, v128.load(scores + k));
  return max(max(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)), max(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)));
}

/**
 * In place over the whole vectors covering count scores: e = exp(scale·(s − maxScore)), −∞ scores (the pad) give
 * exactly 0 (see expOrZero). Returns Σ e.
 */
function expScores(scores: usize, count: i32, scale: f32, maxScore: f32): f32 {
  const end = <usize>((count + 3) & ~3) << 2;
  const s4 = f32x4.splat(scale), m4 = f32x4.splat(maxScore);
  let acc = f32x4.splat(0);
  for (let k: usize = 0; k < end; k += 16) {
    const e = expOrZero(f32x4.mul(s4, f32x4.sub(v128.load(scores + k), m4)));
    v128.store(scores + k, e);
    acc = f32x4.add(acc, e);
  }
  return (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
}

/**
 * expScores on two rows of scores in one loop, so that two independent exponentials are always in flight.
 * Returns [Σ e of s0, Σ e of s1, ·, ·].
 */
function expScoresPair(s0: usize, s1: usize, count: i32, scale: f32, max0: f32, max1: f32): v128 {
  const end = <usize>((count + 3) & ~3) << 2;
  const s4 = f32x4.splat(scale), m0 = f32x4.splat(max0), m1 = f32x4.splat(max1);
  let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
  for (let k: usize = 0; k < end; k += 16) {
    const e0 = expOrZero(f32x4.mul(s4, f32x4.sub(v128.load(s0 + k), m0)));
    const e1 = expOrZero(f32x4.mul(s4, f32x4.sub(v128.load(s1 + k), m1)));
    v128.store(s0 + k, e0);
    v128.store(s1 + k, e1);
    acc0 = f32x4.add(acc0, e0);
    acc1 = f32x4.add(acc1, e1);
  }
  return f32x4.replace_lane(f32x4.splat(hsumOrdered(acc0)), 1, hsumOrdered(acc1));
}

// Below this, e^x (< 2e-35) is taken as 0: next to the largest term (e^0 = 1) it is far below rounding, and exp4
// would otherwise compute subnormal values there (the −∞ pad lands at exp4's lower clamp), which x64 cores
// handle in slow microcode.
const EXP_ZERO_BELOW: f32 = -80;

/** e^x per lane, exactly 0 where x < EXP_ZERO_BELOW (−∞ included); NaN stays NaN. */
// @ts-ignore: decorator
@inline function expOrZero(x: v128): v128 {
  const zero = f32x4.lt(x, f32x4.splat(EXP_ZERO_BELOW));
  return v128.andnot(exp4(f32x4.pmax(x, f32x4.splat(EXP_ZERO_BELOW))), zero);
}

/** (l0 + l1) + (l2 + l3). */
// @ts-ignore: decorator
@inline function hsumOrdered(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
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

/** weightedSum for the two heads of a pair over the same V rows: out (head h) and out + headSize floats (head h + 1). */
function weightedSumPair(out: usize, w0: usize, w1: usize, v: usize, count: i32, headSize: i32, rowBytes: usize,
  scale0: f32, scale1: f32): void {
  const vecBytes = <usize>(headSize & ~3) << 2;
  const headBytes = <usize>headSize << 2;
  for (let i: usize = 0; i < vecBytes; i += 16) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), b0 = f32x4.splat(0), b1 = f32x4.splat(0);
    let t = 0;
    for (; t + 2 <= count; t += 2) {
      const ts = <usize>t << 2, vt = v + <usize>t * rowBytes + i;
      let vv = v128.load(vt);
      a0 = madd(v128.load32_splat(w0 + ts), vv, a0);
      b0 = madd(v128.load32_splat(w1 + ts), vv, b0);
      vv = v128.load(vt + rowBytes);
      a1 = madd(v128.load32_splat(w0 + ts + 4), vv, a1);
      b1 = madd(v128.load32_splat(w1 + ts + 4), vv, b1);
    }
    if (t < count) {
      const ts = <usize>t << 2, vv = v128.load(v + <usize>t * rowBytes + i);
      a0 = madd(v128.load32_splat(w0 + ts), vv, a0);
      b0 = madd(v128.load32_splat(w1 + ts), vv, b0);
    }
    v128.store(out + i, f32x4.mul(f32x4.add(a0, a1), f32x4.splat(scale0)));
    v128.store(out + headBytes + i, f32x4.mul(f32x4.add(b0, b1), f32x4.splat(scale1)));
  }
  for (let i = vecBytes; i < headBytes; i += 4) {
    let a: f32 = 0, b: f32 = 0;
    for (let t = 0; t < count; t++) {
      const vt = load<f32>(v + <usize>t * rowBytes + i);
      a += load<f32>(w0 + (<usize>t << 2)) * vt;
      b += load<f32>(w1 + (<usize>t << 2)) * vt;
    }
    store<f32>(out + i, a * scale0);
    store<f32>(out + headBytes + i, b * scale1);
  }
}

// Backward, per row and head, with the probabilities recomputed by the forward's own kernels:
//   P = softmax(scale·q·K), dP_t = dO·v_t, dS_t = P_t·(dP_t − Σ_u P_u·dP_u)
//   dq = scale·Σ_t dS_t·k_t (written), dK_t += scale·dS_t·q and dV_t += P_t·dO (added, in cache layout)
// dq, dK and dV are updated in one pass over the positions, for both query heads of a pair that share a KV head
// (when the group size is even), so each K, V, dK and dV row is read and written once per pair.
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
  const rowBytes = <usize>((seqLen + 3) & ~3) << 2; // one scratch row: probabilities or score gradients of one head
  const step = (group & 1) == 0 ? 2 : 1;
  for (let r = 0; r < n; r++) {
    const slot = load<i32>(slots + (<usize>r << 2));
    const pos = load<i32>(positions + (<usize>r << 2));
    const count = pos + 1;
    const slotOffset = <usize>slot * seqLen * kvRowBytes;
    for (let h = 0; h < nHeads; h += step) {
      const headOffset = ((<usize>r * dim) << 2) + <usize>h * headBytes;
      const kvOffset = slotOffset + <usize>(h / group) * headBytes;
      const k = kCache + kvOffset, v = vCache + kvOffset;
      if (step == 2) {
        // scratch rows: P of head h, dS of head h, P of head h + 1, dS of head h + 1.
        const dS0 = scratch + rowBytes, dS1 = scratch + 3 * rowBytes;
        let p0 = scratch, p1 = scratch + 2 * rowBytes;
        if (savedProbs != 0) {
          p0 = headProbs(savedProbs, probOffsets, r, h, count);
          p1 = headProbs(savedProbs, probOffsets, r, h + 1, count);
        } else {
          attentionScoresPair(p0, p1, q + headOffset, k, count, headSize, kvRowBytes, -Infinity);
          scaleInto(p0, p0, <f32>1.0 / expScores(p0, count, scale, maxScore(p0, count)), count);
          scaleInto(p1, p1, <f32>1.0 / expScores(p1, count, scale, maxScore(p1, count)), count);
        }
        attentionScoresPair(dS0, dS1, dOut + headOffset, v, count, headSize, kvRowBytes, 0);
        scoreGradients(dS0, p0, count);
        scoreGradients(dS1, p1, count);
        backwardRowsPair(dq + headOffset, dKCache + kvOffset, dVCache + kvOffset, q + headOffset, dOut + headOffset, k,
          scratch + rowBytes, p0, scratch + 3 * rowBytes, p1, count, headSize, kvRowBytes, scale);
      } else {
        const saved0 = savedProbs != 0 ? headProbs(savedProbs, probOffsets, r, h, count) : 0;
        const p0 = headScoreGradients(scratch, saved0, q + headOffset, dOut + headOffset, k, v, count, headSize, kvRowBytes, scale, rowBytes);
        backwardRows(dq + headOffset, dKCache + kvOffset, dVCache + kvOffset, q + headOffset, dOut + headOffset, k,
          scratch + rowBytes, p0, count, headSize, kvRowBytes, scale);
      }
    }
  }
}

/** Floats of attention scratch for a context of seqLen: four rows (two heads' probabilities and score gradients), whole vectors. */
export function attentionScratchFloats(seqLen: i32): i32 {
  return 4 * ((seqLen + 3) & ~3);
}

/**
 * One head's probabilities (saved, or recomputed into buf when saved is 0) and its score gradients dS (into
 * buf + rowBytes). Returns where the probabilities are.
 */
function headScoreGradients(buf: usize, saved: usize, q: usize, dO: usize, k: usize, v: usize, count: i32, headSize: i32,
  kvRowBytes: usize, scale: f32, rowBytes: usize): usize {
  let probs = saved;
  if (probs == 0) {
    probs = buf;
    const maxScore = attentionScores(probs, q, k, count, headSize, kvRowBytes, -Infinity);
    scaleInto(probs, probs, <f32>1.0 / expScores(probs, count, scale, maxScore), count);
  }
  attentionScores(buf + rowBytes, dO, v, count, headSize, kvRowBytes, 0);
  scoreGradients(buf + rowBytes, probs, count);
  return probs;
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
      a0 = rowUpdate(at, ds, p, k, dK, dV, qs, dOv, a0);
      a1 = rowUpdate(at + rowBytes, ds + 4, p + 4, k, dK, dV, qs, dOv, a1);
      a2 = rowUpdate(at + 2 * rowBytes, ds + 8, p + 8, k, dK, dV, qs, dOv, a2);
      a3 = rowUpdate(at + 3 * rowBytes, ds + 12, p + 12, k, dK, dV, qs, dOv, a3);
    }
    for (let t = full; t < count; t++) {
      a0 = rowUpdate(<usize>t * rowBytes + i, dS + (<usize>t << 2), probs + (<usize>t << 2), k, dK, dV, qs, dOv, a0);
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

/**
 * backwardRows for the two query heads h, h + 1 of one KV head (q, dO and dq of head h + 1 follow head h's), in one
 * pass: each K row is loaded once for both dq, each dK and dV row read and written once with both heads' terms.
 * Two positions at a time, each with its own dq accumulators.
 */
function backwardRowsPair(dq: usize, dK: usize, dV: usize, q: usize, dO: usize, k: usize, dS0: usize, p0: usize,
  dS1: usize, p1: usize, count: i32, headSize: i32, rowBytes: usize, scale: f32): void {
  const vecBytes = <usize>(headSize & ~3) << 2;
  const headBytes = <usize>headSize << 2;
  const scale4 = f32x4.splat(scale);
  for (let i: usize = 0; i < vecBytes; i += 16) {
    const qs0 = f32x4.mul(v128.load(q + i), scale4), qs1 = f32x4.mul(v128.load(q + headBytes + i), scale4);
    const dO0 = v128.load(dO + i), dO1 = v128.load(dO + headBytes + i);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), b0 = f32x4.splat(0), b1 = f32x4.splat(0);
    let t = 0;
    for (; t + 2 <= count; t += 2) {
      const at = <usize>t * rowBytes + i, ts = <usize>t << 2;
      let ds0 = v128.load32_splat(dS0 + ts), ds1 = v128.load32_splat(dS1 + ts);
      let kt = v128.load(k + at);
      a0 = madd(ds0, kt, a0);
      b0 = madd(ds1, kt, b0);
      v128.store(dK + at, madd(ds1, qs1, madd(ds0, qs0, v128.load(dK + at))));
      v128.store(dV + at, madd(v128.load32_splat(p1 + ts), dO1, madd(v128.load32_splat(p0 + ts), dO0, v128.load(dV + at))));
      const at1 = at + rowBytes, ts1 = ts + 4;
      ds0 = v128.load32_splat(dS0 + ts1); ds1 = v128.load32_splat(dS1 + ts1);
      kt = v128.load(k + at1);
      a1 = madd(ds0, kt, a1);
      b1 = madd(ds1, kt, b1);
      v128.store(dK + at1, madd(ds1, qs1, madd(ds0, qs0, v128.load(dK + at1))));
      v128.store(dV + at1, madd(v128.load32_splat(p1 + ts1), dO1, madd(v128.load32_splat(p0 + ts1), dO0, v128.load(dV + at1))));
    }
    if (t < count) {
      const at = <usize>t * rowBytes + i, ts = <usize>t << 2;
      const ds0 = v128.load32_splat(dS0 + ts), ds1 = v128.load32_splat(dS1 + ts);
      const kt = v128.load(k + at);
      a0 = madd(ds0, kt, a0);
      b0 = madd(ds1, kt, b0);
      v128.store(dK + at, madd(ds1, qs1, madd(ds0, qs0, v128.load(dK + at))));
      v128.store(dV + at, madd(v128.load32_splat(p1 + ts), dO1, madd(v128.load32_splat(p0 + ts), dO0, v128.load(dV + at))));
    }
    v128.store(dq + i, f32x4.mul(f32x4.add(a0, a1), scale4));
    v128.store(dq + headBytes + i, f32x4.mul(f32x4.add(b0, b1), scale4));
  }
  for (let i = vecBytes; i < headBytes; i += 4) {
    const qs0 = scale * load<f32>(q + i), qs1 = scale * load<f32>(q + headBytes + i);
    const dO0 = load<f32>(dO + i), dO1 = load<f32>(dO + headBytes + i);
    let a: f32 = 0, b: f32 = 0;
    for (let t = 0; t < count; t++) {
      const at = <usize>t * rowBytes + i, ts = <usize>t << 2;
      const ds0 = load<f32>(dS0 + ts), ds1 = load<f32>(dS1 + ts);
      const kt = load<f32>(k + at);
      a += ds0 * kt;
      b += ds1 * kt;
      store<f32>(dK + at, (load<f32>(dK + at) + ds0 * qs0) + ds1 * qs1);
      store<f32>(dV + at, (load<f32>(dV + at) + load<f32>(p0 + ts) * dO0) + load<f32>(p1 + ts) * dO1);
    }
    store<f32>(dq + i, a * scale);
    store<f32>(dq + headBytes + i, b * scale);
  }
}

/** One position's share of backwardRows: dK_t += dS_t·qs, dV_t += P_t·dO at byte offset at; returns acc + dS_t·k_t. */
// @ts-ignore: decorator
@inline function rowUpdate(at: usize, ds: usize, p: usize, k: usize, dK: usize, dV: usize, qs: v128, dOv: v128, acc: v128): v128 {
  const dsv = v128.load32_splat(ds);
  v128.store(dK + at, madd(dsv, qs, v128.load(dK + at)));
  v128.store(dV + at, madd(v128.load32_splat(p), dOv, v128.load(dV + at)));
  return madd(dsv, v128.load(k + at), acc);
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
