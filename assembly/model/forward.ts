import { Model, Workspace } from "./layout";
import { matmulForward, matmulForwardBf16, matmulForwardF16, matmulForwardQ8_0, matmulForwardQ4_K, matmulForwardTransposed } from "../kernels/matmul";
import { F32, BF16, F16, Q8_0, matrixBytes } from "../kernels/weights";
import { transpose } from "../kernels/transpose";
import { rmsnormForward } from "../kernels/rmsnorm";
import { ropeForward } from "../kernels/rope";
import { attentionForward } from "../kernels/attention";
import { causalAttentionForward, causalProbsFloats } from "../kernels/causal-attention";
import { swigluForward } from "../kernels/swiglu";
import { embeddingForwardOf } from "../kernels/embedding";
import { biasForward } from "../kernels/bias";
import { loraForward, LQ, LK, LV, LO, LGATE, LUP, LDOWN } from "./lora";

// The transformer over n packed token rows (ws.tokens / ws.slots / ws.positions), any mix of sequences and
// positions: prefill of many prompts, one decode step of many sequences, or teacher forcing all come here.
// Every row's keys and values are written to its slot's cache before attention, so rows of the same sequence
// in one call see each other causally. A training workspace also keeps each layer's activations (see Workspace).
// Logits are computed only for the nLogitRows rows listed in ws.logitRows (at most ws.maxLogitRows), into ws.logits;
// a scalar-head model (m.wscore != 0) writes one score per listed row there instead (the same final norm, then dim → 1).
export function forwardTokens(m: Model, ws: Workspace, n: i32, nLogitRows: i32): void {
  forwardLayers(m, ws, n);
  if (nLogitRows > 0) classifyRows(m, ws, 0, nLogitRows);
}

/**
 * The embedding and every layer over n rows: ws.x is the last layer's output. kept ≥ 0 (inference): only the rows
 * ws.logitRows[0, kept) are wanted, and the last layer leaves just them, as rows 0…kept − 1 (see layerForward).
 */
export function forwardLayers(m: Model, ws: Workspace, n: i32, kept: i32 = -1): void {
  embeddingForwardOf(ws.x, m.tokenEmbedding, m.embeddingType, ws.tokens, n, m.dim);
  for (let l = 0; l < m.nLayers; l++) layerForward(m, ws, n, l, l == m.nLayers - 1 ? kept : -1);
}

/**
 * Final norm and classifier of the listed rows ws.logitRows[first, first + count) (count ≤ ws.maxLogitRows) into
 * ws.logits rows 0…count − 1: callers run the classifier in chunks, so logits take maxLogitRows rows, not one per
 * token. Chunks start at multiples of 4 rows (maxLogitRows is one), so the matmul tiles every row as one call would:
 * the same bits.
 */
export function classifyRows(m: Model, ws: Workspace, first: i32, count: i32): void {
  const dim = m.dim, dimBytes = <usize>dim << 2;
  // Final norm of the wanted rows only, gathered into xb, then the classifier.
  for (let j = 0; j < count; j++) {
    const r = load<i32>(ws.logitRows + (<usize>(first + j) << 2));
    rmsnormForward(ws.xb + <usize>j * dimBytes, ws.x + <usize>r * dimBytes, m.rmsFinal, 1, dim, m.normEps);
  }
  if (m.wscore != 0) matmulForward(ws.logits, ws.xb, m.wscore, count, dim, 1, false);
  else project(ws, ws.logits, ws.xb, m.wcls, m.wclsType, 0, 0, count, dim, m.vocabSize, false);
}

/**
 * Layer l on the residual stream ws.x (updated in place); a training workspace keeps its input and activations.
 * kept ≥ 0 (inference): only the rows ws.logitRows[0, kept) (ascending) are wanted out of this layer. Keys and values are
 * still computed and cached for all n rows (later rows of their sequences attend to them); then those rows are gathered
 * into rows 0…kept − 1 (gatherRows) and the rest of the layer runs on them alone. Every row's arithmetic is its own
 * (the matmul never mixes rows), so the kept rows get the bits they would in a full layer.
 */
