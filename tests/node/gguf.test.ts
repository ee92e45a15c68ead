// GGUF: the container, the tensor types and the model mapping, against the shared GGUF files (written from
// stories260K.bin), the PyTorch references in ../shared/reference/hf.json, hand-built quantized blocks whose values
// are worked out here from ggml's block formulas, hand-built corrupt files, and a seeded fuzz run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { parseGguf, serializeGguf, tensorBytes, type GgufFile, type GgufMetaType, type GgufTensorToWrite, type GgufValue } from '../../src/core/formats/gguf';
import { GGML_TYPES, dequantize, quantize, type GgmlTypeName } from '../../src/core/formats/gguf-quants';
import { ggufToModel, loadGguf, modelToGguf, type GgufModelOrigin } from '../../src/core/formats/gguf-model';
import { parseCheckpoint, randomInitWeights } from '../../src/core/formats/llama2c';
import { f16ToF32, f32ToF16, widen16 } from '../../src/core/formats/half';
import { halfToInterleaved } from '../../src/core/formats/rope-order';
import { headSize, weightShapes, type ModelConfig, type WeightName } from '../../src/core/config';
import type { LoadedModel } from '../../src/core/formats/model';
import { RemaxEngine } from '../../src/core/engine';
import { RemaxInputError } from '../../src/core/errors';
import { Prng } from '../../src/core/prng';
import { readShared, readSharedJson, sharedPath, skipUnlessShared } from './shared-data';

const GGUF_DIR = 'models/gguf';
const STORIES = ['stories260K-f32.gguf', 'stories260K-f16.gguf', 'stories260K-q8_0.gguf'] as const;
const ALL_GGUF = [...STORIES, 'llama-2-tiny-random.gguf'] as const;
const skip = skipUnlessShared(...ALL_GGUF.map((f) => `${GGUF_DIR}/${f}`), 'models/stories260K.bin', 'reference/hf.json');

const file = (name: string): Uint8Array => readShared(`${GGUF_DIR}/${name}`);
const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
const f = Math.fround;

/** assert.throws for a RemaxInputError whose message starts with `source` and matches every pattern. */
function throwsInput(fn: () => unknown, source: string, patterns: RegExp[], what: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RemaxInputError, `${what}: expected a RemaxInputError, got ${(e as Error)?.stack ?? e}`);
    assert.ok(e.message.startsWith(`${source}:`), `${what}: message does not name ${source}: ${e.message}`);
    for (const p of patterns) assert.match(e.message, p, `${what}`);
    return true;
  }, what);
}

