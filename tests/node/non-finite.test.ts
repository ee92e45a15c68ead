// Weights and training values that are not finite numbers. A model with a NaN generated "0 0 0 0 0" (or 511s) with
// exit code 0, and a NaN model or a huge --lr ended with "example 0: loss weight NaN at index N is not a finite
// number", which names neither the file nor the divergence. Now: a loaded model of any format with a NaN or an
// infinity is refused naming the file and the tensor (the format's own name), and training that produces one stops
// with "training diverged at step N: <what went non-finite>".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RemaxEngine, TrainingDivergedError } from '../../src/core/engine';
import { RemaxInputError } from '../../src/core/errors';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { checkWeightsFinite, loadModel, nonFiniteTensors } from '../../src/core/formats/load';
import { memoryFileSet } from '../../src/core/formats/file-set';
import { parseGguf } from '../../src/core/formats/gguf';
import { readSafetensorsHeader } from '../../src/core/formats/safetensors';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, type ModelConfig } from '../../src/core/config';
import { sharedPath, skipUnlessShared } from './shared-data';

const CLI = process.env.REMAX_CLI ?? path.resolve('dist/cli.js');
const remax = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const STORIES = sharedPath('models/stories260K.bin');
const skipShared = skipUnlessShared('models/stories260K.bin', 'models/hf/stories260K/model.safetensors', 'models/gguf/stories260K-f32.gguf');
const scratch = () => mkdtempSync(path.join(tmpdir(), 'remax-nonfinite-'));

const small = (over: Partial<ModelConfig> = {}): ModelConfig => ({
  dim: 16, hiddenDim: 24, nLayers: 3, nHeads: 4, nKvHeads: 2, vocabSize: 40, seqLen: 32,
  sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA, ...over,
});

async function rejectsInput(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<string> {
  let message = '';
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof RemaxInputError, `a RemaxInputError, got ${String(error)}`);
    message = error.message;
    for (const p of patterns) assert.match(message, p);
    return true;
  });
  return message;
}

test('nonFiniteTensors names the tensor as each format does: llama2.c (with the layer), Hugging Face, GGUF', () => {
  const config = small();
  const w = randomInitWeights(config, 1);
  const perLayer = 8 * 16; // wk: [layers, kvDim 8 (2 KV heads of 4), dim 16]
  w.wk[2 * perLayer + 5] = NaN; // layer 2 of wk
  w.w2[3] = Infinity;
  w.w2[4] = -Infinity;
  w.rms_final_weight[0] = NaN;
  const names = (format: string) => nonFiniteTensors(config, format, w).map((t) => `${t.name}:${t.count}:${t.first}`);
  assert.deepEqual(names('llama2c-v0'), ['wk (layer 2):1:NaN', 'w2 (layer 0):2:Infinity', 'rms_final_weight:1:NaN']);
  assert.deepEqual(names('hf'), ['model.layers.2.self_attn.k_proj.weight:1:NaN', 'model.layers.0.mlp.down_proj.weight:2:Infinity', 'model.norm.weight:1:NaN']);
  assert.deepEqual(names('gguf'), ['blk.2.attn_k.weight:1:NaN', 'blk.0.ffn_down.weight:2:Infinity', 'output_norm.weight:1:NaN']);
  assert.throws(() => checkWeightsFinite({ config, format: 'hf', weights: w }, 'tiny'), (e: unknown) =>
    e instanceof RemaxInputError && /tiny: tensor model\.layers\.2\.self_attn\.k_proj\.weight holds 1 value that is not finite \(the first is NaN\); so do 2 more tensors \(model\.layers\.0\.mlp\.down_proj\.weight, model\.norm\.weight\)/.test(e.message));
  assert.deepEqual(nonFiniteTensors(config, 'hf', randomInitWeights(config, 1)), []);
});

