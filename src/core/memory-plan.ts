import { Arena } from './arena';
import { headSize, kvDim, qDim, weightShapes, elementCount, type ModelConfig, type WeightName } from './config';
import { loraShapes, type LoraSettings, type LoraTarget } from './lora';
import { tensorBytes, type WeightTypes } from './weight-types';

// The one memory plan. Linear memory, from low to high addresses:
//   [module static data] [descriptors] [weights] [RoPE frequencies and tables] [LoRA adapters]
//   [gradients, Adam m, Adam v: training only]
//   [inference workspace] [training workspace] [job I/O]
// The first part is laid out once per model. Gradients and the two Adam moments mirror the weights' layout byte
// for byte (a fixed offset apart), so one Model descriptor can point at the gradients and the optimizer can walk
// tensors in step. With LoRA adapters only the adapters train: gradients and moments mirror the adapter region
// alone, and the frozen weights have none (the trainable region [trainStart, trainEnd) is the adapters').
// The workspaces are sized from (sequences, token rows) and laid out again (bigger) only when a call needs more
// room; job I/O is reused from call to call. Nothing is allocated per token.

export interface ModelPlan {
  modelDesc: number;
  gradDesc: number;
  workspaceDesc: number;
  trainWorkspaceDesc: number;
  jobDesc: number;
  /** The model without its adapters (adapter pointers 0): a LoRA run's reference policy, on the same weights. */
  baseModelDesc: number;
  /** Offset of each of the model's tensors (the optional ones it lacks are absent). */
  weights: Partial<Record<WeightName, number>>;
  /** [paramStart, paramEnd) holds every weight tensor (and the alignment gaps between them, kept at 0). */
  paramStart: number;
  paramEnd: number;
  /** Offsets of each adapted projection's A and B (LoRA), and the region [loraStart, loraEnd) they fill. */
  adapters: Partial<Record<LoraTarget, { a: number; b: number }>>;
  loraStart: number;
  loraEnd: number;
  /** What the optimizer trains: the weights' region, or with LoRA the adapters'. */
  trainStart: number;
  trainEnd: number;
  /** headSize/2 inverse frequencies, from which the tables are filled. */
  ropeFreqs: number;
  ropeCos: number;
  ropeSin: number;
  /** First free byte after the model part. */
  end: number;
}

/** Where the gradients and Adam moments live: each tensor at its weight's offset plus these deltas. */
export interface OptimizerPlan {
  gradDelta: number;
  /** Where the AdamW moments sit relative to the parameters; null for an engine that only computes gradients. */
  moments: { mDelta: number; vDelta: number } | null;
  end: number;
}

export interface WorkspaceSpec {
  maxSeqs: number;
  maxTokens: number;
  maxLogitRows: number;
  /** Keep every layer's activations and lay out the gradient scratch of the backward pass. */
  training: boolean;
  /** Training with activation checkpointing: keep every layer's input but one layer's activations, recomputed. */
  recompute?: boolean;
  /** Adapters (LoRA): each layer keeps scale·x·Aᵀ of every adapted projection. */
  lora?: LoraSettings;
}

export type WorkspaceBuffer =
  | 'tokens' | 'slots' | 'positions' | 'logitRows' | 'x' | 'xIn' | 'xb' | 'q' | 'k' | 'v' | 'attOut' | 'xMid' | 'xbFfn'
  | 'h1' | 'h3' | 'gated' | 'sigmoid' | 'scores' | 'logits' | 'kCache' | 'vCache' | 'probs' | 'ids'
  | 'classifierT' | 'targets' | 'weights' | 'dx' | 'dxb' | 'dq' | 'dk' | 'dv' | 'dh1' | 'dh3' | 'dGated' | 'attScratch'
  | 'headRows' | 'headTargets' | 'headWeights' | 'headEntropy' | 'headX' | 'headDx' | 'attProbs' | 'transposeA' | 'transposeB' | 'weightsT'
  | 'qPre' | 'kPre' | 'loraU' | 'loraDu' | 'loraSeeds' | 'loraXd' | 'weightRows' | 'loraBt';

