import { statSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import type { FlagSpec, Flags } from '../args';
import { parseFlags, helpText, requiredString, numberFlag, optionalString } from '../args';
import { randomHfDtype } from '../../core/formats/random-hf-model';
import { writeRandomHfFolder } from './init-like';
import { checkOutputFolder, writeFileAtomic } from '../files';
import { checkpointByteLength, randomInitWeights, serializeCheckpoint, validateConfig } from '../../core/formats/llama2c';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, elementCount, weightShapes, type ModelConfig } from '../../core/config';
import { planModel, planWorkspace } from '../../core/memory-plan';
import { WASM_MAX_PAGES, WASM_PAGE_BYTES } from '../../core/arena';
import { RemaxInputError } from '../../core/errors';

export const initFlags: FlagSpec[] = [
  { name: 'out', type: 'string', help: 'where to write the llama2.c checkpoint (with --like: the Hugging Face folder)' },
  { name: 'like', type: 'string', help: "a Hugging Face config.json (or its folder): write a random Hugging Face folder of that model's shapes instead" },
  { name: 'dtype', type: 'string', help: 'with --like: how the weights are stored, bf16, f16 or f32', default: 'bf16' },
  { name: 'tokenizer-from', type: 'string', help: "with --like: a Hugging Face folder whose tokenizer files (tokenizer.json, tokenizer_config.json, …) are copied" },
  { name: 'overwrite', type: 'boolean', help: 'with --like: replace an --out folder that holds a model (without it a non-empty --out is refused)' },
  { name: 'dim', type: 'string', help: 'model width' },
  { name: 'hidden', type: 'string', help: 'feed-forward width' },
  { name: 'layers', type: 'string', help: 'number of layers' },
  { name: 'heads', type: 'string', help: 'attention heads' },
  { name: 'kv-heads', type: 'string', help: 'key/value heads (divides --heads)', default: 'same as --heads' },
  { name: 'vocab', type: 'string', help: 'vocabulary size' },
  { name: 'seq', type: 'string', help: 'context length' },
  { name: 'seed', type: 'string', help: 'initialisation seed', default: '0' },
  { name: 'unshared-classifier', type: 'boolean', help: 'give the classifier its own weights instead of the embedding' },
];

export async function initCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<void> {
  const flags = parseFlags('init', argv, initFlags);
  if (flags.help) {
    return out(helpText('init', 'Write a randomly initialised model: a llama2.c checkpoint of the given sizes, or (--like) a Hugging Face folder.', initFlags));
  }
  if (flags.like !== undefined) return initLike(flags, err);
  const onlyWithLike = LIKE_ONLY.find((f) => flags[f] !== undefined);
  if (onlyWithLike) throw new RemaxInputError(`--${onlyWithLike} goes with --like (a Hugging Face folder); a llama2.c checkpoint is float32 and has no tokenizer files`);
  const path = requiredString(flags, 'out', 'the path of the checkpoint to write');
  const positive = { integer: true, min: 1 };
  const need = (name: string) => {
    requiredString(flags, name, `the model's ${initFlags.find((f) => f.name === name)!.help} (remax init --help lists every flag)`);
    return numberFlag(flags, name, 0, positive);
  };
  const heads = need('heads');
  const config: ModelConfig = {
    dim: need('dim'), hiddenDim: need('hidden'), nLayers: need('layers'), nHeads: heads,
    nKvHeads: numberFlag(flags, 'kv-heads', heads, positive), vocabSize: need('vocab'), seqLen: need('seq'),
    sharedClassifier: !flags['unshared-classifier'], normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA,
  };
  validateConfig(config, 'the flags');
  const seed = numberFlag(flags, 'seed', 0, { integer: true, min: 0 });
  checkModelSize(config, flags, err);
  // Before the (possibly long) initialisation: a folder in the way, or a folder that is missing or read-only.
  if (isFolder(path)) throw new RemaxInputError(`--out ${path} is a folder: give the path of the checkpoint file to write, e.g. ${join(path, 'model.bin')}`);
  checkOutputFolder(path, '--out');
  const bytes = serializeCheckpoint(config, randomInitWeights(config, seed));
  writeFileAtomic(path, bytes);
  err(`wrote ${path}: ${(bytes.length / 2 ** 20).toFixed(2)} MiB, dim ${config.dim}, hidden ${config.hiddenDim}, ` +
    `${config.nLayers} layers, ${config.nHeads} heads (${config.nKvHeads} kv), vocab ${config.vocabSize}, seq ${config.seqLen}`);
}

