// Gradient check of rmsnormBackward(dx, dWeight, dOut, x, weight, n, dim, eps, accumulate) against central finite
// differences of an f64 scalar forward out[r] = weight ⊙ x[r] / sqrt(mean(x[r]²) + eps), L = Σ dOut ⊙ out:
// dx is written (or added when accumulate), dWeight is always added to (Σ over rows, micro-batches add up).
// Error measure: per element |g − fd| / max(|fd|, 1e-2·max|fd|) (support/gradcheck.ts), bound 1e-3.
//
// Conditioning: dx = s·(w⊙g) − (s³/dim)·x·Σ(w⊙g⊙x) removes the component of w⊙g along x, so where x carries
// nearly all of it the true dx is a small difference of large f32 terms. For dim = 1 that is every case
// (dx = s·w·g·eps/(x² + eps) ~ 1e-5·s·w·g for |x| ~ 0.5, left after subtracting two O(s·w·g) f32 terms: measured
// 1.1e-3 with eps = 1e-5 — f32 rounding, not a bug). dim 1 is therefore checked with eps = 0.1 (dx then is ~30%
// of s·w·g) — see the test below.
import { rmsnormForward, rmsnormBackward } from "../../assembly/kernels/rmsnorm";
import { Rng, allocF32, getF32, fillConst, trueRelErr } from "./support/ref";
import {
  GRAD_TOL, H_REL, randomF64, writeF32, readF64, addedF64, maxAbs, sampleIndices, centralDiffs, gradError, worse, Worst,
} from "./support/gradcheck";

const GUARD = 8;
const SENTINEL: f32 = -777.25;
const FWD_TOL: f64 = 1e-5;
const worstSeen = new Worst();

// ---- f64 reference ----
let gX = new StaticArray<f64>(0);
let gWeight = new StaticArray<f64>(0);
let gDOut = new StaticArray<f64>(0);
let gN = 0, gDim = 0;
let gEps: f64 = 0;

function scaleRef(r: i32): f64 {
  let ss: f64 = 0;
  for (let k = 0; k < gDim; k++) { const v = gX[r * gDim + k]; ss += v * v; }
  return 1.0 / Math.sqrt(ss / <f64>gDim + gEps);
}

function lossRef(): f64 {
  let l: f64 = 0;
  for (let r = 0; r < gN; r++) {
    const s = scaleRef(r);
    for (let k = 0; k < gDim; k++) l += gDOut[r * gDim + k] * (gWeight[k] * gX[r * gDim + k] * s);
  }
  return l;
}

function guardOk(p: usize, from: i32): bool {
  for (let g = 0; g < GUARD; g++) if (getF32(p, from + g) != SENTINEL) return false;
  return true;
}

/** One case with x in ±xAmp; returns the worst FD error over dx and dWeight. */
function runCase(rng: Rng, n: i32, dim: i32, eps: f32, xAmp: f64, accumulate: bool, limit: i32 = 1 << 30): f64 {
  gN = n; gDim = dim; gEps = <f64>eps;
  gX = randomF64(rng, n * dim, -xAmp, xAmp);
  gWeight = randomF64(rng, dim, -2, 2);
  gDOut = randomF64(rng, n * dim);
  const x = allocF32(n * dim), weight = allocF32(dim), dOut = allocF32(n * dim), out = allocF32(n * dim);
  const dx = allocF32(n * dim + GUARD), dWeight = allocF32(dim + GUARD);
  writeF32(x, gX); writeF32(weight, gWeight); writeF32(dOut, gDOut);

  rmsnormForward(out, x, weight, n, dim, eps);
  let fwd: f64 = 0;
  for (let r = 0; r < n; r++) {
    const s = scaleRef(r);
    for (let k = 0; k < dim; k++) fwd = worse(fwd, trueRelErr(<f64>getF32(out, r * dim + k), gWeight[k] * gX[r * dim + k] * s));
  }
  expect<f64>(fwd).toBeLessThanOrEqual(FWD_TOL, "rmsnormForward vs f64 forward");

  const dx0 = accumulate ? randomF64(rng, n * dim) : new StaticArray<f64>(n * dim);
  if (accumulate) writeF32(dx, dx0); else fillConst(dx, n * dim, NaN);
  const dw0 = randomF64(rng, dim);
  writeF32(dWeight, dw0);
  fillConst(dx + (<usize>(n * dim) << 2), GUARD, SENTINEL);
  fillConst(dWeight + (<usize>dim << 2), GUARD, SENTINEL);

  rmsnormBackward(dx, dWeight, dOut, x, weight, n, dim, eps, accumulate);

  expect<bool>(guardOk(dx, n * dim)).toBe(true, "wrote past dx");
  expect<bool>(guardOk(dWeight, dim)).toBe(true, "wrote past dWeight");
  const gotDx = accumulate ? addedF64(dx, dx0) : readF64(dx, n * dim);
  const gotDw = addedF64(dWeight, dw0);
  const ix = sampleIndices(rng, n * dim, limit), iw = sampleIndices(rng, dim, limit);
  const fdX = centralDiffs(gX, ix, lossRef, H_REL * maxAbs(gX));
  const fdW = centralDiffs(gWeight, iw, lossRef, H_REL * maxAbs(gWeight));
  const e = worse(gradError(gotDx, fdX, ix), gradError(gotDw, fdW, iw));
  worstSeen.add(e);
  heap.free(x); heap.free(weight); heap.free(dOut); heap.free(out); heap.free(dx); heap.free(dWeight);
  return e;
}

