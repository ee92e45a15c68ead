// Fuzz every loader (issue 15, "Prove it"): thousands of seeded mutations of valid inputs — truncations, bit flips,
// forged 32- and 64-bit lengths and counts, inserted and deleted bytes; for text formats also character edits, deleted
// and duplicated lines, numbers replaced by huge, negative and non-finite values, JSON values of the wrong type and
// nested too deep — each of which must load (and then work: encode, decode, render) or throw a RemaxInputError naming
// the input, never another exception, within a time bound per case and without allocating much beyond the input's
// size (process.memoryUsage().arrayBuffers growth per case; forged lengths that would ask for gigabytes fail fast).
//
// GGUF files and Hugging Face folders / safetensors have their own fuzz tests (gguf.test.ts, hf-format.test.ts); here:
// llama2.c checkpoints and tokenizer.bin, tokenizer.json + tokenizer_config.json, GGUF vocabularies (metadata maps),
// chat templates, training states, a run's config.json, metrics.jsonl, prompts and SFT data, and loadModel's format
// detection.
//
// Besides the seeded random mutations, "every field wrong" runs set each field of each JSON input to each wrong value in
// turn. The defects found and fixed have a direct reproduction each ('found by the fuzz, fixed'); those in files this
// change does not own (training-state.ts, train-options.ts, rl/prompts.ts) are KnownDefect entries, counted rather than
// failed, each with a reproduction asserted to still fail ('known defects left for the lead'): fixing one makes that
// test fail until its entry is deleted, after which the fuzz checks those cases too.
//
// Reproduce a failure: every message names the fuzz run, its seed, the case index and the mutation; each case draws
// from its own Prng(seed · 1000003 + index). REMAX_FUZZ_SCALE=10 runs ten times as many cases (a soak run);
// REMAX_FUZZ_SEED=n shifts every seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { RemaxInputError } from '../../src/core/errors';
import { Prng } from '../../src/core/prng';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, elementCount, weightShapes, type ModelConfig, type ModelWeights, type WeightName } from '../../src/core/config';
import { parseCheckpoint, randomInitWeights, serializeCheckpoint, serializeCheckpointV1, validateConfig } from '../../src/core/formats/llama2c';
import { parseGguf } from '../../src/core/formats/gguf';
import { parseJsonObject } from '../../src/core/formats/hf-config';
import { loadModel } from '../../src/core/formats/load';
import { memoryFileSet } from '../../src/core/formats/file-set';
import { modelFiles } from '../../src/core/formats/save';
import type { LoadedModel } from '../../src/core/formats/model';
import { Tokenizer } from '../../src/core/tokenizers/llama2c';
import { HfTokenizer, parseJsonFile, tokenizerFromHfFiles } from '../../src/core/tokenizers/hf-tokenizer';
import { ggufTokenizerMetadata, tokenizerFromGguf } from '../../src/core/tokenizers/gguf-vocab';
import { sentencePieceTokenizerFiles } from '../../src/core/tokenizers/tokenizer-json';
import { chatPromptIds, renderChat, type ChatMessage, type ChatSettings } from '../../src/core/tokenizers/chat-template';
import type { TextTokenizer } from '../../src/core/tokenizers/types';
import { parseTrainingState, serializeTrainingState, type TrainingState } from '../../src/core/training-state';
import { fnv1aWords } from '../../src/core/hash';
import { resolveTrainOptions } from '../../src/node/train-options';
import { parseMetricsJsonl, renderReport, summarizeRun } from '../../src/report/report';
import { loadPrompts } from '../../src/core/rl/prompts';
import { loadSftExamples } from '../../src/core/sft-data';
import { loadPreferencePairs } from '../../src/core/preference-data';
import { attachScoreSidecar, withScoreHead } from '../../src/core/score-head';
import { readShared, readSharedJson, sharedPath } from './shared-data';
import { syntheticTokenizer, syntheticTokenizerBin } from './fixtures';

const SCALE = Math.max(0.05, Number(process.env.REMAX_FUZZ_SCALE ?? 1) || 1);
const SEED_SHIFT = Math.trunc(Number(process.env.REMAX_FUZZ_SEED ?? 0) || 0);
const count = (n: number): number => Math.max(1, Math.round(n * SCALE));
const shared = (relative: string): boolean => existsSync(sharedPath(relative));

// ---------------------------------------------------------------------------------------------------------------------
// Seeded randomness

