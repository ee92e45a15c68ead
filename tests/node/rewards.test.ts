import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RewardError, scoreSamples, type RewardFunction, type RewardSample, type ScoreOptions } from '../../src/core/rewards';
import { RemaxInputError } from '../../src/core/errors';

const sample = (prompt: string, completion: string): RewardSample =>
  ({ prompt, completion, promptIds: [1], completionIds: [5], meta: {} });
/** A group of `n` completions "c0", "c1", … of `prompt`. */
const group = (prompt: string, n: number): RewardSample[] => Array.from({ length: n }, (_, i) => sample(prompt, `c${i}`));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const options = (o: Partial<ScoreOptions> = {}): ScoreOptions => ({ timeoutMs: 1000, onError: 'abort', concurrency: 4, ...o });
/** Reward = length of the completion text. */
const byLength: RewardFunction = (samples) => samples.map((s) => s.completion.length);

async function rejectsWith(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof RewardError, `expected a RewardError, got ${String(e)}`);
    assert.ok(e instanceof RemaxInputError, 'a RewardError is an input error (one line, exit code 2)');
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('one call per group with all its samples; rewards come back grouped and flat, in order', async () => {
  const calls: string[][] = [];
  const fn: RewardFunction = async (samples) => {
    calls.push(samples.map((s) => `${s.prompt}/${s.completion}`));
    return samples.map((_, i) => i + (samples[0]!.prompt === 'a' ? 0 : 10));
  };
  const r = await scoreSamples(fn, [group('a', 3), group('b', 2)], options());
  assert.deepEqual(r.groupRewards, [[0, 1, 2], [10, 11]]);
  assert.deepEqual(r.rewards, [0, 1, 2, 10, 11]);
  assert.equal(r.skipped, 0);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(calls.sort(), [['a/c0', 'a/c1', 'a/c2'], ['b/c0', 'b/c1']]);
});

test('a synchronous reward function works; an empty group is not sent', async () => {
  let calls = 0;
  const r = await scoreSamples((s) => { calls++; return byLength(s); }, [[], group('a', 2)], options());
  assert.deepEqual(r.groupRewards, [[], [2, 2]]);
  assert.equal(calls, 1);
  assert.deepEqual(await scoreSamples(byLength, [], options()), { groupRewards: [], rewards: [], skipped: 0, errors: [] });
});

// Every way a group can fail, with the problem its message must name.
const longPrompt = 'Once upon a time there was a little girl named Lily who loved to play in the park with "friends"';
const failures: { what: string; fn: RewardFunction; problem: RegExp }[] = [
  { what: 'throws', fn: () => { throw new Error('grader crashed'); }, problem: /reward function threw: grader crashed/ },
  { what: 'rejects', fn: async () => { throw new Error('server said no'); }, problem: /reward function threw: server said no/ },
  { what: 'throws a non-Error', fn: () => { throw 'plain string'; }, problem: /reward function threw: plain string/ },
  { what: 'times out', fn: () => new Promise<number[]>(() => {}), problem: /timed out after 50 ms/ },
  { what: 'returns a non-array', fn: () => ({ rewards: [1] }) as unknown as number[], problem: /reward function returned an object, not an array of numbers/ },
  { what: 'returns undefined', fn: () => undefined as unknown as number[], problem: /returned undefined, not an array of numbers/ },
  { what: 'returns the wrong count', fn: () => [1, 2], problem: /reward function returned 2 rewards for 3 samples/ },
  { what: 'returns NaN', fn: () => [0, NaN, 1], problem: /reward function returned NaN for sample 1/ },
  { what: 'returns Infinity', fn: () => [0, 1, -Infinity], problem: /reward function returned -Infinity for sample 2/ },
  { what: 'returns a string', fn: () => [0, '1', 1] as unknown as number[], problem: /returned the string "1" for sample 1/ },
];
// The failing function is called on the group of `longPrompt`; the group of "ok" scores normally.
const onlyFor = (bad: RewardFunction): RewardFunction => (samples) => (samples[0]!.prompt === 'ok' ? byLength(samples) : bad(samples));
const groups = () => [group('ok', 2), group(longPrompt, 3)];
const label = JSON.stringify(longPrompt.slice(0, 60));

for (const { what, fn, problem } of failures) {
  test(`a group whose reward function ${what}: abort throws, skip nulls it, zero zeroes it`, async () => {
    const o = { timeoutMs: 50 };
    await rejectsWith(scoreSamples(onlyFor(fn), groups(), options({ ...o, onError: 'abort' })),
      problem, new RegExp(`prompt ${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}…`));

    const skip = await scoreSamples(onlyFor(fn), groups(), options({ ...o, onError: 'skip' }));
    assert.deepEqual(skip.groupRewards, [[2, 2], [null, null, null]]);
    assert.deepEqual(skip.rewards, [2, 2, null, null, null]);
    assert.equal(skip.skipped, 1);
    assert.equal(skip.errors.length, 1);
    assert.match(skip.errors[0]!, problem);
    assert.ok(skip.errors[0]!.includes(label), skip.errors[0]);

    const zero = await scoreSamples(onlyFor(fn), groups(), options({ ...o, onError: 'zero' }));
    assert.deepEqual(zero.groupRewards, [[2, 2], [0, 0, 0]]);
    assert.equal(zero.skipped, 0);
    assert.equal(zero.errors.length, 1);
    assert.match(zero.errors[0]!, problem);
  });
}

