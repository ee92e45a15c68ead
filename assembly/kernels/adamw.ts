import { madd } from "./simd";

// AdamW (Loshchilov & Hutter; PyTorch's torch.optim.AdamW) over count parameters:
//   g = gradScale·grad (gradScale carries global-norm clipping)
//   m = β1·m + (1−β1)·g,  v = β2·v + (1−β2)·g²
//   p = p − lr·weightDecay·p − lr·(m / bc1) / (sqrt(v / bc2) + eps)   with bc = 1 − β^step (passed in)
export function adamwStep(
  param: usize, grad: usize, m: usize, v: usize, count: i32,
  lr: f32, beta1: f32, beta2: f32, eps: f32, weightDecay: f32, gradScale: f32, biasCorrection1: f32, biasCorrection2: f32,
): void {
  const vecBytes = <usize>(count & ~3) << 2;
  const b1 = f32x4.splat(beta1), b2 = f32x4.splat(beta2);
  const c1 = f32x4.splat(<f32>1.0 - beta1), c2 = f32x4.splat(<f32>1.0 - beta2);
  const gs = f32x4.splat(gradScale), decay = f32x4.splat(<f32>1.0 - lr * weightDecay);
  const stepSize = f32x4.splat(lr / biasCorrection1), bc2 = f32x4.splat(biasCorrection2), e = f32x4.splat(eps);
  for (let k: usize = 0; k < vecBytes; k += 16) {
    const g = f32x4.mul(v128.load(grad + k), gs);
    const mk = madd(b1, v128.load(m + k), f32x4.mul(c1, g));
    const vk = madd(b2, v128.load(v + k), f32x4.mul(c2, f32x4.mul(g, g)));
    v128.store(m + k, mk);
    v128.store(v + k, vk);
    const denom = f32x4.add(f32x4.sqrt(f32x4.div(vk, bc2)), e);
    v128.store(param + k, f32x4.sub(f32x4.mul(v128.load(param + k), decay), f32x4.mul(stepSize, f32x4.div(mk, denom))));
  }
  for (let k = vecBytes; k < (<usize>count << 2); k += 4) {
    const g = load<f32>(grad + k) * gradScale;
    const mk = beta1 * load<f32>(m + k) + (<f32>1.0 - beta1) * g;
    const vk = beta2 * load<f32>(v + k) + (<f32>1.0 - beta2) * (g * g);
    store<f32>(m + k, mk);
    store<f32>(v + k, vk);
    const denom = Mathf.sqrt(vk / biasCorrection2) + eps;
    store<f32>(param + k, load<f32>(param + k) * (<f32>1.0 - lr * weightDecay) - (lr / biasCorrection1) * (mk / denom));
  }
}

/** Σ x² over count floats, summed in f64 per block of 1024 so a norm over millions of gradients keeps its digits. */
export function sumSquares(x: usize, count: i32): f64 {
  let total: f64 = 0;
  for (let start = 0; start < count; start += 1024) {
    const end = min(count, start + 1024);
    const vecEnd = start + ((end - start) & ~3);
    let acc = f32x4.splat(0);
    for (let i = start; i < vecEnd; i += 4) {
      const v = v128.load(x + (<usize>i << 2));
      acc = madd(v, v, acc);
    }
    let s: f64 = <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) + <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3);
    for (let i = vecEnd; i < end; i++) { const v = load<f32>(x + (<usize>i << 2)); s += <f64>(v * v); }
    total += s;
  }
  return total;
}
