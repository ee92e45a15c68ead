// The Hugging Face and GGUF models of ../shared through the CLI as a user runs it (dist/cli.js in a child process):
// greedy ids, log-probabilities and gradients against reference/hf.json, the tokenizer's prompt ids, export round
// trips, ReMax and SFT runs that resume exactly, and bad input that gets one line and writes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseSafetensors } from '../../src/core/formats/safetensors';
import { parseCheckpoint } from '../../src/core/formats/llama2c';
import { tokenizerFromHfFiles } from '../../src/core/tokenizers/hf-tokenizer';
import { readSharedJson, sharedPath, skipUnlessShared } from './shared-data';

const CLI = path.resolve('dist/cli.js');
const remax = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const ok = (r: ReturnType<typeof remax>) => {
  assert.equal(r.code, 0, r.stderr);
  return r;
};
function assertBadInput(r: ReturnType<typeof remax>, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit code ${r.code}: ${r.stderr}`);
  const errLines = r.stderr.trim().split('\n');
  assert.equal(errLines.length, 1, `one line: ${r.stderr}`);
  assert.match(errLines[0]!, pattern);
}

interface Reference {
  greedy: { prompt_text: string | null; prompt_ids: number[]; expected_ids: number[] }[];
  logprob_sequences: { name: string; ids: number[]; logprobs: number[] }[];
  remax_batch?: { prompt_ids: number[]; response_ids: number[]; advantage: number }[];
  loss?: number;
  grads?: Record<string, { shape: number[]; norm: number; first8: number[] }>;
}
const MODELS = ['hf/stories260K', 'hf/qwen2-tiny', 'hf/llama3-tiny', 'gguf/stories260K-f32.gguf', 'gguf/stories260K-f16.gguf',
  'gguf/stories260K-q8_0.gguf', 'gguf/llama-2-tiny-random.gguf'];
const skip = skipUnlessShared('reference/hf.json', ...MODELS.map((m) => `models/${m}`));
const reference = (model: string): Reference => readSharedJson('reference/hf.json').models[model];
const scratch = () => mkdtempSync(path.join(tmpdir(), 'remax-real-'));
const greedyIds = (model: string, promptIds: number[], extra: string[] = []) => JSON.parse(ok(remax('generate', '--model', model,
  '--prompt-ids', promptIds.join(','), '--temperature', '0', '--max-new-tokens', '32', '--stop-ids', 'none', '--json', ...extra)).stdout).ids as number[];

test('generate: every Hugging Face and GGUF model reproduces the reference greedy ids exactly', { skip }, () => {
  for (const name of MODELS) {
    for (const [i, c] of reference(name).greedy.entries()) {
      assert.deepEqual(greedyIds(sharedPath(`models/${name}`), c.prompt_ids), c.expected_ids, `${name} case ${i}`);
    }
  }
});

test('generate --prompt: the text prompts encode to the reference ids (Llama 3 with BOS, Qwen without) and decode back', { skip }, () => {
  for (const name of ['hf/qwen2-tiny', 'hf/llama3-tiny']) {
    for (const c of reference(name).greedy) {
      const r = JSON.parse(ok(remax('generate', '--model', sharedPath(`models/${name}`), '--prompt', c.prompt_text!, '--temperature', '0',
        '--max-new-tokens', '32', '--stop-ids', 'none', '--json')).stdout);
      assert.deepEqual(r.prompt_ids, c.prompt_ids, `${name}: ${c.prompt_text}`);
      assert.deepEqual(r.ids, c.expected_ids);
    }
  }
  // What the command prints about the model it loaded.
  const line = ok(remax('generate', '--model', sharedPath('models/hf/qwen2-tiny/config.json'), '--prompt', 'Hi', '--max-new-tokens', '2')).stderr;
  assert.match(line, /Hugging Face folder, Qwen2ForCausalLM BF16, .*3 layers.*tokenizer: tokenizer\.json/);
  assert.match(ok(remax('generate', '--model', sharedPath('models/gguf/stories260K-q8_0.gguf'), '--prompt-ids', '1', '--max-new-tokens', '2')).stderr,
    /GGUF, llama Q8_0/);
});

test('generate --stop: the sequence ends at the token that completes the stop string, and its text before it', { skip }, () => {
  const c = reference('hf/qwen2-tiny').greedy[0]!;
  const folder = sharedPath('models/hf/qwen2-tiny');
  const tokenizer = tokenizerFromHfFiles(readFileSync(path.join(folder, 'tokenizer.json')), readFileSync(path.join(folder, 'tokenizer_config.json')), { source: 'qwen' });
  const full = tokenizer.decodeContinuation(c.prompt_ids, c.expected_ids);
  const upTo = (k: number) => tokenizer.decodeContinuation(c.prompt_ids, c.expected_ids.slice(0, k));
  const stop = full.slice(upTo(5).length - 1, upTo(5).length + 2); // its first character is the last of token 5's text
  const r = JSON.parse(ok(remax('generate', '--model', folder, '--prompt-ids', c.prompt_ids.join(','), '--temperature', '0', '--max-new-tokens', '32',
    '--stop', stop, '--json')).stdout);
  const at = full.indexOf(stop);
  const tokens = c.expected_ids.findIndex((_, k) => upTo(k + 1).includes(stop)) + 1;
  assert.deepEqual(r.ids, c.expected_ids.slice(0, tokens));
  assert.equal(r.text, full.slice(0, at));
});

test('logprobs: within 2e-4 of the reference for a Hugging Face and a GGUF model', { skip }, () => {
  for (const name of ['hf/llama3-tiny', 'gguf/stories260K-q8_0.gguf']) {
    for (const s of reference(name).logprob_sequences) {
      const got = JSON.parse(ok(remax('logprobs', '--model', sharedPath(`models/${name}`), '--ids', s.ids.join(','), '--json')).stdout).logprobs as number[];
      s.logprobs.forEach((lp, t) => assert.ok(Math.abs(got[t]! - lp) <= 2e-4, `${name} ${s.name} token ${t + 1}: ${got[t]} vs ${lp}`));
    }
  }
});

test('grad: the ReMax loss and every gradient, under the model\'s own tensor names, within 1e-4 of the reference', { skip }, () => {
  const dir = scratch();
  try {
    for (const name of ['hf/qwen2-tiny', 'hf/llama3-tiny']) {
      const ref = reference(name);
      const batch = path.join(dir, 'batch.json'), out = path.join(dir, 'grads.safetensors');
      writeFileSync(batch, JSON.stringify(ref.remax_batch));
      const r = JSON.parse(ok(remax('grad', '--model', sharedPath(`models/${name}`), '--batch', batch, '--out', out, '--json')).stdout);
      assert.ok(Math.abs(r.loss - ref.loss!) <= 1e-4 * Math.abs(ref.loss!), `${name}: loss ${r.loss} vs ${ref.loss}`);
      const grads = parseSafetensors(new Uint8Array(readFileSync(out)), out).tensors;
      assert.deepEqual([...grads.keys()].sort(), Object.keys(ref.grads!).sort(), `${name}: the tensors are the model's`);
      for (const [tensor, expected] of Object.entries(ref.grads!)) {
        const g = grads.get(tensor)!;
        assert.deepEqual(g.shape, expected.shape, tensor);
        const norm = Math.sqrt(g.data.reduce((s, v) => s + v * v, 0));
        assert.ok(Math.abs(norm - expected.norm) <= 1e-4 * expected.norm, `${name} ${tensor}: norm ${norm} vs ${expected.norm}`);
        const scale = g.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        expected.first8.forEach((v, i) => assert.ok(Math.abs(g.data[i]! - v) <= 1e-4 * scale, `${name} ${tensor}[${i}]: ${g.data[i]} vs ${v}`));
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tokenize: ids and pieces with the tokenizer\'s own special tokens, without them, and a chat prompt', { skip }, () => {
  const llama3 = sharedPath('models/hf/llama3-tiny');
  const plain = JSON.parse(ok(remax('tokenize', '--model', llama3, '--text', 'Hello world', '--json')).stdout);
  assert.deepEqual(plain, { ids: [9906, 1917], tokens: ['Hello', 'Ġworld'] });
  const chat = JSON.parse(ok(remax('tokenize', '--model', llama3, '--chat', '--json', '--text', JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }] }))).stdout);
  assert.equal(chat.text, '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
  assert.equal(chat.ids.filter((id: number) => id === 128000).length, 1);
  assert.equal(chat.ids[0], 128000);
  // A SentencePiece vocabulary adds BOS itself (as Hugging Face's Llama-2 tokenizer does); --no-special-tokens leaves it out.
  const gguf = sharedPath('models/gguf/llama-2-tiny-random.gguf');
  const withBos = JSON.parse(ok(remax('tokenize', '--tokenizer', gguf, '--text', 'Hello world', '--json')).stdout);
  const without = JSON.parse(ok(remax('tokenize', '--tokenizer', gguf, '--text', 'Hello world', '--json', '--no-special-tokens')).stdout);
  assert.deepEqual(withBos.ids, [1, ...without.ids]);
  assert.deepEqual(without.tokens, ['▁Hello', '▁world']);
  assert.match(ok(remax('tokenize', '--model', sharedPath('models/hf/qwen2-tiny'), '--text', '<|im_start|>x')).stdout, /151644\t"<\|im_start\|>"\t\(special\)/);
});