class Rng {
  private readonly prng: Prng;
  constructor(seed: number) {
    this.prng = new Prng(seed);
  }
  float(): number {
    return this.prng.nextFloat64();
  }
  /** An integer in 0 … n − 1. */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }
  uint32(): number {
    return this.prng.nextUint32();
  }
  chance(p: number): boolean {
    return this.float() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// The harness: run the cases, classify what each did, measure time and memory

interface Mutation<T> {
  /** What was done to the valid input, for the failure message. */
  what: string;
  input: T;
}

/** A defect in a file this test may not fix: matching failures are counted (and reported), not failed. */
interface KnownDefect {
  id: string;
  matches(error: unknown): boolean;
}

interface FuzzSpec<T> {
  name: string;
  seed: number;
  cases: number;
  /** Text every error message must contain (the file name). */
  source: string | RegExp;
  /** Bytes of the valid input, for the memory bound. */
  size: number;
  /** The valid input: it must load (checked first). */
  valid: T;
  mutate(rng: Rng, index: number): Mutation<T>;
  /** Loads (and uses) the input; returns what was loaded, kept alive while memory is measured. */
  load(input: T, rng: Rng): unknown;
  /** The array-buffer growth allowed per case: factor × (the larger of size and the mutated input's) + 1 MiB (default
   *  factor 4). The JS heap may grow 16 times that and 64 MiB more (garbage not yet collected counts too). */
  memoryFactor?: number;
  /** Per-case time bound in ms (default 1500: a generous bound on a loaded 2-core machine). */
  slowMs?: number;
  known?: KnownDefect[];
}

interface FuzzStats {
  name: string;
  cases: number;
  loaded: number;
  refused: number;
  known: Map<string, { count: number; first: string }>;
  totalMs: number;
  maxMs: number;
  slowestWhat: string;
  maxGrowth: number;
  maxHeapGrowth: number;
}

const allStats: FuzzStats[] = [];
const MiB = 1024 * 1024;

const describeError = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message.slice(0, 600)}\n${e.stack?.split('\n').slice(1, 8).join('\n') ?? ''}` : String(e));

async function fuzz<T>(spec: FuzzSpec<T>): Promise<FuzzStats> {
  const stats: FuzzStats = { name: spec.name, cases: 0, loaded: 0, refused: 0, known: new Map(), totalMs: 0, maxMs: 0, slowestWhat: '', maxGrowth: 0, maxHeapGrowth: 0 };
  const failures: string[] = [];
  const seed = spec.seed + SEED_SHIFT;
  const factor = spec.memoryFactor ?? 4;
  const slowMs = spec.slowMs ?? 1500;
  try {
    await spec.load(spec.valid, new Rng(seed));
  } catch (error) {
    assert.fail(`${spec.name}: the valid input does not load: ${describeError(error)}`);
  }
  for (let i = 0; i < spec.cases; i++) {
    const rng = new Rng(seed * 1000003 + i);
    const { what, input } = spec.mutate(rng, i);
    const size = Math.max(spec.size, inputBytes(input)), bound = factor * size + MiB, heapBound = 16 * bound + 64 * MiB;
    const where = `${spec.name}, seed ${seed} case ${i}: ${what}`;
    const before = process.memoryUsage().arrayBuffers, heapBefore = getHeapStatistics().used_heap_size;
    const t0 = performance.now();
    const kept: unknown[] = []; // what was loaded, alive until its memory is measured
    try {
      kept.push(await spec.load(input, rng));
      stats.loaded++;
    } catch (error) {
      const known = spec.known?.find((k) => k.matches(error));
      if (known) {
        const entry = stats.known.get(known.id) ?? { count: 0, first: where };
        entry.count++;
        stats.known.set(known.id, entry);
      } else if (!(error instanceof RemaxInputError)) {
        failures.push(`${where}\n  threw ${describeError(error)}`);
      } else if (typeof spec.source === 'string' ? !error.message.includes(spec.source) : !spec.source.test(error.message)) {
        failures.push(`${where}\n  the RemaxInputError does not name ${spec.source}: ${error.message.slice(0, 300)}`);
      } else {
        stats.refused++;
      }
    }
    const ms = performance.now() - t0;
    const growth = process.memoryUsage().arrayBuffers - before, heapGrowth = getHeapStatistics().used_heap_size - heapBefore;
    kept.length = 0;
    stats.cases++;
    stats.totalMs += ms;
    if (ms > stats.maxMs) {
      stats.maxMs = ms;
      stats.slowestWhat = `case ${i}: ${what}`;
    }
    stats.maxGrowth = Math.max(stats.maxGrowth, growth);
    stats.maxHeapGrowth = Math.max(stats.maxHeapGrowth, heapGrowth);
    if (ms > slowMs) failures.push(`${where}\n  took ${ms.toFixed(0)} ms (bound ${slowMs} ms)`);
    if (growth > bound) failures.push(`${where}\n  grew array buffers by ${(growth / MiB).toFixed(1)} MiB for a ${size}-byte input (bound ${(bound / MiB).toFixed(1)} MiB)`);
    if (heapGrowth > heapBound) failures.push(`${where}\n  grew the JS heap by ${(heapGrowth / MiB).toFixed(0)} MiB for a ${size}-byte input (bound ${(heapBound / MiB).toFixed(0)} MiB)`);
    if (failures.length >= 8) break;
  }
  allStats.push(stats);
  const known = [...stats.known].map(([id, k]) => `; known defect ${id}: ${k.count} (first: ${k.first})`).join('');
  console.log(`fuzz ${spec.name}: ${stats.cases} cases, ${stats.loaded} loaded, ${stats.refused} refused${known}; ` +
    `${(stats.totalMs / 1000).toFixed(2)} s, slowest ${stats.maxMs.toFixed(1)} ms (${stats.slowestWhat.slice(0, 80)}), ` +
    `max growth: array buffers ${(stats.maxGrowth / 1024).toFixed(0)} KiB, JS heap ${(stats.maxHeapGrowth / MiB).toFixed(1)} MiB`);
  assert.deepEqual(failures, [], `${spec.name}: ${failures.length} failing case(s)${failures.length >= 8 ? ' (stopped at 8)' : ''}:\n${failures.join('\n')}`);
  return stats;
}

/** The bytes a mutated input takes (its typed arrays and strings, two levels into objects): what bounds its memory. */
function inputBytes(input: unknown, depth = 0): number {
  if (input instanceof Uint8Array) return input.length;
  if (typeof input === 'string') return 3 * input.length;
  if (depth >= 2 || typeof input !== 'object' || input === null || input instanceof Map) return 0;
  return Object.values(input).reduce<number>((n, v) => n + inputBytes(v, depth + 1), 0);
}

/** Runs a use of a loaded input: a RemaxInputError (the input cannot do that) is fine, anything else propagates. */
function allow<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (error) {
    if (error instanceof RemaxInputError) return undefined;
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Mutations of bytes

const U32_FORGED = [0, 1, 2, 3, 4, 7, 8, 255, 256, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7ffffffe, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff];
const U64_FORGED = [0n, 1n, 7n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 1n << 32n, (1n << 32n) + 1n, 1n << 40n, 1n << 53n, (1n << 53n) + 1n, 1n << 62n, 1n << 63n, (1n << 64n) - 1n];

function forgedU32(rng: Rng, original: number, length: number): number {
  const r = rng.int(10);
  if (r < 6) return rng.pick(U32_FORGED);
  if (r === 6) return (original + rng.pick([1, -1, 2, -2, 4, -4, 256, -256])) >>> 0;
  if (r === 7) return rng.pick([length, length - 1, length + 1, length >>> 2, length * 2, length * 1000]) >>> 0;
  return rng.uint32();
}

interface ByteLayout {
  /** Offsets of length, count and header fields (4-byte fields): where forged values do the most. */
  fields: readonly number[];
  /** The header's end: most other mutations land before it. */
  headerEnd: number;
}

/** One mutation of `original`, described; `layout` aims most of them at the header and its fields. */
function mutateBytes(rng: Rng, original: Uint8Array, layout: ByteLayout, depth = 0): Mutation<Uint8Array> {
  const n = original.length;
  const at = (): number => {
    const r = rng.float();
    if (r < 0.35 && layout.fields.length > 0) return Math.min(n - 1, rng.pick(layout.fields) + (rng.chance(0.2) ? rng.int(4) : 0));
    if (r < 0.75) return rng.int(Math.max(1, Math.min(n, layout.headerEnd)));
    return rng.int(Math.max(1, n));
  };
  const kind = rng.int(depth > 0 ? 9 : 10);
  const out = original.slice();
  switch (kind) {
    case 0: {
      const length = rng.chance(0.5) ? at() : Math.max(0, n - 1 - rng.int(16));
      return { what: `truncated to ${length} of ${n} bytes`, input: original.slice(0, length) };
    }
    case 1: {
      const i = at(), bit = rng.int(8);
      out[i]! ^= 1 << bit;
      return { what: `bit ${bit} of byte ${i} flipped`, input: out };
    }
    case 2: {
      const flips = 2 + rng.int(15), where: number[] = [];
      for (let k = 0; k < flips; k++) {
        const i = rng.chance(0.6) ? at() : rng.int(n);
        out[i]! ^= 1 << rng.int(8);
        where.push(i);
      }
      return { what: `${flips} bits flipped at bytes ${where.join(',')}`, input: out };
    }
    case 3: {
      const o = Math.max(0, Math.min(at(), n - 4));
      const view = new DataView(out.buffer);
      const v = forgedU32(rng, n >= 4 ? view.getUint32(o, true) : 0, n);
      view.setUint32(o, v, true);
      return { what: `32-bit ${v} (int32 ${v | 0}) written at byte ${o}`, input: out };
    }
    case 4: {
      if (n < 8) return { what: `no 64-bit write: ${n} bytes`, input: out }; // an input cut short by an earlier mutation
      const o = Math.max(0, Math.min(at(), n - 8));
      const v = rng.chance(0.8) ? rng.pick(U64_FORGED) : BigInt(n) * BigInt(1 + rng.int(4));
      new DataView(out.buffer).setBigUint64(o, v, true);
      return { what: `64-bit ${v} written at byte ${o}`, input: out };
    }
    case 5: {
      const i = at(), k = 1 + rng.int(16), zeros = rng.chance(0.5);
      const extra = Uint8Array.from({ length: k }, () => (zeros ? 0 : rng.int(256)));
      const input = new Uint8Array(n + k);
      input.set(original.subarray(0, i));
      input.set(extra, i);
      input.set(original.subarray(i), i + k);
      return { what: `${k} ${zeros ? 'zero' : 'random'} bytes inserted at byte ${i}`, input };
    }
    case 6: {
      const i = at(), k = 1 + rng.int(16);
      const input = new Uint8Array(n - Math.min(k, n - i));
      input.set(original.subarray(0, i));
      input.set(original.subarray(i + k), i);
      return { what: `${k} bytes deleted at byte ${i}`, input };
    }
    case 7: {
      const k = 1 + rng.int(64);
      const input = new Uint8Array(n + k);
      input.set(original);
      for (let j = n; j < n + k; j++) input[j] = rng.chance(0.5) ? 0 : rng.int(256);
      return { what: `${k} bytes appended`, input };
    }
    case 8: {
      const i = at(), k = 1 + rng.int(12), value = rng.pick([0, 0xff, 0x80, 0x7f]);
      out.fill(value, i, i + k);
      return { what: `${k} bytes at ${i} set to 0x${value.toString(16)}`, input: out };
    }
    default: {
      // Two or three mutations in a row.
      let m = mutateBytes(rng, original, layout, depth + 1);
      const parts = [m.what];
      for (let k = 1 + rng.int(2); k > 0 && m.input.length > 0; k--) {
        m = mutateBytes(rng, m.input, layout, depth + 1);
        parts.push(m.what);
      }
      return { what: parts.join('; then '), input: m.input };
    }
  }
}

/** Mutations of bytes that hold text: the text mutations on the decoded text, or byte mutations (invalid UTF-8). */
function mutateTextBytes(rng: Rng, original: string, json: 'json' | 'jsonl' | 'none'): Mutation<Uint8Array> {
  if (rng.chance(0.15)) {
    const bytes = new TextEncoder().encode(original);
    return mutateBytes(rng, bytes, { fields: [], headerEnd: bytes.length });
  }
  const m = mutateText(rng, original, json);
  return { what: m.what, input: new TextEncoder().encode(m.input) };
}

// ---------------------------------------------------------------------------------------------------------------------
// Mutations of text and JSON

const EDIT_CHARS = [...'{}[]":,\\ 0123456789-+.eE\n\t\r#%|()\'abcxyzAZ_<>/=*', '\u0000', '\uFFFD', '\uD800', '\uDC00', 'é', '☃', '😀', '\u2581', '\u00A0', '\uFEFF'];
const WEIRD_NUMBERS = ['1e308', '-1e308', '1e999', '-1', '-0', '0', '1', '2', '0.5', '-0.5', '1e-320', '4294967296', '4294967295', '2147483648',
  '-2147483649', '9007199254740993', '18446744073709551616', '123456789012345678901234567890', 'NaN', 'Infinity', '-Infinity', '1.0', '3e9', '65536'];
/** Values of the wrong type (or out of range) for a JSON field; DEEP stands for an array nested 100,000 deep, LONG for a
 *  50,000-character string. */
const DEEP = '"\u0001deep\u0001"';
const LONG = '"\u0001long\u0001"';
const WRONG_VALUES: unknown[] = [null, true, false, 0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 2, 4294967296, '', 'x', '1', 'null', [], [1], ['x'], [null], {},
  { x: 1 }, { type: 'BPE' }, { content: 7 }, '<|im_end|>', DEEP, LONG, [[[[[[[[[[[]]]]]]]]]]]];

function substituteMarkers(text: string): string {
  return text
    .replaceAll(JSON.stringify(DEEP), '['.repeat(100000) + ']'.repeat(100000))
    .replaceAll(JSON.stringify(LONG), JSON.stringify('x'.repeat(50000)));
}

type JsonPath = (string | number)[];

/** Paths of a JSON value's nodes (at most `limit`, spread over the whole tree by sampling). */
function jsonPaths(value: unknown, rng: Rng, limit = 400): JsonPath[] {
  const out: JsonPath[] = [];
  const walk = (v: unknown, path: JsonPath, depth: number): void => {
    if (depth > 40) return;
    out.push(path);
    if (Array.isArray(v)) {
      const step = Math.max(1, Math.ceil(v.length / 30));
      for (let i = rng.int(step); i < v.length; i += step) walk(v[i], [...path, i], depth + 1);
    } else if (typeof v === 'object' && v !== null) {
      const keys = Object.keys(v);
      const step = Math.max(1, Math.ceil(keys.length / 30));
      for (let i = rng.int(step); i < keys.length; i += step) walk((v as Record<string, unknown>)[keys[i]!], [...path, keys[i]!], depth + 1);
    }
  };
  walk(value, [], 0);
  if (out.length <= limit) return out;
  return Array.from({ length: limit }, () => rng.pick(out));
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const show = (path: JsonPath): string => (path.length === 0 ? '(the root)' : path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join(''));
const showValue = (v: unknown): string => (v === DEEP ? 'an array nested 100000 deep' : v === LONG ? 'a 50000-character string' : JSON.stringify(v)?.slice(0, 60) ?? String(v));

/** One structural edit of a parsed JSON value (a copy): a wrong type, a deleted or unknown key, a resized array. */
function mutateJsonValue(rng: Rng, original: unknown, focus?: (path: JsonPath) => boolean): Mutation<unknown> {
  const root = { value: clone(original) } as Record<string, unknown>;
  let paths = jsonPaths(root.value, rng).map((p) => ['value', ...p] as JsonPath);
  if (focus && rng.chance(0.7)) {
    const focused = paths.filter((p) => focus(p.slice(1)));
    if (focused.length > 0) paths = focused;
  }
  const path = rng.pick(paths);
  const parentPath = path.slice(0, -1), key = path[path.length - 1]!;
  const parent = parentPath.reduce<any>((o, k) => o[k], root);
  const node = parent[key];
  const r = rng.int(10);
  const label = show(path.slice(1));
  if (r <= 4 || typeof node !== 'object' || node === null) {
    if (r === 4 && Array.isArray(parent) && parent.length > 0) {
      parent.splice(key as number, 1);
      return { what: `JSON ${label} removed from its array`, input: root.value };
    }
    if (r === 3 && !Array.isArray(parent) && path.length > 1) {
      delete parent[key];
      return { what: `JSON ${label} deleted`, input: root.value };
    }
    const v = typeof node === 'number' && rng.chance(0.5) ? rng.pick([-1, 0, 1e308, -1e308, 2 ** 53 + 2, 4294967296, 0.5, node + 1, -node, 2 ** 31]) : rng.pick(WRONG_VALUES);
    parent[key] = clone(v);
    return { what: `JSON ${label} replaced by ${showValue(v)}`, input: root.value };
  }
  if (Array.isArray(node)) {
    if (r === 5) {
      node.length = rng.int(node.length + 1);
      return { what: `JSON ${label} cut to ${node.length} elements`, input: root.value };
    }
    if (r === 6 && node.length > 0) {
      const k = 1 + rng.int(3);
      for (let j = 0; j < k; j++) node.push(clone(rng.pick(node)));
      return { what: `JSON ${label}: ${k} elements duplicated at its end`, input: root.value };
    }
    if (r === 7 && node.length > 1) {
      const a = rng.int(node.length), b = rng.int(node.length);
      [node[a], node[b]] = [node[b], node[a]];
      return { what: `JSON ${label}: elements ${a} and ${b} swapped`, input: root.value };
    }
    const v = rng.pick(WRONG_VALUES);
    node.splice(rng.int(node.length + 1), 0, clone(v));
    return { what: `JSON ${label}: ${showValue(v)} inserted`, input: root.value };
  }
  const keys = Object.keys(node);
  if (r === 5 && keys.length > 0) {
    const k = rng.pick(keys);
    delete node[k];
    return { what: `JSON ${label}.${k} deleted`, input: root.value };
  }
  if (r === 6) {
    const k = rng.pick(['x', '__proto__', 'constructor', '', 'type', 'id', ...keys.map((s) => s.toUpperCase())]);
    const v = rng.pick(WRONG_VALUES);
    Object.defineProperty(node, k, { value: clone(v), enumerable: true, configurable: true, writable: true });
    return { what: `JSON ${label}: key ${JSON.stringify(k)} = ${showValue(v)} added`, input: root.value };
  }
  if (r === 7 && keys.length > 0) {
    for (const k of keys) delete node[k];
    return { what: `JSON ${label} emptied`, input: root.value };
  }
  parent[key] = clone(rng.pick(WRONG_VALUES));
  return { what: `JSON ${label} replaced by ${showValue(parent[key])}`, input: root.value };
}

/** Every node's path (depth first; arrays and objects longer than `wide` contribute their first and last few). */
function allPaths(value: unknown, skip: (path: JsonPath) => boolean = () => false, wide = 6): JsonPath[] {
  const out: JsonPath[] = [];
  const walk = (v: unknown, path: JsonPath): void => {
    if (skip(path)) return;
    out.push(path);
    const entries: [string | number, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : typeof v === 'object' && v !== null ? Object.entries(v) : [];
    const chosen = entries.length <= wide ? entries : [...entries.slice(0, wide / 2), ...entries.slice(-wide / 2)];
    for (const [k, x] of chosen) walk(x, [...path, k]);
  };
  walk(value, []);
  return out;
}

/** Every field of `value` set to every wrong value, and deleted: the systematic counterpart of mutateJsonValue. */
function everyFieldWrong(value: unknown, skip?: (path: JsonPath) => boolean, wide?: number): Mutation<unknown>[] {
  const out: Mutation<unknown>[] = [];
  for (const path of allPaths(value, skip, wide)) {
    if (path.length === 0) continue;
    const edit = (f: (parent: any, key: string | number) => void, what: string): void => {
      const copy = clone(value) as any;
      const parent = path.slice(0, -1).reduce<any>((o, k) => o[k], copy);
      f(parent, path[path.length - 1]!);
      out.push({ what: `JSON ${show(path)} ${what}`, input: copy });
    };
    for (const wrong of WRONG_VALUES) edit((p, k) => (p[k] = clone(wrong)), `replaced by ${showValue(wrong)}`);
    edit((p, k) => (Array.isArray(p) ? p.splice(k as number, 1) : delete p[k]), 'deleted');
  }
  return out;
}

/** JSON text of a mutated value (markers replaced by the deep array and the long string). */
const jsonText = (value: unknown, pretty: boolean): string => substituteMarkers(JSON.stringify(value, null, pretty ? 2 : undefined));

const NUMBER = /-?\b\d+(\.\d+)?([eE][+-]?\d+)?\b/g;

/** One mutation of a text (`json`: it is JSON or JSON lines, so structural JSON edits apply too). */
function mutateText(rng: Rng, original: string, json: 'json' | 'jsonl' | 'none', depth = 0, focus?: (path: JsonPath) => boolean): Mutation<string> {
  const chars = [...original];
  const n = chars.length;
  const lines = original.split('\n');
  const kind = rng.int(depth > 0 ? 13 : 15);
  switch (kind) {
    case 0: case 1: {
      const i = rng.int(Math.max(1, n)), c = rng.pick(EDIT_CHARS);
      chars[i] = c;
      return { what: `character ${i} replaced by ${JSON.stringify(c)}`, input: chars.join('') };
    }
    case 2: {
      const i = rng.int(n + 1), k = 1 + rng.int(8);
      const inserted = Array.from({ length: k }, () => rng.pick(EDIT_CHARS)).join('');
      chars.splice(i, 0, inserted);
      return { what: `${JSON.stringify(inserted)} inserted at character ${i}`, input: chars.join('') };
    }
    case 3: {
      const i = rng.int(Math.max(1, n)), k = 1 + rng.int(rng.chance(0.8) ? 8 : 64);
      chars.splice(i, k);
      return { what: `${k} characters deleted at character ${i}`, input: chars.join('') };
    }
    case 4: {
      const i = rng.int(lines.length);
      lines.splice(i, 1);
      return { what: `line ${i + 1} deleted`, input: lines.join('\n') };
    }
    case 5: {
      const i = rng.int(lines.length), k = 1 + rng.int(3);
      lines.splice(i, 0, ...Array.from({ length: k }, () => lines[i]!));
      return { what: `line ${i + 1} duplicated ${k}×`, input: lines.join('\n') };
    }
    case 6: {
      const a = rng.int(lines.length), b = rng.int(lines.length);
      [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      return { what: `lines ${a + 1} and ${b + 1} swapped`, input: lines.join('\n') };
    }
    case 7: case 8: {
      const numbers = [...original.matchAll(NUMBER)];
      if (numbers.length === 0) break;
      const m = rng.pick(numbers), v = rng.pick(WEIRD_NUMBERS);
      return { what: `number ${m[0]} at character ${m.index} replaced by ${v}`, input: original.slice(0, m.index) + v + original.slice(m.index! + m[0].length) };
    }
    case 9: {
      const length = rng.int(original.length + 1);
      return { what: `cut to ${length} of ${original.length} characters`, input: original.slice(0, length) };
    }
    case 10: {
      const i = rng.int(lines.length + 1);
      const line = rng.pick(['', ' ', '{', '}', '[]', 'null', '"text"', '{"a": 1}', '\u0000', '#', '{{', '{%', '%}', 'NaN', '1e999', '{"step": "x"}']);
      lines.splice(i, 0, line);
      return { what: `line ${JSON.stringify(line)} inserted before line ${i + 1}`, input: lines.join('\n') };
    }
    case 11: {
      const r = rng.int(4);
      if (r === 0) return { what: 'BOM added in front', input: `\uFEFF${original}` };
      if (r === 1) return { what: 'line ends made CRLF', input: original.replaceAll('\n', '\r\n') };
      if (r === 2) return { what: 'line ends removed', input: original.replaceAll('\n', ' ') };
      return { what: 'all lines but the first deleted', input: lines[0]! };
    }
    case 12: {
      // Structural JSON edits: the whole text, or one line of JSON lines.
      // (A text an earlier edit nested 100,000 deep is left to the other edits: this test's own cloning would overflow.)
      if (json === 'json') {
        let value: unknown;
        try {
          value = JSON.parse(original);
          const m = mutateJsonValue(rng, value, focus);
          return { what: m.what, input: jsonText(m.input, original.includes('\n')) };
        } catch {
          break;
        }
      }
      if (json === 'jsonl') {
        const candidates = lines.map((l, i) => [l, i] as const).filter(([l]) => l.trim().startsWith('{'));
        if (candidates.length === 0) break;
        const [line, i] = rng.pick(candidates);
        try {
          const m = mutateJsonValue(rng, JSON.parse(line), focus);
          lines[i] = jsonText(m.input, false);
          return { what: `line ${i + 1}: ${m.what}`, input: lines.join('\n') };
        } catch {
          break;
        }
      }
      break;
    }
    default: {
      let m = mutateText(rng, original, json, depth + 1, focus);
      const parts = [m.what];
      for (let k = 1 + rng.int(2); k > 0; k--) {
        m = mutateText(rng, m.input, json, depth + 1, focus);
        parts.push(m.what);
      }
      return { what: parts.join('; then '), input: m.input };
    }
  }
  // The chosen edit did not apply (no number, not JSON): a character edit instead.
  const i = rng.int(Math.max(1, n)), c = rng.pick(EDIT_CHARS);
  chars.splice(i, 1, c);
  return { what: `character ${i} replaced by ${JSON.stringify(c)}`, input: chars.join('') };
}

// ---------------------------------------------------------------------------------------------------------------------
// Valid inputs

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

const tinyConfig = (sharedClassifier: boolean): ModelConfig => ({
  dim: 8, hiddenDim: 12, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: 11, seqLen: 6, sharedClassifier,
  normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA,
});

/** Text every tokenizer is tried on once loaded. */
const TEXTS = ['Hello world', '', 'Once upon a time, there was a little girl named Lily.', '12+7=19', ' naïve café 日本語 😀',
  '<s> </s> <|im_start|>user\nhi<|im_end|>', '\u0000\t\n\r', 'a'.repeat(300), 'lone \uD800 half', '\u2581 space symbol'];
const MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'What is 12+7?' },
  { role: 'assistant', content: '<think>\nadd\n</think>\n\n19' },
  { role: 'user', content: 'And 3*4?' },
];

/** Encodes, decodes and renders with a loaded tokenizer: only RemaxInputErrors may come out; ids must be in range. */
function exercise(tok: TextTokenizer, rng: Rng): void {
  const n = tok.vocabSize;
  assert.ok(Number.isSafeInteger(n) && n > 0, `vocabSize ${n}`);
  const checkIds = (ids: number[] | undefined, what: string): void => {
    if (ids === undefined) return;
    for (const id of ids) if (!(Number.isInteger(id) && id >= 0 && id < n)) throw new Error(`${what} gave the id ${id}, not one of 0…${n - 1}`);
  };
  for (const text of [TEXTS[0]!, rng.pick(TEXTS), rng.pick(TEXTS)]) {
    const ids = allow(() => tok.encode(text));
    checkIds(ids, `encode(${JSON.stringify(text.slice(0, 20))})`);
    checkIds(allow(() => tok.encode(text, { specialTokens: false })), 'encode without special tokens');
    const prompt = allow(() => tok.encodePrompt(text));
    checkIds(prompt, 'encodePrompt');
    if (ids) {
      allow(() => tok.decode(ids));
      allow(() => tok.decode(ids, { skipSpecialTokens: true }));
      allow(() => tok.decodeContinuation(ids.slice(0, 2), ids.slice(2)));
      allow(() => tok.tokenStrings(ids));
    }
  }
  const random = Array.from({ length: 6 }, () => rng.int(n));
  allow(() => tok.decode(random));
  allow(() => tok.tokenStrings(random));
  for (const id of [0, n - 1, ...tok.eosIds]) tok.isSpecial(id);
  if (tok.chatTemplate !== undefined) checkIds(allow(() => chatPromptIds(tok, MESSAGES.slice(0, 2))), 'chatPromptIds');
}

// A small byte-level BPE (GPT-2 / Qwen style): 256 byte symbols, merges learned here from a short corpus, three
// special tokens, Qwen2's pre-tokenizer regex and NFC, ChatML template. A few hundred tokens: each load is quick.
const QWEN2_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const CHATML = "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}" +
  "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
const CORPUS = `Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. One day, she
saw a big, red ball in the park. "Can I play with you?" she asked the boy. The boy smiled and said, "Yes, let's play
together!" They played all day and were very happy. 12+7=19. 3*4=12. 100-1=99. The numbers 0 1 2 3 4 5 6 7 8 9 10.
def add(a, b):
    return a + b
