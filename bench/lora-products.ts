// LoRA's adapter products at the SmolLM2-135M shape, the two ways this build can compute them, in turn in one
// process: the register tile's dot products (matmulForward; transposes + tile for dx and ∂A: the engine's path before
// the short-side rule) and the outer-product forms the engine takes now (u·Bᵀ over a transposed B; dx = du·A and ∂A
// by the direct kernel, assembly/model/lora.ts and DIRECT_MAX_SHORT in kernels/matmul.ts). Per layer (seven
// adapters), training (1,024 rows, forward and backward) and decode (16 rows, forward).
//
//   npm run build && node build/bench/lora-products.js [--rank=16] [--rounds=15] [--build=simd]
import v8 from 'node:v8';
import { instantiateKernels, ensureMemory, type BuildName } from '../src/core/kernels';
import { wasmBuilds } from '../src/wasm-builds';
import { median } from './lib/common';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd'); // (Node 20; the bench's other entries do the same)

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const R = Number(arg('rank', '16')), ROUNDS = Number(arg('rounds', '15'));
const build = arg('build', 'relaxed-simd') as BuildName;
const D = 576, KV = 192, H = 1536;
const PROJECTIONS: [number, number][] = [[D, D], [D, KV], [D, KV], [D, D], [D, H], [D, H], [H, D]]; // [in, out]: q k v o gate up down

const kernels = await instantiateKernels(wasmBuilds, build);
const k = (kernels as unknown as { exports: Record<string, (...args: number[]) => number> }).exports;
const memory = (kernels as unknown as { memory: WebAssembly.Memory }).memory;
const ROWS = 1024, WIDE = Math.max(D, H);
const base = Math.ceil(k.heapBase!() / 64) * 64;
const x = base, w = x + 4 * ROWS * WIDE, out = w + 4 * WIDE * WIDE, dOut = out + 4 * ROWS * WIDE;
const sA = dOut + 4 * ROWS * WIDE, sB = sA + 4 * ROWS * WIDE, end = sB + 4 * ROWS * WIDE;
ensureMemory(memory, end);
const f = new Float32Array(memory.buffer);
for (let i = x / 4; i < end / 4; i++) f[i] = Math.sin(i) * 0.1;

/** One layer's adapter products: x·Aᵀ, u·Bᵀ and, training, ∂B, du = dOut·B, ∂A, dx += du·A. */
function tile(n: number, train: boolean): void {
  for (const [i, o] of PROJECTIONS) {
    k.matmulForward!(out, x, w, n, i, R, 0);
    k.matmulForward!(out, x, w, n, R, o, 1);
    if (!train) continue;
    k.matmulBackwardWeight!(w, dOut, x, n, R, o, sA, sB);
    k.matmulBackwardInput!(out, dOut, w, n, R, o, 0, sA);
    k.transpose!(sA, dOut, n, R); k.transpose!(sB, x, n, i); k.matmulForward!(w, sA, sB, R, n, i, 1); // ∂A
    k.transpose!(sA, w, R, i); k.matmulForward!(out, dOut, sA, n, R, i, 1); // dx
  }
}
function outer(n: number, train: boolean): void {
  for (const [i, o] of PROJECTIONS) {
    k.matmulForward!(out, x, w, n, i, R, 0);
    k.transpose!(sA, w, o, R); k.matmulForwardTransposed!(out, x, sA, n, R, o, 1);
    if (!train) continue;
    k.matmulBackwardWeight!(w, dOut, x, n, R, o, sA, sB);
    k.matmulBackwardInput!(out, dOut, w, n, R, o, 0, sA);
    k.outerProductSum!(w, 4 * i, dOut, 4 * R, 4, x, 4 * i, n, R, i, 1); // ∂A
    k.outerProductSum!(out, 4 * i, dOut, 4, 4 * R, w, 4 * i, R, n, i, 1); // dx
  }
}

console.log(`LoRA r ${R}, SmolLM2-135M shape, one layer's seven adapters, ${build} build, ${ROUNDS} rounds in turn`);
for (const [n, train, calls] of [[ROWS, true, 1], [16, false, 30]] as [number, boolean, number][]) {
  const times = { tile: [] as number[], outer: [] as number[] };
  for (let round = 0; round <= ROUNDS; round++) {
    for (const [name, fn] of [['tile', tile], ['outer', outer]] as const) {
      const t = performance.now();
      for (let c = 0; c < calls; c++) fn(n, train);
      if (round > 0) times[name].push((performance.now() - t) / calls); // round 0 warms up
    }
  }
  const a = median(times.tile), b = median(times.outer);
  console.log(`  ${n} rows, ${train ? 'forward + backward' : 'forward'}: tile ${a.toFixed(3)} ms, outer products ${b.toFixed(3)} ms: ${(b / a).toFixed(3)}×`);
}
