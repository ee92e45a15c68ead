// Gradient check of embeddingBackward(dTable, dx, tokens, n, dim) against central finite differences of an f64
// scalar forward x[r] = table[tokens[r]], L = Σ dx ⊙ x(table) with a random dx (the incoming gradient): FD on
// every table element, so rows of tokens that occur twice must collect both rows of dx and rows of unused
// tokens must get nothing. dTable always accumulates: it starts random, the part added is compared.
// Error measure: per element |g − fd| / max(|fd|, 1e-2·max|fd|) (support/gradcheck.ts), bound 1e-3.
// Unused rows are also checked bit for bit, and nothing may be written past the table.
import { embeddingForward, embeddingBackward } from "../../assembly/kernels/embedding";
import { Rng, allocF32, allocI32, getF32, setI32, fillConst, bits } from "./support/ref";
import { GRAD_TOL, H_REL, randomF64, writeF32, addedF64, maxAbs, sampleIndices, centralDiffs, gradError, worse, Worst } from "./support/gradcheck";

const GUARD = 8;
const SENTINEL: f32 = -31.5;
const worstSeen = new Worst();

// ---- f64 reference ----
let gTable = new StaticArray<f64>(0);
let gDx = new StaticArray<f64>(0);
let gTokens: i32[] = [];
let gDim = 0;

function lossRef(): f64 {
  let l: f64 = 0;
  for (let r = 0; r < gTokens.length; r++) {
    for (let k = 0; k < gDim; k++) l += gDx[r * gDim + k] * gTable[gTokens[r] * gDim + k];
  }
  return l;
}

function runCase(rng: Rng, vocab: i32, dim: i32, tokenList: i32[]): f64 {
  const n = tokenList.length;
  gTokens = tokenList; gDim = dim;
  gTable = randomF64(rng, vocab * dim);
  gDx = randomF64(rng, n * dim);
  const table = allocF32(vocab * dim), x = allocF32(n * dim), dx = allocF32(n * dim);
  const dTable = allocF32(vocab * dim + GUARD), tokens = allocI32(n);
  for (let r = 0; r < n; r++) setI32(tokens, r, tokenList[r]);
  writeF32(table, gTable); writeF32(dx, gDx);

  // forward: an exact copy of the rows
  embeddingForward(x, table, tokens, n, dim);
  let mismatches = 0;
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < dim; k++) if (<f64>getF32(x, r * dim + k) != gTable[tokenList[r] * dim + k]) mismatches++;
  }
  expect<i32>(mismatches).toBe(0, "embeddingForward vs f64 forward");

  const d0 = randomF64(rng, vocab * dim);
  writeF32(dTable, d0);
  fillConst(dTable + (<usize>(vocab * dim) << 2), GUARD, SENTINEL);
  embeddingBackward(dTable, dx, tokens, n, dim);
  for (let g = 0; g < GUARD; g++) expect<f32>(getF32(dTable, vocab * dim + g)).toBe(SENTINEL, "wrote past dTable");
  let touched = 0;
  for (let t = 0; t < vocab; t++) {
    if (tokenList.includes(t)) continue;
    for (let k = 0; k < dim; k++) if (bits(getF32(dTable, t * dim + k)) != bits(<f32>d0[t * dim + k])) touched++;
  }
  expect<i32>(touched).toBe(0, "rows of tokens not in the batch changed");

  const idx = sampleIndices(rng, vocab * dim, 1 << 30);
  const fd = centralDiffs(gTable, idx, lossRef, H_REL * maxAbs(gTable));
  const e = gradError(addedF64(dTable, d0), fd, idx);
  worstSeen.add(e);
  heap.free(table); heap.free(x); heap.free(dx); heap.free(dTable); heap.free(tokens);
  return e;
}

describe("embeddingBackward (finite differences)", () => {
  test("dims 1, 3, 5, 7, 13, 37 (+4, 8): repeated tokens accumulate, unused rows untouched", () => {
    const rng = new Rng(4001);
    const dims: i32[] = [1, 3, 5, 7, 13, 37, 4, 8];
    for (let i = 0; i < dims.length; i++) {
      // vocab 11: token 3 three times (two adjacent), token 10 (last row) and 0 (first row) once each
      const e = runCase(rng, 11, dims[i], [3, 10, 3, 3, 0, 7]);
      expect<f64>(e).toBeLessThanOrEqual(GRAD_TOL, `dim=${dims[i]}`);
    }
  });

  test("one token repeated over a whole batch, and a single row", () => {
    const rng = new Rng(4002);
    expect<f64>(runCase(rng, 5, 13, [2, 2, 2, 2, 2, 2, 2, 2, 2])).toBeLessThanOrEqual(GRAD_TOL, "9 x token 2");
    expect<f64>(runCase(rng, 3, 37, [1])).toBeLessThanOrEqual(GRAD_TOL, "single row");
  });

  test("worst relative gradient error (logged)", () => {
    log<string>(`embedding backward: worst FD error ${worstSeen.value}`);
    expect<f64>(worstSeen.value).toBeLessThanOrEqual(GRAD_TOL);
  });
});