const SIZE_FLAGS = ['dim', 'hidden', 'layers', 'heads', 'kv-heads', 'vocab', 'seq', 'unshared-classifier'];
const LIKE_ONLY = ['dtype', 'tokenizer-from', 'overwrite'];

/** init --like: the shapes come from the config.json, so no size flag is taken. */
function initLike(flags: Flags, err: (line: string) => void): void {
  const sizeFlag = SIZE_FLAGS.find((f) => flags[f] !== undefined);
  if (sizeFlag) throw new RemaxInputError(`--${sizeFlag} does not go with --like: the sizes come from the config.json (edit a copy of it to change them)`);
  const like = requiredString(flags, 'like', 'a Hugging Face config.json');
  const out = requiredString(flags, 'out', 'the folder to write the random Hugging Face model to');
  const started = Date.now();
  const written = writeRandomHfFolder({
    like, out, dtype: randomHfDtype(optionalString(flags, 'dtype') ?? 'bf16'), seed: numberFlag(flags, 'seed', 0, { integer: true, min: 0 }),
    overwrite: flags.overwrite === true, ...(flags['tokenizer-from'] !== undefined ? { tokenizerFrom: requiredString(flags, 'tokenizer-from', 'a Hugging Face tokenizer folder') } : {}),
  }, err);
  err(`wrote ${out} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${written.files.join(', ')}`);
}

/** What the engine can address: wasm32 linear memory is at most 4 GiB. */
const WASM_MAX_BYTES = WASM_MAX_PAGES * WASM_PAGE_BYTES;
const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(bytes < 10 * 2 ** 30 ? 2 : 0)} GiB`;

/**
 * Refuses, before anything is allocated, a model that no engine could load (its weights, RoPE tables and the
 * workspace of one sequence past the 4 GiB of wasm32 memory) or that this machine cannot even write (init holds the
 * weights and the file in memory at once); warns when the model can run but not be trained.
 */
export function checkModelSize(config: ModelConfig, flags: Flags, warn: (line: string) => void): void {
  const parameters = weightShapes(config).reduce((sum, { shape }) => sum + elementCount(shape), 0);
  const weightBytes = 4 * parameters;
  const fileBytes = checkpointByteLength(config, 'llama2c-v0');
  const given = ['dim', 'hidden', 'layers', 'heads', 'kv-heads', 'vocab', 'seq'].filter((f) => flags[f] !== undefined).map((f) => `--${f} ${flags[f]}`).join(' ');
  const billions = parameters >= 1e9 ? `${(parameters / 1e9).toFixed(1)} billion` : `${(parameters / 1e6).toFixed(1)} million`;
  const what = `the model of ${given} has ${billions} parameters: ${gib(weightBytes)} of float32 weights, a ${gib(fileBytes)} llama2.c file`;
  const smaller = 'lower --dim, --hidden, --layers or --vocab';
  if (weightBytes > WASM_MAX_BYTES) {
    throw new RemaxInputError(`${what}; its weights alone exceed the 4 GiB of memory a wasm32 engine can address, so no engine ` +
      `can ever load it: ${smaller} (at most about ${(WASM_MAX_BYTES / 4 / 1e9).toFixed(2)} billion parameters)`);
  }
  // What RemaxEngine.create needs with its defaults (one sequence of up to 256 new rows): weights, RoPE tables, KV cache.
  const model = planModel(config, 0);
  const engineBytes = planWorkspace(config, model.end, { maxSeqs: 1, maxTokens: 256, maxLogitRows: 256, training: false }).end;
  if (engineBytes > WASM_MAX_BYTES) {
    throw new RemaxInputError(`${what}; with the KV cache of one sequence of its context (--seq ${config.seqLen}) an engine ` +
      `needs ${gib(engineBytes)}, over the 4 GiB a wasm32 engine can address: lower --seq, or ${smaller}`);
  }
  const memory = totalmem();
  if (weightBytes + fileBytes > memory) {
    throw new RemaxInputError(`${what}; writing it holds both in memory (${gib(weightBytes + fileBytes)}), more than this ` +
      `machine has (${gib(memory)}): ${smaller}`);
  }
  // Training keeps gradients and two Adam moments beside the weights, plus the activations of a batch.
  if (4 * weightBytes > WASM_MAX_BYTES) {
    warn(`note: ${what}; remax train and sft need over 4 × the weights (${gib(4 * weightBytes)}: weights, gradients and ` +
      `two Adam moments), more than the 4 GiB a wasm32 engine can address: this model can generate but cannot be trained`);
  }
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
