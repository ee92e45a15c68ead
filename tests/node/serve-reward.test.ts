// remax serve-reward as a user runs it (dist/cli.js in a child process, port 0) with a small reward module: both wire
// formats, the trainer's own HTTP client, a Python standard-library client posting as OpenRLHF does, bad requests,
// failing rewards, the concurrency limit, a clean stop, and a training run whose rewards come from the server.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { httpReward } from '../../src/core/http-reward';
import type { RewardSample } from '../../src/core/rewards';
import { RemaxEngine } from '../../src/core/engine';
import { Tokenizer } from '../../src/core/tokenizers/llama2c';
import { loadModelFromPath } from '../../src/node/model-io';
import { syntheticTokenizerBin } from './fixtures';

const CLI = path.resolve('dist/cli.js');
const dir = mkdtempSync(path.join(tmpdir(), 'remax-serve-reward-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// The reward: the completion's length, 100 more when it holds the sample's label; "throw" throws, "loop" never
// returns, "sleep" answers after 1.5 s. A .mjs file, so that the test can call the same function directly.
const REWARD = path.join(dir, 'reward.mjs');
writeFileSync(REWARD, `export default async (samples) => {
  const rewards = [];
  for (const s of samples) {
    if (s.completion === 'throw') throw new Error('the reward was asked to throw');
    if (s.completion === 'loop') for (;;) {}
    if (s.completion === 'sleep') await new Promise((resolve) => setTimeout(resolve, 1500));
    const label = s.meta.label;
    rewards.push(s.completion.length + (typeof label === 'string' && label !== '' && s.completion.includes(label) ? 100 : 0));
  }
  return rewards;
};\n`);
const direct = (await import(pathToFileURL(REWARD).href)).default as (samples: RewardSample[]) => Promise<number[]>;
const sample = (prompt: string, completion: string, meta: Record<string, unknown> = {}): RewardSample =>
  ({ prompt, completion, promptIds: [], completionIds: [], meta });

interface Served { url: string; child: ChildProcessWithoutNullStreams; stderr: () => string; stop(): Promise<{ code: number | null; stdout: string }> }

/** Starts `remax serve-reward --port 0 ...args` and resolves with its URL once it prints it. */
function serveReward(...args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve-reward', '--port', '0', ...args]);
  let stdout = '', stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      const url = /remax reward server: (http:\/\/\S+)/.exec(stdout)?.[1];
      if (url) resolve({
        url, child, stderr: () => stderr,
        stop: async () => {
          child.kill('SIGTERM');
          return { code: await closed, stdout };
        },
      });
    });
    void closed.then((code) => reject(new Error(`serve-reward ended (code ${code}) before listening: ${stderr}`)));
  });
}

/** Starts a server for one test and always stops it, checking that it stopped cleanly (exit 0, "stopped"). */
async function withServer(args: string[], body: (served: Served) => Promise<void>): Promise<void> {
  const served = await serveReward('--reward', REWARD, ...args);
  try {
    await body(served);
  } finally {
    const { code, stdout } = await served.stop();
    assert.equal(code, 0, served.stderr());
    assert.match(stdout, /remax reward server: stopped \(SIGTERM\)/);
  }
}

async function post(url: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: response.status, json: await response.json() as Record<string, unknown>, headers: response.headers };
}

/** The server still answers a good request correctly. */
async function stillServes(url: string): Promise<void> {
  const r = await post(`${url}get_reward`, { query: ['Q: ok done'], prompts: ['Q: '], labels: ['done'] });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.rewards, await direct([sample('Q: ', 'ok done', { label: 'done' })]));
}

