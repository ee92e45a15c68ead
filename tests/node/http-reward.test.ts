// httpReward against real HTTP servers on 127.0.0.1 (port 0 = any free port), through the global fetch.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpReward } from '../../src/core/http-reward';
import { scoreSamples, type RewardSample } from '../../src/core/rewards';
import { RemaxInputError } from '../../src/core/errors';

const servers: Server[] = [];
after(() => {
  for (const s of servers) {
    s.closeAllConnections(); // the hanging server's requests are still open
    s.close();
  }
});

interface Received { body: unknown; contentType: string | undefined }

/** Starts a server whose handler answers request number n (0-based); returns its URL and what it received. */
async function serve(handler: (n: number, req: IncomingMessage, res: ServerResponse, body: unknown) => void): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => { text += chunk; });
    req.on('end', () => {
      const body = JSON.parse(text) as unknown;
      received.push({ body, contentType: req.headers['content-type'] });
      handler(received.length - 1, req, res, body);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/score`, received };
}

const json = (res: ServerResponse, status: number, value: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
};
/** A correct grader: reward = completion length. */
const lengths = (body: unknown) => (body as { samples: { completion: string }[] }).samples.map((s) => s.completion.length);

const sample = (completion: string, meta: Record<string, unknown> = {}): RewardSample =>
  ({ prompt: 'Say hi', completion, promptIds: [1, 9], completionIds: [4, 4], meta });
const quick = { fetch, timeoutMs: 2000, retries: 3, backoffMs: 10 };

async function rejectsInput(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof RemaxInputError, `expected a RemaxInputError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('POSTs the samples as JSON and returns the rewards', async () => {
  const { url, received } = await serve((_, __, res, body) => json(res, 200, { rewards: lengths(body) }));
  const rewards = await httpReward(url, quick)([sample('hi', { answer: 'hello' }), sample('hey!')]);
  assert.deepEqual(rewards, [2, 4]);
  assert.equal(received.length, 1);
  assert.equal(received[0]!.contentType, 'application/json');
  assert.deepEqual(received[0]!.body, {
    samples: [{ prompt: 'Say hi', completion: 'hi', meta: { answer: 'hello' } }, { prompt: 'Say hi', completion: 'hey!', meta: {} }],
  });
});

test("protocol openrlhf POSTs OpenRLHF's {query, prompts, labels} (\"\" for a sample without a label) and reads \"rewards\"; retries as remax does", async () => {
  const { url, received } = await serve((n, _, res, body) => {
    if (n === 0) return json(res, 503, { error: 'busy' });
    const { query, prompts } = body as { query: string[]; prompts: string[] };
    json(res, 200, { rewards: query.map((q, i) => q.length - prompts[i]!.length), scores: [0, 0, 0], extra_logs: {} });
  });
  const samples = [sample('hi', { label: 'hello', answer: 'x' }), sample('hey!'), sample('', { label: 7 })];
  assert.deepEqual(await httpReward(url, { ...quick, protocol: 'openrlhf' })(samples), [2, 4, 0]);
  assert.equal(received.length, 2);
  assert.equal(received[1]!.contentType, 'application/json');
  assert.deepEqual(received[1]!.body, { query: ['Say hihi', 'Say hihey!', 'Say hi'], prompts: ['Say hi', 'Say hi', 'Say hi'], labels: ['hello', '', 7] });
});

test('503 twice then success: retried with back-off', async () => {
  const { url, received } = await serve((n, _, res, body) => (n < 2 ? json(res, 503, { error: 'busy' }) : json(res, 200, { rewards: lengths(body) })));
  const start = performance.now();
  assert.deepEqual(await httpReward(url, { ...quick, backoffMs: 50 })([sample('abc')]), [3]);
  assert.equal(received.length, 3);
  assert.ok(performance.now() - start >= 50 + 100 - 5, 'waited 50 ms, then 100 ms');
});

test('429 is retried too; giving up names the URL, the status, the body start and the attempts', async () => {
  const { url, received } = await serve((_, __, res) => json(res, 429, { error: 'slow down' }));
  await rejectsInput(httpReward(url, { ...quick, retries: 2 })([sample('x')]),
    new RegExp(`reward server ${url}: HTTP 429 Too Many Requests: \\{"error":"slow down"\\} \\(gave up after 3 attempts\\)`));
  assert.equal(received.length, 3);
});

test('400 fails at once, with the body start', async () => {
  const { url, received } = await serve((_, __, res) => { res.writeHead(400); res.end('missing field "meta"\n' + 'x'.repeat(500)); });
  await rejectsInput(httpReward(url, quick)([sample('x')]), new RegExp(`${url}: HTTP 400 Bad Request: missing field "meta" x{179}…$`));
  assert.equal(received.length, 1, 'no retry on 4xx');
});

test('a server that never answers times out per attempt and is retried', async () => {
  const { url, received } = await serve(() => { /* never answers */ });
  const start = performance.now();
  await rejectsInput(httpReward(url, { ...quick, timeoutMs: 100, retries: 1 })([sample('x')]),
    /no answer within 100 ms \(gave up after 2 attempts\)/);
  const elapsed = performance.now() - start;
  assert.equal(received.length, 2);
  assert.ok(elapsed >= 200 && elapsed < 1500, `took ${elapsed.toFixed(0)} ms`);
});

test('a refused connection is a network error, retried, then named', async () => {
  const { url } = await serve(() => {});
  const closed = servers.pop()!;
  await new Promise((resolve) => closed.close(resolve));
  await rejectsInput(httpReward(url, { ...quick, retries: 1 })([sample('x')]), new RegExp(`reward server ${url}: .*ECONNREFUSED.*gave up after 2 attempts`));
});

test('an answer that is not JSON or has no rewards array fails without retry', async () => {
  const { url: html, received } = await serve((_, __, res) => { res.writeHead(200); res.end('<html>ok</html>'); });
  await rejectsInput(httpReward(html, quick)([sample('x')]), /the answer is not JSON: <html>ok<\/html>$/);
  assert.equal(received.length, 1);
  const { url: other } = await serve((_, __, res) => json(res, 200, { scores: [1] }));
  await rejectsInput(httpReward(other, quick)([sample('x')]), /the answer has no "rewards" array: \{"scores":\[1\]\}$/);
});

test('the wrong count is caught by scoreSamples, naming the prompt', async () => {
  const { url } = await serve((_, __, res) => json(res, 200, { rewards: [1, 2] }));
  const fn = httpReward(url, quick);
  const r = await scoreSamples(fn, [[sample('a'), sample('b'), sample('c')]], { timeoutMs: 5000, onError: 'skip', concurrency: 2 });
  assert.deepEqual(r.errors, ['reward for prompt "Say hi": reward function returned 2 rewards for 3 samples']);
  await assert.rejects(scoreSamples(fn, [[sample('a'), sample('b'), sample('c')]], { timeoutMs: 5000, onError: 'abort', concurrency: 2 }),
    /prompt "Say hi": reward function returned 2 rewards for 3 samples/);
});

test('scoreSamples bounds the requests a server sees at once', async () => {
  let inFlight = 0;
  let most = 0;
  const { url } = await serve((_, __, res, body) => {
    most = Math.max(most, ++inFlight);
    setTimeout(() => { inFlight--; json(res, 200, { rewards: lengths(body) }); }, 20);
  });
  const groups = Array.from({ length: 8 }, (_, g) => [sample('x'.repeat(g))]);
  const r = await scoreSamples(httpReward(url, quick), groups, { timeoutMs: 5000, onError: 'abort', concurrency: 3 });
  assert.deepEqual(r.rewards, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(most, 3);
});

/** A server whose answer streams `chunks` chunks of 64 KiB (a valid JSON start, then padding), with or without a Content-Length. */
async function floodingServer(chunks: number, declareLength: boolean) {
  const served = { bytes: 0, closedEarly: false };
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const { url, received } = await serve((_, __, res) => {
    const head = '{"rewards":[1],"pad":"', tail = '"}';
    res.writeHead(200, { 'content-type': 'application/json', ...(declareLength ? { 'content-length': String(head.length + chunks * chunk.length + tail.length) } : {}) });
    res.write(head);
    let sent = 0;
    const more = () => {
      while (sent < chunks) {
        sent++;
        served.bytes += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      res.end(tail);
    };
    res.on('close', () => { if (sent < chunks) served.closedEarly = true; });
    more();
  });
  return { url, received, served };
}

test('an answer past --reward-max-bytes fails at once, naming the URL and the limit; the download is cut short', async () => {
  // 64 MiB of padding with a 1 MiB limit, sent without a Content-Length: the stream is counted.
  const { url, received, served } = await floodingServer(1024, false);
  const start = performance.now();
  await rejectsInput(httpReward(url, { ...quick, maxBytes: 1024 * 1024 })([sample('x')]),
    new RegExp(`^reward server ${url}: the answer is larger than the limit of 1 MiB \\(--reward-max-bytes 1048576\\)$`));
  assert.ok(performance.now() - start < 1500, 'did not read the whole body');
  assert.equal(received.length, 1, 'not retried');
  await sleep(50);
  assert.ok(served.closedEarly && served.bytes < 32 * 1024 * 1024, `the server sent ${served.bytes} bytes before the connection closed`);
});

test('a Content-Length past the limit fails before the body is read; an answer within the limit is read', async () => {
  const { url } = await floodingServer(32, true); // 2 MiB declared
  await rejectsInput(httpReward(url, { ...quick, maxBytes: 100_000 })([sample('x')]), /the answer is larger than the limit of 100000 bytes \(--reward-max-bytes 100000\)$/);
  assert.deepEqual(await httpReward(url, { ...quick, maxBytes: 3 * 1024 * 1024 })([sample('x')]), [1]);
  // The default limit, 64 MiB, lets a 2 MiB answer through.
  assert.deepEqual(await httpReward(url, quick)([sample('x')]), [1]);
  const { url: plain } = await floodingServer(32, false);
  assert.deepEqual(await httpReward(plain, quick)([sample('x')]), [1]);
});

test('an error answer is capped too', async () => {
  const { url } = await serve((_, __, res) => { res.writeHead(500); res.end('x'.repeat(5000)); });
  await rejectsInput(httpReward(url, { ...quick, maxBytes: 4096, retries: 0 })([sample('x')]), /larger than the limit of 4 KiB \(--reward-max-bytes 4096\)$/);
});

test('a call scoreSamples gives up on (its timeout) cancels the request in flight and tries no more', async () => {
  let closed = 0;
  const { url, received } = await serve((_, req) => { req.socket.on('close', () => closed++); /* never answers */ });
  const fn = httpReward(url, { ...quick, timeoutMs: 5000, retries: 3 });
  const r = await scoreSamples(fn, [[sample('x')]], { timeoutMs: 100, onError: 'skip', concurrency: 1 });
  assert.match(r.errors[0]!, /timed out after 100 ms/);
  await sleep(100);
  assert.equal(closed, 1, 'the request was cancelled');
  assert.equal(received.length, 1, 'no retry after the call was given up');
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('bad options name the value', () => {
  assert.throws(() => httpReward('http://x', { ...quick, maxBytes: 0 }), /answer limit must be an integer number of bytes ≥ 1, got 0/);
  assert.throws(() => httpReward('localhost:8000', quick), /reward URL localhost:8000 must start with http:\/\/ or https:\/\//);
  assert.throws(() => httpReward('http://x', { ...quick, retries: -1 }), /retries must be an integer ≥ 0, got -1/);
  assert.throws(() => httpReward('http://x', { ...quick, timeoutMs: 0 }), /timeout must be a number of milliseconds > 0, got 0/);
  assert.throws(() => httpReward('http://x', { ...quick, protocol: 'verl' as 'remax' }), /protocol must be one of remax, openrlhf, got "verl"/);
});
