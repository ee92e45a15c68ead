/**
 * Hugging Face model folders ↔ the engine's model: config.json, model.safetensors or the shards named by
 * model.safetensors.index.json (F32, F16 or BF16), generation_config.json and the tokenizer files (kept, not parsed).
 *
 * Tensor names (transformers' LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM):
 *   model.embed_tokens.weight → token_embedding_table; model.norm.weight → rms_final_weight; lm_head.weight → wcls
 *   model.layers.N.input_layernorm.weight → rms_att_weight[N], post_attention_layernorm.weight → rms_ffn_weight[N]
 *   self_attn.{q,k,v,o}_proj.weight → wq, wk, wv, wo; self_attn.{q,k,v}_proj.bias → bq, bk, bv (Qwen2)
 *   self_attn.{q,k}_norm.weight → rms_q_weight, rms_k_weight (Qwen3); mlp.gate_proj → w1, down_proj → w2, up_proj → w3
 * q_proj/k_proj rows, the q/k biases and the q/k norm weights are stored in rotate-half order; the engine runs the
 * interleaved order, so they are permuted at load and back at export (rope-order.ts), exactly.
 *
 * Loading checks everything before allocating the float32 model: every header against its file's size, every
 * tensor's dtype and shape against config.json, none missing, none left over, the index against the shards.
 */
import { elementCount, headSize, kvDim, qDim, weightShapes, type ModelConfig, type ModelWeights, type WeightName } from '../config';
import { RemaxInputError, preview, requireInput } from '../errors';
import {
  HF_ARCHITECTURES, TORCH_DTYPES, configJsonText, hfConfigFromModel, parseHfConfig, parseJsonObject, tokenIdList,
  type HfModelConfig,
} from './hf-config';
import type { HfOrigin, LoadedModel, ModelFileSet, StoredTensors } from './model';
import { MATRIX_WEIGHTS } from '../weight-types';
import { halfToInterleaved, interleavedToHalf } from './rope-order';
import { HfTokenizer } from '../tokenizers/hf-tokenizer';
import { scaleInverseFrequencies } from '../rope-scaling';
import {
  decodeSafetensor, readSafetensorsHeader, safetensorByteLength, serializeSafetensors,
  type SafetensorsDtype, type SafetensorsEntry, type SafetensorsHeader, type SafetensorsTensor,
} from './safetensors';

export const SINGLE_WEIGHTS_NAME = 'model.safetensors';
export const WEIGHTS_INDEX_NAME = 'model.safetensors.index.json';
/** transformers' default max_shard_size for save_pretrained ("5GB" = 5·10⁹ bytes). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

/** One stored tensor and where its values live in the engine's weights. */
export interface HfTensorSpec {
  /** transformers' name, e.g. "model.layers.3.self_attn.q_proj.weight". */
  name: string;
  /** Its shape in the file ([out, in] for a projection). */
  shape: number[];
  /** The engine tensor holding it, and the element offset of this slice in it (layer N of a stacked tensor). */
  weight: WeightName;
  offset: number;
  /** Rows stored in rotate-half order (heads × headSize rows of `cols` values), interleaved in the engine. */
  permute?: { heads: number; headSize: number; cols: number };
}

