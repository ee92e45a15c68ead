// LoRA on a compact base (issue 13): the frozen matrices stay as loaded (BF16, F16, Q8_0, Q4_K), read as stored by the
// forward pass, the input gradients and the classifier's backward, with no float32 copy of them. The adapter
// gradients, losses and updates are bit for bit those of the same LoRA engine on the float32 widening of the base,
// and the base takes its real bytes. Full fine-tuning still widens. The CLI runs (sft, train) on a BF16 Hugging Face
// folder resume exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RemaxEngine } from '../../src/core/engine';
import { elementCount, weightShapes, type ModelConfig, type ModelWeights } from '../../src/core/config';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/core/formats/half';
import { dequantize, quantize } from '../../src/core/formats/gguf-quants';
import type { LoadedModel, StoredTensors } from '../../src/core/formats/model';
import { loraShapes, parseLoraTargets, type LoraSettings, type LoraWeights } from '../../src/core/lora';
import { MATRIX_WEIGHTS } from '../../src/core/weight-types';
import { workspaceSizes } from '../../src/core/memory-plan';
import { Prng } from '../../src/core/prng';
import { sharedPath, skipUnlessShared } from './shared-data';

type Compact = 'BF16' | 'F16' | 'Q8_0' | 'Q4_K';

/** The model with every matrix rounded to `type` and marked as stored so. */
function roundedTo(config: ModelConfig, type: Compact, seed: number): LoadedModel {
  const weights = randomInitWeights(config, seed) as ModelWeights;
  const stored: StoredTensors = {};
  let state = seed;
  const byte = () => ((state = (state * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  for (const { name, shape } of weightShapes(config)) {
    const w = weights[name]!;
    for (let i = 0; i < w.length; i++) w[i]! *= name.startsWith('rms') ? 1 : 8; // far from uniform outputs
    if (!MATRIX_WEIGHTS.includes(name)) continue;
    if (type === 'Q4_K') {
      // Random blocks (this project writes no Q4_K) of about the model's scale.
      const blocks = new Uint8Array((w.length / 256) * 144).map(byte);
      for (let o = 0; o < blocks.length; o += 144) {
        const d = f32ToF16(0.002 + byte() / 25600), dmin = f32ToF16(0.002 + byte() / 25600);
        blocks.set([d & 0xff, d >> 8, dmin & 0xff, dmin >> 8], o);
      }
      weights[name] = dequantize('Q4_K', blocks, w.length);
      stored[name] = { type, blocks };
    } else if (type === 'Q8_0') {
      const blocks = quantize('Q8_0', w, shape[shape.length - 1]!, name);
      weights[name] = dequantize('Q8_0', blocks, w.length);
      stored[name] = { type, blocks };
    } else {
      weights[name] = w.map((v) => (type === 'BF16' ? bf16ToF32(f32ToBf16(v)) : f16ToF32(f32ToF16(v))));
      stored[name] = { type };
    }
  }
  return { config, weights, stored, format: 'llama2c-v0' };
}

function randomAdapters(config: ModelConfig, lora: LoraSettings, seed: number): LoraWeights {
  const rng = new Prng(seed), out: LoraWeights = {};
  for (const { target, a, b } of loraShapes(config, lora)) {
    const fill = (shape: number[]) => Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => (2 * rng.nextFloat64() - 1) * 0.3);
    out[target] = { a: fill(a), b: fill(b) };
  }
  return out;
}

const bits = (w: LoraWeights) => Object.fromEntries(Object.entries(w).map(([k, { a, b }]) => [k, [Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length)), Array.from(new Uint32Array(b.buffer, b.byteOffset, b.length))]]));

function examples(config: ModelConfig) {
  const rng = new Prng(5), v = config.vocabSize;
  return [14, 9, 21, 5].map((len, s) => {
    const ids = Array.from({ length: len }, (_, i) => (i === 0 ? 1 : Math.floor(rng.nextFloat64() * v)));
    return { ids, weights: ids.map((_, i) => (i < 2 ? 0 : s % 2 === 0 ? 0.8 : -0.4)) };
  });
}

// Narrow layers (the direct outer-product kernels) and wide ones (transposed-tile input gradients), both with a
// classifier of more than one 128-row block (its dx is read row block by row block).
const SHAPES: [string, ModelConfig][] = [
  ['narrow, tied', { dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 300, seqLen: 32, sharedClassifier: true, normEps: 1e-5, ropeTheta: 10000 }],
  ['wide, untied, q/k/v biases', { dim: 288, hiddenDim: 320, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 260, seqLen: 32, sharedClassifier: false, qkvBias: true, normEps: 1e-5, ropeTheta: 10000 }],
];

const LORA: LoraSettings = { rank: 4, alpha: 8, targets: parseLoraTargets('q,k,v,o,gate,up,down'), dropout: 0.1 };

const Q4K_SHAPE: [string, ModelConfig] = ['Q4_K-friendly, tied', { dim: 256, hiddenDim: 512, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 200, seqLen: 32, sharedClassifier: true, normEps: 1e-5, ropeTheta: 10000 }];

