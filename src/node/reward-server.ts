// The HTTP side of `remax serve-reward`: answers reward requests in both wire formats (core/reward-protocols.ts) with a
// RequestScorer, so that trainers on other machines (remax train --reward-url, OpenRLHF's --remote_rm_url) share one
// reward. Routes: POST / (remax) and POST /get_reward (OpenRLHF).
//
// Hardened like the static server: no request and no error ends the server, only close() does. Every answer is JSON;
// an error is {"error": "..."} with 400 (the request is wrong: not JSON, wrong shape, a malformed path), 404/405,
// 413 (the body passes the limit), 503 (busy, or stopping) or 500 (the reward failed: it threw, timed out or returned
// other than one finite number per sample). At most maxConcurrent requests are scored at once; the next maxQueue
// wait their turn in order (their bodies are read when it comes, so memory holds at most maxConcurrent bodies), and
// past that a request is answered 503 at once with Retry-After (the trainer's client and OpenRLHF's retry).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { RemaxInputError } from '../core/errors';
import { formatBytes } from '../core/http-reward';
import { parseRewardRequest, rewardAnswerBody, type RewardProtocol } from '../core/reward-protocols';
import { ScoringError, type RequestScorer } from '../core/request-scorer';

/** Which wire format each path speaks. */
export const REWARD_ROUTES: Readonly<Record<string, RewardProtocol>> = { '/': 'remax', '/get_reward': 'openrlhf' };

export interface RewardServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free one (see `url`). */
  port?: number;
  /** Requests scored at once (≥ 1). */
  maxConcurrent: number;
  /** Requests waiting for their turn (≥ 0); past it, 503. */
  maxQueue: number;
  /** The largest request body, in bytes; past it, 413. */
  maxRequestBytes: number;
  /** One line per request answered with an error, and per error the server survived. Default: ignored. */
  onProblem?: (line: string) => void;
}

export interface RewardServer {
  server: Server;
  url: string;
  /** Stops accepting, answers the waiting requests 503, lets those being scored finish for up to graceMs, then closes every connection. */
  close(graceMs?: number): Promise<void>;
}

/** An error answer: the status and what the request should change. */
class HttpProblem extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

/** How the paths are described in a 404. */
const ENDPOINTS = Object.entries(REWARD_ROUTES).map(([path, protocol]) => `POST ${path} (${protocol})`).join(' and ');

