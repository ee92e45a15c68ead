/**
 * llama2.c float32 checkpoints (karpathy/llama2.c run.c / export.py), as bytes in and bytes out: no Node API here.
 *
 * legacy v0: 7 int32 header (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
 *   means an unshared classifier), then float32 tensors in weightShapes() order with the RoPE tables freq_cis_real and
 *   freq_cis_imag [seq_len, head_size/2] after rms_final_weight, then wcls if unshared.
 * v1: uint32 magic "ak42", int32 version 1, the same 7 int32, uint8 shared_classifier, zero padding to 256 bytes; then
 *   the norms, the token embedding, the matrices, and wcls if unshared (see V1_ORDER). No RoPE tables.
 * All numbers are little-endian.
 */
import {
  LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, elementCount, headSize, weightShapes,
  type ModelConfig, type ModelWeights, type WeightName,
} from '../config';
import { requireInput } from '../errors';
import { Prng } from '../prng';

export type CheckpointFormat = 'llama2c-v0' | 'llama2c-v1';

export interface Checkpoint {
  config: ModelConfig;
  weights: ModelWeights;
  format: CheckpointFormat;
}

const V0_HEADER_BYTES = 7 * 4;
const V1_HEADER_BYTES = 256;
/** "ak42" as written by Python's struct.pack('I', 0x616b3432) on a little-endian machine. */
const V1_MAGIC = 0x616b3432;
/** Upper bound for any single dimension: far above real models, low enough that garbage headers are caught early. */
const MAX_DIM = 1 << 24;

/** Tensor order of version1_export in llama2.c export.py. */
const V1_ORDER: WeightName[] = [
  'rms_att_weight', 'rms_ffn_weight', 'rms_final_weight', 'token_embedding_table',
  'wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3', 'wcls',
];

/** Float32Array views alias the file bytes only when the platform byte order is the file's (little-endian). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// Field names as llama2.c spells them, so messages match the header and export.py.
const INT_FIELDS: [keyof ModelConfig, string][] = [
  ['dim', 'dim'], ['hiddenDim', 'hidden_dim'], ['nLayers', 'n_layers'], ['nHeads', 'n_heads'],
  ['nKvHeads', 'n_kv_heads'], ['vocabSize', 'vocab_size'], ['seqLen', 'seq_len'],
];

/** Number of float32 values in the RoPE tables of a legacy file (cos and sin, each [seq_len, head_size/2]). */
const freqCisElements = (c: ModelConfig): number => c.seqLen * headSize(c);

/** Exact size in bytes of a checkpoint of `config` in `format`. */
export function checkpointByteLength(config: ModelConfig, format: CheckpointFormat): number {
  const tensors = weightShapes(config).reduce((sum, { shape }) => sum + elementCount(shape), 0);
  return format === 'llama2c-v0'
    ? V0_HEADER_BYTES + 4 * (tensors + freqCisElements(config))
    : V1_HEADER_BYTES + 4 * tensors;
}

function describe(c: ModelConfig): string {
  return INT_FIELDS.map(([key, name]) => `${name}=${c[key]}`).join(', ') + `, shared_classifier=${c.sharedClassifier}`;
}

/** A config value for a message: a config read from JSON (a training state's) may hold anything, even a list nested
 *  too deep for String() (which recurses). */
const shown = (v: unknown): string =>
  typeof v === 'object' && v !== null ? (Array.isArray(v) ? `a list of ${v.length}` : 'an object') : typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : String(v);

