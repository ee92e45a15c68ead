// Compact frozen weights (src/core/weight-types.ts, assembly/kernels/weights.ts): an engine keeping BF16, F16 or Q8_0
// matrices as stored gives bit-identical log-probabilities, greedy ids and samples to the engine of their float32
// widening; the weights take their real bytes; training widens them; 'bf16' rounds explicitly; bad values are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { RemaxEngine } from '../../src/core/engine';
import { RemaxInputError } from '../../src/core/errors';
import { elementCount, weightShapes, type ModelConfig, type ModelWeights, type WeightName } from '../../src/core/config';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { loadGguf, modelToGguf } from '../../src/core/formats/gguf-model';
import { loadHfModel } from '../../src/core/formats/hf-model';
import { memoryFileSet } from '../../src/core/formats/file-set';
import { f16BitsOfF32Bits, f16ToF32, f32ToBf16, f32ToF16, bf16ToF32 } from '../../src/core/formats/half';
import { quantize, dequantize } from '../../src/core/formats/gguf-quants';
import type { LoadedModel, StoredTensors } from '../../src/core/formats/model';
import { MATRIX_WEIGHTS, f16Bits, type WeightsDtype } from '../../src/core/weight-types';
import { PolicyGroup } from '../../src/core/parallel/policy-group';
import { startHelperWorkers } from '../../src/node/helper-workers';
import { readShared, readSharedJson, sharedPath, skipUnlessShared } from './shared-data';

const bitsOf = (rows: number[][]): string => rows.map((r) => Array.from(new Uint32Array(Float32Array.from(r).buffer)).join(',')).join(';');

/** What an engine computes: teacher-forced log-probabilities, greedy ids, and sampled ids with their log-probabilities. */
async function outputs(model: LoadedModel, weightsDtype: WeightsDtype, sequences: number[][]) {
  const engine = await RemaxEngine.create({ model, weightsDtype, maxBatch: 4 });
  const prompts = sequences.map((s) => ({ promptIds: s.slice(0, 3) }));
  return {
    engine,
    logprobs: bitsOf(engine.logprobs(sequences)),
    greedy: engine.generate(prompts, { temperature: 0, maxNewTokens: 12, stopIds: [] }).map((g) => g.ids),
    sampled: engine.generate(prompts, { temperature: 1, topP: 1, seed: 7, maxNewTokens: 12, stopIds: [], logprobs: true })
      .map((g) => [g.ids, bitsOf([g.logprobs!])]),
  };
}

async function assertSameAsF32(model: LoadedModel, sequences: number[][], what: string): Promise<RemaxEngine> {
  const compact = await outputs(model, 'auto', sequences);
  const wide = await outputs(model, 'f32', sequences);
  assert.ok(Object.keys(compact.engine.weightTypes).length > 0, `${what}: some matrix is compact`);
  assert.deepEqual(wide.engine.weightTypes, {}, `${what}: f32 widens everything`);
  assert.equal(compact.logprobs, wide.logprobs, `${what}: log-probabilities bit for bit`);
  assert.deepEqual(compact.greedy, wide.greedy, `${what}: greedy ids`);
  assert.deepEqual(compact.sampled, wide.sampled, `${what}: sampled ids and their log-probabilities`);
  // What the engine holds reads back as the loaded float32 values, bit for bit.
  const back = compact.engine.readWeights();
  for (const { name } of weightShapes(model.config)) {
    assert.deepEqual(new Uint32Array(back[name]!.buffer), new Uint32Array(model.weights[name]!.slice().buffer), `${what}: ${name} reads back`);
  }
  return compact.engine;
}

// A small random model with ragged sizes (dim 36, hidden 50, head size 12, vocab 37), or Q8_0- or Q4_K-friendly ones.
function tinyModel(q8: boolean | 'q4k', shared: boolean): LoadedModel {
  const config: ModelConfig = q8 === 'q4k'
    ? { dim: 256, hiddenDim: 512, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 41, seqLen: 32, sharedClassifier: shared, normEps: 1e-5, ropeTheta: 10000 }
    : q8
    ? { dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 41, seqLen: 32, sharedClassifier: shared, normEps: 1e-5, ropeTheta: 10000 }
    : { dim: 36, hiddenDim: 50, nLayers: 2, nHeads: 3, nKvHeads: 1, vocabSize: 37, seqLen: 32, sharedClassifier: shared, normEps: 1e-5, ropeTheta: 10000 };
  const weights = randomInitWeights(config, 5);
  // Larger weights than the init's, so that outputs are far from uniform.
  for (const w of Object.values(weights)) for (let i = 0; i < w.length; i++) w[i]! *= 8;
  return { config, weights, format: 'llama2c-v0' };
}

