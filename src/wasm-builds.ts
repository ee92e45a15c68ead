// The kernel builds, embedded in the bundle as bytes (esbuild's binary loader), so no file lookup is needed.
import simd from '../build/remax.simd.wasm';
import relaxed from '../build/remax.relaxed.wasm';
import type { WasmBuilds } from './core/kernels';

export const wasmBuilds: WasmBuilds = { simd, relaxed };
