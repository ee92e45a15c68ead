import { madd, hsum } from "./simd";

// out[n, outDim] (=|+=) x[n, inDim] · w[outDim, inDim]ᵀ — the weight layout of llama2.c (one row per output).
// Register blocking: a tile of 4 input rows × 2 weight rows keeps 8 vector accumulators, so each weight vector
// loaded is used 4 times and each input vector twice. Input rows are taken in blocks that stay in L2; for each
// block the weights stream through once, every pair of weight rows serving all rows of the block while it is in L1.
// So a decode batch (n ≤ a block) reads each weight from memory exactly once per call.
// Rows left over (n mod 4, e.g. batch-1 decoding) take a matrix-vector path. Every output is the same single
// accumulator over k in the same order on both paths, so a row's result never depends on the batch it is in.

const INPUT_BLOCK_BYTES: i32 = 128 * 1024;

export function matmulForward(out: usize, x: usize, w: usize, n: i32, inDim: i32, outDim: i32, accumulate: bool): void {
  const blockRows = max(4, (INPUT_BLOCK_BYTES / (inDim << 2)) & ~3);
  for (let r0 = 0; r0 < n; r0 += blockRows) {
    const r1 = min(n, r0 + blockRows);
    const full = r0 + ((r1 - r0) & ~3);
    let o = 0;
    for (; o + 2 <= outDim; o += 2) {
      for (let r = r0; r < full; r += 4) tile4x2(out, x, w, r, o, inDim, outDim, accumulate);
    }
    if (o < outDim) {
      for (let r = r0; r < full; r += 4) tile4x1(out, x, w, r, o, inDim, outDim, accumulate);
    }
    for (let r = full; r < r1; r++) tile1Row(out, x, w, r, 0, outDim, inDim, outDim, accumulate);
  }
}

// @ts-ignore: decorator
@inline function put(out: usize, r: i32, o: i32, outDim: i32, value: f32, accumulate: bool): void {
  const p = out + ((<usize>r * outDim + o) << 2);
  store<f32>(p, accumulate ? load<f32>(p) + value : value);
}

/** Scalar dot product over the elements [k0, inDim) that do not fill a whole vector. */
// @ts-ignore: decorator
@inline function dotTail(a: usize, b: usize, k0: i32, inDim: i32): f32 {
  let s: f32 = 0;
  for (let k = k0; k < inDim; k++) s += load<f32>(a + (<usize>k << 2)) * load<f32>(b + (<usize>k << 2));
  return s;
}

// @ts-ignore: decorator
@inline function tile4x2(out: usize, x: usize, w: usize, r: i32, o: i32, inDim: i32, outDim: i32, accumulate: bool): void {
  const rowBytes = <usize>inDim << 2;
  const vecBytes = <usize>(inDim & ~3) << 2;
  const kVec = inDim & ~3;
  const x0 = x + <usize>r * rowBytes, x1 = x0 + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
  const w0 = w + <usize>o * rowBytes, w1 = w0 + rowBytes;
  let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
  let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
  for (let k: usize = 0; k < vecBytes; k += 16) {
    const b0 = v128.load(w0 + k), b1 = v128.load(w1 + k);
    let xv = v128.load(x0 + k);
    a00 = madd(xv, b0, a00); a01 = madd(xv, b1, a01);
    xv = v128.load(x1 + k);
    a10 = madd(xv, b0, a10); a11 = madd(xv, b1, a11);
    xv = v128.load(x2 + k);
    a20 = madd(xv, b0, a20); a21 = madd(xv, b1, a21);
    xv = v128.load(x3 + k);
    a30 = madd(xv, b0, a30); a31 = madd(xv, b1, a31);
  }
  put(out, r, o, outDim, hsum(a00) + dotTail(x0, w0, kVec, inDim), accumulate);
  put(out, r, o + 1, outDim, hsum(a01) + dotTail(x0, w1, kVec, inDim), accumulate);
  put(out, r + 1, o, outDim, hsum(a10) + dotTail(x1, w0, kVec, inDim), accumulate);
  put(out, r + 1, o + 1, outDim, hsum(a11) + dotTail(x1, w1, kVec, inDim), accumulate);
  put(out, r + 2, o, outDim, hsum(a20) + dotTail(x2, w0, kVec, inDim), accumulate);
  put(out, r + 2, o + 1, outDim, hsum(a21) + dotTail(x2, w1, kVec, inDim), accumulate);
  put(out, r + 3, o, outDim, hsum(a30) + dotTail(x3, w0, kVec, inDim), accumulate);
  put(out, r + 3, o + 1, outDim, hsum(a31) + dotTail(x3, w1, kVec, inDim), accumulate);
}

