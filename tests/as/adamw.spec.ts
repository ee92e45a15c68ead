// adamwStep(param, grad, m, v, count, lr, beta1, beta2, eps, weightDecay, gradScale, biasCorrection1,
// biasCorrection2) against a scalar f64 implementation of PyTorch's torch.optim.AdamW (decoupled weight decay):
//   g = gradScale·grad;  p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//   p ← p − (lr / bc1)·m / (sqrt(v) / sqrt(bc2) + eps),   bc_i = 1 − β_i^step
// and sumSquares(x, count) against an f64 Σx².
//
// Error measure: a value passes if |got − want| ≤ REL·|want| + ABS, ABS = 8 half-ulps (8·2^-24) of the largest f32
// term the kernel rounds (|β1·m| + |(1−β1)·g| for m, likewise for v, |p| for the parameter); the specs report
// e = |got − want| / (REL·|want| + ABS), bound 1. Why not the gradient checks' max(|want|, 1e-2·max|want|): the
// update Δp is the difference of two f32 parameters, so it carries ~6e-8·|p| of rounding whatever its own size;
// with lr = 3e-4 or with updates that cancel over steps (momentum vs. a flipped gradient) that rounding is 1e-4
// to 1e-2 of |Δp|, while formula errors (eps inside the sqrt or before the bias correction, a missing bc, decay
// applied after the Adam term, gradScale skipped) move Δp by far more in the cases below (each of these was
// checked to fail the spec by putting it into the reference).
// Two ways of comparing:
//  * step by step, the reference started from the kernel's own f32 state each step (rounding does not carry
//    over): m, v (REL 1e-5) and the update Δp = p_new − p_old (REL 1e-4);
//  * a whole trajectory of 12 steps, reference in f64 throughout: the displacement p − p0 (REL 1e-3, ABS 12× the
//    per-step ABS since the parameter's rounding accumulates).
// Hyperparameters are f32 (what the kernel gets) widened to f64 for the reference.
// sumSquares: relative error vs f64 Σx², bound 1e-5 (f32 partial sums of ≤ 256 terms per lane and block).
import { adamwStep, sumSquares } from "../../assembly/kernels/adamw";
import { Rng, allocF32, getF32, trueRelErr } from "./support/ref";
import { randomF64, writeF32, readF64, sampleIndices, worse, Worst } from "./support/gradcheck";

const MV_REL: f64 = 1e-5;
const STEP_REL: f64 = 1e-4;
const TRAJ_REL: f64 = 1e-3;
const HALF_ULPS: f64 = 8.0 / 16777216.0; // 8·2^-24
const worstStep = new Worst();
const worstTraj = new Worst();
const worstSq = new Worst();

class Hyper {
  constructor(
    public lr: f32, public beta1: f32, public beta2: f32, public eps: f32, public wd: f32, public gradScale: f32,
  ) {}
  toString(): string {
    return `lr=${this.lr} b1=${this.beta1} b2=${this.beta2} eps=${this.eps} wd=${this.wd} gradScale=${this.gradScale}`;
  }
}

/** One PyTorch AdamW step in f64, in place on p, m, v (step ≥ 1). */
function adamwRef(p: StaticArray<f64>, grad: StaticArray<f64>, m: StaticArray<f64>, v: StaticArray<f64>, hp: Hyper, step: i32): void {
  const lr = <f64>hp.lr, b1 = <f64>hp.beta1, b2 = <f64>hp.beta2, eps = <f64>hp.eps, wd = <f64>hp.wd;
  const bc1 = 1.0 - Math.pow(b1, <f64>step), bc2 = 1.0 - Math.pow(b2, <f64>step);
  for (let i = 0; i < p.length; i++) {
    const g = <f64>hp.gradScale * grad[i];
    p[i] *= 1.0 - lr * wd;
    m[i] = b1 * m[i] + (1.0 - b1) * g;
    v[i] = b2 * v[i] + (1.0 - b2) * g * g;
    const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + eps;
    p[i] -= (lr / bc1) * m[i] / denom;
  }
}

function kernelStep(pp: usize, pg: usize, pm: usize, pv: usize, count: i32, hp: Hyper, step: i32): void {
  const bc1 = <f32>(1.0 - Math.pow(<f64>hp.beta1, <f64>step)), bc2 = <f32>(1.0 - Math.pow(<f64>hp.beta2, <f64>step));
  adamwStep(pp, pg, pm, pv, count, hp.lr, hp.beta1, hp.beta2, hp.eps, hp.wd, hp.gradScale, bc1, bc2);
}

