// Makes the built-in default task of `remax train` (run with no arguments) in assets/default-task/:
//   tokenizer.bin  the byte-level llama2.c tokenizer (<unk>, BOS, EOS, then the 256 byte tokens <0x00>..<0xFF>)
//   train.jsonl    2000 RL prompts {"prompt": "12+7=", "answer": "19"}
//   eval.jsonl     200 held-out prompts, disjoint from train.jsonl (and from the SFT data)
//   model.bin      the starting policy: `remax init`, then `remax sft` on answers that are right only 40% of the time
//   README.md      the task, the reward, how the files were made and the measured starting accuracy
// Run after `npm run build`:  node scripts/make-default-task.mjs
// Everything is seeded: the same machine and Node version give the same bytes (the CLI's training may use relaxed
// SIMD, whose fused multiply-adds can round differently on other CPUs, so another machine may get other model bits).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'assets', 'default-task');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const LIBRARY = path.join(ROOT, 'dist', 'index.js');

// ---------------------------------------------------------------------------------------------------------------------
// The recipe. Changing any of these changes the shipped asset: rerun the script and update tests/node/default-task.test.ts.

const MAX_OPERAND = 49;          // a + b with a, b in 0..49: 2500 prompts, answers 0..98 (one or two digits)
const EVAL_COUNT = 200;
const TRAIN_COUNT = 2000;        // the other 300 prompts are only in the SFT data
const DATA_SEED = 2024;          // the split and the SFT labels
const P_CORRECT = 0.4;           // SFT label: the sum with this probability, else the sum + 1
const MODEL = { dim: 64, hidden: 172, layers: 2, heads: 4, vocab: 259, seq: 128, seed: 1 };
const SFT = { steps: 3000, batch: 32, lr: 3e-3, schedule: 'cosine', warmup: 20, seed: 1 };
const SAMPLING = { temperature: 1, topP: 0.9 };
const SAMPLE_SEEDS = [1, 2, 3, 4]; // sampled accuracy on eval.jsonl: the mean over these batch seeds
const MAX_NEW_TOKENS = 32;
const EOS = 2;

// ---------------------------------------------------------------------------------------------------------------------

/** mulberry32: a small, well-known 32-bit PRNG; the same floats on every JavaScript engine. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The llama2.c tokenizer.bin of tests/node/fixtures.ts syntheticTokenizerBin(): max_token_length 16, every score 0. */
function byteTokenizerBin() {
  const pieces = ['<unk>', '\n<s>\n', '\n</s>\n', ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)]
    .map((p) => new TextEncoder().encode(p));
  const out = new Uint8Array(4 + pieces.reduce((n, p) => n + 8 + p.length, 0));
  const view = new DataView(out.buffer);
  view.setInt32(0, 16, true);
  let o = 4;
  for (const p of pieces) {
    view.setFloat32(o, 0, true);
    view.setInt32(o + 4, p.length, true);
    out.set(p, o + 8);
    o += 8 + p.length;
  }
  return out;
}

/** The reward of remax train's built-in exact-match: the completion's first line, trimmed, equals the answer. */
const exactMatch = (completion, answer) => (completion.split('\n')[0].trim() === answer.trim() ? 1 : 0);

