// One ReMax iteration as issue 4 defines it: 8 prompts of 16 tokens, 112 new tokens each (sampled and greedy
// decoded together in one batch), reward, backward, AdamW — against a REINFORCE iteration on the same batch
// (no greedy decode). No KL term (no reference forward), responses always run to 112 tokens.
import { readFileSync } from 'node:fs';
import { RemaxEngine } from '../../src/core/engine';
import { parseCheckpoint, randomInitWeights } from '../../src/core/formats/llama2c';
import type { BuildName } from '../../src/core/kernels';
import type { ModelConfig } from '../../src/core/config';
import { ReMaxTrainer, DEFAULT_REMAX_OPTIONS, type StepMetrics } from '../../src/core/rl/trainer';
import type { Estimator } from '../../src/core/rl/advantages';
import { loadPrompts } from '../../src/core/rl/prompts';
import { Tokenizer } from '../../src/core/tokenizers/llama2c';
import { builtinReward } from '../../src/core/builtin-rewards';
import { scoreSamples, type RewardSample } from '../../src/core/rewards';
import { FMA_PEAK_GFLOPS, median, medianStepsInTurn, mib, quick, rows, stepsInTurn } from './common';
import { startHelperWorkers } from '../../src/node/helper-workers';
import { NEW_TOKENS, PROMPTS, PROMPT_TOKENS, iterationOptions, iterationPrompts, iterationScore } from './iteration-batch';

async function iterationTrainer(config: ModelConfig, build: BuildName, estimator: Estimator, weights: ReturnType<typeof randomInitWeights>, threads = 1) {
  const policy = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' }, build, maxBatch: 2 * PROMPTS });
  const trainer = new ReMaxTrainer(policy, undefined, iterationPrompts(config.vocabSize), iterationScore, iterationOptions(estimator),
    undefined, startHelperWorkers(threads));
  return { trainer, policy };
}

/**
 * Floating-point operations of decoding one token at `position` (its row attends to position + 1 keys): two per
 * weight of every product, and per attention head two per key and head dimension for the scores and as many for
 * the weighted sum of values.
 */
export function decodeFlops(config: ModelConfig, position: number): number {
  const kvDim = (config.dim / config.nHeads) * config.nKvHeads;
  const perLayer = 2 * config.dim * config.dim + 2 * config.dim * kvDim + 3 * config.dim * config.hiddenDim;
  const products = config.nLayers * perLayer + config.vocabSize * config.dim;
  return 2 * products + 4 * config.nLayers * config.dim * (position + 1);
}

/** ReMax and REINFORCE iterations in turn (stepsInTurn) after one warm-up step each, and where the difference goes. */
export async function benchReMax(build: BuildName, label: string, config: ModelConfig, rounds = quick ? 2 : 7): Promise<void> {
  const weights = randomInitWeights(config, 1);
  const remax = await iterationTrainer(config, build, 'remax', weights);
  const reinforce = await iterationTrainer(config, build, 'reinforce', weights);
  await remax.trainer.runStep();
  await reinforce.trainer.runStep();
  const [remaxSteps, reinforceSteps] = await stepsInTurn([remax.trainer, reinforce.trainer], rounds) as [StepSample[], StepSample[]];
  const remaxMs = median(remaxSteps.map((s) => s.ms)), reinforceMs = median(reinforceSteps.map((s) => s.ms));
  rows.push({ build, benchmark: `${label}: ReMax iteration (8 × (16 + 112), sample + greedy)`, median: `${(remaxMs / 1000).toFixed(3)} s`,
    throughput: `${((2 * PROMPTS * NEW_TOKENS) / (remaxMs / 1000)).toFixed(0)} new tokens/s`, memory: mib(remax.policy.memoryBytes) });
  rows.push({ build, benchmark: `${label}: REINFORCE iteration (same batch, no greedy; interleaved)`, median: `${(reinforceMs / 1000).toFixed(3)} s`,
    throughput: `ReMax/REINFORCE = ${(remaxMs / reinforceMs).toFixed(2)}×`, memory: mib(reinforce.policy.memoryBytes) });
  rows.push(...ratioBreakdown(config, label, build, remaxSteps, reinforceSteps));
}

/**
 * The same ReMax iteration on one thread and on `threads` (the main engine plus helper engines on worker threads,
 * remax train --threads), and a REINFORCE iteration on `threads` for the ratio there, in turn.
 */
export async function benchReMaxThreads(build: BuildName, label: string, config: ModelConfig, threads: number, rounds = quick ? 2 : 7): Promise<void> {
  const weights = randomInitWeights(config, 1);
  const single = await iterationTrainer(config, build, 'remax', weights);
  const parallel = await iterationTrainer(config, build, 'remax', weights, threads);
  const reinforce = await iterationTrainer(config, build, 'reinforce', weights, threads);
  const trainers = [single.trainer, parallel.trainer, reinforce.trainer];
  for (const trainer of trainers) await trainer.runStep();
  const [singleMs, parallelMs, reinforceMs] = await medianStepsInTurn(trainers, rounds) as [number, number, number];
  parallel.trainer.close();
  reinforce.trainer.close();
  rows.push({ build, benchmark: `${label}: ReMax iteration, ${threads} threads (1 thread: ${(singleMs / 1000).toFixed(3)} s, interleaved)`,
    median: `${(parallelMs / 1000).toFixed(3)} s`, throughput: `${(singleMs / parallelMs).toFixed(2)}× faster`,
    memory: [parallel.policy.memoryBytes, ...parallel.trainer.helperMemoryBytes].map(mib).join(' + ') });
  rows.push({ build, benchmark: `${label}: REINFORCE iteration, ${threads} threads (same batch, interleaved)`,
    median: `${(reinforceMs / 1000).toFixed(3)} s`, throughput: `ReMax/REINFORCE = ${(parallelMs / reinforceMs).toFixed(2)}×`, memory: '' });
}