/** The tensors of a model of `config` under transformers' names, in the order transformers writes them. */
export function hfTensorSpecs(config: ModelConfig): HfTensorSpec[] {
  const D = config.dim, H = config.hiddenDim, Q = qDim(config), KV = kvDim(config), hs = headSize(config);
  const specs: HfTensorSpec[] = [{ name: 'model.embed_tokens.weight', shape: [config.vocabSize, D], weight: 'token_embedding_table', offset: 0 }];
  for (let l = 0; l < config.nLayers; l++) {
    const p = `model.layers.${l}.`;
    const layer = (name: string, shape: number[], weight: WeightName, permute?: HfTensorSpec['permute']): void => {
      const spec: HfTensorSpec = { name: p + name, shape, weight, offset: l * elementCount(shape) };
      if (permute) spec.permute = permute;
      specs.push(spec);
    };
    layer('self_attn.q_proj.weight', [Q, D], 'wq', { heads: config.nHeads, headSize: hs, cols: D });
    if (config.qkvBias) layer('self_attn.q_proj.bias', [Q], 'bq', { heads: config.nHeads, headSize: hs, cols: 1 });
    layer('self_attn.k_proj.weight', [KV, D], 'wk', { heads: config.nKvHeads, headSize: hs, cols: D });
    if (config.qkvBias) layer('self_attn.k_proj.bias', [KV], 'bk', { heads: config.nKvHeads, headSize: hs, cols: 1 });
    layer('self_attn.v_proj.weight', [KV, D], 'wv');
    if (config.qkvBias) layer('self_attn.v_proj.bias', [KV], 'bv');
    layer('self_attn.o_proj.weight', [D, Q], 'wo');
    if (config.qkNorm) {
      layer('self_attn.q_norm.weight', [hs], 'rms_q_weight', { heads: 1, headSize: hs, cols: 1 });
      layer('self_attn.k_norm.weight', [hs], 'rms_k_weight', { heads: 1, headSize: hs, cols: 1 });
    }
    layer('mlp.gate_proj.weight', [H, D], 'w1');
    layer('mlp.up_proj.weight', [H, D], 'w3');
    layer('mlp.down_proj.weight', [D, H], 'w2');
    layer('input_layernorm.weight', [D], 'rms_att_weight');
    layer('post_attention_layernorm.weight', [D], 'rms_ffn_weight');
  }
  specs.push({ name: 'model.norm.weight', shape: [D], weight: 'rms_final_weight', offset: 0 });
  if (!config.sharedClassifier) specs.push({ name: 'lm_head.weight', shape: [config.vocabSize, D], weight: 'wcls', offset: 0 });
  if (config.scoreHead) specs.push({ name: 'score.weight', shape: [1, D], weight: 'score', offset: 0 }); // …ForSequenceClassification
  return specs;
}

/**
 * The model's tensors under transformers' names and shapes, q/k rows back in rotate-half order (no lm_head when
 * tied). `weights` may be the model's weights or anything with their layout (gradients). Unpermuted tensors are
 * views into `weights`, permuted ones copies.
 */
export function hfTensors(config: ModelConfig, weights: Partial<Record<WeightName, Float32Array>>): { name: string; shape: number[]; data: Float32Array }[] {
  return hfTensorSpecs(config).map(({ name, shape, weight, offset, permute }) => {
    const w = weights[weight];
    const n = elementCount(shape);
    if (!(w instanceof Float32Array) || w.length < offset + n) {
      throw new Error(`hfTensors: weight ${weight} has ${w?.length ?? 'no'} values; ${name} needs ${offset + n}`);
    }
    const slice = w.subarray(offset, offset + n);
    return { name, shape, data: permute ? interleavedToHalf(slice, permute.heads, permute.headSize, permute.cols) : slice };
  });
}

const join = (folder: string, name: string): string => (folder.endsWith('/') || folder === '' ? folder + name : `${folder}/${name}`);
const show = (v: unknown): string => preview(v, 1000); // never throws, even on values nested too deep
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Files that hold weights (in any format) or index them, and config.json: never kept as "small files". */
const isWeightFile = (name: string): boolean =>
  name === 'config.json' || /\.index\.json$/i.test(name) ||
  /\.(safetensors|bin|pt|pth|ckpt|h5|msgpack|gguf|ggml|onnx|onnx_data|ot|npz|npy|pkl|tflite|mlmodel|pb|keras|nemo|tar|zip|gz)$/i.test(name);
/** A file past this size is no tokenizer or configuration file (the largest tokenizer.json files are ~35 MB): not kept. */
const MAX_SMALL_FILE_BYTES = 256 * 2 ** 20;

export interface HfLoadOptions {
  /** The context to run at (default 2048): seqLen = min(max_position_embeddings, context). */
  context?: number;
}