Café, naïve, Übermäßig, 日本語のテキスト, 😀 emoji, ☃ snowman. The end.`;

function byteLevelChars(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let extra = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + extra++); }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i]!)));
  return out;
}

function smallBpeFiles(mergeCount = 220): { json: Record<string, unknown>; config: Record<string, unknown> } {
  const chars = byteLevelChars();
  const vocab: Record<string, number> = {};
  chars.forEach((c, b) => (vocab[c] = b));
  const words = new Map<string, { syms: string[]; count: number }>();
  for (const m of CORPUS.matchAll(/'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu)) {
    const syms = Array.from(utf8(m[0]), (b) => chars[b]!);
    const key = syms.join('');
    const w = words.get(key) ?? { syms, count: 0 };
    w.count++;
    words.set(key, w);
  }
  const merges: string[] = [];
  for (let k = 0; k < mergeCount; k++) {
    const pairs = new Map<string, number>();
    for (const { syms, count } of words.values()) {
      for (let i = 0; i + 1 < syms.length; i++) pairs.set(`${syms[i]} ${syms[i + 1]}`, (pairs.get(`${syms[i]} ${syms[i + 1]}`) ?? 0) + count);
    }
    let best: string | undefined, bestCount = 0;
    for (const [p, c] of pairs) if (c > bestCount || (c === bestCount && best !== undefined && p < best)) { best = p; bestCount = c; }
    if (best === undefined) break;
    const [a, b] = best.split(' ') as [string, string];
    merges.push(best);
    vocab[a + b] = Object.keys(vocab).length;
    for (const w of words.values()) {
      const next: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (w.syms[i] === a && w.syms[i + 1] === b) { next.push(a + b); i++; } else next.push(w.syms[i]!);
      }
      w.syms = next;
    }
  }
  const base = Object.keys(vocab).length;
  const specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
  const added = specials.map((content, i) => ({ id: base + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  const json = {
    version: '1.0', truncation: null, padding: null, added_tokens: added,
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: QWEN2_REGEX }, behavior: 'Isolated', invert: false }, byteLevel] },
    post_processor: byteLevel, decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  };
  const config = {
    add_bos_token: false, add_prefix_space: false, additional_special_tokens: ['<|im_start|>', '<|im_end|>'],
    added_tokens_decoder: Object.fromEntries(added.map(({ id, ...rest }) => [String(id), rest])),
    bos_token: null, chat_template: CHATML, clean_up_tokenization_spaces: false, eos_token: '<|im_end|>', errors: 'replace',
    model_max_length: 4096, pad_token: '<|endoftext|>', split_special_tokens: false, tokenizer_class: 'Qwen2Tokenizer', unk_token: null,
  };
  return { json, config };
}

const SMALL_BPE = smallBpeFiles();
const smallBpeTokenizer = (): HfTokenizer => HfTokenizer.fromJson(SMALL_BPE.json, SMALL_BPE.config, { source: 'small/tokenizer.json' });

/** A llama2.c-style tokenizer (byte fallback at 3…258) with some English pieces. */
const SPM_PIECES: [string, number][] = [[' ', -1], ['e', -2], ['t', -2.5], [' t', -3], ['he', -3.5], [' the', -4], ['a', -2], [' a', -3], ['in', -4],
  [' in', -4.5], ['on', -5], ['ce', -5], [' on', -5.5], ['Once', -6], [' Once', -6.5], ['up', -7], ['upon', -7.5], [' upon', -8], ['ti', -9],
  ['me', -9], ['time', -9.5], [' time', -10], ['ll', -10], ['He', -11], ['Hell', -11.5], ['Hello', -12], [' Hello', -12.5], ['or', -13],
  ['ld', -13], ['wor', -14], ['world', -14.5], [' world', -15], ['1', -16], ['2', -16], ['+', -16], ['=', -16], ['é', -17], ['日本', -18]];

// ---------------------------------------------------------------------------------------------------------------------
// 1. llama2.c checkpoints

function checkCheckpoint(c: ReturnType<typeof parseCheckpoint>): void {
  validateConfig(c.config, 'loaded');
  for (const { name, shape } of weightShapes(c.config)) {
    const w = c.weights[name as WeightName];
    if (!(w instanceof Float32Array) || w.length !== elementCount(shape)) throw new Error(`weight ${name} has ${w?.length} values, expected ${elementCount(shape)}`);
  }
}

/** Header field offsets: v0 the 7 int32; v1 magic, version, the 7 int32 and the shared_classifier byte. */
const V0_LAYOUT: ByteLayout = { fields: [0, 4, 8, 12, 16, 20, 24], headerEnd: 28 };
const V1_LAYOUT: ByteLayout = { fields: [0, 4, 8, 12, 16, 20, 24, 28, 32, 36], headerEnd: 256 };

test('fuzz: llama2.c checkpoints (v0 and v1, tiny random and stories260K) load or throw a RemaxInputError', async () => {
  const inputs: { name: string; bytes: Uint8Array; layout: ByteLayout; cases: number }[] = [];
  for (const sharedClassifier of [true, false]) {
    const config = tinyConfig(sharedClassifier), weights = randomInitWeights(config, 3);
    const kind = sharedClassifier ? 'shared classifier' : 'own classifier';
    inputs.push({ name: `tiny v0 (${kind})`, bytes: serializeCheckpoint(config, weights), layout: V0_LAYOUT, cases: count(1000) });
    inputs.push({ name: `tiny v1 (${kind})`, bytes: serializeCheckpointV1(config, weights), layout: V1_LAYOUT, cases: count(1000) });
  }
  if (shared('models/stories260K.bin')) {
    const bytes = readShared('models/stories260K.bin');
    const { config, weights } = parseCheckpoint(bytes, 'stories260K.bin');
    inputs.push({ name: 'stories260K.bin v0', bytes, layout: V0_LAYOUT, cases: count(300) });
    inputs.push({ name: 'stories260K v1', bytes: serializeCheckpointV1(config, weights), layout: V1_LAYOUT, cases: count(300) });
  } else {
    console.log('fuzz: ../shared/models/stories260K.bin not found; the tiny checkpoints only');
  }
  for (const [k, input] of inputs.entries()) {
    checkCheckpoint(parseCheckpoint(input.bytes, 'fuzz.bin'));
    await fuzz({
      name: `llama2.c checkpoint ${input.name}`, seed: 1100 + k, cases: input.cases, source: 'fuzz.bin', size: input.bytes.length,
      memoryFactor: 2,
      valid: input.bytes,
      mutate: (rng) => mutateBytes(rng, input.bytes, input.layout),
      load: (bytes) => {
        const c = parseCheckpoint(bytes, 'fuzz.bin');
        checkCheckpoint(c);
        return c;
      },
    });
  }
});

test('fuzz: every llama2.c header field forged to every boundary value fails fast, without allocating', () => {
  const config = tinyConfig(true), weights = randomInitWeights(config, 3);
  const values = [...U32_FORGED, -1, -2, -7, -(2 ** 31) + 1, 1 << 24, (1 << 24) + 1, 1 << 20, 46341, 65535 * 2];
  let cases = 0, maxMs = 0;
  for (const [format, bytes, layout] of [['v0', serializeCheckpoint(config, weights), V0_LAYOUT], ['v1', serializeCheckpointV1(config, weights), V1_LAYOUT]] as const) {
    for (const field of layout.fields) {
      for (const v of values) {
        for (const second of [undefined, ...layout.fields]) {
          // One field, or two fields forged together (dims whose product overflows).
          const out = bytes.slice();
          const view = new DataView(out.buffer);
          view.setUint32(field, v >>> 0, true);
          if (second !== undefined && second !== field) view.setUint32(second, 0x7fffffff, true);
          const before = process.memoryUsage().arrayBuffers, t0 = performance.now();
          try {
            checkCheckpoint(parseCheckpoint(out, 'forged.bin'));
          } catch (error) {
            assert.ok(error instanceof RemaxInputError && error.message.startsWith('forged.bin'),
              `${format}: field at byte ${field} = ${v}${second !== undefined ? `, byte ${second} = 2147483647` : ''}: ${describeError(error)}`);
          }
          const ms = performance.now() - t0;
          maxMs = Math.max(maxMs, ms);
          assert.ok(ms < 200, `${format}: field at ${field} = ${v}: ${ms} ms`);
          assert.ok(process.memoryUsage().arrayBuffers - before < MiB, `${format}: field at ${field} = ${v}: allocated`);
          cases++;
        }
      }
    }
  }
  console.log(`fuzz llama2.c forged header fields: ${cases} cases, slowest ${maxMs.toFixed(2)} ms`);
});

// ---------------------------------------------------------------------------------------------------------------------
// 2. llama2.c tokenizer.bin

/** Offsets of max_token_length and of every record's score and length (the first 400 records). */
function tokenizerLayout(bytes: Uint8Array): ByteLayout {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields = [0];
  let offset = 4;
  while (offset + 8 <= bytes.length && fields.length < 800) {
    fields.push(offset, offset + 4);
    offset += 8 + view.getInt32(offset + 4, true);
  }
  return { fields, headerEnd: offset };
}

test('fuzz: llama2.c tokenizer.bin files load (then encode and decode) or throw a RemaxInputError', async () => {
  const inputs: { name: string; bytes: Uint8Array; cases: number }[] = [
    { name: 'synthetic (298 tokens)', bytes: syntheticTokenizerBin(SPM_PIECES), cases: count(1500) },
  ];
  if (shared('models/aidreams260K.tok512.bin')) inputs.push({ name: 'aidreams260K.tok512.bin', bytes: readShared('models/aidreams260K.tok512.bin'), cases: count(800) });
  if (shared('tokenizers/llama2/tokenizer.bin')) inputs.push({ name: 'Llama 2 tokenizer.bin (32000)', bytes: readShared('tokenizers/llama2/tokenizer.bin'), cases: count(40) });
  for (const [k, input] of inputs.entries()) {
    const layout = tokenizerLayout(input.bytes);
    exercise(Tokenizer.fromBytes(input.bytes, 'fuzz-tokenizer.bin'), new Rng(1));
    await fuzz({
      name: `tokenizer.bin ${input.name}`, seed: 1200 + k, cases: input.cases, source: 'fuzz-tokenizer.bin', size: input.bytes.length,
      memoryFactor: 8,
      valid: input.bytes,
      mutate: (rng) => mutateBytes(rng, input.bytes, layout),
      load: (bytes, rng) => {
        const tok = Tokenizer.fromBytes(bytes, 'fuzz-tokenizer.bin');
        exercise(tok, rng);
        allow(() => tok.assertFitsModel(512, 'the model'));
        tok.vocabulary();
        return tok;
      },
    });
  }
});

test('fuzz: a tokenizer.bin whose lengths ask for gigabytes fails fast', () => {
  const bytes = syntheticTokenizerBin(SPM_PIECES);
  const layout = tokenizerLayout(bytes);
  for (const field of layout.fields.slice(0, 60)) {
    for (const v of [0x7fffffff, 0x80000000, 0xffffffff, 0x40000000, bytes.length, bytes.length - field]) {
      const out = bytes.slice();
      new DataView(out.buffer).setUint32(field, v >>> 0, true);
      const before = process.memoryUsage().arrayBuffers, t0 = performance.now();
      try {
        Tokenizer.fromBytes(out, 'forged.bin');
      } catch (error) {
        assert.ok(error instanceof RemaxInputError, `field at ${field} = ${v}: ${describeError(error)}`);
      }
      assert.ok(performance.now() - t0 < 200, `field at ${field} = ${v}: slow`);
      assert.ok(process.memoryUsage().arrayBuffers - before < 8 * bytes.length + MiB, `field at ${field} = ${v}: allocated`);
    }
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// 3. tokenizer.json + tokenizer_config.json

/** Paths of a tokenizer.json worth most edits: everything but the bulk of vocab and merges. */
const tokenizerFocus = (path: JsonPath): boolean => !(path[0] === 'model' && (path[1] === 'vocab' || path[1] === 'merges') && path.length > 2) || path.length === 3;

function tokenizerJsonFuzz(name: string, seed: number, cases: number, json: string, config: string, configShare: number) {
  return fuzz({
    name, seed, cases, source: 'fuzz/tokenizer', size: json.length + config.length, memoryFactor: 8,
    valid: { json: utf8(json), config: utf8(config) as Uint8Array | undefined },
    mutate: (rng) => {
      if (rng.chance(configShare)) {
        const m = mutateTextBytes(rng, config, 'json');
        return { what: `tokenizer_config.json: ${m.what}`, input: { json: utf8(json), config: m.input as Uint8Array | undefined } };
      }
      if (rng.chance(0.03)) return { what: 'no tokenizer_config.json', input: { json: utf8(json), config: undefined } };
      const m = rng.chance(0.85) ? (() => { const t = mutateText(rng, json, 'json', 0, tokenizerFocus); return { what: t.what, input: utf8(t.input) }; })()
        : mutateTextBytes(rng, json, 'none');
      return { what: `tokenizer.json: ${m.what}`, input: { json: m.input, config: utf8(config) as Uint8Array | undefined } };
    },
    load: ({ json: j, config: c }, rng) => {
      const tok = tokenizerFromHfFiles(j, c, { source: 'fuzz/tokenizer.json', extraEosIds: rng.chance(0.2) ? [rng.int(600)] : [] });
      exercise(tok, rng);
      return tok;
    },
  });
}

test('fuzz: tokenizer.json and tokenizer_config.json (a small byte-level BPE, a SentencePiece BPE) load and work or throw a RemaxInputError', async () => {
  const bpeJson = JSON.stringify(SMALL_BPE.json, null, 2), bpeConfig = JSON.stringify(SMALL_BPE.config, null, 2);
  exercise(tokenizerFromHfFiles(bpeJson, bpeConfig, { source: 'fuzz/tokenizer.json' }), new Rng(1));
  await tokenizerJsonFuzz(`tokenizer.json small byte-level BPE (${smallBpeTokenizer().vocabSize} tokens)`, 1300, count(1500), bpeJson, bpeConfig, 0.35);
  const wrong = [
    ...everyFieldWrong(SMALL_BPE.json).map((m) => ({ what: `tokenizer.json: ${m.what}`, input: { json: utf8(jsonText(m.input, false)), config: utf8(bpeConfig) } })),
    ...everyFieldWrong(SMALL_BPE.config).map((m) => ({ what: `tokenizer_config.json: ${m.what}`, input: { json: utf8(bpeJson), config: utf8(jsonText(m.input, false)) } })),
  ];
  await fuzz({
    name: 'tokenizer.json small byte-level BPE, every field wrong', seed: 1302, cases: wrong.length, source: 'fuzz/tokenizer', size: bpeJson.length + bpeConfig.length,
    memoryFactor: 8, valid: { json: utf8(bpeJson), config: utf8(bpeConfig) }, mutate: (_, i) => wrong[i]!,
    load: ({ json, config }, rng) => {
      const tok = tokenizerFromHfFiles(json, config, { source: 'fuzz/tokenizer.json' });
      exercise(tok, rng);
      return tok;
    },
  });

  const spm = sentencePieceTokenizerFiles(syntheticTokenizer(SPM_PIECES));
  const spmJson = new TextDecoder().decode(spm['tokenizer.json']), spmConfig = new TextDecoder().decode(spm['tokenizer_config.json']);
  await tokenizerJsonFuzz('tokenizer.json small SentencePiece BPE (from a tokenizer.bin)', 1301, count(800), spmJson, spmConfig, 0.35);
});

/** The Qwen3 tokenizer.json cut to its first `keep` ids (merges among them, every added token): loads in milliseconds. */
function reducedQwenJson(full: any, keep: number): Record<string, unknown> {
  const vocab = Object.fromEntries(Object.entries(full.model.vocab as Record<string, number>).filter(([, id]) => id < keep));
  const merges = (full.model.merges as (string | [string, string])[]).filter((m) => {
    const [a, b] = Array.isArray(m) ? m : (m.split(' ') as [string, string]);
    return a in vocab && b in vocab && a + b in vocab;
  });
  return { ...full, model: { ...full.model, vocab, merges } };
}

const QWEN = 'models/hf/qwen2-tiny';

test('fuzz: the real Qwen3 tokenizer_config.json, mutated, with its tokenizer.json', { skip: !shared(`${QWEN}/tokenizer.json`) && 'no ../shared qwen2-tiny' }, async () => {
  const config = new TextDecoder().decode(readShared(`${QWEN}/tokenizer_config.json`));
  const full = readSharedJson(`${QWEN}/tokenizer.json`);
  // Most cases with the vocabulary cut to 6000 ids (same components, same 26 added tokens at ids 151643+), a few with
  // the whole one (~0.25 s a load); the JSON is parsed once and handed to HfTokenizer.fromJson, which is what
  // tokenizerFromHfFiles does after parsing (parseJsonFile is fuzzed on the config's bytes).
  const reduced = reducedQwenJson(full, 6000);
  const wrong = everyFieldWrong(JSON.parse(config), undefined, 2);
  await fuzz({
    name: 'tokenizer_config.json of Qwen3, every field wrong', seed: 1312, cases: wrong.length, source: 'fuzz/tokenizer', size: config.length, memoryFactor: 8,
    valid: JSON.parse(config) as unknown, mutate: (_, i) => ({ what: wrong[i]!.what, input: JSON.parse(jsonText(wrong[i]!.input, false)) as unknown }),
    load: (parsed, rng) => {
      const tok = HfTokenizer.fromJson(reduced, parsed, { source: 'fuzz/tokenizer.json' });
      exercise(tok, rng);
      return tok;
    },
  });
  for (const [name, json, cases, seed] of [['Qwen3 tokenizer.json cut to 6000 ids', reduced, count(300), 1310], ['Qwen3 tokenizer.json (151669 tokens)', full, count(12), 1311]] as const) {
    await fuzz({
      name: `tokenizer_config.json of Qwen3 with ${name}`, seed, cases, source: 'fuzz/tokenizer', size: config.length, memoryFactor: 8, slowMs: 3000,
      valid: utf8(config),
      mutate: (rng) => mutateTextBytes(rng, config, 'json'),
      load: (bytes, rng) => {
        const parsed = parseJsonFile(bytes, 'fuzz/tokenizer_config.json', 'the tokenizer_config.json');
        const tok = HfTokenizer.fromJson(json, parsed, { source: 'fuzz/tokenizer.json' });
        exercise(tok, rng);
        return tok;
      },
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// 4. GGUF vocabularies (tokenizer.ggml.* metadata)

type Metadata = Map<string, unknown>;

const WRONG_METADATA: unknown[] = [undefined, null, 'llama', 'gpt2', '', 0, 1, -1, 2.5, NaN, Infinity, 2 ** 53, 4294967296, 1n, -1n, (1n << 64n) - 1n, true, false,
  [], [1, 2], ['a', 'b'], [null], {}, { type: 'u32', value: 1 }, { type: 'string', value: 7 }, new Float32Array(3), new Int32Array([1, 2, 3]), new BigInt64Array(2), new Uint8Array(4)];

function describeMeta(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as ArrayLike<unknown>).length})`;
  if (Array.isArray(v)) return v.length > 8 ? `an array of ${v.length}` : JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? `${x}n` : x));
  return typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : String(v);
}