function assertSameWeights(a: LoadedModel, b: LoadedModel, what: string): void {
  assert.deepEqual(Object.keys(a.weights).sort(), Object.keys(b.weights).sort(), `${what}: tensor names`);
  for (const [name, w] of Object.entries(a.weights)) {
    assert.deepEqual(bits(w!), bits(b.weights[name as WeightName]!), `${what}: ${name} bit for bit`);
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// The shared files

test('the four shared GGUF files parse: versions, metadata with types, tensor tables', { skip }, () => {
  for (const name of ALL_GGUF) {
    const g = parseGguf(file(name), name);
    assert.equal(g.version, 3, name);
    assert.equal(g.metadata.get('general.architecture'), 'llama', name);
    assert.equal(g.types.get('llama.attention.layer_norm_rms_epsilon'), 'f32', name);
    assert.equal(g.metadata.get('llama.attention.layer_norm_rms_epsilon'), f(1e-5), `${name}: the float32 value`);
    assert.equal(g.dataOffset % g.alignment, 0);
  }
  const f16 = parseGguf(file('stories260K-f16.gguf'), 'f16');
  assert.equal(f16.alignment, 64);
  assert.ok(f16.tensors.every((t) => t.offset % 64 === 0));
  assert.deepEqual(f16.tensors[0], { name: 'token_embd.weight', shape: [64, 512], type: 'F16', offset: 0, byteLength: 64 * 512 * 2 });
  const q8 = parseGguf(file('stories260K-q8_0.gguf'), 'q8');
  assert.equal(q8.alignment, 32);
  assert.deepEqual(new Set(q8.tensors.map((t) => t.type)), new Set(['Q8_0', 'F16', 'F32']));
  assert.equal(q8.tensors.find((t) => t.name === 'blk.0.ffn_down.weight')!.type, 'F16', 'row length 172 is not a multiple of 32');

  const llama2 = parseGguf(file('llama-2-tiny-random.gguf'), 'tiny');
  const tokens = llama2.metadata.get('tokenizer.ggml.tokens') as string[];
  assert.equal(tokens.length, 32000);
  assert.deepEqual(tokens.slice(0, 4), ['<unk>', '<s>', '</s>', '<0x00>']);
  assert.equal(llama2.types.get('tokenizer.ggml.tokens'), 'array<string>');
  assert.equal(llama2.types.get('tokenizer.ggml.scores'), 'array<f32>');
  assert.equal(llama2.types.get('tokenizer.ggml.token_type'), 'array<i32>');
  assert.equal((llama2.metadata.get('tokenizer.ggml.scores') as number[]).length, 32000);
  assert.equal(llama2.metadata.get('tokenizer.ggml.eos_token_id'), 2);
});

test('stories260K-f32.gguf holds stories260K.bin bit for bit; F16 is its f16 rounding; Q8_0 is our Q8_0 of it byte for byte', { skip }, () => {
  const ref = parseCheckpoint(readShared('models/stories260K.bin'), 'stories260K.bin');
  const m32 = loadGguf(file('stories260K-f32.gguf'), 'f32');
  assert.deepEqual({ ...m32.config, normEps: 1e-5 }, ref.config, 'same configuration (eps: the float32 value)');
  assert.equal(m32.config.normEps, f(1e-5));
  assert.equal(m32.config.sharedClassifier, true, 'no output.weight: tied');
  assertSameWeights(m32, { ...ref, format: 'llama2c-v0' } as LoadedModel, 'f32 vs llama2.c');
  assert.equal(m32.format, 'gguf');
  assert.equal(m32.architecture, 'gguf llama');
  assert.equal(m32.dtype, 'F32');
  assert.equal(m32.tokenizer, undefined);
  assert.equal(m32.origin?.kind, 'gguf');
  assert.equal((m32.origin as GgufModelOrigin).metadata.get('llama.block_count'), 5);

  const m16 = loadGguf(file('stories260K-f16.gguf'), 'f16');
  assert.equal(m16.dtype, 'F16 + F32');
  for (const { name, shape } of weightShapes(ref.config)) {
    const w = ref.weights[name]!;
    const expected = name.startsWith('rms_') ? w : Float32Array.from(w, (v) => f16ToF32(f32ToF16(v)));
    assert.deepEqual(bits(m16.weights[name]!), bits(expected), `${name} [${shape}]`);
  }

  // Each stored tensor of the Q8_0 file against our quantizer applied to the same tensor of the F32 file.
  const b32 = file('stories260K-f32.gguf'), g32 = parseGguf(b32, 'f32');
  const bq = file('stories260K-q8_0.gguf'), gq = parseGguf(bq, 'q8');
  let q8Tensors = 0;
  for (const t of gq.tensors) {
    const t32 = g32.tensors.find((x) => x.name === t.name)!;
    const values = dequantize('F32', tensorBytes(g32, b32, t32), t32.byteLength / 4);
    const mine = quantize(t.type as 'F32' | 'F16' | 'Q8_0', values, t.shape[0]!, t.name);
    assert.deepEqual(mine, tensorBytes(gq, bq, t), `${t.name} (${t.type})`);
    if (t.type === 'Q8_0') q8Tensors++;
  }
  assert.equal(q8Tensors, 1 + 5 * 6, 'token_embd and six matrices per layer are Q8_0');
  assert.equal(loadGguf(bq, 'q8').dtype, 'Q8_0 + F16 + F32');
});

interface HfCase { prompt_ids: number[]; expected_ids: number[] }
interface HfSequence { name: string; ids: number[]; logprobs: number[] }

for (const name of ALL_GGUF) {
  test(`${name}: greedy ids and log-probabilities of reference/hf.json`, { skip }, async () => {
    const ref = readSharedJson('reference/hf.json').models[`gguf/${name}`];
    const model = loadGguf(file(name), name);
    assert.deepEqual(model.stopIds, name.startsWith('llama-2') ? [2] : undefined, 'tokenizer.ggml.eos_token_id');
    const engine = await RemaxEngine.create({ model, modelSource: name });
    const cases = ref.greedy as HfCase[];
    const results = engine.generate(cases.map((c) => ({ promptIds: c.prompt_ids })), { temperature: 0, maxNewTokens: 32, eosId: null });
    cases.forEach((c, i) => assert.deepEqual(results[i]!.ids, c.expected_ids, `greedy case ${i}`));
    const sequences = ref.logprob_sequences as HfSequence[];
    const got = engine.logprobs(sequences.map((s) => s.ids));
    sequences.forEach((s, i) => {
      assert.equal(got[i]!.length, s.logprobs.length);
      s.logprobs.forEach((expected, t) => {
        const diff = Math.abs(got[i]![t]! - expected);
        assert.ok(diff <= 2e-4, `${s.name} token ${t + 1}: ${got[i]![t]} vs ${expected} (|diff| ${diff.toExponential(2)})`);
      });
    });
  });
}

test('llama-2-tiny-random.gguf: untied output, vocabulary from the tokens, context capped by the option', { skip }, () => {
  const m = loadGguf(file('llama-2-tiny-random.gguf'), 'tiny');
  assert.equal(m.config.sharedClassifier, false);
  assert.equal(m.config.vocabSize, 32000);
  assert.equal(m.config.ropeTheta, 10000, 'no rope.freq_base: the default');
  assert.equal(m.config.seqLen, 2048, 'context 4096 capped at the default 2048');
  assert.equal(loadGguf(file('llama-2-tiny-random.gguf'), 'tiny', { context: 100 }).config.seqLen, 100);
  assert.equal(loadGguf(file('stories260K-f32.gguf'), 'f32', { context: 100_000 }).config.seqLen, 512, 'never past context_length');
  assert.equal(m.dtype, 'F16 + F32');
});

/**
 * A Hugging Face BF16 folder of ../shared as the engine's model, read here with nothing from src/ but the bf16
 * widening and the row permutation, so that exporting it to GGUF can be checked against llama.cpp's layout and the
 * PyTorch reference.
 */
function hfFolder(folder: string): { model: LoadedModel; hf: Map<string, Float32Array> } {
  const dir = `models/hf/${folder}`, cfg = readSharedJson(`${dir}/config.json`);
  const files = existsSync(sharedPath(`${dir}/model.safetensors`)) ? ['model.safetensors']
    : [...new Set(Object.values(readSharedJson(`${dir}/model.safetensors.index.json`).weight_map as Record<string, string>))];
  const hf = new Map<string, Float32Array>();
  for (const name of files) {
    const b = readShared(`${dir}/${name}`), n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    for (const [key, info] of Object.entries(header)) {
      if (key === '__metadata__') continue;
      const [s, e] = info.data_offsets;
      assert.equal(info.dtype, 'BF16');
      hf.set(key, widen16(b, 8 + n + s, (e - s) / 2, 'BF16'));
    }
  }
  const hs: number = cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads;
  const config: ModelConfig = {
    dim: cfg.hidden_size, hiddenDim: cfg.intermediate_size, nLayers: cfg.num_hidden_layers, nHeads: cfg.num_attention_heads,
    nKvHeads: cfg.num_key_value_heads, vocabSize: cfg.vocab_size, seqLen: 2048, sharedClassifier: cfg.tie_word_embeddings,
    normEps: cfg.rms_norm_eps, ropeTheta: cfg.rope_theta,
  };
  if (hs * config.nHeads !== config.dim) config.headSize = hs;
  if (hf.has('model.layers.0.self_attn.q_proj.bias')) config.qkvBias = true;
  const rs = cfg.rope_scaling;
  if (rs) config.ropeScaling = { type: 'llama3', factor: rs.factor, lowFreqFactor: rs.low_freq_factor, highFreqFactor: rs.high_freq_factor, originalMaxPositionEmbeddings: rs.original_max_position_embeddings };
  // Layers stacked; q/k rows (and biases) from rotate-half to the engine's interleaved order.
  const stack = (suffix: string, heads?: number): Float32Array => {
    const parts = Array.from({ length: config.nLayers }, (_, l) => {
      const t = hf.get(`model.layers.${l}.${suffix}`)!;
      return heads ? halfToInterleaved(t, heads, hs, t.length / (heads * hs)) : t;
    });
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((o, p) => (out.set(p, o), o + p.length), 0);
    return out;
  };
  const weights: Partial<Record<WeightName, Float32Array>> = {
    token_embedding_table: hf.get('model.embed_tokens.weight')!, rms_att_weight: stack('input_layernorm.weight'),
    wq: stack('self_attn.q_proj.weight', config.nHeads), wk: stack('self_attn.k_proj.weight', config.nKvHeads),
    wv: stack('self_attn.v_proj.weight'), wo: stack('self_attn.o_proj.weight'), rms_ffn_weight: stack('post_attention_layernorm.weight'),
    w1: stack('mlp.gate_proj.weight'), w2: stack('mlp.down_proj.weight'), w3: stack('mlp.up_proj.weight'),
    rms_final_weight: hf.get('model.norm.weight')!,
  };
  if (!config.sharedClassifier) weights.wcls = hf.get('lm_head.weight')!;
  if (config.qkvBias) {
    weights.bq = stack('self_attn.q_proj.bias', config.nHeads);
    weights.bk = stack('self_attn.k_proj.bias', config.nKvHeads);
    weights.bv = stack('self_attn.v_proj.bias');
  }
  return { model: { config, weights: weights as LoadedModel['weights'], format: 'hf' }, hf };
}

const skipHf = skip || skipUnlessShared('models/hf/qwen2-tiny/model.safetensors', 'models/hf/llama3-tiny/model.safetensors.index.json');

for (const folder of ['qwen2-tiny', 'llama3-tiny'] as const) {
  test(`hf/${folder} written as GGUF: llama.cpp's row order, and the GGUF model reproduces reference/hf.json`, { skip: skipHf }, async () => {
    const { model, hf } = hfFolder(folder);
    const bytes = modelToGguf(model, { type: 'F32' });
    const g = parseGguf(bytes, folder), hs = headSize(model.config), D = model.config.dim;
    assert.equal(g.metadata.get('general.architecture'), folder === 'qwen2-tiny' ? 'qwen2' : 'llama');
    const q = g.tensors.find((t) => t.name === 'blk.1.attn_q.weight')!;
    const stored = dequantize(q.type, tensorBytes(g, bytes, q), q.byteLength / 4), qProj = hf.get('model.layers.1.self_attn.q_proj.weight')!;
    if (folder === 'qwen2-tiny') {
      assert.deepEqual(bits(stored), bits(qProj), 'qwen2 (NEOX RoPE): q_proj rows as Hugging Face stores them');
    } else {
      // convert_hf_to_gguf.py's permute for llama: GGUF row h·hs + 2i + t = HF row h·hs + t·hs/2 + i.
      for (let h = 0; h < model.config.nHeads; h++) {
        for (let i = 0; i < hs / 2; i++) {
          for (const t of [0, 1]) {
            const to = (h * hs + 2 * i + t) * D, from = (h * hs + t * hs / 2 + i) * D;
            assert.deepEqual(bits(stored.subarray(to, to + D)), bits(qProj.subarray(from, from + D)), `head ${h} row ${2 * i + t}`);
          }
        }
      }
      assert.ok(g.tensors.some((t) => t.name === 'rope_freqs.weight'), 'llama3 scaling as rope_freqs');
    }
    const loaded = loadGguf(bytes, folder);
    const ref = readSharedJson('reference/hf.json').models[`hf/${folder}`];
    const engine = await RemaxEngine.create({ model: loaded, modelSource: folder });
    const cases = ref.greedy as HfCase[];
    const results = engine.generate(cases.map((c) => ({ promptIds: c.prompt_ids })), { temperature: 0, maxNewTokens: 32, eosId: null });
    cases.forEach((c, i) => assert.deepEqual(results[i]!.ids, c.expected_ids, `greedy case ${i}`));
    const sequences = ref.logprob_sequences as HfSequence[];
    const got = engine.logprobs(sequences.map((s) => s.ids));
    sequences.forEach((s, i) => s.logprobs.forEach((expected, t) => {
      assert.ok(Math.abs(got[i]![t]! - expected) <= 2e-4, `${s.name} token ${t + 1}: ${got[i]![t]} vs ${expected}`);
    }));
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// Dequantization of hand-built blocks. Expected values come from the block formulas, one element at a time.

/** IEEE half by its definition: (−1)^s · 2^(e−15) · (1 + m/1024), subnormals 2^−14 · m/1024. */
function halfValue(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 0) return s * 2 ** -14 * (m / 1024);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

const le16 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff];
const bytesOfRng = (seed: number, n: number): number[] => {
  const rng = new Prng(seed);
  return Array.from({ length: n }, () => rng.nextUint32() & 0xff);
};
const s8 = (b: number): number => (b > 127 ? b - 256 : b);

/** The 12 bytes of 8 six-bit (scale, min) pairs, packed as quantize_row_q4_K_ref writes them. */
function packScalesK4(sc: number[], mn: number[]): number[] {
  const out = new Array(12).fill(0);
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      out[j] = sc[j]!;
      out[j + 4] = mn[j]!;
    } else {
      out[j + 4] = (sc[j]! & 0xf) | ((mn[j]! & 0xf) << 4);
      out[j - 4] |= (sc[j]! >> 4) << 6;
      out[j] |= (mn[j]! >> 4) << 6;
    }
  }
  return out;
}

function checkDequant(type: GgmlTypeName, block: number[], expected: (i: number) => number, what: string): void {
  const n = (block.length / GGML_TYPES[type].blockBytes) * GGML_TYPES[type].blockSize;
  const got = dequantize(type, Uint8Array.from(block), n);
  for (let i = 0; i < n; i++) {
    const e = f(expected(i));
    assert.ok(Object.is(got[i], e), `${what} element ${i}: ${got[i]} vs ${e}`);
  }
}

test('dequantize F16 and BF16: sign, zero, subnormals, extremes', () => {
  const halves = [0x3c00, 0xc000, 0x0001, 0x03ff, 0x8200, 0x7bff, 0x8000, 0x7c00, 0xfc00, 0x3555];
  checkDequant('F16', halves.flatMap(le16), (i) => halfValue(halves[i]!), 'F16');
  const known = dequantize('F16', Uint8Array.from(halves.flatMap(le16)), halves.length);
  assert.deepEqual(Array.from(known.subarray(0, 3)), [1, -2, 2 ** -24]);
  assert.equal(known[5], 65504);
  assert.ok(Object.is(known[6], -0));

  const bf = [0x3f80, 0xc040, 0x0001, 0x4049, 0x8000, 0xff80, 0x7f7f];
  const asF32 = (b: number): number => new Float32Array(new Uint32Array([b << 16]).buffer)[0]!;
  checkDequant('BF16', bf.flatMap(le16), (i) => asF32(bf[i]!), 'BF16');
  const got = dequantize('BF16', Uint8Array.from(bf.flatMap(le16)), bf.length);
  assert.deepEqual(Array.from(got.subarray(0, 4)), [1, -3, 2 ** -133, 3.140625]);
  assert.equal(got[5], -Infinity);
});

test('dequantize Q4_0 and Q8_0: value = d · q, Q4_0 low nibbles first, then high; negative and subnormal d', () => {
  for (const d of [0x3800, 0x8003, 0x0000]) {
    const qs = bytesOfRng(d, 16);
    const block = [...le16(d), ...qs];
    checkDequant('Q4_0', block, (i) => ((i < 16 ? qs[i]! & 15 : qs[i - 16]! >> 4) - 8) * halfValue(d), `Q4_0 d=${d.toString(16)}`);
  }
  const qs = Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4));
  const q4 = dequantize('Q4_0', Uint8Array.from([...le16(0x3800), ...qs]), 32);
  assert.deepEqual(Array.from(q4.subarray(0, 3)), [-4, -3.5, -3], 'd 0.5, nibbles 0, 1, 2');
  assert.equal(q4[16], 3.5, 'high nibble 15 of byte 0 is element 16');

  for (const d of [0x2e66, 0x0200, 0xb401]) {
    const q = bytesOfRng(d + 1, 32);
    q[0] = 0x80; // −128
    q[1] = 0x7f; // 127
    checkDequant('Q8_0', [...le16(d), ...q], (i) => s8(q[i]!) * halfValue(d), `Q8_0 d=${d.toString(16)}`);
  }
  // Two blocks in a row.
  const two = [...le16(0x3c00), ...Array(32).fill(3), ...le16(0x4000), ...Array(32).fill(0xfe)];
  const got = dequantize('Q8_0', Uint8Array.from(two), 64);
  assert.equal(got[0], 3);
  assert.equal(got[63], -4);
});

