import { madd, hsum, hsum4 } from "./simd";
import { transpose } from "./transpose";
import { outerProductSum, OUTER_K_BLOCK } from "./outer-product";
import { F32, matrixBytes, weightBytes, load4, load1, widenMatrix, widenRowOf, q8x4, f16, maddF16x8, maddBf16x8 } from "./weights";

// out[n, outDim] (=|+=) x[n, inDim] · w[outDim, inDim]ᵀ — the weight layout of llama2.c (one row per output).
// Register blocking: a tile of 4 input rows × 2 weight rows keeps 8 vector accumulators, so each weight vector
// loaded is used 4 times and each input vector twice. Input rows are taken in blocks that stay in L2; for each
// block the weights stream through once, every pair of weight rows serving all rows of the block while it is in L1.
// So a decode batch (n ≤ a block) reads each weight from memory exactly once per call.
// Rows left over (n mod 4, e.g. batch-1 decoding) take a matrix-vector path. Every output is the same single
// accumulator over k in the same order on both paths, so a row's result never depends on the batch it is in.

// Long reductions (the classifier's backward runs over the whole vocabulary) are cut into blocks of K_BLOCK
// so that a block of input rows stays in L2 while the weights' slice streams past; the blocks' partial sums add
// up in out. The cut depends only on inDim, never on n, so batch independence holds.

const INPUT_BLOCK_BYTES: i32 = 256 * 1024;
const K_BLOCK: i32 = 2048;
// Weight matrices larger than this (every 15M matrix; not the stories260K ones) stream from beyond L2 in decoding, so
// a tile's two weight rows come from the two halves of the matrix: two memory streams instead of one. Measured on
// the 15M shapes: the 32,000-row classifier 1.1–2.8× faster at 4–32 rows, a 16-sequence decode 8 % faster; outputs
// are bit-identical (each output's sum is unchanged).
const SPLIT_BYTES: usize = 256 << 10;

export function matmulForward(out: usize, x: usize, w: usize, n: i32, inDim: i32, outDim: i32, accumulate: bool): void {
  forwardOf<f32>(out, x, w, n, inDim, outDim, accumulate, 0);
}

// Compact weights (weights.ts): the same sums over their exact float32 values, so bit for bit the float32 result.
// Rows of a tile of 4 inputs are widened once into `scratch` (WEIGHT_SCRATCH_FLOATS, in L1) and read by the float32
// tile from there, so each weight is decoded once per block of inputs, not once per 4 of them; single rows
// (batch-1 decoding) read every weight once anyway, and widen it in registers.

/** Floats of the `scratch` the compact matmuls need: four weight rows of a K_BLOCK. */
export const WEIGHT_SCRATCH_FLOATS: i32 = 4 * K_BLOCK;

/** matmulForward with bf16 weights (2 bytes each). */
export function matmulForwardBf16(out: usize, x: usize, w: usize, n: i32, inDim: i32, outDim: i32, accumulate: bool, scratch: usize): void {
  forwardOf<u16>(out, x, w, n, inDim, outDim, accumulate, scratch);
}

/** matmulForward with IEEE half weights. */
export function matmulForwardF16(out: usize, x: usize, w: usize, n: i32, inDim: i32, outDim: i32, accumulate: bool, scratch: usize): void {
  forwardOf<i16>(out, x, w, n, inDim, outDim, accumulate, scratch);
}

/** matmulForward with Q4_K weights (inDim a multiple of 256): the result of their values (weights.ts). */
export function matmulForwardQ4_K(out: usize, x: usize, w: usize, n: i32, inDim: i32, outDim: i32, accumulate: bool, scratch: usize): void {
  forwardOf<u8>(out, x, w, n, inDim, outDim, accumulate, scratch);
}

/** matmulForward with Q8_0 weights (inDim a multiple of 32): the result of their values d·q. */
export function matmulForwardQ8_0(out: usize, x: usize, w: usize, n: i32, inDim: i32, outDim: i32, accumulate: bool, scratch: usize): void {
  forwardOf<i8>(out, x, w, n, inDim, outDim, accumulate, scratch);
}

