// The WASM module's exports. The host (src/core/engine.ts) plans the memory, writes the descriptors of
// model/layout.ts and calls these with their addresses.
import { Model, Workspace, GenerateJob, LogprobsJob, TrainJob, ScoreJob } from "./model/layout";
import { forwardTokens } from "./model/forward";
import { generate as generateBatch } from "./model/generate";
import { logprobs as logprobsBatch } from "./model/logprobs";
import { scores as scoresBatch } from "./model/scores";
import { trainStep as trainStepBatch, trainForward as trainForwardBatch, trainBackward as trainBackwardBatch } from "./model/backward";
import { ropeTablesFromFrequencies } from "./kernels/rope";

export { matmulForward, matmulForwardBf16, matmulForwardF16, matmulForwardQ8_0, matmulForwardQ4_K, matmulForwardTransposed, matmulBackwardInput, matmulBackwardInputOf, matmulBackwardWeight } from "./kernels/matmul";
export { outerProductSum } from "./kernels/outer-product"; // (bench/lora-products.ts times it)
export { widenMatrix, narrowBf16 } from "./kernels/weights";
export { transpose } from "./kernels/transpose";
export { rmsnormForward, rmsnormBackward } from "./kernels/rmsnorm";
export { ropeForward, ropeBackward, ropeTablesInit, ropeInverseFrequencies } from "./kernels/rope";
export { biasForward, biasBackward } from "./kernels/bias";
export { attentionForward } from "./kernels/attention";
export { causalAttentionForward, causalAttentionBackward, causalProbsFloats, causalScratchFloats } from "./kernels/causal-attention";
export { swigluForward, swigluBackward } from "./kernels/swiglu";
export { embeddingForward, embeddingForwardOf, embeddingBackward } from "./kernels/embedding";
export { crossEntropyForwardBackward } from "./kernels/cross-entropy";
export { adamwStep, sumSquares } from "./kernels/adamw";
export { softmaxForward, argmax, logSumExp } from "./kernels/softmax";
export { sampleToken } from "./kernels/sampler";

/** First byte the host may use: everything below holds this module's static data. */
export function heapBase(): usize { return __heap_base; }

/** Descriptor sizes in bytes, so the host can check that its field lists match these classes. */
export function modelDescBytes(): i32 { return offsetof<Model>(); }
export function workspaceDescBytes(): i32 { return offsetof<Workspace>(); }
export function generateJobBytes(): i32 { return offsetof<GenerateJob>(); }
export function logprobsJobBytes(): i32 { return offsetof<LogprobsJob>(); }
export function trainJobBytes(): i32 { return offsetof<TrainJob>(); }
export function scoreJobBytes(): i32 { return offsetof<ScoreJob>(); }

/** Fills the model's RoPE tables from freqs[headSize/2] (ropeInverseFrequencies', rescaled by the host if the model says so). */
export function initRope(model: usize, freqs: usize): void {
  const m = changetype<Model>(model);
  ropeTablesFromFrequencies(m.ropeCos, m.ropeSin, m.seqLen, m.headSize, freqs);
}

export function forward(model: usize, workspace: usize, n: i32, nLogitRows: i32): void {
  forwardTokens(changetype<Model>(model), changetype<Workspace>(workspace), n, nLogitRows);
}

export function generate(model: usize, workspace: usize, job: usize): i32 {
  return generateBatch(changetype<Model>(model), changetype<Workspace>(workspace), changetype<GenerateJob>(job));
}

export function logprobs(model: usize, workspace: usize, job: usize): void {
  logprobsBatch(changetype<Model>(model), changetype<Workspace>(workspace), changetype<LogprobsJob>(job));
}

export function scores(model: usize, workspace: usize, job: usize): void {
  scoresBatch(changetype<Model>(model), changetype<Workspace>(workspace), changetype<ScoreJob>(job));
}

/** trainStep in two halves, so that the host can set a scalar head's dScore from the scores of the forward pass. */
export function trainForward(model: usize, workspace: usize, job: usize): void {
  trainForwardBatch(changetype<Model>(model), changetype<Workspace>(workspace), changetype<TrainJob>(job));
}

export function trainBackward(model: usize, grads: usize, workspace: usize, job: usize): f64 {
  return trainBackwardBatch(changetype<Model>(model), changetype<Model>(grads), changetype<Workspace>(workspace), changetype<TrainJob>(job));
}

/** Adds the gradients of one micro-batch to the tensors of the `grads` descriptor and returns its loss. */
export function trainStep(model: usize, grads: usize, workspace: usize, job: usize): f64 {
  return trainStepBatch(changetype<Model>(model), changetype<Model>(grads), changetype<Workspace>(workspace), changetype<TrainJob>(job));
}
