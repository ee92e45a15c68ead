// --estimator ppo (issue 14): the update phase against a manual computation through the same engines (the first
// update with a huge ε is REINFORCE with the whitened GAE advantages as token weights; the critic's value of token t
// read at the row before y_t), the critic learning on a fixed batch, and `remax train --estimator ppo` as a user
// runs it: finite metrics of the right names, the critic saved, --resume exact, LoRA and threads, refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RemaxEngine } from '../../src/core/engine';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { PolicyGroup } from '../../src/core/parallel/policy-group';
import { DEFAULT_PPO, minibatchRanges, ppoUpdate, type PpoContext, type PpoRollout } from '../../src/core/rl/ppo-update';
import { gae, whiten } from '../../src/core/rl/ppo';
import { ReMaxTrainer, DEFAULT_REMAX_OPTIONS } from '../../src/core/rl/trainer';
import { withScoreHead } from '../../src/core/score-head';
import { Prng } from '../../src/core/prng';
import { HelperError } from '../../src/core/parallel/helper-client';
import { inProcessHelper } from './in-process-helper';
import { valueGradients } from '../../src/core/rl/value-gradients';
import { RemaxInputError } from '../../src/core/errors';
import type { ModelConfig } from '../../src/core/config';

const TINY: ModelConfig = {
  dim: 32, hiddenDim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 64, seqLen: 48,
  sharedClassifier: true, normEps: 1e-5, ropeTheta: 10000,
};
const TRAINING = { maxSeqs: 8, maxTokens: 256 };

async function engines(criticTraining = TRAINING) {
  const model = { config: TINY, weights: randomInitWeights(TINY, 3), format: 'llama2c-v0' as const };
  const policy = await RemaxEngine.create({ model, build: 'simd' });
  const critic = await RemaxEngine.create({ model: withScoreHead({ config: TINY, weights: randomInitWeights(TINY, 4), format: 'llama2c-v0' }, 9), build: 'simd' });
  policy.enableTraining(TRAINING);
  critic.enableTraining(criticTraining);
  return { policy, critic, group: new PolicyGroup(policy, undefined, []), criticGroup: new PolicyGroup(critic, undefined, [], 'critic') };
}

/** Six responses of 1 to 7 tokens after prompts of 2 to 4, with scores and a small per-token KL. */
function rollouts(policy: RemaxEngine): PpoRollout[] {
  const rng = new Prng(11);
  const int = (n: number) => Math.floor(rng.nextFloat64() * n);
  const seqs = Array.from({ length: 6 }, (_, i) => {
    const promptLength = 2 + (i % 3);
    return { ids: [1, ...Array.from({ length: promptLength - 1 + 1 + (i % 7) }, () => 3 + int(60))], promptLength };
  });
  const logprobs = policy.logprobs(seqs.map((s) => s.ids));
  return seqs.map((s, i) => {
    const oldLogprobs = logprobs[i]!.slice(s.promptLength - 1);
    return { ...s, score: rng.nextFloat64() * 2 - 1, kl: oldLogprobs.map(() => 0.2 * (rng.nextFloat64() - 0.5)), oldLogprobs };
  });
}

const context = (e: Awaited<ReturnType<typeof engines>>, over: Partial<PpoContext> = {}, settings: Partial<PpoContext['settings']> = {}): PpoContext => ({
  group: e.group, policy: e.policy, critic: e.critic, criticGroup: e.criticGroup, settings: { ...DEFAULT_PPO, criticLr: 1e-3, ...settings },
  klCoef: 0.1, gamma: 1, lossAggregation: 'token-mean', optimizer: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, clipNorm: 1 },
  lr: 1e-3, criticLr: 1e-3, update: true, seed: 0, step: 0, ...over,
});

