/**
 * What a reward server (remax serve-reward) asks of whatever computes its rewards: score one request's samples, one
 * finite number each, or throw. This is the seam where other kinds of scorer (a reward model run by the engine) can
 * stand beside a reward function: the server knows only this type. (The trainer's RewardScorer is another thing: it
 * scores a step's groups under an error policy.)
 */
import { callReward, type RewardFunction, type RewardSample } from './rewards';

/** `signal` is aborted when nobody waits for the answer any more (the client hung up, the server stops). */
export type RequestScorer = (samples: RewardSample[], signal: AbortSignal) => Promise<number[]>;

/** The scorer's reward failed (threw, timed out, returned other than one finite number per sample): the message says how. */
export class ScoringError extends Error {}

/** A reward function as a scorer: each request is one call, with the timeout (a reward module's thread is stopped at it). */
export function rewardFunctionScorer(fn: RewardFunction, timeoutMs: number): RequestScorer {
  return async (samples, signal) => {
    const controller = new AbortController();
    const stop = () => controller.abort(new Error('the request was cancelled'));
    signal.addEventListener('abort', stop);
    if (signal.aborted) stop();
    try {
      const outcome = await callReward(fn, samples, timeoutMs, controller);
      if (typeof outcome === 'string') throw new ScoringError(outcome);
      return outcome;
    } finally {
      signal.removeEventListener('abort', stop);
    }
  };
}
