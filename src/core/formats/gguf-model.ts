/**
 * GGUF files ↔ the engine's model (LoadedModel): llama.cpp's `llama`, `qwen2` and `qwen3` architectures.
 *
 * Names: token_embd, output_norm, output (absent: tied to token_embd), rope_freqs (Llama 3.1 RoPE scaling), and per
 * layer blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate (w1), ffn_down (w2), ffn_up (w3)}
 * .weight; qwen2 adds attn_{q,k,v}.bias, qwen3 attn_{q,k}_norm.weight. A ggml shape ne = [cols, rows] is a row-major
 * [rows, cols] matrix; the engine stacks the layers' matrices on a leading axis.
 *
 * RoPE order: llama.cpp's llama files store attn_q/attn_k rows in the interleaved-pairs order the engine runs (its
 * converter permutes Hugging Face's rows into it), while qwen2/qwen3 use NEOX RoPE on Hugging Face's rotate-half rows,
 * so their q/k rows, biases and norm weights are permuted at load and back at export (rope-order.ts).
 */
import { headSize, kvDim, qDim, weightShapes, elementCount, type ModelConfig, type ModelWeights, type WeightName } from '../config';
import { RemaxInputError, requireInput } from '../errors';
import { frequencyDivisors } from '../rope-scaling';
import type { GgufOrigin, LoadedModel, StoredTensors } from './model';
import { MATRIX_WEIGHTS, tensorBytes as tensorBytesOf } from '../weight-types';
import { halfToInterleaved, interleavedToHalf } from './rope-order';
import {
  GGUF_DEFAULT_ALIGNMENT, ggufValueFits, parseGguf, serializeGguf, tensorBytes,
  type GgufFile, type GgufMetaType, type GgufScalarType, type GgufTensorToWrite, type GgufValue,
} from './gguf';
import { GGML_TYPES, dequantize, type GgmlTypeName, type GgmlWritableType } from './gguf-quants';

export const GGUF_ARCHITECTURES = ['llama', 'qwen2', 'qwen3'] as const;
export type GgufArchitecture = (typeof GGUF_ARCHITECTURES)[number];

/** GgufOrigin as ggufToModel returns it: also each key's GGUF type, so modelToGguf writes the keys back unchanged. */
export interface GgufModelOrigin extends GgufOrigin {
  metadata: Map<string, GgufValue>;
  types: Map<string, GgufMetaType>;
}

/** A metadata value with its type, for keys a caller adds (tokenizer.ggml.* of a model from another format). */
export interface GgufEntry {
  type: GgufMetaType;
  value: GgufValue;
}

export interface GgufLoadOptions {
  /** Longest sequence the engine plans for (its KV cache); seqLen = min(<arch>.context_length, context). Default 2048. */
  context?: number;
}

export const DEFAULT_GGUF_CONTEXT = 2048;
const LLAMA_FILE_TYPE: Record<'F32' | 'F16' | 'Q8_0', number> = { F32: 0, F16: 1, Q8_0: 7 }; // llama_ftype

/** One GGUF tensor's place in the engine: which weight, which layer slice, its expected ggml shape. */
interface Slot {
  gguf: string;
  weight: WeightName | 'rope_freqs';
  layer: number;
  ne: number[];
  /** Rope-order permutation for qwen2/qwen3: heads of the rows (1 for a q/k norm: one head's channels). */
  permuteHeads?: number;
}

/** halfToInterleaved / interleavedToHalf arguments of a slot: heads, rows per head, columns. */
function permutation(s: Slot): [number, number, number] {
  const rows = s.ne.length === 2 ? s.ne[1]! : s.ne[0]!, cols = s.ne.length === 2 ? s.ne[0]! : 1;
  return [s.permuteHeads!, rows / s.permuteHeads!, cols];
}

