// remax train (dist/cli.js in a child process, or the CLI named by REMAX_CLI) against rewards that misbehave: a
// reward module runs on a worker thread of its own, so whatever it does (loops forever, calls process.exit, throws
// from a timer, leaves a rejection unhandled, changes its samples in place) is at most a failed reward call that the
// --on-reward-error policy handles; a reward server's answer is capped; a .ts reward finds the files beside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { syntheticTokenizerBin } from './fixtures';

const CLI = process.env.REMAX_CLI ?? path.resolve('dist/cli.js');
/** Runs the CLI; a child still running after `timeoutMs` is killed (a hang is then a failed test, not a stuck suite). */
const remax = (args: string[], timeoutMs = 60_000) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
};

/** A tiny random model on a byte tokenizer and prompts with answers (as in train-cli.test.ts). */
function setup() {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-isolation-'));
  const tokenizer = path.join(dir, 'tok.bin');
  writeFileSync(tokenizer, syntheticTokenizerBin());
  const model = path.join(dir, 'init.bin');
  assert.equal(remax(['init', '--out', model, '--dim', '32', '--hidden', '48', '--layers', '2', '--heads', '4', '--vocab', '259', '--seq', '32', '--seed', '2']).code, 0);
  const prompts = path.join(dir, 'prompts.jsonl');
  writeFileSync(prompts, Array.from({ length: 24 }, (_, i) => JSON.stringify({ prompt: `${i % 10}+1=`, answer: String((i % 10) + 1) })).join('\n') + '\n');
  const common = ['train', '--model', model, '--tokenizer', tokenizer, '--prompts', prompts, '--max-new-tokens', '6', '--batch', '4', '--eval-every', '0', '--quiet'];
  /** A reward module in the test folder; `marker` is a file the module may test for (and remove) to misbehave once. */
  const reward = (name: string, text: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  return { dir, common, reward, marker: path.join(dir, 'misbehave-now') };
}

const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const withoutTimes = (rows: Record<string, unknown>[]) => rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('time') && k !== 'tokens_per_second')));
/** The one line an input error prints (exit code 2). */
const oneLine = (stderr: string) => {
  const all = stderr.trim().split('\n');
  assert.equal(all.length, 1, `one line on stderr, got:\n${stderr}`);
  return all[0]!;
};
/** Scores the digits of a completion, as a plain reward would; `before` is JavaScript run first in each call. */
const digitsReward = (before: string) => `import { existsSync, rmSync } from 'node:fs';
export default async (samples) => {
  ${before}
  return samples.map((s) => (s.completion.match(/[0-9]/g)?.length ?? 0) / 6);
};\n`;
const once = (marker: string, action: string) => `if (existsSync(${JSON.stringify(marker)})) { rmSync(${JSON.stringify(marker)}); ${action} }`;

