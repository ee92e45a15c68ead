// `npm run bench -- --only=floors` (issue 13): how fast the SmolLM2-135M-shaped SFT step and ReMax iteration could be
// with this engine's kernels, from the matrix products alone. Each product the step runs (the engine's own kernels:
// matmulForward, matmulBackwardInput, matmulBackwardWeight with their transposes, AdamW) is timed on its own at its
// real shape, warm, and multiplied by how often the step runs it. Everything else the step does (attention, norms,
// SwiGLU, RoPE, cross-entropy, sampling) is left out, and the products get a cache to themselves, so each floor is an
// optimistic lower bound: a target below it cannot be met with these kernels; the kernels' own rate is compared with
// this core's 128-bit FMA peak. The thread-scaling ceiling runs the same products on one worker thread, then on two at
// once (this machine's two cores share their cache and memory bandwidth).
import { Worker } from 'node:worker_threads';
import { instantiateKernels, ensureMemory, KERNEL_INITIAL_PAGES, type BuildName } from '../../src/core/kernels';
import { wasmBuilds } from '../../src/wasm-builds';
import { FMA_PEAK_GFLOPS, median } from './common';

// SmolLM2-135M (bench/configs/smollm2-135m.json): 30 layers, 576 wide, 1536 hidden, 9 heads / 3 KV heads of 64, 49,152 tokens, tied.
const LAYERS = 30, D = 576, KV = 192, H = 1536, V = 49152;
// The bench batches: SFT 8 × 128 tokens; ReMax 8 prompts × (16 + 112), 8 sampled and 8 greedy responses.
const TRAIN_ROWS = 1024, PREFILL_ROWS = 16 * 16, DECODE_ROWS = 16, DECODE_STEPS = 112, RESPONSE_ROWS = 8 * 112;
const PARAMETERS = LAYERS * (2 * D * D + 2 * D * KV + 3 * D * H) + V * D + (2 * LAYERS + 1) * D;
/** Rows of one classifier chunk in training (the engine's logits chunk is of this order; the rate hardly depends on it). */
const CLASSIFIER_CHUNK = 256;

type Kind = 'forward' | 'dx' | 'dW';
/** One product: out[n, o] = x[n, i] · W[o, i]ᵀ (forward), its input gradient (dx) or its weight gradient (dW). */
interface Product { kind: Kind; n: number; inDim: number; outDim: number }

/** The layer's products at n rows: q, k, v, o, gate, up, down. */
const layerShapes = (n: number): [number, number, number][] => [[n, D, D], [n, D, KV], [n, D, KV], [n, D, D], [n, D, H], [n, D, H], [n, H, D]];

interface KernelAccess {
  exports: Record<string, (...args: number[]) => number>;
  memory: WebAssembly.Memory;
}

/** Milliseconds of one call of `p` (median of a few, after a warm-up), on fresh random operands. */
function timeProduct(k: KernelAccess, p: Product, reps = 5): number {
  const { n, inDim, outDim } = p;
  const base = Math.ceil(k.exports.heapBase!() / 64) * 64;
  const x = base, w = x + 4 * n * inDim, out = w + 4 * outDim * inDim, dOut = out + 4 * n * Math.max(inDim, outDim);
  const scratchA = dOut + 4 * n * outDim, scratchB = scratchA + 4 * Math.max(n * outDim, outDim * inDim), end = scratchB + 4 * n * inDim;
  ensureMemory(k.memory, end);
  const f = new Float32Array(k.memory.buffer);
  for (let i = x / 4; i < end / 4; i++) f[i] = Math.sin(i) * 0.1;
  const run = () => {
    if (p.kind === 'forward') k.exports.matmulForward!(out, x, w, n, inDim, outDim, 0);
    else if (p.kind === 'dx') k.exports.matmulBackwardInput!(out, dOut, w, n, inDim, outDim, 0, scratchA);
    else k.exports.matmulBackwardWeight!(w, dOut, x, n, inDim, outDim, scratchA, scratchB);
  };
  run();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    run();
    times.push(performance.now() - t);
  }
  return median(times);
}

