// swigluForward(out, a, b, count): out = silu(a) ⊙ b, silu(a) = a / (1 + e^−a), against f64.
// Each element is a product/quotient of exp (no cancellation), so the error is a true relative error per element,
// bound 1e-5 (observed < 3e-7: a few roundings of exp1/exp4, the add, the divide and the multiply).
// Below a ≈ −87.3 the kernel's exp(−a) saturates at ~2.4e38, so silu(a)·b is not representable faithfully there:
// for those inputs only |got − want| ≤ 1e-30 is required (the true value is < 1e-35).
import { swigluForward } from "../../assembly/kernels/swiglu";
import { Rng, allocF32, getF32, setF32, fillUniform, fillConst, trueRelErr, bits, worse } from "./support/ref";

const TOL: f64 = 1e-5;

function silu(a: f64): f64 {
  return a / (1.0 + Math.exp(-a));
}

/** Worst error over [0, count): relative for a ≥ −87, absolute (scaled by 1e30) below. */
function worstError(out: usize, a: usize, b: usize, count: i32): f64 {
  let worst: f64 = 0;
  for (let i = 0; i < count; i++) {
    const av = <f64>getF32(a, i);
    const want = silu(av) * <f64>getF32(b, i);
    const got = <f64>getF32(out, i);
    const e = av >= -87.0 ? trueRelErr(got, want) : Math.abs(got - want) * 1e30 * TOL;
    worst = worse(worst, e);
  }
  return worst;
}

function runCase(rng: Rng, count: i32, lo: f64, hi: f64): f64 {
  const a = allocF32(count), b = allocF32(count), out = allocF32(count + 4);
  fillUniform(a, count, rng, lo, hi);
  fillUniform(b, count, rng, -2, 2);
  fillConst(out, count, NaN);
  fillConst(out + (<usize>count << 2), 4, 55);
  swigluForward(out, a, b, count);
  const worst = worstError(out, a, b, count);
  for (let g = 0; g < 4; g++) expect<f32>(getF32(out, count + g)).toBe(55, "wrote past out");
  heap.free(a); heap.free(b); heap.free(out);
  return worst;
}

const COUNTS: i32[] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 37, 67, 172, 288, 768];

describe("swigluForward", () => {
  test("counts 1..9, 37, 67, 172, 288, 768 with a in [-8, 8]", () => {
    const rng = new Rng(41);
    for (let i = 0; i < COUNTS.length; i++) {
      expect<f64>(runCase(rng, COUNTS[i], -8, 8)).toBeLessThanOrEqual(TOL, `count=${COUNTS[i]}`);
    }
  });

  test("wide range a in [-100, 100] (exp saturation, tiny and identity-like regions)", () => {
    const rng = new Rng(42);
    for (let i = 0; i < COUNTS.length; i++) {
      expect<f64>(runCase(rng, COUNTS[i], -100, 100)).toBeLessThanOrEqual(TOL, `count=${COUNTS[i]}`);
    }
  });

  test("special inputs in vector lanes and in the scalar tail", () => {
    // 0 → 0, −0 → −0·b, large positive → a·b, large negative → ~0 (never NaN), in both code paths (count 13 = 12 + 1).
    const specials: f32[] = [0, -0.0, 1, -1, 20, -20, 87, -87, 88.5, -88.5, 1e4, -1e4, 0.5];
    const count = specials.length;
    for (let shift = 0; shift < count; shift++) {
      const a = allocF32(count), b = allocF32(count), out = allocF32(count);
      for (let i = 0; i < count; i++) {
        setF32(a, i, specials[(i + shift) % count]);
        setF32(b, i, i % 2 == 0 ? <f32>1.5 : <f32>-0.75);
      }
      swigluForward(out, a, b, count);
      for (let i = 0; i < count; i++) {
        const av = getF32(a, i), got = getF32(out, i);
        expect<bool>(isNaN<f32>(got)).toBe(false, `silu(${av}) is NaN`);
        if (av == 0) expect<f32>(got).toBe(0); // silu(±0) = ±0
      }
      expect<f64>(worstError(out, a, b, count)).toBeLessThanOrEqual(TOL, `shift=${shift}`);
      heap.free(a); heap.free(b); heap.free(out);
    }
  });

  test("in place (out aliases a) gives the same bits as a separate output", () => {
    const rng = new Rng(43);
    for (let i = 0; i < COUNTS.length; i++) {
      const count = COUNTS[i];
      const a = allocF32(count), b = allocF32(count), out = allocF32(count);
      fillUniform(a, count, rng, -6, 6);
      fillUniform(b, count, rng, -2, 2);
      swigluForward(out, a, b, count);
      swigluForward(a, a, b, count);
      let diff = 0;
      for (let k = 0; k < count; k++) if (bits(getF32(a, k)) != bits(getF32(out, k))) diff++;
      expect<i32>(diff).toBe(0, `count=${count}`);
      heap.free(a); heap.free(b); heap.free(out);
    }
  });
});