/**
 * The model with every matrix rounded to `type` and marked as stored so (Q8_0: blocks of its own quantizer; Q4_K:
 * random blocks, as this project writes no Q4_K, of about the model's scale).
 */
function roundedTo(model: LoadedModel, type: 'BF16' | 'F16' | 'Q8_0' | 'Q4_K'): LoadedModel {
  let seed = 12345;
  const byte = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  const weights = { ...model.weights } as ModelWeights;
  const stored: StoredTensors = {};
  for (const { name, shape } of weightShapes(model.config)) {
    if (!MATRIX_WEIGHTS.includes(name)) continue;
    const w = weights[name]!;
    if (type === 'Q8_0') {
      const blocks = quantize('Q8_0', w, shape[shape.length - 1]!, name);
      weights[name] = dequantize('Q8_0', blocks, w.length);
      stored[name] = { type, blocks };
    } else if (type === 'Q4_K') {
      const blocks = new Uint8Array((w.length / 256) * 144).map(byte);
      for (let o = 0; o < blocks.length; o += 144) {
        const d = f32ToF16(0.002 + byte() / 25600), dmin = f32ToF16(0.002 + byte() / 25600);
        blocks.set([d & 0xff, d >> 8, dmin & 0xff, dmin >> 8], o);
      }
      weights[name] = dequantize('Q4_K', blocks, w.length);
      stored[name] = { type, blocks };
    } else {
      weights[name] = w.map((v) => (type === 'BF16' ? bf16ToF32(f32ToBf16(v)) : f16ToF32(f32ToF16(v))));
      stored[name] = { type };
    }
  }
  return { ...model, weights, stored };
}

const SEQUENCES = [[1, 5, 9, 2, 14, 3, 7, 30], [1, 17, 4, 4, 22], [1, 5, 9, 11, 0, 8, 36, 12, 19]];

for (const type of ['BF16', 'F16', 'Q8_0', 'Q4_K'] as const) {
  for (const shared of [true, false]) {
    test(`a random model rounded to ${type} (${shared ? 'tied' : 'untied'} classifier): bit-identical to its float32 widening`, async () => {
      const model = roundedTo(tinyModel(type === 'Q4_K' ? 'q4k' : type === 'Q8_0', shared), type);
      const engine = await assertSameAsF32(model, SEQUENCES, type);
      const types = engine.weightTypes;
      for (const name of ['wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3', 'token_embedding_table'] as WeightName[]) assert.equal(types[name], type, name);
      assert.equal(types.wcls, shared ? undefined : type);
      assert.equal(types.rms_att_weight, undefined, 'norms stay float32');
    });
  }
}

test('weights stored as BF16 but changed since (not bf16 values) stay float32 under auto; bf16 rounds them explicitly', async () => {
  const base = tinyModel(false, true);
  const claimed = { ...roundedTo(base, 'BF16'), weights: base.weights }; // the stored types no longer hold the values
  const engine = await RemaxEngine.create({ model: claimed });
  assert.deepEqual(engine.weightTypes, {}, 'auto is lossless');
  const rounded = await outputs(roundedTo(base, 'BF16'), 'f32', SEQUENCES);
  const explicit = await outputs(base, 'bf16', SEQUENCES);
  assert.equal(explicit.engine.weightTypes.wq, 'BF16');
  assert.equal(explicit.logprobs, rounded.logprobs, 'bf16 = the float32 engine of the bf16-rounded weights');
  assert.deepEqual(explicit.greedy, rounded.greedy);
});

/** The model with every matrix rounded to IEEE half (its float32 values; nothing marked as stored). */
const halfRounded = (model: LoadedModel): LoadedModel => ({
  ...model,
  weights: Object.fromEntries(Object.entries(model.weights).map(([name, w]) =>
    [name, MATRIX_WEIGHTS.includes(name as WeightName) ? w!.map((v) => f16ToF32(f32ToF16(v))) : w])) as ModelWeights,
});

