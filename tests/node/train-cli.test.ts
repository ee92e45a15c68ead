// remax train as a user runs it (dist/cli.js in a child process) on a tiny model, prompts and rewards the test makes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { syntheticTokenizerBin } from './fixtures';
import { interruptAfterLines } from './interrupt-child';

const CLI = path.resolve('dist/cli.js');
const remax = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
/** Async variant, for tests whose reward server lives in this process. */
const remaxAsync = (...args: string[]) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
  const child = spawn(process.execPath, [CLI, ...args]);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.on('close', (code) => resolve({ code, stderr }));
});

/** A tiny random model on a byte tokenizer, prompts with answers, and a TypeScript reward module. */
function setup() {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-train-'));
  const tokenizer = path.join(dir, 'tok.bin');
  writeFileSync(tokenizer, syntheticTokenizerBin());
  const model = path.join(dir, 'init.bin');
  assert.equal(remax('init', '--out', model, '--dim', '32', '--hidden', '48', '--layers', '2', '--heads', '4', '--vocab', '259', '--seq', '32', '--seed', '2').code, 0);
  const prompts = path.join(dir, 'prompts.jsonl');
  writeFileSync(prompts, Array.from({ length: 24 }, (_, i) => JSON.stringify({ prompt: `${i % 10}+1=`, answer: String((i % 10) + 1) })).join('\n') + '\n');
  const reward = path.join(dir, 'reward.ts');
  writeFileSync(reward, `import type { } from 'node:fs';
    type Sample = { completion: string; meta: { answer: string } };
    // Rewards completions that contain digits, more for the right answer.
    export default (samples: Sample[]): number[] => samples.map((s) => (s.completion.includes(s.meta.answer) ? 1 : 0) + 0.1 * (s.completion.match(/[0-9]/g)?.length ?? 0));\n`);
  const common = ['--model', model, '--tokenizer', tokenizer, '--prompts', prompts, '--max-new-tokens', '6', '--batch', '4', '--eval-every', '0', '--quiet'];
  return { dir, tokenizer, model, prompts, reward, common };
}

const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const withoutTimes = (rows: Record<string, unknown>[]) => rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('time') && k !== 'tokens_per_second')));

/** Two run folders hold the same run: the same metrics (times aside) and the same weights, bit for bit. */
function assertSameRun(dir: string, expected: string): void {
  assert.deepEqual(withoutTimes(lines(path.join(dir, 'metrics.jsonl'))), withoutTimes(lines(path.join(expected, 'metrics.jsonl'))));
  assert.deepEqual(readFileSync(path.join(dir, 'model.bin')), readFileSync(path.join(expected, 'model.bin')));
}

