// Hugging Face folders (config.json + safetensors) ↔ the engine's model: the shared HF test models load exactly
// (stories260K bit for bit as its llama2.c original, and to the reference's greedy ids and log-probs), round trips
// are exact, bad folders fail with a RemaxInputError naming the file and the tensor or field, and mutated files never
// fail with anything else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { RemaxEngine } from '../../src/core/engine';
import { RemaxInputError } from '../../src/core/errors';
import { elementCount, headSize, weightShapes, type ModelConfig, type ModelWeights } from '../../src/core/config';
import { parseCheckpoint } from '../../src/core/formats/llama2c';
import { memoryFileSet } from '../../src/core/formats/file-set';
import { parseHfConfig, configJsonText } from '../../src/core/formats/hf-config';
import { hfModelFiles, hfTensors, hfTensorSpecs, loadHfModel } from '../../src/core/formats/hf-model';
import { readSafetensorsHeader, serializeSafetensors, parseSafetensors } from '../../src/core/formats/safetensors';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/core/formats/half';
import type { LoadedModel } from '../../src/core/formats/model';
import { Prng } from '../../src/core/prng';
import { loadModelFromPath } from '../../src/node/model-io';
import { readSharedJson, sharedPath, skipUnlessShared } from './shared-data';

// ---------------------------------------------------------------------------------------------------------------------
// Helpers

const HF = ['stories260K', 'qwen2-tiny', 'llama3-tiny'] as const;
const folderFiles = (relative: string): Record<string, Uint8Array> => {
  const dir = sharedPath(relative);
  return Object.fromEntries(readdirSync(dir).sort().map((name) => [name, new Uint8Array(readFileSync(`${dir}/${name}`))]));
};
const cache = new Map<string, Record<string, Uint8Array>>();
const sharedFolder = (name: string): Record<string, Uint8Array> => {
  if (!cache.has(name)) cache.set(name, folderFiles(`models/hf/${name}`));
  return cache.get(name)!;
};
const loadShared = (name: string, context?: number): Promise<LoadedModel> =>
  loadHfModel(memoryFileSet(`models/hf/${name}`, sharedFolder(name)), context === undefined ? {} : { context });

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const json = (bytes: Uint8Array): any => JSON.parse(text(bytes));
const bytesOfJson = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value, null, 2));

/** The first index where two float32 arrays differ in their bits, or -1. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

/** Bit-exact comparison of two weight sets over every tensor of `config`. */
function assertSameWeights(config: ModelConfig, got: ModelWeights, want: ModelWeights, what: string): void {
  for (const { name, shape } of weightShapes(config)) {
    const a = got[name], b = want[name];
    assert.ok(a && b, `${what}: ${name} present`);
    assert.equal(a.length, elementCount(shape), `${what}: ${name} length`);
    const diff = firstDifference(a, b);
    assert.equal(diff, -1, `${what}: ${name} differs at ${diff} (${a[diff]} vs ${b[diff]})`);
  }
}

/** A reference reader, independent of safetensors.ts: name → {dtype, shape, float32 values}. */
function referenceTensors(files: Record<string, Uint8Array>): Map<string, { dtype: string; shape: number[]; values: Float32Array }> {
  const out = new Map<string, { dtype: string; shape: number[]; values: Float32Array }>();
  for (const [name, bytes] of Object.entries(files)) {
    if (!name.endsWith('.safetensors')) continue;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = Number(view.getBigUint64(0, true));
    const header = JSON.parse(text(bytes.subarray(8, 8 + n)));
    for (const [tensor, info] of Object.entries<any>(header)) {
      if (tensor === '__metadata__') continue;
      const count = elementCount(info.shape), at = 8 + n + info.data_offsets[0];
      const values = new Float32Array(count), bits = new Uint32Array(values.buffer);
      for (let i = 0; i < count; i++) {
        if (info.dtype === 'F32') values[i] = view.getFloat32(at + 4 * i, true);
        else if (info.dtype === 'BF16') bits[i] = view.getUint16(at + 2 * i, true) * 65536;
        else values[i] = f16ToF32(view.getUint16(at + 2 * i, true));
      }
      out.set(tensor, { dtype: info.dtype, shape: info.shape, values });
    }
  }
  return out;
}

/** Asserts `fn` rejects with a RemaxInputError whose message matches every pattern. */
async function rejectsInput(fn: () => Promise<unknown>, patterns: (RegExp | string)[], what: string): Promise<string> {
  let message = '';
  await assert.rejects(fn, (e: unknown) => {
    assert.ok(e instanceof RemaxInputError, `${what}: a RemaxInputError, got ${e instanceof Error ? e.stack : String(e)}`);
    message = e.message;
    for (const p of patterns) {
      assert.ok(typeof p === 'string' ? e.message.includes(p) : p.test(e.message), `${what}: ${JSON.stringify(e.message)} should match ${p}`);
    }
    return true;
  }, what);
  return message;
}

/** A tiny random model folder (Llama unless `arch` says), built through the exporter. */
const TINY: ModelConfig = {
  dim: 16, hiddenDim: 24, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 40, seqLen: 64,
  sharedClassifier: true, normEps: 1e-5, ropeTheta: 10000,
};
function tinyModel(config: ModelConfig = TINY, seed = 7): LoadedModel {
  const rng = new Prng(seed);
  const weights: Record<string, Float32Array> = {};
  for (const { name, shape } of weightShapes(config)) {
    const w = new Float32Array(elementCount(shape));
    rng.fillNormal(w, 0.1);
    if (name.startsWith('rms_')) for (let i = 0; i < w.length; i++) w[i]! += 1;
    weights[name] = w;
  }
  return { config, weights: weights as ModelWeights, format: 'llama2c-v0', stopIds: [2] };
}
const tinyFolder = (config: ModelConfig = TINY, dtype: 'F32' | 'BF16' | 'F16' = 'BF16'): Record<string, Uint8Array> =>
  hfModelFiles(tinyModel(config), { dtype });