/** Milliseconds of one AdamW step over `count` parameters. */
function timeAdamw(k: KernelAccess, count: number): number {
  const base = Math.ceil(k.exports.heapBase!() / 64) * 64;
  ensureMemory(k.memory, base + 16 * count);
  const times: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    k.exports.adamwStep!(base, base + 4 * count, base + 8 * count, base + 12 * count, count, 1e-4, 0.9, 0.95, 1e-8, 0, 1, 1, 1);
    times.push(performance.now() - t);
  }
  return median(times);
}

interface Part { label: string; products: { product: Product; times: number }[] }

/** The training step's products: forward, dx and dW of every layer and of the classifier (over `headRows` rows). */
function trainingParts(headRows: number, withWeightGradients: boolean): Part[] {
  const kinds: Kind[] = withWeightGradients ? ['forward', 'dx', 'dW'] : ['forward', 'dx'];
  const chunks = Math.ceil(headRows / CLASSIFIER_CHUNK);
  // The classifier's dx is a forward product with its transposed copy (the engine transposes it once per step).
  const classifier = (kind: Kind): Product => (kind === 'dx' ? { kind: 'forward', n: CLASSIFIER_CHUNK, inDim: V, outDim: D } : { kind, n: CLASSIFIER_CHUNK, inDim: D, outDim: V });
  return kinds.map((kind) => ({
    label: `training ${kind}`,
    products: [
      ...layerShapes(TRAIN_ROWS).map(([n, i, o]) => ({ product: { kind, n, inDim: i, outDim: o }, times: LAYERS })),
      { product: classifier(kind), times: chunks },
    ],
  }));
}

/** The ReMax decode's products: the prefill of 16 prompts, then 112 steps of 16 rows (the classifier at every step). */
function decodeParts(): Part[] {
  return [
    { label: 'decode prefill', products: [
      ...layerShapes(PREFILL_ROWS).map(([n, i, o]) => ({ product: { kind: 'forward' as const, n, inDim: i, outDim: o }, times: LAYERS })),
      { product: { kind: 'forward', n: DECODE_ROWS, inDim: D, outDim: V }, times: 1 },
    ] },
    { label: 'decode steps', products: [
      ...layerShapes(DECODE_ROWS).map(([n, i, o]) => ({ product: { kind: 'forward' as const, n, inDim: i, outDim: o }, times: LAYERS * DECODE_STEPS })),
      { product: { kind: 'forward', n: DECODE_ROWS, inDim: D, outDim: V }, times: DECODE_STEPS - 1 },
    ] },
  ];
}

const flopOf = (p: Product) => 2 * p.n * p.inDim * p.outDim;

interface PartResult { label: string; seconds: number; gflop: number }

function measure(k: KernelAccess, parts: Part[], cache: Map<string, number>): PartResult[] {
  return parts.map((part) => {
    let seconds = 0, gflop = 0;
    for (const { product, times } of part.products) {
      const key = `${product.kind} ${product.n} ${product.inDim} ${product.outDim}`;
      if (!cache.has(key)) cache.set(key, timeProduct(k, product));
      seconds += (cache.get(key)! / 1000) * times;
      gflop += (flopOf(product) / 1e9) * times;
    }
    return { label: part.label, seconds, gflop };
  });
}

