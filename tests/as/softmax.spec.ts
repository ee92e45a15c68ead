// softmax.ts: maxValue, expShifted, softmaxForward, logSumExp, argmax against f64 / plain-loop references,
// for lengths 1..9, 37, 67, 172, 288, 1000 (vector body + scalar tail) and negative-only data.
// Error bounds:
//  * maxValue, argmax: exact.
//  * expShifted elements: the argument scale·(x − max) is rounded twice in f32 before exp, so the relative error is
//    ≤ 2e-7 (exp) + 2^-23·|arg| (the two roundings move the argument by ≤ 2^-24·|arg| each); bound = 3e-7 + 1.2e-7·|arg|.
//  * sums / probabilities: relative 1e-5 (observed < 1.5e-6: the per-element argument rounding above, up to |arg| = 24).
//  * logSumExp: absolute 1e-5 (max is exact, only log(Σ) carries the f32 error).
import { maxValue, expShifted, softmaxForward, logSumExp, argmax } from "../../assembly/kernels/softmax";
import { Rng, allocF32, getF32, setF32, fillUniform, fillConst, trueRelErr, relErr, bits, worse } from "./support/ref";

const TOL: f64 = 1e-5;
const LENGTHS: i32[] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 37, 67, 172, 288, 1000];

function maxRef(x: usize, n: i32): f32 {
  let m: f32 = -Infinity;
  for (let i = 0; i < n; i++) if (getF32(x, i) > m) m = getF32(x, i);
  return m;
}

function argmaxRef(x: usize, n: i32): i32 {
  let best = 0;
  for (let i = 1; i < n; i++) if (getF32(x, i) > getF32(x, best)) best = i;
  return best;
}

describe("maxValue", () => {
  test("exact, wherever the maximum is (every index of lengths 1..13, 37, 67), negative-only data", () => {
    const rng = new Rng(51);
    const x = allocF32(1000);
    for (let n = 1; n <= 67; n++) {
      if (n > 13 && n != 37 && n != 67) continue;
      for (let at = 0; at < n; at++) {
        fillUniform(x, n, rng, -10, -1); // all negative: a 0-initialised maximum would be caught
        setF32(x, at, <f32>-0.5);
        expect<f32>(maxValue(x, n)).toBe(<f32>-0.5, `n=${n} at=${at}`);
      }
    }
    for (let i = 0; i < LENGTHS.length; i++) {
      fillUniform(x, LENGTHS[i], rng, -100, 100);
      expect<f32>(maxValue(x, LENGTHS[i])).toBe(maxRef(x, LENGTHS[i]), `n=${LENGTHS[i]}`);
    }
    heap.free(x);
  });

  test("NaN anywhere gives NaN (every index of lengths 1..13 and 37)", () => {
    const x = allocF32(40);
    for (let n = 1; n <= 37; n++) {
      if (n > 13 && n != 37) continue;
      for (let at = 0; at < n; at++) {
        fillConst(x, n, <f32>1.5);
        setF32(x, at, NaN);
        expect<bool>(isNaN(maxValue(x, n))).toBe(true, `n=${n} at=${at}`);
      }
    }
    heap.free(x);
  });

  test("infinities; n = 0 gives -Infinity", () => {
    const x = allocF32(9);
    fillConst(x, 9, -Infinity);
    expect<f32>(maxValue(x, 9)).toBe(-Infinity);
    expect<f32>(maxValue(x, 0)).toBe(-Infinity);
    setF32(x, 8, -3e38);
    expect<f32>(maxValue(x, 9)).toBe(<f32>-3e38);
    setF32(x, 2, Infinity);
    expect<f32>(maxValue(x, 9)).toBe(Infinity);
    heap.free(x);
  });
});

