import { outerProductSum } from "./outer-product";
import { expNonPositive4, madd, hsum } from "./simd";
import { maxScore, expScores } from "./attention";

// Causal self-attention of one whole sequence, as training sees it: query rows 0..len−1 against the same
// sequence's keys and values at positions 0..len−1; query head h reads KV head h / (nHeads / nKvHeads).
// Query rows go in blocks of four, and every product is an outer-product sum (outer-product.ts): the scores of a
// block against the transposed keys, its output from its probabilities and the values, and in backward the score
// gradients, dq, dk and dv alike. Dot products of heads this short (8 floats in stories260K) would spend as much on
// the horizontal sums that end them as on the multiplications (attention.ts, which decoding keeps, works that way).
//
// Layouts: q, out, dq, dOut: rows of dim = nHeads·headSize floats, row stride rowBytes. k, v, dk, dv: rows of
// kvDim floats at stride kvRowBytes. probs: per head a matrix [len, lp] (lp = len rounded up to 4): row i holds
// P[i][j] for j ≤ i and 0 up to the next multiple of 4; the forward pass writes it, the backward pass reads it.

/** Floats of the probabilities causalAttentionForward keeps for a sequence of len rows. */
export function causalProbsFloats(len: i32, nHeads: i32): i32 {
  return nHeads * len * ((len + 3) & ~3);
}

/** Floats of scratch the kernels need for sequences of up to seqLen rows. */
export function causalScratchFloats(seqLen: i32, headSize: i32): i32 {
  return (headSize + seqLen) * ((seqLen + 3) & ~3);
}

export function causalAttentionForward(
  out: usize, probs: usize, q: usize, k: usize, v: usize, len: i32, rowBytes: usize, kvRowBytes: usize,
  nHeads: i32, nKvHeads: i32, headSize: i32, scratch: usize,
): void {
  const group = nHeads / nKvHeads;
  const headBytes = <usize>headSize << 2;
  const lpBytes = <usize>((len + 3) & ~3) << 2;
  const scale: f32 = <f32>1.0 / Mathf.sqrt(<f32>headSize);
  const kT = scratch; // [headSize, lp]: one KV head's keys, transposed
  for (let g = 0; g < nKvHeads; g++) {
    transposeHead(kT, k + <usize>g * headBytes, len, headSize, kvRowBytes, lpBytes);
    const vg = v + <usize>g * headBytes;
    for (let h = g * group; h < (g + 1) * group; h++) {
      const p = probs + <usize>h * len * lpBytes, qh = q + <usize>h * headBytes, oh = out + <usize>h * headBytes;
      for (let i0 = 0; i0 < len; i0 += 4) {
        const rows = min(4, len - i0), width = i0 + 4;
        const pBlock = p + <usize>i0 * lpBytes;
        // Scores of the block's rows against keys 0..width (keys past len are the zero padding of kT).
        outerProductSum(pBlock, lpBytes, qh + <usize>i0 * rowBytes, 4, rowBytes, kT, lpBytes, headSize, rows, width, false);
        if (rows == 4) softmaxBlock(pBlock, lpBytes, width, scale);
        else for (let r = 0; r < rows; r++) softmaxRow(pBlock + <usize>r * lpBytes, i0 + r + 1, scale);
        outerProductSum(oh + <usize>i0 * rowBytes, rowBytes, pBlock, 4, lpBytes, vg, kvRowBytes, min(width, len), rows, headSize, false);
      }
    }
  }
}

