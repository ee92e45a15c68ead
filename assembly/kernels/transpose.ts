// out[cols, rows] = x[rows, cols]ᵀ, in 4×4 blocks of vector shuffles (scalar at the edges).
export function transpose(out: usize, x: usize, rows: i32, cols: i32): void {
  const inRow = <usize>cols << 2, outRow = <usize>rows << 2;
  const fullRows = rows & ~3, fullCols = cols & ~3;
  for (let r = 0; r < fullRows; r += 4) {
    const x0 = x + <usize>r * inRow, x1 = x0 + inRow, x2 = x1 + inRow, x3 = x2 + inRow;
    for (let c = 0; c < fullCols; c += 4) {
      const k = <usize>c << 2;
      const a = v128.load(x0 + k), b = v128.load(x1 + k), cc = v128.load(x2 + k), d = v128.load(x3 + k);
      const t0 = i32x4.shuffle(a, b, 0, 4, 1, 5), t1 = i32x4.shuffle(a, b, 2, 6, 3, 7);
      const t2 = i32x4.shuffle(cc, d, 0, 4, 1, 5), t3 = i32x4.shuffle(cc, d, 2, 6, 3, 7);
      const o = out + <usize>c * outRow + (<usize>r << 2);
      v128.store(o, i32x4.shuffle(t0, t2, 0, 1, 4, 5));
      v128.store(o + outRow, i32x4.shuffle(t0, t2, 2, 3, 6, 7));
      v128.store(o + 2 * outRow, i32x4.shuffle(t1, t3, 0, 1, 4, 5));
      v128.store(o + 3 * outRow, i32x4.shuffle(t1, t3, 2, 3, 6, 7));
    }
    for (let c = fullCols; c < cols; c++) {
      for (let i = 0; i < 4; i++) {
        store<f32>(out + <usize>c * outRow + (<usize>(r + i) << 2), load<f32>(x + <usize>(r + i) * inRow + (<usize>c << 2)));
      }
    }
  }
  for (let r = fullRows; r < rows; r++) {
    for (let c = 0; c < cols; c++) store<f32>(out + <usize>c * outRow + (<usize>r << 2), load<f32>(x + <usize>r * inRow + (<usize>c << 2)));
  }
}
