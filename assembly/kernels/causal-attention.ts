import { outerProductSum } from "./outer-product";
import { expNonPositive4, madd, hsum } from "./simd";
import { maxScore, expScores } from "./attention";

// Causal self-attention of one whole sequence, as training sees it: query rows 0..len−1 against the same
// sequence's keys and values at positions 0..len−1; query head h reads KV head h / (nHeads / nKvHeads).
// Query rows go in blocks of four, and every product is an outer-product sum (outer-product.ts): the scores of a
// block against the transposed keys, its output from its probabilities and the values, and in backward the score
// gradients, dq, dk and dv alike. Dot products of heads this short (8 floats in stories260K) would spend as much on
// the horizontal sums that end them as on the multiplications (attention.ts, which decoding keeps, works that way).
// The softmax is left unnormalised: a row keeps e_j = exp(scale·(s_j − max)) and 1/Σe, and the output rows are
// scaled by 1/Σe after their product. Each row's maximum comes out of the score tiles, so the only pass over the
// scores is the exponentials' (the separate max and normalisation passes were a third of the softmax's time).
//
// Layouts: q, out, dq, dOut: rows of dim = nHeads·headSize floats, row stride rowBytes. k, v, dk, dv: rows of
// kvDim floats at stride kvRowBytes. probs (written by the forward pass, read by the backward pass): per head a
// matrix [len, lp] (lp = len rounded up to 4) whose row i holds e_j for j ≤ i and 0 up to the next multiple of 4,
// then per head the len inverse sums 1/Σe; P_ij = e_ij / Σe_i.

/** Floats of the probabilities causalAttentionForward keeps for a sequence of len rows. */
export function causalProbsFloats(len: i32, nHeads: i32): i32 {
  return nHeads * len * (((len + 3) & ~3) + 1);
}

/** Floats of scratch the kernels need for sequences of up to seqLen rows. */
export function causalScratchFloats(seqLen: i32, headSize: i32): i32 {
  return (headSize + seqLen) * ((seqLen + 3) & ~3) + seqLen * (headSize + 2);
}

export function causalAttentionForward(
  out: usize, probs: usize, q: usize, k: usize, v: usize, len: i32, rowBytes: usize, kvRowBytes: usize,
  nHeads: i32, nKvHeads: i32, headSize: i32, scratch: usize,
): void {
  const group = nHeads / nKvHeads;
  const headBytes = <usize>headSize << 2;
  const lpBytes = <usize>((len + 3) & ~3) << 2;
  const scale: f32 = <f32>1.0 / Mathf.sqrt(<f32>headSize);
  const inverses = probs + <usize>nHeads * len * lpBytes;
  const kT = scratch; // [headSize, lp]: one KV head's keys, transposed
  for (let g = 0; g < nKvHeads; g++) {
    transposeHead(kT, k + <usize>g * headBytes, len, headSize, kvRowBytes, lpBytes);
    const vg = v + <usize>g * headBytes;
    for (let h = g * group; h < (g + 1) * group; h++) {
      const e = probs + <usize>h * len * lpBytes, inv = inverses + (<usize>h * len << 2);
      const qh = q + <usize>h * headBytes, oh = out + <usize>h * headBytes;
      for (let i0 = 0; i0 < len; i0 += 4) {
        const rows = min(4, len - i0), width = i0 + 4;
        const eBlock = e + <usize>i0 * lpBytes, invBlock = inv + (<usize>i0 << 2), oBlock = oh + <usize>i0 * rowBytes;
        if (rows == 4) {
          const maxima = scoresBlock(eBlock, lpBytes, qh + <usize>i0 * rowBytes, rowBytes, kT, headSize, width);
          expTwoRows(invBlock, eBlock, eBlock + lpBytes, width, scale, i32x4.shuffle(maxima, maxima, 0, 0, 0, 0),
            i32x4.shuffle(maxima, maxima, 1, 1, 1, 1));
          expTwoRows(invBlock + 8, eBlock + 2 * lpBytes, eBlock + 3 * lpBytes, width, scale, i32x4.shuffle(maxima, maxima, 2, 2, 2, 2),
            i32x4.shuffle(maxima, maxima, 3, 3, 3, 3));
        } else {
          // A sequence's last, partial block: scores of its rows against keys 0..width (past len: kT's zero pad).
          outerProductSum(eBlock, lpBytes, qh + <usize>i0 * rowBytes, 4, rowBytes, kT, lpBytes, headSize, rows, width, false);
          for (let r = 0; r < rows; r++) store<f32>(invBlock + (<usize>r << 2), expRow(eBlock + <usize>r * lpBytes, i0 + r + 1, scale));
        }
        outerProductSum(oBlock, rowBytes, eBlock, 4, lpBytes, vg, kvRowBytes, min(width, len), rows, headSize, false);
        for (let r = 0; r < rows; r++) scaleRow(oBlock + <usize>r * rowBytes, oBlock + <usize>r * rowBytes, headSize, load<f32>(invBlock + (<usize>r << 2)));
      }
    }
  }
}

