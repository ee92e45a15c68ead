// Training step = forward + backward + AdamW on 8 sequences × 128 tokens (every token in the loss), single thread
// (and on helper threads: benchTrainingThreads).
import { RemaxEngine } from '../../src/core/engine';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import type { BuildName } from '../../src/core/kernels';
import type { ModelConfig } from '../../src/core/config';
import type { TrainingExample } from '../../src/core/training';
import { SftTrainer } from '../../src/core/sft-trainer';
import { startHelperWorkers } from '../../src/node/helper-workers';
import { medianMs, medianStepsInTurn, mib, quick, rows } from './common';

export const TRAIN_BATCH = 8, TRAIN_TOKENS = 128;

export function trainingBatch(vocab: number): TrainingExample[] {
  return Array.from({ length: TRAIN_BATCH }, (_, b) => {
    const ids = Array.from({ length: TRAIN_TOKENS }, (_, i) => (i === 0 ? 1 : 3 + ((i * 31 + b * 7) % (vocab - 3))));
    return { ids, weights: ids.map((_, i) => (i === 0 ? 0 : 1 / (TRAIN_BATCH * (TRAIN_TOKENS - 1)))) };
  });
}

export async function trainingEngine(config: ModelConfig, build: BuildName, wasm?: { simd: Uint8Array }, activationCheckpointing = false): Promise<RemaxEngine> {
  const engine = await RemaxEngine.create({ model: { config, weights: randomInitWeights(config, 1), format: 'llama2c-v0' }, build, wasm });
  engine.enableTraining({ maxTokens: TRAIN_BATCH * TRAIN_TOKENS, maxSeqs: TRAIN_BATCH, activationCheckpointing });
  return engine;
}

export function trainingStep(engine: RemaxEngine, batch: TrainingExample[]): void {
  engine.zeroGradients();
  engine.accumulateGradients(batch);
  engine.optimizerStep({ lr: 1e-4 });
}

export async function benchTraining(build: BuildName, label: string, config: ModelConfig, activationCheckpointing = false): Promise<void> {
  const engine = await trainingEngine(config, build, undefined, activationCheckpointing);
  const batch = trainingBatch(config.vocabSize);
  const ms = await medianMs(label, () => trainingStep(engine, batch), 5);
  rows.push({ build, benchmark: `${label}: train step, ${TRAIN_BATCH} × ${TRAIN_TOKENS} tokens${activationCheckpointing ? ', activation checkpointing' : ''}`, median: `${ms.toFixed(1)} ms`,
    throughput: `${((TRAIN_BATCH * TRAIN_TOKENS) / (ms / 1000)).toFixed(0)} tokens/s`, memory: mib(engine.memoryBytes) });
}

/**
 * The same training step on `threads` threads (remax sft --threads: helper engines on worker threads compute their
 * share of the gradient; the main engine adds them and steps AdamW), against a 1-thread trainer (medianStepsInTurn).
 */
export async function benchTrainingThreads(build: BuildName, label: string, config: ModelConfig, threads: number, rounds = 7): Promise<void> {
  const weights = randomInitWeights(config, 1);
  const examples = trainingBatch(config.vocabSize);
  const options = {
    steps: 1_000_000, batchSize: TRAIN_BATCH, seed: 1, schedule: { kind: 'constant' as const, lr: 1e-4, warmupSteps: 0, totalSteps: 1_000_000 },
    optimizer: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, clipNorm: 1 },
  };
  const trainer = async (n: number) => new SftTrainer(
    await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' }, build }), examples, options, undefined, startHelperWorkers(n));
  const trainers = [await trainer(1), await trainer(threads)];
  for (const t of trainers) await t.runStep();
  const [single, parallel] = await medianStepsInTurn(trainers, quick ? 2 : rounds) as [number, number];
  trainers[1]!.close();
  rows.push({ build, benchmark: `${label}: train step (sft), ${TRAIN_BATCH} × ${TRAIN_TOKENS} tokens, ${threads} threads (1 thread: ${single.toFixed(1)} ms, interleaved)`,
    median: `${parallel.toFixed(1)} ms`, throughput: `${((TRAIN_BATCH * TRAIN_TOKENS) / (parallel / 1000)).toFixed(0)} tokens/s, ${(single / parallel).toFixed(2)}× faster`, memory: '' });
}