/** The forward matmul with weights of any type W (weights.ts): one code path, so every type sums alike. */
// @ts-ignore: decorator
@inline function forwardOf<W>(out: usize, x: usize, w: usize, n: i32, inDim: i32, outDim: i32, accumulate: bool, scratch: usize): void {
  const rowBytes = <usize>inDim << 2, wRowBytes = weightBytes<W>(inDim);
  for (let k0 = 0; k0 < inDim; k0 += K_BLOCK) {
    const kLen = min(K_BLOCK, inDim - k0);
    const xk = x + (<usize>k0 << 2), wk = w + weightBytes<W>(k0);
    const add = accumulate || k0 > 0;
    const blockRows = max(4, (INPUT_BLOCK_BYTES / (kLen << 2)) & ~3);
    for (let r0 = 0; r0 < n; r0 += blockRows) {
      const r1 = min(n, r0 + blockRows);
      const full = r0 + ((r1 - r0) & ~3);
      let o = 0;
      if (streams<W>(full - r0, kLen, <usize>outDim * wRowBytes)) streamInput(xk, r0, full, rowBytes, kLen);
      if (<usize>outDim * wRowBytes > SPLIT_BYTES) {
        // Rows o and o + half (see SPLIT_BYTES).
        const half = outDim >> 1;
        for (; o < half; o++) pairRows<W>(out, xk, wk, r0, full, o, half, rowBytes, wRowBytes, kLen, outDim, add, scratch);
        o = half << 1;
      } else {
        for (; o + 2 <= outDim; o += 2) pairRows<W>(out, xk, wk, r0, full, o, 1, rowBytes, wRowBytes, kLen, outDim, add, scratch);
      }
      if (o < outDim && full > r0) {
        let w0 = wk + <usize>o * wRowBytes;
        if (!isFloat<W>()) widenRowOf<W>(w0 = scratch, wk + <usize>o * wRowBytes, kLen);
        for (let r = r0; r < full; r += 4) tile4x1(out, xk, w0, r, o, rowBytes, kLen, outDim, add);
      }
      for (let r = full; r < r1; r++) tile1Row<W>(out, xk, wk, r, 0, outDim, rowBytes, wRowBytes, kLen, outDim, add, scratch);
    }
  }
}

/** Weight rows o and o + apart against the input rows [r0, full) in tiles of 4 (compact rows widened into scratch). */
// @ts-ignore: decorator
@inline function pairRows<W>(out: usize, x: usize, w: usize, r0: i32, full: i32, o: i32, apart: i32, rowBytes: usize, wRowBytes: usize,
  kLen: i32, outDim: i32, accumulate: bool, scratch: usize): void {
  if (full == r0) return;
  let w0 = w + <usize>o * wRowBytes, w1 = w0 + <usize>apart * wRowBytes;
  if (streams<W>(full - r0, kLen, <usize>outDim * wRowBytes)) {
    pairRowsStreamed<W>(out, x, w0, w1, r0, full, o, apart, rowBytes, kLen, outDim, accumulate, scratch);
    return;
  }
  if (!isFloat<W>()) {
    widenRowOf<W>(scratch, w0, kLen);
    widenRowOf<W>(scratch + (<usize>K_BLOCK << 2), w1, kLen);
    w0 = scratch;
    w1 = scratch + (<usize>K_BLOCK << 2);
  }
  const vecBytes = <usize>(kLen & ~3) << 2;
  tiles4x2(out, x, w0, w1, w0, w1, x + <usize>r0 * rowBytes, rowBytes, r0, full, o, apart, rowBytes, vecBytes, kLen, outDim, accumulate, false, true);
}

// @ts-ignore: decorator
@inline function put(out: usize, r: i32, o: i32, outDim: i32, value: f32, accumulate: bool): void {
  const p = out + ((<usize>r * outDim + o) << 2);
  store<f32>(p, accumulate ? load<f32>(p) + value : value);
}

/** Scalar dot product of a float32 row and a weight row over the elements [k0, kLen) that do not fill a whole vector. */
// @ts-ignore: decorator
@inline function dotTail<W>(a: usize, b: usize, k0: i32, kLen: i32): f32 {
  let s: f32 = 0;
  for (let k = k0; k < kLen; k++) s += load<f32>(a + (<usize>k << 2)) * load1<W>(b, <usize>k);
  return s;
}

