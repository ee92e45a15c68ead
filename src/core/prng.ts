/**
 * A seeded pseudo-random generator whose output is bit-identical on every JavaScript engine: it uses only integer math
 * (Math.imul, shifts) and the basic float operations IEEE 754 rounds exactly (+ - * / sqrt), never Math.random, and
 * not Math.log/cos/sin either, because the spec lets engines differ in their last bit.
 *
 * Generator: xoshiro128** (Blackman & Vigna), seeded through splitmix64 as its authors recommend.
 */

const MASK64 = (1n << 64n) - 1n;

/** One splitmix64 step: returns the next state and its well-mixed 64-bit output. */
function splitmix64(state: bigint): [bigint, bigint] {
  const next = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [next, z ^ (z >> 31n)];
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

/**
 * Natural logarithm from exactly rounded operations only, so it gives the same bits everywhere (Math.log may not).
 * ln x = e·ln2 + 2·atanh(t) with x = m·2^e, m in [√½, √2), t = (m-1)/(m+1), |t| < 0.172; the atanh series is summed
 * far enough (t^41 < 1e-31) that the result is accurate to about 1 ulp.
 */
export function portableLog(x: number): number {
  if (!(x > 0) || x === Infinity) throw new RangeError(`portableLog: ${x} is not a positive finite number`);
  let m = x, e = 0;
  while (m < Math.SQRT1_2) { m *= 2; e -= 1; } // scaling by 2 is exact
  while (m >= Math.SQRT2) { m /= 2; e += 1; }
  const t = (m - 1) / (m + 1), t2 = t * t;
  let sum = 0, power = t;
  for (let k = 1; k <= 41; k += 2) { sum += power / k; power *= t2; }
  return e * Math.LN2 + 2 * sum;
}

export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** The second value of the last polar-method pair, handed out by the next nextNormal() call. */
  private spare: number | undefined;

  /** `seed` is any safe integer (negative ones included); equal seeds give equal streams. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`Prng: seed ${seed} is not a safe integer`);
    let state = BigInt(seed) & MASK64, a: bigint, b: bigint;
    [state, a] = splitmix64(state);
    [state, b] = splitmix64(state);
    this.s0 = Number(a & 0xffffffffn) | 0;
    this.s1 = Number(a >> 32n) | 0;
    this.s2 = Number(b & 0xffffffffn) | 0;
    this.s3 = Number(b >> 32n) | 0;
    // splitmix64 is a bijection, so the all-zero state (xoshiro's one bad state) needs two zero outputs in a row: never.
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  nextFloat64(): number {
    const hi = this.nextUint32() >>> 5, lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992; // (hi·2^26 + lo) / 2^53
  }

  /** A standard normal sample: Marsaglia's polar form of Box-Muller (no cos/sin needed, log is portableLog). */
  nextNormal(): number {
    if (this.spare !== undefined) {
      const value = this.spare;
      this.spare = undefined;
      return value;
    }
    let u: number, v: number, s: number;
    do {
      u = 2 * this.nextFloat64() - 1;
      v = 2 * this.nextFloat64() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const factor = Math.sqrt((-2 * portableLog(s)) / s);
    this.spare = v * factor;
    return u * factor;
  }

  /** Fills `out` with normal(0, std) samples (rounded to float32 by the store). */
  fillNormal(out: Float32Array, std: number): void {
    for (let i = 0; i < out.length; i++) out[i] = std * this.nextNormal();
  }
}
