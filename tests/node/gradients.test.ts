// The engine's gradients: against the independent float64 reference of ../shared (stories260K), against finite
// differences of a plain float64 model on tiny random configs, and invariant to how a batch is split.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemaxEngine } from '../../src/core/engine';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, weightShapes, type ModelConfig, type ModelWeights, type WeightName } from '../../src/core/config';
import { Prng } from '../../src/core/prng';
import { finiteDifferenceErrors, referenceLoss, type Weights64 } from './reference-llama';
import { readShared, readSharedJson, skipUnlessShared } from './shared-data';

const norm = (t: Float32Array) => Math.sqrt(t.reduce((s, v) => s + v * v, 0));
const maxAbs = (t: ArrayLike<number>) => Array.from(t).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

test('stories260K: ReMax loss and every gradient match the float64 reference', { skip: skipUnlessShared('models/stories260K.bin', 'reference/remax_grad_stories260K.json') }, async () => {
  const ref = readSharedJson('reference/remax_grad_stories260K.json');
  const engine = await RemaxEngine.create({ model: readShared('models/stories260K.bin') });
  engine.enableTraining();
  engine.zeroGradients();
  const examples = ref.batch.map((b: { prompt_ids: number[]; response_ids: number[]; advantage: number }) => ({
    ids: [...b.prompt_ids, ...b.response_ids],
    weights: [...b.prompt_ids.map(() => 0), ...b.response_ids.map(() => b.advantage)],
  }));
  const { loss } = engine.accumulateGradients(examples);
  assert.ok(Math.abs(loss - ref.loss) / Math.abs(ref.loss) <= 1e-4, `loss ${loss} vs ${ref.loss}`);
  const grads = engine.readGradients();
  for (const [name, expected] of Object.entries<{ norm: number; head16: number[]; full?: number[] }>(ref.grads)) {
    const g = grads[name as WeightName]!;
    const scale = maxAbs(g);
    assert.ok(Math.abs(norm(g) - expected.norm) / expected.norm <= 1e-4, `${name}: norm ${norm(g)} vs ${expected.norm}`);
    expected.head16.forEach((v, i) => assert.ok(Math.abs(g[i]! - v) <= 1e-4 * scale, `${name}[${i}]: ${g[i]} vs ${v}`));
    expected.full?.forEach((v, i) => assert.ok(Math.abs(g[i]! - v) <= 1e-4 * scale, `${name}[${i}]: ${g[i]} vs ${v}`));
  }
  assert.ok(Math.abs(engine.gradientNorm() - ref.grad_total_norm) / ref.grad_total_norm <= 1e-4);
});

const tiny = (overrides: Partial<ModelConfig>): ModelConfig => ({
  dim: 24, hiddenDim: 20, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 19, seqLen: 12,
  sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA, ...overrides,
});

/** Random weights with a scale that makes the model's function far from trivial (norm weights away from 1). */
function randomWeights(config: ModelConfig, seed: number): ModelWeights {
  const w = randomInitWeights(config, seed);
  const rng = new Prng(seed + 1);
  for (const { name } of weightShapes(config)) {
    const t = w[name]!;
    for (let i = 0; i < t.length; i++) t[i] = name.startsWith('rms') ? 0.5 + rng.nextFloat64() : t[i]! * 12;
  }
  return w;
}

const EXAMPLES = [
  { ids: [1, 5, 9, 3, 17, 2], weights: [0, 0, 0, 0.7, 0.7, 0.7] },
  { ids: [1, 11, 4, 4, 8, 13, 6, 2, 10], weights: [0, 0, -0.3, -0.3, -0.3, -0.3, -0.3, -0.3, -0.3] },
  { ids: [1, 7], weights: [0, 1.5] },
];

const LLAMA3_SCALING = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 256 } as const;

const FD_CONFIGS: [string, ModelConfig][] = [
  ['llama2.c', tiny({})],
  ['own classifier', tiny({ sharedClassifier: false, nKvHeads: 2, dim: 20, nHeads: 2, hiddenDim: 9 })],
  ['q/k/v biases (Qwen2)', tiny({ qkvBias: true })],
  // Queries wider than the model (head size 8 × 4 heads = 32 > dim 24), as Qwen3-0.6B's 16 × 128 > 1024.
  ['per-head q/k norms, head size 8 ≠ dim/heads (Qwen3)', tiny({ qkNorm: true, headSize: 8 })],
  // theta 500000, head size 8: frequency 0 is kept, 1 interpolated, 2 and 3 divided by the factor.
  ['llama3 RoPE scaling, head size 4 < dim/heads', tiny({ headSize: 4, ropeTheta: 500000, ropeScaling: LLAMA3_SCALING, sharedClassifier: false })],
  ['RoPE frequency factors (GGUF rope_freqs), biases and norms together', tiny({ headSize: 8, ropeScaling: { type: 'factors', factors: [1, 1.5, 3, 8] }, qkvBias: true, qkNorm: true })],
];

test('the llama3 test scaling exercises all three regimes of the rule', () => {
  const hs = 8, theta = 500000, { originalMaxPositionEmbeddings: ctx, lowFreqFactor, highFreqFactor } = LLAMA3_SCALING;
  const wavelens = [0, 1, 2, 3].map((i) => 2 * Math.PI * Math.pow(theta, (2 * i) / hs));
  assert.ok(wavelens[0]! < ctx / highFreqFactor && wavelens[1]! > ctx / highFreqFactor && wavelens[1]! < ctx / lowFreqFactor && wavelens[2]! > ctx / lowFreqFactor);
});

