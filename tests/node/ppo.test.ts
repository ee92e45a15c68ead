// PPO's host arithmetic (src/core/rl/ppo.ts) against direct computations: GAE against the sum it abbreviates, the
// surrogate's and the value loss's gradients against finite differences of their losses, and the limits that tie
// PPO to REINFORCE with a baseline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clippedSurrogate, clippedValueLoss, explainedVariance, gae, ppoTokenRewards, whiten } from '../../src/core/rl/ppo';
import { Prng } from '../../src/core/prng';

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
function randoms(prng: Prng, n: number, scale = 1): number[] {
  return Array.from({ length: n }, () => (prng.nextFloat64() * 2 - 1) * scale);
}

test('GAE equals the direct sum Σ_l (γλ)^l δ_{t+l}, and returns = advantages + values; λ = 1 gives discounted returns − V', () => {
  const prng = new Prng(7);
  for (const [gamma, lambda] of [[1, 0.95], [0.99, 0.9], [1, 1], [0.9, 0], [0.5, 0.7]] as const) {
    for (const n of [1, 2, 7, 30]) {
      const rewards = randoms(prng, n), values = randoms(prng, n, 2);
      const { advantages, returns } = gae(rewards, values, gamma, lambda);
      const delta = (t: number) => rewards[t]! + gamma * (t + 1 < n ? values[t + 1]! : 0) - values[t]!;
      for (let t = 0; t < n; t++) {
        let direct = 0;
        for (let l = 0; t + l < n; l++) direct += (gamma * lambda) ** l * delta(t + l);
        close(advantages[t]!, direct, 1e-12, `γ ${gamma} λ ${lambda} n ${n} t ${t}`);
        close(returns[t]!, direct + values[t]!, 1e-12, 'return');
        if (lambda === 1) {
          let discounted = 0;
          for (let l = 0; t + l < n; l++) discounted += gamma ** l * rewards[t + l]!;
          close(advantages[t]!, discounted - values[t]!, 1e-12, 'λ = 1: Monte Carlo return − V');
        }
      }
    }
  }
  assert.throws(() => gae([1, 2], [0], 1, 1), /2 rewards but 1 values/);
});

test('token rewards: −β·k1 on every token, the score on the last; whitening gives mean 0 and std 1 over the batch', () => {
  assert.deepEqual(ppoTokenRewards(2, [0.5, -1, 0.25], 0.1), [-0.05, 0.1, 2 - 0.025]);
  assert.deepEqual(ppoTokenRewards(3, [], 0.1), []);
  const white = whiten([[1, 2, 3], [4], [], [10, -2]]);
  const flat = white.flat();
  close(flat.reduce((a, b) => a + b, 0) / flat.length, 0, 1e-12, 'mean');
  close(Math.sqrt(flat.reduce((a, b) => a + b * b, 0) / flat.length), 1, 1e-6, 'std');
  assert.deepEqual(white.map((w) => w.length), [3, 1, 0, 2]);
  assert.ok(white[0]![0]! < white[0]![1]! && white[0]![1]! < white[0]![2]!, 'order kept');
});

test('clipped surrogate: the gradient is d(loss)/d(log π) by finite differences away from the kinks; clip counts and KL', () => {
  const prng = new Prng(11);
  const n = 400, eps = 0.2, h = 1e-6;
  const advantages = randoms(prng, n, 2), logpOld = randoms(prng, n, 3).map((x) => x - 3);
  const logp = logpOld.map((x) => x + (prng.nextFloat64() * 2 - 1) * 0.6); // ratios in [0.55, 1.8]: both sides of the band
  const terms = clippedSurrogate(advantages, logp, logpOld, eps);
  let checked = 0;
  for (let t = 0; t < n; t++) {
    const ratio = Math.exp(logp[t]! - logpOld[t]!);
    if (Math.abs(ratio - (1 - eps)) < 1e-4 || Math.abs(ratio - (1 + eps)) < 1e-4) continue; // the kinks
    const at = (x: number) => clippedSurrogate([advantages[t]!], [x], [logpOld[t]!], eps).loss[0]!;
    const fd = (at(logp[t]! + h) - at(logp[t]! - h)) / (2 * h);
    close(terms.gradient[t]!, fd, 1e-6, `token ${t} (ratio ${ratio.toFixed(3)}, A ${advantages[t]!.toFixed(3)})`);
    checked++;
  }
  assert.ok(checked > n * 0.95);
  // Clipped: ratio above 1 + ε with A > 0, or below 1 − ε with A < 0.
  const expectClipped = advantages.filter((a, t) => {
    const ratio = Math.exp(logp[t]! - logpOld[t]!);
    return (a > 0 && ratio > 1 + eps) || (a < 0 && ratio < 1 - eps);
  }).length;
  assert.equal(terms.clipped, expectClipped);
  assert.ok(terms.clipped > 0 && terms.clipped < n, 'the sample has both');
  assert.equal(terms.gradient.filter((g) => g === 0).length, expectClipped);
  const k3 = logp.reduce((sum, x, t) => sum + (Math.exp(x - logpOld[t]!) - 1 - (x - logpOld[t]!)), 0);
  close(terms.approxKl, k3, 1e-12, 'approximate KL');
  assert.ok(terms.approxKl > 0);
});