// The worker of the thread-scaling measure: the forward products of a training step and of the decode, as one job.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const memory = new WebAssembly.Memory({ initial: ${KERNEL_INITIAL_PAGES}, maximum: 65536 });
const { exports } = new WebAssembly.Instance(workerData.module, { env: { memory } });
const jobs = workerData.jobs;
const base = Math.ceil(exports.heapBase() / 64) * 64;
let need = 0;
for (const [n, i, o] of jobs) need = Math.max(need, 4 * (n * i + o * i + n * o));
const pages = Math.ceil((base + need) / 65536) - memory.buffer.byteLength / 65536;
if (pages > 0) memory.grow(pages);
const f = new Float32Array(memory.buffer);
for (let i = base / 4; i < (base + need) / 4; i++) f[i] = Math.sin(i) * 0.1;
const run = () => { for (const [n, i, o, times] of jobs) for (let t = 0; t < times; t++) exports.matmulForward(base + 4 * (n * i + o * i), base, base + 4 * n * i, n, i, o, 0); };
run();
parentPort.on('message', () => { const t = performance.now(); run(); parentPort.postMessage(performance.now() - t); });
`;

/** Seconds of the scaling job on one worker alone, and on two at once (the median of a few rounds each). */
async function threadScaling(module: WebAssembly.Module): Promise<{ alone: number; together: number }> {
  const jobs = [...layerShapes(TRAIN_ROWS).map(([n, i, o]) => [n, i, o, 2]), ...layerShapes(DECODE_ROWS).map(([n, i, o]) => [n, i, o, 40]), [DECODE_ROWS, D, V, 4]];
  const workers = [0, 1].map(() => new Worker(WORKER, { eval: true, workerData: { module, jobs } }));
  const once = (w: Worker) => new Promise<number>((resolve) => { w.once('message', resolve); w.postMessage(null); });
  const alone: number[] = [], together: number[] = [];
  for (let r = 0; r < 5; r++) {
    alone.push(await once(workers[0]!));
    const both = await Promise.all(workers.map(once));
    together.push(Math.max(...both));
  }
  await Promise.all(workers.map((w) => w.terminate()));
  return { alone: median(alone) / 1000, together: median(together) / 1000 };
}

export async function benchHubFloors(build: BuildName): Promise<void> {
  const kernels = await instantiateKernels(wasmBuilds, build);
  const k = kernels as unknown as KernelAccess;
  const cache = new Map<string, number>();
  const adamw = timeAdamw(k, PARAMETERS) / 1000;
  const fullTraining = measure(k, trainingParts(TRAIN_ROWS, true), cache);
  const sftRows = [...fullTraining, { label: 'AdamW', seconds: adamw, gflop: 0 }];
  const remaxTraining = measure(k, trainingParts(RESPONSE_ROWS, true), cache);
  const decode = measure(k, decodeParts(), cache);
  const loraTraining = measure(k, trainingParts(RESPONSE_ROWS, false), cache);
  const total = (rs: PartResult[]) => rs.reduce((s, r) => s + r.seconds, 0);
  const gflop = (rs: PartResult[]) => rs.reduce((s, r) => s + r.gflop, 0);

  console.log(`\nFloors at the SmolLM2-135M shape (${(PARAMETERS / 1e6).toFixed(1)} M parameters), ${build} build: the matrix products alone, each timed on its own`);
  console.log('| part | GFLOP | seconds | GFLOP/s |\n| --- | ---: | ---: | ---: |');
  for (const r of [...sftRows, ...decode]) {
    console.log(`| ${r.label} | ${r.gflop.toFixed(0)} | ${r.seconds.toFixed(2)} | ${r.gflop ? (r.gflop / r.seconds).toFixed(1) : '–'} |`);
  }
  const sft = total(sftRows);
  const remax = total(decode) + total(remaxTraining) + adamw;
  const lora = total(decode) + total(loraTraining);
  console.log(`SFT step 8 × 128: ≥ ${sft.toFixed(2)} s, ≤ ${(TRAIN_ROWS / sft).toFixed(1)} tokens/s (target ≥ 62 tokens/s = ≤ 16.5 s); ` +
    `${gflop(fullTraining).toFixed(0)} GFLOP at ${(gflop(fullTraining) / total(fullTraining)).toFixed(1)} GFLOP/s (FMA peak ${FMA_PEAK_GFLOPS})`);
  console.log(`ReMax iteration 8 × (16 + 112), full: ≥ ${remax.toFixed(2)} s (target < 29.7 s); decode ${total(decode).toFixed(2)} s, training ${total(remaxTraining).toFixed(2)} s, AdamW ${adamw.toFixed(2)} s`);
  console.log(`LoRA: the frozen base's products without their weight gradients (and no AdamW over the base) ≥ ${lora.toFixed(2)} s, ` +
    `so LoRA is at most ${(remax / lora).toFixed(2)}× faster than full from the products (target 1.5×), even if the rest of the iteration cost nothing`);
  const scaling = await threadScaling(await WebAssembly.compile(build === 'simd' ? wasmBuilds.simd as BufferSource : (wasmBuilds.relaxed ?? wasmBuilds.simd) as BufferSource));
  const speedup = (2 * scaling.alone) / scaling.together;
  console.log(`Two threads: the forward products of a step on one worker ${scaling.alone.toFixed(2)} s, the same on each of two at once ${scaling.together.toFixed(2)} s: ` +
    `two threads do ${speedup.toFixed(2)}× the work of one in the same time at most (target 1.7×)`);
}