/** A 4 × 2 tile's eight accumulators (weight rows w0, w1 against input rows r … r + 3 at x0) into out. */
// @ts-ignore: decorator
@inline function finish4x2(out: usize, x0: usize, w0: usize, w1: usize, r: i32, o: i32, apart: i32, rowBytes: usize, kLen: i32, outDim: i32, accumulate: bool,
  a00: v128, a01: v128, a10: v128, a11: v128, a20: v128, a21: v128, a30: v128, a31: v128): void {
  const kVec = kLen & ~3;
  const x1 = x0 + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
  const o1 = o + apart;
  if (kVec == kLen) {
    // No scalar tail: the eight sums, two rows' output pairs per vector (hsum4 rounds as hsum does).
    const s01 = hsum4(a00, a01, a10, a11), s23 = hsum4(a20, a21, a30, a31);
    if (apart == 1) {
      // Adjacent outputs: stored 8 bytes at a time.
      put2Rows(out, r, o, outDim, s01, accumulate);
      put2Rows(out, r + 2, o, outDim, s23, accumulate);
      return;
    }
    put(out, r, o, outDim, f32x4.extract_lane(s01, 0), accumulate);
    put(out, r, o1, outDim, f32x4.extract_lane(s01, 1), accumulate);
    put(out, r + 1, o, outDim, f32x4.extract_lane(s01, 2), accumulate);
    put(out, r + 1, o1, outDim, f32x4.extract_lane(s01, 3), accumulate);
    put(out, r + 2, o, outDim, f32x4.extract_lane(s23, 0), accumulate);
    put(out, r + 2, o1, outDim, f32x4.extract_lane(s23, 1), accumulate);
    put(out, r + 3, o, outDim, f32x4.extract_lane(s23, 2), accumulate);
    put(out, r + 3, o1, outDim, f32x4.extract_lane(s23, 3), accumulate);
    return;
  }
  put(out, r, o, outDim, hsum(a00) + dotTail<f32>(x0, w0, kVec, kLen), accumulate);
  put(out, r, o1, outDim, hsum(a01) + dotTail<f32>(x0, w1, kVec, kLen), accumulate);
  put(out, r + 1, o, outDim, hsum(a10) + dotTail<f32>(x1, w0, kVec, kLen), accumulate);
  put(out, r + 1, o1, outDim, hsum(a11) + dotTail<f32>(x1, w1, kVec, kLen), accumulate);
  put(out, r + 2, o, outDim, hsum(a20) + dotTail<f32>(x2, w0, kVec, kLen), accumulate);
  put(out, r + 2, o1, outDim, hsum(a21) + dotTail<f32>(x2, w1, kVec, kLen), accumulate);
  put(out, r + 3, o, outDim, hsum(a30) + dotTail<f32>(x3, w0, kVec, kLen), accumulate);
  put(out, r + 3, o1, outDim, hsum(a31) + dotTail<f32>(x3, w1, kVec, kLen), accumulate);
}

// A decode batch (a few tiles of rows) against weights streaming from memory: tile after tile on a whole pair of rows
// reads the pair from memory in a burst, then computes the other tiles from L1 while memory idles. Here every tile
// takes a slice of STREAM_CHUNK_BYTES of the pair in turn, its accumulators kept in STREAM_SPILL between slices, so
// the weights are read at the pace they are used. The block's input rows are first copied chunk by chunk
// (streamInput), so that each slice of all of them is one sequential run that the prefetcher follows (16 rows read
// 512 bytes at a time at their own stride thrash it once they outgrow L1: the 1,536-wide down projection).
// Each accumulator's madds are those of the whole-row tiles, in the same order: the same bits. Measured at
// SmolLM2-135M's shapes with 16 rows and the weights from memory: 1.21–1.33× the whole-row rate (float32 and bf16;
// slices of 128 and 256 bytes, or of 1 KiB, gain less). The relaxed build gains most; the simd build's separate
// mul and add, 1.09–1.14×.
const STREAM_CHUNK_BYTES: usize = 512;
const STREAM_MAX_TILES: i32 = 8;
const STREAM_SPILL: usize = memory.data(STREAM_MAX_TILES * 128, 16);
const STREAM_INPUT: usize = memory.data(STREAM_MAX_TILES * 4 * K_BLOCK * 4, 16);

