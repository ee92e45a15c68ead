// remax train/sft --dry-run and --max-memory as a user runs them (dist/cli.js in a child process): the plan from a
// Hugging Face config.json alone (bench/configs, no weights), and runs that cannot fit refused in one line, before
// anything is allocated, naming the settings that would make them fit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const CLI = process.env.REMAX_CLI ?? path.resolve('dist/cli.js');
const QWEN = path.resolve('bench/configs/qwen2.5-0.5b.json'), SMOL = path.resolve('bench/configs/smollm2-135m.json');
const remax = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });

test('train --dry-run: one line per engine and part, from config.json alone; exit 0 when it fits', () => {
  const r = remax('train', '--model', SMOL, '--context', '1024', '--lora-rank', '16', '--batch', '4', '--activation-checkpointing', '--dry-run');
  assert.equal(r.status, 0, r.stderr + r.stdout);
  for (const part of ['weights f32', 'LoRA adapters', 'gradients', 'Adam m and v', 'KV cache \\(8 × 1024 tokens\\)', 'logits \\(84 rows\\)',
    'training logits chunk', 'training activations \\(1024 tokens, checkpointed\\)']) {
    assert.match(r.stdout, new RegExp(`\\n  ${part}[^\\n]* +[\\d.]+ (MiB|GiB)\\n`), part);
  }
  assert.match(r.stdout, /^policy: [\d.]+ (MiB|GiB)\n/);
  assert.doesNotMatch(r.stdout, /^reference/m, 'a LoRA run\'s KL reference is the policy engine itself');
  assert.match(r.stdout, /\ntotal: [\d.]+ (MiB|GiB) in 1 engine\(s\)/);
  assert.match(r.stdout, /--dry-run: fits; nothing allocated, nothing trained/);
  // Full fine-tuning with a KL penalty: a reference engine of its own, bf16 as the config's torch_dtype says.
  const full = remax('train', '--model', SMOL, '--context', '512', '--batch', '2', '--threads', '2', '--dry-run');
  assert.match(full.stdout, /\nreference: [\d.]+ MiB\n {2}weights bf16 /);
  assert.match(full.stdout, /\npolicy \(helper thread 1\): /);
  assert.match(full.stdout, /\nreference \(helper thread 1\): /);
  assert.match(full.stdout, /in 4 engine\(s\)/);
  // PPO: each helper thread hosts a critic beside its policy.
  const ppo = remax('train', '--model', SMOL, '--context', '256', '--batch', '2', '--threads', '2', '--estimator', 'ppo', '--kl-coef', '0', '--dry-run');
  assert.equal(ppo.status, 0, ppo.stderr + ppo.stdout);
  assert.match(ppo.stdout, /\ncritic: [\d.]+ (MiB|GiB)\n/);
  assert.match(ppo.stdout, /\ncritic \(helper thread 1\): [\d.]+ (MiB|GiB)\n/);
  assert.match(ppo.stdout, /in 4 engine\(s\)/);
});

test('train: full fine-tuning of a Qwen2.5-0.5B shape is refused in one line naming what fits (dry-run exits 2 too)', () => {
  const r = remax('train', '--model', QWEN, '--context', '1024', '--dry-run');
  assert.equal(r.status, 2);
  assert.match(r.stdout, /^policy: [\d.]+ GiB {2}OVER the 4 GiB of one instance$/m);
  const line = r.stdout.trim().split('\n').at(-1)!;
  assert.match(line, /^refused: its policy engine needs [\d.]+ GiB, over the 4 GiB of one WebAssembly instance \(see --dry-run\); no one setting makes it fit, together they do: --activation-checkpointing --lora-rank 16/);
  // What it names does fit.
  const fixed = remax('train', '--model', QWEN, '--context', '1024', '--dry-run', ...line.replace(/.*together they do: /, '').split(' '));
  assert.equal(fixed.status, 0, fixed.stdout);
  // One setting alone: the smaller model fits with checkpointing, or with half the batch.
  const smol = remax('train', '--model', SMOL, '--context', '1024', '--lora-rank', '16', '--threads', '2', '--dry-run');
  assert.match(smol.stdout, /\nrefused: its policy engine needs [\d.]+ GiB, .*; it would fit with --activation-checkpointing, or --batch 8\n/);
});

