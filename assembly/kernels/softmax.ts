import { exp4, exp1, hmax, hsum } from "./simd";

/** Largest of x[0..n). */
export function maxValue(x: usize, n: i32): f32 {
  const vecBytes = <usize>(n & ~3) << 2;
  let m: f32 = -Infinity;
  if (vecBytes > 0) {
    let m4 = f32x4.splat(-Infinity);
    for (let k: usize = 0; k < vecBytes; k += 16) m4 = f32x4.max(m4, v128.load(x + k));
    m = hmax(m4);
  }
  for (let k = vecBytes; k < (<usize>n << 2); k += 4) m = max(m, load<f32>(x + k));
  return m;
}

/** out[i] = e^(scale·(x[i] − max)) and returns their sum (out may alias x). The shared step of softmax and log-sum-exp. */
export function expShifted(out: usize, x: usize, n: i32, scale: f32, maxX: f32): f32 {
  const vecBytes = <usize>(n & ~3) << 2;
  const s4 = f32x4.splat(scale), m4 = f32x4.splat(maxX);
  let acc = f32x4.splat(0);
  for (let k: usize = 0; k < vecBytes; k += 16) {
    const e = exp4(f32x4.mul(s4, f32x4.sub(v128.load(x + k), m4)));
    v128.store(out + k, e);
    acc = f32x4.add(acc, e);
  }
  let sum = hsum(acc);
  for (let k = vecBytes; k < (<usize>n << 2); k += 4) {
    const e = exp1(scale * (load<f32>(x + k) - maxX));
    store<f32>(out + k, e);
    sum += e;
  }
  return sum;
}

/** In place: x = softmax(scale·x). */
export function softmaxForward(x: usize, n: i32, scale: f32): void {
  const sum = expShifted(x, x, n, scale, maxValue(x, n));
  const inv4 = f32x4.splat(<f32>1.0 / sum);
  const vecBytes = <usize>(n & ~3) << 2;
  for (let k: usize = 0; k < vecBytes; k += 16) v128.store(x + k, f32x4.mul(v128.load(x + k), inv4));
  for (let k = vecBytes; k < (<usize>n << 2); k += 4) store<f32>(x + k, load<f32>(x + k) * (<f32>1.0 / sum));
}

/** log Σ e^x[i], computed without overflow; scratch (n floats) receives the shifted exponentials. */
export function logSumExp(x: usize, n: i32, scratch: usize): f64 {
  const m = maxValue(x, n);
  return <f64>m + Math.log(<f64>expShifted(scratch, x, n, 1.0, m));
}

/** The first index of the largest value (ties go to the lowest index, as greedy decoding is defined). */
export function argmax(x: usize, n: i32): i32 {
  const m = maxValue(x, n);
  for (let i = 0; i < n; i++) if (load<f32>(x + (<usize>i << 2)) == m) return i;
  return 0;
}