export function layerForward(m: Model, ws: Workspace, n: i32, l: i32, kept: i32 = -1): void {
  const dim = m.dim, hidden = m.hiddenDim, headSize = m.headSize, qDim = m.nHeads * headSize, kvDim = m.nKvHeads * headSize;
  const dimBytes = <usize>dim << 2;
  const L = <usize>l;
  const D = L * ws.layerStride, H = L * ws.layerStrideHidden, Q = L * ws.layerStrideQ;
  const wT: usize = ws.weightsT == 0 ? 0 : layerWeightsT(m, ws, l);
  // Layer l's matrices, each stored as its type says.
  const wq = m.wq + L * matrixBytes(m.wqType, qDim, dim), wk = m.wk + L * matrixBytes(m.wkType, kvDim, dim);
  const wv = m.wv + L * matrixBytes(m.wvType, kvDim, dim), wo = m.wo + L * matrixBytes(m.woType, dim, qDim);
  const w1 = m.w1 + L * matrixBytes(m.w1Type, hidden, dim), w3 = m.w3 + L * matrixBytes(m.w3Type, hidden, dim);
  const w2 = m.w2 + L * matrixBytes(m.w2Type, dim, hidden);
  const normBytes = L * (<usize>headSize << 2);
  // Attention block: keys and values of every row into the cache.
  if (ws.xIn != 0) memory.copy(layerInput(ws, l), ws.x, <usize>n * dimBytes);
  rmsnormForward(ws.xb + D, ws.x, m.rmsAtt + L * dimBytes, n, dim, m.normEps);
  project(ws, ws.k, ws.xb + D, wk, m.wkType, wT, offsetT(m, WK), n, dim, kvDim, false);
  loraForward(m, ws, l, LK, ws.k, ws.xb + D, n, dim, kvDim);
  project(ws, ws.v, ws.xb + D, wv, m.wvType, wT, offsetT(m, WV), n, dim, kvDim, false);
  loraForward(m, ws, l, LV, ws.v, ws.xb + D, n, dim, kvDim);
  if (m.bq != 0) {
    biasForward(ws.k, m.bk + L * (<usize>kvDim << 2), n, kvDim);
    biasForward(ws.v, m.bv + L * (<usize>kvDim << 2), n, kvDim);
  }
  if (m.rmsK != 0) {
    // Per-head RMSNorm of keys (Qwen3): each head is a row of headSize; training keeps the inputs.
    if (ws.kPre != 0) memory.copy(ws.kPre + L * ws.layerStrideKv, ws.k, <usize>n * kvDim << 2);
    rmsnormForward(ws.k, ws.k, m.rmsK + normBytes, n * m.nKvHeads, headSize, m.normEps);
  }
  ropeForward(ws.k, n, kvDim, ws.positions, m.nKvHeads, headSize, m.ropeCos, m.ropeSin);
  const layerCache = layerCacheOffset(m, ws, l);
  storeKeysValues(ws, n, kvDim, m.seqLen, ws.kCache + layerCache, ws.vCache + layerCache);
  // From here on, the kept rows only.
  if (kept >= 0) {
    gatherRows(ws, ws.x, dimBytes, kept);
    gatherRows(ws, ws.xb + D, dimBytes, kept);
    gatherRows(ws, ws.slots, 4, kept);
    gatherRows(ws, ws.positions, 4, kept);
    for (let j = 0; j < kept; j++) store<i32>(ws.logitRows + (<usize>j << 2), j);
    n = kept;
  }
  const rowsBytes = <usize>n * dimBytes;
  // Queries, then attention.
  project(ws, ws.q + Q, ws.xb + D, wq, m.wqType, wT, offsetT(m, WQ), n, dim, qDim, false);
  loraForward(m, ws, l, LQ, ws.q + Q, ws.xb + D, n, dim, qDim);
  if (m.bq != 0) biasForward(ws.q + Q, m.bq + L * (<usize>qDim << 2), n, qDim);
  if (m.rmsQ != 0) {
    if (ws.qPre != 0) memory.copy(ws.qPre + Q, ws.q + Q, <usize>n * qDim << 2);
    rmsnormForward(ws.q + Q, ws.q + Q, m.rmsQ + normBytes, n * m.nHeads, headSize, m.normEps);
  }
  ropeForward(ws.q + Q, n, qDim, ws.positions, m.nHeads, headSize, m.ropeCos, m.ropeSin);
  const qRowBytes = <usize>qDim << 2;
  if (ws.attProbs != 0) {
    // Training: the rows are whole sequences (see trainStep), each attending over itself.
    let probs = layerProbs(ws, l);
    for (let r0 = 0; r0 < n;) {
      const r1 = sequenceEnd(ws, r0, n), len = r1 - r0;
      const cache = layerCache + cacheRow(ws, r0, m.seqLen, <usize>kvDim << 2);
      causalAttentionForward(ws.attOut + Q + <usize>r0 * qRowBytes, probs, ws.q + Q + <usize>r0 * qRowBytes, ws.kCache + cache,
        ws.vCache + cache, len, qRowBytes, <usize>kvDim << 2, m.nHeads, m.nKvHeads, headSize, ws.attScratch);
      probs += <usize>causalProbsFloats(len, m.nHeads) << 2;
      r0 = r1;
    }
  } else {
    attentionForward(ws.attOut + Q, ws.q + Q, ws.kCache + layerCache, ws.vCache + layerCache, n, ws.slots, ws.positions,
      m.nHeads, m.nKvHeads, headSize, m.seqLen, ws.scores);
  }
  project(ws, ws.x, ws.attOut + Q, wo, m.woType, wT, offsetT(m, WO), n, qDim, dim, true);
  loraForward(m, ws, l, LO, ws.x, ws.attOut + Q, n, qDim, dim);
  // Feed-forward block.
  if (ws.xMid != 0) memory.copy(ws.xMid + D, ws.x, rowsBytes);
  rmsnormForward(ws.xbFfn + D, ws.x, m.rmsFfn + L * dimBytes, n, dim, m.normEps);
  project(ws, ws.h1 + H, ws.xbFfn + D, w1, m.w1Type, wT, offsetT(m, W1), n, dim, hidden, false);
  loraForward(m, ws, l, LGATE, ws.h1 + H, ws.xbFfn + D, n, dim, hidden);
  project(ws, ws.h3 + H, ws.xbFfn + D, w3, m.w3Type, wT, offsetT(m, W3), n, dim, hidden, false);
  loraForward(m, ws, l, LUP, ws.h3 + H, ws.xbFfn + D, n, dim, hidden);
  swigluForward(ws.gated + H, ws.h1 + H, ws.h3 + H, n * hidden, ws.sigmoid == 0 ? 0 : ws.sigmoid + H);
  project(ws, ws.x, ws.gated + H, w2, m.w2Type, wT, offsetT(m, W2), n, hidden, dim, true);
  loraForward(m, ws, l, LDOWN, ws.x, ws.gated + H, n, hidden, dim);
}