function slots(arch: GgufArchitecture, c: ModelConfig, withRopeFreqs: boolean): Slot[] {
  const D = c.dim, H = c.hiddenDim, Q = qDim(c), KV = kvDim(c), V = c.vocabSize, hs = headSize(c);
  const neox = arch !== 'llama';
  const out: Slot[] = [{ gguf: 'token_embd.weight', weight: 'token_embedding_table', layer: 0, ne: [D, V] }];
  if (withRopeFreqs) out.push({ gguf: 'rope_freqs.weight', weight: 'rope_freqs', layer: 0, ne: [hs / 2] });
  for (let l = 0; l < c.nLayers; l++) {
    const s = (name: string, weight: WeightName, ne: number[], permuteHeads?: number): Slot =>
      ({ gguf: `blk.${l}.${name}`, weight, layer: l, ne, ...(neox && permuteHeads ? { permuteHeads } : {}) });
    out.push(s('attn_norm.weight', 'rms_att_weight', [D]), s('attn_q.weight', 'wq', [D, Q], c.nHeads));
    if (c.qkvBias) out.push(s('attn_q.bias', 'bq', [Q], c.nHeads));
    out.push(s('attn_k.weight', 'wk', [D, KV], c.nKvHeads));
    if (c.qkvBias) out.push(s('attn_k.bias', 'bk', [KV], c.nKvHeads));
    out.push(s('attn_v.weight', 'wv', [D, KV]));
    if (c.qkvBias) out.push(s('attn_v.bias', 'bv', [KV]));
    if (c.qkNorm) out.push(s('attn_q_norm.weight', 'rms_q_weight', [hs], 1), s('attn_k_norm.weight', 'rms_k_weight', [hs], 1));
    out.push(
      s('attn_output.weight', 'wo', [Q, D]), s('ffn_norm.weight', 'rms_ffn_weight', [D]),
      s('ffn_gate.weight', 'w1', [D, H]), s('ffn_up.weight', 'w3', [D, H]), s('ffn_down.weight', 'w2', [H, D]),
    );
  }
  out.push({ gguf: 'output_norm.weight', weight: 'rms_final_weight', layer: 0, ne: [D] });
  if (!c.sharedClassifier) out.push({ gguf: 'output.weight', weight: 'wcls', layer: 0, ne: [D, V] });
  return out;
}

/** The GGUF architecture that stores a model of `c`: qwen3 (q/k norms), qwen2 (q/k/v biases) or llama. */
const architectureFor = (c: ModelConfig): GgufArchitecture => (c.qkNorm ? 'qwen3' : c.qkvBias ? 'qwen2' : 'llama');

/**
 * The model's tensors under their GGUF names, shapes in row-major order ([rows, cols]: ggml's ne reversed) and rows
 * in the file's RoPE order. `weights` may be anything with the weights' layout (gradients: `remax grad`).
 */