// Backward, with S = scale·q·kᵀ, P = softmax(S) (causal), out = P·v:
//   dP = dOut·vᵀ, dS = scale·P ⊙ (dP − D) with D_i = Σ_j P_ij·dP_ij = dOut_i·out_i (the scale folded in here
//   serves dq and dk), dq = dS·k (written), dk += dSᵀ·q, dv += Pᵀ·dOut (added: the query heads of a KV head add up).
// D from the saved output costs headSize products per row instead of a pass over the row's probabilities; P = e/Σe
// enters dS through each row's factor scale/Σe, and dv as eᵀ·(dOut/Σe).
// dS of one head is kept whole ([len, lp] in scratch), so dk and dv are sums over long runs of query rows.
export function causalAttentionBackward(
  dq: usize, dk: usize, dv: usize, dOut: usize, q: usize, k: usize, v: usize, out: usize, probs: usize, len: i32,
  rowBytes: usize, kvRowBytes: usize, nHeads: i32, nKvHeads: i32, headSize: i32, scratch: usize,
): void {
  const group = nHeads / nKvHeads;
  const headBytes = <usize>headSize << 2;
  const lpBytes = <usize>((len + 3) & ~3) << 2;
  const scale: f32 = <f32>1.0 / Mathf.sqrt(<f32>headSize);
  const inverses = probs + <usize>nHeads * len * lpBytes;
  // vT [headSize, lp], dS [len, lp], dOutScaled [len, headSize] (dense rows), factors [len], dots [len].
  const vT = scratch, dS = scratch + <usize>headSize * lpBytes, dOutScaled = dS + <usize>len * lpBytes;
  const factors = dOutScaled + <usize>len * headBytes, dots = factors + (<usize>len << 2);
  for (let g = 0; g < nKvHeads; g++) {
    transposeHead(vT, v + <usize>g * headBytes, len, headSize, kvRowBytes, lpBytes);
    const kg = k + <usize>g * headBytes, dkg = dk + <usize>g * headBytes, dvg = dv + <usize>g * headBytes;
    for (let h = g * group; h < (g + 1) * group; h++) {
      const e = probs + <usize>h * len * lpBytes, inv = inverses + (<usize>h * len << 2), qh = q + <usize>h * headBytes;
      const dOh = dOut + <usize>h * headBytes, oh = out + <usize>h * headBytes, dqh = dq + <usize>h * headBytes;
      for (let i = 0; i < len; i++) {
        const dOi = dOh + <usize>i * rowBytes, invSum = load<f32>(inv + (<usize>i << 2));
        scaleRow(dOutScaled + <usize>i * headBytes, dOi, headSize, invSum);
        store<f32>(factors + (<usize>i << 2), scale * invSum);
        store<f32>(dots + (<usize>i << 2), rowDot(dOi, oh + <usize>i * rowBytes, headSize));
      }
      for (let i0 = 0; i0 < len; i0 += 4) {
        const rows = min(4, len - i0), width = i0 + 4;
        const block = <usize>i0 * lpBytes;
        outerProductSum(dS + block, lpBytes, dOh + <usize>i0 * rowBytes, 4, rowBytes, vT, lpBytes, headSize, rows, width, false);
        scoreGradients(dS + block, e + block, lpBytes, rows, width, factors + (<usize>i0 << 2), dots + (<usize>i0 << 2));
        outerProductSum(dqh + <usize>i0 * rowBytes, rowBytes, dS + block, 4, lpBytes, kg, kvRowBytes, min(width, len), rows, headSize, false);
      }
      // Keys four at a time, summed over the query rows that see them (i ≥ j0; e and dS are 0 above the diagonal).
      for (let j0 = 0; j0 < len; j0 += 4) {
        const keys = min(4, len - j0), corner = <usize>j0 * lpBytes + (<usize>j0 << 2);
        outerProductSum(dkg + <usize>j0 * kvRowBytes, kvRowBytes, dS + corner, lpBytes, 4, qh + <usize>j0 * rowBytes, rowBytes, len - j0, keys, headSize, true);
        outerProductSum(dvg + <usize>j0 * kvRowBytes, kvRowBytes, e + corner, lpBytes, 4, dOutScaled + <usize>j0 * headBytes, headBytes, len - j0, keys, headSize, true);
      }
    }
  }
}