for (const shared of [true, false]) {
  test(`f16 rounds a float32 model's matrices to IEEE half (${shared ? 'tied' : 'untied'}): bit-identical to the float32 engine of the rounded weights`, async () => {
    const base = tinyModel(false, shared);
    const half = await outputs(base, 'f16', SEQUENCES);
    const rounded = await outputs(halfRounded(base), 'f32', SEQUENCES);
    for (const name of ['wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3', 'token_embedding_table'] as WeightName[]) assert.equal(half.engine.weightTypes[name], 'F16', name);
    assert.equal(half.engine.weightTypes.wcls, shared ? undefined : 'F16');
    assert.equal(half.engine.weightTypes.rms_att_weight, undefined, 'norms stay float32');
    assert.equal(half.logprobs, rounded.logprobs, 'log-probabilities bit for bit');
    assert.deepEqual(half.greedy, rounded.greedy);
    assert.deepEqual(half.sampled, rounded.sampled);
    // What it holds reads back as the rounded values.
    const back = half.engine.readWeights(), want = halfRounded(base).weights;
    for (const { name } of weightShapes(base.config)) assert.deepEqual(new Uint32Array(back[name]!.buffer), new Uint32Array(want[name]!.slice().buffer), name);
  });
}

test('f16 keeps what is stored compact as it is (BF16, Q8_0, Q4_K: lossless) and rounds only the rest', async () => {
  for (const type of ['BF16', 'Q8_0', 'Q4_K'] as const) {
    const model = roundedTo(tinyModel(type === 'Q4_K' ? 'q4k' : true, false), type);
    delete model.stored!.w2; // one matrix as float32: rounded to half
    const half = await outputs(model, 'f16', SEQUENCES);
    const types = half.engine.weightTypes;
    for (const name of ['wq', 'wk', 'wv', 'wo', 'w1', 'w3', 'wcls', 'token_embedding_table'] as WeightName[]) assert.equal(types[name], type, `${type}: ${name}`);
    assert.equal(types.w2, 'F16', `${type}: the float32 matrix`);
    const w2 = model.weights.w2.map((v) => f16ToF32(f32ToF16(v)));
    const expected = await outputs({ ...model, weights: { ...model.weights, w2 } }, 'f32', SEQUENCES);
    assert.equal(half.logprobs, expected.logprobs, `${type}: the float32 engine of the same values`);
  }
});

test('f16 keeps a matrix float32 when half cannot hold it: a value that would overflow, or every value subnormal', async () => {
  const model = tinyModel(false, false);
  model.weights.w1[7] = 70000; // past 65504: rounds to infinity
  model.weights.wk = model.weights.wk.map((v) => v * 2 ** -16); // all below 2^-14
  const engine = await RemaxEngine.create({ model, weightsDtype: 'f16' });
  assert.equal(engine.weightTypes.w1, undefined, 'w1: float32 (overflow)');
  assert.equal(engine.weightTypes.wk, undefined, 'wk: float32 (subnormal)');
  assert.equal(engine.weightTypes.wq, 'F16');
  assert.equal(engine.readWeights().w1[7], 70000, 'kept exactly');
  // 65504 itself, and values that round to it, are halves.
  model.weights.w1[7] = 65519;
  model.weights.wk = model.weights.wk.map((v) => v * 2 ** 16);
  const fits = await RemaxEngine.create({ model, weightsDtype: 'f16' });
  assert.equal(fits.weightTypes.w1, 'F16');
  assert.equal(fits.readWeights().w1[7], 65504);
});

/**
 * An independent reference for float32 → half (field by field: exponent rebias, the subnormal shift, round to nearest
 * even at the cut bit), against which the engine's integer version is checked.
 */
function referenceF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    const m = mantissa | 0x800000; // the implicit bit
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let out = m >>> shift;
    if (rest > half || (rest === half && (out & 1))) out++;
    return sign | out;
  }
  let out = sign | (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (out & 1))) out++; // may carry into the exponent: correct, up to infinity
  return out;
}

test('f16BitsOfF32Bits and f32ToF16: a field-by-field reference, bit for bit (round to nearest even, subnormals, overflow, NaN)', () => {
  const u32 = new Uint32Array(1), f32 = new Float32Array(u32.buffer);
  const check = (x: number) => {
    u32[0] = x;
    const expected = referenceF16Bits(u32[0]!);
    assert.equal(f16BitsOfF32Bits(u32[0]!), expected, `bits ${u32[0]!.toString(16)}`);
    assert.equal(f32ToF16(f32[0]!), expected, `value of bits ${u32[0]!.toString(16)}`);
  };
  for (let h = 0; h < 0x10000; h++) { // every half, and the midpoints and near-midpoints around it
    f32[0] = f16ToF32(h);
    const x = u32[0]!;
    for (const dx of [0, 1, -1, 0x1000, 0xfff, 0x1001, -0x1000]) check(x + dx);
  }
  let seed = 11;
  for (let i = 0; i < 300000; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    check(seed ^ (i << 13));
  }
  for (const v of [0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0x477ff000, 0x477fefff, 0x33000000, 0x33000001]) check(v);
});

