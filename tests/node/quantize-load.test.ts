// `--quantize q8_0|q4_k` (weightsDtype 'q8_0' / 'q4_k', src/core/weight-types.ts): every matrix quantized at load as
// ggml does, kept compact; the engine then computes bit for bit what the float32 engine of the dequantized weights
// does. Rows that Q4_K cannot hold fall back to Q8_0, then float32; a file's own blocks of the asked type are kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { RemaxEngine } from '../../src/core/engine';
import { RemaxInputError } from '../../src/core/errors';
import { weightShapes, type ModelConfig, type ModelWeights } from '../../src/core/config';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { dequantize, quantize } from '../../src/core/formats/gguf-quants';
import { quantizeQ4_K } from '../../src/core/formats/quantize-q4k';
import type { LoadedModel } from '../../src/core/formats/model';
import { MATRIX_WEIGHTS, chooseWeightTypes, quantizedType, type WeightsDtype } from '../../src/core/weight-types';
import { weightsDtypeOf } from '../../src/node/model-io';
import { parseLoraTargets } from '../../src/core/lora';
import { sharedPath, skipUnlessShared } from './shared-data';

const bits = (rows: number[][]): string => rows.map((r) => Array.from(new Uint32Array(Float32Array.from(r).buffer)).join(',')).join(';');

// dim 256 (Q4_K rows), hidden 96 (w2's rows of 96 values: Q8_0 only), vocabulary 41.
const CONFIG: ModelConfig = { dim: 256, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 41, seqLen: 32, sharedClassifier: false, normEps: 1e-5, ropeTheta: 10000 };

function randomModel(): LoadedModel {
  const weights = randomInitWeights(CONFIG, 11);
  for (const w of Object.values(weights)) for (let i = 0; i < w.length; i++) w[i]! *= 8; // far from uniform outputs
  return { config: CONFIG, weights, format: 'llama2c-v0' };
}

/** The model's weights as `--quantize choice` leaves them: each matrix quantized and dequantized by the reference quantizers. */
function dequantized(model: LoadedModel, choice: 'q8_0' | 'q4_k'): LoadedModel {
  const weights = { ...model.weights } as ModelWeights;
  for (const { name, shape } of weightShapes(model.config)) {
    if (!MATRIX_WEIGHTS.includes(name) || !weights[name]) continue;
    const w = weights[name]!, type = quantizedType(choice, shape[shape.length - 1]!);
    if (type === 'Q4_K') weights[name] = dequantize('Q4_K', quantizeQ4_K(w), w.length);
    else if (type === 'Q8_0') weights[name] = dequantize('Q8_0', quantize('Q8_0', w, shape[shape.length - 1]!, name), w.length);
  }
  return { ...model, weights };
}

async function outputs(model: LoadedModel, weightsDtype: WeightsDtype) {
  const engine = await RemaxEngine.create({ model, weightsDtype, maxBatch: 3 });
  const sequences = [[1, 5, 9, 2, 14, 3, 7, 30], [1, 17, 4, 4, 22], [1, 5, 9, 11, 0, 8, 36, 12, 19]];
  return {
    engine,
    logprobs: bits(engine.logprobs(sequences)),
    greedy: engine.generate(sequences.map((s) => ({ promptIds: s.slice(0, 3) })), { temperature: 0, maxNewTokens: 12, stopIds: [] }).map((g) => g.ids),
  };
}

test('quantizedType: Q4_K for rows of a multiple of 256, else Q8_0 for a multiple of 32, else float32', () => {
  assert.equal(quantizedType('q4_k', 512), 'Q4_K');
  assert.equal(quantizedType('q4_k', 576), 'Q8_0'); // SmolLM2's width: 2.25 blocks of 256
  assert.equal(quantizedType('q8_0', 512), 'Q8_0');
  assert.equal(quantizedType('q4_k', 50), undefined);
  const types = chooseWeightTypes(CONFIG, {}, undefined, 'q4_k');
  assert.deepEqual(types, { token_embedding_table: 'Q4_K', wq: 'Q4_K', wk: 'Q4_K', wv: 'Q4_K', wo: 'Q4_K', w1: 'Q4_K', w3: 'Q4_K', w2: 'Q8_0', wcls: 'Q4_K' });
});

for (const choice of ['q8_0', 'q4_k'] as const) {
  test(`weightsDtype ${choice}: compact matrices, bit-identical to the float32 engine of the dequantized weights`, async () => {
    const model = randomModel();
    const quantized = await outputs(model, choice);
    const reference = await outputs(dequantized(model, choice), 'f32');
    const types = quantized.engine.weightTypes;
    assert.equal(types.wq, choice === 'q4_k' ? 'Q4_K' : 'Q8_0');
    assert.equal(types.w2, 'Q8_0');
    assert.equal(types.rms_att_weight, undefined, 'norms stay float32');
    assert.equal(quantized.logprobs, reference.logprobs, 'log-probabilities bit for bit');
    assert.deepEqual(quantized.greedy, reference.greedy);
    // The weights are really smaller: Q4_K 144 bytes per 256 values, Q8_0 34 per 32 (against 1024 and 128 as float32).
    const f32 = await RemaxEngine.create({ model, weightsDtype: 'f32', maxBatch: 3 });
    assert.ok(quantized.engine.memoryBytes < f32.memoryBytes, `${quantized.engine.memoryBytes} < ${f32.memoryBytes}`);
    // And they are lossy but close: the quantized log-probabilities differ from the float32 ones, a little.
    const exact = await outputs(model, 'f32');
    assert.notEqual(quantized.logprobs, exact.logprobs);
  });
}