test('one epoch from the rollout policy (ρ = 1), or a huge ε: the surrogate\'s gradient is REINFORCE with a baseline, −A', () => {
  const prng = new Prng(3);
  const advantages = randoms(prng, 50, 3), logpOld = randoms(prng, 50).map((x) => x - 2);
  const atRollout = clippedSurrogate(advantages, logpOld, logpOld, 0.2);
  assert.deepEqual(atRollout.gradient, advantages.map((a) => -a));
  assert.deepEqual(atRollout.loss, advantages.map((a) => -a));
  assert.equal(atRollout.clipped, 0);
  assert.equal(atRollout.approxKl, 0);
  const moved = logpOld.map((x) => x + 0.5);
  const unclipped = clippedSurrogate(advantages, moved, logpOld, 1e9);
  assert.equal(unclipped.clipped, 0);
  unclipped.gradient.forEach((g, t) => close(g, -advantages[t]! * Math.exp(0.5), 1e-12, `token ${t}`));
});

test('clipped value loss: the gradient is d(loss)/dV by finite differences away from the kinks; inside the band it is V − R', () => {
  const prng = new Prng(5);
  const n = 400, c = 0.2, h = 1e-6;
  const old = randoms(prng, n, 2), returns = randoms(prng, n, 2);
  const values = old.map((v) => v + (prng.nextFloat64() * 2 - 1) * 0.6);
  const terms = clippedValueLoss(values, old, returns, c);
  let checked = 0;
  for (let t = 0; t < n; t++) {
    const v = values[t]!;
    if (Math.abs(Math.abs(v - old[t]!) - c) < 1e-4) continue;
    const at = (x: number) => clippedValueLoss([x], [old[t]!], [returns[t]!], c).loss[0]!;
    // Where both errors are equal the loss has a kink too.
    const vc = Math.min(Math.max(v, old[t]! - c), old[t]! + c);
    if (vc !== v && Math.abs((v - returns[t]!) ** 2 - (vc - returns[t]!) ** 2) < 1e-4) continue;
    const fd = (at(v + h) - at(v - h)) / (2 * h);
    close(terms.gradient[t]!, fd, 1e-6, `token ${t}`);
    checked++;
  }
  assert.ok(checked > n * 0.9);
  assert.ok(terms.clipped > 0, 'some clipped errors are larger');
  const inside = clippedValueLoss([1.1], [1], [3], 0.2);
  assert.deepEqual([inside.loss[0], inside.gradient[0], inside.clipped], [0.5 * 1.9 ** 2, 1.1 - 3, 0]);
  // Moved past the band away from the return: the clipped error is larger and constant in V.
  const outside = clippedValueLoss([0.5], [1], [3], 0.2);
  close(outside.loss[0]!, 0.5 * 2.5 ** 2, 1e-12, 'loss');
  assert.deepEqual([outside.gradient[0], outside.clipped], [-2.5, 0], 'the plain error (2.5) is larger than the clipped one (2.2)');
  const away = clippedValueLoss([1.5], [1], [-3], 0.2);
  assert.deepEqual([away.gradient[0], away.clipped], [4.5, 0]);
  const towards = clippedValueLoss([2], [1], [3], 0.2);
  assert.deepEqual([towards.loss[0], towards.gradient[0], towards.clipped], [0.5 * 1.8 ** 2, 0, 1], 'moved past the band towards R: no gradient');
});

test('explained variance: 1 for perfect values, 0 for a constant, negative for worse than a constant', () => {
  const returns = [1, 2, 3, 4];
  assert.equal(explainedVariance(returns, returns), 1);
  assert.equal(explainedVariance([2.5, 2.5, 2.5, 2.5], returns), 0);
  assert.ok(explainedVariance([4, 3, 2, 1], returns) < 0);
  assert.equal(explainedVariance([], []), 0);
});
