/**
 * A reward function served over HTTP: each call POSTs one group of samples (content-type application/json) in the
 * wire format of `protocol` (reward-protocols.ts):
 *   remax (default)  {"samples": [{"prompt": "...", "completion": "...", "meta": {...}}, ...]}
 *   openrlhf         {"query": [prompt + completion, ...], "prompts": [...], "labels": [meta.label or "", ...]}
 * and expects {"rewards": [r0, r1, ...]} back (both formats), one number per sample.
 *
 * Transient failures are retried with exponential back-off (backoffMs · 2^attempt, capped at MAX_BACKOFF_MS):
 * network errors, attempts that time out, HTTP 5xx and 429. Other 4xx answers mean the request itself is wrong, so
 * they fail at once. The fetch function is a parameter (core code does no I/O of its own), and the number of calls
 * in flight is bounded by scoreSamples. Its per-call timeout should cover all attempts here:
 * (retries + 1) · timeoutMs plus the back-off; when it gives up on a call (its signal), the request in flight is
 * cancelled and no further attempt is made.
 *
 * An answer's body is read as a stream and counted: past maxBytes (default 64 MiB) the request is cancelled and the
 * call fails at once (no retry), so a runaway server cannot fill the trainer's memory.
 */
import { RemaxInputError, requireInput } from './errors';
import type { RewardCall, RewardSample } from './rewards';
import { REWARD_PROTOCOLS, rewardRequestBody, type RewardProtocol } from './reward-protocols';

export interface HttpRewardOptions {
  fetch: typeof fetch;
  /** Per attempt, including reading the answer. */
  timeoutMs: number;
  /** Attempts after the first one. */
  retries: number;
  /** The first back-off; default 250 ms. */
  backoffMs?: number;
  /** The largest answer body read, in bytes; default DEFAULT_MAX_ANSWER_BYTES. */
  maxBytes?: number;
  /** The wire format; default 'remax'. */
  protocol?: RewardProtocol;
}

export const DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024;
const MAX_BACKOFF_MS = 10_000;
/** How much of an error answer's body a message quotes. */
const BODY_START = 200;

/** An async RewardFunction that asks the server at `url`; see the file comment. */
export function httpReward(url: string, options: HttpRewardOptions): (samples: RewardSample[], call?: RewardCall) => Promise<number[]> {
  // Called unbound: options.fetch(...) would run fetch with `this` = options, which browsers reject.
  const { fetch: fetchFn, timeoutMs, retries, backoffMs = 250, maxBytes = DEFAULT_MAX_ANSWER_BYTES, protocol = 'remax' } = options;
  requireInput(/^https?:\/\//i.test(url), `reward URL ${url} must start with http:// or https://`);
  requireInput(Number.isFinite(timeoutMs) && timeoutMs > 0, `the reward server timeout must be a number of milliseconds > 0, got ${timeoutMs}`);
  requireInput(Number.isSafeInteger(retries) && retries >= 0, `the reward server retries must be an integer ≥ 0, got ${retries}`);
  requireInput(Number.isFinite(backoffMs) && backoffMs >= 0, `the reward server back-off must be a number of milliseconds ≥ 0, got ${backoffMs}`);
  requireInput(Number.isSafeInteger(maxBytes) && maxBytes >= 1, `the reward server answer limit must be an integer number of bytes ≥ 1, got ${maxBytes}`);
  requireInput(REWARD_PROTOCOLS.includes(protocol), `the reward server protocol must be one of ${REWARD_PROTOCOLS.join(', ')}, got "${String(protocol)}"`);

  return async (samples, call) => {
    const body = rewardRequestBody(protocol, samples);
    for (let attempt = 0; ; attempt++) {
      const outcome = await attemptOnce(body, call?.signal);
      if (Array.isArray(outcome)) return outcome;
      const tries = `${attempt + 1} attempt${attempt === 0 ? '' : 's'}`;
      if (!outcome.retry || call?.signal.aborted) throw new RemaxInputError(`reward server ${url}: ${outcome.problem}`);
      if (attempt >= retries) throw new RemaxInputError(`reward server ${url}: ${outcome.problem} (gave up after ${tries})`);
      await sleep(Math.min(MAX_BACKOFF_MS, backoffMs * 2 ** attempt), call?.signal);
    }
  };

  /** One POST: the rewards, or the problem and whether another attempt could succeed. */
  async function attemptOnce(body: string, outer: AbortSignal | undefined): Promise<number[] | { problem: string; retry: boolean }> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const stop = () => controller.abort();
    outer?.addEventListener('abort', stop);
    if (outer?.aborted) controller.abort();
    try {
      const response = await fetchFn(url, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: controller.signal,
      });
      const text = await readBody(response, controller);
      if (text === undefined) {
        return { problem: `the answer is larger than the limit of ${formatBytes(maxBytes)} (--reward-max-bytes ${maxBytes})`, retry: false };
      }
      if (!response.ok) {
        const retry = response.status >= 500 || response.status === 429;
        return { problem: `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}: ${bodyStart(text)}`, retry };
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return { problem: `the answer is not JSON: ${bodyStart(text)}`, retry: false };
      }
      const rewards = (parsed as { rewards?: unknown } | null)?.rewards;
      if (!Array.isArray(rewards)) return { problem: `the answer has no "rewards" array: ${bodyStart(text)}`, retry: false };
      return rewards; // scoreSamples checks the count and that each is a finite number
    } catch (error) {
      if (outer?.aborted) return { problem: 'the call was stopped (its timeout, or another group failed)', retry: false };
      if (controller.signal.aborted) return { problem: `no answer within ${timeoutMs} ms`, retry: true };
      const cause = (error as { cause?: { message?: string } }).cause?.message; // undici puts the socket error here
      const message = error instanceof Error ? error.message : String(error);
      return { problem: `${message}${cause ? ` (${cause})` : ''}`, retry: true };
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', stop);
    }
  }

  /**
   * The body as text, read chunk by chunk; undefined as soon as it passes maxBytes (the request is then cancelled).
   * A Content-Length above the limit fails before anything is read.
   */
  async function readBody(response: Response, controller: AbortController): Promise<string | undefined> {
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > maxBytes) {
      controller.abort();
      await response.body?.cancel().catch(() => {});
      return undefined;
    }
    if (!response.body) return '';
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let text = '', bytes = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      if (bytes > maxBytes) {
        controller.abort();
        await reader.cancel().catch(() => {});
        return undefined;
      }
      text += decoder.decode(value, { stream: true });
    }
    return text + decoder.decode();
  }
}

/** "64 MiB", "4 KiB", "100000 bytes": a byte limit as messages show it. */
export function formatBytes(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  if (bytes >= 1024 * 1024 && Number.isInteger(mib * 10)) return `${mib} MiB`;
  const kib = bytes / 1024;
  if (bytes >= 1024 && Number.isInteger(kib * 10)) return `${kib} KiB`;
  return `${bytes} bytes`;
}

function bodyStart(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  if (oneLine === '') return '(empty body)';
  return oneLine.length > BODY_START ? `${oneLine.slice(0, BODY_START)}…` : oneLine;
}

/** Waits `ms`, or less when `signal` is aborted. */
const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve) => {
  if (signal?.aborted) return resolve();
  const done = () => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); };
  const timer = setTimeout(done, ms);
  signal?.addEventListener('abort', done);
});