test('the critic shares the helper threads: the same values as one engine, and the value-loss gradient summed from the parts', async () => {
  const e = await engines();
  const helper = inProcessHelper();
  // The helper hosts a policy and a critic: the two groups' calls go to its two engines.
  const policyGroup = new PolicyGroup(e.policy, undefined, [helper]);
  const criticGroup = new PolicyGroup(e.critic, undefined, [helper], 'critic');
  await policyGroup.start(8, TRAINING);
  await criticGroup.start(8, TRAINING);
  assert.ok(criticGroup.helperMemoryBytes[0]! > 0 && policyGroup.helperMemoryBytes[0]! > 0);
  const rs = rollouts(e.policy);
  const ids = rs.map((r) => r.ids);
  const values = e.critic.tokenScores(ids);
  assert.deepEqual(await criticGroup.tokenScores(ids), values, 'values do not depend on the thread that computes them');
  assert.deepEqual(await policyGroup.logprobs(ids), e.policy.logprobs(ids), 'the policy calls still reach the policy engine');

  const rng = new Prng(5);
  const targets = rs.map((r, i) => {
    const old = values[i]!.slice(r.promptLength - 1, r.ids.length - 1).map((v) => v + 0.3 * (rng.nextFloat64() - 0.5));
    return { ids: r.ids, promptLength: r.promptLength, oldValues: old, returns: old.map(() => rng.nextFloat64() * 2 - 1) };
  });
  const settings = { valueClip: 0.2, vfCoef: 0.5, denominator: 17 };
  const alone = valueGradients(e.critic, targets, settings);
  const one = new Float32Array(e.critic.parameterSlots);
  e.critic.copyGradientsTo(one);
  const split = await criticGroup.valueGradients(targets, settings);
  const two = new Float32Array(e.critic.parameterSlots);
  e.critic.copyGradientsTo(two);
  assert.ok(Math.abs(split.valueLoss - alone.valueLoss) <= 1e-12 * Math.abs(alone.valueLoss) + 1e-15, `${split.valueLoss} vs ${alone.valueLoss}`);
  let worst = 0, scale = 0;
  one.forEach((g, i) => { worst = Math.max(worst, Math.abs(g - two[i]!)); scale = Math.max(scale, Math.abs(g)); });
  assert.ok(scale > 0 && worst <= 1e-5 * scale, `largest difference ${worst} against gradients up to ${scale}`);

  // After a critic optimizer step the helper's critic takes the new weights: its values follow.
  e.critic.optimizerStep({ lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, clipNorm: 1 });
  criticGroup.parametersChanged();
  const after = e.critic.tokenScores(ids);
  assert.notDeepEqual(after, values);
  assert.deepEqual(await criticGroup.tokenScores(ids), after);
});

test('minibatches are contiguous, cover the batch, none empty', () => {
  assert.deepEqual(minibatchRanges(7, 3), [[0, 3], [3, 5], [5, 7]]);
  assert.deepEqual(minibatchRanges(2, 4), [[0, 1], [1, 2]]);
  assert.deepEqual(minibatchRanges(5, 1), [[0, 5]]);
});

for (const aggregation of ['token-mean', 'sequence-sum'] as const) {
  test(`PPO's first update with a huge ε is REINFORCE with the whitened GAE advantages as token weights (${aggregation})`, async () => {
    const e = await engines();
    const rs = rollouts(e.policy);
    const klCoef = 0.1, gamma = 0.9, lambda = 0.8;
    const result = await ppoUpdate(context(e, { update: false, klCoef, gamma, lossAggregation: aggregation }, { clipRange: 1e9, gaeLambda: lambda }), rs);
    const ppoGradient = e.policy.readGradients();

    // By hand: V of response token t is the critic's score of prompt + y_{<t}, i.e. at row promptLength − 1 + t.
    const scores = e.critic.tokenScores(rs.map((r) => r.ids));
    const values = rs.map((r, i) => Array.from({ length: r.ids.length - r.promptLength }, (_, t) => scores[i]![r.promptLength - 1 + t]!));
    assert.deepEqual(result.values, values);
    const estimates = rs.map((r, i) => gae(r.kl!.map((k, t) => -klCoef * k + (t === r.kl!.length - 1 ? r.score : 0)), values[i]!, gamma, lambda));
    assert.deepEqual(result.advantages, estimates.map((x) => x.advantages));
    const advantages = whiten(estimates.map((x) => x.advantages));
    const tokens = rs.reduce((n, r) => n + r.ids.length - r.promptLength, 0);
    const denominator = aggregation === 'token-mean' ? tokens : rs.length;
    e.policy.zeroGradients();
    e.policy.accumulateGradients(rs.map((r, i) => ({
      ids: r.ids, weights: [...new Array<number>(r.promptLength).fill(0), ...advantages[i]!.map((a) => a / denominator)],
      dropoutSeed: 0,
    })));
    const manual = e.policy.readGradients();
    for (const name of Object.keys(manual) as (keyof typeof manual)[]) assert.deepEqual(ppoGradient[name], manual[name], name);
    assert.ok(Object.values(manual).some((t) => t!.some((x) => x !== 0)), 'a non-zero gradient');
    assert.equal(result.clipFraction, 0);
    assert.equal(result.approxKl, 0);
    assert.equal(result.passes.length, 1);
  });
}

