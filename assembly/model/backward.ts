import { Model, Workspace, TrainJob } from "./layout";
import { forwardTokens, layerForward, layerInput, layerCacheOffset, cacheRow, layerProbs, sequenceEnd, transposeLayerWeights, project } from "./forward";
import { matmulForward, matmulForwardTransposed, matmulBackwardInputOf, matmulBackwardInputRowsOf, matmulBackwardWeight } from "../kernels/matmul";
import { matrixBytes } from "../kernels/weights";
import { rmsnormForward, rmsnormBackward } from "../kernels/rmsnorm";
import { ropeBackward } from "../kernels/rope";
import { causalAttentionBackward, causalProbsFloats } from "../kernels/causal-attention";
import { swigluBackward } from "../kernels/swiglu";
import { embeddingBackward } from "../kernels/embedding";
import { crossEntropyForwardBackward } from "../kernels/cross-entropy";
import { transpose } from "../kernels/transpose";
import { biasBackward } from "../kernels/bias";
import { getI32, setI32 } from "./generate";
import { loraBackward, LQ, LK, LV, LO, LGATE, LUP, LDOWN } from "./lora";

// Gradients of the weighted token log-likelihood loss L = −Σ_rows w·log π(target | prefix) for one micro-batch of
// complete sequences, added to the gradient tensors of `grads` (a Model descriptor whose weight pointers point at
// the gradients; with a shared classifier its wcls is its tokenEmbedding, so both contributions add up there).
// A frozen tensor's gradient field is 0 in `grads` (LoRA): its gradient is not computed. Sequence s occupies cache slot s; ws must be a training workspace (activations saved per layer).
// Returns L for this micro-batch.
// A scalar-head model (m.wscore != 0) takes the same path with the head as the classifier's mode: the job's weights
// are the given ∂L/∂score per row, L = Σ_rows weight·score (linear, so its gradient is the given one pushed back).
export function trainStep(m: Model, grads: Model, ws: Workspace, job: TrainJob): f64 {
  trainForward(m, ws, job);
  return trainBackward(m, grads, ws, job);
}

/**
 * trainStep's forward half: the job's rows through the transformer, activations kept in ws. A scalar-head model also
 * writes every row's score to job.scores (when set), from which the host can form dScore before trainBackward: one
 * forward pass serves both (a reward model's loss, a critic's).
 */
export function trainForward(m: Model, ws: Workspace, job: TrainJob): void {
  const n = packRows(m, ws, job);
  if (ws.weightsT != 0) transposeLayerWeights(m, ws);
  forwardTokens(m, ws, n, 0);
  if (m.wscore == 0 || job.scores == 0) return;
  const dimBytes = <usize>m.dim << 2;
  for (let r = 0; r < n; r++) { // rows are the job's tokens in order
    rmsnormForward(ws.headX, ws.x + <usize>r * dimBytes, m.rmsFinal, 1, m.dim, m.normEps);
    matmulForward(job.scores + (<usize>r << 2), ws.headX, m.wscore, 1, m.dim, 1, false);
  }
}

/**
 * trainStep's backward half, right after trainForward of the same job (its weights, a scalar head's dScore, may have
 * been written since); returns L.
 */
export function trainBackward(m: Model, grads: Model, ws: Workspace, job: TrainJob): f64 {
  const n = packRows(m, ws, job); // the same rows, with the job's weights as they are now
  memory.fill(ws.dx, 0, (<usize>n * m.dim) << 2);
  const loss = m.wscore != 0 ? scoreBackward(m, grads, ws, n) : classifierBackward(m, grads, ws, job, n);
  for (let l = m.nLayers - 1; l >= 0; l--) {
    // Activation checkpointing: the workspace holds one layer's activations, the last layer's after the forward
    // pass; every other layer's are recomputed from its saved input (the same arithmetic, so the same values).
    if (ws.recomputeLayers != 0 && l < m.nLayers - 1) {
      memory.copy(ws.x, layerInput(ws, l), (<usize>n * m.dim) << 2);
      layerForward(m, ws, n, l);
    }
    layerBackward(m, grads, ws, n, l);
  }
  if (grads.tokenEmbedding != 0) embeddingBackward(grads.tokenEmbedding, ws.dx, ws.tokens, n, m.dim);
  return loss;
}