// Six-bit values that exercise the packing: high bits set for the second four (stored in the top bits of bytes 0–7).
const SC = [63, 1, 32, 17, 48, 5, 62, 33], MN = [0, 63, 21, 40, 59, 16, 7, 34];

test('dequantize Q4_K: d·scale_j·q − dmin·min_j with the 6-bit scale/min packing (get_scale_min_k4)', () => {
  for (const [d, dmin] of [[0x2c00, 0x2400], [0x1e66, 0x9555], [0x0007, 0x8001]] as const) {
    const qs = bytesOfRng(d, 128);
    const block = [...le16(d), ...le16(dmin), ...packScalesK4(SC, MN), ...qs];
    // Element i: sub-block j = i/32 (8 of 32); bytes qs[64·(j>>1) … +32] hold sub-block j (even: low nibbles, odd: high).
    checkDequant('Q4_K', block, (i) => {
      const j = i >> 5, byte = qs[(j >> 1) * 32 + (i & 31)]!, q = j & 1 ? byte >> 4 : byte & 15;
      return halfValue(d) * SC[j]! * q - halfValue(dmin) * MN[j]!;
    }, `Q4_K d=${d.toString(16)}`);
  }
  // Hand-checked: d 1, dmin 0.5; qs[104] holds element 200 (sub-block 6: scale 62, min 7) in its low nibble and
  // element 232 (sub-block 7: scale 33, min 34) in its high nibble.
  const qs = Array(128).fill(0);
  qs[104] = 0x95;
  const got = dequantize('Q4_K', Uint8Array.from([...le16(0x3c00), ...le16(0x3800), ...packScalesK4(SC, MN), ...qs]), 256);
  assert.equal(got[200], 62 * 5 - 0.5 * 7);
  assert.equal(got[232], 33 * 9 - 0.5 * 34);
  assert.equal(got[0], 0, 'scale 63 · q 0 − min 0');
});

