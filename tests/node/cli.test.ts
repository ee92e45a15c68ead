// The remax CLI as a user runs it: the built dist/cli.js in a child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readSharedJson, sharedPath, skipUnlessShared } from './shared-data';

const CLI = path.resolve('dist/cli.js');
const remax = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const AIDREAMS = sharedPath('models/aidreams260K.bin');
const AIDREAMS_TOK = sharedPath('models/aidreams260K.tok512.bin');
const STORIES = sharedPath('models/stories260K.bin');
const skipShared = skipUnlessShared('models/aidreams260K.bin', 'models/aidreams260K.tok512.bin', 'models/stories260K.bin', 'reference/greedy.json');

const scratch = () => mkdtempSync(path.join(tmpdir(), 'remax-cli-'));

test('generate: aidreams260K with its tokenizer prints the reference text for every case', { skip: skipShared }, () => {
  const cases = readSharedJson('reference/greedy.json').models['aidreams260K.bin'].cases;
  for (const c of cases) {
    const r = remax('generate', '--model', AIDREAMS, '--tokenizer', AIDREAMS_TOK, '--prompt', c.prompt_text,
      '--temperature', '0', '--max-new-tokens', '64', '--json');
    assert.equal(r.code, 0, r.stderr);
    const row = JSON.parse(r.stdout.trim());
    assert.deepEqual(row.prompt_ids, c.prompt_ids);
    assert.deepEqual(row.ids, c.expected_ids);
    assert.equal(row.text, c.expected_text);
    assert.ok(row.tokens_per_second > 0);
  }
});

test('generate --batch --json: one row per sequence, the same tokens_per_second on every row', { skip: skipShared }, () => {
  const r = remax('generate', '--model', STORIES, '--prompt-ids', '1,429,479', '--batch', '3', '--seed', '5',
    '--max-new-tokens', '20', '--json');
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(rows.length, 3);
  for (const row of rows) {
    assert.deepEqual(row.prompt_ids, [1, 429, 479]);
    assert.ok(row.ids.length >= 1 && row.ids.length <= 20);
    assert.equal(row.text, null, 'no tokenizer, no text');
    assert.equal(row.tokens_per_second, rows[0].tokens_per_second);
  }
  const again = remax('generate', '--model', STORIES, '--prompt-ids', '1,429,479', '--batch', '3', '--seed', '5', '--max-new-tokens', '20', '--json');
  assert.deepEqual(again.stdout.trim().split('\n').map((l) => JSON.parse(l).ids), rows.map((row) => row.ids), 'seeded runs replay');
});

test('generate --threads: a batch shared by helper threads gives the tokens of one thread', { skip: skipShared }, () => {
  const ids = (...extra: string[]) => {
    const r = remax('generate', '--model', STORIES, '--prompt-ids', '1,429', '--batch', '7', '--seed', '11', '--max-new-tokens', '40', '--json', ...extra);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split('\n').map((l) => JSON.parse(l).ids as number[]);
  };
  const one = ids();
  assert.equal(one.length, 7);
  assert.deepEqual(ids('--threads', '2'), one);
  assert.deepEqual(ids('--threads', '3'), one);
});

