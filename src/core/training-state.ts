/**
 * The training-state file that sits beside a llama2.c checkpoint so that training resumes exactly where it stopped:
 * the step, the schedule, the optimizer settings and AdamW moments, the data order position, the sampler state and
 * the model config it belongs to.
 *
 * Layout (little-endian):
 *   "RMXS"            4-byte magic
 *   u32 version       FORMAT_VERSION
 *   u32 json length   then that many bytes of UTF-8 JSON (everything but the moments), zero-padded to a multiple of 4
 *   u32 count         number of parameters
 *   count × f32       AdamW first moments m
 *   count × f32       AdamW second moments v
 *   u32 hash          FNV-1a of every byte before it (version 2; version 1 files, which lack it, are still read)
 */
import { validateConfig } from './formats/llama2c';
import type { ModelConfig } from './config';
import { RemaxInputError, preview, requireInput, requireShallow } from './errors';
import { fnv1aWords } from './hash';
import { SCHEDULE_KINDS, validateSchedule, type ScheduleConfig, type ScheduleKind } from './schedule';
import type { DataPosition } from './sft-data';

export const FORMAT_VERSION = 2;
/** The oldest version still read (no integrity hash). */
const OLDEST_VERSION = 1;
const MAGIC = 'RMXS';
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const MAX_U64 = (1n << 64n) - 1n;

export interface OptimizerSettings {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clip; 0 = no clipping. */
  clipNorm: number;
}

export interface TrainingState {
  /** Optimizer steps completed: the 0-based index of the next step (and AdamW's bias-correction count). */
  step: number;
  schedule: ScheduleConfig;
  optimizer: OptimizerSettings;
  /** The DataOrder to restore: DataOrder.restore(count, seed, position). */
  data: { seed: number; count: number; position: DataPosition };
  /** A u64 sampler/PRNG state (stored as a decimal string: JSON numbers cannot hold 64 bits). */
  samplerState: bigint;
  /** The model the moments belong to. */
  config: ModelConfig;
  /** Free-form JSON for later (metrics so far, trainer options); values that JSON cannot hold (NaN, undefined) are lost. */
  extra: Record<string, unknown>;
  /** AdamW first and second moments, one value per parameter of the flattened model. */
  m: Float32Array;
  v: Float32Array;
}

/** ModelConfig fields in file order, with the names llama2.c gives them (so messages match the checkpoint's). */
const CONFIG_FIELDS: [keyof ModelConfig, string][] = [
  ['dim', 'dim'], ['hiddenDim', 'hidden_dim'], ['nLayers', 'n_layers'], ['nHeads', 'n_heads'],
  ['nKvHeads', 'n_kv_heads'], ['vocabSize', 'vocab_size'], ['seqLen', 'seq_len'],
  ['sharedClassifier', 'shared_classifier'], ['normEps', 'norm_eps'], ['ropeTheta', 'rope_theta'],
];