export interface WorkspacePlan extends WorkspaceSpec {
  /** Byte offsets; 0 for a buffer this kind of workspace does not have. */
  offsets: Record<WorkspaceBuffer, number>;
  layerStride: number;
  layerStrideHidden: number;
  layerStrideProbs: number;
  layerStrideIn: number;
  layerStrideQ: number;
  layerStrideKv: number;
  loraStride: number;
  start: number;
  end: number;
}

const DESCRIPTOR_BYTES = 256;

/** Four weight rows of the matmul's reduction block (assembly/kernels/matmul.ts: WEIGHT_SCRATCH_FLOATS). */
const WEIGHT_SCRATCH_FLOATS = 4 * 2048;

/**
 * The model part; each tensor takes its real bytes as stored (`types`: the compact matrices, weight-types.ts), then
 * the LoRA adapters (float32) when there are any.
 */
export function planModel(config: ModelConfig, heapBase: number, types: WeightTypes = {}, lora?: LoraSettings): ModelPlan {
  const arena = new Arena(heapBase);
  const [modelDesc, gradDesc, workspaceDesc, trainWorkspaceDesc, jobDesc, baseModelDesc] =
    [0, 1, 2, 3, 4, 5].map(() => arena.take(DESCRIPTOR_BYTES)) as [number, number, number, number, number, number];
  const weights: Partial<Record<WeightName, number>> = {};
  for (const { name, shape } of weightShapes(config)) weights[name] = arena.take(tensorBytes(types[name] ?? 'F32', shape));
  const paramStart = weights.token_embedding_table!;
  const paramEnd = arena.take(0);
  if (config.sharedClassifier) weights.wcls = weights.token_embedding_table;
  const ropeFreqs = arena.take(2 * headSize(config));
  const tableBytes = 4 * config.seqLen * headSize(config);
  const ropeCos = arena.take(tableBytes);
  const ropeSin = arena.take(tableBytes);
  const adapters: ModelPlan['adapters'] = {};
  const loraStart = arena.take(0);
  for (const { target, a, b } of lora ? loraShapes(config, lora) : []) {
    adapters[target] = { a: arena.take(4 * elementCount(a)), b: arena.take(4 * elementCount(b)) };
  }
  const loraEnd = arena.take(0);
  const [trainStart, trainEnd] = lora ? [loraStart, loraEnd] : [paramStart, paramEnd];
  return {
    modelDesc, gradDesc, workspaceDesc, trainWorkspaceDesc, jobDesc, baseModelDesc, weights, paramStart, paramEnd,
    adapters, loraStart, loraEnd, trainStart, trainEnd, ropeFreqs, ropeCos, ropeSin, end: arena.end,
  };
}

export function planOptimizer(model: ModelPlan, withMoments = true): OptimizerPlan {
  const arena = new Arena(model.end);
  const bytes = model.trainEnd - model.trainStart;
  const grads = arena.take(bytes);
  const moments = withMoments ? { mDelta: arena.take(bytes) - model.trainStart, vDelta: arena.take(bytes) - model.trainStart } : null;
  return { gradDelta: grads - model.trainStart, moments, end: arena.end };
}

/**
 * Logit rows of an inference workspace of `rows` token rows: generation and log-probabilities run the classifier in
 * chunks of about 16 MB of logits (whole tiles of 4 rows: the same bits as one call), so a vocabulary of 151,936 takes
 * 24 rows, not one per token. A scalar head's scores are one float a row: every row.
 */
export function inferenceLogitRows(c: ModelConfig, rows: number): number {
  return c.scoreHead ? rows : Math.min(rows, Math.max(16, Math.floor(2 ** 22 / c.vocabSize) & ~3));
}