function remax(args) {
  console.error(`$ remax ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [CLI, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    console.error(`make-default-task: remax ${args[0]} failed (${r.error ? r.error.message : `exit code ${r.status}`})`);
    process.exit(1);
  }
}

const jsonl = (rows) => rows.map((row) => JSON.stringify(row)).join('\n') + '\n';
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const pct = (x) => `${(100 * x).toFixed(1)}%`;

async function main() {
  for (const file of [CLI, LIBRARY]) {
    if (!existsSync(file)) {
      console.error(`make-default-task: ${path.relative(ROOT, file)} is missing; run npm run build first`);
      process.exit(1);
    }
  }
  const started = performance.now();

  // 1. Prompts: every pair (a, b), shuffled; eval first, then train, then the SFT-only rest.
  const rng = mulberry32(DATA_SEED);
  const pairs = [];
  for (let a = 0; a <= MAX_OPERAND; a++) for (let b = 0; b <= MAX_OPERAND; b++) pairs.push([a, b]);
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j], pairs[i]];
  }
  const row = ([a, b]) => ({ prompt: `${a}+${b}=`, answer: String(a + b) });
  const evalRows = pairs.slice(0, EVAL_COUNT).map(row);
  const trainRows = pairs.slice(EVAL_COUNT, EVAL_COUNT + TRAIN_COUNT).map(row);
  // SFT: one line per non-eval prompt; the completion is the sum with probability P_CORRECT, else the sum + 1.
  const labels = mulberry32(DATA_SEED + 1);
  const sftRows = pairs.slice(EVAL_COUNT).map(([a, b]) => ({ prompt: `${a}+${b}=`, completion: String(a + b + (labels() < P_CORRECT ? 0 : 1)) }));
  // The SFT loss floor: the entropy of a label, H(P_CORRECT) nats per line, spread over its weighted tokens (digits + EOS).
  const bernoulliEntropy = -(P_CORRECT * Math.log(P_CORRECT) + (1 - P_CORRECT) * Math.log(1 - P_CORRECT));
  const labelEntropy = bernoulliEntropy * sftRows.length / sftRows.reduce((n, r) => n + r.completion.length + 1, 0);
  const sftCorrect = sftRows.filter((r, i) => r.completion === String(pairs[EVAL_COUNT + i][0] + pairs[EVAL_COUNT + i][1])).length / sftRows.length;

  mkdirSync(OUT, { recursive: true });
  const tokenizerBytes = byteTokenizerBin();
  writeFileSync(path.join(OUT, 'tokenizer.bin'), tokenizerBytes);
  writeFileSync(path.join(OUT, 'train.jsonl'), jsonl(trainRows));
  writeFileSync(path.join(OUT, 'eval.jsonl'), jsonl(evalRows));

  // 2. The starting policy: a random model, then SFT on the noisy answers (loss on the completion and EOS only).
  const work = mkdtempSync(path.join(tmpdir(), 'remax-default-task-'));
  let sftLoss;
  try {
    const tokenizerPath = path.join(work, 'tokenizer.bin'), initPath = path.join(work, 'init.bin');
    const sftPath = path.join(work, 'sft.jsonl'), modelPath = path.join(work, 'model.bin'), metricsPath = path.join(work, 'metrics.jsonl');
    writeFileSync(tokenizerPath, tokenizerBytes);
    writeFileSync(sftPath, jsonl(sftRows));
    remax(['init', '--out', initPath, '--dim', String(MODEL.dim), '--hidden', String(MODEL.hidden), '--layers', String(MODEL.layers),
      '--heads', String(MODEL.heads), '--vocab', String(MODEL.vocab), '--seq', String(MODEL.seq), '--seed', String(MODEL.seed)]);
    remax(['sft', '--model', initPath, '--tokenizer', tokenizerPath, '--data', sftPath, '--out', modelPath,
      '--steps', String(SFT.steps), '--batch', String(SFT.batch), '--lr', String(SFT.lr), '--lr-schedule', SFT.schedule,
      '--warmup-steps', String(SFT.warmup), '--seed', String(SFT.seed), '--metrics', metricsPath, '--log-every', String(SFT.steps / 10)]);
    const losses = readFileSync(metricsPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss);
    const last = losses.slice(-100);
    sftLoss = last.reduce((s, x) => s + x, 0) / last.length;
    writeFileSync(path.join(OUT, 'model.bin'), readFileSync(modelPath)); // the weights only, not the optimizer state
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  // 3. Measure the starting policy with the library, on the kernel build remax train picks (relaxed SIMD where it runs).
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    // not V8
  }
  const { RemaxEngine } = await import(pathToFileURL(LIBRARY).href);
  const engine = await RemaxEngine.create({ model: readFileSync(path.join(OUT, 'model.bin')), tokenizer: tokenizerBytes, maxBatch: 200 });
  const complete = (rows, sampling, seed) => {
    const results = [];
    for (let i = 0; i < rows.length; i += 200) {
      const chunk = rows.slice(i, i + 200);
      const outs = engine.generate(chunk.map((r) => ({ promptIds: engine.encode(r.prompt) })), { ...sampling, maxNewTokens: MAX_NEW_TOKENS, seed: seed * 1000 + i });
      outs.forEach((o, k) => {
        const eos = o.ids.indexOf(EOS);
        const text = engine.decode(eos < 0 ? o.ids : o.ids.slice(0, eos), o.promptIds);
        results.push({ row: chunk[k], text, eos: eos >= 0 });
      });
    }
    return results;
  };
  const accuracy = (results) => results.reduce((s, r) => s + exactMatch(r.text, r.row.answer), 0) / results.length;
  const greedy = { temperature: 0 };
  const greedyEval = complete(evalRows, greedy, 0);
  const m = {
    greedyEval: accuracy(greedyEval),
    greedyEval100: accuracy(greedyEval.slice(0, 100)),
    greedyTrain: accuracy(complete(trainRows, greedy, 0)),
    sampledEval: SAMPLE_SEEDS.reduce((s, seed) => s + accuracy(complete(evalRows, SAMPLING, seed)), 0) / SAMPLE_SEEDS.length,
    sampledTrain: accuracy(complete(trainRows, SAMPLING, 1)),
    // Format: one or two digits, then EOS.
    format: greedyEval.filter((r) => r.eos && /^\d{1,2}$/.test(r.text)).length / greedyEval.length,
    // Of the wrong greedy answers, how many are the sum + 1 (the SFT data's mistake).
    plusOne: (() => {
      const wrong = greedyEval.filter((r) => !exactMatch(r.text, r.row.answer));
      return wrong.length ? wrong.filter((r) => r.text === String(Number(r.row.answer) + 1)).length / wrong.length : 0;
    })(),
  };
  const examples = greedyEval.slice(0, 6).map((r) => `${r.row.prompt}${r.text}${exactMatch(r.text, r.row.answer) ? '' : `  (answer ${r.row.answer})`}`);

  // 4. The README, with the measured numbers.
  const files = ['tokenizer.bin', 'train.jsonl', 'eval.jsonl', 'model.bin'].map((name) => {
    const bytes = readFileSync(path.join(OUT, name));
    return { name, size: bytes.length, sha: sha256(bytes) };
  });
  const modelMiB = (files.find((f) => f.name === 'model.bin').size / 2 ** 20).toFixed(2);
  writeFileSync(path.join(OUT, 'README.md'), `# The default task of \`remax train\`

\`npx remax train\` with no arguments trains this: two-number addition, with a reward that checks the answer. It is
small enough to show ReMax raising the reward within minutes on a laptop CPU, and everything ships in the package (no
download). Made by \`node scripts/make-default-task.mjs\` (after \`npm run build\`); do not edit these files by hand.

## The task

A prompt is \`A+B=\` with A and B in 0..${MAX_OPERAND}; the answer is the sum in decimal (one or two digits), then the end of
the response (EOS). Each line of \`train.jsonl\` (${TRAIN_COUNT} prompts, for RL) and \`eval.jsonl\` (${EVAL_COUNT} held-out prompts) is

\`\`\`json
{"prompt":"12+7=","answer":"19"}
\`\`\`

The ${(MAX_OPERAND + 1) ** 2} pairs are shuffled with a seeded PRNG (mulberry32, seed ${DATA_SEED}): the first ${EVAL_COUNT} are \`eval.jsonl\`, the next
${TRAIN_COUNT} \`train.jsonl\`; the ${(MAX_OPERAND + 1) ** 2 - EVAL_COUNT - TRAIN_COUNT} left over are only in the SFT data. No eval prompt is in the training prompts or the SFT data.

**Reward** (the built-in \`exact-match\`): 1 if the completion, cut at EOS (the trainer stops there) and at the first
newline and trimmed, equals \`answer\`; else 0.

## The files

| file | bytes | what |
| --- | ---: | --- |
${files.map((f) => `| \`${f.name}\` | ${f.size} | ${{
    'tokenizer.bin': 'llama2.c tokenizer, byte level: `<unk>` = 0, BOS = 1, EOS = 2, then the 256 byte tokens `<0x00>`..`<0xFF>` (a character is its byte + 3); no merges',
    'train.jsonl': 'RL prompts with their answers',
    'eval.jsonl': 'held-out prompts with their answers',
    'model.bin': `the starting policy, llama2.c format (${modelMiB} MiB)`,
  }[f.name]} |`).join('\n')}