function checkConfig(c: ModelConfig, source: string, hint: string): void {
  for (const [key, name] of INT_FIELDS) {
    const v = c[key] as number;
    requireInput(Number.isInteger(v) && v > 0 && v <= MAX_DIM,
      `${source}: ${name} is ${shown(v)}; it must be an integer from 1 to ${MAX_DIM}${hint}`);
  }
  requireInput(c.dim % c.nHeads === 0,
    `${source}: dim ${c.dim} is not divisible by n_heads ${c.nHeads}; every head needs dim/n_heads channels, so choose n_heads dividing dim${hint}`);
  requireInput(c.nHeads % c.nKvHeads === 0,
    `${source}: n_heads ${c.nHeads} is not divisible by n_kv_heads ${c.nKvHeads}; grouped-query attention shares each KV head among n_heads/n_kv_heads query heads, so choose n_kv_heads dividing n_heads${hint}`);
  requireInput(headSize(c) % 2 === 0,
    `${source}: head size dim/n_heads = ${headSize(c)} is odd; RoPE rotates channel pairs, so choose dim and n_heads with an even quotient${hint}`);
  requireInput(typeof c.sharedClassifier === 'boolean',
    `${source}: sharedClassifier is ${shown(c.sharedClassifier)}; it must be true or false`);
  requireInput(Number.isFinite(c.normEps) && c.normEps > 0,
    `${source}: normEps is ${shown(c.normEps)}; it must be a positive number (llama2.c uses ${LLAMA2C_NORM_EPS})`);
  requireInput(Number.isFinite(c.ropeTheta) && c.ropeTheta > 0,
    `${source}: ropeTheta is ${shown(c.ropeTheta)}; it must be a positive number (llama2.c uses ${LLAMA2C_ROPE_THETA})`);
  requireInput(Number.isSafeInteger(checkpointByteLength(c, 'llama2c-v0')),
    `${source}: the model (${describe(c)}) is too large to address; use smaller dimensions${hint}`);
}

/** Sanity checks for a model configuration (the same as for a checkpoint header); throws RemaxInputError naming `source`. */
export function validateConfig(config: ModelConfig, source = 'model config'): void {
  checkConfig(config, source, '');
}

// ---------------------------------------------------------------------------------------------------------------------
// Reading

/** `count` float32 values at `offset` of `bytes`: a view when possible, else an aligned little-endian copy. */
function readF32(bytes: Uint8Array, offset: number, count: number): Float32Array {
  const start = bytes.byteOffset + offset;
  if (LITTLE_ENDIAN && start % 4 === 0) return new Float32Array(bytes.buffer, start, count);
  const out = new Float32Array(count);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes.subarray(offset, offset + 4 * count)); // unaligned: copy the bytes
  } else {
    const view = new DataView(bytes.buffer, start, 4 * count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  }
  return out;
}

/**
 * Parses a llama2.c float32 checkpoint (legacy v0 or v1). Weights are Float32Array views into `bytes` (so they alias
 * it) unless the data is not 4-byte aligned, in which case they are copies. `source` names the file in error messages.
 */
