// remax init --like config.json: a random-weight Hugging Face folder at the shapes of a real model (for benchmarks
// and tests at real sizes without downloading weights), written tensor by tensor and atomically (folder-write.ts).
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { RemaxInputError, requireInput } from '../../core/errors';
import { parseJsonObject, tokenIdList } from '../../core/formats/hf-config';
import { planRandomHfModel, randomWeightsFileChunks, type RandomHfPlan } from '../../core/formats/random-hf-model';
import type { SafetensorsDtype } from '../../core/formats/safetensors';
import { WASM_MAX_PAGES, WASM_PAGE_BYTES } from '../../core/arena';
import { Prng } from '../../core/prng';
import { tokenizerFromHfFiles } from '../../core/tokenizers/hf-tokenizer';
import { checkTokenizerFitsModel } from '../../core/tokenizers/common';
import { readInputFile } from '../files';
import { checkFolderTarget, checkFreeSpace, formatBytes, writeFolderAtomic, type FolderFile } from '../folder-write';

/** A Hugging Face tokenizer's files, copied by --tokenizer-from when present (tokenizer.json is required: the engine reads it). */
export const TOKENIZER_FILES = [
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'tokenizer.model',
  'vocab.json', 'merges.txt', 'chat_template.jinja', 'chat_template.json',
] as const;

export interface RandomHfFolderOptions {
  /** A config.json, or a folder holding one (its generation_config.json comes along when there is one). */
  like: string;
  dtype: SafetensorsDtype;
  out: string;
  seed: number;
  /** A folder (or its tokenizer.json) whose tokenizer files are copied. */
  tokenizerFrom?: string;
  /** Replace an --out that holds a model folder. */
  overwrite?: boolean;
  /** Shard the weights past this many bytes a file (default transformers' 5·10⁹); tests use small ones. */
  maxShardBytes?: number;
}

/** What messages call a byte count and a parameter count. */
const parameters = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : `${(n / 1e6).toFixed(1)} M`);

/**
 * Writes the random folder and returns its plan. Every check (the config, the tokenizer, the --out folder, the disk
 * space) comes before the first weight is drawn; `note` gets the size line and any warning.
 */
export function writeRandomHfFolder(options: RandomHfFolderOptions, note: (line: string) => void = () => {}): { plan: RandomHfPlan; files: string[]; bytes: number } {
  const { out, dtype } = options;
  requireInput(Number.isSafeInteger(options.seed), `--seed ${options.seed}: the seed must be an integer`);
  const configPath = existsSync(options.like) && statSync(options.like).isDirectory() ? path.join(options.like, 'config.json') : options.like;
  if (configPath !== options.like && !existsSync(configPath)) throw new RemaxInputError(`--like ${options.like} is a folder without a config.json; give a config.json`);
  const configJson = parseJsonObject(readInputFile(configPath, '--like'), configPath);
  checkFolderTarget(out, '--out', options.overwrite === true);
  const plan = planRandomHfModel(configJson, { dtype, source: configPath, ...(options.maxShardBytes !== undefined ? { maxShardBytes: options.maxShardBytes } : {}) });

  const small: Record<string, Uint8Array> = { ...plan.smallFiles };
  // The real model's generation_config.json (its stop ids, sampling defaults) when it sits beside its config.json.
  const generationPath = path.join(path.dirname(configPath), 'generation_config.json');
  if (existsSync(generationPath)) {
    const bytes = readInputFile(generationPath, '--like');
    const eos = tokenIdList(parseJsonObject(bytes, generationPath), 'eos_token_id', generationPath) ?? [];
    const bad = eos.find((id) => id >= plan.config.vocabSize);
    requireInput(bad === undefined, `${generationPath}: eos_token_id ${bad} is not below vocab_size ${plan.config.vocabSize}; the model could never produce it`);
    small['generation_config.json'] = bytes;
  }
  if (options.tokenizerFrom !== undefined) Object.assign(small, tokenizerFiles(options.tokenizerFrom, plan.config.vocabSize, configPath));

  const totalBytes = plan.weightFiles.reduce((sum, f) => sum + f.byteLength, 0) + Object.values(small).reduce((sum, b) => sum + b.length, 0);
  checkFreeSpace(out, totalBytes, '--out');
  const shards = plan.weightFiles.length === 1 ? plan.weightFiles[0]!.name : `${plan.weightFiles.length} shards`;
  note(`writing ${out}: random ${plan.architecture}, ${parameters(plan.parameterCount)} parameters as ${dtype} ` +
    `(std ${plan.std}, seed ${options.seed}), ${formatBytes(totalBytes)} in ${shards}`);
  const float32Bytes = 4 * plan.parameterCount, wasmBytes = WASM_MAX_PAGES * WASM_PAGE_BYTES;
  if (float32Bytes > wasmBytes) {
    note(`note: its float32 weights (${formatBytes(float32Bytes)}) exceed the 4 GiB a wasm32 engine can address: ` +
      'remax cannot load this model (transformers and other tools can)');
  } else if (4 * float32Bytes > wasmBytes) {
    // As init's checkModelSize says of llama2.c models: weights, gradients and two Adam moments.
    note(`note: remax train and sft need over 4 × its float32 weights (${formatBytes(4 * float32Bytes)}), more than the 4 GiB ` +
      'a wasm32 engine can address: remax can generate from this model but not train it');
  }

  const prng = new Prng(options.seed); // one stream through the weight files in order
  const files: FolderFile[] = [
    ...plan.weightFiles.map((file) => ({ name: file.name, bytes: () => randomWeightsFileChunks(plan, file, prng) })),
    ...Object.entries(small).map(([name, bytes]) => ({ name, bytes })),
  ];
  writeFolderAtomic(out, files, '--out', options.overwrite === true);
  return { plan, files: files.map((f) => f.name), bytes: totalBytes };
}

/** The tokenizer files of `from` (a folder or its tokenizer.json), checked to load and to fit the model's vocabulary. */
function tokenizerFiles(from: string, vocabSize: number, configPath: string): Record<string, Uint8Array> {
  const folder = existsSync(from) && statSync(from).isDirectory() ? from : path.dirname(from);
  requireInput(existsSync(folder), `cannot read --tokenizer-from ${from}: no such folder`);
  const files: Record<string, Uint8Array> = {};
  for (const name of TOKENIZER_FILES) {
    const at = path.join(folder, name);
    if (existsSync(at) && statSync(at).isFile()) files[name] = readInputFile(at, '--tokenizer-from');
  }
  requireInput(files['tokenizer.json'],
    `--tokenizer-from ${from}: no tokenizer.json in ${folder}; give a Hugging Face folder that has one (the engine reads tokenizer.json)`);
  const source = path.join(folder, 'tokenizer.json');
  const tokenizer = tokenizerFromHfFiles(files['tokenizer.json'], files['tokenizer_config.json'], { source });
  checkTokenizerFitsModel(tokenizer, vocabSize, `the model of --like ${configPath}`);
  return files;
}
