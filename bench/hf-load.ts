// Load time and peak memory of a Hugging Face folder at SmolLM2-135M's shape (30 layers, hidden 576, intermediate
// 1536, 9 heads, 3 KV heads, vocab 49152, tied; random BF16 weights, 270 MB), from the file to a ready engine.
// Each measurement runs in a fresh process (peak RSS is per process). Not part of bench/index.ts.
//   npx esbuild bench/hf-load.ts --bundle --format=esm --platform=node --loader:.wasm=binary --outfile=/tmp/hf-load.js
//   node /tmp/hf-load.js [--dir /tmp/remax-hf-smollm2-135m] [--runs 3]     (taskset -c 0 for one core)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, writeSync, closeSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { RemaxEngine } from '../src/core/engine';
import type { ModelConfig } from '../src/core/config';
import { elementCount } from '../src/core/config';
import { hfConfigFromModel, configJsonText } from '../src/core/formats/hf-config';
import { hfTensorSpecs, loadHfModel } from '../src/core/formats/hf-model';
import type { ModelFileSet } from '../src/core/formats/model';

const SMOLLM2_135M: ModelConfig = {
  dim: 576, hiddenDim: 1536, nLayers: 30, nHeads: 9, nKvHeads: 3, vocabSize: 49152, seqLen: 2048,
  sharedClassifier: true, normEps: 1e-5, ropeTheta: 100000,
};

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

/** Writes config.json and a BF16 model.safetensors of random values (|x| in about [0.004, 0.06]), tensor by tensor. */
function makeFolder(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const config = hfConfigFromModel(SMOLLM2_135M, { dtype: 'BF16', bosTokenId: 1, eosTokenIds: [2] });
  const encoder = new TextEncoder();
  const writeText = (name: string, text: string): void => {
    const fd = openSync(path.join(dir, name), 'w');
    writeSync(fd, encoder.encode(text));
    closeSync(fd);
  };
  writeText('config.json', configJsonText(config));
  const specs = hfTensorSpecs(SMOLLM2_135M);
  const entries: string[] = ['"__metadata__":{"format":"pt"}'];
  let offset = 0;
  for (const { name, shape } of specs) {
    const size = 2 * elementCount(shape);
    entries.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype: 'BF16', shape, data_offsets: [offset, offset + size] })}`);
    offset += size;
  }
  const json = encoder.encode(`{${entries.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + headerLength).fill(0x20);
  new DataView(head.buffer).setBigUint64(0, BigInt(headerLength), true);
  head.set(json, 8);
  const fd = openSync(path.join(dir, 'model.safetensors'), 'w');
  writeSync(fd, head);
  let state = 0x9e3779b9;
  for (const { name, shape } of specs) {
    const n = elementCount(shape);
    const data = new Uint16Array(n);
    if (name.endsWith('layernorm.weight') || name === 'model.norm.weight') data.fill(0x3f80); // 1.0
    else {
      for (let i = 0; i < n; i++) {
        state ^= state << 13; state ^= state >>> 17; state ^= state << 5; // xorshift32
        data[i] = (state & 0x8000) | (0x3b80 + ((state >>> 16) & 0x3ff)); // sign, exponent 2^-8…2^-5, 7-bit mantissa
      }
    }
    writeSync(fd, new Uint8Array(data.buffer));
  }
  closeSync(fd);
}

/** The folder as a ModelFileSet (what the Node adapter does), timing the reads. */
function folderFileSet(dir: string, timing: { readMs: number }): ModelFileSet {
  return {
    source: dir,
    names: () => readdirSync(dir),
    read: async (name) => {
      const t = performance.now();
      try {
        return await readFile(path.join(dir, name)); // a Buffer is a Uint8Array: no copy
      } catch {
        return undefined;
      } finally {
        timing.readMs += performance.now() - t;
      }
    },
    size: async (name) => (existsSync(path.join(dir, name)) ? statSync(path.join(dir, name)).size : undefined),
  };
}

async function child(dir: string): Promise<void> {
  const timing = { readMs: 0 };
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const model = await loadHfModel(folderFileSet(dir, timing));
  const t1 = performance.now();
  const rssLoaded = process.resourceUsage().maxRSS * 1024;
  const engine = await RemaxEngine.create({ model });
  const t2 = performance.now();
  const [r] = engine.generate([{ promptIds: [1, 2, 3] }], { temperature: 0, maxNewTokens: 1, stopIds: [] });
  if (r!.ids.length !== 1) throw new Error('no token generated');
  process.stdout.write(JSON.stringify({
    loadMs: t1 - t0, readMs: timing.readMs, engineMs: t2 - t1, totalMs: t2 - t0,
    rssBefore, peakRssAfterLoad: rssLoaded, peakRss: process.resourceUsage().maxRSS * 1024, wasmBytes: engine.memoryBytes,
  }) + '\n');
}

async function main(): Promise<void> {
  const dir = arg('dir', '/tmp/remax-hf-smollm2-135m');
  if (process.argv.includes('--child')) return child(dir);
  if (!existsSync(path.join(dir, 'model.safetensors'))) {
    const t = performance.now();
    makeFolder(dir);
    console.log(`wrote ${dir} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  const fileMiB = statSync(path.join(dir, 'model.safetensors')).size / 2 ** 20;
  const runs = Number(arg('runs', '3'));
  const results: Record<string, number>[] = [];
  for (let i = 0; i < runs; i++) {
    const out = spawnSync(process.execPath, [process.argv[1]!, '--child', '--dir', dir], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`child failed: ${out.stderr}`);
    results.push(JSON.parse(out.stdout.trim().split('\n').pop()!));
  }
  const median = (key: string): number => results.map((r) => r[key]!).sort((a, b) => a - b)[Math.floor(runs / 2)]!;
  const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`;
  console.log(`model.safetensors ${fileMiB.toFixed(0)} MiB (BF16, SmolLM2-135M shape), median of ${runs} fresh processes:`);
  console.log(`  loadHfModel ${median('loadMs').toFixed(0)} ms (of which reading the file ${median('readMs').toFixed(0)} ms), ` +
    `RemaxEngine.create ${median('engineMs').toFixed(0)} ms, total ${median('totalMs').toFixed(0)} ms ` +
    `(fastest ${Math.min(...results.map((r) => r.totalMs!)).toFixed(0)} ms, slowest ${Math.max(...results.map((r) => r.totalMs!)).toFixed(0)} ms)`);
  console.log(`  peak RSS after loadHfModel ${mib(median('peakRssAfterLoad'))} (process at start ${mib(median('rssBefore'))}), ` +
    `after creating the engine ${mib(median('peakRss'))} (WASM memory ${mib(median('wasmBytes'))})`);
}

await main();
