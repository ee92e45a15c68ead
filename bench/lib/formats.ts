// The real-model formats: (1) stories260K as a llama2.c file, a Hugging Face folder and a GGUF file runs at the same
// speed (decode and a training step, the three engines in turn so they see the same load); (2) loading a 270 MB BF16
// folder at SmolLM2-135M's shape (random weights, written once to /tmp) until the engine is ready to generate, in fresh
// processes (peak memory is per process): `--only=load`, the child mode below.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { RemaxEngine } from '../../src/core/engine';
import { elementCount, type ModelConfig } from '../../src/core/config';
import type { BuildName } from '../../src/core/kernels';
import { configJsonText, hfConfigFromModel } from '../../src/core/formats/hf-config';
import { hfTensorSpecs } from '../../src/core/formats/hf-model';
import { loadModelFromPath } from '../../src/node/model-io';
import { median, mib, quick, rows } from './common';
import { TRAIN_BATCH, TRAIN_TOKENS, trainingBatch, trainingStep } from './training';

const SHARED = path.resolve('..', 'shared', 'models');
const FORMATS = [['llama2.c', 'stories260K.bin'], ['Hugging Face', 'hf/stories260K'], ['GGUF F32', 'gguf/stories260K-f32.gguf']] as const;

export async function benchFormats(build: BuildName): Promise<void> {
  if (!FORMATS.every(([, file]) => existsSync(path.join(SHARED, file)))) return;
  const engines = await Promise.all(FORMATS.map(async ([, file]) => {
    const engine = await RemaxEngine.create({ model: await loadModelFromPath(path.join(SHARED, file), '--model'), build, maxBatch: 16 });
    engine.enableTraining({ maxTokens: TRAIN_BATCH * TRAIN_TOKENS, maxSeqs: TRAIN_BATCH });
    return engine;
  }));
  const requests = Array.from({ length: 16 }, (_, i) => ({ promptIds: [1, 3 + i] }));
  const batch = trainingBatch(512);
  const work = [
    ['decode, batch 16, 128 tokens', 16 * 128, (e: RemaxEngine) => e.generate(requests, { temperature: 0, maxNewTokens: 128, stopIds: [] })],
    [`train step, ${TRAIN_BATCH} × ${TRAIN_TOKENS} tokens`, TRAIN_BATCH * TRAIN_TOKENS, (e: RemaxEngine) => trainingStep(e, batch)],
  ] as const;
  for (const [what, tokens, run] of work) {
    const ms: number[][] = engines.map(() => []);
    for (let round = 0; round < (quick ? 2 : 15); round++) {
      // Each round starts with another format, so that no format always runs first (or right after another).
      for (let k = 0; k < engines.length; k++) {
        const i = (round + k) % engines.length;
        const started = performance.now();
        run(engines[i]!);
        ms[i]!.push(performance.now() - started);
      }
    }
    const base = median(ms[0]!);
    FORMATS.forEach(([format], i) => {
      const m = median(ms[i]!);
      rows.push({ build, benchmark: `stories260K ${format}: ${what} (formats in turn)`, median: `${m.toFixed(1)} ms`,
        throughput: `${(tokens / (m / 1000)).toFixed(0)} tokens/s (${(m / base).toFixed(2)}× llama2.c)`, memory: mib(engines[i]!.memoryBytes) });
    });
  }
}

const SMOLLM2_135M: ModelConfig = {
  dim: 576, hiddenDim: 1536, nLayers: 30, nHeads: 9, nKvHeads: 3, vocabSize: 49152, seqLen: 2048,
  sharedClassifier: true, normEps: 1e-5, ropeTheta: 100000,
};
const LOAD_DIR = path.join('/tmp', 'remax-bench-smollm2-135m-bf16');