/** Bytes of each buffer of a workspace (0 = absent). Per-layer buffers of a training workspace hold every layer. */
export function workspaceSizes(c: ModelConfig, spec: WorkspaceSpec): Record<WorkspaceBuffer, number> {
  const rows = 4 * spec.maxTokens, heads = 4 * spec.maxLogitRows;
  // Per-layer activations: every layer's when training, one layer's (reused) for inference or when recomputing.
  const layers = spec.training && !spec.recompute ? c.nLayers : 1;
  const cacheLayer = 4 * spec.maxSeqs * c.seqLen * kvDim(c);
  const train = (bytes: number) => (spec.training ? bytes : 0);
  const Q = qDim(c), KV = kvDim(c);
  const loraRow = spec.lora ? 4 * spec.lora.rank * spec.maxTokens : 0;
  return {
    tokens: rows, slots: rows, positions: rows, logitRows: rows,
    x: rows * c.dim, xIn: train(c.nLayers * rows * c.dim), xb: layers * rows * c.dim, q: layers * rows * Q,
    k: rows * KV, v: rows * KV, attOut: layers * rows * Q, xMid: train(layers * rows * c.dim),
    xbFfn: train(layers * rows * c.dim), // inference reuses xb
    h1: layers * rows * c.hiddenDim, h3: layers * rows * c.hiddenDim,
    gated: train(layers * rows * c.hiddenDim), // inference gates h1 in place
    sigmoid: train(layers * rows * c.hiddenDim),
    scores: 4 * attentionScratchFloats(c.seqLen),
    logits: heads * (c.scoreHead ? 1 : c.vocabSize),
    kCache: c.nLayers * cacheLayer, vCache: c.nLayers * cacheLayer,
    probs: 4 * c.vocabSize, ids: 4 * c.vocabSize,
    targets: train(rows), weights: train(rows),
    dx: train(rows * c.dim), dxb: train(rows * Math.max(c.dim, Q)), dq: train(rows * Q),
    dk: train(rows * KV), dv: train(rows * KV),
    dh1: train(rows * c.hiddenDim), dh3: train(rows * c.hiddenDim), dGated: train(rows * c.hiddenDim),
    attScratch: train(4 * causalScratchFloats(c.seqLen, headSize(c))),
    headRows: train(heads), headTargets: train(heads), headWeights: train(heads), headEntropy: train(heads),
    headX: train(heads * c.dim), headDx: train(heads * c.dim),
    attProbs: train(layers * attentionProbsLayerBytes(c, spec.maxTokens)),
    // Backward matmuls transpose (or widen, a compact frozen one) one layer weight matrix, or n×out gradients, into A
    // and n×in activations into B; a frozen classifier's dx widens 128 of its rows at a time into A.
    transposeA: train(4 * Math.max(c.hiddenDim * c.dim, Q * c.dim,
      spec.maxTokens * Math.max(c.dim, c.hiddenDim, Q), c.scoreHead ? 0 : Math.max(spec.maxLogitRows * c.vocabSize, 128 * c.dim))),
    transposeB: train(4 * Math.max(spec.maxTokens * Math.max(c.dim, c.hiddenDim, Q), spec.maxLogitRows * c.dim)),
    // Transposed float32 copies, for trainable weights only: LoRA's frozen ones (maybe compact) are read as stored.
    classifierT: train(c.scoreHead || spec.lora ? 0 : 4 * c.vocabSize * c.dim), // a scalar head has no classifier
    weightsT: train(narrowLayers(c) && !spec.lora ? 4 * c.nLayers * layerMatrixFloats(c) : 0),
    // The inputs of the per-head q/k norms, for their backward pass.
    qPre: train(c.qkNorm ? layers * rows * Q : 0), kPre: train(c.qkNorm ? layers * rows * KV : 0),
    // LoRA: u = scale·x·Aᵀ of each adapted projection (per layer when training), and its gradient.
    loraU: layers * (spec.lora?.targets.length ?? 0) * loraRow, loraDu: train(loraRow),
    // Dropout: each row's sequence seed, and the dropped-out input of one projection at a time.
    loraSeeds: train(spec.lora ? rows : 0), loraXd: train(spec.lora && spec.lora.dropout > 0 ? rows * Math.max(c.dim, c.hiddenDim, Q) : 0),
    weightRows: 4 * WEIGHT_SCRATCH_FLOATS,
    // LoRA: one adapter's B transposed, for the outer-product form of u·Bᵀ (assembly/model/lora.ts).
    loraBt: spec.lora ? 4 * spec.lora.rank * Math.max(c.dim, c.hiddenDim, Q, KV) : 0,
  };
}

