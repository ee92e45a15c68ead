// Small SIMD helpers shared by the kernels.

/** acc + a·b per lane. The relaxed-SIMD build fuses it into one FMA (rounding may differ by an ulp between engines). */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(f32x4.mul(a, b), acc);
}

/** Sum of the four lanes, always in the same order so every build and engine rounds alike. */
// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** [hsum(a), hsum(b), hsum(c), hsum(d)] bit for bit (the same pairs added in the same order), with 6 shuffles and 3 adds. */
// @ts-ignore: decorator
@inline export function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(i32x4.shuffle(a, b, 0, 2, 4, 6), i32x4.shuffle(a, b, 1, 3, 5, 7)); // a0+a1, a2+a3, b0+b1, b2+b3
  const cd = f32x4.add(i32x4.shuffle(c, d, 0, 2, 4, 6), i32x4.shuffle(c, d, 1, 3, 5, 7));
  return f32x4.add(i32x4.shuffle(ab, cd, 0, 2, 4, 6), i32x4.shuffle(ab, cd, 1, 3, 5, 7));
}

/** Largest of the four lanes. */
// @ts-ignore: decorator
@inline export function hmax(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

// exp(x) for f32, Cephes' expf: x = n·ln2 + r, a degree-6 polynomial for e^r, then a 2^n exponent shift.
// About 1 ulp; written with plain mul/add (never fused) so it rounds identically in every build and on every engine.
const EXP_HI: f32 = 88.3762626647949;
const EXP_LO: f32 = -87.3365447504;
const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
const P0: f32 = 1.9875691500e-4;
const P1: f32 = 1.3981999507e-3;
const P2: f32 = 8.3334519073e-3;
const P3: f32 = 4.1665795894e-2;
const P4: f32 = 1.6666665459e-1;
const P5: f32 = 5.0000001201e-1;

// Below this, e^x (< 2e-35) is taken as 0 by expNonPositive4: next to a softmax's largest term (e^0 = 1) it is far
// below rounding, and computing it would give subnormal values further down (the −∞ pad of attention scores),
// which x64 cores handle in slow microcode.
const EXP_ZERO_BELOW: f32 = -80;

// exp4's constants as a table in linear memory, each broadcast from there where it is used (one load). As v128.const
// values, V8 (TurboFan, Node 20) rebuilds every one of them inside the loop with three instructions (a 64-bit move,
// a move to the vector register and an unpack) and spills them under register pressure; measured: an exponential
// loop spent more time on its constants than on its arithmetic. binaryen cannot fold a load from memory, so the
// loads stay loads.
const EXP_TABLE = memory.data<f32>([
  EXP_LO, EXP_HI, LOG2E, 0.5, LN2_HI, LN2_LO, P0, P1, P2, P3, P4, P5, 1.0, 12582912.0, reinterpret<f32>(0x4B400000 - 127),
]);
const LO_AT = 0, HI_AT = 4, LOG2E_AT = 8, HALF_AT = 12, LN2_HI_AT = 16, LN2_LO_AT = 20;
const P0_AT = 24, P1_AT = 28, P2_AT = 32, P3_AT = 36, P4_AT = 40, P5_AT = 44, ONE_AT = 48, MAGIC_AT = 52, BIAS_AT = 56;

/** The exp4 constant at byte offset at of EXP_TABLE, in all four lanes. */
// @ts-ignore: decorator
@inline function k4(at: usize): v128 {
  return v128.load32_splat(EXP_TABLE + at);
}

// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  // pmax/pmin (one instruction each on x64, where min/max cost several) equal max/min here: x first, so NaN stays NaN.
  x = f32x4.pmin(f32x4.pmax(x, k4(LO_AT)), k4(HI_AT));
  const n = f32x4.floor(f32x4.add(f32x4.mul(x, k4(LOG2E_AT)), k4(HALF_AT)));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(n, k4(LN2_HI_AT))), f32x4.mul(n, k4(LN2_LO_AT)));
  // The polynomial by Estrin's scheme (three independent pairs, then r², r⁴): a dependency chain of 4 mul/add steps
  // instead of Horner's 10, so several exponentials overlap in the core (exp4 was latency-bound).
  const r2 = f32x4.mul(r, r);
  const a = f32x4.add(f32x4.mul(k4(P0_AT), r), k4(P1_AT));
  const b = f32x4.add(f32x4.mul(k4(P2_AT), r), k4(P3_AT));
  const c = f32x4.add(f32x4.mul(k4(P4_AT), r), k4(P5_AT));
  const p = f32x4.add(f32x4.mul(a, f32x4.mul(r2, r2)), f32x4.add(f32x4.mul(b, r2), c));
  const e = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), k4(ONE_AT));
  // 2^n from the integer n: n + 1.5·2^23 holds n in its low mantissa bits (exact for |n| < 2^22), cheaper than trunc_sat.
  const scale = i32x4.shl(i32x4.sub(f32x4.add(n, k4(MAGIC_AT)), k4(BIAS_AT)), 23);
  return f32x4.mul(e, scale);
}

