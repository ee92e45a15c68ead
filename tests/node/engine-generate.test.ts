// Batched generation behaviour on models the test builds itself (no shared data needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemaxEngine } from '../../src/core/engine';
import { RemaxInputError } from '../../src/core/errors';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, type ModelConfig } from '../../src/core/config';

// Odd sizes on purpose: head size 6 (not a multiple of 4), hidden 44, vocab 67, grouped-query heads.
const CONFIG: ModelConfig = {
  dim: 24, hiddenDim: 44, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 67, seqLen: 48,
  sharedClassifier: false, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA,
};

/** A random model, its weights scaled up so that its next-token distributions are far from uniform. */
function tinyModel(config = CONFIG, seed = 7) {
  const weights = randomInitWeights(config, seed);
  for (const w of [weights.wcls!, weights.token_embedding_table, weights.w2, weights.wo]) for (let i = 0; i < w.length; i++) w[i]! *= 25;
  return { config, weights, format: 'llama2c-v0' as const };
}

const PROMPTS = [[1, 5, 9, 13, 22, 40], [1], [1, 60, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13], [1, 33]];

test('batched generation equals one-at-a-time generation for mixed prompt lengths (greedy and sampled)', async () => {
  const e = await RemaxEngine.create({ model: tinyModel() });
  for (const sampling of [{ temperature: 0 }, { temperature: 1, topP: 0.9 }, { temperature: 0.7, topK: 5 }]) {
    const batch = e.generate(PROMPTS.map((p, i) => ({ promptIds: p, seed: 100 + i })), { ...sampling, maxNewTokens: 20, eosId: null, logprobs: true });
    PROMPTS.forEach((p, i) => {
      const [single] = e.generate([{ promptIds: p, seed: 100 + i }], { ...sampling, maxNewTokens: 20, eosId: null, logprobs: true });
      assert.deepEqual(batch[i]!.ids, single!.ids, `prompt ${i}, ${JSON.stringify(sampling)}`);
      assert.deepEqual(batch[i]!.logprobs, single!.logprobs);
    });
  }
});

test('sequences with the same tokens share rows (prompt and agreeing decode) and give exactly what each gives alone', async () => {
  // ReMax's shape: each prompt sampled and decoded greedily, prompts repeated out of order. Near-greedy sampling
  // (temperature 0.05) keeps a sample on the greedy path, so decoding shares rows too; budgets differ so that the
  // computed sequence stops before the one sharing its rows (and the other way round); with and without EOS; a
  // chunked prefill (maxTokens 5) puts a shared prompt's last row in a later chunk than its first rows.
  const sampled = { temperature: 1, topP: 0.9 }, greedy = { temperature: 0 }, nearGreedy = { temperature: 0.05 };
  const plan: [number, object, number][] = [ // prompt, sampling, budget
    [0, sampled, 16], [3, greedy, 9], [0, greedy, 16], [1, nearGreedy, 5], [0, nearGreedy, 20],
    [3, nearGreedy, 20], [0, { ...nearGreedy, topK: 3 }, 5], [1, greedy, 20], [0, greedy, 0], [3, sampled, 16],
  ];
  for (const maxTokens of [256, 5]) {
    for (const eosId of [null, 7]) {
      const e = await RemaxEngine.create({ model: tinyModel(), maxTokens });
      const requests = plan.map(([p, settings, budget], i) => ({ promptIds: PROMPTS[p]!, seed: 40 + i, ...settings, maxNewTokens: budget }));
      const batch = e.generate(requests, { eosId, logprobs: true });
      requests.forEach((r, i) => {
        const [single] = e.generate([r], { eosId, logprobs: true });
        const where = `request ${i} (maxTokens ${maxTokens}, eos ${eosId})`;
        assert.deepEqual(batch[i]!.ids, single!.ids, where);
        assert.deepEqual(batch[i]!.logprobs, single!.logprobs, where);
        assert.equal(batch[i]!.finishReason, single!.finishReason, where);
      });
      assert.equal(batch[8]!.ids.length, 0);
      // The near-greedy samples did follow the greedy path for a while (so decoding rows were shared).
      assert.deepEqual(batch[4]!.ids.slice(0, 4), batch[2]!.ids.slice(0, 4));
      assert.deepEqual(batch[5]!.ids.slice(0, 4), batch[1]!.ids.slice(0, 4));
    }
  }
});

