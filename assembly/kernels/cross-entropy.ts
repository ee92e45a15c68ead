import { maxValue, expShifted } from "./softmax";
import { expNonPositive4, expNonPositive1, hsum } from "./simd";

// The weighted token log-likelihood loss and its gradient, in one pass per row of logits:
//   loss = −Σ_r w_r·log softmax(logits_r)[t_r]
//   logits_r is overwritten with ∂loss/∂logits_r = w_r·(softmax(logits_r) − onehot(t_r)).
// Returns the loss in f64 (the rows' terms are summed in f64 so long batches do not lose digits).
// entropies (f32[n], 0 = not wanted) receives each row's entropy H = −Σ_v p_v·log p_v of softmax(logits_r), from
// the same exponentials (the policy's entropy metric costs one multiply-add per logit, not another pass).
export function crossEntropyForwardBackward(logits: usize, targets: usize, weights: usize, entropies: usize, n: i32, vocab: i32): f64 {
  let loss: f64 = 0;
  const vecBytes = <usize>(vocab & ~3) << 2;
  for (let r = 0; r < n; r++) {
    const row = logits + ((<usize>r * vocab) << 2);
    const target = load<i32>(targets + (<usize>r << 2));
    const w = load<f32>(weights + (<usize>r << 2));
    const targetLogit = load<f32>(row + (<usize>target << 2));
    const m = maxValue(row, vocab);
    const sum = entropies == 0 ? expShifted(row, row, vocab, 1.0, m) : expShiftedEntropy(row, vocab, m, entropies + (<usize>r << 2));
    loss -= <f64>w * (<f64>targetLogit - (<f64>m + Math.log(<f64>sum)));
    const scale = f32x4.splat(w / sum);
    for (let k: usize = 0; k < vecBytes; k += 16) v128.store(row + k, f32x4.mul(v128.load(row + k), scale));
    for (let k = vecBytes; k < (<usize>vocab << 2); k += 4) store<f32>(row + k, load<f32>(row + k) * (w / sum));
    const at = row + (<usize>target << 2);
    store<f32>(at, load<f32>(at) - w);
  }
  return loss;
}

/**
 * expShifted(x, x, n, 1, maxX) in place, also writing the entropy of softmax(x) to `entropyAt`. With e_i = e^(x_i − m)
 * and S = Σ e_i: H = log S − Σ e_i·(x_i − m) / S. Both terms are ≥ 0 (x_i ≤ m), so nothing cancels.
 * Plain mul/add (no FMA), so every build gives the same entropy.
 */
function expShiftedEntropy(x: usize, n: i32, maxX: f32, entropyAt: usize): f32 {
  const vecBytes = <usize>(n & ~3) << 2;
  const m4 = f32x4.splat(maxX);
  let acc = f32x4.splat(0), dotAcc = f32x4.splat(0);
  for (let k: usize = 0; k < vecBytes; k += 16) {
    const z = f32x4.sub(v128.load(x + k), m4);
    const e = expNonPositive4(z);
    v128.store(x + k, e);
    acc = f32x4.add(acc, e);
    dotAcc = f32x4.add(dotAcc, f32x4.mul(e, z));
  }
  let sum = hsum(acc), dot = hsum(dotAcc);
  for (let k = vecBytes; k < (<usize>n << 2); k += 4) {
    const z = load<f32>(x + k) - maxX;
    const e = expNonPositive1(z);
    store<f32>(x + k, e);
    sum += e;
    dot += e * z;
  }
  store<f32>(entropyAt, <f32>(Math.log(<f64>sum) - <f64>dot / <f64>sum));
  return sum;
}