test('dequantize Q5_K: the fifth bit of sub-block j is bit j of qh[l]', () => {
  for (const [d, dmin] of [[0x2c00, 0x2400], [0x1e66, 0x9555], [0x0007, 0x8001]] as const) {
    const qh = bytesOfRng(d + 7, 32), qs = bytesOfRng(d + 9, 128);
    const block = [...le16(d), ...le16(dmin), ...packScalesK4(SC, MN), ...qh, ...qs];
    checkDequant('Q5_K', block, (i) => {
      const j = i >> 5, l = i & 31, byte = qs[(j >> 1) * 32 + l]!;
      const q = (j & 1 ? byte >> 4 : byte & 15) + 16 * ((qh[l]! >> j) & 1);
      return halfValue(d) * SC[j]! * q - halfValue(dmin) * MN[j]!;
    }, `Q5_K d=${d.toString(16)}`);
  }
});

test('dequantize Q6_K: d·scale·(q − 32), 4 low bits in ql, 2 high in qh, int8 scales per 16', () => {
  for (const d of [0x2c00, 0xa266, 0x0003]) {
    const ql = bytesOfRng(d, 128), qh = bytesOfRng(d + 1, 64), sc = bytesOfRng(d + 2, 16);
    sc[0] = 0x80; // −128
    sc[15] = 0x7f;
    const block = [...ql, ...qh, ...sc, ...le16(d)];
    // Element i: half n = i/128; within it, quarter g = (i%128)/32 and l = i%32. Quarters 0, 1 take the low nibbles
    // of ql[64n + l] and ql[64n + 32 + l], quarters 2, 3 their high nibbles; the high bits are bits 2g, 2g+1 of qh[32n + l].
    checkDequant('Q6_K', block, (i) => {
      const n = i >> 7, g = (i & 127) >> 5, l = i & 31;
      const low = ql[64 * n + (g & 1) * 32 + l]!, nibble = g < 2 ? low & 15 : low >> 4;
      const q = (nibble | (((qh[32 * n + l]! >> (2 * g)) & 3) << 4)) - 32;
      const scale = s8(sc[8 * n + 2 * g + (l >> 4)]!);
      return f(halfValue(d) * scale) * q; // C: d * sc * q, left to right in float
    }, `Q6_K d=${d.toString(16)}`);
  }
});