test('both wire formats: remax {"samples"} on POST /, OpenRLHF {"query","prompts","labels"} on POST /get_reward (rewards = scores)', async () => {
  await withServer([], async ({ url }) => {
    const samples = [sample('2+2=', '4 four', { label: 'four' }), sample('Name a colour: ', 'blue'), sample('', 'héllo ✓', { label: 'nope' })];
    const expected = await direct(samples);
    assert.ok(expected[0]! > 100 && expected[1]! < 100, 'the label counts');

    const remax = await post(url, { samples: samples.map(({ prompt, completion, meta }) => ({ prompt, completion, meta })) });
    assert.equal(remax.status, 200);
    assert.deepEqual(remax.json, { rewards: expected });

    // OpenRLHF: each query is its prompt followed by the response; labels reach the reward as meta.label.
    const openrlhf = await post(`${url}get_reward`, {
      query: samples.map((s) => s.prompt + s.completion), prompts: samples.map((s) => s.prompt), labels: samples.map((s) => s.meta.label ?? ''),
    });
    assert.equal(openrlhf.status, 200);
    assert.deepEqual(openrlhf.json, { rewards: expected, scores: expected, extra_logs: {} });

    // A BOS decoded before the prompt text (OpenRLHF keeps special tokens) is not part of the prompt or the response.
    const withBos = await post(`${url}get_reward`, { query: ['<s> 2+2=4 four', '<|begin_of_text|>Name a colour: blue'], prompts: ['2+2=', 'Name a colour: '], labels: ['four', ''] });
    assert.deepEqual(withBos.json.rewards, await direct([sample('2+2=', '4 four', { label: 'four' }), sample('Name a colour: ', 'blue', { label: '' })]));
    // Older OpenRLHF posts "query" alone: the whole query is the completion of an empty prompt, with no label.
    const queryOnly = await post(`${url}get_reward`, { query: ['2+2=4 four'] });
    assert.deepEqual(queryOnly.json.rewards, await direct([sample('', '2+2=4 four')]));
    // No samples, no call.
    assert.deepEqual((await post(`${url}get_reward`, { query: [], prompts: [], labels: [] })).json, { rewards: [], scores: [], extra_logs: {} });
  });
});

test("the trainer's HTTP client, both protocols, gets from the server what the reward itself gives", async () => {
  await withServer([], async ({ url }) => {
    const samples = [sample('Capital of France? ', 'Paris', { label: 'Paris' }), sample('Capital of Peru? ', 'Lima!', { label: 'Quito' }), sample('x', '', { other: 1 })];
    const expected = await direct(samples.map((s) => ({ ...s, meta: { ...s.meta } })));
    const options = { fetch, timeoutMs: 5000, retries: 0 };
    assert.deepEqual(await httpReward(url, { ...options, protocol: 'remax' })(samples), expected);
    // openrlhf sends meta.label, or "" for a sample without one (as OpenRLHF does): this reward gives it the same.
    assert.deepEqual(await httpReward(`${url}get_reward`, { ...options, protocol: 'openrlhf' })(samples), expected);
    // The wrong endpoint for the protocol is a 400 that says where to go, and fails at once (no retries).
    await assert.rejects(httpReward(url, { ...options, retries: 3, protocol: 'openrlhf' })(samples),
      /HTTP 400 Bad Request: \{"error":"this endpoint takes \{\\"samples\\": \[\.\.\.\]\}; an OpenRLHF request .* goes to POST \/get_reward"\}$/);
  });
});

test('a Python client using only the standard library, posting as OpenRLHF does, gets the rewards', async (t) => {
  const python = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  if (python.error || python.status !== 0) {
    t.skip('no python3 on PATH');
    return;
  }
  await withServer([], async ({ url }) => {
    const script = path.join(dir, 'client.py');
    // Like OpenRLHF's request_api_wrapper: POST JSON with a content-type, read the answer's "rewards".
    writeFileSync(script, `import json, sys, urllib.request
url = sys.argv[1]
data = {"query": ["Q: 1+1=2 two", "Q: say yes: no"], "prompts": ["Q: 1+1=", "Q: say yes: "], "labels": ["two", "yes"]}
request = urllib.request.Request(url, data=json.dumps(data).encode("utf-8"), headers={"Content-Type": "application/json"}, method="POST")
with urllib.request.urlopen(request, timeout=30) as response:
    answer = json.loads(response.read().decode("utf-8"))
print(json.dumps({"status": response.status, "rewards": answer["rewards"], "scores": answer["scores"], "extra_logs": answer["extra_logs"]}))
try:
    urllib.request.urlopen(urllib.request.Request(url, data=b'{"query": [1]}', headers={"Content-Type": "application/json"}), timeout=30)
except urllib.error.HTTPError as error:
    print(json.dumps({"status": error.code, "error": json.loads(error.read().decode("utf-8"))["error"]}))
`);
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('python3', [script, `${url}get_reward`]);
      let stdout = '', stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    assert.equal(run.code, 0, run.stderr);
    const [ok, bad] = run.stdout.trim().split('\n').map((line) => JSON.parse(line));
    const expected = await direct([sample('Q: 1+1=', '2 two', { label: 'two' }), sample('Q: say yes: ', 'no', { label: 'yes' })]);
    assert.deepEqual(ok, { status: 200, rewards: expected, scores: expected, extra_logs: {} });
    assert.deepEqual(bad, { status: 400, error: 'query[0] must be a string, got 1' });
  });
});

