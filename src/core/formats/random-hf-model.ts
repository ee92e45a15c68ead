/**
 * A randomly initialised Hugging Face folder at the shapes of any config.json the engine runs (remax init --like):
 * the plan of its files, then the bytes of each weights file as a stream of chunks, so that a model of gigabytes is
 * written with a few MiB of memory (never the whole model in float32).
 *
 * Values as transformers' _init_weights draws them for LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM /
 * Qwen3ForCausalLM: every projection, the embedding and an untied lm_head from normal(0, initializer_range) (the
 * embedding's pad_token_id row zero, as nn.Embedding's padding_idx), RMSNorm weights 1, biases 0. One seeded Prng
 * stream (prng.ts: the same bits on every engine) runs through the tensors in their order, so the values do not
 * depend on how the tensors are split into shards.
 */
import { elementCount, type ModelConfig } from '../config';
import { RemaxInputError, preview, requireInput } from '../errors';
import { Prng } from '../prng';
import { configJsonText, parseHfConfig, type HfArchitecture } from './hf-config';
import {
  DEFAULT_MAX_SHARD_BYTES, SAFETENSORS_METADATA, WEIGHTS_INDEX_NAME, generationConfigFrom, hfTensorSpecs, planShards,
  withTorchDtype,
} from './hf-model';
import { encodeSafetensorValues, safetensorByteLength, safetensorsHeaderBytes, type SafetensorsDtype } from './safetensors';

/** Tensors a folder may have: ~150 header bytes each stays far below safetensors' 100 MB header limit. */
const MAX_TENSORS = 100_000;

/** transformers' PretrainedConfig default for initializer_range. */
export const DEFAULT_INITIALIZER_RANGE = 0.02;

export type RandomInit = 'normal' | 'ones' | 'zeros';

export interface RandomTensor {
  name: string;
  shape: number[];
  init: RandomInit;
  /** A row (of a [rows, cols] tensor) set to zero after drawing: the embedding's padding row. */
  zeroRow?: number;
}

export interface RandomWeightsFile {
  name: string;
  /** The header (length, JSON, padding): the file's first bytes. */
  header: Uint8Array;
  tensors: RandomTensor[];
  byteLength: number;
}

export interface RandomHfPlan {
  architecture: HfArchitecture;
  config: ModelConfig;
  dtype: SafetensorsDtype;
  /** The std of the normal draws. */
  std: number;
  parameterCount: number;
  /** config.json, generation_config.json (when config.json names BOS or EOS) and the index of a sharded folder. */
  smallFiles: Record<string, Uint8Array>;
  weightFiles: RandomWeightsFile[];
  /** Every file's bytes together. */
  totalBytes: number;
}

export interface RandomHfOptions {
  dtype: SafetensorsDtype;
  /** What messages call config.json. */
  source: string;
  /** Split the weights past this many bytes a file (default transformers' 5·10⁹). */
  maxShardBytes?: number;
}

/**
 * The files of a random model shaped as `configJson` says. Every problem with the config is a RemaxInputError
 * naming `source`, the field and its value (parseHfConfig's checks, plus initializer_range and pad_token_id).
 */