test('on a fixed batch the critic\'s value loss falls over PPO epochs; later minibatches see a moved policy', async () => {
  const e = await engines();
  const rs = rollouts(e.policy);
  // λ = 1: the returns are Monte Carlo, independent of the critic, so the target is fixed.
  const result = await ppoUpdate(context(e, { criticLr: 3e-3, lr: 3e-3 }, { epochs: 8, minibatches: 2, gaeLambda: 1, valueClip: 1e9 }), rs);
  const losses = result.passes.map((p) => p.valueLoss);
  assert.equal(losses.length, 16);
  // Each minibatch's loss: first pass against the last.
  for (const m of [0, 1]) {
    const mine = losses.filter((_, k) => k % 2 === m);
    assert.ok(mine[mine.length - 1]! < 0.5 * mine[0]!, `minibatch ${m}: value loss ${mine.map((x) => x.toFixed(3)).join(' → ')}`);
  }
  assert.ok(result.approxKl > 0, 'the ratio moved away from 1 after the first update');
  assert.ok(result.clipFraction >= 0 && result.clipFraction <= 1);
  // A minibatch whose every token is clipped has no policy gradient (norm 0) on a late epoch: legitimate.
  assert.ok(result.passes.every((p) => Number.isFinite(p.policyLoss) && p.gradNorm >= 0 && p.criticGradNorm > 0));
  assert.ok(result.passes[0]!.gradNorm > 0 && result.passes[1]!.gradNorm > 0);
});

