// out[cols, rows] = x[rows, cols]ᵀ, in 4×4 blocks of vector shuffles (scalar at the edges).
// Column blocks outside, rows inside: the four output rows being written then fill sequentially. (Rows outside
// wrote a 16-byte piece into every output row in turn, rows·4 bytes apart — 4 KiB for 1,024 rows, so they all
// fell into the same L1 sets and each piece was evicted before its neighbour arrived.)
export function transpose(out: usize, x: usize, rows: i32, cols: i32): void {
  const inRow = <usize>cols << 2, outRow = <usize>rows << 2;
  const fullRows = rows & ~3, fullCols = cols & ~3;
  for (let c = 0; c < fullCols; c += 4) {
    const k = <usize>c << 2;
    const o0 = out + <usize>c * outRow, o1 = o0 + outRow, o2 = o1 + outRow, o3 = o2 + outRow;
    for (let r = 0; r < fullRows; r += 4) {
      const x0 = x + <usize>r * inRow + k, x1 = x0 + inRow, x2 = x1 + inRow, x3 = x2 + inRow;
      const a = v128.load(x0), b = v128.load(x1), cc = v128.load(x2), d = v128.load(x3);
      const t0 = i32x4.shuffle(a, b, 0, 4, 1, 5), t1 = i32x4.shuffle(a, b, 2, 6, 3, 7);
      const t2 = i32x4.shuffle(cc, d, 0, 4, 1, 5), t3 = i32x4.shuffle(cc, d, 2, 6, 3, 7);
      const at = <usize>r << 2;
      v128.store(o0 + at, i32x4.shuffle(t0, t2, 0, 1, 4, 5));
      v128.store(o1 + at, i32x4.shuffle(t0, t2, 2, 3, 6, 7));
      v128.store(o2 + at, i32x4.shuffle(t1, t3, 0, 1, 4, 5));
      v128.store(o3 + at, i32x4.shuffle(t1, t3, 2, 3, 6, 7));
    }
  }
  // Edges: the last rows mod 4 of every column, and the last columns mod 4 of every row.
  for (let c = 0; c < fullCols; c++) {
    for (let r = fullRows; r < rows; r++) store<f32>(out + <usize>c * outRow + (<usize>r << 2), load<f32>(x + <usize>r * inRow + (<usize>c << 2)));
  }
  for (let c = fullCols; c < cols; c++) {
    for (let r = 0; r < rows; r++) store<f32>(out + <usize>c * outRow + (<usize>r << 2), load<f32>(x + <usize>r * inRow + (<usize>c << 2)));
  }
}
