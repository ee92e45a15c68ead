// Gradient checks against central finite differences, shared by the *-backward specs (not a spec itself).
//
// Pattern of a spec:
//  * the inputs live in f64 arrays (StaticArray<f64>) holding f32-representable values; the kernel gets the same
//    values as f32 buffers (writeF32), so kernel and reference see identical inputs;
//  * the spec's reference is a plain scalar f64 forward reading module-level globals, wrapped in a loss
//    L = Σ dOut ⊙ out (dOut random) as a `() => f64` without captures (AssemblyScript has no closures);
//  * centralDiffs perturbs one f64 input element at a time by ±h (h = H_REL × the input's largest |value|) and
//    returns (L(θ+h) − L(θ−h)) / ((θ+h) − (θ−h)), all in f64;
//  * gradError compares the kernel's f32 gradient with it element by element.
//
// Error measure (per element, not a norm): |g − fd| / max(|fd|, 1e-2·max|fd|), max over the input's checked
// elements. Per element so that a single wrong entry (a wrong tail element, a missed row, an off-by-one
// position) cannot hide in the norm of a large vector; the floor of 1e-2·max|fd| keeps entries that are
// near zero by cancellation (whose f32 rounding error is set by the size of the terms, not of the sum) from
// turning last-bit noise into large relative errors: those are held to an absolute 1e-5·max|fd|.
// The FD itself is accurate to ~1e-9 relative (f64, truncation O(h²) ≈ 1e-10, rounding ~1e-16·|L|/h), so the
// measured error is the kernel's own f32 rounding (≲ 1e-5 observed) or a bug (O(1)).
import { Rng, getF32, setF32, worse } from "./ref";
export { worse };

export const GRAD_TOL: f64 = 1e-3;
export const H_REL: f64 = 1e-5;

/** n random f32-representable values in [lo, hi), never zero. */
export function randomF64(rng: Rng, n: i32, lo: f64 = -1.0, hi: f64 = 1.0): StaticArray<f64> {
  const a = new StaticArray<f64>(n);
  for (let i = 0; i < n; i++) a[i] = <f64>rng.uniform(lo, hi);
  return a;
}

/** p[0..a.length) = a (as f32; exact for f32-representable values). */
export function writeF32(p: usize, a: StaticArray<f64>): void {
  for (let i = 0; i < a.length; i++) setF32(p, i, <f32>a[i]);
}

/** f64 copy of p[0..n). */
export function readF64(p: usize, n: i32): StaticArray<f64> {
  const a = new StaticArray<f64>(n);
  for (let i = 0; i < n; i++) a[i] = <f64>getF32(p, i);
  return a;
}

/** p[0..n) − before[0..n) in f64 (the part a kernel added to previous contents). */
export function addedF64(p: usize, before: StaticArray<f64>): StaticArray<f64> {
  const a = new StaticArray<f64>(before.length);
  for (let i = 0; i < before.length; i++) a[i] = <f64>getF32(p, i) - before[i];
  return a;
}

/** Largest |a[i]|, ignoring NaN (inputs may hold NaN poison where the op must not read). */
export function maxAbs(a: StaticArray<f64>): f64 {
  let m: f64 = 0;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i]) > m) m = Math.abs(a[i]);
  return m;
}

/** All of [0, n) if n ≤ limit, else `limit` distinct random indices (always including 0 and n − 1), ascending. */
export function sampleIndices(rng: Rng, n: i32, limit: i32): i32[] {
  const out = new Array<i32>();
  if (n <= limit) {
    for (let i = 0; i < n; i++) out.push(i);
    return out;
  }
  const taken = new StaticArray<bool>(n);
  taken[0] = true;
  taken[n - 1] = true;
  let count = 2;
  while (count < limit) {
    const i = rng.below(n);
    if (!taken[i]) { taken[i] = true; count++; }
  }
  for (let i = 0; i < n; i++) if (taken[i]) out.push(i);
  return out;
}

/** fd[i] = ∂loss/∂theta[i] by central differences for i in idx (NaN elsewhere); theta is restored. */
export function centralDiffs(theta: StaticArray<f64>, idx: i32[], loss: () => f64, h: f64): StaticArray<f64> {
  const fd = new StaticArray<f64>(theta.length);
  for (let i = 0; i < theta.length; i++) fd[i] = NaN;
  for (let j = 0; j < idx.length; j++) {
    const i = idx[j];
    const v = theta[i];
    const up = v + h, down = v - h;
    theta[i] = up;
    const lUp = loss();
    theta[i] = down;
    const lDown = loss();
    theta[i] = v;
    fd[i] = (lUp - lDown) / (up - down);
  }
  return fd;
}

/** Worst |g − fd| / max(|fd|, 1e-2·max|fd|) over idx (a NaN in g anywhere gives NaN, which fails every `<=`). */
export function gradError(got: StaticArray<f64>, fd: StaticArray<f64>, idx: i32[]): f64 {
  let maxFd: f64 = 0;
  for (let j = 0; j < idx.length; j++) maxFd = Math.max(maxFd, Math.abs(fd[idx[j]]));
  const floor = 1e-2 * maxFd;
  let worst: f64 = 0;
  for (let j = 0; j < idx.length; j++) {
    const i = idx[j];
    const denom = Math.max(Math.abs(fd[i]), floor);
    const diff = Math.abs(got[i] - fd[i]);
    const e = denom > 0 ? diff / denom : (diff == 0 ? 0.0 : Infinity);
    if (e > worst || isNaN(e)) worst = e;
  }
  return worst;
}


/** Largest value seen (NaN sticks), for reporting the worst error of a spec. */
export class Worst {
  value: f64 = 0;
  add(e: f64): f64 {
    this.value = worse(this.value, e);
    return e;
  }
}