/** Packs the job's sequences into rows; row r predicts the next token of its sequence with that token's weight. */
function packRows(m: Model, ws: Workspace, job: TrainJob): i32 {
  let n = 0;
  for (let s = 0; s < job.nSeqs; s++) {
    const start = getI32(job.offsets, s), end = getI32(job.offsets, s + 1);
    for (let t = start; t < end; t++) {
      setI32(ws.tokens, n, getI32(job.ids, t));
      setI32(ws.slots, n, s);
      setI32(ws.positions, n, t - start);
      if (ws.loraSeeds != 0) setI32(ws.loraSeeds, n, getI32(job.dropoutSeeds, s));
      if (m.wscore != 0) { // a score is of the row itself, not of a next token
        setI32(ws.targets, n, 0);
        store<f32>(ws.weights + (<usize>n << 2), load<f32>(job.weights + (<usize>t << 2)));
        n++;
        continue;
      }
      const hasNext = t + 1 < end;
      setI32(ws.targets, n, hasNext ? getI32(job.ids, t + 1) : -1);
      store<f32>(ws.weights + (<usize>n << 2), hasNext ? load<f32>(job.weights + (<usize>(t + 1) << 2)) : 0);
      n++;
    }
  }
  return n;
}

/**
 * Final RMSNorm, classifier and loss for the rows that carry weight, in chunks of ws.maxLogitRows; writes their dx.
 * Rows whose entropy the job wants are taken even at weight 0 (a ReMax sample of advantage 0 is still the policy's):
 * their gradient is 0, their entropy is written.
 */
function classifierBackward(m: Model, grads: Model, ws: Workspace, job: TrainJob, n: i32): f64 {
  // A trainable classifier: every chunk's dx reads wclsᵀ, transposed once here rather than once per chunk (37 MB at a
  // 32000 vocabulary). A frozen one (LoRA, ws.classifierT 0) is read as stored, compact or not: no copy of it.
  if (ws.classifierT != 0) transpose(ws.classifierT, m.wcls, m.vocabSize, m.dim);
  let loss: f64 = 0;
  let count = 0;
  for (let r = 0; r < n; r++) {
    const w = load<f32>(ws.weights + (<usize>r << 2));
    if (getI32(ws.targets, r) < 0 || (w == 0 && !wantsEntropy(ws, job, r))) continue;
    setI32(ws.headRows, count, r);
    setI32(ws.headTargets, count, getI32(ws.targets, r));
    store<f32>(ws.headWeights + (<usize>count << 2), w);
    count++;
    if (count == ws.maxLogitRows) { loss += classifierChunk(m, grads, ws, job, count); count = 0; }
  }
  if (count > 0) loss += classifierChunk(m, grads, ws, job, count);
  return loss;
}

/** Row r predicts a token at or after its sequence's job.entropyFrom: the job wants its entropy (when it wants any). */
function wantsEntropy(ws: Workspace, job: TrainJob, r: i32): bool {
  return job.entropy != 0 && getI32(ws.positions, r) + 1 >= getI32(job.entropyFrom, getI32(ws.slots, r));
}