test('bad requests get a 4xx JSON error naming the field and index, and the server keeps answering', async () => {
  await withServer(['--max-request-bytes', '2000'], async ({ url, stderr }) => {
    const g = `${url}get_reward`;
    const cases: [string, unknown, number, RegExp][] = [
      [g, '{"query": ["a"', 400, /^the request body is not JSON: /],
      [g, '', 400, /^the request body is not JSON: /],
      [g, '[1, 2]', 400, /^the request body must be a JSON object, got \[1,2\]$/],
      [g, { prompts: ['a'] }, 400, /^"query" must be an array of strings, got undefined$/],
      [g, { query: 'abc' }, 400, /^"query" must be an array of strings, got "abc"$/],
      [g, { query: ['a', 'b', null] }, 400, /^query\[2\] must be a string, got null$/],
      [g, { query: ['ab', 'cd'], prompts: ['a', 7] }, 400, /^prompts\[1\] must be a string, got 7$/],
      [g, { query: ['ab', 'cd'], prompts: ['a'] }, 400, /^"prompts" has 1 item and "query" 2: give one per query$/],
      [g, { query: ['ab'], labels: ['x', 'y'] }, 400, /^"labels" has 2 items and "query" 1: give one per query$/],
      [g, { query: ['ab'], labels: 'x' }, 400, /^"labels" must be an array \(one label per query\), got "x"$/],
      [g, { query: ['Q: 1', 'R: 2'], prompts: ['Q: ', 'Q: '] }, 400, /^query\[1\] does not start with prompts\[1\] \(each query is its prompt followed by the response\): query "R: 2", prompt "Q: "$/],
      [g, { samples: [] }, 400, /^this endpoint takes OpenRLHF's .*; a remax request \(\{"samples": \[\.\.\.\]\}\) goes to POST \/$/],
      [url, { samples: {} }, 400, /^"samples" must be an array of \{"prompt", "completion", "meta"\}, got \{\}$/],
      [url, { samples: [{ prompt: 'p', completion: 'c' }, 'x'] }, 400, /^samples\[1\] must be an object/],
      [url, { samples: [{ prompt: 'p', completion: 3, meta: {} }] }, 400, /^samples\[0\]\.completion must be a string, got 3$/],
      [url, { samples: [{ prompt: 'p', completion: 'c', meta: [1] }] }, 400, /^samples\[0\]\.meta must be an object, got \[1\]$/],
      [url, `{"samples": [{"prompt": "p", "completion": "c", "meta": {"a": ${'['.repeat(100)}${']'.repeat(100)}}}]}`, 400, /nests objects and lists more than 64 levels deep/],
      [`${url}score`, {}, 404, /^nothing at "\/score": this server answers POST \/ \(remax\) and POST \/get_reward \(openrlhf\)$/],
      [`${url}%E0%A4%A`, {}, 400, /^the path "\/%E0%A4%A" is not a valid percent-encoded URL path$/],
      [g, { query: ['x'.repeat(3000)] }, 413, /^the request body is larger than the limit of 2000 bytes \(--max-request-bytes 2000\); send fewer samples per request$/],
    ];
    for (const [target, body, status, error] of cases) {
      const r = await post(target, body);
      assert.equal(r.status, status, `${target} ${JSON.stringify(body)?.slice(0, 80)}: ${JSON.stringify(r.json)}`);
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.match(r.json.error as string, error);
      await stillServes(url);
    }
    // GET is not how rewards are asked for.
    const get = await fetch(g);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.match((await get.json() as { error: string }).error, /^\/get_reward takes POST \(a JSON body\), not GET$/);
    // A body past the limit sent in chunks (no Content-Length) is cut off as it streams: 413 as well, and the rest of
    // it is read and dropped, so the connection ends normally.
    const chunked = await rawPost(g, ['{"query": ["', 'y'.repeat(1500), 'y'.repeat(1500), '"]}']);
    assert.equal(chunked.status, 413);
    assert.match(chunked.body, /larger than the limit of 2000 bytes/);
    assert.equal(chunked.error, undefined);
    // A body that keeps coming past twice the limit has its connection cut rather than read to its end.
    const endless = await rawPost(g, ['{"query": ["', ...Array.from({ length: 64 }, () => 'z'.repeat(1000)), '"]}']);
    assert.equal(endless.status, 413);
    assert.match(endless.error ?? '', /EPIPE|ECONNRESET|socket hang up|closed before the whole body was sent/);
    await stillServes(url);
    // Each error answer is one line on stderr.
    assert.match(stderr(), /remax serve-reward: POST \/get_reward: 400 query\[2\] must be a string, got null\n/);
  });
});

/**
 * POSTs `chunks` (chunked transfer encoding, each written separately) with node:http; resolves once the body is sent
 * (or the connection failed) and the answer read: its status and body, and the error the connection failed with.
 */
function rawPost(url: string, chunks: string[]): Promise<{ status?: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    let status: number | undefined, body = '', error: string | undefined;
    let sent = false, answered = false;
    const settle = () => { if ((sent && answered) || error !== undefined) resolve({ status, body, error }); };
    const request = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (response) => {
      status = response.statusCode;
      response.setEncoding('utf8');
      response.on('data', (d) => (body += d));
      response.on('end', () => { answered = true; settle(); });
    });
    request.on('error', (e) => { error ??= `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}`; settle(); });
    // After a whole answer a cut connection is no error to node:http: the body just stops being sent.
    request.on('close', () => { if (!sent) error ??= 'the connection closed before the whole body was sent'; settle(); });
    void (async () => {
      for (const chunk of chunks) {
        if (error !== undefined) return;
        request.write(chunk);
        await new Promise((r) => setTimeout(r, 2));
      }
      request.end(() => { sent = true; settle(); });
    })();
  });
}

