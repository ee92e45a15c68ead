import { madd } from "./simd";

// dw[outDim, inDim] += dOutᵀ · x = Σ_r dOut[r, :]ᵀ ⊗ x[r, :], summed straight from the row-major operands: a tile
// of 4 outputs × 8 inputs keeps 8 vector accumulators; per row r it broadcasts the 4 gradients dOut[r, o..o+3]
// and loads x[r, i..i+7] as two vectors. No transposed copies and no horizontal sums, which pays off when x rows
// are short (the stories260K shapes); the rows go in blocks of ROW_BLOCK so that a block's part of x stays in
// L1 while every tile reads it. Each block's partial sums are added to dw in row order, so the result depends
// only on the operands.
const ROW_BLOCK: i32 = 128;

export function outerProductAccumulate(dw: usize, dOut: usize, x: usize, n: i32, inDim: i32, outDim: i32): void {
  const xRow = <usize>inDim << 2, gRow = <usize>outDim << 2;
  const in8 = inDim & ~7, in4 = inDim & ~3, out4 = outDim & ~3;
  for (let r0 = 0; r0 < n; r0 += ROW_BLOCK) {
    const rows = min(ROW_BLOCK, n - r0);
    const xb = x + <usize>r0 * xRow, gb = dOut + <usize>r0 * gRow;
    for (let o = 0; o < out4; o += 4) {
      let i = 0;
      for (; i < in8; i += 8) tile4x8(dw, gb, xb, rows, o, i, xRow, gRow, inDim);
      if (i < in4) { tile4x4(dw, gb, xb, rows, o, i, xRow, gRow, inDim); i += 4; }
      for (; i < inDim; i++) for (let j = o; j < o + 4; j++) scalarEntry(dw, gb, xb, rows, j, i, xRow, gRow, inDim);
    }
    for (let o = out4; o < outDim; o++) for (let i = 0; i < inDim; i++) scalarEntry(dw, gb, xb, rows, o, i, xRow, gRow, inDim);
  }
}

// @ts-ignore: decorator
@inline function tile4x8(dw: usize, g: usize, x: usize, rows: i32, o: i32, i: i32, xRow: usize, gRow: usize, inDim: i32): void {
  let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
  let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
  let xp = x + (<usize>i << 2), gp = g + (<usize>o << 2);
  for (let r = 0; r < rows; r++) {
    const xa = v128.load(xp), xb = v128.load(xp, 16);
    let s = v128.load32_splat(gp);
    a00 = madd(s, xa, a00); a01 = madd(s, xb, a01);
    s = v128.load32_splat(gp, 4);
    a10 = madd(s, xa, a10); a11 = madd(s, xb, a11);
    s = v128.load32_splat(gp, 8);
    a20 = madd(s, xa, a20); a21 = madd(s, xb, a21);
    s = v128.load32_splat(gp, 12);
    a30 = madd(s, xa, a30); a31 = madd(s, xb, a31);
    xp += xRow; gp += gRow;
  }
  const rowBytes = <usize>inDim << 2;
  const d0 = dw + ((<usize>o * inDim + i) << 2), d1 = d0 + rowBytes, d2 = d1 + rowBytes, d3 = d2 + rowBytes;
  v128.store(d0, f32x4.add(v128.load(d0), a00)); v128.store(d0, f32x4.add(v128.load(d0, 16), a01), 16);
  v128.store(d1, f32x4.add(v128.load(d1), a10)); v128.store(d1, f32x4.add(v128.load(d1, 16), a11), 16);
  v128.store(d2, f32x4.add(v128.load(d2), a20)); v128.store(d2, f32x4.add(v128.load(d2, 16), a21), 16);
  v128.store(d3, f32x4.add(v128.load(d3), a30)); v128.store(d3, f32x4.add(v128.load(d3, 16), a31), 16);
}

function tile4x4(dw: usize, g: usize, x: usize, rows: i32, o: i32, i: i32, xRow: usize, gRow: usize, inDim: i32): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let xp = x + (<usize>i << 2), gp = g + (<usize>o << 2);
  for (let r = 0; r < rows; r++) {
    const xa = v128.load(xp);
    a0 = madd(v128.load32_splat(gp), xa, a0);
    a1 = madd(v128.load32_splat(gp, 4), xa, a1);
    a2 = madd(v128.load32_splat(gp, 8), xa, a2);
    a3 = madd(v128.load32_splat(gp, 12), xa, a3);
    xp += xRow; gp += gRow;
  }
  const rowBytes = <usize>inDim << 2;
  const d0 = dw + ((<usize>o * inDim + i) << 2), d1 = d0 + rowBytes, d2 = d1 + rowBytes, d3 = d2 + rowBytes;
  v128.store(d0, f32x4.add(v128.load(d0), a0));
  v128.store(d1, f32x4.add(v128.load(d1), a1));
  v128.store(d2, f32x4.add(v128.load(d2), a2));
  v128.store(d3, f32x4.add(v128.load(d3), a3));
}

/** dw[o, i] += Σ over the block's rows of dOut[r, o]·x[r, i] (the edges that fill no vector). */
function scalarEntry(dw: usize, g: usize, x: usize, rows: i32, o: i32, i: i32, xRow: usize, gRow: usize, inDim: i32): void {
  let s: f32 = 0;
  let xp = x + (<usize>i << 2), gp = g + (<usize>o << 2);
  for (let r = 0; r < rows; r++) { s += load<f32>(gp) * load<f32>(xp); xp += xRow; gp += gRow; }
  const d = dw + ((<usize>o * inDim + i) << 2);
  store<f32>(d, load<f32>(d) + s);
}
