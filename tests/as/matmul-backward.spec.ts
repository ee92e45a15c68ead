// Gradient check of matmulBackwardInput / matmulBackwardWeight (out[n, outDim] = x[n, inDim] · w[outDim, inDim]ᵀ)
// against central finite differences of an f64 scalar forward, L = Σ dOut ⊙ out with a random dOut:
//   dx = dOut · w   (written, or added when accumulate)        dw += dOutᵀ · x   (always added)
// Signatures as of the transpose-into-scratch version: matmulBackwardInput(..., accumulate, scratch[inDim·outDim]),
// matmulBackwardWeight(..., scratchOut[n·outDim], scratchIn[n·inDim]); scratch starts as NaN (it must be written
// before it is read), is guarded at its end, and x, w, dOut must come back bit for bit unchanged.
// Error measure: per element |g − fd| / max(|fd|, 1e-2·max|fd|) (support/gradcheck.ts), bound 1e-3.
// The kernel's previous contents are random (accumulate) or NaN (written), and the part it added is
// compared (result − previous, in f64). Shapes cover the 4-row × 8-column tiles and every remainder:
// n ∈ {1,3,5,9} (+4, 8), inDim ∈ {1,7,9,13,37} (+8, 16), outDim ∈ {1,3,5} (+4, 8).
import { matmulForward, matmulBackwardInput, matmulBackwardWeight } from "../../assembly/kernels/matmul";
import { Rng, allocF32, getF32, setF32, fillConst, relErr, bits } from "./support/ref";
import {
  GRAD_TOL, H_REL, randomF64, writeF32, readF64, addedF64, maxAbs, sampleIndices, centralDiffs, gradError, worse, Worst,
} from "./support/gradcheck";

const GUARD = 8;
const SENTINEL: f32 = 4321.5;
const FWD_TOL: f64 = 1e-5;
const worstSeen = new Worst();

// ---- f64 reference (reads these globals) ----
let gX = new StaticArray<f64>(0);
let gW = new StaticArray<f64>(0);
let gDOut = new StaticArray<f64>(0);
let gN = 0, gIn = 0, gOutDim = 0;

function outRef(r: i32, o: i32): f64 {
  let s: f64 = 0;
  for (let k = 0; k < gIn; k++) s += gX[r * gIn + k] * gW[o * gIn + k];
  return s;
}

function lossRef(): f64 {
  let l: f64 = 0;
  for (let r = 0; r < gN; r++) for (let o = 0; o < gOutDim; o++) l += gDOut[r * gOutDim + o] * outRef(r, o);
  return l;
}

function guardOk(p: usize, from: i32): bool {
  for (let g = 0; g < GUARD; g++) if (getF32(p, from + g) != SENTINEL) return false;
  return true;
}

/** count NaN floats followed by GUARD sentinels. */
function allocScratch(count: i32): usize {
  const p = allocF32(count + GUARD);
  fillConst(p, count, NaN);
  fillConst(p + (<usize>count << 2), GUARD, SENTINEL);
  return p;
}

/** True if p[0..a.length) still holds a's values bit for bit. */
function unchanged(p: usize, a: StaticArray<f64>): bool {
  for (let i = 0; i < a.length; i++) if (bits(getF32(p, i)) != bits(<f32>a[i])) return false;
  return true;
}

/**
 * One case: returns the worst gradient error over dx and dw (FD on every element, or `limit` sampled ones per
 * input), after checking the guards and that the kernel's forward agrees with the f64 forward.
 */
