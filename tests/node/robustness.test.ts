// The smaller defects of the reliability audit: a file too long called "truncated", `plot --out DIR` giving a raw
// EISDIR (and `init --out DIR` after initialising the whole model), invalid UTF-8 in prompts replaced silently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RemaxInputError } from '../../src/core/errors';
import { parseCheckpoint, randomInitWeights, serializeCheckpoint, serializeCheckpointV1 } from '../../src/core/formats/llama2c';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, type ModelConfig } from '../../src/core/config';
import { invalidUtf8Lines, loadPrompts } from '../../src/core/rl/prompts';
import { syntheticTokenizer } from './fixtures';

const CLI = process.env.REMAX_CLI ?? path.resolve('dist/cli.js');
const remax = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const scratch = () => mkdtempSync(path.join(tmpdir(), 'remax-robust-'));
const small: ModelConfig = { dim: 16, hiddenDim: 24, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 40, seqLen: 16,
  sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA };

const inputError = (fn: () => unknown, pattern: RegExp, not?: RegExp) => assert.throws(fn, (e: unknown) => {
  assert.ok(e instanceof RemaxInputError, String(e));
  assert.match(e.message, pattern);
  if (not) assert.doesNotMatch(e.message, not);
  return true;
});

test('a llama2.c checkpoint longer than its header says is "N bytes more", never "truncated"; a shorter one is truncated', () => {
  const weights = randomInitWeights(small, 1);
  for (const [name, bytes] of [['v0', serializeCheckpoint(small, weights)], ['v1', serializeCheckpointV1(small, weights)]] as const) {
    const longer = new Uint8Array(bytes.length + 12);
    longer.set(bytes);
    inputError(() => parseCheckpoint(longer, `${name}.bin`),
      new RegExp(`^${name}\\.bin has 12 bytes more than a llama2\\.c ${name === 'v0' ? 'legacy \\(v0\\)' : 'version 1'} checkpoint of this config \\(dim=16, .*: ${bytes.length} bytes\\); it is not a llama2\\.c checkpoint of this model or it is corrupt$`),
      /truncated/);
    inputError(() => parseCheckpoint(bytes.subarray(0, bytes.length - 8), `${name}.bin`), /has \d+ bytes, but the file has \d+ \(8 missing\); the file is truncated/);
    assert.doesNotThrow(() => parseCheckpoint(bytes, `${name}.bin`));
  }
  // A header that describes a smaller model than the file (n_layers 2 → 1): too long as well.
  const bytes = serializeCheckpoint(small, weights);
  const fewer = bytes.slice();
  new DataView(fewer.buffer).setInt32(8, 1, true);
  inputError(() => parseCheckpoint(fewer, 'layers.bin'), /^layers\.bin has \d+ bytes more than a llama2\.c legacy \(v0\) checkpoint of this config \(dim=16, hidden_dim=24, n_layers=1/, /truncated/);
});

test('remax generate on a too-long checkpoint: "bytes more", exit 2', () => {
  const dir = scratch();
  try {
    const file = path.join(dir, 'long.bin');
    const bytes = serializeCheckpoint(small, randomInitWeights(small, 1));
    writeFileSync(file, Buffer.concat([bytes, Buffer.alloc(100)]));
    const r = remax('generate', '--model', file, '--prompt-ids', '1');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /long\.bin has 100 bytes more than a llama2\.c legacy \(v0\) checkpoint of this config/);
    assert.doesNotMatch(r.stderr, /truncated/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('remax plot --out DIR writes DIR/report.html (was a raw EISDIR); remax init --out DIR is refused before initialising', () => {
  const dir = scratch();
  try {
    const metrics = path.join(dir, 'metrics.jsonl');
    writeFileSync(metrics, [1, 2, 3].map((step) => JSON.stringify({ step, reward_mean: step / 10, kl: 0.01, loss: 0.5 })).join('\n') + '\n');
    const reports = path.join(dir, 'reports');
    mkdirSync(reports);
    const r = remax('plot', metrics, '--out', reports);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /wrote .*reports[/\\]report\.html/);
    assert.match(readFileSync(path.join(reports, 'report.html'), 'utf8'), /<svg /);
    // A trailing separator means a folder too; a folder whose report.html is itself a folder is a clear error.
    const other = path.join(dir, 'other');
    mkdirSync(other);
    assert.equal(remax('plot', metrics, '--out', `${other}/`).code, 0);
    assert.ok(existsSync(path.join(other, 'report.html')));
    mkdirSync(path.join(dir, 'nested', 'report.html'), { recursive: true });
    const nested = remax('plot', metrics, '--out', path.join(dir, 'nested'));
    assert.equal(nested.code, 2, nested.stderr);
    assert.match(nested.stderr, /--out .*nested is a folder and .*report\.html in it is a folder too/);
    assert.doesNotMatch(nested.stderr, /EISDIR/);

    const init = remax('init', '--out', reports, '--dim', '16', '--hidden', '24', '--layers', '2', '--heads', '4', '--vocab', '40', '--seq', '16');
    assert.equal(init.code, 2, init.stderr);
    assert.match(init.stderr, /--out .*reports is a folder: give the path of the checkpoint file to write, e\.g\. .*reports[/\\]model\.bin/);
    assert.doesNotMatch(init.stderr, /EISDIR/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('prompts with invalid UTF-8: one warning naming the file and the lines; valid files say nothing', () => {
  const tokenizer = syntheticTokenizer();
  const line = (text: string) => Buffer.from(JSON.stringify({ prompt: text }) + '\n');
  const bad = Buffer.from('{"prompt": "caf\xe9"}\n', 'latin1'); // Latin-1 é: a lone 0xE9
  const bytes = new Uint8Array(Buffer.concat([line('one'), bad, line('three'), Buffer.from('\n'), bad, line('é ok')]));
  assert.deepEqual(invalidUtf8Lines(bytes), [2, 5]);
  assert.deepEqual(invalidUtf8Lines(new Uint8Array(Buffer.concat([line('a'), line('é')]))), []);
  const warnings: string[] = [];
  const options = { seqLen: 64, maxNewTokens: 8, onWarning: (m: string) => warnings.push(m) };
  const records = loadPrompts(bytes, 'p.jsonl', tokenizer, options);
  assert.equal(records.length, 5);
  assert.equal(records[1]!.prompt, 'caf\uFFFD', 'read as before: U+FFFD');
  assert.deepEqual(warnings, ['warning: p.jsonl is not valid UTF-8 on lines 2, 5: each invalid byte was read as U+FFFD (the replacement ' +
    'character) and the prompts use it; save the file as UTF-8 to train on the text it meant']);
  loadPrompts(new Uint8Array(Buffer.concat([line('x'), bad])), 'q.jsonl', tokenizer, options);
  assert.match(warnings[1]!, /^warning: q\.jsonl is not valid UTF-8 on line 2: /);
  loadPrompts(new Uint8Array(line('fine')), 'r.jsonl', tokenizer, options);
  assert.equal(warnings.length, 2, 'a valid file: no warning');
  // Many bad lines: the first five and the count.
  const many = new Uint8Array(Buffer.concat(Array.from({ length: 8 }, () => bad)));
  loadPrompts(many, 'm.jsonl', tokenizer, options);
  assert.match(warnings[2]!, /on lines 1, 2, 3, 4, 5, … \(8 lines\): /);
});
