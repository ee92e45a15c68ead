// remax sft and remax grad as a user runs them (dist/cli.js in a child process), on models and text the test makes.
import { test } from 'node:test';
import { parseTrainingState } from '../../src/core/training-state';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { syntheticTokenizerBin } from './fixtures';
import { interruptAfterLines } from './interrupt-child';
import { parseSafetensors } from '../../src/core/formats/safetensors';
import { readSharedJson, sharedPath, skipUnlessShared } from './shared-data';

const CLI = path.resolve('dist/cli.js');
const remax = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

/** A scratch folder with a byte-level tokenizer, a tiny random model and a small generated text. */
function workspace() {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-sft-'));
  const tokenizer = path.join(dir, 'tok.bin');
  writeFileSync(tokenizer, syntheticTokenizerBin());
  const model = path.join(dir, 'init.bin');
  const init = remax('init', '--out', model, '--dim', '32', '--hidden', '64', '--layers', '2', '--heads', '4', '--kv-heads', '2',
    '--vocab', '259', '--seq', '48', '--seed', '1');
  assert.equal(init.code, 0, init.stderr);
  // Repetitive sentences: a model that learns anything at all lowers its loss quickly.
  const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'ran'];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const docs = Array.from({ length: 60 }, () => Array.from({ length: 6 + Math.floor(next() * 6) }, () => words[Math.floor(next() * words.length)]).join(' ') + '.');
  const data = path.join(dir, 'data.txt');
  writeFileSync(data, docs.join('\n\n'));
  const common = ['--tokenizer', tokenizer, '--data', data, '--batch', '6', '--lr', '3e-3'];
  return { dir, tokenizer, model, data, common };
}

const metrics = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

