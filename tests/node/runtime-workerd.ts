// Runs tests/runtimes/workerd-worker.mjs in Cloudflare workerd (npm `workerd`): bundles the worker with esbuild,
// writes a workerd config that embeds it with the two kernel builds (dist/*.wasm) as WASM modules (and the shared test data as data
// modules when present), serves it on a free 127.0.0.1 port, requests it over HTTP, and stops workerd.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { build } from 'esbuild';
import { sharedPath } from './shared-data';
// @ts-expect-error: a plain ES module without types, shared with the runtimes' scripts
import { REAL_MODEL_FILES } from '../runtimes/checks.mjs';

export const WORKERD_BIN = path.resolve('node_modules', '.bin', 'workerd');
const DIR = path.resolve('build', 'workerd-check');
const SHARED_FILES: Record<string, string> = { stories: 'models/stories260K.bin', aidreams: 'models/aidreams260K.bin', greedyJson: 'reference/greedy.json', ...REAL_MODEL_FILES };

/** A TCP port that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Writes the worker bundle, its modules and the config into build/workerd-check; returns the config path. */
async function prepare(port: number): Promise<string> {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  await build({
    entryPoints: ['tests/runtimes/workerd-worker.mjs'], outfile: path.join(DIR, 'worker.js'),
    bundle: true, format: 'esm', platform: 'neutral', target: 'es2022', logLevel: 'warning',
    external: ['*.wasm', './shared-data.mjs'],
  });
  copyFileSync('dist/remax.simd.wasm', path.join(DIR, 'remax.simd.wasm'));
  copyFileSync('dist/remax.relaxed.wasm', path.join(DIR, 'remax.relaxed.wasm'));
  const modules = [
    '(name = "worker.js", esModule = embed "worker.js")',
    '(name = "remax.simd.wasm", wasm = embed "remax.simd.wasm")',
    '(name = "remax.relaxed.wasm", wasm = embed "remax.relaxed.wasm")',
    '(name = "shared-data.mjs", esModule = embed "shared-data.mjs")',
  ];
  const entries = Object.entries(SHARED_FILES);
  if (entries.every(([, file]) => existsSync(sharedPath(file)))) {
    const imports: string[] = [];
    for (const [key, file] of entries) {
      const name = path.basename(file);
      copyFileSync(sharedPath(file), path.join(DIR, name));
      modules.push(`(name = "${name}", data = embed "${name}")`);
      imports.push(`import ${key} from './${name}';`);
    }
    writeFileSync(path.join(DIR, 'shared-data.mjs'), `${imports.join('\n')}\n` +
      `export default { ${entries.map(([key]) => `${key}: new Uint8Array(${key})`).join(', ')} };\n`);
  } else {
    writeFileSync(path.join(DIR, 'shared-data.mjs'), 'export default null;\n');
  }
  const config = path.join(DIR, 'config.capnp');
  writeFileSync(config, `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .checkWorker) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);
const checkWorker :Workerd.Worker = (
  modules = [
    ${modules.join(',\n    ')}
  ],
  compatibilityDate = "2025-01-01",
);
`);
  return config;
}

export interface WorkerdRun {
  code: number | null;
  stdout: string;
  stderr: string;
  body?: string;
}

/** Serves the check worker, GETs it (retrying while workerd starts), and returns its answer. */
export async function runWorkerdCheck(timeoutMs = 120_000): Promise<WorkerdRun> {
  const version = execFileSync(WORKERD_BIN, ['--version'], { encoding: 'utf8' }).trim().replace(/^workerd\s+/, '');
  const port = await freePort();
  const config = await prepare(port);
  const child = spawn(WORKERD_BIN, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null) return { code: child.exitCode, stdout, stderr };
      try {
        const response = await fetch(`http://127.0.0.1:${port}/?version=${encodeURIComponent(version)}`);
        return { code: response.ok ? 0 : response.status, stdout, stderr, body: await response.text() };
      } catch {
        await new Promise((r) => setTimeout(r, 200)); // not listening yet
      }
    }
    return { code: null, stdout, stderr: `${stderr}\nno answer from workerd within ${timeoutMs} ms` };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}