function mutateMetadata(rng: Rng, base: Metadata, depth = 0): Mutation<Metadata> {
  const m = new Map(base);
  const keys = [...m.keys()].filter((k) => k.startsWith('tokenizer.'));
  const key = rng.pick(keys);
  const value = m.get(key);
  const arrayKeys = keys.filter((k) => Array.isArray(m.get(k)) || ArrayBuffer.isView(m.get(k)));
  const n = (m.get('tokenizer.ggml.tokens') as unknown[] | undefined)?.length ?? 0;
  const r = rng.int(depth > 0 ? 9 : 10);
  switch (r) {
    case 0: case 1: {
      const v = rng.pick(WRONG_METADATA);
      if (v === undefined) m.delete(key); else m.set(key, v);
      return { what: `${key} = ${describeMeta(v)}`, input: m };
    }
    case 2: {
      // A token id out of range, or of the wrong kind.
      const idKey = rng.pick(['bos_token_id', 'eos_token_id', 'unknown_token_id', 'padding_token_id', 'eot_token_id', 'eom_token_id', 'sep_token_id']);
      const v = rng.pick<unknown>([n, n + 1, -1, 2 ** 32, 2 ** 31, 1.5, NaN, BigInt(n), (1n << 64n) - 1n, 0, n - 1, '1']);
      m.set(`tokenizer.ggml.${idKey}`, v);
      return { what: `tokenizer.ggml.${idKey} = ${describeMeta(v)} (${n} tokens)`, input: m };
    }
    case 3: {
      // An array one entry short, longer, or empty.
      const k = rng.pick(arrayKeys);
      const a = Array.from(m.get(k) as ArrayLike<unknown>);
      const r2 = rng.int(4);
      if (r2 === 0) a.pop(); else if (r2 === 1) a.push(a[rng.int(a.length)]); else if (r2 === 2) a.length = 0; else a.length = rng.int(a.length);
      m.set(k, a);
      return { what: `${k} resized to ${a.length}`, input: m };
    }
    case 4: {
      // One array element of the wrong type or value.
      const k = rng.pick(arrayKeys);
      const a = Array.from(m.get(k) as ArrayLike<unknown>);
      if (a.length === 0) break;
      const i = rng.chance(0.5) ? rng.int(Math.min(a.length, 300)) : rng.int(a.length);
      const v = rng.pick<unknown>([undefined, null, NaN, Infinity, -Infinity, -1, 7, 2.5, 1e308, 1n, '', ' ', 'a b', 'a b c', '<0xZZ>', '<0x41>', '\uD800', 'x'.repeat(5000), '▁▁', '<|im_end|>', a[0], {}, []]);
      a[i] = v;
      m.set(k, a);
      return { what: `${k}[${i}] = ${describeMeta(v)}`, input: m };
    }
    case 5: {
      const k = 'tokenizer.ggml.model';
      const v = rng.pick(['llama', 'gpt2', 'bert', 'LLAMA', '', 'rwkv', 't5', 'none']);
      m.set(k, v);
      return { what: `${k} = ${JSON.stringify(v)}`, input: m };
    }
    case 6: {
      const v = rng.pick(['default', 'gpt-2', 'llama-bpe', 'qwen2', 'deepseek-llm', '', 'QWEN2']);
      m.set('tokenizer.ggml.pre', v);
      return { what: `tokenizer.ggml.pre = ${JSON.stringify(v)}`, input: m };
    }
    case 7: {
      // Typed arrays where the parser gives arrays (what a map built elsewhere may hold).
      const k = rng.pick(arrayKeys);
      const a = Array.from(m.get(k) as ArrayLike<unknown>);
      if (typeof a[0] !== 'number') break;
      const typed = rng.pick([Float32Array, Float64Array, Int32Array, Uint8Array, BigInt64Array] as const);
      m.set(k, typed === BigInt64Array ? BigInt64Array.from(a as number[], (x) => BigInt(Math.trunc(Number.isFinite(x) ? x : 0)))
        : (typed as unknown as { from(values: number[]): ArrayLike<number> }).from(a as number[]));
      return { what: `${k} as a ${typed.name}`, input: m };
    }
    case 8: {
      const k = rng.pick(['tokenizer.ggml.add_bos_token', 'tokenizer.ggml.add_eos_token', 'tokenizer.ggml.add_space_prefix', 'tokenizer.chat_template']);
      const v = rng.pick<unknown>([true, false, 1, 'true', null, '{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}', '{% if %}', 7]);
      m.set(k, v);
      return { what: `${k} = ${describeMeta(v)}`, input: m };
    }
    default: {
      let mm = mutateMetadata(rng, base, depth + 1);
      const parts = [mm.what];
      for (let k = 1 + rng.int(2); k > 0; k--) {
        mm = mutateMetadata(rng, mm.input, depth + 1);
        parts.push(mm.what);
      }
      return { what: parts.join('; then '), input: mm.input };
    }
  }
  m.delete(key);
  return { what: `${key} deleted (${describeMeta(value)})`, input: m };
}