test('train writes a checkpoint, one metrics line per step with every field, samples and its options', () => {
  const s = setup();
  try {
    const out = path.join(s.dir, 'run');
    const r = remax('train', ...s.common, '--reward', s.reward, '--steps', '6', '--sample-every', '2', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const metrics = lines(path.join(out, 'metrics.jsonl'));
    assert.deepEqual(metrics.map((m) => m.step), [1, 2, 3, 4, 5, 6]);
    for (const key of ['reward_mean', 'reward_std', 'greedy_reward_mean', 'greedy_reward_std', 'advantage_mean', 'advantage_std', 'kl', 'loss',
      'grad_norm', 'lr', 'response_length_mean', 'skipped', 'tokens_per_second', 'time_sampling', 'time_greedy', 'time_reward',
      'time_reference', 'time_backward', 'time_optimizer', 'entropy']) {
      assert.ok(key in metrics[5], `metrics has ${key}`);
    }
    assert.ok(metrics.every((m) => Number.isFinite(m.loss) && Number.isFinite(m.grad_norm)), 'finite loss and gradient norm');
    assert.ok(metrics.every((m) => m.entropy > 0), 'a positive policy entropy every step');
    assert.ok(metrics.every((m) => m.time_greedy > 0 && m.time_sampling > 0), 'the batched decode time is split between samples and greedy');
    const samples = lines(path.join(out, 'samples.jsonl'));
    assert.ok(samples.length >= 3, `${samples.length} sample rows`);
    assert.ok(samples.every((row) => typeof row.prompt === 'string' && 'greedy_completion' in row && row.step % 2 === 0));
    assert.equal(JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')).steps, 6);
    assert.ok(existsSync(path.join(out, 'model.bin')) && existsSync(path.join(out, 'model.bin.state')) && existsSync(path.join(out, 'reference.bin')));
    assert.notDeepEqual(readFileSync(path.join(out, 'model.bin')), readFileSync(s.model), 'the policy changed');
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a resumed run continues exactly: the metrics after the resume equal those of an uninterrupted run', () => {
  const s = setup();
  try {
    const a = path.join(s.dir, 'a'), b = path.join(s.dir, 'b');
    const run = [...s.common, '--reward', s.reward, '--steps', '8', '--samples-per-prompt', '2', '--lr-schedule', 'cosine', '--seed', '3'];
    assert.equal(remax('train', ...run, '--out', a).code, 0);
    assert.equal(remax('train', ...run, '--out', b, '--stop-at', '3').code, 0);
    assert.equal(lines(path.join(b, 'metrics.jsonl')).length, 3);
    const resumed = remax('train', '--resume', b, '--quiet');
    assert.equal(resumed.code, 0, resumed.stderr);
    assertSameRun(b, a);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('--threads 2: the same samples and first entropy as one thread, close losses, and a run that replays and resumes exactly', () => {
  const s = setup();
  try {
    const run = [...s.common, '--reward', s.reward, '--steps', '6', '--sample-every', '1', '--seed', '5'];
    const [one, two, again, resumed] = ['one', 'two', 'again', 'resumed'].map((name) => path.join(s.dir, name));
    assert.equal(remax('train', ...run, '--out', one).code, 0);
    const r = remax('train', ...run, '--threads', '2', '--out', two);
    assert.equal(r.code, 0, r.stderr);
    // Decoding is exact on any number of threads: the first step's responses (same weights) are the same.
    const firstStep = (dir: string) => lines(path.join(dir, 'samples.jsonl')).filter((row) => row.step === 1);
    assert.deepEqual(firstStep(two), firstStep(one));
    // Gradients are summed per thread: the losses agree to rounding.
    const [lossOne, lossTwo] = [one, two].map((dir) => lines(path.join(dir, 'metrics.jsonl')).map((m) => m.loss as number));
    lossTwo.forEach((loss, i) => assert.ok(Math.abs(loss - lossOne[i]!) <= 1e-4 * Math.max(1e-3, Math.abs(lossOne[i]!)), `step ${i + 1}: ${loss} vs ${lossOne[i]}`));
    // The entropy is measured row by row and summed: the first step's (same weights, same responses) is the same.
    const [entropyOne, entropyTwo] = [one, two].map((dir) => lines(path.join(dir, 'metrics.jsonl')).map((m) => m.entropy as number));
    assert.equal(entropyTwo[0], entropyOne[0]);
    // The same seed and thread count replay bit for bit, also across a resume (config.json keeps --threads).
    assert.equal(remax('train', ...run, '--threads', '2', '--out', again).code, 0);
    assertSameRun(again, two);
    assert.equal(remax('train', ...run, '--threads', '2', '--out', resumed, '--stop-at', '3').code, 0);
    assert.equal(remax('train', '--resume', resumed, '--quiet').code, 0);
    assertSameRun(resumed, two);
    assert.equal(remax('train', ...run, '--threads', 'x', '--out', again).stderr.trim(), 'remax train: error: --threads must be an integer ≥ 1 and ≤ 256 (or auto), got "x"');
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('--threads 2: a resume the trainer refuses (other prompts) ends with the error instead of hanging on its helper threads', () => {
  const s = setup();
  try {
    const out = path.join(s.dir, 'run'), fewer = path.join(s.dir, 'fewer.jsonl');
    assert.equal(remax('train', ...s.common, '--reward', s.reward, '--steps', '4', '--stop-at', '2', '--threads', '2', '--out', out).code, 0);
    writeFileSync(fewer, readFileSync(s.prompts, 'utf8').split('\n').slice(0, 5).join('\n') + '\n');
    const r = spawnSync(process.execPath, [CLI, 'train', '--resume', out, '--prompts', fewer, '--accept-changed-inputs', '--quiet'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.signal, null, 'the process ended by itself (the helper threads were stopped)');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /trained on 24 prompts but there are now 5/);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('--stop: responses end at a stop string; rewards see the text before it, and the ids up to the token that completed it', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-stop-'));
  try {
    // The built-in task's answers are sums: many hold a "1". The reward refuses any completion with one.
    const reward = path.join(dir, 'reward.mjs');
    writeFileSync(reward, `export default (samples) => samples.map((s) => {
      if (s.completion.includes('1')) throw new Error('the completion holds the stop string: ' + JSON.stringify(s.completion));
      return s.completionIds.length;
    });\n`);
    const out = path.join(dir, 'run');
    const r = remax('train', '--reward', reward, '--stop', '1', '--steps', '3', '--eval-every', '0', '--sample-every', '1', '--quiet', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const rows = lines(path.join(out, 'samples.jsonl'));
    // (Without --stop this reward throws in the first steps: the model writes sums like 51.)
    assert.ok(rows.every((row) => !String(row.completion).includes('1') && !String(row.greedy_completion).includes('1')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Ctrl-C (SIGINT) stops between steps and saves a checkpoint the run resumes from', async () => {
  const s = setup();
  try {
    const out = path.join(s.dir, 'run'), metricsPath = path.join(out, 'metrics.jsonl');
    const loud = s.common.filter((arg) => arg !== '--quiet'); // its last line says where it stopped
    const r = await interruptAfterLines(['train', ...loud, '--reward', s.reward, '--steps', '100000', '--out', out], metricsPath, 3);
    assert.equal(r.code, 130, `an interrupted run exits with 128 + SIGINT: ${r.stderr}`);
    const at = Number(/interrupted \(SIGINT\) at step (\d+): saved to /.exec(r.stderr)?.[1]);
    assert.ok(at >= 3 && at < 100000, r.stderr);
    assert.deepEqual(lines(metricsPath).map((m) => m.step), Array.from({ length: at }, (_, i) => i + 1));
    const resumed = remax('train', '--resume', out, '--quiet', '--steps', String(at + 2));
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(lines(metricsPath).map((m) => m.step), Array.from({ length: at + 2 }, (_, i) => i + 1));
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('resume after a run killed mid-write: a torn last log line is dropped; a bad line elsewhere is named', () => {
  const s = setup();
  try {
    const out = path.join(s.dir, 'run');
    const run = [...s.common, '--reward', s.reward, '--steps', '6', '--sample-every', '1', '--out', out];
    assert.equal(remax('train', ...run, '--stop-at', '3').code, 0);
    const metricsPath = path.join(out, 'metrics.jsonl'), samplesPath = path.join(out, 'samples.jsonl');
    appendFileSync(metricsPath, '{"step":4,"reward_me');
    appendFileSync(samplesPath, '{"step":4,"pro');
    const resumed = remax('train', '--resume', out, '--quiet', '--stop-at', '5');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(lines(metricsPath).map((m) => m.step), [1, 2, 3, 4, 5]);
    assert.ok(lines(samplesPath).every((row) => row.step <= 5));

    writeFileSync(metricsPath, readFileSync(metricsPath, 'utf8').replace('\n', '\nnot json\n'));
    const refused = remax('train', '--resume', out, '--quiet');
    assert.equal(refused.code, 2, refused.stderr);
    assert.ok(refused.stderr.includes(`line 2 of ${metricsPath} is not JSON`), refused.stderr);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('every estimator trains (k = 2 samples per prompt)', () => {
  const s = setup();
  try {
    for (const estimator of ['remax', 'reinforce', 'reinforce-ema', 'rloo', 'grpo']) {
      const out = path.join(s.dir, estimator);
      const r = remax('train', ...s.common, '--reward', s.reward, '--steps', '2', '--samples-per-prompt', '2', '--estimator', estimator, '--out', out);
      assert.equal(r.code, 0, `${estimator}: ${r.stderr}`);
      const m = lines(path.join(out, 'metrics.jsonl'));
      assert.equal(m.length, 2);
      assert.equal(m[0].greedy_reward_mean === null, estimator !== 'remax', `${estimator}: greedy decoded only for remax`);
    }
    const r = remax('train', ...s.common, '--steps', '2', '--estimator', 'rloo', '--out', path.join(s.dir, 'x'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--samples-per-prompt must be an integer ≥ 2 for rloo/);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a failing reward: abort saves a checkpoint and names the prompt; skip counts the skipped samples', () => {
  const s = setup();
  try {
    const bad = path.join(s.dir, 'bad.mjs');
    writeFileSync(bad, `let calls = 0;\nexport default (samples) => { if (++calls > 6 && samples[0].prompt === '3+1=') throw new Error('scorer crashed'); return samples.map(() => 0.5); };\n`);
    const out = path.join(s.dir, 'abort');
    const r = remax('train', ...s.common, '--reward', bad, '--steps', '20', '--out', out);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /"3\+1=".*scorer crashed.*saved step \d+ to/);
    assert.ok(existsSync(path.join(out, 'model.bin')), 'checkpoint written before stopping');
    const skipOut = path.join(s.dir, 'skip');
    const k = remax('train', ...s.common, '--reward', bad, '--steps', '20', '--on-reward-error', 'skip', '--out', skipOut);
    assert.equal(k.code, 0, k.stderr);
    assert.ok(lines(path.join(skipOut, 'metrics.jsonl')).some((m) => m.skipped > 0));
    // Two samples per prompt: a failed call drops both, and skipped counts samples, not prompts.
    const pairsOut = path.join(s.dir, 'pairs');
    const p = remax('train', ...s.common, '--reward', bad, '--steps', '20', '--on-reward-error', 'skip', '--samples-per-prompt', '2', '--estimator', 'rloo', '--out', pairsOut);
    assert.equal(p.code, 0, p.stderr);
    const skipped = lines(path.join(pairsOut, 'metrics.jsonl')).map((m) => m.skipped as number);
    assert.ok(skipped.some((n) => n > 0) && skipped.every((n) => n % 2 === 0), `skipped per step: ${skipped.join(' ')}`);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('bad options and prompts give one clear error', () => {
  const s = setup();
  try {
    const long = path.join(s.dir, 'long.jsonl');
    writeFileSync(long, JSON.stringify({ prompt: 'ok' }) + '\n' + JSON.stringify({ prompt: 'x'.repeat(40) }) + '\n');
    let r = remax('train', ...s.common, '--prompts', long, '--steps', '1', '--out', path.join(s.dir, 'o'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /long\.jsonl line 2: the prompt has 42 tokens.*--truncate/);
    const config = path.join(s.dir, 'remax.json');
    writeFileSync(config, JSON.stringify({ steps: 1, 'kl-coeff': 0.1 }));
    r = remax('train', ...s.common, '--config', config);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /remax\.json: unknown option "kl-coeff"/);
    r = remax('train', ...s.common, '--reward', 'nonsense', '--steps', '1');
    assert.match(r.stderr, /unknown reward "nonsense"; the built-in rewards are exact-match/);
    r = remax('train', ...s.common, '--temperature', 'warm');
    assert.match(r.stderr, /--temperature must be a number/);
    // The model's context is 32: a 31-token budget leaves no room for BOS and a prompt token.
    r = remax('train', ...s.common, '--max-new-tokens', '31', '--steps', '1', '--out', path.join(s.dir, 'o'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--max-new-tokens 31 leaves no room for a prompt in the context of .*init\.bin \(seq_len 32\): use at most 30/);
    const blocker = path.join(s.dir, 'a-file');
    writeFileSync(blocker, '');
    r = remax('train', ...s.common, '--steps', '1', '--out', blocker);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim(), `remax train: error: cannot create the --out folder ${blocker}: a file is in the way (the run needs a folder there)`);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a run aborted by its reward mid-step resumes exactly: the prompts of the failed step are not skipped', () => {
  const s = setup();
  try {
    // Rewards by digits, as s.reward; fails from the 13th call on (step 4 of 4 prompts a step) while the marker exists.
    const marker = path.join(s.dir, 'fail-now'), flaky = path.join(s.dir, 'flaky.mjs');
    writeFileSync(flaky, `import { existsSync } from 'node:fs';\nlet calls = 0;\n` +
      `export default (samples) => { if (++calls > 12 && existsSync(${JSON.stringify(marker)})) throw new Error('flaky'); ` +
      `return samples.map((x) => (x.completion.match(/[0-9]/g)?.length ?? 0) / 6); };\n`);
    const run = [...s.common, '--reward', flaky, '--steps', '6', '--seed', '9'];
    const [straight, aborted] = [path.join(s.dir, 'straight'), path.join(s.dir, 'aborted')];
    assert.equal(remax('train', ...run, '--out', straight).code, 0);
    writeFileSync(marker, '');
    const r = remax('train', ...run, '--out', aborted);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /flaky.*saved step 3 to/);
    rmSync(marker);
    const resumed = remax('train', '--resume', aborted, '--quiet');
    assert.equal(resumed.code, 0, resumed.stderr);
    assertSameRun(aborted, straight);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a reward server: POST {samples} → {rewards}, with the options from a --config file', async () => {
  const s = setup();
  let requests = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      requests++;
      const { samples } = JSON.parse(body) as { samples: { completion: string; meta: { answer: string } }[] };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ rewards: samples.map((x) => (x.completion.includes(x.meta.answer) ? 1 : 0)) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as { port: number }).port;
    const config = path.join(s.dir, 'remax.json');
    writeFileSync(config, JSON.stringify({ steps: 2, 'reward-url': `http://127.0.0.1:${port}/score`, 'kl-coef': 0 }));
    const out = path.join(s.dir, 'http');
    const r = await remaxAsync('train', ...s.common, '--config', config, '--out', out);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(lines(path.join(out, 'metrics.jsonl')).length, 2);
    assert.equal(requests, 2 * 4, 'one request per prompt per step (its sample and greedy response together)');
    assert.equal(existsSync(path.join(out, 'reference.bin')), false, 'no reference policy with --kl-coef 0');
  } finally {
    server.close();
    rmSync(s.dir, { recursive: true, force: true });
  }
});
