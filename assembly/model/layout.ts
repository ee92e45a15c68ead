// Descriptors the host writes into linear memory (src/core/layout.ts lists the same fields in the same order).
// Every field is 4 bytes; pointers are byte offsets into the one shared memory. Kernels keep no global state:
// everything they touch is reached from these descriptors, so several workers could share one memory.

/**
 * Config and weight pointers (llama2.c's Config + TransformerWeights, and the optional tensors of other Llama-family
 * architectures). Layer tensors are stacked per layer; wq is [nLayers, nHeads·headSize, dim], wo [nLayers, dim,
 * nHeads·headSize]. One forward and one backward read every architecture from these fields.
 */
@unmanaged export class Model {
  dim: i32;
  hiddenDim: i32;
  nLayers: i32;
  nHeads: i32;
  nKvHeads: i32;
  vocabSize: i32;
  seqLen: i32;
  normEps: f32;
  ropeTheta: f32;
  tokenEmbedding: usize;
  rmsAtt: usize;
  wq: usize;
  wk: usize;
  wv: usize;
  wo: usize;
  rmsFfn: usize;
  w1: usize;
  w2: usize;
  w3: usize;
  rmsFinal: usize;
  wcls: usize;
  ropeCos: usize;
  ropeSin: usize;
  headSize: i32;     // channels per head; queries are nHeads·headSize wide (may differ from dim: Qwen3)
  bq: usize;         // [nLayers, nHeads·headSize] query bias (Qwen2), 0 = none
  bk: usize;         // [nLayers, kvDim] key bias, 0 = none
  bv: usize;         // [nLayers, kvDim] value bias, 0 = none
  rmsQ: usize;       // [nLayers, headSize] RMSNorm weights over each query head before RoPE (Qwen3), 0 = none
  rmsK: usize;       // [nLayers, headSize] the same for keys, 0 = none
  // LoRA adapters (model/lora.ts): per projection A [nLayers, loraRank, in] and B [nLayers, out, loraRank], 0 = none
  // (the projection is frozen W alone). In a gradients descriptor they point at the adapters' gradients, and the
  // frozen tensors' fields are 0: no gradient is computed for them.
  loraRank: i32;
  loraScale: f32;    // lora_alpha / rank
  loraAq: usize;
  loraBq: usize;
  loraAk: usize;
  loraBk: usize;
  loraAv: usize;
  loraBv: usize;
  loraAo: usize;
  loraBo: usize;
  loraA1: usize;     // gate_proj (w1)
  loraB1: usize;
  loraA3: usize;     // up_proj (w3)
  loraB3: usize;
  loraA2: usize;     // down_proj (w2)
  loraB2: usize;
  loraDropThreshold: i32; // LoRA dropout in training: an input value is dropped when its hash's top 24 bits are below this (p·2^24), 0 = off
  loraDropScale: f32;     // 1/(1 − p): what the kept values are multiplied by
  wscore: usize;     // [dim] scalar head (…ForSequenceClassification's score.weight, num_labels 1): the model then
                     // gives one score per requested row instead of logits (wcls unused); 0 = a causal LM
  // How each matrix is stored (kernels/weights.ts: F32, BF16, F16, Q8_0); norms and biases are always float32.
  embeddingType: i32;
  wqType: i32;
  wkType: i32;
  wvType: i32;
  woType: i32;
  w1Type: i32;
  w2Type: i32;
  w3Type: i32;
  wclsType: i32;     // = embeddingType when the classifier is the embedding
}

/**
 * Activations for up to maxTokens packed token rows, their KV cache, sampler scratch (llama2.c's RunState) and,
 * for training, the saved activations and gradient scratch of the backward pass.
 * Per-layer buffers sit at base + layer·layerStride (layerStrideHidden for hidden-sized ones): an inference
 * workspace has strides 0 (one buffer reused by every layer) and xIn = xMid = 0 (nothing saved); a training
 * workspace keeps every layer's activations for the backward pass, or, with activation checkpointing
 * (recomputeLayers), every layer's input xIn but one layer's activations (strides 0), recomputed in backward.
 */