test('quantize Q8_0 as ggml reference: d = max|x|/127 as f16, q = round half away from zero of x·(1/d); zero block → 0', () => {
  const x = new Float32Array(64);
  x[0] = 127;
  x[1] = 2.5; x[2] = -2.5; x[3] = 0.5; x[4] = -0.5; x[5] = 1.4999; x[6] = -127; x[7] = 126.5;
  const q = quantize('Q8_0', x, 64, 'w');
  assert.deepEqual(Array.from(q.subarray(0, 2)), le16(0x3c00), 'd = 1');
  assert.deepEqual(Array.from(q.subarray(2, 10), s8), [127, 3, -3, 1, -1, 1, -127, 127]);
  assert.deepEqual(Array.from(q.subarray(34)), Array(34).fill(0), 'a zero block: d = 0, q = 0');
  // The quotient uses the float32 d (before f16 rounding): max 0.3 gives q = ±127 exactly at the extremes.
  const y = Float32Array.from({ length: 32 }, (_, i) => (i - 16) * 0.3 / 16);
  const qy = quantize('Q8_0', y, 32, 'w');
  const d = f(f(0.3) / 127), id = f(1 / d);
  assert.deepEqual(Array.from(qy.subarray(0, 2)), le16(f32ToF16(d)));
  y.forEach((v, i) => {
    const t = f(v * id);
    assert.equal(s8(qy[2 + i]!), Math.sign(t) * Math.round(Math.abs(t)), `element ${i}`);
  });
  throwsInput(() => quantize('Q8_0', new Float32Array(62), 31, 'tensor blk.0.ffn_down.weight'), 'tensor blk.0.ffn_down.weight',
    [/rows have 31 values, not a multiple of Q8_0's block of 32/], 'row length');
});

// ---------------------------------------------------------------------------------------------------------------------
// Round trips

test('import → export → import: F32, F16 from F16 and Q8_0 from Q8_0 are bit-identical, and the files byte for byte', { skip }, () => {
  for (const [name, type] of [['stories260K-f32.gguf', 'F32'], ['stories260K-f16.gguf', 'F16'], ['stories260K-q8_0.gguf', 'Q8_0']] as const) {
    const bytes = file(name), model = loadGguf(bytes, name);
    const out = modelToGguf(model, { type });
    const again = loadGguf(out, 'again');
    assertSameWeights(model, again, name);
    assert.deepEqual(again.config, model.config);
    const g0 = parseGguf(bytes, name), g1 = parseGguf(out, 'again');
    assert.deepEqual([...g1.metadata], [...g0.metadata], `${name}: metadata and its order`);
    assert.deepEqual([...g1.types], [...g0.types], `${name}: metadata types`);
    for (const t of g0.tensors) {
      const u = g1.tensors.find((x) => x.name === t.name)!;
      assert.equal(u.type, t.type, t.name);
      assert.deepEqual(tensorBytes(g1, out, u), tensorBytes(g0, bytes, t), `${name}: ${t.name} stored bytes`);
    }
    assert.deepEqual(out, bytes, `${name}: the same file`);
  }
  // A file from another writer (other tensor order, a vocabulary, no vocab_size key): same weights and metadata.
  const tiny = file('llama-2-tiny-random.gguf'), m = loadGguf(tiny, 'tiny');
  const out = modelToGguf(m, { type: 'F16' });
  assertSameWeights(m, loadGguf(out, 'again'), 'llama-2-tiny-random');
  const g0 = parseGguf(tiny, 'tiny'), g1 = parseGguf(out, 'again');
  assert.deepEqual([...g1.metadata], [...g0.metadata]);
  assert.deepEqual([...g1.types], [...g0.types]);
});

test('export types: F16 stores matrices F16 and vectors F32; Q8_0 falls back to F16 for rows not a multiple of 32', { skip }, () => {
  const model = loadGguf(file('stories260K-f32.gguf'), 'f32');
  const typesOf = (bytes: Uint8Array): Map<string, string> => new Map(parseGguf(bytes, 'x').tensors.map((t) => [t.name, t.type]));
  const f16 = typesOf(modelToGguf(model, { type: 'F16' }));
  assert.equal(f16.get('blk.0.attn_q.weight'), 'F16');
  assert.equal(f16.get('blk.0.attn_norm.weight'), 'F32');
  const q8 = typesOf(modelToGguf(model, { type: 'Q8_0' }));
  assert.equal(q8.get('token_embd.weight'), 'Q8_0');
  assert.equal(q8.get('blk.0.ffn_down.weight'), 'F16');
  assert.equal(q8.get('output_norm.weight'), 'F32');
  const g = parseGguf(modelToGguf(model, { type: 'Q8_0' }), 'x');
  assert.equal(g.metadata.get('general.file_type'), 7);
});

const tinyConfig = (extra: Partial<ModelConfig> = {}): ModelConfig => ({
  dim: 32, hiddenDim: 48, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 64, seqLen: 128, sharedClassifier: true,
  normEps: 1e-6, ropeTheta: 1e6, ...extra,
});

function randomModel(config: ModelConfig, seed = 3): LoadedModel {
  const rng = new Prng(seed);
  const weights = Object.fromEntries(weightShapes(config).map(({ name, shape }) => {
    const w = new Float32Array(shape.reduce((a, b) => a * b, 1));
    rng.fillNormal(w, 0.3);
    return [name, w];
  })) as LoadedModel['weights'];
  return { config, weights, format: 'llama2c-v0' };
}

test('a model from another format: llama metadata with types; the GGUF loads back to the same model', () => {
  const config = tinyConfig({ sharedClassifier: false });
  const model = { config, weights: randomInitWeights(config, 5), format: 'llama2c-v0' as const };
  const bytes = modelToGguf(model, {
    type: 'F32', name: 'tiny',
    extraMetadata: {
      'tokenizer.ggml.model': { type: 'string', value: 'llama' },
      'tokenizer.ggml.tokens': { type: 'array<string>', value: Array.from({ length: 64 }, (_, i) => `t${i}`) },
      'tokenizer.ggml.eos_token_id': { type: 'u32', value: 2 },
    },
  });
  const g = parseGguf(bytes, 'x');
  assert.deepEqual([...g.types].slice(0, 4), [
    ['general.architecture', 'string'], ['general.name', 'string'], ['general.file_type', 'u32'], ['general.alignment', 'u32'],
  ]);
  assert.equal(g.metadata.get('general.name'), 'tiny');
  assert.equal(g.metadata.get('llama.attention.layer_norm_rms_epsilon'), f(1e-6));
  assert.equal(g.types.get('llama.rope.freq_base'), 'f32');
  assert.equal(g.metadata.get('llama.context_length'), 128);
  assert.equal(g.types.get('tokenizer.ggml.tokens'), 'array<string>');
  assert.ok(g.tensors.some((t) => t.name === 'output.weight'));
  const back = ggufToModel(g, bytes, 'x');
  assertSameWeights(back, model as LoadedModel, 'llama');
  assert.deepEqual(back.stopIds, [2]);
  assert.deepEqual(back.config, { ...config, normEps: f(1e-6) });
  assert.throws(() => modelToGguf(model, { type: 'F32', extraMetadata: { 'llama.block_count': { type: 'u32', value: 9 } } }),
    /configuration decides this key/);
  const listed = modelToGguf(model, { type: 'F32', extraMetadata: [{ key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: 1 }] });
  assert.equal(parseGguf(listed, 'x').metadata.get('tokenizer.ggml.bos_token_id'), 1, 'a list of {key, type, value}');
});

test('qwen2 and qwen3: exported in rotate-half row order (GGUF row j of a head = engine row 2j, or 2(j − hs/2) + 1), loaded back exactly', () => {
  for (const [arch, extra] of [['qwen2', { qkvBias: true }], ['qwen3', { qkNorm: true, headSize: 16 }]] as const) {
    const config = tinyConfig(extra);
    const model = randomModel(config);
    const bytes = modelToGguf(model, { type: 'F32' });
    const g = parseGguf(bytes, arch);
    assert.equal(g.metadata.get('general.architecture'), arch);
    const hs = headSize(config), D = config.dim;
    const tensor = (name: string): Float32Array => {
      const t = g.tensors.find((x) => x.name === name)!;
      return dequantize(t.type, tensorBytes(g, bytes, t), t.byteLength / 4);
    };
    const engineRow = (j: number): number => { const h = Math.floor(j / hs), r = j % hs; return h * hs + (r < hs / 2 ? 2 * r : 2 * (r - hs / 2) + 1); };
    const wq = model.weights.wq!, q = tensor('blk.1.attn_q.weight'), rows = config.nHeads * hs, offset = rows * D;
    for (let j = 0; j < rows; j++) {
      for (let c = 0; c < D; c++) assert.equal(q[j * D + c], wq[offset + engineRow(j) * D + c], `${arch} attn_q row ${j}`);
    }
    const v = tensor('blk.1.attn_v.weight');
    assert.deepEqual(bits(v), bits(model.weights.wv!.subarray(config.nKvHeads * hs * D, 2 * config.nKvHeads * hs * D)), 'v is not permuted');
    if (arch === 'qwen2') {
      const bk = tensor('blk.0.attn_k.bias');
      for (let j = 0; j < config.nKvHeads * hs; j++) assert.equal(bk[j], model.weights.bk![engineRow(j)], `bk ${j}`);
    } else {
      assert.equal(g.metadata.get('qwen3.attention.key_length'), 16);
      const kn = tensor('blk.0.attn_k_norm.weight');
      for (let j = 0; j < hs; j++) assert.equal(kn[j], model.weights.rms_k_weight![engineRow(j)], `k norm ${j}`);
    }
    const back = ggufToModel(g, bytes, arch);
    assertSameWeights(back, model, arch);
    assert.deepEqual(back.config, { ...config, normEps: f(1e-6) });
    assert.equal(back.architecture, `gguf ${arch}`);
  }
});

test('llama3 RoPE scaling is written as rope_freqs.weight divisors and read back as factors', () => {
  const config = tinyConfig({
    dim: 64, nHeads: 4, nKvHeads: 1, ropeTheta: 500000,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
  });
  const bytes = modelToGguf(randomModel(config), { type: 'F16' });
  const back = loadGguf(bytes, 'llama3');
  assert.equal(back.config.ropeScaling?.type, 'factors');
  const factors = (back.config.ropeScaling as { factors: number[] }).factors;
  // The README's rule per frequency index i of head size 16: divisor 1 (i ≤ 3), a blend (i = 4), 8 (i ≥ 5).
  const expected = Array.from({ length: 8 }, (_, i) => {
    const inv = 500000 ** (-2 * i / 16), wavelen = 2 * Math.PI / inv;
    if (wavelen < 2048) return 1;
    if (wavelen > 8192) return 8;
    const s = (8192 / wavelen - 1) / (4 - 1);
    return inv / ((1 - s) * inv / 8 + s * inv);
  });
  factors.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) <= 1e-5 * expected[i]!, `factor ${i}: ${v} vs ${expected[i]}`));
  assert.deepEqual(factors.slice(0, 4), [1, 1, 1, 1]);
  assert.deepEqual(factors.slice(5), [8, 8, 8]);
  assert.ok(factors[4]! > 1 && factors[4]! < 8);
  const again = modelToGguf(back, { type: 'F16' });
  assert.deepEqual(again, bytes, 'factors write back as they were read');
});

// ---------------------------------------------------------------------------------------------------------------------
// Bad input

