// causalAttentionForward / causalAttentionBackward (assembly/kernels/causal-attention.ts) on one whole sequence:
// rows 0..len−1 at positions 0..len−1, query head h on KV head h / (nHeads / nKvHeads), s_t = q·k_t / sqrt(headSize)
// over t ≤ the row's position, P = softmax(s), out = Σ_t P_t·v_t.
// Forward against an f64 scalar reference (relative error ≤ 1e-5); backward (dq written, dk and dv added) against
// central finite differences of that reference for L = Σ dOut ⊙ out, per element error ≤ GRAD_TOL (support/gradcheck).
// Rows sit rowBytes apart (wider than a row, so the kernels must use the stride) and KV rows kvRowBytes apart.
// Also checked: the probabilities kept for backward (row i: e up to i, then 0 to the next multiple of 4, and 1/Σe,
// with P = e/Σe), no write past any buffer or the scratch, and KV rows past len never read (they hold NaN).
import { causalAttentionForward, causalAttentionBackward, causalProbsFloats, causalScratchFloats } from "../../assembly/kernels/causal-attention";
import { Rng, allocF32, getF32, fillConst, relErr, allFinite } from "./support/ref";
import {
  GRAD_TOL, H_REL, randomF64, writeF32, readF64, addedF64, maxAbs, sampleIndices, centralDiffs, gradError, worse, Worst,
} from "./support/gradcheck";

const GUARD = 8;
const SENTINEL: f32 = 1357.75;
const FWD_TOL: f64 = 1e-5;
const ROW_PAD = 3;   // floats between the end of a q/out row and the next row
const KV_PAD = 5;    // likewise for k/v rows
const KV_SPARE = 2;  // rows past len in k and v (NaN: never read)
const worstSeen = new Worst();

class Shape {
  constructor(public nHeads: i32, public nKvHeads: i32, public headSize: i32, public len: i32) {}
  get dim(): i32 { return this.nHeads * this.headSize; }
  get kvDim(): i32 { return this.nKvHeads * this.headSize; }
  get row(): i32 { return this.dim + ROW_PAD; }
  get kvRow(): i32 { return this.kvDim + KV_PAD; }
  toString(): string {
    return `nHeads=${this.nHeads} nKvHeads=${this.nKvHeads} headSize=${this.headSize} len=${this.len}`;
  }
}

// ---- f64 reference over the strided layouts (padding entries are never read) ----
let gShape = new Shape(1, 1, 1, 1);
let gQ = new StaticArray<f64>(0);
let gK = new StaticArray<f64>(0);
let gV = new StaticArray<f64>(0);
let gDOut = new StaticArray<f64>(0);
let gP = new StaticArray<f64>(0);
let gO = new StaticArray<f64>(0);

/** gP = probabilities and gO = output of (row i, head h). */
function headRef(i: i32, h: i32): void {
  const sh = gShape, hs = sh.headSize;
  const g = h / (sh.nHeads / sh.nKvHeads);
  const scale = 1.0 / Math.sqrt(<f64>hs);
  let m = -Infinity;
  for (let t = 0; t <= i; t++) {
    let s: f64 = 0;
    for (let d = 0; d < hs; d++) s += gQ[i * sh.row + h * hs + d] * gK[t * sh.kvRow + g * hs + d];
    gP[t] = s * scale;
    if (gP[t] > m) m = gP[t];
  }
  let sum: f64 = 0;
  for (let t = 0; t <= i; t++) { gP[t] = Math.exp(gP[t] - m); sum += gP[t]; }
  for (let t = 0; t <= i; t++) gP[t] /= sum;
  for (let d = 0; d < hs; d++) gO[d] = 0;
  for (let t = 0; t <= i; t++) for (let d = 0; d < hs; d++) gO[d] += gP[t] * gV[t * sh.kvRow + g * hs + d];
}

function lossRef(): f64 {
  const sh = gShape;
  let l: f64 = 0;
  for (let i = 0; i < sh.len; i++) {
    for (let h = 0; h < sh.nHeads; h++) {
      headRef(i, h);
      for (let d = 0; d < sh.headSize; d++) l += gDOut[i * sh.row + h * sh.headSize + d] * gO[d];
    }
  }
  return l;
}

function guardOk(p: usize, from: i32): bool {
  for (let g = 0; g < GUARD; g++) if (getF32(p, from + g) != SENTINEL) return false;
  return true;
}

/** Indices of the real (non-padding) entries of a strided buffer of rows × width floats, rows `stride` apart. */
function realIndices(rows: i32, width: i32, stride: i32): i32[] {
  const out = new Array<i32>();
  for (let r = 0; r < rows; r++) for (let c = 0; c < width; c++) out.push(r * stride + c);
  return out;
}