export function parseCheckpoint(bytes: Uint8Array, source = 'checkpoint'): Checkpoint {
  const notLlama2c = ' (the file is not a llama2.c float32 checkpoint, or it is corrupt)';
  requireInput(bytes.length >= V0_HEADER_BYTES,
    `${source}: the file has ${bytes.length} bytes, fewer than the ${V0_HEADER_BYTES}-byte llama2.c header; it is empty, truncated or not a llama2.c checkpoint`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const int32 = (offset: number): number => view.getInt32(offset, true);

  const isV1 = view.getUint32(0, true) === V1_MAGIC;
  let format: CheckpointFormat, paramsAt: number, sharedClassifier: boolean, vocabSize: number;
  if (isV1) {
    requireInput(bytes.length >= V1_HEADER_BYTES,
      `${source}: the file starts with the llama2.c "ak42" magic but has only ${bytes.length} bytes, fewer than the ${V1_HEADER_BYTES}-byte header; it is truncated`);
    const version = int32(4);
    requireInput(version === 1,
      `${source}: llama2.c "ak42" checkpoint version ${version} is not supported; only float32 versions 0 (legacy) and 1 are` +
      `${version === 2 ? ' (version 2 is int8-quantized)' : ''}; re-export the model with llama2.c export.py --version 1 (or 0)`);
    format = 'llama2c-v1';
    paramsAt = 8;
    vocabSize = int32(paramsAt + 20);
    const flag = bytes[paramsAt + 28];
    requireInput(flag === 0 || flag === 1,
      `${source}: shared_classifier byte is ${flag}; it must be 0 or 1${notLlama2c}`);
    sharedClassifier = flag === 1;
  } else {
    format = 'llama2c-v0';
    paramsAt = 0;
    // Legacy files flag an unshared classifier with a negative vocab_size.
    const raw = int32(paramsAt + 20);
    vocabSize = Math.abs(raw);
    sharedClassifier = raw > 0;
  }

  const config: ModelConfig = {
    dim: int32(paramsAt), hiddenDim: int32(paramsAt + 4), nLayers: int32(paramsAt + 8), nHeads: int32(paramsAt + 12),
    nKvHeads: int32(paramsAt + 16), vocabSize, seqLen: int32(paramsAt + 24),
    sharedClassifier, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA,
  };
  checkConfig(config, source, notLlama2c);
  const expected = checkpointByteLength(config, format);
  const kind = `a llama2.c ${isV1 ? 'version 1' : 'legacy (v0)'} checkpoint`;
  requireInput(bytes.length >= expected,
    `${source}: ${kind} with ${describe(config)} has ${expected} bytes, but the file has ${bytes.length} ` +
    `(${expected - bytes.length} missing); the file is truncated or is not a llama2.c checkpoint (download or export it again)`);
  // Too long is not "truncated": the header describes a smaller model than the file holds.
  requireInput(bytes.length === expected,
    `${source} has ${bytes.length - expected} bytes more than ${kind} of this config (${describe(config)}: ${expected} bytes); ` +
    `it is not a llama2.c checkpoint of this model or it is corrupt`);

  const shapes = new Map(weightShapes(config).map(({ name, shape }) => [name, elementCount(shape)]));
  const weights: Partial<Record<WeightName, Float32Array>> = {};
  let offset = isV1 ? V1_HEADER_BYTES : V0_HEADER_BYTES;
  const take = (name: WeightName): void => {
    const count = shapes.get(name);
    if (count === undefined) return; // wcls of a shared-classifier model
    weights[name] = readF32(bytes, offset, count);
    offset += 4 * count;
  };
  if (isV1) {
    V1_ORDER.forEach(take);
  } else {
    for (const name of shapes.keys()) {
      take(name);
      // We compute RoPE ourselves, so the stored tables are skipped.
      if (name === 'rms_final_weight') offset += 4 * freqCisElements(config);
    }
  }
  return { config, weights: weights as ModelWeights, format };
}

// ---------------------------------------------------------------------------------------------------------------------
// Writing

function writeF32(out: Uint8Array, offset: number, values: Float32Array): number {
  if (LITTLE_ENDIAN) {
    out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), offset);
  } else {
    const view = new DataView(out.buffer, out.byteOffset + offset, values.byteLength);
    for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i]!, true);
  }
  return offset + values.byteLength;
}

/** The weights in weightShapes() order, checked against the shapes of `config` (a mismatch is a caller bug, not user input). */
function checkedWeights(config: ModelConfig, weights: ModelWeights): Map<WeightName, Float32Array> {
  const out = new Map<WeightName, Float32Array>();
  for (const { name, shape } of weightShapes(config)) {
    const w = weights[name];
    if (!(w instanceof Float32Array) || w.length !== elementCount(shape)) {
      throw new Error(`weight ${name} has ${w?.length ?? 'no'} values; shape [${shape}] needs ${elementCount(shape)}`);
    }
    out.set(name, w);
  }
  return out;
}

/**
 * RoPE tables as llama2.c model.py precompute_freqs_cis builds them in float32:
 * freq_i = 1 / theta^(2i/head_size), angle = pos·freq_i, real = cos(angle), imag = sin(angle).
 * Every intermediate is rounded to float32 like torch does, so the tables match llama2.c exports to ~1 float32 ulp.
 */
