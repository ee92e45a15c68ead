// npm run bench: throughput of the inference and training cores, single thread, for each kernel build this engine
// accepts. Figures are medians (p50) of tinybench samples; the machine is shared, so compare ratios, not single runs.
// Flags: --only=matmul|decode|15m|train|remax|threads|formats|load|profile|runtimes|ppo|hub|hub-decode|hub-sft|hub-remax|floors, --quick (a smoke pass).
// hub (issue 13: a SmolLM2-135M-shaped model, ~25 minutes) and floors (its steps' matrix products alone, ~1 minute) run
// only when asked for, on the last build listed.
import v8 from 'node:v8';
import os from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { RemaxEngine } from '../src/core/engine';
import { instantiateKernels, ensureMemory, supportsRelaxedSimd, type BuildName } from '../src/core/kernels';
import { wasmBuilds } from '../src/wasm-builds';
import { randomInitWeights } from '../src/core/formats/llama2c';
import { CONFIG_15M, CONFIG_260K, medianMs, mib, rows } from './lib/common';
import { benchTraining, benchTrainingThreads } from './lib/training';
import { profileTraining } from './lib/profile';
import { benchRuntimes } from './lib/runtimes';
import { benchReMax, benchReMaxThreads, benchDefaultTask } from './lib/remax';
import { benchFormats, benchLoad, loadChild } from './lib/formats';
import { benchHubShapes, type HubPart } from './lib/hub-shapes';
import { benchHubFloors } from './lib/hub-floors';
import { benchPpo } from './lib/ppo';

// The child process of the load benchmark (a fresh process per load: its peak memory is the load's).
const loadChildAt = process.argv.indexOf('--load-child');
if (loadChildAt >= 0) {
  await loadChild(process.argv[loadChildAt + 1]!);
  process.exit(0);
}

v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const builds: BuildName[] = supportsRelaxedSimd(wasmBuilds) ? ['simd', 'relaxed-simd'] : ['simd'];
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
const want = (part: string) => !only || only === part;
const STORIES = path.resolve('..', 'shared', 'models', 'stories260K.bin');

async function benchMatmul(build: BuildName) {
  const { exports, memory } = await instantiateKernels(wasmBuilds, build);
  const shapes: [number, number, number][] = [[1024, 288, 768], [16, 288, 768], [1, 288, 768], [256, 768, 288], [64, 64, 172], [1, 288, 32000], [16, 288, 32000]];
  for (const [n, k, m] of shapes) {
    const base = Math.ceil(exports.heapBase() / 64) * 64;
    const x = base, w = x + 4 * n * k, out = w + 4 * m * k;
    ensureMemory(memory, out + 4 * n * m);
    const f = new Float32Array(memory.buffer);
    for (let i = x / 4; i < out / 4; i++) f[i] = Math.sin(i) * 0.1;
    const reps = Math.max(1, Math.round(2e8 / (2 * n * k * m)));
    const ms = await medianMs(`matmul ${n}x${k}x${m}`, () => {
      for (let r = 0; r < reps; r++) exports.matmulForward(out, x, w, n, k, m, 0);
    }, 10) / reps;
    rows.push({ build, benchmark: `matmul x[${n}×${k}]·W[${m}×${k}]ᵀ`, median: `${(ms * 1000).toFixed(1)} µs`,
      throughput: `${((2 * n * k * m) / (ms * 1e6)).toFixed(1)} GFLOP/s`, memory: mib(memory.buffer.byteLength) });
  }
}

async function benchDecode(build: BuildName, label: string, engine: RemaxEngine, batch: number, newTokens: number) {
  // A different second token per sequence: identical sequences would share their rows (see generate.ts).
  const requests = Array.from({ length: batch }, (_, i) => ({ promptIds: [1, 3 + i] }));
  const options = { temperature: 0, maxNewTokens: newTokens, eosId: null };
  const ms = await medianMs(label, () => { engine.generate(requests, options); }, 5);
  rows.push({ build, benchmark: label, median: `${ms.toFixed(1)} ms`,
    throughput: `${((batch * newTokens) / (ms / 1000)).toFixed(0)} tokens/s`, memory: mib(engine.memoryBytes) });
}