for (const type of ['BF16', 'F16', 'Q8_0', 'Q4_K'] as const) {
  for (const [what, config] of type === 'Q4_K' ? [Q4K_SHAPE] : SHAPES) {
    test(`LoRA on a ${type} base (${what}): stays compact, bit-identical adapter gradients, losses and steps to its float32 widening`, async () => {
      const model = roundedTo(config, type, 3), adapters = randomAdapters(config, LORA, 7), ex = examples(config);
      const run = async (weightsDtype: 'auto' | 'f32') => {
        const engine = await RemaxEngine.create({ model, weightsDtype, lora: LORA, loraWeights: adapters, maxBatch: 2 });
        engine.enableTraining({ maxTokens: 64, maxSeqs: 4, maxLogitRows: 8 });
        const losses: number[] = [];
        let grads: ReturnType<typeof bits> = {};
        for (let step = 0; step < 2; step++) {
          engine.zeroGradients();
          losses.push(engine.accumulateGradients(ex).loss);
          if (step === 0) grads = bits(engine.readAdapterGradients());
          engine.optimizerStep({ lr: 1e-2, weightDecay: 0.1 });
        }
        const reference = engine.logprobs(ex.map((e) => e.ids), { adapters: false });
        return { engine, losses, grads, after: bits(engine.readAdapters()), reference };
      };
      const compact = await run('auto'), wide = await run('f32');
      assert.ok(Object.keys(compact.engine.weightTypes).length >= 7, 'the frozen matrices stay compact in training');
      assert.equal(compact.engine.weightTypes.wq, type);
      assert.deepEqual(wide.engine.weightTypes, {});
      assert.deepEqual(compact.losses, wide.losses, 'losses bit for bit');
      assert.deepEqual(compact.grads, wide.grads, 'adapter gradients bit for bit');
      assert.deepEqual(compact.after, wide.after, 'adapters after two steps bit for bit');
      assert.deepEqual(compact.reference, wide.reference, 'the KL reference (adapters off) bit for bit');
      assert.ok(Object.values(compact.grads).some(([a]) => a!.some((x) => x !== 0)), 'gradients are not all zero');
      // The base takes its real bytes: a bf16/f16 matrix half its float32 widening, Q8_0 about 0.27.
      const matrixBytes = weightShapes(config).filter(({ name }) => MATRIX_WEIGHTS.includes(name)).reduce((n, { shape }) => n + 4 * elementCount(shape), 0);
      const saved = wide.engine.memoryBytes - compact.engine.memoryBytes, expected = matrixBytes * (type === 'Q8_0' ? 1 - 34 / 128 : type === 'Q4_K' ? 1 - 144 / 1024 : 0.5);
      // (memoryBytes grows in 64 KiB wasm pages)
      assert.ok(Math.abs(saved - expected) <= 0.1 * expected + 2 * 65536, `${type}: ${saved} bytes saved of ${matrixBytes} float32 matrix bytes (expected about ${expected})`);
    });
  }
}

test('LoRA with weightsDtype f16 on a float32 base: the base rounded to half (2 bytes), bit for bit the LoRA engine of the rounded float32 base', async () => {
  const [, config] = SHAPES[1]!;
  const model = roundedTo(config, 'F16', 4);
  const base: LoadedModel = { ...model, weights: randomInitWeights(config, 4) as ModelWeights, stored: undefined }; // float32, not halves
  for (const [name, w] of Object.entries(base.weights)) if (!name.startsWith('rms')) for (let i = 0; i < w!.length; i++) w![i]! *= 8;
  const rounded: LoadedModel = { ...base, weights: Object.fromEntries(Object.entries(base.weights).map(([name, w]) =>
    [name, MATRIX_WEIGHTS.includes(name as never) ? w!.map((v) => f16ToF32(f32ToF16(v))) : w])) as ModelWeights };
  const adapters = randomAdapters(config, LORA, 9), ex = examples(config);
  const run = async (m: LoadedModel, weightsDtype: 'f16' | 'f32') => {
    const engine = await RemaxEngine.create({ model: m, weightsDtype, lora: LORA, loraWeights: adapters, maxBatch: 2 });
    engine.enableTraining({ maxTokens: 64, maxSeqs: 4, maxLogitRows: 8 });
    engine.zeroGradients();
    const loss = engine.accumulateGradients(ex).loss, grads = bits(engine.readAdapterGradients());
    engine.optimizerStep({ lr: 1e-2 });
    return { engine, loss, grads, after: bits(engine.readAdapters()), reference: engine.logprobs(ex.map((e) => e.ids), { adapters: false }) };
  };
  const half = await run(base, 'f16'), wide = await run(rounded, 'f32');
  assert.equal(half.engine.weightTypes.wq, 'F16');
  assert.equal(half.engine.weightTypes.w2, 'F16');
  assert.deepEqual(wide.engine.weightTypes, {});
  assert.equal(half.loss, wide.loss);
  assert.deepEqual(half.grads, wide.grads, 'adapter gradients bit for bit');
  assert.deepEqual(half.after, wide.after, 'adapters after a step');
  assert.deepEqual(half.reference, wide.reference, 'the base (KL reference) bit for bit');
});

