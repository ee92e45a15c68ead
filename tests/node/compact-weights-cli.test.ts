// --weights-dtype (generate, logprobs) and --reference-dtype (train) as a user runs them (dist/cli.js in a child process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { syntheticTokenizerBin } from './fixtures';
import { readSharedJson, sharedPath, skipUnlessShared } from './shared-data';

const CLI = path.resolve('dist/cli.js');
const remax = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const ok = (r: ReturnType<typeof remax>) => {
  assert.equal(r.code, 0, r.stderr);
  return r;
};
function assertBadInput(r: ReturnType<typeof remax>, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit code ${r.code}: ${r.stderr}`);
  assert.match(r.stderr.trim(), pattern);
}

const skip = skipUnlessShared('models/hf/qwen2-tiny', 'models/hf/stories260K', 'reference/hf.json');

test('generate --weights-dtype: auto keeps BF16 and f32 widens, the same greedy ids; bf16 rounds an F32 model; bad values refused', { skip }, () => {
  const qwen = sharedPath('models/hf/qwen2-tiny');
  const c = readSharedJson('reference/hf.json').models['hf/qwen2-tiny'].greedy[0]!;
  const run = (model: string, dtype: string, json: boolean) => remax('generate', '--model', model, '--prompt-ids', model === qwen ? c.prompt_ids.join(',') : '1',
    '--temperature', '0', '--max-new-tokens', '32', '--stop-ids', 'none', '--weights-dtype', dtype, ...(json ? ['--json'] : []));
  for (const dtype of ['auto', 'f32']) assert.deepEqual(JSON.parse(ok(run(qwen, dtype, true)).stdout).ids, c.expected_ids, dtype);
  assert.match(ok(run(qwen, 'auto', false)).stderr, /build, BF16 \+ F32 weights, 18\.\d MiB/); // (the norms stay float32)
  assert.match(ok(run(qwen, 'f32', false)).stderr, /build, F32 weights, 3\d\.\d MiB/);
  assert.match(ok(run(sharedPath('models/hf/stories260K'), 'bf16', false)).stderr, /BF16 \+ F32 weights/);
  assertBadInput(run(qwen, 'fp8', false), /--weights-dtype is "fp8"; it must be one of auto, f32, bf16/);
  assertBadInput(remax('logprobs', '--model', qwen, '--ids', '1,2,3', '--weights-dtype', 'F32'), /--weights-dtype is "F32"; it must be one of auto, f32, bf16/);
  // logprobs: the same values kept as stored and widened.
  const lp = (dtype: string) => JSON.parse(ok(remax('logprobs', '--model', qwen, '--ids', c.prompt_ids.concat(c.expected_ids).join(','), '--json', '--weights-dtype', dtype)).stdout).logprobs;
  assert.deepEqual(lp('auto'), lp('f32'));
});

test('train --reference-dtype: saved in the run config; bf16 rounds the reference of an F32 model, auto and f32 do not; bad values refused', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-refdtype-'));
  try {
    const tokenizer = path.join(dir, 'tok.bin');
    writeFileSync(tokenizer, syntheticTokenizerBin());
    const model = path.join(dir, 'init.bin');
    ok(remax('init', '--out', model, '--dim', '32', '--hidden', '48', '--layers', '2', '--heads', '4', '--vocab', '259', '--seq', '32', '--seed', '2'));
    const prompts = path.join(dir, 'prompts.jsonl');
    writeFileSync(prompts, Array.from({ length: 8 }, (_, i) => JSON.stringify({ prompt: `${i}+1=`, answer: String(i + 1) })).join('\n') + '\n');
    const train = (dtype: string) => remax('train', '--model', model, '--tokenizer', tokenizer, '--prompts', prompts, '--max-new-tokens', '6',
      '--batch', '4', '--eval-every', '0', '--quiet', '--steps', '1', '--kl-coef', '0.1', '--reference-dtype', dtype, '--out', path.join(dir, dtype));
    const kl = (dtype: string) => JSON.parse(readFileSync(path.join(dir, dtype, 'metrics.jsonl'), 'utf8').trim().split('\n')[0]!).kl as number;
    ok(train('f32'));
    ok(train('auto'));
    ok(train('bf16'));
    // The policy's sampling log-probabilities and the reference's teacher-forced ones round differently: a KL near 0.
    assert.ok(Math.abs(kl('f32')) < 1e-5, `KL to the starting policy: ${kl('f32')}`);
    assert.equal(kl('auto'), kl('f32'), 'auto keeps an F32 model float32');
    assert.notEqual(kl('bf16'), kl('f32'), 'a bf16-rounded reference is another reference');
    assert.equal(JSON.parse(readFileSync(path.join(dir, 'bf16', 'config.json'), 'utf8'))['reference-dtype'], 'bf16');
    assertBadInput(train('fp16'), /--reference-dtype must be one of auto, bf16, f16, f32, got "fp16"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
