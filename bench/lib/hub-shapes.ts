// Issue 13's rows: a hub model's shape with random weights (remax init --like bench/configs/smollm2-135m.json --dtype
// bf16), single thread unless a row says threads. Decode with the weights kept as stored (BF16) against widened to
// float32; an SFT step of 8 × 128 tokens and a ReMax iteration of 8 × (16 + 112) tokens, full fine-tuning against
// LoRA r = 16 on all seven projections, and the ReMax iteration on two threads. Variants run in turn (the machine is
// shared), their medians and ratios reported. --only=hub; --hub-rounds=N (default 3: a full step takes ~25 s here).
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RemaxEngine } from '../../src/core/engine';
import type { BuildName } from '../../src/core/kernels';
import type { LoadedModel } from '../../src/core/formats/model';
import type { LoraSettings } from '../../src/core/lora';
import { LORA_TARGETS } from '../../src/core/lora';
import { ReMaxTrainer } from '../../src/core/rl/trainer';
import { SftTrainer } from '../../src/core/sft-trainer';
import { writeRandomHfFolder } from '../../src/node/commands/init-like';
import { loadModelFromPath } from '../../src/node/model-io';
import { startHelperWorkers } from '../../src/node/helper-workers';
import { median, medianStepsInTurn, mib, quick, rows } from './common';
import { TRAIN_BATCH, TRAIN_TOKENS, trainingBatch } from './training';
import { NEW_TOKENS, PROMPTS, PROMPT_TOKENS, iterationOptions, iterationPrompts, iterationScore } from './iteration-batch';

const ROUNDS = Number(process.argv.find((a) => a.startsWith('--hub-rounds='))?.slice(13) ?? (quick ? 1 : 3));
const LORA: LoraSettings = { rank: 16, alpha: 16, targets: [...LORA_TARGETS], dropout: 0 };

/** --hub-like=CONFIG: another config.json's shape (a smoke test of the bench on a small one). */
const LIKE = process.argv.find((a) => a.startsWith('--hub-like='))?.slice(11) ?? 'bench/configs/smollm2-135m.json';

/** The random BF16 folder of LIKE's shape, written once into the temp folder and reused by later runs. */
/** The random BF16 folder at the shape of LIKE (written once into the temp folder), loaded. */
export async function randomFolder(): Promise<LoadedModel> {
  const dir = path.join(os.tmpdir(), 'remax-bench', `${path.basename(path.dirname(path.resolve(LIKE)))}-${path.basename(LIKE, '.json')}-bf16`);
  if (!existsSync(path.join(dir, 'model.safetensors'))) {
    writeRandomHfFolder({ like: path.resolve(LIKE), dtype: 'BF16', out: dir, seed: 1, overwrite: true });
  }
  return loadModelFromPath(dir, '--model', { context: 256 });
}

const gc = () => (globalThis as { gc?: () => void }).gc?.();

async function decodeRows(build: BuildName, model: LoadedModel, label: string): Promise<void> {
  for (const batch of [1, 16]) {
    const engines = { f32: await RemaxEngine.create({ model, build, maxBatch: batch, weightsDtype: 'f32' }), bf16: await RemaxEngine.create({ model, build, maxBatch: batch }) };
    const requests = Array.from({ length: batch }, (_, i) => ({ promptIds: [1, 3 + i] }));
    const options = { temperature: 0, maxNewTokens: 64, eosId: null };
    const times: Record<'f32' | 'bf16', number[]> = { f32: [], bf16: [] };
    for (let r = 0; r < ROUNDS + 1; r++) {
      for (const kind of ['f32', 'bf16'] as const) {
        const started = performance.now();
        engines[kind].generate(requests, options);
        if (r > 0) times[kind].push(performance.now() - started); // round 0 warms up
      }
    }
    const f32 = median(times.f32), bf16 = median(times.bf16);
    for (const kind of ['f32', 'bf16'] as const) {
      const ms = kind === 'f32' ? f32 : bf16;
      rows.push({ build, benchmark: `${label}: decode, batch ${batch}, 64 tokens, weights ${kind === 'f32' ? 'widened to f32' : 'kept BF16'}`,
        median: `${(ms / 1000).toFixed(2)} s`, throughput: `${((batch * 64) / (ms / 1000)).toFixed(1)} tokens/s${kind === 'bf16' ? `, ${(f32 / bf16).toFixed(2)}× f32's speed` : ''}`,
        memory: mib(engines[kind].memoryBytes) });
    }
  }
  gc();
}

const sftOptions = {
  steps: 1_000_000, batchSize: TRAIN_BATCH, seed: 1, schedule: { kind: 'constant' as const, lr: 1e-5, warmupSteps: 0, totalSteps: 1_000_000 },
  optimizer: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, clipNorm: 1 },
};