describe("expShifted", () => {
  test("out[i] = exp(scale·(x[i] − max)) and the returned sum, scales 1, 0.125, 1/sqrt(48), 2", () => {
    const rng = new Rng(52);
    const scales: f32[] = [1.0, 0.125, <f32>(1.0 / Math.sqrt(48.0)), 2.0];
    for (let i = 0; i < LENGTHS.length; i++) {
      const n = LENGTHS[i];
      const x = allocF32(n), out = allocF32(n + 4);
      for (let s = 0; s < scales.length; s++) {
        const scale = scales[s];
        fillUniform(x, n, rng, -8, 8);
        fillConst(out, n, NaN);
        fillConst(out + (<usize>n << 2), 4, 7);
        const m = maxRef(x, n);
        const got = expShifted(out, x, n, scale, m);
        let want: f64 = 0, worst: f64 = 0;
        for (let k = 0; k < n; k++) {
          const arg = <f64>scale * (<f64>getF32(x, k) - <f64>m);
          const e = Math.exp(arg);
          want += e;
          const err = trueRelErr(<f64>getF32(out, k), e) / (3e-7 + 1.2e-7 * Math.abs(arg));
          if (!(err <= worst)) worst = err;
        }
        expect<f64>(worst).toBeLessThanOrEqual(1.0, `elements (in units of the bound), n=${n} scale=${scale}`);
        expect<f64>(trueRelErr(<f64>got, want)).toBeLessThanOrEqual(TOL, `sum, n=${n} scale=${scale}`);
        for (let g = 0; g < 4; g++) expect<f32>(getF32(out, n + g)).toBe(7, "wrote past out");
      }
      heap.free(x); heap.free(out);
    }
  });

  test("out may alias x; a shift other than the maximum works too", () => {
    const rng = new Rng(53);
    for (let i = 0; i < LENGTHS.length; i++) {
      const n = LENGTHS[i];
      const x = allocF32(n), sep = allocF32(n);
      fillUniform(x, n, rng, -3, 3);
      const s1 = expShifted(sep, x, n, 0.5, 1.0); // shift 1 below the max of x: some e^(>0) values
      const s2 = expShifted(x, x, n, 0.5, 1.0);
      expect<u32>(bits(s2)).toBe(bits(s1), `sum in place, n=${n}`);
      let diff = 0;
      for (let k = 0; k < n; k++) if (bits(getF32(x, k)) != bits(getF32(sep, k))) diff++;
      expect<i32>(diff).toBe(0, `elements in place, n=${n}`);
      heap.free(x); heap.free(sep);
    }
  });
});

describe("softmaxForward", () => {
  test("matches the f64 softmax (relative per probability) and sums to 1", () => {
    const rng = new Rng(54);
    const scales: f32[] = [1.0, 0.125, 2.0];
    for (let i = 0; i < LENGTHS.length; i++) {
      const n = LENGTHS[i];
      const x = allocF32(n), orig = allocF32(n);
      for (let s = 0; s < scales.length; s++) {
        fillUniform(orig, n, rng, -6, 6);
        memory.copy(x, orig, <usize>n << 2);
        softmaxForward(x, n, scales[s]);
        const m = maxRef(orig, n);
        let z: f64 = 0;
        for (let k = 0; k < n; k++) z += Math.exp(<f64>scales[s] * (<f64>getF32(orig, k) - <f64>m));
        let worst: f64 = 0, total: f64 = 0;
        for (let k = 0; k < n; k++) {
          const want = Math.exp(<f64>scales[s] * (<f64>getF32(orig, k) - <f64>m)) / z;
          const e = trueRelErr(<f64>getF32(x, k), want);
          worst = worse(worst, e);
          total += <f64>getF32(x, k);
        }
        expect<f64>(worst).toBeLessThanOrEqual(TOL, `n=${n} scale=${scales[s]}`);
        expect<f64>(Math.abs(total - 1.0)).toBeLessThanOrEqual(TOL, `sum, n=${n}`);
      }
      heap.free(x); heap.free(orig);
    }
  });

  test("no overflow for large logits, uniform for equal logits, n = 1 gives 1", () => {
    const x = allocF32(37);
    for (let k = 0; k < 37; k++) setF32(x, k, <f32>((k % 5) + 1000));
    softmaxForward(x, 37, 1.0);
    let z: f64 = 0;
    for (let k = 0; k < 37; k++) z += Math.exp(<f64>(k % 5) - 4.0);
    for (let k = 0; k < 37; k++) {
      expect<f64>(trueRelErr(<f64>getF32(x, k), Math.exp(<f64>(k % 5) - 4.0) / z)).toBeLessThanOrEqual(TOL);
    }
    fillConst(x, 37, -5);
    softmaxForward(x, 37, 1.0);
    for (let k = 0; k < 37; k++) expect<f64>(trueRelErr(<f64>getF32(x, k), 1.0 / 37.0)).toBeLessThanOrEqual(TOL);
    setF32(x, 0, <f32>-123.25);
    softmaxForward(x, 1, 1.0);
    expect<f32>(getF32(x, 0)).toBe(1);
    heap.free(x);
  });
});