/** out[d][t] = head[t][d] for t < len (rows rowBytes apart), and 0 for len ≤ t < lp. */
function transposeHead(out: usize, head: usize, len: i32, headSize: i32, rowBytes: usize, lpBytes: usize): void {
  for (let d = 0; d < headSize; d++) {
    const o = out + <usize>d * lpBytes, src = head + (<usize>d << 2);
    let t = 0;
    for (; t < len; t++) store<f32>(o + (<usize>t << 2), load<f32>(src + <usize>t * rowBytes));
    for (; (<usize>t << 2) < lpBytes; t++) store<f32>(o + (<usize>t << 2), 0);
  }
}

/**
 * In place on one row of scores whose first count are real: e_j = exp(scale·(s_j − max)), and 0 for the rest of the
 * row's last vector. Returns 1/Σe.
 */
function expRow(row: usize, count: i32, scale: f32): f32 {
  const end = <usize>((count + 3) & ~3) << 2;
  for (let j = <usize>count << 2; j < end; j += 4) store<f32>(row + j, -Infinity);
  // The per-row kernel's steps (attention.ts); only a sequence's last, partial block comes here.
  return <f32>1.0 / expScores(row, count, scale, maxScore(row, count));
}

// The four rows' running maxima in scoresBlock, kept in memory: the vector registers (V8 gives wasm 15 on x64) stay
// with the tile's 8 accumulators, its 2 key vectors and the broadcast query value.
const MAXIMA = memory.data(64, 16);

/**
 * The scores q_r·k_t of a block's four query rows (q: rows rowBytes apart) against keys 0..width−1 (kT: the keys
 * transposed, headSize rows lpBytes apart), into s (rows lpBytes apart), in tiles of 4 rows × 8 keys as
 * outer-product.ts computes them, and each row's largest score on the way, so the softmax needs no pass for it. On
 * the diagonal vector (keys width−4..width−1) row r sees lanes 0..r; the others become −∞ (their exponential is
 * exactly 0). Returns the four rows' maxima, one per lane.
 */
function scoresBlock(s: usize, lpBytes: usize, q: usize, rowBytes: usize, kT: usize, headSize: i32, width: i32): v128 {
  const inf = f32x4.splat(-Infinity);
  v128.store(MAXIMA, inf); v128.store(MAXIMA, inf, 16); v128.store(MAXIMA, inf, 32); v128.store(MAXIMA, inf, 48);
  const kBytes = <usize>headSize << 2, diagonal = width - 4;
  let c = 0;
  for (; c + 8 <= diagonal; c += 8) {
    let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
    let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
    let kp = kT + (<usize>c << 2), qp = q;
    for (let k: usize = 0; k < kBytes; k += 4) {
      const b0 = v128.load(kp), b1 = v128.load(kp, 16);
      let x = v128.load32_splat(qp);
      c00 = madd(x, b0, c00); c01 = madd(x, b1, c01);
      x = v128.load32_splat(qp + rowBytes);
      c10 = madd(x, b0, c10); c11 = madd(x, b1, c11);
      x = v128.load32_splat(qp + 2 * rowBytes);
      c20 = madd(x, b0, c20); c21 = madd(x, b1, c21);
      x = v128.load32_splat(qp + 3 * rowBytes);
      c30 = madd(x, b0, c30); c31 = madd(x, b1, c31);
      qp += 4; kp += lpBytes;
    }
    const o = s + (<usize>c << 2);
    v128.store(o, c00); v128.store(o, c01, 16); newMaximum(0, f32x4.pmax(c00, c01));
    v128.store(o + lpBytes, c10); v128.store(o + lpBytes, c11, 16); newMaximum(16, f32x4.pmax(c10, c11));
    v128.store(o + 2 * lpBytes, c20); v128.store(o + 2 * lpBytes, c21, 16); newMaximum(32, f32x4.pmax(c20, c21));
    v128.store(o + 3 * lpBytes, c30); v128.store(o + 3 * lpBytes, c31, 16); newMaximum(48, f32x4.pmax(c30, c31));
  }
  // One vector of keys before the diagonal when that part is an odd number of vectors, then the diagonal.
  for (; c < width; c += 4) {
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
    let kp = kT + (<usize>c << 2), qp = q;
    for (let k: usize = 0; k < kBytes; k += 4) {
      const b = v128.load(kp);
      c0 = madd(v128.load32_splat(qp), b, c0);
      c1 = madd(v128.load32_splat(qp + rowBytes), b, c1);
      c2 = madd(v128.load32_splat(qp + 2 * rowBytes), b, c2);
      c3 = madd(v128.load32_splat(qp + 3 * rowBytes), b, c3);
      qp += 4; kp += lpBytes;
    }
    if (c == diagonal) {
      c0 = v128.bitselect(c0, inf, i32x4(-1, 0, 0, 0));
      c1 = v128.bitselect(c1, inf, i32x4(-1, -1, 0, 0));
      c2 = v128.bitselect(c2, inf, i32x4(-1, -1, -1, 0));
    }
    const o = s + (<usize>c << 2);
    v128.store(o, c0); newMaximum(0, c0);
    v128.store(o + lpBytes, c1); newMaximum(16, c1);
    v128.store(o + 2 * lpBytes, c2); newMaximum(32, c2);
    v128.store(o + 3 * lpBytes, c3); newMaximum(48, c3);
  }
  return lanesMax4(v128.load(MAXIMA), v128.load(MAXIMA, 16), v128.load(MAXIMA, 32), v128.load(MAXIMA, 48));
}

