import { test } from 'node:test';
import assert from 'node:assert/strict';
import { learningRate, minLearningRate, portableCos, validateSchedule, type ScheduleConfig } from '../../src/core/schedule';
import { RemaxInputError } from '../../src/core/errors';

const close = (actual: number, expected: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)), `${what}: ${actual} ≠ ${expected}`);

test('warm-up rises linearly from lr/warmupSteps at step 0 to lr at step warmupSteps−1', () => {
  for (const kind of ['constant', 'linear', 'cosine'] as const) {
    const s: ScheduleConfig = { kind, lr: 1e-3, warmupSteps: 4, totalSteps: 20 };
    assert.deepEqual([0, 1, 2, 3].map((step) => learningRate(step, s)), [0.25e-3, 0.5e-3, 0.75e-3, 1e-3], kind);
    assert.equal(learningRate(4, s), 1e-3, `${kind}: the first step after the warm-up is at the peak`);
  }
});

test('constant stays at lr, also past totalSteps', () => {
  const s: ScheduleConfig = { kind: 'constant', lr: 0.01, warmupSteps: 0, totalSteps: 10, minLr: 0 };
  for (const step of [0, 1, 5, 9, 10, 1000]) assert.equal(learningRate(step, s), 0.01, `step ${step}`);
});

test('linear decays from lr at warmupSteps to minLr at totalSteps, then stays at minLr', () => {
  const s: ScheduleConfig = { kind: 'linear', lr: 1, warmupSteps: 2, totalSteps: 12, minLr: 0.1 };
  close(learningRate(2, s), 1, 'start of decay');
  close(learningRate(7, s), 0.55, 'half way'); // 0.1 + 0.5·0.9
  close(learningRate(11, s), 0.1 + 0.1 * 0.9, 'last step of the run');
  assert.equal(learningRate(12, s), 0.1);
  assert.equal(learningRate(500, s), 0.1);
  for (let step = 3; step < 12; step++) assert.ok(learningRate(step, s) < learningRate(step - 1, s), `decreasing at ${step}`);
});

test('cosine matches llama2.c get_lr after the warm-up (half way = mean of lr and minLr)', () => {
  const s: ScheduleConfig = { kind: 'cosine', lr: 5e-4, warmupSteps: 10, totalSteps: 110, minLr: 5e-5 };
  for (let step = 10; step <= 120; step++) {
    // llama2.c train.py: decay_ratio = (it - warmup) / (decay_iters - warmup); coeff = 0.5 (1 + cos(pi decay_ratio))
    const ratio = Math.min(1, (step - 10) / 100);
    const expected = 5e-5 + 0.5 * (1 + Math.cos(Math.PI * ratio)) * (5e-4 - 5e-5);
    close(learningRate(step, s), expected, `step ${step}`);
  }
  close(learningRate(60, s), (5e-4 + 5e-5) / 2, 'half way');
});

test('minLr defaults to lr/10 for the decays and is ignored by constant', () => {
  assert.equal(minLearningRate({ kind: 'cosine', lr: 3e-4, warmupSteps: 0, totalSteps: 5 }), 3e-4 / 10);
  assert.equal(minLearningRate({ kind: 'linear', lr: 3e-4, warmupSteps: 0, totalSteps: 5 }), 3e-4 / 10);
  assert.equal(minLearningRate({ kind: 'constant', lr: 3e-4, warmupSteps: 0, totalSteps: 5, minLr: 0 }), 3e-4);
  assert.equal(learningRate(5, { kind: 'cosine', lr: 3e-4, warmupSteps: 0, totalSteps: 5 }), 3e-4 / 10);
  assert.equal(learningRate(0, { kind: 'cosine', lr: 3e-4, warmupSteps: 0, totalSteps: 5 }), 3e-4, 'no warm-up: step 0 at the peak');
});

test('portableCos agrees with Math.cos to about an ulp on [0, π]', () => {
  for (let i = 0; i <= 1000; i++) {
    const x = (Math.PI * i) / 1000;
    assert.ok(Math.abs(portableCos(x) - Math.cos(x)) <= 4e-16, `x = ${x}: ${portableCos(x)} vs ${Math.cos(x)}`);
  }
  assert.equal(portableCos(0), 1);
});

test('validateSchedule names the flag and the bad value', () => {
  const good: ScheduleConfig = { kind: 'cosine', lr: 3e-4, warmupSteps: 10, totalSteps: 100 };
  validateSchedule(good);
  validateSchedule({ ...good, warmupSteps: 100 });
  const cases: [Partial<ScheduleConfig>, RegExp][] = [
    [{ lr: 0 }, /^--lr must be a positive number, got 0/],
    [{ lr: -1 }, /--lr must be a positive number, got -1/],
    [{ lr: NaN }, /--lr must be a positive number, got NaN/],
    [{ lr: Infinity }, /--lr must be a positive number, got Infinity/],
    [{ warmupSteps: -1 }, /--warmup-steps must be a non-negative integer, got -1/],
    [{ warmupSteps: 2.5 }, /--warmup-steps must be a non-negative integer, got 2.5/],
    [{ warmupSteps: 101 }, /--warmup-steps 101 is more than --steps 100/],
    [{ totalSteps: 0 }, /--steps must be a positive integer, got 0/],
    [{ minLr: 1e-3 }, /--min-lr must be a number from 0 to --lr \(0.0003\), got 0.001/],
    [{ minLr: -1e-5 }, /--min-lr must be a number from 0 to --lr/],
    [{ kind: 'step' as never }, /--lr-schedule must be one of constant, linear, cosine, got "step"/],
  ];
  for (const [change, message] of cases) {
    assert.throws(() => validateSchedule({ ...good, ...change }), (e: unknown) => e instanceof RemaxInputError && message.test(e.message),
      JSON.stringify(change));
  }
});

test('learningRate rejects a step that is not a non-negative integer (a caller bug)', () => {
  const s: ScheduleConfig = { kind: 'constant', lr: 1, warmupSteps: 0, totalSteps: 1 };
  assert.throws(() => learningRate(-1, s), RangeError);
  assert.throws(() => learningRate(0.5, s), RangeError);
});