test('a reward that throws or runs past --reward-timeout gets a 500 JSON error, and the server keeps answering', async () => {
  await withServer(['--reward-timeout', '1000'], async ({ url }) => {
    const threw = await post(`${url}get_reward`, { query: ['P: throw'], prompts: ['P: '], labels: [''] });
    assert.equal(threw.status, 500);
    assert.deepEqual(threw.json, { error: 'reward function threw: the reward was asked to throw' });
    await stillServes(url);
    const looped = await post(url, { samples: [{ prompt: 'P: ', completion: 'loop', meta: {} }] });
    assert.equal(looped.status, 500);
    assert.match(looped.json.error as string, /^timed out after 1000 ms; the reward module's worker thread was stopped/);
    await stillServes(url);
  });
});

test('clients that hang up (mid-body, mid-scoring) or speak no HTTP at all do not stop the server', async () => {
  await withServer([], async ({ url }) => {
    // Half a body, then the connection closed.
    await new Promise<void>((resolve) => {
      const request = httpRequest(`${url}get_reward`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '1000' } });
      request.on('error', () => resolve());
      request.write('{"query": ["abc', () => setTimeout(() => { request.destroy(); resolve(); }, 100));
    });
    await stillServes(url);
    // Gone while its reward runs: the reward module's call is stopped (its thread ended), and the next one works.
    await assert.rejects(fetch(`${url}get_reward`, { method: 'POST', body: '{"query": ["sleep"]}', signal: AbortSignal.timeout(300) }));
    await stillServes(url);
    // Not HTTP: Node answers 400 and closes that connection.
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(url).port), '127.0.0.1', () => socket.write('hello\x00 there\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => (text += d));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 400 Bad Request/);
    await stillServes(url);
  });
});

test('--max-concurrent 1 --max-queue 1: a second request waits its turn, a third gets 503 with Retry-After', async () => {
  await withServer(['--max-concurrent', '1', '--max-queue', '1'], async ({ url }) => {
    const slow = { query: ['sleep'] };
    const first = post(`${url}get_reward`, slow);
    await new Promise((r) => setTimeout(r, 300));
    const second = post(`${url}get_reward`, slow);
    await new Promise((r) => setTimeout(r, 300));
    const third = await post(`${url}get_reward`, slow);
    assert.equal(third.status, 503);
    assert.equal(third.headers.get('retry-after'), '1');
    assert.match(third.json.error as string, /^busy: 1 requests are being scored and 1 wait \(--max-concurrent, --max-queue\); try again$/);
    for (const r of await Promise.all([first, second])) assert.deepEqual(r.json.rewards, [5]);
  });
});

