// Where responses end: stop token sets (the model's own by default), and stop strings cut on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemaxEngine } from '../../src/core/engine';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { findStopString } from '../../src/core/stop-strings';
import { loadModel } from '../../src/core/formats/load';
import { memoryFileSet } from '../../src/core/formats/file-set';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, type ModelConfig } from '../../src/core/config';
import { readShared, skipUnlessShared } from './shared-data';

const config: ModelConfig = { dim: 16, hiddenDim: 24, nLayers: 1, nHeads: 2, nKvHeads: 2, vocabSize: 20, seqLen: 64,
  sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA };
const tiny = () => RemaxEngine.create({ model: { config, weights: randomInitWeights(config, 4), format: 'llama2c-v0' }, maxBatch: 8 });

test('a sequence ends at the first of any stop token (kept), whichever it is; [] never stops', async () => {
  const e = await tiny();
  const free = e.generate(Array.from({ length: 8 }, () => ({ promptIds: [1] })), { seed: 3, temperature: 1.5, topP: 1, maxNewTokens: 40, stopIds: [] });
  assert.ok(free.every((g) => g.ids.length === 40 && g.finishReason === 'length'));
  // Two ids that the free runs produce: each run must end at the first of them, and no earlier.
  const common = [...new Set(free.flatMap((g) => g.ids))].slice(0, 2);
  const stopped = e.generate(Array.from({ length: 8 }, () => ({ promptIds: [1] })), { seed: 3, temperature: 1.5, topP: 1, maxNewTokens: 40, stopIds: common });
  stopped.forEach((g, i) => {
    const first = free[i]!.ids.findIndex((id) => common.includes(id));
    assert.deepEqual(g.ids, first < 0 ? free[i]!.ids : free[i]!.ids.slice(0, first + 1), `sequence ${i}`);
    assert.equal(g.finishReason, first < 0 ? 'length' : 'eos');
  });
  assert.throws(() => e.generate([{ promptIds: [1] }], { stopIds: [20] }), /stop token 20 is outside the vocabulary/);
});

test("the default stop tokens are the model's: llama2.c's EOS and BOS, a Hugging Face model's eos ids and its tokenizer's end tokens",
  { skip: skipUnlessShared('models/hf/qwen2-tiny/config.json', 'models/hf/llama3-tiny/config.json') }, async () => {
    assert.deepEqual((await tiny()).stopIds, [1, 2]);
    const folder = async (name: string, files: string[]) => RemaxEngine.create({
      model: await loadModel(memoryFileSet(name, Object.fromEntries(files.map((f) => [f, readShared(`models/hf/${name}/${f}`)]))), { context: 32 }),
    });
    const tokenizerFiles = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];
    const qwen = await folder('qwen2-tiny', [...tokenizerFiles, 'model.safetensors']);
    assert.ok(qwen.stopIds.includes(151645) && qwen.stopIds.includes(151643), `qwen: ${qwen.stopIds}`); // <|im_end|>, <|endoftext|>
    const llama3 = await folder('llama3-tiny', [...tokenizerFiles, 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    assert.ok(llama3.stopIds.includes(128001) && llama3.stopIds.includes(128009), `llama3: ${llama3.stopIds}`); // <|end_of_text|>, <|eot_id|>
  });

test('findStopString: the shortest prefix whose text holds a stop string, and the text before it', () => {
  const pieces = ['He', 'llo', ' wo', 'rld', '\n\n', 'Next'];
  const textOf = (ids: readonly number[]) => ids.map((i) => pieces[i]).join('');
  const ids = [0, 1, 2, 3, 4, 5];
  assert.deepEqual(findStopString(ids, textOf, ['\n\n']), { length: 5, text: 'Hello world' });
  assert.deepEqual(findStopString(ids, textOf, ['lo w']), { length: 3, text: 'Hel' }, 'a stop string across tokens ends at the token that completes it');
  assert.deepEqual(findStopString(ids, textOf, ['Next', 'wor']), { length: 4, text: 'Hello ' }, 'the earliest of several');
  assert.equal(findStopString(ids, textOf, ['zzz']), null);
  assert.equal(findStopString([], textOf, ['x']), null);
});