describe("logSumExp", () => {
  test("matches max + log Σ exp(x − max) in f64 (absolute 1e-5), incl. offsets of ±1000", () => {
    const rng = new Rng(55);
    const offsets: f64[] = [0, 1000, -1000, 80];
    for (let i = 0; i < LENGTHS.length; i++) {
      const n = LENGTHS[i];
      const x = allocF32(n), scratch = allocF32(n);
      for (let o = 0; o < offsets.length; o++) {
        fillUniform(x, n, rng, offsets[o] - 5, offsets[o] + 5);
        const m = <f64>maxRef(x, n);
        let z: f64 = 0;
        for (let k = 0; k < n; k++) z += Math.exp(<f64>getF32(x, k) - m);
        const want = m + Math.log(z);
        const got = logSumExp(x, n, scratch);
        expect<f64>(Math.abs(got - want)).toBeLessThanOrEqual(TOL, `n=${n} offset=${offsets[o]}`);
      }
      heap.free(x); heap.free(scratch);
    }
  });

  test("equal values: log(n) + value", () => {
    for (let i = 0; i < LENGTHS.length; i++) {
      const n = LENGTHS[i];
      const x = allocF32(n), scratch = allocF32(n);
      fillConst(x, n, -2.5);
      expect<f64>(relErr(logSumExp(x, n, scratch), Math.log(<f64>n) - 2.5)).toBeLessThanOrEqual(TOL, `n=${n}`);
      heap.free(x); heap.free(scratch);
    }
  });
});

describe("argmax", () => {
  test("first index of the maximum for every pair of tied positions (lengths 1..13)", () => {
    const rng = new Rng(56);
    const x = allocF32(16);
    for (let n = 1; n <= 13; n++) {
      for (let p = 0; p < n; p++) {
        for (let q = p; q < n; q++) {
          fillUniform(x, n, rng, -10, -1);
          setF32(x, p, <f32>-0.25);
          setF32(x, q, <f32>-0.25);
          expect<i32>(argmax(x, n)).toBe(p, `n=${n} ties at ${p} and ${q}`);
        }
      }
    }
    heap.free(x);
  });

  test("random data (lengths up to 1000), three-way ties across vector and tail, all equal, -Infinity", () => {
    const rng = new Rng(57);
    const x = allocF32(1000);
    for (let i = 0; i < LENGTHS.length; i++) {
      const n = LENGTHS[i];
      for (let rep = 0; rep < 5; rep++) {
        fillUniform(x, n, rng, -50, 50);
        expect<i32>(argmax(x, n)).toBe(argmaxRef(x, n), `n=${n}`);
      }
      if (n >= 9) {
        fillUniform(x, n, rng, -50, 50);
        setF32(x, n - 1, 60); setF32(x, 5, 60); setF32(x, n / 2, 60); // tail, vector lane 1, middle
        expect<i32>(argmax(x, n)).toBe(min(5, n / 2), `n=${n} three-way tie`);
      }
      fillConst(x, n, 3.5);
      expect<i32>(argmax(x, n)).toBe(0, `n=${n} all equal`);
      fillConst(x, n, -Infinity);
      expect<i32>(argmax(x, n)).toBe(0, `n=${n} all -Infinity`);
      if (n > 1) {
        setF32(x, n - 1, -3e38);
        expect<i32>(argmax(x, n)).toBe(n - 1, `n=${n} one finite value at the end`);
      }
    }
    heap.free(x);
  });
});
