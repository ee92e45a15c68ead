// attentionForward(out, q, kCache, vCache, n, slots, positions, nHeads, nKvHeads, headSize, seqLen, scores):
// causal grouped-query attention of n packed rows, each over positions 0..pos of its own cache slot
// (layout [slot][pos][kvDim]; query head h uses kv head h / (nHeads / nKvHeads)), scores scaled by
// 1/sqrt(headSize). Reference: f64 dot products, f64 softmax, f64 weighted sum of V.
// Outputs are convex combinations of V rows in [-1, 1], so the error is checked as relErr (absolute below 1),
// bound 1e-5 (observed < 3e-7).
import { attentionForward, attentionScratchFloats } from "../../assembly/kernels/attention";
import { Rng, allocF32, allocI32, getF32, setF32, getI32, setI32, fillUniform, fillConst, relErr, bits, allFinite, worse } from "./support/ref";

const TOL: f64 = 1e-5;

class Shape {
  constructor(
    public nHeads: i32, public nKvHeads: i32, public headSize: i32, public seqLen: i32, public nSlots: i32,
  ) {}
  get dim(): i32 { return this.nHeads * this.headSize; }
  get kvDim(): i32 { return this.nKvHeads * this.headSize; }
  get cacheFloats(): i32 { return this.nSlots * this.seqLen * this.kvDim; }
}

/** Worst relErr of out[0..n) against the reference; reads only the (slot, t ≤ pos) cache entries. */
function compare(sh: Shape, out: usize, q: usize, kc: usize, vc: usize, n: i32, slots: usize, positions: usize): f64 {
  const group = sh.nHeads / sh.nKvHeads, hs = sh.headSize, kvDim = sh.kvDim;
  const invSqrt = 1.0 / Math.sqrt(<f64>hs);
  const w = new StaticArray<f64>(sh.seqLen);
  let worst: f64 = 0;
  for (let r = 0; r < n; r++) {
    const slot = getI32(slots, r), pos = getI32(positions, r);
    for (let h = 0; h < sh.nHeads; h++) {
      const kvh = h / group;
      let m = -Infinity;
      for (let t = 0; t <= pos; t++) {
        const base = (slot * sh.seqLen + t) * kvDim + kvh * hs;
        let s: f64 = 0;
        for (let k = 0; k < hs; k++) s += <f64>getF32(q, r * sh.dim + h * hs + k) * <f64>getF32(kc, base + k);
        w[t] = s * invSqrt;
        m = Math.max(m, w[t]);
      }
      let sum: f64 = 0;
      for (let t = 0; t <= pos; t++) { w[t] = Math.exp(w[t] - m); sum += w[t]; }
      for (let k = 0; k < hs; k++) {
        let o: f64 = 0;
        for (let t = 0; t <= pos; t++) o += w[t] / sum * <f64>getF32(vc, (slot * sh.seqLen + t) * kvDim + kvh * hs + k);
        const e = relErr(<f64>getF32(out, r * sh.dim + h * hs + k), o);
        worst = worse(worst, e);
      }
    }
  }
  return worst;
}

/**
 * n rows at the given (slot, pos); the cache is random everywhere (so reading a wrong slot or a position beyond
 * pos changes the result). q is scaled by qAmp to make the softmax peaky (qAmp 3) or flat (qAmp 0.1).
 */
