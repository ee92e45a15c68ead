// Models and tokenizers from paths, and models written back to paths, for the commands (Node, Deno, Bun): the
// core's loaders over files, and each format's files written atomically.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadModel, loadTokenizerFile, describeModel, type ModelLoadOptions } from '../core/formats/load';
import type { LoadedModel } from '../core/formats/model';
export { modelFiles, formatOf, SAVE_FORMATS, type SaveFormat } from '../core/formats/save';
import { SAVE_FORMATS, formatOf, type SaveFormat } from '../core/formats/save';
import type { TextTokenizer } from '../core/tokenizers/types';
import type { RemaxEngine } from '../core/engine';
import { RemaxInputError } from '../core/errors';
import { QUANTIZE_DTYPES, checkWeightsDtype, type WeightsDtype } from '../core/weight-types';
import { elementCount, weightShapes } from '../core/config';
import { commitJournal, completeWrite, readInputFile, writeFilesAtomic, makeFolder } from './files';
import { modelFileSet } from './model-files';
import { numberFlag, optionalString, type FlagSpec, type Flags } from './args';
import { SCORE_SIDECAR_SUFFIX, attachScoreSidecar } from '../core/score-head';

/** A model from any format at `input` (a folder, its config.json or a .safetensors in it, a .gguf, a llama2.c file). */
export async function loadModelFromPath(input: string, flag: string, options: ModelLoadOptions = {}): Promise<LoadedModel> {
  completeWrite(commitJournal(input), flag); // a checkpoint a crash interrupted after its commit point is finished first
  const model = await loadModel(modelFileSet(input, flag), options);
  // A llama2.c reward model: the checkpoint and its head beside it (score-head.ts).
  const sidecar = input.replace(/[/\\]+$/, '') + SCORE_SIDECAR_SUFFIX;
  if (model.format.startsWith('llama2c') && existsSync(sidecar)) return attachScoreSidecar(model, readInputFile(sidecar, flag), sidecar);
  return model;
}

/**
 * A tokenizer at `input`: a tokenizer.json (with the tokenizer_config.json beside it), a folder holding one, a
 * GGUF file's vocabulary, or llama2.c's tokenizer.bin.
 */
export function loadTokenizerFromPath(input: string, flag: string): TextTokenizer {
  const file = existsSync(input) && statSync(input).isDirectory() ? path.join(input, 'tokenizer.json') : input;
  if (file !== input && !existsSync(file)) throw new RemaxInputError(`${flag} ${input} is a folder without a tokenizer.json`);
  const config = path.join(path.dirname(file), 'tokenizer_config.json');
  const bytes = readInputFile(file, flag);
  return loadTokenizerFile(bytes, file, existsSync(config) && bytes[0] !== 0x47 ? readInputFile(config, flag) : undefined);
}

/** The line each command prints (on stderr) when it has loaded its model. */
export const loadedLine = (engine: RemaxEngine, source: string): string =>
  `loaded ${describeModel({ ...engine.model, ...(engine.tokenizer ? { tokenizer: engine.tokenizer } : {}) }, engine.parameterCount, source)}` +
  (engine.lora ? `; LoRA rank ${engine.lora.rank}, alpha ${engine.lora.alpha}${engine.lora.dropout > 0 ? `, dropout ${engine.lora.dropout}` : ''} on ` +
    `${engine.lora.targets.join(', ')}: ${engine.trainableParameterCount} trainable values` : '');

/**
 * Writes the files of modelFiles() at `target` (a file, or a folder for a Hugging Face model), together with
 * `extra` files (a training state) beside it, all or none replaced (files.ts: temps first, then renames).
 */
export function writeModel(target: string, files: Record<string, Uint8Array>, flag: string, extra: { path: string; bytes: Uint8Array }[] = []): void {
  const all = [...modelFileEntries(target, files, flag), ...extra];
  writeFilesAtomic(all, flag, all.length > 1 ? commitJournal(target) : undefined);
}

/** The paths of modelFiles() at `target` (creating the folder of a Hugging Face model), to write with writeFilesAtomic. */
export function modelFileEntries(target: string, files: Record<string, Uint8Array>, flag: string): { path: string; bytes: Uint8Array }[] {
  const names = Object.keys(files);
  const isFolder = !names.includes('');
  if (isFolder) makeFolder(target, flag);
  // '+NAME': a sidecar beside a single-file model (a llama2.c reward model's head).
  const where = (name: string) => (isFolder ? path.join(target, name) : name === '' ? target : target + name.slice(1));
  return names.map((name) => ({ path: where(name), bytes: files[name]! }));
}

/** The bytes that identify a saved model's weights (for the training state's hash): its weight files in name order. */
export function weightBytes(files: Record<string, Uint8Array>): Uint8Array[] {
  return Object.keys(files).filter((n) => n === '' || /\.(safetensors|gguf|bin)$/.test(n)).sort().map((n) => files[n]!);
}

/** --context: the context to plan for (Hugging Face and GGUF models), when given. */
export function contextFlag(flags: Flags): { context?: number } {
  return flags.context === undefined ? {} : { context: numberFlag(flags, 'context', 0, { integer: true, min: 2 }) };
}

