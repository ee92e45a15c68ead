// remax train --reward-model: a reward model trained by remax rm scores the policy's responses (its rewards are the
// model's scores of prompt + response + EOS), alone, normalised (resumed bit for bit) or weighted with a rule reward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RemaxEngine } from '../../src/core/engine';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { withScoreHead } from '../../src/core/score-head';
import { rewardModelReward } from '../../src/core/reward-model-reward';
import { RunningMoments } from '../../src/core/running-moments';
import { Tokenizer } from '../../src/core/tokenizers/llama2c';
import { loadModelFromPath, modelFiles, writeModel } from '../../src/node/model-io';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA } from '../../src/core/config';
import { enableRelaxedSimd } from '../../src/node/load';

enableRelaxedSimd(); // the kernel build the CLI runs, so that scores agree to the bit

const CLI = path.resolve('dist/cli.js');
const TASK = path.resolve('assets/default-task');
const remax = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const rows = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const tokenizer = () => Tokenizer.fromBytes(new Uint8Array(readFileSync(path.join(TASK, 'tokenizer.bin'))));

/** A reward model preferring responses with a 7, trained for a few steps by remax rm. */
function trainedRewardModel(dir: string): string {
  let s = 5;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const digits = (n: number) => Array.from({ length: n }, () => { let d; do d = Math.floor(rnd() * 10); while (d === 7); return d; });
  const lines = Array.from({ length: 200 }, () => {
    const chosen = digits(2 + Math.floor(rnd() * 2));
    chosen[Math.floor(rnd() * chosen.length)] = 7;
    return JSON.stringify({ prompt: `${Math.floor(rnd() * 50)}+${Math.floor(rnd() * 50)}=`, chosen: chosen.join(''), rejected: digits(2 + Math.floor(rnd() * 2)).join('') });
  });
  writeFileSync(path.join(dir, 'pairs.jsonl'), lines.join('\n') + '\n');
  const rm = path.join(dir, 'rm');
  const r = remax('rm', '--model', path.join(TASK, 'model.bin'), '--tokenizer', path.join(TASK, 'tokenizer.bin'), '--pairs', path.join(dir, 'pairs.jsonl'),
    '--steps', '30', '--batch', '16', '--lr', '3e-3', '--out', rm, '--quiet');
  assert.equal(r.code, 0, r.stderr);
  return rm;
}

const TRAIN = ['--steps', '3', '--batch', '4', '--sample-every', '1', '--eval-every', '0', '--checkpoint-every', '0', '--quiet'];

