#!/usr/bin/env node
// The experiments of docs/EXPERIMENTS.md, on the built-in default task (a+b arithmetic, assets/default-task/):
//   1. reward curves of remax, reinforce, rloo and grpo, 3 seeds each, with the same number of decoded sequences per
//      step (`remax train` runs of the CLI, their metrics.jsonl read back);
//   2. the variance of the gradient estimate at fixed weights: many independent batches (runStep({ update: false }))
//      at three fixed policies, E‖g − ḡ‖² per estimator;
//   3. time per iteration (from the runs' metrics) and peak memory (WASM memory, the process's peak RSS; one child
//      process per estimator, run first while this process is small, so each peak is its own).
// Writes docs/EXPERIMENTS.md and the charts docs/experiments/*.svg.
//
//   npm run build && node scripts/experiments.mjs            # the full set (about 3-4 minutes on 2 cores)
//   node scripts/experiments.mjs --quick                     # a smoke pass; writes to <tmp>/docs instead of docs/
//   node scripts/experiments.mjs --keep                      # keep the run folders (printed)
import v8 from 'node:v8';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { barChart, lineChart, stackedBars } from './svg-charts.mjs';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd'); // as the CLI does: the relaxed-SIMD kernels where accepted

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// The built CLI and library. The main run copies them to its work folder first (snapshot()), so a rebuild of dist/ while
// it runs (another engineer's npm test) cannot pull them away or mix two builds.
let CLI = path.join(ROOT, 'dist', 'cli.js');
let LIB = path.join(ROOT, 'dist', 'index.js');
const TASK = path.join(ROOT, 'assets', 'default-task');
const SELF = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------------------------------------------------------
// Settings

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const KEEP = argv.includes('--keep') || QUICK; // a quick pass writes its docs inside the work folder

const SEEDS = QUICK ? [0] : [0, 1, 2];
const STEPS = QUICK ? 20 : 200;
const EVAL_EVERY = 5;
const EVAL_SIZE = 200;
const SMOOTH = 10;
/** The held-out accuracy whose first crossing the reward table reports. */
const EVAL_TARGET = 0.85;
/** Independent batches per (estimator, fixed policy) in the variance measurement. */
const DRAWS = QUICK ? 16 : 512;
const DRAW_SEED = 1000; // not one of the training seeds
/** The policy after this many steps of the seed-0 remax run is the second fixed point. */
const MID_STEP = 10;
const PROBE_STEPS = QUICK ? 5 : 40;
const PROBE_WARMUP = 3;

/** Reward-curve runs: every one decodes 32 sequences per step (16 prompts, or 8 for k = 4). */
const TRAIN_CONFIGS = [
  { id: 'remax', estimator: 'remax', batch: 16, k: 1, color: '#d62728' },
  { id: 'reinforce', estimator: 'reinforce', batch: 16, k: 2, color: '#1f77b4' },
  { id: 'rloo', estimator: 'rloo', batch: 16, k: 2, color: '#2ca02c' },
  // With k = 2 and 0/1 rewards GRPO's advantages are RLOO's divided by (0.5 + 1e-4): the same run, up to AdamW's ε.
  { id: 'grpo', estimator: 'grpo', batch: 16, k: 2, color: '#9467bd', dash: '7 4' },
  { id: 'rloo-8x4', estimator: 'rloo', batch: 8, k: 4, color: '#17becf', dash: '2 3' },
  { id: 'grpo-8x4', estimator: 'grpo', batch: 8, k: 4, color: '#e377c2', dash: '2 3' },
  // Not equal decodes: REINFORCE with ReMax's number of scored samples (half its decodes), for reference.
  { id: 'reinforce-16x1', estimator: 'reinforce', batch: 16, k: 1, color: '#7f7f7f', dash: '5 4', supplementary: true },
];
const MAIN = TRAIN_CONFIGS.filter((c) => !c.supplementary);

/** Gradient-variance configurations (KL off, so only the estimator's advantages differ). */
const VAR_CONFIGS = [
  { id: 'remax 16×1', estimator: 'remax', batch: 16, k: 1, color: '#d62728' },
  { id: 'reinforce 16×1', estimator: 'reinforce', batch: 16, k: 1, color: '#1f77b4' },
  { id: 'reinforce 16×2', estimator: 'reinforce', batch: 16, k: 2, color: '#6baed6' },
  { id: 'rloo 16×2', estimator: 'rloo', batch: 16, k: 2, color: '#2ca02c' },
  { id: 'grpo 16×2', estimator: 'grpo', batch: 16, k: 2, color: '#9467bd' },
  { id: 'rloo 8×4', estimator: 'rloo', batch: 8, k: 4, color: '#17becf' },
  { id: 'grpo 8×4', estimator: 'grpo', batch: 8, k: 4, color: '#e377c2' },
];

const decoded = (c) => c.batch * (c.k + (c.estimator === 'remax' ? 1 : 0));
const scored = (c) => c.batch * c.k;
const shortShape = (c) => (c.estimator === 'remax' ? `${c.batch}×(${c.k}+greedy)` : `${c.batch}×${c.k}`);
const label = (c) => `${c.estimator} ${shortShape(c)}`;
const shape = (c) => (c.estimator === 'remax' ? `${c.batch} × (${c.k} + 1 greedy)` : `${c.batch} × ${c.k}`);

// ---------------------------------------------------------------------------------------------------------------
// Small statistics

const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
/** Sample standard deviation (n − 1); 0 for one value. */
const sd = (xs) => {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
};
const trailingMean = (ys, w) => ys.map((_, i) => mean(ys.slice(Math.max(0, i - w + 1), i + 1)));

function fmt(x, digits = 3) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  if (x !== 0 && (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e5)) return x.toExponential(2);
  return x.toFixed(digits);
}
const pm = (xs, digits = 3) => (xs.length > 1 ? `${fmt(mean(xs), digits)} ± ${sd(xs).toFixed(digits)}` : fmt(mean(xs), digits));
const mib = (bytes) => (bytes / 2 ** 20).toFixed(1);

// ---------------------------------------------------------------------------------------------------------------
// Probe mode: one child process measures one estimator's iteration time and peak memory.

if (argv[0] === '--probe') {
  const spec = JSON.parse(argv[1]);
  LIB = spec.lib;
  const result = await probe(spec);
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}

async function loadLibrary() {
  if (!existsSync(LIB)) {
    console.error(`experiments: ${LIB} is missing: run npm run build first`);
    process.exit(2);
  }
  return import(pathToFileURL(LIB).href);
}

/** Copies dist/cli.js and dist/index.js to <work>/pkg/dist (the CLI finds the default task through <work>/pkg/assets). */
function snapshot(work) {
  for (const f of [CLI, LIB]) {
    if (!existsSync(f)) {
      console.error(`experiments: ${path.relative(process.cwd(), f)} is missing: run npm run build first`);
      process.exit(2);
    }
  }
  const pkg = path.join(work, 'pkg');
  mkdirSync(path.join(pkg, 'dist'), { recursive: true });
  copyFileSync(CLI, path.join(pkg, 'dist', 'cli.js'));
  copyFileSync(LIB, path.join(pkg, 'dist', 'index.js'));
  writeFileSync(path.join(pkg, 'package.json'), '{ "type": "module" }\n');
  if (!existsSync(path.join(pkg, 'assets'))) symlinkSync(path.join(ROOT, 'assets'), path.join(pkg, 'assets'), 'dir');
  CLI = path.join(pkg, 'dist', 'cli.js');
  LIB = path.join(pkg, 'dist', 'index.js');
}

