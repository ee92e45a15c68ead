// Issue 14's rows: one PPO iteration (1 epoch, 1 minibatch, a critic of the policy's shape) against one ReMax
// iteration on the bench batch (8 prompts × (16 + 112) tokens), single thread, in turn; the memory of each (the
// policy engine, plus PPO's critic engine); and what a reward model's scoring of the 16 responses costs against a
// ReMax iteration. No KL term (no reference forward) in either, as in the other iteration rows.
import { RemaxEngine } from '../../src/core/engine';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import type { BuildName } from '../../src/core/kernels';
import type { ModelConfig } from '../../src/core/config';
import { ReMaxTrainer, type StepMetrics } from '../../src/core/rl/trainer';
import { DEFAULT_PPO } from '../../src/core/rl/ppo-update';
import type { Estimator } from '../../src/core/rl/advantages';
import { withScoreHead } from '../../src/core/score-head';
import { median, medianMs, mib, quick, rows, stepsInTurn } from './common';
import { NEW_TOKENS, PROMPTS, PROMPT_TOKENS, iterationOptions, iterationPrompts, iterationScore, scoredSequences } from './iteration-batch';


async function trainer(config: ModelConfig, build: BuildName, estimator: Estimator) {
  const model = { config, weights: randomInitWeights(config, 1), format: 'llama2c-v0' as const };
  const policy = await RemaxEngine.create({ model, build, maxBatch: 2 * PROMPTS });
  const critic = estimator === 'ppo' ? await RemaxEngine.create({ model: withScoreHead({ ...model, weights: randomInitWeights(config, 2) }, 3), build, maxBatch: 2 * PROMPTS }) : undefined;
  const t = new ReMaxTrainer(policy, undefined, iterationPrompts(config.vocabSize), iterationScore,
    iterationOptions(estimator, critic ? { ppo: { ...DEFAULT_PPO, criticLr: 1e-5 } } : {}), undefined, [], critic ? { engine: critic } : undefined);
  return { trainer: t, policy, critic };
}

export async function benchPpo(build: BuildName, label: string, config: ModelConfig, rounds = quick ? 2 : 7): Promise<void> {
  const remax = await trainer(config, build, 'remax'), ppo = await trainer(config, build, 'ppo');
  await remax.trainer.runStep();
  await ppo.trainer.runStep();
  const [remaxSteps, ppoSteps] = await stepsInTurn([remax.trainer, ppo.trainer], rounds) as { ms: number; result: StepMetrics }[][];
  const remaxMs = median(remaxSteps!.map((s) => s.ms)), ppoMs = median(ppoSteps!.map((s) => s.ms));
  const remaxBytes = remax.policy.memoryBytes, ppoBytes = ppo.policy.memoryBytes + ppo.critic!.memoryBytes;
  const criticMs = median(ppoSteps!.map((s) => (s.result.time_critic ?? 0) * 1000));
  rows.push({ build, benchmark: `${label}: PPO iteration (8 × (16 + 112), 1 epoch, critic ${(criticMs / 1000).toFixed(3)} s of it)`, median: `${(ppoMs / 1000).toFixed(3)} s`,
    throughput: `${((PROMPTS * NEW_TOKENS) / (ppoMs / 1000)).toFixed(0)} new tokens/s`, memory: `${mib(ppo.policy.memoryBytes)} + critic ${mib(ppo.critic!.memoryBytes)}` });
  rows.push({ build, benchmark: `${label}: ReMax iteration (same batch, in turn with PPO)`, median: `${(remaxMs / 1000).toFixed(3)} s`,
    throughput: `ReMax/PPO time ${(remaxMs / ppoMs).toFixed(2)}×, memory ${(remaxBytes / ppoBytes).toFixed(2)}×`, memory: mib(remaxBytes) });
  // Where each iteration's time goes (medians, seconds): ReMax decodes twice (sampled and greedy); PPO decodes once but
  // adds the rollout policy's log-probabilities (time_reference) and the critic's forward and backward.
  const part = (steps: { result: StepMetrics }[], key: keyof StepMetrics) => median(steps.map((x) => Number(x.result[key] ?? 0))).toFixed(3);
  const parts = (steps: { result: StepMetrics }[]) =>
    `decode ${part(steps, 'time_sampling')} + greedy ${part(steps, 'time_greedy')} + logprobs ${part(steps, 'time_reference')} + backward ${part(steps, 'time_backward')} + critic ${part(steps, 'time_critic')}`;
  rows.push({ build, benchmark: `${label}: where the time goes (s): ReMax ${parts(remaxSteps!)}`, median: '', throughput: `PPO ${parts(ppoSteps!)}`, memory: '' });
  // A reward model of the policy's shape scoring the iteration's 16 responses (prompt + response) in one call.
  const scorer = ppo.critic!;
  const sequences = scoredSequences(config.vocabSize);
  const scoreMs = await medianMs(`${label} scores`, () => { scorer.scores(sequences); }, 5);
  rows.push({ build, benchmark: `${label}: reward-model scoring of the 16 responses (${PROMPT_TOKENS + NEW_TOKENS} tokens each)`, median: `${scoreMs.toFixed(1)} ms`,
    throughput: `${(scoreMs / remaxMs).toFixed(3)} of a ReMax iteration`, memory: '' });
  remax.trainer.close();
  ppo.trainer.close();
}
