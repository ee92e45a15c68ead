// Every integer flag has a limit, and its message says it: `--seed 1e20` said "must be an integer, got
// 100000000000000000000" (1e20 is an integer to JavaScript, and no seed). Integers are bounded by the safe integers
// unless the flag has a tighter real range (remax train's --seed: 24 bits reach the samplers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { numberFlag } from '../../src/node/args';
import { RemaxInputError } from '../../src/core/errors';
import { TRAIN_OPTIONS, resolveTrainOptions } from '../../src/node/train-options';

const CLI = process.env.REMAX_CLI ?? path.resolve('dist/cli.js');
const remax = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const SAFE = String(Number.MAX_SAFE_INTEGER);

const throwsInput = (fn: () => unknown, message: string) =>
  assert.throws(fn, (e: unknown) => e instanceof RemaxInputError && e.message === message, message);

test('numberFlag: an integer flag states its range; without one, the safe integers', () => {
  throwsInput(() => numberFlag({ seed: '1e20' }, 'seed', 0, { integer: true, min: 0 }), `--seed must be an integer ≥ 0 and ≤ ${SAFE}, got "1e20"`);
  throwsInput(() => numberFlag({ n: '9007199254740992' }, 'n', 0, { integer: true, min: 1 }), `--n must be an integer ≥ 1 and ≤ ${SAFE}, got "9007199254740992"`);
  throwsInput(() => numberFlag({ n: '-1e300' }, 'n', 0, { integer: true }), `--n must be an integer ≥ -${SAFE} and ≤ ${SAFE}, got "-1e300"`);
  throwsInput(() => numberFlag({ n: 'x' }, 'n', 0, { integer: true, max: 10 }), `--n must be an integer ≥ -${SAFE} and ≤ 10, got "x"`);
  // A caller's max above the safe integers is no limit: the safe integers still are.
  throwsInput(() => numberFlag({ n: '1e17' }, 'n', 0, { integer: true, min: 0, max: 1e18 }), `--n must be an integer ≥ 0 and ≤ ${SAFE}, got "1e17"`);
  assert.equal(numberFlag({ n: SAFE }, 'n', 0, { integer: true, min: 0 }), Number.MAX_SAFE_INTEGER);
  // Unchanged: numbers keep their own bounds only; existing messages keep their form.
  assert.equal(numberFlag({ lr: '1e30' }, 'lr', 0, { min: 0, minExclusive: true }), 1e30);
  throwsInput(() => numberFlag({ threads: 'x' }, 'threads', 1, { integer: true, min: 1, max: 256, orWord: 'auto' }), '--threads must be an integer ≥ 1 and ≤ 256 (or auto), got "x"');
  throwsInput(() => numberFlag({ p: '2' }, 'p', 0, { max: 1 }), '--p must be a number ≤ 1, got "2"');
});

test('remax train options: every integer option is bounded; the seed by the 24 bits its samplers keep, the reward timeout by setTimeout', () => {
  for (const o of TRAIN_OPTIONS.filter((x) => x.kind === 'integer')) {
    assert.throws(() => resolveTrainOptions({ [o.name]: '1e20' }, {}, 'config'), (e: unknown) =>
      e instanceof RemaxInputError && new RegExp(`^--${o.name} must be an integer ≥ -?\\d+ and ≤ \\d+`).test(e.message), o.name);
  }
  throwsInput(() => resolveTrainOptions({ seed: '1e20' }, {}, 'config'), '--seed must be an integer ≥ 0 and ≤ 16777215, got "1e20"');
  throwsInput(() => resolveTrainOptions({}, { seed: 16777216 }, 'run/config.json'), 'run/config.json: "seed" must be an integer ≥ 0 and ≤ 16777215, got "16777216"');
  assert.equal(resolveTrainOptions({ seed: '16777215' }, {}, 'config').seed, 16777215);
  // 3e9 ms passed the check, and Node's setTimeout turned it into 1 ms: every reward timed out at once.
  throwsInput(() => resolveTrainOptions({ 'reward-timeout': '3e9' }, {}, 'config'), '--reward-timeout must be a number > 1 and ≤ 2147483647, got "3e9"');
  // Each sampled response's stream is (seed << 40) ^ (step << 20) ^ index: 2^20 responses per step at most.
  throwsInput(() => resolveTrainOptions({ 'samples-per-prompt': '256' }, {}, 'config'), '--samples-per-prompt must be an integer ≥ 1 and ≤ 255, got "256"');
});

test('the CLI: --seed 1e20 names the limit (train, generate, init; --dim, --port too), exit 2 before any work', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-flags-'));
  try {
    const bad = (r: ReturnType<typeof remax>, pattern: RegExp) => {
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    };
    bad(remax('train', '--seed', '1e20', '--out', path.join(dir, 'run')), /--seed must be an integer ≥ 0 and ≤ 16777215, got "1e20"/);
    bad(remax('generate', '--model', 'x.bin', '--prompt-ids', '1', '--seed', '1e20'), new RegExp(`--seed must be an integer ≥ 0 and ≤ ${SAFE}, got "1e20"`));
    bad(remax('init', '--out', path.join(dir, 'm.bin'), '--dim', '8', '--hidden', '8', '--layers', '1', '--heads', '2', '--vocab', '8', '--seq', '8', '--seed', '1e20'),
      new RegExp(`--seed must be an integer ≥ 0 and ≤ ${SAFE}`));
    bad(remax('init', '--out', path.join(dir, 'm.bin'), '--dim', '1e20', '--hidden', '8', '--layers', '1', '--heads', '2', '--vocab', '8', '--seq', '8'),
      new RegExp(`--dim must be an integer ≥ 1 and ≤ ${SAFE}`));
    bad(remax('serve', '--port', '1e20'), /--port must be an integer ≥ 0 and ≤ 65535, got "1e20"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
