// The engine in each JavaScript runtime, for real: the checks of tests/runtimes/checks.mjs (greedy reference ids,
// a seeded sampled generation, one seeded ReMax step) run in Node, Deno (npm `deno`), Bun (npm `bun`), Cloudflare
// workerd (npm `workerd`, over HTTP) and headless Chromium (Debian `chromium` via playwright-core), in a page and in a
// Web Worker. Same seed, same result: with the portable `simd` build the hashes must be identical in every runtime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runWorkerdCheck, WORKERD_BIN } from './runtime-workerd';
import { binaryUnavailable, runCheckScript, scriptRuntimeUnavailable, SCRIPT_RUNTIMES } from './runtime-scripts';
import { runChromiumCheck } from './runtime-chromium';
import { chromiumUnavailable } from './chromium';

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
  /** The weights after the same step on two threads (Node, Deno and Bun: helper engines on worker threads), else null. */
  threadsWeightsHash: string | null;
  loss: number;
  relaxed: { sampledIdsHash: string; weightsHash: string } | null;
  failures: number;
  failureMessages?: string[];
}

/** What one runtime's run gave: its RESULT objects (Chromium gives two: page and worker), or why it failed. */
interface Run {
  results: CheckResult[];
  problem?: string;
  output: string;
}

interface Runtime {
  name: string;
  /** The runtimes (result.runtime) this run reports. */
  reports: string[];
  unavailable(): string | undefined;
  run(): Promise<Run>;
}

const RUNTIMES: Runtime[] = [
  ...SCRIPT_RUNTIMES.map((r) => ({
    name: r.name, reports: [r.name], unavailable: () => scriptRuntimeUnavailable(r),
    run: async (): Promise<Run> => {
      const { value, problem, output } = await runCheckScript(r, 'RESULT ');
      return { results: value ? [value as CheckResult] : [], problem, output };
    },
  })),
  {
    name: 'workerd', reports: ['workerd'], unavailable: () => binaryUnavailable('workerd', WORKERD_BIN),
    run: async () => {
      const r = await runWorkerdCheck();
      const output = `workerd stdout:\n${r.stdout}\nstderr:\n${r.stderr}\nresponse:\n${r.body ?? '(none)'}`;
      let result: CheckResult | undefined;
      try {
        result = r.body ? (JSON.parse(r.body) as CheckResult) : undefined;
      } catch {
        // not JSON: reported below
      }
      return { results: result ? [result] : [], problem: r.code === 0 && result ? undefined : `answered ${r.code} without a RESULT`, output };
    },
  },
  {
    name: 'chromium', reports: ['chromium-page', 'chromium-worker'], unavailable: chromiumUnavailable,
    run: async () => {
      const r = await runChromiumCheck();
      return { results: r.results ?? [], problem: r.error, output: `browser console:\n${r.console.join('\n')}` };
    },
  },
];

// All runtimes run concurrently (each run takes a second or a few after start-up).
const runs = new Map<string, Promise<Run> | string>();
for (const r of RUNTIMES) {
  const reason = r.unavailable();
  if (reason) console.log(`skipping ${r.name}: ${reason}`);
  runs.set(r.name, reason ?? r.run());
}

const completed: CheckResult[] = [];

for (const r of RUNTIMES) {
  const pending = runs.get(r.name)!;
  test(`${r.name}: the runtime checks pass (greedy reference ids, seeded sampling, one ReMax step)`, { skip: typeof pending === 'string' ? pending : false }, async () => {
    const run = await (pending as Promise<Run>);
    assert.equal(run.problem, undefined, `${r.name} ${run.problem}\n${run.output}`);
    assert.deepEqual(run.results.map((res) => res.runtime), r.reports);
    for (const res of run.results) {
      const where = `${res.runtime}: ${(res.failureMessages ?? []).join('; ')}\n${run.output}`;
      assert.equal(res.build, COMPARED_BUILD);
      assert.equal(res.failures, 0, where);
      if (res.greedyOk === null) console.log(`${res.runtime}: greedy reference check skipped (../shared absent)`);
      else assert.equal(res.greedyOk, true, `${res.runtime}: greedy ids differ from the reference\n${where}`);
      assert.match(res.sampledIdsHash, /^[0-9a-f]{8}$/);
      assert.match(res.weightsHash, /^[0-9a-f]{8}$/);
      assert.ok(Number.isFinite(res.loss));
      const threaded = SCRIPT_RUNTIMES.some((script) => script.name === res.runtime);
      if (threaded) assert.match(res.threadsWeightsHash ?? '', /^[0-9a-f]{8}$/, `${res.runtime}: no two-thread step`);
      console.log(`${res.runtime} ${res.version}: ${COMPARED_BUILD} sampled ids ${res.sampledIdsHash}, weights after one ReMax step ${res.weightsHash}` +
        (threaded ? ` (on two threads ${res.threadsWeightsHash})` : '') +
        (res.relaxed ? `; relaxed-simd sampled ${res.relaxed.sampledIdsHash}, weights ${res.relaxed.weightsHash}` : '; relaxed-simd not accepted'));
      completed.push(res);
    }
  });
}

test(`same seed, same result: the ${COMPARED_BUILD} build gives identical sampled ids and post-step weights in every runtime (and on two threads in every runtime that has them)`, async () => {
  // Wait for every run (the per-runtime tests above report their failures).
  await Promise.all([...runs.values()].filter((p): p is Promise<Run> => typeof p !== 'string'));
  assert.ok(completed.length >= 1, 'no runtime completed its check');
  const names = completed.map((r) => r.runtime).join(', ');
  const expected = RUNTIMES.flatMap((r) => r.reports).length;
  if (completed.length < expected) console.log(`comparing ${COMPARED_BUILD} results across ${names} only`);
  const [first] = completed;
  for (const r of completed) {
    assert.equal(r.sampledModel, first!.sampledModel);
    assert.equal(r.sampledIdsHash, first!.sampledIdsHash,
      `${COMPARED_BUILD} build: sampled ids hash ${r.sampledIdsHash} on ${r.runtime} vs ${first!.sampledIdsHash} on ${first!.runtime}`);
    assert.equal(r.weightsHash, first!.weightsHash,
      `${COMPARED_BUILD} build: weights hash ${r.weightsHash} on ${r.runtime} vs ${first!.weightsHash} on ${first!.runtime}`);
  }
  // Two threads sum the gradient in two parts: the same result wherever the step runs on two threads.
  const threaded = completed.filter((r) => r.threadsWeightsHash);
  for (const r of threaded) {
    assert.equal(r.threadsWeightsHash, threaded[0]!.threadsWeightsHash,
      `${COMPARED_BUILD} build, two threads: weights hash ${r.threadsWeightsHash} on ${r.runtime} vs ${threaded[0]!.threadsWeightsHash} on ${threaded[0]!.runtime}`);
  }
  console.log(`${COMPARED_BUILD} build identical on ${names}: sampled ids ${first!.sampledIdsHash} (${first!.sampledModel}), weights ${first!.weightsHash}`);
  const relaxed = completed.filter((r) => r.relaxed).map((r) => `${r.runtime} ${r.relaxed!.weightsHash}`);
  if (relaxed.length) console.log(`relaxed-simd weights (may differ between engines, not compared): ${relaxed.join(', ')}`);
});
