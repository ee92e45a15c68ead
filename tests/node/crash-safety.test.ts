// A run survives a crash at any moment (issue 15): `remax train` and `remax sft` (dist/cli.js) are killed by strace
// fault injection at each write, rename and unlink in turn, or have a rename or fsync fail with EIO or a write fail
// with ENOSPC (a full disk); then the run is continued (`--resume` when it has a checkpoint or config, else the
// original command again). Every time the continued run must finish with metrics and weights bit-identical to a run
// that was never interrupted. Without strace (a user's machine) the tests skip and say why; CI installs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { syntheticTokenizerBin } from './fixtures';

const CLI = path.resolve(process.env.REMAX_CLI ?? 'dist/cli.js');
const STRACE_WORKS = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', 'true']).status === 0;
const skip = STRACE_WORKS ? false : 'strace is missing or cannot trace here (apt-get install strace): the crash-safety tests need its fault injection';

type Run = { code: number | null; signal: NodeJS.Signals | null; stderr: string };
function remax(args: string[], cwd: string, strace: string[] = []): Run {
  const command = strace.length > 0 ? ['strace', ...strace, process.execPath, CLI, ...args] : [process.execPath, CLI, ...args];
  const r = spawnSync(command[0]!, command.slice(1), { encoding: 'utf8', cwd, timeout: 120_000 });
  return { code: r.status, signal: r.signal, stderr: r.stderr };
}
function ok(r: Run, what: string): void {
  assert.equal(r.code, 0, `${what}: exit ${r.code} ${r.signal ?? ''}\n${r.stderr}`);
}

/** How often the command makes each traced system call when nothing fails. */
function countCalls(args: string[], cwd: string, calls: string[]): Map<string, number> {
  const trace = path.join(cwd, 'count.trace');
  ok(remax(args, cwd, ['-f', '-qq', '-o', trace, '-e', `trace=${calls.join(',')}`]), 'the counting run');
  const counts = new Map<string, number>();
  for (const line of readFileSync(trace, 'utf8').split('\n')) {
    const name = /^\d+\s+(\w+)\(/.exec(line)?.[1];
    if (name !== undefined) counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  rmSync(trace);
  return counts;
}

const lines = (file: string) => existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
/** The metrics that must repeat exactly (times and speeds differ from run to run). */
const exact = (rows: Record<string, unknown>[]) =>
  rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('time') && !k.startsWith('seconds') && k !== 'tokens_per_second')));

interface Job {
  /** The command as first given (its paths relative to the job folder). */
  start: string[];
  /** The command that continues it, or undefined when nothing was saved that a resume could start from. */
  resume(dir: string): string[] | undefined;
  /** Files that must end bit-identical, and JSONL files whose exact metrics must. */
  outputs: string[];
  metrics: string[];
}