test('RemaxEngine.create refuses a LoadedModel with a NaN or an infinity (library users), naming modelSource; huge finite weights pass', async () => {
  const config = small();
  const weights = randomInitWeights(config, 2);
  weights.token_embedding_table[17] = NaN;
  await rejectsInput(RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' }, modelSource: 'mine.bin' }),
    /^mine\.bin: tensor token_embedding_table holds 1 value that is not finite \(the first is NaN\)/, /corrupt or was saved from a run that diverged/);
  weights.token_embedding_table[17] = -Infinity;
  await rejectsInput(RemaxEngine.create({ model: { config, weights, format: 'gguf' } }), /^model: tensor token_embd\.weight .*-Infinity/);
  // 1e30 is finite: its square overflows float32 in the SIMD pass, and the exact scan that follows finds nothing.
  weights.token_embedding_table[17] = 1e30;
  const engine = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' } });
  assert.equal(engine.readWeights().token_embedding_table[17], Math.fround(1e30));
  // writeWeights checks too.
  const bad = randomInitWeights(config, 3);
  bad.wo[100] = NaN;
  assert.throws(() => engine.writeWeights(bad, 'resume.bin'), /resume\.bin: tensor wo \(layer 0\) holds 1 value/);
  // Adam moments that are not finite: refused on resume.
  engine.enableTraining({ maxSeqs: 1 });
  const state = engine.readOptimizerState();
  state.v[5] = NaN;
  assert.throws(() => engine.writeOptimizerState(state), /optimizer state holds 1 second Adam moment that is not finite \(the first for tensor token_embedding_table\)/);
});

