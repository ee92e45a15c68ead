import { WASM_MAX_PAGES, WASM_PAGE_BYTES } from './arena';

/** A compiled kernel module, or the bytes of one. */
export type WasmSource = BufferSource | WebAssembly.Module;

/** The two builds of assembly/: plain SIMD (runs everywhere) and relaxed SIMD (fused multiply-add where available). */
export interface WasmBuilds {
  simd: WasmSource;
  relaxed?: WasmSource;
}

/**
 * Pages the kernel module's memory starts with: its static data (matmul.ts' streamed decode buffers, 257 KiB) and the
 * stack. asconfig.json's initialMemory is the same number, so asc refuses a build whose static data outgrows it.
 */
export const KERNEL_INITIAL_PAGES = 5;

export type BuildName = 'simd' | 'relaxed-simd';
export type BuildChoice = 'auto' | BuildName;
export const BUILD_CHOICES: readonly BuildChoice[] = ['auto', 'simd', 'relaxed-simd'];

/** The exports of assembly/index.ts (pointers are byte offsets into `memory`). */
export interface KernelExports {
  heapBase(): number;
  modelDescBytes(): number;
  workspaceDescBytes(): number;
  generateJobBytes(): number;
  logprobsJobBytes(): number;
  trainJobBytes(): number;
  scoreJobBytes(): number;
  initRope(model: number, freqs: number): void;
  ropeInverseFrequencies(freqs: number, headSize: number, theta: number): void;
  forward(model: number, workspace: number, n: number, nLogitRows: number): void;
  generate(model: number, workspace: number, job: number): number;
  logprobs(model: number, workspace: number, job: number): void;
  scores(model: number, workspace: number, job: number): void;
  trainStep(model: number, grads: number, workspace: number, job: number): number;
  trainForward(model: number, workspace: number, job: number): void;
  trainBackward(model: number, grads: number, workspace: number, job: number): number;
  sumSquares(x: number, count: number): number;
  adamwStep(param: number, grad: number, m: number, v: number, count: number, lr: number, beta1: number, beta2: number,
    eps: number, weightDecay: number, gradScale: number, biasCorrection1: number, biasCorrection2: number): void;
  matmulForward(out: number, x: number, w: number, n: number, inDim: number, outDim: number, accumulate: number): void;
  narrowBf16(dst: number, src: number, count: number): number;
}

export interface Kernels {
  exports: KernelExports;
  memory: WebAssembly.Memory;
  build: BuildName;
}

const isModule = (s: WasmSource): s is WebAssembly.Module => s instanceof WebAssembly.Module;

/** True when this engine accepts the relaxed-SIMD build (Node 20 only with --experimental-wasm-relaxed-simd). */
export function supportsRelaxedSimd(builds: WasmBuilds): boolean {
  if (!builds.relaxed) return false;
  if (isModule(builds.relaxed)) return true;
  try {
    return WebAssembly.validate(builds.relaxed);
  } catch {
    return false;
  }
}

/**
 * Instantiates the kernels with a memory the host owns (so it can be grown, and later shared by workers).
 * 'auto' picks relaxed SIMD where the engine validates it, else plain SIMD.
 */
export async function instantiateKernels(builds: WasmBuilds, choice: BuildChoice = 'auto'): Promise<Kernels> {
  let build: BuildName = choice === 'auto' ? (supportsRelaxedSimd(builds) ? 'relaxed-simd' : 'simd') : choice;
  if (build === 'relaxed-simd' && !supportsRelaxedSimd(builds)) {
    throw new Error('the relaxed-SIMD build was requested but this JavaScript engine does not accept it ' +
      '(Node 20 needs --experimental-wasm-relaxed-simd); use build "simd" or "auto"');
  }
  const source = build === 'relaxed-simd' ? builds.relaxed! : builds.simd;
  const module = isModule(source) ? source : await compileBytes(source);
  const memory = new WebAssembly.Memory({ initial: KERNEL_INITIAL_PAGES, maximum: WASM_MAX_PAGES });
  const imports = {
    env: {
      memory,
      abort(_message: number, _file: number, line: number, column: number) {
        throw new Error(`remax kernel aborted at line ${line}:${column}`);
      },
    },
  };
  const instance = await WebAssembly.instantiate(module, imports);
  return { exports: instance.exports as unknown as KernelExports, memory, build };
}

async function compileBytes(bytes: BufferSource): Promise<WebAssembly.Module> {
  try {
    return await WebAssembly.compile(bytes);
  } catch (error) {
    if (/disallowed|not allowed|CSP|Content Security Policy/i.test(String(error))) {
      throw new Error(`this runtime does not compile WebAssembly from bytes (${(error as Error).message}). ` +
        'In Cloudflare Workers import the package\'s "workerd" build (remax-wasm resolves to it under wrangler), or import ' +
        'remax.simd.wasm as a module and pass it as `wasm: { simd }`; on a page with a Content Security Policy allow \'wasm-unsafe-eval\'.');
    }
    throw error;
  }
}

/** Grows `memory` so that it holds at least `bytes`. */
export function ensureMemory(memory: WebAssembly.Memory, bytes: number): void {
  const pages = Math.ceil(bytes / WASM_PAGE_BYTES);
  const have = memory.buffer.byteLength / WASM_PAGE_BYTES;
  if (pages > WASM_MAX_PAGES) {
    throw new RangeError(`the memory plan needs ${(bytes / 2 ** 30).toFixed(2)} GiB, over the 4 GiB a wasm32 module can address; ` +
      'use a smaller batch or maxTokens');
  }
  if (pages > have) memory.grow(pages - have);
}
