// Gradient check of attentionBackward(dq, dKCache, dVCache, dOut, q, kCache, vCache, n, slots, positions, nHeads,
// nKvHeads, headSize, seqLen, scratch) against central finite differences of an f64 scalar forward of
// attentionForward: for row r (cache slot slots[r], position pos = positions[r]) and query head h, kv head
// h / (nHeads / nKvHeads), s_t = q·k_t / sqrt(headSize) over t = 0..pos of the row's slot, P = softmax(s),
// out = Σ_t P_t·v_t; cache layout [slot][pos][kvDim]. L = Σ dOut ⊙ out with a random dOut.
// FD over q, and over every cache element some row can see (slot used by a row, t ≤ the largest pos of that
// slot's rows); on the bigger cases a random sample of ≥ 96 elements per input.
// Error measure: per element |g − fd| / max(|fd|, 1e-2·max|fd|) (support/gradcheck.ts), bound 1e-3.
// Contract checked besides the values: dq is written (starts as NaN), dK/dV are ADDED (start random; the part
// added is result − before); every other cache row (unused slots, t beyond the slot's largest pos) keeps its
// exact bits; nothing is written past dq, the caches or the attentionScratchFloats(seqLen) scratch floats.
import { attentionForward, attentionBackward, attentionScratchFloats } from "../../assembly/kernels/attention";
import { Rng, allocF32, allocI32, getF32, setF32, setI32, fillConst, relErr, bits, allFinite } from "./support/ref";
import {
  GRAD_TOL, H_REL, randomF64, writeF32, readF64, addedF64, maxAbs, sampleIndices, centralDiffs, gradError, worse, Worst,
} from "./support/gradcheck";

const GUARD = 8;
const SENTINEL: f32 = 2468.25;
const FWD_TOL: f64 = 1e-5;
const worstSeen = new Worst();

class Shape {
  constructor(
    public nHeads: i32, public nKvHeads: i32, public headSize: i32, public seqLen: i32, public nSlots: i32,
  ) {}
  get dim(): i32 { return this.nHeads * this.headSize; }
  get kvDim(): i32 { return this.nKvHeads * this.headSize; }
  get cacheFloats(): i32 { return this.nSlots * this.seqLen * this.kvDim; }
  toString(): string {
    return `nHeads=${this.nHeads} nKvHeads=${this.nKvHeads} headSize=${this.headSize} seqLen=${this.seqLen} slots=${this.nSlots}`;
  }
}

// ---- f64 reference ----
let gShape = new Shape(1, 1, 1, 1, 1);
let gQ = new StaticArray<f64>(0);
let gK = new StaticArray<f64>(0);
let gV = new StaticArray<f64>(0);
let gDOut = new StaticArray<f64>(0);
let gSlots: i32[] = [];
let gPos: i32[] = [];
let gP = new StaticArray<f64>(0); // probabilities of one (row, head)
let gO = new StaticArray<f64>(0); // output of one (row, head)

/** gO = attention output of (row r, head h). */
function headRef(r: i32, h: i32): void {
  const sh = gShape, hs = sh.headSize, kvDim = sh.kvDim;
  const kvh = h / (sh.nHeads / sh.nKvHeads);
  const slot = gSlots[r], pos = gPos[r];
  const scale = 1.0 / Math.sqrt(<f64>hs);
  let m = -Infinity;
  for (let t = 0; t <= pos; t++) {
    const base = (slot * sh.seqLen + t) * kvDim + kvh * hs;
    let s: f64 = 0;
    for (let k = 0; k < hs; k++) s += gQ[r * sh.dim + h * hs + k] * gK[base + k];
    gP[t] = s * scale;
    if (gP[t] > m) m = gP[t];
  }
  let sum: f64 = 0;
  for (let t = 0; t <= pos; t++) { gP[t] = Math.exp(gP[t] - m); sum += gP[t]; }
  for (let k = 0; k < hs; k++) gO[k] = 0;
  for (let t = 0; t <= pos; t++) {
    const base = (slot * sh.seqLen + t) * kvDim + kvh * hs;
    const p = gP[t] / sum;
    for (let k = 0; k < hs; k++) gO[k] += p * gV[base + k];
  }
}

function lossRef(): f64 {
  const sh = gShape;
  let l: f64 = 0;
  for (let r = 0; r < gSlots.length; r++) {
    for (let h = 0; h < sh.nHeads; h++) {
      headRef(r, h);
      for (let k = 0; k < sh.headSize; k++) l += gDOut[r * sh.dim + h * sh.headSize + k] * gO[k];
    }
  }
  return l;
}

