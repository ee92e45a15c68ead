// matmulForward(out, x, w, n, inDim, outDim, accumulate): out[n, outDim] (=|+=) x[n, inDim] · w[outDim, inDim]ᵀ,
// against an f64 triple loop; sizes that are not multiples of the 4×2 tile and of the 4-lane vectors, typical
// model sizes, input blocks (several row blocks), decode batches on the streamed path, and bit-exact row independence
// from the batch size.
//
// Error measure: |got − want| / max(|want|, Σ|x_k·w_k| (+ |out₀| when accumulating)). The rounding error of an f32
// dot product is proportional to Σ|terms|, not to |sum|: a sum of 4097 terms that cancels down to ~1 carries an
// absolute error of ~1e-5 in any f32 summation order (plain |got − want| / max(|want|, 1) hits 1.4e-5 there),
// while a missing or doubled term moves this measure by ~1e-3. Bound used: 1e-6 (observed ≲ 2e-7).
import { matmulForward } from "../../assembly/kernels/matmul";
import { Rng, allocF32, getF32, setF32, fillUniform, fillConst, bits, worse } from "./support/ref";

const TOL: f64 = 1e-6;
const GUARD = 8; // floats after `out` that must stay untouched

/** f64 reference of out[r, o]. */
function dotRef(x: usize, w: usize, r: i32, o: i32, inDim: i32): f64 {
  let s: f64 = 0;
  const xr = x + ((<usize>r * inDim) << 2), wo = w + ((<usize>o * inDim) << 2);
  for (let k = 0; k < inDim; k++) s += <f64>getF32(xr, k) * <f64>getF32(wo, k);
  return s;
}

/** Σ|x[r,k]·w[o,k]|, the scale of the rounding error of out[r, o]. */
function absDotRef(x: usize, w: usize, r: i32, o: i32, inDim: i32): f64 {
  let s: f64 = 0;
  const xr = x + ((<usize>r * inDim) << 2), wo = w + ((<usize>o * inDim) << 2);
  for (let k = 0; k < inDim; k++) s += Math.abs(<f64>getF32(xr, k) * <f64>getF32(wo, k));
  return s;
}

/**
 * Runs one case and returns the largest error (measure above); also checks the guard after `out`.
 * accumulate = false: `out` starts as NaN, so any read of it shows. accumulate = true: `out` starts random.
 */
function runCase(rng: Rng, n: i32, inDim: i32, outDim: i32, accumulate: bool): f64 {
  const x = allocF32(n * inDim), w = allocF32(outDim * inDim);
  const out = allocF32(n * outDim + GUARD), before = allocF32(n * outDim);
  fillUniform(x, n * inDim, rng);
  fillUniform(w, outDim * inDim, rng);
  if (accumulate) fillUniform(out, n * outDim, rng, -4, 4);
  else fillConst(out, n * outDim, NaN);
  for (let i = 0; i < n * outDim; i++) setF32(before, i, getF32(out, i));
  for (let g = 0; g < GUARD; g++) setF32(out, n * outDim + g, <f32>(g + 1234));

  matmulForward(out, x, w, n, inDim, outDim, accumulate);

  let worst: f64 = 0;
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < outDim; o++) {
      let want = dotRef(x, w, r, o, inDim);
      let scale = absDotRef(x, w, r, o, inDim);
      if (accumulate) {
        want += <f64>getF32(before, r * outDim + o);
        scale += Math.abs(<f64>getF32(before, r * outDim + o));
      }
      const e = Math.abs(<f64>getF32(out, r * outDim + o) - want) / Math.max(Math.abs(want), scale);
      worst = worse(worst, e);
    }
  }
  for (let g = 0; g < GUARD; g++) expect<f32>(getF32(out, n * outDim + g)).toBe(<f32>(g + 1234), "wrote past out");
  heap.free(x); heap.free(w); heap.free(out); heap.free(before);
  return worst;
}

/** Number of rows whose batched result differs in any bit from computing that row alone (n = 1). */
function rowMismatches(rng: Rng, n: i32, inDim: i32, outDim: i32): i32 {
  const x = allocF32(n * inDim), w = allocF32(outDim * inDim);
  const batched = allocF32(n * outDim), single = allocF32(outDim);
  fillUniform(x, n * inDim, rng);
  fillUniform(w, outDim * inDim, rng);
  matmulForward(batched, x, w, n, inDim, outDim, false);
  let bad = 0;
  for (let r = 0; r < n; r++) {
    matmulForward(single, x + ((<usize>r * inDim) << 2), w, 1, inDim, outDim, false);
    for (let o = 0; o < outDim; o++) {
      if (bits(getF32(single, o)) != bits(getF32(batched, r * outDim + o))) { bad++; break; }
    }
  }
  heap.free(x); heap.free(w); heap.free(batched); heap.free(single);
  return bad;
}

const NS: i32[] = [1, 2, 3, 4, 5, 7, 8, 9];
const IN_DIMS: i32[] = [1, 3, 4, 5, 8, 37, 67];
const OUT_DIMS: i32[] = [1, 2, 3, 5, 9];

