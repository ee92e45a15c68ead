// The bench batch of every RL iteration row (issue 4's definition): 8 prompts of 16 tokens, 112 new tokens each,
// responses always running to 112 tokens (no EOS), no KL term, a reward that depends on the sampled ids.
import { DEFAULT_REMAX_OPTIONS, type ReMaxOptions } from '../../src/core/rl/trainer';
import type { Estimator } from '../../src/core/rl/advantages';
import type { PromptRecord } from '../../src/core/rl/prompts';

export const PROMPTS = 8, PROMPT_TOKENS = 16, NEW_TOKENS = 112;

/** The batch's prompts over a vocabulary of `vocabSize` ids (BOS, then ids from 3 up). */
export function iterationPrompts(vocabSize: number): PromptRecord[] {
  return Array.from({ length: PROMPTS }, (_, p) => ({
    prompt: `p${p}`, meta: {}, promptIds: Array.from({ length: PROMPT_TOKENS }, (_, i) => (i === 0 ? 1 : 3 + ((i * 13 + p * 5) % (vocabSize - 3)))),
  }));
}

/**
 * The 16 sequences a reward model scores in the iteration rows, as an iteration's are: each prompt with two responses of
 * NEW_TOKENS ids (its sampled and greedy ones), differing from their first token.
 */
export function scoredSequences(vocabSize: number): number[][] {
  const prompts = iterationPrompts(vocabSize);
  return Array.from({ length: 2 * PROMPTS }, (_, s) => [...prompts[s >> 1]!.promptIds,
    ...Array.from({ length: NEW_TOKENS }, (_, i) => 3 + ((i * 7 + s * 11) % (vocabSize - 3)))]);
}

/** A reward scorer that costs nothing: the sum of the response's ids mod 7, scaled to [0, 1). */
export const iterationScore = async (groups: { completionIds: number[] }[][]) => ({
  groupRewards: groups.map((g) => g.map((s) => (s.completionIds.reduce((a, b) => a + b, 0) % 7) / 7)), skipped: 0, errors: [],
});

/** The trainer options of the batch for `estimator` (the run never ends: the bench steps it). */
export function iterationOptions(estimator: Estimator, extra: Partial<ReMaxOptions> = {}): ReMaxOptions {
  return {
    ...DEFAULT_REMAX_OPTIONS, estimator, batchSize: PROMPTS, steps: 1_000_000, klCoef: 0, maxNewTokens: NEW_TOKENS, eosId: null,
    schedule: { kind: 'constant', lr: 1e-5, warmupSteps: 0, totalSteps: 1_000_000 }, ...extra,
  };
}
