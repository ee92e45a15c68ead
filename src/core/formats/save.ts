// Writing a model in any format: the files that hold it, by name (one file, or a Hugging Face folder's files).
import type { LoadedModel } from './model';
import { hfModelFiles } from './hf-model';
import { modelToGguf } from './gguf-model';
import { serializeCheckpoint } from './llama2c';
import { RemaxInputError } from '../errors';
import { ggufTokenizerMetadata } from '../tokenizers/gguf-vocab';
import { HfTokenizer } from '../tokenizers/hf-tokenizer';
import { sentencePieceTokenizerFiles } from '../tokenizers/tokenizer-json';
import type { TextTokenizer } from '../tokenizers/types';
import { SCORE_SIDECAR_SUFFIX, scoreSidecarBytes } from '../score-head';

export const SAVE_FORMATS: readonly SaveFormat[] = ['llama2c', 'hf', 'gguf'];

export type SaveFormat = 'llama2c' | 'hf' | 'gguf';

/** The format a model is written back in by default: the one it came in. */
export const formatOf = (model: Pick<LoadedModel, 'format'>): SaveFormat => (model.format.startsWith('llama2c') ? 'llama2c' : model.format as SaveFormat);

export interface SaveOptions {
  format: SaveFormat;
  /** hf: F32, BF16 or F16; gguf: F32, F16 or Q8_0; llama2c: F32 only. Default F32 (exact: a run resumes bit for bit). */
  dtype?: string;
}

/**
 * The files that hold `model` in `format`, by name within its folder ('' = a single file: the model itself; a name
 * starting with '+' = a sidecar beside that file, at its path + the rest of the name: a llama2.c reward model's head).
 */
export function modelFiles(model: LoadedModel, options: SaveOptions): Record<string, Uint8Array> {
  const dtype = (options.dtype ?? 'F32').toUpperCase();
  if (model.config.scoreHead && options.format === 'gguf') {
    throw new RemaxInputError('a reward model (a scalar head) is written as a Hugging Face folder (--format hf) or in llama2.c form (--format llama2c), not as GGUF');
  }
  if (options.format === 'hf') {
    if (!['F32', 'BF16', 'F16'].includes(dtype)) throw new RemaxInputError(`--dtype ${options.dtype}: a Hugging Face folder stores f32, bf16 or f16`);
    // A model from another format brings its tokenizer as tokenizer.json files (a folder's own are kept as they were).
    const tokenizer = model.origin?.kind !== 'hf' && model.tokenizer ? hfTokenizerFiles(model.tokenizer, model.config.seqLen) : {};
    return { ...hfModelFiles(model, { dtype: dtype as 'F32' | 'BF16' | 'F16' }), ...tokenizer };
  }
  if (options.format === 'gguf') {
    if (!['F32', 'F16', 'Q8_0'].includes(dtype)) throw new RemaxInputError(`--dtype ${options.dtype}: a GGUF file is written as f32, f16 or q8_0`);
    // A GGUF carries its vocabulary in its metadata: a model from another format writes its tokenizer there.
    const extraMetadata = model.origin?.kind !== 'gguf' && model.tokenizer ? ggufTokenizerMetadata(model.tokenizer) : undefined;
    return { '': modelToGguf(model, { type: dtype as 'F32' | 'F16' | 'Q8_0', ...(extraMetadata ? { extraMetadata } : {}) }) };
  }
  if (dtype !== 'F32') throw new RemaxInputError(`--dtype ${options.dtype}: a llama2.c checkpoint stores f32 only`);
  if (model.config.scoreHead) {
    // The transformer as a checkpoint that stores no classifier, the head in its sidecar (score-head.ts).
    const { score: _head, ...weights } = model.weights;
    const base = { ...model, config: { ...model.config, scoreHead: false, sharedClassifier: true }, weights };
    return { '': llama2cBytes(base), [`+${SCORE_SIDECAR_SUFFIX}`]: scoreSidecarBytes(model) };
  }
  return { '': llama2cBytes(model) };
}

/** A llama2.c checkpoint of `model`, or an error naming what llama2.c's format cannot hold. */
function llama2cBytes(model: LoadedModel): Uint8Array {
  const c = model.config;
  const unsupported = [
    c.qkvBias && 'q/k/v biases', c.qkNorm && 'q/k norms', c.ropeScaling && 'RoPE scaling',
    c.headSize !== undefined && c.headSize !== c.dim / c.nHeads && `head size ${c.headSize} ≠ dim/heads`,
    c.ropeTheta !== 10000 && `rope_theta ${c.ropeTheta} (llama2.c: 10000)`, c.normEps !== 1e-5 && Math.fround(c.normEps) !== Math.fround(1e-5) && `RMSNorm eps ${c.normEps} (llama2.c: 1e-5)`,
  ].filter(Boolean);
  if (unsupported.length) {
    throw new RemaxInputError(`this ${model.architecture ?? 'model'} cannot be written as a llama2.c checkpoint, whose format has no ${unsupported.join(', ')}; ` +
      'write it as a Hugging Face folder (--format hf) or GGUF (--format gguf)');
  }
  return serializeCheckpoint(c, model.weights);
}


/** A tokenizer as a Hugging Face folder's files: tokenizer.json and tokenizer_config.json. */
function hfTokenizerFiles(tokenizer: TextTokenizer, modelMaxLength?: number): Record<string, Uint8Array> {
  const encoder = new TextEncoder();
  if (tokenizer instanceof HfTokenizer) {
    return {
      'tokenizer.json': encoder.encode(JSON.stringify(tokenizer.json)),
      'tokenizer_config.json': encoder.encode(JSON.stringify(tokenizer.config, null, 2)),
    };
  }
  // SentencePiece vocabularies (llama2.c's tokenizer.bin, a GGUF's llama vocabulary) as LlamaTokenizerFast files.
  return sentencePieceTokenizerFiles(tokenizer, modelMaxLength === undefined ? {} : { modelMaxLength });
}
