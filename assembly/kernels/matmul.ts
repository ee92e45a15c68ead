import { madd, hsum } from "./simd";

// out[n, outDim] (=|+=) x[n, inDim] · w[outDim, inDim]ᵀ — the weight layout of llama2.c (one row per output).
// Register blocking: a tile of 4 input rows × 2 weight rows keeps 8 vector accumulators, so each weight vector
// loaded is used 4 times and each input vector twice. Weight rows are visited in blocks that fit in L2 while all
// input rows sweep over them, so a large batch reads each weight from memory once.
// With n = 1 (batch-1 decoding) it is a matrix-vector product with 4 weight rows at a time.

const WEIGHT_BLOCK_BYTES: i32 = 96 * 1024;

export function matmulForward(out: usize, x: usize, w: usize, n: i32, inDim: i32, outDim: i32, accumulate: bool): void {
  const rowBytes = <usize>inDim << 2;
  const blockRows = max(4, <i32>(WEIGHT_BLOCK_BYTES / <i32>rowBytes)) & ~1;
  for (let o0 = 0; o0 < outDim; o0 += blockRows) {
    const o1 = min(outDim, o0 + blockRows);
    let r = 0;
    for (; r + 4 <= n; r += 4) tile4Rows(out, x, w, r, o0, o1, inDim, outDim, accumulate);
    for (; r < n; r++) tile1Row(out, x, w, r, o0, o1, inDim, outDim, accumulate);
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

function tile4Rows(out: usize, x: usize, w: usize, r: i32, o0: i32, o1: i32, inDim: i32, outDim: i32, accumulate: bool): void {
  const rowBytes = <usize>inDim << 2;
  const vecBytes = <usize>(inDim & ~3) << 2;
  const kVec = inDim & ~3;
  const x0 = x + <usize>r * rowBytes, x1 = x0 + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
  let o = o0;
  for (; o + 2 <= o1; o += 2) {
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
  if (o < o1) {
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
}

function tile1Row(out: usize, x: usize, w: usize, r: i32, o0: i32, o1: i32, inDim: i32, outDim: i32, accumulate: bool): void {
  const rowBytes = <usize>inDim << 2;
  const vecBytes = <usize>(inDim & ~3) << 2;
  const kVec = inDim & ~3;
  const x0 = x + <usize>r * rowBytes;
  let o = o0;
  for (; o + 4 <= o1; o += 4) {
    const w0 = w + <usize>o * rowBytes, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let k: usize = 0; k < vecBytes; k += 16) {
      const xv = v128.load(x0 + k);
      a0 = madd(xv, v128.load(w0 + k), a0);
      a1 = madd(xv, v128.load(w1 + k), a1);
      a2 = madd(xv, v128.load(w2 + k), a2);
      a3 = madd(xv, v128.load(w3 + k), a3);
    }
    put(out, r, o, outDim, hsum(a0) + dotTail(x0, w0, kVec, inDim), accumulate);
    put(out, r, o + 1, outDim, hsum(a1) + dotTail(x0, w1, kVec, inDim), accumulate);
    put(out, r, o + 2, outDim, hsum(a2) + dotTail(x0, w2, kVec, inDim), accumulate);
    put(out, r, o + 3, outDim, hsum(a3) + dotTail(x0, w3, kVec, inDim), accumulate);
  }
  for (; o < o1; o++) {
    const w0 = w + <usize>o * rowBytes;
    let a0 = f32x4.splat(0);
    for (let k: usize = 0; k < vecBytes; k += 16) a0 = madd(v128.load(x0 + k), v128.load(w0 + k), a0);
    put(out, r, o, outDim, hsum(a0) + dotTail(x0, w0, kVec, inDim), accumulate);
  }
}
