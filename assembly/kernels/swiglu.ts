import { exp4, exp1 } from "./simd";

// SwiGLU gate: out = silu(a) ⊙ b with silu(a) = a / (1 + e^−a), over count elements (out may alias a).
// Training passes sigmoidOut: σ(a) = 1 / (1 + e^−a) is kept there for the backward pass, which then needs no
// exponential (and rounds exactly as if it had computed σ itself).
export function swigluForward(out: usize, a: usize, b: usize, count: i32, sigmoidOut: usize = 0): void {
  const vecBytes = <usize>(count & ~3) << 2;
  const bytes = <usize>count << 2;
  const one = f32x4.splat(1.0);
  for (let k: usize = 0; k < vecBytes; k += 16) {
    const av = v128.load(a + k);
    const d = f32x4.add(one, exp4(f32x4.neg(av)));
    v128.store(out + k, f32x4.mul(f32x4.div(av, d), v128.load(b + k)));
    if (sigmoidOut != 0) v128.store(sigmoidOut + k, f32x4.div(one, d));
  }
  for (let k = vecBytes; k < bytes; k += 4) {
    const av = load<f32>(a + k);
    const d = <f32>1.0 + exp1(-av);
    store<f32>(out + k, (av / d) * load<f32>(b + k));
    if (sigmoidOut != 0) store<f32>(sigmoidOut + k, <f32>1.0 / d);
  }
}

// Backward of out = silu(a) ⊙ b: da = dOut ⊙ b ⊙ σ(a)(1 + a(1 − σ(a))), db = dOut ⊙ silu(a), with σ(a) as the
// forward pass kept it (sigmoid).
export function swigluBackward(da: usize, db: usize, dOut: usize, a: usize, b: usize, sigmoid: usize, count: i32): void {
  const vecBytes = <usize>(count & ~3) << 2;
  const bytes = <usize>count << 2;
  const one = f32x4.splat(1.0);
  for (let k: usize = 0; k < vecBytes; k += 16) {
    const av = v128.load(a + k), bv = v128.load(b + k), g = v128.load(dOut + k);
    const sig = v128.load(sigmoid + k);
    const silu = f32x4.mul(av, sig);
    const dsilu = f32x4.mul(sig, f32x4.add(one, f32x4.mul(av, f32x4.sub(one, sig))));
    v128.store(da + k, f32x4.mul(f32x4.mul(g, bv), dsilu));
    v128.store(db + k, f32x4.mul(g, silu));
  }
  for (let k = vecBytes; k < bytes; k += 4) {
    const av = load<f32>(a + k), bv = load<f32>(b + k), g = load<f32>(dOut + k);
    const sig = load<f32>(sigmoid + k);
    store<f32>(da + k, (g * bv) * (sig * (<f32>1.0 + av * (<f32>1.0 - sig))));
    store<f32>(db + k, g * (av * sig));
  }
}