/**
 * Whether pairRowsStreamed takes [r0, full) against this matrix: weights from beyond L2, a few tiles, float32 or
 * 16-bit weights (bf16 1.22–1.25×, f16 1.13×; the 8- and 4-bit types are bound by their decoding: 0.95–1.0×).
 */
// @ts-ignore: decorator
@inline function streams<W>(rows: i32, kLen: i32, matrixBytes: usize): bool {
  return sizeof<W>() >= 2 && rows > 4 && rows <= STREAM_MAX_TILES * 4 && kLen >= 64 && matrixBytes > SPLIT_BYTES;
}

/** The rows [r0, full) of x, whole vectors of kLen, into STREAM_INPUT as consecutive chunks: chunk c of every row, then c + 1. */
function streamInput(x: usize, r0: i32, full: i32, rowBytes: usize, kLen: i32): void {
  const vecBytes = <usize>(kLen & ~3) << 2, rows = <usize>(full - r0);
  for (let c: usize = 0; c < vecBytes; c += STREAM_CHUNK_BYTES) {
    const len = min(STREAM_CHUNK_BYTES, vecBytes - c);
    let to = STREAM_INPUT + c * rows;
    for (let r = r0; r < full; r++, to += len) {
      const from = x + <usize>r * rowBytes + c;
      for (let j: usize = 0; j < len; j += 16) v128.store(to + j, v128.load(from + j));
    }
  }
}

/**
 * tiles4x2 on [r0, full) slice by slice, the inputs from STREAM_INPUT (x for the scalar tails). 16-bit
 * weight rows are widened a slice at a time into scratch (the whole row's floats at their offsets, tails included).
 */
function pairRowsStreamed<W>(out: usize, x: usize, w0: usize, w1: usize, r0: i32, full: i32, o: i32, apart: i32, rowBytes: usize, kLen: i32,
  outDim: i32, accumulate: bool, scratch: usize): void {
  const vecBytes = <usize>(kLen & ~3) << 2, rows = <usize>(full - r0);
  let f0 = w0, f1 = w1;
  if (!isFloat<W>()) {
    f0 = scratch;
    f1 = scratch + (<usize>K_BLOCK << 2);
  }
  for (let c: usize = 0; c < vecBytes; c += STREAM_CHUNK_BYTES) {
    const len = min(STREAM_CHUNK_BYTES, vecBytes - c), last = c + len == vecBytes;
    if (!isFloat<W>()) {
      const from = <i32>(c >> 2), count = last ? kLen - from : <i32>(len >> 2);
      widenRowOf<W>(f0 + c, w0 + weightBytes<W>(from), count);
      widenRowOf<W>(f1 + c, w1 + weightBytes<W>(from), count);
    }
    tiles4x2(out, x, f0 + c, f1 + c, f0, f1, STREAM_INPUT + c * rows, len, r0, full, o, apart, rowBytes, len, kLen, outDim, accumulate, c > 0, last);
  }
}

/**
 * Every 4 × 2 tile of the input rows [r0, full) against weight rows v0, v1 (float32) over one slice of len bytes:
 * the tile's rows at xs, stride bytes apart, the next tile's 4 × stride on. Whole rows (pairRows): one slice, rows
 * of x. Streamed (pairRowsStreamed): the tiles' accumulators parked in STREAM_SPILL unless last (they resume from it
 * if resume), the rows from STREAM_INPUT. The last slice finishes the tiles with the scalar tails from x, f0, f1.
 */