@unmanaged export class Workspace {
  maxTokens: i32;
  maxSeqs: i32;
  maxLogitRows: i32;     // rows of `logits` (the classifier runs in chunks of this many rows)
  layerStride: usize;    // bytes between layers of the [maxTokens, dim] buffers, 0 = not saved
  layerStrideHidden: usize;
  tokens: usize;     // i32[maxTokens]: token id of each packed row
  slots: usize;      // i32[maxTokens]: KV-cache slot (sequence) of each row
  positions: usize;  // i32[maxTokens]: position of each row in its sequence
  logitRows: usize;  // i32[maxTokens]: rows whose logits (a scalar-head model: scores) are wanted
  x: usize;          // f32[maxTokens, dim] residual stream
  xIn: usize;        // per layer f32[maxTokens, dim]: residual entering the layer (training)
  xb: usize;         // per layer f32[maxTokens, dim]: attention RMSNorm output
  q: usize;          // per layer f32[maxTokens, qDim]: queries after RoPE (qDim = nHeads·headSize)
  k: usize;          // f32[maxTokens, kvDim] (scratch: keys go to the cache)
  v: usize;          // f32[maxTokens, kvDim]
  attOut: usize;     // per layer f32[maxTokens, qDim]: attention output before wo
  xMid: usize;       // per layer f32[maxTokens, dim]: residual after attention (training)
  xbFfn: usize;      // per layer f32[maxTokens, dim]: feed-forward RMSNorm output
  h1: usize;         // per layer f32[maxTokens, hidden]: w1·x
  h3: usize;         // per layer f32[maxTokens, hidden]: w3·x
  gated: usize;      // per layer f32[maxTokens, hidden]: silu(h1) ⊙ h3
  sigmoid: usize;    // per layer f32[maxTokens, hidden]: σ(h1), kept for the backward pass (training)
  scores: usize;     // f32[attentionScratchFloats(seqLen)] attention scratch
  logits: usize;     // f32[maxLogitRows, vocab] (a scalar-head model: f32[maxLogitRows] scores)
  kCache: usize;     // f32[nLayers, maxSeqs, seqLen, kvDim]
  vCache: usize;     // f32[nLayers, maxSeqs, seqLen, kvDim]
  probs: usize;      // f32[vocab] sampler scratch
  ids: usize;        // i32[vocab] sampler scratch
  // Training only (0 in an inference workspace):
  targets: usize;    // i32[maxTokens]: token each row predicts, −1 = none
  weights: usize;    // f32[maxTokens]: loss weight of each row's prediction
  dx: usize;         // f32[maxTokens, dim] gradient of the residual stream
  dxb: usize;        // f32[maxTokens, max(dim, qDim)]: ∂L/∂(norm output), and first ∂L/∂(attention output)
  dq: usize;         // f32[maxTokens, qDim]
  dk: usize;         // f32[maxTokens, kvDim]
  dv: usize;         // f32[maxTokens, kvDim]
  dh1: usize;        // f32[maxTokens, hidden]
  dh3: usize;        // f32[maxTokens, hidden]
  dGated: usize;     // f32[maxTokens, hidden]
  attScratch: usize; // f32[causalScratchFloats(seqLen, headSize)]: training attention scratch
  headRows: usize;   // i32[maxLogitRows]: rows in the current classifier chunk
  headTargets: usize;// i32[maxLogitRows]
  headWeights: usize;// f32[maxLogitRows]
  headEntropy: usize;// f32[maxLogitRows]: entropy of each chunk row's softmax (when the job wants entropies)
  headX: usize;      // f32[maxLogitRows, dim] final-normed rows of the chunk
  headDx: usize;     // f32[maxLogitRows, dim]
  layerStrideProbs: usize; // bytes between layers of attProbs
  attProbs: usize;   // per layer: attention probabilities of every sequence and head (training), see causal-attention.ts
  transposeA: usize; // f32 scratch for transposed matmul operands: a weight matrix or n×out gradients
  transposeB: usize; // f32 scratch: n×in activations
  classifierT: usize;// f32[dim, vocab]: wclsᵀ, transposed once per train step for every classifier chunk's dx
  weightsT: usize;   // training with narrow layers (dim and hidden ≤ 256), else 0: every layer's matrices transposed
                     // once per step (layerWeightsT), for matmulForwardTransposed
  layerStrideIn: usize; // bytes between layers of xIn (training): every layer's input is always kept
  recomputeLayers: i32; // 1 = activation checkpointing: one layer's activations are kept (layerStride 0) and the
                        // backward pass recomputes each layer's from its input
  layerStrideQ: usize;  // bytes between layers of the [maxTokens, qDim] buffers (q, attOut, qPre), 0 = not saved
  layerStrideKv: usize; // bytes between layers of kPre, 0 = not saved
  qPre: usize;       // per layer f32[maxTokens, qDim]: queries before their RMSNorm (training with q/k norms), else 0
  kPre: usize;       // per layer f32[maxTokens, kvDim]: keys before their RMSNorm (training with q/k norms), else 0
  loraStride: usize; // bytes between layers of loraU, 0 = one layer's (inference, activation checkpointing)
  loraU: usize;      // per layer, per adapted projection f32[maxTokens, loraRank]: scale·x·Aᵀ (0 without adapters)
  loraDu: usize;     // f32[maxTokens, loraRank]: its gradient (training)
  loraSeeds: usize;  // u32[maxTokens]: dropout seed of each row's sequence (training with adapters)
  loraXd: usize;     // f32[maxTokens, max(dim, hidden, qDim)]: an adapter's input after dropout (training with dropout), else 0
  weightRows: usize; // f32[WEIGHT_SCRATCH_FLOATS]: compact weight rows widened for the matmul (kernels/matmul.ts)
  loraBt: usize;     // f32[loraRank, max(dim, hidden, qDim, kvDim)]: one adapter's B transposed (with adapters), else 0
}