function runCase(rng: Rng, n: i32, inDim: i32, outDim: i32, accumulate: bool, limit: i32 = 1 << 30): f64 {
  gN = n; gIn = inDim; gOutDim = outDim;
  gX = randomF64(rng, n * inDim);
  gW = randomF64(rng, outDim * inDim);
  gDOut = randomF64(rng, n * outDim);
  const x = allocF32(n * inDim), w = allocF32(outDim * inDim), dOut = allocF32(n * outDim);
  const out = allocF32(n * outDim);
  const dx = allocF32(n * inDim + GUARD), dw = allocF32(outDim * inDim + GUARD);
  writeF32(x, gX); writeF32(w, gW); writeF32(dOut, gDOut);

  // the kernel's forward is the function whose gradient we check
  matmulForward(out, x, w, n, inDim, outDim, false);
  let fwd: f64 = 0;
  for (let r = 0; r < n; r++) for (let o = 0; o < outDim; o++) fwd = worse(fwd, relErr(<f64>getF32(out, r * outDim + o), outRef(r, o)));
  expect<f64>(fwd).toBeLessThanOrEqual(FWD_TOL, "matmulForward vs f64 forward");

  const dx0 = accumulate ? randomF64(rng, n * inDim) : new StaticArray<f64>(n * inDim);
  if (accumulate) writeF32(dx, dx0); else fillConst(dx, n * inDim, NaN);
  const dw0 = randomF64(rng, outDim * inDim);
  writeF32(dw, dw0);
  fillConst(dx + (<usize>(n * inDim) << 2), GUARD, SENTINEL);
  fillConst(dw + (<usize>(outDim * inDim) << 2), GUARD, SENTINEL);

  const sIn = allocScratch(inDim * outDim), sOut = allocScratch(n * outDim), sX = allocScratch(n * inDim);
  matmulBackwardInput(dx, dOut, w, n, inDim, outDim, accumulate, sIn);
  matmulBackwardWeight(dw, dOut, x, n, inDim, outDim, sOut, sX);

  expect<bool>(guardOk(dx, n * inDim)).toBe(true, "matmulBackwardInput wrote past dx");
  expect<bool>(guardOk(dw, outDim * inDim)).toBe(true, "matmulBackwardWeight wrote past dw");
  expect<bool>(guardOk(sIn, inDim * outDim)).toBe(true, "matmulBackwardInput wrote past scratch");
  expect<bool>(guardOk(sOut, n * outDim)).toBe(true, "matmulBackwardWeight wrote past scratchOut");
  expect<bool>(guardOk(sX, n * inDim)).toBe(true, "matmulBackwardWeight wrote past scratchIn");
  expect<bool>(unchanged(x, gX) && unchanged(w, gW) && unchanged(dOut, gDOut)).toBe(true, "an input was modified");
  const gotDx = accumulate ? addedF64(dx, dx0) : readF64(dx, n * inDim);
  const gotDw = addedF64(dw, dw0);

  const ix = sampleIndices(rng, n * inDim, limit), iw = sampleIndices(rng, outDim * inDim, limit);
  const fdX = centralDiffs(gX, ix, lossRef, H_REL * maxAbs(gX));
  const fdW = centralDiffs(gW, iw, lossRef, H_REL * maxAbs(gW));
  const e = worse(gradError(gotDx, fdX, ix), gradError(gotDw, fdW, iw));
  worstSeen.add(e);
  heap.free(x); heap.free(w); heap.free(dOut); heap.free(out); heap.free(dx); heap.free(dw);
  heap.free(sIn); heap.free(sOut); heap.free(sX);
  return e;
}

const NS: i32[] = [1, 3, 5, 9, 4, 8];
const IN_DIMS: i32[] = [1, 7, 9, 13, 37, 8, 16];
const OUT_DIMS: i32[] = [1, 3, 5, 4, 8];

