// biasForward(x, bias, n, cols) and biasBackward(dBias, dOut, n, cols): the bias of a linear layer (Qwen2's q/k/v).
// Forward against an f64 reference (exact: one f32 add per element); backward against central finite differences of
// L = Σ dOut ⊙ (x + bias) with a random dOut, on every bias element, for widths with and without a vector tail.
// dBias accumulates: it starts random and the part added is compared. Nothing may be written past either buffer.
// Error measure: per element |g − fd| / max(|fd|, 1e-2·max|fd|) (support/gradcheck.ts), bound 1e-3.
import { biasForward, biasBackward } from "../../assembly/kernels/bias";
import { Rng, allocF32, getF32, fillConst } from "./support/ref";
import { GRAD_TOL, H_REL, randomF64, writeF32, addedF64, maxAbs, sampleIndices, centralDiffs, gradError, Worst } from "./support/gradcheck";

const GUARD = 8;
const SENTINEL: f32 = -31.5;
const worstSeen = new Worst();

// ---- f64 reference ----
let gX = new StaticArray<f64>(0);
let gBias = new StaticArray<f64>(0);
let gDOut = new StaticArray<f64>(0);
let gN = 0, gCols = 0;

function lossRef(): f64 {
  let l: f64 = 0;
  for (let r = 0; r < gN; r++) for (let k = 0; k < gCols; k++) l += gDOut[r * gCols + k] * (gX[r * gCols + k] + gBias[k]);
  return l;
}

function runCase(rng: Rng, n: i32, cols: i32): f64 {
  gN = n; gCols = cols;
  gX = randomF64(rng, n * cols);
  gBias = randomF64(rng, cols);
  gDOut = randomF64(rng, n * cols);
  const x = allocF32(n * cols + GUARD), bias = allocF32(cols), dOut = allocF32(n * cols), dBias = allocF32(cols + GUARD);
  writeF32(x, gX); writeF32(bias, gBias); writeF32(dOut, gDOut);
  fillConst(x + (<usize>(n * cols) << 2), GUARD, SENTINEL);

  biasForward(x, bias, n, cols);
  let mismatches = 0;
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < cols; k++) if (getF32(x, r * cols + k) != <f32>gX[r * cols + k] + <f32>gBias[k]) mismatches++;
  }
  expect<i32>(mismatches).toBe(0, "biasForward vs f32 sums");
  for (let g = 0; g < GUARD; g++) expect<f32>(getF32(x, n * cols + g)).toBe(SENTINEL, "biasForward wrote past x");

  const d0 = randomF64(rng, cols);
  writeF32(dBias, d0);
  fillConst(dBias + (<usize>cols << 2), GUARD, SENTINEL);
  biasBackward(dBias, dOut, n, cols);
  for (let g = 0; g < GUARD; g++) expect<f32>(getF32(dBias, cols + g)).toBe(SENTINEL, "biasBackward wrote past dBias");
  const idx = sampleIndices(rng, cols, 1 << 30);
  const fd = centralDiffs(gBias, idx, lossRef, H_REL * maxAbs(gBias));
  const e = gradError(addedF64(dBias, d0), fd, idx);
  worstSeen.add(e);
  heap.free(x); heap.free(bias); heap.free(dOut); heap.free(dBias);
  return e;
}

describe("bias (forward exact, backward by finite differences)", () => {
  test("widths 1, 3, 4, 7, 16, 37, 64 over 1, 5 and 12 rows", () => {
    const rng = new Rng(5101);
    const widths: i32[] = [1, 3, 4, 7, 16, 37, 64];
    const rows: i32[] = [1, 5, 12];
    for (let i = 0; i < widths.length; i++) {
      for (let j = 0; j < rows.length; j++) {
        expect<f64>(runCase(rng, rows[j], widths[i])).toBeLessThanOrEqual(GRAD_TOL, `cols=${widths[i]} n=${rows[j]}`);
      }
    }
  });

  test("worst relative gradient error (logged)", () => {
    log<string>(`bias backward: worst FD error ${worstSeen.value}`);
    expect<f64>(worstSeen.value).toBeLessThanOrEqual(GRAD_TOL);
  });
});