test('train --reward-model: the rewards are the reward model\'s scores of the responses; normalised runs resume exactly; weighted with a rule', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-train-rm-'));
  try {
    const rm = trainedRewardModel(dir);
    const run = path.join(dir, 'run');
    let r = remax('train', '--reward-model', rm, '--out', run, ...TRAIN);
    assert.equal(r.code, 0, r.stderr);
    const engine = await RemaxEngine.create({ model: await loadModelFromPath(path.join(rm, 'model.bin'), '--model'), tokenizer: tokenizer() });
    const tok = tokenizer();
    const score = (prompt: string, completion: string) => engine.scores([[...tok.encodePrompt(prompt + completion), 2]])[0]!;
    const samples = rows(path.join(run, 'samples.jsonl'));
    assert.ok(samples.length >= 8);
    let withSeven = 0;
    for (const row of samples) {
      assert.equal(row.reward, score(row.prompt, row.completion), `${row.prompt}${row.completion}`);
      assert.equal(row.greedy_reward, score(row.prompt, row.greedy_completion));
      if (row.completion.includes('7')) withSeven++;
    }
    const m = rows(path.join(run, 'metrics.jsonl'));
    assert.equal(m.length, 3);
    assert.ok(m.every((line) => Number.isFinite(line.reward_mean) && line.reward_errors === 0));
    console.log(`train --reward-model: ${samples.length} responses scored, ${withSeven} with a 7`);

    // Normalised: the running statistics are saved in the checkpoint, so a resumed run is the same run.
    const whole = path.join(dir, 'whole'), parts = path.join(dir, 'parts');
    r = remax('train', '--reward-model', rm, '--reward-normalize', '--out', whole, ...TRAIN, '--steps', '4');
    assert.equal(r.code, 0, r.stderr);
    r = remax('train', '--reward-model', rm, '--reward-normalize', '--out', parts, ...TRAIN, '--steps', '4', '--stop-at', '2');
    assert.equal(r.code, 0, r.stderr);
    r = remax('train', '--resume', parts, '--quiet');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(path.join(whole, 'model.bin')).equals(readFileSync(path.join(parts, 'model.bin'))), 'resumed weights differ');
    const strip = (list: Record<string, unknown>[]) => list.map(({ tokens_per_second: _t, seconds: _s, time: _ti, ...rest }) => JSON.stringify(rest, (k, v) => (k.endsWith('_seconds') ? undefined : v)));
    assert.deepEqual(strip(rows(path.join(parts, 'samples.jsonl'))), strip(rows(path.join(whole, 'samples.jsonl'))));
    // A reward model changed since the run started is refused on resume.
    r = remax('train', '--reward-model', rm, '--reward-normalize', '--out', path.join(dir, 'changed'), ...TRAIN, '--steps', '4', '--stop-at', '1');
    assert.equal(r.code, 0, r.stderr);
    const head = path.join(rm, 'model.bin.score'), saved = readFileSync(head);
    const changed = Buffer.from(saved);
    changed[changed.length - 1] ^= 1;
    writeFileSync(head, changed);
    r = remax('train', '--resume', path.join(dir, 'changed'), '--quiet');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--reward-model-head .*model\.bin\.score is not the file the run started with/);
    writeFileSync(head, saved);
    const normalised = rows(path.join(whole, 'samples.jsonl')).map((row) => row.reward as number);
    assert.ok(Math.max(...normalised.map(Math.abs)) < 10, 'normalised rewards are a few standard deviations at most');

    // Weighted with exact-match: reward = 1·[completion is the answer] + 0.5·score.
    const mixed = path.join(dir, 'mixed');
    r = remax('train', '--reward', 'exact-match', '--reward-model', rm, '--reward-weights', '1,0.5', '--out', mixed, ...TRAIN);
    assert.equal(r.code, 0, r.stderr);
    for (const row of rows(path.join(mixed, 'samples.jsonl'))) {
      const rule = row.reward - 0.5 * score(row.prompt, row.completion);
      assert.ok(Math.abs(rule) < 1e-5 || Math.abs(rule - 1) < 1e-5, `${row.prompt}${row.completion}: rule part ${rule}`);
    }
    r = remax('train', '--reward-model', rm, '--reward-weights', '1', '--reward', 'exact-match', '--out', path.join(dir, 'bad'), ...TRAIN);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--reward-weights must be two numbers/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a reward model without a tokenizer whose vocabulary is not the policy\'s is refused; a causal LM is no reward model', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-train-rm-'));
  try {
    const config = { dim: 16, hiddenDim: 32, nLayers: 1, nHeads: 2, nKvHeads: 2, vocabSize: 300, seqLen: 64, sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA };
    const model = withScoreHead({ config, weights: randomInitWeights(config, 1), format: 'llama2c-v0' }, 1);
    const file = path.join(dir, 'rm.bin');
    writeModel(file, modelFiles(model, { format: 'llama2c' }), '--out');
    let r = remax('train', '--reward-model', file, '--out', path.join(dir, 'run'), ...TRAIN);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /carries no tokenizer and its vocabulary \(300 ids\) is not the policy's \(259\)/);
    r = remax('train', '--reward-model', path.join(TASK, 'model.bin'), '--out', path.join(dir, 'run2'), ...TRAIN);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /is a causal LM, not a reward model/);
    // The library function: a response cut short gets the EOS the reward model was trained to score at; normalised.
    const engine = await RemaxEngine.create({ model });
    const normalizer = new RunningMoments();
    const fn = rewardModelReward(engine, { source: 'rm', policyVocabSize: 300, normalizer });
    const sample = (completionIds: number[]) => ({ prompt: '', completion: '', promptIds: [1, 40], completionIds, meta: {} });
    const raw = engine.scores([[1, 40, 41, 2], [1, 40, 42, 2]]);
    const got = await fn([sample([41, 2]), sample([42])]);
    const mean = (raw[0]! + raw[1]!) / 2, std = Math.sqrt(((raw[0]! - mean) ** 2 + (raw[1]! - mean) ** 2) / 2 + 1e-8);
    assert.ok(Math.abs(got[0]! - (raw[0]! - mean) / std) < 1e-9 && Math.abs(got[1]! - (raw[1]! - mean) / std) < 1e-9, `${got} vs ${raw}`);
    assert.deepEqual(normalizer.state().count, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
