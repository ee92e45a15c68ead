import { weightShapes, elementCount, type ModelConfig, type ModelWeights, type WeightName } from './config';

/**
 * One training sequence: ids (BOS first) and, aligned with them, the loss weight of predicting ids[t] from ids[<t]
 * (weights[0] is unused). SFT: 1 on the tokens to learn; ReMax: the sequence's advantage on its response tokens.
 */
export interface TrainingExample {
  ids: number[];
  weights: number[];
  /** Seed of this sequence's LoRA dropout masks (lora.ts dropoutSeed; default 0); unused without dropout. */
  dropoutSeed?: number;
  /**
   * Measure the policy's entropy where it predicts ids[t], t ≥ entropyFrom (an RL response's first token: the prompt
   * length), at weight 0 too; default: none measured.
   */
  entropyFrom?: number;
}

/** What accumulateGradients gives back. */
export interface GradientResult {
  /** L, the weighted negative log-likelihood. */
  loss: number;
  /** Tokens of nonzero weight. */
  tokens: number;
  /**
   * Σ over the measured tokens (TrainingExample.entropyFrom) of the entropy −Σ_v p_v·log p_v of the distribution that
   * predicts them (nats), from the training forward pass (with LoRA dropout, if any), and their count.
   */
  entropySum: number;
  entropyTokens: number;
}

export interface TrainingOptions {
  /** Token rows per micro-batch (default max(512, seq_len)); a longer batch runs as several micro-batches. */
  maxTokens?: number;
  /** Sequences per micro-batch (default 16): each gets a KV-cache slot in the training workspace. */
  maxSeqs?: number;
  /** Rows per classifier chunk (default: about 16 MB of logits). */
  maxLogitRows?: number;
  /**
   * Activation checkpointing: keep each layer's input but only one layer's activations, and recompute them layer by
   * layer in the backward pass (about one more forward pass of time for nLayers−1 layers' less memory). The
   * gradients are bit-identical either way. Default: the current setting (off at first).
   */
  activationCheckpointing?: boolean;
  /**
   * Allocate the AdamW moments (default true). An engine that only computes gradients for another's optimizer (a
   * helper thread's) saves two copies of the parameters' size. Decided by the first enableTraining call.
   */
  optimizerState?: boolean;
}

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Clip the global gradient norm to this value; 0 = no clipping. Default 1. */
  clipNorm?: number;
}

/** Splits examples, in order, into micro-batches of at most maxTokens rows and maxSeqs sequences. */
export function packMicroBatches(examples: TrainingExample[], maxTokens: number, maxSeqs: number): TrainingExample[][] {
  const batches: TrainingExample[][] = [];
  let current: TrainingExample[] = [];
  let rows = 0;
  for (const e of examples) {
    if (current.length > 0 && (rows + e.ids.length > maxTokens || current.length === maxSeqs)) {
      batches.push(current);
      current = [];
      rows = 0;
    }
    current.push(e);
    rows += e.ids.length;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** The model's float32 tensors in a buffer (those `include` takes), each at offsetOf(name): views, or copies when `copy` is set. */
export function tensorViews(buffer: ArrayBuffer, config: ModelConfig, offsetOf: (name: WeightName) => number, copy: boolean,
  include: (name: WeightName) => boolean = () => true): ModelWeights {
  const out: Partial<Record<WeightName, Float32Array>> = {};
  for (const { name, shape } of weightShapes(config)) {
    if (!include(name)) continue;
    const view = new Float32Array(buffer, offsetOf(name), elementCount(shape));
    out[name] = copy ? view.slice() : view;
  }
  return out as ModelWeights;
}