async function benchLogprobs(build: BuildName, label: string, engine: RemaxEngine, batch: number, length: number) {
  const seqs = Array.from({ length: batch }, (_, b) => Array.from({ length }, (_, i) => (i === 0 ? 1 : 3 + ((i * 7 + b) % 200))));
  const ms = await medianMs(label, () => { engine.logprobs(seqs); }, 5);
  rows.push({ build, benchmark: label, median: `${ms.toFixed(1)} ms`,
    throughput: `${((batch * length) / (ms / 1000)).toFixed(0)} tokens/s`, memory: mib(engine.memoryBytes) });
}

const weights15M = want('decode') || want('15m') ? randomInitWeights(CONFIG_15M, 1) : undefined;
for (const build of builds) {
  if (want('matmul')) await benchMatmul(build);
  if (want('decode') && existsSync(STORIES)) {
    const stories = await RemaxEngine.create({ model: new Uint8Array(readFileSync(STORIES)), build, maxBatch: 16 });
    await benchDecode(build, 'stories260K decode, batch 1, 256 tokens', stories, 1, 256);
    await benchDecode(build, 'stories260K decode, batch 16, 256 tokens', stories, 16, 256);
  }
  if (want('decode') || want('15m')) {
    const m15 = await RemaxEngine.create({ model: { config: CONFIG_15M, weights: weights15M!, format: 'llama2c-v0' }, build, maxBatch: 16 });
    await benchDecode(build, '15M decode, batch 1, 128 tokens', m15, 1, 128);
    await benchDecode(build, '15M decode, batch 16, 128 tokens', m15, 16, 128);
    await benchLogprobs(build, '15M teacher-forced logprobs, 8 × 128 tokens', m15, 8, 128);
  }
  if (want('train')) {
    await benchTraining(build, 'stories260K config', CONFIG_260K);
    await benchTraining(build, '15M config', CONFIG_15M);
    await benchTraining(build, '15M config', CONFIG_15M, true);
  }
  if (want('remax')) {
    await benchReMax(build, 'stories260K config', CONFIG_260K);
    await benchReMax(build, '15M config', CONFIG_15M);
    await benchDefaultTask(build);
  }
  if (want('ppo')) {
    await benchPpo(build, 'stories260K config', CONFIG_260K);
    await benchPpo(build, '15M config', CONFIG_15M);
  }
  if (want('formats')) await benchFormats(build);
  if (want('threads')) {
    await benchTrainingThreads(build, 'stories260K config', CONFIG_260K, 2);
    await benchTrainingThreads(build, '15M config', CONFIG_15M, 2);
    await benchReMaxThreads(build, 'stories260K config', CONFIG_260K, 2);
    await benchReMaxThreads(build, '15M config', CONFIG_15M, 2);
  }
}

if (only === 'hub' || only?.startsWith('hub-')) await benchHubShapes(builds[builds.length - 1]!, (only.slice(4) || 'all') as HubPart);
if (only === 'floors') await benchHubFloors(builds[builds.length - 1]!);

console.log(`\nremax-wasm benchmarks — ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}, single thread unless a row says threads`);
console.table(rows);
if (want('profile') || want('train')) {
  for (const line of await profileTraining('stories260K config', CONFIG_260K, 10)) console.log(line);
  for (const line of await profileTraining('15M config', CONFIG_15M, 2)) console.log(line);
}
if (want('load')) {
  for (const line of await benchLoad(process.argv[1]!)) console.log(line);
}
if (want('runtimes')) {
  for (const line of await benchRuntimes()) console.log(line);
}
console.log(`peak resident memory of this process: ${mib(process.resourceUsage().maxRSS * 1024)}`);