/** |got − want| / (rel·|want| + abs): ≤ 1 passes (exact agreement is 0 even when the bound is 0; NaN stays NaN). */
function bounded(got: f64, want: f64, rel: f64, abs: f64): f64 {
  const diff = Math.abs(got - want);
  return diff == 0 ? 0.0 : diff / (rel * Math.abs(want) + abs);
}

/** Random gradients of size ~gAmp, a few exactly 0 (the update is then weight decay plus momentum only). */
function randomGrads(rng: Rng, count: i32, gAmp: f64): StaticArray<f64> {
  const g = randomF64(rng, count, -gAmp, gAmp);
  for (let i = 0; i < count; i += 7) g[i] = 0;
  return g;
}

/** Step-by-step comparison over `steps` steps; returns the worst bounded() error over m, v, Δp. */
function stepwise(rng: Rng, count: i32, hp: Hyper, steps: i32, gAmp: f64): f64 {
  const pp = allocF32(count + 4), pg = allocF32(count), pm = allocF32(count + 4), pv = allocF32(count + 4);
  writeF32(pp, randomF64(rng, count, -1, 1));
  for (let i = 0; i < count + 4; i++) { store<f32>(pm + (<usize>i << 2), 0); store<f32>(pv + (<usize>i << 2), 0); }
  for (let g = 0; g < 4; g++) store<f32>(pp + (<usize>(count + g) << 2), 777);
  let worst: f64 = 0;
  for (let step = 1; step <= steps; step++) {
    const grad = randomGrads(rng, count, gAmp);
    writeF32(pg, grad);
    const p = readF64(pp, count), m = readF64(pm, count), v = readF64(pv, count);
    const p0 = readF64(pp, count), m0 = readF64(pm, count), v0 = readF64(pv, count);
    adamwRef(p, grad, m, v, hp, step);
    kernelStep(pp, pg, pm, pv, count, hp, step);
    const b1 = <f64>hp.beta1, b2 = <f64>hp.beta2;
    for (let i = 0; i < count; i++) {
      const g = <f64>hp.gradScale * grad[i];
      const mScale = Math.abs(b1 * m0[i]) + Math.abs((1 - b1) * g), vScale = b2 * v0[i] + (1 - b2) * g * g;
      worst = worse(worst, bounded(<f64>getF32(pm, i), m[i], MV_REL, HALF_ULPS * mScale));
      worst = worse(worst, bounded(<f64>getF32(pv, i), v[i], MV_REL, HALF_ULPS * vScale));
      const pScale = Math.max(Math.abs(p0[i]), Math.abs(p[i]));
      worst = worse(worst, bounded(<f64>getF32(pp, i) - p0[i], p[i] - p0[i], STEP_REL, HALF_ULPS * pScale));
    }
  }
  for (let g = 0; g < 4; g++) {
    expect<f32>(load<f32>(pp + (<usize>(count + g) << 2))).toBe(777, "wrote past param");
    expect<f32>(load<f32>(pm + (<usize>(count + g) << 2))).toBe(0, "wrote past m");
    expect<f32>(load<f32>(pv + (<usize>(count + g) << 2))).toBe(0, "wrote past v");
  }
  heap.free(pp); heap.free(pg); heap.free(pm); heap.free(pv);
  worstStep.add(worst);
  return worst;
}

/** 12 steps with independent f64 state; returns the worst bounded() error of the displacement p − p0. */
function trajectory(rng: Rng, count: i32, hp: Hyper, gAmp: f64): f64 {
  const steps = 12;
  const pp = allocF32(count), pg = allocF32(count), pm = allocF32(count), pv = allocF32(count);
  const p0 = randomF64(rng, count, -1, 1);
  const p = new StaticArray<f64>(count), m = new StaticArray<f64>(count), v = new StaticArray<f64>(count);
  for (let i = 0; i < count; i++) p[i] = p0[i];
  writeF32(pp, p0);
  for (let i = 0; i < count; i++) { store<f32>(pm + (<usize>i << 2), 0); store<f32>(pv + (<usize>i << 2), 0); }
  for (let step = 1; step <= steps; step++) {
    const grad = randomGrads(rng, count, gAmp);
    writeF32(pg, grad);
    adamwRef(p, grad, m, v, hp, step);
    kernelStep(pp, pg, pm, pv, count, hp, step);
  }
  let e: f64 = 0;
  for (let i = 0; i < count; i++) {
    const pScale = Math.max(Math.abs(p0[i]), Math.abs(p[i]));
    e = worse(e, bounded(<f64>getF32(pp, i) - p0[i], p[i] - p0[i], TRAJ_REL, <f64>steps * HALF_ULPS * pScale));
  }
  heap.free(pp); heap.free(pg); heap.free(pm); heap.free(pv);
  worstTraj.add(e);
  return e;
}

