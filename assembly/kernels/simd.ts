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

// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  // pmax/pmin (one instruction each on x64, where min/max cost several) equal max/min here: x first, so NaN stays NaN.
  x = f32x4.pmin(f32x4.pmax(x, f32x4.splat(EXP_LO)), f32x4.splat(EXP_HI));
  const n = f32x4.floor(f32x4.add(f32x4.mul(x, f32x4.splat(LOG2E)), f32x4.splat(0.5)));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI))), f32x4.mul(n, f32x4.splat(LN2_LO)));
  // The polynomial by Estrin's scheme (three independent pairs, then r², r⁴): a dependency chain of 4 mul/add steps
  // instead of Horner's 10, so several exponentials overlap in the core (exp4 was latency-bound).
  const r2 = f32x4.mul(r, r);
  const a = f32x4.add(f32x4.mul(f32x4.splat(P0), r), f32x4.splat(P1));
  const b = f32x4.add(f32x4.mul(f32x4.splat(P2), r), f32x4.splat(P3));
  const c = f32x4.add(f32x4.mul(f32x4.splat(P4), r), f32x4.splat(P5));
  const p = f32x4.add(f32x4.mul(a, f32x4.mul(r2, r2)), f32x4.add(f32x4.mul(b, r2), c));
  const e = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), f32x4.splat(1.0));
  // 2^n from the integer n: n + 1.5·2^23 holds n in its low mantissa bits (exact for |n| < 2^22), cheaper than trunc_sat.
  const scale = i32x4.shl(i32x4.sub(f32x4.add(n, f32x4.splat(12582912.0)), i32x4.splat(0x4B400000 - 127)), 23);
  return f32x4.mul(e, scale);
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