/** The llama-2-tiny-random.gguf metadata with its vocabulary cut to the first `keep` tokens (ids kept inside). */
function cutVocabulary(metadata: Metadata, keep: number): Metadata {
  const m = new Map(metadata);
  for (const k of ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type']) {
    const v = m.get(k);
    if (v !== undefined) m.set(k, Array.from(v as ArrayLike<unknown>).slice(0, keep));
  }
  return m;
}

test('fuzz: GGUF vocabularies (llama from llama-2-tiny-random.gguf, a small gpt2) load and work or throw a RemaxInputError', async () => {
  const bases: { name: string; metadata: Metadata; cases: number }[] = [];
  const gpt2 = new Map<string, unknown>(ggufTokenizerMetadata(smallBpeTokenizer()).map((e) => [e.key, e.value]));
  bases.push({ name: `small gpt2 (${(gpt2.get('tokenizer.ggml.tokens') as unknown[]).length} tokens, pre qwen2)`, metadata: gpt2, cases: count(1500) });
  bases.push({ name: 'llama from a tokenizer.bin (298 tokens)', metadata: new Map(ggufTokenizerMetadata(syntheticTokenizer(SPM_PIECES)).map((e) => [e.key, e.value])), cases: count(600) });
  if (shared('models/gguf/llama-2-tiny-random.gguf')) {
    const metadata = parseGguf(readShared('models/gguf/llama-2-tiny-random.gguf'), 'llama-2-tiny-random.gguf').metadata as Metadata;
    bases.push({ name: 'llama-2-tiny-random.gguf cut to 600 tokens', metadata: cutVocabulary(metadata, 600), cases: count(1000) });
    bases.push({ name: 'llama-2-tiny-random.gguf (32000 tokens)', metadata, cases: count(40) });
  } else {
    console.log('fuzz: ../shared/models/gguf/llama-2-tiny-random.gguf not found; the synthetic vocabularies only');
  }
  for (const [k, base] of bases.entries()) {
    exercise(tokenizerFromGguf(base.metadata, 'fuzz.gguf'), new Rng(1));
    await fuzz({
      name: `GGUF vocabulary ${base.name}`, seed: 1400 + k, cases: base.cases, source: 'fuzz.gguf', size: 64 * 1024, slowMs: 3000,
      valid: base.metadata,
      mutate: (rng) => mutateMetadata(rng, base.metadata),
      load: (metadata, rng) => {
        const tok = tokenizerFromGguf(metadata, 'fuzz.gguf');
        exercise(tok, rng);
        return tok;
      },
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// 5. Chat templates

const LLAMA2_TEMPLATE = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
  "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}" +
  "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
  "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
/** Jinja fragments a mutation may insert (loops over huge ranges, deep indents, filters, unknown names). */
const JINJA_SNIPPETS = ['{{ messages|length }}', '{% for i in range(1000000000) %}x{% endfor %}', '{{ range(99999999999)|length }}', '{{ range(0, 10, 0.0000000000000001)|length }}',
  "{{ messages|tojson(indent=400000000) }}", "{{ 'x'|indent(400000000) }}", '{{ messages[::-1][0].content }}', '{{ messages[0].content.split("")|length }}', '{% set x = x + 1 %}',
  '{{ undefined_name.attr }}', '{{ raise_exception("boom") }}', '{% if %}', '{% endfor %}', '{{ 1 / 0 }}', '{{ 10 ** 400 }}', '{{ messages * 3 }}',
  '{% macro m(a) %}{{ m(a) }}{% endmacro %}{{ m(1) }}', '{{ strftime_now("%Y") }}', '{{ messages|map(attribute="role")|join(",") }}', '{{ (messages|first).content|upper }}',
  "{{ 'a' ~ 1e308 }}", '{% for m in messages recursive %}{{ loop(messages) }}{% endfor %}', '{{ namespace(a=1).b }}', '{{ messages|items }}', '{{ tools|tojson }}',
  '{{ "%s"|format(1) }}', '{{ messages|selectattr("role", "equalto", "user")|list|length }}', '{{ messages|sort(attribute="content")|first }}', '{{ 9999999999|string|length }}'];
const JINJA_SWAPS: [string, string][] = [['{%', '{{'], ['%}', '}}'], ['endif', 'endfor'], ['endfor', 'endif'], ['messages', 'message'], ['message', 'messages'], ['==', '='],
  ['.content', '.contents'], ['loop.index0', 'loop.length'], ['+', '-'], ['if ', 'for '], ['not ', ''], ['[::-1]', '[::0]'], ['- 1', '- 1e308'], ['-%}', '%}'], ["'", '"']];

function mutateTemplate(rng: Rng, template: string): Mutation<string> {
  const r = rng.int(10);
  if (r < 2) {
    const s = rng.pick(JINJA_SNIPPETS), i = rng.int(template.length + 1);
    return { what: `${JSON.stringify(s)} inserted at character ${i}`, input: template.slice(0, i) + s + template.slice(i) };
  }
  if (r < 4) {
    const [a, b] = rng.pick(JINJA_SWAPS);
    const hits = [...template.matchAll(new RegExp(a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g'))];
    if (hits.length > 0) {
      const h = rng.pick(hits);
      return { what: `${JSON.stringify(a)} at character ${h.index} replaced by ${JSON.stringify(b)}`, input: template.slice(0, h.index) + b + template.slice(h.index! + a.length) };
    }
  }
  return mutateText(rng, template, 'none');
}

test('fuzz: chat templates (Qwen3, Llama 3, ChatML, Llama 2), mutated, render or throw a RemaxInputError', async () => {
  const templates: [string, string][] = [['ChatML', CHATML], ['Llama 2', LLAMA2_TEMPLATE]];
  for (const [name, dir] of [['Qwen3', 'qwen2-tiny'], ['Llama 3', 'llama3-tiny']]) {
    if (shared(`models/hf/${dir}/tokenizer_config.json`)) templates.push([name!, readSharedJson(`models/hf/${dir}/tokenizer_config.json`).chat_template as string]);
  }
  const conversations: ChatMessage[][] = [MESSAGES.slice(1, 2), MESSAGES, MESSAGES.slice(1, 3),
    [{ role: 'user', content: 'call it' }, { role: 'assistant', content: '', tool_calls: [{ function: { name: 'f', arguments: { a: 1 } } }] }, { role: 'tool', content: '{"r": 2}' }]];
  for (const [k, [name, template]] of templates.entries()) {
    await fuzz({
      name: `chat template ${name}`, seed: 1500 + k, cases: count(700), source: 'fuzz-template.jinja', size: template.length, memoryFactor: 64, slowMs: 2000,
      valid: { template, messages: MESSAGES.slice(1, 2) },
      mutate: (rng) => {
        const m = mutateTemplate(rng, template), c = rng.int(conversations.length);
        return { what: `${m.what} (conversation ${c})`, input: { template: m.input, messages: conversations[c]! } };
      },
      load: ({ template: t, messages }, rng) => renderChat(t, messages, {
        addGenerationPrompt: rng.chance(0.5),
        specialTokenStrings: { bos_token: '<s>', eos_token: '</s>' },
        source: 'fuzz-template.jinja',
        variables: rng.chance(0.3) ? { enable_thinking: false, tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] } : undefined,
      }),
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// 6. Training state (model.bin.state)

// (Fixed: readJsonSection's messages show values with preview(), which never throws; see 'found by the fuzz, fixed'.)
const TRAINING_STATE_KNOWN: KnownDefect[] = [];
const UNSAVABLE_STATE = 'the loaded state cannot be saved again';

/** parseTrainingState, and the state it returns serialized again (what the next checkpoint does with it). */
function loadAndResaveState(bytes: Uint8Array, expect?: { config: ModelConfig; parameterCount: number }): TrainingState {
  const state = parseTrainingState(bytes, 'fuzz.state', expect);
  try {
    serializeTrainingState(state);
  } catch (error) {
    throw new Error(`${UNSAVABLE_STATE}: ${describeError(error)}`);
  }
  return state;
}

function sampleTrainingState(): TrainingState {
  const config = tinyConfig(true);
  const parameters = weightShapes(config).reduce((s, { shape }) => s + elementCount(shape), 0);
  const rng = new Rng(5);
  return {
    step: 37,
    schedule: { kind: 'cosine', lr: 3e-4, warmupSteps: 5, totalSteps: 150, minLr: 3e-5 },
    optimizer: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clipNorm: 1 },
    data: { seed: 7, count: 200, position: { epoch: 2, index: 13 } },
    samplerState: 0xfedcba9876543210n,
    config,
    extra: { estimator: 'remax', metrics: { reward: [0.25, 0.5] } },
    m: Float32Array.from({ length: parameters }, () => rng.float() - 0.5),
    v: Float32Array.from({ length: parameters }, () => rng.float() * 1e-3),
  };
}

/** The state file with its JSON section replaced (the length field at byte 8 updated; the rest kept as it was). */
function withJsonSection(bytes: Uint8Array, text: string): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(8, true);
  const json = utf8(text);
  const tail = bytes.subarray(Math.ceil((12 + length) / 4) * 4);
  const at = Math.ceil((12 + json.length) / 4) * 4;
  const out = new Uint8Array(at + tail.length);
  out.set(bytes.subarray(0, 12));
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  out.set(tail, at);
  return out;
}

test('fuzz: training states (model.bin.state) load or throw a RemaxInputError, with and without the model to match', async () => {
  const state = sampleTrainingState();
  const bytes = serializeTrainingState(state);
  const expect = { config: state.config, parameterCount: state.m.length };
  // Locate what the current serializer wrote: the JSON section after the 12-byte header (if the layout changes, the
  // section mutations below still produce inputs that must be refused cleanly).
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const jsonLength = view.getUint32(8, true);
  const jsonSection = new TextDecoder().decode(bytes.subarray(12, 12 + jsonLength));
  const countAt = Math.ceil((12 + jsonLength) / 4) * 4;
  const layout: ByteLayout = { fields: [0, 4, 8, countAt, countAt + 4, bytes.length - 4], headerEnd: countAt + 8 };
  // Version 2 files end with an FNV-1a hash of every byte before it, which refuses any changed byte before the JSON is
  // read. So that mutations also reach the checks behind it, most mutated files are signed again (when the serializer's
  // output ends with such a hash), and some are written as version 1, which has none and is still read.
  const words = (b: Uint8Array, end: number) => new Uint32Array(b.slice(0, end).buffer);
  const signed = bytes.length % 4 === 0 && fnv1aWords(words(bytes, bytes.length - 4)) === view.getUint32(bytes.length - 4, true);
  const resign = (b: Uint8Array): Uint8Array => {
    if (!signed || b.length < 8 || b.length % 4 !== 0) return b;
    const out = b.slice();
    new DataView(out.buffer).setUint32(out.length - 4, fnv1aWords(words(out, out.length - 4)), true);
    return out;
  };
  const asVersion1 = (b: Uint8Array): Uint8Array => {
    if (!signed || b.length < 12) return b;
    const out = b.slice(0, b.length - 4);
    new DataView(out.buffer).setUint32(4, 1, true);
    return out;
  };
  const sign = (rng: Rng, m: Mutation<Uint8Array>): Mutation<Uint8Array> => {
    const r = rng.float();
    if (r < 0.6) return { what: `${m.what} (signed again)`, input: resign(m.input) };
    if (r < 0.8) return { what: `${m.what} (as version 1, without the hash)`, input: asVersion1(m.input) };
    return m;
  };
  parseTrainingState(bytes, 'fuzz.state', expect);
  for (const [k, withExpect] of [false, true].entries()) {
    await fuzz({
      name: `training state${withExpect ? ' (with the model to match)' : ''}`, seed: 1600 + k, cases: count(1200), source: 'fuzz.state', size: bytes.length,
      memoryFactor: 4, known: TRAINING_STATE_KNOWN, valid: bytes,
      mutate: (rng) => {
        if (rng.chance(0.45)) {
          const m = mutateText(rng, jsonSection, 'json');
          return sign(rng, { what: `JSON section: ${m.what}`, input: withJsonSection(bytes, m.input) });
        }
        return rng.chance(0.5) ? sign(rng, mutateBytes(rng, bytes, layout)) : mutateBytes(rng, bytes, layout);
      },
      load: (input) => loadAndResaveState(input, withExpect ? expect : undefined),
    });
  }
  const wrong = everyFieldWrong(JSON.parse(jsonSection));
  await fuzz({
    name: 'training state, every JSON field wrong (signed again)', seed: 1602, cases: wrong.length, source: 'fuzz.state', size: bytes.length,
    known: TRAINING_STATE_KNOWN, valid: bytes,
    mutate: (_, i) => ({ what: wrong[i]!.what, input: resign(withJsonSection(bytes, jsonText(wrong[i]!.input, false))) }),
    load: (input) => loadAndResaveState(input, expect),
  });
});

// ---------------------------------------------------------------------------------------------------------------------
// 7. A run's config.json / --config file

// (Fixed: parseValue's messages show values with preview(); see 'found by the fuzz, fixed'.)
const TRAIN_OPTIONS_KNOWN: KnownDefect[] = [];

test('fuzz: a run\'s config.json (resolveTrainOptions) resolves or throws a RemaxInputError', async () => {
  const defaults = resolveTrainOptions({}, {}, 'config');
  const { resume: _r, config: _c, 'stop-at': _s, quiet: _q, ...saved } = defaults;
  const runConfig = JSON.stringify({ ...saved, model: 'stories260K.bin', tokenizer: 'tok512.bin', prompts: 'train.jsonl', 'eval-prompts': 'eval.jsonl' }, null, 2);
  const FLAG_VALUES = ['', '0', '-1', '1e308', 'NaN', 'auto', 'x', '1.5', '4097', ' 1', '0x10', 'true', '1e-400'];
  await fuzz({
    name: 'config.json of a run', seed: 1700, cases: count(2500), source: /fuzz-config\.json|^--/, size: runConfig.length, known: TRAIN_OPTIONS_KNOWN,
    valid: { text: runConfig, flags: {} as Record<string, string | boolean> },
    mutate: (rng) => {
      const m = mutateText(rng, runConfig, 'json');
      const flags: Record<string, string | boolean> = {};
      let what = m.what;
      if (rng.chance(0.15)) {
        const name = rng.pick(Object.keys(saved)), v = rng.chance(0.2) ? rng.chance(0.5) : rng.pick(FLAG_VALUES);
        flags[name] = v;
        what += `; flag --${name} ${JSON.stringify(v)}`;
      }
      return { what, input: { text: m.input, flags } };
    },
    load: ({ text, flags }) => {
      // What train.ts's readJson does before: JSON that is not an object is refused there.
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        throw new RemaxInputError('fuzz-config.json is not JSON');
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RemaxInputError('fuzz-config.json is not an object');
      return resolveTrainOptions(flags, value as Record<string, unknown>, 'fuzz-config.json');
    },
  });
  const wrong = everyFieldWrong(JSON.parse(runConfig));
  await fuzz({
    name: 'config.json of a run, every field wrong', seed: 1701, cases: wrong.length, source: 'fuzz-config.json', size: runConfig.length,
    known: TRAIN_OPTIONS_KNOWN, valid: JSON.parse(runConfig) as unknown,
    mutate: (_, i) => ({ what: wrong[i]!.what, input: JSON.parse(jsonText(wrong[i]!.input, false)) as unknown }),
    load: (config) => resolveTrainOptions({}, config as Record<string, unknown>, 'fuzz-config.json'),
  });
});

// ---------------------------------------------------------------------------------------------------------------------
// 8. metrics.jsonl (remax plot)

function metricsText(steps: number): string {
  const rng = new Rng(8);
  const lines: string[] = [];
  for (let step = 1; step <= steps; step++) {
    lines.push(JSON.stringify({
      step, reward_mean: rng.float(), reward_std: 0.1 * rng.float(), greedy_reward_mean: rng.float(), advantage_mean: rng.float() - 0.5,
      kl: 0.01 * step, loss: -0.05 + 0.01 * rng.float(), grad_norm: 1 + rng.float(), lr: 3e-4, response_length_mean: 12 + rng.int(5),
      skipped: step % 7 === 0 ? 1 : 0, tokens_per_second: 10000 + rng.int(1000), time_sampling: 0.1, time_greedy: 0.05, time_reward: 0.01,
      time_reference: 0.02, time_backward: 0.2, time_optimizer: 0.01, ...(step % 5 === 0 ? { eval_reward_mean: 0.5 } : {}), estimator: 'remax',
    }));
  }
  return `${lines.join('\n')}\n`;
}

test('fuzz: metrics.jsonl parses (and plots) or throws a RemaxInputError', async () => {
  const text = metricsText(24);
  renderReport([{ label: 'fuzz-metrics.jsonl', rows: parseMetricsJsonl(text, 'fuzz-metrics.jsonl') }]);
  await fuzz({
    name: 'metrics.jsonl', seed: 1800, cases: count(1200), source: 'fuzz-metrics.jsonl', size: text.length * 2, memoryFactor: 16, slowMs: 2000, valid: text,
    mutate: (rng) => {
      const m = mutateTextBytes(rng, text, 'jsonl');
      return { what: m.what, input: new TextDecoder().decode(m.input) };
    },
    load: (input) => {
      const rows = parseMetricsJsonl(input, 'fuzz-metrics.jsonl');
      summarizeRun(rows);
      return renderReport([{ label: 'fuzz-metrics.jsonl', rows }, { label: 'base', rows: parseMetricsJsonl(text, 'base') }]);
    },
  });
  // Every field of one line wrong, that line in the middle of the file.
  const lines = text.split('\n');
  const wrong = everyFieldWrong(JSON.parse(lines[5]!));
  await fuzz({
    name: 'metrics.jsonl, every field of a line wrong', seed: 1801, cases: wrong.length, source: 'fuzz-metrics.jsonl', size: text.length * 2, memoryFactor: 16,
    valid: text, mutate: (_, i) => ({ what: `line 6: ${wrong[i]!.what}`, input: [...lines.slice(0, 5), jsonText(wrong[i]!.input, false), ...lines.slice(6)].join('\n') }),
    load: (input) => {
      const rows = parseMetricsJsonl(input, 'fuzz-metrics.jsonl');
      summarizeRun(rows);
      return renderReport([{ label: 'fuzz-metrics.jsonl', rows }]);
    },
  });
});

// ---------------------------------------------------------------------------------------------------------------------
// 9. Prompts and SFT data

// (Fixed: loadPrompts refuses a prompt of no tokens, naming the line; see 'found by the fuzz, fixed'.)
const PROMPTS_KNOWN: KnownDefect[] = [];
const EMPTY_PROMPT = 'an empty prompt was accepted';

const PROMPTS = [
  { prompt: '12+7=', answer: '19' },
  { prompt: 'Once upon a time', id: 2, meta: { tags: ['story'], weight: 0.5 } },
  { messages: [{ role: 'user', content: 'What is 3*4?' }], answer: '12' },
  { prompt: 'naïve café 日本語 😀', answer: '' },
  { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello' }], answer: 'Hi' },
].map((p) => JSON.stringify(p)).join('\n') + '\n';

const SFT_JSONL = [
  { text: 'Once upon a time, there was a little girl named Lily.' },
  { prompt: '12+7=', completion: '19' },
  { prompt: '', completion: 'Hello world' },
  { messages: [{ role: 'user', content: 'What is 3*4?' }, { role: 'assistant', content: '12' }] },
  { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }], id: 5 },
].map((p) => JSON.stringify(p)).join('\n') + '\n';

const SFT_TXT = 'Once upon a time, there was a little girl named Lily.\nShe loved to play.\n\n\nThe end.\n\n12+7=19\n';

interface PromptOptions { seqLen: number; maxNewTokens: number; truncate: boolean; chat: ChatSettings }

function checkPromptRecords(records: ReturnType<typeof loadPrompts>, tok: TextTokenizer, seqLen: number): void {
  for (const r of records) {
    if (typeof r.prompt !== 'string') throw new Error('a record without prompt text');
    if (r.promptIds.length === 0) throw new Error(`${EMPTY_PROMPT}: ${JSON.stringify(r.prompt)}`);
    if (r.promptIds.length >= seqLen) throw new Error(`a ${r.promptIds.length}-token prompt was accepted for a ${seqLen}-token context`);
    for (const id of r.promptIds) if (!(Number.isInteger(id) && id >= 0 && id < tok.vocabSize)) throw new Error(`prompt id ${id}`);
  }
}

function checkSftExamples(examples: ReturnType<typeof loadSftExamples>, tok: TextTokenizer, seqLen: number): void {
  for (const e of examples) {
    if (e.ids.length < 2 || e.ids.length > seqLen) throw new Error(`an example of ${e.ids.length} tokens for a ${seqLen}-token sequence`);
    if (e.weights.length !== e.ids.length || e.weights[0] !== 0) throw new Error('weights do not fit the ids');
    if (!e.weights.some((w) => w > 0)) throw new Error('an example with nothing to learn');
    for (const id of e.ids) if (!(Number.isInteger(id) && id >= 0 && id < tok.vocabSize)) throw new Error(`example id ${id}`);
  }
}

test('fuzz: prompts.jsonl (loadPrompts) and SFT data (.txt, .jsonl) load or throw a RemaxInputError', async () => {
  const tokenizers: [string, TextTokenizer][] = [['llama2.c byte tokenizer', syntheticTokenizer()], ['ChatML byte-level BPE', smallBpeTokenizer()]];
  const options = (rng: Rng): PromptOptions => ({
    seqLen: rng.pick([2, 3, 8, 32, 512]), maxNewTokens: rng.pick([1, 4, 16, 64, 1000]), truncate: rng.chance(0.3),
    chat: rng.pick([{}, {}, { disabled: true }, { template: CHATML, templateSource: 'fuzz-template.jinja' }, { template: '{% if %}', templateSource: 'fuzz-template.jinja' }]),
  });
  for (const [k, [name, tok]] of tokenizers.entries()) {
    await fuzz({
      name: `prompts.jsonl with the ${name}`, seed: 1900 + k, cases: count(900), source: /fuzz-prompts\.jsonl|fuzz-template\.jinja/, size: PROMPTS.length, memoryFactor: 16,
      known: PROMPTS_KNOWN, valid: { bytes: utf8(PROMPTS), o: { seqLen: 512, maxNewTokens: 64, truncate: false, chat: { template: CHATML } } as PromptOptions },
      mutate: (rng) => {
        const m = mutateTextBytes(rng, PROMPTS, 'jsonl');
        const o = options(rng);
        return { what: `${m.what} (seqLen ${o.seqLen}, maxNewTokens ${o.maxNewTokens}${o.truncate ? ', truncate' : ''}, chat ${JSON.stringify(o.chat).slice(0, 40)})`, input: { bytes: m.input, o } };
      },
      load: ({ bytes, o }) => {
        const records = loadPrompts(bytes, 'fuzz-prompts.jsonl', tok, o);
        checkPromptRecords(records, tok, o.seqLen);
        return records;
      },
    });
    for (const [j, [file, text]] of [['fuzz-data.jsonl', SFT_JSONL], ['fuzz-data.txt', SFT_TXT]].entries()) {
      await fuzz({
        name: `SFT .${file!.split('.').pop()} with the ${name}`, seed: 1950 + 2 * k + j, cases: count(700), source: /fuzz-data\.(txt|jsonl)|fuzz-template\.jinja|--seq/, size: text!.length, memoryFactor: 16,
        valid: { bytes: utf8(text!), o: { seqLen: 512, maxNewTokens: 64, truncate: false, chat: { template: CHATML } } as PromptOptions },
        mutate: (rng) => {
          const m = mutateTextBytes(rng, text!, file!.endsWith('.jsonl') ? 'jsonl' : 'none');
          const o = options(rng);
          return { what: `${m.what} (seqLen ${o.seqLen}${o.truncate ? ', truncate' : ''}, chat ${JSON.stringify(o.chat).slice(0, 40)})`, input: { bytes: m.input, o } };
        },
        load: ({ bytes, o }) => {
          const examples = loadSftExamples(bytes, file!, tok, o.seqLen, { truncate: o.truncate, chat: o.chat });
          checkSftExamples(examples, tok, o.seqLen);
          return examples;
        },
      });
    }
    // Every field of every line wrong (prompts and SFT .jsonl).
    const o: PromptOptions = { seqLen: 512, maxNewTokens: 64, truncate: false, chat: { template: CHATML } };
    for (const [file, text, seed] of [['fuzz-prompts.jsonl', PROMPTS, 1960], ['fuzz-data.jsonl', SFT_JSONL, 1970]] as const) {
      const lines = text.split('\n');
      const wrong = lines.flatMap((line, i) => (line ? everyFieldWrong(JSON.parse(line)).map((m) => ({
        what: `line ${i + 1}: ${m.what}`, input: utf8([...lines.slice(0, i), jsonText(m.input, false), ...lines.slice(i + 1)].join('\n')),
      })) : []));
      await fuzz({
        name: `${file}, every field of every line wrong, with the ${name}`, seed: seed + k, cases: wrong.length, source: /fuzz-(prompts|data)\.jsonl/, size: text.length,
        memoryFactor: 16, known: file === 'fuzz-prompts.jsonl' ? PROMPTS_KNOWN : undefined, valid: utf8(text), mutate: (_, i) => wrong[i]!,
        load: (bytes) => {
          if (file === 'fuzz-prompts.jsonl') {
            const records = loadPrompts(bytes, file, tok, o);
            checkPromptRecords(records, tok, o.seqLen);
            return records;
          }
          const examples = loadSftExamples(bytes, file, tok, o.seqLen, o);
          checkSftExamples(examples, tok, o.seqLen);
          return examples;
        },
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// 10. loadModel: format detection over single files and small folders

function tinyLoaded(vocabSize: number, tokenizer?: TextTokenizer): LoadedModel {
  const config: ModelConfig = { ...tinyConfig(true), vocabSize, seqLen: 16 };
  return { config, weights: randomInitWeights(config, 9) as ModelWeights, format: 'llama2c-v0', stopIds: [2], ...(tokenizer ? { tokenizer } : {}) };
}

test('fuzz: loadModel over mutated single files and folders detects the format and loads or throws a RemaxInputError', async () => {
  const bpe = smallBpeTokenizer();
  const gguf = modelFiles(tinyLoaded(bpe.vocabSize, bpe), { format: 'gguf' })['']!;
  const llama2c = modelFiles(tinyLoaded(32), { format: 'llama2c' })['']!;
  const folder = modelFiles(tinyLoaded(bpe.vocabSize, bpe), { format: 'hf' });
  const ggufHeaderEnd = parseGguf(gguf, 'x').dataOffset;
  const configText = new TextDecoder().decode(folder['config.json']);
  const tokenizerJson = new TextDecoder().decode(folder['tokenizer.json']);
  const tokenizerConfig = new TextDecoder().decode(folder['tokenizer_config.json']);
  const garbage = (rng: Rng, n: number): Uint8Array => Uint8Array.from({ length: n }, () => rng.int(256));
  const kinds = ['random bytes', 'GGUF magic and garbage', 'safetensors header and garbage', 'JSON file', 'llama2.c checkpoint', 'GGUF with a vocabulary',
    'folder: config.json alone', 'folder: tokenizer.json', 'folder: tokenizer_config.json', 'folder: chat_template.jinja'] as const;
  await fuzz({
    name: 'loadModel', seed: 2000, cases: count(1500), source: 'fuzz-model', size: Math.max(gguf.length, folder['model.safetensors']!.length) + 64 * 1024,
    memoryFactor: 8, slowMs: 3000, valid: folder,
    mutate: (rng, i) => {
      const kind = kinds[i % kinds.length]!;
      const one = (what: string, bytes: Uint8Array) => ({ what: `${kind}: ${what}`, input: { 'model.bin': bytes } as Record<string, Uint8Array> });
      switch (kind) {
        case 'random bytes': {
          const n = rng.pick([0, 1, 3, 4, 8, 9, 27, 28, 255, 256, 1000, 4096]);
          return one(`${n} random bytes`, garbage(rng, n));
        }
        case 'GGUF magic and garbage': {
          const g = garbage(rng, rng.int(600));
          const out = new Uint8Array(4 + g.length);
          out.set(utf8('GGUF'));
          out.set(g, 4);
          if (out.length >= 8 && rng.chance(0.7)) new DataView(out.buffer).setUint32(4, rng.pick([1, 2, 3, 4]), true);
          return one(`${g.length} bytes after the magic`, out);
        }
        case 'safetensors header and garbage': {
          const header = mutateText(rng, '{"__metadata__": {"format": "pt"}, "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}', 'json');
          const h = utf8(header.input), out = new Uint8Array(8 + h.length + rng.int(64));
          new DataView(out.buffer).setBigUint64(0, rng.chance(0.8) ? BigInt(h.length) : rng.pick(U64_FORGED), true);
          out.set(h, 8);
          return one(header.what, out);
        }
        case 'JSON file': {
          const m = mutateText(rng, configText, 'json');
          return one(m.what, utf8(m.input));
        }
        case 'llama2.c checkpoint': {
          const m = mutateBytes(rng, llama2c, V0_LAYOUT);
          return one(m.what, m.input);
        }
        case 'GGUF with a vocabulary': {
          const m = mutateBytes(rng, gguf, { fields: [4, 8, 16], headerEnd: ggufHeaderEnd });
          return one(m.what, m.input);
        }
        case 'folder: config.json alone': {
          const m = mutateText(rng, configText, 'json');
          return { what: `${kind}: ${m.what}`, input: { 'config.json': utf8(m.input) } };
        }
        default: {
          const name = kind.slice('folder: '.length);
          const files = { ...folder };
          const original = name === 'tokenizer.json' ? tokenizerJson : name === 'tokenizer_config.json' ? tokenizerConfig : CHATML;
          const m = name === 'tokenizer.json' ? (() => { const t = mutateText(rng, original, 'json', 0, tokenizerFocus); return { what: t.what, input: utf8(t.input) }; })()
            : mutateTextBytes(rng, original, name.endsWith('.json') ? 'json' : 'none');
          files[name] = m.input;
          return { what: `${kind}: ${m.what}`, input: files };
        }
      }
    },
    load: async (files, rng) => {
      const model = await loadModel(memoryFileSet('fuzz-model', files), { context: rng.pick([undefined, 2, 16, 100000]) });
      if (model.tokenizer) exercise(model.tokenizer, rng);
      validateConfig(model.config, 'loaded');
      return model;
    },
  });
});

// ---------------------------------------------------------------------------------------------------------------------
// 11. Reward models: preference pairs, a llama2.c head's sidecar, a …ForSequenceClassification config.json

const PAIRS = [
  '{"prompt": "1+2=", "chosen": "3", "rejected": "4"}',
  '{"messages": [{"role": "user", "content": "Hi"}], "chosen": "Hello!", "rejected": "Go away."}',
  '{"prompt": "", "chosen": "long answer", "rejected": "x"}',
].join('\n') + '\n';

test('fuzz: reward-model inputs (preference pairs, the llama2.c head sidecar, a SequenceClassification config.json) load or throw a RemaxInputError', async () => {
  for (const [k, [name, tok]] of ([['llama2.c byte tokenizer', syntheticTokenizer()], ['ChatML byte-level BPE', smallBpeTokenizer()]] as [string, TextTokenizer][]).entries()) {
    await fuzz({
      name: `preference pairs with the ${name}`, seed: 2100 + k, cases: count(700), source: /fuzz-pairs\.jsonl|fuzz-template\.jinja/, size: PAIRS.length, memoryFactor: 16,
      valid: { bytes: utf8(PAIRS), seqLen: 512, chat: { template: CHATML } as ChatSettings },
      mutate: (rng) => {
        const m = mutateTextBytes(rng, PAIRS, 'jsonl');
        const seqLen = rng.pick([2, 4, 16, 512]);
        const chat: ChatSettings = rng.pick([{ template: CHATML, templateSource: 'fuzz-template.jinja' }, { disabled: true }, { template: '{% if %}', templateSource: 'fuzz-template.jinja' }]);
        return { what: `${m.what} (seqLen ${seqLen}, chat ${JSON.stringify(chat).slice(0, 30)})`, input: { bytes: m.input, seqLen, chat } };
      },
      load: ({ bytes, seqLen, chat }) => {
        const pairs = loadPreferencePairs(bytes, 'fuzz-pairs.jsonl', tok, seqLen, chat);
        for (const p of pairs) {
          for (const ids of [p.chosen, p.rejected]) {
            assert.ok(ids.length >= 1 && ids.length <= seqLen && ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize), `line ${p.line}: bad ids`);
          }
          assert.notDeepEqual(p.chosen, p.rejected);
        }
        return pairs;
      },
    });
  }
  const base = tinyLoaded(32);
  const reward = withScoreHead(base, 1);
  const files = modelFiles(reward, { format: 'llama2c' });
  const sidecar = files['+.score']!;
  await fuzz({
    name: 'llama2.c reward-model head (.score)', seed: 2110, cases: count(600), source: 'fuzz.bin.score', size: sidecar.length,
    valid: sidecar, mutate: (rng) => mutateBytes(rng, sidecar, { fields: [0, 4], headerEnd: Math.min(sidecar.length, 8 + 96) }),
    load: (bytes) => {
      const model = attachScoreSidecar(parseCheckpoint(files['']!, 'fuzz.bin'), bytes, 'fuzz.bin.score');
      assert.equal(model.weights.score!.length, model.config.dim);
      return model;
    },
  });
  const folder = modelFiles(reward, { format: 'hf' });
  const configText = new TextDecoder().decode(folder['config.json']);
  await fuzz({
    name: 'LlamaForSequenceClassification config.json', seed: 2120, cases: count(600), source: 'fuzz-rm', size: folder['model.safetensors']!.length + configText.length,
    memoryFactor: 8, valid: folder,
    mutate: (rng) => {
      const m = mutateText(rng, configText, 'json');
      return { what: m.what, input: { ...folder, 'config.json': utf8(m.input) } };
    },
    load: async (input, rng) => {
      const model = await loadModel(memoryFileSet('fuzz-rm', input), { context: rng.pick([undefined, 2, 16]) });
      validateConfig(model.config, 'loaded');
      assert.equal(model.config.scoreHead === true, model.weights.score !== undefined);
      return model;
    },
  });
});

// ---------------------------------------------------------------------------------------------------------------------
// The defects this fuzz found and that are fixed, one direct reproduction each

test('found by the fuzz, fixed: each reproduction is now a RemaxInputError naming the input (or loads)', () => {
  const deep = JSON.parse('['.repeat(100000) + ']'.repeat(100000)) as unknown;
  const refuses = (fn: () => unknown, source: string, pattern: RegExp, what: string): void => assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RemaxInputError, `${what}: ${describeError(e)}`);
    assert.ok(e.message.includes(source) && pattern.test(e.message), `${what}: ${e.message}`);
    return true;
  }, what);
  const chat = { addGenerationPrompt: true, specialTokenStrings: {}, source: 't.jinja' };
  // 1. A template's range() built any array it was asked for: V8 aborted the process ("invalid size error").
  refuses(() => renderChat('{{ range(99999999999)|length }}', [], chat), 't.jinja', /range\(99999999999\) has 99999999999 numbers/, 'range(1e11)');
  refuses(() => renderChat('{% for i in range(0, 10, 0.0000000000000001) %}{% endfor %}', [], chat), 't.jinja', /integers/, 'a fractional step');
  assert.equal(renderChat('{{ range(5, 0, -2)|join(",") }}|{% set r = range %}{{ r(3)|length }}|{{ namespace(range=1).range }}', [], chat), '5,3,1|3|1');
  // 2. tokenizer.json vocab ids that are negative, fractional, infinite or huge loaded, and encode returned them.
  const json = clone(SMALL_BPE.json) as any;
  for (const id of [-1, 0.5, 1e308, 2 ** 30]) {
    json.model.vocab.Hello = id;
    refuses(() => HfTokenizer.fromJson(json, SMALL_BPE.config, { source: 'x/tokenizer.json' }), 'x/tokenizer.json', /model\.vocab\["Hello"\] is/, `vocab id ${id}`);
  }
  // 3. A value nested 100000 deep crashed the error message (JSON.stringify) or a recursive walk: RangeError.
  for (const edit of [(j: any) => (j.added_tokens[0].content = deep), (j: any) => (j.decoder.add_prefix_space = deep)]) {
    const j = clone(SMALL_BPE.json) as any;
    edit(j);
    refuses(() => HfTokenizer.fromJson(j, SMALL_BPE.config, { source: 'x/tokenizer.json' }), 'x/tokenizer.json', /added_tokens\[0\]|levels deep/, 'deep tokenizer.json');
  }
  refuses(() => HfTokenizer.fromJson(SMALL_BPE.json, { ...SMALL_BPE.config, bos_token: deep }, { source: 'x/tokenizer.json' }), 'x/tokenizer_config.json', /levels deep/, 'deep config');
  refuses(() => validateConfig({ ...tinyConfig(true), dim: deep as number }, 'x.state'), 'x.state', /dim is a list of 1/, 'deep dim');
  refuses(() => loadSftExamples(utf8(`{"text": ${'['.repeat(100000)}${']'.repeat(100000)}}`), 'x.jsonl', syntheticTokenizer(), 64), 'x.jsonl', /"text" must be a string/, 'deep SFT text');
  // 4. A component option of the wrong type passed construction and threw a TypeError at the first encode.
  const split = clone(SMALL_BPE.json) as any;
  split.pre_tokenizer.pretokenizers[0].behavior = 1.5;
  refuses(() => HfTokenizer.fromJson(split, SMALL_BPE.config, { source: 'x/tokenizer.json' }), 'x/tokenizer.json', /@huggingface\/tokenizers failed encoding and decoding a test text/, 'Split behavior 1.5');
  // 5. metrics.jsonl: a value of 1e308 made an axis span overflow, and its ~1e308 ticks aborted the process.
  const rows = parseMetricsJsonl(metricsText(6).replace('"reward_std":', '"reward_std":1e308,"x":'), 'm.jsonl');
  assert.match(renderReport([{ label: 'm.jsonl', rows }]), /<svg/);
});

// ---------------------------------------------------------------------------------------------------------------------
// Found by this fuzz in training-state.ts, train-options.ts and prompts.ts, and fixed: the reproductions.

test('found by the fuzz, fixed (2): deep values in a state or a run config, and a prompt of no tokens, are clear errors', () => {
  const deep = JSON.parse('['.repeat(100000) + ']'.repeat(100000)) as unknown;
  assert.throws(() => resolveTrainOptions({}, { lr: deep }, 'fuzz-config.json'),
    (e: unknown) => e instanceof RemaxInputError && /fuzz-config\.json: "lr" must be a number, got a list nested too deep to show/.test(e.message));
  const state = serializeTrainingState(sampleTrainingState());
  const view = new DataView(state.buffer);
  const section = JSON.parse(new TextDecoder().decode(state.subarray(12, 12 + view.getUint32(8, true))));
  const deepText = '['.repeat(100000) + ']'.repeat(100000);
  const hostile = (edit: (json: any) => void): Uint8Array => {
    const json = clone(section);
    edit(json);
    const out = withJsonSection(state, JSON.stringify(json).replace('"DEEP"', deepText));
    new DataView(out.buffer).setUint32(out.length - 4, fnv1aWords(new Uint32Array(out.slice(0, out.length - 4).buffer)), true); // signed
    return out;
  };
  assert.throws(() => parseTrainingState(hostile((j) => (j.schedule.lr = 'DEEP')), 'fuzz.state'),
    (e: unknown) => e instanceof RemaxInputError && /fuzz\.state: the JSON section nests objects and lists more than 64 levels deep/.test(e.message));
  assert.throws(() => parseTrainingState(hostile((j) => (j.extra.metrics = 'DEEP')), 'fuzz.state'),
    (e: unknown) => e instanceof RemaxInputError && /fuzz\.state: the JSON section nests objects and lists more than 64 levels deep/.test(e.message));
  assert.throws(() => loadPrompts(utf8('{"prompt": ""}\n'), 'fuzz-prompts.jsonl', smallBpeTokenizer(), { seqLen: 64, maxNewTokens: 8 }),
    (e: unknown) => e instanceof RemaxInputError && /fuzz-prompts\.jsonl line 1: the prompt encodes to no tokens/.test(e.message));
  // A config.json with a value nested past the stack: refused as such, not a RangeError from a message's JSON.stringify.
  assert.throws(() => parseJsonObject(utf8(`{"bos_token_id": ${deepText}}`), 'fuzz/config.json'),
    (e: unknown) => e instanceof RemaxInputError && /fuzz\/config\.json nests objects and lists more than 64 levels deep/.test(e.message));
});

test('fuzz summary', () => {
  const total = allStats.reduce((s, x) => s + x.cases, 0), seconds = allStats.reduce((s, x) => s + x.totalMs, 0) / 1000;
  console.log(`fuzz: ${total} cases over ${allStats.length} runs in ${seconds.toFixed(1)} s of loading`);
});
