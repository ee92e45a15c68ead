/**
 * Scoring responses with a reward function: the trainer hands over its samples grouped by prompt (a prompt's sampled
 * responses and, for ReMax, its greedy response) and gets one reward per sample back.
 *
 * One group is one call of the reward function, so a function that compares a prompt's responses (or a server that
 * batches) sees them together. Groups run concurrently up to `concurrency` calls in flight, which bounds the load on
 * a reward server. Each call has a timeout. A group whose call fails is handled by the error policy:
 *   abort  throw a RewardError naming the prompt and the problem (the default a trainer should use);
 *   skip   its rewards are null (the trainer drops those samples) and it counts in `skipped`;
 *   zero   its rewards are 0.
 * Under skip and zero every failed group adds one line to `errors` for the logs.
 */
import { RemaxInputError, requireInput } from './errors';
import type { ChatMessage } from './tokenizers/chat-template';

export interface RewardSample {
  prompt: string;
  completion: string;
  promptIds: number[];
  completionIds: number[];
  /** The prompt line's other fields (an "answer", a "pattern", …), passed through to the reward function. */
  meta: Record<string, unknown>;
  /** A chat prompt's messages (the line's "messages"); `prompt` is then their rendering by the chat template. */
  messages?: ChatMessage[];
}

/** Returns one finite reward per sample, in the order of `samples`. May be async. */
export type RewardFunction = (samples: RewardSample[]) => number[] | Promise<number[]>;

export type RewardErrorPolicy = 'abort' | 'skip' | 'zero';
export const REWARD_ERROR_POLICIES: readonly RewardErrorPolicy[] = ['abort', 'skip', 'zero'];

export interface ScoreOptions {
  /** Per call (one group). A call still running at the timeout is abandoned, not cancelled. */
  timeoutMs: number;
  onError: RewardErrorPolicy;
  /** Calls in flight at once (≥ 1). */
  concurrency: number;
}

export interface ScoreResult {
  /** groupRewards[g][i] is the reward of groups[g][i]; null = skipped (the whole group is null). */
  groupRewards: (number | null)[][];
  /** The same rewards flattened, aligned with groups.flat(). */
  rewards: (number | null)[];
  /** Groups (prompts) skipped under onError 'skip'. */
  skipped: number;
  /** One line per failed group (under 'skip' or 'zero'): the prompt and the problem. */
  errors: string[];
}

/** A failed reward call under onError 'abort'. */
export class RewardError extends RemaxInputError {}

/** Scores every group with one call of `fn` each, at most options.concurrency calls at once. See the file comment. */
export async function scoreSamples(fn: RewardFunction, groups: RewardSample[][], options: ScoreOptions): Promise<ScoreResult> {
  const { timeoutMs, onError, concurrency } = options;
  requireInput(Number.isFinite(timeoutMs) && timeoutMs > 0, `the reward timeout must be a number of milliseconds > 0, got ${timeoutMs}`);
  requireInput(Number.isSafeInteger(concurrency) && concurrency >= 1, `the reward concurrency must be an integer ≥ 1, got ${concurrency}`);
  requireInput(REWARD_ERROR_POLICIES.includes(onError),
    `the reward error policy must be one of ${REWARD_ERROR_POLICIES.join(', ')}, got "${String(onError)}"`);

  const groupRewards: (number | null)[][] = groups.map((g) => g.map(() => null));
  const errors: string[] = [];
  let skipped = 0;
  let next = 0;
  let aborted = false;

  // Each worker takes the next unscored group until none is left; `concurrency` workers = that many calls in flight.
  const worker = async (): Promise<void> => {
    while (!aborted && next < groups.length) {
      const g = next++;
      const samples = groups[g]!;
      if (samples.length === 0) continue;
      const outcome = await callOnce(fn, samples, timeoutMs);
      if (Array.isArray(outcome)) {
        groupRewards[g] = outcome;
        continue;
      }
      const line = `reward for prompt ${promptLabel(samples[0]!.prompt)}: ${outcome}`;
      if (onError === 'abort') {
        aborted = true; // stop starting new calls; the ones in flight are abandoned
        throw new RewardError(`${line} (fix the reward function, or let training continue past failures with the skip or zero policy)`);
      }
      errors.push(line);
      if (onError === 'skip') skipped++;
      else groupRewards[g]!.fill(0);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, groups.length) }, worker));
  return { groupRewards, rewards: groupRewards.flat(), skipped, errors };
}

/** Calls fn on one group: its rewards, or the problem as a string. */
async function callOnce(fn: RewardFunction, samples: RewardSample[], timeoutMs: number): Promise<number[] | string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => { timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs); });
  let result: unknown;
  try {
    // new Promise(...) turns a synchronous throw into a rejection like an async one.
    result = await Promise.race([new Promise<unknown>((resolve) => resolve(fn(samples))), timeout]);
  } catch (error) {
    return `reward function threw: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    clearTimeout(timer);
  }
  if (result === TIMED_OUT) return `timed out after ${timeoutMs} ms`;
  return checkRewards(result, samples.length) ?? (result as number[]).slice();
}

const TIMED_OUT = Symbol('timed out');

/** Why `result` is not `count` finite numbers, or undefined if it is. */
function checkRewards(result: unknown, count: number): string | undefined {
  if (!Array.isArray(result)) return `reward function returned ${describe(result)}, not an array of numbers`;
  if (result.length !== count) {
    return `reward function returned ${result.length} reward${result.length === 1 ? '' : 's'} for ${count} sample${count === 1 ? '' : 's'}`;
  }
  const bad = result.findIndex((r) => typeof r !== 'number' || !Number.isFinite(r));
  if (bad >= 0) return `reward function returned ${describe(result[bad])} for sample ${bad}`;
  return undefined;
}

function describe(value: unknown): string {
  if (typeof value === 'number') return String(value); // NaN, Infinity
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 20))}`;
  const type = typeof value;
  return `${type === 'object' ? 'an' : 'a'} ${type}`; // an object, a function, a boolean
}

/** The prompt as it appears in messages: its first 60 characters, JSON-quoted, with … when cut. */
export function promptLabel(prompt: string): string {
  const chars = [...prompt];
  return chars.length > 60 ? `${JSON.stringify(chars.slice(0, 60).join(''))}…` : JSON.stringify(prompt);
}
