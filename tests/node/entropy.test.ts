// The policy's entropy metric (StepMetrics.entropy): the training backward pass's own softmax, per response token.
// The engine's sum against a float64 forward (reference-llama.ts) over the tokens asked for, zero-weight ones too,
// across micro-batches and classifier chunks; asking changes no gradient bit; and every estimator's step reports
// it in (0, log V], the same on two engines (an in-process helper) as on one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemaxEngine } from '../../src/core/engine';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { weightShapes, type ModelConfig } from '../../src/core/config';
import { ReMaxTrainer, DEFAULT_REMAX_OPTIONS, type ReMaxOptions } from '../../src/core/rl/trainer';
import { DEFAULT_PPO } from '../../src/core/rl/ppo-update';
import { ESTIMATORS } from '../../src/core/rl/advantages';
import { withScoreHead } from '../../src/core/score-head';
import type { TrainingExample } from '../../src/core/training';
import { referenceLoss, type Weights64 } from './reference-llama';
import { inProcessHelper } from './in-process-helper';

// vocab 67: not a multiple of 4 (the kernel's scalar tail).
const TINY: ModelConfig = {
  dim: 32, hiddenDim: 48, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 67, seqLen: 24,
  sharedClassifier: true, normEps: 1e-5, ropeTheta: 10000,
};

/** Random weights scaled up so the distributions are far from uniform (entropies well inside (0, log V)). */
function peakyWeights(seed: number) {
  const w = randomInitWeights(TINY, seed);
  for (const { name } of weightShapes(TINY)) if (!name.startsWith('rms')) w[name] = w[name]!.map((v) => v * 20);
  return w;
}

/** Prompt weights 0; the response's include zeros (a ReMax sample of advantage 0, a clipped PPO token). */
const EXAMPLES: TrainingExample[] = [
  { ids: [1, 5, 9, 3, 17, 2, 40], weights: [0, 0, 0, 0.7, 0, 0.7, -0.2], entropyFrom: 3 },
  { ids: [1, 11, 4, 4, 8, 13, 6, 2, 10, 66], weights: [0, 0, -0.3, -0.3, -0.3, 0.4, -0.3, -0.3, 0.1, 0.2], entropyFrom: 2 },
  { ids: [1, 7, 30], weights: [0, 0, 0], entropyFrom: 1 },
  { ids: [1, 60, 61, 62, 63], weights: [0, 1, 1, 1, 1] }, // none measured
];

function referenceEntropies(weights: ReturnType<typeof peakyWeights>, examples: TrainingExample[]): { sum: number; count: number } {
  const w64: Weights64 = {};
  for (const { name } of weightShapes(TINY)) w64[name] = Float64Array.from(weights[name]!);
  let sum = 0, count = 0;
  referenceLoss(TINY, w64, examples, undefined, (e, pos, logits) => {
    const from = examples[e]!.entropyFrom;
    if (from === undefined || pos + 1 < from) return;
    const m = Math.max(...logits);
    const z = logits.reduce((s, v) => s + Math.exp(v - m), 0);
    for (const v of logits) {
      const p = Math.exp(v - m) / z;
      if (p > 0) sum -= p * Math.log(p);
    }
    count++;
  });
  return { sum, count };
}

test('accumulateGradients measures the entropy of the tokens asked for (weight 0 too) as a float64 forward does', async () => {
  const weights = peakyWeights(3);
  const want = referenceEntropies(weights, EXAMPLES);
  assert.ok(want.sum / want.count > 0.5 && want.sum / want.count < Math.log(TINY.vocabSize) - 0.5, `reference mean entropy ${want.sum / want.count}`);
  // Small micro-batches and classifier chunks: the rows of one example land in several of each.
  for (const training of [{ maxTokens: 24, maxSeqs: 2, maxLogitRows: 3 }, { maxTokens: 64, maxSeqs: 8 }]) {
    const engine = await RemaxEngine.create({ model: { config: TINY, weights, format: 'llama2c-v0' }, build: 'simd' });
    engine.enableTraining(training);
    engine.zeroGradients();
    const got = engine.accumulateGradients(EXAMPLES);
    assert.equal(got.entropyTokens, want.count, 'every response token of the examples that ask');
    assert.ok(Math.abs(got.entropySum - want.sum) <= 1e-5 * want.sum, `entropy sum ${got.entropySum} vs float64 ${want.sum} (${JSON.stringify(training)})`);
  }
});

