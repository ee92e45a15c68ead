/** Hyper-parameters of a Llama-family model. Kernels read everything from here, nothing is hard-coded. */
export interface ModelConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  /** true when the classifier reuses the token embedding table (llama2.c: positive vocab_size in the header). */
  sharedClassifier: boolean;
  /** RMSNorm epsilon (llama2.c: 1e-5). */
  normEps: number;
  /** RoPE base frequency (llama2.c: 10000). */
  ropeTheta: number;
  /** Channels per attention head; default dim / nHeads (Qwen3-0.6B has 128 with dim 1024 and 16 heads). */
  headSize?: number;
  /** Biases on the q, k and v projections (Qwen2). */
  qkvBias?: boolean;
  /** RMSNorm over each head of q and of k before RoPE, with its own weights (Qwen3). */
  qkNorm?: boolean;
  /** Frequency scaling of RoPE (Llama 3.1 and later); none when absent. */
  ropeScaling?: RopeScaling;
  /**
   * A scalar head (dim → 1, tensor `score`) replaces the classifier: a reward model or critic (transformers'
   * …ForSequenceClassification with num_labels 1). Such a model has no wcls (sharedClassifier is true).
   */
  scoreHead?: boolean;
}

/**
 * How RoPE's inverse frequencies are rescaled. `llama3`: transformers' rope_type "llama3" (long wavelengths divided
 * by factor, short ones kept, a smooth blend between). `factors`: llama.cpp's rope_freqs tensor, one divisor per
 * frequency (how GGUF files store the same scaling).
 */
export type RopeScaling =
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  | { type: 'factors'; factors: number[] };

export const LLAMA2C_NORM_EPS = 1e-5;
export const LLAMA2C_ROPE_THETA = 10000;

export const headSize = (c: ModelConfig): number => c.headSize ?? c.dim / c.nHeads;
/** Width of the queries (and of the attention output that wo reads): nHeads · headSize. */
export const qDim = (c: ModelConfig): number => c.nHeads * headSize(c);
export const kvDim = (c: ModelConfig): number => c.nKvHeads * headSize(c);

/**
 * Weight tensors in the engine's order, with their shapes (layer tensors stacked on a leading layer axis). The first
 * twelve are llama2.c's, in its file order; the optional ones of other architectures follow, so a llama2.c model's
 * parameter layout (and its optimizer state) is the same as before they existed.
 *
 * The rows of wq and wk (and bq, bk, and the columns of the q/k norms) are in the interleaved-pairs RoPE order of
 * llama2.c and Meta: within a head, channels 2i and 2i+1 rotate together. Formats that store the rotate-half order
 * (Hugging Face folders, GGUF qwen2/qwen3) are permuted at load and back at export (formats/rope-order.ts).
 */
export function weightShapes(c: ModelConfig): { name: WeightName; shape: number[] }[] {
  const L = c.nLayers, D = c.dim, H = c.hiddenDim, KV = kvDim(c), Q = qDim(c), hs = headSize(c);
  const shapes: { name: WeightName; shape: number[] }[] = [
    { name: 'token_embedding_table', shape: [c.vocabSize, D] },
    { name: 'rms_att_weight', shape: [L, D] },
    { name: 'wq', shape: [L, Q, D] },
    { name: 'wk', shape: [L, KV, D] },
    { name: 'wv', shape: [L, KV, D] },
    { name: 'wo', shape: [L, D, Q] },
    { name: 'rms_ffn_weight', shape: [L, D] },
    { name: 'w1', shape: [L, H, D] },
    { name: 'w2', shape: [L, D, H] },
    { name: 'w3', shape: [L, H, D] },
    { name: 'rms_final_weight', shape: [D] },
  ];
  if (!c.sharedClassifier) shapes.push({ name: 'wcls', shape: [c.vocabSize, D] });
  if (c.qkvBias) shapes.push({ name: 'bq', shape: [L, Q] }, { name: 'bk', shape: [L, KV] }, { name: 'bv', shape: [L, KV] });
  if (c.qkNorm) shapes.push({ name: 'rms_q_weight', shape: [L, hs] }, { name: 'rms_k_weight', shape: [L, hs] });
  if (c.scoreHead) shapes.push({ name: 'score', shape: [1, D] });
  return shapes;
}

export type WeightName =
  | 'token_embedding_table' | 'rms_att_weight' | 'wq' | 'wk' | 'wv' | 'wo'
  | 'rms_ffn_weight' | 'w1' | 'w2' | 'w3' | 'rms_final_weight' | 'wcls'
  | 'bq' | 'bk' | 'bv' | 'rms_q_weight' | 'rms_k_weight' | 'score';

/** Tensors only some models have (an unshared classifier, biases, q/k norms). */
export type OptionalWeightName = 'wcls' | 'bq' | 'bk' | 'bv' | 'rms_q_weight' | 'rms_k_weight' | 'score';

/** The weights of a model: one Float32Array per tensor, named as in weightShapes(). */
export type ModelWeights = Partial<Record<WeightName, Float32Array>> & Record<Exclude<WeightName, OptionalWeightName>, Float32Array>;

/** Weight decay applies to matrices and the embedding, not to norm weights or biases. */
export const decays = (name: WeightName): boolean => !name.startsWith('rms_') && !/^b[qkv]$/.test(name);

export const elementCount = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