export function planRandomHfModel(configJson: Record<string, unknown>, options: RandomHfOptions): RandomHfPlan {
  const { dtype, source } = options;
  // The context decides nothing in the weights: 1 accepts a sliding window of any length (the engine then runs the
  // model with a context within the window).
  const hf = parseHfConfig(configJson, { source, context: 1 });
  const config = hf.config;
  const std = configJson.initializer_range ?? DEFAULT_INITIALIZER_RANGE;
  requireInput(typeof std === 'number' && Number.isFinite(std) && std > 0 && std < 10,
    `${source}: initializer_range is ${preview(std)}; it must be a positive number (the std of the initial weights, transformers' default 0.02)`);
  const pad = configJson.pad_token_id;
  let padRow: number | undefined;
  if (pad !== undefined && pad !== null) {
    requireInput(Number.isSafeInteger(pad) && (pad as number) >= 0 && (pad as number) < config.vocabSize,
      `${source}: pad_token_id is ${preview(pad)}; it must be a token id below vocab_size ${config.vocabSize}, or null`);
    padRow = pad as number;
  }

  // A corrupt num_hidden_layers (up to 2^24 passes parseHfConfig) would list more tensors than a header can hold.
  const perLayer = 9 + (config.qkvBias ? 3 : 0) + (config.qkNorm ? 2 : 0);
  requireInput(config.nLayers * perLayer <= MAX_TENSORS,
    `${source}: num_hidden_layers ${config.nLayers} makes ${config.nLayers * perLayer} tensors, more than the ${MAX_TENSORS} ` +
      'a safetensors header is made to list; no real model has that many layers: check the value');

  const tensors: RandomTensor[] = hfTensorSpecs(config).map(({ name, shape, weight }) => {
    const init: RandomInit = weight.startsWith('rms_') ? 'ones' : weight === 'bq' || weight === 'bk' || weight === 'bv' ? 'zeros' : 'normal';
    const t: RandomTensor = { name, shape, init };
    if (weight === 'token_embedding_table' && padRow !== undefined) t.zeroRow = padRow;
    return t;
  });
  const shards = planShards(tensors, dtype, options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES);
  const weightFiles = shards.shards.map(({ name, tensors: part }) => {
    const { bytes, dataLength } = safetensorsHeaderBytes(part.map((t) => ({ name: t.name, shape: t.shape, dtype })), SAFETENSORS_METADATA);
    return { name, header: bytes, tensors: part, byteLength: bytes.length + dataLength };
  });

  const encoder = new TextEncoder();
  const smallFiles: Record<string, Uint8Array> = { 'config.json': encoder.encode(configJsonText(withTorchDtype(configJson, dtype))) };
  const generation = generationConfigFrom({
    ...(hf.bosTokenId !== undefined ? { bosTokenId: hf.bosTokenId } : {}), ...(hf.eosTokenIds ? { eosTokenIds: hf.eosTokenIds } : {}),
  });
  if (generation) smallFiles['generation_config.json'] = generation;
  if (shards.index) smallFiles[WEIGHTS_INDEX_NAME] = shards.index;
  for (const id of hf.eosTokenIds ?? []) {
    requireInput(id < config.vocabSize, `${source}: eos_token_id ${id} is not below vocab_size ${config.vocabSize}; the model could never produce it`);
  }

  const parameterCount = tensors.reduce((sum, t) => sum + elementCount(t.shape), 0);
  const totalBytes = weightFiles.reduce((sum, f) => sum + f.byteLength, 0) + Object.values(smallFiles).reduce((sum, b) => sum + b.length, 0);
  return { architecture: hf.architecture, config, dtype, std, parameterCount, smallFiles, weightFiles, totalBytes };
}

/** Values drawn (and bytes written) per step: 4 MiB of float32 scratch. */
const CHUNK_VALUES = 1 << 20;

/**
 * The bytes of one weights file of `plan`, in order, as chunks (each valid until the next is asked for: the
 * buffers are reused). `prng` carries the stream from file to file: give the files in plan order to one Prng.
 */
export function* randomWeightsFileChunks(plan: RandomHfPlan, file: RandomWeightsFile, prng: Prng): Generator<Uint8Array> {
  yield file.header;
  const bytesPerValue = safetensorByteLength([1], plan.dtype);
  const values = new Float32Array(CHUNK_VALUES);
  const out = new Uint8Array(CHUNK_VALUES * bytesPerValue);
  for (const tensor of file.tensors) {
    const n = elementCount(tensor.shape);
    const cols = tensor.shape[tensor.shape.length - 1]!;
    const zeroFrom = tensor.zeroRow === undefined ? -1 : tensor.zeroRow * cols, zeroTo = zeroFrom + cols;
    for (let done = 0; done < n; done += CHUNK_VALUES) {
      const count = Math.min(CHUNK_VALUES, n - done);
      const chunk = values.subarray(0, count);
      if (tensor.init === 'normal') prng.fillNormal(chunk, plan.std);
      else chunk.fill(tensor.init === 'ones' ? 1 : 0);
      // The padding row is drawn and then zeroed, so the stream after it is the same with or without pad_token_id.
      if (zeroFrom >= 0 && zeroFrom < done + count && zeroTo > done) chunk.fill(0, Math.max(0, zeroFrom - done), Math.min(count, zeroTo - done));
      encodeSafetensorValues(chunk, plan.dtype, out, 0);
      yield out.subarray(0, count * bytesPerValue);
    }
  }
}

/** The --dtype words a random folder takes, and the safetensors dtype of each. */
export const RANDOM_HF_DTYPES: Record<string, SafetensorsDtype> = { bf16: 'BF16', f16: 'F16', f32: 'F32' };

/** The safetensors dtype of a --dtype word (bf16, f16, f32; any case). */
export function randomHfDtype(word: string, flag = '--dtype'): SafetensorsDtype {
  const dtype = RANDOM_HF_DTYPES[word.toLowerCase()];
  if (!dtype) throw new RemaxInputError(`${flag} ${word}: a Hugging Face folder stores ${Object.keys(RANDOM_HF_DTYPES).join(', ')}; give one of them`);
  return dtype;
}
