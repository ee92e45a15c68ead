// Gradient check of swigluBackward(da, db, dOut, a, b, sigmoid, count) (sigmoid: σ(a) as swigluForward keeps it) against central finite differences of an f64 scalar
// forward out = silu(a) ⊙ b, silu(a) = a / (1 + e^−a), L = Σ dOut ⊙ out with a random dOut; FD on every element
// of a and b. Error measure: per element |g − fd| / max(|fd|, 1e-2·max|fd|) (support/gradcheck.ts), bound 1e-3
// (the floor matters near a ≈ −1.28, where silu' = 0 and da is a difference of O(1) f32 terms).
// Counts cover the 4-lane vectors and every scalar tail length; a ranges over [−8, 8] and [−30, 30]
// (saturated sigmoid on both sides; beyond ≈ −87 the kernel's exp saturates, see swiglu.spec.ts).
import { swigluForward, swigluBackward } from "../../assembly/kernels/swiglu";
import { Rng, allocF32, getF32, fillConst, trueRelErr } from "./support/ref";
import { GRAD_TOL, H_REL, randomF64, writeF32, readF64, maxAbs, sampleIndices, centralDiffs, gradError, worse, Worst } from "./support/gradcheck";

const GUARD = 4;
const SENTINEL: f32 = 99.5;
const FWD_TOL: f64 = 1e-5;
const worstSeen = new Worst();

// ---- f64 reference ----
let gA = new StaticArray<f64>(0);
let gB = new StaticArray<f64>(0);
let gDOut = new StaticArray<f64>(0);

function silu(a: f64): f64 {
  return a / (1.0 + Math.exp(-a));
}

function lossRef(): f64 {
  let l: f64 = 0;
  for (let i = 0; i < gA.length; i++) l += gDOut[i] * silu(gA[i]) * gB[i];
  return l;
}

function guardOk(p: usize, from: i32): bool {
  for (let g = 0; g < GUARD; g++) if (getF32(p, from + g) != SENTINEL) return false;
  return true;
}

function runCase(rng: Rng, count: i32, lo: f64, hi: f64): f64 {
  gA = randomF64(rng, count, lo, hi);
  gB = randomF64(rng, count, -2, 2);
  gDOut = randomF64(rng, count);
  const a = allocF32(count), b = allocF32(count), dOut = allocF32(count), out = allocF32(count);
  const da = allocF32(count + GUARD), db = allocF32(count + GUARD), sigmoid = allocF32(count + GUARD);
  writeF32(a, gA); writeF32(b, gB); writeF32(dOut, gDOut);

  // The training forward: the same output as without keeping σ, and σ itself.
  const plain = allocF32(count);
  swigluForward(plain, a, b, count);
  fillConst(sigmoid + (<usize>count << 2), GUARD, SENTINEL);
  swigluForward(out, a, b, count, sigmoid);
  expect<bool>(guardOk(sigmoid, count)).toBe(true, "wrote past sigmoid");
  let fwd: f64 = 0, sig: f64 = 0, same = true;
  for (let i = 0; i < count; i++) {
    fwd = worse(fwd, trueRelErr(<f64>getF32(out, i), silu(gA[i]) * gB[i]));
    sig = worse(sig, trueRelErr(<f64>getF32(sigmoid, i), 1.0 / (1.0 + Math.exp(-gA[i]))));
    if (getF32(out, i) != getF32(plain, i)) same = false;
  }
  expect<f64>(fwd).toBeLessThanOrEqual(FWD_TOL, "swigluForward vs f64 forward");
  expect<f64>(sig).toBeLessThanOrEqual(FWD_TOL, "kept σ(a) vs f64");
  expect<bool>(same).toBe(true, "keeping σ changed the forward output");

  fillConst(da, count, NaN); fillConst(db, count, NaN);
  fillConst(da + (<usize>count << 2), GUARD, SENTINEL);
  fillConst(db + (<usize>count << 2), GUARD, SENTINEL);
  swigluBackward(da, db, dOut, a, b, sigmoid, count);
  expect<bool>(guardOk(da, count)).toBe(true, "wrote past da");
  expect<bool>(guardOk(db, count)).toBe(true, "wrote past db");

  const idx = sampleIndices(rng, count, 1 << 30);
  const fdA = centralDiffs(gA, idx, lossRef, H_REL * maxAbs(gA));
  const fdB = centralDiffs(gB, idx, lossRef, H_REL * maxAbs(gB));
  const e = worse(gradError(readF64(da, count), fdA, idx), gradError(readF64(db, count), fdB, idx));
  worstSeen.add(e);
  heap.free(a); heap.free(b); heap.free(dOut); heap.free(out); heap.free(da); heap.free(db); heap.free(sigmoid); heap.free(plain);
  return e;
}

const COUNTS: i32[] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 37, 67, 172];

describe("swigluBackward (finite differences)", () => {
  test("counts 1..9, 13, 37, 67, 172 with a in [-8, 8]", () => {
    const rng = new Rng(6001);
    for (let i = 0; i < COUNTS.length; i++) {
      expect<f64>(runCase(rng, COUNTS[i], -8, 8)).toBeLessThanOrEqual(GRAD_TOL, `count=${COUNTS[i]}`);
    }
  });

  test("saturated gate: a in [-30, 30]", () => {
    const rng = new Rng(6002);
    for (let i = 0; i < COUNTS.length; i++) {
      expect<f64>(runCase(rng, COUNTS[i], -30, 30)).toBeLessThanOrEqual(GRAD_TOL, `count=${COUNTS[i]}`);
    }
  });

  test("a near the stationary point of silu (a ≈ −1.28) and near 0", () => {
    const rng = new Rng(6003);
    expect<f64>(runCase(rng, 37, -1.5, -1.0)).toBeLessThanOrEqual(GRAD_TOL, "a in [-1.5, -1]");
    expect<f64>(runCase(rng, 13, -0.01, 0.01)).toBeLessThanOrEqual(GRAD_TOL, "a in ±0.01");
  });

  test("worst relative gradient error (logged)", () => {
    log<string>(`swiglu backward: worst FD error ${worstSeen.value}`);
    expect<f64>(worstSeen.value).toBeLessThanOrEqual(GRAD_TOL);
  });
});
