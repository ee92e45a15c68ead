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

// Backward of out = weight ⊙ x·s, s = (mean(x²) + eps)^−½, per row:
//   dx = s·(weight ⊙ dOut) − (s³/dim)·x·Σ(weight ⊙ dOut ⊙ x)     (written, or added to dx when accumulate)
//   dWeight += Σ_rows dOut ⊙ x·s
export function rmsnormBackward(dx: usize, dWeight: usize, dOut: usize, x: usize, weight: usize, n: i32, dim: i32, eps: f32, accumulate: bool): void {
  const withWeight = dWeight != 0; // 0: a frozen weight (LoRA), no gradient wanted
  const rowBytes = <usize>dim << 2;
  const vecBytes = <usize>(dim & ~3) << 2;
  for (let r = 0; r < n; r++) {
    const xr = x + <usize>r * rowBytes, gr = dOut + <usize>r * rowBytes, dr = dx + <usize>r * rowBytes;
    let ss4 = f32x4.splat(0), dot4 = f32x4.splat(0);
    for (let k: usize = 0; k < vecBytes; k += 16) {
      const v = v128.load(xr + k);
      ss4 = madd(v, v, ss4);
      dot4 = madd(f32x4.mul(v128.load(weight + k), v128.load(gr + k)), v, dot4);
    }
    let ss = hsum(ss4), dot = hsum(dot4);
    for (let k = vecBytes; k < rowBytes; k += 4) {
      const v = load<f32>(xr + k);
      ss += v * v;
      dot += load<f32>(weight + k) * load<f32>(gr + k) * v;
    }
    const s: f32 = <f32>1.0 / Mathf.sqrt(ss / <f32>dim + eps);
    const c: f32 = s * s * s * dot / <f32>dim;
    const s4 = f32x4.splat(s), c4 = f32x4.splat(c);
    for (let k: usize = 0; k < vecBytes; k += 16) {
      const v = v128.load(xr + k), g = v128.load(gr + k);
      const d = f32x4.sub(f32x4.mul(s4, f32x4.mul(v128.load(weight + k), g)), f32x4.mul(c4, v));
      v128.store(dr + k, accumulate ? f32x4.add(v128.load(dr + k), d) : d);
      if (withWeight) v128.store(dWeight + k, f32x4.add(v128.load(dWeight + k), f32x4.mul(g, f32x4.mul(v, s4))));
    }
    for (let k = vecBytes; k < rowBytes; k += 4) {
      const v = load<f32>(xr + k), g = load<f32>(gr + k);
      const d = s * (load<f32>(weight + k) * g) - c * v;
      store<f32>(dr + k, accumulate ? load<f32>(dr + k) + d : d);
      if (withWeight) store<f32>(dWeight + k, load<f32>(dWeight + k) + g * (v * s));
    }
  }
}