/** The default task as train.ts loads it: model, tokenizer, training prompts, held-out prompts. */
async function loadTask(lib, modelPath = path.join(TASK, 'model.bin')) {
  const modelBytes = new Uint8Array(readFileSync(modelPath));
  const tokenizer = lib.Tokenizer.fromBytes(new Uint8Array(readFileSync(path.join(TASK, 'tokenizer.bin'))), 'tokenizer.bin');
  const checkpoint = lib.parseCheckpoint(modelBytes, modelPath);
  const seqLen = checkpoint.config.seqLen;
  const maxNew = Math.min(lib.DEFAULT_REMAX_OPTIONS.maxNewTokens, seqLen - 1);
  const prompts = lib.loadPrompts(new Uint8Array(readFileSync(path.join(TASK, 'train.jsonl'))), 'train.jsonl', tokenizer, seqLen, maxNew);
  const evalPrompts = lib.loadPrompts(new Uint8Array(readFileSync(path.join(TASK, 'eval.jsonl'))), 'eval.jsonl', tokenizer, seqLen, maxNew);
  return { modelBytes, tokenizer, prompts, evalPrompts, maxNew };
}

function makeScorer(lib) {
  const reward = lib.builtinReward('exact-match');
  return (groups) => lib.scoreSamples(reward, groups, { timeoutMs: 10000, onError: 'abort', concurrency: 8 });
}

function trainerOptions(lib, c, { seed, klCoef, maxNew, steps }) {
  return {
    ...lib.DEFAULT_REMAX_OPTIONS, estimator: c.estimator, batchSize: c.batch, samplesPerPrompt: c.k, seed, klCoef,
    maxNewTokens: maxNew, steps, schedule: { kind: 'constant', lr: 3e-4, warmupSteps: 0, totalSteps: steps },
  };
}

/**
 * Peak resident memory of this process in bytes. Linux: VmHWM of /proc/self/status, the high-water mark of this program's
 * own address space. process.resourceUsage().maxRSS is not used there: Linux carries it across fork and exec, so a child
 * reports at least its parent's peak at the time it was spawned.
 */
function peakRss() {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return process.resourceUsage().maxRSS * 1024;
}

