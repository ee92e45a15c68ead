// A run folder is never silently overwritten, mixed with another run, or left unresumable (issue 15): remax train and
// sft as a user runs them (dist/cli.js in child processes) on a tiny model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { syntheticTokenizerBin } from './fixtures';

const CLI = path.resolve(process.env.REMAX_CLI ?? 'dist/cli.js');
const remax = (args: string[], cwd?: string) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const ok = (r: ReturnType<typeof remax>) => {
  assert.equal(r.code, 0, r.stderr);
  return r;
};
function bad(r: ReturnType<typeof remax>, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit code ${r.code}: ${r.stderr}`);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr, pattern);
}

function setup() {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-runs-'));
  writeFileSync(path.join(dir, 'tok.bin'), syntheticTokenizerBin());
  ok(remax(['init', '--out', path.join(dir, 'init.bin'), '--dim', '32', '--hidden', '48', '--layers', '2', '--heads', '4', '--vocab', '259', '--seq', '32', '--seed', '2']));
  ok(remax(['init', '--out', path.join(dir, 'other.bin'), '--dim', '16', '--hidden', '24', '--layers', '1', '--heads', '2', '--vocab', '259', '--seq', '32', '--seed', '3']));
  writeFileSync(path.join(dir, 'prompts.jsonl'), Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `${i}+1=`, answer: String(i + 1) })).join('\n') + '\n');
  // Relative paths, given from `dir`: a resume from elsewhere must still find them.
  const common = ['--model', 'init.bin', '--tokenizer', 'tok.bin', '--prompts', 'prompts.jsonl', '--reward', 'contains-answer', '--max-new-tokens', '4',
    '--batch', '4', '--eval-every', '0', '--quiet', '--steps', '6', '--seed', '3'];
  return { dir, common };
}
const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const withoutTimes = (rows: Record<string, unknown>[]) => rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('time') && k !== 'tokens_per_second')));
function assertSameRun(dir: string, expected: string): void {
  assert.deepEqual(withoutTimes(lines(path.join(dir, 'metrics.jsonl'))), withoutTimes(lines(path.join(expected, 'metrics.jsonl'))));
  assert.deepEqual(readFileSync(path.join(dir, 'model.bin')), readFileSync(path.join(expected, 'model.bin')));
}

test('--out refuses a folder that holds a run; --overwrite replaces it; --resume --out/--model elsewhere are refused', () => {
  const s = setup();
  try {
    ok(remax(['train', ...s.common, '--out', 'run'], s.dir));
    const before = readFileSync(path.join(s.dir, 'run', 'metrics.jsonl'));
    bad(remax(['train', ...s.common, '--out', 'run', '--lr', '1e-2'], s.dir), /--out run already holds a run.*--resume run.*--overwrite/);
    assert.deepEqual(readFileSync(path.join(s.dir, 'run', 'metrics.jsonl')), before, 'the run was left as it was');
    bad(remax(['train', '--resume', 'run', '--out', 'elsewhere'], s.dir), /a resumed run stays in its folder/);
    bad(remax(['train', '--resume', 'run', '--model', 'other.bin'], s.dir), /--model other\.bin: the run continues from its own checkpoint/);
    ok(remax(['train', ...s.common, '--out', 'run', '--overwrite', '--steps', '2'], s.dir));
    assert.deepEqual(lines(path.join(s.dir, 'run', 'metrics.jsonl')).map((m) => m.step), [1, 2], 'the old run\'s metrics are gone');
    bad(remax(['train', ...s.common, '--out', '/proc/remax-run'], s.dir), /--out \/proc\/remax-run is on \/proc, a kernel file system/);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('resume: from another folder, with flags saved for the next resume; a changed input is refused unless accepted', () => {
  const s = setup();
  try {
    const straight = path.join(s.dir, 'straight'), split = path.join(s.dir, 'split');
    ok(remax(['train', ...s.common, '--out', straight, '--lr', '1e-3'], s.dir));
    ok(remax(['train', ...s.common, '--out', split, '--stop-at', '2'], s.dir));
    // From another working directory; --lr given at the resume is saved, so the plain resume after it keeps it.
    ok(remax(['train', '--resume', split, '--lr', '1e-3', '--stop-at', '4'], tmpdir()));
    assert.equal(JSON.parse(readFileSync(path.join(split, 'config.json'), 'utf8')).lr, 0.001);
    ok(remax(['train', '--resume', split], tmpdir()));
    const config = JSON.parse(readFileSync(path.join(split, 'config.json'), 'utf8'));
    assert.ok(path.isAbsolute(config.prompts) && path.isAbsolute(config.model), 'config.json keeps absolute paths');
    assert.deepEqual(withoutTimes(lines(path.join(split, 'metrics.jsonl'))).map((m) => m.step), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(lines(path.join(split, 'metrics.jsonl')).slice(2).map((m) => m.lr), [0.001, 0.001, 0.001, 0.001]);
    // The prompts change (same number of lines): refused, naming the file; accepted with the flag.
    const again = path.join(s.dir, 'again');
    ok(remax(['train', ...s.common, '--out', again, '--stop-at', '2'], s.dir));
    writeFileSync(path.join(s.dir, 'prompts.jsonl'), Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `${i}+2=`, answer: String(i + 2) })).join('\n') + '\n');
    bad(remax(['train', '--resume', again], tmpdir()), /--prompts .*prompts\.jsonl is not the file the run started with \(its content changed/);
    ok(remax(['train', '--resume', again, '--accept-changed-inputs'], tmpdir()));
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a folder mixed with another run\'s files, or a damaged checkpoint, is refused naming the file in the run', () => {
  const s = setup();
  try {
    const run = path.join(s.dir, 'run');
    ok(remax(['train', ...s.common, '--out', run, '--stop-at', '2'], s.dir));
    cpSync(path.join(s.dir, 'other.bin'), path.join(run, 'reference.bin'));
    bad(remax(['train', '--resume', run]), /the reference .*run\/reference\.bin is not a model of the policy's shape/);
    ok(remax(['train', ...s.common, '--out', run, '--overwrite', '--stop-at', '2'], s.dir));
    truncateSync(path.join(run, 'model.bin'), 1000);
    bad(remax(['train', '--resume', run]), /run\/model\.bin.*truncated/);
    ok(remax(['train', ...s.common, '--out', run, '--overwrite', '--stop-at', '2'], s.dir));
    const state = readFileSync(path.join(run, 'model.bin.state'));
    state[state.length - 100]! ^= 1;
    writeFileSync(path.join(run, 'model.bin.state'), state);
    bad(remax(['train', '--resume', run]), /model\.bin\.state is corrupt: its integrity hash/);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a run folder with no checkpoint yet resumes from step 0: the same run as one never stopped', () => {
  const s = setup();
  try {
    const straight = path.join(s.dir, 'straight'), restarted = path.join(s.dir, 'restarted');
    ok(remax(['train', ...s.common, '--out', straight], s.dir));
    ok(remax(['train', ...s.common, '--out', restarted, '--stop-at', '2'], s.dir));
    for (const f of ['model.bin', 'model.bin.state']) rmSync(path.join(restarted, f)); // as if killed before the first save
    ok(remax(['train', '--resume', restarted]));
    assertSameRun(restarted, straight);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

/** Starts `remax args` and resolves when `file` has `count` lines, with the child still running. */
function startUntil(args: string[], cwd: string, file: string, count: number) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  const ready = new Promise<void>((resolve, reject) => {
    const poll = setInterval(() => {
      if (existsSync(file) && readFileSync(file, 'utf8').split('\n').length - 1 >= count) { clearInterval(poll); resolve(); }
      if (child.exitCode !== null) { clearInterval(poll); reject(new Error(`ended early: ${stderr}`)); }
    }, 10);
  });
  return { child, ready, done };
}

test('SIGTERM saves and exits 143; a second process on the folder is refused while the first runs; a dead one\'s lock is taken over', async () => {
  const s = setup();
  try {
    const run = path.join(s.dir, 'run');
    const first = startUntil(['train', ...s.common, '--steps', '100000', '--out', run], s.dir, path.join(run, 'metrics.jsonl'), 2);
    await first.ready;
    bad(remax(['train', '--resume', run]), new RegExp(`--resume ${run.replace(/[/.]/g, '\\$&')} is in use by process ${first.child.pid}`));
    first.child.kill('SIGTERM');
    const r = await first.done;
    assert.equal(r.code, 143, r.stderr);
    const at = lines(path.join(run, 'metrics.jsonl')).length;
    assert.ok(existsSync(path.join(run, 'model.bin.state')) && at >= 2);
    assert.ok(!existsSync(path.join(run, '.lock')), 'the lock is given back');
    writeFileSync(path.join(run, '.lock'), '999999999\n'); // a process that is gone
    ok(remax(['train', '--resume', run, '--steps', String(at + 1)]));
    assert.equal(lines(path.join(run, 'metrics.jsonl')).length, at + 1);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('sft --resume alone continues with the settings the run saved', () => {
  const s = setup();
  try {
    writeFileSync(path.join(s.dir, 'data.txt'), Array.from({ length: 30 }, (_, i) => `story ${i}: the fox ran ${i} times.`).join('\n\n'));
    const common = ['--model', 'init.bin', '--tokenizer', 'tok.bin', '--data', 'data.txt', '--steps', '12', '--batch', '3', '--lr', '5e-4', '--lr-schedule', 'constant'];
    ok(remax(['sft', ...common, '--out', 'straight.bin', '--metrics', 'a.jsonl'], s.dir));
    const stop = ok(remax(['sft', ...common, '--out', 'split.bin', '--metrics', 'b.jsonl', '--stop-at', '5'], s.dir));
    const hint = /continue with (--resume [^\s)]+)/.exec(stop.stderr)![1]!.split(' ');
    ok(remax(['sft', ...hint], s.dir)); // the hint as printed, nothing else
    assert.deepEqual(lines(path.join(s.dir, 'b.jsonl')).map((m) => [m.step, m.loss, m.lr]), lines(path.join(s.dir, 'a.jsonl')).map((m) => [m.step, m.loss, m.lr]));
    assert.deepEqual(readFileSync(path.join(s.dir, 'split.bin')), readFileSync(path.join(s.dir, 'straight.bin')));
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('sft: a fresh run refuses an earlier checkpoint or metrics at its --out and --metrics; --overwrite starts afresh', () => {
  const s = setup();
  try {
    writeFileSync(path.join(s.dir, 'data.txt'), Array.from({ length: 30 }, (_, i) => `story ${i}: the fox ran ${i} times.`).join('\n\n'));
    const common = ['--model', 'init.bin', '--tokenizer', 'tok.bin', '--data', 'data.txt', '--steps', '3', '--batch', '3'];
    ok(remax(['sft', ...common, '--out', 'a.bin', '--metrics', 'a.jsonl'], s.dir));
    const before = readFileSync(path.join(s.dir, 'a.bin'));
    bad(remax(['sft', ...common, '--out', 'a.bin', '--metrics', 'b.jsonl'], s.dir), /--out a\.bin already holds a checkpoint \(a\.bin\); continue that run with --resume a\.bin, or replace it with --overwrite/);
    bad(remax(['sft', ...common, '--out', 'b.bin', '--metrics', 'a.jsonl'], s.dir), /--metrics a\.jsonl already holds lines of an earlier run; give --overwrite/);
    assert.deepEqual(readFileSync(path.join(s.dir, 'a.bin')), before, 'the checkpoint was left as it was');
    assert.equal(existsSync(path.join(s.dir, 'b.bin')), false);
    ok(remax(['sft', ...common, '--out', 'a.bin', '--metrics', 'a.jsonl', '--overwrite', '--steps', '2'], s.dir));
    assert.deepEqual(lines(path.join(s.dir, 'a.jsonl')).map((m) => m.step), [1, 2], 'the earlier run\'s metrics are gone');
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});
