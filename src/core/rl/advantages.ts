// The estimators the trainer compares. They differ only in the advantage each sampled response gets from the
// rewards of its prompt's group (k sampled responses, and for ReMax the greedy response):
//   remax          A_j = r_j − r(greedy)                      (Li et al. 2023: the greedy reward is the baseline)
//   reinforce      A_j = r_j                                  (no baseline)
//   reinforce-ema  A_j = r_j − b, b a moving average of the batch mean reward over steps
//   rloo           A_j = r_j − mean_{i≠j} r_i                 (leave-one-out, k ≥ 2)
//   grpo           A_j = (r_j − mean_i r_i) / (std_i r_i + ε) (group-normalised)
//   ppo            a learned critic's GAE advantages per token (ppo-update.ts); here A_j = r_j unclipped, the
//                  sequence reward its per-token rewards end with
// then clipped to [−clip, clip]. A skipped reward (null) drops the sample; a skipped greedy reward drops the group
// under remax.

export const ESTIMATORS = ['remax', 'reinforce', 'reinforce-ema', 'rloo', 'grpo', 'ppo'] as const;
export type Estimator = (typeof ESTIMATORS)[number];

/** Does this estimator decode a greedy response per prompt? */
export const usesGreedy = (e: Estimator): boolean => e === 'remax';

/** The smallest number of samples per prompt the estimator works with. */
export const minSamplesPerPrompt = (e: Estimator): number => (e === 'rloo' || e === 'grpo' ? 2 : 1);

export interface GroupRewards {
  samples: (number | null)[];
  /** The greedy response's reward (remax only). */
  greedy?: number | null;
}

const GRPO_EPS = 1e-4;

/**
 * Advantages for every sample of every group (null = dropped), and the EMA baseline after this batch
 * (reinforce-ema; pass the previous one in, undefined before the first step).
 */
export function computeAdvantages(
  estimator: Estimator, groups: GroupRewards[], clip: number, emaBaseline: number | undefined, emaDecay: number,
): { advantages: (number | null)[][]; emaBaseline: number | undefined } {
  const clamp = (a: number) => Math.max(-clip, Math.min(clip, a));
  const valid = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);
  let ema = emaBaseline;
  if (estimator === 'reinforce-ema') {
    const all = groups.flatMap((g) => valid(g.samples));
    const batchMean = all.length ? all.reduce((a, b) => a + b, 0) / all.length : undefined;
    const baseline = ema ?? batchMean ?? 0;
    const advantages = groups.map((g) => g.samples.map((r) => (r === null ? null : clamp(r - baseline))));
    if (batchMean !== undefined) ema = ema === undefined ? batchMean : emaDecay * ema + (1 - emaDecay) * batchMean;
    return { advantages, emaBaseline: ema };
  }
  const advantages = groups.map((g) => {
    const rewards = valid(g.samples);
    switch (estimator) {
      case 'remax': {
        const greedy = g.greedy;
        return g.samples.map((r) => (r === null || greedy === null || greedy === undefined ? null : clamp(r - greedy)));
      }
      case 'reinforce':
        return g.samples.map((r) => (r === null ? null : clamp(r)));
      case 'ppo':
        return g.samples;
      case 'rloo': {
        const sum = rewards.reduce((a, b) => a + b, 0);
        // With one valid sample left there is nothing to leave out against.
        return g.samples.map((r) => (r === null || rewards.length < 2 ? null : clamp(r - (sum - r) / (rewards.length - 1))));
      }
      case 'grpo': {
        const mean = rewards.reduce((a, b) => a + b, 0) / Math.max(1, rewards.length);
        const std = Math.sqrt(rewards.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, rewards.length));
        return g.samples.map((r) => (r === null || rewards.length < 2 ? null : clamp((r - mean) / (std + GRPO_EPS))));
      }
      default:
        throw new Error(`unknown estimator ${estimator}`);
    }
  });
  return { advantages, emaBaseline: ema };
}

/**
 * Per-token returns of one response: token t earns −β·k1_t (k1_t = log π(y_t) − log π_ref(y_t)), the last token
 * also earns the advantage, and return_t = Σ_{t' ≥ t} γ^{t'−t}·r_{t'} (as the ReMax paper's code computes them).
 */
export function tokenReturns(advantage: number, klPerToken: number[] | undefined, klCoef: number, gamma: number, length: number): number[] {
  const returns = new Array<number>(length);
  let running = 0;
  for (let t = length - 1; t >= 0; t--) {
    const reward = (t === length - 1 ? advantage : 0) - (klPerToken ? klCoef * klPerToken[t]! : 0);
    running = reward + gamma * running;
    returns[t] = running;
  }
  return returns;
}