test('a prefill split into chunks gives the same tokens as one pass', async () => {
  const whole = await RemaxEngine.create({ model: tinyModel(), maxTokens: 256 });
  const chunked = await RemaxEngine.create({ model: tinyModel(), maxTokens: 5 });
  const requests = PROMPTS.map((p) => ({ promptIds: p }));
  const a = whole.generate(requests, { temperature: 0.8, seed: 3, maxNewTokens: 12, eosId: null });
  const b = chunked.generate(requests, { temperature: 0.8, seed: 3, maxNewTokens: 12, eosId: null });
  assert.deepEqual(a.map((r) => r.ids), b.map((r) => r.ids));
});

test('the same seed replays the same tokens; another seed gives others', async () => {
  const e = await RemaxEngine.create({ model: tinyModel() });
  const run = (seed: number) => e.generate([{ promptIds: [1, 4] }, { promptIds: [1, 4] }], { seed, maxNewTokens: 30, eosId: null });
  const first = run(11), again = run(11), other = run(12);
  assert.deepEqual(first.map((r) => r.ids), again.map((r) => r.ids));
  assert.notDeepEqual(first[0]!.ids, first[1]!.ids, 'two sequences of one batch use different streams');
  assert.notDeepEqual(first.map((r) => r.ids), other.map((r) => r.ids));
});

test('top-k 1 and temperature 0 are both greedy', async () => {
  const e = await RemaxEngine.create({ model: tinyModel() });
  const requests = PROMPTS.map((p) => ({ promptIds: p }));
  const greedy = e.generate(requests, { temperature: 0, maxNewTokens: 15, eosId: null });
  const topK1 = e.generate(requests, { temperature: 1.3, topK: 1, topP: 1, maxNewTokens: 15, eosId: null, seed: 9 });
  assert.deepEqual(topK1.map((r) => r.ids), greedy.map((r) => r.ids));
});

test('sampled frequencies follow the model distribution, with top-k and top-p cutting the tail', async () => {
  const e = await RemaxEngine.create({ model: tinyModel() });
  const prompt = [1, 17, 23];
  const V = CONFIG.vocabSize;
  const probs = e.logprobs(Array.from({ length: V }, (_, v) => [...prompt, v])).map((lp) => Math.exp(lp.at(-1)!));
  assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-4);
  const order = probs.map((p, v) => ({ p, v })).sort((a, b) => b.p - a.p);
  const draws = 6000;
  const count = (options: object) => {
    const counts = new Array(V).fill(0);
    const out = e.generate(Array.from({ length: draws }, () => ({ promptIds: prompt })), { ...options, maxNewTokens: 1, eosId: null, seed: 5 });
    for (const r of out) counts[r.ids[0]!]++;
    return counts;
  };
  const check = (counts: number[], expected: number[], label: string) => {
    expected.forEach((p, v) => {
      const sd = Math.sqrt(draws * p * (1 - p)) + 1;
      assert.ok(Math.abs(counts[v]! - draws * p) <= 5 * sd, `${label}: token ${v} drawn ${counts[v]} times, expected ${(draws * p).toFixed(1)}`);
    });
  };
  check(count({ temperature: 1, topP: 1 }), probs, 'full distribution');

  const top3 = new Set(order.slice(0, 3).map((o) => o.v));
  const mass3 = order.slice(0, 3).reduce((s, o) => s + o.p, 0);
  check(count({ temperature: 1, topK: 3, topP: 1 }), probs.map((p, v) => (top3.has(v) ? p / mass3 : 0)), 'top-k 3');

  let cumulative = 0;
  const nucleus = new Set<number>();
  for (const o of order) { nucleus.add(o.v); cumulative += o.p; if (cumulative >= 0.5) break; }
  check(count({ temperature: 1, topP: 0.5 }), probs.map((p, v) => (nucleus.has(v) ? p / cumulative : 0)), 'top-p 0.5');
});

