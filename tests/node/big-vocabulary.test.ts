// Big vocabularies (Llama 3: 128,256; Qwen: 151,936): inference runs the classifier in chunks of about 16 MB of
// logits, so the logits no longer take a row per token; the chunks give the same bits as one call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemaxEngine } from '../../src/core/engine';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, type ModelConfig } from '../../src/core/config';
import { inferenceLogitRows, planWorkspace, workspaceSizes } from '../../src/core/memory-plan';

const CONFIG: ModelConfig = {
  dim: 16, hiddenDim: 24, nLayers: 1, nHeads: 2, nKvHeads: 1, vocabSize: 151_936, seqLen: 40,
  sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA,
};

test('the inference logits take about 16 MB whatever the rows (a scalar head: every row)', () => {
  assert.equal(inferenceLogitRows(CONFIG, 256), 24);
  assert.equal(inferenceLogitRows(CONFIG, 10), 10);
  assert.equal(inferenceLogitRows({ ...CONFIG, vocabSize: 512 }, 256), 256);
  assert.equal(inferenceLogitRows({ ...CONFIG, scoreHead: true }, 256), 256);
  for (const vocab of [32_000, 128_256, 151_936]) assert.equal(inferenceLogitRows({ ...CONFIG, vocabSize: vocab }, 4096) % 4, 0, 'whole tiles of 4');
  const logits = workspaceSizes(CONFIG, { maxSeqs: 64, maxTokens: 256, maxLogitRows: inferenceLogitRows(CONFIG, 256), training: false }).logits;
  assert.ok(logits <= 2 ** 24, `${logits} bytes`);
  assert.ok(planWorkspace(CONFIG, 0, { maxSeqs: 1, maxTokens: 256, maxLogitRows: 24, training: false }).end < 20 * 2 ** 20);
});

test('generate and logprobs over many classifier chunks: exactly what each sequence gives alone', async () => {
  const weights = randomInitWeights(CONFIG, 5);
  for (const w of [weights.token_embedding_table, weights.w2, weights.wo]) for (let i = 0; i < w.length; i++) w[i]! *= 25;
  const e = await RemaxEngine.create({ model: { config: CONFIG, weights, format: 'llama2c-v0' }, build: 'simd' });
  // 30 sequences decode 30 rows a step (two chunks of 24 and 6); their prompts end in a 60-row prefill.
  const prompts = Array.from({ length: 30 }, (_, i) => [1, ...Array.from({ length: 1 + (i % 3) }, (_, t) => (i * 4099 + t * 131) % CONFIG.vocabSize)]);
  for (const sampling of [{ temperature: 0 }, { temperature: 0.8, topP: 0.95 }]) {
    const batch = e.generate(prompts.map((p, i) => ({ promptIds: p, seed: i })), { ...sampling, maxNewTokens: 6, eosId: null, logprobs: true });
    prompts.forEach((p, i) => {
      const [single] = e.generate([{ promptIds: p, seed: i }], { ...sampling, maxNewTokens: 6, eosId: null, logprobs: true });
      assert.deepEqual(batch[i]!.ids, single!.ids, `sequence ${i}`);
      assert.deepEqual(batch[i]!.logprobs, single!.logprobs, `sequence ${i}`);
    });
    // Teacher forcing of 30 sequences (150+ logit rows, 7 chunks) equals each alone and the sampled log-probabilities.
    const sequences = batch.map((g, i) => [...prompts[i]!, ...g.ids]);
    const lp = e.logprobs(sequences);
    sequences.forEach((s, i) => {
      assert.deepEqual(lp[i], e.logprobs([s])[0], `sequence ${i}`);
      const fromGenerate = batch[i]!.logprobs!, tail = lp[i]!.slice(prompts[i]!.length - 1);
      tail.forEach((x, t) => assert.ok(Math.abs(x - fromGenerate[t]!) < 1e-4, `sequence ${i} token ${t}: ${x} vs ${fromGenerate[t]}`));
    });
  }
  assert.ok(e.memoryBytes < 48 * 2 ** 20, `${e.memoryBytes} bytes`);
});
