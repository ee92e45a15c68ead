// Reward models: the Bradley–Terry loss by hand, preference pairs and their refusals by line, `remax rm` learning a
// rule-decided preference on the tiny default-task model, exact resume, and the reward model's two forms (a Hugging
// Face …ForSequenceClassification folder, a llama2.c checkpoint with its head beside it) giving the same scores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bradleyTerry } from '../../src/core/bradley-terry';
import { loadPreferencePairs } from '../../src/core/preference-data';
import { RemaxEngine } from '../../src/core/engine';
import { withScoreHead } from '../../src/core/score-head';
import { parseCheckpoint } from '../../src/core/formats/llama2c';
import { Tokenizer } from '../../src/core/tokenizers/llama2c';
import { loadModelFromPath, modelFiles, writeModel } from '../../src/node/model-io';
import { parseSafetensors, serializeSafetensors } from '../../src/core/formats/safetensors';
import { RemaxInputError } from '../../src/core/errors';
import { sharedPath, skipUnlessShared } from './shared-data';

const CLI = path.resolve('dist/cli.js');
const TASK = path.resolve('assets/default-task');
const remax = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const metrics = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const tokenizer = () => Tokenizer.fromBytes(new Uint8Array(readFileSync(path.join(TASK, 'tokenizer.bin'))));

test('Bradley–Terry loss and gradient: a hand computation', () => {
  // margins 1.5 and −2: loss = (log(1 + e^−1.5) + log(1 + e^2)) / 2, ∂/∂r_chosen = −σ(−margin)/2.
  const bt = bradleyTerry([2, -1], [0.5, 1]);
  assert.ok(Math.abs(bt.loss - (0.2014132779827524 + 2.1269280110429727) / 2) < 1e-15, String(bt.loss));
  const expected = [-0.18242552380635635 / 2, -0.8807970779778823 / 2];
  bt.dChosen.forEach((d, i) => assert.ok(Math.abs(d - expected[i]!) < 1e-15, `dChosen[${i}] ${d}`));
  bt.dRejected.forEach((d, i) => assert.ok(Math.abs(d + expected[i]!) < 1e-15, `dRejected[${i}] ${d}`));
  assert.equal(bt.accuracy, 0.5);
  assert.equal(bt.meanMargin, (1.5 - 2) / 2);
  // The gradient is the loss's: central differences.
  const h = 1e-6;
  const fd = (bradleyTerry([2 + h, -1], [0.5, 1]).loss - bradleyTerry([2 - h, -1], [0.5, 1]).loss) / (2 * h);
  assert.ok(Math.abs(fd - bt.dChosen[0]!) < 1e-8);
  // Far margins do not overflow; a tie is a wrong ranking.
  assert.equal(bradleyTerry([1000], [0]).loss, 0);
  assert.equal(bradleyTerry([0], [1000]).loss, 1000);
  assert.equal(bradleyTerry([3], [3]).accuracy, 0);
});

