// The runtime checks (checks.mjs) as a script that runs unchanged on Node, Deno and Bun (from the project root):
//   node tests/runtimes/check.mjs
//   deno run --allow-read tests/runtimes/check.mjs
//   bun tests/runtimes/check.mjs
// It loads the bundled library (dist/index.js, WASM embedded) and the shared test data, and prints ONE JSON line
// (prefixed with "RESULT "). Exits non-zero when a check fails.
// With the argument --speed it times decoding and training instead (speed.mjs) and prints a "SPEED " line.
import * as remax from '../../dist/index.js';
import { runChecks, REAL_MODEL_FILES } from './checks.mjs';
import { runSpeed } from './speed.mjs';

const runtime = globalThis.Deno ? 'deno' : globalThis.Bun ? 'bun' : 'node';
const version = runtime === 'deno' ? globalThis.Deno.version.deno : runtime === 'bun' ? globalThis.Bun.version : globalThis.process.versions.node;

/** The bytes of a file (relative to the working directory), or null when it does not exist. */
async function readBytes(path) {
  try {
    if (globalThis.Deno) return await globalThis.Deno.readFile(path);
    const { readFile } = await import('node:fs/promises');
    return new Uint8Array(await readFile(path));
  } catch (error) {
    if (error?.code === 'ENOENT' || (globalThis.Deno && error instanceof globalThis.Deno.errors.NotFound)) return null;
    throw error;
  }
}

function exit(code) {
  if (globalThis.Deno) globalThis.Deno.exit(code);
  globalThis.process.exit(code);
}

// Node 20 accepts the relaxed-SIMD build only behind a V8 flag (as the Node tests set it); Deno and Bun need none.
if (runtime === 'node' && remax.wasmBuilds.relaxed && !WebAssembly.validate(remax.wasmBuilds.relaxed)) {
  try {
    (await import('node:v8')).setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    // no such flag: the build is reported as unavailable
  }
}

const SHARED = '../shared';
const [stories, aidreams, greedyJson] = await Promise.all([
  readBytes(`${SHARED}/models/stories260K.bin`), readBytes(`${SHARED}/models/aidreams260K.bin`), readBytes(`${SHARED}/reference/greedy.json`),
]);
const realFiles = Object.entries(REAL_MODEL_FILES);
const realBytes = await Promise.all(realFiles.map(([, file]) => readBytes(`${SHARED}/${file}`)));
const args = globalThis.Deno ? globalThis.Deno.args : globalThis.process.argv.slice(2);
if (args.includes('--speed')) {
  console.log('SPEED ' + JSON.stringify(await runSpeed(remax, { runtime, version, stories })));
  exit(0);
}
const real = realBytes.every(Boolean) ? Object.fromEntries(realFiles.map(([key], i) => [key, realBytes[i]])) : {};
const data = stories && aidreams && greedyJson ? { stories, aidreams, greedyJson, ...real } : null;
// Helper engines on worker threads (node:worker_threads, which Deno and Bun provide too) for the thread check.
const { startHelperWorkers } = await import('../../dist/node.js');
const result = await runChecks(remax, { runtime, version, data, log: (line) => console.error(line), startHelpers: startHelperWorkers });
console.log('RESULT ' + JSON.stringify(result));
exit(result.failures > 0 ? 1 : 0);