function classifierChunk(m: Model, grads: Model, ws: Workspace, job: TrainJob, count: i32): f64 {
  const dim = m.dim, dimBytes = <usize>dim << 2;
  for (let j = 0; j < count; j++) {
    const r = getI32(ws.headRows, j);
    rmsnormForward(ws.headX + <usize>j * dimBytes, ws.x + <usize>r * dimBytes, m.rmsFinal, 1, dim, m.normEps);
  }
  if (ws.weightsT != 0) matmulForwardTransposed(ws.logits, ws.headX, ws.classifierT, count, dim, m.vocabSize, false);
  else project(ws, ws.logits, ws.headX, m.wcls, m.wclsType, 0, 0, count, dim, m.vocabSize, false);
  const loss = crossEntropyForwardBackward(ws.logits, ws.headTargets, ws.headWeights, job.entropy != 0 ? ws.headEntropy : 0, count, m.vocabSize);
  // Rows are the job's tokens in order: row r predicts ids[r + 1], whose slot in job.entropy (aligned with ids) is r + 1.
  for (let j = 0; j < count; j++) {
    const r = getI32(ws.headRows, j);
    if (wantsEntropy(ws, job, r)) store<f32>(job.entropy + (<usize>(r + 1) << 2), load<f32>(ws.headEntropy + (<usize>j << 2)));
  }
  // dx = dLogits · wcls
  if (ws.classifierT != 0) matmulForward(ws.headDx, ws.logits, ws.classifierT, count, m.vocabSize, dim, false);
  else matmulBackwardInputRowsOf(ws.headDx, ws.logits, m.wcls, m.wclsType, count, dim, m.vocabSize, false, ws.transposeA);
  if (grads.wcls != 0) matmulBackwardWeight(grads.wcls, ws.logits, ws.headX, count, dim, m.vocabSize, ws.transposeA, ws.transposeB);
  for (let j = 0; j < count; j++) {
    const r = getI32(ws.headRows, j);
    rmsnormBackward(ws.dx + <usize>r * dimBytes, grads.rmsFinal, ws.headDx + <usize>j * dimBytes, ws.x + <usize>r * dimBytes,
      m.rmsFinal, 1, dim, m.normEps, false);
  }
  return loss;
}

/**
 * The scalar head's mode of classifierBackward, for each row with a given dScore: score = wscore · rmsnorm(x);
 * grads.wscore += dScore·rmsnorm(x), and dx = dScore·wscore back through the norm. One row is a dim-long dot product,
 * so no chunking: the head's scratch row 0 serves every row.
 */
function scoreBackward(m: Model, grads: Model, ws: Workspace, n: i32): f64 {
  const dim = m.dim, dimBytes = <usize>dim << 2;
  const hx = ws.headX, hdx = ws.headDx;
  let loss: f64 = 0;
  for (let r = 0; r < n; r++) {
    const w = load<f32>(ws.weights + (<usize>r << 2));
    if (w == 0) continue;
    rmsnormForward(hx, ws.x + <usize>r * dimBytes, m.rmsFinal, 1, dim, m.normEps);
    matmulForward(ws.logits, hx, m.wscore, 1, dim, 1, false);
    loss += <f64>w * <f64>load<f32>(ws.logits);
    for (let k = 0; k < dim; k++) {
      const at = <usize>k << 2;
      store<f32>(hdx + at, w * load<f32>(m.wscore + at));
      store<f32>(grads.wscore + at, load<f32>(grads.wscore + at) + w * load<f32>(hx + at));
    }
    rmsnormBackward(ws.dx + <usize>r * dimBytes, grads.rmsFinal, hdx, ws.x + <usize>r * dimBytes, m.rmsFinal, 1, dim, m.normEps, false);
  }
  return loss;
}