/** Kills or fails `job` at every traced call in turn, continues it, and compares with the uninterrupted run. */
function crashEverywhere(job: Job, setup: (dir: string) => void): { scenarios: number; failures: string[] } {
  const root = mkdtempSync(path.join(tmpdir(), 'remax-crash-'));
  try {
    const fresh = (name: string) => {
      const dir = path.join(root, name);
      mkdirSync(dir);
      setup(dir);
      return dir;
    };
    // Every run happens in the same folder (a state records its run's absolute paths); the uninterrupted run's
    // files are moved aside to compare with.
    const work = path.join(root, 'job');
    const straight = path.join(root, 'straight');
    ok(remax(job.start, fresh('job')), 'the uninterrupted run');
    renameSync(work, straight);
    const counts = countCalls(job.start, fresh('count'), ['write', 'pwrite64', 'rename', 'renameat', 'renameat2', 'unlink', 'unlinkat', 'fsync', 'fdatasync']);
    const scenarios: { what: string; strace: string[] }[] = [];
    for (const [call, n] of counts) {
      for (let i = 1; i <= n; i++) {
        const inject = (action: string) => ['-f', '-qq', '-o', '/dev/null', '-e', `trace=${call}`, '-e', `inject=${call}:${action}:when=${i}`];
        if (!call.startsWith('fsync') && call !== 'fdatasync') scenarios.push({ what: `SIGKILL at ${call} #${i}`, strace: inject('signal=KILL') });
        if (call.startsWith('rename') || call === 'fsync' || call === 'fdatasync') scenarios.push({ what: `EIO from ${call} #${i}`, strace: inject('error=EIO') });
        if (call === 'write' || call === 'pwrite64') scenarios.push({ what: `ENOSPC from ${call} #${i}`, strace: inject('error=ENOSPC') });
      }
    }
    const failures: string[] = [];
    scenarios.forEach(({ what, strace }) => {
      const dir = fresh('job');
      const first = remax(job.start, dir, strace);
      // A failure the process saw (EIO, ENOSPC) is one line that says what happened, never a stack trace.
      if (first.code !== 0 && first.signal === null && first.code !== 137 && /\n\s+at .*:\d+:\d+\)?\n/.test(first.stderr)) {
        failures.push(`${what}: exit ${first.code} with a stack trace:\n${first.stderr.slice(0, 800)}`);
      }
      for (let attempt = 0; attempt < 3; attempt++) { // an interrupted resume is never needed here, but allow a retry
        const next = job.resume(dir) ?? job.start;
        const r = remax(next, dir);
        if (r.code === 0) break;
        if (attempt === 2) failures.push(`${what}: continuing with \`${next.join(' ')}\` failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      }
      for (const file of job.outputs) {
        const a = path.join(dir, file), b = path.join(straight, file);
        if (!existsSync(a)) failures.push(`${what}: ${file} is missing after continuing`);
        else if (!readFileSync(a).equals(readFileSync(b))) failures.push(`${what}: ${file} differs from the uninterrupted run's`);
      }
      for (const file of job.metrics) {
        try {
          assert.deepEqual(exact(lines(path.join(dir, file))), exact(lines(path.join(straight, file))));
        } catch {
          failures.push(`${what}: ${file} differs: steps ${lines(path.join(dir, file)).map((m) => m.step).join(',')}`);
        }
      }
      rmSync(dir, { recursive: true, force: true });
    });
    assert.ok(scenarios.length > 20, `too few scenarios (${scenarios.length}): ${JSON.stringify([...counts])}`);
    return { scenarios: scenarios.length, failures };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function writeInputs(dir: string): void {
  writeFileSync(path.join(dir, 'tok.bin'), syntheticTokenizerBin());
  ok(remax(['init', '--out', 'init.bin', '--dim', '32', '--hidden', '48', '--layers', '2', '--heads', '4', '--vocab', '259', '--seq', '32', '--seed', '2'], dir), 'init');
  // The length reward varies from sample to sample, so the steps move the weights through sampling.
  writeFileSync(path.join(dir, 'prompts.jsonl'), Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `${i}+1=`, target_length: 3 + (i % 4) })).join('\n') + '\n');
  writeFileSync(path.join(dir, 'data.txt'), Array.from({ length: 30 }, (_, i) => `story ${i}: the fox ran ${i} times.`).join('\n\n'));
}

test('train: killed at every write, rename and unlink, or failing with EIO or ENOSPC, then resumed: bit-identical to an uninterrupted run', { skip }, () => {
  const job: Job = {
    start: ['train', '--model', 'init.bin', '--tokenizer', 'tok.bin', '--prompts', 'prompts.jsonl', '--reward', 'length', '--max-new-tokens', '6',
      '--batch', '4', '--eval-every', '0', '--quiet', '--steps', '6', '--seed', '3', '--checkpoint-every', '2', '--out', 'run'],
    // A config.json means the run started; --resume continues it (from step 0 when no checkpoint was committed).
    resume: (dir) => (existsSync(path.join(dir, 'run', 'config.json')) ? ['train', '--resume', 'run', '--quiet'] : undefined),
    outputs: ['run/model.bin', 'run/model.bin.state', 'run/reference.bin'],
    metrics: ['run/metrics.jsonl'],
  };
  const { scenarios, failures } = crashEverywhere(job, writeInputs);
  console.log(`train: ${scenarios} crash scenarios, ${failures.length} failed`);
  assert.deepEqual(failures, []);
});

const sftStart = ['sft', '--model', 'init.bin', '--tokenizer', 'tok.bin', '--data', 'data.txt', '--steps', '6', '--batch', '3', '--lr', '5e-4',
  '--checkpoint-every', '2', '--out', 'sft.bin', '--metrics', 'sft.jsonl'];

test('sft: killed at every write, rename and unlink, or failing with EIO or ENOSPC, then resumed: bit-identical to an uninterrupted run', { skip }, () => {
  const job: Job = {
    start: sftStart,
    // Without a checkpoint the run starts again; --overwrite empties the metrics lines of the attempt that died.
    resume: (dir) => (existsSync(path.join(dir, 'sft.bin')) || existsSync(path.join(dir, '.sft.bin.commit')) ? ['sft', '--resume', 'sft.bin'] : [...sftStart, '--overwrite']),
    outputs: ['sft.bin', 'sft.bin.state'],
    metrics: ['sft.jsonl'],
  };
  const { scenarios, failures } = crashEverywhere(job, writeInputs);
  console.log(`sft: ${scenarios} crash scenarios, ${failures.length} failed`);
  assert.deepEqual(failures, []);
});