/** Floats of attention scratch (assembly/kernels/attention.ts): two rows of scores, each rounded up to whole vectors. */
export function attentionScratchFloats(seqLen: number): number {
  return 2 * roundUp4(seqLen);
}

/** Layers whose inputs are at most 256 wide train with transposed weights (assembly/model/forward.ts). */
export function narrowLayers(c: ModelConfig): boolean {
  return c.dim <= 256 && c.hiddenDim <= 256 && qDim(c) <= 256;
}

/** Floats of one layer's matrices: wq, wk, wv, wo, w1, w3, w2. */
function layerMatrixFloats(c: ModelConfig): number {
  return 2 * c.dim * qDim(c) + 2 * c.dim * kvDim(c) + 3 * c.dim * c.hiddenDim;
}

/** Floats of training attention scratch (assembly/kernels/causal-attention.ts) for sequences of up to seqLen. */
export function causalScratchFloats(seqLen: number, headSize: number): number {
  return (headSize + seqLen) * roundUp4(seqLen) + seqLen * (headSize + 2);
}

/**
 * Bytes of one layer's saved attention probabilities: a sequence of len rows keeps, per head, a [len, len rounded
 * up to 4] matrix and len inverse sums (causal-attention.ts). Σ len·(roundUp4(len) + 1) over the sequences of a
 * micro-batch is at most maxTokens·(roundUp4(longest) + 1), and the longest is at most min(seqLen, maxTokens);
 * exact for whole sequences of the full context. (Counting whole sequences plus a shorter rest is not a bound: with
 * the rounding, two rows of 5 need more than one of 8 and one of 2.)
 */
export function attentionProbsLayerBytes(c: ModelConfig, maxTokens: number): number {
  return 4 * c.nHeads * maxTokens * (roundUp4(Math.min(c.seqLen, maxTokens)) + 1);
}

const roundUp4 = (n: number) => Math.ceil(n / 4) * 4;

export function planWorkspace(c: ModelConfig, start: number, spec: WorkspaceSpec): WorkspacePlan {
  const arena = new Arena(start);
  const sizes = workspaceSizes(c, spec);
  const offsets = {} as Record<WorkspaceBuffer, number>;
  for (const name of Object.keys(sizes) as WorkspaceBuffer[]) offsets[name] = sizes[name] > 0 ? arena.take(sizes[name]) : 0;
  if (!spec.training) {
    offsets.xbFfn = offsets.xb;
    offsets.gated = offsets.h1;
  }
  const saved = spec.training && !spec.recompute;
  return {
    ...spec, offsets, start, end: arena.end,
    layerStride: saved ? 4 * spec.maxTokens * c.dim : 0,
    layerStrideHidden: saved ? 4 * spec.maxTokens * c.hiddenDim : 0,
    layerStrideProbs: saved ? attentionProbsLayerBytes(c, spec.maxTokens) : 0,
    layerStrideIn: spec.training ? 4 * spec.maxTokens * c.dim : 0,
    layerStrideQ: saved ? 4 * spec.maxTokens * qDim(c) : 0,
    layerStrideKv: saved && c.qkNorm ? 4 * spec.maxTokens * kvDim(c) : 0,
    loraStride: saved && spec.lora ? 4 * spec.lora.rank * spec.maxTokens * spec.lora.targets.length : 0,
  };
}