test('a NaN in a llama2.c, Hugging Face or GGUF file: every command that loads it says which file and which tensor (exit 2)', { skip: skipShared }, async () => {
  const dir = scratch();
  try {
    // llama2.c: a NaN at the 6th value of the token embedding (right after the 28-byte header).
    const bin = new Uint8Array(readFileSync(STORIES));
    new DataView(bin.buffer).setFloat32(28 + 4 * 5, NaN, true);
    const nanBin = path.join(dir, 'nan.bin');
    writeFileSync(nanBin, bin);
    const g = remax('generate', '--model', nanBin, '--prompt-ids', '1,2', '--max-new-tokens', '5');
    assert.equal(g.code, 2, `exit 2, not tokens: ${g.stdout}${g.stderr}`);
    assert.match(g.stderr, /nan\.bin: tensor token_embedding_table holds 1 value that is not finite \(the first is NaN\)/);
    assert.equal(g.stdout, '');
    for (const args of [['logprobs', '--model', nanBin, '--ids', '1,2,3'], ['export', '--model', nanBin, '--format', 'hf', '--out', path.join(dir, 'x')]]) {
      const r = remax(...args);
      assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /nan\.bin: tensor token_embedding_table/, args[0]);
    }

    // Hugging Face: +Infinity inside layer 2's k_proj (F32 safetensors), named as transformers names it.
    const hf = path.join(dir, 'hf');
    mkdirSync(hf);
    for (const f of ['config.json', 'generation_config.json']) copyFileSync(sharedPath(`models/hf/stories260K/${f}`), path.join(hf, f));
    const st = new Uint8Array(readFileSync(sharedPath('models/hf/stories260K/model.safetensors')));
    const header = readSafetensorsHeader(st, 'model.safetensors');
    const kProj = header.byName.get('model.layers.2.self_attn.k_proj.weight')!;
    new DataView(st.buffer).setFloat32(header.dataStart + kProj.begin + 4 * 7, Infinity, true);
    writeFileSync(path.join(hf, 'model.safetensors'), st);
    const h = remax('generate', '--model', hf, '--prompt-ids', '1,2', '--max-new-tokens', '5');
    assert.equal(h.code, 2, h.stderr);
    assert.match(h.stderr, /hf: tensor model\.layers\.2\.self_attn\.k_proj\.weight holds 1 value that is not finite \(the first is Infinity\)/);
    // The core entry point (the trainer page loads through it): the same through loadModel + RemaxEngine.create.
    const files = memoryFileSet('picked-folder', Object.fromEntries(['config.json', 'generation_config.json', 'model.safetensors']
      .map((f) => [f, new Uint8Array(readFileSync(path.join(hf, f)))])));
    await rejectsInput(loadModel(files).then((model) => RemaxEngine.create({ model, modelSource: files.source })),
      /^picked-folder: tensor model\.layers\.2\.self_attn\.k_proj\.weight/);

    // GGUF: a NaN in blk.1.ffn_down.weight.
    const gg = new Uint8Array(readFileSync(sharedPath('models/gguf/stories260K-f32.gguf')));
    const parsed = parseGguf(gg, 'f32.gguf');
    const down = parsed.tensors.find((t) => t.name === 'blk.1.ffn_down.weight')!;
    new DataView(gg.buffer).setFloat32(parsed.dataOffset + down.offset + 4 * 3, NaN, true);
    const nanGguf = path.join(dir, 'nan.gguf');
    writeFileSync(nanGguf, gg);
    const q = remax('generate', '--model', nanGguf, '--prompt-ids', '1,2', '--max-new-tokens', '5');
    assert.equal(q.code, 2, q.stderr);
    assert.match(q.stderr, /nan\.gguf: tensor blk\.1\.ffn_down\.weight holds 1 value that is not finite \(the first is NaN\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('TrainingDivergedError: a RemaxInputError whose message says "training diverged" and, with atStep, the step', () => {
  const e = new TrainingDivergedError('the loss is NaN', 'lower --lr');
  assert.ok(e instanceof RemaxInputError);
  assert.equal(e.message, 'training diverged: the loss is NaN; lower --lr');
  assert.equal(e.atStep(7).message, 'training diverged at step 7: the loss is NaN; lower --lr');
});

const noLossWeight = (stderr: string) => assert.doesNotMatch(stderr, /loss weight/, 'not the engine\'s input check');

test('remax train: --lr 3e38 and --lr 1e10 stop with "training diverged at step N" and what went non-finite, exit 2', { timeout: 180_000 }, () => {
  const dir = scratch();
  try {
    // --lr 3e38: the first update overflows the weights; nothing may save them.
    const huge = remax('train', '--lr', '3e38', '--out', path.join(dir, 'a'), '--steps', '5', '--quiet');
    assert.equal(huge.code, 2, huge.stderr);
    assert.match(huge.stderr, /training diverged at step 1: the update \(learning rate 3e\+38, gradient norm [\d.e+-]+\) made \d+ weights non-finite \(the first in tensor token_embedding_table\)/);
    noLossWeight(huge.stderr);
    // --lr 1e10 without clipping: the weights stay finite but stop giving finite logits at the next step.
    const big = remax('train', '--lr', '1e10', '--clip-norm', '0', '--out', path.join(dir, 'b'), '--steps', '20', '--quiet');
    assert.equal(big.code, 2, big.stderr);
    assert.match(big.stderr, /training diverged at step \d+: (the policy's log-probability of a sampled token \(response \d+\) is NaN|the gradient norm is NaN|the loss is NaN)/);
    noLossWeight(big.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('remax train: rewards too large to subtract give non-finite advantages: "training diverged at step 1: the advantage …"', { timeout: 120_000 }, () => {
  const dir = scratch();
  try {
    const reward = path.join(dir, 'huge.mjs');
    writeFileSync(reward, 'export default (samples) => samples.map(() => 1.7e308);\n');
    const r = remax('train', '--reward', reward, '--estimator', 'grpo', '--samples-per-prompt', '2', '--out', path.join(dir, 'run'), '--steps', '3', '--quiet');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /training diverged at step 1: the advantage of sample 0 is NaN \(grpo, rewards up to \|1\.7e\+308\|\); the rewards must be finite numbers/);
    noLossWeight(r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('remax sft: a learning rate that blows up says "training diverged at step N" (and the last good checkpoint loads)', { skip: skipUnlessShared('models/aidreams260K.bin', 'models/aidreams260K.tok512.bin'), timeout: 180_000 }, () => {
  const dir = scratch();
  try {
    const data = path.join(dir, 'data.jsonl');
    writeFileSync(data, Array.from({ length: 16 }, (_, i) => JSON.stringify({ text: `a small robot dreams of ${i} stars` })).join('\n') + '\n');
    const out = path.join(dir, 'out.bin');
    const r = remax('sft', '--model', sharedPath('models/aidreams260K.bin'), '--tokenizer', sharedPath('models/aidreams260K.tok512.bin'), '--data', data,
      '--out', out, '--steps', '30', '--lr', '1e12', '--clip-norm', '0', '--lr-schedule', 'constant', '--checkpoint-every', '1', '--batch', '2');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /training diverged at step \d+: /);
    noLossWeight(r.stderr);
    if (/last good checkpoint is/.test(r.stderr)) {
      const again = remax('generate', '--model', out, '--prompt-ids', '1,5', '--max-new-tokens', '2');
      assert.equal(again.code, 0, `the last good checkpoint has finite weights: ${again.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
