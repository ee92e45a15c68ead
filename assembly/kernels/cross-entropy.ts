import { maxValue, expShifted } from "./softmax";

// The weighted token log-likelihood loss and its gradient, in one pass per row of logits:
//   loss = −Σ_r w_r·log softmax(logits_r)[t_r]
//   logits_r is overwritten with ∂loss/∂logits_r = w_r·(softmax(logits_r) − onehot(t_r)).
// Returns the loss in f64 (the rows' terms are summed in f64 so long batches do not lose digits).
export function crossEntropyForwardBackward(logits: usize, targets: usize, weights: usize, n: i32, vocab: i32): f64 {
  let loss: f64 = 0;
  const vecBytes = <usize>(vocab & ~3) << 2;
  for (let r = 0; r < n; r++) {
    const row = logits + ((<usize>r * vocab) << 2);
    const target = load<i32>(targets + (<usize>r << 2));
    const w = load<f32>(weights + (<usize>r << 2));
    const targetLogit = load<f32>(row + (<usize>target << 2));
    const m = maxValue(row, vocab);
    const sum = expShifted(row, row, vocab, 1.0, m);
    loss -= <f64>w * (<f64>targetLogit - (<f64>m + Math.log(<f64>sum)));
    const scale = f32x4.splat(w / sum);
    for (let k: usize = 0; k < vecBytes; k += 16) v128.store(row + k, f32x4.mul(v128.load(row + k), scale));
    for (let k = vecBytes; k < (<usize>vocab << 2); k += 4) store<f32>(row + k, load<f32>(row + k) * (w / sum));
    const at = row + (<usize>target << 2);
    store<f32>(at, load<f32>(at) - w);
  }
  return loss;
}