test('preference pairs: prompt + response + EOS for each side; bad pairs refused with their line', () => {
  const tok = tokenizer();
  const enc = (s: string) => new TextEncoder().encode(s);
  const [pair] = loadPreferencePairs(enc('{"prompt":"1+2=","chosen":"3","rejected":"4"}\n'), 'p.jsonl', tok, 128);
  assert.deepEqual(pair!.chosen, [...tok.encodePrompt('1+2=3'), 2]);
  assert.deepEqual(pair!.rejected, [...tok.encodePrompt('1+2=4'), 2]);
  assert.equal(pair!.line, 1);
  // {"messages"}: without a template, as sft's --no-chat-template (the turns as the prompt).
  const [chat] = loadPreferencePairs(enc('{"messages":[{"role":"user","content":"1+2="}],"chosen":"3","rejected":"4"}'), 'p.jsonl', tok, 128, { disabled: true });
  assert.deepEqual(chat!.chosen, pair!.chosen);
  const refused = (text: string, pattern: RegExp, seqLen = 128, chat = {}) => assert.throws(
    () => loadPreferencePairs(enc(`{"prompt":"a","chosen":"b","rejected":"c"}\n\n${text}\n`), 'p.jsonl', tok, seqLen, chat),
    (e: unknown) => e instanceof RemaxInputError && pattern.test(e.message) && /p\.jsonl line 3/.test(e.message), text);
  refused('{"prompt":"a","chosen":"","rejected":"c"}', /"chosen" is empty/);
  refused('{"prompt":"a","chosen":"b","rejected":"b"}', /same text/);
  refused('{"prompt":"a","chosen":"b"}', /"rejected" is missing/);
  refused('{"prompt":"a","chosen":"b","rejected":7}', /"rejected" must be a string/);
  refused('{"chosen":"b","rejected":"c"}', /either "prompt" or "messages"/);
  refused(`{"prompt":"a","chosen":"${'x'.repeat(40)}","rejected":"c"}`, /"chosen" is \d+ tokens, longer than the context of 20/, 20);
  refused('{"prompt":', /not valid JSON/);
  refused('{"messages":[{"role":"user","content":"a"}],"chosen":"b","rejected":"c"}', /chat template/);
});

/** Pairs whose chosen response has one or two 7s and whose rejected has none: a rule the model must learn to see. */
function sevens(count: number, seed: number): string {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const digits = (n: number) => Array.from({ length: n }, () => { let d; do d = Math.floor(rnd() * 10); while (d === 7); return d; });
  return Array.from({ length: count }, () => {
    const chosen = digits(2 + Math.floor(rnd() * 3));
    for (let k = 1 + Math.floor(rnd() * 2); k > 0; k--) chosen[Math.floor(rnd() * chosen.length)] = 7;
    const prompt = `${Math.floor(rnd() * 50)}+${Math.floor(rnd() * 50)}=`;
    return JSON.stringify({ prompt, chosen: chosen.join(''), rejected: digits(2 + Math.floor(rnd() * 3)).join('') });
  }).join('\n') + '\n';
}

function workspace() {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-rm-'));
  writeFileSync(path.join(dir, 'train.jsonl'), sevens(400, 1));
  writeFileSync(path.join(dir, 'held.jsonl'), sevens(100, 2));
  const common = ['--model', path.join(TASK, 'model.bin'), '--tokenizer', path.join(TASK, 'tokenizer.bin'),
    '--pairs', path.join(dir, 'train.jsonl'), '--batch', '16', '--lr', '3e-3', '--seed', '3'];
  return { dir, common };
}

async function heldOutScores(model: string, dir: string): Promise<number[]> {
  const engine = await RemaxEngine.create({ model: await loadModelFromPath(model, '--model') });
  const pairs = loadPreferencePairs(readFileSync(path.join(dir, 'held.jsonl')), 'held.jsonl', tokenizer(), 128);
  return engine.scores(pairs.flatMap((p) => [p.chosen, p.rejected]));
}