function freqCisTables(config: ModelConfig): [Float32Array, Float32Array] {
  const hs = headSize(config), half = hs / 2, f = Math.fround;
  const real = new Float32Array(config.seqLen * half), imag = new Float32Array(config.seqLen * half);
  for (let i = 0; i < half; i++) {
    const freq = f(1 / f(Math.pow(config.ropeTheta, f((2 * i) / hs))));
    for (let pos = 0; pos < config.seqLen; pos++) {
      const angle = f(pos * freq);
      real[pos * half + i] = Math.cos(angle);
      imag[pos * half + i] = Math.sin(angle);
    }
  }
  return [real, imag];
}

/**
 * Writes a legacy (v0) llama2.c checkpoint, the format llama2.c's run.c reads: negative vocab_size when the
 * classifier is unshared, and the freq_cis tables llama2.c expects (run.c skips them, but their size must be there).
 */
export function serializeCheckpoint(config: ModelConfig, weights: ModelWeights): Uint8Array {
  checkConfig(config, 'serializeCheckpoint', '');
  const tensors = checkedWeights(config, weights);
  const out = new Uint8Array(checkpointByteLength(config, 'llama2c-v0'));
  const view = new DataView(out.buffer);
  const header = [config.dim, config.hiddenDim, config.nLayers, config.nHeads, config.nKvHeads,
    config.sharedClassifier ? config.vocabSize : -config.vocabSize, config.seqLen];
  header.forEach((v, i) => view.setInt32(4 * i, v, true));
  let offset = V0_HEADER_BYTES;
  for (const [name, w] of tensors) {
    offset = writeF32(out, offset, w);
    if (name === 'rms_final_weight') for (const table of freqCisTables(config)) offset = writeF32(out, offset, table);
  }
  return out;
}

/** Writes a version 1 ("ak42") llama2.c checkpoint, as export.py version1_export does. */
export function serializeCheckpointV1(config: ModelConfig, weights: ModelWeights): Uint8Array {
  checkConfig(config, 'serializeCheckpointV1', '');
  const tensors = checkedWeights(config, weights);
  const out = new Uint8Array(checkpointByteLength(config, 'llama2c-v1')); // zero-filled: the header padding
  const view = new DataView(out.buffer);
  view.setUint32(0, V1_MAGIC, true);
  view.setInt32(4, 1, true);
  const params = [config.dim, config.hiddenDim, config.nLayers, config.nHeads, config.nKvHeads, config.vocabSize, config.seqLen];
  params.forEach((v, i) => view.setInt32(8 + 4 * i, v, true));
  out[36] = config.sharedClassifier ? 1 : 0;
  let offset = V1_HEADER_BYTES;
  for (const name of V1_ORDER) {
    const w = tensors.get(name);
    if (w) offset = writeF32(out, offset, w);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// Random initialization

/**
 * Fresh weights as llama2.c model.py initializes them, but deterministic on every JS engine (see prng.ts):
 * normal(0, 0.02) for embeddings and matrices, normal(0, 0.02/sqrt(2·n_layers)) for the residual projections wo and w2
 * (the GPT-2 scaled init; model.py names w3 there, a typo reported as llama2.c issue #579), RMSNorm weights = 1.
 * Tensors are drawn in weightShapes() order from one stream.
 */
export function randomInitWeights(config: ModelConfig, seed: number): ModelWeights {
  validateConfig(config);
  requireInput(Number.isSafeInteger(seed), `seed is ${seed}; it must be an integer (for example 1)`);
  const rng = new Prng(seed);
  const residualStd = 0.02 / Math.sqrt(2 * config.nLayers);
  const weights: Partial<Record<WeightName, Float32Array>> = {};
  for (const { name, shape } of weightShapes(config)) {
    const w = new Float32Array(elementCount(shape));
    if (name.startsWith('rms_')) w.fill(1);
    else rng.fillNormal(w, name === 'wo' || name === 'w2' ? residualStd : 0.02);
    weights[name] = w;
  }
  return weights as ModelWeights;
}