/** Folds v into the running maxima of the row at MAXIMA + at. */
// @ts-ignore: decorator
@inline function newMaximum(at: usize, v: v128): void {
  v128.store(MAXIMA + at, f32x4.pmax(v128.load(MAXIMA + at), v));
}

/** [largest lane of a, of b, of c, of d] (pmax: one instruction on x64). */
// @ts-ignore: decorator
@inline function lanesMax4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.pmax(i32x4.shuffle(a, b, 0, 1, 4, 5), i32x4.shuffle(a, b, 2, 3, 6, 7));
  const cd = f32x4.pmax(i32x4.shuffle(c, d, 0, 1, 4, 5), i32x4.shuffle(c, d, 2, 3, 6, 7));
  return f32x4.pmax(i32x4.shuffle(ab, cd, 0, 2, 4, 6), i32x4.shuffle(ab, cd, 1, 3, 5, 7));
}

/**
 * In place on two rows of scores width wide (a multiple of 4), with their maxima max0 and max1 in every lane:
 * e = exp(scale·(s − max)); inv receives 1/Σe of each row. Two independent exponentials per step share the
 * constants' loads and overlap in the core (four at a time run out of vector registers in V8's code).
 */
function expTwoRows(inv: usize, p0: usize, p1: usize, width: i32, scale: f32, max0: v128, max1: v128): void {
  const end = <usize>width << 2;
  const s4 = f32x4.splat(scale);
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
  for (let j: usize = 0; j < end; j += 16) {
    const e0 = expNonPositive4(f32x4.mul(s4, f32x4.sub(v128.load(p0 + j), max0)));
    const e1 = expNonPositive4(f32x4.mul(s4, f32x4.sub(v128.load(p1 + j), max1)));
    v128.store(p0 + j, e0); v128.store(p1 + j, e1);
    a0 = f32x4.add(a0, e0); a1 = f32x4.add(a1, e1);
  }
  store<f32>(inv, <f32>1.0 / hsum(a0));
  store<f32>(inv, <f32>1.0 / hsum(a1), 4);
}

/** out[0..n) = f·x[0..n) (out may be x). */
// @ts-ignore: decorator
@inline function scaleRow(out: usize, x: usize, n: i32, f: f32): void {
  const vecBytes = <usize>(n & ~3) << 2, f4 = f32x4.splat(f);
  for (let j: usize = 0; j < vecBytes; j += 16) v128.store(out + j, f32x4.mul(v128.load(x + j), f4));
  for (let j = vecBytes; j < (<usize>n << 2); j += 4) store<f32>(out + j, load<f32>(x + j) * f);
}

/** Σ a[i]·b[i] over n floats. */
// @ts-ignore: decorator
@inline function rowDot(a: usize, b: usize, n: i32): f32 {
  let s: f32 = 0;
  for (let j: usize = 0; j < (<usize>n << 2); j += 4) s += load<f32>(a + j) * load<f32>(b + j);
  return s;
}

/**
 * In place on rows of dP (lpBytes apart, width values each, a multiple of 4): dS_j = f·e_j·(dP_j − D), with row r's
 * f = scale/Σe at factors + 4r and D at dots + 4r.
 */
function scoreGradients(dProbs: usize, e: usize, lpBytes: usize, rows: i32, width: i32, factors: usize, dots: usize): void {
  const end = <usize>width << 2;
  for (let r = 0; r < rows; r++) {
    const at = <usize>r * lpBytes;
    for (let j: usize = 0; j < end; j += 16) {
      v128.store(dProbs + at + j, gradientOf(v128.load(dProbs + at + j), e + at + j, factors, dots, <usize>r << 2));
    }
  }
}

/** dS = f·e·(dP − D) on one vector, with e at ep and the row's f and D at factors + at and dots + at. */
// @ts-ignore: decorator
@inline function gradientOf(dP: v128, ep: usize, factors: usize, dots: usize, at: usize): v128 {
  return f32x4.mul(f32x4.mul(v128.load(ep), v128.load32_splat(factors + at)), f32x4.sub(dP, v128.load32_splat(dots + at)));
}