function runCase(rng: Rng, sh: Shape, slotList: i32[], posList: i32[], qAmp: f64): f64 {
  const n = slotList.length;
  const q = allocF32(n * sh.dim), out = allocF32(n * sh.dim + 4);
  const kc = allocF32(sh.cacheFloats), vc = allocF32(sh.cacheFloats), scores = allocF32(attentionScratchFloats(sh.seqLen));
  const slots = allocI32(n), positions = allocI32(n);
  fillUniform(q, n * sh.dim, rng, -qAmp, qAmp);
  fillUniform(kc, sh.cacheFloats, rng);
  fillUniform(vc, sh.cacheFloats, rng);
  fillConst(out, n * sh.dim, NaN);
  fillConst(out + (<usize>(n * sh.dim) << 2), 4, 99);
  fillConst(scores, attentionScratchFloats(sh.seqLen), NaN);
  for (let r = 0; r < n; r++) { setI32(slots, r, slotList[r]); setI32(positions, r, posList[r]); }

  attentionForward(out, q, kc, vc, n, slots, positions, sh.nHeads, sh.nKvHeads, sh.headSize, sh.seqLen, scores);

  const worst = compare(sh, out, q, kc, vc, n, slots, positions);
  for (let g = 0; g < 4; g++) expect<f32>(getF32(out, n * sh.dim + g)).toBe(99, "wrote past out");
  heap.free(q); heap.free(out); heap.free(kc); heap.free(vc); heap.free(scores); heap.free(slots); heap.free(positions);
  return worst;
}

function describeShape(sh: Shape): string {
  return `nHeads=${sh.nHeads} nKvHeads=${sh.nKvHeads} headSize=${sh.headSize} seqLen=${sh.seqLen}`;
}