interface WeightPlan {
  /** Files holding tensors, in the order they are read. */
  shards: string[];
  /** model.safetensors.index.json's weight_map, when the folder is sharded. */
  weightMap?: Map<string, string>;
  /** What missing-tensor messages name: the index or the single file. */
  describe: string;
}

async function planWeights(files: ModelFileSet, names: string[]): Promise<WeightPlan> {
  const at = (f: string): string => join(files.source, f);
  if (names.includes(SINGLE_WEIGHTS_NAME)) return { shards: [SINGLE_WEIGHTS_NAME], describe: at(SINGLE_WEIGHTS_NAME) };
  if (names.includes(WEIGHTS_INDEX_NAME)) {
    const index = parseJsonObject((await files.read(WEIGHTS_INDEX_NAME))!, at(WEIGHTS_INDEX_NAME));
    const map = index.weight_map;
    requireInput(isPlainObject(map) && Object.values(map).every((v) => typeof v === 'string'),
      `${at(WEIGHTS_INDEX_NAME)}: weight_map is ${show(map)?.slice(0, 100)}; it must be an object of tensor name → shard file name`);
    const weightMap = new Map(Object.entries(map as Record<string, string>));
    const shards = [...new Set(weightMap.values())];
    for (const shard of shards) {
      requireInput(names.includes(shard),
        `${at(WEIGHTS_INDEX_NAME)}: weight_map names the shard ${show(shard)} (for ` +
          `${[...weightMap].find(([, s]) => s === shard)![0]}), which is not in ${files.source}; copy the missing shard into the folder`);
      requireInput(shard.endsWith('.safetensors'),
        `${at(WEIGHTS_INDEX_NAME)}: weight_map names the shard ${show(shard)}, not a .safetensors file; only safetensors weights are read`);
    }
    return { shards, weightMap, describe: at(WEIGHTS_INDEX_NAME) };
  }
  const candidates = names.filter((n) => n.endsWith('.safetensors')).sort();
  requireInput(candidates.length > 0,
    `${files.source}: no ${SINGLE_WEIGHTS_NAME}, no ${WEIGHTS_INDEX_NAME} and no other *.safetensors file` +
      (names.some((n) => /\.(bin|pt|pth)$/.test(n)) ? ' (PyTorch .bin/.pt weights are not read: convert them to safetensors)' : '') +
      '; a Hugging Face model folder needs its weights as safetensors');
  requireInput(candidates.length === 1,
    `${files.source}: several *.safetensors files (${candidates.join(', ')}) and no ${WEIGHTS_INDEX_NAME} saying which tensors are in which; ` +
      `add the index or keep only the model's file`);
  return { shards: candidates, describe: at(candidates[0]!) };
}

/** RoPE inverse frequencies as transformers computes them in float32 (for checking a stored rotary_emb.inv_freq). */
function invFreqCandidates(config: ModelConfig): Float32Array[] {
  const hs = headSize(config), f = Math.fround;
  const plain = new Float32Array(hs / 2).map((_, j) => f(1 / f(Math.pow(config.ropeTheta, f((2 * j) / hs)))));
  if (!config.ropeScaling) return [plain];
  const scaled = plain.slice();
  scaleInverseFrequencies(scaled, config.ropeScaling);
  return [plain, scaled];
}

const INV_FREQ = /^model\.layers\.(\d+)\.self_attn\.rotary_emb\.inv_freq$/;

/**
 * Loads a Hugging Face model folder. Throws a RemaxInputError naming the file and the tensor or field for anything
 * wrong with it, before any float32 tensor is allocated.
 */
