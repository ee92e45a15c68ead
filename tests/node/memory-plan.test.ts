// The memory plan's bounds that the kernels rely on without checking them, against the kernels' own sizes (the
// WASM module exports causalProbsFloats and causalScratchFloats of assembly/kernels/causal-attention.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attentionProbsLayerBytes, causalScratchFloats } from '../../src/core/memory-plan';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, type ModelConfig } from '../../src/core/config';
import { instantiateKernels } from '../../src/core/kernels';
import { wasmBuilds } from '../../src/wasm-builds';

const config = (seqLen: number, nHeads = 2): ModelConfig => ({
  dim: 8 * nHeads, hiddenDim: 16, nLayers: 1, nHeads, nKvHeads: 1, vocabSize: 16, seqLen,
  sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA,
});

interface AttentionSizes {
  causalProbsFloats(len: number, nHeads: number): number;
  causalScratchFloats(seqLen: number, headSize: number): number;
}
const kernel = async (): Promise<AttentionSizes> => (await instantiateKernels(wasmBuilds, 'simd')).exports as unknown as AttentionSizes;

/** Largest Σ causalProbsFloats(len) over packings of sequences of 1..seqLen tokens into at most maxTokens rows. */
function worstPacking(seqLen: number, maxTokens: number, probsFloats: (len: number) => number): number {
  const best = new Array<number>(maxTokens + 1).fill(0);
  for (let t = 1; t <= maxTokens; t++) {
    best[t] = best[t - 1]!;
    for (let len = 1; len <= Math.min(seqLen, t); len++) best[t] = Math.max(best[t]!, best[t - len]! + probsFloats(len));
  }
  return best[maxTokens]!;
}

test('the saved attention probabilities fit every packing of sequences into a micro-batch (the kernel\'s own sizes)', async () => {
  const k = await kernel();
  for (const nHeads of [1, 2, 3]) {
    for (let seqLen = 1; seqLen <= 24; seqLen++) {
      for (let maxTokens = seqLen; maxTokens <= 60; maxTokens++) {
        const c = config(seqLen, nHeads);
        const needed = 4 * worstPacking(seqLen, maxTokens, (len) => k.causalProbsFloats(len, nHeads));
        const planned = attentionProbsLayerBytes(c, maxTokens);
        assert.ok(planned >= needed, `${nHeads} heads, seq_len ${seqLen}, ${maxTokens} tokens: planned ${planned} bytes, a packing needs ${needed}`);
        if (maxTokens % seqLen === 0 && seqLen % 4 === 0) assert.equal(planned, needed, 'whole sequences of the full context: exact');
      }
    }
  }
});

test('the attention scratch the plan gives is what the kernel asks for', async () => {
  const k = await kernel();
  for (const headSize of [1, 3, 8, 48]) {
    for (const seqLen of [1, 2, 5, 16, 127, 128, 512]) {
      assert.equal(causalScratchFloats(seqLen, headSize), k.causalScratchFloats(seqLen, headSize), `seq_len ${seqLen}, head size ${headSize}`);
    }
  }
});
