// The scalar head (a reward model's or critic's dim → 1 score in place of the classifier): its scores against an
// independent float64 model, and the gradient of Σ dScore·score through the head and the whole transformer against
// finite differences of that model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemaxEngine } from '../../src/core/engine';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, weightShapes, type ModelConfig, type ModelWeights } from '../../src/core/config';
import { Prng } from '../../src/core/prng';
import { finiteDifferenceErrors, referenceLoss, type Weights64 } from './reference-llama';

const maxAbs = (t: ArrayLike<number>) => Array.from(t).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

const tiny = (overrides: Partial<ModelConfig>): ModelConfig => ({
  dim: 24, hiddenDim: 20, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 19, seqLen: 12,
  sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA, scoreHead: true, ...overrides,
});

function randomWeights(config: ModelConfig, seed: number): ModelWeights {
  const w = randomInitWeights(config, seed);
  const rng = new Prng(seed + 1);
  for (const { name } of weightShapes(config)) {
    const t = w[name]!;
    for (let i = 0; i < t.length; i++) t[i] = name.startsWith('rms') ? 0.5 + rng.nextFloat64() : t[i]! * 12;
  }
  return w;
}

// dScore per token: a reward model's (the last token only, +/− as a chosen/rejected pair) and a critic's (every row).
const EXAMPLES = [
  { ids: [1, 5, 9, 3, 17, 2], weights: [0, 0, 0, 0, 0, 0.7] },
  { ids: [1, 11, 4, 4, 8, 13, 6, 2, 10], weights: [0, 0, 0, 0, 0, 0, 0, 0, -0.7] },
  { ids: [1, 7, 3, 12], weights: [0.2, -0.5, 1.1, 0.4] },
];

const CONFIGS: [string, ModelConfig][] = [
  ['llama2.c', tiny({})],
  ['q/k/v biases (Qwen2)', tiny({ qkvBias: true })],
  ['q/k norms, head size 8 (Qwen3)', tiny({ qkNorm: true, headSize: 8 })],
];

const float64 = (config: ModelConfig, weights: ModelWeights): Weights64 =>
  Object.fromEntries(weightShapes(config).map(({ name }) => [name, Float64Array.from(weights[name]!)]));

test('a scalar-head model has a score tensor [1, dim] and no classifier', () => {
  const shapes = weightShapes(tiny({ sharedClassifier: true }));
  assert.deepEqual(shapes.find((s) => s.name === 'score')?.shape, [1, 24]);
  assert.equal(shapes.some((s) => s.name === 'wcls'), false);
});

for (const [what, config] of CONFIGS) {
  test(`scalar head: scores at every row and the last equal the float64 model's: ${what}`, async () => {
    const weights = randomWeights(config, 3);
    const w64 = float64(config, weights);
    // maxTokens 5: the sequences run in several prefill chunks sharing the cache.
    const engine = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' }, maxTokens: 5 });
    assert.equal(engine.hasScoreHead, true);
    const all = engine.tokenScores(EXAMPLES.map((e) => e.ids));
    const last = engine.scores(EXAMPLES.map((e) => e.ids));
    EXAMPLES.forEach((e, s) => {
      assert.equal(all[s]!.length, e.ids.length);
      assert.equal(last[s], all[s]![e.ids.length - 1]);
      e.ids.forEach((_, t) => {
        const onehot = e.ids.map((__, u) => (u === t ? 1 : 0));
        const ref = referenceLoss(config, w64, [{ ids: e.ids, weights: onehot }]);
        assert.ok(Math.abs(all[s]![t]! - ref) <= 1e-5 * Math.max(1, Math.abs(ref)), `sequence ${s} row ${t}: ${all[s]![t]} vs float64 ${ref}`);
      });
    });
    // Alone or batched: the same bits.
    assert.deepEqual(engine.scores([EXAMPLES[1]!.ids]), [last[1]]);
  });

  test(`scalar head: the gradient of Σ dScore·score agrees with finite differences, head and transformer: ${what}`, async () => {
    const weights = randomWeights(config, 5);
    const engine = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' } });
    engine.enableTraining({ maxTokens: config.seqLen, maxSeqs: 2 });
    engine.zeroGradients();
    const { loss, tokens } = engine.accumulateGradients(EXAMPLES);
    assert.equal(tokens, 6);
    const grads = engine.readGradients();
    const w64 = float64(config, weights);
    const reference = referenceLoss(config, w64, EXAMPLES);
    assert.ok(Math.abs(loss - reference) <= 1e-5 * Math.max(1, Math.abs(reference)), `loss ${loss} vs float64 ${reference}`);
    for (const { name } of weightShapes(config)) assert.ok(maxAbs(grads[name]!) > 0, `${name}: no gradient at all`);
    for (const { name, i, gradient, fd, err } of finiteDifferenceErrors(config, w64, EXAMPLES, grads)) {
      assert.ok(err <= 1e-3, `${name}[${i}]: gradient ${gradient} vs finite difference ${fd} (relative error ${err.toExponential(2)})`);
    }
  });
}

test('a reward model generates no tokens and gives no log-probabilities', async () => {
  const config = tiny({});
  const engine = await RemaxEngine.create({ model: { config, weights: randomWeights(config, 1), format: 'llama2c-v0' } });
  assert.throws(() => engine.generate([{ promptIds: [1, 2] }]), /reward model .* generate needs a causal LM/);
  assert.throws(() => engine.logprobs([[1, 2]]), /log-probabilities needs a causal LM/);
});

test('scores of a causal LM are refused', async () => {
  const config = tiny({ scoreHead: false });
  const engine = await RemaxEngine.create({ model: { config, weights: randomWeights(config, 1), format: 'llama2c-v0' } });
  assert.throws(() => engine.scores([[1, 2]]), /no scalar head/);
});

test('accumulateScoreGradients: one forward pass gives the scores to form dScore from, and the gradient of accumulateGradients; groups stay whole', async () => {
  const config = tiny({ qkvBias: true });
  const weights = randomWeights(config, 11);
  const sequences = EXAMPLES.map((e) => e.ids);
  const ref = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' } });
  const inference = ref.tokenScores(sequences);
  // dScore from the scores themselves (as a loss does): d = 0.1·score at every row.
  const dOf = (rows: number[][]) => rows.map((row) => row.map((s) => 0.1 * s));
  for (const activationCheckpointing of [false, true]) {
    const engine = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' } });
    // Room for 2 sequences per micro-batch: the groups [0, 1] and [2] come in two calls.
    engine.enableTraining({ maxTokens: 16, maxSeqs: 2, activationCheckpointing });
    engine.zeroGradients();
    const seen: number[][][][] = [];
    const { loss } = engine.accumulateScoreGradients([[sequences[0]!, sequences[1]!], [sequences[2]!]], (scores) => {
      seen.push(scores);
      return scores.map(dOf);
    });
    assert.equal(seen.length, 2);
    const flat = seen.flat(2);
    flat.forEach((row, s) => row.forEach((v, t) => assert.ok(Math.abs(v - inference[s]![t]!) <= 1e-5 * Math.max(1, Math.abs(v)), `score ${s},${t}`)));
    const one = engine.readGradients();
    engine.zeroGradients();
    const again = engine.accumulateGradients(sequences.map((ids, s) => ({ ids, weights: dOf([flat[s]!])[0]! })));
    assert.equal(again.loss, loss);
    const two = engine.readGradients();
    for (const { name } of weightShapes(config)) assert.deepEqual(one[name], two[name], `${name} (activation checkpointing ${activationCheckpointing})`);
  }
});
