import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeAdvantages, tokenReturns } from '../../src/core/rl/advantages';

const close = (a: number | null, b: number) => assert.ok(a !== null && Math.abs(a - b) < 1e-12, `${a} vs ${b}`);

test('remax: the greedy reward is the baseline; clipping; a skipped greedy drops the group', () => {
  const { advantages } = computeAdvantages('remax', [
    { samples: [1, 0], greedy: 0.25 }, { samples: [9], greedy: -1 }, { samples: [1], greedy: null }, { samples: [null, 2], greedy: 0 },
  ], 5, undefined, 0.9);
  close(advantages[0]![0]!, 0.75); close(advantages[0]![1]!, -0.25);
  close(advantages[1]![0]!, 5);
  assert.deepEqual(advantages[2], [null]);
  assert.equal(advantages[3]![0], null); close(advantages[3]![1]!, 2);
});

test('reinforce, rloo and grpo', () => {
  close(computeAdvantages('reinforce', [{ samples: [0.3] }], 5, undefined, 0.9).advantages[0]![0]!, 0.3);
  const rloo = computeAdvantages('rloo', [{ samples: [1, 2, 6] }, { samples: [1, null] }], 5, undefined, 0.9).advantages;
  close(rloo[0]![0]!, 1 - 4); close(rloo[0]![1]!, 2 - 3.5); close(rloo[0]![2]!, 6 - 1.5);
  assert.deepEqual(rloo[1], [null, null], 'one valid sample: nothing to leave out against');
  const grpo = computeAdvantages('grpo', [{ samples: [1, 3] }, { samples: [2, 2] }], 5, undefined, 0.9).advantages;
  close(grpo[0]![0]!, -1 / (1 + 1e-4)); close(grpo[0]![1]!, 1 / (1 + 1e-4));
  close(grpo[1]![0]!, 0);
});

test('reinforce-ema: starts at the first batch mean, then a moving average', () => {
  const first = computeAdvantages('reinforce-ema', [{ samples: [1, 3] }], 5, undefined, 0.9);
  close(first.advantages[0]![0]!, -1);
  assert.equal(first.emaBaseline, 2);
  const second = computeAdvantages('reinforce-ema', [{ samples: [4, 4] }], 5, first.emaBaseline, 0.9);
  close(second.advantages[0]![0]!, 2);
  close(second.emaBaseline!, 0.9 * 2 + 0.1 * 4);
});

test('token returns: the advantage on the last token, −β·k1 on every token, discounted', () => {
  assert.deepEqual(tokenReturns(2, undefined, 0, 1, 3), [2, 2, 2]);
  const r = tokenReturns(1, [0.5, -0.5, 1], 0.1, 0.5, 3);
  // r_t = −0.1·k1_t (+1 on the last): [−0.05, 0.05, 0.9]; returns: 0.9, 0.05 + 0.45, −0.05 + 0.25
  close(r[2]!, 0.9); close(r[1]!, 0.5); close(r[0]!, 0.2);
});