async function sftRows(build: BuildName, model: LoadedModel, label: string): Promise<void> {
  const examples = trainingBatch(model.config.vocabSize);
  const make = async (lora?: LoraSettings) => {
    const engine = await RemaxEngine.create({ model, build, weightsDtype: lora ? 'auto' : 'f32', ...(lora ? { lora } : {}) });
    return { engine, trainer: new SftTrainer(engine, examples, sftOptions, undefined, startHelperWorkers(1)) };
  };
  const full = await make(), lora = await make(LORA);
  for (const t of [full, lora]) await t.trainer.runStep();
  const [fullMs, loraMs] = await medianStepsInTurn([full.trainer, lora.trainer], ROUNDS) as [number, number];
  const tokens = TRAIN_BATCH * TRAIN_TOKENS;
  rows.push({ build, benchmark: `${label}: SFT step ${TRAIN_BATCH} × ${TRAIN_TOKENS}, full fine-tuning`, median: `${(fullMs / 1000).toFixed(2)} s`,
    throughput: `${(tokens / (fullMs / 1000)).toFixed(1)} tokens/s`, memory: mib(full.engine.memoryBytes) });
  rows.push({ build, benchmark: `${label}: SFT step ${TRAIN_BATCH} × ${TRAIN_TOKENS}, LoRA r ${LORA.rank} (all 7 projections)`, median: `${(loraMs / 1000).toFixed(2)} s`,
    throughput: `${(tokens / (loraMs / 1000)).toFixed(1)} tokens/s, ${(fullMs / loraMs).toFixed(2)}× full's speed`, memory: mib(lora.engine.memoryBytes) });
  gc();
}

async function remaxTrainer(build: BuildName, model: LoadedModel, lora: LoraSettings | undefined, threads: number) {
  const policy = await RemaxEngine.create({ model, build, maxBatch: 2 * PROMPTS, weightsDtype: lora ? 'auto' : 'f32', ...(lora ? { lora } : {}) });
  const trainer = new ReMaxTrainer(policy, undefined, iterationPrompts(model.config.vocabSize), iterationScore, iterationOptions('remax'),
    undefined, startHelperWorkers(threads));
  return { trainer, policy };
}

/** The ReMax iteration full and LoRA, then (withThreads) one thread against two. */
async function remaxRows(build: BuildName, model: LoadedModel, label: string, withThreads: boolean): Promise<void> {
  const variants = [
    { name: 'full fine-tuning', t: await remaxTrainer(build, model, undefined, 1) },
    { name: `LoRA r ${LORA.rank}`, t: await remaxTrainer(build, model, LORA, 1) },
  ];
  for (const v of variants) await v.t.trainer.runStep();
  const ms = await medianStepsInTurn(variants.map((v) => v.t.trainer), ROUNDS);
  variants.forEach((v, i) => rows.push({ build, benchmark: `${label}: ReMax iteration ${PROMPTS} × (${PROMPT_TOKENS} + ${NEW_TOKENS}), ${v.name}`,
    median: `${(ms[i]! / 1000).toFixed(2)} s`, throughput: i === 0 ? `${((2 * PROMPTS * NEW_TOKENS) / (ms[i]! / 1000)).toFixed(1)} new tokens/s` : `${(ms[0]! / ms[i]!).toFixed(2)}× full's speed`,
    memory: mib(v.t.policy.memoryBytes) }));
  for (const v of variants) v.t.trainer.close();
  gc();
  if (!withThreads) return;
  // One thread against two (a helper engine on a worker thread), full fine-tuning, in turn.
  const single = await remaxTrainer(build, model, undefined, 1), double = await remaxTrainer(build, model, undefined, 2);
  for (const t of [single, double]) await t.trainer.runStep();
  const [oneMs, twoMs] = await medianStepsInTurn([single.trainer, double.trainer], ROUNDS) as [number, number];
  rows.push({ build, benchmark: `${label}: ReMax iteration, full fine-tuning, 2 threads (1 thread: ${(oneMs / 1000).toFixed(2)} s, in turn)`,
    median: `${(twoMs / 1000).toFixed(2)} s`, throughput: `${(oneMs / twoMs).toFixed(2)}× faster`,
    memory: [double.policy.memoryBytes, ...double.trainer.helperMemoryBytes].map(mib).join(' + ') });
  single.trainer.close();
  double.trainer.close();
  gc();
}

/** Which hub rows: all, or one group (--only=hub-decode|hub-sft|hub-remax: a few minutes each, for kernel work). */
export type HubPart = 'all' | 'decode' | 'sft' | 'remax';

/** The hub rows (--only=hub), or one group of them. */
export async function benchHubShapes(build: BuildName, part: HubPart = 'all'): Promise<void> {
  if (!['all', 'decode', 'sft', 'remax'].includes(part)) throw new Error(`--only=hub-${part}: use hub, hub-decode, hub-sft or hub-remax`);
  const model = await randomFolder();
  const label = LIKE.endsWith('smollm2-135m.json') ? 'SmolLM2-135M shape (BF16 folder)' : `${LIKE} shape (BF16 folder)`;
  if (part === 'all' || part === 'decode') await decodeRows(build, model, label);
  if (part === 'all' || part === 'sft') await sftRows(build, model, label);
  if (part === 'all' || part === 'remax') await remaxRows(build, model, label, part === 'all');
}