/** --format: the format to write, default the one the model came in. */
export function formatFlag(flags: Flags, engine: RemaxEngine): SaveFormat {
  const value = optionalString(flags, 'format');
  if (value === undefined) return formatOf(engine.model);
  if (!SAVE_FORMATS.includes(value as SaveFormat)) throw new RemaxInputError(`--format must be one of ${SAVE_FORMATS.join(', ')}, got "${value}"`);
  return value as SaveFormat;
}

/** A list of stop token ids ("1,2"), or "none" for no stop token. */
export function parseStopIds(raw: string, flag = '--stop-ids'): number[] {
  if (raw.trim() === 'none') return [];
  const parts = raw.split(',').map((p) => p.trim());
  const bad = parts.find((p) => !/^\d+$/.test(p));
  if (bad !== undefined) throw new RemaxInputError(`${flag} must be comma-separated token ids like 1,2 (or none); "${bad}" is not one`);
  return parts.map(Number);
}

/** Stop ids must be ids of the model. */
export function checkStopIds(ids: number[] | undefined, vocabSize: number, flag: string): void {
  const bad = ids?.find((id) => id >= vocabSize);
  if (bad !== undefined) throw new RemaxInputError(`${flag}: token id ${bad} is outside the model's vocabulary [0, ${vocabSize})`);
}

/** Where a run folder keeps a model of `format`: model.bin (llama2.c), model.gguf, or the folder model/ (Hugging Face). */
export function runModelPath(dir: string, format: SaveFormat, name: 'model' | 'reference' | 'critic'): string {
  return path.join(dir, format === 'llama2c' ? `${name}.bin` : format === 'gguf' ? `${name}.gguf` : name);
}

/** The policy checkpoint of a run folder, in whichever format the run saves; undefined before its first one. */
export function findRunModel(dir: string): { model: string; format: SaveFormat } | undefined {
  for (const format of SAVE_FORMATS) {
    const model = runModelPath(dir, format, 'model');
    completeWrite(commitJournal(model), '--resume'); // a checkpoint a crash interrupted after its commit point
    if (existsSync(model)) return { model, format };
  }
  return undefined;
}

/** The flags every model command shares, with one wording. */
export const MODEL_FLAG: FlagSpec = { name: 'model', type: 'string', help: 'a Hugging Face folder (or its config.json), a .gguf file or a llama2.c checkpoint' };
export const WEIGHTS_DTYPE_FLAG: FlagSpec = {
  name: 'weights-dtype', type: 'string', default: 'auto',
  help: 'how the weights are kept in memory: auto (as stored: BF16, F16, Q8_0 and Q4_K stay compact, bit-identical results), f32, ' +
    'bf16 (rounded), f16 (what auto keeps compact stays so; every other matrix, e.g. GGUF IQ2_XXS, Q2_K, Q5_K, rounded to IEEE half), ' +
    'or q8_0 / q4_k (as --quantize)',
};
export const QUANTIZE_HELP = 'quantize every matrix at load as ggml does (lossy): q8_0 (8.5 bits a weight) or q4_k (4.5 bits; ' +
  'a matrix whose rows are not a multiple of 256 values gets Q8_0); the same as --weights-dtype q8_0|q4_k';
export const QUANTIZE_FLAG: FlagSpec = { name: 'quantize', type: 'string', help: QUANTIZE_HELP };

/** --weights-dtype (auto, f32, bf16, f16, q8_0, q4_k) or --quantize (q8_0, q4_k): the engine's weightsDtype. */
export function weightsDtypeFlag(flags: Flags): WeightsDtype {
  return weightsDtypeOf(optionalString(flags, 'weights-dtype'), optionalString(flags, 'quantize')) ?? 'auto';
}

/** The weights dtype that --weights-dtype and --quantize ask for together (undefined: neither given). */
export function weightsDtypeOf(weightsDtype: string | undefined, quantize: string | undefined): WeightsDtype | undefined {
  if (quantize === undefined) return weightsDtype === undefined ? undefined : checkWeightsDtype(weightsDtype, '--weights-dtype');
  if (!QUANTIZE_DTYPES.includes(quantize as WeightsDtype)) {
    throw new RemaxInputError(`--quantize is ${JSON.stringify(quantize)}; it must be ${QUANTIZE_DTYPES.join(' or ')} (for bf16 or f16 use --weights-dtype)`);
  }
  if (weightsDtype !== undefined && weightsDtype !== quantize) {
    throw new RemaxInputError(`--quantize ${quantize} and --weights-dtype ${weightsDtype} disagree: give one of them`);
  }
  return quantize as WeightsDtype;
}

/** "BF16 weights, 19.4 MiB": how the engine holds its matrices (the dominant type first). */
export function heldWeights(engine: RemaxEngine): string {
  const counts = new Map<string, number>();
  for (const { name, shape } of weightShapes(engine.config)) {
    const type = engine.weightTypes[name] ?? 'F32';
    counts.set(type, (counts.get(type) ?? 0) + elementCount(shape));
  }
  const types = [...counts].sort((a, b) => b[1] - a[1]).map(([t]) => t).join(' + ');
  return `${types} weights, ${(engine.weightBytes / 2 ** 20).toFixed(1)} MiB`;
}

export const CONTEXT_FLAG: FlagSpec = { name: 'context', type: 'string', help: 'context length to plan for (Hugging Face and GGUF models)', default: "2048, at most the model's" };
