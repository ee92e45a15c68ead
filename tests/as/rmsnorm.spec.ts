// rmsnormForward(out, x, weight, n, dim, eps): out[r] = weight ⊙ x[r] / sqrt(mean(x[r]²) + eps), per row,
// against an f64 reference. Every output element is a product (no cancellation), so the error is checked
// as a true relative error |got − want| / |want| per element, bound 1e-5 (observed < 3e-7).
import { rmsnormForward } from "../../assembly/kernels/rmsnorm";
import { Rng, allocF32, getF32, setF32, fillUniform, fillConst, trueRelErr, worse } from "./support/ref";

const TOL: f64 = 1e-5;
const GUARD = 8;

/** Runs one case (x scaled by `amp`), returns the worst relative error; checks that nothing past out is written. */
function runCase(rng: Rng, n: i32, dim: i32, eps: f32, amp: f64): f64 {
  const x = allocF32(n * dim), weight = allocF32(dim), out = allocF32(n * dim + GUARD);
  fillUniform(x, n * dim, rng, -amp, amp);
  fillUniform(weight, dim, rng, -2, 2);
  fillConst(out, n * dim, NaN);
  for (let g = 0; g < GUARD; g++) setF32(out, n * dim + g, <f32>(g + 777));

  rmsnormForward(out, x, weight, n, dim, eps);

  let worst: f64 = 0;
  for (let r = 0; r < n; r++) {
    let ss: f64 = 0;
    for (let k = 0; k < dim; k++) { const v = <f64>getF32(x, r * dim + k); ss += v * v; }
    const scale = 1.0 / Math.sqrt(ss / <f64>dim + <f64>eps);
    for (let k = 0; k < dim; k++) {
      const want = <f64>getF32(weight, k) * <f64>getF32(x, r * dim + k) * scale;
      const e = trueRelErr(<f64>getF32(out, r * dim + k), want);
      worst = worse(worst, e);
    }
  }
  for (let g = 0; g < GUARD; g++) expect<f32>(getF32(out, n * dim + g)).toBe(<f32>(g + 777), "wrote past out");
  heap.free(x); heap.free(weight); heap.free(out);
  return worst;
}

const DIMS: i32[] = [1, 2, 3, 4, 5, 7, 8, 9, 37, 64, 67, 172, 288, 768];
const NS: i32[] = [1, 2, 3, 5];

describe("rmsnormForward", () => {
  test("all dims (1..9, 37, 64, 67, 172, 288, 768) × n (1, 2, 3, 5) match the f64 reference", () => {
    const rng = new Rng(11);
    for (let a = 0; a < DIMS.length; a++) {
      for (let b = 0; b < NS.length; b++) {
        expect<f64>(runCase(rng, NS[b], DIMS[a], 1e-5, 1.0)).toBeLessThanOrEqual(TOL, `dim=${DIMS[a]} n=${NS[b]}`);
      }
    }
  });

  test("eps matters when the row is small (|x| ~ 1e-3, eps 1e-5 and 1e-6)", () => {
    const rng = new Rng(12);
    for (let a = 0; a < DIMS.length; a++) {
      expect<f64>(runCase(rng, 3, DIMS[a], 1e-5, 1e-3)).toBeLessThanOrEqual(TOL, `dim=${DIMS[a]} eps=1e-5`);
      expect<f64>(runCase(rng, 2, DIMS[a], 1e-6, 1e-3)).toBeLessThanOrEqual(TOL, `dim=${DIMS[a]} eps=1e-6`);
    }
  });

  test("large activations (|x| ~ 100) and eps = 0", () => {
    const rng = new Rng(13);
    for (let a = 0; a < DIMS.length; a++) {
      expect<f64>(runCase(rng, 2, DIMS[a], 1e-5, 100.0)).toBeLessThanOrEqual(TOL, `dim=${DIMS[a]} amp=100`);
      expect<f64>(runCase(rng, 2, DIMS[a], 0, 1.0)).toBeLessThanOrEqual(TOL, `dim=${DIMS[a]} eps=0`);
    }
  });

  test("rows are normalised independently (each row sees only its own mean square)", () => {
    // Row 0 tiny, row 1 huge: with a shared or misplaced sum of squares row 0 would come out ~0.
    const dim = 37;
    const x = allocF32(2 * dim), weight = allocF32(dim), out = allocF32(2 * dim);
    for (let k = 0; k < dim; k++) {
      setF32(x, k, k % 2 == 0 ? <f32>0.01 : <f32>-0.01);
      setF32(x, dim + k, k % 3 == 0 ? <f32>-50 : <f32>50);
      setF32(weight, k, 1);
    }
    rmsnormForward(out, x, weight, 2, dim, 0);
    // rms of each row is exactly its |value|, so every output is ±1
    for (let k = 0; k < dim; k++) {
      expect<f32>(getF32(out, k)).toBeCloseTo(k % 2 == 0 ? 1 : -1, 5);
      expect<f32>(getF32(out, dim + k)).toBeCloseTo(k % 3 == 0 ? -1 : 1, 5);
    }
    heap.free(x); heap.free(weight); heap.free(out);
  });
});