/** Picks at most limit entries of all (always the first and last). */
function pick(rng: Rng, all: i32[], limit: i32): i32[] {
  const chosen = sampleIndices(rng, all.length, limit);
  const out = new Array<i32>(chosen.length);
  for (let j = 0; j < chosen.length; j++) out[j] = all[chosen[j]];
  return out;
}

/** One case: forward checks, then the FD check of dq, dk, dv; returns the worst gradient error. */
function runCase(rng: Rng, sh: Shape, qAmp: f64, limit: i32 = 1 << 30): f64 {
  const len = sh.len, qFloats = len * sh.row, kvFloats = (len + KV_SPARE) * sh.kvRow;
  gShape = sh;
  gP = new StaticArray<f64>(len);
  gO = new StaticArray<f64>(sh.headSize);
  gQ = randomF64(rng, qFloats, -qAmp, qAmp);
  gK = randomF64(rng, kvFloats);
  gV = randomF64(rng, kvFloats);
  gDOut = randomF64(rng, qFloats);
  for (let i = len * sh.kvRow; i < kvFloats; i++) { gK[i] = NaN; gV[i] = NaN; }
  const q = allocF32(qFloats), k = allocF32(kvFloats), v = allocF32(kvFloats), dOut = allocF32(qFloats);
  const out = allocF32(qFloats + GUARD), dq = allocF32(qFloats + GUARD);
  const dk = allocF32(kvFloats + GUARD), dv = allocF32(kvFloats + GUARD);
  const probFloats = causalProbsFloats(len, sh.nHeads), scratchFloats = causalScratchFloats(len, sh.headSize);
  const probs = allocF32(probFloats + GUARD), scratch = allocF32(scratchFloats + GUARD);
  writeF32(q, gQ); writeF32(k, gK); writeF32(v, gV); writeF32(dOut, gDOut);
  fillConst(out, qFloats, NaN);
  fillConst(probs, probFloats, NaN);
  fillConst(scratch, scratchFloats, NaN);
  fillConst(out + (<usize>qFloats << 2), GUARD, SENTINEL);
  fillConst(probs + (<usize>probFloats << 2), GUARD, SENTINEL);
  fillConst(scratch + (<usize>scratchFloats << 2), GUARD, SENTINEL);
  const rowBytes = <usize>sh.row << 2, kvRowBytes = <usize>sh.kvRow << 2;

  causalAttentionForward(out, probs, q, k, v, len, rowBytes, kvRowBytes, sh.nHeads, sh.nKvHeads, sh.headSize, scratch);
  expect<bool>(guardOk(out, qFloats)).toBe(true, "forward wrote past out");
  expect<bool>(guardOk(probs, probFloats)).toBe(true, "forward wrote past the probabilities");
  expect<bool>(guardOk(scratch, scratchFloats)).toBe(true, "forward wrote past the scratch");
  let fwd: f64 = 0, probErr: f64 = 0;
  const lp = (len + 3) & ~3;
  for (let i = 0; i < len; i++) {
    for (let h = 0; h < sh.nHeads; h++) {
      headRef(i, h);
      for (let d = 0; d < sh.headSize; d++) fwd = worse(fwd, relErr(<f64>getF32(out, i * sh.row + h * sh.headSize + d), gO[d]));
      const rowAt = (h * len + i) * lp, invSum = <f64>getF32(probs, sh.nHeads * len * lp + h * len + i);
      for (let t = 0; t <= i; t++) probErr = worse(probErr, Math.abs(<f64>getF32(probs, rowAt + t) * invSum - gP[t]));
      for (let t = i + 1; t < ((i + 4) & ~3); t++) if (getF32(probs, rowAt + t) != 0) probErr = Infinity;
    }
  }
  expect<f64>(fwd).toBeLessThanOrEqual(FWD_TOL, "forward vs f64 reference, " + sh.toString());
  expect<f64>(probErr).toBeLessThanOrEqual(1e-6, "kept probabilities (e/Σe up to the diagonal, then 0), " + sh.toString());

  fillConst(dq, qFloats, NaN);
  const dk0 = randomF64(rng, kvFloats), dv0 = randomF64(rng, kvFloats);
  writeF32(dk, dk0); writeF32(dv, dv0);
  fillConst(dq + (<usize>qFloats << 2), GUARD, SENTINEL);
  fillConst(dk + (<usize>kvFloats << 2), GUARD, SENTINEL);
  fillConst(dv + (<usize>kvFloats << 2), GUARD, SENTINEL);
  fillConst(scratch, scratchFloats, NaN);

  causalAttentionBackward(dq, dk, dv, dOut, q, k, v, out, probs, len, rowBytes, kvRowBytes, sh.nHeads, sh.nKvHeads, sh.headSize, scratch);
  expect<bool>(guardOk(dq, qFloats)).toBe(true, "backward wrote past dq");
  expect<bool>(guardOk(dk, kvFloats)).toBe(true, "backward wrote past dk");
  expect<bool>(guardOk(dv, kvFloats)).toBe(true, "backward wrote past dv");
  expect<bool>(guardOk(scratch, scratchFloats)).toBe(true, "backward wrote past the scratch");
  // Padding entries and the rows past len keep their bits (dk/dv) or their NaN (dq: not written there).
  let touched = 0;
  for (let i = 0; i < kvFloats; i++) {
    if (i < len * sh.kvRow && i % sh.kvRow < sh.kvDim) continue;
    if (getF32(dk, i) != <f32>dk0[i] || getF32(dv, i) != <f32>dv0[i]) touched++;
  }
  for (let i = 0; i < qFloats; i++) if (i % sh.row >= sh.dim && !isNaN(getF32(dq, i))) touched++;
  expect<i32>(touched).toBe(0, "wrote to padding or to rows past len, " + sh.toString());

  const realQ = realIndices(len, sh.dim, sh.row), realKv = realIndices(len, sh.kvDim, sh.kvRow);
  const gotQ = readF64(dq, qFloats), gotK = addedF64(dk, dk0), gotV = addedF64(dv, dv0);
  let finite = true;
  for (let j = 0; j < realQ.length; j++) if (!isFinite(gotQ[realQ[j]])) finite = false;
  expect<bool>(finite).toBe(true, "dq not finite (not written, or NaN rows past len were read)");
  const iq = pick(rng, realQ, limit), ikv = pick(rng, realKv, limit);
  const fdQ = centralDiffs(gQ, iq, lossRef, H_REL * maxAbs(gQ));
  const fdK = centralDiffs(gK, ikv, lossRef, H_REL * 1.0);
  const fdV = centralDiffs(gV, ikv, lossRef, H_REL * 1.0);
  const e = worse(worse(gradError(gotQ, fdQ, iq), gradError(gotK, fdK, ikv)), gradError(gotV, fdV, ikv));
  worstSeen.add(e);
  heap.free(q); heap.free(k); heap.free(v); heap.free(dOut); heap.free(out); heap.free(dq); heap.free(dk); heap.free(dv);
  heap.free(probs); heap.free(scratch);
  return e;
}