test('SIGTERM: the request being scored is answered, the one waiting gets 503, then the server exits 0 and takes no more', async () => {
  const served = await serveReward('--reward', REWARD, '--max-concurrent', '1');
  const scored = post(`${served.url}get_reward`, { query: ['sleep'] });
  await new Promise((r) => setTimeout(r, 300));
  const waiting = post(`${served.url}get_reward`, { query: ['ab'] });
  await new Promise((r) => setTimeout(r, 300));
  const stopped = served.stop();
  assert.deepEqual((await scored).json, { rewards: [5], scores: [5], extra_logs: {} });
  const refused = await waiting;
  assert.equal(refused.status, 503);
  assert.deepEqual(refused.json, { error: 'the reward server is stopping' });
  const { code, stdout } = await stopped;
  assert.equal(code, 0, served.stderr());
  assert.match(stdout, /remax reward server: stopped \(SIGTERM\)\n$/);
  await assert.rejects(fetch(`${served.url}get_reward`, { method: 'POST', body: '{"query": []}' }), /fetch failed/);
});

test('serve-reward flags: --reward is required, a bad number and a taken port are refused by name (exit 2)', async () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, 'serve-reward', ...args], { encoding: 'utf8' });
  const none = run();
  assert.equal(none.status, 2);
  assert.equal(none.stderr.trim(), 'remax serve-reward: error: --reward is required: a .ts/.js reward module or a built-in reward name (or --reward-model)');
  const bad = run('--reward', 'exact-match', '--max-concurrent', '0');
  assert.equal(bad.stderr.trim(), 'remax serve-reward: error: --max-concurrent must be an integer ≥ 1 and ≤ 4096, got "0"');
  assert.match(run('--reward', 'no-such-reward').stderr, /unknown reward "no-such-reward"; the built-in rewards are exact-match/);
  // A built-in reward by name, then a second server on its port.
  const served = await serveReward('--reward', 'exact-match');
  try {
    const r = await post(served.url, { samples: [{ prompt: '1+1=', completion: '2', meta: { answer: '2' } }, { prompt: '1+1=', completion: '3', meta: { answer: '2' } }] });
    assert.deepEqual(r.json, { rewards: [1, 0] });
    const port = new URL(served.url).port;
    const taken = run('--reward', 'exact-match', '--port', port);
    assert.equal(taken.status, 2);
    assert.equal(taken.stderr.trim(), `remax serve-reward: error: cannot listen on 127.0.0.1:${port} (EADDRINUSE): the port is taken; pick another with --port (0 = any free port)`);
  } finally {
    assert.equal((await served.stop()).code, 0);
  }
});

const remaxAsync = (...args: string[]) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
  const child = spawn(process.execPath, [CLI, ...args]);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.on('close', (code) => resolve({ code, stderr }));
});
const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const withoutTimes = (rows: Record<string, unknown>[]) => rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('time') && k !== 'tokens_per_second')));

test('train --reward-url …/get_reward --reward-protocol openrlhf (stopped and resumed) is the run --reward gives, bit for bit', async () => {
  const tokenizer = path.join(dir, 'tok.bin');
  writeFileSync(tokenizer, syntheticTokenizerBin());
  const model = path.join(dir, 'init.bin');
  const init = spawnSync(process.execPath, [CLI, 'init', '--out', model, '--dim', '32', '--hidden', '48', '--layers', '2', '--heads', '4', '--vocab', '259', '--seq', '32', '--seed', '2'], { encoding: 'utf8' });
  assert.equal(init.status, 0, init.stderr);
  const prompts = path.join(dir, 'prompts.jsonl');
  // Labels the sampled text may hold (single characters), so that the rewards vary with it.
  writeFileSync(prompts, Array.from({ length: 8 }, (_, i) => JSON.stringify({ prompt: `${i}+1=`, label: 'abcdefgh'[i] })).join('\n') + '\n');
  const common = ['train', '--model', model, '--tokenizer', tokenizer, '--prompts', prompts, '--max-new-tokens', '6', '--batch', '4',
    '--steps', '2', '--eval-every', '0', '--sample-every', '1', '--quiet', '--seed', '4'];
  const local = path.join(dir, 'local'), remote = path.join(dir, 'remote');
  const direct = await remaxAsync(...common, '--reward', REWARD, '--out', local);
  assert.equal(direct.code, 0, direct.stderr);

  assert.match((await remaxAsync(...common, '--reward-protocol', 'openrlhf', '--out', path.join(dir, 'x'))).stderr,
    /--reward-protocol openrlhf is the wire format of a reward server: give it with --reward-url/);
  await withServer([], async ({ url }) => {
    const first = await remaxAsync(...common, '--reward-url', `${url}get_reward`, '--reward-protocol', 'openrlhf', '--stop-at', '1', '--out', remote);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(JSON.parse(readFileSync(path.join(remote, 'config.json'), 'utf8'))['reward-protocol'], 'openrlhf');
    // The resume keeps the protocol (the remax format would get a 400 from /get_reward).
    const resumed = await remaxAsync('train', '--resume', remote, '--quiet');
    assert.equal(resumed.code, 0, resumed.stderr);
  });
  const [a, b] = [remote, local].map((run) => withoutTimes(lines(path.join(run, 'metrics.jsonl'))));
  assert.equal(a.length, 2);
  assert.deepEqual(a, b);
  assert.ok(lines(path.join(local, 'samples.jsonl')).some((row) => (row.reward as number) > 0), 'some rewards are not 0');
  assert.deepEqual(lines(path.join(remote, 'samples.jsonl')), lines(path.join(local, 'samples.jsonl')));
  assert.deepEqual(readFileSync(path.join(remote, 'model.bin')), readFileSync(path.join(local, 'model.bin')));
});