export async function loadHfModel(files: ModelFileSet, options: HfLoadOptions = {}): Promise<LoadedModel> {
  const at = (f: string): string => join(files.source, f);
  const names = files.names();

  const configBytes = names.includes('config.json') ? await files.read('config.json') : undefined;
  requireInput(configBytes,
    `${files.source}: no config.json; a Hugging Face model folder has config.json beside model.safetensors (or its shards)`);
  const rawConfig = parseJsonObject(configBytes, at('config.json'));
  const hf = parseHfConfig(rawConfig, { context: options.context, source: at('config.json') });
  const config = hf.config;

  // The small files: kept for export (tokenizer files, generation_config.json, chat template, …).
  const smallFiles: Record<string, Uint8Array> = {};
  for (const name of names) {
    if (isWeightFile(name) || ((await files.size(name)) ?? 0) > MAX_SMALL_FILE_BYTES) continue;
    const bytes = await files.read(name);
    if (bytes) smallFiles[name] = bytes;
  }
  const stopIds = stopIdsOf(hf, smallFiles['generation_config.json'], at('generation_config.json'), config.vocabSize, at('config.json'));

  // Headers of every weight file, checked against the file sizes. Only the last file read is kept in memory.
  const plan = await planWeights(files, names);
  const headers = new Map<string, SafetensorsHeader>();
  let held: { shard: string; bytes: Uint8Array } | undefined;
  for (const shard of plan.shards) {
    held = undefined; // let the previous shard go before reading the next
    const bytes = await files.read(shard);
    requireInput(bytes, `${at(shard)}: listed in ${files.source} but could not be read`);
    headers.set(shard, readSafetensorsHeader(bytes, at(shard)));
    held = { shard, bytes };
  }

  // Where each stored tensor is; the index must agree with the shards.
  const found = new Map<string, { shard: string; entry: SafetensorsEntry }>();
  for (const [shard, header] of headers) {
    for (const entry of header.tensors) {
      const previous = found.get(entry.name);
      requireInput(!previous,
        `${at(shard)}: tensor ${entry.name} is also stored in ${previous?.shard}; each tensor must be stored once`);
      if (plan.weightMap) {
        const mapped = plan.weightMap.get(entry.name);
        requireInput(mapped === shard,
          `${at(shard)}: tensor ${entry.name} is stored here but ${WEIGHTS_INDEX_NAME}'s weight_map ` +
            (mapped === undefined ? 'does not list it' : `puts it in ${mapped}`) + '; the index does not match the shards');
      }
      found.set(entry.name, { shard, entry });
    }
  }
  if (plan.weightMap) {
    for (const [tensor, shard] of plan.weightMap) {
      requireInput(found.get(tensor)?.shard === shard,
        `${at(WEIGHTS_INDEX_NAME)}: weight_map puts tensor ${tensor} in ${shard}, but ${at(shard)} has no tensor of that name; ` +
          'the index does not match the shards');
    }
  }

  // Every tensor the config implies, with the shape it implies; nothing else.
  const sizes = `config.json's sizes (hidden_size ${config.dim}, intermediate_size ${config.hiddenDim}, ` +
    `num_attention_heads ${config.nHeads}, num_key_value_heads ${config.nKvHeads}, head_dim ${headSize(config)}, vocab_size ${config.vocabSize})`;
  const checkShape = (name: string, shard: string, shape: number[], expected: number[]): void => {
    requireInput(shape.length === expected.length && shape.every((d, i) => d === expected[i]),
      `${at(shard)}: tensor ${name} has shape [${shape}] but ${sizes} need [${expected}]; the weights do not belong to this config.json`);
  };
  // More tensors expected than stored (a corrupt num_hidden_layers may ask for millions): a first missing one is
  // among the tensors of the first ⌊stored / perLayer⌋ + 1 layers, so only those are listed.
  const perLayer = 9 + (config.qkvBias ? 3 : 0) + (config.qkNorm ? 2 : 0);
  const expectedCount = 2 + (config.sharedClassifier ? 0 : 1) + (config.scoreHead ? 1 : 0) + config.nLayers * perLayer;
  const listedLayers = expectedCount > found.size ? Math.min(config.nLayers, Math.floor(found.size / perLayer) + 1) : config.nLayers;
  const specs = hfTensorSpecs({ ...config, nLayers: listedLayers });
  const expectedNames = new Set(specs.map((s) => s.name));
  for (const spec of specs) {
    const where = found.get(spec.name);
    if (!where) {
      const hint = spec.name === 'lm_head.weight'
        ? ' (config.json says tie_word_embeddings false, so the classifier must be stored; if it is the embedding, set tie_word_embeddings true)'
        : /_proj\.bias$/.test(spec.name) ? ` (${hf.architecture} has q/k/v biases)`
        : /_norm\.weight$/.test(spec.name) && spec.name.includes('self_attn') ? ` (${hf.architecture} has q/k norms)` : '';
      throw new RemaxInputError(`${plan.describe}: tensor ${spec.name} is missing${hint}; the folder is incomplete or not a ${hf.architecture} of this config.json`);
    }
    checkShape(spec.name, where.shard, where.entry.shape, spec.shape);
  }
  if (listedLayers !== config.nLayers) throw new Error('loadHfModel: a missing tensor went unreported'); // see above
  let tiedHead: { shard: string; entry: SafetensorsEntry } | undefined;
  const invFreqs: { shard: string; entry: SafetensorsEntry }[] = [];
  for (const [name, where] of found) {
    if (expectedNames.has(name)) continue;
    if (name === 'lm_head.weight' && config.sharedClassifier && !config.scoreHead) {
      checkShape(name, where.shard, where.entry.shape, [config.vocabSize, config.dim]);
      tiedHead = where; // accepted only if it equals the embedding (checked below)
      continue;
    }
    const layer = INV_FREQ.exec(name);
    if (layer && Number(layer[1]) < config.nLayers) {
      checkShape(name, where.shard, where.entry.shape, [headSize(config) / 2]);
      invFreqs.push(where); // accepted only if it holds the frequencies config.json implies (checked below)
      continue;
    }
    throw new RemaxInputError(
      `${at(where.shard)}: tensor ${name} (shape [${where.entry.shape}]) is not a weight of a ${hf.architecture} with this ` +
        `config.json (${config.nLayers} layers${config.sharedClassifier ? ', tied embeddings' : ''}); the engine would ignore it, ` +
        `so the model cannot be loaded as it is (supported: ${HF_ARCHITECTURES.join(', ')})`);
  }

  // Everything is checked: allocate the engine's tensors and fill them, the held shard first.
  const weights: Partial<Record<WeightName, Float32Array>> = {};
  for (const { name, shape } of weightShapes(config)) weights[name] = new Float32Array(elementCount(shape));
  const specsByShard = new Map<string, HfTensorSpec[]>();
  for (const spec of specs) {
    const shard = found.get(spec.name)!.shard;
    if (!specsByShard.has(shard)) specsByShard.set(shard, []);
    specsByShard.get(shard)!.push(spec);
  }
  const dtypes = new Map<SafetensorsDtype, number>();
  const typesOf = new Map<WeightName, Set<SafetensorsDtype>>(); // each engine tensor's stored types
  let storedHead: Float32Array | undefined;
  const order = held ? [held.shard, ...plan.shards.filter((s) => s !== held!.shard)] : plan.shards;
  for (const shard of order) {
    const header = headers.get(shard)!;
    let bytes: Uint8Array | undefined;
    if (held?.shard === shard) bytes = held.bytes;
    else bytes = await files.read(shard);
    held = undefined;
    requireInput(bytes && bytes.length === header.fileSize,
      `${at(shard)}: the file changed while it was being read (${header.fileSize} bytes, now ${bytes?.length ?? 'gone'}); load again`);
    for (const spec of specsByShard.get(shard) ?? []) {
      const { entry } = found.get(spec.name)!;
      dtypes.set(entry.dtype, (dtypes.get(entry.dtype) ?? 0) + entry.end - entry.begin);
      const n = elementCount(spec.shape);
      if (!typesOf.has(spec.weight)) typesOf.set(spec.weight, new Set());
      typesOf.get(spec.weight)!.add(entry.dtype);
      const target = weights[spec.weight]!.subarray(spec.offset, spec.offset + n);
      if (spec.permute) {
        const p = spec.permute;
        target.set(halfToInterleaved(decodeSafetensor(bytes, header, entry), p.heads, p.headSize, p.cols));
      } else {
        decodeSafetensor(bytes, header, entry, target);
      }
    }
    if (tiedHead?.shard === shard) storedHead = decodeSafetensor(bytes, header, tiedHead.entry);
    for (const where of invFreqs) {
      if (where.shard !== shard) continue;
      const stored = decodeSafetensor(bytes, header, where.entry);
      const matches = invFreqCandidates(config).some((c) => c.every((v, j) => Math.abs(stored[j]! - v) <= 1e-5 * Math.abs(v)));
      requireInput(matches,
        `${at(shard)}: tensor ${where.entry.name} holds RoPE frequencies [${Array.from(stored.subarray(0, 4), (v) => v.toPrecision(6))}…] ` +
          `that config.json's rope_theta ${config.ropeTheta}${config.ropeScaling ? ' and rope_scaling' : ''} do not give; the model cannot be run as stored`);
    }
  }
  if (storedHead) {
    const a = new Uint32Array(storedHead.buffer), b = new Uint32Array(weights.token_embedding_table!.buffer);
    let firstDiff = -1;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) { firstDiff = i; break; }
    requireInput(firstDiff < 0,
      `${at(tiedHead!.shard)}: tensor lm_head.weight is stored and differs from model.embed_tokens.weight (first at row ` +
        `${Math.floor(firstDiff / config.dim)}, column ${firstDiff % config.dim}) but config.json says tie_word_embeddings true; ` +
        'set tie_word_embeddings false to use the stored classifier');
  }

  const origin: HfOrigin = { kind: 'hf', config: rawConfig, files: smallFiles };
  const model: LoadedModel = {
    config, weights: weights as ModelWeights, format: 'hf', architecture: hf.className,
    dtype: [...dtypes].sort((x, y) => y[1] - x[1]).map(([d]) => d).join(' + '), origin,
  };
  if (stopIds) model.stopIds = stopIds;
  // Matrices stored as one 16-bit type throughout: an engine can keep them so (weight-types.ts).
  const stored: StoredTensors = {};
  for (const [name, types] of typesOf) {
    const [type] = types;
    if (types.size === 1 && (type === 'BF16' || type === 'F16') && MATRIX_WEIGHTS.includes(name)) stored[name] = { type };
  }
  if (Object.keys(stored).length > 0) model.stored = stored;
  return model;
}