// e^x for x ≤ 0 (softmax arguments, x − max), cheaper than exp4: no upper clamp, the rounding n = round(x·log2 e)
// left to the addition of 1.5·2^23 (whose float then also holds n's bits for 2^n), and a degree-5 polynomial
// 1 + r + r²·(C2 + C3·r + r²·(C4 + C5·r)) fitted for relative error on |r| ≤ ln2/2. At most 2e-7 relative error
// (about 2 ulp); below EXP_ZERO_BELOW (−∞ included) exactly 0. Plain mul/add: identical in every build.
const EXPN_TABLE = memory.data<f32>([
  LOG2E, 12582912.0, LN2_HI, LN2_LO, 0.4999923, 0.16667116, 0.04189033, 0.008312501, 1.0, EXP_ZERO_BELOW,
  reinterpret<f32>(0x4B400000 - 127),
]);
const N_LOG2E = 0, N_MAGIC = 4, N_LN2_HI = 8, N_LN2_LO = 12, N_C2 = 16, N_C3 = 20, N_C4 = 24, N_C5 = 28, N_ONE = 32;
const N_BELOW = 36, N_BIAS = 40;

// @ts-ignore: decorator
@inline function kn(at: usize): v128 {
  return v128.load32_splat(EXPN_TABLE + at);
}

// @ts-ignore: decorator
@inline export function expNonPositive4(x: v128): v128 {
  const below = kn(N_BELOW);
  const zero = f32x4.lt(x, below);
  x = f32x4.pmax(x, below);
  const t = f32x4.add(f32x4.mul(x, kn(N_LOG2E)), kn(N_MAGIC));
  const n = f32x4.sub(t, kn(N_MAGIC));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(n, kn(N_LN2_HI))), f32x4.mul(n, kn(N_LN2_LO)));
  const r2 = f32x4.mul(r, r);
  const lo = f32x4.add(kn(N_C2), f32x4.mul(kn(N_C3), r));
  const hi = f32x4.add(kn(N_C4), f32x4.mul(kn(N_C5), r));
  const e = f32x4.add(f32x4.add(f32x4.mul(r2, f32x4.add(lo, f32x4.mul(r2, hi))), r), kn(N_ONE));
  return v128.andnot(f32x4.mul(e, i32x4.shl(i32x4.sub(t, kn(N_BIAS)), 23)), zero);
}

/** Scalar twin of expNonPositive4, bit-identical lane by lane (the tails of vector loops); the same constants. */
// @ts-ignore: decorator
@inline export function expNonPositive1(x: f32): f32 {
  if (x < kn1(N_BELOW)) return 0;
  const t = x * kn1(N_LOG2E) + kn1(N_MAGIC);
  const n = t - kn1(N_MAGIC);
  const r = (x - n * kn1(N_LN2_HI)) - n * kn1(N_LN2_LO);
  const r2 = r * r;
  const lo = kn1(N_C2) + kn1(N_C3) * r;
  const hi = kn1(N_C4) + kn1(N_C5) * r;
  const e = (r2 * (lo + r2 * hi) + r) + kn1(N_ONE);
  return e * reinterpret<f32>((reinterpret<i32>(t) - reinterpret<i32>(kn1(N_BIAS))) << 23);
}

// @ts-ignore: decorator
@inline function kn1(at: usize): f32 {
  return load<f32>(EXPN_TABLE + at);
}

/** Scalar twin of exp4, bit-identical lane by lane (used for the tails of vector loops). */
// @ts-ignore: decorator
@inline export function exp1(x: f32): f32 {
  x = min(max(x, EXP_LO), EXP_HI);
  const n = Mathf.floor(x * LOG2E + <f32>0.5);
  const r = (x - n * LN2_HI) - n * LN2_LO;
  const r2 = r * r;
  const p = (P0 * r + P1) * (r2 * r2) + ((P2 * r + P3) * r2 + (P4 * r + P5));
  const e = (p * r2 + r) + <f32>1.0;
  return e * reinterpret<f32>((<i32>n + 127) << 23);
}