/** Rewrites a safetensors file's header JSON (the data section is kept as it is). */
function rewriteHeader(bytes: Uint8Array, edit: (header: Record<string, any>) => void): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(text(bytes.subarray(8, 8 + n)));
  edit(header);
  const encoded = new TextEncoder().encode(JSON.stringify(header));
  const data = bytes.subarray(8 + n);
  const out = new Uint8Array(8 + encoded.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(encoded.length), true);
  out.set(encoded, 8);
  out.set(data, 8 + encoded.length);
  return out;
}
const withConfig = (files: Record<string, Uint8Array>, edit: (c: Record<string, any>) => void): Record<string, Uint8Array> => {
  const config = json(files['config.json']!);
  edit(config);
  return { ...files, 'config.json': bytesOfJson(config) };
};
const load = (files: Record<string, Uint8Array>, context?: number) =>
  loadHfModel(memoryFileSet('tiny', files), context === undefined ? {} : { context });

// ---------------------------------------------------------------------------------------------------------------------
// 1. stories260K: the llama2.c model, bit for bit, and the references' greedy ids and log-probs

const storiesSkip = skipUnlessShared('models/hf/stories260K/model.safetensors', 'models/stories260K.bin', 'reference/hf.json', 'reference/greedy.json');

test('hf/stories260K loads to weights bit-identical to stories260K.bin (q/k rows permuted back to interleaved)', { skip: storiesSkip }, async () => {
  const model = await loadShared('stories260K');
  const original = parseCheckpoint(new Uint8Array(readFileSync(sharedPath('models/stories260K.bin'))), 'stories260K.bin');
  assert.deepEqual(model.config, original.config, 'the same ModelConfig (seq_len 512 = max_position_embeddings)');
  assertSameWeights(model.config, model.weights, original.weights, 'stories260K');
  assert.equal(model.format, 'hf');
  assert.equal(model.architecture, 'LlamaForCausalLM');
  assert.equal(model.dtype, 'F32');
  assert.deepEqual(model.stopIds, [2]);
  assert.equal(model.origin?.kind, 'hf');
  assert.deepEqual(Object.keys(model.origin!.kind === 'hf' ? model.origin!.files : {}), ['generation_config.json']);
});

test('hf/stories260K runs in the engine: greedy ids of hf.json and greedy.json exactly, log-probs within 2e-4', { skip: storiesSkip }, async () => {
  const model = await loadShared('stories260K');
  const engine = await RemaxEngine.create({ model, modelSource: 'models/hf/stories260K' });
  const ref = readSharedJson('reference/hf.json').models['hf/stories260K'];
  for (const [i, c] of (ref.greedy as { prompt_ids: number[]; expected_ids: number[] }[]).entries()) {
    const [r] = engine.generate([{ promptIds: c.prompt_ids }], { temperature: 0, maxNewTokens: 32, eosId: null });
    assert.deepEqual(r!.ids, c.expected_ids, `hf.json greedy case ${i}`);
  }
  const greedy = readSharedJson('reference/greedy.json').models['stories260K.bin'].cases as { prompt_ids: number[]; expected_ids: number[] }[];
  const results = engine.generate(greedy.map((c) => ({ promptIds: c.prompt_ids })), { temperature: 0, maxNewTokens: 64, eosId: null });
  greedy.forEach((c, i) => assert.deepEqual(results[i]!.ids, c.expected_ids, `greedy.json case ${i}`));
  assertLogprobs(engine, ref.logprob_sequences, 'stories260K');
});