/** generation_config.json's eos_token_id (an int or a list), else config.json's; checked against the vocabulary. */
function stopIdsOf(hf: HfModelConfig, generation: Uint8Array | undefined, genSource: string, vocabSize: number, configSource: string): number[] | undefined {
  let ids = hf.eosTokenIds, source = configSource;
  if (generation) {
    const fromGen = tokenIdList(parseJsonObject(generation, genSource), 'eos_token_id', genSource);
    if (fromGen) [ids, source] = [fromGen, genSource];
  }
  if (!ids) return undefined;
  for (const id of ids) {
    requireInput(id < vocabSize, `${source}: eos_token_id ${id} is not below vocab_size ${vocabSize}; the model can never produce it`);
  }
  return ids;
}

/** bos_token_id and eos_token_id of an HF origin: generation_config.json's, else config.json's. */
export function hfSpecialTokens(origin: HfOrigin): { bosTokenId?: number; eosTokenIds?: number[] } {
  const out: { bosTokenId?: number; eosTokenIds?: number[] } = {};
  const sources: [Record<string, unknown>, string][] = [];
  const gen = origin.files['generation_config.json'];
  if (gen) sources.push([parseJsonObject(gen, 'generation_config.json'), 'generation_config.json']);
  sources.push([origin.config, 'config.json']);
  for (const [json, source] of sources) {
    const bos = tokenIdList(json, 'bos_token_id', source);
    if (out.bosTokenId === undefined && bos?.length === 1) out.bosTokenId = bos[0];
    const eos = tokenIdList(json, 'eos_token_id', source);
    if (out.eosTokenIds === undefined && eos) out.eosTokenIds = eos;
  }
  return out;
}