test('the weights take their real bytes: bf16 matrices half of float32', async () => {
  const model = roundedTo(tinyModel(false, false), 'BF16');
  const compact = await RemaxEngine.create({ model });
  const wide = await RemaxEngine.create({ model, weightsDtype: 'f32' });
  const matrices = weightShapes(model.config).filter(({ name }) => MATRIX_WEIGHTS.includes(name)).reduce((n, { shape }) => n + elementCount(shape), 0);
  const all = weightShapes(model.config).reduce((n, { shape }) => n + elementCount(shape), 0);
  // Each tensor starts on a 64-byte boundary: at most 63 bytes of gap per tensor.
  const gaps = 64 * weightShapes(model.config).length;
  assert.ok(Math.abs(wide.weightBytes - 4 * all) <= gaps, `f32: ${wide.weightBytes} vs ${4 * all}`);
  assert.ok(Math.abs(compact.weightBytes - (2 * matrices + 4 * (all - matrices))) <= gaps, `bf16: ${compact.weightBytes}`);
});

test('enableTraining widens compact weights: the gradients are those of the float32 engine', async () => {
  const model = roundedTo(tinyModel(true, true), 'Q8_0');
  const examples = [{ ids: SEQUENCES[0]!, weights: SEQUENCES[0]!.map(() => 1) }, { ids: SEQUENCES[1]!, weights: SEQUENCES[1]!.map(() => -0.5) }];
  const grads = async (weightsDtype: WeightsDtype) => {
    const engine = await RemaxEngine.create({ model, weightsDtype });
    engine.enableTraining({ maxTokens: 32, maxSeqs: 2 });
    assert.deepEqual(engine.weightTypes, {});
    engine.zeroGradients();
    const { loss } = engine.accumulateGradients(examples);
    return { loss, grads: Object.values(engine.readGradients()).map((g) => Array.from(new Uint32Array(g.buffer)).join(',')) };
  };
  assert.deepEqual(await grads('auto'), await grads('f32'));
});

test('a helper engine (--threads) keeps the compact weights of the engine it is made from: the same tokens, compact memory', async () => {
  const model = roundedTo(tinyModel(true, false), 'Q8_0');
  const engine = await RemaxEngine.create({ model, maxBatch: 4 }), wide = await RemaxEngine.create({ model, weightsDtype: 'f32', maxBatch: 4 });
  const requests = SEQUENCES.concat([[1, 2, 3]]).map((s, i) => ({ promptIds: s.slice(0, 2 + i), seed: i }));
  const options = { temperature: 1, topP: 1, maxNewTokens: 10, stopIds: [], logprobs: true };
  const group = new PolicyGroup(engine, engine, startHelperWorkers(2));
  try {
    await group.start(4, null);
    assert.deepEqual(await group.generate(requests, options), wide.generate(requests, options));
    // The helper's compact policy and compact reference: each the size of the main (compact) engine, not of a float32 one.
    assert.ok(group.helperMemoryBytes[0]! <= 2 * engine.memoryBytes && engine.memoryBytes < wide.memoryBytes,
      `helper ${group.helperMemoryBytes[0]}, compact engine ${engine.memoryBytes}, float32 engine ${wide.memoryBytes}`);
  } finally {
    group.close();
  }
});

test('f16Bits: the half of a float32 that is exactly one (every finite half), −1 for any other value', () => {
  const u32 = new Uint32Array(1), f32 = new Float32Array(u32.buffer);
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00) continue; // Inf/NaN: not kept as F16 (refused as non-finite)
    f32[0] = f16ToF32(h);
    assert.equal(f16Bits(u32[0]!), h, `half ${h.toString(16)}`);
  }
  let seed = 7;
  for (let i = 0; i < 200000; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    // Random bits near the half range, and random values with few mantissa bits (often exactly halves).
    u32[0] = i % 2 ? (seed & 0x8fffffff) | 0x30000000 : (seed & 0xffffe000);
    const v = f32[0]!, exact = Number.isFinite(v) && Math.abs(v) <= 65504 && f16ToF32(f32ToF16(v)) === v;
    assert.equal(f16Bits(u32[0]!), exact ? f32ToF16(v) : -1, `bits ${u32[0]!.toString(16)}`);
  }
});