type StepSample = { ms: number; result: StepMetrics };

/**
 * Where ReMax's extra time goes, and the ratio no implementation could beat on this core: ReMax adds the greedy
 * decode of PROMPTS × NEW_TOKENS tokens and nothing else, so even with both decodes at the 128-bit FMA peak
 * (FMA_PEAK_GFLOPS, measured with a native loop, docs/BENCHMARKS.md) and the training step as measured, the ratio
 * is (train + prefill + 2·decode) / (train + prefill + decode); the prompts' prefill is shared by both responses.
 */
function ratioBreakdown(config: ModelConfig, label: string, build: BuildName, remax: StepSample[], reinforce: StepSample[]) {
  const decodeMs = (steps: StepSample[]) => median(steps.map((s) => (s.result.time_sampling + s.result.time_greedy) * 1000));
  const trainMs = median(reinforce.map((s) => (s.result.time_backward + s.result.time_optimizer) * 1000));
  const extraDecodeMs = decodeMs(remax) - decodeMs(reinforce);
  let flops = 0, prefillFlops = 0;
  for (let t = 0; t < NEW_TOKENS; t++) flops += PROMPTS * decodeFlops(config, PROMPT_TOKENS + t);
  for (let t = 0; t < PROMPT_TOKENS; t++) prefillFlops += PROMPTS * decodeFlops(config, t);
  const atPeakMs = flops / (FMA_PEAK_GFLOPS * 1e6), prefillMs = prefillFlops / (FMA_PEAK_GFLOPS * 1e6);
  const floor = (trainMs + prefillMs + 2 * atPeakMs) / (trainMs + prefillMs + atPeakMs);
  return [{
    build, benchmark: `${label}: ReMax's extra decode (${PROMPTS * NEW_TOKENS} greedy tokens, ${(flops / 1e9).toFixed(2)} GFLOP)`,
    median: `${extraDecodeMs.toFixed(1)} ms`, throughput: `${(flops / (extraDecodeMs * 1e6)).toFixed(1)} GFLOP/s`, memory: '',
  }, {
    build, benchmark: `${label}: ratio floor: train step ${trainMs.toFixed(0)} ms, each decode at the ${FMA_PEAK_GFLOPS} GFLOP/s peak`,
    median: `${atPeakMs.toFixed(1)} ms`, throughput: `ReMax/REINFORCE ≥ ${floor.toFixed(3)}×`, memory: '',
  }];
}

/**
 * ReMax against REINFORCE on the shipped default task (a+b, byte tokenizer, exact-match reward; responses end at
 * EOS): a trained policy's samples often follow the greedy path, and the decode shares their rows while they agree.
 * The policy first takes `warmSteps` ReMax steps so that it is the kind of policy a run spends most steps on.
 */
export async function benchDefaultTask(build: BuildName, warmSteps = 60): Promise<void> {
  const dir = 'assets/default-task';
  const tokenizer = Tokenizer.fromBytes(new Uint8Array(readFileSync(`${dir}/tokenizer.bin`)), 'tokenizer.bin');
  const modelBytes = new Uint8Array(readFileSync(`${dir}/model.bin`));
  const seqLen = parseCheckpoint(modelBytes, 'model.bin').config.seqLen;
  const prompts = loadPrompts(new Uint8Array(readFileSync(`${dir}/train.jsonl`)), 'train.jsonl', tokenizer, { seqLen, maxNewTokens: 64 });
  const reward = builtinReward('exact-match');
  const score = (groups: RewardSample[][]) => scoreSamples(reward, groups, { timeoutMs: 10_000, onError: 'abort', concurrency: 8 });
  const trainers = [];
  for (const estimator of ['remax', 'reinforce'] as const) {
    const policy = await RemaxEngine.create({ model: modelBytes, tokenizer, build });
    const trainer = new ReMaxTrainer(policy, undefined, prompts, score, {
      ...DEFAULT_REMAX_OPTIONS, estimator, batchSize: 16, steps: 1_000_000, klCoef: 0,
      schedule: { kind: 'constant', lr: 3e-4, warmupSteps: 0, totalSteps: 1_000_000 },
    });
    for (let i = 0; i < warmSteps; i++) await trainer.runStep();
    trainers.push({ trainer, policy });
  }
  const [remaxMs, reinforceMs] = await medianStepsInTurn(trainers.map((t) => t.trainer), quick ? 2 : 30) as [number, number];
  const memory = trainers[0]!.policy.memoryBytes;
  rows.push({ build, benchmark: `default task (after ${warmSteps} steps): ReMax iteration, 16 prompts`, median: `${remaxMs.toFixed(2)} ms`,
    throughput: `ReMax/REINFORCE = ${(remaxMs / reinforceMs).toFixed(2)}×`, memory: mib(memory) });
  rows.push({ build, benchmark: `default task (after ${warmSteps} steps): REINFORCE iteration`, median: `${reinforceMs.toFixed(2)} ms`,
    throughput: '', memory: mib(memory) });
}