/** GGUF bytes written field by field, independently of serializeGguf, so any field can be forged. */
class RawGguf {
  private parts: number[] = [];
  u8(v: number): this { this.parts.push(v & 0xff); return this; }
  u32(v: number): this { for (let i = 0; i < 4; i++) this.parts.push((v >>> (8 * i)) & 0xff); return this; }
  u64(v: number | bigint): this { const b = BigInt(v); for (let i = 0n; i < 8n; i++) this.parts.push(Number((b >> (8n * i)) & 0xffn)); return this; }
  str(s: string): this { const e = new TextEncoder().encode(s); this.u64(e.length); e.forEach((b) => this.parts.push(b)); return this; }
  kvU32(key: string, v: number): this { return this.str(key).u32(4).u32(v); }
  kvStr(key: string, v: string): this { return this.str(key).u32(8).str(v); }
  tensor(name: string, ne: number[], type: number, offset: number): this {
    this.str(name).u32(ne.length);
    ne.forEach((d) => this.u64(d));
    return this.u32(type).u64(offset);
  }
  padTo(alignment: number): this { while (this.parts.length % alignment) this.parts.push(0); return this; }
  zeros(n: number): this { for (let i = 0; i < n; i++) this.parts.push(0); return this; }
  get length(): number { return this.parts.length; }
  bytes(): Uint8Array { return Uint8Array.from(this.parts); }
}
const header = (tensors: number | bigint, kvs: number | bigint, version = 3): RawGguf => new RawGguf().u32(0x46554747).u32(version).u64(tensors).u64(kvs);