const DIMS: i32[] = [3, 5, 7, 13, 37, 4, 8, 64];
const NS: i32[] = [1, 2, 3, 5];

describe("rmsnormBackward (finite differences)", () => {
  test("dims 3, 5, 7, 13, 37 (+4, 8, 64) × n 1, 2, 3, 5: dx written, dWeight accumulated", () => {
    const rng = new Rng(8001);
    for (let a = 0; a < DIMS.length; a++) {
      for (let b = 0; b < NS.length; b++) {
        expect<f64>(runCase(rng, NS[b], DIMS[a], 1e-5, 1.0, false)).toBeLessThanOrEqual(GRAD_TOL, `dim=${DIMS[a]} n=${NS[b]}`);
      }
    }
  });

  test("accumulate = true adds dx to its previous contents", () => {
    const rng = new Rng(8002);
    for (let a = 0; a < DIMS.length; a++) {
      for (let b = 0; b < NS.length; b++) {
        expect<f64>(runCase(rng, NS[b], DIMS[a], 1e-5, 1.0, true)).toBeLessThanOrEqual(GRAD_TOL, `dim=${DIMS[a]} n=${NS[b]} acc`);
      }
    }
  });

  test("eps matters: small rows (|x| ~ 1e-3, eps 1e-5) and large rows (|x| ~ 30, eps 1e-6)", () => {
    const rng = new Rng(8003);
    for (let a = 0; a < DIMS.length; a++) {
      expect<f64>(runCase(rng, 3, DIMS[a], 1e-5, 1e-3, a % 2 == 0)).toBeLessThanOrEqual(GRAD_TOL, `dim=${DIMS[a]} small`);
      expect<f64>(runCase(rng, 2, DIMS[a], 1e-6, 30.0, a % 2 == 1)).toBeLessThanOrEqual(GRAD_TOL, `dim=${DIMS[a]} large`);
    }
  });

  test("dim 1 (dx is pure cancellation, checked with eps = 0.1) and dim 2", () => {
    const rng = new Rng(8004);
    expect<f64>(runCase(rng, 5, 1, 0.1, 1.0, false)).toBeLessThanOrEqual(GRAD_TOL, "dim=1 eps=0.1");
    expect<f64>(runCase(rng, 3, 1, 0.1, 1.0, true)).toBeLessThanOrEqual(GRAD_TOL, "dim=1 eps=0.1 acc");
    expect<f64>(runCase(rng, 5, 2, 1e-2, 1.0, false)).toBeLessThanOrEqual(GRAD_TOL, "dim=2 eps=1e-2");
  });

  test("model sizes 288 and 768, 96 sampled elements per input", () => {
    const rng = new Rng(8005);
    expect<f64>(runCase(rng, 4, 288, 1e-5, 1.0, false, 96)).toBeLessThanOrEqual(GRAD_TOL, "4x288");
    expect<f64>(runCase(rng, 2, 768, 1e-5, 1.0, true, 96)).toBeLessThanOrEqual(GRAD_TOL, "2x768 acc");
  });

  test("worst relative gradient error (logged)", () => {
    log<string>(`rmsnorm backward: worst FD error ${worstSeen.value}`);
    expect<f64>(worstSeen.value).toBeLessThanOrEqual(GRAD_TOL);
  });
});