test('sft: refused before allocating (no weights exist), in one line; --max-memory caps the total', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-dry-'));
  try {
    const data = path.join(dir, 'data.txt'), out = path.join(dir, 'out');
    writeFileSync(data, 'hello world\n');
    const r = remax('sft', '--model', QWEN, '--context', '1024', '--data', data, '--out', out);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^remax sft: error: its policy engine needs [\d.]+ GiB, over the 4 GiB of one WebAssembly instance \(see --dry-run\); .*--activation-checkpointing --lora-rank 16\n$/);
    assert.equal(existsSync(out), false);
    const capped = remax('sft', '--model', SMOL, '--context', '1024', '--data', data, '--out', out, '--lora-rank', '8', '--max-memory', '1500MiB');
    assert.equal(capped.status, 2, capped.stderr);
    assert.match(capped.stderr, /^remax sft: error: its 1 engine\(s\) need [\d.]+ GiB, over --max-memory 1\.46 GiB \(see --dry-run\); it would fit with --activation-checkpointing\n$/);
    const roomy = remax('sft', '--model', SMOL, '--context', '1024', '--lora-rank', '8', '--max-memory', '4GiB', '--dry-run');
    assert.equal(roomy.status, 0, roomy.stdout);
    assert.match(roomy.stdout, /\(--max-memory 4\.00 GiB\)/);
    const bad = remax('sft', '--model', SMOL, '--max-memory', 'lots', '--dry-run');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--max-memory must be a size such as 3GiB, 2500MiB or 800M, got "lots"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('train with --max-memory: the real run checks its plan (with its prompts) before any engine exists', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-dry-'));
  try {
    const r = remax('train', '--max-memory', '1MiB', '--out', path.join(dir, 'run'), '--steps', '1');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^remax train: error: its 2 engine\(s\) need [\d.]+ MiB, over --max-memory 1\.0 MiB \(see --dry-run\); not even .* together make it fit/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--weights-dtype: a LoRA run whose float32 base does not fit is told that f16 or bf16 fits, and fits with it; refused without LoRA', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-dry-'));
  try {
    // TinyLlama-1.1B's shape stored as float32 (a GGUF of types without a kernel of their own is widened so too).
    const config = JSON.parse(readFileSync(path.resolve('bench/configs/tinyllama-1.1b.json'), 'utf8')) as Record<string, unknown>;
    const f32 = path.join(dir, 'tinyllama-f32.json');
    writeFileSync(f32, JSON.stringify({ ...config, torch_dtype: 'float32' }));
    const args = ['train', '--model', f32, '--context', '256', '--lora-rank', '8', '--batch', '2', '--max-new-tokens', '48', '--activation-checkpointing', '--dry-run'];
    const r = remax(...args);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /\n {2}weights f32 +4\.\d\d GiB\n/);
    assert.match(r.stdout, /\nrefused: its policy engine needs [\d.]+ GiB, over the 4 GiB of one WebAssembly instance \(see --dry-run\); it would fit with --weights-dtype f16, or --weights-dtype bf16\n/);
    for (const dtype of ['f16', 'bf16']) {
      const fits = remax(...args, '--weights-dtype', dtype);
      assert.equal(fits.status, 0, fits.stdout + fits.stderr);
      assert.match(fits.stdout, new RegExp(`\\n {2}weights ${dtype} +2\\.\\d\\d GiB\\n`));
    }
    // Without LoRA the whole model trains in float32: another --weights-dtype is refused, in train and sft.
    for (const command of ['train', 'sft']) {
      const refused = remax(command, '--model', SMOL, '--weights-dtype', 'f16', '--dry-run');
      assert.equal(refused.status, 2, refused.stdout);
      assert.match(refused.stderr, /--weights-dtype f16 sets how a LoRA run keeps its frozen base model, but this run has no LoRA: the whole model trains, in float32\. Add --lora-rank 8/);
      assert.equal(remax(command, '--model', SMOL, '--context', '256', '--batch', '2', '--weights-dtype', 'f32', '--dry-run').status, 0, `${command} --weights-dtype f32 without LoRA`);
      const bad = remax(command, '--model', SMOL, '--lora-rank', '8', '--weights-dtype', 'fp8', '--dry-run');
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /--weights-dtype (is "fp8"; it must be one of auto, f32, bf16, f16|must be one of auto, f32, bf16, f16, q8_0, q4_k, got "fp8")/);
    }
    const sft = remax('sft', '--model', f32, '--context', '256', '--lora-rank', '8', '--batch', '2', '--activation-checkpointing', '--weights-dtype', 'f16', '--dry-run');
    assert.equal(sft.status, 0, sft.stdout + sft.stderr);
    assert.match(sft.stdout, /\n {2}weights f16 +2\.\d\d GiB\n/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