/** Rows ws.logitRows[j] (ascending, so never overwritten before read) of `rows` (rowBytes each) moved to rows j < count. */
function gatherRows(ws: Workspace, rows: usize, rowBytes: usize, count: i32): void {
  for (let j = 0; j < count; j++) {
    const r = load<i32>(ws.logitRows + (<usize>j << 2));
    if (r != j) memory.copy(rows + <usize>j * rowBytes, rows + <usize>r * rowBytes, rowBytes);
  }
}

/**
 * out (=|+=) x·wᵀ, w stored as wType (kernels/weights.ts), or from the transposed float32 copy at wT + offset when the
 * workspace keeps one (wT != 0: training, whose weights are float32). The one place that dispatches on the weights' type.
 */
// @ts-ignore: decorator
@inline export function project(ws: Workspace, out: usize, x: usize, w: usize, wType: i32, wT: usize, offset: usize, n: i32, inDim: i32, outDim: i32, accumulate: bool): void {
  if (wT != 0) matmulForwardTransposed(out, x, wT + offset, n, inDim, outDim, accumulate);
  else if (wType == F32) matmulForward(out, x, w, n, inDim, outDim, accumulate);
  else if (wType == BF16) matmulForwardBf16(out, x, w, n, inDim, outDim, accumulate, ws.weightRows);
  else if (wType == F16) matmulForwardF16(out, x, w, n, inDim, outDim, accumulate, ws.weightRows);
  else if (wType == Q8_0) matmulForwardQ8_0(out, x, w, n, inDim, outDim, accumulate, ws.weightRows);
  else matmulForwardQ4_K(out, x, w, n, inDim, outDim, accumulate, ws.weightRows);
}

// ws.weightsT holds, per layer, the transposes of these matrices one after the other.
const WQ = 0, WK = 1, WV = 2, WO = 3, W1 = 4, W3 = 5, W2 = 6, LAYER_END = 7;