// @ts-ignore: decorator
@inline function tiles4x2(out: usize, x: usize, v0: usize, v1: usize, f0: usize, f1: usize, xs: usize, stride: usize, r0: i32, full: i32, o: i32,
  apart: i32, rowBytes: usize, len: usize, kLen: i32, outDim: i32, accumulate: bool, resume: bool, last: bool): void {
  for (let r = r0, s = STREAM_SPILL, x0 = xs; r < full; r += 4, s += 128, x0 += stride << 2) {
    const x1 = x0 + stride, x2 = x1 + stride, x3 = x2 + stride;
    let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
    let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
    if (resume) {
      a00 = v128.load(s); a01 = v128.load(s, 16); a10 = v128.load(s, 32); a11 = v128.load(s, 48);
      a20 = v128.load(s, 64); a21 = v128.load(s, 80); a30 = v128.load(s, 96); a31 = v128.load(s, 112);
    }
    for (let k: usize = 0; k < len; k += 16) {
      const b0 = v128.load(v0 + k), b1 = v128.load(v1 + k);
      let xv = v128.load(x0 + k);
      a00 = madd(xv, b0, a00); a01 = madd(xv, b1, a01);
      xv = v128.load(x1 + k);
      a10 = madd(xv, b0, a10); a11 = madd(xv, b1, a11);
      xv = v128.load(x2 + k);
      a20 = madd(xv, b0, a20); a21 = madd(xv, b1, a21);
      xv = v128.load(x3 + k);
      a30 = madd(xv, b0, a30); a31 = madd(xv, b1, a31);
    }
    if (last) {
      finish4x2(out, x + <usize>r * rowBytes, f0, f1, r, o, apart, rowBytes, kLen, outDim, accumulate, a00, a01, a10, a11, a20, a21, a30, a31);
      continue;
    }
    v128.store(s, a00); v128.store(s, a01, 16); v128.store(s, a10, 32); v128.store(s, a11, 48);
    v128.store(s, a20, 64); v128.store(s, a21, 80); v128.store(s, a30, 96); v128.store(s, a31, 112);
  }
}

/** out[r, o..o+1] and out[r+1, o..o+1] (=|+=) the lanes (0, 1) and (2, 3) of v. */
// @ts-ignore: decorator
@inline function put2Rows(out: usize, r: i32, o: i32, outDim: i32, v: v128, accumulate: bool): void {
  const p0 = out + ((<usize>r * outDim + o) << 2), p1 = p0 + (<usize>outDim << 2);
  if (accumulate) v = f32x4.add(v128.load64_lane(p1, v128.load64_zero(p0), 1), v);
  v128.store64_lane(p0, v, 0);
  v128.store64_lane(p1, v, 1);
}

function tile4x1(out: usize, x: usize, w0: usize, r: i32, o: i32, rowBytes: usize, kLen: i32, outDim: i32, accumulate: bool): void {
  const vecBytes = <usize>(kLen & ~3) << 2;
  const kVec = kLen & ~3;
  const x0 = x + <usize>r * rowBytes, x1 = x0 + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let k: usize = 0; k < vecBytes; k += 16) {
    const b0 = v128.load(w0 + k);
    a0 = madd(v128.load(x0 + k), b0, a0);
    a1 = madd(v128.load(x1 + k), b0, a1);
    a2 = madd(v128.load(x2 + k), b0, a2);
    a3 = madd(v128.load(x3 + k), b0, a3);
  }
  put(out, r, o, outDim, hsum(a0) + dotTail<f32>(x0, w0, kVec, kLen), accumulate);
  put(out, r + 1, o, outDim, hsum(a1) + dotTail<f32>(x1, w0, kVec, kLen), accumulate);
  put(out, r + 2, o, outDim, hsum(a2) + dotTail<f32>(x2, w0, kVec, kLen), accumulate);
  put(out, r + 3, o, outDim, hsum(a3) + dotTail<f32>(x3, w0, kVec, kLen), accumulate);
}