/** BOS and EOS as best known for a model from any format (for a config.json / generation_config.json written fresh). */
function specialTokensOf(model: LoadedModel): { bosTokenId?: number; eosTokenIds?: number[] } {
  if (model.origin?.kind === 'hf') {
    const ids = hfSpecialTokens(model.origin);
    if (model.stopIds) ids.eosTokenIds = model.stopIds;
    return ids;
  }
  if (model.origin?.kind === 'gguf') {
    const bos = model.origin.metadata.get('tokenizer.ggml.bos_token_id');
    const out: { bosTokenId?: number; eosTokenIds?: number[] } = {};
    if (typeof bos === 'number' || typeof bos === 'bigint') out.bosTokenId = Number(bos);
    if (model.stopIds) out.eosTokenIds = model.stopIds;
    return out;
  }
  if (model.format.startsWith('llama2c')) return { bosTokenId: 1, eosTokenIds: model.stopIds ?? [2] }; // llama2.c's BOS 1, EOS 2
  return model.stopIds ? { eosTokenIds: model.stopIds } : {};
}

/** The pad token's id: the original config.json's pad_token_id, else the tokenizer's pad_token looked up in its added tokens. */
function padTokenId(model: LoadedModel): number | undefined {
  if (model.origin?.kind === 'hf') {
    const id = tokenIdList(model.origin.config, 'pad_token_id', 'config.json')?.[0];
    if (id !== undefined) return id;
  }
  if (!(model.tokenizer instanceof HfTokenizer)) return undefined;
  const pad = model.tokenizer.config.pad_token;
  const content = typeof pad === 'string' ? pad : isPlainObject(pad) && typeof pad.content === 'string' ? pad.content : undefined;
  const added = model.tokenizer.json.added_tokens;
  if (content === undefined || !Array.isArray(added)) return undefined;
  const token = added.find((t) => isPlainObject(t) && t.content === content && Number.isSafeInteger(t.id));
  return token ? (token as { id: number }).id : undefined;
}

