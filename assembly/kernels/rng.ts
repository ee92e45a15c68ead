// xorshift64* as llama2.c's sampler uses it; the state is a u64 in linear memory, so the host can seed it,
// save it in a checkpoint and resume it. Integer-only: the same seed gives the same draws on every engine.

export function rngNextU32(state: usize): u32 {
  let s = load<u64>(state);
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  store<u64>(state, s);
  return <u32>((s * 0x2545F4914F6CDD1D) >> 32);
}

/** A float in [0, 1) with 24 random bits. */
export function rngNextF32(state: usize): f32 {
  return <f32>(rngNextU32(state) >> 8) / <f32>16777216.0;
}
