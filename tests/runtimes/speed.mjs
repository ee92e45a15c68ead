// The same work timed in any runtime, for `npm run bench -- --only=runtimes` (never asserted in a test): batched
// sampled decoding (16 sequences × 128 new tokens) and a training step (forward + backward + AdamW on 8 × 128
// tokens), on stories260K when the shared data is there, else a random model of its shape. Medians of 5 runs.

const CONFIG_260K = {
  dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512,
  sharedClassifier: true, normEps: 1e-5, ropeTheta: 10000,
};
const RUNS = 5, DECODE_SEQS = 16, DECODE_TOKENS = 128, TRAIN_SEQS = 8, TRAIN_TOKENS = 128;

function medianMs(fn) {
  fn(); // warm-up
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(RUNS / 2)];
}

/** Tokens per second of decoding and of training, for each kernel build this engine accepts. */
export async function runSpeed(lib, { runtime, version, stories = null }) {
  const { RemaxEngine, randomInitWeights, supportsRelaxedSimd, wasmBuilds } = lib;
  const model = stories ?? { config: CONFIG_260K, weights: randomInitWeights(CONFIG_260K, 1), format: 'llama2c-v0' };
  const builds = supportsRelaxedSimd(wasmBuilds) ? ['simd', 'relaxed-simd'] : ['simd'];
  const results = [];
  for (const build of builds) {
    const engine = await RemaxEngine.create({ model, build, maxBatch: DECODE_SEQS });
    // Distinct prompts: sequences with the same tokens so far would share their rows.
    const requests = Array.from({ length: DECODE_SEQS }, (_, i) => ({ promptIds: [1, 3 + i] }));
    const decodeMs = medianMs(() => engine.generate(requests, { temperature: 1, topP: 0.9, seed: 1, maxNewTokens: DECODE_TOKENS, eosId: null }));
    engine.enableTraining({ maxTokens: TRAIN_SEQS * TRAIN_TOKENS, maxSeqs: TRAIN_SEQS });
    const vocab = engine.config.vocabSize;
    const batch = Array.from({ length: TRAIN_SEQS }, (_, b) => {
      const ids = Array.from({ length: TRAIN_TOKENS }, (_, i) => (i === 0 ? 1 : 3 + ((i * 31 + b * 7) % (vocab - 3))));
      return { ids, weights: ids.map((_, i) => (i === 0 ? 0 : 1 / (TRAIN_SEQS * (TRAIN_TOKENS - 1)))) };
    });
    const trainMs = medianMs(() => {
      engine.zeroGradients();
      engine.accumulateGradients(batch);
      engine.optimizerStep({ lr: 1e-4 });
    });
    results.push({
      runtime, version, build, model: stories ? 'stories260K' : 'random stories260K-shaped',
      decodeTokensPerSecond: Math.round((DECODE_SEQS * DECODE_TOKENS) / (decodeMs / 1000)),
      trainTokensPerSecond: Math.round((TRAIN_SEQS * TRAIN_TOKENS) / (trainMs / 1000)),
    });
  }
  return results;
}