/** A ModelConfig with only the fields that decide the model, for comparing two (seqLen aside). */
function essentials(c: ModelConfig): string {
  return JSON.stringify([
    c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.vocabSize, c.sharedClassifier, c.normEps, c.ropeTheta,
    headSize(c), !!c.qkvBias, !!c.qkNorm, c.ropeScaling ?? null, !!c.scoreHead,
  ]);
}

/** The header metadata transformers writes (and checks for) in every weights file. */
export const SAFETENSORS_METADATA = { format: 'pt' };

/**
 * How transformers' save_pretrained splits tensors (in order) into files: one model.safetensors when they fit in
 * `maxShardBytes` (default 5·10⁹), else model-0000i-of-0000n.safetensors files filled in order, a tensor starting a
 * new file when it would overflow the current one, with the index naming each tensor's file.
 */
export function planShards<T extends { name: string; shape: number[] }>(tensors: T[], dtype: SafetensorsDtype,
  maxShardBytes = DEFAULT_MAX_SHARD_BYTES): { shards: { name: string; tensors: T[] }[]; index?: Uint8Array } {
  const groups: T[][] = [[]];
  let shardBytes = 0, total = 0;
  for (const t of tensors) {
    const size = safetensorByteLength(t.shape, dtype);
    if (shardBytes > 0 && shardBytes + size > maxShardBytes) {
      groups.push([]);
      shardBytes = 0;
    }
    groups[groups.length - 1]!.push(t);
    shardBytes += size;
    total += size;
  }
  if (groups.length === 1) return { shards: [{ name: SINGLE_WEIGHTS_NAME, tensors: groups[0]! }] };
  const n = String(groups.length).padStart(5, '0');
  const shards = groups.map((part, i) => ({ name: `model-${String(i + 1).padStart(5, '0')}-of-${n}.safetensors`, tensors: part }));
  const weightMap: Record<string, string> = {};
  for (const shard of shards) for (const t of shard.tensors) weightMap[t.name] = shard.name;
  const index = new TextEncoder().encode(configJsonText({ metadata: { total_size: total }, weight_map: weightMap }));
  return { shards, index };
}