function assertLogprobs(engine: RemaxEngine, sequences: { name: string; ids: number[]; logprobs: number[] }[], what: string): void {
  const got = engine.logprobs(sequences.map((s) => s.ids));
  sequences.forEach((s, i) => {
    assert.equal(got[i]!.length, s.logprobs.length);
    s.logprobs.forEach((want, t) => {
      const diff = Math.abs(got[i]![t]! - want);
      assert.ok(diff <= 2e-4, `${what} ${s.name} token ${t + 1}: ${got[i]![t]} vs ${want} (|diff| ${diff.toExponential(2)})`);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// 2. qwen2-tiny (BF16, q/k/v biases, tied) and llama3-tiny (BF16, two shards, llama3 RoPE scaling, untied)

const tinySkip = skipUnlessShared('models/hf/qwen2-tiny/model.safetensors', 'models/hf/llama3-tiny/model.safetensors.index.json', 'reference/hf.json');

test('qwen2-tiny and llama3-tiny load: config, dtype, stop ids, files kept', { skip: tinySkip }, async () => {
  const qwen = await loadShared('qwen2-tiny');
  assert.equal(qwen.architecture, 'Qwen2ForCausalLM');
  assert.equal(qwen.dtype, 'BF16');
  assert.deepEqual(qwen.config, {
    dim: 64, hiddenDim: 176, nLayers: 3, nHeads: 4, nKvHeads: 2, vocabSize: 151680, seqLen: 2048,
    sharedClassifier: true, normEps: 1e-6, ropeTheta: 1e6, qkvBias: true,
  });
  assert.deepEqual(qwen.stopIds, [151645]);
  assert.deepEqual(Object.keys(qwen.origin!.kind === 'hf' ? qwen.origin!.files : {}).sort(), ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json']);
  assert.equal(qwen.weights.wcls, undefined, 'tied: no separate classifier');

  const llama = await loadShared('llama3-tiny');
  assert.equal(llama.architecture, 'LlamaForCausalLM');
  assert.equal(llama.dtype, 'BF16');
  assert.deepEqual(llama.config, {
    dim: 64, hiddenDim: 192, nLayers: 2, nHeads: 4, nKvHeads: 1, vocabSize: 128256, seqLen: 2048,
    sharedClassifier: false, normEps: 1e-5, ropeTheta: 500000,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
  });
  assert.deepEqual(llama.stopIds, [128001]);
  assert.ok(llama.weights.wcls, 'untied: lm_head.weight loaded as wcls');
  assert.equal((await loadShared('llama3-tiny', 4096)).config.seqLen, 4096, '--context raises seqLen up to max_position_embeddings');
  assert.equal((await loadShared('stories260K', 4096)).config.seqLen, 512, 'max_position_embeddings caps the context');
});

test('qwen2-tiny and llama3-tiny: float32 values are the stored bf16 values exactly, q/k rows, biases interleaved', { skip: tinySkip }, async () => {
  for (const name of ['qwen2-tiny', 'llama3-tiny']) {
    const model = await loadShared(name);
    const stored = referenceTensors(sharedFolder(name));
    const c = model.config, hs = headSize(c), D = c.dim;
    // Every tensor under its HF name (hfTensors undoes the permutation) equals the reference reader's values.
    const exported = hfTensors(c, model.weights);
    assert.deepEqual(exported.map((t) => t.name).sort(), [...stored.keys()].sort(), `${name}: the same tensor names`);
    for (const t of exported) {
      const ref = stored.get(t.name)!;
      assert.equal(ref.dtype, 'BF16');
      assert.deepEqual(t.shape, ref.shape, `${name} ${t.name} shape`);
      assert.equal(firstDifference(t.data, ref.values), -1, `${name} ${t.name} values`);
    }
    // The permutation, spelled out: engine row 2i of a head = HF row i, row 2i+1 = HF row i + hs/2.
    for (let l = 0; l < c.nLayers; l++) {
      for (const [hf, engine, heads, cols] of [
        ['q_proj.weight', 'wq', c.nHeads, D], ['k_proj.weight', 'wk', c.nKvHeads, D],
        ['q_proj.bias', 'bq', c.nHeads, 1], ['k_proj.bias', 'bk', c.nKvHeads, 1],
      ] as const) {
        const ref = stored.get(`model.layers.${l}.self_attn.${hf}`);
        if (!ref) continue;
        const w = model.weights[engine]!, base = l * heads * hs * cols;
        for (let h = 0; h < heads; h++) {
          for (let i = 0; i < hs / 2; i++) {
            for (const [engineRow, hfRow] of [[2 * i, i], [2 * i + 1, i + hs / 2]]) {
              for (const col of [0, cols - 1]) {
                assert.equal(w[base + (h * hs + engineRow) * cols + col], ref.values[(h * hs + hfRow!) * cols + col],
                  `${name} layer ${l} ${hf} head ${h} row ${engineRow}`);
              }
            }
          }
        }
      }
    }
    // Unpermuted tensors land where the stacking says: v_proj of the last layer, down_proj → w2, up_proj → w3.
    const L = c.nLayers - 1;
    const slice = (w: Float32Array, n: number) => w.subarray(L * n, (L + 1) * n);
    assert.equal(firstDifference(slice(model.weights.wv, c.nKvHeads * hs * D), stored.get(`model.layers.${L}.self_attn.v_proj.weight`)!.values), -1);
    assert.equal(firstDifference(slice(model.weights.w2, D * c.hiddenDim), stored.get(`model.layers.${L}.mlp.down_proj.weight`)!.values), -1);
    assert.equal(firstDifference(slice(model.weights.w3, D * c.hiddenDim), stored.get(`model.layers.${L}.mlp.up_proj.weight`)!.values), -1);
    assert.equal(firstDifference(model.weights.token_embedding_table, stored.get('model.embed_tokens.weight')!.values), -1);
  }
});

test('qwen2-tiny (q/k/v biases) and llama3-tiny (llama3 RoPE scaling) run in the engine: hf.json greedy ids, log-probs within 2e-4', { skip: tinySkip }, async () => {
  for (const name of ['qwen2-tiny', 'llama3-tiny']) {
    const model = await loadShared(name);
    const engine = await RemaxEngine.create({ model, modelSource: `models/hf/${name}` });
    const ref = readSharedJson('reference/hf.json').models[`hf/${name}`];
    const cases = ref.greedy as { prompt_ids: number[]; expected_ids: number[] }[];
    const results = engine.generate(cases.map((c) => ({ promptIds: c.prompt_ids })), { temperature: 0, maxNewTokens: 32, stopIds: [] });
    cases.forEach((c, i) => assert.deepEqual(results[i]!.ids, c.expected_ids, `${name} greedy case ${i}`));
    assertLogprobs(engine, ref.logprob_sequences, name);
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// 3. Round trips

test('round trips: load → hfModelFiles → load is bit-identical (F32 for all, BF16 for the bf16 models)', { skip: tinySkip || storiesSkip }, async () => {
  for (const name of HF) {
    const model = await loadShared(name);
    const original = sharedFolder(name);
    for (const dtype of name === 'stories260K' ? ['F32'] as const : ['F32', 'BF16'] as const) {
      const files = hfModelFiles(model, { dtype });
      const again = await loadHfModel(memoryFileSet(`export/${name}`, files));
      assertSameWeights(model.config, again.weights, model.weights, `${name} ${dtype}`);
      assert.deepEqual(again.config, model.config);
      assert.equal(again.dtype, dtype);
      assert.deepEqual(again.stopIds, model.stopIds);
      // config.json says what the original says, but the dtype.
      const before = json(original['config.json']!), after = json(files['config.json']!);
      assert.equal(after.torch_dtype, { F32: 'float32', BF16: 'bfloat16' }[dtype]);
      delete before.torch_dtype;
      delete after.torch_dtype;
      assert.deepEqual(after, before, `${name}: config.json unchanged but torch_dtype`);
      assert.match(text(files['config.json']!), /"rope_theta": \d+\.0\b/, 'floats keep their decimal point, as Python writes them');
      assert.deepEqual(files['generation_config.json'], original['generation_config.json']);
      for (const file of ['tokenizer.json', 'tokenizer_config.json']) assert.equal(files[file], original[file], `${name} ${file} copied`);
      const header = readSafetensorsHeader(files['model.safetensors']!, 'model.safetensors');
      assert.deepEqual(header.metadata, { format: 'pt' });
      assert.equal(header.byName.has('lm_head.weight'), !model.config.sharedClassifier, 'lm_head only when untied');
      if (dtype === 'BF16' && name === 'qwen2-tiny') {
        assert.deepEqual(files['model.safetensors'], original['model.safetensors'], 'qwen2-tiny BF16: byte for byte the original file');
      }
    }
  }
});

test('round trips without an origin: config.json and generation_config.json written from the ModelConfig', { skip: tinySkip || storiesSkip }, async () => {
  // stories260K.bin (llama2.c) → a LlamaForCausalLM folder equal to the shared one, tensor for tensor.
  const ck = parseCheckpoint(new Uint8Array(readFileSync(sharedPath('models/stories260K.bin'))), 'stories260K.bin');
  const files = hfModelFiles({ ...ck }, { dtype: 'F32' });
  const shared = sharedFolder('stories260K');
  const a = parseSafetensors(files['model.safetensors']!), b = parseSafetensors(shared['model.safetensors']!);
  assert.deepEqual([...a.tensors.keys()], [...b.tensors.keys()], 'same names in the same order');
  for (const [name, t] of a.tensors) assert.deepEqual(t, b.tensors.get(name), name);
  const config = json(files['config.json']!), sharedConfig = json(shared['config.json']!);
  for (const key of Object.keys(sharedConfig)) {
    if (key !== 'pretraining_tp') assert.deepEqual(config[key], sharedConfig[key], `config.json ${key}`);
  }
  const gen = json(files['generation_config.json']!), sharedGen = json(shared['generation_config.json']!);
  assert.deepEqual([gen.bos_token_id, gen.eos_token_id], [sharedGen.bos_token_id, sharedGen.eos_token_id], 'llama2.c BOS 1, EOS 2');

  // The HF models without their origin: the built config.json says the same (architecture, ids, rope_scaling).
  for (const name of ['qwen2-tiny', 'llama3-tiny']) {
    const model = await loadShared(name);
    const built = hfModelFiles({ ...model, origin: undefined }, { dtype: 'BF16' });
    const again = await loadHfModel(memoryFileSet(name, built), { context: model.config.seqLen });
    assertSameWeights(model.config, again.weights, model.weights, `${name} without origin`);
    assert.deepEqual(again.config, model.config);
    const c = json(built['config.json']!), original = json(sharedFolder(name)['config.json']!);
    for (const key of ['architectures', 'model_type', 'rope_scaling', 'tie_word_embeddings', 'eos_token_id', 'torch_dtype', 'rope_theta', 'rms_norm_eps']) {
      assert.deepEqual(c[key], original[key], `${name} config.json ${key}`);
    }
    assert.equal(c.bos_token_id, undefined, 'without the original files BOS is unknown');
    assert.deepEqual(json(built['generation_config.json']!).eos_token_id, original.eos_token_id);
  }
});

test('round trips: F16 export of stories260K rounds each value to half; sharded export with an index reloads', { skip: storiesSkip }, async () => {
  const model = await loadShared('stories260K');
  const again = await loadHfModel(memoryFileSet('f16', hfModelFiles(model, { dtype: 'F16' })));
  assert.equal(again.dtype, 'F16');
  for (const { name } of weightShapes(model.config)) {
    const w = model.weights[name]!, got = again.weights[name]!;
    const bad = w.findIndex((v, i) => !Object.is(got[i], f16ToF32(f32ToF16(v))));
    assert.equal(bad, -1, `${name}[${bad}]: ${got[bad]} is not the half of ${w[bad]}`);
  }
  const sharded = hfModelFiles(model, { dtype: 'F32', maxShardBytes: 300_000 });
  const shards = Object.keys(sharded).filter((n) => n.endsWith('.safetensors'));
  assert.ok(shards.length >= 3 && shards.includes(`model-00001-of-0000${shards.length}.safetensors`), shards.join());
  assert.ok(sharded['model.safetensors.index.json'] && !sharded['model.safetensors']);
  const index = json(sharded['model.safetensors.index.json']!);
  assert.equal(index.metadata.total_size, hfTensorSpecs(model.config).reduce((s, t) => s + 4 * elementCount(t.shape), 0));
  assertSameWeights(model.config, (await loadHfModel(memoryFileSet('sharded', sharded))).weights, model.weights, 'sharded');
});

test('Qwen3 (q/k norms, head_dim ≠ hidden/heads) and tied lm_head stored equal: round trip through the exporter', async () => {
  const config: ModelConfig = { ...TINY, headSize: 8, qkNorm: true };
  const model = tinyModel(config);
  const files = hfModelFiles(model, { dtype: 'F32' });
  const c = json(files['config.json']!);
  assert.equal(c.architectures[0], 'Qwen3ForCausalLM');
  assert.equal(c.head_dim, 8);
  const header = readSafetensorsHeader(files['model.safetensors']!, 'x');
  assert.deepEqual(header.byName.get('model.layers.1.self_attn.q_norm.weight')!.shape, [8]);
  assert.deepEqual(header.byName.get('model.layers.1.self_attn.q_proj.weight')!.shape, [32, 16]);
  const again = await load(files);
  assert.equal(again.architecture, 'Qwen3ForCausalLM');
  assertSameWeights(config, again.weights, model.weights, 'qwen3');
  // q_norm is one head: permuted with nHeads 1.
  const qNorm = referenceTensors(files).get('model.layers.0.self_attn.q_norm.weight')!.values;
  assert.deepEqual(Array.from(model.weights.rms_q_weight!.subarray(0, 8)), [0, 4, 1, 5, 2, 6, 3, 7].map((j) => qNorm[j]));

  // A tied model that also stores lm_head.weight: accepted when it equals the embedding exactly.
  const tied = tinyFolder(TINY, 'F32');
  const embed = parseSafetensors(tied['model.safetensors']!).tensors.get('model.embed_tokens.weight')!;
  const withHead = (data: Float32Array) => ({ ...tied, 'model.safetensors': serializeSafetensors([
    ...[...parseSafetensors(tied['model.safetensors']!).tensors].map(([name, t]) => ({ name, ...t })),
    { name: 'lm_head.weight', shape: embed.shape, data },
  ], { format: 'pt' }) });
  assert.ok((await load(withHead(embed.data.slice()))).weights.token_embedding_table);
  const changed = embed.data.slice();
  changed[3 * 16 + 5] += 1;
  await rejectsInput(() => load(withHead(changed)), ['tiny/model.safetensors', 'lm_head.weight', 'differs from model.embed_tokens.weight', 'row 3, column 5', 'tie_word_embeddings'], 'tied lm_head differs');
});

// ---------------------------------------------------------------------------------------------------------------------
// 4. Bad input: one RemaxInputError naming the file and the tensor or field

test('bad safetensors: header past the file, overlapping and out-of-range offsets, unsupported dtype', async () => {
  const files = tinyFolder();
  const st = files['model.safetensors']!;
  const long = st.slice();
  new DataView(long.buffer).setBigUint64(0, BigInt(st.length), true);
  await rejectsInput(() => load({ ...files, 'model.safetensors': long }), ['tiny/model.safetensors', /header length field says \d+ bytes but the file has only/], 'header longer than the file');

  const overlap = rewriteHeader(st, (h) => { h['model.norm.weight'].data_offsets = h['model.norm.weight'].data_offsets.map((x: number) => x - 2); });
  await rejectsInput(() => load({ ...files, 'model.safetensors': overlap }), ['tiny/model.safetensors', 'tensor "model.norm.weight"', 'an overlap'], 'overlapping offsets');

  const outOfRange = rewriteHeader(st, (h) => {
    const t = h['model.norm.weight'];
    t.data_offsets = [t.data_offsets[0] + 1_000_000, t.data_offsets[1] + 1_000_000];
  });
  await rejectsInput(() => load({ ...files, 'model.safetensors': outOfRange }), ['tiny/model.safetensors', 'tensor "model.norm.weight"', 'go past the'], 'out-of-range offsets');

  const int8 = rewriteHeader(st, (h) => {
    const t = h['model.layers.1.mlp.up_proj.weight'];
    t.dtype = 'I8';
  });
  await rejectsInput(() => load({ ...files, 'model.safetensors': int8 }),
    ['tiny/model.safetensors', 'tensor "model.layers.1.mlp.up_proj.weight"', 'dtype "I8"', 'F32, F16 and BF16'], 'unsupported dtype');
});

test('bad tensors: shape against config.json, missing, left over; index naming a missing shard or the wrong shard', async () => {
  const files = tinyFolder();
  await rejectsInput(() => load(withConfig(files, (c) => { c.intermediate_size = 28; })),
    ['tiny/model.safetensors', 'tensor model.layers.0.mlp.gate_proj.weight', 'shape [24,16]', 'need [28,16]', 'intermediate_size 28'], 'shape disagrees');

  const tensors = [...parseSafetensors(files['model.safetensors']!, 'x', { dtypes: ['BF16'] }).tensors].map(([name, t]) => ({ name, ...t }));
  const without = serializeSafetensors(tensors.filter((t) => t.name !== 'model.layers.1.self_attn.v_proj.weight'), { format: 'pt' });
  await rejectsInput(() => load({ ...files, 'model.safetensors': without }), ['tiny/model.safetensors', 'model.layers.1.self_attn.v_proj.weight is missing'], 'missing tensor');

  const extra = serializeSafetensors([...tensors, { name: 'model.layers.0.self_attn.o_proj.bias', shape: [16], data: new Float32Array(16), dtype: 'BF16' }]);
  await rejectsInput(() => load({ ...files, 'model.safetensors': extra }), ['tiny/model.safetensors', 'model.layers.0.self_attn.o_proj.bias', 'not a weight'], 'left-over tensor');

  // Old conversions store rotary_emb.inv_freq buffers: accepted only when they hold config.json's frequencies.
  const invFreq = (theta: number) => Float32Array.from({ length: 2 }, (_, j) => 1 / theta ** ((2 * j) / 4));
  const withInvFreq = (theta: number) => serializeSafetensors([...tensors,
    ...[0, 1].map((l) => ({ name: `model.layers.${l}.self_attn.rotary_emb.inv_freq`, shape: [2], data: invFreq(theta) }))]);
  await load({ ...files, 'model.safetensors': withInvFreq(10000) });
  await rejectsInput(() => load({ ...files, 'model.safetensors': withInvFreq(500000) }),
    ['tiny/model.safetensors', 'model.layers.0.self_attn.rotary_emb.inv_freq', 'rope_theta 10000'], 'inv_freq of another theta');

  const untied = await load(withConfig(files, (c) => { c.tie_word_embeddings = false; })).catch((e: Error) => e.message);
  assert.match(String(untied), /tiny\/model.safetensors: tensor lm_head.weight is missing \(config.json says tie_word_embeddings false/);

  // Sharded: an index naming a shard that is not there; a tensor the index puts in another shard.
  const sharded = hfModelFiles(tinyModel(), { dtype: 'BF16', maxShardBytes: 1500 });
  const shardNames = Object.keys(sharded).filter((n) => n.endsWith('.safetensors'));
  assert.ok(shardNames.length >= 2);
  await load(sharded);
  const { [shardNames[1]!]: _gone, ...missingShard } = sharded;
  await rejectsInput(() => load(missingShard), ['tiny/model.safetensors.index.json', `shard "${shardNames[1]}"`, 'not in tiny'], 'index names a missing shard');
  const index = json(sharded['model.safetensors.index.json']!);
  index.weight_map['model.norm.weight'] = shardNames[0];
  await rejectsInput(() => load({ ...sharded, 'model.safetensors.index.json': bytesOfJson(index) }),
    ['model.norm.weight', 'weight_map', 'tiny/model-'], 'index puts a tensor in the wrong shard');
  const listed = json(sharded['model.safetensors.index.json']!);
  listed.weight_map['model.layers.9.mlp.up_proj.weight'] = shardNames[0];
  await rejectsInput(() => load({ ...sharded, 'model.safetensors.index.json': bytesOfJson(listed) }),
    ['tiny/model.safetensors.index.json', 'model.layers.9.mlp.up_proj.weight', 'has no tensor of that name'], 'index lists a tensor no shard has');
  await rejectsInput(() => load({ 'config.json': files['config.json']!, 'a.safetensors': files['model.safetensors']!, 'b.safetensors': files['model.safetensors']! }),
    ['tiny', 'a.safetensors, b.safetensors', 'model.safetensors.index.json'], 'several files, no index');
  const single = await load({ 'config.json': files['config.json']!, 'weights.safetensors': files['model.safetensors']! });
  assert.equal(single.dtype, 'BF16', 'a single other *.safetensors is accepted');
});

test('bad config.json: each unsupported setting refused, naming the field and its value', async () => {
  const files = tinyFolder();
  const cases: [string, (c: Record<string, any>) => void, (RegExp | string)[], number?][] = [
    ['rope_scaling yarn', (c) => { c.rope_scaling = { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32 }; }, ['rope_scaling.rope_type', '"yarn"']],
    ['rope_scaling linear (type key)', (c) => { c.rope_scaling = { type: 'linear', factor: 2 }; }, ['rope_scaling.type', '"linear"']],
    ['llama3 scaling without factor', (c) => { c.rope_scaling = { rope_type: 'llama3', low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8 }; }, ['rope_scaling.factor', 'undefined']],
    ['attention_bias on Llama', (c) => { c.attention_bias = true; }, ['attention_bias is true', 'LlamaForCausalLM', 'o_proj']],
    ['mlp_bias', (c) => { c.mlp_bias = true; }, ['mlp_bias is true']],
    ['hidden_act gelu', (c) => { c.hidden_act = 'gelu'; }, ['hidden_act is "gelu"', 'silu']],
    ['partial rotary', (c) => { c.partial_rotary_factor = 0.5; }, ['partial_rotary_factor is 0.5']],
    ['unknown architecture', (c) => { c.architectures = ['GPT2LMHeadModel']; delete c.model_type; }, ['architectures[0] is "GPT2LMHeadModel"', 'LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM']],
    ['unknown model_type', (c) => { delete c.architectures; c.model_type = 'gemma'; }, ['model_type is "gemma"', 'llama, mistral, qwen2, qwen3']],
    ['inconsistent', (c) => { c.model_type = 'qwen2'; }, ['architectures[0] is "LlamaForCausalLM" but model_type is "qwen2"']],
    ['missing hidden_size', (c) => { delete c.hidden_size; }, ['hidden_size is missing']],
    ['hidden_size a string', (c) => { c.hidden_size = '16'; }, ['hidden_size is "16"']],
    ['odd head_dim', (c) => { c.head_dim = 3; }, ['head_dim is 3']],
    ['heads not divisible by KV heads', (c) => { c.num_key_value_heads = 3; }, ['num_key_value_heads 3']],
    ['quantized', (c) => { c.quantization_config = { quant_method: 'gptq' }; }, ['quantization_config']],
    ['Mistral sliding window shorter than the context', (c) => { c.architectures = ['MistralForCausalLM']; c.model_type = 'mistral'; c.sliding_window = 32; }, ['sliding_window is 32', 'context 64', '--context 32']],
    ['Mistral default window 4096 at context 8192', (c) => { c.architectures = ['MistralForCausalLM']; c.model_type = 'mistral'; c.max_position_embeddings = 16384; delete c.sliding_window; }, ['sliding_window is 4096', 'context 8192'], 8192],
    ['Qwen2 sliding window', (c) => { c.architectures = ['Qwen2ForCausalLM']; c.model_type = 'qwen2'; c.use_sliding_window = true; c.sliding_window = 16; c.max_window_layers = 1; }, ['use_sliding_window is true', 'sliding_window 16', 'context 64']],
    ['bad eos', (c) => { c.eos_token_id = -1; }, ['eos_token_id is -1']],
  ];
  for (const [what, edit, patterns, context] of cases) {
    await rejectsInput(() => load(withConfig(files, edit), context ?? 64), ['tiny/config.json', ...patterns], what);
  }
  // The same settings where they are harmless load.
  const fine: [string, (c: Record<string, any>) => void][] = [
    ['Mistral window null', (c) => { c.architectures = ['MistralForCausalLM']; c.model_type = 'mistral'; c.sliding_window = null; }],
    ['Mistral window = context', (c) => { c.architectures = ['MistralForCausalLM']; c.model_type = 'mistral'; c.sliding_window = 64; }],
    ['Qwen2 window on no layer', (c) => { c.use_sliding_window = true; c.sliding_window = 16; c.max_window_layers = 2; }],
    ['rope_scaling default', (c) => { c.rope_scaling = { rope_type: 'default' }; }],
    ['attention_bias false, mlp_bias false', (c) => { c.attention_bias = false; c.mlp_bias = false; }],
    ['transformers 5 rope_parameters', (c) => { delete c.rope_theta; delete c.rope_scaling; c.rope_parameters = { rope_type: 'default', rope_theta: 10000.0 }; }],
  ];
  for (const [what, edit] of fine) {
    const qwen = what.startsWith('Qwen2');
    const base = qwen ? hfModelFiles(tinyModel({ ...TINY, qkvBias: true }), { dtype: 'BF16' }) : files;
    const m = await load(withConfig(base, edit), 64);
    assert.equal(m.config.seqLen, 64, what);
  }
  assert.equal((await load(withConfig(files, (c) => { c.rope_parameters = { rope_type: 'default', rope_theta: 5e5 }; }))).config.ropeTheta, 5e5);
  await rejectsInput(() => load({ ...files, 'config.json': new TextEncoder().encode('{"hidden_size": 16,') }), ['tiny/config.json', 'not valid UTF-8 JSON'], 'truncated config.json');
  await rejectsInput(() => load({ 'model.safetensors': files['model.safetensors']! }), ['tiny: no config.json'], 'no config.json');
  await rejectsInput(() => load({ 'config.json': files['config.json']! }), ['tiny: no model.safetensors'], 'no weights');
  await rejectsInput(() => load({ ...files, 'generation_config.json': bytesOfJson({ eos_token_id: [2, 'x'] }) }), ['tiny/generation_config.json', 'eos_token_id'], 'bad generation_config');
  await rejectsInput(() => load({ ...files, 'generation_config.json': bytesOfJson({ eos_token_id: 40 }) }), ['tiny/generation_config.json', 'eos_token_id 40', 'vocab_size 40'], 'eos outside the vocabulary');
  assert.deepEqual((await load({ ...files, 'generation_config.json': bytesOfJson({ eos_token_id: [2, 7] }) })).stopIds, [2, 7], 'a list of eos ids');
  await assert.rejects(() => load(files, 0), (e: unknown) => e instanceof RemaxInputError && /context is 0/.test((e as Error).message));
});

test('no allocation of gigabytes before the check: a 40 GB tensor declared in a small file fails first', async () => {
  const config = json(tinyFolder()['config.json']!);
  Object.assign(config, { vocab_size: 10_000_000, hidden_size: 2048, num_attention_heads: 16, num_key_value_heads: 16, head_dim: 128, intermediate_size: 64, num_hidden_layers: 1 });
  // A header that says embed_tokens is [10⁷, 2048] BF16 (41 GB) over a data section of a few bytes.
  const header = JSON.stringify({ 'model.embed_tokens.weight': { dtype: 'BF16', shape: [10_000_000, 2048], data_offsets: [0, 40_960_000_000] } });
  const st = new Uint8Array(8 + header.length + 64);
  new DataView(st.buffer).setBigUint64(0, BigInt(header.length), true);
  st.set(new TextEncoder().encode(header), 8);
  const before = process.memoryUsage().arrayBuffers;
  await rejectsInput(() => load({ 'config.json': bytesOfJson(config), 'model.safetensors': st }),
    ['tiny/model.safetensors', 'model.embed_tokens.weight', 'data_offsets [0, 40960000000] go past the 64-byte data section'], '40 GB tensor');
  // A small, valid file whose config.json claims a 40 GB model: the shape check fails first.
  await rejectsInput(() => load({ ...tinyFolder(), 'config.json': bytesOfJson(config) }),
    ['tiny/model.safetensors', 'model.embed_tokens.weight has shape [40,16]', 'need [10000000,2048]'], 'config claims 40 GB');
  // A corrupt layer count (16 million layers) fails on the first missing layer without listing them all.
  const t0 = performance.now();
  await rejectsInput(() => load(withConfig(tinyFolder(), (c) => { c.num_hidden_layers = 16_000_000; })),
    ['tiny/model.safetensors', 'tensor model.layers.2.self_attn.q_proj.weight is missing'], '16 million layers');
  assert.ok(performance.now() - t0 < 1000, 'quickly');
  assert.ok(process.memoryUsage().arrayBuffers - before < 100 * 2 ** 20, 'no large buffer was allocated');
});

// ---------------------------------------------------------------------------------------------------------------------
// 5. Fuzz: mutated files load or throw a RemaxInputError, never anything else, in bounded time

test('fuzz: 3000 mutations of a safetensors file and of config.json either load or throw a RemaxInputError', async () => {
  const rng = new Prng(20241202);
  const int = (n: number) => Math.floor(rng.nextFloat64() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const base = hfModelFiles(tinyModel({ ...TINY, nLayers: 1, vocabSize: 12, qkvBias: true }), { dtype: 'BF16' });
  const st = base['model.safetensors']!, configText = text(base['config.json']!);
  const headerLength = Number(new DataView(st.buffer).getBigUint64(0, true));
  const numbers = ['0', '1', '-1', '2', '3', '7', '16', '1e300', '-0', '0.5', '4294967296', '9007199254740993', '1e-9', 'null', 'true', '"x"', '[]', '{}', '[1,2]'];
  const strings = ['"F32"', '"F16"', '"BF16"', '"I8"', '"F64"', '""', '"silu"', '"gelu"', '"llama3"', '"yarn"', '"qwen2"', '"__metadata__"', '"__proto__"'];

  const mutateBytes = (bytes: Uint8Array, headerEnd: number): Uint8Array => {
    const out = bytes.slice();
    switch (int(6)) {
      case 0: return bytes.slice(0, int(bytes.length)); // truncation
      case 1: for (let k = 1 + int(4); k > 0; k--) { const i = int(headerEnd); out[i]! ^= 1 << int(8); } return out; // bits in the header
      case 2: for (let k = 1 + int(8); k > 0; k--) { const i = int(out.length); out[i]! ^= 1 << int(8); } return out; // bits anywhere
      case 3: { // a forged header length
        const view = new DataView(out.buffer);
        const forged = pick([0n, 1n, 7n, BigInt(headerLength - 8), BigInt(headerLength + 8), BigInt(out.length), 2n ** 63n, 2n ** 64n - 1n, BigInt(int(out.length * 2))]);
        view.setBigUint64(0, forged, true);
        return out;
      }
      case 4: { // appended or removed trailing bytes
        const extra = new Uint8Array(out.length + 1 + int(16));
        extra.set(out);
        return rng.nextFloat64() < 0.5 ? extra : out.slice(0, out.length - 1 - int(8));
      }
      default: return out;
    }
  };
  /** Replaces a random number, string or key of JSON text, keeping the rest. */
  const mutateJson = (source: string): string => {
    const tokens = [...source.matchAll(/-?\d+(\.\d+)?(e-?\d+)?|"[^"]*"/g)];
    let out = source;
    for (let k = 1 + int(3); k > 0; k--) {
      const t = pick(tokens);
      const replacement = t[0].startsWith('"') && rng.nextFloat64() < 0.6 ? pick(strings) : pick(numbers);
      out = out.slice(0, t.index!) + replacement + out.slice(t.index! + t[0].length);
      if (out.length !== source.length) break; // indices moved: one edit per round
    }
    if (rng.nextFloat64() < 0.1) out = out.slice(0, int(out.length));
    return out;
  };
  const headerText = text(st.subarray(8, 8 + headerLength));
  const withHeader = (json: string): Uint8Array => {
    const encoded = new TextEncoder().encode(json);
    const data = st.subarray(8 + headerLength);
    const out = new Uint8Array(8 + encoded.length + data.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(encoded.length), true);
    out.set(encoded, 8);
    out.set(data, 8 + encoded.length);
    return out;
  };

  const outcomes = { loaded: 0, refused: 0 };
  const started = performance.now();
  let slowest = 0;
  for (let i = 0; i < 3000; i++) {
    const kind = i % 3;
    const files = { ...base };
    if (kind === 0) files['model.safetensors'] = mutateBytes(st, 8 + headerLength);
    else if (kind === 1) files['model.safetensors'] = withHeader(mutateJson(headerText));
    else files['config.json'] = new TextEncoder().encode(mutateJson(configText));
    const t0 = performance.now();
    try {
      await load(files, 1 + int(200));
      outcomes.loaded++;
    } catch (error) {
      if (!(error instanceof RemaxInputError)) {
        assert.fail(`mutation ${i} (kind ${kind}) threw ${error instanceof Error ? error.stack : String(error)}\nconfig.json: ${text(files['config.json']!)}`);
      }
      assert.match(error.message, /^tiny|context/, `mutation ${i}: the message names the file: ${error.message}`);
      outcomes.refused++;
    }
    slowest = Math.max(slowest, performance.now() - t0);
  }
  const total = performance.now() - started;
  console.log(`fuzz: ${outcomes.loaded} loaded, ${outcomes.refused} refused in ${total.toFixed(0)} ms (slowest ${slowest.toFixed(1)} ms)`);
  assert.ok(outcomes.refused > 1000 && outcomes.loaded > 50, `both outcomes occur: ${JSON.stringify(outcomes)}`);
  assert.ok(slowest < 1000, `every case is quick (slowest ${slowest.toFixed(0)} ms)`);
});

// ---------------------------------------------------------------------------------------------------------------------
// Pieces

test('parseHfConfig: defaults are transformers\' own; config written back parses to the same ModelConfig', () => {
  const minimal = { architectures: ['Qwen2ForCausalLM'], hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 100 };
  const parsed = parseHfConfig(minimal);
  assert.deepEqual(parsed.config, {
    dim: 64, hiddenDim: 128, nLayers: 2, nHeads: 4, nKvHeads: 4, vocabSize: 100, seqLen: 2048,
    sharedClassifier: false, normEps: 1e-6, ropeTheta: 10000, qkvBias: true,
  });
  assert.equal(parsed.maxPositionEmbeddings, 32768);
  assert.equal(parseHfConfig({ ...minimal, architectures: ['LlamaForCausalLM'] }).config.seqLen, 2048, 'Llama: max_position_embeddings 2048');
  assert.equal(parseHfConfig(minimal, { context: 100000 }).config.seqLen, 32768);
  for (const config of [TINY, { ...TINY, qkvBias: true }, { ...TINY, qkNorm: true, headSize: 8 },
    { ...TINY, sharedClassifier: false, ropeScaling: { type: 'llama3' as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 } }]) {
    const written = json(hfModelFiles(tinyModel(config), { dtype: 'F32' })['config.json']!);
    assert.deepEqual(parseHfConfig(written, { context: config.seqLen }).config, config);
    assert.deepEqual(JSON.parse(configJsonText(written)), written, 'configJsonText is JSON');
  }
});

test('safetensors: F16 and BF16 read exactly (aligned and unaligned data), written rounded to nearest even', () => {
  const values = Float32Array.from([0, -0, 1, -2.5, 65504, 1e-8, 3.14159, -1e20, Infinity, -Infinity, 1 + 2 ** -8, 1 + 3 * 2 ** -8]);
  const bytes = serializeSafetensors([
    { name: 'a', shape: [12], data: values, dtype: 'BF16' },
    { name: 'odd', shape: [1], data: Float32Array.from([7]), dtype: 'F16' }, // leaves the next tensor 2-byte aligned only
    { name: 'b', shape: [3, 4], data: values, dtype: 'F16' },
    { name: 'c', shape: [12], data: values, dtype: 'F32' },
  ]);
  const parsed = parseSafetensors(bytes, 'x', { dtypes: ['F32', 'F16', 'BF16'] });
  const bf = parsed.tensors.get('a')!, f16 = parsed.tensors.get('b')!, f32 = parsed.tensors.get('c')!;
  assert.equal(bf.dtype, 'BF16');
  assert.deepEqual(Array.from(bf.data), Array.from(values, (v) => bf16ToF32(f32ToBf16(v))));
  assert.deepEqual(Array.from(bf.data.subarray(10)), [1, 1 + 2 ** -6], 'ties to even');
  assert.deepEqual(Array.from(f16.data), Array.from(values, (v) => f16ToF32(f32ToF16(v))));
  assert.deepEqual(f16.shape, [3, 4]);
  assert.deepEqual(f32.data, values, 'F32 after an odd-sized F16 tensor (unaligned) reads exactly');
  // Unaligned BF16/F16 data: the same file behind a 1-byte offset of its buffer.
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  const again = parseSafetensors(shifted.subarray(1), 'x', { dtypes: ['F32', 'F16', 'BF16'] });
  for (const name of ['a', 'b', 'c']) assert.deepEqual(again.tensors.get(name)!.data, parsed.tensors.get(name)!.data, name);
  // The default stays float32 only, as `remax grad` files are.
  assert.throws(() => parseSafetensors(bytes, 'x'), /tensor "a" has dtype "BF16"; only F32 is supported/);
  // NaN stays NaN through BF16.
  const nan = parseSafetensors(serializeSafetensors([{ name: 'n', shape: [1], data: Float32Array.from([NaN]), dtype: 'BF16' }]), 'n', { dtypes: ['BF16'] });
  assert.ok(Number.isNaN(nan.tensors.get('n')!.data[0]));
});

test('qwen2-tiny: an id of a padding row (the model has 151,680 rows, its tokenizer 151,669 tokens) decodes to no text, as in transformers', { skip: tinySkip }, async () => {
  const engine = await RemaxEngine.create({ model: await loadModelFromPath(sharedPath('models/hf/qwen2-tiny'), '--model') });
  const tokenizer = engine.tokenizer!;
  assert.ok(tokenizer.vocabSize < engine.config.vocabSize, 'the vocabulary is padded');
  const ids = tokenizer.encode('Hello world, 12+7=19');
  const padding = engine.config.vocabSize - 1;
  assert.equal(engine.decode([...ids.slice(0, 2), padding, ...ids.slice(2), padding]), engine.decode(ids));
  assert.equal(engine.decode([padding]), '');
  assert.equal(engine.decode([padding, ...ids.slice(3)], [...ids.slice(0, 3), padding]), engine.decode(ids.slice(3), ids.slice(0, 3)));
  assert.throws(() => tokenizer.decode([padding]), /is not a token id of tokenizer/); // the tokenizer alone stays strict
});