export function startRewardServer(scorer: RequestScorer, options: RewardServerOptions): Promise<RewardServer> {
  const { host = '127.0.0.1', port = 0, maxConcurrent, maxQueue, maxRequestBytes } = options;
  const report = (line: string): void => {
    try {
      options.onProblem?.(line);
    } catch {
      // A failing report callback must not end the server either.
    }
  };
  const slots = new Slots(maxConcurrent, maxQueue);
  let open = 0;
  let idle: (() => void) | undefined;

  const server = createServer((request, response) => {
    open++;
    handle(request, response).catch((error: unknown) => {
      // A bug of ours, or a client that hung up mid-answer: this request fails, the server goes on.
      report(`${describeRequest(request)}: internal error: ${error instanceof Error ? error.message : String(error)} (still serving)`);
      if (!response.headersSent) sendJson(response, 500, JSON.stringify({ error: 'internal server error' }));
      else response.destroy();
    }).finally(() => {
      if (--open === 0) idle?.();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    response.on('error', () => response.destroy()); // a write to a socket the client closed
    // Aborted when nobody waits for the answer any more: the scorer may stop its work (a module's thread is ended).
    const cancelled = new AbortController();
    response.on('close', () => {
      if (!response.writableFinished) cancelled.abort();
    });
    try {
      const protocol = route(request);
      if (Number(request.headers['content-length']) > maxRequestBytes) {
        void readBody(request, maxRequestBytes); // discards what comes, up to the cut-off
        throw tooLarge();
      }
      const release = await slots.acquire(cancelled.signal);
      if (release === 'busy') {
        throw new HttpProblem(503, `busy: ${maxConcurrent} requests are being scored and ${maxQueue} wait (--max-concurrent, --max-queue); try again`, { 'retry-after': '1' });
      }
      if (release === 'stopping') throw new HttpProblem(503, 'the reward server is stopping');
      try {
        const bytes = await readBody(request, maxRequestBytes);
        if (bytes === undefined) throw tooLarge();
        let body: unknown;
        try {
          body = JSON.parse(bytes.toString('utf8'));
        } catch (error) {
          throw new HttpProblem(400, `the request body is not JSON: ${(error as Error).message}`);
        }
        let samples;
        try {
          samples = parseRewardRequest(protocol, body);
        } catch (error) {
          if (error instanceof RemaxInputError) throw new HttpProblem(400, error.message);
          throw error;
        }
        const rewards = samples.length === 0 ? [] : await score(samples);
        sendJson(response, 200, rewardAnswerBody(protocol, rewards));
      } finally {
        release();
      }
    } catch (error) {
      if (cancelled.signal.aborted) return; // nobody to answer
      if (error instanceof HttpProblem) {
        report(`${describeRequest(request)}: ${error.status} ${error.message}`);
        sendJson(response, error.status, JSON.stringify({ error: error.message }), error.headers);
        return;
      }
      throw error;
    }

    async function score(samples: Parameters<RequestScorer>[0]): Promise<number[]> {
      let rewards: unknown;
      try {
        rewards = await scorer(samples, cancelled.signal);
      } catch (error) {
        const message = error instanceof ScoringError ? error.message : `the reward threw: ${error instanceof Error ? error.message : String(error)}`;
        throw new HttpProblem(500, message);
      }
      // The scorer's own check, again: whatever stands behind it, a client never gets a miscounted or non-finite answer.
      if (!Array.isArray(rewards) || rewards.length !== samples.length || !rewards.every((r) => typeof r === 'number' && Number.isFinite(r))) {
        throw new HttpProblem(500, `the scorer returned other than ${samples.length} finite number${samples.length === 1 ? '' : 's'}`);
      }
      return rewards as number[];
    }
  }

  /** The request's wire format, from its path and method. */
  function route(request: IncomingMessage): RewardProtocol {
    const target = (request.url ?? '/').split('?')[0]!;
    let path: string;
    try {
      path = decodeURIComponent(target);
    } catch {
      throw new HttpProblem(400, `the path ${JSON.stringify(target.slice(0, 100))} is not a valid percent-encoded URL path`);
    }
    if (!Object.hasOwn(REWARD_ROUTES, path)) throw new HttpProblem(404, `nothing at ${JSON.stringify(path.slice(0, 100))}: this server answers ${ENDPOINTS}`);
    if (request.method !== 'POST') throw new HttpProblem(405, `${path} takes POST (a JSON body), not ${request.method}`, { allow: 'POST' });
    return REWARD_ROUTES[path]!;
  }

  function tooLarge(): HttpProblem {
    return new HttpProblem(413, `the request body is larger than the limit of ${formatBytes(maxRequestBytes)} (--max-request-bytes ${maxRequestBytes}); send fewer samples per request`);
  }

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      // After listen: an 'error' event with no listener would throw and end the process.
      server.on('error', (error) => report(`server error: ${error.message} (still serving)`));
      const address = server.address() as { port: number };
      resolve({
        server,
        url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}/`,
        close: async (graceMs = 5000) => {
          const closed = new Promise<void>((done) => server.close(() => done()));
          slots.stop();
          server.closeIdleConnections();
          if (open > 0) {
            await new Promise<void>((done) => {
              const timer = setTimeout(done, graceMs);
              idle = () => { clearTimeout(timer); done(); };
            });
          }
          server.closeAllConnections();
          await closed;
        },
      });
    });
  });
}

/**
 * The request body; undefined as soon as it passes `limit` (or its Content-Length does), after which what still comes
 * is read and dropped, so that the client can read the 413, until as much again has come: then the connection is cut.
 */
function readBody(request: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let over = Number(request.headers['content-length']) > limit;
    if (over) resolve(undefined);
    request.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (over) {
        if (bytes > 2 * limit) request.socket.destroy();
        return;
      }
      if (bytes > limit) {
        over = true;
        chunks.length = 0;
        return resolve(undefined);
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(over ? undefined : Buffer.concat(chunks)));
    request.on('error', (error) => reject(new HttpProblem(400, `the request failed while its body came: ${error.message}`)));
    request.on('close', () => reject(new HttpProblem(400, 'the client closed the connection before the whole body came')));
  });
}

function sendJson(response: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  response.end(body);
}

/** "POST /get_reward", cut short, for the log lines. */
function describeRequest(request: IncomingMessage): string {
  const target = request.url ?? '';
  return `${request.method} ${target.length > 100 ? `${target.slice(0, 100)}…` : target}`;
}

/** Turns to be scored: `max` at once, then up to `maxWaiting` in order. */
class Slots {
  private active = 0;
  private readonly waiting: ((outcome: 'go' | 'stopping') => void)[] = [];
  private stopping = false;

  constructor(private readonly max: number, private readonly maxWaiting: number) {}

  /** A release function once the turn comes; 'busy' when the queue is full; rejects when `signal` aborts while waiting. */
  async acquire(signal: AbortSignal): Promise<(() => void) | 'busy' | 'stopping'> {
    if (this.stopping) return 'stopping';
    if (this.active < this.max) {
      this.active++;
      return this.releaser();
    }
    if (this.waiting.length >= this.maxWaiting) return 'busy';
    const outcome = await new Promise<'go' | 'stopping'>((resolve, reject) => {
      const turn = (outcome: 'go' | 'stopping') => {
        signal.removeEventListener('abort', gaveUp);
        resolve(outcome);
      };
      const gaveUp = () => {
        this.waiting.splice(this.waiting.indexOf(turn), 1);
        reject(new Error('the client hung up while its request waited'));
      };
      this.waiting.push(turn);
      signal.addEventListener('abort', gaveUp, { once: true });
    });
    return outcome === 'go' ? this.releaser() : 'stopping';
  }

  /** Wakes every waiting request with 'stopping'; later ones get it at once. */
  stop(): void {
    this.stopping = true;
    for (const turn of this.waiting.splice(0)) turn('stopping');
  }

  /** Releases once: hands the turn to the next waiting request, else frees it. */
  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next('go');
      else this.active--;
    };
  }
}