/** The JSON section, with a fixed key order so equal states give equal bytes. */
function jsonSection(s: TrainingState): unknown {
  const { kind, lr, warmupSteps, totalSteps, minLr } = s.schedule;
  const { beta1, beta2, eps, weightDecay, clipNorm } = s.optimizer;
  return {
    step: s.step,
    schedule: { kind, lr, warmupSteps, totalSteps, ...(minLr === undefined ? {} : { minLr }) },
    optimizer: { beta1, beta2, eps, weightDecay, clipNorm },
    data: { seed: s.data.seed, count: s.data.count, epoch: s.data.position.epoch, index: s.data.position.index },
    samplerState: s.samplerState.toString(),
    config: Object.fromEntries(CONFIG_FIELDS.map(([key]) => [key, s.config[key]])),
    extra: s.extra,
  };
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks the JSON section and turns it back into the state's fields; errors name `source` and the field path. */
function readJsonSection(root: unknown, source: string): Omit<TrainingState, 'm' | 'v'> {
  const corrupt = 'the file is corrupt or was not written by remax';
  requireShallow(root, `${source}: the JSON section`);
  requireInput(isObject(root), `${source}: the JSON section is not an object; ${corrupt}`);
  const get = (path: string): unknown => path.split('.').reduce<unknown>((o, key) => (isObject(o) ? o[key] : undefined), root);
  const bad = (path: string, expected: string): string => {
    const value = get(path);
    return `${source}: ${path} is ${value === undefined ? 'missing' : preview(value)}; expected ${expected}; ${corrupt}`;
  };
  const num = (path: string, ok: (v: number) => boolean, expected: string): number => {
    const value = get(path);
    requireInput(typeof value === 'number' && ok(value), bad(path, expected));
    return value;
  };
  const count = (path: string): number => num(path, (v) => Number.isSafeInteger(v) && v >= 0, 'a non-negative integer');
  const positive = (path: string): number => num(path, (v) => Number.isFinite(v) && v > 0, 'a positive number');
  const fraction = (path: string): number => num(path, (v) => v >= 0 && v < 1, 'a number in [0, 1)');
  const nonNegative = (path: string): number => num(path, (v) => Number.isFinite(v) && v >= 0, 'a non-negative number');

  const kind = get('schedule.kind');
  requireInput(SCHEDULE_KINDS.includes(kind as ScheduleKind), bad('schedule.kind', SCHEDULE_KINDS.join(' or ')));
  const schedule: ScheduleConfig = {
    kind: kind as ScheduleKind, lr: positive('schedule.lr'),
    warmupSteps: count('schedule.warmupSteps'), totalSteps: count('schedule.totalSteps'),
  };
  if (get('schedule.minLr') !== undefined) schedule.minLr = nonNegative('schedule.minLr');
  try {
    validateSchedule(schedule);
  } catch (error) {
    if (error instanceof RemaxInputError) throw new RemaxInputError(`${source}: the saved schedule is invalid (${error.message}); ${corrupt}`);
    throw error;
  }

  const samplerState = get('samplerState');
  requireInput(typeof samplerState === 'string' && /^\d{1,20}$/.test(samplerState) && BigInt(samplerState) <= MAX_U64,
    bad('samplerState', 'a u64 as a decimal string'));

  const config = {} as Record<keyof ModelConfig, unknown>;
  for (const [key] of CONFIG_FIELDS) config[key] = get(`config.${key}`);
  requireInput(typeof config.sharedClassifier === 'boolean', bad('config.sharedClassifier', 'true or false'));
  validateConfig(config as unknown as ModelConfig, source);

  const extra = get('extra');
  requireInput(isObject(extra), bad('extra', 'an object'));
  const dataCount = num('data.count', (v) => Number.isSafeInteger(v) && v > 0, 'a positive integer');
  const index = num('data.index', (v) => Number.isSafeInteger(v) && v >= 0 && v < dataCount, `an integer from 0 to data.count − 1 = ${dataCount - 1}`);
  return {
    step: count('step'),
    schedule,
    optimizer: {
      beta1: fraction('optimizer.beta1'), beta2: fraction('optimizer.beta2'), eps: positive('optimizer.eps'),
      weightDecay: nonNegative('optimizer.weightDecay'), clipNorm: nonNegative('optimizer.clipNorm'),
    },
    data: {
      seed: num('data.seed', Number.isSafeInteger, 'an integer'),
      count: dataCount,
      position: { epoch: count('data.epoch'), index },
    },
    samplerState: BigInt(samplerState),
    config: config as unknown as ModelConfig,
    extra,
  };
}

const align4 = (n: number): number => Math.ceil(n / 4) * 4;

/** The bytes of a training-state file. A state that could not be read back (m and v of different lengths, a NaN) throws. */
export function serializeTrainingState(s: TrainingState): Uint8Array {
  if (s.m.length !== s.v.length) throw new Error(`serializeTrainingState: m has ${s.m.length} values but v has ${s.v.length}`);
  const section = jsonSection(s);
  try {
    readJsonSection(JSON.parse(JSON.stringify(section)), 'training state'); // exactly what parse will see
  } catch (error) {
    throw new Error(`serializeTrainingState: ${(error as Error).message}`);
  }
  const json = new TextEncoder().encode(JSON.stringify(section));
  const countAt = align4(12 + json.length), count = s.m.length;
  const out = new Uint8Array(countAt + 4 + 8 * count + 4); // zero-filled: the padding
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(4, FORMAT_VERSION, true);
  view.setUint32(8, json.length, true);
  out.set(json, 12);
  view.setUint32(countAt, count, true);
  let at = countAt + 4;
  for (const values of [s.m, s.v]) {
    if (LITTLE_ENDIAN) out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), at);
    else for (let i = 0; i < count; i++) view.setFloat32(at + 4 * i, values[i]!, true);
    at += 4 * count;
  }
  view.setUint32(at, integrityHash(out, at), true);
  return out;
}