/** reach[slot] = largest position of the slot's rows (−1: no row uses the slot). */
function reachOf(sh: Shape, slotList: i32[], posList: i32[]): i32[] {
  const reach = new Array<i32>(sh.nSlots);
  for (let s = 0; s < sh.nSlots; s++) reach[s] = -1;
  for (let r = 0; r < slotList.length; r++) reach[slotList[r]] = max(reach[slotList[r]], posList[r]);
  return reach;
}

function visible(sh: Shape, reach: i32[], i: i32): bool {
  const row = i / sh.kvDim;
  return row % sh.seqLen <= reach[row / sh.seqLen];
}

function guardOk(p: usize, from: i32): bool {
  for (let g = 0; g < GUARD; g++) if (getF32(p, from + g) != SENTINEL) return false;
  return true;
}

/**
 * One case: n = slotList.length rows; q uniform in ±qAmp (3: peaky softmax, 0.3: flat), K/V uniform in ±1 where
 * visible and `hidden` elsewhere (a random value, or NaN/1e30 poison that must not be read). Returns the worst
 * FD error over dq, dK, dV (every element when there are ≤ limit of them, else `limit` sampled ones).
 */
function runCase(rng: Rng, sh: Shape, slotList: i32[], posList: i32[], qAmp: f64, hidden: f32 = 0, limit: i32 = 1 << 30): f64 {
  const n = slotList.length, dim = sh.dim, cf = sh.cacheFloats;
  gShape = sh; gSlots = slotList; gPos = posList;
  gP = new StaticArray<f64>(sh.seqLen);
  gO = new StaticArray<f64>(sh.headSize);
  gQ = randomF64(rng, n * dim, -qAmp, qAmp);
  gK = randomF64(rng, cf);
  gV = randomF64(rng, cf);
  gDOut = randomF64(rng, n * dim);
  const reach = reachOf(sh, slotList, posList);
  if (hidden != 0) {
    for (let i = 0; i < cf; i++) if (!visible(sh, reach, i)) { gK[i] = <f64>hidden; gV[i] = <f64>hidden; }
  }
  const q = allocF32(n * dim), kc = allocF32(cf), vc = allocF32(cf), dOut = allocF32(n * dim), out = allocF32(n * dim);
  const dq = allocF32(n * dim + GUARD), dK = allocF32(cf + GUARD), dV = allocF32(cf + GUARD);
  const scratchFloats = attentionScratchFloats(sh.seqLen);
  const scratch = allocF32(scratchFloats + GUARD);
  const slots = allocI32(n), positions = allocI32(n);
  for (let r = 0; r < n; r++) { setI32(slots, r, slotList[r]); setI32(positions, r, posList[r]); }
  writeF32(q, gQ); writeF32(kc, gK); writeF32(vc, gV); writeF32(dOut, gDOut);

  // the kernel's forward is the reference function
  const fwdScores = allocF32(attentionScratchFloats(sh.seqLen));
  attentionForward(out, q, kc, vc, n, slots, positions, sh.nHeads, sh.nKvHeads, sh.headSize, sh.seqLen, fwdScores);
  let fwd: f64 = 0;
  for (let r = 0; r < n; r++) {
    for (let h = 0; h < sh.nHeads; h++) {
      headRef(r, h);
      for (let k = 0; k < sh.headSize; k++) fwd = worse(fwd, relErr(<f64>getF32(out, r * dim + h * sh.headSize + k), gO[k]));
    }
  }
  expect<f64>(fwd).toBeLessThanOrEqual(FWD_TOL, "attentionForward vs f64 forward, " + sh.toString());

  fillConst(dq, n * dim, NaN);
  const dK0 = randomF64(rng, cf), dV0 = randomF64(rng, cf);
  writeF32(dK, dK0); writeF32(dV, dV0);
  fillConst(dq + (<usize>(n * dim) << 2), GUARD, SENTINEL);
  fillConst(dK + (<usize>cf << 2), GUARD, SENTINEL);
  fillConst(dV + (<usize>cf << 2), GUARD, SENTINEL);
  fillConst(scratch, scratchFloats, NaN);
  fillConst(scratch + (<usize>scratchFloats << 2), GUARD, SENTINEL);

  attentionBackward(dq, dK, dV, dOut, q, kc, vc, n, slots, positions, sh.nHeads, sh.nKvHeads, sh.headSize, sh.seqLen, scratch);

  expect<bool>(guardOk(dq, n * dim)).toBe(true, "wrote past dq");
  expect<bool>(guardOk(dK, cf)).toBe(true, "wrote past dKCache");
  expect<bool>(guardOk(dV, cf)).toBe(true, "wrote past dVCache");
  expect<bool>(guardOk(scratch, scratchFloats)).toBe(true, "wrote past scratch (attentionScratchFloats(seqLen) floats)");
  // rows no query can see keep their exact bits; the visible ones are compared below
  let touched = 0;
  const visibleIdx = new Array<i32>();
  for (let i = 0; i < cf; i++) {
    if (visible(sh, reach, i)) { visibleIdx.push(i); continue; }
    if (bits(getF32(dK, i)) != bits(<f32>dK0[i]) || bits(getF32(dV, i)) != bits(<f32>dV0[i])) touched++;
  }
  expect<i32>(touched).toBe(0, "dK/dV changed in another slot or beyond the slot's positions, " + sh.toString());
  expect<bool>(allFinite(dq, n * dim)).toBe(true, "dq not finite (not written, or hidden cache rows were read)");

  // Training's path: the probabilities kept by the forward pass replace the recomputation; same gradients.
  const probOffsets = allocI32(n);
  let probFloats = 0;
  for (let r = 0; r < n; r++) { setI32(probOffsets, r, probFloats); probFloats += sh.nHeads * (posList[r] + 1); }
  const saved = allocF32(probFloats + GUARD);
  fillConst(saved + (<usize>probFloats << 2), GUARD, SENTINEL);
  const out2 = allocF32(n * dim);
  attentionForward(out2, q, kc, vc, n, slots, positions, sh.nHeads, sh.nKvHeads, sh.headSize, sh.seqLen, fwdScores, saved, probOffsets);
  expect<bool>(guardOk(saved, probFloats)).toBe(true, "wrote past the saved probabilities");
  const dq2 = allocF32(n * dim), dK2 = allocF32(cf), dV2 = allocF32(cf);
  writeF32(dK2, dK0); writeF32(dV2, dV0);
  attentionBackward(dq2, dK2, dV2, dOut, q, kc, vc, n, slots, positions, sh.nHeads, sh.nKvHeads, sh.headSize, sh.seqLen, scratch, saved, probOffsets);
  let savedDiff: f64 = 0, scale: f64 = 0;
  for (let i = 0; i < n * dim; i++) {
    savedDiff = worse(savedDiff, Math.abs(<f64>getF32(dq2, i) - <f64>getF32(dq, i)));
    scale = Math.max(scale, Math.abs(<f64>getF32(dq, i)));
  }
  for (let i = 0; i < cf; i++) {
    savedDiff = worse(savedDiff, Math.abs(<f64>getF32(dK2, i) - <f64>getF32(dK, i)));
    savedDiff = worse(savedDiff, Math.abs(<f64>getF32(dV2, i) - <f64>getF32(dV, i)));
    scale = Math.max(scale, Math.max(Math.abs(<f64>getF32(dK, i) - dK0[i]), Math.abs(<f64>getF32(dV, i) - dV0[i])));
  }
  expect<f64>(savedDiff).toBeLessThanOrEqual(1e-5 * scale + 1e-30, "saved probabilities vs recomputed, " + sh.toString());
  heap.free(probOffsets); heap.free(saved); heap.free(out2); heap.free(dq2); heap.free(dK2); heap.free(dV2);

  const gotQ = readF64(dq, n * dim), gotK = addedF64(dK, dK0), gotV = addedF64(dV, dV0);
  const iq = sampleIndices(rng, n * dim, limit);
  const pick = sampleIndices(rng, visibleIdx.length, limit);
  const ikv = new Array<i32>(pick.length);
  for (let j = 0; j < pick.length; j++) ikv[j] = visibleIdx[pick[j]];
  const fdQ = centralDiffs(gQ, iq, lossRef, H_REL * maxAbs(gQ));
  const fdK = centralDiffs(gK, ikv, lossRef, H_REL * 1.0);
  const fdV = centralDiffs(gV, ikv, lossRef, H_REL * 1.0);
  const eq = gradError(gotQ, fdQ, iq), ek = gradError(gotK, fdK, ikv), ev = gradError(gotV, fdV, ikv);
  const e = worse(worse(eq, ek), ev);
  worstSeen.add(e);
  heap.free(q); heap.free(kc); heap.free(vc); heap.free(dOut); heap.free(out); heap.free(dq); heap.free(dK); heap.free(dV);
  heap.free(scratch); heap.free(slots); heap.free(positions); heap.free(fwdScores);
  return e;
}

