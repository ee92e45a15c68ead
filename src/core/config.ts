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
}

export const LLAMA2C_NORM_EPS = 1e-5;
export const LLAMA2C_ROPE_THETA = 10000;

export const headSize = (c: ModelConfig): number => c.dim / c.nHeads;
export const kvDim = (c: ModelConfig): number => (c.dim * c.nKvHeads) / c.nHeads;

/** Weight tensors in llama2.c file order, with their shapes (layer tensors stacked on a leading layer axis). */
export function weightShapes(c: ModelConfig): { name: WeightName; shape: number[] }[] {
  const L = c.nLayers, D = c.dim, H = c.hiddenDim, KV = kvDim(c);
  const shapes: { name: WeightName; shape: number[] }[] = [
    { name: 'token_embedding_table', shape: [c.vocabSize, D] },
    { name: 'rms_att_weight', shape: [L, D] },
    { name: 'wq', shape: [L, D, D] },
    { name: 'wk', shape: [L, KV, D] },
    { name: 'wv', shape: [L, KV, D] },
    { name: 'wo', shape: [L, D, D] },
    { name: 'rms_ffn_weight', shape: [L, D] },
    { name: 'w1', shape: [L, H, D] },
    { name: 'w2', shape: [L, D, H] },
    { name: 'w3', shape: [L, H, D] },
    { name: 'rms_final_weight', shape: [D] },
  ];
  if (!c.sharedClassifier) shapes.push({ name: 'wcls', shape: [c.vocabSize, D] });
  return shapes;
}

export type WeightName =
  | 'token_embedding_table' | 'rms_att_weight' | 'wq' | 'wk' | 'wv' | 'wo'
  | 'rms_ffn_weight' | 'w1' | 'w2' | 'w3' | 'rms_final_weight' | 'wcls';

/** The weights of a model: one Float32Array per tensor, named as in weightShapes(). */
export type ModelWeights = Partial<Record<WeightName, Float32Array>> & Record<Exclude<WeightName, 'wcls'>, Float32Array>;

export const elementCount = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