test('serve-reward --reward-model: an rm run scores the text with its own tokenizer (+ EOS), as the engine scores the ids; with --reward, the weighted sum', async () => {
  const task = path.resolve('assets/default-task');
  const pairs = Array.from({ length: 16 }, (_, i) => JSON.stringify({ prompt: `${i}+1=`, chosen: String(i + 1), rejected: String(i + 7) })).join('\n') + '\n';
  writeFileSync(path.join(dir, 'pairs.jsonl'), pairs);
  const rm = path.join(dir, 'rm');
  const trained = spawnSync(process.execPath, [CLI, 'rm', '--model', path.join(task, 'model.bin'), '--tokenizer', path.join(task, 'tokenizer.bin'),
    '--pairs', path.join(dir, 'pairs.jsonl'), '--steps', '3', '--batch', '4', '--out', rm], { encoding: 'utf8' });
  assert.equal(trained.status, 0, trained.stderr);
  const tokenizer = Tokenizer.fromBytes(new Uint8Array(readFileSync(path.join(task, 'tokenizer.bin'))));
  const engine = await RemaxEngine.create({ model: await loadModelFromPath(path.join(rm, 'model.bin'), '--model') });
  const samples = [sample('3+4=', '7'), sample('10+1=', '12 no'), sample('', 'hello')];
  // This process runs the portable SIMD build, the CLI the relaxed one where it can: equal to rounding.
  const expected = engine.scores(samples.map((s) => [...tokenizer.encodePrompt(s.prompt + s.completion), 2]));
  const near = (got: number[], want: number[]) => {
    assert.equal(got.length, want.length);
    got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) <= 1e-5 * Math.max(1, Math.abs(want[i]!)), `sample ${i}: ${g} vs ${want[i]}`));
  };
  assert.ok(new Set(expected).size === 3, 'the scores differ from sample to sample');

  const served = await serveReward('--reward-model', rm);
  try {
    assert.match(served.stderr(), /remax serve-reward: loaded .*model\.bin/);
    const remaxAnswer = (await post(served.url, { samples: samples.map(({ prompt, completion, meta }) => ({ prompt, completion, meta })) })).json.rewards as number[];
    near(remaxAnswer, expected);
    const openrlhf = await post(`${served.url}get_reward`, { query: samples.map((s) => s.prompt + s.completion), prompts: samples.map((s) => s.prompt) });
    assert.deepEqual(openrlhf.json.rewards, remaxAnswer);
  } finally {
    assert.equal((await served.stop()).code, 0);
  }
  const both = await serveReward('--reward', REWARD, '--reward-model', rm, '--reward-weights', '0.5,2');
  try {
    const rule = await direct(samples);
    const answer = await post(both.url, { samples: samples.map(({ prompt, completion, meta }) => ({ prompt, completion, meta })) });
    near(answer.json.rewards as number[], rule.map((r, i) => 0.5 * r + 2 * expected[i]!));
  } finally {
    assert.equal((await both.stop()).code, 0);
  }
  // A reward model without its tokenizer cannot read text: refused at start, naming the file.
  const bare = spawnSync(process.execPath, [CLI, 'serve-reward', '--port', '0', '--reward-model', path.join(rm, 'model.bin')], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(bare.status, 2, bare.stderr);
  assert.match(bare.stderr, /--reward-model .*model\.bin carries no tokenizer, so it cannot score text/);
});