test('remax rm learns a rule-decided preference to ≥ 90 % held-out accuracy in seconds; its two forms score the same', async () => {
  const w = workspace();
  try {
    const out = path.join(w.dir, 'rm');
    const started = performance.now();
    const r = remax('rm', ...w.common, '--eval-pairs', path.join(w.dir, 'held.jsonl'), '--steps', '60', '--eval-every', '20', '--out', out);
    const seconds = (performance.now() - started) / 1000;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /step 60\/60\s+loss/);
    const m = metrics(path.join(out, 'metrics.jsonl'));
    assert.deepEqual(Object.keys(m[1]), ['step', 'loss', 'accuracy', 'mean_margin', 'lr', 'grad_norm', 'seconds']);
    assert.ok(Math.abs(m[0].eval_accuracy - 0.5) < 0.2, `an untrained head ranks about at chance: ${m[0].eval_accuracy}`);
    const final = m.at(-1);
    assert.equal(final.step, 60);
    assert.ok(final.eval_accuracy >= 0.9, `held-out accuracy ${final.eval_accuracy}`);
    console.log(`remax rm: held-out accuracy ${m[0].eval_accuracy} → ${final.eval_accuracy} in 60 steps, ${seconds.toFixed(1)} s (with start-up)`);

    // llama2.c form: model.bin (no classifier stored) + model.bin.score, which run.c's reader still takes as an LM.
    const bin = path.join(out, 'model.bin');
    assert.equal(parseCheckpoint(new Uint8Array(readFileSync(bin))).config.sharedClassifier, true);
    const head = parseSafetensors(new Uint8Array(readFileSync(`${bin}.score`)));
    assert.deepEqual([...head.tensors.keys()], ['score.weight']);
    assert.deepEqual(head.tensors.get('score.weight')!.shape, [1, 64]);
    const scores = await heldOutScores(bin, w.dir);
    let right = 0;
    for (let i = 0; i < scores.length; i += 2) if (scores[i]! > scores[i + 1]!) right++;
    assert.equal(right / (scores.length / 2), final.eval_accuracy);

    // Saved as a Hugging Face folder and in llama2.c form again, loaded back: the same scores, bit for bit.
    const model = await loadModelFromPath(bin, '--model');
    const hf = path.join(w.dir, 'rm-hf'), again = path.join(w.dir, 'again.bin');
    writeModel(hf, modelFiles(model, { format: 'hf' }), '--out');
    writeModel(again, modelFiles(model, { format: 'llama2c' }), '--out');
    const config = JSON.parse(readFileSync(path.join(hf, 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['LlamaForSequenceClassification']);
    assert.deepEqual(config.id2label, { 0: 'LABEL_0' });
    const tensors = parseSafetensors(new Uint8Array(readFileSync(path.join(hf, 'model.safetensors'))));
    assert.ok(tensors.tensors.has('score.weight') && !tensors.tensors.has('lm_head.weight'));
    assert.deepEqual(await heldOutScores(hf, w.dir), scores);
    assert.deepEqual(await heldOutScores(again, w.dir), scores);
    assert.throws(() => modelFiles(model, { format: 'gguf' }), /not as GGUF/);
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('remax rm resumes bit for bit; a folder holding a run is refused unless --overwrite', () => {
  const w = workspace();
  try {
    const whole = path.join(w.dir, 'whole'), parts = path.join(w.dir, 'parts');
    for (const format of ['llama2c', 'hf']) {
      rmSync(whole, { recursive: true, force: true });
      rmSync(parts, { recursive: true, force: true });
      let r = remax('rm', ...w.common, '--steps', '12', '--format', format, '--out', whole);
      assert.equal(r.code, 0, r.stderr);
      r = remax('rm', ...w.common, '--steps', '12', '--format', format, '--stop-at', '5', '--out', parts);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /stopped at step 5/);
      r = remax('rm', '--resume', parts);
      assert.equal(r.code, 0, r.stderr);
      const files = format === 'hf' ? ['model/model.safetensors', 'model/config.json', 'model.state'] : ['model.bin', 'model.bin.score', 'model.bin.state'];
      for (const f of files) assert.ok(readFileSync(path.join(whole, f)).equals(readFileSync(path.join(parts, f))), `${format}: ${f} differs`);
      const strip = (rows: Record<string, unknown>[]) => rows.map(({ seconds: _s, ...rest }) => rest);
      assert.deepEqual(strip(metrics(path.join(parts, 'metrics.jsonl'))), strip(metrics(path.join(whole, 'metrics.jsonl'))));
    }
    // Two threads: the pairs split between two engines, the gradients summed: the same run up to rounding.
    const threaded = path.join(w.dir, 'threaded');
    let r = remax('rm', ...w.common, '--steps', '12', '--threads', '2', '--out', threaded);
    assert.equal(r.code, 0, r.stderr);
    const one = metrics(path.join(whole, 'metrics.jsonl')), two = metrics(path.join(threaded, 'metrics.jsonl'));
    one.forEach((m, i) => assert.ok(Math.abs(m.loss - two[i].loss) <= 1e-4 * Math.max(1, m.loss), `step ${m.step}: loss ${m.loss} (1 thread) vs ${two[i].loss} (2)`));
    r = remax('rm', ...w.common, '--steps', '2', '--out', whole);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /already holds a run/);
    r = remax('rm', ...w.common, '--steps', '2', '--out', whole, '--overwrite');
    assert.equal(r.code, 0, r.stderr);
    // A bad pair stops the run before anything is written, naming its line.
    writeFileSync(path.join(w.dir, 'bad.jsonl'), '{"prompt":"1+1=","chosen":"2","rejected":"3"}\n{"prompt":"1+1=","chosen":"2","rejected":"2"}\n');
    r = remax('rm', ...w.common, '--pairs', path.join(w.dir, 'bad.jsonl'), '--out', path.join(w.dir, 'bad'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.jsonl line 2: "chosen" and "rejected" are the same text/);
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('a reward model folder from transformers (LlamaForSequenceClassification) loads and scores as the same model in llama2.c form',
  { skip: skipUnlessShared('models/hf/stories260K/model.safetensors', 'models/stories260K.bin') }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'remax-rm-hf-'));
    try {
      // stories260K's folder turned into what save_pretrained writes for a reward model: score.weight, no lm_head.
      const source = sharedPath('models/hf/stories260K');
      const config = JSON.parse(readFileSync(path.join(source, 'config.json'), 'utf8'));
      Object.assign(config, { architectures: ['LlamaForSequenceClassification'], id2label: { 0: 'LABEL_0' }, label2id: { LABEL_0: 0 }, pad_token_id: 0 });
      const folder = path.join(dir, 'rm');
      rmSync(folder, { recursive: true, force: true });
      writeModel(folder, { 'config.json': new TextEncoder().encode(JSON.stringify(config)) }, '--out');
      const parsed = parseSafetensors(new Uint8Array(readFileSync(path.join(source, 'model.safetensors'))));
      const head = new Float32Array(64).map((_, i) => Math.sin(i) / 8);
      const tensors = [...parsed.tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data }));
      writeFileSync(path.join(folder, 'model.safetensors'), serializeSafetensors([...tensors, { name: 'score.weight', shape: [1, 64], data: head }]));
      const fromHf = await loadModelFromPath(folder, '--model');
      assert.equal(fromHf.architecture, 'LlamaForSequenceClassification');
      assert.equal(fromHf.config.scoreHead, true);
      // The same transformer from stories260K.bin, with the same head.
      const bin = withScoreHead(parseCheckpoint(new Uint8Array(readFileSync(sharedPath('models/stories260K.bin')))), 0);
      bin.weights.score!.set(head);
      const sequences = [[1, 429, 479, 331, 11], [1, 20, 30], [1, 7, 7, 7, 7, 7, 9, 300]];
      const a = (await RemaxEngine.create({ model: fromHf })).scores(sequences);
      const b = (await RemaxEngine.create({ model: bin })).scores(sequences);
      a.forEach((s, i) => assert.ok(Math.abs(s - b[i]!) <= 1e-5 * Math.max(1, Math.abs(b[i]!)), `sequence ${i}: ${s} (HF) vs ${b[i]} (llama2.c)`));
      // Written back, it keeps pad_token_id; num_labels other than 1 is refused.
      const written = modelFiles(fromHf, { format: 'hf' });
      assert.equal(JSON.parse(new TextDecoder().decode(written['config.json'])).pad_token_id, 0);
      writeFileSync(path.join(folder, 'config.json'), JSON.stringify({ ...config, id2label: { 0: 'A', 1: 'B' } }));
      await assert.rejects(loadModelFromPath(folder, '--model'), /num_labels 2/);
      copyFileSync(path.join(source, 'config.json'), path.join(folder, 'config.json'));
      await assert.rejects(loadModelFromPath(folder, '--model'), /score\.weight/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

test('qwen2-tiny: {"messages"} pairs through the chat template, up to the end of turn; a Qwen2ForSequenceClassification folder with its pad token and tokenizer',
  { skip: skipUnlessShared('models/hf/qwen2-tiny/model.safetensors') }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'remax-rm-qwen-'));
    try {
      const lines = Array.from({ length: 8 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `What is ${i}+${i}?` }], chosen: `${2 * i}`, rejected: `${2 * i + 1}` }));
      writeFileSync(path.join(dir, 'chat.jsonl'), lines.join('\n') + '\n');
      const out = path.join(dir, 'rm');
      const r = remax('rm', '--model', sharedPath('models/hf/qwen2-tiny'), '--context', '128', '--pairs', path.join(dir, 'chat.jsonl'), '--steps', '2', '--batch', '4', '--out', out);
      assert.equal(r.code, 0, r.stderr);
      const folder = path.join(out, 'model');
      const config = JSON.parse(readFileSync(path.join(folder, 'config.json'), 'utf8'));
      assert.deepEqual(config.architectures, ['Qwen2ForSequenceClassification']);
      assert.equal(config.pad_token_id, 151643); // the tokenizer's pad_token <|endoftext|>
      assert.equal(config.tie_word_embeddings, false);
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) assert.ok(readFileSync(path.join(folder, f)).length > 0, f);
      const model = await loadModelFromPath(folder, '--model');
      assert.equal(model.config.qkvBias, true);
      const engine = await RemaxEngine.create({ model, maxBatch: 4 });
      const pairs = loadPreferencePairs(readFileSync(path.join(dir, 'chat.jsonl')), 'chat.jsonl', engine.tokenizer!, 128);
      // The response's turn ends with <|im_end|>, where a policy's response ends too: the template's newline is not scored.
      for (const p of pairs) assert.equal(p.chosen.at(-1), 151645);
      assert.ok(engine.decode(pairs[3]!.chosen).endsWith('6'), engine.decode(pairs[3]!.chosen));
      const scores = engine.scores(pairs.map((p) => p.chosen));
      const hf = path.join(dir, 'again');
      writeModel(hf, modelFiles(model, { format: 'hf' }), '--out');
      assert.deepEqual((await RemaxEngine.create({ model: await loadModelFromPath(hf, '--model') })).scores(pairs.map((p) => p.chosen)), scores);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

test('withScoreHead drops an own classifier; a llama2.c head of another model is refused naming its file', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-rm-head-'));
  try {
    const lm = parseCheckpoint(new Uint8Array(readFileSync(path.join(TASK, 'model.bin'))));
    const unshared = { ...lm, config: { ...lm.config, sharedClassifier: false }, weights: { ...lm.weights, wcls: lm.weights.token_embedding_table.slice() } };
    const rm = withScoreHead(unshared, 4);
    assert.equal(rm.weights.wcls, undefined);
    assert.equal(rm.config.sharedClassifier, true);
    assert.ok(Math.abs(rm.weights.score!.reduce((s, v) => s + v * v, 0) / 64 - (1 / 65) ** 2) < 0.5 * (1 / 65) ** 2, 'std about 1/(dim+1)');
    assert.deepEqual(withScoreHead(unshared, 4).weights.score, rm.weights.score, 'seeded');
    const file = path.join(dir, 'rm.bin');
    writeModel(file, modelFiles(rm, { format: 'llama2c' }), '--out');
    writeFileSync(`${file}.score`, serializeSafetensors([{ name: 'score.weight', shape: [1, 32], data: new Float32Array(32) }]));
    await assert.rejects(loadModelFromPath(file, '--model'), (e: unknown) => e instanceof RemaxInputError && /rm\.bin\.score: score\.weight has shape \[1,32\] but the checkpoint beside it has dim 64/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