/** Backward through layer l: ws.dx holds ∂L/∂(layer output) on entry and ∂L/∂(layer input) on return. */
function layerBackward(m: Model, grads: Model, ws: Workspace, n: i32, l: i32): void {
  const dim = m.dim, hidden = m.hiddenDim, headSize = m.headSize, qDim = m.nHeads * headSize, kvDim = m.nKvHeads * headSize;
  const dimBytes = <usize>dim << 2, qRowBytes = <usize>qDim << 2;
  const L = <usize>l;
  const D = L * ws.layerStride, H = L * ws.layerStrideHidden, Q = L * ws.layerStrideQ;
  // Offsets of layer l's gradients (float32), and its matrices, each stored as its type says (frozen ones may be
  // compact: LoRA; their input gradients read them as stored, bit for bit their float32 widening's).
  const wQ = L * <usize>qDim * dimBytes, wKv = L * <usize>kvDim * dimBytes, wHidden = L * <usize>hidden * dimBytes;
  const wq = m.wq + L * matrixBytes(m.wqType, qDim, dim), wk = m.wk + L * matrixBytes(m.wkType, kvDim, dim);
  const wv = m.wv + L * matrixBytes(m.wvType, kvDim, dim), wo = m.wo + L * matrixBytes(m.woType, dim, qDim);
  const w1 = m.w1 + L * matrixBytes(m.w1Type, hidden, dim), w3 = m.w3 + L * matrixBytes(m.w3Type, hidden, dim);
  const w2 = m.w2 + L * matrixBytes(m.w2Type, dim, hidden);

  // Feed-forward block: out = xMid + w2·(silu(w1·xbFfn) ⊙ w3·xbFfn), xbFfn = rmsnorm(xMid).
  matmulBackwardInputOf(ws.dGated, ws.dx, w2, m.w2Type, n, hidden, dim, false, ws.transposeA);
  loraBackward(m, grads, ws, l, LDOWN, ws.dGated, ws.dx, ws.gated + H, n, hidden, dim);
  if (grads.w2 != 0) matmulBackwardWeight(grads.w2 + wHidden, ws.dx, ws.gated + H, n, hidden, dim, ws.transposeA, ws.transposeB);
  swigluBackward(ws.dh1, ws.dh3, ws.dGated, ws.h1 + H, ws.h3 + H, ws.sigmoid + H, n * hidden);
  matmulBackwardInputOf(ws.dxb, ws.dh1, w1, m.w1Type, n, dim, hidden, false, ws.transposeA);
  matmulBackwardInputOf(ws.dxb, ws.dh3, w3, m.w3Type, n, dim, hidden, true, ws.transposeA);
  loraBackward(m, grads, ws, l, LGATE, ws.dxb, ws.dh1, ws.xbFfn + D, n, dim, hidden);
  loraBackward(m, grads, ws, l, LUP, ws.dxb, ws.dh3, ws.xbFfn + D, n, dim, hidden);
  if (grads.w1 != 0) matmulBackwardWeight(grads.w1 + wHidden, ws.dh1, ws.xbFfn + D, n, dim, hidden, ws.transposeA, ws.transposeB);
  if (grads.w3 != 0) matmulBackwardWeight(grads.w3 + wHidden, ws.dh3, ws.xbFfn + D, n, dim, hidden, ws.transposeA, ws.transposeB);
  rmsnormBackward(ws.dx, offsetOr0(grads.rmsFfn, L * dimBytes), ws.dxb, ws.xMid + D, m.rmsFfn + L * dimBytes, n, dim, m.normEps, true);

  // Attention block: xMid = xIn + wo·attention(q, k, v) with q = rope(norm(wq·xb + bq)), k likewise, v = wv·xb + bv,
  // xb = rmsnorm(xIn) (the biases and per-head norms where the model has them). ws.dxb first holds ∂L/∂(attention out).
  matmulBackwardInputOf(ws.dxb, ws.dx, wo, m.woType, n, qDim, dim, false, ws.transposeA);
  loraBackward(m, grads, ws, l, LO, ws.dxb, ws.dx, ws.attOut + Q, n, qDim, dim);
  if (grads.wo != 0) matmulBackwardWeight(grads.wo + wQ, ws.dx, ws.attOut + Q, n, qDim, dim, ws.transposeA, ws.transposeB);
  const kvRowBytes = <usize>kvDim << 2;
  memory.fill(ws.dk, 0, <usize>n * kvRowBytes);
  memory.fill(ws.dv, 0, <usize>n * kvRowBytes);
  const layerCache = layerCacheOffset(m, ws, l);
  let probs = layerProbs(ws, l);
  for (let r0 = 0; r0 < n;) {
    const r1 = sequenceEnd(ws, r0, n), len = r1 - r0;
    const cache = layerCache + cacheRow(ws, r0, m.seqLen, kvRowBytes), rows = <usize>r0 * qRowBytes;
    causalAttentionBackward(ws.dq + rows, ws.dk + <usize>r0 * kvRowBytes, ws.dv + <usize>r0 * kvRowBytes, ws.dxb + rows,
      ws.q + Q + rows, ws.kCache + cache, ws.vCache + cache, ws.attOut + Q + rows, probs, len, qRowBytes, kvRowBytes, m.nHeads, m.nKvHeads, headSize,
      ws.attScratch);
    probs += <usize>causalProbsFloats(len, m.nHeads) << 2;
    r0 = r1;
  }
  ropeBackward(ws.dq, n, qDim, ws.positions, m.nHeads, headSize, m.ropeCos, m.ropeSin);
  ropeBackward(ws.dk, n, kvDim, ws.positions, m.nKvHeads, headSize, m.ropeCos, m.ropeSin);
  if (m.rmsQ != 0) {
    // Through the per-head norms, in place: dq and dk become the gradients of the projections' outputs.
    const normBytes = L * (<usize>headSize << 2);
    rmsnormBackward(ws.dq, offsetOr0(grads.rmsQ, normBytes), ws.dq, ws.qPre + Q, m.rmsQ + normBytes, n * m.nHeads, headSize, m.normEps, false);
    rmsnormBackward(ws.dk, offsetOr0(grads.rmsK, normBytes), ws.dk, ws.kPre + L * ws.layerStrideKv, m.rmsK + normBytes, n * m.nKvHeads, headSize, m.normEps, false);
  }
  if (grads.bq != 0) {
    biasBackward(grads.bq + L * qRowBytes, ws.dq, n, qDim);
    biasBackward(grads.bk + L * kvRowBytes, ws.dk, n, kvDim);
    biasBackward(grads.bv + L * kvRowBytes, ws.dv, n, kvDim);
  }
  matmulBackwardInputOf(ws.dxb, ws.dq, wq, m.wqType, n, dim, qDim, false, ws.transposeA);
  matmulBackwardInputOf(ws.dxb, ws.dk, wk, m.wkType, n, dim, kvDim, true, ws.transposeA);
  matmulBackwardInputOf(ws.dxb, ws.dv, wv, m.wvType, n, dim, kvDim, true, ws.transposeA);
  loraBackward(m, grads, ws, l, LQ, ws.dxb, ws.dq, ws.xb + D, n, dim, qDim);
  loraBackward(m, grads, ws, l, LK, ws.dxb, ws.dk, ws.xb + D, n, dim, kvDim);
  loraBackward(m, grads, ws, l, LV, ws.dxb, ws.dv, ws.xb + D, n, dim, kvDim);
  if (grads.wq != 0) matmulBackwardWeight(grads.wq + wQ, ws.dq, ws.xb + D, n, dim, qDim, ws.transposeA, ws.transposeB);
  if (grads.wk != 0) matmulBackwardWeight(grads.wk + wKv, ws.dk, ws.xb + D, n, dim, kvDim, ws.transposeA, ws.transposeB);
  if (grads.wv != 0) matmulBackwardWeight(grads.wv + wKv, ws.dv, ws.xb + D, n, dim, kvDim, ws.transposeA, ws.transposeB);
  rmsnormBackward(ws.dx, offsetOr0(grads.rmsAtt, L * dimBytes), ws.dxb, layerInput(ws, l), m.rmsAtt + L * dimBytes, n, dim, m.normEps, true);
}

/** A frozen tensor's gradient pointer stays 0 (rmsnormBackward then skips its weight's gradient). */
// @ts-ignore: decorator
@inline function offsetOr0(base: usize, offset: usize): usize {
  return base == 0 ? 0 : base + offset;
}
