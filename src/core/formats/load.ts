// Every model and tokenizer input, whatever its format, detected from its content (never its extension): a
// Hugging Face folder (config.json + safetensors + tokenizer files), a GGUF file (with its vocabulary), a
// llama2.c checkpoint; tokenizers as tokenizer.json, a GGUF's vocabulary or llama2.c's tokenizer.bin.
import { RemaxInputError, requireInput } from '../errors';
import { parseCheckpoint } from './llama2c';
import { loadHfModel } from './hf-model';
import { loadGguf } from './gguf-model';
import { parseGguf } from './gguf';
import type { LoadedModel, ModelFileSet } from './model';
import { Tokenizer as Llama2cTokenizer } from '../tokenizers/llama2c';
import { tokenizerFromHfFiles } from '../tokenizers/hf-tokenizer';
import { ggufHasTokenizer, tokenizerFromGguf } from '../tokenizers/gguf-vocab';
import { checkTokenizerFitsModel } from '../tokenizers/common';
import type { TextTokenizer } from '../tokenizers/types';

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
 * a single GGUF file brings its vocabulary; any other single file is read as a llama2.c checkpoint.
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

/** One line for the start of every command: what was loaded (`parameters`: the model's count of weights). */
export function describeModel(model: Omit<LoadedModel, 'weights'>, parameters: number, source: string): string {
  const c = model.config;
  const format = model.format === 'hf' ? 'Hugging Face folder' : model.format === 'gguf' ? 'GGUF' : `llama2.c checkpoint (${model.format.slice(8)})`;
  return `${source}: ${format}, ${model.architecture?.replace(/^gguf /, '') ?? 'Llama'}${model.dtype ? ` ${model.dtype}` : ''}, ` +
    `${(parameters / 1e6).toFixed(parameters < 1e7 ? 2 : 1)}M parameters, ${c.nLayers} layers, dim ${c.dim}, vocab ${c.vocabSize}, context ${c.seqLen}` +
    (model.tokenizer ? `; tokenizer: ${model.tokenizer.description}` : '');
}

const joinPath = (folder: string, name: string): string => (folder === '' || folder.endsWith('/') ? folder + name : `${folder}/${name}`);
