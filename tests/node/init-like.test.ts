// remax init --like: a random Hugging Face folder at the shapes of a config.json. The folder's tensors are read back
// by a reader independent of safetensors.ts and compared with transformers' names and shapes written out here, their
// values with transformers' _init_weights (normal(0, initializer_range), norms 1, biases 0); the folder loads with
// the project's loader and the engine generates from it; seeds replay byte for byte; shards load back; bad input is
// refused naming what to fix, and a killed write leaves no folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RemaxEngine } from '../../src/core/engine';
import { RemaxInputError } from '../../src/core/errors';
import { elementCount, weightShapes } from '../../src/core/config';
import { f16ToF32 } from '../../src/core/formats/half';
import { planRandomHfModel } from '../../src/core/formats/random-hf-model';
import type { SafetensorsDtype } from '../../src/core/formats/safetensors';
import { writeRandomHfFolder } from '../../src/node/commands/init-like';
import { loadModelFromPath } from '../../src/node/model-io';
import { sharedPath, skipUnlessShared } from './shared-data';

const CLI = path.resolve('dist/cli.js');
const remax = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const scratch = () => mkdtempSync(path.join(tmpdir(), 'remax-init-like-'));
const QWEN2 = 'models/hf/qwen2-tiny', LLAMA3 = 'models/hf/llama3-tiny';
const skipShared = skipUnlessShared(`${QWEN2}/config.json`, `${QWEN2}/tokenizer.json`, `${LLAMA3}/config.json`, `${LLAMA3}/tokenizer.json`);
const readJson = (file: string): any => JSON.parse(readFileSync(file, 'utf8'));

/** Small configs of the two architectures the shared folders lack, as transformers writes them. */
const QWEN3_CONFIG = {
  architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32, vocab_size: 151680, max_position_embeddings: 40960,
  rms_norm_eps: 1e-6, rope_theta: 1000000.0, tie_word_embeddings: true, attention_bias: false, use_sliding_window: false,
  sliding_window: null, bos_token_id: 151643, eos_token_id: 151645, torch_dtype: 'bfloat16', initializer_range: 0.05,
};
const MISTRAL_CONFIG = {
  architectures: ['MistralForCausalLM'], model_type: 'mistral', hidden_size: 48, intermediate_size: 96, num_hidden_layers: 2,
  num_attention_heads: 6, num_key_value_heads: 2, vocab_size: 128256, max_position_embeddings: 32768, rms_norm_eps: 1e-5,
  rope_theta: 1000000.0, sliding_window: null, tie_word_embeddings: false, bos_token_id: 128000, eos_token_id: 128001,
  pad_token_id: 7, torch_dtype: 'float32',
};

interface Case { name: string; config: () => Record<string, unknown>; tokenizer: string }
const CASES: Case[] = [
  { name: 'qwen2-tiny', config: () => readJson(sharedPath(`${QWEN2}/config.json`)), tokenizer: sharedPath(QWEN2) },
  { name: 'llama3-tiny', config: () => readJson(sharedPath(`${LLAMA3}/config.json`)), tokenizer: sharedPath(LLAMA3) },
  { name: 'qwen3 (written here)', config: () => QWEN3_CONFIG, tokenizer: sharedPath(QWEN2) },
  { name: 'mistral (written here)', config: () => MISTRAL_CONFIG, tokenizer: sharedPath(LLAMA3) },
];

/** transformers' tensor names and shapes for a config (the modules of modeling_llama/qwen2/qwen3), written out by hand. */
function expectedTensors(c: any): Map<string, number[]> {
  const D = c.hidden_size, H = c.intermediate_size, hd = c.head_dim ?? D / c.num_attention_heads;
  const Q = c.num_attention_heads * hd, KV = c.num_key_value_heads * hd;
  const out = new Map<string, number[]>([['model.embed_tokens.weight', [c.vocab_size, D]], ['model.norm.weight', [D]]]);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    out.set(`${p}self_attn.q_proj.weight`, [Q, D]).set(`${p}self_attn.k_proj.weight`, [KV, D]);
    out.set(`${p}self_attn.v_proj.weight`, [KV, D]).set(`${p}self_attn.o_proj.weight`, [D, Q]);
    if (c.model_type === 'qwen2') out.set(`${p}self_attn.q_proj.bias`, [Q]).set(`${p}self_attn.k_proj.bias`, [KV]).set(`${p}self_attn.v_proj.bias`, [KV]);
    if (c.model_type === 'qwen3') out.set(`${p}self_attn.q_norm.weight`, [hd]).set(`${p}self_attn.k_norm.weight`, [hd]);
    out.set(`${p}mlp.gate_proj.weight`, [H, D]).set(`${p}mlp.up_proj.weight`, [H, D]).set(`${p}mlp.down_proj.weight`, [D, H]);
    out.set(`${p}input_layernorm.weight`, [D]).set(`${p}post_attention_layernorm.weight`, [D]);
  }
  if (!c.tie_word_embeddings) out.set('lm_head.weight', [c.vocab_size, D]);
  return out;
}

