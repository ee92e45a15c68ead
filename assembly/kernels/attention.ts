import { madd, expNonPositive4, hsum, hsum4 } from "./simd";
import { expShifted } from "./softmax";

// Causal attention of n query rows over their own sequence's KV cache, grouped-query heads.
// Row r belongs to cache slot slots[r] at position positions[r] and attends to positions 0..positions[r]
// of that slot only, so packed rows of different sequences never see each other (no padding needed).
// Cache layout: [slot][pos][kvDim]; query head h reads KV head h / (nHeads / nKvHeads).
// Per head: scores s_t = q·k_t, e_t = exp(scale·(s_t − max)) and out = Σ_t e_t·v_t / Σ_t e_t, the division folded in at
// the end. Positions go four at a time; the last, partial block of scores is computed whole (its missing rows read
// as the last real row, never beyond it) and then masked, so no per-position tail runs the expensive steps.
// scores: attentionScratchFloats(seqLen) floats.
// This serves decoding, prefill and teacher-forced log-probabilities, rows of any positions; training, whose rows
// are whole sequences, has its own kernels with a backward pass (causal-attention.ts).
export function attentionForward(
  out: usize, q: usize, kCache: usize, vCache: usize, n: i32, slots: usize, positions: usize,
  nHeads: i32, nKvHeads: i32, headSize: i32, seqLen: i32, scores: usize,
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
      } else {
        const maxS = attentionScores(scores, q + headOffset, k, count, headSize, kvRowBytes, -Infinity);
        const inv: f32 = <f32>1.0 / expScores(scores, count, scale, maxS);
        weightedSum(out + headOffset, scores, v, count, headSize, kvRowBytes, inv);
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
export function maxScore(scores: usize, count: i32): f32 {
  const end = <usize>((count + 3) & ~3) << 2;
  let m4 = f32x4.splat(-Infinity);
  for (let k: usize = 0; k < end; k += 16) m4 = f32x4.pmax(m4, v128.load(scores + k));
  return max(max(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)), max(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)));
}

/**
 * In place over the whole vectors covering count scores: e = exp(scale·(s − maxScore)), −∞ scores (the pad) give
 * exactly 0 (see expNonPositive4). Returns Σ e.
 */
export function expScores(scores: usize, count: i32, scale: f32, maxScore: f32): f32 {
  // softmax.ts's step, over whole vectors (the pad included), so no scalar tail runs.
  return expShifted(scores, scores, (count + 3) & ~3, scale, maxScore);
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
    const e0 = expNonPositive4(f32x4.mul(s4, f32x4.sub(v128.load(s0 + k), m0)));
    const e1 = expNonPositive4(f32x4.mul(s4, f32x4.sub(v128.load(s1 + k), m1)));
    v128.store(s0 + k, e0);
    v128.store(s1 + k, e1);
    acc0 = f32x4.add(acc0, e0);
    acc1 = f32x4.add(acc1, e1);
  }
  return f32x4.replace_lane(f32x4.splat(hsum(acc0)), 1, hsum(acc1));
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

/** Floats of attention scratch for a context of seqLen: one row of scores per head of a pair, whole vectors. */
export function attentionScratchFloats(seqLen: i32): i32 {
  return 2 * ((seqLen + 3) & ~3);
}
