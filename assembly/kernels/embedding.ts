// Token embedding: row r of x is row tokens[r] of the table.
import { F32, matrixBytes, widenRow } from "./weights";

export function embeddingForward(x: usize, table: usize, tokens: usize, n: i32, dim: i32): void {
  const rowBytes = <usize>dim << 2;
  for (let r = 0; r < n; r++) {
    const token = load<i32>(tokens + (<usize>r << 2));
    memory.copy(x + <usize>r * rowBytes, table + <usize>token * rowBytes, rowBytes);
  }
}

/** dTable[tokens[r]] += dx[r] for every row (a token seen twice gets both rows). */
export function embeddingBackward(dTable: usize, dx: usize, tokens: usize, n: i32, dim: i32): void {
  const rowBytes = <usize>dim << 2;
  const vecBytes = <usize>(dim & ~3) << 2;
  for (let r = 0; r < n; r++) {
    const d = dTable + <usize>load<i32>(tokens + (<usize>r << 2)) * rowBytes, g = dx + <usize>r * rowBytes;
    for (let k: usize = 0; k < vecBytes; k += 16) v128.store(d + k, f32x4.add(v128.load(d + k), v128.load(g + k)));
    for (let k = vecBytes; k < rowBytes; k += 4) store<f32>(d + k, load<f32>(d + k) + load<f32>(g + k));
  }
}

/** embeddingForward from a table stored as `type` (weights.ts), each row widened to float32. */
export function embeddingForwardOf(x: usize, table: usize, type: i32, tokens: usize, n: i32, dim: i32): void {
  if (type == F32) {
    embeddingForward(x, table, tokens, n, dim);
    return;
  }
  const rowBytes = matrixBytes(type, 1, dim);
  for (let r = 0; r < n; r++) {
    const token = load<i32>(tokens + (<usize>r << 2));
    widenRow(x + ((<usize>r * dim) << 2), table + <usize>token * rowBytes, type, dim);
  }
}
