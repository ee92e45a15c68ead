// LoRA as a user runs it (dist/cli.js in a child process): remax sft and remax train with --lora-rank save a PEFT
// adapter folder (not the base), resume bit for bit, share gradients over --threads 2; generate --adapter and
// export --merge-lora agree, and the adapter is in transformers' layout (checked against a Hugging Face model's own
// safetensors: q_proj/k_proj rows in rotate-half order).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { syntheticTokenizerBin } from './fixtures';
import { parseSafetensors, serializeSafetensors, SAFETENSORS_DTYPES, type SafetensorsTensor } from '../../src/core/formats/safetensors';
import { loadEngineFromFiles } from '../../src/node/load';
import { Prng } from '../../src/core/prng';
import { RemaxInputError } from '../../src/core/errors';
import { parseTrainingState } from '../../src/core/training-state';
import { sharedPath, skipUnlessShared } from './shared-data';

const CLI = path.resolve('dist/cli.js');
const remax = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const withoutTimes = (rows: Record<string, unknown>[]) => rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('time') && k !== 'tokens_per_second' && k !== 'seconds')));
const tensors = (file: string) => parseSafetensors(new Uint8Array(readFileSync(file)), file, { dtypes: SAFETENSORS_DTYPES }).tensors;

function workspace() {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-lora-'));
  const tokenizer = path.join(dir, 'tok.bin');
  writeFileSync(tokenizer, syntheticTokenizerBin());
  const model = path.join(dir, 'init.bin');
  const init = remax('init', '--out', model, '--dim', '32', '--hidden', '64', '--layers', '2', '--heads', '4', '--kv-heads', '2',
    '--vocab', '259', '--seq', '48', '--seed', '1');
  assert.equal(init.code, 0, init.stderr);
  const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'ran'];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const docs = Array.from({ length: 60 }, () => Array.from({ length: 6 + Math.floor(next() * 6) }, () => words[Math.floor(next() * words.length)]).join(' ') + '.');
  const data = path.join(dir, 'data.txt');
  writeFileSync(data, docs.join('\n\n'));
  const prompts = path.join(dir, 'prompts.jsonl');
  writeFileSync(prompts, Array.from({ length: 24 }, (_, i) => JSON.stringify({ prompt: `${i % 10}+1=`, answer: String((i % 10) + 1) })).join('\n') + '\n');
  const reward = path.join(dir, 'reward.ts');
  writeFileSync(reward, `type Sample = { completion: string; meta: { answer: string } };
    export default (samples: Sample[]): number[] => samples.map((s) => (s.completion.includes(s.meta.answer) ? 1 : 0) + 0.1 * (s.completion.match(/[0-9]/g)?.length ?? 0));\n`);
  return { dir, tokenizer, model, data, prompts, reward };
}

const bytesOf = (t: Float32Array) => new Uint8Array(t.buffer, t.byteOffset, t.byteLength);