test('messages quote a short prompt whole and cut a long one at 60 characters', async () => {
  await rejectsWith(scoreSamples(() => [], [group('say "hi"\n', 1)], options()), /^reward for prompt "say \\"hi\\"\\n": reward function returned 0 rewards for 1 sample /);
  await rejectsWith(scoreSamples(() => [], [group(longPrompt, 1)], options()), new RegExp(`^reward for prompt "${longPrompt.slice(0, 60)}"…:`));
});

test('groups run concurrently: two slow groups take about one delay, not two', async () => {
  const slow: RewardFunction = async (samples) => { await sleep(300); return byLength(samples); };
  const start = performance.now();
  const r = await scoreSamples(slow, [group('a', 2), group('b', 2)], options({ concurrency: 2 }));
  const elapsed = performance.now() - start;
  assert.deepEqual(r.rewards, [2, 2, 2, 2]);
  assert.ok(elapsed >= 290 && elapsed < 500, `took ${elapsed.toFixed(0)} ms; one after the other would be 600`);
});

test('concurrency bounds the calls in flight and every group is still scored', async () => {
  for (const concurrency of [1, 3]) {
    let inFlight = 0;
    let most = 0;
    const fn: RewardFunction = async (samples) => {
      most = Math.max(most, ++inFlight);
      await sleep(10);
      inFlight--;
      return samples.map(() => Number(samples[0]!.prompt));
    };
    const groups = Array.from({ length: 10 }, (_, g) => group(String(g), 2));
    const r = await scoreSamples(fn, groups, options({ concurrency }));
    assert.equal(most, concurrency);
    assert.deepEqual(r.groupRewards, groups.map((_, g) => [g, g]));
  }
  // With concurrency 1 four 50 ms groups take four delays.
  const start = performance.now();
  await scoreSamples(async (s) => { await sleep(50); return byLength(s); }, Array.from({ length: 4 }, () => group('x', 1)), options({ concurrency: 1 }));
  assert.ok(performance.now() - start >= 190);
});

test('a timeout applies to each call, and a slow group times out while the others finish', async () => {
  const fn: RewardFunction = async (samples) => {
    await sleep(samples[0]!.prompt === 'slow' ? 500 : 20);
    return byLength(samples);
  };
  const start = performance.now();
  const r = await scoreSamples(fn, [group('fast', 1), group('slow', 1), group('fast', 1)], options({ timeoutMs: 100, onError: 'skip' }));
  assert.ok(performance.now() - start < 300, 'does not wait for the abandoned call');
  assert.deepEqual(r.groupRewards, [[2], [null], [2]]);
  assert.deepEqual(r.errors, ['reward for prompt "slow": timed out after 100 ms']);
});

test('abort stops starting new groups once one fails', async () => {
  const started: string[] = [];
  const fn: RewardFunction = async (samples) => {
    started.push(samples[0]!.prompt);
    if (samples[0]!.prompt === '1') throw new Error('bad');
    await sleep(20);
    return byLength(samples);
  };
  await rejectsWith(scoreSamples(fn, Array.from({ length: 10 }, (_, g) => group(String(g), 1)), options({ concurrency: 2 })), /"1": reward function threw: bad/);
  await sleep(50); // group 0 finishes after the failure and its worker stops
  assert.deepEqual(started, ['0', '1']);
});

test('several failures under skip: one error line each, skipped counts the groups', async () => {
  const fn: RewardFunction = (samples) => (Number(samples[0]!.prompt) % 2 ? [NaN, 0] : [1, 1]);
  const r = await scoreSamples(fn, Array.from({ length: 5 }, (_, g) => group(String(g), 2)), options({ onError: 'skip' }));
  assert.equal(r.skipped, 2);
  assert.equal(r.errors.length, 2);
  assert.deepEqual(r.groupRewards, [[1, 1], [null, null], [1, 1], [null, null], [1, 1]]);
});

test('bad options are input errors naming the value', async () => {
  const g = [group('a', 1)];
  await assert.rejects(scoreSamples(byLength, g, options({ concurrency: 0 })), /concurrency must be an integer ≥ 1, got 0/);
  await assert.rejects(scoreSamples(byLength, g, options({ timeoutMs: -1 })), /timeout must be a number of milliseconds > 0, got -1/);
  await assert.rejects(scoreSamples(byLength, g, options({ onError: 'retry' as 'skip' })), /abort, skip, zero, got "retry"/);
});