test('a helper failing in PPO\'s updates is not one the CLI saves (the critic or policy is part-way through the step); without updates, it is', async () => {
  const e = await engines();
  const rs = rollouts(e.policy);
  const failingAt = (call: number) => {
    let calls = 0;
    return {
      gradients: async (ex: never) => { if (++calls === call) throw new HelperError('helper 1 crashed'); return e.group.gradients(ex); },
      logprobs: (seqs: number[][]) => e.group.logprobs(seqs), parametersChanged: () => {},
    } as never;
  };
  await assert.rejects(ppoUpdate(context(e, { group: failingAt(1), update: false }, { minibatches: 2 }), rs), (error: Error) => error instanceof HelperError);
  // The critic steps while the helpers compute their share of the policy gradient: 1, then 2 + 1 steps were taken.
  await assert.rejects(ppoUpdate(context(e, { group: failingAt(1) }, { minibatches: 2 }), rs), (error: Error) =>
    error instanceof RemaxInputError && /helper 1 crashed; PPO had taken 1 of this step's optimizer steps/.test(error.message));
  await assert.rejects(ppoUpdate(context(e, { group: failingAt(2) }, { minibatches: 2 }), rs), (error: Error) =>
    error instanceof RemaxInputError && /helper 1 crashed; PPO had taken 3 of this step's optimizer steps, so nothing was saved: resume from the last checkpoint/.test(error.message));
});

test('the trainer refuses PPO settings by their flags, and ppo without a critic', async () => {
  const e = await engines();
  const prompts = [[1, 7], [1, 12, 30]].map((promptIds, i) => ({ prompt: `p${i}`, promptIds, meta: {} }));
  const scorer = async (groups: unknown[][]) => ({ groupRewards: groups.map((g) => g.map(() => 1)), skipped: 0, errors: [] });
  const make = (ppo: Partial<typeof DEFAULT_PPO & { criticLr: number }>, critic: RemaxEngine | undefined = e.critic, estimator: 'ppo' | 'remax' = 'ppo') =>
    new ReMaxTrainer(e.policy, undefined, prompts, scorer as never, {
      ...DEFAULT_REMAX_OPTIONS, estimator, klCoef: 0, batchSize: 2, steps: 2, maxNewTokens: 4,
      schedule: { kind: 'constant', lr: 1e-3, warmupSteps: 0, totalSteps: 2 }, ppo: { ...DEFAULT_PPO, criticLr: 1e-3, ...ppo },
    }, undefined, [], critic ? { engine: critic } : undefined);
  assert.throws(() => make({ epochs: 0 }), /--ppo-epochs must be an integer ≥ 1, got 0/);
  assert.throws(() => make({ epochs: 1.5 }), /--ppo-epochs/);
  assert.throws(() => make({ minibatches: 3 }), /--ppo-minibatches must be an integer from 1 to the responses per step \(--batch × --samples-per-prompt = 2\), got 3/);
  assert.throws(() => make({ clipRange: 0 }), /--ppo-clip must be a number > 0/);
  assert.throws(() => make({ gaeLambda: 1.5 }), /--gae-lambda must be in \[0, 1\]/);
  assert.throws(() => make({ criticLr: Number.NaN }), /--critic-lr/);
  assert.throws(() => make({}, null as never), /the ppo estimator needs a critic/);
  assert.throws(() => make({}, e.critic, 'remax'), /a critic is only used by --estimator ppo/);
  assert.throws(() => make({}, e.policy), /the critic must be a scalar-head model/);
  make({}); // the defaults are accepted
});

// ---- remax train --estimator ppo, as a user runs it ----

const CLI = path.resolve('dist/cli.js');
const remax = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const withoutTimes = (rows: Record<string, unknown>[]) => rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('time') && k !== 'tokens_per_second')));
// The built-in default task (its model, prompts and reward), small steps.
const PPO = ['--estimator', 'ppo', '--batch', '4', '--max-new-tokens', '8', '--eval-every', '0', '--quiet'];
const PPO_METRICS = ['entropy', 'policy_loss', 'value_loss', 'clip_fraction', 'approx_kl', 'explained_variance', 'value_mean', 'critic_grad_norm', 'critic_lr', 'time_critic', 'critic_memory_bytes'];