/** Byte offset of matrix `which` within a layer's part of ws.weightsT (LAYER_END: the size of that part). */
function offsetT(m: Model, which: i32): usize {
  const dim = <usize>m.dim, qDim = <usize>(m.nHeads * m.headSize), kvDim = <usize>(m.nKvHeads * m.headSize), hidden = <usize>m.hiddenDim;
  let at: usize = 0;
  if (which > WQ) at += dim * qDim;
  if (which > WK) at += dim * kvDim;
  if (which > WV) at += dim * kvDim;
  if (which > WO) at += dim * qDim;
  if (which > W1) at += dim * hidden;
  if (which > W3) at += dim * hidden;
  if (which > W2) at += dim * hidden;
  return at << 2;
}

/** Layer l's part of ws.weightsT. */
export function layerWeightsT(m: Model, ws: Workspace, l: i32): usize {
  return ws.weightsT + <usize>l * offsetT(m, LAYER_END);
}

/** Fills ws.weightsT from the model's weights (once per training step: the weights change only between steps). */
export function transposeLayerWeights(m: Model, ws: Workspace): void {
  const dim = m.dim, qDim = m.nHeads * m.headSize, kvDim = m.nKvHeads * m.headSize, hidden = m.hiddenDim;
  const dimQ = <usize>dim * qDim << 2, dimKv = <usize>dim * kvDim << 2, dimHidden = <usize>dim * hidden << 2;
  for (let l = 0; l < m.nLayers; l++) {
    const L = <usize>l, at = layerWeightsT(m, ws, l);
    transpose(at + offsetT(m, WQ), m.wq + L * dimQ, qDim, dim);
    transpose(at + offsetT(m, WK), m.wk + L * dimKv, kvDim, dim);
    transpose(at + offsetT(m, WV), m.wv + L * dimKv, kvDim, dim);
    transpose(at + offsetT(m, WO), m.wo + L * dimQ, dim, qDim);
    transpose(at + offsetT(m, W1), m.w1 + L * dimHidden, hidden, dim);
    transpose(at + offsetT(m, W3), m.w3 + L * dimHidden, hidden, dim);
    transpose(at + offsetT(m, W2), m.w2 + L * dimHidden, dim, hidden);
  }
}

/** End of the sequence whose first row is r0 in a training workspace: the next row at position 0, or n. */
export function sequenceEnd(ws: Workspace, r0: i32, n: i32): i32 {
  let r1 = r0 + 1;
  while (r1 < n && load<i32>(ws.positions + (<usize>r1 << 2)) != 0) r1++;
  return r1;
}

/** Layer l's saved input (training). */
export function layerInput(ws: Workspace, l: i32): usize {
  return ws.xIn + <usize>l * ws.layerStrideIn;
}

/** Layer l's saved attention probabilities (training), or 0. */
export function layerProbs(ws: Workspace, l: i32): usize {
  return ws.attProbs == 0 ? 0 : ws.attProbs + <usize>l * ws.layerStrideProbs;
}

/** Byte offset of layer l's part of the KV cache ([nLayers, maxSeqs, seqLen, kvDim]). */
export function layerCacheOffset(m: Model, ws: Workspace, l: i32): usize {
  const kvDim = m.nKvHeads * m.headSize;
  return (<usize>l * <usize>ws.maxSeqs * <usize>m.seqLen * <usize>kvDim) << 2;
}

function storeKeysValues(ws: Workspace, n: i32, kvDim: i32, seqLen: i32, kCache: usize, vCache: usize): void {
  const rowBytes = <usize>kvDim << 2;
  for (let r = 0; r < n; r++) {
    const at = cacheRow(ws, r, seqLen, rowBytes);
    memory.copy(kCache + at, ws.k + <usize>r * rowBytes, rowBytes);
    memory.copy(vCache + at, ws.v + <usize>r * rowBytes, rowBytes);
  }
}

/** Byte offset of row r's (slot, position) within one layer's cache. */
// @ts-ignore: decorator
@inline export function cacheRow(ws: Workspace, r: i32, seqLen: i32, rowBytes: usize): usize {
  const slot = load<i32>(ws.slots + (<usize>r << 2));
  const pos = load<i32>(ws.positions + (<usize>r << 2));
  return (<usize>slot * seqLen + pos) * rowBytes;
}
