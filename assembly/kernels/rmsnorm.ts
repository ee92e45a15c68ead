import { madd, hsum } from "./simd";

// out[r] = weight ⊙ x[r] / sqrt(mean(x[r]²) + eps), for each of the n rows of length dim.
export function rmsnormForward(out: usize, x: usize, weight: usize, n: i32, dim: i32, eps: f32): void {
  const rowBytes = <usize>dim << 2;
  const vecBytes = <usize>(dim & ~3) << 2;
  for (let r = 0; r < n; r++) {
    const xr = x + <usize>r * rowBytes, outr = out + <usize>r * rowBytes;
    let acc = f32x4.splat(0);
    for (let k: usize = 0; k < vecBytes; k += 16) {
      const v = v128.load(xr + k);
      acc = madd(v, v, acc);
    }
    let ss = hsum(acc);
    for (let k = vecBytes; k < rowBytes; k += 4) { const v = load<f32>(xr + k); ss += v * v; }
    const scale: f32 = <f32>1.0 / Mathf.sqrt(ss / <f32>dim + eps);
    const s4 = f32x4.splat(scale);
    for (let k: usize = 0; k < vecBytes; k += 16) {
      v128.store(outr + k, f32x4.mul(v128.load(weight + k), f32x4.mul(s4, v128.load(xr + k))));
    }
    for (let k = vecBytes; k < rowBytes; k += 4) store<f32>(outr + k, load<f32>(weight + k) * (scale * load<f32>(xr + k)));
  }
}
