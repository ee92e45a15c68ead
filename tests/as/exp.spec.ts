// exp4 / exp1 (simd.ts, Cephes expf): relative error against Math.exp in f64 of the same f32 input, over a dense
// sweep of [-87, 88] and special points; exp4 must equal exp1 lane by lane, bit for bit (documented), and the
// function must be monotone. Bound in the normal range: 2e-7 relative (observed ~8e-8, under 1 ulp).
import { exp4, exp1, expNonPositive4, expNonPositive1 } from "../../assembly/kernels/simd";
import { Rng, bits } from "./support/ref";

const TOL: f64 = 2e-7;
const EXP_HI: f32 = 88.3762626647949; // the kernel's clamp bounds (as f32)
const EXP_LO: f32 = -87.3365447504;

function relExp(x: f32, got: f32): f64 {
  const want = Math.exp(<f64>x);
  return Math.abs(<f64>got - want) / want;
}

/** exp4 on (a, b, c, d); returns the number of lanes that differ in any bit from exp1. */
function laneMismatches(a: f32, b: f32, c: f32, d: f32): i32 {
  const v = exp4(f32x4(a, b, c, d));
  let bad = 0;
  if (bits(f32x4.extract_lane(v, 0)) != bits(exp1(a))) bad++;
  if (bits(f32x4.extract_lane(v, 1)) != bits(exp1(b))) bad++;
  if (bits(f32x4.extract_lane(v, 2)) != bits(exp1(c))) bad++;
  if (bits(f32x4.extract_lane(v, 3)) != bits(exp1(d))) bad++;
  return bad;
}

describe("exp1 / exp4", () => {
  test("max relative error over 400k evenly spaced points of [-87, 88] is <= 2e-7; exp4 == exp1 bitwise", () => {
    const N = 400000;
    let worst: f64 = 0, worstX: f32 = 0, mismatches = 0, nonMonotone = 0;
    let prev: f32 = 0;
    for (let k = 0; k < N; k += 4) {
      const x0 = <f32>(-87.0 + 175.0 * <f64>k / <f64>N);
      const x1 = <f32>(-87.0 + 175.0 * <f64>(k + 1) / <f64>N);
      const x2 = <f32>(-87.0 + 175.0 * <f64>(k + 2) / <f64>N);
      const x3 = <f32>(-87.0 + 175.0 * <f64>(k + 3) / <f64>N);
      const v = exp4(f32x4(x0, x1, x2, x3));
      const g0 = f32x4.extract_lane(v, 0), g1 = f32x4.extract_lane(v, 1);
      const g2 = f32x4.extract_lane(v, 2), g3 = f32x4.extract_lane(v, 3);
      if (bits(g0) != bits(exp1(x0))) mismatches++;
      if (bits(g1) != bits(exp1(x1))) mismatches++;
      if (bits(g2) != bits(exp1(x2))) mismatches++;
      if (bits(g3) != bits(exp1(x3))) mismatches++;
      let e = relExp(x0, g0); if (!(e <= worst)) { worst = e; worstX = x0; }
      e = relExp(x1, g1); if (!(e <= worst)) { worst = e; worstX = x1; }
      e = relExp(x2, g2); if (!(e <= worst)) { worst = e; worstX = x2; }
      e = relExp(x3, g3); if (!(e <= worst)) { worst = e; worstX = x3; }
      if (g0 < prev || g1 < g0 || g2 < g1 || g3 < g2) nonMonotone++;
      prev = g3;
    }
    expect<f64>(worst).toBeLessThanOrEqual(TOL, `worst at x=${worstX}`);
    expect<i32>(mismatches).toBe(0, "exp4 lanes differ from exp1");
    expect<i32>(nonMonotone).toBe(0, "exp decreases somewhere");
  });

  test("random points in [-87.3, 88.37] and in small ranges around 0 (no cancellation problems)", () => {
    const rng = new Rng(61);
    let worst: f64 = 0, worstX: f32 = 0, mismatches = 0;
    for (let k = 0; k < 40000; k++) {
      const range = k % 4 == 0 ? 175.67 : k % 4 == 1 ? 1.0 : k % 4 == 2 ? 1e-3 : 1e-6;
      const x = k % 4 == 0 ? <f32>(-87.3 + range * rng.unit()) : rng.uniform(-range, range);
      const g = exp1(x);
      const e = relExp(x, g);
      if (!(e <= worst)) { worst = e; worstX = x; }
      if (bits(f32x4.extract_lane(exp4(f32x4.splat(x)), 2)) != bits(g)) mismatches++;
    }
    expect<f64>(worst).toBeLessThanOrEqual(TOL, `worst at x=${worstX}`);
    expect<i32>(mismatches).toBe(0);
  });

  test("special points: exp(±0) = 1 exactly, e, powers of two k·ln2 (k = -125..127), range ends", () => {
    expect<f32>(exp1(0)).toBe(1);
    expect<f32>(exp1(-0.0)).toBe(1);
    expect<f32>(f32x4.extract_lane(exp4(f32x4.splat(0)), 0)).toBe(1);
    expect<f64>(relExp(1, exp1(1))).toBeLessThanOrEqual(TOL, "e");
    expect<f64>(relExp(-1, exp1(-1))).toBeLessThanOrEqual(TOL, "1/e");
    for (let k = -125; k <= 127; k++) {
      const x = <f32>(<f64>k * Math.LN2);
      expect<f64>(relExp(x, exp1(x))).toBeLessThanOrEqual(TOL, `x = ${k}·ln2`);
      // and halfway between powers of two, where the reduction switches n
      const y = <f32>((<f64>k + 0.5) * Math.LN2);
      if (y < EXP_HI) expect<f64>(relExp(y, exp1(y))).toBeLessThanOrEqual(TOL, `x = (${k} + 0.5)·ln2`);
    }
    const ends: f32[] = [EXP_LO, -87.3, -87.0, -86.5, 88.0, 88.3, 88.37, EXP_HI, 1e-7, -1e-7, 1e-30, -1e-30, 0.5, -0.5];
    for (let i = 0; i < ends.length; i++) {
      expect<f64>(relExp(ends[i], exp1(ends[i]))).toBeLessThanOrEqual(TOL, `x=${ends[i]}`);
    }
    expect<i32>(laneMismatches(EXP_LO, EXP_HI, 0, -0.0)).toBe(0);
    expect<i32>(laneMismatches(1e-30, -1e-30, 88.37, -87.3)).toBe(0);
  });

  test("outside the range: no NaN, large x gives >= exp(88.37), x -> -inf gives a value in [0, 1.2e-38]", () => {
    const big: f32[] = [88.38, 88.5, 88.72, 89, 100, 1e10, Infinity];
    const small: f32[] = [-87.4, -88, -100, -103.9, -1e10, -Infinity];
    const floorBig = <f32>(Math.exp(88.37) * (1 - TOL));
    for (let i = 0; i < big.length; i++) {
      const g = exp1(big[i]);
      expect<bool>(g >= floorBig).toBe(true, `exp1(${big[i]}) = ${g}`);
      expect<i32>(laneMismatches(big[i], small[i % small.length], big[(i + 1) % big.length], 0)).toBe(0);
    }
    for (let i = 0; i < small.length; i++) {
      const g = exp1(small[i]);
      expect<bool>(g >= 0 && g <= <f32>1.2e-38).toBe(true, `exp1(${small[i]}) = ${g}`);
    }
    expect<bool>(isNaN<f32>(exp1(NaN))).toBe(true);
    expect<bool>(isNaN<f32>(f32x4.extract_lane(exp4(f32x4(1, NaN, 2, 3)), 1))).toBe(true);
  });
});

