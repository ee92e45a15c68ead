import { madd, hsum } from "./simd";
import { softmaxForward } from "./softmax";

// Causal attention of n query rows over their own sequence's KV cache, grouped-query heads.
// Row r belongs to cache slot slots[r] at position positions[r] and attends to positions 0..positions[r]
// of that slot only, so packed rows of different sequences never see each other (no padding needed).
// Cache layout: [slot][pos][kvDim]; query head h reads KV head h / (nHeads / nKvHeads).
export function attentionForward(
  out: usize, q: usize, kCache: usize, vCache: usize, n: i32, slots: usize, positions: usize,
  nHeads: i32, nKvHeads: i32, headSize: i32, seqLen: i32, scores: usize,
): void {
  const dim = nHeads * headSize, kvDim = nKvHeads * headSize;
  const group = nHeads / nKvHeads;
  const headBytes = <usize>headSize << 2;
  const vecBytes = <usize>(headSize & ~3) << 2;
  const kvRowBytes = <usize>kvDim << 2;
  const scale: f32 = <f32>1.0 / Mathf.sqrt(<f32>headSize);
  for (let r = 0; r < n; r++) {
    const slot = load<i32>(slots + (<usize>r << 2));
    const pos = load<i32>(positions + (<usize>r << 2));
    const slotOffset = <usize>slot * seqLen * kvRowBytes;
    for (let h = 0; h < nHeads; h++) {
      const qh = q + ((<usize>r * dim) << 2) + <usize>h * headBytes;
      const kvOffset = slotOffset + <usize>(h / group) * headBytes;
      for (let t = 0; t <= pos; t++) {
        const kt = kCache + kvOffset + <usize>t * kvRowBytes;
        let acc = f32x4.splat(0);
        for (let k: usize = 0; k < vecBytes; k += 16) acc = madd(v128.load(qh + k), v128.load(kt + k), acc);
        let s = hsum(acc);
        for (let k = vecBytes; k < headBytes; k += 4) s += load<f32>(qh + k) * load<f32>(kt + k);
        store<f32>(scores + (<usize>t << 2), s);
      }
      softmaxForward(scores, pos + 1, scale);
      const oh = out + ((<usize>r * dim) << 2) + <usize>h * headBytes;
      memory.fill(oh, 0, headBytes);
      for (let t = 0; t <= pos; t++) {
        const vt = vCache + kvOffset + <usize>t * kvRowBytes;
        const a = load<f32>(scores + (<usize>t << 2));
        const a4 = f32x4.splat(a);
        for (let k: usize = 0; k < vecBytes; k += 16) v128.store(oh + k, madd(a4, v128.load(vt + k), v128.load(oh + k)));
        for (let k = vecBytes; k < headBytes; k += 4) store<f32>(oh + k, load<f32>(oh + k) + a * load<f32>(vt + k));
      }
    }
  }
}