const COUNTS: i32[] = [1, 3, 4, 5, 7, 8, 13, 37, 1027];
const HYPERS: Hyper[] = [
  new Hyper(1e-2, 0.9, 0.999, 1e-8, 0.1, 1.0),
  new Hyper(3e-4, 0.9, 0.95, 1e-8, 0.01, 0.37),
  new Hyper(5e-2, 0.8, 0.99, 1e-6, 0.0, 2.5),
];

describe("adamwStep vs f64 PyTorch AdamW", () => {
  test("step by step (6 steps), counts 1..13, 37, 1027, three hyperparameter sets incl. gradScale ≠ 1", () => {
    const rng = new Rng(2001);
    for (let h = 0; h < HYPERS.length; h++) {
      for (let c = 0; c < COUNTS.length; c++) {
        const e = stepwise(rng, COUNTS[c], HYPERS[h], 6, 1.0);
        expect<f64>(e).toBeLessThanOrEqual(1.0, `count=${COUNTS[c]} ${HYPERS[h].toString()}`);
      }
    }
  });

  test("12-step trajectory, reference in f64 throughout", () => {
    const rng = new Rng(2002);
    for (let h = 0; h < HYPERS.length; h++) {
      for (let c = 0; c < COUNTS.length; c++) {
        expect<f64>(trajectory(rng, COUNTS[c], HYPERS[h], 1.0)).toBeLessThanOrEqual(1.0, `count=${COUNTS[c]} ${HYPERS[h].toString()}`);
      }
    }
  });

  test("eps placement and bias correction: gradients ~1e-8 (sqrt(v̂) comparable to eps = 1e-8) and ~1e3", () => {
    const rng = new Rng(2003);
    const hp = new Hyper(1e-2, 0.9, 0.999, 1e-8, 0.1, 1.0);
    expect<f64>(stepwise(rng, 37, hp, 5, 3e-8)).toBeLessThanOrEqual(1.0, "tiny gradients");
    expect<f64>(trajectory(rng, 37, hp, 3e-8)).toBeLessThanOrEqual(1.0, "tiny gradients, trajectory");
    const hp2 = new Hyper(1e-3, 0.9, 0.999, 1e-8, 0.1, 0.5);
    expect<f64>(stepwise(rng, 13, hp2, 5, 1e3)).toBeLessThanOrEqual(1.0, "large gradients");
  });
});

describe("sumSquares", () => {
  test("counts 0..9, 13, 37, 1023, 1024, 1025, 2049, 5003 (block boundaries of 1024) vs f64 Σx²", () => {
    const rng = new Rng(2004);
    const counts: i32[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 37, 1023, 1024, 1025, 2049, 5003];
    const amps: f64[] = [1.0, 1e-3, 1e3];
    for (let a = 0; a < amps.length; a++) {
      for (let c = 0; c < counts.length; c++) {
        const n = counts[c];
        const x = randomF64(rng, n, -amps[a], amps[a]);
        const p = allocF32(n);
        writeF32(p, x);
        let want: f64 = 0;
        for (let i = 0; i < n; i++) want += x[i] * x[i];
        const got = sumSquares(p, n);
        const e = n == 0 ? (got == 0 ? 0.0 : Infinity) : trueRelErr(got, want);
        worstSq.add(e);
        expect<f64>(e).toBeLessThanOrEqual(1e-5, `count=${n} amp=${amps[a]}`);
        heap.free(p);
      }
    }
  });

  test("sums every element once and nothing past count: a single non-zero at 200 positions of 2100 floats", () => {
    const n = 2100;
    const p = allocF32(n);
    for (let i = 0; i < n; i++) store<f32>(p + (<usize>i << 2), 0);
    let wrong = 0;
    const positions = sampleIndices(new Rng(2005), n, 200);
    for (let j = 0; j < positions.length; j++) {
      const i = positions[j];
      store<f32>(p + (<usize>i << 2), 3);
      if (sumSquares(p, n) != 9) wrong++;
      if (sumSquares(p, i) != 0) wrong++; // the count is exclusive
      store<f32>(p + (<usize>i << 2), 0);
    }
    expect<i32>(wrong).toBe(0);
    heap.free(p);
  });

  test("worst errors (logged)", () => {
    log<string>(`adamw: worst step error ${worstStep.value}, worst trajectory error ${worstTraj.value} (units of the bounds); sumSquares: worst relative error ${worstSq.value}`);
    expect<f64>(worse(worstStep.value, worstTraj.value)).toBeLessThanOrEqual(1.0);
  });
});