/**
 * config.json saying the weights are stored as `dtype`: torch_dtype (and dtype, transformers ≥ 4.56's name, when the
 * file uses it) set; everything else as it was.
 */
export function withTorchDtype(configJson: Record<string, unknown>, dtype: 'F32' | 'BF16' | 'F16'): Record<string, unknown> {
  const out = { ...configJson };
  if ('dtype' in out) out.dtype = TORCH_DTYPES[dtype];
  if ('torch_dtype' in out || !('dtype' in out)) out.torch_dtype = TORCH_DTYPES[dtype];
  return out;
}

/** generation_config.json as transformers derives it from a config (GenerationConfig.from_model_config), or none without ids. */
export function generationConfigFrom(ids: { bosTokenId?: number; eosTokenIds?: number[] }): Uint8Array | undefined {
  if (ids.bosTokenId === undefined && !ids.eosTokenIds?.length) return undefined;
  const gen: Record<string, unknown> = { _from_model_config: true };
  if (ids.bosTokenId !== undefined) gen.bos_token_id = ids.bosTokenId;
  if (ids.eosTokenIds?.length) gen.eos_token_id = ids.eosTokenIds.length === 1 ? ids.eosTokenIds[0] : ids.eosTokenIds;
  return new TextEncoder().encode(configJsonText(gen));
}

export interface HfExportOptions {
  /** How the tensors are stored. */
  dtype: 'F32' | 'BF16' | 'F16';
  /** Split the weights into shards of at most this many bytes (+ index) past it; default 5·10⁹ as transformers. */
  maxShardBytes?: number;
}

/**
 * The files of a Hugging Face folder holding `model`: config.json (the original's with torch_dtype updated when the
 * model came from one, else written from its ModelConfig), model.safetensors (or shards and their index), the
 * generation_config.json and the original's tokenizer and other small files.
 */
export function hfModelFiles(model: LoadedModel, options: HfExportOptions): Record<string, Uint8Array> {
  const { dtype } = options;
  requireInput(dtype === 'F32' || dtype === 'BF16' || dtype === 'F16', `dtype is ${show(dtype)}; it must be F32, BF16 or F16`);
  const config = model.config;
  const encoder = new TextEncoder();
  const out: Record<string, Uint8Array> = {};
  const hfOrigin = model.origin?.kind === 'hf' ? model.origin : undefined;
  const ids = specialTokensOf(model);

  // config.json: the original when it still describes this model.
  let configJson: Record<string, unknown> | undefined;
  if (hfOrigin) {
    let same = false;
    try {
      same = essentials(parseHfConfig(hfOrigin.config, { context: config.seqLen }).config) === essentials(config);
    } catch (error) {
      if (!(error instanceof RemaxInputError)) throw error;
    }
    if (same) configJson = withTorchDtype(hfOrigin.config, dtype);
  }
  // A reward model names its pad token (how transformers finds a padded row's last token) when it is known.
  const pad = config.scoreHead ? padTokenId(model) : undefined;
  configJson ??= hfConfigFromModel(config, { dtype, ...ids, ...(pad !== undefined ? { padTokenId: pad } : {}) });
  out['config.json'] = encoder.encode(configJsonText(configJson));

  // Weights, sharded as transformers does when they exceed maxShardBytes.
  const tensors: SafetensorsTensor[] = hfTensors(config, model.weights).map((t) => ({ ...t, dtype }));
  const plan = planShards(tensors, dtype, options.maxShardBytes);
  for (const shard of plan.shards) out[shard.name] = serializeSafetensors(shard.tensors, SAFETENSORS_METADATA);
  if (plan.index) out[WEIGHTS_INDEX_NAME] = plan.index;

  // generation_config.json and the other small files of the original.
  for (const [name, bytes] of Object.entries(hfOrigin?.files ?? {})) {
    if (!isWeightFile(name)) out[name] = bytes;
  }
  if (!out['generation_config.json']) {
    const gen = generationConfigFrom(ids);
    if (gen) out['generation_config.json'] = gen;
  }
  return out;
}