describe("attentionForward", () => {
  test("GQA 4/2 heads, headSize 6 and 8, several slots and positions, packed rows", () => {
    const rng = new Rng(31);
    const hsList: i32[] = [6, 8];
    for (let i = 0; i < hsList.length; i++) {
      const sh = new Shape(4, 2, hsList[i], 16, 3);
      // rows of three sequences interleaved, incl. pos 0, the last position, and a prefill run of one slot
      const slots: i32[] = [0, 1, 2, 1, 1, 1, 0, 2];
      const poss: i32[] = [0, 5, 15, 6, 7, 8, 1, 3];
      for (let amp = 0; amp < 3; amp++) {
        const qAmp = amp == 0 ? 0.1 : amp == 1 ? 1.0 : 3.0;
        expect<f64>(runCase(rng, sh, slots, poss, qAmp)).toBeLessThanOrEqual(TOL, describeShape(sh) + ` qAmp=${qAmp}`);
      }
    }
  });

  test("other head layouts: MHA, MQA, 6/3 groups, odd head sizes 1, 3, 5, 7", () => {
    const rng = new Rng(32);
    const shapes: Shape[] = [
      new Shape(3, 3, 5, 9, 2), new Shape(4, 1, 7, 11, 2), new Shape(6, 3, 3, 10, 3),
      new Shape(2, 2, 1, 5, 2), new Shape(8, 2, 12, 13, 2),
    ];
    for (let i = 0; i < shapes.length; i++) {
      const sh = shapes[i];
      const slots: i32[] = [1, 0, 1, 0, sh.nSlots - 1];
      const poss: i32[] = [sh.seqLen - 1, 0, 2, 4, 1];
      expect<f64>(runCase(rng, sh, slots, poss, 1.0)).toBeLessThanOrEqual(TOL, describeShape(sh));
    }
  });

  test("model sizes: 6 heads × 48 (dim 288) and GQA 8/4 × 64, positions up to 255", () => {
    const rng = new Rng(33);
    const a = new Shape(6, 6, 48, 256, 2);
    expect<f64>(runCase(rng, a, [0, 1, 1, 0], [255, 0, 100, 37], 1.0)).toBeLessThanOrEqual(TOL, describeShape(a));
    const b = new Shape(8, 4, 64, 128, 2);
    expect<f64>(runCase(rng, b, [1, 0, 1], [127, 64, 3], 1.0)).toBeLessThanOrEqual(TOL, describeShape(b));
  });

  test("a row never reads another slot or positions beyond its own (NaN / huge values there)", () => {
    const rng = new Rng(34);
    const sh = new Shape(4, 2, 6, 12, 4);
    const slotList: i32[] = [2, 0, 3, 1];
    const posList: i32[] = [4, 0, 11, 7];
    for (let poison = 0; poison < 2; poison++) {
      const bad: f32 = poison == 0 ? NaN : 1e30;
      const n = slotList.length;
      const q = allocF32(n * sh.dim), out = allocF32(n * sh.dim);
      const kc = allocF32(sh.cacheFloats), vc = allocF32(sh.cacheFloats), scores = allocF32(attentionScratchFloats(sh.seqLen));
      const slots = allocI32(n), positions = allocI32(n);
      fillUniform(q, n * sh.dim, rng);
      fillConst(kc, sh.cacheFloats, bad);
      fillConst(vc, sh.cacheFloats, bad);
      for (let r = 0; r < n; r++) {
        setI32(slots, r, slotList[r]); setI32(positions, r, posList[r]);
        // only (slot, 0..pos) holds data; everything else (other slots, t > pos) is poison
        const start = slotList[r] * sh.seqLen * sh.kvDim;
        fillUniform(kc + (<usize>start << 2), (posList[r] + 1) * sh.kvDim, rng);
        fillUniform(vc + (<usize>start << 2), (posList[r] + 1) * sh.kvDim, rng);
      }
      attentionForward(out, q, kc, vc, n, slots, positions, sh.nHeads, sh.nKvHeads, sh.headSize, sh.seqLen, scores);
      expect<bool>(allFinite(out, n * sh.dim)).toBe(true, poison == 0 ? "NaN leaked in" : "huge value leaked in");
      expect<f64>(compare(sh, out, q, kc, vc, n, slots, positions)).toBeLessThanOrEqual(TOL);
      heap.free(q); heap.free(out); heap.free(kc); heap.free(vc); heap.free(scores); heap.free(slots); heap.free(positions);
    }
  });

  test("pos 0 copies V[slot, 0] of the row's kv head exactly; batched rows equal single rows bit for bit", () => {
    const rng = new Rng(35);
    const sh = new Shape(4, 2, 6, 8, 2);
    const n = 3;
    const q = allocF32(n * sh.dim), out = allocF32(n * sh.dim), one = allocF32(sh.dim);
    const kc = allocF32(sh.cacheFloats), vc = allocF32(sh.cacheFloats), scores = allocF32(attentionScratchFloats(sh.seqLen));
    const slots = allocI32(n), positions = allocI32(n);
    fillUniform(q, n * sh.dim, rng, -3, 3);
    fillUniform(kc, sh.cacheFloats, rng);
    fillUniform(vc, sh.cacheFloats, rng);
    setI32(slots, 0, 1); setI32(positions, 0, 0);
    setI32(slots, 1, 0); setI32(positions, 1, 7);
    setI32(slots, 2, 1); setI32(positions, 2, 5);
    attentionForward(out, q, kc, vc, n, slots, positions, sh.nHeads, sh.nKvHeads, sh.headSize, sh.seqLen, scores);
    // row 0: a single position has weight exactly 1
    for (let h = 0; h < sh.nHeads; h++) {
      for (let k = 0; k < sh.headSize; k++) {
        const want = getF32(vc, (1 * sh.seqLen + 0) * sh.kvDim + (h / 2) * sh.headSize + k);
        expect<u32>(bits(getF32(out, h * sh.headSize + k))).toBe(bits(want));
      }
    }
    for (let r = 0; r < n; r++) {
      attentionForward(one, q + (<usize>(r * sh.dim) << 2), kc, vc, 1, slots + (<usize>r << 2), positions + (<usize>r << 2),
        sh.nHeads, sh.nKvHeads, sh.headSize, sh.seqLen, scores);
      for (let k = 0; k < sh.dim; k++) expect<u32>(bits(getF32(one, k))).toBe(bits(getF32(out, r * sh.dim + k)));
    }
    heap.free(q); heap.free(out); heap.free(one); heap.free(kc); heap.free(vc); heap.free(scores); heap.free(slots); heap.free(positions);
  });
});