test('each sequence stops at EOS (kept), at its token budget, or when its context is full', async () => {
  const e = await RemaxEngine.create({ model: tinyModel() });
  const [free] = e.generate([{ promptIds: [1, 8] }], { temperature: 0, maxNewTokens: 10, eosId: null });
  const eos = free!.ids[4]!;
  const [stopped] = e.generate([{ promptIds: [1, 8] }], { temperature: 0, maxNewTokens: 10, eosId: eos });
  assert.deepEqual(stopped!.ids, free!.ids.slice(0, free!.ids.indexOf(eos) + 1));
  assert.equal(stopped!.finishReason, 'eos');

  const mixed = e.generate([{ promptIds: [1, 8], maxNewTokens: 3 }, { promptIds: [1, 8], maxNewTokens: 7 }], { temperature: 0, eosId: null });
  assert.deepEqual(mixed.map((r) => r.ids.length), [3, 7]);

  const long = Array.from({ length: CONFIG.seqLen - 4 }, (_, i) => 1 + (i % 60));
  const [full] = e.generate([{ promptIds: long }], { temperature: 0, maxNewTokens: 100, eosId: null });
  assert.equal(full!.ids.length, 4);
  assert.equal(full!.finishReason, 'context');
});

test('logprobs of the tokens generate() returns match teacher forcing', async () => {
  const e = await RemaxEngine.create({ model: tinyModel() });
  const gen = e.generate(PROMPTS.map((p) => ({ promptIds: p })), { temperature: 1, seed: 1, maxNewTokens: 10, eosId: null, logprobs: true });
  const forced = e.logprobs(gen.map((g) => [...g.promptIds, ...g.ids]));
  gen.forEach((g, i) => {
    const tail = forced[i]!.slice(g.promptIds.length - 1);
    g.logprobs!.forEach((lp, t) => assert.ok(Math.abs(lp - tail[t]!) < 1e-5, `seq ${i} token ${t}: ${lp} vs ${tail[t]}`));
  });
});

test('a request can turn log-probabilities on or off for itself; the tokens and the other log-probabilities stay the same', async () => {
  const e = await RemaxEngine.create({ model: tinyModel() });
  // ReMax's batch: sampled and greedy responses of the same prompts, only the sampled ones with log-probabilities.
  const requests = PROMPTS.flatMap((p, i) => [{ promptIds: p, seed: 10 + i, temperature: 1 }, { promptIds: p, seed: 50 + i, temperature: 0 }]);
  const all = e.generate(requests, { maxNewTokens: 12, eosId: null, logprobs: true });
  const mixed = e.generate(requests.map((r) => ({ ...r, logprobs: r.temperature > 0 })), { maxNewTokens: 12, eosId: null });
  mixed.forEach((g, i) => {
    assert.deepEqual(g.ids, all[i]!.ids, `request ${i}`);
    if (requests[i]!.temperature > 0) assert.deepEqual(g.logprobs, all[i]!.logprobs, `request ${i}`);
    else assert.equal(g.logprobs, undefined, `request ${i} asked for none`);
  });
  const off = e.generate([{ promptIds: [1, 5], logprobs: false }], { maxNewTokens: 3, eosId: null, logprobs: true });
  assert.equal(off[0]!.logprobs, undefined, 'the request overrides the batch option');
});

test('the workspace grows for a batch larger than planned, and memory never shrinks', async () => {
  const e = await RemaxEngine.create({ model: tinyModel(), maxBatch: 1 });
  const before = e.memoryBytes;
  const out = e.generate(Array.from({ length: 40 }, () => ({ promptIds: [1, 3] })), { maxNewTokens: 4, eosId: null });
  assert.equal(out.length, 40);
  assert.ok(e.capacity.maxSeqs >= 40);
  assert.ok(e.memoryBytes > before);
});

test('bad requests throw RemaxInputError naming the problem', async () => {
  const e = await RemaxEngine.create({ model: tinyModel() });
  const long = Array.from({ length: CONFIG.seqLen }, () => 1);
  assert.throws(() => e.generate([{ promptIds: long }]), (err: Error) => err instanceof RemaxInputError && /48 tokens.*seq_len\) is 48/.test(err.message));
  assert.throws(() => e.generate([{ promptIds: [1, 67] }]), (err: Error) => err instanceof RemaxInputError && /token id 67 at index 1/.test(err.message));
  assert.throws(() => e.generate([{ promptIds: [] }]), RemaxInputError);
  assert.throws(() => e.generate([{ promptIds: [1] }], { topP: 0 }), /topP/);
  assert.throws(() => e.generate([{ promptIds: [1] }], { temperature: -1 }), /temperature/);
  assert.throws(() => e.logprobs([[1, ...long]]), /seq_len/);
  assert.throws(() => e.encode('hi'), /no tokenizer/);
});