test('remax train --estimator ppo: finite metrics of every name, the critic saved beside the policy, the flags in config.json', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-ppo-'));
  try {
    const out = path.join(dir, 'run');
    const r = remax('train', ...PPO, '--steps', '3', '--ppo-epochs', '2', '--ppo-minibatches', '2', '--critic-lr', '1e-3', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const metrics = lines(path.join(out, 'metrics.jsonl'));
    assert.deepEqual(metrics.map((m) => m.step), [1, 2, 3]);
    for (const m of metrics) {
      for (const key of ['reward_mean', 'reward_std', 'advantage_mean', 'advantage_std', 'kl', 'loss', 'grad_norm', 'lr', 'response_length_mean', 'time_step', ...PPO_METRICS]) {
        assert.ok(typeof m[key] === 'number' && Number.isFinite(m[key]), `${key} = ${m[key]} at step ${m.step}`);
      }
      assert.equal(m.greedy_reward_mean, null);
      assert.equal(m.critic_lr, 1e-3);
      assert.ok((m.critic_memory_bytes as number) > 0);
    }
    assert.ok((metrics[1]!.approx_kl as number) > 0, 'later minibatches see a moved policy');
    for (const f of ['model.bin', 'model.bin.state', 'critic.bin', 'critic.bin.score', 'critic.bin.state']) assert.ok(existsSync(path.join(out, f)), f);
    const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
    assert.equal(config.estimator, 'ppo');
    assert.equal(config['ppo-epochs'], 2);
    assert.equal(config['ppo-minibatches'], 2);
    assert.equal(config['gae-lambda'], 0.95);
    assert.equal(config['critic-lr'], 1e-3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('remax train --estimator ppo learns the default task: the reward of steps 51–60 well above that of steps 1–10', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-ppo-'));
  try {
    const out = path.join(dir, 'run');
    const r = remax('train', '--estimator', 'ppo', '--steps', '60', '--eval-every', '0', '--checkpoint-every', '0', '--quiet', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const rewards = lines(path.join(out, 'metrics.jsonl')).map((m) => m.reward_mean as number);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(mean(rewards.slice(50)) > mean(rewards.slice(0, 10)) + 0.15, `reward ${mean(rewards.slice(0, 10))} → ${mean(rewards.slice(50))}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const threads of ['1', '2']) {
  test(`remax train --estimator ppo --resume is exact: metrics, policy and critic bit for bit as one uninterrupted run (--threads ${threads})`, () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'remax-ppo-'));
    try {
      const flags = [...PPO, '--steps', '4', '--ppo-epochs', '2', '--ppo-minibatches', '2', '--checkpoint-every', '0', '--seed', '3', '--threads', threads];
      const straight = path.join(dir, 'straight'), parts = path.join(dir, 'parts');
      assert.equal(remax('train', ...flags, '--out', straight).code, 0);
      const first = remax('train', ...flags, '--stop-at', '2', '--out', parts);
      assert.equal(first.code, 0, first.stderr);
      const resumed = remax('train', '--resume', parts, '--quiet');
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.deepEqual(withoutTimes(lines(path.join(parts, 'metrics.jsonl'))), withoutTimes(lines(path.join(straight, 'metrics.jsonl'))));
      for (const f of ['model.bin', 'critic.bin', 'critic.bin.score']) assert.deepEqual(readFileSync(path.join(parts, f)), readFileSync(path.join(straight, f)), f);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('remax train --estimator ppo with LoRA (the critic trains fully), two threads, a given --critic-model', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-ppo-'));
  try {
    const lora = path.join(dir, 'lora');
    let r = remax('train', ...PPO, '--steps', '2', '--lora-rank', '2', '--out', lora);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(path.join(lora, 'adapter')) && existsSync(path.join(lora, 'critic.bin')) && existsSync(path.join(lora, 'critic.bin.state')));
    const threaded = path.join(dir, 'threads');
    r = remax('train', ...PPO, '--steps', '2', '--threads', '2', '--out', threaded);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(lines(path.join(threaded, 'metrics.jsonl')).every((m) => Number.isFinite(m.value_loss) && Number.isFinite(m.policy_loss)));
    // A causal LM as --critic-model gets a fresh head; the first run's critic (a scalar-head model) is taken as it is.
    const given = path.join(dir, 'given');
    r = remax('train', ...PPO, '--steps', '1', '--critic-model', path.join(lora, 'critic.bin'), '--out', given);
    assert.equal(r.code, 0, r.stderr);
    const fromPolicy = lines(path.join(threaded, 'metrics.jsonl'))[0]!, fromGiven = lines(path.join(given, 'metrics.jsonl'))[0]!;
    assert.notEqual(fromGiven.value_mean, fromPolicy.value_mean, 'the given critic, not a fresh head');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('remax train --estimator ppo --reward-model: the critic starts from the reward model (its head too), by default', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-ppo-'));
  try {
    const task = path.resolve('assets/default-task');
    const pairs = path.join(dir, 'pairs.jsonl');
    writeFileSync(pairs, Array.from({ length: 16 }, (_, i) => JSON.stringify({ prompt: `${i}+1=`, chosen: String(i + 1), rejected: 'no' })).join('\n') + '\n');
    const rm = path.join(dir, 'rm');
    let r = remax('rm', '--model', path.join(task, 'model.bin'), '--tokenizer', path.join(task, 'tokenizer.bin'), '--pairs', pairs, '--batch', '4', '--steps', '2', '--quiet', '--out', rm);
    assert.equal(r.code, 0, r.stderr);
    const run = (name: string, ...more: string[]) => {
      const out = path.join(dir, name);
      const res = remax('train', ...PPO, '--steps', '1', '--reward-model', rm, '--out', out, ...more);
      assert.equal(res.code, 0, res.stderr);
      return lines(path.join(out, 'metrics.jsonl'))[0]!;
    };
    const fromRm = run('a'), explicit = run('b', '--critic-from', 'reward-model'), fromPolicy = run('c', '--critic-from', 'policy');
    assert.equal(fromRm.value_mean, explicit.value_mean);
    assert.notEqual(fromRm.value_mean, fromPolicy.value_mean);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('remax train refuses PPO flags without --estimator ppo, bad values, a critic source that cannot be, a non-PPO run resumed as PPO', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-ppo-'));
  try {
    const out = path.join(dir, 'run');
    const refused = (args: string[], pattern: RegExp) => {
      const r = remax('train', '--eval-every', '0', '--quiet', '--steps', '1', '--batch', '2', '--max-new-tokens', '4', ...args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, pattern);
    };
    refused(['--ppo-epochs', '2', '--out', out], /--ppo-epochs is a setting of --estimator ppo, but the estimator is remax/);
    refused(['--estimator', 'ppo', '--ppo-epochs', '0', '--out', out], /--ppo-epochs/);
    refused(['--estimator', 'ppo', '--ppo-minibatches', '3', '--out', out], /--ppo-minibatches must be an integer from 1 to the responses per step/);
    refused(['--estimator', 'ppo', '--gae-lambda', '2', '--out', out], /--gae-lambda/);
    refused(['--estimator', 'ppo', '--value-clip', '0', '--out', out], /--value-clip/);
    refused(['--estimator', 'ppo', '--critic-from', 'reward-model', '--out', out], /--critic-from reward-model needs --reward-model/);
    refused(['--estimator', 'ppo', '--critic-from', 'policy', '--critic-model', 'x', '--out', out], /give --critic-model or --critic-from, not both/);
    const remaxRun = path.join(dir, 'remax');
    assert.equal(remax('train', '--eval-every', '0', '--quiet', '--steps', '2', '--stop-at', '1', '--batch', '2', '--max-new-tokens', '4', '--out', remaxRun).code, 0);
    const r = remax('train', '--resume', remaxRun, '--estimator', 'ppo', '--quiet');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /the run has no critic .*critic\.bin \(it was trained with another estimator\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the critic\'s update is the same whether its minibatch fits one training micro-batch or is split over several', async () => {
  // The engine hands accumulateScoreGradients' callback one micro-batch at a time (at most maxSeqs sequences): the
  // value-loss gradient of each must be that of its own responses (a 16 × 2 step on the default enableTraining
  // settings is split in two).
  const run = async (maxSeqs: number) => {
    const e = await engines({ ...TRAINING, maxSeqs });
    const result = await ppoUpdate(context(e), rollouts(e.policy));
    return { valueLoss: result.passes[0]!.valueLoss, critic: e.critic.readWeights() };
  };
  const whole = await run(8), split = await run(2);
  assert.ok(Math.abs(whole.valueLoss - split.valueLoss) <= 1e-6 * Math.abs(whole.valueLoss), `${whole.valueLoss} vs ${split.valueLoss}`);
  for (const [name, w] of Object.entries(whole.critic) as [keyof typeof whole.critic, Float32Array][]) {
    const v = split.critic[name]!;
    const worst = w.reduce((m, x, i) => Math.max(m, Math.abs(x - v[i]!)), 0);
    assert.ok(worst <= 1e-5, `${name}: weights differ by up to ${worst}`);
  }
});