test('asking for the entropy changes neither the loss nor any gradient bit (rows of nonzero weight)', async () => {
  const weights = peakyWeights(4);
  const examples = EXAMPLES.map((e) => ({ ...e, weights: e.weights.map((w, t) => (t === 0 ? 0 : w || 0.25)) }));
  const run = async (measured: boolean) => {
    const engine = await RemaxEngine.create({ model: { config: TINY, weights, format: 'llama2c-v0' }, build: 'simd' });
    engine.enableTraining({ maxTokens: 24, maxSeqs: 2, maxLogitRows: 3 });
    engine.zeroGradients();
    const { loss } = engine.accumulateGradients(measured ? examples : examples.map(({ entropyFrom: _, ...e }) => e));
    return { loss, gradients: engine.readGradients() };
  };
  const [plain, measured] = [await run(false), await run(true)];
  assert.equal(measured.loss, plain.loss);
  for (const { name } of weightShapes(TINY)) assert.deepEqual(measured.gradients[name], plain.gradients[name], name);
});

test('entropyFrom is checked: an integer ≥ 1, and not on a scalar-head model', async () => {
  const engine = await RemaxEngine.create({ model: { config: TINY, weights: peakyWeights(5), format: 'llama2c-v0' }, build: 'simd' });
  engine.enableTraining();
  assert.throws(() => engine.accumulateGradients([{ ids: [1, 2, 3], weights: [0, 1, 1], entropyFrom: 0 }]), /example 0: entropyFrom must be an integer ≥ 1/);
  const critic = await RemaxEngine.create({ model: withScoreHead({ config: TINY, weights: peakyWeights(5), format: 'llama2c-v0' }, 2), build: 'simd' });
  critic.enableTraining();
  assert.throws(() => critic.accumulateGradients([{ ids: [1, 2, 3], weights: [0, 1, 1], entropyFrom: 1 }]), /scalar-head model has no token distribution/);
});

/** One step's metrics of `estimator` on a fresh policy, with `threads` engines (the others in-process helpers). */
async function firstStep(estimator: ReMaxOptions['estimator'], threads: number) {
  const model = { config: TINY, weights: peakyWeights(6), format: 'llama2c-v0' as const };
  const policy = await RemaxEngine.create({ model, build: 'simd' });
  const prompts = [[1, 7], [1, 12, 30], [1, 3], [1, 50, 2, 9]].map((promptIds, i) => ({ prompt: `p${i}`, promptIds, meta: {} }));
  // Rewards by length: some groups all alike (advantage 0 for GRPO/RLOO/ReMax: their tokens still count).
  const scorer = async (groups: { completionIds: number[] }[][]) => ({ groupRewards: groups.map((g) => g.map((s) => s.completionIds.length % 3)), skipped: 0, errors: [] });
  const ppo = estimator === 'ppo';
  const critic = ppo ? { engine: await RemaxEngine.create({ model: withScoreHead(model, 8), build: 'simd' }) } : undefined;
  const trainer = new ReMaxTrainer(policy, undefined, prompts, scorer as never, {
    ...DEFAULT_REMAX_OPTIONS, estimator, samplesPerPrompt: 2, klCoef: 0, batchSize: 4, seed: 5, steps: 2, maxNewTokens: 8, eosId: null,
    schedule: { kind: 'constant', lr: 1e-2, warmupSteps: 0, totalSteps: 2 },
    ...(ppo ? { ppo: { ...DEFAULT_PPO, epochs: 2, minibatches: 2, criticLr: 1e-3 } } : {}),
  }, undefined, Array.from({ length: threads - 1 }, () => inProcessHelper()), critic);
  try {
    return await trainer.runStep();
  } finally {
    trainer.close();
  }
}

for (const estimator of ESTIMATORS) {
  test(`${estimator}: the step's entropy is in (0, log V], the same on two engines as on one`, async () => {
    const one = await firstStep(estimator, 1), two = await firstStep(estimator, 2);
    assert.ok(Number.isFinite(one.entropy) && one.entropy > 0 && one.entropy <= Math.log(TINY.vocabSize), `entropy ${one.entropy}`);
    // The same responses and weights; each engine measures its part's rows, the sums add up: exactly, but for PPO's
    // later minibatches, which follow an update whose gradient two engines sum in parts (rounding).
    if (estimator === 'ppo') assert.ok(Math.abs(two.entropy - one.entropy) <= 1e-6 * one.entropy, `two engines ${two.entropy} vs one ${one.entropy}`);
    else assert.equal(two.entropy, one.entropy);
  });
}
