// The critic's side of a PPO minibatch: the gradient of the clipped value loss (ppo.ts clippedValueLoss) over some
// responses, accumulated in a scalar-head engine. The main engine runs it on its share of the responses and each
// helper thread on its own (parallel/helper-server.ts), so the arithmetic is one function.
import type { RemaxEngine } from '../engine';
import type { ValueTarget } from '../parallel/protocol';
import { clippedValueLoss } from './ppo';

export interface ValueLossSettings {
  valueClip: number;
  /** Scales the gradient (--vf-coef). */
  vfCoef: number;
  /** The minibatch's loss denominator (its tokens, or its responses), the same on every thread. */
  denominator: number;
}

/**
 * Sets the critic's gradients to the value loss's over `targets` (from zero) and returns their share of the loss.
 * The value of response token t is the head's output at the row before it (ppo-update.ts's alignment).
 */
export function valueGradients(critic: RemaxEngine, targets: readonly ValueTarget[], s: ValueLossSettings): { valueLoss: number } {
  critic.zeroGradients();
  if (targets.length === 0) return { valueLoss: 0 };
  let valueLoss = 0;
  // The engine calls back once per training micro-batch (at most 16 sequences, or its token budget), in order, with
  // that micro-batch's scores: `seen` is where it starts in `targets`.
  let seen = 0;
  critic.accumulateScoreGradients(targets.map((t) => [t.ids]), (scores) => {
    const micro = scores.map(([row], j) => {
      const t = targets[seen + j]!, p = t.promptLength;
      const terms = clippedValueLoss(row!.slice(p - 1, t.ids.length - 1), t.oldValues, t.returns, s.valueClip);
      valueLoss += terms.loss.reduce((a, b) => a + b, 0) / s.denominator;
      const d = new Array<number>(t.ids.length).fill(0);
      terms.gradient.forEach((g, i) => (d[p - 1 + i] = (s.vfCoef * g) / s.denominator));
      return [d];
    });
    seen += scores.length;
    return micro;
  });
  return { valueLoss };
}