/** Every tensor of a folder's safetensors files, read here from the format's spec (not with safetensors.ts). */
function readFolderTensors(dir: string): Map<string, { dtype: string; shape: number[]; values: Float32Array; file: string }> {
  const out = new Map<string, { dtype: string; shape: number[]; values: Float32Array; file: string }>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort()) {
    const bytes = readFileSync(path.join(dir, file));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = Number(view.getBigUint64(0, true));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    assert.deepEqual(header.__metadata__, { format: 'pt' }, `${file}: transformers' metadata`);
    for (const [name, info] of Object.entries<any>(header)) {
      if (name === '__metadata__') continue;
      const count = elementCount(info.shape), at = 8 + n + info.data_offsets[0];
      const raw = bytes.buffer.slice(bytes.byteOffset + at, bytes.byteOffset + at + (info.dtype === 'F32' ? 4 : 2) * count);
      let values: Float32Array;
      if (info.dtype === 'F32') values = new Float32Array(raw);
      else {
        const halves = new Uint16Array(raw);
        values = new Float32Array(count);
        if (info.dtype === 'BF16') { const bits = new Uint32Array(values.buffer); for (let i = 0; i < count; i++) bits[i] = halves[i]! << 16; }
        else for (let i = 0; i < count; i++) values[i] = f16ToF32(halves[i]!);
      }
      out.set(name, { dtype: info.dtype, shape: info.shape, values, file });
    }
  }
  return out;
}

const meanStd = (v: Float32Array): { mean: number; std: number } => {
  let s = 0, s2 = 0;
  for (const x of v) { s += x; s2 += x * x; }
  const mean = s / v.length;
  return { mean, std: Math.sqrt(s2 / v.length - mean * mean) };
};

const DTYPES: [string, SafetensorsDtype, string][] = [['bf16', 'BF16', 'bfloat16'], ['f16', 'F16', 'float16'], ['f32', 'F32', 'float32']];

