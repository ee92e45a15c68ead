// The built-in default task of `remax train` (assets/default-task/, made by scripts/make-default-task.mjs): the files
// exist and fit together, the prompts are well formed and the eval prompts held out, and the starting policy is
// only partly right, as measured when the asset was made. A change that breaks the shipped asset fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { RemaxEngine } from '../../src/core/engine';
import { parseCheckpoint } from '../../src/core/formats/llama2c';
import { EOS_ID, Tokenizer } from '../../src/core/tokenizers/llama2c';
import { syntheticTokenizerBin } from './fixtures';

const DIR = path.resolve('assets/default-task');
const FILES = ['tokenizer.bin', 'model.bin', 'train.jsonl', 'eval.jsonl', 'README.md'];
const read = (name: string) => new Uint8Array(readFileSync(path.join(DIR, name)));

interface Row { prompt: string; answer: string }
const rows = (name: string): Row[] => readFileSync(path.join(DIR, name), 'utf8').split('\n').filter((l) => l.trim() !== '').map((l, i) => {
  const row = JSON.parse(l);
  assert.deepEqual(Object.keys(row).sort(), ['answer', 'prompt'], `${name} line ${i + 1}`);
  return row as Row;
});

/** The built-in exact-match reward: the completion's first line, trimmed, equals the answer. */
const exactMatch = (completion: string, answer: string) => completion.split('\n')[0]!.trim() === answer.trim();

/** Completions of `prompts` (cut at EOS) and whether each ended with EOS. */
function complete(engine: RemaxEngine, prompts: Row[], sampling: { temperature: number; topP?: number; seed?: number }) {
  const outs = engine.generate(prompts.map((r) => ({ promptIds: engine.encode(r.prompt) })), { ...sampling, maxNewTokens: 32 });
  return outs.map((o) => {
    const eos = o.ids.indexOf(EOS_ID);
    return { text: engine.decode(eos < 0 ? o.ids : o.ids.slice(0, eos), o.promptIds), eos: eos >= 0 };
  });
}

const accuracy = (prompts: Row[], texts: { text: string }[]) => texts.filter((t, i) => exactMatch(t.text, prompts[i]!.answer)).length / prompts.length;

const missing = FILES.filter((f) => !existsSync(path.join(DIR, f)));

test('default task: the files exist, are small, and the model and tokenizer fit together', async () => {
  assert.deepEqual(missing, [], `missing in ${DIR} (make them with node scripts/make-default-task.mjs)`);
  const total = FILES.reduce((n, f) => n + statSync(path.join(DIR, f)).size, 0);
  assert.ok(total < 1.5 * 2 ** 20, `the asset ships in the package: ${total} bytes`);
  // The byte-level tokenizer, byte for byte the one the tests build.
  assert.deepEqual(read('tokenizer.bin'), syntheticTokenizerBin());
  const tokenizer = Tokenizer.fromBytes(read('tokenizer.bin'), 'tokenizer.bin');
  assert.deepEqual(tokenizer.encode('12+7='), [1, 0x20 + 3, ...[...'12+7='].map((c) => c.charCodeAt(0) + 3)]);
  const model = read('model.bin');
  assert.ok(model.length < 2 ** 20, `model.bin is ${model.length} bytes`);
  const { config } = parseCheckpoint(model, 'model.bin');
  assert.equal(config.vocabSize, 259);
  const engine = await RemaxEngine.create({ model, tokenizer, modelSource: 'model.bin' });
  assert.equal(engine.config.vocabSize, tokenizer.vocabSize);
});

test('default task: train and eval prompts are well formed, answered correctly and disjoint', { skip: missing.length > 0 }, () => {
  const train = rows('train.jsonl'), evalRows = rows('eval.jsonl');
  assert.equal(train.length, 2000);
  assert.equal(evalRows.length, 200);
  const { config } = parseCheckpoint(read('model.bin'), 'model.bin');
  const tokenizer = Tokenizer.fromBytes(read('tokenizer.bin'), 'tokenizer.bin');
  for (const [name, set] of [['train.jsonl', train], ['eval.jsonl', evalRows]] as const) {
    for (const { prompt, answer } of set) {
      const m = /^(\d{1,2})\+(\d{1,2})=$/.exec(prompt);
      assert.ok(m, `${name}: prompt ${JSON.stringify(prompt)}`);
      assert.equal(answer, String(Number(m[1]) + Number(m[2])), `${name}: ${prompt}`);
      assert.match(answer, /^\d{1,2}$/);
      // remax train needs room for the prompt and its default of 64 new tokens.
      assert.ok(tokenizer.encode(prompt).length + 64 <= config.seqLen, `${prompt} + 64 tokens fit the context of ${config.seqLen}`);
    }
    assert.equal(new Set(set.map((r) => r.prompt)).size, set.length, `${name} has no repeated prompt`);
  }
  const trainPrompts = new Set(train.map((r) => r.prompt));
  const shared = evalRows.filter((r) => trainPrompts.has(r.prompt)).map((r) => r.prompt);
  assert.deepEqual(shared, [], 'eval prompts are held out');
});

test('default task: the starting policy knows the format but is only partly right', { skip: missing.length > 0 }, async () => {
  const evalRows = rows('eval.jsonl').slice(0, 100);
  const engine = await RemaxEngine.create({ model: read('model.bin'), tokenizer: read('tokenizer.bin'), maxBatch: evalRows.length });
  const greedy = complete(engine, evalRows, { temperature: 0 });
  // Format: one or two digits, then EOS.
  const formatted = greedy.filter((g) => g.eos && /^\d{1,2}$/.test(g.text)).length;
  assert.ok(formatted >= 95, `${formatted}/100 greedy answers are 1–2 digits then EOS`);
  // Measured when the asset was made: 38% greedy on these 100 prompts (assets/default-task/README.md).
  const greedyAccuracy = accuracy(evalRows, greedy);
  assert.ok(greedyAccuracy >= 0.2 && greedyAccuracy <= 0.6, `greedy accuracy ${greedyAccuracy} on the first 100 eval prompts, expected 20–60%`);
  // The designed mistake: wrong greedy answers are mostly the sum + 1.
  const wrong = greedy.map((g, i) => ({ g, r: evalRows[i]! })).filter(({ g, r }) => !exactMatch(g.text, r.answer));
  const plusOne = wrong.filter(({ g, r }) => g.text === String(Number(r.answer) + 1)).length;
  assert.ok(plusOne >= 0.7 * wrong.length, `${plusOne} of ${wrong.length} wrong greedy answers are the sum + 1`);
  // Sampled responses (the trainer's temperature 1, top-p 0.9) are right some of the time, so the reward can teach.
  const sampledAccuracy = accuracy(evalRows, complete(engine, evalRows, { temperature: 1, topP: 0.9, seed: 1 }));
  assert.ok(sampledAccuracy >= 0.15 && sampledAccuracy <= 0.65, `sampled accuracy ${sampledAccuracy}, expected 15–65%`);
});