async function probe(spec) {
  const lib = await loadLibrary();
  const kb = () => peakRss();
  const task = await loadTask(lib);
  const policy = await lib.RemaxEngine.create({ model: task.modelBytes, tokenizer: task.tokenizer });
  const reference = spec.klCoef > 0
    ? await lib.RemaxEngine.create({ model: task.modelBytes, maxBatch: spec.batch * spec.k }) : undefined;
  const rssLoaded = kb();
  const wasmLoaded = policy.memoryBytes + (reference?.memoryBytes ?? 0);
  if (spec.steps === 0) return { rssLoaded, rssPeak: kb(), wasmLoaded, build: policy.build };
  const steps = spec.steps + PROBE_WARMUP;
  const trainer = new lib.ReMaxTrainer(policy, reference, task.prompts, makeScorer(lib),
    trainerOptions(lib, spec, { seed: 0, klCoef: spec.klCoef, maxNew: task.maxNew, steps }));
  const metrics = [];
  let heapPeak = 0;
  while (!trainer.done) {
    metrics.push(await trainer.runStep());
    heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
  }
  const timed = metrics.slice(PROBE_WARMUP);
  return {
    build: policy.build, rssLoaded, rssPeak: kb(), maxRssReported: process.resourceUsage().maxRSS * 1024, wasmLoaded, heapPeak,
    wasmPolicy: policy.memoryBytes, wasmReference: reference?.memoryBytes ?? 0,
    timeStep: mean(timed.map((m) => m.time_step)),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Main

const started = performance.now();
const work = argv.includes('--tmp') ? argv[argv.indexOf('--tmp') + 1] : mkdtempSync(path.join(os.tmpdir(), 'remax-experiments-'));
mkdirSync(work, { recursive: true });
snapshot(work);
const lib = await loadLibrary();
const docsDir = QUICK ? path.join(work, 'docs') : path.join(ROOT, 'docs');
const chartDir = path.join(docsDir, 'experiments');
mkdirSync(chartDir, { recursive: true });
const log = (line) => console.error(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
log(`work folder ${work}${QUICK ? ' (quick pass)' : ''}`);

// 3. Time and peak memory per iteration (first, while this process is small and the machine quiet) -------------------

function runProbe(spec) {
  const r = spawnSync(process.execPath, [SELF, '--probe', JSON.stringify({ ...spec, lib: LIB })], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`probe failed: ${JSON.stringify(spec)}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}
const probes = [];
const baseline = runProbe({ estimator: 'remax', batch: 16, k: 1, klCoef: 0.05, steps: 0 });
for (const c of TRAIN_CONFIGS) {
  for (const klCoef of [0.05, 0]) {
    const p = runProbe({ estimator: c.estimator, batch: c.batch, k: c.k, klCoef, steps: PROBE_STEPS });
    probes.push({ id: c.id, klCoef, ...p });
    log(`probe ${c.id} kl ${klCoef}: WASM ${mib(p.wasmPolicy + p.wasmReference)} MiB, max RSS ${mib(p.rssPeak)} MiB, ` +
      `${(p.timeStep * 1000).toFixed(1)} ms/step`);
  }
}
// 1. Reward curves --------------------------------------------------------------------------------------------------

const COMMON_FLAGS = ['--quiet', '--steps', String(STEPS), '--eval-every', String(EVAL_EVERY), '--eval-size', String(EVAL_SIZE),
  '--sample-every', '0', '--checkpoint-every', '0'];

function train(c, seed, out, extra = []) {
  const args = [CLI, 'train', ...COMMON_FLAGS, '--out', out, '--seed', String(seed), '--estimator', c.estimator,
    '--batch', String(c.batch), '--samples-per-prompt', String(c.k), ...extra];
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`remax train failed (${r.status}): ${args.join(' ')}\n${r.stderr}`);
  const wall = (performance.now() - t0) / 1000;
  const rows = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  return { wall, steps: rows.filter((r) => r.reward_mean !== undefined), evals: rows.filter((r) => r.eval_reward_mean !== undefined) };
}

const runs = new Map(TRAIN_CONFIGS.map((c) => [c.id, []]));
for (const seed of SEEDS) { // seeds outside, estimators inside: a drift in the machine's load touches every estimator alike
  for (const c of TRAIN_CONFIGS) {
    const run = train(c, seed, path.join(work, `${c.id}-${seed}`));
    runs.get(c.id).push({ seed, ...run });
    const last = run.evals[run.evals.length - 1];
    log(`train ${c.id} seed ${seed}: ${run.wall.toFixed(1)} s, final eval accuracy ${fmt(last?.eval_reward_mean)}`);
  }
}

// The second fixed policy: the seed-0 remax run stopped after MID_STEP steps (same options, so the same trajectory).
const midDir = path.join(work, `remax-0-at-${MID_STEP}`);
const midRun = train(TRAIN_CONFIGS[0], 0, midDir, ['--stop-at', String(MID_STEP)]);
const strip = (r) => JSON.stringify(Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('time_') && k !== 'tokens_per_second')));
const fullRemax0 = runs.get('remax')[0];
const sameTrajectory = midRun.steps.length === MID_STEP
  && midRun.steps.every((r, i) => strip(r) === strip(fullRemax0.steps[i]));
log(`mid-training policy: remax seed 0 after ${MID_STEP} steps (same trajectory as the full run: ${sameTrajectory})`);

// 2. Gradient variance at fixed weights ----------------------------------------------------------------------------

const POINTS = [
  { id: 'start', label: 'start (the shipped model)', model: path.join(TASK, 'model.bin') },
  { id: 'mid', label: `remax seed 0 after ${MID_STEP} steps`, model: path.join(midDir, 'model.bin') },
  { id: 'end', label: `remax seed 0 after ${STEPS} steps`, model: path.join(work, 'remax-0', 'model.bin') },
];

async function greedyAccuracy(policy, task, scorer) {
  const trainer = new lib.ReMaxTrainer(policy, undefined, task.prompts, scorer,
    trainerOptions(lib, VAR_CONFIGS[0], { seed: 0, klCoef: 0, maxNew: task.maxNew, steps: 1 }));
  return trainer.evaluate(task.evalPrompts.slice(0, EVAL_SIZE));
}

async function gradientVariance(point, c, scorer) {
  const task = await loadTask(lib, point.model);
  const policy = await lib.RemaxEngine.create({ model: task.modelBytes, tokenizer: task.tokenizer });
  const trainer = new lib.ReMaxTrainer(policy, undefined, task.prompts, scorer,
    trainerOptions(lib, c, { seed: DRAW_SEED, klCoef: 0, maxNew: task.maxNew, steps: DRAWS }));
  const names = Object.keys(policy.readWeights());
  const before = policy.readWeights();
  let P = 0;
  let grads;
  const rewards = [];
  const advSq = [];
  let zeroDraws = 0;
  const t0 = performance.now();
  for (let n = 0; n < DRAWS; n++) {
    const m = await trainer.runStep({ update: false });
    rewards.push(m.reward_mean);
    advSq.push(m.advantage_std ** 2 + m.advantage_mean ** 2);
    const g = policy.readGradients();
    if (!grads) {
      P = names.reduce((s, k) => s + g[k].length, 0);
      grads = new Float32Array(DRAWS * P);
    }
    let o = n * P;
    let nonzero = false;
    for (const k of names) {
      grads.set(g[k], o);
      o += g[k].length;
    }
    for (let i = n * P; i < (n + 1) * P && !nonzero; i++) if (grads[i] !== 0) nonzero = true;
    if (!nonzero) zeroDraws++;
  }
  const seconds = (performance.now() - t0) / 1000;
  // The weights must not have moved.
  const after = policy.readWeights();
  const unchanged = names.every((k) => after[k].every((v, i) => v === before[k][i]));
  const gbar = new Float64Array(P);
  for (let n = 0; n < DRAWS; n++) for (let i = 0; i < P; i++) gbar[i] += grads[n * P + i];
  for (let i = 0; i < P; i++) gbar[i] /= DRAWS;
  const d = new Array(DRAWS).fill(0);
  const norms = new Array(DRAWS).fill(0);
  for (let n = 0; n < DRAWS; n++) {
    let s = 0, q = 0;
    for (let i = 0; i < P; i++) {
      const g = grads[n * P + i];
      s += (g - gbar[i]) ** 2;
      q += g * g;
    }
    d[n] = s;
    norms[n] = q;
  }
  const gbarSq = gbar.reduce((a, b) => a + b * b, 0);
  const variance = (mean(d) * DRAWS) / (DRAWS - 1); // unbiased trace of the covariance
  const varianceSe = (sd(d) / Math.sqrt(DRAWS)) * DRAWS / (DRAWS - 1);
  const meanSqUnbiased = gbarSq - variance / DRAWS; // ‖E g‖² without the noise ‖ḡ‖² carries
  return {
    point: point.id, id: c.id, params: P, draws: DRAWS, seconds, unchanged, variance, varianceSe, gbarSq, meanSqUnbiased,
    meanGradSq: mean(norms), snr: meanSqUnbiased / variance, reward: mean(rewards), advSq: mean(advSq), zeroDraws, gbar,
  };
}

const variance = [];
const pointInfo = [];
const scorer = makeScorer(lib);
for (const point of POINTS) {
  const task = await loadTask(lib, point.model);
  const policy = await lib.RemaxEngine.create({ model: task.modelBytes, tokenizer: task.tokenizer });
  const accuracy = await greedyAccuracy(policy, task, scorer);
  pointInfo.push({ ...point, accuracy });
  for (const c of VAR_CONFIGS) {
    const v = await gradientVariance(point, c, scorer);
    variance.push(v);
    log(`variance ${point.id} ${c.id}: E‖g−ḡ‖² = ${fmt(v.variance)} ± ${fmt(v.varianceSe)}, ‖ḡ‖² = ${fmt(v.gbarSq)}, ` +
      `${DRAWS} draws in ${v.seconds.toFixed(1)} s${v.unchanged ? '' : ' (WEIGHTS CHANGED!)'}`);
  }
}
const cosine = (a, b) => {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return ab / Math.sqrt(aa * bb);
};
const vget = (point, id) => variance.find((v) => v.point === point && v.id === id);

// Why the variances fall the way they do: per-sample score norms ‖∇ log π(y)‖² of correct and wrong samples, and the
// single-sample second moment E‖A·∇ log π(y)‖² under each baseline (the part of the variance the baseline controls).
const SCORE_SAMPLES = QUICK ? 32 : 512;
async function scoreNorms(point) {
  const task = await loadTask(lib, point.model);
  const policy = await lib.RemaxEngine.create({ model: task.modelBytes, tokenizer: task.tokenizer });
  policy.enableTraining({ maxSeqs: 16 });
  const names = Object.keys(policy.readWeights());
  const rows = []; // { r, rg, norm }
  for (let start = 0; start < SCORE_SAMPLES; start += 16) {
    const batch = task.prompts.slice(start, start + 16);
    const requests = batch.flatMap((p, i) => [
      { promptIds: p.promptIds, maxNewTokens: task.maxNew, temperature: 1, topP: 0.9, topK: 0, seed: BigInt(DRAW_SEED * 1_000_000 + start + i) },
      { promptIds: p.promptIds, maxNewTokens: task.maxNew, temperature: 0 },
    ]);
    const out = policy.generate(requests);
    const groups = batch.map((p, i) => [0, 1].map((j) => {
      const g = out[2 * i + j];
      return { prompt: p.prompt, completion: policy.decode(g.ids, g.promptIds), promptIds: g.promptIds, completionIds: g.ids, meta: p.meta };
    }));
    const { groupRewards } = await scorer(groups);
    batch.forEach((p, i) => {
      const ids = out[2 * i].ids;
      if (ids.length === 0) return;
      policy.zeroGradients();
      policy.accumulateGradients([{ ids: [...p.promptIds, ...ids], weights: [...new Array(p.promptIds.length).fill(0), ...new Array(ids.length).fill(1)] }]);
      const g = policy.readGradients();
      let norm = 0;
      for (const k of names) for (const v of g[k]) norm += v * v;
      const greedyIds = out[2 * i + 1].ids;
      const same = ids.length === greedyIds.length && ids.every((t, j) => t === greedyIds[j]);
      rows.push({ r: groupRewards[i][0], rg: groupRewards[i][1], norm, same });
    });
  }
  const right = rows.filter((x) => x.r === 1), wrong = rows.filter((x) => x.r === 0);
  const sumNorm = rows.reduce((a, x) => a + x.norm, 0);
  const bStar = rows.reduce((a, x) => a + x.r * x.norm, 0) / sumNorm; // argmin_b E‖(r − b)·s‖²
  const second = (adv) => mean(rows.map((x) => adv(x) ** 2 * x.norm));
  return {
    point: point.id, n: rows.length, pCorrect: right.length / rows.length, pGreedy: mean(rows.map((x) => x.rg)),
    pSame: mean(rows.map((x) => (x.same ? 1 : 0))),
    normSame: mean(rows.filter((x) => x.same).map((x) => x.norm)), normDiff: mean(rows.filter((x) => !x.same).map((x) => x.norm)),
    normRight: mean(right.map((x) => x.norm)), normWrong: mean(wrong.map((x) => x.norm)), bStar,
    mReinforce: second((x) => x.r), mRemax: second((x) => x.r - x.rg), mBest: second((x) => x.r - bStar),
    mMean: second((x) => x.r - right.length / rows.length),
  };
}
const norms = [];
for (const point of POINTS) {
  const n = await scoreNorms(point);
  norms.push(n);
  log(`score norms ${point.id}: ‖s‖² right ${fmt(n.normRight)}, wrong ${fmt(n.normWrong)}, b* ${fmt(n.bStar)}, ` +
    `E‖A s‖²: reinforce ${fmt(n.mReinforce)}, remax ${fmt(n.mRemax)}, best constant ${fmt(n.mBest)}`);
}

const totalSeconds = (performance.now() - started) / 1000;

// ---------------------------------------------------------------------------------------------------------------
// Tables

const steps = (run) => run.steps.map((r) => r.step);
// time_decode: the whole batched decode (the metrics split it into sampled and greedy parts by token counts).
const field = (run, f) => run.steps.map((r) => (f === 'time_decode' ? r.time_sampling + (r.time_greedy ?? 0) : r[f]));
const evalAt = (run, step) => run.evals.find((e) => e.step === step)?.eval_reward_mean;
const firstEvalAtLeast = (run, level) => run.evals.find((e) => e.eval_reward_mean >= level)?.step ?? null;
const window = (run, f, from, to) => mean(run.steps.filter((r) => r.step >= from && r.step <= to).map((r) => r[f]));
const per = (id, fn) => runs.get(id).map(fn);

const EARLY = Math.min(25, STEPS);
const LATE_FROM = Math.max(1, STEPS - 49);
const evalSteps = [0, EARLY, Math.min(50, STEPS), STEPS].filter((s, i, a) => a.indexOf(s) === i);

const rewardTable = [
  `| estimator | prompts × samples | decoded / step | scored / step | sampled reward, steps 1–${EARLY} | sampled reward, steps ${LATE_FROM}–${STEPS} | ` +
    evalSteps.map((s) => `eval acc. @${s}`).join(' | ') + ` | mean eval acc. (steps ${EVAL_EVERY}–${STEPS}) | first step eval ≥ ${EVAL_TARGET} | KL to start, last 50 steps |`,
  `| --- | --- | ---: | ---: | ---: | ---: | ${evalSteps.map(() => '---:').join(' | ')} | ---: | ---: | ---: |`,
  ...TRAIN_CONFIGS.map((c) => {
    const first = per(c.id, (r) => firstEvalAtLeast(r, EVAL_TARGET));
    const reached = first.filter((s) => s !== null);
    const firstText = reached.length === first.length ? pm(reached, 0) : `${reached.length ? pm(reached, 0) : '–'} (${first.length - reached.length} of ${first.length} never)`;
    return `| ${c.supplementary ? `*${c.estimator}*` : `**${c.estimator}**`} | ${shape(c)} | ${decoded(c)} | ${scored(c)} | ` +
      `${pm(per(c.id, (r) => window(r, 'reward_mean', 1, EARLY)))} | ${pm(per(c.id, (r) => window(r, 'reward_mean', LATE_FROM, STEPS)))} | ` +
      evalSteps.map((s) => pm(per(c.id, (r) => evalAt(r, s)))).join(' | ') + ' | ' +
      `${pm(per(c.id, (r) => mean(r.evals.filter((e) => e.step > 0).map((e) => e.eval_reward_mean))))} | ${firstText} | ` +
      `${pm(per(c.id, (r) => window(r, 'kl', LATE_FROM, STEPS)), 2)} |`;
  }),
];

const TIME_SPLIT = [['time_decode', 'decode (sampled + greedy)'], ['time_reward', 'reward'], ['time_reference', 'reference (KL)'],
  ['time_backward', 'backward'], ['time_optimizer', 'AdamW']];
const ms = (xs) => xs.map((x) => x * 1000);
const timeTable = [
  `| estimator | decoded / step | step (ms) | ${TIME_SPLIT.map(([, l]) => `${l} (ms)`).join(' | ')} | response length (tokens) | run wall time (s) |`,
  `| --- | ---: | ---: | ${TIME_SPLIT.map(() => '---:').join(' | ')} | ---: | ---: |`,
  ...TRAIN_CONFIGS.map((c) => `| ${c.supplementary ? `*${c.estimator}*` : `**${c.estimator}**`} ${shape(c)} | ${decoded(c)} | ` +
    `${pm(ms(per(c.id, (r) => mean(field(r, 'time_step')))), 2)} | ` +
    TIME_SPLIT.map(([f]) => pm(ms(per(c.id, (r) => mean(field(r, f)))), 2)).join(' | ') +
    ` | ${pm(per(c.id, (r) => mean(field(r, 'response_length_mean'))), 2)} | ${pm(per(c.id, (r) => r.wall), 1)} |`),
];

const memoryTable = [
  '| estimator | KL coef | policy WASM (MiB) | reference WASM (MiB) | process peak RSS (MiB) | peak RSS − loaded baseline (MiB) | step (ms, probe) |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...probes.map((p) => {
    const c = TRAIN_CONFIGS.find((t) => t.id === p.id);
    return `| ${c.supplementary ? `*${c.estimator}*` : `**${c.estimator}**`} ${shape(c)} | ${p.klCoef} | ${mib(p.wasmPolicy)} | ` +
      `${p.wasmReference ? mib(p.wasmReference) : '–'} | ${mib(p.rssPeak)} | ${mib(p.rssPeak - baseline.rssLoaded)} | ${(p.timeStep * 1000).toFixed(1)} |`;
  }),
];

const normsTable = [
  '| fixed policy | P(sample right) | P(greedy right) | P(sample = greedy response) | mean ‖s‖²: sample = greedy | sample ≠ greedy | right sample | wrong sample | b* | E‖A·s‖²: A = r (reinforce) | A = r − r(greedy) (remax) | A = r − P(right) | A = r − b* |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...norms.map((n) => `| ${POINTS.find((p) => p.id === n.point).label} | ${fmt(n.pCorrect)} | ${fmt(n.pGreedy)} | ${fmt(n.pSame)} | ` +
    `${fmt(n.normSame, 0)} | ${fmt(n.normDiff, 0)} | ${fmt(n.normRight, 0)} | ${fmt(n.normWrong, 0)} | ${fmt(n.bStar)} | ` +
    `${fmt(n.mReinforce, 0)} | ${fmt(n.mRemax, 0)} | ${fmt(n.mMean, 0)} | ${fmt(n.mBest, 0)} |`),
];

const varianceTable = [
  '| fixed policy | greedy eval acc. | estimator | decoded / draw | sampled reward | mean A² | E‖g − ḡ‖² (± s.e.) | ‖E g‖² (unbiased) | signal / noise ‖E g‖²/E‖g − ḡ‖² | variance ÷ reinforce 16×1 | draws with g = 0 |',
  '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...variance.map((v) => {
    const c = VAR_CONFIGS.find((x) => x.id === v.id);
    const p = pointInfo.find((x) => x.id === v.point);
    const ref = vget(v.point, 'reinforce 16×1');
    return `| ${p.label} | ${fmt(p.accuracy)} | ${v.id} | ${decoded(c)} | ${fmt(v.reward)} | ${fmt(v.advSq)} | ${fmt(v.variance)} ± ${fmt(v.varianceSe)} | ` +
      `${fmt(v.meanSqUnbiased)} | ${fmt(v.snr)} | ${fmt(v.variance / ref.variance, 2)} | ${v.zeroDraws} / ${v.draws} |`;
  }),
];

/** Ratio of two estimates with a delta-method standard error (independent draws). */
const ratio = (a, b) => {
  const r = a.variance / b.variance;
  return { r, se: r * Math.sqrt((a.varianceSe / a.variance) ** 2 + (b.varianceSe / b.variance) ** 2) };
};
const cosTable = [
  '| fixed policy | cos(ḡ remax, ḡ reinforce 16×1) | cos(ḡ rloo 16×2, ḡ reinforce 16×2) | cos(ḡ remax, ḡ rloo 16×2) | ‖ḡ remax‖ / ‖ḡ reinforce 16×1‖ |',
  '| --- | ---: | ---: | ---: | ---: |',
  ...POINTS.map((p) => {
    const a = vget(p.id, 'remax 16×1'), b = vget(p.id, 'reinforce 16×1'), c2 = vget(p.id, 'rloo 16×2'), d2 = vget(p.id, 'reinforce 16×2');
    return `| ${p.label} | ${fmt(cosine(a.gbar, b.gbar))} | ${fmt(cosine(c2.gbar, d2.gbar))} | ${fmt(cosine(a.gbar, c2.gbar))} | ${fmt(Math.sqrt(a.gbarSq / b.gbarSq))} |`;
  }),
];

// ---------------------------------------------------------------------------------------------------------------
// Charts (scripts/svg-charts.mjs)

/** Mean over seeds and ± one standard deviation, step by step, of a per-run curve. */
function seedBand(id, curve) {
  const per = runs.get(id).map(curve);
  const xs = per[0].xs;
  const at = (i) => per.map((p) => p.ys[i]);
  const ys = xs.map((_, i) => mean(at(i)));
  const s = xs.map((_, i) => sd(at(i)));
  return { xs, ys, lo: ys.map((y, i) => y - s[i]), hi: ys.map((y, i) => y + s[i]) };
}

const seedsText = `${SEEDS.length} seed${SEEDS.length > 1 ? 's' : ''}`;
const rewardSvg = lineChart({
  title: 'Sampled reward per step on the default task (a+b)',
  subtitle: `mean over ${seedsText} of a trailing ${SMOOTH}-step moving average; band: ± 1 s.d. over seeds; 32 decodes/step except reinforce 16×1 (16); grpo 16×2 ≡ rloo 16×2 on 0/1 rewards`,
  xLabel: 'step', yLabel: 'mean reward of sampled responses', yRange: [0.3, 1],
  series: TRAIN_CONFIGS.map((c) => ({
    label: label(c), color: c.color, dash: c.dash,
    ...seedBand(c.id, (r) => ({ xs: steps(r), ys: trailingMean(field(r, 'reward_mean'), SMOOTH) })),
  })).map((s, i) => (TRAIN_CONFIGS[i].dash ? { ...s, lo: undefined, hi: undefined } : s)),
});
const evalSvg = lineChart({
  title: 'Held-out greedy accuracy (eval.jsonl, 200 prompts)',
  subtitle: `every ${EVAL_EVERY} steps; mean over ${seedsText}; band: ± 1 s.d. over seeds`,
  xLabel: 'step', yLabel: 'greedy exact-match accuracy', yRange: [0.3, 1],
  series: TRAIN_CONFIGS.map((c) => ({
    label: label(c), color: c.color, dash: c.dash, markers: !c.dash,
    ...seedBand(c.id, (r) => ({ xs: r.evals.map((e) => e.step), ys: r.evals.map((e) => e.eval_reward_mean) })),
  })).map((s, i) => (TRAIN_CONFIGS[i].dash ? { ...s, lo: undefined, hi: undefined } : s)),
});
// GRPO is left out of the chart: at k = 2 it repeats RLOO, at k = 4 its variance is of a differently scaled gradient.
const CHART_VAR = VAR_CONFIGS.filter((c) => c.estimator !== 'grpo');
const varianceSvg = barChart({
  title: 'Gradient variance at fixed weights, E‖g − ḡ‖² (trace of the covariance)',
  subtitle: `${DRAWS} independent batches of 16 prompts per bar, KL off; error bar ± 1 s.e.; number: variance ÷ reinforce 16×1's at that policy; GRPO (another scale) is in the table`,
  yLabel: 'E‖g − ḡ‖²',
  legend: CHART_VAR.map((c) => ({ label: c.id, color: c.color })),
  groups: pointInfo.map((p) => ({
    label: [p.label, `greedy accuracy ${fmt(p.accuracy, 2)}`],
    bars: CHART_VAR.map((c) => {
      const v = vget(p.id, c.id);
      return { value: v.variance, err: v.varianceSe, color: c.color, text: fmt(v.variance / vget(p.id, 'reinforce 16×1').variance, 2) };
    }),
  })),
});
const timeSvg = stackedBars({
  title: 'Time per training step (ms), split',
  subtitle: `mean over the ${STEPS} steps of ${seedsText}; KL coef 0.05 (reference forward); decode holds the sampled and greedy responses in one batch`,
  yLabel: 'milliseconds per step',
  layers: [...TIME_SPLIT.map(([, l], i) => ({ label: l, color: ['#4e79a7', '#f28e2b', '#b07aa1', '#e15759', '#76b7b2'][i] })), { label: 'other', color: '#bab0ac' }],
  groups: TRAIN_CONFIGS.map((c) => {
    const parts = TIME_SPLIT.map(([f]) => mean(per(c.id, (r) => mean(field(r, f)))) * 1000);
    const total = mean(per(c.id, (r) => mean(field(r, 'time_step')))) * 1000;
    return { label: [c.estimator, shortShape(c)], parts: [...parts, Math.max(0, total - parts.reduce((a, b) => a + b, 0))] };
  }),
});
writeFileSync(path.join(chartDir, 'reward.svg'), rewardSvg);
writeFileSync(path.join(chartDir, 'eval.svg'), evalSvg);
writeFileSync(path.join(chartDir, 'variance.svg'), varianceSvg);
writeFileSync(path.join(chartDir, 'time.svg'), timeSvg);

// ---------------------------------------------------------------------------------------------------------------
// The reading: sentences whose direction follows the numbers

const rel = (a, b) => (a < b ? `${fmt((1 - a / b) * 100, 0)}% less than` : `${fmt((a / b - 1) * 100, 0)}% more than`);
const meanOf = (id, fn) => mean(per(id, fn));
const evalMean = (id) => meanOf(id, (r) => mean(r.evals.filter((e) => e.step > 0).map((e) => e.eval_reward_mean)));
const earlyReward = (id) => meanOf(id, (r) => window(r, 'reward_mean', 1, EARLY));
const stepMs = (id) => meanOf(id, (r) => mean(field(r, 'time_step'))) * 1000;
const ranking = (score) => [...MAIN].sort((a, b) => score(b.id) - score(a.id)).map((c) => `${label(c)} ${fmt(score(c.id))}`).join(' > ');

const varianceLines = POINTS.map((p) => {
  const rx = vget(p.id, 'remax 16×1'), rf = vget(p.id, 'reinforce 16×1'), rf2 = vget(p.id, 'reinforce 16×2'), rl = vget(p.id, 'rloo 16×2');
  const q = ratio(rx, rf), q2 = ratio(rx, rf2), q3 = ratio(rl, rf2);
  const sig = (x) => (Math.abs(x.r - 1) > 2 * x.se ? 'beyond two standard errors' : 'within two standard errors, i.e. not a clear difference');
  return `- **${p.label}** (greedy accuracy ${fmt(pointInfo.find((x) => x.id === p.id).accuracy, 2)}): remax's variance is ${fmt(q.r, 2)} ± ${fmt(q.se, 2)} × REINFORCE's at the same ` +
    `16 scored samples (${sig(q)}), and ${fmt(q2.r, 2)} ± ${fmt(q2.se, 2)} × REINFORCE's with 2 samples per prompt (the same 32 decodes; ${sig(q2)}). ` +
    `RLOO (16×2) is at ${fmt(q3.r, 2)} ± ${fmt(q3.se, 2)} × REINFORCE 16×2. Cosine of the two mean gradients: ` +
    `cos(ḡ remax, ḡ reinforce) = ${fmt(cosine(rx.gbar, rf.gbar))} (the noise left in two means of ${DRAWS} draws alone would hold it to about ` +
    `${fmt(1 / Math.sqrt((1 + rx.variance / (DRAWS * rx.meanSqUnbiased)) * (1 + rf.variance / (DRAWS * rf.meanSqUnbiased))))}).`;
});

/** "a vs b": the difference of two per-seed means against two standard errors over seeds. */
function seedCompare(idA, idB, fn, digits = 3) {
  const a = per(idA, fn), b = per(idB, fn);
  const se = Math.sqrt(sd(a) ** 2 / a.length + sd(b) ** 2 / b.length);
  const d = mean(a) - mean(b);
  const clear = a.length > 1 && Math.abs(d) > 2 * se;
  return `${pm(a, digits)} against ${pm(b, digits)} (${clear ? `${d < 0 ? 'lower' : 'higher'} by more than two standard errors over seeds` : 'not resolved by the seeds'})`;
}
const evalOf = (r) => mean(r.evals.filter((e) => e.step > 0).map((e) => e.eval_reward_mean));
const learningVerdict = `ReMax's mean held-out accuracy is ${seedCompare('remax', 'reinforce', evalOf)} for reinforce 16 × 2 at the same decodes, ` +
  `and ${seedCompare('remax', 'reinforce-16x1', evalOf)} for reinforce 16 × 1 at the same scored samples.`;

const verdictOf = (q) => (q.r - 2 * q.se > 1 ? 'higher' : q.r + 2 * q.se < 1 ? 'lower' : 'unresolved');
const remaxVsReinforce = POINTS.map((p) => ({ p, q: ratio(vget(p.id, 'remax 16×1'), vget(p.id, 'reinforce 16×1')) }));
const ratios = remaxVsReinforce.map(({ q }) => q.r);
const range = `${fmt(Math.min(...ratios), 2)}× to ${fmt(Math.max(...ratios), 2)}×`;
const varianceVerdict = remaxVsReinforce.every(({ q }) => verdictOf(q) === 'higher')
  ? `**On this task the paper's variance claim does not hold: at all ${POINTS.length} fixed policies ReMax's gradient is noisier than REINFORCE's** ` +
    `at the same 16 scored samples (${range} its variance), while both estimate the same mean gradient.`
  : remaxVsReinforce.every(({ q }) => verdictOf(q) === 'lower')
    ? `**At all ${POINTS.length} fixed policies ReMax's gradient variance is lower than REINFORCE's** at the same 16 scored samples (${range}), as the paper claims.`
    : `The comparison is mixed: ReMax's variance relative to REINFORCE's is ${remaxVsReinforce.map(({ p, q }) => `${verdictOf(q)} at ${p.label} (${fmt(q.r, 2)}×)`).join(', ')}.`;

const whyLines = norms.map((n) => `- **${POINTS.find((p) => p.id === n.point).label}**: ${fmt(n.pSame * 100, 0)}% of samples are the greedy response; ` +
  `the others have ${fmt(n.normDiff / n.normSame, 1)}× its ‖s‖²; a wrong sample has ${fmt(n.normWrong / n.normRight, 1)}× a right one's. ` +
  `E‖A·s‖² is ${fmt(n.mRemax, 0)} with the greedy baseline and ${fmt(n.mReinforce, 0)} with none ` +
  `(${n.mRemax > n.mReinforce ? 'the greedy baseline is worse' : 'the greedy baseline is better'}); the best constant, b* = ${fmt(n.bStar)}, gives ${fmt(n.mBest, 0)}.`);
const offModeHeavier = norms.every((n) => n.normDiff > n.normSame);
const baselineHurts = norms.every((n) => n.mRemax > n.mReinforce);
const remaxAdvSmaller = POINTS.every((p) => vget(p.id, 'remax 16×1').advSq < vget(p.id, 'reinforce 16×1').advSq);
const whyVerdict = whyLines.join('\n') + '\n\n' + (offModeHeavier && baselineHurts
  ? 'Under ReMax a sample carries a gradient only when its reward differs from the greedy response\'s, so only when it is *not* the ' +
    'greedy response: an off-mode, lower-probability sample, whose score ‖∇ log π(y)‖ is the largest. REINFORCE with a 0/1 reward ' +
    'weights the right samples instead, whether or not they are the greedy response. ' +
    (remaxAdvSmaller ? 'So although ReMax\'s advantages are smaller on average (the "mean A²" column above), they land on the samples ' +
      'with the largest scores, and the gradient\'s variance goes up. ' : 'So ReMax\'s advantages land on the samples with the largest scores. ') +
    (norms.every((n) => n.mMean < n.mReinforce) ? 'A constant baseline (the mean reward, or b*) does reduce the variance against none (last two columns)'
      : 'The best constant baseline b* does reduce the variance against none (last column)') + ': what hurts is a ' +
    'per-prompt baseline that is itself one noisy 0/1 outcome — the greedy reward for ReMax, the other sample\'s reward for RLOO ' +
    'with k = 2. '
  : 'These single-sample moments are only a diagnostic; where they order the estimators differently from the batch measurements ' +
    'above (which include the loss\'s token-mean normalisation), the batch measurements are the ones to trust.');

const cosGaps = POINTS.map((p) => {
  const rx = vget(p.id, 'remax 16×1'), rf = vget(p.id, 'reinforce 16×1');
  const bound = 1 / Math.sqrt((1 + rx.variance / (DRAWS * rx.meanSqUnbiased)) * (1 + rf.variance / (DRAWS * rf.meanSqUnbiased)));
  return { p, cos: cosine(rx.gbar, rf.gbar), bound };
}).filter((g) => g.cos < g.bound - 0.02);
const biasNote = cosGaps.length === 0
  ? 'The cosines between the mean gradients match what the noise of the means alone allows, so this effect is not visible here.'
  : `At ${cosGaps.map((g) => `${g.p.label} the cosine of remax's and REINFORCE's mean gradients (${fmt(g.cos)}) is below what the noise of the means alone allows (about ${fmt(g.bound)})`).join('; ')}: ` +
    'the two estimators\' means differ slightly there, which these effects can explain.';
const stepSplit = (id, f) => meanOf(id, (r) => mean(field(r, f))) * 1000;
const splitPair = (f) => `${fmt(stepSplit('remax', f), 2)} against ${fmt(stepSplit('reinforce', f), 2)}`;
const remaxMs = stepMs('remax'), reinforceMs = stepMs('reinforce'), reinforce1Ms = stepMs('reinforce-16x1');
const probeOf = (id, kl) => probes.find((p) => p.id === id && p.klCoef === kl);
const memLine = (kl) => TRAIN_CONFIGS.map((c) => `${label(c)} ${mib(probeOf(c.id, kl).wasmPolicy + probeOf(c.id, kl).wasmReference)} MiB WASM / ` +
  `${mib(probeOf(c.id, kl).rssPeak)} MiB peak RSS`).join(', ');

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const commit = (() => {
  const r = spawnSync('git', ['-C', ROOT, 'log', '-1', '--format=%h (%cd)', '--date=short'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : 'unknown';
})();
const PARAMS = vget('start', 'remax 16×1').params.toLocaleString('en-US');
const doc = `# Experiments: ReMax against REINFORCE, RLOO and GRPO on the default task

Generated by \`scripts/experiments.mjs\`; do not edit by hand. Regenerate with

\`\`\`sh
npm run build && node scripts/experiments.mjs
\`\`\`

(${fmt(totalSeconds / 60, 1)} minutes for this run; \`--quick\` is a smoke pass that writes under a temporary folder instead of \`docs/\`.)

- **Date:** ${new Date().toISOString().slice(0, 10)}
- **Code:** commit ${commit}, the \`dist/\` bundles built from it (copied at the start of the run).
- **Machine:** ${cpu}, ${os.cpus().length} cores, ${mib(os.totalmem() / 1024)} GiB, Node ${process.version}, ${baseline.build} kernels, one thread.
  The machine is shared: timings carry some noise (compare ratios measured in the same run).
- **Task:** the built-in default task ([assets/default-task](../assets/default-task/README.md)): prompts \`A+B=\` with A, B in 0..49, reward 1 for
  the exact sum then EOS (\`exact-match\`), else 0. The starting policy (a 2-layer, dim-64 Llama, ${PARAMS} parameters) was
  fine-tuned to answer the sum + 1 more often than the sum, so it starts at ${fmt(pointInfo[0].accuracy, 3)} greedy accuracy on the 200 held-out prompts.

The paper (Li et al. 2023, [arXiv:2310.10505](https://arxiv.org/abs/2310.10505)) claims that ReMax's baseline — the reward of the
greedy response to the same prompt — reduces the variance of the REINFORCE gradient, and that ReMax needs less memory and time
than PPO. Below is what this engine measures on this task, whichever way it falls.

## Setup

**Equal samples per step means equal *decoded* sequences per step: 32** (over 16 prompts; 8 for the k = 4 variants). Decoding is what an RL step usually pays for
(the responses are generated token by token), and ReMax's greedy response costs a decode like any sample. (On this task the
responses are about 3 tokens long and the backward pass is the larger cost: see the time table.) So:

| estimator | prompts × samples per step | decoded / step | scored samples that carry a gradient |
| --- | --- | ---: | ---: |
${TRAIN_CONFIGS.map((c) => `| ${c.supplementary ? `*${c.estimator}* (reference only)` : c.estimator} | ${shape(c)} | ${decoded(c)} | ${scored(c)} |`).join('\n')}

ReMax gets half the scored samples of the others at the same decode budget: its greedy response is the price of its baseline.
With k = 2 and a 0/1 reward, GRPO's advantages are RLOO's divided by 0.5 + 10⁻⁴ (±1 or 0 against ±0.9998 or 0), so grpo 16 × 2
repeats rloo 16 × 2 up to rounding; the 8 × 4 runs are where the two differ.
The supplementary *reinforce 16 × 1* run has ReMax's 16 scored samples at half the decodes, which is the comparison the paper's
variance argument makes (same samples, with and without the baseline).

Every run: \`node dist/cli.js train --quiet --steps ${STEPS} --eval-every ${EVAL_EVERY} --eval-size ${EVAL_SIZE} --sample-every 0 --checkpoint-every 0 --seed S
--estimator E --batch B --samples-per-prompt K\`, seeds ${SEEDS.join(', ')}. Everything else is the CLI default: AdamW at a constant lr 3e-4
(β 0.9/0.95, gradient clipped to norm 1), KL coefficient 0.05 to the starting policy, advantages clipped to ±5, token-mean loss,
sampling at temperature 1 with top-p 0.9, at most 64 new tokens. Evaluation: greedy decoding on the first ${EVAL_SIZE} prompts of
eval.jsonl (never trained on) every ${EVAL_EVERY} steps. The task is learned quickly (most of the gain lands in the first 25 steps), so
evaluation runs every ${EVAL_EVERY} steps rather than every 25.

## Reward curves

![Sampled reward per step](experiments/reward.svg)

![Held-out greedy accuracy](experiments/eval.svg)

Means ± standard deviation over the ${SEEDS.length} seeds (sampled reward: the mean over the steps named; "eval acc. @s": greedy
accuracy on the held-out prompts after s steps):

${rewardTable.join('\n')}

## Gradient variance at fixed weights

For each estimator, ${DRAWS} independent draws of \`trainer.runStep({ update: false })\` at fixed weights: each draw takes the next
16 prompts of the (seeded) data order and the next step's sampling seeds, decodes, scores, and computes the gradient of the
estimator's loss, with no optimizer step (the weights were checked to be bit-identical before and after${variance.every((v) => v.unchanged) ? ': they were' : ': THEY WERE NOT'}).
g is the flattened gradient of all ${PARAMS} parameters (\`policy.readGradients()\`), ḡ the mean of the draws,
E‖g − ḡ‖² the trace of the gradient's covariance (the n − 1 estimate; ± its standard error over draws) and ‖E g‖² = ‖ḡ‖² − E‖g − ḡ‖²/N
the squared norm of the mean gradient without the noise ‖ḡ‖² carries. KL is off (coefficient 0), so the estimators differ only
in their advantages. All configurations draw the same prompts in the same order (same data seed ${DRAW_SEED}); the samples differ.
Three fixed policies: the shipped starting model, the seed-0 remax run after ${MID_STEP} steps (reproduced by a run stopped there${sameTrajectory ? ', with a trajectory identical to the full run\'s' : ' — NOTE: its trajectory differed from the full run\'s'}), and the same run after ${STEPS} steps.

![Gradient variance](experiments/variance.svg)

${varianceTable.join('\n')}

REINFORCE, ReMax and RLOO estimate the same gradient (their baselines do not depend on the sampled response; up to the
token-mean normalisation and the top-p truncation, see the caveats), so their variances compare directly; the token-mean loss divides by the batch's token count, so 16 × 2 gradients are means over twice the samples. GRPO
divides each group's advantages by the group's reward standard deviation: it estimates a differently scaled gradient, and its
variance is not on the same scale (listed for completeness).

Cosines between the mean gradients (a check that the estimators agree on the direction they estimate):

${cosTable.join('\n')}

## Time and memory per iteration

![Time per step](experiments/time.svg)

From the training runs' metrics (mean over the ${STEPS} steps of each run, then mean ± s.d. over seeds; KL coefficient 0.05, so
each step also runs the reference policy's forward pass; the greedy responses are decoded in the same batched call as the samples,
so their time is inside "decode"):

${timeTable.join('\n')}

Peak memory, measured in a fresh child process per estimator (\`node scripts/experiments.mjs --probe …\`) that loads the default
task, builds the engines as \`remax train\` does and runs ${PROBE_STEPS} steps after ${PROBE_WARMUP} warm-up steps. "Policy/reference WASM" is each
engine's linear memory (\`engine.memoryBytes\`, which only grows, so it is the peak); "process peak RSS" is the child's \`VmHWM\`
(/proc/self/status) at the end, not \`process.resourceUsage().maxRSS\`: Linux carries maxRSS across fork and exec, so a child
reports at least its parent's peak RSS at spawn time, and this script's parent process grows large while it holds ${DRAWS}
gradients for the variance measurement. The probes run first, while it is small (for the first probe maxRSS reads
${mib(probes[0].maxRssReported)} MiB and VmHWM ${mib(probes[0].rssPeak)} MiB).
A process that only loads the task and the engines (no step) peaks at ${mib(baseline.rssLoaded)} MiB RSS with ${mib(baseline.wasmLoaded)} MiB of WASM memory.
The probe's own step time is a cross-check of the table above (fewer steps, so noisier).

${memoryTable.join('\n')}

## Reading

**Learning.** Mean held-out greedy accuracy over the evaluations after step 0: ${ranking(evalMean)}
(*reinforce 16 × 1*: ${fmt(evalMean('reinforce-16x1'))}). Mean sampled reward over steps 1–${EARLY}: ${ranking(earlyReward)}.
With ${seedsText}, differences smaller than the seed standard deviations in the table are not resolved. Every estimator learns the
task within a few tens of steps.
The sampled reward of remax averages 16 responses per step and that of the others 32. Over steps ${LATE_FROM}–${STEPS}, remax's greedy
responses to its training prompts score ${fmt(meanOf('remax', (r) => window(r, 'greedy_reward_mean', LATE_FROM, STEPS)))} against
${fmt(meanOf('remax', (r) => window(r, 'reward_mean', LATE_FROM, STEPS)))} for its samples. ${learningVerdict}

**Variance.** At the same 16 scored samples (the paper's comparison):
${varianceLines.join('\n')}

${varianceVerdict}

Why. A baseline b changes the variance through E‖(r − b)·s‖², s = ∇ log π(y) the sample's score; the constant that minimises it
is b* = E[r‖s‖²] / E[‖s‖²], the reward averaged with weights ‖s‖². ${SCORE_SAMPLES} samples per fixed policy (one per prompt, with
the greedy response to the same prompt; s of each sample by its own backward pass):

${normsTable.join('\n')}

${whyVerdict}

**Time.** A remax step (${fmt(remaxMs, 1)} ms) costs ${rel(remaxMs, reinforceMs)} a reinforce 16 × 2 step (${fmt(reinforceMs, 1)} ms) at the same 32
decodes, and ${rel(remaxMs, reinforce1Ms)} a reinforce 16 × 1 step (${fmt(reinforce1Ms, 1)} ms), which skips the greedy decode. Split
(remax against reinforce 16 × 2): decode ${splitPair('time_decode')} ms (32 sequences in one batched call each), reference forward
${splitPair('time_reference')} ms and backward ${splitPair('time_backward')} ms (remax runs them over its 16 sampled responses only, the others over
32). Against reinforce 16 × 1, remax's extra cost would be the greedy half of the decode, but the decode shares rows between
sequences whose tokens agree so far (the prompt always, and a sample for as long as it follows the greedy path, which a trained
policy's samples mostly do): remax decodes its 32 sequences in ${fmt(stepSplit('remax', 'time_decode'), 2)} ms against
${fmt(stepSplit('reinforce-16x1', 'time_decode'), 2)} ms for reinforce's 16. On this task responses are about 3 tokens long, so the backward pass, not decoding, is the largest part of a step.
With long responses decoding would dominate; then the share of a sample's tokens that follows the greedy path decides how
much of the greedy decode is free (all of it for a policy that has converged, none for a random one: see docs/BENCHMARKS.md).

**Memory.** With the KL penalty (0.05): ${memLine(0.05)}; without it: ${memLine(0)}.
The policy engine's memory is set by the model and the number of sequences decoded together, not by the estimator: every
configuration that decodes 32 sequences has the same ${mib(probeOf('remax', 0).wasmPolicy)} MiB policy memory, and reinforce 16 × 1 (16 sequences)
${mib(probeOf('reinforce-16x1', 0).wasmPolicy)} MiB. With the KL penalty, remax's reference engine is smaller
(${mib(probeOf('remax', 0.05).wasmReference)} against ${mib(probeOf('reinforce', 0.05).wasmReference)} MiB) because only the 16 sampled responses are scored by the
reference. At this model size (0.45 MiB of weights) the process's peak RSS is mostly Node itself and the WASM code
(${mib(baseline.rssLoaded)} MiB before the first step), so estimator differences of a few MiB are near the measurement's noise.

**What is not measured: PPO.** This engine has no PPO (no value model, no clipped surrogate over several epochs of minibatches), so
the claim "less memory and time than PPO" is not tested here. What the numbers do show is the part of the argument that does not
need PPO: a ReMax step holds one trainable model (plus the frozen reference for the KL term, which PPO needs too) and no value
network, and costs one batched decode, one reference forward and one backward pass. A PPO step on the same engine would add a value
model's weights, gradients and AdamW moments (for a value head of the policy's size: about the policy's own training footprint again)
and its forward and backward passes.

## Caveats

- One small task, one small model (${PARAMS} parameters), ${SEEDS.length} seeds; ${STEPS} steps each. The findings are about this task.
- The CLI defaults (lr 3e-4, KL 0.05, gradient clipping at norm 1) were not tuned per estimator. Gradient clipping and AdamW's
  normalisation change how gradient noise reaches the weights, so a variance ratio need not carry over one-to-one to the curves.
- Samples are drawn with top-p 0.9 while the loss uses log π of the full distribution, so E[b·∇ log π(y)] is not exactly 0 and a
  baseline can move the mean gradient a little; the token-mean loss (a ratio over the batch's token count) does too. ${biasNote}
- The variance is measured at three fixed policies on one run's path (seed 0 of remax); other policies would give other numbers.
- Times come from a shared 2-core machine; the table's standard deviations over seeds show how much they moved.
`;
// The learned-reward section (scripts/experiments-learned-reward.mjs) is its own script's: kept as it is.
const docPath = path.join(docsDir, 'EXPERIMENTS.md');
const LR_BEGIN = '<!-- learned-reward:begin -->';
const previous = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '';
const kept = previous.includes(LR_BEGIN) ? '\n' + previous.slice(previous.indexOf(LR_BEGIN)) : '';
writeFileSync(docPath, doc.replace(/\n*$/, '\n') + kept);
log(`wrote ${path.join(docsDir, 'EXPERIMENTS.md')} and 4 charts in ${chartDir} (${(totalSeconds / 60).toFixed(1)} min)`);
if (!KEEP && !argv.includes('--tmp')) rmSync(work, { recursive: true, force: true });
else log(`run folders kept in ${work}`);