// One input row: four weight rows at a time, taken from the four quarters of [o0, o1) so that each is its own
// sequential stream through memory. (Four adjacent rows interleaved this way run at a third of the bandwidth,
// and one row at a time leaves the single accumulator chain latency-bound: measured on a 37 MB classifier.)
function tile1Row<W>(out: usize, x: usize, w: usize, r: i32, o0: i32, o1: i32, rowBytes: usize, wRowBytes: usize, kLen: i32, outDim: i32, accumulate: bool, scratch: usize): void {
  const vecBytes = <usize>(kLen & ~3) << 2;
  const kVec = kLen & ~3;
  const x0 = x + <usize>r * rowBytes;
  const quarter = (o1 - o0) >> 2;
  const quarterBytes = <usize>quarter * wRowBytes;
  for (let o = o0; o < o0 + quarter; o++) {
    let w0 = w + <usize>o * wRowBytes, w1 = w0 + quarterBytes, w2 = w1 + quarterBytes, w3 = w2 + quarterBytes;
    if (sizeof<W>() == 1 && !isSigned<W>()) {
      // Q4_K: the four rows widened into scratch by blocks (decoding in the loop below would repeat per vector).
      const stride = <usize>K_BLOCK << 2;
      widenRowOf<W>(scratch, w0, kLen);
      widenRowOf<W>(scratch + stride, w1, kLen);
      widenRowOf<W>(scratch + 2 * stride, w2, kLen);
      widenRowOf<W>(scratch + 3 * stride, w3, kLen);
      tile1RowWide(out, x0, scratch, stride, r, o, quarter, vecBytes, outDim, accumulate);
      continue;
    }
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    // The same madds in the same order for every type; compact ones decode in larger steps where that is cheaper.
    let k: usize = 0;
    if (sizeof<W>() == 1) {
      // Q8_0 (rows are whole blocks): each block's scale decoded once for its 8 vectors.
      for (; k < vecBytes; k += 128) {
        const at = (k >> 7) * 34, b0 = w0 + at, b1 = w1 + at, b2 = w2 + at, b3 = w3 + at;
        const s0 = f32x4.splat(f16(load<u16>(b0))), s1 = f32x4.splat(f16(load<u16>(b1)));
        const s2 = f32x4.splat(f16(load<u16>(b2))), s3 = f32x4.splat(f16(load<u16>(b3)));
        for (let j: usize = 0; j < 32; j += 4) {
          const xv = v128.load(x0 + k + (j << 2));
          a0 = madd(xv, q8x4(b0 + 2 + j, s0), a0);
          a1 = madd(xv, q8x4(b1 + 2 + j, s1), a1);
          a2 = madd(xv, q8x4(b2 + 2 + j, s2), a2);
          a3 = madd(xv, q8x4(b3 + 2 + j, s3), a3);
        }
      }
    } else if (sizeof<W>() == 2 && isSigned<W>()) {
      // IEEE halves, eight at a time in 16-bit lanes; the rare group with a zero, subnormal or non-finite one exactly.
      for (; k + 32 <= vecBytes; k += 32) {
        const xv0 = v128.load(x0 + k), xv1 = v128.load(x0 + k + 16);
        const p0 = w0 + (k >> 1), p1 = w1 + (k >> 1), p2 = w2 + (k >> 1), p3 = w3 + (k >> 1);
        a0 = maddF16x8(xv0, xv1, p0, v128.load(p0), a0);
        a1 = maddF16x8(xv0, xv1, p1, v128.load(p1), a1);
        a2 = maddF16x8(xv0, xv1, p2, v128.load(p2), a2);
        a3 = maddF16x8(xv0, xv1, p3, v128.load(p3), a3);
      }
    } else if (sizeof<W>() == 2) {
      // bf16, eight at a time (batch-1 decoding reads every weight once per token: widening is its inner loop).
      for (; k + 32 <= vecBytes; k += 32) {
        const xv0 = v128.load(x0 + k), xv1 = v128.load(x0 + k + 16), at = k >> 1;
        a0 = maddBf16x8(xv0, xv1, v128.load(w0 + at), a0);
        a1 = maddBf16x8(xv0, xv1, v128.load(w1 + at), a1);
        a2 = maddBf16x8(xv0, xv1, v128.load(w2 + at), a2);
        a3 = maddBf16x8(xv0, xv1, v128.load(w3 + at), a3);
      }
    }
    for (; k < vecBytes; k += 16) {
      const xv = v128.load(x0 + k);
      a0 = madd(xv, load4<W>(w0, k), a0);
      a1 = madd(xv, load4<W>(w1, k), a1);
      a2 = madd(xv, load4<W>(w2, k), a2);
      a3 = madd(xv, load4<W>(w3, k), a3);
    }
    put(out, r, o, outDim, hsum(a0) + dotTail<W>(x0, w0, kVec, kLen), accumulate);
    put(out, r, o + quarter, outDim, hsum(a1) + dotTail<W>(x0, w1, kVec, kLen), accumulate);
    put(out, r, o + 2 * quarter, outDim, hsum(a2) + dotTail<W>(x0, w2, kVec, kLen), accumulate);
    put(out, r, o + 3 * quarter, outDim, hsum(a3) + dotTail<W>(x0, w3, kVec, kLen), accumulate);
  }
  for (let o = o0 + 4 * quarter; o < o1; o++) {
    const w0 = w + <usize>o * wRowBytes;
    let a0 = f32x4.splat(0);
    for (let k: usize = 0; k < vecBytes; k += 16) a0 = madd(v128.load(x0 + k), load4<W>(w0, k), a0);
    put(out, r, o, outDim, hsum(a0) + dotTail<W>(x0, w0, kVec, kLen), accumulate);
  }
}