test('q8_0 keeps a Q8_0 file\'s own blocks when they hold the weights, and requantizes a matrix changed since', async () => {
  const model = randomModel();
  const blocks = quantize('Q8_0', model.weights.wq, CONFIG.dim, 'wq');
  const stored = { ...model, weights: { ...model.weights, wq: dequantize('Q8_0', blocks, model.weights.wq.length) }, stored: { wq: { type: 'Q8_0' as const, blocks } } };
  const kept = await RemaxEngine.create({ model: stored, weightsDtype: 'q8_0' });
  assert.deepEqual(new Uint8Array((kept.exportModel().stored!.wq as { blocks: Uint8Array }).blocks), blocks);
  // Claimed blocks that no longer hold the values (changed by training since): quantized afresh from the values.
  const stale = new Uint8Array(blocks).fill(0);
  const changed = await RemaxEngine.create({ model: { ...stored, stored: { wq: { type: 'Q8_0' as const, blocks: stale } } }, weightsDtype: 'q8_0' });
  assert.deepEqual(new Uint8Array((changed.exportModel().stored!.wq as { blocks: Uint8Array }).blocks), blocks);
});

test('--quantize and --weights-dtype together: agreeing is fine, disagreeing or an unknown type is refused naming the flag', () => {
  assert.equal(weightsDtypeOf(undefined, undefined), undefined);
  assert.equal(weightsDtypeOf(undefined, 'q4_k'), 'q4_k');
  assert.equal(weightsDtypeOf('q8_0', 'q8_0'), 'q8_0');
  assert.equal(weightsDtypeOf('bf16', undefined), 'bf16');
  assert.throws(() => weightsDtypeOf('bf16', 'q4_k'), (e: unknown) => e instanceof RemaxInputError && /--quantize q4_k and --weights-dtype bf16 disagree/.test(e.message));
  assert.throws(() => weightsDtypeOf(undefined, 'q5_k'), (e: unknown) => e instanceof RemaxInputError && /--quantize is "q5_k"; it must be q8_0 or q4_k/.test(e.message));
});

const CLI = path.resolve('dist/cli.js');
const remax = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
const skip = skipUnlessShared('models/hf/stories260K');

test('remax generate --quantize q8_0 holds Q8_0 weights and generates; train --quantize without LoRA is refused', { skip }, () => {
  const model = sharedPath('models/hf/stories260K');
  const r = remax('generate', '--model', model, '--prompt-ids', '1', '--temperature', '0', '--max-new-tokens', '8', '--quantize', 'q8_0');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /Q8_0/);
  const bad = remax('generate', '--model', model, '--prompt-ids', '1', '--quantize', 'q3');
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /--quantize is "q3"; it must be q8_0 or q4_k/);
  const noLora = remax('train', '--model', model, '--quantize', 'q4_k', '--steps', '1', '--dry-run');
  assert.equal(noLora.status, 2, noLora.stderr);
  assert.match(noLora.stderr, /--quantize q4_k \(or --weights-dtype q4_k\) sets how a LoRA run keeps its frozen base model/);
});

test('LoRA on a base quantized at load (q4_k): adapter gradients and losses bit for bit those on the dequantized float32 base', async () => {
  const model = randomModel();
  const lora = { rank: 4, alpha: 8, targets: parseLoraTargets('q,k,v,o,gate,up,down'), dropout: 0 };
  const examples = [[1, 5, 9, 2, 14, 3, 7, 30], [1, 17, 4, 4, 22, 6]].map((ids) => ({ ids, weights: ids.map((_, i) => (i < 2 ? 0 : 0.5)) }));
  const run = async (m: LoadedModel, weightsDtype: WeightsDtype) => {
    const engine = await RemaxEngine.create({ model: m, weightsDtype, lora, loraSeed: 3, maxBatch: 2 });
    engine.enableTraining({ maxTokens: 32, maxSeqs: 2, maxLogitRows: 8 });
    engine.zeroGradients();
    const loss = engine.accumulateGradients(examples).loss;
    engine.optimizerStep({ lr: 1e-2 });
    engine.zeroGradients();
    return { engine, losses: [loss, engine.accumulateGradients(examples).loss], grads: engine.readAdapterGradients() };
  };
  const quantized = await run(model, 'q4_k'), reference = await run(dequantized(model, 'q4_k'), 'f32');
  assert.equal(quantized.engine.weightTypes.w1, 'Q4_K', 'the frozen base stays quantized in training');
  assert.deepEqual(quantized.losses, reference.losses);
  assert.deepEqual(quantized.grads, reference.grads);
});
