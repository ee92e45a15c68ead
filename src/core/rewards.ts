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
 *
 * Each call gets its own copy of its samples (the ids, meta and messages of the trainer's prompt records): a reward
 * function may change them in place without changing what the trainer trains on or shows the next call. A call also
 * gets an AbortSignal, aborted when scoreSamples stops waiting for it (its timeout, or under abort another group's
 * failure): a function that can stop its work (a reward module on its worker thread, a request) stops then.
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

/**
 * Returns one finite reward per sample, in the order of `samples`. May be async. The samples are the call's own
 * copies. `call` is for remax's own wrappers (a user's reward module is called with the samples only).
 */
export type RewardFunction = (samples: RewardSample[], call?: RewardCall) => number[] | Promise<number[]>;

/** What scoreSamples hands a reward function besides its samples. */
export interface RewardCall {
  /** Aborted when scoreSamples stops waiting for this call: its timeout, or under abort another group's failure. */
  readonly signal: AbortSignal;
  /** Set by a function that stopped its work when the signal was aborted (synchronously, in the abort listener): how, for the error line. */
  stopped?: string;
}

/**
 * A failed call whose message is the problem as it stands (a reward module that called process.exit, threw from a
 * timer or returned what cannot leave its thread), where any other error is reported as "reward function threw: …".
 */
export class RewardCallError extends Error {}

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
  /** The calls in flight, stopped when an abort ends the scoring. */
  const inFlight = new Set<AbortController>();

  // Each worker takes the next unscored group until none is left; `concurrency` workers = that many calls in flight.
  const worker = async (): Promise<void> => {
    while (!aborted && next < groups.length) {
      const g = next++;
      const samples = groups[g]!;
      if (samples.length === 0) continue;
      const controller = new AbortController();
      inFlight.add(controller);
      let outcome: number[] | string;
      try {
        outcome = await callReward(fn, samples, timeoutMs, controller);
      } finally {
        inFlight.delete(controller);
      }
      if (aborted) return; // another group failed while this one was in flight: its result is not needed
      if (Array.isArray(outcome)) {
        groupRewards[g] = outcome;
        continue;
      }
      const line = `reward for prompt ${promptLabel(samples[0]!.prompt)}: ${outcome}`;
      if (onError === 'abort') {
        aborted = true; // stop starting new calls, and stop the ones in flight
        for (const other of inFlight) other.abort(new Error('the scoring stopped: another group failed'));
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

/**
 * The samples of one call as copies the reward function may change: new arrays of ids, and meta and messages
 * cloned deep (they are JSON data from the prompt line), so nothing of the trainer's prompt records is shared.
 */
function copySamples(samples: RewardSample[]): RewardSample[] {
  return samples.map((s) => ({
    prompt: s.prompt, completion: s.completion, promptIds: [...s.promptIds], completionIds: [...s.completionIds],
    meta: structuredClone(s.meta), ...(s.messages ? { messages: structuredClone(s.messages) } : {}),
  }));
}

/**
 * One call of fn on copies of `samples`, with the timeout: its rewards (checked: one finite number per sample), or the
 * problem as a string. Aborting `controller` (as the timeout does) tells fn to stop its work. scoreSamples makes one
 * such call per group; a server that scores one request's samples at a time (remax serve-reward) makes it directly.
 */
export function callReward(fn: RewardFunction, samples: RewardSample[], timeoutMs: number, controller = new AbortController()): Promise<number[] | string> {
  return callOnce(fn, copySamples(samples), timeoutMs, controller);
}

/** Calls fn on one group: its rewards, or the problem as a string. At the timeout the call's signal is aborted. */
async function callOnce(fn: RewardFunction, samples: RewardSample[], timeoutMs: number, controller: AbortController): Promise<number[] | string> {
  const call: RewardCall = { signal: controller.signal };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => {
      resolve(TIMED_OUT);
      controller.abort(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  let result: unknown;
  try {
    // new Promise(...) turns a synchronous throw into a rejection like an async one.
    result = await Promise.race([new Promise<unknown>((resolve) => resolve(fn(samples, call))), timeout]);
  } catch (error) {
    if (error instanceof RewardCallError) return error.message;
    return `reward function threw: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    clearTimeout(timer);
  }
  if (result === TIMED_OUT) return `timed out after ${timeoutMs} ms${call.stopped ? `; ${call.stopped}` : ''}`;
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