describe("expNonPositive4 (softmax arguments x ≤ 0)", () => {
  test("max relative error over 800k evenly spaced points of [-80, 0] and near 0 is <= 2.5e-7; monotone; e^0 = 1 exactly", () => {
    const N = 800000;
    let worst: f64 = 0, worstX: f32 = 0, nonMonotone = 0;
    let prev: f32 = 0;
    for (let k = 0; k < N; k += 4) {
      const xs = new StaticArray<f32>(4);
      for (let j = 0; j < 4; j++) xs[j] = <f32>(-80.0 + 80.0 * <f64>(k + j) / <f64>N);
      const v = expNonPositive4(f32x4(xs[0], xs[1], xs[2], xs[3]));
      const lanes: f32[] = [f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1), f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)];
      for (let j = 0; j < 4; j++) {
        const g = lanes[j];
        const e = relExp(xs[j], g);
        if (e > worst) { worst = e; worstX = xs[j]; }
        if (k + j > 0 && g < prev) nonMonotone++;
        prev = g;
      }
    }
    const rng = new Rng(4242);
    for (let k = 0; k < 20000; k++) {
      const x = <f32>(-rng.uniform(0, 1e-3));
      const e = relExp(x, f32x4.extract_lane(expNonPositive4(f32x4.splat(x)), 0));
      if (e > worst) { worst = e; worstX = x; }
    }
    log<string>(`expNonPositive4: worst relative error ${worst} at x = ${worstX}`);
    expect<f64>(worst).toBeLessThanOrEqual(2.5e-7);
    expect<i32>(nonMonotone).toBe(0, "not monotone");
    const at0 = expNonPositive4(f32x4(0, -0.0, -1e-30, -87));
    expect<f32>(f32x4.extract_lane(at0, 0)).toBe(1);
    expect<f32>(f32x4.extract_lane(at0, 1)).toBe(1);
    expect<f32>(f32x4.extract_lane(at0, 2)).toBe(1);
    expect<f32>(f32x4.extract_lane(at0, 3)).toBe(0);
  });

  test("expNonPositive1 equals expNonPositive4 lane by lane, bit for bit (800k points of [-90, 0], specials)", () => {
    let mismatches = 0;
    const N = 800000;
    for (let k = 0; k < N; k++) {
      const x = <f32>(-90.0 + 90.0 * <f64>k / <f64>N);
      if (bits(expNonPositive1(x)) != bits(f32x4.extract_lane(expNonPositive4(f32x4.splat(x)), 0))) mismatches++;
    }
    const specials: f32[] = [0, -0.0, -1e-30, -80, -80.0000076, -87, -Infinity];
    for (let i = 0; i < specials.length; i++) {
      const x = specials[i];
      if (bits(expNonPositive1(x)) != bits(f32x4.extract_lane(expNonPositive4(f32x4.splat(x)), 0))) mismatches++;
    }
    expect<i32>(mismatches).toBe(0);
    expect<bool>(isNaN<f32>(expNonPositive1(NaN))).toBe(true);
  });

  test("below -80 and -inf give exactly 0 (no subnormals), NaN stays NaN", () => {
    const v = expNonPositive4(f32x4(-80.5, -1e10, -Infinity, NaN));
    expect<u32>(bits(f32x4.extract_lane(v, 0))).toBe(0);
    expect<u32>(bits(f32x4.extract_lane(v, 1))).toBe(0);
    expect<u32>(bits(f32x4.extract_lane(v, 2))).toBe(0);
    expect<bool>(isNaN<f32>(f32x4.extract_lane(v, 3))).toBe(true);
  });
});