The tokenizer encodes a prompt as BOS, the dummy-prefix space, then one token per character (\`12+7=\` is 7 tokens).

## The starting policy

\`remax init --dim ${MODEL.dim} --hidden ${MODEL.hidden} --layers ${MODEL.layers} --heads ${MODEL.heads} --vocab ${MODEL.vocab} --seq ${MODEL.seq} --seed ${MODEL.seed}\` (a
Llama with ${MODEL.layers} layers; the context of ${MODEL.seq} leaves room for the trainer's default of 64 new tokens), then
\`remax sft --steps ${SFT.steps} --batch ${SFT.batch} --lr ${SFT.lr} --lr-schedule ${SFT.schedule} --warmup-steps ${SFT.warmup} --seed ${SFT.seed}\` on
${sftRows.length} lines \`{"prompt": "A+B=", "completion": ...}\` (every non-eval pair once; the loss is on the completion and
EOS only) whose completion is the sum with probability ${P_CORRECT} (seed ${DATA_SEED + 1}; ${pct(sftCorrect)} of the lines) and otherwise the
sum + 1. Trained to convergence (mean loss of the last 100 steps ${sftLoss.toFixed(3)} per token; the labels' own entropy is
${labelEntropy.toFixed(3)} per token), the policy knows the format and can add, but is torn between the sum and the sum + 1: its greedy
answer is one too high on ${pct((1 - m.greedyEval) * m.plusOne)} of the eval prompts. That leaves RL a clear, reachable gain (learn to prefer the
right one of the two), and the sampled responses are right often enough for the reward to teach it.

## Measured starting accuracy

With the ${engine.build} kernels, Node ${process.version}; responses of at most ${MAX_NEW_TOKENS} new tokens, scored with the reward above:

| | accuracy |
| --- | ---: |
| greedy, eval.jsonl (${evalRows.length}) | ${pct(m.greedyEval)} |
| greedy, the first 100 of eval.jsonl (what \`remax train\` evaluates by default) | ${pct(m.greedyEval100)} |
| greedy, train.jsonl (${trainRows.length}) | ${pct(m.greedyTrain)} |
| sampled (temperature ${SAMPLING.temperature}, top-p ${SAMPLING.topP}), eval.jsonl, mean of ${SAMPLE_SEEDS.length} seeds | ${pct(m.sampledEval)} |
| sampled (temperature ${SAMPLING.temperature}, top-p ${SAMPLING.topP}), train.jsonl | ${pct(m.sampledTrain)} |

Greedy responses in the format (one or two digits, then EOS): ${pct(m.format)}. Of the wrong greedy answers,
${pct(m.plusOne)} are the sum + 1. The first greedy answers on eval.jsonl:

\`\`\`
${examples.join('\n')}
\`\`\`

## Reproduce

\`\`\`sh
npm run build && node scripts/make-default-task.mjs
\`\`\`

Every step is seeded, so the same machine and Node version give the same bytes. The SFT step runs the CLI's kernels,
which use relaxed SIMD where the JavaScript engine accepts it; its fused multiply-adds may round differently on
another CPU, which can change the weights' bits a little. sha256 of this build:

\`\`\`
${files.map((f) => `${f.sha}  ${f.name}`).join('\n')}
\`\`\`
`);

  const total = files.reduce((s, f) => s + f.size, 0) + statSync(path.join(OUT, 'README.md')).size;
  console.log(`wrote ${path.relative(ROOT, OUT)}/: ${files.map((f) => `${f.name} ${f.size} B`).join(', ')}; ${total} B in all`);
  console.log(`greedy accuracy on eval.jsonl: ${pct(m.greedyEval)} (first 100: ${pct(m.greedyEval100)}); train.jsonl: ${pct(m.greedyTrain)}`);
  console.log(`sampled accuracy (temperature ${SAMPLING.temperature}, top-p ${SAMPLING.topP}) on eval.jsonl: ${pct(m.sampledEval)}; train.jsonl: ${pct(m.sampledTrain)}`);
  console.log(`format ok: ${pct(m.format)}; wrong greedy answers that are the sum + 1: ${pct(m.plusOne)}; SFT loss ${sftLoss.toFixed(3)}; ${engine.build} build`);
  console.log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

await main();