function tile4x1(out: usize, x: usize, w: usize, r: i32, o: i32, inDim: i32, outDim: i32, accumulate: bool): void {
  const rowBytes = <usize>inDim << 2;
  const vecBytes = <usize>(inDim & ~3) << 2;
  const kVec = inDim & ~3;
  const x0 = x + <usize>r * rowBytes, x1 = x0 + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
  const w0 = w + <usize>o * rowBytes;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let k: usize = 0; k < vecBytes; k += 16) {
    const b0 = v128.load(w0 + k);
    a0 = madd(v128.load(x0 + k), b0, a0);
    a1 = madd(v128.load(x1 + k), b0, a1);
    a2 = madd(v128.load(x2 + k), b0, a2);
    a3 = madd(v128.load(x3 + k), b0, a3);
  }
  put(out, r, o, outDim, hsum(a0) + dotTail(x0, w0, kVec, inDim), accumulate);
  put(out, r + 1, o, outDim, hsum(a1) + dotTail(x1, w0, kVec, inDim), accumulate);
  put(out, r + 2, o, outDim, hsum(a2) + dotTail(x2, w0, kVec, inDim), accumulate);
  put(out, r + 3, o, outDim, hsum(a3) + dotTail(x3, w0, kVec, inDim), accumulate);
}

// One input row: four weight rows at a time, taken from the four quarters of [o0, o1) so that each is its own
// sequential stream through memory. (Four adjacent rows interleaved this way run at a third of the bandwidth,
// and one row at a time leaves the single accumulator chain latency-bound: measured on a 37 MB classifier.)
function tile1Row(out: usize, x: usize, w: usize, r: i32, o0: i32, o1: i32, inDim: i32, outDim: i32, accumulate: bool): void {
  const rowBytes = <usize>inDim << 2;
  const vecBytes = <usize>(inDim & ~3) << 2;
  const kVec = inDim & ~3;
  const x0 = x + <usize>r * rowBytes;
  const quarter = (o1 - o0) >> 2;
  const quarterBytes = <usize>quarter * rowBytes;
  for (let o = o0; o < o0 + quarter; o++) {
    const w0 = w + <usize>o * rowBytes, w1 = w0 + quarterBytes, w2 = w1 + quarterBytes, w3 = w2 + quarterBytes;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let k: usize = 0; k < vecBytes; k += 16) {
      const xv = v128.load(x0 + k);
      a0 = madd(xv, v128.load(w0 + k), a0);
      a1 = madd(xv, v128.load(w1 + k), a1);
      a2 = madd(xv, v128.load(w2 + k), a2);
      a3 = madd(xv, v128.load(w3 + k), a3);
    }
    put(out, r, o, outDim, hsum(a0) + dotTail(x0, w0, kVec, inDim), accumulate);
    put(out, r, o + quarter, outDim, hsum(a1) + dotTail(x0, w1, kVec, inDim), accumulate);
    put(out, r, o + 2 * quarter, outDim, hsum(a2) + dotTail(x0, w2, kVec, inDim), accumulate);
    put(out, r, o + 3 * quarter, outDim, hsum(a3) + dotTail(x0, w3, kVec, inDim), accumulate);
  }
  for (let o = o0 + 4 * quarter; o < o1; o++) {
    const w0 = w + <usize>o * rowBytes;
    let a0 = f32x4.splat(0);
    for (let k: usize = 0; k < vecBytes; k += 16) a0 = madd(v128.load(x0 + k), v128.load(w0 + k), a0);
    put(out, r, o, outDim, hsum(a0) + dotTail(x0, w0, kVec, inDim), accumulate);
  }
}