test('weightsDtype other than auto, f32, bf16, f16, q8_0, q4_k is refused naming the allowed values', async () => {
  await assert.rejects(RemaxEngine.create({ model: tinyModel(false, true), weightsDtype: 'fp8' as WeightsDtype }),
    (e: unknown) => e instanceof RemaxInputError && /weightsDtype is "fp8"; it must be one of auto, f32, bf16, f16, q8_0, q4_k /.test(e.message));
});

test('a compact engine refuses a NaN in a compact matrix, naming the tensor', async () => {
  const model = roundedTo(tinyModel(false, true), 'BF16');
  model.weights.w1[3] = NaN;
  await assert.rejects(RemaxEngine.create({ model, modelSource: 'nan-model' }),
    (e: unknown) => e instanceof RemaxInputError && /^nan-model: tensor w1\b.*1 value that is not finite/.test(e.message));
});

// ---- the shared models: BF16 folders, F16 and Q8_0 GGUF files ----

const GGUF = ['stories260K-f16.gguf', 'stories260K-q8_0.gguf', 'llama-2-tiny-random.gguf'] as const;
const HF = ['qwen2-tiny', 'llama3-tiny'] as const;
const skip = skipUnlessShared(...GGUF.map((f) => `models/gguf/${f}`), ...HF.map((f) => `models/hf/${f}`), 'reference/hf.json');

const hfFolder = (name: string) => {
  const dir = sharedPath(`models/hf/${name}`);
  return memoryFileSet(`models/hf/${name}`, Object.fromEntries(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(`${dir}/${f}`))])));
};

for (const name of [...GGUF, ...HF]) {
  test(`${name}: kept as stored, bit-identical to float32, greedy ids of reference/hf.json exact`, { skip }, async () => {
    const gguf = name.endsWith('.gguf');
    const model = gguf ? loadGguf(readShared(`models/gguf/${name}`), name) : await loadHfModel(hfFolder(name));
    const ref = readSharedJson('reference/hf.json').models[gguf ? `gguf/${name}` : `hf/${name}`];
    const sequences = (ref.logprob_sequences as { ids: number[] }[]).map((s) => s.ids);
    const engine = await assertSameAsF32(model, sequences, name);
    const expected = name.includes('q8_0') ? { wq: 'Q8_0', w2: 'F16', token_embedding_table: 'Q8_0' } : gguf ? { wq: 'F16', w2: 'F16' } : { wq: 'BF16', w2: 'BF16' };
    for (const [tensor, type] of Object.entries(expected)) assert.equal(engine.weightTypes[tensor as WeightName], type, tensor);
    const cases = ref.greedy as { prompt_ids: number[]; expected_ids: number[] }[];
    const results = engine.generate(cases.map((c) => ({ promptIds: c.prompt_ids })), { temperature: 0, maxNewTokens: 32, eosId: null });
    cases.forEach((c, i) => assert.deepEqual(results[i]!.ids, c.expected_ids, `greedy case ${i}`));
    if (!gguf) {
      // Fresh engines (the same workspace): the whole memory shrinks by the half of the weights saved.
      const compact = await RemaxEngine.create({ model }), wide = await RemaxEngine.create({ model, weightsDtype: 'f32' });
      const ratio = compact.weightBytes / wide.weightBytes;
      assert.ok(ratio > 0.49 && ratio < 0.52, `${name}: bf16 weights take ${ratio.toFixed(3)} of float32's`);
      const saved = wide.memoryBytes - compact.memoryBytes, expected = wide.weightBytes - compact.weightBytes;
      assert.ok(Math.abs(saved - expected) <= 65536, `${name}: engine memory ${compact.memoryBytes} vs ${wide.memoryBytes}`);
    }
  });
}

test('qwen2-tiny written as a Q8_0 GGUF (qwen2: q/k rows permuted at load, blocks and all): kept as Q8_0, bit-identical to float32', { skip }, async () => {
  const hf = await loadHfModel(hfFolder('qwen2-tiny'));
  const model = loadGguf(modelToGguf(hf, { type: 'Q8_0' }), 'qwen2-tiny-q8_0.gguf');
  assert.equal(model.architecture, 'gguf qwen2');
  const sequences = (readSharedJson('reference/hf.json').models['hf/qwen2-tiny'].logprob_sequences as { ids: number[] }[]).map((s) => s.ids);
  const engine = await assertSameAsF32(model, sequences, 'qwen2 Q8_0 GGUF');
  for (const tensor of ['wq', 'wk', 'wv', 'token_embedding_table'] as WeightName[]) assert.equal(engine.weightTypes[tensor], 'Q8_0', tensor);
});