/** FNV-1a over the file's first `end` bytes as 32-bit words (every section is a multiple of 4 bytes long). */
function integrityHash(bytes: Uint8Array, end: number): number {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice(0, end);
  return fnv1aWords(new Uint32Array(aligned.buffer, aligned.byteOffset, end / 4));
}

/**
 * The `extra` object of a training-state file (the settings a run saved there), checked as parseTrainingState checks
 * the file: what a command needs before it loads the model (sft --resume reads its options from it).
 */
export function trainingStateExtra(bytes: Uint8Array, source: string): Record<string, unknown> {
  return parseTrainingState(bytes, source).extra;
}

/**
 * Parses a training-state file named `source`. With `expect`, also checks that it belongs to that model (every config
 * field and the parameter count). Every error names the file and what is wrong.
 */
export function parseTrainingState(bytes: Uint8Array, source: string, expect?: { config: ModelConfig; parameterCount: number }): TrainingState {
  const notState = `is not a remax training state (it does not start with "${MAGIC}")`;
  requireInput(bytes.length >= 4 && String.fromCharCode(...bytes.subarray(0, 4)) === MAGIC, `${source} ${notState}`);
  const truncated = (what: string): string => `${source} is truncated (${bytes.length} bytes, ${what}); the save was interrupted: use an earlier state file`;
  requireInput(bytes.length >= 12, truncated('shorter than its 12-byte header'));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  requireInput(version >= OLDEST_VERSION && version <= FORMAT_VERSION,
    version > FORMAT_VERSION
      ? `${source} has training-state format version ${version}, newer than this remax reads (${FORMAT_VERSION}); upgrade remax`
      : `${source} has unknown training-state format version ${version}; the file is corrupt`);
  const jsonLength = view.getUint32(8, true);
  const countAt = align4(12 + jsonLength);
  requireInput(countAt + 4 <= bytes.length, truncated(`its ${jsonLength}-byte JSON section and parameter count need ${countAt + 4}`));
  const count = view.getUint32(countAt, true);
  const momentsEnd = countAt + 4 + 8 * count, expectedLength = momentsEnd + (version >= 2 ? 4 : 0);
  requireInput(bytes.length >= expectedLength, truncated(`the moments of ${count} parameters need ${expectedLength}`));
  requireInput(bytes.length === expectedLength,
    `${source} has ${bytes.length - expectedLength} bytes more than a state of ${count} parameters; it is corrupt, or not a remax training state`);
  if (version >= 2) {
    const stored = view.getUint32(momentsEnd, true), actual = integrityHash(bytes, momentsEnd);
    requireInput(stored === actual,
      `${source} is corrupt: its integrity hash is ${stored.toString(16)} but its bytes hash to ${actual.toString(16)} (a changed byte); ` +
        'resume from an earlier checkpoint, or start the run again');
  }

  let root: unknown;
  try {
    root = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, 12 + jsonLength)));
  } catch (error) {
    throw new RemaxInputError(`${source}: the JSON section is not valid UTF-8 JSON (${(error as Error).message}); the file is corrupt`);
  }
  const fields = readJsonSection(root, source);


  if (expect) {
    for (const [key, name] of CONFIG_FIELDS) {
      const saved = fields.config[key], model = expect.config[key];
      requireInput(saved === model,
        `${source} was saved for ${name}=${saved} but the model has ${name}=${model}: resume with the model it was saved with`);
    }
    requireInput(count === expect.parameterCount,
      `${source} holds optimizer moments for ${count} parameters but the model has ${expect.parameterCount}: resume with the model it was saved with`);
  }

  const moments = (at: number): Float32Array => {
    if (LITTLE_ENDIAN) return new Float32Array(bytes.slice(at, at + 4 * count).buffer); // slice: an aligned copy
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(at + 4 * i, true);
    return out;
  };
  return { ...fields, m: moments(countAt + 4), v: moments(countAt + 4 + 4 * count) };
}
