/**
 * A reward function served over HTTP: each call POSTs one group of samples as
 *   {"samples": [{"prompt": "...", "completion": "...", "meta": {...}}, ...]}
 * (content-type application/json) and expects {"rewards": [r0, r1, ...]} back, one number per sample.
 *
 * Transient failures are retried with exponential back-off (backoffMs · 2^attempt, capped at MAX_BACKOFF_MS):
 * network errors, attempts that time out, HTTP 5xx and 429. Other 4xx answers mean the request itself is wrong, so
 * they fail at once. The fetch function is a parameter (core code does no I/O of its own), and the number of calls
 * in flight is bounded by scoreSamples. Its per-call timeout should cover all attempts here:
 * (retries + 1) · timeoutMs plus the back-off.
 */
import { RemaxInputError, requireInput } from './errors';
import type { RewardSample } from './rewards';

export interface HttpRewardOptions {
  fetch: typeof fetch;
  /** Per attempt, including reading the answer. */
  timeoutMs: number;
  /** Attempts after the first one. */
  retries: number;
  /** The first back-off; default 250 ms. */
  backoffMs?: number;
}

const MAX_BACKOFF_MS = 10_000;
/** How much of an error answer's body a message quotes. */
const BODY_START = 200;

/** An async RewardFunction that asks the server at `url`; see the file comment. */
export function httpReward(url: string, options: HttpRewardOptions): (samples: RewardSample[]) => Promise<number[]> {
  // Called unbound: options.fetch(...) would run fetch with `this` = options, which browsers reject.
  const { fetch: fetchFn, timeoutMs, retries, backoffMs = 250 } = options;
  requireInput(/^https?:\/\//i.test(url), `reward URL ${url} must start with http:// or https://`);
  requireInput(Number.isFinite(timeoutMs) && timeoutMs > 0, `the reward server timeout must be a number of milliseconds > 0, got ${timeoutMs}`);
  requireInput(Number.isSafeInteger(retries) && retries >= 0, `the reward server retries must be an integer ≥ 0, got ${retries}`);
  requireInput(Number.isFinite(backoffMs) && backoffMs >= 0, `the reward server back-off must be a number of milliseconds ≥ 0, got ${backoffMs}`);

  return async (samples) => {
    const body = JSON.stringify({ samples: samples.map((s) => ({ prompt: s.prompt, completion: s.completion, meta: s.meta })) });
    for (let attempt = 0; ; attempt++) {
      const outcome = await attemptOnce(body);
      if (Array.isArray(outcome)) return outcome;
      const tries = `${attempt + 1} attempt${attempt === 0 ? '' : 's'}`;
      if (!outcome.retry) throw new RemaxInputError(`reward server ${url}: ${outcome.problem}`);
      if (attempt >= retries) throw new RemaxInputError(`reward server ${url}: ${outcome.problem} (gave up after ${tries})`);
      await sleep(Math.min(MAX_BACKOFF_MS, backoffMs * 2 ** attempt));
    }
  };

  /** One POST: the rewards, or the problem and whether another attempt could succeed. */
  async function attemptOnce(body: string): Promise<number[] | { problem: string; retry: boolean }> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const response = await fetchFn(url, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: controller.signal,
      });
      const text = await response.text();
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
      if (controller.signal.aborted) return { problem: `no answer within ${timeoutMs} ms`, retry: true };
      const cause = (error as { cause?: { message?: string } }).cause?.message; // undici puts the socket error here
      const message = error instanceof Error ? error.message : String(error);
      return { problem: `${message}${cause ? ` (${cause})` : ''}`, retry: true };
    } finally {
      clearTimeout(timer);
    }
  }
}

function bodyStart(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  if (oneLine === '') return '(empty body)';
  return oneLine.length > BODY_START ? `${oneLine.slice(0, BODY_START)}…` : oneLine;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