test('sft --lora-rank: a PEFT adapter folder that lowers the loss, leaves the base alone, and resumes bit for bit', () => {
  const w = workspace();
  try {
    const common = ['--model', w.model, '--tokenizer', w.tokenizer, '--data', w.data, '--batch', '6', '--lr', '3e-2', '--lora-rank', '3', '--lora-alpha', '6',
      '--lora-targets', 'q,v,o,down', '--lora-dropout', '0.1', '--steps', '12', '--lr-schedule', 'cosine', '--weight-decay', '0.1', '--seed', '4'];
    const base = readFileSync(w.model);
    const straight = path.join(w.dir, 'straight'), half = path.join(w.dir, 'half'), resumed = path.join(w.dir, 'resumed');
    const r = remax('sft', ...common, '--out', straight, '--metrics', path.join(w.dir, 'a.jsonl'));
    assert.equal(r.code, 0, r.stderr);
    const m = lines(path.join(w.dir, 'a.jsonl'));
    assert.ok(m[11].loss < m[0].loss - 0.15, `loss ${m.map((x) => x.loss)}`);
    assert.deepEqual(readFileSync(w.model), base, 'the base model is not written');
    // PEFT's files and names.
    const config = JSON.parse(readFileSync(path.join(straight, 'adapter_config.json'), 'utf8'));
    assert.equal(config.peft_type, 'LORA');
    assert.equal(config.task_type, 'CAUSAL_LM');
    assert.equal(config.r, 3);
    assert.equal(config.lora_alpha, 6);
    assert.equal(config.lora_dropout, 0.1);
    assert.equal(config.bias, 'none');
    assert.deepEqual(config.target_modules, ['q_proj', 'v_proj', 'o_proj', 'down_proj']);
    assert.equal(config.base_model_name_or_path, w.model);
    const t = tensors(path.join(straight, 'adapter_model.safetensors'));
    assert.equal(t.size, 2 * 4 * 2);
    assert.deepEqual(t.get('base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight')!.shape, [3, 32]);
    assert.deepEqual(t.get('base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight')!.shape, [32, 3]);
    assert.deepEqual(t.get('base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight')!.shape, [16, 3]);
    assert.deepEqual(t.get('base_model.model.model.layers.0.mlp.down_proj.lora_A.weight')!.shape, [3, 64]);
    assert.ok(t.get('base_model.model.model.layers.0.self_attn.o_proj.lora_B.weight')!.data.some((v) => v !== 0), 'B trained');
    // The state holds the adapters' moments only.
    const state = (dir: string) => {
      const { extra: { sftSettings: _s, ...extra }, m: mm, v, ...rest } = parseTrainingState(new Uint8Array(readFileSync(`${dir}.state`)), dir);
      return { ...rest, extra, m: bytesOf(mm), v: bytesOf(v), count: mm.length };
    };
    const adapterValues = 2 * (3 * 32 + 32 * 3) + 2 * (3 * 32 + 16 * 3) + 2 * (3 * 32 + 32 * 3) + 2 * (3 * 64 + 32 * 3);
    assert.ok(state(straight).count >= adapterValues && state(straight).count < adapterValues + 64, `${state(straight).count} moments`);
    // Half, then a resume: the same run.
    const stop = remax('sft', ...common, '--out', half, '--stop-at', '6', '--metrics', path.join(w.dir, 'b.jsonl'));
    assert.equal(stop.code, 0, stop.stderr);
    const go = remax('sft', '--resume', half, '--out', resumed, '--metrics', path.join(w.dir, 'b.jsonl'), '--activation-checkpointing');
    assert.equal(go.code, 0, go.stderr);
    assert.deepEqual(withoutTimes(lines(path.join(w.dir, 'b.jsonl'))), withoutTimes(m));
    assert.deepEqual(readFileSync(path.join(resumed, 'adapter_model.safetensors')), readFileSync(path.join(straight, 'adapter_model.safetensors')));
    assert.deepEqual(state(resumed), state(straight));
    // A resume keeps the run's LoRA settings: another rank, or LoRA on a run that trains every weight, is refused.
    assert.match(remax('sft', '--resume', half, '--out', path.join(w.dir, 'x'), '--lora-rank', '5').stderr, /--lora-rank 5: the run resumed from .* was started with --lora-rank 3/);
    const fullRun = path.join(w.dir, 'full.bin');
    assert.equal(remax('sft', '--model', w.model, '--tokenizer', w.tokenizer, '--data', w.data, '--steps', '1', '--out', fullRun).code, 0);
    assert.match(remax('sft', '--resume', fullRun, '--out', fullRun, '--lora-rank', '2').stderr, /--lora-rank 2: the run resumed from .* has no such setting/);
    // generate --adapter equals the merged model (export --merge-lora), greedy.
    const merged = path.join(w.dir, 'merged.bin');
    const e = remax('export', '--model', w.model, '--adapter', straight, '--merge-lora', '--out', merged);
    assert.equal(e.code, 0, e.stderr);
    const gen = (...args: string[]) => {
      const g = remax('generate', '--tokenizer', w.tokenizer, '--prompt', 'the cat', '--max-new-tokens', '12', '--temperature', '0', '--json', ...args);
      assert.equal(g.code, 0, g.stderr);
      return JSON.parse(g.stdout.trim().split('\n')[0]!).ids ?? JSON.parse(g.stdout.trim().split('\n')[0]!);
    };
    assert.deepEqual(gen('--model', w.model, '--adapter', straight), gen('--model', merged));
    assert.notDeepEqual(gen('--model', w.model, '--adapter', straight), gen('--model', w.model));
    // Helper threads apply the adapter too: the same tokens on two threads.
    const batch = (...args: string[]) => {
      const g = remax('generate', '--model', w.model, '--adapter', straight, '--tokenizer', w.tokenizer, '--prompt', 'the', '--max-new-tokens', '8', '--batch', '4', '--seed', '3', '--json', ...args);
      assert.equal(g.code, 0, g.stderr);
      return g.stdout.trim().split('\n').map((l) => JSON.parse(l).ids);
    };
    assert.deepEqual(batch('--threads', '2'), batch());
    const logprobs = (...args: string[]) => JSON.parse(remax('logprobs', '--ids', '1,5,9,12,7', '--json', ...args).stdout).logprobs as number[];
    const [adapted, mergedLp] = [logprobs('--model', w.model, '--adapter', straight), logprobs('--model', merged)];
    adapted.forEach((v, i) => assert.ok(Math.abs(v - mergedLp[i]!) <= 1e-4, `logprobs --adapter [${i}]: ${v} vs merged ${mergedLp[i]}`));
    // Clear refusals.
    assert.match(remax('sft', ...common, '--out', path.join(w.dir, 'x'), '--lora-dropout', '1').stderr, /--lora-dropout.*up to \(not including\) 1/);
    assert.match(remax('sft', ...common, '--out', path.join(w.dir, 'x'), '--format', 'hf').stderr, /PEFT adapter folder/);
    assert.match(remax('sft', ...common, '--out', path.join(w.dir, 'x'), '--lora-targets', 'q,attn').stderr, /unknown projection "attn"/);
    assert.match(remax('export', '--model', w.model, '--adapter', straight, '--out', merged).stderr, /--merge-lora/);
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('sft --lora-rank --threads 2: losses agree with one thread to rounding; the run replays exactly', () => {
  const w = workspace();
  try {
    const run = ['--model', w.model, '--tokenizer', w.tokenizer, '--data', w.data, '--batch', '6', '--lr', '1e-2', '--lora-rank', '2', '--steps', '4', '--seed', '2'];
    const losses = (name: string, ...extra: string[]) => {
      const file = path.join(w.dir, `${name}.jsonl`);
      const r = remax('sft', ...run, ...extra, '--out', path.join(w.dir, name), '--metrics', file);
      assert.equal(r.code, 0, r.stderr);
      return lines(file).map((m) => m.loss as number);
    };
    const one = losses('one'), two = losses('two', '--threads', '2'), again = losses('again', '--threads', '2');
    two.forEach((loss, i) => assert.ok(Math.abs(loss - one[i]!) <= 1e-5 * one[i]!, `step ${i + 1}: ${loss} vs ${one[i]}`));
    assert.deepEqual(again, two);
    assert.deepEqual(readFileSync(path.join(w.dir, 'again', 'adapter_model.safetensors')), readFileSync(path.join(w.dir, 'two', 'adapter_model.safetensors')));
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('train --lora-rank: the KL reference is the base (no reference file), every estimator runs, and a resume is exact (also on 2 threads)', () => {
  const w = workspace();
  try {
    const common = ['--model', w.model, '--tokenizer', w.tokenizer, '--prompts', w.prompts, '--reward', w.reward, '--max-new-tokens', '6', '--batch', '4',
      '--eval-every', '0', '--quiet', '--lora-rank', '4', '--lora-alpha', '8', '--lora-dropout', '0.05', '--kl-coef', '0.1', '--lr', '1e-2'];
    for (const estimator of ['remax', 'reinforce', 'reinforce-ema', 'rloo', 'grpo']) {
      const out = path.join(w.dir, estimator);
      const r = remax('train', ...common, '--steps', '2', '--samples-per-prompt', '2', '--estimator', estimator, '--out', out);
      assert.equal(r.code, 0, `${estimator}: ${r.stderr}`);
      assert.equal(lines(path.join(out, 'metrics.jsonl')).length, 2);
      assert.ok(existsSync(path.join(out, 'adapter', 'adapter_config.json')) && existsSync(path.join(out, 'adapter.state')));
      assert.ok(!existsSync(path.join(out, 'reference.bin')) && !existsSync(path.join(out, 'model.bin')), 'adapters only');
    }
    const saved = JSON.parse(readFileSync(path.join(w.dir, 'remax', 'config.json'), 'utf8'));
    assert.equal(saved['lora-rank'], 4);
    assert.equal(saved['lora-alpha'], 8);
    for (const threads of ['1', '2']) {
      const run = [...common, '--steps', '6', '--seed', '3', '--threads', threads];
      const a = path.join(w.dir, `a${threads}`), b = path.join(w.dir, `b${threads}`);
      assert.equal(remax('train', ...run, '--out', a).code, 0);
      assert.equal(remax('train', ...run, '--out', b, '--stop-at', '3').code, 0);
      const resumed = remax('train', '--resume', b, '--quiet');
      assert.equal(resumed.code, 0, resumed.stderr);
      const metrics = lines(path.join(a, 'metrics.jsonl'));
      // Fresh adapters (B = 0): the policy is the base, KL 0 but for the rounding of decoding vs teacher forcing.
      assert.ok(Math.abs(metrics[0].kl) < 1e-5, `step 1: KL ${metrics[0].kl}`);
      assert.ok(Math.abs(metrics[5].kl) > 10 * Math.abs(metrics[0].kl) + 1e-5, `the adapters move the policy away from the base: KL ${metrics.map((m) => m.kl)}`);
      assert.deepEqual(withoutTimes(lines(path.join(b, 'metrics.jsonl'))), withoutTimes(metrics));
      assert.deepEqual(readFileSync(path.join(b, 'adapter', 'adapter_model.safetensors')), readFileSync(path.join(a, 'adapter', 'adapter_model.safetensors')));
    }
    assert.match(remax('train', '--resume', path.join(w.dir, 'a1'), '--lora-alpha', '3', '--quiet').stderr, /--lora-alpha 3: .* was started with --lora-alpha 8/);
    // --overwrite clears a LoRA run's files too.
    const again = remax('train', ...common, '--steps', '1', '--out', path.join(w.dir, 'a1'), '--overwrite');
    assert.equal(again.code, 0, again.stderr);
    assert.equal(lines(path.join(w.dir, 'a1', 'metrics.jsonl')).length, 1);
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
});

/** A Hugging Face folder's tensors, from one file or all the shards of its index. */
function folderTensors(dir: string): Map<string, { shape: number[]; data: Float32Array }> {
  const index = path.join(dir, 'model.safetensors.index.json');
  if (!existsSync(index)) return tensors(path.join(dir, 'model.safetensors'));
  const files = new Set(Object.values(JSON.parse(readFileSync(index, 'utf8')).weight_map as Record<string, string>));
  return new Map([...files].flatMap((file) => [...tensors(path.join(dir, file))]));
}

for (const [name, layers] of [['qwen2-tiny', [0, 2, 1, 1]], ['llama3-tiny', [0, 1, 1, 0]]] as const) {
  test(`a LoRA adapter of a Hugging Face model (${name}) is in transformers' layout: base + s·B·A equals the merged export, and generation agrees`,
    { skip: skipUnlessShared(`models/hf/${name}/config.json`) }, () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'remax-lora-hf-'));
    try {
      const hf = sharedPath(`models/hf/${name}`);
      const data = path.join(dir, 'data.txt');
      writeFileSync(data, Array.from({ length: 8 }, (_, i) => `The number ${i} comes after ${i - 1} and before ${i + 1}.`).join('\n\n'));
      const adapter = path.join(dir, 'adapter');
      const r = remax('sft', '--model', hf, '--context', '64', '--data', data, '--batch', '2', '--steps', '3', '--lr', '5e-2', '--lora-rank', '2',
        '--lora-targets', 'q,k,v,up', '--out', adapter);
      assert.equal(r.code, 0, r.stderr);
      const merged = path.join(dir, 'merged');
      const e = remax('export', '--model', hf, '--adapter', adapter, '--merge-lora', '--format', 'hf', '--dtype', 'f32', '--out', merged);
      assert.equal(e.code, 0, e.stderr);
      // transformers' merge, by hand from the base's own tensors and the adapter file: W + (alpha/r)·B·A.
      const base = folderTensors(hf), lora = tensors(path.join(adapter, 'adapter_model.safetensors')), out = folderTensors(merged);
      const modules = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'mlp.up_proj'];
      for (const name of modules.map((m, i) => `model.layers.${layers[i]}.${m}.weight`)) {
        const W = base.get(name)!, prefix = `base_model.model.${name.replace(/\.weight$/, '')}`;
        const A = lora.get(`${prefix}.lora_A.weight`)!, B = lora.get(`${prefix}.lora_B.weight`)!;
        const [rows, cols] = W.shape as [number, number], rank = A.shape[0]!;
        assert.ok(B.data.some((v) => v !== 0), `${name}: B trained`);
        let maxDiff = 0, maxDelta = 0;
        for (let o = 0; o < rows; o++) {
          for (let i = 0; i < cols; i++) {
            let d = 0;
            for (let k = 0; k < rank; k++) d += B.data[o * rank + k]! * A.data[k * cols + i]!;
            maxDelta = Math.max(maxDelta, Math.abs(d));
            maxDiff = Math.max(maxDiff, Math.abs(W.data[o * cols + i]! + (2 / 2) * d - out.get(name)!.data[o * cols + i]!));
          }
        }
        assert.ok(maxDelta > 1e-4, `${name}: the adapter changes the weight (${maxDelta})`);
        assert.ok(maxDiff <= 1e-6 + 1e-3 * maxDelta, `${name}: merged by hand vs export differ by ${maxDiff} (delta ${maxDelta})`);
      }
      // Our base + adapter generates what the merged plain model does.
      const gen = (...args: string[]) => {
        const g = remax('generate', '--context', '64', '--prompt', 'The number 3', '--max-new-tokens', '10', '--temperature', '0', '--json', ...args);
        assert.equal(g.code, 0, g.stderr);
        return JSON.parse(g.stdout.trim().split('\n')[0]!);
      };
      assert.deepEqual(gen('--model', hf, '--adapter', adapter).ids, gen('--model', merged).ids);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('a PEFT adapter written as PEFT writes it (BF16, its own key order and fields) loads: base + adapter equals the model merged in transformers\' layout',
  { skip: skipUnlessShared('models/hf/qwen2-tiny/model.safetensors') }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'remax-peft-'));
    try {
      const hf = sharedPath('models/hf/qwen2-tiny');
      const base = tensors(path.join(hf, 'model.safetensors'));
      const rank = 4, alpha = 16, modules = ['k_proj', 'q_proj', 'down_proj'];
      const rng = new Prng(5);
      const adapter: SafetensorsTensor[] = [], merged = new Map([...base].map(([name, t]) => [name, { ...t, data: Float32Array.from(t.data) }]));
      for (let l = 0; l < 3; l++) {
        for (const module of modules) {
          const name = `model.layers.${l}.${module === 'down_proj' ? 'mlp' : 'self_attn'}.${module}`;
          const W = merged.get(`${name}.weight`)!, [rows, cols] = W.shape as [number, number];
          // Values exactly representable in BF16, so the file's BF16 is lossless.
          const bf = (x: number) => { const f = new Float32Array([x]); new Uint32Array(f.buffer)[0]! &= 0xffff0000; return f[0]!; };
          const A = Float32Array.from({ length: rank * cols }, () => bf((2 * rng.nextFloat64() - 1) * 0.5));
          const B = Float32Array.from({ length: rows * rank }, () => bf((2 * rng.nextFloat64() - 1) * 0.5));
          adapter.push({ name: `base_model.model.${name}.lora_B.weight`, shape: [rows, rank], data: B, dtype: 'BF16' });
          adapter.push({ name: `base_model.model.${name}.lora_A.weight`, shape: [rank, cols], data: A, dtype: 'BF16' });
          for (let o = 0; o < rows; o++) for (let i = 0; i < cols; i++) {
            let d = 0;
            for (let k = 0; k < rank; k++) d += B[o * rank + k]! * A[k * cols + i]!;
            W.data[o * cols + i] = W.data[o * cols + i]! + (alpha / rank) * d;
          }
        }
      }
      const adapterDir = path.join(dir, 'peft'), mergedDir = path.join(dir, 'merged');
      mkdirSync(adapterDir);
      mkdirSync(mergedDir);
      writeFileSync(path.join(adapterDir, 'adapter_model.safetensors'), serializeSafetensors(adapter, { format: 'pt' }));
      writeFileSync(path.join(adapterDir, 'adapter_config.json'), JSON.stringify({
        alpha_pattern: {}, auto_mapping: null, base_model_name_or_path: 'tiny/qwen2', bias: 'none', fan_in_fan_out: false, inference_mode: true,
        init_lora_weights: true, layer_replication: null, layers_pattern: null, layers_to_transform: null, loftq_config: {}, lora_alpha: alpha,
        lora_dropout: 0.05, megatron_config: null, megatron_core: 'megatron.core', modules_to_save: null, peft_type: 'LORA', r: rank, rank_pattern: {},
        revision: null, target_modules: modules, task_type: 'CAUSAL_LM', use_dora: false, use_rslora: false,
      }));
      writeFileSync(path.join(mergedDir, 'model.safetensors'), serializeSafetensors([...merged].map(([name, t]) => ({ name, shape: t.shape, data: t.data }))));
      for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) writeFileSync(path.join(mergedDir, file), readFileSync(path.join(hf, file)));
      const withAdapter = await loadEngineFromFiles({ model: hf, context: 64, adapter: adapterDir });
      const plain = await loadEngineFromFiles({ model: mergedDir, context: 64 });
      assert.deepEqual(withAdapter.lora, { rank, alpha, targets: ['q', 'k', 'down'], dropout: 0.05 });
      const seqs = [withAdapter.encode('The number 3 comes after 2'), withAdapter.encode('Hello')];
      const a = withAdapter.logprobs(seqs), b = plain.logprobs(seqs), off = withAdapter.logprobs(seqs, { adapters: false });
      let diff = 0, moved = 0;
      a.forEach((row, s) => row.forEach((v, t) => { diff = Math.max(diff, Math.abs(v - b[s]![t]!)); moved = Math.max(moved, Math.abs(v - off[s]![t]!)); }));
      assert.ok(moved > 1e-2, `the adapter changes the model (${moved})`);
      assert.ok(diff < 1e-3, `adapter vs merged log-probabilities differ by ${diff}`);
      // What PEFT options this engine cannot honour are refused by name.
      const config = JSON.parse(readFileSync(path.join(adapterDir, 'adapter_config.json'), 'utf8'));
      for (const [key, value, message] of [['use_rslora', true, /use_rslora/], ['rank_pattern', { q_proj: 8 }, /rank_pattern/], ['peft_type', 'IA3', /only LoRA/],
        ['target_modules', ['q_proj', 'embed_tokens'], /embed_tokens/]] as const) {
        writeFileSync(path.join(adapterDir, 'adapter_config.json'), JSON.stringify({ ...config, [key]: value }));
        await assert.rejects(loadEngineFromFiles({ model: hf, context: 64, adapter: adapterDir }), (e: Error) => e instanceof RemaxInputError && message.test(e.message) && e.message.includes('adapter_config.json'));
      }
      writeFileSync(path.join(adapterDir, 'adapter_config.json'), JSON.stringify({ ...config, r: 2 }));
      await assert.rejects(loadEngineFromFiles({ model: hf, context: 64, adapter: adapterDir }), /lora_A.weight has shape \[4,64\], this model needs \[2,64\]/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
