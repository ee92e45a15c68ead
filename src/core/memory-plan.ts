import { Arena } from './arena';
import { headSize, kvDim, weightShapes, elementCount, type ModelConfig, type WeightName } from './config';

// The one memory plan. Linear memory, from low to high addresses:
//   [module static data] [descriptors] [weights, RoPE tables] [workspace: activations, KV cache, sampler scratch] [job I/O]
// The weights part is laid out once per model; the workspace part is sized from (maxSeqs, maxTokens) and laid out
// again (bigger) only when a call needs more sequences than it has room for; job I/O is reused from call to call.
// Nothing is allocated per token.

export interface ModelPlan {
  modelDesc: number;
  workspaceDesc: number;
  jobDesc: number;
  weights: Record<WeightName, number>;
  ropeCos: number;
  ropeSin: number;
  /** First free byte after the model part. */
  end: number;
}

export interface WorkspacePlan {
  maxSeqs: number;
  maxTokens: number;
  offsets: Record<WorkspaceBuffer, number>;
  /** First free byte after the workspace: job I/O starts here. */
  end: number;
}

export type WorkspaceBuffer =
  | 'tokens' | 'slots' | 'positions' | 'logitRows' | 'x' | 'xb' | 'xb2' | 'q' | 'k' | 'v' | 'hb' | 'hb2'
  | 'scores' | 'logits' | 'kCache' | 'vCache' | 'probs' | 'ids';

const DESCRIPTOR_BYTES = 256;

export function planModel(config: ModelConfig, heapBase: number): ModelPlan {
  const arena = new Arena(heapBase);
  const modelDesc = arena.take(DESCRIPTOR_BYTES);
  const workspaceDesc = arena.take(DESCRIPTOR_BYTES);
  const jobDesc = arena.take(DESCRIPTOR_BYTES);
  const weights = {} as Record<WeightName, number>;
  for (const { name, shape } of weightShapes(config)) weights[name] = arena.take(4 * elementCount(shape));
  if (config.sharedClassifier) weights.wcls = weights.token_embedding_table;
  const tableBytes = 4 * config.seqLen * headSize(config);
  const ropeCos = arena.take(tableBytes);
  const ropeSin = arena.take(tableBytes);
  return { modelDesc, workspaceDesc, jobDesc, weights, ropeCos, ropeSin, end: arena.end };
}

/** Bytes per float buffer of the workspace, for maxTokens packed rows and maxSeqs cached sequences. */
export function workspaceSizes(c: ModelConfig, maxSeqs: number, maxTokens: number): Record<WorkspaceBuffer, number> {
  const rows = 4 * maxTokens;
  const cache = 4 * c.nLayers * maxSeqs * c.seqLen * kvDim(c);
  return {
    tokens: rows, slots: rows, positions: rows, logitRows: rows,
    x: rows * c.dim, xb: rows * c.dim, xb2: rows * c.dim, q: rows * c.dim,
    k: rows * kvDim(c), v: rows * kvDim(c),
    hb: rows * c.hiddenDim, hb2: rows * c.hiddenDim,
    scores: 4 * c.seqLen,
    logits: rows * c.vocabSize,
    kCache: cache, vCache: cache,
    probs: 4 * c.vocabSize, ids: 4 * c.vocabSize,
  };
}

export function planWorkspace(c: ModelConfig, modelEnd: number, maxSeqs: number, maxTokens: number): WorkspacePlan {
  const arena = new Arena(modelEnd);
  const sizes = workspaceSizes(c, maxSeqs, maxTokens);
  const offsets = {} as Record<WorkspaceBuffer, number>;
  for (const name of Object.keys(sizes) as WorkspaceBuffer[]) offsets[name] = arena.take(sizes[name]);
  return { maxSeqs, maxTokens, offsets, end: arena.end };
}