/** tile1Row's step on four float32 rows at w, w + stride, …: outputs o, o + quarter, o + 2·quarter, o + 3·quarter. */
function tile1RowWide(out: usize, x0: usize, w: usize, stride: usize, r: i32, o: i32, quarter: i32, vecBytes: usize, outDim: i32, accumulate: bool): void {
  const w0 = w, w1 = w0 + stride, w2 = w1 + stride, w3 = w2 + stride;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let k: usize = 0; k < vecBytes; k += 16) {
    const xv = v128.load(x0 + k);
    a0 = madd(xv, v128.load(w0 + k), a0);
    a1 = madd(xv, v128.load(w1 + k), a1);
    a2 = madd(xv, v128.load(w2 + k), a2);
    a3 = madd(xv, v128.load(w3 + k), a3);
  }
  // (Q4_K rows are whole blocks of 256: no scalar tail.)
  put(out, r, o, outDim, hsum(a0), accumulate);
  put(out, r, o + quarter, outDim, hsum(a1), accumulate);
  put(out, r, o + 2 * quarter, outDim, hsum(a2), accumulate);
  put(out, r, o + 3 * quarter, outDim, hsum(a3), accumulate);
}

/**
 * out[n, outDim] (=|+=) x[n, inDim] · w[outDim, inDim]ᵀ from wT = wᵀ [inDim, outDim], as outer-product sums: for
 * narrow inputs (the stories260K shapes) about 20 % faster than the tile's dot products, whose horizontal sums weigh
 * on reductions this short. Training transposes its weights once per step for it.
 */
export function matmulForwardTransposed(out: usize, x: usize, wT: usize, n: i32, inDim: i32, outDim: i32, accumulate: bool): void {
  outerProductSum(out, <usize>outDim << 2, x, 4, <usize>inDim << 2, wT, <usize>outDim << 2, inDim, n, outDim, accumulate);
}

// ---- backward ----
// Given dOut = ∂L/∂out [n, outDim] of out = x·wᵀ:
//   dx [n, inDim] (=|+=) dOut · w        (matmulBackwardInput)
//   dw [outDim, inDim] += dOutᵀ · x      (matmulBackwardWeight, always accumulates: micro-batches add up)
// Both are turned into the forward's x·wᵀ form by transposing operands into scratch, so they run on the same
// register-blocked tile: dx = dOut·(wᵀ)ᵀ, and dw = (dOutᵀ)·(xᵀ)ᵀ with the n rows as the reduction.
// (Broadcast kernels that read w or x in 8-column strips measured 2–3× slower than this on the 15M shapes.)
// Exception: narrow operands (rows of x and w ≤ DIRECT_MAX_IN floats, the stories260K shapes) are summed directly
// from the row-major operands by outer-product.ts, 5–25 % faster there than transposes + tile.

// Inputs up to this wide take the direct outer-product kernel instead (no transposes; see outer-product.ts).
const DIRECT_MAX_IN: i32 = 256;
// So do products with a side this short whatever the width (LoRA's rank: dx = du·A reduces over r, and ∂A has r
// rows): the tile's horizontal sums would cost as much as the r madds. Measured at SmolLM2's shapes: 1.5–1.7× at
// r = 16, 1.2–1.3× at 32, 1.0–1.2× at 64.
const DIRECT_MAX_SHORT: i32 = 64;

/** Whether dx = dOut·w (w [outDim, inDim]) takes the direct kernel: float32 and compact w alike, so they sum alike. */
// @ts-ignore: decorator
@inline function directInput(inDim: i32, outDim: i32): bool {
  return (inDim <= DIRECT_MAX_IN && outDim <= DIRECT_MAX_IN) || outDim <= DIRECT_MAX_SHORT;
}