test('sft lowers the loss of a tiny model on generated text by a clear margin in a few dozen steps', () => {
  const w = workspace();
  try {
    const out = path.join(w.dir, 'out.bin');
    const r = remax('sft', '--model', w.model, ...w.common, '--steps', '40', '--out', out, '--metrics', path.join(w.dir, 'm.jsonl'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /step 40\/40\s+loss/);
    const m = metrics(path.join(w.dir, 'm.jsonl'));
    assert.equal(m.length, 40);
    const first = (m[0].loss + m[1].loss) / 2, last = (m[38].loss + m[39].loss) / 2;
    assert.ok(first > Math.log(259) - 0.5, `a random model starts near uniform: ${first}`);
    assert.ok(last < first - 1.5, `loss fell from ${first.toFixed(3)} to ${last.toFixed(3)}`);
    // The model's entropy at the trained tokens: near log V at first (at most log V), falling with the loss.
    assert.ok(m[0].entropy <= Math.log(259) && m[0].entropy > Math.log(259) - 0.5, `first entropy ${m[0].entropy}`);
    assert.ok(m[39].entropy < m[0].entropy - 1, `entropy from ${m[0].entropy} to ${m[39].entropy}`);
    // The checkpoint is a llama2.c model the rest of the CLI loads.
    const g = remax('generate', '--model', out, '--tokenizer', w.tokenizer, '--prompt', 'the cat', '--max-new-tokens', '8', '--temperature', '0');
    assert.equal(g.code, 0, g.stderr);
    assert.ok(existsSync(`${out}.state`));
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('N steps straight equal N/2 steps, a resume, and N/2 more (with activation checkpointing): same losses, same weights', () => {
  const w = workspace();
  try {
    const straight = path.join(w.dir, 'straight.bin'), half = path.join(w.dir, 'half.bin'), resumed = path.join(w.dir, 'resumed.bin');
    const run = ['--steps', '16', '--lr-schedule', 'cosine', '--warmup-steps', '3', '--weight-decay', '0.1', '--seed', '4'];
    assert.equal(remax('sft', '--model', w.model, ...w.common, ...run, '--out', straight, '--metrics', path.join(w.dir, 'a.jsonl')).code, 0);
    const stop = remax('sft', '--model', w.model, ...w.common, ...run, '--out', half, '--stop-at', '8', '--metrics', path.join(w.dir, 'b.jsonl'));
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stderr, /saved step 8/);
    // The second half recomputes activations in the backward pass: the gradients are bit-identical, so is all else.
    const go = remax('sft', '--resume', half, ...w.common, ...run, '--out', resumed, '--metrics', path.join(w.dir, 'b.jsonl'), '--activation-checkpointing');
    assert.equal(go.code, 0, go.stderr);
    assert.deepEqual(metrics(path.join(w.dir, 'b.jsonl')).map((m) => [m.step, m.loss, m.lr, m.grad_norm]),
      metrics(path.join(w.dir, 'a.jsonl')).map((m) => [m.step, m.loss, m.lr, m.grad_norm]));
    assert.deepEqual(readFileSync(resumed), readFileSync(straight), 'identical weights');
    // The states hold the same optimizer state bit for bit; their saved settings differ by --out, --metrics and the flag.
    const state = (file: string) => {
      const { extra: { sftSettings: _settings, ...extra }, m, v, ...rest } = parseTrainingState(new Uint8Array(readFileSync(file)), file);
      return { ...rest, extra, m: new Uint8Array(m.buffer, m.byteOffset, m.byteLength), v: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) };
    };
    assert.deepEqual(state(`${resumed}.state`), state(`${straight}.state`), 'identical optimizer state');
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('sft --threads 2: losses agree with one thread to rounding, and the run replays exactly', () => {
  const w = workspace();
  try {
    const run = ['--model', w.model, ...w.common, '--steps', '6', '--seed', '2'];
    const losses = (name: string, ...extra: string[]) => {
      const file = path.join(w.dir, `${name}.jsonl`);
      const r = remax('sft', ...run, ...extra, '--out', path.join(w.dir, `${name}.bin`), '--metrics', file);
      assert.equal(r.code, 0, r.stderr);
      return metrics(file).map((m) => m.loss as number);
    };
    const one = losses('one'), two = losses('two', '--threads', '2'), again = losses('again', '--threads', '2');
    two.forEach((loss, i) => assert.ok(Math.abs(loss - one[i]!) <= 1e-5 * one[i]!, `step ${i + 1}: ${loss} vs ${one[i]}`));
    assert.deepEqual(again, two);
    assert.deepEqual(readFileSync(path.join(w.dir, 'again.bin')), readFileSync(path.join(w.dir, 'two.bin')));
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('sft: Ctrl-C (SIGINT) stops between steps and saves a checkpoint that resumes', async () => {
  const w = workspace();
  try {
    const out = path.join(w.dir, 'sft.bin'), metricsPath = path.join(w.dir, 'm.jsonl');
    const r = await interruptAfterLines(['sft', '--model', w.model, ...w.common, '--steps', '100000', '--out', out, '--metrics', metricsPath], metricsPath, 3);
    assert.equal(r.code, 130, `an interrupted run exits with 128 + SIGINT: ${r.stderr}`);
    const at = Number(/interrupted \(SIGINT\): saved step (\d+) to /.exec(r.stderr)?.[1]);
    assert.ok(at >= 3 && at < 100000, r.stderr);
    assert.equal(metrics(metricsPath).length, at);
    const go = remax('sft', '--resume', out, ...w.common, '--steps', String(at + 2), '--out', out, '--metrics', metricsPath);
    assert.equal(go.code, 0, go.stderr);
    assert.deepEqual(metrics(metricsPath).map((m) => m.step), Array.from({ length: at + 2 }, (_, i) => i + 1));
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
});

/** Bad input: exit code 2 and one line on stderr matching `pattern`. */
function assertBadInput(r: ReturnType<typeof remax>, pattern: RegExp) {
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split('\n');
  assert.match(lines.at(-1)!, pattern);
}

test('sft: bad data, bad flags and divergence give clear errors and keep the last good checkpoint', () => {
  const w = workspace();
  try {
    const out = path.join(w.dir, 'out.bin');
    const bad = path.join(w.dir, 'bad.jsonl');
    writeFileSync(bad, '{"text": "fine"}\n{"text": oops}\n');
    assertBadInput(remax('sft', '--model', w.model, '--tokenizer', w.tokenizer, '--data', bad, '--out', out), /bad\.jsonl.*line 2/);
    writeFileSync(bad, '{"text": "fine"}\n{"text": ""}\n');
    assertBadInput(remax('sft', '--model', w.model, '--tokenizer', w.tokenizer, '--data', bad, '--out', out), /line 2.*empty/);
    assertBadInput(remax('sft', '--model', w.model, ...w.common, '--out', out, '--lr=-1'), /--lr must be a number > 0/);
    assertBadInput(remax('sft', '--model', w.model, ...w.common, '--out', out, '--lr', 'fast'), /--lr.*"fast"/);
    // An output folder that does not exist is refused before any training, not after the last step.
    const lost = remax('sft', '--model', w.model, ...w.common, '--out', path.join(w.dir, 'missing', 'out.bin'));
    assertBadInput(lost, /cannot write --out .*out\.bin: its folder .*missing does not exist/);
    assert.doesNotMatch(lost.stderr, /step 1\//, 'no step ran');
    assert.equal(existsSync(out), false, 'nothing written on bad input');

    // A learning rate that blows the weights up: the run stops at the first non-finite loss or gradient and says
    // which checkpoint is the last good one; that checkpoint still loads and resumes.
    const r = remax('sft', '--model', w.model, ...w.common, '--out', out, '--steps', '30', '--lr', '1e12', '--clip-norm', '0',
      '--lr-schedule', 'constant', '--checkpoint-every', '1');
    assertBadInput(r, /(diverged|not finite|NaN|Infinity).*last good checkpoint is .*out\.bin \(step \d+\)/);
    const saved = Number(/step (\d+)\)/.exec(r.stderr)![1]);
    const state = readFileSync(`${out}.state`);
    assert.ok(state.length > 0 && saved >= 1);
    const again = remax('generate', '--model', out, '--prompt-ids', '1,5', '--max-new-tokens', '2');
    assert.equal(again.code, 0, again.stderr);

    // A state that does not belong to the model is refused.
    writeFileSync(`${w.model}.state`, state);
    assertBadInput(remax('sft', '--resume', w.model, ...w.common, '--out', out), /different model file/);
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('grad: the ReMax loss and gradients of the shared batch, as safetensors', { skip: skipUnlessShared('models/stories260K.bin', 'reference/remax_grad_stories260K.json') }, () => {
  const ref = readSharedJson('reference/remax_grad_stories260K.json');
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-grad-'));
  try {
    const batch = path.join(dir, 'batch.json'), out = path.join(dir, 'grads.safetensors');
    writeFileSync(batch, JSON.stringify(ref.batch));
    const r = remax('grad', '--model', sharedPath('models/stories260K.bin'), '--batch', batch, '--out', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const { loss } = JSON.parse(r.stdout);
    assert.ok(Math.abs(loss - ref.loss) / ref.loss <= 1e-4);
    const { tensors } = parseSafetensors(new Uint8Array(readFileSync(out)), out);
    assert.deepEqual([...tensors.keys()], ['token_embedding_table', 'rms_att_weight', 'wq', 'wk', 'wv', 'wo', 'rms_ffn_weight', 'w1', 'w2', 'w3', 'rms_final_weight']);
    assert.deepEqual(tensors.get('wq')!.shape, [5, 64, 64]);
    assert.deepEqual(tensors.get('wk')!.shape, [5, 32, 64]);
    for (const [name, expected] of Object.entries<{ norm: number }>(ref.grads)) {
      const g = tensors.get(name)!.data;
      const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
      assert.ok(Math.abs(norm - expected.norm) / expected.norm <= 1e-4, `${name}: ${norm} vs ${expected.norm}`);
    }
    writeFileSync(batch, '[{"prompt_ids": [], "response_ids": [3], "advantage": 1}]');
    assertBadInput(remax('grad', '--model', sharedPath('models/stories260K.bin'), '--batch', batch, '--out', out), /item 0.*prompt_ids.*empty/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
