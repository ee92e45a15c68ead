// The memory plan's bounds that the kernels rely on without checking them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attentionProbsLayerBytes } from '../../src/core/memory-plan';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, type ModelConfig } from '../../src/core/config';

const config = (seqLen: number): ModelConfig => ({
  dim: 8, hiddenDim: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, vocabSize: 16, seqLen,
  sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA,
});

/** Largest Σ len·(roundUp4(len) + 1) over packings of sequences of 1..seqLen tokens into at most maxTokens rows. */
function worstPacking(seqLen: number, maxTokens: number): number {
  const best = new Array<number>(maxTokens + 1).fill(0);
  for (let t = 1; t <= maxTokens; t++) {
    best[t] = best[t - 1]!;
    for (let len = 1; len <= Math.min(seqLen, t); len++) best[t] = Math.max(best[t]!, best[t - len]! + len * (Math.ceil(len / 4) * 4 + 1));
  }
  return best[maxTokens]!;
}

test('the saved attention probabilities fit every packing of sequences into a micro-batch (causal-attention.ts layout)', () => {
  for (let seqLen = 1; seqLen <= 24; seqLen++) {
    for (let maxTokens = seqLen; maxTokens <= 60; maxTokens++) {
      const c = config(seqLen);
      const needed = 4 * c.nHeads * worstPacking(seqLen, maxTokens);
      const planned = attentionProbsLayerBytes(c, maxTokens);
      assert.ok(planned >= needed, `seq_len ${seqLen}, ${maxTokens} tokens: planned ${planned} bytes, a packing needs ${needed}`);
      if (maxTokens % seqLen === 0 && seqLen % 4 === 0) assert.equal(planned, needed, 'whole sequences of the full context: exact');
    }
  }
});