test('export: Hugging Face ↔ GGUF ↔ llama2.c round trips keep the weights and the greedy ids', { skip }, () => {
  const dir = scratch();
  try {
    const stories = reference('hf/stories260K').greedy[0]!, qwen = reference('hf/qwen2-tiny').greedy[1]!;
    // qwen2-tiny → bf16 folder (byte-identical weights file) → GGUF f32 → back to a folder: the same greedy ids throughout.
    const bf16 = path.join(dir, 'qwen-bf16'), gguf = path.join(dir, 'qwen.gguf'), back = path.join(dir, 'qwen-back');
    ok(remax('export', '--model', sharedPath('models/hf/qwen2-tiny'), '--out', bf16));
    assert.deepEqual(readFileSync(path.join(bf16, 'model.safetensors')), readFileSync(sharedPath('models/hf/qwen2-tiny/model.safetensors')));
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) assert.ok(existsSync(path.join(bf16, f)), f);
    ok(remax('export', '--model', bf16, '--format', 'gguf', '--dtype', 'f32', '--out', gguf));
    ok(remax('export', '--model', gguf, '--format', 'hf', '--dtype', 'bf16', '--out', back));
    for (const model of [bf16, gguf, back]) assert.deepEqual(greedyIds(model, qwen.prompt_ids), qwen.expected_ids, model);
    assert.deepEqual(JSON.parse(ok(remax('tokenize', '--model', gguf, '--text', 'Hello world', '--json')).stdout).ids, [9707, 1879],
      'the GGUF carries the Qwen vocabulary');
    // llama2.c → a Hugging Face folder → llama2.c: bit-identical; the folder loads with the same ids.
    const folder = path.join(dir, 'stories'), bin = path.join(dir, 'stories.bin');
    ok(remax('export', '--model', sharedPath('models/stories260K.bin'), '--format', 'hf', '--out', folder));
    assert.deepEqual(readFileSync(path.join(folder, 'model.safetensors')), readFileSync(sharedPath('models/hf/stories260K/model.safetensors')),
      'the same file as the shared conversion');
    ok(remax('export', '--model', folder, '--format', 'llama2c', '--out', bin));
    // The weights bit for bit (the file's RoPE tables, which no reader uses, are recomputed).
    const weights = (file: string) => parseCheckpoint(new Uint8Array(readFileSync(file)), file).weights;
    assert.deepEqual(weights(bin), weights(sharedPath('models/stories260K.bin')));
    assert.deepEqual(greedyIds(folder, stories.prompt_ids), stories.expected_ids);
    // A llama2.c model with its tokenizer.bin, and a GGUF with its SentencePiece vocabulary, become folders with a
    // tokenizer.json that encodes prompts as the originals do.
    const aidreams = path.join(dir, 'aidreams'), tiny = path.join(dir, 'tiny-random');
    ok(remax('export', '--model', sharedPath('models/aidreams260K.bin'), '--tokenizer', sharedPath('models/aidreams260K.tok512.bin'), '--format', 'hf', '--out', aidreams));
    ok(remax('export', '--model', sharedPath('models/gguf/llama-2-tiny-random.gguf'), '--format', 'hf', '--out', tiny));
    for (const [original, folder, tokenizer] of [[sharedPath('models/aidreams260K.bin'), aidreams, ['--tokenizer', sharedPath('models/aidreams260K.tok512.bin')]],
      [sharedPath('models/gguf/llama-2-tiny-random.gguf'), tiny, []]] as const) {
      assert.ok(existsSync(path.join(folder, 'tokenizer.json')), `${folder} has a tokenizer.json`);
      const run = (model: string, extra: readonly string[]) => JSON.parse(ok(remax('generate', '--model', model, ...extra, '--prompt', 'Lily went to the park',
        '--temperature', '0', '--max-new-tokens', '16', '--stop-ids', 'none', '--json')).stdout);
      const a = run(original, tokenizer), b = run(folder, []);
      assert.deepEqual([b.prompt_ids, b.ids], [a.prompt_ids, a.ids], folder);
    }
    // What llama2.c cannot hold is refused by name, and nothing is written.
    assertBadInput(remax('export', '--model', sharedPath('models/hf/qwen2-tiny'), '--format', 'llama2c', '--out', path.join(dir, 'q.bin')),
      /cannot be written as a llama2\.c checkpoint.*q\/k\/v biases/);
    assert.ok(!existsSync(path.join(dir, 'q.bin')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const withoutTimes = (rows: Record<string, unknown>[]) => rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('time') && k !== 'tokens_per_second' && k !== 'seconds')));
/** Every file of a model checkpoint (a folder's files, or the file), bit for bit. */
const modelBytes = (p: string) => (existsSync(path.join(p, 'config.json')) ? readdirSync(p).sort().map((f) => readFileSync(path.join(p, f))) : [readFileSync(p)]);

test('train: ReMax steps on qwen2-tiny (chat prompts) and on a GGUF save in the model\'s format and resume exactly', { skip, timeout: 300_000 }, () => {
  const dir = scratch();
  try {
    const prompts = path.join(dir, 'prompts.jsonl');
    writeFileSync(prompts, ['Hi', 'Name a color', 'Count to three', 'Say yes'].map((q) => JSON.stringify({ messages: [{ role: 'user', content: q }] })).join('\n') + '\n');
    const reward = path.join(dir, 'reward.mjs');
    // Longer completions are better, and the reward sees the rendered chat prompt and the messages.
    writeFileSync(reward, `export default (samples) => samples.map((s) => {
      if (!s.prompt.startsWith('<|im_start|>user') && !s.prompt.startsWith('<s>')) throw new Error('not a chat prompt: ' + s.prompt);
      if (!Array.isArray(s.messages) || s.messages[0].role !== 'user') throw new Error('no messages');
      return s.completion.length / 40;
    });\n`);
    const cases: [string, string, string][] = [
      ['qwen', sharedPath('models/hf/qwen2-tiny'), 'model'],
      ['gguf', sharedPath('models/gguf/llama-2-tiny-random.gguf'), 'model.gguf'],
    ];
    for (const [label, model, saved] of cases) {
      const common = ['--model', model, '--prompts', prompts, '--reward', reward, '--batch', '2', '--max-new-tokens', '6', '--eval-every', '0',
        '--quiet', '--steps', '4', '--lr', '1e-3', '--context', '64', ...(label === 'gguf' ? ['--no-chat-template'] : [])];
      if (label === 'gguf') writeFileSync(reward, `export default (samples) => samples.map((s) => { if (!s.messages) throw new Error('no messages'); return s.completion.length / 40; });\n`);
      const straight = path.join(dir, `${label}-straight`), split = path.join(dir, `${label}-split`);
      ok(remax('train', ...common, '--out', straight));
      assert.ok(existsSync(path.join(straight, saved)) && existsSync(path.join(straight, `${saved}.state`)), `${label}: ${saved} and its state`);
      ok(remax('train', ...common, '--out', split, '--stop-at', '2'));
      ok(remax('train', '--resume', split, '--quiet'));
      assert.deepEqual(withoutTimes(lines(path.join(split, 'metrics.jsonl'))), withoutTimes(lines(path.join(straight, 'metrics.jsonl'))), label);
      assert.deepEqual(modelBytes(path.join(split, saved)), modelBytes(path.join(straight, saved)), `${label}: the weights`);
      assert.notDeepEqual(modelBytes(path.join(straight, saved)), modelBytes(path.join(straight, saved.replace('model', 'reference'))), `${label}: the policy changed`);
      // The saved policy is a model the format's loaders read: it generates.
      ok(remax('generate', '--model', path.join(straight, saved), '--prompt', 'Hi', '--max-new-tokens', '3'));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sft: a chat conversation and text on qwen2-tiny and on a GGUF, in their formats, resume exactly; the outputs load', { skip, timeout: 300_000 }, () => {
  const dir = scratch();
  try {
    const data = path.join(dir, 'data.jsonl');
    writeFileSync(data, [
      JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] }),
      JSON.stringify({ messages: [{ role: 'user', content: 'Color?' }, { role: 'assistant', content: 'Blue.' }] }),
      JSON.stringify({ prompt: 'Q: 1+1\nA:', completion: ' 2' }),
      JSON.stringify({ text: 'Once upon a time there was a fox.' }),
    ].join('\n') + '\n');
    const common = ['--model', sharedPath('models/hf/qwen2-tiny'), '--data', data, '--batch', '2', '--steps', '4', '--lr', '1e-3', '--context', '64'];
    const straight = path.join(dir, 'straight'), split = path.join(dir, 'split');
    ok(remax('sft', ...common, '--out', straight));
    ok(remax('sft', ...common, '--out', split, '--stop-at', '2'));
    ok(remax('sft', ...common, '--resume', split, '--out', split));
    assert.deepEqual(modelBytes(split), modelBytes(straight));
    assert.ok(existsSync(`${straight}.state`));
    const config = JSON.parse(readFileSync(path.join(straight, 'config.json'), 'utf8'));
    assert.equal(config.architectures[0], 'Qwen2ForCausalLM');
    assert.equal(config.torch_dtype, 'float32', 'saved in float32, so that a run resumes exactly');
    ok(remax('generate', '--model', straight, '--prompt', 'Hi', '--max-new-tokens', '3'));
    // The same on a GGUF (its SentencePiece vocabulary, no chat template: the conversations as plain text).
    const gguf = ['--model', sharedPath('models/gguf/llama-2-tiny-random.gguf'), '--data', data, '--batch', '2', '--steps', '4', '--lr', '1e-3',
      '--context', '64', '--no-chat-template'];
    const [g1, g2] = [path.join(dir, 'g1.gguf'), path.join(dir, 'g2.gguf')];
    ok(remax('sft', ...gguf, '--out', g1));
    ok(remax('sft', ...gguf, '--out', g2, '--stop-at', '2'));
    ok(remax('sft', ...gguf, '--resume', g2, '--out', g2));
    assert.deepEqual(readFileSync(g2), readFileSync(g1));
    assert.match(ok(remax('generate', '--model', g1, '--prompt', 'Hi', '--max-new-tokens', '3')).stderr, /GGUF, llama F32/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad model files: one line naming the file and what is wrong, exit code 2, nothing written', { skip }, () => {
  const dir = scratch();
  try {
    const out = path.join(dir, 'out');
    // A folder whose index names a shard that is not there.
    const shardless = path.join(dir, 'llama3');
    cpSync(sharedPath('models/hf/llama3-tiny'), shardless, { recursive: true });
    rmSync(path.join(shardless, 'model-00002-of-00002.safetensors'));
    assertBadInput(remax('export', '--model', shardless, '--format', 'gguf', '--out', out), /model\.safetensors\.index\.json.*model-00002-of-00002\.safetensors/);
    // A truncated GGUF.
    const cut = path.join(dir, 'cut.gguf');
    cpSync(sharedPath('models/gguf/stories260K-f16.gguf'), cut);
    truncateSync(cut, 300_000);
    assertBadInput(remax('generate', '--model', cut, '--prompt-ids', '1'), /cut\.gguf.*tensor/);
    // An unknown architecture in config.json.
    const odd = path.join(dir, 'odd');
    cpSync(sharedPath('models/hf/stories260K'), odd, { recursive: true });
    const config = JSON.parse(readFileSync(path.join(odd, 'config.json'), 'utf8'));
    writeFileSync(path.join(odd, 'config.json'), JSON.stringify({ ...config, hidden_act: 'gelu' }));
    assertBadInput(remax('sft', '--model', odd, '--data', path.join(odd, 'config.json'), '--out', out), /hidden_act.*gelu/);
    // A tokenizer larger than the model's embedding.
    assertBadInput(remax('generate', '--model', sharedPath('models/stories260K.bin'), '--tokenizer', sharedPath('models/hf/qwen2-tiny/tokenizer.json'), '--prompt', 'hi'),
      /151669 tokens.*512/);
    // A chat template that fails to render.
    const prompts = path.join(dir, 'p.jsonl'), template = path.join(dir, 't.jinja');
    writeFileSync(prompts, JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }) + '\n');
    writeFileSync(template, "{{ raise_exception('no user turns allowed') }}");
    assertBadInput(remax('train', '--model', sharedPath('models/hf/qwen2-tiny'), '--prompts', prompts, '--chat-template', template, '--out', out, '--context', '128'),
      /p\.jsonl line 1.*t\.jinja.*no user turns allowed/);
    assert.ok(!existsSync(out), 'nothing was written');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
