// In-process A/B of kernel builds: each WASM file given gets its own engine on the same random-init model, and the
// engines take a training step (or a 16-sequence decode) in turn, so that the machine's slow stretches hit all of them
// alike; medians and minima of each, and each median against the first. --mode=score: a reward model (the model with a
// scalar head) scoring the PPO row's 16 sequences of 128 tokens. The figures in docs/BENCHMARKS.md that say
// "in-process A/B" come from this.
//
//   npm run build && node build/bench/ab.js [--mode=train|decode|score] [--model=260k|15m|smollm2] [--rounds=N] [--build=simd] A.wasm B.wasm …
//   (--model=smollm2: the hub bench's random SmolLM2-135M-shaped folder, weights widened to float32 unless --weights-dtype)
//   node build/bench/ab.js --mode=decode --weights=f32,bf16,f16,q8_0 [--seqs=N]   (this checkout's build: how the weights
//   are kept; f16 and q8_0 round the model to that type and keep it as stored, q4_k takes random blocks)
//   node build/bench/ab.js --mode=decode --seqs=1 --weights-dtype=bf16 A.wasm B.wasm   (builds A/B on bf16 weights)
//
// A build of another commit: git worktree add /tmp/old COMMIT && (cd /tmp/old && npm ci && npx asc assembly/index.ts
// --target relaxed -o /tmp/old.relaxed.wasm). The engines use this checkout's memory plan and descriptors, so the
// builds compared must fit them (kernel changes that keep the workspace layout, or that only need less of it).
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { RemaxEngine } from '../src/core/engine';
import { randomInitWeights } from '../src/core/formats/llama2c';
import type { BuildName } from '../src/core/kernels';
import { MATRIX_WEIGHTS, type WeightsDtype } from '../src/core/weight-types';
import { weightShapes, type ModelWeights } from '../src/core/config';
import type { StoredTensors } from '../src/core/formats/model';
import { dequantize, quantize } from '../src/core/formats/gguf-quants';
import { f16ToF32, f32ToF16 } from '../src/core/formats/half';
import { CONFIG_260K, CONFIG_15M } from './lib/common';
import { trainingBatch, trainingStep, TRAIN_BATCH, TRAIN_TOKENS } from './lib/training';
import { scoredSequences } from './lib/iteration-batch';
import { withScoreHead } from '../src/core/score-head';
import type { LoadedModel } from '../src/core/formats/model';
import { randomFolder } from './lib/hub-shapes';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const args = process.argv.slice(2);
const option = (name: string, fallback: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const mode = option('mode', 'train'), model = option('model', '260k'), build = option('build', 'relaxed-simd') as BuildName;
const dtypes = option('weights', '').split(',').filter(Boolean);
const seqs = Number(option('seqs', '16'));
/** How every file's engine keeps the weights (--weights-dtype=bf16: the A/B of a bf16 kernel change). */
const filesDtype = option('weights-dtype', '');
const files = dtypes.length > 0 ? dtypes : args.filter((a) => !a.startsWith('--'));
if (files.length < 2 || !['train', 'decode', 'score'].includes(mode) || !['260k', '15m', 'smollm2'].includes(model) || !['simd', 'relaxed-simd'].includes(build)) {
  console.error('usage: node build/bench/ab.js [--mode=train|decode|score] [--model=260k|15m|smollm2] [--rounds=N] [--build=simd|relaxed-simd] A.wasm B.wasm …');
  process.exit(2);
}
const hub = model === 'smollm2' ? await randomFolder() : undefined;
const config = hub?.config ?? (model === '15m' ? CONFIG_15M : CONFIG_260K);
const rounds = Number(option('rounds', model === '260k' ? '40' : model === '15m' ? '4' : '3'));
const weights = hub?.weights ?? randomInitWeights(config, 1);

const engines = await Promise.all(files.map(async (file) => {
  const bytes = dtypes.length > 0 ? undefined : new Uint8Array(readFileSync(file));
  const stored = file === 'f16' || file === 'q8_0' || file === 'q4_k' ? storedAs(file) : undefined;
  const engine = await RemaxEngine.create({
    model: scorer(hub && !stored ? hub : { config, weights: stored?.weights ?? weights, format: 'llama2c-v0', ...(stored ? { stored: stored.stored } : {}) }), build,
    ...(bytes ? { wasm: { simd: bytes, relaxed: bytes } } : {}), maxBatch: 16,
    ...(dtypes.length > 0 ? { weightsDtype: (stored ? 'auto' : file) as WeightsDtype }
      : filesDtype || hub ? { weightsDtype: (filesDtype || 'f32') as WeightsDtype } : {}),
  });
  if (mode === 'train') engine.enableTraining({ maxTokens: TRAIN_BATCH * TRAIN_TOKENS, maxSeqs: TRAIN_BATCH });
  return engine;
}));
const batch = trainingBatch(config.vocabSize);

/** The model as the mode runs it: with a scalar head for scoring. */
function scorer(model: LoadedModel): LoadedModel {
  return mode === 'score' ? withScoreHead(model, 3) : model;
}

/** The model's matrices rounded to f16 or Q8_0 (rows of a multiple of 32), or random Q4_K blocks, marked as stored so. */
function storedAs(type: 'f16' | 'q8_0' | 'q4_k'): { weights: ModelWeights; stored: StoredTensors } {
  let seed = 1;
  const byte = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  const out = { ...weights } as ModelWeights, stored: StoredTensors = {};
  for (const { name, shape } of weightShapes(config)) {
    const w = weights[name];
    if (!w || !MATRIX_WEIGHTS.includes(name)) continue;
    if (type === 'q8_0' && shape[shape.length - 1]! % 32 === 0) {
      const blocks = quantize('Q8_0', w, shape[shape.length - 1]!, name);
      out[name] = dequantize('Q8_0', blocks, w.length);
      stored[name] = { type: 'Q8_0', blocks };
    } else if (type === 'q4_k' && shape[shape.length - 1]! % 256 === 0) {
      const blocks = new Uint8Array((w.length / 256) * 144).map(byte);
      for (let o = 0; o < blocks.length; o += 144) blocks.set([0x00, 0x1c, 0x00, 0x1c], o); // d = dmin ≈ 0.004
      out[name] = dequantize('Q4_K', blocks, w.length);
      stored[name] = { type: 'Q4_K', blocks };
    } else if (type === 'f16') {
      out[name] = w.map((v) => f16ToF32(f32ToF16(v)));
      stored[name] = { type: 'F16' };
    }
  }
  return { weights: out, stored };
}
// The ReMax bench's decode: 8 prompts of 16 tokens, each sampled and greedy, 112 new tokens.
const requests = Array.from({ length: seqs }, (_, r) => ({
  promptIds: Array.from({ length: 16 }, (_, i) => (i === 0 ? 1 : 3 + ((i * 13 + (r >> 1) * 5) % (config.vocabSize - 3)))),
  maxNewTokens: 112, temperature: r & 1 ? 0 : 1, topP: 0.9, seed: r, logprobs: (r & 1) === 0,
}));
const scored = scoredSequences(config.vocabSize);
const run = (engine: RemaxEngine) => (mode === 'train' ? trainingStep(engine, batch)
  : mode === 'score' ? engine.scores(scored) : engine.generate(requests, { eosId: null }));

for (const engine of engines) run(engine); // warm-up
const times = engines.map(() => [] as number[]);
for (let round = 0; round < rounds; round++) {
  engines.forEach((engine, i) => {
    const started = performance.now();
    run(engine);
    times[i]!.push(performance.now() - started);
  });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const base = median(times[0]!);
console.log(`${mode}, ${model}, ${build} build, ${rounds} rounds in turn`);
files.forEach((file, i) => {
  const m = median(times[i]!);
  console.log(`  ${file.padEnd(44)} median ${m.toFixed(2).padStart(8)} ms  min ${Math.min(...times[i]!).toFixed(2).padStart(8)} ms  ${(m / base).toFixed(3)}×`);
});
