// The in-browser trainer page, for real: `remax serve` on a free port, headless Chromium presses Train on the built-in
// task, waits for several steps, checks the chart has points and the completions table has rewards, that the page
// answers while the worker trains, saves a screenshot (build/test-output/trainer-page.png), stops, downloads the
// checkpoint and loads it. PPO (a critic beside the policy, two threads) shows its metrics. A reward that is not a
// function gets a clear error on the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromiumUnavailable, launchChromium } from './chromium';
import { parseCheckpoint } from '../../src/core/formats/llama2c';
import { sharedPath, skipUnlessShared } from './shared-data';

const skip = chromiumUnavailable();
if (skip) console.log(`skipping the trainer page tests: ${skip}`);
const OUTPUT = path.resolve('build', 'test-output');

let server: ChildProcess | undefined;
let url = '';
let browser: Browser | undefined;

before(async () => {
  if (skip) return;
  server = spawn(process.execPath, ['dist/cli.js', 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  url = await new Promise<string>((resolve, reject) => {
    let text = '';
    server!.stdout!.on('data', (d) => {
      text += d;
      const match = text.match(/http:\/\/127\.0\.0\.1:\d+\//);
      if (match) resolve(match[0]);
    });
    server!.once('exit', (code) => reject(new Error(`remax serve exited with ${code}: ${text}`)));
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
});

async function openPage(): Promise<{ page: Page; errors: string[] }> {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 1000 }, acceptDownloads: true });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);
  return { page, errors };
}

const stepsShown = (page: Page) => page.evaluate(() => Number(document.body.dataset.steps ?? 0));

test('remax serve: the trainer page trains the built-in task in a Web Worker, draws it, and downloads the checkpoint', { skip, timeout: 180_000 }, async () => {
  const { page, errors } = await openPage();
  await page.fill('#steps', '400'); // more than the test waits for, so Stop has something to stop
  await page.click('#train');
  await page.waitForFunction(() => Number(document.body.dataset.steps ?? 0) >= 6, undefined, { timeout: 120_000 });

  // The page answers while the worker trains.
  const started = Date.now();
  await page.evaluate(() => document.title);
  const answerMs = Date.now() - started;
  assert.ok(answerMs < 2000, `the page took ${answerMs} ms to answer during training`);
  assert.equal(await page.evaluate(() => document.body.dataset.running), 'true');

  // The chart has a point per step, and the completions table has rewards.
  const points = await page.$$eval('#reward-chart polyline[data-series="reward"]', (lines) =>
    lines.reduce((n, line) => n + (line.getAttribute('points') ?? '').trim().split(/\s+/).length, 0));
  assert.ok(points >= 6, `the reward chart has ${points} points after 6 steps`);
  const rewards = await page.$$eval('#samples-body td.reward', (cells) => cells.map((c) => c.textContent ?? ''));
  assert.ok(rewards.length >= 1, 'the completions table is empty');
  for (const r of rewards) assert.match(r, /^-?\d+\.\d{3}$/, `a reward cell reads "${r}"`);
  const completions = await page.$$eval('#samples-body tr', (rows) => rows.length);
  assert.ok(completions >= 1);
  assert.match(await page.textContent('#status') ?? '', /^step \d+\/400: reward/);
  assert.match(await page.textContent('#summary [data-metric="entropy"]') ?? '', /^entropy \d+\.\d{3}$/, 'the policy\'s entropy is shown');

  mkdirSync(OUTPUT, { recursive: true });
  const shot = path.join(OUTPUT, 'trainer-page.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot} (${await stepsShown(page)} steps shown)`);

  await page.click('#stop');
  await page.waitForFunction(() => document.body.dataset.running === 'false', undefined, { timeout: 30_000 });
  assert.match(await page.textContent('#status') ?? '', /^stopped at step \d+/);

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const saved = path.join(OUTPUT, download.suggestedFilename());
  await download.saveAs(saved);
  const trained = parseCheckpoint(new Uint8Array(readFileSync(saved)), saved);
  const start = parseCheckpoint(new Uint8Array(readFileSync('assets/default-task/model.bin')), 'model.bin');
  assert.deepEqual(trained.config, start.config);
  const changed = Object.keys(start.weights).filter((name) =>
    (start.weights as any)[name].some((v: number, i: number) => v !== (trained.weights as any)[name][i]));
  assert.ok(changed.length > 0, 'the downloaded checkpoint equals the starting model');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the trainer page trains a llama2.c model, tokenizer and prompts file the user loads (aidreams260K)', { timeout: 120_000,
  skip: skip ?? skipUnlessShared('models/aidreams260K.bin', 'models/aidreams260K.tok512.bin') }, async () => {
  const { page, errors } = await openPage();
  await page.selectOption('#source', 'files');
  await page.setInputFiles('#model-file', sharedPath('models/aidreams260K.bin'));
  await page.setInputFiles('#tokenizer-file', sharedPath('models/aidreams260K.tok512.bin'));
  const prompts = ['Once upon a time', 'The cat', 'She said', 'One day'].map((prompt) => JSON.stringify({ prompt })).join('\n');
  await page.setInputFiles('#prompts-file', { name: 'prompts.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(prompts) });
  await page.fill('#reward', '(samples) => samples.map((s) => Math.min(s.completion.length, 40) / 40)');
  await page.fill('#steps', '3');
  await page.fill('#batch', '4');
  await page.fill('#max-new', '16');
  await page.click('#train');
  await page.waitForFunction(() => document.body.dataset.running === 'false' && Number(document.body.dataset.steps) === 3, undefined, { timeout: 90_000 });
  assert.match(await page.textContent('#status') ?? '', /^done at step 3/);
  const completions = await page.$$eval('#samples-body tr', (rows) => rows.length);
  assert.ok(completions >= 4, `${completions} completions shown`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the trainer page trains a Hugging Face folder (its files picked together, chat prompts) and downloads it as a folder', { timeout: 180_000,
  skip: skip ?? skipUnlessShared('models/hf/qwen2-tiny/config.json') }, async () => {
  const { page, errors } = await openPage();
  await page.selectOption('#source', 'files');
  const folder = sharedPath('models/hf/qwen2-tiny');
  await page.setInputFiles('#model-file', readdirSync(folder).map((f) => path.join(folder, f)));
  const prompts = ['Hi', 'Name a color'].map((q) => JSON.stringify({ messages: [{ role: 'user', content: q }] })).join('\n');
  await page.setInputFiles('#prompts-file', { name: 'prompts.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(prompts) });
  await page.fill('#reward', "(samples) => samples.map((s) => (s.prompt.startsWith('<|im_start|>user') ? 1 : -1) * Math.min(s.completion.length, 40) / 40)");
  await page.fill('#steps', '2');
  await page.fill('#batch', '2');
  await page.fill('#max-new', '8');
  await page.click('#train');
  await page.waitForFunction(() => document.body.dataset.running === 'false' && Number(document.body.dataset.steps) === 2, undefined, { timeout: 150_000 });
  assert.match(await page.textContent('#status') ?? '', /^done at step 2/);
  const downloads: string[] = [];
  page.on('download', (d) => downloads.push(d.suggestedFilename()));
  await page.click('#download');
  for (let i = 0; i < 50 && !downloads.includes('remax-step2-model.safetensors'); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(downloads.includes('remax-step2-model.safetensors') && downloads.includes('remax-step2-config.json'), `downloads: ${downloads.join(', ')}`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the trainer page trains on two threads (a helper engine in a second Web Worker; remax serve isolates the page)', { skip, timeout: 120_000 }, async () => {
  const { page, errors } = await openPage();
  assert.equal(await page.evaluate(() => globalThis.crossOriginIsolated), true, 'remax serve makes the page cross-origin isolated');
  await page.fill('#threads', '2');
  await page.fill('#steps', '400');
  await page.click('#train');
  await page.waitForFunction(() => Number(document.body.dataset.steps ?? 0) >= 3, undefined, { timeout: 90_000 });
  const workers = page.workers().map((w) => w.url().split('/').pop());
  assert.ok(workers.includes('worker.js') && workers.includes('helper.js'), `the page's workers: ${workers.join(', ')}`);
  await page.click('#stop');
  await page.waitForFunction(() => document.body.dataset.running === 'false', undefined, { timeout: 30_000 });
  assert.match(await page.textContent('#status') ?? '', /^stopped at step \d+/);
  const rewards = await page.$$eval('#samples-body td.reward', (cells) => cells.map((c) => c.textContent ?? ''));
  assert.ok(rewards.length >= 1, 'the completions table is empty');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the trainer page trains with PPO (a critic from the model, on two threads) and shows its metrics and the entropy', { skip, timeout: 120_000 }, async () => {
  const { page, errors } = await openPage();
  assert.equal(await page.isVisible('#ppo-epochs'), false, 'PPO\'s fields show only for the ppo estimator');
  await page.selectOption('#estimator', 'ppo');
  await page.fill('#ppo-epochs', '2');
  await page.fill('#ppo-minibatches', '2');
  await page.fill('#ppo-clip', '0.1');
  await page.fill('#threads', '2');
  await page.fill('#steps', '2');
  await page.fill('#batch', '4');
  await page.click('#train');
  await page.waitForFunction(() => document.body.dataset.running === 'false' && Number(document.body.dataset.steps) === 2, undefined, { timeout: 90_000 });
  assert.match(await page.textContent('#status') ?? '', /^done at step 2/);
  const shown = await page.$$eval('#summary [data-metric]', (spans) => Object.fromEntries(spans.map((s) => [(s as HTMLElement).dataset.metric!, s.textContent ?? ''])));
  for (const metric of ['entropy', 'policy_loss', 'value_loss', 'clip_fraction', 'approx_kl', 'explained_variance']) {
    const value = Number(shown[metric]?.split(' ').at(-1));
    assert.ok(Number.isFinite(value), `${metric} reads "${shown[metric]}"`);
  }
  assert.ok(Number(shown.entropy!.split(' ').at(-1)) > 0, `entropy reads "${shown.entropy}"`);
  mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot({ path: path.join(OUTPUT, 'trainer-page-ppo.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('the trainer page names the problem when the reward is not a function', { skip, timeout: 60_000 }, async () => {
  const { page } = await openPage();
  await page.fill('#reward', '42');
  await page.click('#train');
  await page.waitForSelector('#status.error', { timeout: 30_000 });
  assert.match(await page.textContent('#status') ?? '', /reward source evaluates to number, not a function/);
  assert.equal(await page.evaluate(() => document.body.dataset.running), 'false');
  await page.close();
});