describe("causal attention of a whole sequence (forward vs f64, backward vs finite differences)", () => {
  test("GQA 4 heads / 2 kv heads, headSize 8 and 6, lengths 1 to 9 (partial last blocks)", () => {
    const rng = new Rng(7101);
    const hsList: i32[] = [8, 6];
    for (let a = 0; a < hsList.length; a++) {
      for (let len = 1; len <= 9; len++) {
        const sh = new Shape(4, 2, hsList[a], len);
        expect<f64>(runCase(rng, sh, 1.0)).toBeLessThanOrEqual(GRAD_TOL, sh.toString());
      }
    }
  });

  test("flat and peaky softmax (q in ±0.3 and ±3), 8 heads / 4 kv heads × 8 (stories260K), len 13", () => {
    const rng = new Rng(7102);
    const sh = new Shape(8, 4, 8, 13);
    expect<f64>(runCase(rng, sh, 0.3)).toBeLessThanOrEqual(GRAD_TOL, sh.toString() + " flat");
    expect<f64>(runCase(rng, sh, 3.0)).toBeLessThanOrEqual(GRAD_TOL, sh.toString() + " peaky");
  });

  test("other head layouts: MHA 3/3 × 5, MQA 4/1 × 7, 6/3 × 3, 2/2 × 1, 8/2 × 12", () => {
    const rng = new Rng(7103);
    const shapes: Shape[] = [new Shape(3, 3, 5, 10), new Shape(4, 1, 7, 8), new Shape(6, 3, 3, 11), new Shape(2, 2, 1, 6), new Shape(8, 2, 12, 7)];
    for (let i = 0; i < shapes.length; i++) {
      expect<f64>(runCase(rng, shapes[i], 1.0)).toBeLessThanOrEqual(GRAD_TOL, shapes[i].toString());
    }
  });

  test("model-like: 6 heads × 48 (15M) len 29, and 4/2 × 8 len 131 (keys past one 128-key block), sampled elements", () => {
    const rng = new Rng(7104);
    const a = new Shape(6, 6, 48, 29);
    expect<f64>(runCase(rng, a, 1.0, 24)).toBeLessThanOrEqual(GRAD_TOL, a.toString());
    const b = new Shape(4, 2, 8, 131);
    expect<f64>(runCase(rng, b, 2.0, 12)).toBeLessThanOrEqual(GRAD_TOL, b.toString());
  });

  test("worst relative gradient error (logged)", () => {
    log<string>(`causal attention backward: worst FD error ${worstSeen.value}`);
    expect<f64>(worstSeen.value).toBeLessThanOrEqual(GRAD_TOL);
  });
});
