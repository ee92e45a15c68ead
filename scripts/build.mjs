// Bundles the TypeScript host with esbuild: the library, the CLI, the Node tests and the benchmarks.
// The WASM binaries are embedded as bytes (binary loader), so every bundle is self-contained on any runtime.
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';

const common = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'es2022',
  loader: { '.wasm': 'binary' },
  // esbuild loads TypeScript reward modules at run time: kept as a package import (a runtime dependency).
  external: ['esbuild'],
  logLevel: 'warning',
  sourcemap: false,
};

const listTs = (dir, suffix) => readdirSync(dir).filter((f) => f.endsWith(suffix)).map((f) => `${dir}/${f}`);

rmSync('dist', { recursive: true, force: true });
rmSync('build/tests', { recursive: true, force: true });
rmSync('build/bench', { recursive: true, force: true });

await Promise.all([
  build({ ...common, entryPoints: ['src/index.ts'], outfile: 'dist/index.js' }),
  build({ ...common, entryPoints: ['src/node/index.ts'], outfile: 'dist/node.js' }),
  build({
    ...common,
    entryPoints: ['src/node/cli.ts'],
    outfile: 'dist/cli.js',
    banner: { js: '#!/usr/bin/env node' },
  }),
  build({ ...common, entryPoints: listTs('tests/node', '.test.ts'), outdir: 'build/tests' }),
  build({ ...common, entryPoints: listTs('bench', '.ts'), outdir: 'build/bench' }),
]);
