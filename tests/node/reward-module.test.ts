import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadRewardModule } from '../../src/node/reward-module';
import { RemaxInputError } from '../../src/core/errors';
import type { RewardSample } from '../../src/core/rewards';

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
const tempBundles = () => readdirSync(tmpdir()).filter((f) => f.startsWith('remax-reward-') && !f.startsWith('remax-reward-module-test-'));

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
  const before = tempBundles();
  const fn = await loadRewardModule(reward);
  assert.deepEqual(await fn(samples), [1, 0]);
  assert.deepEqual(tempBundles(), before, 'no temp bundle left behind');
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

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