/** Loads in fresh processes (this script in child mode) and prints the median time to a ready engine and peak memory. */
export async function benchLoad(script: string): Promise<string[]> {
  if (!existsSync(path.join(LOAD_DIR, 'model.safetensors'))) writeRandomBf16Folder(LOAD_DIR, SMOLLM2_135M);
  const runs = quick ? 1 : 5;
  const results = Array.from({ length: runs }, () => {
    const out = spawnSync(process.execPath, [script, '--load-child', LOAD_DIR], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`load child failed: ${out.stderr}`);
    return JSON.parse(out.stdout.trim().split('\n').pop()!) as Record<string, number>;
  });
  const m = (key: string) => median(results.map((r) => r[key]!));
  const size = statSync(path.join(LOAD_DIR, 'model.safetensors')).size;
  return [
    `load: a ${mib(size)} BF16 Hugging Face folder at SmolLM2-135M's shape, from the files to an engine that has generated a token, ` +
      `median of ${runs} fresh processes: ${m('totalMs').toFixed(0)} ms (loadModel ${m('loadMs').toFixed(0)} ms, RemaxEngine.create ${m('engineMs').toFixed(0)} ms; ` +
      `fastest ${Math.min(...results.map((r) => r.totalMs!)).toFixed(0)} ms); peak RSS ${mib(m('peakRss'))} (WASM memory ${mib(m('wasmBytes'))})`,
  ];
}

/** The child of benchLoad: one load, its times and peak memory as a JSON line. */
export async function loadChild(dir: string): Promise<void> {
  const t0 = performance.now();
  const model = await loadModelFromPath(dir, '--model');
  const t1 = performance.now();
  const engine = await RemaxEngine.create({ model });
  const [r] = engine.generate([{ promptIds: [1, 2, 3] }], { temperature: 0, maxNewTokens: 1, stopIds: [] });
  const t2 = performance.now();
  if (r!.ids.length !== 1) throw new Error('no token generated');
  console.log(JSON.stringify({ loadMs: t1 - t0, engineMs: t2 - t1, totalMs: t2 - t0, peakRss: process.resourceUsage().maxRSS * 1024, wasmBytes: engine.memoryBytes }));
}

/** config.json and a BF16 model.safetensors of random values (|x| about 0.004 to 0.06; norms 1), written tensor by tensor. */
function writeRandomBf16Folder(dir: string, config: ModelConfig): void {
  mkdirSync(dir, { recursive: true });
  const encoder = new TextEncoder();
  const fd0 = openSync(path.join(dir, 'config.json'), 'w');
  writeSync(fd0, encoder.encode(configJsonText(hfConfigFromModel(config, { dtype: 'BF16', bosTokenId: 1, eosTokenIds: [2] }))));
  closeSync(fd0);
  const specs = hfTensorSpecs(config);
  const entries = ['"__metadata__":{"format":"pt"}'];
  let offset = 0;
  for (const { name, shape } of specs) {
    const size = 2 * elementCount(shape);
    entries.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype: 'BF16', shape, data_offsets: [offset, offset + size] })}`);
    offset += size;
  }
  const json = encoder.encode(`{${entries.join(',')}}`);
  const head = new Uint8Array(8 + Math.ceil(json.length / 8) * 8).fill(0x20);
  new DataView(head.buffer).setBigUint64(0, BigInt(head.length - 8), true);
  head.set(json, 8);
  const fd = openSync(path.join(dir, 'model.safetensors'), 'w');
  writeSync(fd, head);
  let state = 0x9e3779b9;
  for (const { name, shape } of specs) {
    const data = new Uint16Array(elementCount(shape));
    if (name.endsWith('norm.weight')) data.fill(0x3f80); // 1.0
    else {
      for (let i = 0; i < data.length; i++) {
        state ^= state << 13; state ^= state >>> 17; state ^= state << 5; // xorshift32
        data[i] = (state & 0x8000) | (0x3b80 + ((state >>> 16) & 0x3ff)); // sign, exponent 2^-8…2^-5, 7-bit mantissa
      }
    }
    writeSync(fd, new Uint8Array(data.buffer));
  }
  closeSync(fd);
}