/** A batched generation request and its outputs. Arrays are indexed by sequence. */
@unmanaged export class GenerateJob {
  nSeqs: i32;
  promptIds: usize;      // i32[]: all prompts, packed
  promptOffsets: usize;  // i32[nSeqs + 1]
  maxNewTokens: usize;   // i32[nSeqs]
  temperature: usize;    // f32[nSeqs] (0 = greedy)
  topK: usize;           // i32[nSeqs] (0 = off)
  topP: usize;           // f32[nSeqs] (1 = off)
  rngStates: usize;      // u64[nSeqs], advanced in place
  stopIds: usize;        // i32[nStopIds]: tokens that end a sequence (kept in the output)
  nStopIds: i32;
  outIds: usize;         // i32[nSeqs, outStride] new tokens
  outStride: i32;
  outLengths: usize;     // i32[nSeqs]
  outLogprobs: usize;    // f32[nSeqs, outStride] log π(token) under the untempered model; 0 = none wanted
  sharedWith: usize;     // i32[nSeqs]: the sequence whose rows this one shares: at first the first sequence with the
                         // same prompt (itself if none), then itself once their tokens differ (updated by generate)
  wantLogprobs: usize;   // i32[nSeqs]: 1 = write this sequence's log-probabilities (a greedy baseline needs none)
}

/**
 * A training micro-batch: packed complete sequences (each from position 0) and per-token loss weights. With a scalar
 * head, weights[t] is instead ∂L/∂score at token t (0 = no score there), not shifted by one.
 */
@unmanaged export class TrainJob {
  nSeqs: i32;
  ids: usize;      // i32[]: all sequences, packed
  offsets: usize;  // i32[nSeqs + 1]
  weights: usize;  // f32[] aligned with ids: weight of predicting ids[t] from ids[<t] (the first of each is unused)
  dropoutSeeds: usize; // u32[nSeqs]: each sequence's LoRA dropout seed
  scores: usize;   // f32[] aligned with ids: a scalar-head model's trainForward writes every row's score here; 0 = none
  entropyFrom: usize; // i32[nSeqs]: entropies are wanted for predicting ids[t], t ≥ entropyFrom[s] (a response's tokens), even at weight 0
  entropy: usize;  // f32[] aligned with ids: trainBackward writes there the entropy of the distribution predicting each
                   // wanted ids[t] (others untouched); 0 = none wanted (a causal LM only)
}

/** Teacher-forced log-probabilities: out[offsets[s] − s + t − 1] = log p(ids[t] | ids[<t]) of sequence s. */
@unmanaged export class LogprobsJob {
  nSeqs: i32;
  ids: usize;      // i32[]: all sequences, packed
  offsets: usize;  // i32[nSeqs + 1]
  out: usize;      // f32[total tokens − nSeqs]
}

/** Scores of a scalar-head model at chosen tokens: out[t] = score after ids[≤t] where wanted[t] != 0 (others untouched). */
@unmanaged export class ScoreJob {
  nSeqs: i32;
  ids: usize;      // i32[]: all sequences, packed
  offsets: usize;  // i32[nSeqs + 1]
  wanted: usize;   // i32[] aligned with ids
  out: usize;      // f32[] aligned with ids
}
