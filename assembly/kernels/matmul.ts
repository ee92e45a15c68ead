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

// ---- backward ----
// Given dOut = ∂L/∂out [n, outDim] of out = x·wᵀ:
//   dx [n, inDim] (=|+=) dOut · w        (matmulBackwardInput)
//   dw [outDim, inDim] += dOutᵀ · x      (matmulBackwardWeight, always accumulates: micro-batches add up)
// Both broadcast one scalar of dOut against a vector of w or x: tiles of 4 rows × 8 columns (8 accumulators).
// The loops walk 8-column strips outermost so that the strip of the streamed matrix stays in L1.

export function matmulBackwardInput(dx: usize, dOut: usize, w: usize, n: i32, inDim: i32, outDim: i32, accumulate: bool): void {
  const inBytes = <usize>inDim << 2, outBytes = <usize>outDim << 2;
  const strips = inDim & ~7;
  for (let c = 0; c < strips; c += 8) {
    const col = <usize>c << 2;
    let r = 0;
    for (; r + 4 <= n; r += 4) {
      const g0 = dOut + <usize>r * outBytes, g1 = g0 + outBytes, g2 = g1 + outBytes, g3 = g2 + outBytes;
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
      for (let o: usize = 0; o < outBytes; o += 4) {
        const wRow = w + (o >> 2) * inBytes + col;
        const b0 = v128.load(wRow), b1 = v128.load(wRow + 16);
        let s = v128.load32_splat(g0 + o);
        a00 = madd(s, b0, a00); a01 = madd(s, b1, a01);
        s = v128.load32_splat(g1 + o);
        a10 = madd(s, b0, a10); a11 = madd(s, b1, a11);
        s = v128.load32_splat(g2 + o);
        a20 = madd(s, b0, a20); a21 = madd(s, b1, a21);
        s = v128.load32_splat(g3 + o);
        a30 = madd(s, b0, a30); a31 = madd(s, b1, a31);
      }
      const d0 = dx + <usize>r * inBytes + col, d1 = d0 + inBytes, d2 = d1 + inBytes, d3 = d2 + inBytes;
      putVec(d0, a00, accumulate); putVec(d0 + 16, a01, accumulate);
      putVec(d1, a10, accumulate); putVec(d1 + 16, a11, accumulate);
      putVec(d2, a20, accumulate); putVec(d2 + 16, a21, accumulate);
      putVec(d3, a30, accumulate); putVec(d3 + 16, a31, accumulate);
    }
    for (; r < n; r++) {
      const g0 = dOut + <usize>r * outBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
      for (let o: usize = 0; o < outBytes; o += 4) {
        const wRow = w + (o >> 2) * inBytes + col;
        const s = v128.load32_splat(g0 + o);
        a0 = madd(s, v128.load(wRow), a0); a1 = madd(s, v128.load(wRow + 16), a1);
      }
      const d0 = dx + <usize>r * inBytes + col;
      putVec(d0, a0, accumulate); putVec(d0 + 16, a1, accumulate);
    }
  }
  // Columns that do not fill a strip of 8.
  for (let r = 0; r < n; r++) {
    const g0 = dOut + <usize>r * outBytes;
    for (let c = strips; c < inDim; c++) {
      let s: f32 = 0;
      for (let o = 0; o < outDim; o++) s += load<f32>(g0 + (<usize>o << 2)) * load<f32>(w + <usize>o * inBytes + (<usize>c << 2));
      const p = dx + <usize>r * inBytes + (<usize>c << 2);
      store<f32>(p, accumulate ? load<f32>(p) + s : s);
    }
  }
}

export function matmulBackwardWeight(dw: usize, dOut: usize, x: usize, n: i32, inDim: i32, outDim: i32): void {
  const inBytes = <usize>inDim << 2, outBytes = <usize>outDim << 2;
  const strips = inDim & ~7;
  for (let c = 0; c < strips; c += 8) {
    const col = <usize>c << 2;
    let o = 0;
    for (; o + 4 <= outDim; o += 4) {
      const go = <usize>o << 2;
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
      for (let r = 0; r < n; r++) {
        const xRow = x + <usize>r * inBytes + col;
        const g = dOut + <usize>r * outBytes + go;
        const b0 = v128.load(xRow), b1 = v128.load(xRow + 16);
        let s = v128.load32_splat(g);
        a00 = madd(s, b0, a00); a01 = madd(s, b1, a01);
        s = v128.load32_splat(g + 4);
        a10 = madd(s, b0, a10); a11 = madd(s, b1, a11);
        s = v128.load32_splat(g + 8);
        a20 = madd(s, b0, a20); a21 = madd(s, b1, a21);
        s = v128.load32_splat(g + 12);
        a30 = madd(s, b0, a30); a31 = madd(s, b1, a31);
      }
      const d0 = dw + <usize>o * inBytes + col, d1 = d0 + inBytes, d2 = d1 + inBytes, d3 = d2 + inBytes;
      putVec(d0, a00, true); putVec(d0 + 16, a01, true);
      putVec(d1, a10, true); putVec(d1 + 16, a11, true);
      putVec(d2, a20, true); putVec(d2 + 16, a21, true);
      putVec(d3, a30, true); putVec(d3 + 16, a31, true);
    }
    for (; o < outDim; o++) {
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
      for (let r = 0; r < n; r++) {
        const xRow = x + <usize>r * inBytes + col;
        const s = v128.load32_splat(dOut + <usize>r * outBytes + (<usize>o << 2));
        a0 = madd(s, v128.load(xRow), a0); a1 = madd(s, v128.load(xRow + 16), a1);
      }
      const d0 = dw + <usize>o * inBytes + col;
      putVec(d0, a0, true); putVec(d0 + 16, a1, true);
    }
  }
  for (let o = 0; o < outDim; o++) {
    for (let c = strips; c < inDim; c++) {
      let s: f32 = 0;
      for (let r = 0; r < n; r++) s += load<f32>(dOut + <usize>r * outBytes + (<usize>o << 2)) * load<f32>(x + <usize>r * inBytes + (<usize>c << 2));
      const p = dw + <usize>o * inBytes + (<usize>c << 2);
      store<f32>(p, load<f32>(p) + s);
    }
  }
}

// @ts-ignore: decorator
@inline function putVec(p: usize, v: v128, accumulate: bool): void {
  v128.store(p, accumulate ? f32x4.add(v128.load(p), v) : v);
}
