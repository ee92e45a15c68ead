import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RewardCallError, RewardError, scoreSamples, type RewardCall, type RewardFunction, type RewardSample, type ScoreOptions } from '../../src/core/rewards';
import { RemaxInputError } from '../../src/core/errors';
import { RemaxEngine } from '../../src/core/engine';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { ReMaxTrainer, DEFAULT_REMAX_OPTIONS } from '../../src/core/rl/trainer';
import type { PromptRecord } from '../../src/core/rl/prompts';
import type { ModelConfig } from '../../src/core/config';

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

// A reward that changes its samples in place: every array and object it is given, and the chat messages.
const vandal: RewardFunction = (samples) => {
  const rewards = samples.map((s) => s.completionIds.length % 3 + s.promptIds.length / 10);
  for (const s of samples) {
    s.promptIds.fill(0);
    s.promptIds.push(99);
    s.completionIds.reverse();
    s.completionIds.length = 0;
    (s.meta.answer as number[]).push(-1);
    s.meta.extra = 'added';
    if (s.messages) s.messages[0]!.content = 'rewritten';
    s.prompt = 'changed';
  }
  return rewards;
};

test('a reward that changes its samples in place changes none of the caller\'s data, nor what the next call sees', async () => {
  const promptIds = [1, 5, 9];
  const meta = { answer: [4, 2] };
  const messages = [{ role: 'user', content: 'hi' }];
  // Two samples of one prompt share its arrays, as the trainer's do.
  const original = (): RewardSample[] => [0, 1].map((i) => ({ prompt: 'p', completion: `c${i}`, promptIds, completionIds: [7, 8, i], meta, messages }));
  const groups = [original(), original()];
  const seen: string[] = [];
  const recording: RewardFunction = (samples, call) => {
    seen.push(JSON.stringify(samples.map((s) => [s.promptIds, s.completionIds, s.meta, s.messages])));
    return vandal(samples, call);
  };
  const r = await scoreSamples(recording, groups, options({ concurrency: 1 }));
  assert.deepEqual(r.groupRewards, [[0.3, 0.3], [0.3, 0.3]]);
  assert.deepEqual(promptIds, [1, 5, 9]);
  assert.deepEqual(meta, { answer: [4, 2] });
  assert.deepEqual(messages, [{ role: 'user', content: 'hi' }]);
  assert.deepEqual(groups, [original(), original()], 'prompt, completion and ids as they were');
  assert.equal(seen[1], seen[0], 'the second call saw the data unchanged by the first');
  assert.equal(seen[0], JSON.stringify([0, 1].map((i) => [[1, 5, 9], [7, 8, i], { answer: [4, 2] }, [{ role: 'user', content: 'hi' }]])));
});

const TINY: ModelConfig = {
  dim: 32, hiddenDim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 64, seqLen: 48,
  sharedClassifier: true, normEps: 1e-5, ropeTheta: 10000,
};

/** Two ReMax steps of a tiny model (with the KL term) scored by `fn`: the metrics, the weights and the prompt records after. */
async function trainWith(fn: RewardFunction) {
  const policy = await RemaxEngine.create({ model: { config: TINY, weights: randomInitWeights(TINY, 3), format: 'llama2c-v0' }, build: 'simd' });
  const reference = await RemaxEngine.create({ model: { config: TINY, weights: randomInitWeights(TINY, 3), format: 'llama2c-v0' }, build: 'simd' });
  const prompts: PromptRecord[] = [[1, 7], [1, 12, 30], [1, 3], [1, 50, 2, 9]].map((promptIds, i) => ({ prompt: `p${i}`, promptIds, meta: { answer: [i] } }));
  const scorer = (groups: RewardSample[][]) => scoreSamples(fn, groups, options());
  const trainer = new ReMaxTrainer(policy, reference, prompts, scorer, {
    ...DEFAULT_REMAX_OPTIONS, klCoef: 0.05, batchSize: 4, seed: 5, steps: 2, maxNewTokens: 8, eosId: null, samplesPerPrompt: 2,
    schedule: { kind: 'constant', lr: 1e-2, warmupSteps: 0, totalSteps: 2 },
  });
  try {
    const metrics = [await trainer.runStep(), await trainer.runStep()]
      .map((m) => Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith('time') && k !== 'tokens_per_second')));
    return { metrics, weights: policy.readWeights(), prompts };
  } finally {
    trainer.close();
  }
}

test('the trainer with a reward that changes its samples in place trains exactly as with one that does not', async () => {
  const clean: RewardFunction = (samples) => samples.map((s) => s.completionIds.length % 3 + s.promptIds.length / 10);
  const [vandalised, straight] = [await trainWith(vandal), await trainWith(clean)];
  assert.deepEqual(vandalised.prompts.map((p) => p.promptIds), [[1, 7], [1, 12, 30], [1, 3], [1, 50, 2, 9]], "the trainer's prompt records are intact");
  assert.deepEqual(vandalised.prompts.map((p) => p.meta), [0, 1, 2, 3].map((i) => ({ answer: [i] })));
  assert.deepEqual(vandalised.metrics, straight.metrics);
  assert.deepEqual(vandalised.weights, straight.weights, 'the same weights, bit for bit');
});

test("each call's signal is aborted at its timeout; a function that stops says how in the error line", async () => {
  let signal: AbortSignal | undefined;
  const stoppable: RewardFunction = (_samples, call?: RewardCall) => new Promise<number[]>((_, reject) => {
    signal = call!.signal;
    call!.signal.addEventListener('abort', () => {
      call!.stopped = 'its worker was stopped';
      reject(new Error('never reported: the timeout is'));
    });
  });
  const r = await scoreSamples(stoppable, [group('slow', 1)], options({ timeoutMs: 50, onError: 'skip' }));
  assert.deepEqual(r.errors, ['reward for prompt "slow": timed out after 50 ms; its worker was stopped']);
  assert.equal(signal?.aborted, true);
  // A call that finishes in time keeps its signal unaborted.
  let inTime: AbortSignal | undefined;
  await scoreSamples((samples, call) => { inTime = call!.signal; return byLength(samples); }, [group('a', 1)], options());
  assert.equal(inTime?.aborted, false);
});

test('under abort the calls still in flight when a group fails are stopped (their signals aborted)', async () => {
  const signals: AbortSignal[] = [];
  const fn: RewardFunction = (samples, call) => {
    signals.push(call!.signal);
    if (samples[0]!.prompt === 'bad') return Promise.reject(new Error('bad group'));
    return new Promise<number[]>(() => {}); // never answers
  };
  await rejectsWith(scoreSamples(fn, [group('slow', 1), group('bad', 1), group('slow', 1)], options({ concurrency: 3 })), /"bad": reward function threw: bad group/);
  assert.equal(signals.length, 3);
  assert.deepEqual(signals.map((s) => s.aborted), [true, false, true], 'the failed call itself had nothing left to stop');
});

test('a RewardCallError is the problem as it stands, not "reward function threw"', async () => {
  const r = await scoreSamples(() => Promise.reject(new RewardCallError('the reward module called process.exit(0)')), [group('a', 1)], options({ onError: 'zero' }));
  assert.deepEqual(r.errors, ['reward for prompt "a": the reward module called process.exit(0)']);
});
