// Every model and tokenizer input, whatever its format, detected from its content (never its extension): a
// Hugging Face folder (config.json + safetensors + tokenizer files), a GGUF file (with its vocabulary), a
// llama2.c checkpoint; tokenizers as tokenizer.json, a GGUF's vocabulary or llama2.c's tokenizer.bin.
import { RemaxInputError, requireInput } from '../errors';
import { parseCheckpoint } from './llama2c';
import { hfTensorSpecs, loadHfModel } from './hf-model';
import { loadGguf } from './gguf-model';
import { parseGguf } from './gguf';
import type { LoadedModel, ModelFileSet } from './model';
import { Tokenizer as Llama2cTokenizer } from '../tokenizers/llama2c';
import { tokenizerFromHfFiles } from '../tokenizers/hf-tokenizer';
import { ggufHasTokenizer, tokenizerFromGguf } from '../tokenizers/gguf-vocab';
import { checkTokenizerFitsModel } from '../tokenizers/common';
import type { TextTokenizer } from '../tokenizers/types';
import { elementCount, weightShapes, type ModelConfig, type WeightName } from '../config';

export interface ModelLoadOptions {
  /** The context to plan the KV cache for (Hugging Face and GGUF models; default 2048, at most the model's own). */
  context?: number;
}

export type FileKind = 'gguf' | 'safetensors' | 'json' | 'other';

