// Shared helpers for the kernel specs (tests/as/*.spec.ts): a seeded generator for test data, raw f32/i32
// buffers as the host passes them, and error measures. Not a spec itself (the runner only compiles
// tests/as/**/*.spec.ts); import it relatively:  import { Rng, allocF32, ... } from "./support/ref";

/** xorshift32: deterministic test data, independent of the kernels' own generator. */
export class Rng {
  state: u32;
  constructor(seed: u32) {
    this.state = seed != 0 ? seed : 0x9e3779b9;
    for (let i = 0; i < 4; i++) this.nextU32(); // decorrelate small seeds
  }
  nextU32(): u32 {
    let s = this.state;
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    this.state = s;
    return s;
  }
  /** Uniform in [0, 1) with 24 bits. */
  unit(): f64 {
    return <f64>(this.nextU32() >>> 8) / 16777216.0;
  }
  /** Non-zero f32 in [lo, hi) (zero is replaced by a value of the upper half, so data is never all zeros). */
  uniform(lo: f64, hi: f64): f32 {
    const v = <f32>(lo + (hi - lo) * this.unit());
    return v != 0 ? v : <f32>(lo + (hi - lo) * 0.75);
  }
  /** Integer in [0, n). */
  below(n: i32): i32 {
    return <i32>(this.unit() * <f64>n);
  }
}

/** n f32 (16-byte aligned, not zeroed). Allocates at least one element so that n = 0 gives a valid pointer. */
export function allocF32(n: i32): usize {
  return heap.alloc(<usize>max(n, 1) << 2);
}

/** n i32. */
export function allocI32(n: i32): usize {
  return heap.alloc(<usize>max(n, 1) << 2);
}

// @ts-ignore: decorator
@inline export function getF32(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline export function setF32(p: usize, i: i32, v: f32): void {
  store<f32>(p + (<usize>i << 2), v);
}

// @ts-ignore: decorator
@inline export function getI32(p: usize, i: i32): i32 {
  return load<i32>(p + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline export function setI32(p: usize, i: i32, v: i32): void {
  store<i32>(p + (<usize>i << 2), v);
}

/** p[0..n) = uniform in [lo, hi), never zero. */
export function fillUniform(p: usize, n: i32, rng: Rng, lo: f64 = -1.0, hi: f64 = 1.0): void {
  for (let i = 0; i < n; i++) setF32(p, i, rng.uniform(lo, hi));
}

export function fillConst(p: usize, n: i32, v: f32): void {
  for (let i = 0; i < n; i++) setF32(p, i, v);
}

export function copyF32(dst: usize, src: usize, n: i32): void {
  memory.copy(dst, src, <usize>n << 2);
}

/** |got − want| / max(|want|, 1): relative for large values, absolute below 1 (sums near zero). */
export function relErr(got: f64, want: f64): f64 {
  return Math.abs(got - want) / Math.max(Math.abs(want), 1.0);
}

/** |got − want| / |want| (for want = 0: 0 if got = 0, else Infinity); NaN in got gives NaN, which fails every `<=` check. */
export function trueRelErr(got: f64, want: f64): f64 {
  if (want == 0) return got == 0 ? 0 : Infinity;
  return Math.abs(got - want) / Math.abs(want);
}

/** Bits of an f32, for exact comparisons that also tell −0 from +0 and catch NaN. */
// @ts-ignore: decorator
@inline export function bits(v: f32): u32 {
  return reinterpret<u32>(v);
}

/** True if p[0..n) are all finite. */
export function allFinite(p: usize, n: i32): bool {
  for (let i = 0; i < n; i++) if (!isFinite<f32>(getF32(p, i))) return false;
  return true;
}

/** xorshift64* step exactly as specified for the sampler (llama2.c): returns the 32-bit output, advances *s. */
export function xorshift64StarRef(state: StaticArray<u64>): u32 {
  let s = state[0];
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  state[0] = s;
  return <u32>((s * 0x2545f4914f6cdd1d) >> 32);
}

/** max(a, b) where a NaN on either side wins (a plain `if (!(e <= worst)) worst = e` loses an earlier NaN). */
export function worse(a: f64, b: f64): f64 {
  if (isNaN(a)) return a;
  return b > a || isNaN(b) ? b : a;
}
