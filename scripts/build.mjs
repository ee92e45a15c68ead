// Bundles the TypeScript host with esbuild: the library, the CLI, the Node tests and the benchmarks.
// The WASM binaries are embedded as bytes (binary loader), so every bundle is self-contained on any runtime.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

const common = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'es2022',
  loader: { '.wasm': 'binary' },
  // esbuild loads TypeScript reward modules at run time: kept as a package import (a runtime dependency).
  external: ['esbuild', 'playwright-core'],
  logLevel: 'warning',
  sourcemap: false,
};

// Cloudflare Workers (workerd) compile no WASM from bytes: there the builds are imported as WASM modules that sit
// beside the bundle (wrangler and workerd configs pick them up), instead of being embedded.
const wasmAsModules = {
  name: 'wasm-as-modules',
  setup(b) {
    b.onResolve({ filter: /\.wasm$/ }, (args) => ({ path: `./${path.basename(args.path)}`, external: true }));
  },
};

const listTs = (dir, suffix) => readdirSync(dir).filter((f) => f.endsWith(suffix)).map((f) => `${dir}/${f}`);

rmSync('dist', { recursive: true, force: true });
rmSync('build/tests', { recursive: true, force: true });
rmSync('build/bench', { recursive: true, force: true });

mkdirSync('dist', { recursive: true });
for (const name of ['remax.simd.wasm', 'remax.relaxed.wasm']) copyFileSync(`build/${name}`, `dist/${name}`);
// The in-browser trainer page (remax serve): a static folder with the built-in default task beside it.
mkdirSync('dist/web/default-task', { recursive: true });
copyFileSync('src/web/app/index.html', 'dist/web/index.html');
for (const name of ['model.bin', 'tokenizer.bin', 'train.jsonl', 'eval.jsonl']) {
  copyFileSync(`assets/default-task/${name}`, `dist/web/default-task/${name}`);
}

await Promise.all([
  // The core library: no runtime APIs, so one bundle serves Node, Deno, Bun and workerd.
  build({ ...common, platform: 'neutral', entryPoints: ['src/index.ts'], outfile: 'dist/index.js' }),
  build({ ...common, platform: 'neutral', entryPoints: ['src/index.ts'], outfile: 'dist/workerd.js', plugins: [wasmAsModules] }),
  build({ ...common, platform: 'browser', entryPoints: ['src/web/app/page.ts', 'src/web/app/worker.ts', 'src/web/app/helper.ts'], outdir: 'dist/web' }),
  // Browsers and Web Workers: the core plus loading over URLs.
  build({ ...common, platform: 'browser', entryPoints: ['src/web/index.ts'], outfile: 'dist/browser.js' }),
  build({ ...common, entryPoints: ['src/node/index.ts'], outfile: 'dist/node.js' }),
  build({
    ...common,
    entryPoints: ['src/node/cli.ts'],
    outfile: 'dist/cli.js',
    banner: { js: '#!/usr/bin/env node' },
  }),
  // The worker threads of the helper engines (remax train --threads) and of reward modules (--reward FILE), beside
  // every bundle that may start one.
  ...['dist', 'build/tests', 'build/bench'].map((dir) => build({ ...common, entryPoints: ['src/node/helper-worker.ts', 'src/node/reward-worker.ts'], outdir: dir })),
  build({ ...common, entryPoints: listTs('tests/node', '.test.ts'), outdir: 'build/tests' }),
  build({ ...common, entryPoints: listTs('bench', '.ts'), outdir: 'build/bench' }),
]);
