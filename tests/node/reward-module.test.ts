import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadRewardModule } from '../../src/node/reward-module';
import { RemaxInputError } from '../../src/core/errors';
import { scoreSamples, type RewardFunction, type RewardSample } from '../../src/core/rewards';

const dir = mkdtempSync(path.join(tmpdir(), 'remax-reward-module-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};
const samples: RewardSample[] = [
  { prompt: 'p', completion: 'yes', promptIds: [1], completionIds: [7], meta: { answer: 'yes' } },
  { prompt: 'p', completion: 'no', promptIds: [1], completionIds: [8], meta: { answer: 'yes' } },
];

async function rejectsInput(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof RemaxInputError, `expected a RemaxInputError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}
/** Where the tests' .ts bundles are written while they load (a folder of their own: other tests run at the same time). */
const bundles = path.join(dir, 'bundles');
mkdirSync(bundles);
const tempBundles = () => readdirSync(bundles);

test('a .ts reward with type annotations and a local .ts import is bundled and loaded; its temp file is removed', async () => {
  file('helper.ts', `export const normalise = (s: string): string => s.trim().toLowerCase();\n`);
  const reward = file('reward.ts', [
    `import { normalise } from './helper';`,
    `interface Sample { completion: string; meta: Record<string, unknown> }`,
    `export const unused: number = 1;`,
    `export default function reward(samples: Sample[]): number[] {`,
    `  return samples.map((s) => (normalise(s.completion) === String(s.meta.answer) ? 1 : 0));`,
    `}`,
  ].join('\n'));
  const fn = await loadRewardModule(reward, { tempDir: bundles });
  assert.deepEqual(await fn(samples), [1, 0]);
  assert.deepEqual(tempBundles(), [], 'no temp bundle left behind');
});

test('a .mts reward works the same way', async () => {
  const fn = await loadRewardModule(file('reward.mts', `export default async (samples: { completion: string }[]): Promise<number[]> => samples.map((s) => s.completion.length);\n`));
  assert.deepEqual(await fn(samples), [3, 2]);
});

test('a .mjs reward is imported directly', async () => {
  const fn = await loadRewardModule(file('reward.mjs', `export default (samples) => samples.map((s) => (s.completion === 'yes' ? 0.5 : -0.5));\n`));
  assert.deepEqual(await fn(samples), [0.5, -0.5]);
});

test('a module without a default export function lists what it exports', async () => {
  const named = file('named.ts', `export function a() { return [1]; }\nexport const b = 2;\n`);
  await rejectsInput(loadRewardModule(named), new RegExp(`^--reward ${escape(named)} must have a default export \\(samples\\) => number\\[\\]; it exports: a, b$`));
  await rejectsInput(loadRewardModule(file('value.mjs', `export default 42;\n`)), /must have a default export .* it exports: nothing$/);
});

test('a missing file, a directory and an unknown extension name the path', async () => {
  await rejectsInput(loadRewardModule('./no/such/reward.ts'), /^--reward \.\/no\/such\/reward\.ts: no such file$/);
  await rejectsInput(loadRewardModule(dir), /is a directory/);
  await rejectsInput(loadRewardModule(file('reward.py', 'def reward(): pass\n')), /unknown kind of file "\.py"; give a \.js, \.mjs, \.ts or \.mts module/);
});

test('a TypeScript syntax error gives the esbuild message with file:line:column', async () => {
  const broken = file('broken.ts', `export default (samples: unknown[]) => {\n  return samples.map(() => 1;\n};\n`);
  await rejectsInput(loadRewardModule(broken), /^--reward .*broken\.ts does not compile: .*broken\.ts:2:\d+: Expected "\)" but found ";"$/);
  await rejectsInput(loadRewardModule(file('bad-import.ts', `import { x } from './nowhere';\nexport default () => [x];\n`)),
    /bad-import\.ts:1:\d+: Could not resolve "\.\/nowhere"/);
});

test('a module that throws while loading names the --reward path', async () => {
  const throwing = file('throws.mjs', `throw new Error('missing API key');\n`);
  await rejectsInput(loadRewardModule(throwing), new RegExp(`^--reward ${escape(throwing)} failed to load: missing API key$`));
});

test('a .ts reward: import.meta.url, .dirname and .filename are those of each of its files, so each finds its own data', async () => {
  const folder = path.join(dir, 'with-data');
  mkdirSync(path.join(folder, 'lib'), { recursive: true });
  writeFileSync(path.join(folder, 'data.json'), JSON.stringify({ bonus: 0.25 }));
  writeFileSync(path.join(folder, 'lib', 'scale.json'), JSON.stringify({ scale: 2 }));
  writeFileSync(path.join(folder, 'lib', 'scale.ts'), `import { readFileSync } from 'node:fs';
export const scale: number = JSON.parse(readFileSync(new URL('./scale.json', import.meta.url), 'utf8')).scale;
export const where = [import.meta.url, import.meta.dirname, import.meta.filename];\n`);
  const reward = path.join(folder, 'reward.ts');
  writeFileSync(reward, `#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { scale } from './lib/scale';
const { bonus } = JSON.parse(readFileSync(new URL('./data.json', import.meta.url), 'utf8')) as { bonus: number };
export default (samples: unknown[]): number[] => samples.map(() => bonus * scale);\n`);
  const fn = await loadRewardModule(reward);
  assert.deepEqual(await fn(samples), [0.5, 0.5]);
  // What each file sees (returned as "rewards": fn itself does not check them, scoreSamples does).
  const paths = path.join(folder, 'paths.ts');
  writeFileSync(paths, `import { where } from './lib/scale';\nconst mine = [import.meta.url, import.meta.dirname, import.meta.filename];\nexport default () => [...mine, ...where];\n`);
  const lib = path.join(folder, 'lib', 'scale.ts');
  assert.deepEqual(await (await loadRewardModule(paths))(samples), [
    pathToFileURL(paths).href, folder, paths, pathToFileURL(lib).href, path.dirname(lib), lib,
  ]);
});

test('a .ts reward with an error on a line after an import.meta use still reports its own line number', async () => {
  const broken = file('meta-broken.ts', `const here = import.meta.url;\nexport default (samples: unknown[]) => {\n  return samples.map(() => here.length;\n};\n`);
  await rejectsInput(loadRewardModule(broken), /meta-broken\.ts:3:\d+: Expected "\)" but found ";"$/);
});

/** scoreSamples as the trainer calls it, on one group of the test samples. */
const score = (fn: RewardFunction, timeoutMs = 5000, onError: 'abort' | 'skip' | 'zero' = 'skip') =>
  scoreSamples(fn, [samples], { timeoutMs, onError, concurrency: 4 });

test('a synchronous endless loop is stopped at the timeout; the next call runs on a fresh thread that loaded the module again', async () => {
  const marker = path.join(dir, 'loop-once');
  const fn = await loadRewardModule(file('loops.mjs', `import { existsSync, rmSync } from 'node:fs';
const loadedAt = Date.now() + Math.random();
export default (samples) => {
  if (existsSync(${JSON.stringify(marker)})) { rmSync(${JSON.stringify(marker)}); for (;;) {} }
  return samples.map(() => loadedAt);
};\n`));
  const first = await score(fn);
  writeFileSync(marker, '');
  const start = performance.now();
  const stopped = await score(fn, 300);
  assert.ok(performance.now() - start < 2000);
  assert.deepEqual(stopped.errors, [`reward for prompt "p": timed out after 300 ms; the reward module's worker thread was stopped, and the next call loads the module again on a fresh one`]);
  const after = await score(fn);
  assert.deepEqual(after.errors, []);
  assert.notDeepEqual(after.rewards, first.rewards, 'the module was loaded again (its load time differs)');
  await fn.close();
});

test('the other calls in flight on a thread stopped for one call are sent again to the fresh thread', async () => {
  const fn = await loadRewardModule(file('slow-one.mjs', `export default async (samples) => {
  if (samples[0].prompt === 'slow') { const t = Date.now(); while (Date.now() - t < 60000); }
  await new Promise((resolve) => setTimeout(resolve, 100));
  return samples.map(() => 1);
};\n`));
  const group = (prompt: string) => samples.map((s) => ({ ...s, prompt }));
  // The slow call is given up after 300 ms (as scoreSamples does at a timeout); the others have no deadline.
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error('timed out')), 300);
  const call = { signal: controller.signal } as { signal: AbortSignal; stopped?: string };
  const [a, slow, b] = await Promise.allSettled([fn(group('a')), fn(group('slow'), call), fn(group('b'))]);
  assert.deepEqual([a, b], [{ status: 'fulfilled', value: [1, 1] }, { status: 'fulfilled', value: [1, 1] }]);
  assert.equal(slow.status, 'rejected');
  assert.match(call.stopped!, /worker thread was stopped/);
  await fn.close();
});

test('process.exit() in a call fails that call only: the message says so, the next call works', async () => {
  const marker = file('exit-once', '');
  const fn = await loadRewardModule(file('exits.mjs', `import { existsSync, rmSync } from 'node:fs';\nlet calls = 0;
export default (samples) => { if (existsSync(${JSON.stringify(marker)})) { rmSync(${JSON.stringify(marker)}); process.exit(0); } calls++; return samples.map(() => calls); };\n`));
  const r = await score(fn, 5000, 'zero');
  assert.deepEqual(r.errors, [`reward for prompt "p": the reward module called process.exit(0); its worker thread was ended, and the next call loads the module again on a fresh one`]);
  assert.deepEqual((await score(fn)).rewards, [1, 1], 'a fresh module: its counter starts again');
  assert.deepEqual((await score(fn)).rewards, [2, 2], 'and the thread stays');
});

test('a .ts module is bundled once and loaded again from a fresh temp bundle after a restart; no bundle is left behind', async () => {
  const marker = file('ts-exit-once', '');
  const fn = await loadRewardModule(file('exits-once.ts', `import { existsSync, rmSync } from 'node:fs';
export default (samples: unknown[]): number[] => { if (existsSync(${JSON.stringify(marker)})) { rmSync(${JSON.stringify(marker)}); process.exit(1); } return samples.map(() => 2); };\n`),
  { tempDir: bundles });
  assert.match((await score(fn)).errors[0]!, /the reward module called process\.exit\(1\)/);
  assert.deepEqual((await score(fn)).rewards, [2, 2]);
  assert.deepEqual(tempBundles(), []);
  await fn.close();
});

test('a throw from a timer or an unhandled rejection fails the call in flight, or the next one when it comes between calls', async () => {
  const timer = await loadRewardModule(file('timer.mjs', `export default async (samples) => {
  setTimeout(() => { throw new Error('boom in a timer'); }, 1);
  await new Promise((resolve) => setTimeout(resolve, 200));
  return samples.map(() => 1);
};\n`));
  assert.deepEqual((await score(timer)).errors, [`reward for prompt "p": the reward module threw an uncaught exception (from a timer or a callback): boom in a timer; its worker thread was ended, and the next call loads the module again on a fresh one`]);
  const rejection = await loadRewardModule(file('rejection.mjs', `export default (samples) => { Promise.reject(new Error('nobody awaits me')); return new Promise((r) => setTimeout(() => r(samples.map(() => 1)), 200)); };\n`));
  assert.match((await score(rejection)).errors[0]!, /: the reward module left a promise rejection unhandled: nobody awaits me; its worker thread was ended/);
  // A timer that throws after the call returned: the next call fails with it, and the one after works.
  const late = await loadRewardModule(file('late.mjs', `let calls = 0;\nexport default (samples) => { if (++calls === 1) setTimeout(() => { throw new Error('late'); }, 20); return samples.map(() => 1); };\n`));
  assert.deepEqual((await score(late)).errors, []);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.match((await score(late)).errors[0]!, /: between calls, the reward module threw an uncaught exception \(from a timer or a callback\): late; its worker thread was ended/);
  assert.deepEqual((await score(late)).errors, []);
  for (const fn of [timer, rejection, late]) await fn.close();
});

test('a reward gets copies: changing them in place changes nothing of the caller', async () => {
  const fn = await loadRewardModule(file('mutates.mjs', `export default (samples) => { for (const s of samples) { s.promptIds.fill(0); s.meta.answer = 'no'; } return samples.map(() => 1); };\n`));
  const mine = structuredClone(samples);
  assert.deepEqual(await fn(mine), [1, 1]);
  assert.deepEqual(mine, samples);
  await fn.close();
});

test('a result that cannot leave the thread, and a module that hangs, exits or throws a timer while loading, are clear errors', async () => {
  const fn = await loadRewardModule(file('returns-fn.mjs', `export default (samples) => samples.map(() => () => 1);\n`));
  assert.match((await score(fn)).errors[0]!, /: reward function returned a value that cannot be copied out of its worker thread \(.*could not be cloned/);
  await fn.close();
  await rejectsInput(loadRewardModule(file('hangs.mjs', `for (;;) {}\nexport default () => [];\n`), { loadTimeoutMs: 300 }),
    /^--reward .*hangs\.mjs did not finish loading within 300 ms$/);
  await rejectsInput(loadRewardModule(file('exits-at-load.mjs', `process.exit(3);\nexport default () => [];\n`)),
    /^--reward .*exits-at-load\.mjs failed to load: the reward module called process\.exit\(3\)$/);
  await rejectsInput(loadRewardModule(file('timer-at-load.mjs', `setTimeout(() => { throw new Error('late start'); }, 1);\nawait new Promise((r) => setTimeout(r, 100));\nexport default () => [];\n`)),
    /^--reward .*timer-at-load\.mjs failed to load: the reward module threw an uncaught exception \(from a timer or a callback\): late start$/);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