for (const [what, config] of FD_CONFIGS) {
  test(`finite differences of a float64 model agree with the gradients: ${what} (dim ${config.dim}, ${config.nHeads}/${config.nKvHeads} heads)`, async () => {
    const weights = randomWeights(config, 3);
    const engine = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' } });
    engine.enableTraining({ maxTokens: config.seqLen, maxSeqs: 2 });
    engine.zeroGradients();
    const { loss } = engine.accumulateGradients(EXAMPLES);
    const grads = engine.readGradients();
    const w64: Weights64 = {};
    for (const { name } of weightShapes(config)) w64[name] = Float64Array.from(weights[name]!);
    const reference = referenceLoss(config, w64, EXAMPLES);
    assert.ok(Math.abs(loss - reference) <= 1e-5 * Math.abs(reference), `loss ${loss} vs float64 ${reference}`);

    for (const { name, i, gradient, fd, err } of finiteDifferenceErrors(config, w64, EXAMPLES, grads)) {
      assert.ok(err <= 1e-3, `${name}[${i}]: gradient ${gradient} vs finite difference ${fd} (relative error ${err.toExponential(2)})`);
    }
  });
}

test('the inference forward (KV cache, chunked prefill) of every configuration gives the float64 log-likelihood', async () => {
  for (const [what, config] of FD_CONFIGS) {
    const weights = randomWeights(config, 4);
    const w64: Weights64 = {};
    for (const { name } of weightShapes(config)) w64[name] = Float64Array.from(weights[name]!);
    // maxTokens 5 cuts the sequences into several prefill chunks that share the cache.
    const engine = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' }, maxTokens: 5 });
    const logprobs = engine.logprobs(EXAMPLES.map((e) => e.ids));
    const loss = -EXAMPLES.reduce((sum, e, i) => sum + logprobs[i]!.reduce((s, lp, t) => s + lp * e.weights[t + 1]!, 0), 0);
    const reference = referenceLoss(config, w64, EXAMPLES);
    assert.ok(Math.abs(loss - reference) <= 1e-5 * Math.abs(reference), `${what}: log-likelihood ${loss} vs float64 ${reference}`);
  }
});

test('gradient accumulation over micro-batches equals one big batch', async () => {
  const config = tiny({});
  const weights = randomWeights(config, 5);
  const whole = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' } });
  whole.enableTraining({ maxTokens: 64, maxSeqs: 8 });
  whole.zeroGradients();
  const a = whole.accumulateGradients(EXAMPLES);
  const split = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' } });
  split.enableTraining({ maxTokens: config.seqLen, maxSeqs: 1 });
  split.zeroGradients();
  let loss = 0;
  for (const e of EXAMPLES) loss += split.accumulateGradients([e]).loss;
  assert.ok(Math.abs(a.loss - loss) <= 1e-6 * Math.abs(loss));
  const ga = whole.readGradients(), gb = split.readGradients();
  for (const { name } of weightShapes(config)) {
    const scale = maxAbs(ga[name]!);
    ga[name]!.forEach((v, i) => assert.ok(Math.abs(v - gb[name]![i]!) <= 1e-5 * scale, `${name}[${i}]`));
  }
});

test('activation checkpointing: the recomputed layers give bit-identical loss and gradients in less memory', async () => {
  for (const config of [tiny({ nLayers: 3 }), tiny({ nLayers: 1 }), tiny({ sharedClassifier: false, nLayers: 4, dim: 20, nHeads: 2, hiddenDim: 9 }),
    tiny({ nLayers: 3, qkNorm: true, qkvBias: true, headSize: 8 })]) {
    const weights = randomWeights(config, 7);
    const run = async (activationCheckpointing: boolean) => {
      const engine = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' } });
      engine.enableTraining({ maxTokens: 4 * config.seqLen, maxSeqs: 4, activationCheckpointing });
      engine.zeroGradients();
      const { loss } = engine.accumulateGradients(EXAMPLES);
      return { loss, grads: engine.readGradients(), memory: engine.memoryBytes };
    };
    const saved = await run(false), recomputed = await run(true);
    assert.equal(recomputed.loss, saved.loss);
    for (const { name } of weightShapes(config)) {
      const a = saved.grads[name]!, b = recomputed.grads[name]!;
      const differing = a.findIndex((v, i) => !Object.is(v, b[i]));
      assert.equal(differing, -1, `${config.nLayers} layers, ${name}[${differing}]: ${a[differing]} saved vs ${b[differing]} recomputed`);
    }
    if (config.nLayers > 1) assert.ok(recomputed.memory < saved.memory, `memory ${recomputed.memory} recomputing vs ${saved.memory} saving`);
  }
});

test('activation checkpointing can be switched on and off between steps of the same engine', async () => {
  const config = tiny({ nLayers: 3 });
  const engine = await RemaxEngine.create({ model: { config, weights: randomWeights(config, 8), format: 'llama2c-v0' } });
  const gradientsWith = (activationCheckpointing: boolean) => {
    engine.enableTraining({ maxTokens: 2 * config.seqLen, maxSeqs: 4, activationCheckpointing });
    engine.zeroGradients();
    engine.accumulateGradients(EXAMPLES);
    return engine.readGradients();
  };
  const off = gradientsWith(false), on = gradientsWith(true), offAgain = gradientsWith(false);
  for (const { name } of weightShapes(config)) {
    assert.deepEqual(on[name], off[name], name);
    assert.deepEqual(offAgain[name], off[name], name);
  }
});
