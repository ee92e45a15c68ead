// The npm package: what `npm pack` would ship, that every entry of the exports map exists after the build and loads,
// and that nothing in the production dependency tree compiles native code at install.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

test('npm pack lists only what a user needs: the bundles, their types, the kernel builds, the default task and the README', () => {
  const [packed] = JSON.parse(execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  const files: string[] = packed.files.map((f: { path: string }) => f.path);
  const unexpected = files.filter((f) => !/^(dist\/|assets\/default-task\/|README\.md$|package\.json$|LICENSE)/.test(f));
  assert.deepEqual(unexpected, [], `unexpected files in the package: ${unexpected.join(', ')}`);
  for (const needed of ['dist/index.js', 'dist/browser.js', 'dist/workerd.js', 'dist/node.js', 'dist/cli.js', 'dist/web/index.html',
    'dist/remax.simd.wasm', 'dist/remax.relaxed.wasm', 'dist/types/index.d.ts', 'assets/default-task/model.bin',
    'dist/helper-worker.js', 'dist/reward-worker.js']) {
    assert.ok(files.includes(needed), `${needed} is missing from the package`);
  }
  assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('tests/') || f.startsWith('assembly/')), 'sources leaked into the package');
});

test('every target of the exports map, the bin and the types exists', () => {
  const targets: string[] = [];
  const collect = (value: unknown) => {
    if (typeof value === 'string') targets.push(value);
    else if (value && typeof value === 'object') Object.values(value).forEach(collect);
  };
  collect(pkg.exports);
  collect(pkg.bin);
  targets.push(pkg.types, pkg.main);
  for (const target of targets) assert.ok(existsSync(target), `${target} (named in package.json) does not exist after the build`);
  assert.ok(pkg.engines?.node, 'package.json has no engines field');
});

test('the Node entries load and expose the engine and the trainer', async () => {
  for (const entry of ['dist/index.js', 'dist/node.js']) {
    const lib = await import(path.resolve(entry));
    assert.equal(typeof lib.RemaxEngine?.create, 'function', `${entry} exports no RemaxEngine`);
    assert.equal(typeof lib.ReMaxTrainer, 'function', `${entry} exports no ReMaxTrainer`);
  }
});

test('no production dependency compiles native code at install (no binding.gyp, no node-gyp scripts)', () => {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const dir = path.join('node_modules', name);
    const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    assert.ok(!existsSync(path.join(dir, 'binding.gyp')), `${name} has a binding.gyp (native build at install)`);
    const scripts = Object.values(manifest.scripts ?? {}).join(' ');
    assert.ok(!/node-gyp|prebuild|cmake-js/.test(scripts), `${name} runs a native build at install: ${scripts}`);
    Object.keys(manifest.dependencies ?? {}).forEach(visit);
  };
  Object.keys(pkg.dependencies ?? {}).forEach(visit);
  assert.ok(seen.size >= 1);
});