describe("matmulForward", () => {
  test("small and ragged shapes (n × inDim × outDim over 1..9 × 1..67 × 1..9) match the f64 reference", () => {
    const rng = new Rng(101);
    for (let a = 0; a < NS.length; a++) {
      for (let b = 0; b < IN_DIMS.length; b++) {
        for (let c = 0; c < OUT_DIMS.length; c++) {
          const e = runCase(rng, NS[a], IN_DIMS[b], OUT_DIMS[c], false);
          expect<f64>(e).toBeLessThanOrEqual(TOL, `n=${NS[a]} inDim=${IN_DIMS[b]} outDim=${OUT_DIMS[c]}`);
        }
      }
    }
  });

  test("accumulate = true adds to the previous contents of out", () => {
    const rng = new Rng(202);
    for (let a = 0; a < NS.length; a++) {
      for (let b = 0; b < IN_DIMS.length; b++) {
        const outDim = OUT_DIMS[(a + b) % OUT_DIMS.length];
        const e = runCase(rng, NS[a], IN_DIMS[b], outDim, true);
        expect<f64>(e).toBeLessThanOrEqual(TOL, `n=${NS[a]} inDim=${IN_DIMS[b]} outDim=${outDim}`);
      }
    }
  });

  test("typical model sizes (64, 172, 288, 768)", () => {
    const rng = new Rng(303);
    expect<f64>(runCase(rng, 1, 288, 288, false)).toBeLessThanOrEqual(TOL, "1x288x288");
    expect<f64>(runCase(rng, 7, 288, 172, false)).toBeLessThanOrEqual(TOL, "7x288x172");
    expect<f64>(runCase(rng, 5, 172, 64, true)).toBeLessThanOrEqual(TOL, "5x172x64 acc");
    expect<f64>(runCase(rng, 3, 768, 288, true)).toBeLessThanOrEqual(TOL, "3x768x288 acc");
    expect<f64>(runCase(rng, 16, 64, 172, false)).toBeLessThanOrEqual(TOL, "16x64x172");
  });

  test("several input-row blocks (large inDim makes blocks of 4..40 rows)", () => {
    const rng = new Rng(404);
    // inDim 1024 -> blocks of 32 rows: 37 = 32 + 4 + 1; inDim 4097 -> blocks of 4 rows: 9 = 4 + 4 + 1
    expect<f64>(runCase(rng, 37, 1024, 5, false)).toBeLessThanOrEqual(TOL, "37x1024x5");
    expect<f64>(runCase(rng, 9, 4097, 3, true)).toBeLessThanOrEqual(TOL, "9x4097x3 acc");
    expect<f64>(runCase(rng, 43, 768, 2, false)).toBeLessThanOrEqual(TOL, "43x768x2");
  });

  test("a row's result does not depend on n (batched == one row at a time, bit for bit)", () => {
    const rng = new Rng(505);
    for (let a = 0; a < NS.length; a++) {
      for (let b = 0; b < IN_DIMS.length; b++) {
        const outDim = OUT_DIMS[(a * 3 + b) % OUT_DIMS.length];
        expect<i32>(rowMismatches(rng, NS[a], IN_DIMS[b], outDim)).toBe(0, `n=${NS[a]} inDim=${IN_DIMS[b]} outDim=${outDim}`);
      }
    }
    expect<i32>(rowMismatches(rng, 13, 288, 172)).toBe(0, "13x288x172");
    expect<i32>(rowMismatches(rng, 37, 1024, 7)).toBe(0, "37x1024x7 (two row blocks)");
  });

  test("decode batches against a matrix over 256 KiB (the streamed path: 8..32 rows, ragged widths, accumulate)", () => {
    const rng = new Rng(606);
    // Each matrix is over SPLIT_BYTES; the row counts give 2..8 tiles, plus leftover rows on the one-row path.
    expect<f64>(runCase(rng, 16, 576, 131, false)).toBeLessThanOrEqual(TOL, "16x576x131");
    expect<f64>(runCase(rng, 13, 1030, 70, true)).toBeLessThanOrEqual(TOL, "13x1030x70 acc (a scalar tail)");
    expect<f64>(runCase(rng, 33, 601, 110, false)).toBeLessThanOrEqual(TOL, "33x601x110");
    expect<f64>(runCase(rng, 8, 2500, 30, true)).toBeLessThanOrEqual(TOL, "8x2500x30 acc (two K blocks)");
    expect<i32>(rowMismatches(rng, 16, 576, 131)).toBe(0, "16x576x131");
    expect<i32>(rowMismatches(rng, 13, 1030, 70)).toBe(0, "13x1030x70");
    expect<i32>(rowMismatches(rng, 32, 601, 110)).toBe(0, "32x601x110");
    expect<i32>(rowMismatches(rng, 8, 2500, 30)).toBe(0, "8x2500x30");
  });

  test("exact on small integers (no rounding anywhere)", () => {
    // x[r,k] = (r + k) % 5 - 2, w[o,k] = (o * 3 + k) % 7 - 3: every partial sum is a small integer.
    const n = 5, inDim = 11, outDim = 3;
    const x = allocF32(n * inDim), w = allocF32(outDim * inDim), out = allocF32(n * outDim);
    for (let r = 0; r < n; r++) for (let k = 0; k < inDim; k++) setF32(x, r * inDim + k, <f32>((r + k) % 5 - 2));
    for (let o = 0; o < outDim; o++) for (let k = 0; k < inDim; k++) setF32(w, o * inDim + k, <f32>((o * 3 + k) % 7 - 3));
    matmulForward(out, x, w, n, inDim, outDim, false);
    for (let r = 0; r < n; r++) {
      for (let o = 0; o < outDim; o++) expect<f32>(getF32(out, r * outDim + o)).toBe(<f32>dotRef(x, w, r, o, inDim));
    }
    heap.free(x); heap.free(w); heap.free(out);
  });
});
