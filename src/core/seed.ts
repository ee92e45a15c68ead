// Seeds for the sampler's xorshift64* streams, derived with splitmix64 in BigInt integer math, so a (seed, index)
// pair gives the same stream on every engine. Each sequence of a batch gets its own stream: its tokens do not
// depend on which other sequences share the batch.

const MASK64 = (1n << 64n) - 1n;

function splitmix64(x: bigint): bigint {
  let z = (x + 0x9e3779b97f4a7c15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** The initial sampler state of stream `index` under `seed` (never 0, which xorshift cannot leave). */
export function samplerState(seed: number | bigint, index: number): bigint {
  const base = splitmix64(BigInt.asUintN(64, BigInt(seed)));
  const state = splitmix64((base + BigInt(index)) & MASK64);
  return state === 0n ? 1n : state;
}