test('LoRA plans no transposed float32 copies of frozen weights; full fine-tuning keeps them', () => {
  const narrow = SHAPES[0]![1];
  const spec = { maxTokens: 64, maxSeqs: 4, maxLogitRows: 8, training: true };
  const full = workspaceSizes(narrow, spec), adapted = workspaceSizes(narrow, { ...spec, lora: LORA });
  assert.ok(full.weightsT > 0 && full.classifierT > 0);
  assert.equal(adapted.weightsT, 0);
  assert.equal(adapted.classifierT, 0);
  assert.ok(adapted.transposeA >= 4 * 128 * narrow.dim, 'room for a block of the classifier\'s rows widened');
});

test('full fine-tuning of a BF16 model still widens its weights to float32', async () => {
  const config = SHAPES[0]![1], model = roundedTo(config, 'BF16', 4);
  const engine = await RemaxEngine.create({ model });
  assert.equal(engine.weightTypes.wq, 'BF16');
  engine.enableTraining({ maxTokens: 64, maxSeqs: 4 });
  assert.deepEqual(engine.weightTypes, {});
});

// ---- the CLI on a BF16 Hugging Face folder ----

const CLI = path.resolve('dist/cli.js');
const remax = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const withoutTimes = (rows: Record<string, unknown>[]) => rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('time') && k !== 'tokens_per_second' && k !== 'seconds' && !k.startsWith('memory'))));

const QWEN = 'models/hf/qwen2-tiny';
test('sft --lora-rank and train --lora-rank on a BF16 Hugging Face folder: the base stays BF16 and a resume is exact', { skip: skipUnlessShared(`${QWEN}/config.json`) }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-lora-bf16-'));
  try {
    const model = path.join(dir, 'bf16');
    const init = remax('init', '--like', sharedPath(`${QWEN}/config.json`), '--dtype', 'bf16', '--out', model, '--tokenizer-from', sharedPath(QWEN), '--seed', '2');
    assert.equal(init.code, 0, init.stderr);
    const data = path.join(dir, 'data.txt');
    writeFileSync(data, Array.from({ length: 30 }, (_, i) => `the cat ${i} sat on the mat and ran ${i % 7} times.`).join('\n\n'));
    const sft = ['sft', '--model', model, '--data', data, '--batch', '4', '--lr', '1e-2', '--lora-rank', '4', '--lora-dropout', '0.1', '--steps', '4', '--seed', '1', '--context', '64'];
    const a = path.join(dir, 'sft-a'), b = path.join(dir, 'sft-b'), c = path.join(dir, 'sft-c');
    const straight = remax(...sft, '--out', a, '--metrics', path.join(dir, 'a.jsonl'));
    assert.equal(straight.code, 0, straight.stderr);
    assert.equal(remax(...sft, '--out', b, '--stop-at', '2', '--metrics', path.join(dir, 'b.jsonl')).code, 0);
    const resumed = remax('sft', '--resume', b, '--out', c, '--metrics', path.join(dir, 'b.jsonl'));
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(withoutTimes(lines(path.join(dir, 'b.jsonl'))), withoutTimes(lines(path.join(dir, 'a.jsonl'))));
    assert.deepEqual(readFileSync(path.join(c, 'adapter_model.safetensors')), readFileSync(path.join(a, 'adapter_model.safetensors')));

    const prompts = path.join(dir, 'prompts.jsonl');
    writeFileSync(prompts, Array.from({ length: 8 }, (_, i) => JSON.stringify({ prompt: `count ${i} and`, target_length: 12 })).join('\n') + '\n');
    const train = ['train', '--model', model, '--prompts', prompts, '--reward', 'length', '--max-new-tokens', '6', '--batch', '2', '--eval-every', '0', '--quiet',
      '--lora-rank', '4', '--kl-coef', '0.1', '--lr', '1e-2', '--steps', '4', '--seed', '3', '--context', '64'];
    const ta = path.join(dir, 'train-a'), tb = path.join(dir, 'train-b');
    const full = remax(...train, '--out', ta);
    assert.equal(full.code, 0, full.stderr);
    assert.equal(remax(...train, '--out', tb, '--stop-at', '2').code, 0);
    const go = remax('train', '--resume', tb, '--quiet');
    assert.equal(go.code, 0, go.stderr);
    assert.deepEqual(withoutTimes(lines(path.join(tb, 'metrics.jsonl'))), withoutTimes(lines(path.join(ta, 'metrics.jsonl'))));
    assert.deepEqual(readFileSync(path.join(tb, 'adapter', 'adapter_model.safetensors')), readFileSync(path.join(ta, 'adapter', 'adapter_model.safetensors')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