/** What a file's first bytes say it is: GGUF's magic, a safetensors header length then "{", JSON, or something else. */
export function sniffFile(bytes: Uint8Array): FileKind {
  if (bytes.length >= 4 && bytes[0] === 0x47 && bytes[1] === 0x47 && bytes[2] === 0x55 && bytes[3] === 0x46) return 'gguf';
  if (bytes.length >= 9 && bytes[8] === 0x7b && bytes[6] === 0 && bytes[7] === 0) return 'safetensors'; // u64 length < 2^48, then '{'
  const first = bytes.findIndex((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09 && b !== 0xef && b !== 0xbb && b !== 0xbf);
  if (first >= 0 && bytes[first] === 0x7b) return 'json';
  return 'other';
}

/**
 * Loads the model in `files`: a folder with config.json is a Hugging Face model (its tokenizer.json comes with it);
 * a single GGUF file brings its vocabulary; any other single file is read as a llama2.c checkpoint. A NaN or an
 * infinity in the weights is refused where they reach an engine (RemaxEngine.create, a SIMD pass, naming the file and
 * the tensor); checkWeightsFinite does the same check without an engine.
 */
export async function loadModel(files: ModelFileSet, options: ModelLoadOptions = {}): Promise<LoadedModel> {
  const names = files.names();
  if (names.length !== 1 || names.includes('config.json')) {
    const model = await loadHfModel(files, options);
    const origin = model.origin?.kind === 'hf' ? model.origin : undefined;
    const tokenizerJson = origin?.files['tokenizer.json'];
    if (tokenizerJson) {
      const template = origin!.files['chat_template.jinja'];
      model.tokenizer = tokenizerFromHfFiles(tokenizerJson, origin!.files['tokenizer_config.json'], {
        source: joinPath(files.source, 'tokenizer.json'), extraEosIds: model.stopIds,
        ...(template ? { chatTemplate: new TextDecoder().decode(template) } : {}),
      });
      checkTokenizerFitsModel(model.tokenizer, model.config.vocabSize, files.source);
    }
    return model;
  }
  const bytes = await files.read(names[0]!);
  requireInput(bytes, `cannot read ${files.source}`);
  const kind = sniffFile(bytes);
  if (kind === 'gguf') {
    const model = loadGguf(bytes, files.source, options);
    if (model.origin?.kind === 'gguf' && ggufHasTokenizer(model.origin.metadata)) {
      model.tokenizer = tokenizerFromGguf(model.origin.metadata, files.source);
      checkTokenizerFitsModel(model.tokenizer, model.config.vocabSize, files.source);
    }
    return model;
  }
  requireInput(kind !== 'safetensors',
    `${files.source} is a safetensors file: give the Hugging Face folder it belongs to (with its config.json), or the path of that folder`);
  requireInput(kind !== 'json',
    `${files.source} is a JSON file, not a model: give a Hugging Face model folder (or its config.json inside it), a .gguf file or a llama2.c checkpoint`);
  try {
    return parseCheckpoint(bytes, files.source);
  } catch (error) {
    if (!(error instanceof RemaxInputError)) throw error;
    throw new RemaxInputError(`${error.message}. (It is not a GGUF file either; models are read as a Hugging Face folder, a GGUF file or a llama2.c checkpoint.)`);
  }
}

/**
 * A tokenizer file on its own: a tokenizer.json (with its folder's tokenizer_config.json when given), the vocabulary
 * of a GGUF file, or llama2.c's tokenizer.bin.
 */
export function loadTokenizerFile(bytes: Uint8Array, source: string, tokenizerConfig?: Uint8Array): TextTokenizer {
  const kind = sniffFile(bytes);
  if (kind === 'json') return tokenizerFromHfFiles(bytes, tokenizerConfig, { source });
  if (kind === 'gguf') return tokenizerFromGguf(parseGguf(bytes, source).metadata, source);
  return Llama2cTokenizer.fromBytes(bytes, source);
}

/** Throws unless `tokenizer` can serve a model of `vocabSize` rows: a llama2.c tokenizer must match it exactly. */
export function checkTokenizerForModel(tokenizer: TextTokenizer, vocabSize: number, modelSource: string): void {
  if (tokenizer instanceof Llama2cTokenizer) tokenizer.assertFitsModel(vocabSize, modelSource);
  else checkTokenizerFitsModel(tokenizer, vocabSize, modelSource);
}

// ---------------------------------------------------------------------------------------------------------------------
// Non-finite weights. A model with a NaN or an infinity anywhere generates garbage (every logit NaN: token 0 forever)
// and trains on nothing. Every model reaches the engine, which checks its weights once they are in its memory (with
// a SIMD pass: cheap, see RemaxEngine); these functions find and name the culprits, in the model's own terms.

/** The non-finite values of a model's weights, by the model's own tensor names; none: an empty list. */
export interface NonFiniteTensor {
  /** The format's name: "model.layers.3.self_attn.q_proj.weight" (Hugging Face), "blk.3.attn_q.weight" (GGUF), "wq (layer 3)" (llama2.c). */
  name: string;
  count: number;
  /** The first one: NaN, Infinity or -Infinity. */
  first: number;
}

/** GGUF's names of the engine's tensors (llama.cpp's llama, qwen2 and qwen3 layouts); per layer as blk.N.<name>. */
const GGUF_NAMES: Record<WeightName, string> = {
  token_embedding_table: 'token_embd.weight', rms_final_weight: 'output_norm.weight', wcls: 'output.weight',
  rms_att_weight: 'attn_norm.weight', wq: 'attn_q.weight', wk: 'attn_k.weight', wv: 'attn_v.weight', wo: 'attn_output.weight',
  rms_ffn_weight: 'ffn_norm.weight', w1: 'ffn_gate.weight', w2: 'ffn_down.weight', w3: 'ffn_up.weight',
  bq: 'attn_q.bias', bk: 'attn_k.bias', bv: 'attn_v.bias', rms_q_weight: 'attn_q_norm.weight', rms_k_weight: 'attn_k_norm.weight',
  score: 'score.weight', // no GGUF reward models: the Hugging Face name
};
const UNSTACKED: ReadonlySet<WeightName> = new Set(['token_embedding_table', 'rms_final_weight', 'wcls', 'score']);

/** The name the model's format gives element `index` of the engine tensor `weight`. */
function formatTensorName(format: string, weight: WeightName, index: number, perLayer: number,
  hfSpecs: () => Map<string, { name: string; offset: number; count: number }[]>): string {
  const layer = UNSTACKED.has(weight) ? undefined : Math.floor(index / perLayer);
  if (format === 'hf') {
    const spec = hfSpecs().get(weight)?.find((s) => index >= s.offset && index < s.offset + s.count);
    if (spec) return spec.name;
  } else if (format === 'gguf') {
    return layer === undefined ? GGUF_NAMES[weight] : `blk.${layer}.${GGUF_NAMES[weight]}`;
  }
  return layer === undefined ? weight : `${weight} (layer ${layer})`;
}

/**
 * Every tensor of `weights` (the model's, or views of an engine's memory with their layout) that holds a NaN or an
 * infinity, named as `format` names it. A plain scan: the engine runs a SIMD pass first and calls this only to
 * explain a failure.
 */
export function nonFiniteTensors(config: ModelConfig, format: string, weights: Partial<Record<WeightName, ArrayLike<number>>>): NonFiniteTensor[] {
  let specs: Map<string, { name: string; offset: number; count: number }[]> | undefined;
  const hfSpecs = () => {
    if (!specs) {
      specs = new Map();
      for (const s of hfTensorSpecs(config)) {
        const list = specs.get(s.weight) ?? [];
        list.push({ name: s.name, offset: s.offset, count: elementCount(s.shape) });
        specs.set(s.weight, list);
      }
    }
    return specs;
  };
  const found = new Map<string, NonFiniteTensor>();
  for (const { name, shape } of weightShapes(config)) {
    const w = weights[name];
    if (!w) continue;
    const perLayer = UNSTACKED.has(name) ? w.length : elementCount(shape.slice(1));
    for (let i = 0; i < w.length; i++) {
      const v = w[i]!;
      if (v - v === 0) continue; // finite
      const tensor = formatTensorName(format, name, i, perLayer, hfSpecs);
      const entry = found.get(tensor);
      if (entry) entry.count++;
      else found.set(tensor, { name: tensor, count: 1, first: v });
    }
  }
  return [...found.values()];
}

/** The error for a model whose weights are not all finite: the file, the first tensor, how many more. */
export function nonFiniteWeightsMessage(source: string, bad: NonFiniteTensor[]): string {
  const [first, ...rest] = bad;
  const values = (t: NonFiniteTensor) => `${t.count} ${t.count === 1 ? 'value' : 'values'} that ${t.count === 1 ? 'is' : 'are'} not finite`;
  const more = rest.length === 0 ? '' : `; so ${rest.length === 1 ? 'does' : 'do'} ${rest.length} more ${rest.length === 1 ? 'tensor' : 'tensors'} ` +
    `(${rest.slice(0, 3).map((t) => t.name).join(', ')}${rest.length > 3 ? ', …' : ''})`;
  return `${source}: tensor ${first!.name} holds ${values(first!)} (the first is ${first!.first})${more}; ` +
    'a model with a NaN or an infinity generates nothing sensible and cannot be trained: the file is corrupt or was saved ' +
    'from a run that diverged; use another copy of the model';
}

/**
 * Throws a RemaxInputError naming `source` and the tensor unless every weight of `model` is a finite number. A plain
 * JavaScript scan (about 0.4 s for 135M parameters on a 2-core machine): RemaxEngine.create does the same check in its
 * memory with SIMD, so only code that uses a LoadedModel without an engine needs to call this.
 */
export function checkWeightsFinite(model: Pick<LoadedModel, 'config' | 'format' | 'weights'>, source: string): void {
  const bad = nonFiniteTensors(model.config, model.format, model.weights);
  if (bad.length > 0) throw new RemaxInputError(nonFiniteWeightsMessage(source, bad));
}

/** One line for the start of every command: what was loaded (`parameters`: the model's count of weights). */
export function describeModel(model: Omit<LoadedModel, 'weights'>, parameters: number, source: string): string {
  const c = model.config;
  const format = model.format === 'hf' ? 'Hugging Face folder' : model.format === 'gguf' ? 'GGUF' : `llama2.c checkpoint (${model.format.slice(8)})`;
  return `${source}: ${format}, ${model.architecture?.replace(/^gguf /, '') ?? 'Llama'}${model.dtype ? ` ${model.dtype}` : ''}, ` +
    `${(parameters / 1e6).toFixed(parameters < 1e7 ? 2 : 1)}M parameters, ${c.nLayers} layers, dim ${c.dim}, vocab ${c.vocabSize}, context ${c.seqLen}` +
    (model.tokenizer ? `; tokenizer: ${model.tokenizer.description}` : '');
}

const joinPath = (folder: string, name: string): string => (folder === '' || folder.endsWith('/') ? folder + name : `${folder}/${name}`);