// Backward, with S = scale·q·kᵀ, P = softmax(S) (causal), out = P·v:
//   dP = dOut·vᵀ, dS = scale·P ⊙ (dP − Σ_u P_u·dP_u) (the scale folded in here serves dq and dk)
//   dq = dS·k (written), dk += dSᵀ·q, dv += Pᵀ·dOut (added: the query heads of a KV head add up).
// dS of one head is kept whole ([len, lp] in scratch), so dk and dv are sums over long runs of query rows.
export function causalAttentionBackward(
  dq: usize, dk: usize, dv: usize, dOut: usize, q: usize, k: usize, v: usize, probs: usize, len: i32, rowBytes: usize,
  kvRowBytes: usize, nHeads: i32, nKvHeads: i32, headSize: i32, scratch: usize,
): void {
  const group = nHeads / nKvHeads;
  const headBytes = <usize>headSize << 2;
  const lpBytes = <usize>((len + 3) & ~3) << 2;
  const scale: f32 = <f32>1.0 / Mathf.sqrt(<f32>headSize);
  const vT = scratch, dS = scratch + <usize>headSize * lpBytes;
  for (let g = 0; g < nKvHeads; g++) {
    transposeHead(vT, v + <usize>g * headBytes, len, headSize, kvRowBytes, lpBytes);
    const kg = k + <usize>g * headBytes, dkg = dk + <usize>g * headBytes, dvg = dv + <usize>g * headBytes;
    for (let h = g * group; h < (g + 1) * group; h++) {
      const p = probs + <usize>h * len * lpBytes, qh = q + <usize>h * headBytes;
      const dOh = dOut + <usize>h * headBytes, dqh = dq + <usize>h * headBytes;
      for (let i0 = 0; i0 < len; i0 += 4) {
        const rows = min(4, len - i0), width = i0 + 4;
        const block = <usize>i0 * lpBytes;
        outerProductSum(dS + block, lpBytes, dOh + <usize>i0 * rowBytes, 4, rowBytes, vT, lpBytes, headSize, rows, width, false);
        for (let r = 0; r < rows; r += 2) {
          const at = block + <usize>r * lpBytes;
          if (r + 1 < rows) scoreGradientsTwoRows(dS + at, p + at, lpBytes, width, scale);
          else scoreGradientsRow(dS + at, p + at, width, scale);
        }
        outerProductSum(dqh + <usize>i0 * rowBytes, rowBytes, dS + block, 4, lpBytes, kg, kvRowBytes, min(width, len), rows, headSize, false);
      }
      // Keys four at a time, summed over the query rows that see them (i ≥ j0; P and dS are 0 above the diagonal).
      for (let j0 = 0; j0 < len; j0 += 4) {
        const keys = min(4, len - j0), corner = <usize>j0 * lpBytes + (<usize>j0 << 2);
        outerProductSum(dkg + <usize>j0 * kvRowBytes, kvRowBytes, dS + corner, lpBytes, 4, qh + <usize>j0 * rowBytes, rowBytes, len - j0, keys, headSize, true);
        outerProductSum(dvg + <usize>j0 * kvRowBytes, kvRowBytes, p + corner, lpBytes, 4, dOh + <usize>j0 * rowBytes, rowBytes, len - j0, keys, headSize, true);
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
 * In place on one row of scores whose first count are real: P_j = e_j / Σ e with e_j = exp(scale·(s_j − max)),
 * and 0 for the rest of the row's last vector.
 */
function softmaxRow(row: usize, count: i32, scale: f32): void {
  const end = <usize>((count + 3) & ~3) << 2;
  for (let j = <usize>count << 2; j < end; j += 4) store<f32>(row + j, -Infinity);
  // The per-row kernel's steps (attention.ts); only a sequence's last, partial block comes here.
  const inv = f32x4.splat(<f32>1.0 / expScores(row, count, scale, maxScore(row, count)));
  for (let j: usize = 0; j < end; j += 16) v128.store(row + j, f32x4.mul(v128.load(row + j), inv));
}

/**
 * softmaxRow on the four rows of a whole block (rows lpBytes apart, each width scores wide, row r's first
 * width − 3 + r real), two rows at a time: two independent exponentials per step share the constants' loads and
 * overlap in the core (four at a time run out of vector registers in V8's code).
 */
function softmaxBlock(p: usize, lpBytes: usize, width: i32, scale: f32): void {
  const last = (<usize>width << 2) - 16;
  // The last vector of row r keeps lanes 0..r; the others become −∞ (their exponential is exactly 0).
  const inf = f32x4.splat(-Infinity);
  v128.store(p + last, v128.bitselect(v128.load(p + last), inf, i32x4(-1, 0, 0, 0)));
  v128.store(p + lpBytes + last, v128.bitselect(v128.load(p + lpBytes + last), inf, i32x4(-1, -1, 0, 0)));
  v128.store(p + 2 * lpBytes + last, v128.bitselect(v128.load(p + 2 * lpBytes + last), inf, i32x4(-1, -1, -1, 0)));
  softmaxTwoRows(p, p + lpBytes, width, scale);
  softmaxTwoRows(p + 2 * lpBytes, p + 3 * lpBytes, width, scale);
}

/** softmaxRow of two rows whose real scores are all finite and the rest −∞, width (a multiple of 4) wide. */
function softmaxTwoRows(p0: usize, p1: usize, width: i32, scale: f32): void {
  const end = <usize>width << 2;
  let m0 = f32x4.splat(-Infinity), m1 = f32x4.splat(-Infinity);
  for (let j: usize = 0; j < end; j += 16) {
    m0 = f32x4.pmax(m0, v128.load(p0 + j));
    m1 = f32x4.pmax(m1, v128.load(p1 + j));
  }
  m0 = lanesMax(m0); m1 = lanesMax(m1);
  const s4 = f32x4.splat(scale);
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
  for (let j: usize = 0; j < end; j += 16) {
    const e0 = expNonPositive4(f32x4.mul(s4, f32x4.sub(v128.load(p0 + j), m0)));
    const e1 = expNonPositive4(f32x4.mul(s4, f32x4.sub(v128.load(p1 + j), m1)));
    v128.store(p0 + j, e0); v128.store(p1 + j, e1);
    a0 = f32x4.add(a0, e0); a1 = f32x4.add(a1, e1);
  }
  const i0 = f32x4.splat(<f32>1.0 / hsum(a0)), i1 = f32x4.splat(<f32>1.0 / hsum(a1));
  for (let j: usize = 0; j < end; j += 16) {
    v128.store(p0 + j, f32x4.mul(v128.load(p0 + j), i0));
    v128.store(p1 + j, f32x4.mul(v128.load(p1 + j), i1));
  }
}

/** The largest lane of v, in every lane (kept in vector registers: a scalar max is a chain of compares and branches
 * in V8's code). */
// @ts-ignore: decorator
@inline function lanesMax(v: v128): v128 {
  v = f32x4.pmax(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.pmax(v, i32x4.shuffle(v, v, 1, 0, 3, 2));
}

/** scoreGradientsRow on two rows lpBytes apart, in one pass each (two independent sums in flight). */
function scoreGradientsTwoRows(dProbs: usize, probs: usize, lpBytes: usize, width: i32, scale: f32): void {
  const end = <usize>width << 2;
  const d1 = dProbs + lpBytes, p1 = probs + lpBytes;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
  for (let j: usize = 0; j < end; j += 16) {
    a0 = madd(v128.load(probs + j), v128.load(dProbs + j), a0);
    a1 = madd(v128.load(p1 + j), v128.load(d1 + j), a1);
  }
  const dot0 = f32x4.splat(hsum(a0)), dot1 = f32x4.splat(hsum(a1)), s4 = f32x4.splat(scale);
  for (let j: usize = 0; j < end; j += 16) {
    v128.store(dProbs + j, f32x4.mul(f32x4.mul(v128.load(probs + j), s4), f32x4.sub(v128.load(dProbs + j), dot0)));
    v128.store(d1 + j, f32x4.mul(f32x4.mul(v128.load(p1 + j), s4), f32x4.sub(v128.load(d1 + j), dot1)));
  }
}

/** In place over width values (a multiple of 4): dS_j = scale·P_j·(dP_j − Σ_u P_u·dP_u). */
function scoreGradientsRow(dProbs: usize, probs: usize, width: i32, scale: f32): void {
  const end = <usize>width << 2;
  let acc = f32x4.splat(0);
  for (let j: usize = 0; j < end; j += 16) acc = madd(v128.load(probs + j), v128.load(dProbs + j), acc);
  const dot = f32x4.splat(hsum(acc)), s4 = f32x4.splat(scale);
  for (let j: usize = 0; j < end; j += 16) {
    v128.store(dProbs + j, f32x4.mul(f32x4.mul(v128.load(probs + j), s4), f32x4.sub(v128.load(dProbs + j), dot)));
  }
}