/** scratch: inDim·outDim floats. */
export function matmulBackwardInput(dx: usize, dOut: usize, w: usize, n: i32, inDim: i32, outDim: i32, accumulate: bool, scratch: usize): void {
  if (directInput(inDim, outDim)) { // (long reductions, e.g. over a vocabulary, favour the tile)
    outerProductSum(dx, <usize>inDim << 2, dOut, 4, <usize>outDim << 2, w, <usize>inDim << 2, outDim, n, inDim, accumulate);
    return;
  }
  transpose(scratch, w, outDim, inDim);
  matmulForward(dx, dOut, scratch, n, outDim, inDim, accumulate);
}

/**
 * matmulBackwardInput with w stored as wType (weights.ts; frozen weights, e.g. under LoRA). The weights are widened
 * into scratch as the float32 path's operand (row-major for the direct kernel, transposed for the tile), so dx is bit
 * for bit the float32 widening's. scratch: inDim·outDim floats.
 */
export function matmulBackwardInputOf(dx: usize, dOut: usize, w: usize, wType: i32, n: i32, inDim: i32, outDim: i32, accumulate: bool, scratch: usize): void {
  if (wType == F32) {
    matmulBackwardInput(dx, dOut, w, n, inDim, outDim, accumulate, scratch);
    return;
  }
  if (directInput(inDim, outDim)) {
    widenMatrix(scratch, w, wType, outDim, inDim, false);
    outerProductSum(dx, <usize>inDim << 2, dOut, 4, <usize>outDim << 2, scratch, <usize>inDim << 2, outDim, n, inDim, accumulate);
    return;
  }
  widenMatrix(scratch, w, wType, outDim, inDim, true);
  matmulForward(dx, dOut, scratch, n, outDim, inDim, accumulate);
}

/**
 * dx[n, inDim] (=|+=) dOut[n, outDim] · w[outDim, inDim] for a long matrix read as stored (the classifier: outDim the
 * vocabulary), with no transposed or widened copy of it: outer products over w's rows, a compact w widened
 * OUTER_K_BLOCK rows at a time into scratch. outerProductSum adds its blocks of that many rows to dx in order, so one
 * call per block is the single float32 call's arithmetic: bit for bit the float32 widening's dx.
 * scratch: OUTER_K_BLOCK·inDim floats (compact w only).
 */
export function matmulBackwardInputRowsOf(dx: usize, dOut: usize, w: usize, wType: i32, n: i32, inDim: i32, outDim: i32, accumulate: bool, scratch: usize): void {
  const rowBytes = <usize>inDim << 2, dOutRow = <usize>outDim << 2;
  if (wType == F32) {
    outerProductSum(dx, rowBytes, dOut, 4, dOutRow, w, rowBytes, outDim, n, inDim, accumulate);
    return;
  }
  for (let o0 = 0; o0 < outDim; o0 += OUTER_K_BLOCK) {
    const len = min(OUTER_K_BLOCK, outDim - o0);
    widenMatrix(scratch, w + matrixBytes(wType, o0, inDim), wType, len, inDim, false);
    outerProductSum(dx, rowBytes, dOut + (<usize>o0 << 2), 4, dOutRow, scratch, rowBytes, len, n, inDim, accumulate || o0 > 0);
  }
}

/** scratchOut: n·outDim floats, scratchIn: n·inDim floats. */
export function matmulBackwardWeight(dw: usize, dOut: usize, x: usize, n: i32, inDim: i32, outDim: i32, scratchOut: usize, scratchIn: usize): void {
  if (inDim <= DIRECT_MAX_IN || outDim <= DIRECT_MAX_SHORT) {
    outerProductSum(dw, <usize>inDim << 2, dOut, <usize>outDim << 2, 4, x, <usize>inDim << 2, n, outDim, inDim, true);
    return;
  }
  transpose(scratchOut, dOut, n, outDim);
  transpose(scratchIn, x, n, inDim);
  matmulForward(dw, scratchOut, scratchIn, outDim, n, inDim, true);
}
