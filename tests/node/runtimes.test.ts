// The engine in each JavaScript runtime, for real: tests/runtimes/check.mjs (one plain-JS script) runs unchanged on
// Node, Deno (npm `deno`) and Bun (npm `bun`); each run checks the greedy reference ids and one ReMax step, and prints
// the hashes of a seeded sampled generation and of the weights after a seeded ReMax step. Same seed, same result:
// with the portable `simd` build these hashes must be identical in every runtime that ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const SCRIPT = 'tests/runtimes/check.mjs';
const COMPARED_BUILD = 'simd';

interface CheckResult {
  runtime: string;
  version: string;
  build: string;
  greedyOk: boolean | null;
  greedyCases: number | null;
  sampledModel: string;
  sampledIdsHash: string;
  weightsHash: string;
  loss: number;
  relaxed: { sampledIdsHash: string; weightsHash: string } | null;
  failures: number;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  result?: CheckResult;
}

const bin = (name: string) => path.resolve('node_modules', '.bin', name);
const RUNTIMES: { name: string; command: string; args: string[] }[] = [
  { name: 'node', command: process.execPath, args: [SCRIPT] },
  { name: 'deno', command: bin('deno'), args: ['run', '--allow-read', SCRIPT] },
  { name: 'bun', command: bin('bun'), args: [SCRIPT] },
];

function runCheck(command: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, {
      cwd: process.cwd(),
      timeout: 120_000,
      maxBuffer: 16 << 20,
      env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1', NO_COLOR: '1', DO_NOT_TRACK: '1' },
    }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      resolve({ code, stdout, stderr, result: line ? (JSON.parse(line.slice('RESULT '.length)) as CheckResult) : undefined });
    });
  });
}

// All runtimes run concurrently (each run takes well under a second after start-up).
const runs = new Map<string, Promise<Run> | string>();
for (const r of RUNTIMES) {
  const reason = r.name === 'node' ? undefined : unavailable(r.name, r.command);
  if (reason) {
    console.log(`skipping ${r.name}: ${reason}`);
    runs.set(r.name, reason);
  } else {
    runs.set(r.name, runCheck(r.command, r.args));
  }
}

/** Why a runtime binary cannot run (missing, or the npm package's placeholder when its postinstall did not run). */
function unavailable(name: string, command: string): string | undefined {
  if (!existsSync(command)) return `${name} binary not found at ${command} (install the npm package "${name}")`;
  try {
    execFileSync(command, ['--version'], { stdio: 'pipe', timeout: 30_000 });
    return undefined;
  } catch (error) {
    return `${command} --version failed (${(error as Error).message.split('\n')[0]}); ` +
      `the npm package "${name}" installs its binary in a postinstall script: reinstall without --ignore-scripts`;
  }
}

const completed: CheckResult[] = [];

for (const r of RUNTIMES) {
  const pending = runs.get(r.name)!;
  test(`${r.name}: ${SCRIPT} passes (greedy reference ids, seeded sampling, one ReMax step)`, { skip: typeof pending === 'string' ? pending : false }, async () => {
    const run = await (pending as Promise<Run>);
    const output = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
    assert.equal(run.code, 0, `${r.name} exited with ${run.code}\n${output}`);
    assert.ok(run.result, `${r.name} printed no RESULT line\n${output}`);
    const res = run.result;
    assert.equal(res.runtime, r.name);
    assert.equal(res.build, COMPARED_BUILD);
    assert.equal(res.failures, 0);
    if (res.greedyOk === null) console.log(`${r.name}: greedy reference check skipped (../shared absent)`);
    else assert.equal(res.greedyOk, true, `${r.name}: greedy ids differ from the reference\n${output}`);
    assert.match(res.sampledIdsHash, /^[0-9a-f]{8}$/);
    assert.match(res.weightsHash, /^[0-9a-f]{8}$/);
    assert.ok(Number.isFinite(res.loss));
    console.log(`${r.name} ${res.version}: ${COMPARED_BUILD} sampled ids ${res.sampledIdsHash}, weights after one ReMax step ${res.weightsHash}` +
      (res.relaxed ? `; relaxed-simd sampled ${res.relaxed.sampledIdsHash}, weights ${res.relaxed.weightsHash}` : '; relaxed-simd not accepted'));
    completed.push(res);
  });
}

test(`same seed, same result: the ${COMPARED_BUILD} build gives identical sampled ids and post-step weights in every runtime`, async () => {
  // Wait for every run (the per-runtime tests above report their failures).
  await Promise.all([...runs.values()].filter((p): p is Promise<Run> => typeof p !== 'string'));
  assert.ok(completed.length >= 1, 'no runtime completed its check');
  const names = completed.map((r) => r.runtime).join(', ');
  if (completed.length < RUNTIMES.length) console.log(`comparing ${COMPARED_BUILD} results across ${names} only`);
  const [first] = completed;
  for (const r of completed) {
    assert.equal(r.sampledModel, first!.sampledModel);
    assert.equal(r.sampledIdsHash, first!.sampledIdsHash,
      `${COMPARED_BUILD} build: sampled ids hash ${r.sampledIdsHash} on ${r.runtime} vs ${first!.sampledIdsHash} on ${first!.runtime}`);
    assert.equal(r.weightsHash, first!.weightsHash,
      `${COMPARED_BUILD} build: weights hash ${r.weightsHash} on ${r.runtime} vs ${first!.weightsHash} on ${first!.runtime}`);
  }
  console.log(`${COMPARED_BUILD} build identical on ${names}: sampled ids ${first!.sampledIdsHash} (${first!.sampledModel}), weights ${first!.weightsHash}`);
  const relaxed = completed.filter((r) => r.relaxed).map((r) => `${r.runtime} ${r.relaxed!.weightsHash}`);
  if (relaxed.length) console.log(`relaxed-simd weights (may differ between engines, not compared): ${relaxed.join(', ')}`);
});
