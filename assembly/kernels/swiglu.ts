import { exp4, exp1 } from "./simd";

// SwiGLU gate: out = silu(a) ⊙ b with silu(a) = a / (1 + e^−a), over count elements (out may alias a).
export function swigluForward(out: usize, a: usize, b: usize, count: i32): void {
  const vecBytes = <usize>(count & ~3) << 2;
  const bytes = <usize>count << 2;
  const one = f32x4.splat(1.0);
  for (let k: usize = 0; k < vecBytes; k += 16) {
    const av = v128.load(a + k);
    const silu = f32x4.div(av, f32x4.add(one, exp4(f32x4.neg(av))));
    v128.store(out + k, f32x4.mul(silu, v128.load(b + k)));
  }
  for (let k = vecBytes; k < bytes; k += 4) {
    const av = load<f32>(a + k);
    store<f32>(out + k, (av / (<f32>1.0 + exp1(-av))) * load<f32>(b + k));
  }
}
