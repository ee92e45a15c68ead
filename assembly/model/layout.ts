// Descriptors the host writes into linear memory (src/core/layout.ts lists the same fields in the same order).
// Every field is 4 bytes; pointers are byte offsets into the one shared memory. Kernels keep no global state:
// everything they touch is reached from these descriptors, so several workers could share one memory.

/** Config and weight pointers (llama2.c's Config + TransformerWeights). Layer tensors are stacked per layer. */
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
}

/** Activations for up to maxTokens packed tokens, the KV cache of maxSeqs sequences, sampler scratch (RunState). */
@unmanaged export class Workspace {
  maxTokens: i32;
  maxSeqs: i32;
  tokens: usize;     // i32[maxTokens]: token id of each packed row
  slots: usize;      // i32[maxTokens]: KV-cache slot (sequence) of each row
  positions: usize;  // i32[maxTokens]: position of each row in its sequence
  logitRows: usize;  // i32[maxTokens]: rows whose logits are wanted
  x: usize;          // f32[maxTokens, dim] residual stream
  xb: usize;         // f32[maxTokens, dim]
  xb2: usize;        // f32[maxTokens, dim]
  q: usize;          // f32[maxTokens, dim]
  k: usize;          // f32[maxTokens, kvDim]
  v: usize;          // f32[maxTokens, kvDim]
  hb: usize;         // f32[maxTokens, hiddenDim]
  hb2: usize;        // f32[maxTokens, hiddenDim]
  scores: usize;     // f32[seqLen] attention scores of one head
  logits: usize;     // f32[maxTokens, vocab]
  kCache: usize;     // f32[nLayers, maxSeqs, seqLen, kvDim]
  vCache: usize;     // f32[nLayers, maxSeqs, seqLen, kvDim]
  probs: usize;      // f32[vocab] sampler scratch
  ids: usize;        // i32[vocab] sampler scratch
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
  eosId: i32;            // stop token (kept in the output), −1 = none
  outIds: usize;         // i32[nSeqs, outStride] new tokens
  outStride: i32;
  outLengths: usize;     // i32[nSeqs]
  outLogprobs: usize;    // f32[nSeqs, outStride] log π(token) under the untempered model; 0 = not wanted
}

/** Teacher-forced log-probabilities: out[offsets[s] − s + t − 1] = log p(ids[t] | ids[<t]) of sequence s. */
@unmanaged export class LogprobsJob {
  nSeqs: i32;
  ids: usize;      // i32[]: all sequences, packed
  offsets: usize;  // i32[nSeqs + 1]
  out: usize;      // f32[total tokens − nSeqs]
}
