// Models and plans too large for the engine: `remax init --dim 8192 --hidden 28672 --layers 64 --heads 64 --vocab
// 128000` grew past 5.7 GB until killed (or failed with "internal error: RangeError"). Now init checks what the model
// needs before allocating anything, and the engine refuses a memory plan past wasm32's 4 GiB with a RemaxInputError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RemaxEngine } from '../../src/core/engine';
import { RemaxInputError } from '../../src/core/errors';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, type ModelConfig, type ModelWeights } from '../../src/core/config';
import { checkModelSize } from '../../src/node/commands/init';

const CLI = process.env.REMAX_CLI ?? path.resolve('dist/cli.js');
const config = (over: Partial<ModelConfig>): ModelConfig => ({
  dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512,
  sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA, ...over,
});

test('remax init: a model whose weights exceed 4 GiB is refused at once, naming the flags and the sizes (exit 2, no allocation)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-size-'));
  try {
    const out = path.join(dir, 'big.bin');
    const started = performance.now();
    const r = spawnSync(process.execPath, [CLI, 'init', '--out', out, '--dim', '8192', '--hidden', '28672', '--layers', '64', '--heads', '64',
      '--vocab', '128000', '--seq', '2048'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.ok(performance.now() - started < 20_000, 'refused before initialising');
    assert.match(r.stderr, /^remax init: error: the model of --dim 8192 --hidden 28672 --layers 64 --heads 64 --vocab 128000 --seq 2048 has 63\.3 billion parameters: 236 GiB of float32 weights, a 236 GiB llama2\.c file; its weights alone exceed the 4 GiB of memory a wasm32 engine can address, so no engine can ever load it: lower --dim, --hidden, --layers or --vocab/);
    assert.doesNotMatch(r.stderr, /internal error|RangeError/);
    assert.equal(existsSync(out), false);
    // A small model with a context whose KV cache alone (one sequence) is past 4 GiB.
    const kv = spawnSync(process.execPath, [CLI, 'init', '--out', out, '--dim', '4096', '--hidden', '64', '--layers', '8', '--heads', '32',
      '--vocab', '64', '--seq', '16000000'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(kv.status, 2, kv.stderr);
    assert.match(kv.stderr, /with the KV cache of one sequence of its context \(--seq 16000000\) an engine needs [\d.]+ GiB, over the 4 GiB .*lower --seq/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('checkModelSize: a model that can generate but not train gets a note; a small one passes silently', () => {
  const notes: string[] = [];
  // ~300M parameters: 1.1 GiB of weights, fits for generation, 4× does not.
  checkModelSize(config({ dim: 1024, hiddenDim: 4096, nLayers: 22, nHeads: 16, nKvHeads: 16, vocabSize: 32000, seqLen: 1024 }),
    { dim: '1024', hidden: '4096', layers: '22', heads: '16', vocab: '32000', seq: '1024' }, (line) => notes.push(line));
  assert.equal(notes.length, 1);
  assert.match(notes[0]!, /^note: the model of --dim 1024 .* remax train and sft need over 4 × the weights .*this model can generate but cannot be trained$/);
  checkModelSize(config({}), {}, (line) => notes.push(line));
  assert.equal(notes.length, 1);
});

test('the engine: a model or a workspace past 4 GiB is a RemaxInputError that says what to change, not a RangeError', async () => {
  const huge = config({ dim: 8192, hiddenDim: 28672, nLayers: 64, nHeads: 64, nKvHeads: 64, vocabSize: 128000, seqLen: 2048 });
  await assert.rejects(RemaxEngine.create({ model: { config: huge, weights: {} as ModelWeights, format: 'hf' }, modelSource: 'big-folder' }),
    (e: unknown) => e instanceof RemaxInputError && /^big-folder: the model's weights need [\d.]+ GiB of engine memory, over the 4 GiB a wasm32 engine can address/.test(e.message));
  // A small model, and a batch whose KV caches need more than 4 GiB.
  const small = config({ seqLen: 2048 });
  await assert.rejects(RemaxEngine.create({ model: { config: small, weights: randomInitWeights(small, 1), format: 'llama2c-v0' }, maxBatch: 20_000 }),
    (e: unknown) => e instanceof RemaxInputError && /the engine needs [\d.]+ GiB of memory, over the 4 GiB .*the workspace for 20000 sequence\(s\) of up to 2048 tokens .*use a smaller batch/.test(e.message));
});