test('logprobs --json matches the reference', { skip: skipUnlessShared('models/stories260K.bin', 'reference/logprobs.json') }, () => {
  const seq = readSharedJson('reference/logprobs.json').models['stories260K.bin'].sequences[0];
  const r = remax('logprobs', '--model', STORIES, '--ids', seq.ids.join(','), '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.logprobs.length, seq.ids.length - 1);
  out.logprobs.forEach((lp: number, i: number) => assert.ok(Math.abs(lp - seq.logprobs[i]) <= 2e-4));
});

test('init writes a model that generate and logprobs load', () => {
  const dir = scratch();
  try {
    const model = path.join(dir, 'tiny.bin');
    const r = remax('init', '--out', model, '--dim', '32', '--hidden', '64', '--layers', '2', '--heads', '4', '--kv-heads', '2',
      '--vocab', '50', '--seq', '32', '--seed', '3');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(model).length, 4 * (7 + 50 * 32 + 2 * 32 + 2 * 32 + 2 * (32 * 32 * 2 + 16 * 32 * 2 + 64 * 32 * 3) + 32 + 32 * 8));
    const g = remax('generate', '--model', model, '--prompt-ids', '1,2,3', '--max-new-tokens', '5', '--eos', 'none', '--json');
    assert.equal(g.code, 0, g.stderr);
    assert.equal(JSON.parse(g.stdout).ids.length, 5);
    const same = remax('init', '--out', path.join(dir, 'again.bin'), '--dim', '32', '--hidden', '64', '--layers', '2', '--heads', '4',
      '--kv-heads', '2', '--vocab', '50', '--seq', '32', '--seed', '3');
    assert.equal(same.code, 0);
    assert.deepEqual(readFileSync(path.join(dir, 'again.bin')), readFileSync(model), 'same seed, same bytes');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Bad input: exit code 2, one clear line on stderr that contains `pattern`, nothing on stdout. */
function assertBadInput(r: ReturnType<typeof remax>, pattern: RegExp) {
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0]!, pattern);
}

test('bad input gets one clear line and exit code 2', { skip: skipShared }, () => {
  const dir = scratch();
  try {
    const truncated = path.join(dir, 'truncated.bin');
    writeFileSync(truncated, readFileSync(STORIES).subarray(0, 500_000));
    assertBadInput(remax('generate', '--model', truncated, '--prompt-ids', '1'), /truncated\.bin.*truncated/);
    assertBadInput(remax('generate', '--model', path.join(dir, 'missing.bin'), '--prompt-ids', '1'), /--model .*missing\.bin: no such file/);
    const wrongTokenizer = path.join(dir, 'tok.bin');
    const tok = readFileSync(AIDREAMS_TOK);
    writeFileSync(wrongTokenizer, tok.subarray(0, tok.length - 20));
    assertBadInput(remax('generate', '--model', STORIES, '--tokenizer', wrongTokenizer, '--prompt', 'hi'), /tok\.bin/);
    const small = path.join(dir, 'vocab50.bin');
    assert.equal(remax('init', '--out', small, '--dim', '16', '--hidden', '32', '--layers', '1', '--heads', '2', '--vocab', '50', '--seq', '16').code, 0);
    assertBadInput(remax('generate', '--model', small, '--tokenizer', AIDREAMS_TOK, '--prompt', 'hi'), /aidreams260K\.tok512\.bin.*512.*vocab50\.bin.*50|vocab50\.bin.*50.*aidreams260K\.tok512\.bin.*512/);
    assertBadInput(remax('generate', '--model', AIDREAMS, '--prompt-ids', Array(128).fill(1).join(',')), /128 tokens.*seq_len\) is 128/);
    assertBadInput(remax('generate', '--model', AIDREAMS, '--prompt-ids', '1', '--temperature', 'hot'), /--temperature must be a number.*"hot"/);
    assertBadInput(remax('generate', '--model', AIDREAMS, '--prompt-ids', '1', '--top-p', '1.5'), /--top-p/);
    assertBadInput(remax('generate', '--model', AIDREAMS, '--prompt-ids', '1,x'), /--prompt-ids.*"x"/);
    assertBadInput(remax('generate', '--model', AIDREAMS, '--prompt', 'hi'), /--prompt needs a tokenizer: .*aidreams260K\.bin carries none, so give --tokenizer/);
    assertBadInput(remax('generate', '--model', AIDREAMS, '--prompt-ids', '1', '--frobnicate', '3'), /--frobnicate/);
    assertBadInput(remax('generate', '--prompt-ids', '1'), /--model is required/);
    assertBadInput(remax('logprobs', '--model', AIDREAMS, '--ids', '1'), /at least two/);
    assertBadInput(remax('frobnicate'), /unknown command "frobnicate"/);
    const out = path.join(dir, 'bad.bin');
    assertBadInput(remax('init', '--out', out, '--dim', '30', '--hidden', '64', '--layers', '2', '--heads', '4', '--vocab', '50', '--seq', '32'), /dim/);
    assertBadInput(remax('init', '--out', out, '--dim', '32', '--hidden=-1', '--layers', '2', '--heads', '4', '--vocab', '50', '--seq', '32'), /--hidden/);
    assert.equal(existsSync(out), false, 'nothing written');
    assertBadInput(remax('init', '--out', path.join(dir, 'no', 'such', 'dir.bin'), '--dim', '32', '--hidden', '64', '--layers', '2', '--heads', '4', '--vocab', '50', '--seq', '32'), /its folder .*such does not exist/); // checked before the weights are drawn
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('serve: a bad --port and a port already taken get one clear line and exit code 2', async () => {
  assertBadInput(remax('serve', '--port', 'http'), /--port must be an integer/);
  assertBadInput(remax('serve', '--port', '70000'), /--port/);
  const { createServer } = await import('node:net');
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
  try {
    const port = (taken.address() as { port: number }).port;
    // spawnSync would block this process's event loop, which owns the taken port: run the CLI asynchronously.
    const { execFile } = await import('node:child_process');
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, 'serve', '--port', String(port)], { encoding: 'utf8', timeout: 30_000 }, (error, _stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr }));
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}.*EADDRINUSE.*--port`));
  } finally {
    taken.close();
  }
});