describe("attentionBackward (finite differences)", () => {
  test("GQA 4 heads / 2 kv heads, headSize 6 and 8, 3 slots (one unused), interleaved rows incl. pos 0", () => {
    const rng = new Rng(5001);
    const hsList: i32[] = [6, 8];
    for (let i = 0; i < hsList.length; i++) {
      const sh = new Shape(4, 2, hsList[i], 11, 4);
      // slot 1: a prefill run 0..4 (dK/dV of a position collect from several rows); slot 0: pos 0 and 1;
      // slot 3: one row at the last position; slot 2: unused (must stay untouched)
      const slots: i32[] = [1, 0, 1, 3, 1, 1, 0, 1];
      const poss: i32[] = [0, 0, 1, 10, 2, 3, 1, 4];
      const amps: f64[] = [0.3, 1.0, 3.0];
      for (let a = 0; a < amps.length; a++) {
        expect<f64>(runCase(rng, sh, slots, poss, amps[a])).toBeLessThanOrEqual(GRAD_TOL, sh.toString() + ` qAmp=${amps[a]}`);
      }
    }
  });

  test("other head layouts: MHA 3/3 × 5, MQA 4/1 × 7, 6/3 × 3, 2/2 × 1, 8/2 × 12", () => {
    const rng = new Rng(5002);
    const shapes: Shape[] = [
      new Shape(3, 3, 5, 9, 2), new Shape(4, 1, 7, 8, 3), new Shape(6, 3, 3, 10, 3),
      new Shape(2, 2, 1, 5, 2), new Shape(8, 2, 12, 6, 2),
    ];
    for (let i = 0; i < shapes.length; i++) {
      const sh = shapes[i];
      const slots: i32[] = [sh.nSlots - 1, 0, 0, 0];
      const poss: i32[] = [sh.seqLen - 1, 0, 3, 2];
      expect<f64>(runCase(rng, sh, slots, poss, 1.0)).toBeLessThanOrEqual(GRAD_TOL, sh.toString());
    }
  });

  test("two rows at the same (slot, pos) and a single row at pos 0 (P = 1: dq = 0, dK = 0, dV = dOut)", () => {
    const rng = new Rng(5003);
    const sh = new Shape(4, 2, 6, 7, 2);
    expect<f64>(runCase(rng, sh, [1, 1, 0], [3, 3, 6], 1.0)).toBeLessThanOrEqual(GRAD_TOL, "same (slot, pos)");
    expect<f64>(runCase(rng, sh, [0], [0], 1.0)).toBeLessThanOrEqual(GRAD_TOL, "pos 0 only");
  });

  test("hidden cache rows (other slots, t > pos) hold NaN or 1e30 and are never read", () => {
    const rng = new Rng(5004);
    const sh = new Shape(4, 2, 8, 9, 3);
    expect<f64>(runCase(rng, sh, [2, 0, 2], [4, 0, 1], 1.0, NaN)).toBeLessThanOrEqual(GRAD_TOL, "NaN poison");
    expect<f64>(runCase(rng, sh, [0, 2, 0], [6, 2, 3], 1.0, 1e30)).toBeLessThanOrEqual(GRAD_TOL, "1e30 poison");
    const sh6 = new Shape(4, 2, 6, 9, 3);
    expect<f64>(runCase(rng, sh6, [1, 1], [0, 5], 2.0, NaN)).toBeLessThanOrEqual(GRAD_TOL, "NaN poison, hs 6");
  });

  test("model-like: 6 heads × 48 and GQA 8/4 × 16, positions up to 63, 96 sampled elements per input", () => {
    const rng = new Rng(5005);
    const a = new Shape(6, 6, 48, 64, 2);
    expect<f64>(runCase(rng, a, [0, 1, 1, 0], [63, 0, 40, 17], 1.0, 0, 96)).toBeLessThanOrEqual(GRAD_TOL, a.toString());
    const b = new Shape(8, 4, 16, 40, 3);
    expect<f64>(runCase(rng, b, [2, 0, 2], [39, 21, 3], 2.0, 0, 96)).toBeLessThanOrEqual(GRAD_TOL, b.toString());
  });

  test("worst relative gradient error (logged)", () => {
    log<string>(`attention backward: worst FD error ${worstSeen.value}`);
    expect<f64>(worstSeen.value).toBeLessThanOrEqual(GRAD_TOL);
  });
});
