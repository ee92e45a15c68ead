// Training step = forward + backward + AdamW on 8 sequences × 128 tokens (every token in the loss), single thread.
import { RemaxEngine } from '../../src/core/engine';
import { randomInitWeights } from '../../src/core/checkpoint';
import type { BuildName } from '../../src/core/kernels';
import type { ModelConfig } from '../../src/core/config';
import type { TrainingExample } from '../../src/core/training';
import { medianMs, mib, rows } from './common';

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
