// npm run bench: throughput of the inference core, single thread, for each kernel build this engine accepts.
// Figures are medians (p50) of tinybench samples; the machine is shared, so compare ratios, not single runs.
import v8 from 'node:v8';
import os from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Bench } from 'tinybench';
import { RemaxEngine } from '../src/core/engine';
import { instantiateKernels, ensureMemory, supportsRelaxedSimd, type BuildName } from '../src/core/kernels';
import { wasmBuilds } from '../src/wasm-builds';
import { randomInitWeights } from '../src/core/checkpoint';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, type ModelConfig } from '../src/core/config';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const builds: BuildName[] = supportsRelaxedSimd(wasmBuilds) ? ['simd', 'relaxed-simd'] : ['simd'];
const quick = process.argv.includes('--quick');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);

const CONFIG_15M: ModelConfig = {
  dim: 288, hiddenDim: 768, nLayers: 6, nHeads: 6, nKvHeads: 6, vocabSize: 32000, seqLen: 256,
  sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA,
};
const STORIES = path.resolve('..', 'shared', 'models', 'stories260K.bin');

const rows: { build: string; benchmark: string; median: string; throughput: string; memory: string }[] = [];
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** Runs fn repeatedly (tinybench) and returns the median milliseconds per call. */
async function medianMs(name: string, fn: () => void, minIterations: number): Promise<number> {
  const bench = new Bench({ iterations: quick ? 2 : minIterations, time: quick ? 50 : 1500, warmupIterations: 1, warmupTime: 0 });
  bench.add(name, fn);
  await bench.run();
  const result = bench.tasks[0]!.result as { latency?: { p50: number }; error?: Error };
  if (!result.latency) throw result.error ?? new Error(`${name}: no result`);
  return result.latency.p50;
}

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

async function benchDecode(build: BuildName, label: string, engine: RemaxEngine, batch: number, newTokens: number, promptLength = 1) {
  const prompt = Array.from({ length: promptLength }, (_, i) => (i === 0 ? 1 : 3 + (i % 200)));
  const requests = Array.from({ length: batch }, () => ({ promptIds: prompt }));
  const options = { temperature: 0, maxNewTokens: newTokens, eosId: null };
  const ms = await medianMs(label, () => { engine.generate(requests, options); }, 5);
  rows.push({ build, benchmark: label, median: `${ms.toFixed(1)} ms`,
    throughput: `${((batch * newTokens) / (ms / 1000)).toFixed(0)} tokens/s`, memory: mib(engine.memoryBytes) });
}

async function benchPrefill(build: BuildName, label: string, engine: RemaxEngine, batch: number, promptLength: number) {
  const seqs = Array.from({ length: batch }, (_, b) => Array.from({ length: promptLength }, (_, i) => (i === 0 ? 1 : 3 + ((i * 7 + b) % 200))));
  const ms = await medianMs(label, () => { engine.logprobs(seqs); }, 5);
  rows.push({ build, benchmark: label, median: `${ms.toFixed(1)} ms`,
    throughput: `${((batch * promptLength) / (ms / 1000)).toFixed(0)} tokens/s`, memory: mib(engine.memoryBytes) });
}

const weights15M = randomInitWeights(CONFIG_15M, 1);
for (const build of builds) {
  if (!only || only === 'matmul') await benchMatmul(build);
  if ((!only || only === 'decode') && existsSync(STORIES)) {
    const stories = await RemaxEngine.create({ model: new Uint8Array(readFileSync(STORIES)), build, maxBatch: 16 });
    await benchDecode(build, 'stories260K decode, batch 1, 256 tokens', stories, 1, 256);
    await benchDecode(build, 'stories260K decode, batch 16, 256 tokens', stories, 16, 256);
  }
  if (!only || only === 'decode' || only === '15m') {
    const m15 = await RemaxEngine.create({ model: { config: CONFIG_15M, weights: weights15M, format: 'llama2c-v0' }, build, maxBatch: 16 });
    await benchDecode(build, '15M decode, batch 1, 128 tokens', m15, 1, 128);
    await benchDecode(build, '15M decode, batch 16, 128 tokens', m15, 16, 128);
    await benchPrefill(build, '15M teacher-forced logprobs, 8 × 128 tokens', m15, 8, 128);
  }
}

console.log(`\nremax-wasm inference benchmarks — ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}, single thread`);
console.table(rows);
console.log(`peak resident memory of this process: ${mib(process.resourceUsage().maxRSS * 1024)}`);
