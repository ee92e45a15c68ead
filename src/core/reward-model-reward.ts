/**
 * A reward model as a reward function: each response is scored by the model (its own engine) at its last token.
 *
 * What it scores: the prompt's ids and the response's ids, with the tokenizer's EOS appended when the response does not
 * end with an end token (cut by --max-new-tokens): the reward model learnt its scores at the EOS (preference-data.ts).
 * A reward model with a tokenizer of its own that encodes differently from the policy's scores the text instead
 * (prompt + completion, re-encoded with its tokenizer). One without a tokenizer must share the policy's vocabulary.
 *
 * The calls of one scoring round (scoreSamples starts up to --reward-concurrency of them together) are batched into
 * one engine call; scores do not depend on the batch, and normalisation (optional running mean/std) runs call by call
 * in call order, so the rewards are the same however the calls are batched.
 */
import type { RemaxEngine } from './engine';
import { RemaxInputError } from './errors';
import type { RewardFunction, RewardSample } from './rewards';
import type { RunningMoments } from './running-moments';
import type { TextTokenizer } from './tokenizers/types';
import { EOS_ID } from './tokenizers/llama2c';

export interface RewardModelRewardOptions {
  /** What messages call the reward model (its path). */
  source: string;
  /** The policy's tokenizer (to decide whether ids can be passed as they are). */
  policyTokenizer?: TextTokenizer;
  policyVocabSize: number;
  /** Normalise the scores with these running statistics (updated by every call). */
  normalizer?: RunningMoments;
  /**
   * Score the samples' text with the reward model's own tokenizer, never their ids (a reward server's samples carry
   * text only); the reward model must have a tokenizer.
   */
  fromText?: boolean;
}

/** A probe text both tokenizers must encode alike for the policy's ids to be the reward model's. */
const PROBE = 'Hello, world! 12+7=19 The quick brown fox. \n  ÄÖü 你好';

export function rewardModelReward(engine: RemaxEngine, options: RewardModelRewardOptions): RewardFunction {
  if (!engine.hasScoreHead) {
    throw new RemaxInputError(`--reward-model ${options.source} is a causal LM, not a reward model (no scalar head): train one with remax rm, or give a …ForSequenceClassification folder`);
  }
  const own = engine.tokenizer, policy = options.policyTokenizer;
  if (options.fromText && own === undefined) {
    throw new RemaxInputError(`--reward-model ${options.source} carries no tokenizer, so it cannot score text: give it one (a Hugging Face folder with its tokenizer, or the rm run folder it was trained in)`);
  }
  const sameIds = !options.fromText && (own === undefined || policy === undefined || sameEncoding(own, policy));
  if (own === undefined && engine.config.vocabSize !== options.policyVocabSize) {
    throw new RemaxInputError(`--reward-model ${options.source} carries no tokenizer and its vocabulary (${engine.config.vocabSize} ids) is not the policy's ` +
      `(${options.policyVocabSize}): it cannot read the policy's tokens; give the reward model its tokenizer (train it with the policy's, or save it as a Hugging Face folder with one)`);
  }
  const endIds = new Set([...engine.stopIds, ...(own ?? policy)?.eosIds ?? []]);
  // llama2.c models carry no tokenizer: their EOS is 2.
  const eos = (own ?? policy)?.eosIds[0] ?? (engine.model.format.startsWith('llama2c') ? EOS_ID : undefined);
  const sequence = (s: RewardSample): number[] => {
    const ids = sameIds ? [...s.promptIds, ...s.completionIds] : own!.encodePrompt(s.prompt + s.completion);
    if (eos !== undefined && !endIds.has(ids[ids.length - 1]!)) ids.push(eos);
    if (ids.length > engine.config.seqLen) {
      throw new Error(`the prompt and response are ${ids.length} tokens, longer than the reward model's context ${engine.config.seqLen}`);
    }
    return ids;
  };

  let pending: { samples: RewardSample[]; resolve: (r: number[]) => void; reject: (e: unknown) => void }[] = [];
  const flush = () => {
    const calls = pending;
    pending = [];
    let scores: number[];
    const sequences: number[][][] = [];
    try {
      for (const call of calls) sequences.push(call.samples.map(sequence));
      scores = engine.scores(sequences.flat());
    } catch (error) {
      // One bad call (too long) must not fail the others: score them one by one.
      if (calls.length > 1) {
        for (const call of calls) {
          pending = [call];
          flush();
        }
        return;
      }
      calls[0]?.reject(error);
      return;
    }
    let at = 0;
    for (const call of calls) {
      const own = scores.slice(at, at + call.samples.length);
      at += call.samples.length;
      call.resolve(options.normalizer ? options.normalizer.updateAndNormalize(own) : own);
    }
  };
  return (samples) => new Promise<number[]>((resolve, reject) => {
    if (pending.length === 0) queueMicrotask(flush);
    pending.push({ samples, resolve, reject });
  });
}

function sameEncoding(a: TextTokenizer, b: TextTokenizer): boolean {
  if (a === b) return true;
  if (a.vocabSize !== b.vocabSize) return false;
  try {
    return a.encodePrompt(PROBE).join(',') === b.encodePrompt(PROBE).join(',');
  } catch {
    return false;
  }
}

/** Rule rewards and reward-model rewards as one: weights[0]·rule + weights[1]·model, per sample. */
export function weightedRewards(rule: RewardFunction, model: RewardFunction, weights: [number, number]): RewardFunction {
  return async (samples, call) => {
    const [a, b] = await Promise.all([rule(samples, call), model(samples, call)]);
    if (!Array.isArray(a) || a.length !== samples.length) {
      throw new Error(`the --reward function returned ${Array.isArray(a) ? `${a.length} rewards` : 'no array'} for ${samples.length} samples`);
    }
    return a.map((r, i) => weights[0] * r + weights[1] * b[i]!);
  };
}