test('bad containers: one RemaxInputError naming the file and the key or tensor, before allocating anything', () => {
  const src = 'bad.gguf';
  const twoTensors = (offsetB: number, typeB = 0, neB = [8]): Uint8Array =>
    header(2, 1).kvStr('general.architecture', 'llama').tensor('a', [8], 0, 0).tensor('b', neB, typeB, offsetB).padTo(32).zeros(64).bytes();
  const cases: [string, Uint8Array, RegExp[]][] = [
    ['not GGUF', Uint8Array.from([0x7f, 0x45, 0x4c, 0x46, 1, 0, 0, 0]), [/not a GGUF file/]],
    ['version 1', header(0, 0, 1).bytes(), [/GGUF version 1 is not supported/]],
    ['version 4', header(0, 0, 4).bytes(), [/GGUF version 4 is not supported/]],
    ['big-endian', new RawGguf().u32(0x46554747).u32(0x03000000).zeros(16).bytes(), [/big-endian GGUF file \(version 3/]],
    ['forged tensor count 2^40', header(2n ** 40n, 0).bytes(), [/the tensor count is 1099511627776 tensors, more than the 0 bytes left after the metadata/]],
    ['forged tensor count after metadata', header(2n ** 40n, 1).kvU32('a.b', 1).zeros(100).bytes(), [/the tensor count is 1099511627776 tensors, more than the 100 bytes left after the metadata/]],
    ['forged tensor count 2^64 − 1', header(2n ** 64n - 1n, 0).bytes(), [/the tensor count is 18446744073709551615 tensors/]],
    ['forged metadata count', header(0, 2n ** 40n).bytes(), [/the metadata count is 1099511627776 entries, more than the 0 bytes left/]],
    ['forged key length', header(0, 1).u64(2n ** 40n).zeros(16).bytes(), [/the length of the key of metadata entry 0 is 1099511627776 bytes, more than the 16 bytes left/]],
    ['forged string value length', header(0, 1).str('general.name').u32(8).u64(2n ** 62n).zeros(8).bytes(), [/the length of metadata general\.name is 4611686018427387904 bytes/]],
    ['forged array count', header(0, 1).str('tokenizer.ggml.tokens').u32(9).u32(8).u64(2n ** 40n).zeros(8).bytes(), [/the element count of metadata tokenizer\.ggml\.tokens is 1099511627776 elements/]],
    ['forged u32 array count', header(0, 1).str('tokenizer.ggml.token_type').u32(9).u32(5).u64(3).zeros(8).bytes(), [/the element count of metadata tokenizer\.ggml\.token_type is 3 elements, more than the 8 bytes left/]],
    ['unknown value type', header(0, 1).str('x.y').u32(13).bytes(), [/metadata x\.y has value type 13/]],
    ['array of arrays', header(0, 1).str('x.y').u32(9).u32(9).u64(1).bytes(), [/metadata x\.y is an array of value type 9; arrays of arrays are not supported/]],
    ['duplicate key', header(0, 2).kvU32('a.b', 1).kvU32('a.b', 2).bytes(), [/metadata key a\.b appears twice/]],
    ['u64 past 2^53', header(0, 1).str('general.size').u32(10).u64(2n ** 60n).bytes(), [/metadata general\.size is 1152921504606846976, beyond the integers/]],
    ['bad bool', header(0, 1).str('general.flag').u32(7).u8(2).bytes(), [/metadata general\.flag is a bool stored as 2/]],
    ['alignment 0', header(0, 1).kvU32('general.alignment', 0).bytes(), [/metadata general\.alignment is 0 \(u32\); it must be a power of two/]],
    ['alignment 48', header(0, 1).kvU32('general.alignment', 48).bytes(), [/general\.alignment is 48/]],
    ['truncated in a value', header(0, 1).str('llama.block_count').u32(4).u8(5).bytes(), [/the file ends inside metadata llama\.block_count/]],
    ['truncated in the tensor table', header(1, 0).str('blk.0.attn_q.weight').u32(2).u64(8).bytes(), [/the file ends inside dimension 1 of tensor blk\.0\.attn_q\.weight/]],
    ['5 dimensions', header(1, 0).tensor('w', [1, 1, 1, 1, 1], 0, 0).bytes(), [/tensor w has 5 dimensions; ggml tensors have at most 4/]],
    ['zero dimension', header(1, 0).tensor('w', [8, 0], 0, 0).bytes(), [/tensor w: dimension 1 is 0; every dimension must be a positive integer/]],
    ['"negative" dimension', header(1, 0).tensor('w', [8, -1], 0, 0).bytes(), [/tensor w: dimension 1 is 18446744073709551615/]],
    ['unknown type 99', header(1, 0).tensor('blk.3.ffn_up.weight', [32], 99, 0).bytes(), [/tensor blk\.3\.ffn_up\.weight has ggml type 99 \(unknown to ggml\), which is not supported; supported types: F32 \(0\), F16 \(1\).*Q6_K \(14\), IQ2_XXS \(16\), BF16 \(30\)/]],
    ['unsupported Q4_1', header(1, 0).tensor('token_embd.weight', [32], 3, 0).bytes(), [/tensor token_embd\.weight has ggml type 3 \(Q4_1\), which is not supported/]],
    ['Q8_0 rows of 31', header(1, 0).tensor('blk.0.ffn_down.weight', [31, 2], 8, 0).bytes(), [/tensor blk\.0\.ffn_down\.weight: its rows have 31 values, not a multiple of Q8_0's block of 32/]],
    ['duplicate tensor', header(2, 0).tensor('w', [8], 0, 0).tensor('w', [8], 0, 32).padTo(32).zeros(64).bytes(), [/tensor w appears twice/]],
    ['data past the end', twoTensors(32, 0, [16]), [/tensor b: its 64 bytes at data offset 32 run past the end of the file \(the data section has 64 bytes\)/]],
    ['huge offset', twoTensors(2 ** 50), [/tensor b: its 32 bytes at data offset 1125899906842624 run past the end/]],
    ['overlap', twoTensors(0), [/tensor (a|b) \(data offset 0\) overlaps tensor (a|b)/]],
    ['misaligned', twoTensors(40), [/tensor b: its data offset 40 is not a multiple of the alignment 32/]],
    ['huge element count', header(1, 0).tensor('w', [2 ** 31, 2 ** 31, 2 ** 31], 0, 0).bytes(), [/tensor w: shape \[2147483648,2147483648,2147483648\] has 9903520314283042199192993792 values, more than any model file holds/]],
  ];
  for (const [what, bytes, patterns] of cases) {
    const start = performance.now();
    throwsInput(() => parseGguf(bytes, src), src, patterns, what);
    assert.ok(performance.now() - start < 50, `${what}: fails fast`);
  }
  // The same checks hold for a file that is a valid GGUF up to the point where it is cut.
  assert.equal(parseGguf(twoTensors(32), src).tensors.length, 2, 'the template itself is valid');
  assert.equal(parseGguf(header(0, 1).str('general.size').u32(10).u64(2n ** 53n - 1n).bytes(), src).metadata.get('general.size'), 2 ** 53 - 1);
});

test('truncated shared files: the message names the file and where it ends', { skip }, () => {
  const bytes = file('stories260K-f16.gguf');
  const g = parseGguf(bytes, 'f16');
  const cuts: [number, RegExp][] = [
    [0, /the file ends inside the magic/],
    [6, /the file ends inside the version/],
    [20, /the file ends inside the metadata count/],
    [100, /the metadata count is 14 entries, more than the 76 bytes left in the file can hold/],
    [270, /the length of the key of metadata entry 6 is 17 bytes, more than the 10 bytes left/],
    [283, /the file ends inside metadata llama\.block_count/],
    [1834, /the file ends inside the dimension count of tensor blk\.2\.attn_k\.weight/],
    [g.dataOffset - 1, /tensor token_embd\.weight: its 65536 bytes at data offset 0 run past the end of the file \(the data section has 0 bytes\)/],
    [bytes.length - 1, /tensor output_norm\.weight: its 256 bytes at data offset 521216 run past the end/],
  ];
  for (const [at, pattern] of cuts) throwsInput(() => parseGguf(bytes.subarray(0, at), 'cut.gguf'), 'cut.gguf', [pattern], `cut at ${at}`);
});

test('metadata of every GGUF type round-trips; version 2 reads the same; the writer lays bytes out as the spec says', () => {
  const entries: [string, GgufMetaType, GgufValue][] = [
    ['t.u8', 'u8', 255], ['t.i8', 'i8', -128], ['t.u16', 'u16', 65535], ['t.i16', 'i16', -32768],
    ['t.u32', 'u32', 0xffffffff], ['t.i32', 'i32', -0x80000000], ['t.f32', 'f32', f(0.1)], ['t.bool', 'bool', true],
    ['t.string', 'string', 'héllo ▁wörld 🦙'], ['t.u64', 'u64', 2 ** 53 - 1], ['t.i64', 'i64', -(2 ** 53) + 1], ['t.f64', 'f64', 0.1],
    ['t.empty', 'string', ''], ['a.strings', 'array<string>', ['<s>', '', 'ä']], ['a.f32', 'array<f32>', [1.5, -0, f(1e-30)]],
    ['a.i32', 'array<i32>', [-1, 2, 3]], ['a.bool', 'array<bool>', [true, false]], ['a.u64', 'array<u64>', [0, 2 ** 40]],
    ['a.empty', 'array<u8>', []], ['general.alignment', 'u32', 16],
  ];
  const metadata = new Map(entries.map(([k, , v]) => [k, v])), types = new Map(entries.map(([k, t]) => [k, t]));
  const tensors: GgufTensorToWrite[] = [
    { name: 'w', shape: [3], type: 'F32', data: Float32Array.from([1, 2, 3]) },
    { name: 'q', shape: [32, 2], type: 'Q8_0', data: Float32Array.from({ length: 64 }, (_, i) => i - 32) },
  ];
  const bytes = serializeGguf({ metadata, types, tensors });
  const g = parseGguf(bytes, 'all.gguf');
  assert.deepEqual([...g.metadata], [...metadata]);
  assert.deepEqual([...g.types], [...types]);
  assert.ok(Object.is((g.metadata.get('a.f32') as number[])[1], -0));
  assert.equal(g.alignment, 16);
  assert.deepEqual(g.tensors.map((t) => [t.name, t.offset, t.byteLength]), [['w', 0, 12], ['q', 16, 68]]);
  assert.deepEqual(serializeGguf({ metadata: g.metadata, types: g.types, tensors }), bytes, 'parse → serialize: the same bytes');

  const v2 = bytes.slice();
  v2[4] = 2;
  const g2 = parseGguf(v2, 'v2.gguf');
  assert.equal(g2.version, 2);
  assert.deepEqual([...g2.metadata], [...metadata]);

  // Field by field as gguf.md describes it.
  const raw = header(1, 2).kvStr('general.architecture', 'llama').str('x.f').u32(6).u32(0x3f800000)
    .tensor('w', [2], 0, 0).padTo(32).u32(0x3f800000).u32(0x40000000).padTo(32).bytes();
  const written = serializeGguf({
    metadata: new Map<string, GgufValue>([['general.architecture', 'llama'], ['x.f', 1]]),
    types: new Map<string, GgufMetaType>([['general.architecture', 'string'], ['x.f', 'f32']]),
    tensors: [{ name: 'w', shape: [2], type: 'F32', data: Float32Array.from([1, 2]) }],
  });
  assert.deepEqual(written, raw);
  assert.throws(() => serializeGguf({ metadata: new Map([['x', 300]]), types: new Map([['x', 'u8']]), tensors: [] }), /x: 300 is not a u8/);
  assert.throws(() => serializeGguf({ metadata: new Map([['x', 1]]), types: new Map(), tensors: [] }), /x has no type/);
});

/** A llama GGUF (F32) of a tiny model with `edit` applied to its metadata and tensors before writing. */
function editedFile(edit: (metadata: Map<string, GgufValue>, types: Map<string, GgufMetaType>, tensors: GgufTensorToWrite[]) => void): Uint8Array {
  const config = tinyConfig();
  const bytes = modelToGguf(randomModel(config), { type: 'F32' });
  const g: GgufFile = parseGguf(bytes, 'x');
  const tensors = g.tensors.map((t) => ({ name: t.name, shape: t.shape, type: 'F32' as const, data: dequantize(t.type, tensorBytes(g, bytes, t), t.byteLength / 4) }));
  const metadata = new Map(g.metadata), types = new Map(g.types);
  edit(metadata, types, tensors);
  return serializeGguf({ metadata, types, tensors });
}

test('bad models: the key or tensor, its value or shape, and what is expected', () => {
  const src = 'model.gguf';
  const load = (bytes: Uint8Array) => () => loadGguf(bytes, src);
  const setKey = (key: string, type: GgufMetaType, value: GgufValue) =>
    editedFile((m, t) => { m.set(key, value); t.set(key, type); });
  const cases: [string, Uint8Array, RegExp[]][] = [
    ['gpt2', setKey('general.architecture', 'string', 'gpt2'), [/general\.architecture is "gpt2" \(string\); supported architectures: llama, qwen2, qwen3/]],
    ['no architecture', editedFile((m) => m.delete('general.architecture')), [/general\.architecture is missing/]],
    ['missing key', editedFile((m) => m.delete('llama.block_count')), [/metadata key llama\.block_count is missing; it is required/]],
    ['float block count', setKey('llama.block_count', 'f32', 2), [/metadata llama\.block_count is 2 \(f32\); it must be a positive integer/]],
    ['zero heads', setKey('llama.attention.head_count', 'u32', 0), [/metadata llama\.attention\.head_count is 0 \(u32\)/]],
    ['negative eps', setKey('llama.attention.layer_norm_rms_epsilon', 'f32', -1), [/layer_norm_rms_epsilon is -1 \(f32\); it must be a positive number/]],
    ['value length', setKey('llama.attention.value_length', 'u32', 16), [/llama\.attention\.value_length is 16 but llama\.attention\.key_length \(the head size\) is 8/]],
    ['partial RoPE', setKey('llama.rope.dimension_count', 'u32', 4), [/llama\.rope\.dimension_count is 4 but the head size is 8; partial RoPE/]],
    ['GQA', setKey('llama.attention.head_count_kv', 'u32', 3), [/head_count 4 is not a multiple of llama\.attention\.head_count_kv 3/]],
    ['experts', setKey('llama.expert_count', 'u32', 8), [/llama\.expert_count is 8 \(u32\): mixture-of-experts models are not supported/]],
    ['yarn', editedFile((m, t) => { m.set('llama.rope.scaling.type', 'yarn'); t.set('llama.rope.scaling.type', 'string'); m.set('llama.rope.scaling.factor', 4); t.set('llama.rope.scaling.factor', 'f32'); }),
      [/llama\.rope\.scaling\.type is "yarn" with factor 4: this RoPE scaling is not supported/]],
    ['huge block count', setKey('llama.block_count', 'u32', 2 ** 31), [/llama\.block_count is 2147483648 but the file has only 20 tensors \(tensor blk\.2147483647\.attn_norm\.weight is missing\)/]],
    ['shape', editedFile((_, __, ts) => { const t = ts.find((x) => x.name === 'blk.1.attn_k.weight')!; t.shape = [16, 32]; }),
      [/tensor blk\.1\.attn_k\.weight has shape \[16,32\] but the metadata \(dim 32, 4 heads, 2 KV heads, head size 8, hidden 48, vocab 64\) needs \[32,16\]/]],
    ['missing tensor', editedFile((_, __, ts) => ts.splice(ts.findIndex((x) => x.name === 'blk.0.ffn_up.weight'), 1)), [/tensor blk\.0\.ffn_up\.weight is missing; a llama model needs it/]],
    ['left-over tensor', editedFile((_, __, ts) => ts.push({ name: 'blk.0.attn_output.bias', shape: [32], type: 'F32', data: new Float32Array(32) })),
      [/tensor blk\.0\.attn_output\.bias \[32\] is not part of a llama model with 2 layers/]],
    ['extra layer', editedFile((_, __, ts) => ts.push({ name: 'blk.2.attn_norm.weight', shape: [32], type: 'F32', data: new Float32Array(32) })),
      [/tensor blk\.2\.attn_norm\.weight \[32\] is not part of a llama model with 2 layers/]],
    ['qwen2 with llama keys', setKey('general.architecture', 'string', 'qwen2'), [/metadata key qwen2\.embedding_length is missing; it is required/]],
    ['vocab', setKey('llama.vocab_size', 'u32', 65), [/tensor token_embd\.weight has shape \[32,64\] but .* needs \[32,65\]/]],
    ['eos id', setKey('tokenizer.ggml.eos_token_id', 'u32', 64), [/metadata tokenizer\.ggml\.eos_token_id is 64 \(u32\); it must be a token id from 0 to 63/]],
    ['bad rope_freqs', editedFile((_, __, ts) => ts.push({ name: 'rope_freqs.weight', shape: [4], type: 'F32', data: Float32Array.from([1, 1, 0, 1]) })),
      [/tensor rope_freqs\.weight holds 0; its RoPE frequency divisors must be positive/]],
  ];
  for (const [what, bytes, patterns] of cases) throwsInput(load(bytes), src, patterns, what);
  // qwen2 keys and llama tensors: the rename alone leaves the keys under llama.*.
  const qwen2 = editedFile((m, t) => {
    for (const [k, v] of [...m]) if (k.startsWith('llama.')) { m.set(k.replace('llama.', 'qwen2.'), v); t.set(k.replace('llama.', 'qwen2.'), t.get(k)!); }
    m.set('general.architecture', 'qwen2');
  });
  throwsInput(load(qwen2), src, [/tensor blk\.0\.attn_q\.bias is missing; a qwen2 model needs it/], 'qwen2 without biases');
  assert.throws(() => loadGguf(editedFile(() => {}), src, { context: 0 }), /the context option is 0; it must be a positive integer/);
  assert.equal(loadGguf(editedFile(() => {}), src).config.nLayers, 2, 'the unedited file loads');
});

// ---------------------------------------------------------------------------------------------------------------------
// Fuzz

test('fuzz: thousands of truncations, bit flips and forged lengths either load or throw a RemaxInputError, quickly', { skip }, () => {
  const rng = new Prng(20251202);
  const below = (n: number): number => Math.floor(rng.nextFloat64() * n);
  const forged = [0, 1, 7, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 32, 2 ** 40, 2 ** 53, 2n ** 63n, 2n ** 64n - 1n];
  const start = performance.now();
  const outcomes = { loaded: 0, rejected: 0 };
  let n = 0;
  for (const name of ['stories260K-f16.gguf', 'stories260K-q8_0.gguf']) {
    const original = file(name), headerEnd = parseGguf(original, name).dataOffset;
    for (let i = 0; i < 1500; i++, n++) {
      const bytes = original.slice();
      // Most mutations hit the header (metadata and tensor table), where the parsing decisions are.
      const at = rng.nextFloat64() < 0.85 ? below(headerEnd) : below(bytes.length);
      const kind = i % 4;
      let mutated: Uint8Array = bytes, what: string;
      if (kind === 0) {
        mutated = bytes.subarray(0, at);
        what = `truncated to ${at} bytes`;
      } else if (kind === 1) {
        const bit = below(8);
        bytes[at] ^= 1 << bit;
        what = `bit ${bit} of byte ${at} flipped`;
      } else {
        const v = BigInt(forged[below(forged.length)]!) + (rng.nextFloat64() < 0.3 ? BigInt(below(1000)) : 0n);
        const width = kind === 2 ? 4 : 8, o = Math.min(at, bytes.length - width);
        for (let b = 0; b < width; b++) bytes[o + b] = Number((v >> BigInt(8 * b)) & 0xffn);
        what = `${8 * width}-bit ${v} written at ${o}`;
      }
      try {
        loadGguf(mutated, 'fuzz.gguf');
        outcomes.loaded++;
      } catch (e) {
        if (!(e instanceof RemaxInputError) || !e.message.startsWith('fuzz.gguf: ')) {
          assert.fail(`${name}, ${what}: ${(e as Error)?.stack ?? e}`);
        }
        outcomes.rejected++;
      }
    }
  }
  const seconds = (performance.now() - start) / 1000;
  console.log(`fuzz: ${n} mutations, ${outcomes.loaded} loaded, ${outcomes.rejected} rejected, ${seconds.toFixed(1)} s`);
  assert.ok(outcomes.loaded > 100 && outcomes.rejected > 1000, 'both outcomes occur');
  assert.ok(seconds < 20, `took ${seconds} s`);
});
