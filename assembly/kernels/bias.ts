// Bias of a linear layer (Qwen2's q/k/v projections): out[r] += bias for each of n rows, and its gradient, the sum
// of the rows of dOut.

export function biasForward(x: usize, bias: usize, n: i32, cols: i32): void {
  const rowBytes = <usize>cols << 2, vecBytes = <usize>(cols & ~3) << 2;
  for (let r = 0; r < n; r++) {
    const xr = x + <usize>r * rowBytes;
    for (let k: usize = 0; k < vecBytes; k += 16) v128.store(xr + k, f32x4.add(v128.load(xr + k), v128.load(bias + k)));
    for (let k = vecBytes; k < rowBytes; k += 4) store<f32>(xr + k, load<f32>(xr + k) + load<f32>(bias + k));
  }
}

/** dBias += Σ_r dOut[r] (rows in order, so the sum does not depend on how a batch was cut into micro-batches' rows). */
export function biasBackward(dBias: usize, dOut: usize, n: i32, cols: i32): void {
  const rowBytes = <usize>cols << 2, vecBytes = <usize>(cols & ~3) << 2;
  for (let r = 0; r < n; r++) {
    const gr = dOut + <usize>r * rowBytes;
    for (let k: usize = 0; k < vecBytes; k += 16) v128.store(dBias + k, f32x4.add(v128.load(dBias + k), v128.load(gr + k)));
    for (let k = vecBytes; k < rowBytes; k += 4) store<f32>(dBias + k, load<f32>(dBias + k) + load<f32>(gr + k));
  }
}