describe("matmul backward (finite differences)", () => {
  test("dx written and dw accumulated: every n × inDim × outDim, FD on every element", () => {
    const rng = new Rng(7001);
    for (let a = 0; a < NS.length; a++) {
      for (let b = 0; b < IN_DIMS.length; b++) {
        for (let c = 0; c < OUT_DIMS.length; c++) {
          const e = runCase(rng, NS[a], IN_DIMS[b], OUT_DIMS[c], false);
          expect<f64>(e).toBeLessThanOrEqual(GRAD_TOL, `n=${NS[a]} inDim=${IN_DIMS[b]} outDim=${OUT_DIMS[c]}`);
        }
      }
    }
  });

  test("accumulate = true: dx is added to its previous (random) contents", () => {
    const rng = new Rng(7002);
    for (let a = 0; a < NS.length; a++) {
      for (let b = 0; b < IN_DIMS.length; b++) {
        for (let c = 0; c < OUT_DIMS.length; c++) {
          const e = runCase(rng, NS[a], IN_DIMS[b], OUT_DIMS[c], true);
          expect<f64>(e).toBeLessThanOrEqual(GRAD_TOL, `n=${NS[a]} inDim=${IN_DIMS[b]} outDim=${OUT_DIMS[c]} acc`);
        }
      }
    }
  });

  test("model-like sizes, 96 sampled elements per input (5×288×67, 9×67×37 acc, 13×172×9)", () => {
    const rng = new Rng(7003);
    expect<f64>(runCase(rng, 5, 288, 67, false, 96)).toBeLessThanOrEqual(GRAD_TOL, "5x288x67");
    expect<f64>(runCase(rng, 9, 67, 37, true, 96)).toBeLessThanOrEqual(GRAD_TOL, "9x67x37 acc");
    expect<f64>(runCase(rng, 13, 172, 9, false, 96)).toBeLessThanOrEqual(GRAD_TOL, "13x172x9");
  });

  test("a rank-short side of a wide input (LoRA's A: 9×600×16, 5×300×64 acc, 7×577×3; the direct kernel) and 6×300×65 (the tile)", () => {
    const rng = new Rng(7004);
    expect<f64>(runCase(rng, 9, 600, 16, false, 96)).toBeLessThanOrEqual(GRAD_TOL, "9x600x16");
    expect<f64>(runCase(rng, 5, 300, 64, true, 96)).toBeLessThanOrEqual(GRAD_TOL, "5x300x64 acc");
    expect<f64>(runCase(rng, 7, 577, 3, false, 96)).toBeLessThanOrEqual(GRAD_TOL, "7x577x3");
    expect<f64>(runCase(rng, 6, 300, 65, false, 96)).toBeLessThanOrEqual(GRAD_TOL, "6x300x65");
  });

  test("dw accumulates over calls (two micro-batches add up to the gradient of both)", () => {
    // dw after backward(batch A) then backward(batch B) == dOut_Aᵀ·x_A + dOut_Bᵀ·x_B (f64), from zero.
    const rng = new Rng(7004);
    const n = 3, inDim = 13, outDim = 5;
    const xa = randomF64(rng, n * inDim), xb = randomF64(rng, n * inDim);
    const ga = randomF64(rng, n * outDim), gb = randomF64(rng, n * outDim);
    const px = allocF32(n * inDim), pg = allocF32(n * outDim), dw = allocF32(outDim * inDim);
    const sOut = allocF32(n * outDim), sX = allocF32(n * inDim);
    fillConst(dw, outDim * inDim, 0);
    writeF32(px, xa); writeF32(pg, ga);
    matmulBackwardWeight(dw, pg, px, n, inDim, outDim, sOut, sX);
    writeF32(px, xb); writeF32(pg, gb);
    matmulBackwardWeight(dw, pg, px, n, inDim, outDim, sOut, sX);
    let worst: f64 = 0;
    for (let o = 0; o < outDim; o++) {
      for (let k = 0; k < inDim; k++) {
        let want: f64 = 0;
        for (let r = 0; r < n; r++) want += ga[r * outDim + o] * xa[r * inDim + k] + gb[r * outDim + o] * xb[r * inDim + k];
        worst = worse(worst, relErr(<f64>getF32(dw, o * inDim + k), want));
      }
    }
    expect<f64>(worst).toBeLessThanOrEqual(1e-5);
    heap.free(px); heap.free(pg); heap.free(dw); heap.free(sOut); heap.free(sX);
  });

  test("dw over many rows (several row blocks of the direct kernel) and ragged widths equals the f64 sum", () => {
    // n up to 300 spans three 128-row blocks; inDim 172 and 45 leave 4-wide and scalar edges; 300 > 256 takes the transposed path.
    const rng = new Rng(7005);
    const shapes: i32[][] = [[300, 172, 64], [257, 45, 7], [129, 64, 32], [130, 300, 5]];
    for (let c = 0; c < shapes.length; c++) {
      const n = shapes[c][0], inDim = shapes[c][1], outDim = shapes[c][2];
      const x = randomF64(rng, n * inDim), g = randomF64(rng, n * outDim), dw0 = randomF64(rng, outDim * inDim);
      const px = allocF32(n * inDim), pg = allocF32(n * outDim), dw = allocF32(outDim * inDim + GUARD);
      const sOut = allocF32(n * outDim), sX = allocF32(n * inDim);
      writeF32(px, x); writeF32(pg, g); writeF32(dw, dw0);
      fillConst(dw + (<usize>(outDim * inDim) << 2), GUARD, SENTINEL);
      matmulBackwardWeight(dw, pg, px, n, inDim, outDim, sOut, sX);
      let worst: f64 = 0;
      for (let o = 0; o < outDim; o++) {
        for (let k = 0; k < inDim; k++) {
          let want: f64 = 0;
          for (let r = 0; r < n; r++) want += g[r * outDim + o] * x[r * inDim + k];
          worst = worse(worst, relErr(<f64>getF32(dw, o * inDim + k) - <f64>(<f32>dw0[o * inDim + k]), want));
        }
      }
      expect<f64>(worst).toBeLessThanOrEqual(1e-5, `n=${n} inDim=${inDim} outDim=${outDim}`);
      expect<bool>(guardOk(dw, outDim * inDim)).toBe(true, "wrote past dw");
      heap.free(px); heap.free(pg); heap.free(dw); heap.free(sOut); heap.free(sX);
    }
  });

  test("dx over long reductions (several blocks of the direct kernel) and ragged widths equals the f64 sum", () => {
    // outDim 200 spans two 128-long blocks of the reduction; 300 > 256 takes the transposed path.
    const rng = new Rng(7006);
    const shapes: i32[][] = [[37, 45, 200], [9, 64, 172], [6, 13, 129], [5, 300, 7], [7, 20, 300]];
    for (let c = 0; c < shapes.length; c++) {
      const n = shapes[c][0], inDim = shapes[c][1], outDim = shapes[c][2];
      for (let acc = 0; acc < 2; acc++) {
        const w = randomF64(rng, outDim * inDim), g = randomF64(rng, n * outDim), dx0 = randomF64(rng, n * inDim);
        const pw = allocF32(outDim * inDim), pg = allocF32(n * outDim), dx = allocF32(n * inDim + GUARD), sIn = allocF32(inDim * outDim);
        writeF32(pw, w); writeF32(pg, g);
        if (acc == 1) writeF32(dx, dx0); else fillConst(dx, n * inDim, NaN);
        fillConst(dx + (<usize>(n * inDim) << 2), GUARD, SENTINEL);
        matmulBackwardInput(dx, pg, pw, n, inDim, outDim, acc == 1, sIn);
        let worst: f64 = 0;
        for (let r = 0; r < n; r++) {
          for (let k = 0; k < inDim; k++) {
            let want: f64 = acc == 1 ? <f64>(<f32>dx0[r * inDim + k]) : 0;
            for (let o = 0; o < outDim; o++) want += g[r * outDim + o] * w[o * inDim + k];
            worst = worse(worst, relErr(<f64>getF32(dx, r * inDim + k), want));
          }
        }
        expect<f64>(worst).toBeLessThanOrEqual(1e-5, `n=${n} inDim=${inDim} outDim=${outDim} accumulate=${acc}`);
        expect<bool>(guardOk(dx, n * inDim)).toBe(true, "wrote past dx");
        heap.free(pw); heap.free(pg); heap.free(dx); heap.free(sIn);
      }
    }
  });

  test("worst relative gradient error (logged)", () => {
    log<string>(`matmul backward: worst FD error ${worstSeen.value}`);
    expect<f64>(worstSeen.value).toBeLessThanOrEqual(GRAD_TOL);
  });
});