export function ggufTensors(c: ModelConfig, weights: Partial<Record<WeightName, Float32Array>>): { name: string; shape: number[]; data: Float32Array }[] {
  return slots(architectureFor(c), c, false).map((s) => {
    const count = elementCount(s.ne);
    let data = weights[s.weight as WeightName]!.subarray(s.layer * count, (s.layer + 1) * count);
    if (s.permuteHeads) data = interleavedToHalf(data, ...permutation(s));
    return { name: s.gguf, shape: [...s.ne].reverse(), data };
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// Reading

/** Metadata accessors that name the file, the key, its value and a fix in every error. */
class Keys {
  constructor(private readonly file: GgufFile, private readonly source: string) {}

  has(key: string): boolean {
    return this.file.metadata.has(key);
  }

  /** The value and its type for a message: `"gpt2" (string)`, `0 (u32)`, `an array of 3 (array<u32>)`. */
  describe(key: string): string {
    const v = this.file.metadata.get(key);
    const shown = Array.isArray(v) ? `an array of ${v.length}`
      : typeof v === 'string' ? JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v) : String(v);
    return `${shown} (${this.file.types.get(key)})`;
  }

  /** A positive integer of any GGUF integer type; `fallback` when absent (required when undefined). */
  int(key: string, meaning: string, fallback?: number): number {
    const v = this.file.metadata.get(key), t = this.file.types.get(key);
    if (v === undefined && fallback !== undefined) return fallback;
    requireInput(v !== undefined,
      `${this.source}: metadata key ${key} is missing; it is required (${meaning}): the file is incomplete, convert it again with llama.cpp`);
    requireInput(typeof v === 'number' && /^[ui]\d+$/.test(t!) && Number.isSafeInteger(v) && v > 0,
      `${this.source}: metadata ${key} is ${this.describe(key)}; it must be a positive integer (${meaning}): the file is corrupt`);
    return v;
  }

  /** A positive finite number (f32 keys keep their float32 value). */
  float(key: string, meaning: string, fallback?: number): number {
    const v = this.file.metadata.get(key);
    if (v === undefined && fallback !== undefined) return fallback;
    requireInput(v !== undefined,
      `${this.source}: metadata key ${key} is missing; it is required (${meaning}): the file is incomplete, convert it again with llama.cpp`);
    requireInput(typeof v === 'number' && Number.isFinite(v) && v > 0,
      `${this.source}: metadata ${key} is ${this.describe(key)}; it must be a positive number (${meaning}): the file is corrupt`);
    return v;
  }

  /** A token id (a non-negative integer below `vocab`), or undefined when absent. */
  tokenId(key: string, vocab: number): number | undefined {
    const v = this.file.metadata.get(key);
    if (v === undefined) return undefined;
    requireInput(typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < vocab,
      `${this.source}: metadata ${key} is ${this.describe(key)}; it must be a token id from 0 to ${vocab - 1}: the file is corrupt`);
    return v;
  }
}

/**
 * The engine's model from a parsed GGUF file (`bytes`: the file parseGguf read). Every error is a RemaxInputError
 * naming `source` and the key or tensor. Dequantizes every tensor to float32; builds no tokenizer (the vocabulary
 * stays in origin.metadata for the GGUF tokenizer).
 */
export function ggufToModel(file: GgufFile, bytes: Uint8Array, source: string, options: GgufLoadOptions = {}): LoadedModel {
  const keys = new Keys(file, source);
  const arch = file.metadata.get('general.architecture');
  requireInput(typeof arch === 'string' && (GGUF_ARCHITECTURES as readonly string[]).includes(arch),
    `${source}: metadata general.architecture is ${arch === undefined ? 'missing' : keys.describe('general.architecture')}; ` +
    `supported architectures: ${GGUF_ARCHITECTURES.join(', ')} (Llama 1–3 and Mistral-style llama files, Qwen2/2.5, Qwen3)`);
  const architecture = arch as GgufArchitecture;
  const context = options.context ?? DEFAULT_GGUF_CONTEXT;
  requireInput(Number.isSafeInteger(context) && context > 0, `the context option is ${context}; it must be a positive integer (e.g. 2048)`);

  const k = (name: string): string => `${architecture}.${name}`;
  const tensors = new Map(file.tensors.map((t) => [t.name, t]));
  requireInput(!keys.has(k('expert_count')) || file.metadata.get(k('expert_count')) === 0,
    `${source}: metadata ${k('expert_count')} is ${keys.describe(k('expert_count'))}: mixture-of-experts models are not supported; use a dense model`);
  checkNoRopeScalingKeys(file, source, architecture);

  const dim = keys.int(k('embedding_length'), 'the model width');
  const nHeads = keys.int(k('attention.head_count'), 'the number of attention heads');
  const nKvHeads = keys.int(k('attention.head_count_kv'), 'the number of key/value heads', nHeads);
  requireInput(keys.has(k('attention.key_length')) || dim % nHeads === 0,
    `${source}: metadata ${k('embedding_length')} ${dim} is not a multiple of ${k('attention.head_count')} ${nHeads} and there is ` +
    `no ${k('attention.key_length')} to give the head size; the file is corrupt`);
  const keyLength = keys.int(k('attention.key_length'), 'the head size of queries and keys', dim / nHeads);
  const valueLength = keys.int(k('attention.value_length'), 'the head size of values', keyLength);
  requireInput(valueLength === keyLength,
    `${source}: metadata ${k('attention.value_length')} is ${valueLength} but ${k('attention.key_length')} (the head size) is ${keyLength}; ` +
    `value heads of another size than query/key heads are not supported`);
  const ropeDims = keys.int(k('rope.dimension_count'), 'the channels of each head RoPE rotates', keyLength);
  requireInput(ropeDims === keyLength,
    `${source}: metadata ${k('rope.dimension_count')} is ${ropeDims} but the head size is ${keyLength}; ` +
    `${ropeDims < keyLength ? 'partial RoPE (rotating only some channels of each head) is' : 'rotating more channels than a head has is'} not supported`);
  requireInput(nHeads % nKvHeads === 0,
    `${source}: metadata ${k('attention.head_count')} ${nHeads} is not a multiple of ${k('attention.head_count_kv')} ${nKvHeads}; ` +
    `grouped-query attention shares each key/value head among a whole number of query heads, so the file is corrupt`);
  requireInput(keyLength % 2 === 0,
    `${source}: the head size ${keyLength} (${keys.has(k('attention.key_length')) ? k('attention.key_length') : `${k('embedding_length')} / ${k('attention.head_count')}`}) ` +
    `is odd; RoPE rotates channel pairs, so the file is corrupt`);

  const embd = tensors.get('token_embd.weight');
  const tokens = file.metadata.get('tokenizer.ggml.tokens');
  const vocabFallback = Array.isArray(tokens) ? tokens.length : embd?.shape[1];
  requireInput(vocabFallback !== undefined || keys.has(k('vocab_size')),
    `${source}: no ${k('vocab_size')}, tokenizer.ggml.tokens or token_embd.weight to tell the vocabulary size; the file is incomplete`);
  const vocabSize = keys.int(k('vocab_size'), 'the number of token ids', vocabFallback);

  const config: ModelConfig = {
    dim, hiddenDim: keys.int(k('feed_forward_length'), 'the width of the feed-forward layer'),
    nLayers: keys.int(k('block_count'), 'the number of transformer layers'), nHeads, nKvHeads, vocabSize,
    seqLen: Math.min(keys.int(k('context_length'), 'the context length the model was trained for'), context),
    sharedClassifier: !tensors.has('output.weight'),
    normEps: keys.float(k('attention.layer_norm_rms_epsilon'), 'the RMSNorm epsilon'),
    ropeTheta: keys.float(k('rope.freq_base'), 'the RoPE base frequency', 10000),
  };
  if (keyLength * nHeads !== dim) config.headSize = keyLength;
  if (architecture === 'qwen2') config.qkvBias = true;
  if (architecture === 'qwen3') config.qkNorm = true;

  // Check every tensor before dequantizing any: a file that cannot load fails fast and says why. (A forged
  // block_count must not make us list billions of expected tensors: each layer has at least 9.)
  requireInput(config.nLayers * 9 < file.tensors.length,
    `${source}: metadata ${k('block_count')} is ${config.nLayers} but the file has only ${file.tensors.length} tensors ` +
    `(tensor blk.${config.nLayers - 1}.attn_norm.weight${tensors.has(`blk.${config.nLayers - 1}.attn_norm.weight`) ? ' and others are' : ' is'} missing); the file is incomplete or corrupt`);
  const expected = slots(architecture, config, tensors.has('rope_freqs.weight'));
  const expectedNames = new Set(expected.map((s) => s.gguf));
  for (const t of file.tensors) {
    requireInput(expectedNames.has(t.name),
      `${source}: tensor ${t.name} [${t.shape}] is not part of a ${architecture} model with ${config.nLayers} layers ` +
      `(this engine would ignore it, which would change the model); the file is another architecture or corrupt`);
  }
  for (const s of expected) {
    const t = tensors.get(s.gguf);
    requireInput(t !== undefined, `${source}: tensor ${s.gguf} is missing; a ${architecture} model needs it (the file is incomplete)`);
    requireInput(t.shape.length === s.ne.length && t.shape.every((d, i) => d === s.ne[i]),
      `${source}: tensor ${s.gguf} has shape [${t.shape}] but the metadata (${describeConfig(config)}) needs [${s.ne}] (ggml order, row length first); ` +
      `the metadata and the tensors disagree, so the file is corrupt`);
  }

  const stacked = new Map<WeightName, Float32Array>(weightShapes(config).map(({ name, shape }) => [name, new Float32Array(elementCount(shape))]));
  let ropeFactors: number[] | undefined;
  const elementsPerType = new Map<GgmlTypeName, number>();
  const typesOf = new Map<WeightName | 'rope_freqs', Set<GgmlTypeName>>();
  const storedBlocks = new Map<WeightName, Uint8Array>();
  for (const s of expected) {
    const t = tensors.get(s.gguf)!;
    elementsPerType.set(t.type, (elementsPerType.get(t.type) ?? 0) + elementCount(t.shape));
    const count = elementCount(s.ne);
    if (s.weight === 'rope_freqs') {
      ropeFactors = Array.from(dequantize(t.type, tensorBytes(file, bytes, t), count));
      requireInput(ropeFactors.every((v) => Number.isFinite(v) && v > 0),
        `${source}: tensor rope_freqs.weight holds ${ropeFactors.find((v) => !(Number.isFinite(v) && v > 0))}; its RoPE frequency divisors must be positive numbers, so the file is corrupt`);
      continue;
    }
    const slice = stacked.get(s.weight)!.subarray(s.layer * count, (s.layer + 1) * count);
    const raw = tensorBytes(file, bytes, t);
    dequantize(t.type, raw, count, slice);
    if (s.permuteHeads) slice.set(halfToInterleaved(slice, ...permutation(s)));
    if (!typesOf.has(s.weight)) typesOf.set(s.weight, new Set());
    typesOf.get(s.weight)!.add(t.type);
    if (typesOf.get(s.weight)!.size > 1) storedBlocks.delete(s.weight); // layers of several types: float32 (not kept)
    else if ((t.type === 'Q8_0' || t.type === 'Q4_K') && MATRIX_WEIGHTS.includes(s.weight)) {
      // The blocks as stored, in the engine's layout (rows permuted like the values), for an engine that keeps them.
      const layerBytes = tensorBytesOf(t.type, [count]), rowBytes = tensorBytesOf(t.type, [s.ne[0]!]);
      if (!storedBlocks.has(s.weight)) storedBlocks.set(s.weight, new Uint8Array(tensorBytesOf(t.type, [stacked.get(s.weight)!.length])));
      const layer = raw.subarray(0, layerBytes);
      storedBlocks.get(s.weight)!.set(s.permuteHeads ? halfToInterleaved(layer, s.permuteHeads, s.ne[1]! / s.permuteHeads, rowBytes) : layer, s.layer * layerBytes);
    }
  }
  // Matrices stored as one type the engine can keep throughout (weight-types.ts).
  const stored: StoredTensors = {};
  for (const [name, types] of typesOf) {
    const [type] = types;
    if (types.size !== 1 || name === 'rope_freqs' || !MATRIX_WEIGHTS.includes(name)) continue;
    if (type === 'BF16' || type === 'F16') stored[name] = { type };
    else if (type === 'Q8_0' || type === 'Q4_K') stored[name] = { type, blocks: storedBlocks.get(name)! };
  }
  if (ropeFactors) config.ropeScaling = { type: 'factors', factors: ropeFactors };

  const eos = keys.tokenId('tokenizer.ggml.eos_token_id', vocabSize);
  const stops = [eos, keys.tokenId('tokenizer.ggml.eot_token_id', vocabSize), keys.tokenId('tokenizer.ggml.eom_token_id', vocabSize)]
    .filter((id, i, all): id is number => id !== undefined && all.indexOf(id) === i);

  const origin: GgufModelOrigin = { kind: 'gguf', architecture, metadata: file.metadata, types: file.types };
  return {
    config,
    weights: Object.fromEntries(stacked) as ModelWeights,
    format: 'gguf',
    architecture: `gguf ${architecture}`,
    // The dominant type first: "Q8_0 + F16 + F32".
    dtype: [...elementsPerType].sort((a, b) => b[1] - a[1]).map(([t]) => t).join(' + '),
    ...(stops.length > 0 ? { stopIds: stops } : {}),
    ...(Object.keys(stored).length > 0 ? { stored } : {}),
    origin,
  };
}

/** parseGguf + ggufToModel. */
export function loadGguf(bytes: Uint8Array, source: string, options?: GgufLoadOptions): LoadedModel {
  return ggufToModel(parseGguf(bytes, source), bytes, source, options);
}

const describeConfig = (c: ModelConfig): string =>
  `dim ${c.dim}, ${c.nHeads} heads, ${c.nKvHeads} KV heads, head size ${headSize(c)}, hidden ${c.hiddenDim}, vocab ${c.vocabSize}`;

/** llama.cpp's linear/YaRN/LongRoPE scaling keys: a model that needs them would run wrongly here. */
function checkNoRopeScalingKeys(file: GgufFile, source: string, arch: string): void {
  const type = file.metadata.get(`${arch}.rope.scaling.type`);
  const factor = file.metadata.get(`${arch}.rope.scaling.factor`) ?? file.metadata.get(`${arch}.rope.scale_linear`);
  const scaled = (type !== undefined && type !== 'none' && factor !== undefined && factor !== 0 && factor !== 1)
    || (type === undefined && factor !== undefined && factor !== 0 && factor !== 1);
  requireInput(!scaled,
    `${source}: metadata ${arch}.rope.scaling.type is ${JSON.stringify(type ?? 'linear')} with factor ${JSON.stringify(factor)}: ` +
    `this RoPE scaling is not supported (only Llama 3.1's rope_freqs factors are); use a model without it`);
}

// ---------------------------------------------------------------------------------------------------------------------
// Writing

export interface GgufExportOptions {
  /** How to store the matrices: F32 everything; F16 2-D tensors (1-D F32); Q8_0 2-D tensors with rows of a multiple of 32 (others F16, 1-D F32). */
  type: 'F32' | 'F16' | 'Q8_0';
  /** general.name when the model did not come from a GGUF that has one (default "remax model"). */
  name?: string;
  /**
   * Keys to add or replace (tokenizer.ggml.* of a model from another format, e.g. gguf-vocab's
   * ggufTokenizerMetadata list); not the keys the config decides.
   */
  extraMetadata?: Map<string, GgufEntry> | Record<string, GgufEntry> | (GgufEntry & { key: string })[];
}

function typeFor(mode: GgufExportOptions['type'], ne: number[]): GgmlWritableType {
  if (mode === 'F32' || ne.length === 1) return 'F32';
  return mode === 'Q8_0' && ne[0]! % GGML_TYPES.Q8_0.blockSize === 0 ? 'Q8_0' : 'F16';
}

/** The type a plain value gets when nothing says otherwise (a model whose origin lost its types map). */
function inferType(value: GgufValue): GgufMetaType {
  const scalar = (v: unknown): 'string' | 'bool' | 'u32' | 'i32' | 'f32' =>
    typeof v === 'string' ? 'string' : typeof v === 'boolean' ? 'bool'
      : Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff ? 'u32'
        : Number.isInteger(v) && (v as number) >= -0x80000000 && (v as number) < 0 ? 'i32' : 'f32';
  if (!Array.isArray(value)) return scalar(value);
  const kinds = new Set((value as unknown[]).map(scalar));
  if (kinds.has('f32')) return 'array<f32>';
  if (kinds.has('i32')) return 'array<i32>';
  return `array<${[...kinds][0] ?? 'u32'}>`;
}

/**
 * A GGUF file of `model`: architecture llama (qwen2 with q/k/v biases, qwen3 with q/k norms) with the metadata
 * llama.cpp reads, tensors permuted back to rotate-half order for qwen2/qwen3 and stored as `options.type` says.
 * A model loaded from a GGUF keeps its other keys (general.*, tokenizer.*), with their types and in their order, and
 * the keys it had for what the config decides keep their place; keys it lacked whose value is llama.cpp's default
 * are not added. So a file read and written back at its own type is the same file, byte for byte (for files our writer
 * or gguf-py laid out).
 */
export function modelToGguf(model: LoadedModel, options: GgufExportOptions): Uint8Array {
  const c = model.config;
  if (c.qkvBias && c.qkNorm) {
    throw new RemaxInputError('this model has both q/k/v biases and q/k norms, which no GGUF architecture (qwen2: biases, qwen3: norms) stores; it cannot be written as GGUF');
  }
  const arch = architectureFor(c);
  const hs = headSize(c);
  const origin = model.origin?.kind === 'gguf' ? model.origin as Partial<GgufModelOrigin> & GgufOrigin : undefined;
  const sameArch = origin?.architecture === arch;
  const originValues = origin?.metadata as Map<string, GgufValue> | undefined;
  const originTypes = origin?.types instanceof Map ? origin.types : undefined;

  // What the config decides, with llama.cpp's defaults (a default need not be written when the origin lacked the key).
  const owned: [string, GgufMetaType, GgufValue, GgufValue | undefined][] = [
    ['general.architecture', 'string', arch, undefined],
    ['general.name', 'string', (originValues?.get('general.name') as string | undefined) ?? options.name ?? 'remax model', undefined],
    ['general.file_type', 'u32', LLAMA_FILE_TYPE[options.type], undefined],
    ['general.alignment', 'u32', (originValues?.get('general.alignment') as number | undefined) ?? GGUF_DEFAULT_ALIGNMENT, GGUF_DEFAULT_ALIGNMENT],
    [`${arch}.context_length`, 'u32', Math.max(c.seqLen, sameArch ? Number(originValues?.get(`${arch}.context_length`) ?? 0) : 0), undefined],
    [`${arch}.embedding_length`, 'u32', c.dim, undefined],
    [`${arch}.block_count`, 'u32', c.nLayers, undefined],
    [`${arch}.feed_forward_length`, 'u32', c.hiddenDim, undefined],
    [`${arch}.rope.dimension_count`, 'u32', hs, undefined],
    [`${arch}.attention.head_count`, 'u32', c.nHeads, undefined],
    [`${arch}.attention.head_count_kv`, 'u32', c.nKvHeads, c.nHeads],
    [`${arch}.attention.layer_norm_rms_epsilon`, 'f32', c.normEps, undefined],
    [`${arch}.rope.freq_base`, 'f32', c.ropeTheta, 10000],
    [`${arch}.vocab_size`, 'u32', c.vocabSize,
      Array.isArray(originValues?.get('tokenizer.ggml.tokens')) ? (originValues!.get('tokenizer.ggml.tokens') as string[]).length : undefined],
  ];
  if (arch === 'qwen3' || hs * c.nHeads !== c.dim) {
    owned.push([`${arch}.attention.key_length`, 'u32', hs, hs * c.nHeads === c.dim ? hs : undefined],
      [`${arch}.attention.value_length`, 'u32', hs, hs * c.nHeads === c.dim ? hs : undefined]);
  }
  const ownedKeys = new Map(owned.map(([key, type, value, fallback]) => [key, { type, value, fallback }]));

  const metadata = new Map<string, GgufValue>(), types = new Map<string, GgufMetaType>();
  const put = (key: string, type: GgufMetaType, value: GgufValue): void => { metadata.set(key, value); types.set(key, type); };
  if (originValues) {
    const originArch = origin!.architecture;
    for (const [key, value] of originValues) {
      const mine = ownedKeys.get(key);
      if (mine) put(key, keepType(key, originTypes?.get(key), mine.type, mine.value), mine.value);
      else if (!key.startsWith(`${originArch}.`) || sameArch) put(key, originTypes?.get(key) ?? inferType(value), value);
    }
  }
  for (const [key, { type, value, fallback }] of ownedKeys) {
    if (metadata.has(key)) continue;
    if (originValues && fallback !== undefined && value === fallback) continue; // the default: the origin did without it
    put(key, type, value);
  }
  const given = options.extraMetadata;
  const extra: [string, GgufEntry][] = given instanceof Map ? [...given]
    : Array.isArray(given) ? given.map(({ key, type, value }) => [key, { type, value }]) : Object.entries(given ?? {});
  for (const [key, { type, value }] of extra) {
    if (ownedKeys.has(key) && key !== 'general.name') throw new Error(`extraMetadata ${key}: the model's configuration decides this key`);
    put(key, type, value);
  }

  const tensors: GgufTensorToWrite[] = [];
  for (const s of slots(arch, c, c.ropeScaling !== undefined)) {
    if (s.weight === 'rope_freqs') {
      const factors = Float32Array.from(frequencyDivisors(hs, c.ropeTheta, c.ropeScaling!));
      tensors.push({ name: s.gguf, shape: s.ne, type: 'F32', data: factors });
      continue;
    }
    const w = model.weights[s.weight];
    const count = elementCount(s.ne);
    if (!(w instanceof Float32Array) || w.length !== count * (s.gguf.startsWith('blk.') ? c.nLayers : 1)) {
      throw new Error(`weight ${s.weight} has ${w?.length ?? 'no'} values; the config needs ${count * (s.gguf.startsWith('blk.') ? c.nLayers : 1)}`);
    }
    let data = w.subarray(s.layer * count, (s.layer + 1) * count);
    if (s.permuteHeads) data = interleavedToHalf(data, ...permutation(s));
    tensors.push({ name: s.gguf, shape: s.ne, type: typeFor(options.type, s.ne), data });
  }
  return serializeGguf({ metadata, types, tensors });
}

/**
 * The origin's type for a key we write when it is of the same kind and holds the new value (a u64 context length
 * stays u64, an f64 epsilon f64), else ours. general.alignment is always u32: llama.cpp reads no other type there.
 */
function keepType(key: string, originType: GgufMetaType | undefined, ours: GgufMetaType, value: GgufValue): GgufMetaType {
  if (originType === undefined || originType === ours || key === 'general.alignment' || originType.startsWith('array<')) return ours;
  const integer = (t: string): boolean => /^[ui]\d+$/.test(t);
  const sameKind = integer(originType) ? integer(ours) : originType === 'f64' && ours === 'f32';
  return sameKind && ggufValueFits(originType as GgufScalarType, value) ? originType : ours;
}
