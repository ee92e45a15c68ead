import { madd } from "./simd";

// out[rows, width] (=|+=) Σ_{k < len} a_k ⊗ b_k, a sum of outer products read straight from row-major operands:
// a_k holds one value per output row j, at a + k·aStep + j·aLane; b_k is a row of width floats at b + k·bRow;
// output row j starts at out + j·outRow (outRow = width·4 for a dense matrix).
// The backward products are both of this form, without transposed copies:
//   dw[outDim, inDim] += dOutᵀ·x : j = o, k = r: a = dOut (aStep = a row of dOut, aLane = 1 float), b = x
//   dx[n, inDim] = dOut·w         : j = r, k = o: a = dOut (aStep = 1 float, aLane = a row of dOut), b = w
// A tile of 4 output rows × 8 columns keeps 8 vector accumulators; per k it broadcasts the 4 values of a_k and
// loads two vectors of b_k. No horizontal sums, which pays off when rows are short (the stories260K shapes).
// k goes in blocks of K_BLOCK so that a block's rows of b stay in L1 while every tile reads them; the blocks'
// partial sums are added to out in order, so the result depends only on the operands.
export const OUTER_K_BLOCK: i32 = 128;
const K_BLOCK = OUTER_K_BLOCK;

export function outerProductSum(out: usize, outRow: usize, a: usize, aStep: usize, aLane: usize, b: usize, bRow: usize, len: i32,
  rows: i32, width: i32, accumulate: bool): void {
  const w8 = width & ~7, w4 = width & ~3, rows4 = rows & ~3;
  for (let k0 = 0; k0 < len; k0 += K_BLOCK) {
    const kLen = min(K_BLOCK, len - k0);
    const add = accumulate || k0 > 0;
    const ak = a + <usize>k0 * aStep, bk = b + <usize>k0 * bRow;
    for (let j = 0; j < rows4; j += 4) {
      const aj = ak + <usize>j * aLane;
      let i = 0;
      for (; i < w8; i += 8) tile4x8(out, outRow, aj, aStep, aLane, bk, bRow, kLen, j, i, add);
      if (i < w4) { tile4x4(out, outRow, aj, aStep, aLane, bk, bRow, kLen, j, i, add); i += 4; }
      for (; i < width; i++) for (let jj = j; jj < j + 4; jj++) single(out, outRow, ak, aStep, aLane, bk, bRow, kLen, jj, i, add);
    }
    for (let j = rows4; j < rows; j++) for (let i = 0; i < width; i++) single(out, outRow, ak, aStep, aLane, bk, bRow, kLen, j, i, add);
  }
}

/** out row j at column i: a vector stored, or added to what is there. */
// @ts-ignore: decorator
@inline function putVec(p: usize, v: v128, add: bool): void {
  v128.store(p, add ? f32x4.add(v128.load(p), v) : v);
}

// @ts-ignore: decorator
@inline function tile4x8(out: usize, outRow: usize, a: usize, aStep: usize, aLane: usize, b: usize, bRow: usize, kLen: i32,
  j: i32, i: i32, add: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let a0 = a, a1 = a + aLane, a2 = a1 + aLane, a3 = a2 + aLane;
  let bp = b + (<usize>i << 2);
  for (let k = 0; k < kLen; k++) {
    const b0 = v128.load(bp), b1 = v128.load(bp, 16);
    let s = v128.load32_splat(a0);
    c00 = madd(s, b0, c00); c01 = madd(s, b1, c01);
    s = v128.load32_splat(a1);
    c10 = madd(s, b0, c10); c11 = madd(s, b1, c11);
    s = v128.load32_splat(a2);
    c20 = madd(s, b0, c20); c21 = madd(s, b1, c21);
    s = v128.load32_splat(a3);
    c30 = madd(s, b0, c30); c31 = madd(s, b1, c31);
    a0 += aStep; a1 += aStep; a2 += aStep; a3 += aStep; bp += bRow;
  }
  const o0 = out + <usize>j * outRow + (<usize>i << 2), o1 = o0 + outRow, o2 = o1 + outRow, o3 = o2 + outRow;
  putVec(o0, c00, add); putVec(o0 + 16, c01, add);
  putVec(o1, c10, add); putVec(o1 + 16, c11, add);
  putVec(o2, c20, add); putVec(o2 + 16, c21, add);
  putVec(o3, c30, add); putVec(o3 + 16, c31, add);
}

function tile4x4(out: usize, outRow: usize, a: usize, aStep: usize, aLane: usize, b: usize, bRow: usize, kLen: i32,
  j: i32, i: i32, add: bool): void {
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  let a0 = a, a1 = a + aLane, a2 = a1 + aLane, a3 = a2 + aLane;
  let bp = b + (<usize>i << 2);
  for (let k = 0; k < kLen; k++) {
    const b0 = v128.load(bp);
    c0 = madd(v128.load32_splat(a0), b0, c0);
    c1 = madd(v128.load32_splat(a1), b0, c1);
    c2 = madd(v128.load32_splat(a2), b0, c2);
    c3 = madd(v128.load32_splat(a3), b0, c3);
    a0 += aStep; a1 += aStep; a2 += aStep; a3 += aStep; bp += bRow;
  }
  const o0 = out + <usize>j * outRow + (<usize>i << 2);
  putVec(o0, c0, add); putVec(o0 + outRow, c1, add); putVec(o0 + 2 * outRow, c2, add); putVec(o0 + 3 * outRow, c3, add);
}

/** One output (row j, column i) over the block: the edges that fill no vector. */
function single(out: usize, outRow: usize, a: usize, aStep: usize, aLane: usize, b: usize, bRow: usize, kLen: i32,
  j: i32, i: i32, add: bool): void {
  let s: f32 = 0;
  let ap = a + <usize>j * aLane, bp = b + (<usize>i << 2);
  for (let k = 0; k < kLen; k++) { s += load<f32>(ap) * load<f32>(bp); ap += aStep; bp += bRow; }
  const p = out + <usize>j * outRow + (<usize>i << 2);
  store<f32>(p, add ? load<f32>(p) + s : s);
}
