// The memory report is computed from the planners alone; these tests hold it to what engines really take.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemaxEngine } from '../../src/core/engine';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, type ModelConfig } from '../../src/core/config';
import { instantiateKernels } from '../../src/core/kernels';
import { wasmBuilds } from '../../src/wasm-builds';
import { chooseWeightTypes } from '../../src/core/weight-types';
import { formatRunMemory, parseMemorySize, planEngineMemory, planRunMemory, type EngineMemorySpec } from '../../src/core/memory-report';
import type { LoraSettings } from '../../src/core/lora';
import type { TrainingOptions } from '../../src/core/training';

const CONFIG_DEFAULT: ModelConfig = {
  dim: 64, hiddenDim: 172, nLayers: 3, nHeads: 8, nKvHeads: 4, vocabSize: 3000, seqLen: 128,
  sharedClassifier: false, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA,
};
const config = CONFIG_DEFAULT;
const lora: LoraSettings = { rank: 4, alpha: 8, targets: ['q', 'v'], dropout: 0 } as LoraSettings;

interface Case {
  name: string;
  weightsDtype: 'f32' | 'bf16';
  lora?: LoraSettings;
  maxBatch: number;
  training?: TrainingOptions;
  /** Sequences a generate call decodes after the setup (it grows the inference workspace). */
  decode?: number;
  /** Another shape: a big vocabulary, whose inference logits come in chunks. */
  config?: ModelConfig;
}

const CASES: Case[] = [
  { name: 'full fine-tuning', weightsDtype: 'f32', maxBatch: 1, training: { maxSeqs: 4, maxTokens: 512 }, decode: 6 },
  { name: 'LoRA', weightsDtype: 'f32', lora, maxBatch: 1, training: { maxSeqs: 8, maxTokens: 256 } },
  { name: 'LoRA on a BF16 base (kept BF16)', weightsDtype: 'bf16', lora, maxBatch: 2, training: { maxSeqs: 4, maxTokens: 256 }, decode: 3 },
  { name: 'activation checkpointing', weightsDtype: 'f32', maxBatch: 2, training: { maxSeqs: 4, activationCheckpointing: true } },
  { name: 'helper (gradients only)', weightsDtype: 'f32', maxBatch: 3, training: { maxSeqs: 2, optimizerState: false } },
  { name: 'bf16 reference', weightsDtype: 'bf16', maxBatch: 5 },
  { name: 'big vocabulary', weightsDtype: 'f32', maxBatch: 2, decode: 3, config: { ...config, dim: 16, hiddenDim: 24, nHeads: 2, nKvHeads: 1, vocabSize: 151_936, sharedClassifier: true } },
];

test('the report\'s per-engine totals equal engine.memoryBytes after the same setup', async () => {
  const heapBase = (await instantiateKernels(wasmBuilds, 'simd')).exports.heapBase();
  for (const c of CASES) {
    const config = c.config ?? CONFIG_DEFAULT, weights = randomInitWeights(config, 3);
    const engine = await RemaxEngine.create({
      model: { config, weights, format: 'llama2c-v1' }, build: 'simd', maxBatch: c.maxBatch, weightsDtype: c.weightsDtype, ...(c.lora ? { lora: c.lora } : {}),
    });
    if (c.training) engine.enableTraining(c.training);
    if (c.decode) engine.generate(Array.from({ length: c.decode }, () => ({ promptIds: [1, 5] })), { maxNewTokens: 1 });
    const spec: EngineMemorySpec = {
      role: c.name, thread: 0, config, types: chooseWeightTypes(config, weights, undefined, c.weightsDtype), lora: c.lora,
      maxSeqs: Math.max(c.maxBatch, c.decode ?? 0), training: c.training,
    };
    const planned = planEngineMemory(spec, heapBase);
    // A generate call's I/O (a few hundred bytes) sits after the workspaces: within the last page here.
    assert.equal(planned.total, engine.memoryBytes, c.name);
    assert.equal(planned.parts.reduce((s, p) => s + p.bytes, 0), planned.total, `${c.name}: the parts add up`);
    assert.ok(planned.parts.every((p) => p.bytes >= 0), c.name);
  }
});

test('the parts: what each kind of engine holds', async () => {
  const parts = (spec: Partial<EngineMemorySpec>) => Object.fromEntries(planEngineMemory({ role: 'p', thread: 0, config, maxSeqs: 1, ...spec }, 1024).parts
    .map((p) => [p.part.replace(/ \(.*\)$/, ''), p.bytes]));
  const full = parts({ training: {} }), adapters = parts({ lora, training: {} }), ckpt = parts({ training: { activationCheckpointing: true } });
  const ref = parts({ types: chooseWeightTypes(config, {}, undefined, 'bf16') });
  assert.equal(full['Adam m and v'], 2 * full.gradients!);
  assert.equal(full.gradients, full['weights f32']);
  assert.ok(adapters['LoRA adapters']! > 0 && adapters.gradients === adapters['LoRA adapters'], 'LoRA: only the adapters train');
  assert.ok(ckpt['training activations']! < full['training activations']!, 'checkpointing keeps fewer activations');
  assert.ok(ref['weights bf16']! > 0 && ref.gradients === undefined && ref['training activations'] === undefined);
  const text = formatRunMemory(planRunMemory([{ role: 'policy', thread: 0, config, maxSeqs: 2, training: {} }, { role: 'policy', thread: 1, config, maxSeqs: 2, training: { optimizerState: false } }], 1024));
  assert.match(text, /^policy: [\d.]+ MiB\n {2}weights f32 .*\n {2}gradients .*\n {2}Adam m and v /);
  assert.match(text, /policy \(helper thread 1\)/);
  assert.match(text, /\ntotal: [\d.]+ MiB in 2 engine\(s\)/);
});

test('parseMemorySize', () => {
  assert.equal(parseMemorySize('3GiB'), 3 * 2 ** 30);
  assert.equal(parseMemorySize('2500MiB'), 2500 * 2 ** 20);
  assert.equal(parseMemorySize('1.5g'), 1.5 * 2 ** 30);
  assert.equal(parseMemorySize('4096'), 4096);
  for (const bad of ['', 'lots', '3 TB', '-1GiB', '0']) assert.equal(parseMemorySize(bad), undefined, bad);
});