test('a reward that loops forever: --reward-timeout ends the call; abort saves a checkpoint and exits 2 with one line, skip trains on', () => {
  const s = setup();
  try {
    const loops = s.reward('loops.mjs', digitsReward(once(s.marker, 'for (;;) {}')));
    const run = [...s.common, '--reward', loops, '--reward-timeout', '1000', '--steps', '4'];
    // The first call loops (and removes the marker, so that the module loaded again does not).
    const out = path.join(s.dir, 'abort');
    const start = performance.now();
    writeFileSync(s.marker, '');
    const r = remax([...run, '--out', out], 30_000);
    assert.equal(r.signal, null, 'the trainer did not hang');
    assert.equal(r.code, 2, r.stderr);
    assert.match(oneLine(r.stderr), /^remax train: error: reward for prompt ".*": timed out after 1000 ms; the reward module's worker thread was stopped, and the next call loads the module again on a fresh one .*; saved step 0 to .*abort \(resume with --resume .*abort\)$/);
    assert.ok(performance.now() - start < 20_000);
    assert.ok(existsSync(path.join(out, 'model.bin')) && existsSync(path.join(out, 'model.bin.state')), 'a checkpoint');

    // Under skip the looping call's prompt is skipped and the run goes on, its module loaded again.
    writeFileSync(s.marker, '');
    const skipOut = path.join(s.dir, 'skip');
    const k = remax([...run, '--on-reward-error', 'skip', '--out', skipOut], 30_000);
    assert.equal(k.code, 0, k.stderr);
    const skipped = lines(path.join(skipOut, 'metrics.jsonl')).map((m) => m.skipped as number);
    // The looping call's prompt is skipped (its sample and greedy response); the calls of step 1 queued behind it on
    // the blocked thread reach their timeouts too.
    assert.ok(skipped[0]! >= 2 && skipped.slice(1).every((n) => n === 0), `skipped per step: ${skipped.join(' ')}`);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a reward that calls process.exit(0): exit code 2, a message naming it, and a checkpoint', () => {
  const s = setup();
  try {
    const exits = s.reward('exits.mjs', `let calls = 0;\n` + digitsReward(`if (++calls === 6) process.exit(0);`));
    const out = path.join(s.dir, 'run');
    const r = remax([...s.common, '--reward', exits, '--steps', '4', '--out', out]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(oneLine(r.stderr), /^remax train: error: reward for prompt ".*": the reward module called process\.exit\(0\); its worker thread was ended, .*; saved step 1 to /);
    assert.ok(existsSync(path.join(out, 'model.bin')), 'a checkpoint');
    assert.equal(lines(path.join(out, 'metrics.jsonl')).length, 1);
    // Under zero the call scores 0 and the run finishes, on a fresh module.
    writeFileSync(s.marker, '');
    const once_ = s.reward('exits-once.mjs', digitsReward(once(s.marker, 'process.exit(0);')));
    const z = remax([...s.common, '--reward', once_, '--steps', '2', '--on-reward-error', 'zero', '--out', path.join(s.dir, 'zero')]);
    assert.equal(z.code, 0, z.stderr);
    assert.equal(lines(path.join(s.dir, 'zero', 'metrics.jsonl')).length, 2);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a throw from a timer or an unhandled rejection in reward code: a clean stop with a checkpoint, or the policy applied', () => {
  const s = setup();
  try {
    const timer = s.reward('timer.mjs', `let calls = 0;\n` +
      digitsReward(`if (++calls === 6) setTimeout(() => { throw new Error('boom in a timer'); }, 1); await new Promise((r) => setTimeout(r, 50));`));
    const out = path.join(s.dir, 'timer');
    const r = remax([...s.common, '--reward', timer, '--steps', '4', '--out', out]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(oneLine(r.stderr), /^remax train: error: reward for prompt ".*": the reward module threw an uncaught exception \(from a timer or a callback\): boom in a timer; .*; saved step 1 to /);
    assert.ok(existsSync(path.join(out, 'model.bin')), 'a checkpoint');

    const rejection = s.reward('rejection.mjs', `let calls = 0;\n` +
      digitsReward(`if (++calls === 6) Promise.reject(new Error('nobody awaits me')); await new Promise((r) => setTimeout(r, 50));`));
    const a = remax([...s.common, '--reward', rejection, '--steps', '4', '--out', path.join(s.dir, 'rejection')]);
    assert.equal(a.code, 2, a.stderr);
    assert.match(oneLine(a.stderr), /the reward module left a promise rejection unhandled: nobody awaits me; .*; saved step 1 to /);
    // Under skip: the failed calls are skipped (a fresh module counts its calls from 0 again) and the run finishes.
    const skipOut = path.join(s.dir, 'skip');
    const k = remax([...s.common, '--reward', rejection, '--steps', '4', '--on-reward-error', 'skip', '--out', skipOut]);
    assert.equal(k.code, 0, k.stderr);
    const metrics = lines(path.join(skipOut, 'metrics.jsonl'));
    assert.equal(metrics.length, 4);
    assert.ok(metrics.some((m) => (m.skipped as number) > 0));
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a reward that changes its samples in place leaves the run identical to one that does not (metrics and weights, bit for bit)', () => {
  const s = setup();
  try {
    const score = `const rewards = samples.map((s) => (s.completion.includes(s.meta.answer) ? 1 : 0) + 0.1 * s.completionIds.length + 0.01 * s.promptIds.length);`;
    const clean = s.reward('clean.mjs', `export default (samples) => { ${score} return rewards; };\n`);
    const vandal = s.reward('vandal.mjs', `export default (samples) => { ${score}
  for (const s of samples) { s.promptIds.fill(0); s.promptIds.push(258, 258); s.completionIds.reverse(); s.meta.answer = 'x'; s.completion = ''; }
  return rewards;
};\n`);
    const run = [...s.common, '--steps', '4', '--samples-per-prompt', '2', '--sample-every', '1', '--seed', '4'];
    const [a, b] = [path.join(s.dir, 'clean'), path.join(s.dir, 'vandal')];
    assert.equal(remax([...run, '--reward', clean, '--out', a]).code, 0);
    const r = remax([...run, '--reward', vandal, '--out', b]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(withoutTimes(lines(path.join(b, 'metrics.jsonl'))), withoutTimes(lines(path.join(a, 'metrics.jsonl'))));
    assert.deepEqual(lines(path.join(b, 'samples.jsonl')), lines(path.join(a, 'samples.jsonl')));
    assert.deepEqual(readFileSync(path.join(b, 'model.bin')), readFileSync(path.join(a, 'model.bin')));
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a .ts reward reads new URL("./data.json", import.meta.url) beside it, also from a file in a subfolder', () => {
  const s = setup();
  try {
    const folder = path.join(s.dir, 'reward');
    mkdirSync(path.join(folder, 'lib'), { recursive: true });
    writeFileSync(path.join(folder, 'data.json'), JSON.stringify({ bonus: 0.25 }));
    writeFileSync(path.join(folder, 'lib', 'scale.json'), JSON.stringify({ scale: 2 }));
    writeFileSync(path.join(folder, 'lib', 'scale.ts'), `import { readFileSync } from 'node:fs';
export const scale: number = JSON.parse(readFileSync(new URL('./scale.json', import.meta.url), 'utf8')).scale;\n`);
    const reward = path.join(folder, 'reward.ts');
    writeFileSync(reward, `import { readFileSync } from 'node:fs';
import { scale } from './lib/scale';
const { bonus } = JSON.parse(readFileSync(new URL('./data.json', import.meta.url), 'utf8')) as { bonus: number };
export default (samples: { completion: string }[]): number[] => samples.map(() => bonus * scale);\n`);
    const out = path.join(s.dir, 'run');
    const r = remax([...s.common, '--reward', reward, '--steps', '2', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(path.join(out, 'metrics.jsonl')).map((m) => m.reward_mean), [0.5, 0.5]);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a reward server answering past --reward-max-bytes fails the call naming the URL and the limit (a checkpoint, exit 2)', async () => {
  const s = setup();
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  let bytesSent = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"rewards":[1,1],"pad":"');
      // Endless: only the cap ends it.
      const more = () => {
        while (!res.destroyed) {
          bytesSent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
      };
      more();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/score`;
    const out = path.join(s.dir, 'run');
    const child = spawn(process.execPath, [CLI, ...s.common, '--reward-url', url, '--reward-max-bytes', '1048576', '--steps', '2', '--out', out]);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(killer);
    assert.equal(code, 2, stderr);
    assert.match(oneLine(stderr), new RegExp(`^remax train: error: reward for prompt ".*": reward function threw: reward server ${url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ` +
      `the answer is larger than the limit of 1 MiB \\(--reward-max-bytes 1048576\\) .*; saved step 0 to `));
    assert.ok(existsSync(path.join(out, 'model.bin')), 'a checkpoint');
    assert.ok(bytesSent < 64 * 1024 * 1024, `the server sent ${bytesSent} bytes before the trainer hung up`);
  } finally {
    server.closeAllConnections();
    server.close();
    rmSync(s.dir, { recursive: true, force: true });
  }
});