for (const c of CASES) {
  test(`init --like ${c.name}: transformers' tensors, init statistics, and the engine generates, in bf16, f16 and f32`, { skip: skipShared }, async () => {
    const dir = scratch();
    try {
      const original = c.config();
      const likePath = path.join(dir, 'like.json');
      writeFileSync(likePath, JSON.stringify(original, null, 2));
      const std = (original.initializer_range as number | undefined) ?? 0.02;
      const expected = expectedTensors(original);
      for (const [word, dtype, torchDtype] of DTYPES) {
        const out = path.join(dir, word);
        // The tokenizer in one dtype only: copying and checking it is the same in each.
        writeRandomHfFolder({ like: likePath, dtype, out, seed: 3, ...(word === 'bf16' ? { tokenizerFrom: c.tokenizer } : {}) });

        // config.json: the given one with torch_dtype set, nothing else changed.
        const written = readJson(path.join(out, 'config.json'));
        assert.deepEqual(written, { ...original, torch_dtype: torchDtype }, `${word}: config.json`);
        const names = readdirSync(out).sort();
        const tokenizerNames = word === 'bf16' ? ['tokenizer.json', 'tokenizer_config.json'] : [];
        assert.deepEqual(names, ['config.json', 'generation_config.json', 'model.safetensors', ...tokenizerNames].sort());
        for (const name of tokenizerNames) assert.ok(readFileSync(path.join(out, name)).equals(readFileSync(path.join(c.tokenizer, name))), `${name} copied unchanged`);
        assert.equal(readJson(path.join(out, 'generation_config.json')).eos_token_id, original.eos_token_id);

        // The stored tensors: exactly transformers' names and shapes, in the chosen dtype, with _init_weights' values.
        const tensors = readFolderTensors(out);
        assert.deepEqual([...tensors.keys()].sort(), [...expected.keys()].sort(), `${word}: tensor names`);
        let normalCount = 0;
        for (const [name, t] of tensors) {
          assert.deepEqual(t.shape, expected.get(name), `${name}: shape`);
          assert.equal(t.dtype, dtype, `${name}: dtype`);
          if (/norm\.weight$/.test(name)) assert.ok(t.values.every((x) => x === 1), `${name}: RMSNorm weights are 1`);
          else if (name.endsWith('.bias')) assert.ok(t.values.every((x) => x === 0), `${name}: biases are 0`);
          else {
            const n = t.values.length, { mean, std: s } = meanStd(t.values);
            // 6 standard errors of the mean and of the std (≈ std/√(2n)), plus the rounding of 16-bit storage.
            assert.ok(Math.abs(mean) < 6 * std / Math.sqrt(n), `${name}: mean ${mean} of ${n} values ≉ 0`);
            assert.ok(Math.abs(s / std - 1) < 6 / Math.sqrt(2 * n) + 0.005, `${name}: std ${s} ≉ initializer_range ${std}`);
            normalCount += n;
          }
        }
        assert.ok(normalCount > 0);
        const embedding = tensors.get('model.embed_tokens.weight')!.values;
        if (original.pad_token_id !== undefined) {
          const D = original.hidden_size as number, pad = original.pad_token_id as number;
          assert.ok(embedding.subarray(pad * D, (pad + 1) * D).every((x) => x === 0), 'the padding row is zero (nn.Embedding padding_idx)');
          assert.ok(embedding.subarray((pad + 1) * D, (pad + 2) * D).some((x) => x !== 0));
        }

        // The project's loader reads it, and the engine generates: near-uniform predictions, as random small weights give.
        const model = await loadModelFromPath(out, '--model', { context: 64 });
        assert.equal(model.format, 'hf');
        assert.equal(model.dtype, dtype);
        assert.equal(model.config.sharedClassifier, original.tie_word_embeddings === true);
        assert.equal(model.config.vocabSize, original.vocab_size);
        for (const { name, shape } of weightShapes(model.config)) assert.equal(model.weights[name]!.length, elementCount(shape), name);
        if (word !== 'bf16') continue; // one engine per architecture is enough
        const engine = await RemaxEngine.create({ model, modelSource: out, maxTokens: 64 });
        const prompt = engine.encode('Hello world');
        assert.ok(prompt.length >= 2);
        const [gen] = engine.generate([{ promptIds: prompt }], { temperature: 0, maxNewTokens: 8, stopIds: [], logprobs: true });
        assert.equal(gen!.ids.length, 8);
        assert.ok(gen!.ids.every((id) => Number.isInteger(id) && id >= 0 && id < (original.vocab_size as number)));
        // Logits of weights drawn at this std: about normal(0, σ²) with σ = std·√hidden_size (the final RMSNorm's
        // output has unit scale), so log p ≈ −ln V − σ²/2 for a given token. The greedy token is the largest: a few σ
        // above, plus, with tied embeddings, the current token's own logit ≈ hidden_size·std (its embedding · itself).
        const D = original.hidden_size as number, sigma = std * Math.sqrt(D), uniform = -Math.log(original.vocab_size as number) - sigma ** 2 / 2;
        for (const lp of engine.logprobs([prompt])[0]!) assert.ok(Math.abs(lp - uniform) < 5 * sigma, `log p ${lp} of a prompt token ≉ ${uniform} ± ${5 * sigma}`);
        const greedyBound = uniform + 6 * sigma + (original.tie_word_embeddings ? D * std : 0);
        for (const lp of gen!.logprobs!) assert.ok(lp > uniform && lp < greedyBound, `log p ${lp} of a greedy token ∉ (${uniform}, ${greedyBound})`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('init --like: the same seed writes the same bytes, another seed other weights', { skip: skipShared }, () => {
  const dir = scratch();
  try {
    const like = sharedPath(`${QWEN2}/config.json`);
    const write = (name: string, seed: number) => {
      writeRandomHfFolder({ like, dtype: 'BF16', out: path.join(dir, name), seed });
      return Object.fromEntries(readdirSync(path.join(dir, name)).sort().map((f) => [f, readFileSync(path.join(dir, name, f))]));
    };
    const a = write('a', 11), b = write('b', 11), other = write('c', 12);
    assert.deepEqual(Object.keys(a), ['config.json', 'generation_config.json', 'model.safetensors']);
    for (const f of Object.keys(a)) assert.ok(a[f]!.equals(b[f]!), `${f}: byte-identical for the same seed`);
    assert.ok(a['config.json']!.equals(other['config.json']!));
    assert.equal(a['model.safetensors']!.length, other['model.safetensors']!.length);
    assert.ok(!a['model.safetensors']!.equals(other['model.safetensors']!), 'another seed draws other weights');
    // Not merely shifted: the embeddings of the two seeds are uncorrelated.
    const ea = readFolderTensors(path.join(dir, 'a')).get('model.embed_tokens.weight')!.values;
    const ec = readFolderTensors(path.join(dir, 'c')).get('model.embed_tokens.weight')!.values;
    let dot = 0, na = 0, nc = 0;
    for (let i = 0; i < ea.length; i++) { dot += ea[i]! * ec[i]!; na += ea[i]! ** 2; nc += ec[i]! ** 2; }
    assert.ok(Math.abs(dot / Math.sqrt(na * nc)) < 0.01, `correlation ${dot / Math.sqrt(na * nc)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('init --like with a small shard limit: shards and an index as transformers writes them, loaded back to the same weights', { skip: skipShared }, async () => {
  const dir = scratch();
  try {
    const like = sharedPath(`${LLAMA3}/config.json`);
    // --like a folder: its config.json, and its generation_config.json comes along unchanged.
    writeRandomHfFolder({ like: sharedPath(LLAMA3), dtype: 'BF16', out: path.join(dir, 'one'), seed: 5 });
    assert.ok(readFileSync(path.join(dir, 'one', 'generation_config.json')).equals(readFileSync(sharedPath(`${LLAMA3}/generation_config.json`))));
    // lm_head and the embedding are 16 MB each, the layers far less: at 10 MB a shard each of the two is a shard of
    // its own (a tensor over the limit is not split, as transformers does), the layers between them a third.
    writeRandomHfFolder({ like, dtype: 'BF16', out: path.join(dir, 'sharded'), seed: 5, maxShardBytes: 10_000_000 });
    const names = readdirSync(path.join(dir, 'sharded')).sort();
    const shards = names.filter((n) => n.endsWith('.safetensors'));
    assert.deepEqual(shards, ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    assert.ok(!names.includes('model.safetensors') && names.includes('model.safetensors.index.json'));
    const index = readJson(path.join(dir, 'sharded', 'model.safetensors.index.json'));
    const tensors = readFolderTensors(path.join(dir, 'sharded'));
    assert.deepEqual(Object.keys(index.weight_map).sort(), [...tensors.keys()].sort());
    for (const [name, t] of tensors) assert.equal(index.weight_map[name], t.file, `${name}: the index names its shard`);
    const dataBytes = [...tensors.values()].reduce((s, t) => s + 2 * t.values.length, 0);
    assert.equal(index.metadata.total_size, dataBytes);
    for (const shard of shards) {
      const held = [...tensors.values()].filter((t) => t.file === shard);
      const size = held.reduce((s, t) => s + 2 * t.values.length, 0);
      assert.ok(size <= 10_000_000 || held.length === 1, `${shard}: ${size} bytes of data, within the limit or one tensor`);
    }
    // The values do not depend on the sharding: both folders load to the same weights, bit for bit.
    const one = await loadModelFromPath(path.join(dir, 'one'), '--model');
    const sharded = await loadModelFromPath(path.join(dir, 'sharded'), '--model');
    for (const { name } of weightShapes(one.config)) {
      assert.ok(Buffer.from(one.weights[name]!.buffer).equals(Buffer.from(sharded.weights[name]!.buffer)), `${name}: same weights`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('init --like refuses what it cannot write, naming what to fix, and writes nothing', { skip: skipShared }, () => {
  const dir = scratch();
  try {
    const base = readJson(sharedPath(`${QWEN2}/config.json`));
    const like = (name: string, config: Record<string, unknown>) => {
      const file = path.join(dir, `${name}.json`);
      writeFileSync(file, JSON.stringify(config));
      return file;
    };
    const refuses = (options: Parameters<typeof writeRandomHfFolder>[0], pattern: RegExp) => {
      assert.throws(() => writeRandomHfFolder(options), (e: unknown) => e instanceof RemaxInputError && pattern.test(e.message),
        `expected a RemaxInputError matching ${pattern}`);
    };
    const out = path.join(dir, 'out');
    const gpt2 = { ...base, architectures: undefined, model_type: 'gpt2' };
    refuses({ like: like('gpt2', gpt2), dtype: 'BF16', out, seed: 0 }, /gpt2\.json: model_type is "gpt2".*supported model_type: llama, mistral, qwen2, qwen3/);
    const { hidden_size: _h, ...noHidden } = base;
    refuses({ like: like('no-hidden', noHidden), dtype: 'BF16', out, seed: 0 }, /no-hidden\.json: hidden_size is missing/);
    refuses({ like: like('bad-std', { ...base, initializer_range: -1 }), dtype: 'BF16', out, seed: 0 }, /initializer_range is -1; it must be a positive number/);
    refuses({ like: like('bad-pad', { ...base, pad_token_id: 999999 }), dtype: 'BF16', out, seed: 0 }, /pad_token_id is 999999.*below vocab_size 151680/);
    refuses({ like: like('eos', { ...base, vocab_size: 512 }), dtype: 'BF16', out, seed: 0 }, /eos_token_id 151645 is not below vocab_size 512/);
    refuses({ like: like('layers', { ...base, num_hidden_layers: 1_000_000 }), dtype: 'BF16', out, seed: 0 }, /num_hidden_layers 1000000 makes 12000000 tensors/);
    // Petabytes: no disk has them free, so it is refused before the first byte (and names both sizes).
    const huge = { ...base, hidden_size: 2 ** 24, intermediate_size: 1, num_attention_heads: 1, num_key_value_heads: 1, vocab_size: 2 ** 24 };
    refuses({ like: like('huge', huge), dtype: 'BF16', out, seed: 0 }, /--out .*out: the folder needs [\d.]+ GiB and its disk has [\d.]+ (GiB|MiB) free/);
    refuses({ like: like('mlp-bias', { ...base, mlp_bias: true }), dtype: 'BF16', out, seed: 0 }, /mlp_bias is true/);
    refuses({ like: path.join(dir, 'absent.json'), dtype: 'BF16', out, seed: 0 }, /cannot read --like .*absent\.json: no such file/);
    // A tokenizer larger than the model's vocabulary.
    refuses({ like: like('small-vocab', { ...base, vocab_size: 512, bos_token_id: null, eos_token_id: null }), dtype: 'BF16', out, seed: 0, tokenizerFrom: sharedPath(LLAMA3) },
      /tokenizer .*tokenizer\.json has 128256 tokens but the model of --like .*small-vocab\.json has only 512 embedding rows/);
    refuses({ like: like('ok', base), dtype: 'BF16', out, seed: 0, tokenizerFrom: dir }, /--tokenizer-from .*no tokenizer\.json/);
    assert.ok(!existsSync(out), 'nothing written');

    // An --out in the way: a non-empty folder (without --overwrite), a folder of other things (even with it), a file.
    mkdirSync(out);
    writeFileSync(path.join(out, 'notes.txt'), 'mine');
    refuses({ like: like('ok', base), dtype: 'BF16', out, seed: 0 }, /--out .*out is not empty \(1 entries: notes\.txt\).*--overwrite/);
    refuses({ like: like('ok', base), dtype: 'BF16', out, seed: 0, overwrite: true }, /no config\.json, so it is not a model folder/);
    assert.equal(readFileSync(path.join(out, 'notes.txt'), 'utf8'), 'mine', 'the folder is untouched');
    writeFileSync(path.join(dir, 'file'), 'x');
    refuses({ like: like('ok', base), dtype: 'BF16', out: path.join(dir, 'file'), seed: 0 }, /is a file; give the path of a folder/);

    // --overwrite replaces a model folder whole: none of its old files stay.
    const model = path.join(dir, 'model');
    writeRandomHfFolder({ like: like('ok', base), dtype: 'BF16', out: model, seed: 0, maxShardBytes: 5_000_000 });
    assert.ok(existsSync(path.join(model, 'model.safetensors.index.json')));
    refuses({ like: like('ok', base), dtype: 'BF16', out: model, seed: 0 }, /not empty/);
    writeRandomHfFolder({ like: like('ok', base), dtype: 'F32', out: model, seed: 0, overwrite: true });
    assert.deepEqual(readdirSync(model).sort(), ['config.json', 'generation_config.json', 'model.safetensors']);
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.')), [], 'no temp folder left');
    // The folder is replaced whole: never the one the command runs in (or one holding it).
    const inside = spawnSync(process.execPath, [CLI, 'init', '--like', like('ok', base), '--out', '.', '--overwrite'], { cwd: model, encoding: 'utf8' });
    assert.equal(inside.status, 2, inside.stderr);
    assert.match(inside.stderr, /--out \. is the current folder or holds it/);
    assert.ok(existsSync(path.join(model, 'config.json')));

    // The CLI: exit code 2, one line naming the flag.
    const bad = (args: string[], pattern: RegExp) => {
      const r = remax('init', ...args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    };
    const good = like('ok', base);
    bad(['--like', good, '--out', path.join(dir, 'x'), '--dtype', 'q8_0'], /--dtype q8_0: a Hugging Face folder stores bf16, f16, f32/);
    bad(['--like', good, '--out', path.join(dir, 'x'), '--dim', '64'], /--dim does not go with --like/);
    bad(['--out', path.join(dir, 'x.bin'), '--dtype', 'bf16'], /--dtype goes with --like/);
    bad(['--like', good], /--out is required/);
    assert.ok(!existsSync(path.join(dir, 'x')));
    const ok = remax('init', '--like', good, '--out', path.join(dir, 'cli'), '--seed', '4');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /writing .*cli: random Qwen2ForCausalLM, 9\.8 M parameters as BF16 \(std 0\.02, seed 4\), 19 MiB in model\.safetensors/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('init --like killed while writing leaves no folder (and an --overwrite the old one); the next run cleans up', { skip: skipShared }, async () => {
  const dir = scratch();
  try {
    // About 130 MB of f32 (untied embeddings of 128256 × 128): long enough to be killed in the middle.
    const like = path.join(dir, 'big.json');
    writeFileSync(like, JSON.stringify({ ...readJson(sharedPath(`${LLAMA3}/config.json`)), hidden_size: 128, head_dim: 32 }));
    const killMidWrite = async (out: string, ...extra: string[]): Promise<void> => {
      const child = spawn(process.execPath, [CLI, 'init', '--like', like, '--out', out, '--dtype', 'f32', ...extra], { stdio: 'ignore' });
      const temp = path.join(dir, `.${path.basename(out)}.${child.pid}.partial`);
      const started = Date.now();
      while (!existsSync(path.join(temp, 'model.safetensors')) && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 5));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      assert.ok(existsSync(temp), 'killed while the temp folder was being written');
    };
    const out = path.join(dir, 'model');
    await killMidWrite(out);
    assert.ok(!existsSync(out), 'no folder at --out');
    await assert.rejects(loadModelFromPath(out, '--model'), RemaxInputError);

    // The next write of that folder removes the dead writer's temp and succeeds.
    writeRandomHfFolder({ like, dtype: 'BF16', out, seed: 1 });
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.')), []);
    const before = readFileSync(path.join(out, 'model.safetensors'));

    await killMidWrite(out, '--overwrite');
    assert.ok(readFileSync(path.join(out, 'model.safetensors')).equals(before), 'the previous folder is intact');
    await loadModelFromPath(out, '--model');

    // Killed between an --overwrite's two renames (the old folder moved aside, the new one not yet in place): the
    // next write puts the old folder back before it checks --out.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const aside = path.join(dir, `.model.${dead}.replaced`);
    writeFileSync(path.join(out, 'mark'), 'old');
    renameSync(out, aside);
    assert.throws(() => writeRandomHfFolder({ like, dtype: 'BF16', out, seed: 1 }), /--out .*model is not empty/);
    assert.equal(readFileSync(path.join(out, 'mark'), 'utf8'), 'old');
    assert.ok(!existsSync(aside));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench/configs: the hub models the benchmarks use plan at their published parameter counts', () => {
  const published: Record<string, [string, number]> = {
    'smollm2-135m.json': ['LlamaForCausalLM', 134_515_008], 'qwen2.5-0.5b.json': ['Qwen2ForCausalLM', 494_032_768],
    'tinyllama-1.1b.json': ['LlamaForCausalLM', 1_100_048_384], 'llama-3.2-1b.json': ['LlamaForCausalLM', 1_235_814_400],
    'qwen3-0.6b.json': ['Qwen3ForCausalLM', 596_049_920],
  };
  assert.deepEqual(readdirSync('bench/configs').filter((f) => f.endsWith('.json')).sort(), Object.keys(published).sort());
  for (const [file, [architecture, count]] of Object.entries(published)) {
    const plan = planRandomHfModel(readJson(path.join('bench/configs', file)), { dtype: 'BF16', source: file });
    assert.equal(plan.architecture, architecture, file);
    assert.equal(plan.parameterCount, count, file);
    assert.equal(plan.weightFiles.length, 1, `${file}: under 5 GB in bf16, one file`);
  }
});
