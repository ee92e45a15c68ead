// The runtime checks, one plain-JS module that every runtime's entry runs unchanged: Node, Deno and Bun
// (tests/runtimes/check.mjs), Cloudflare workerd (workerd-worker.mjs) and Chromium, in a page and in a Web Worker
// (browser-check.mjs). The entry passes the library it loaded, the shared test data it could read, and how to log.
//   (a) decodes the reference cases of ../shared/reference/greedy.json greedily in one batch and checks the ids exactly
//       (skipped with a printed line when the shared data is absent);
//   (b) runs a seeded sampled generation (temperature 1, top-p 0.9, seed 7, 32 tokens, 4 prompts);
//   (c) runs one seeded ReMax step on a tiny random model with a deterministic reward over the completion ids, and
//       checks the loss is finite and the weights changed;
//   (e) where the entry can start helper threads (Node, Deno and Bun: startHelpers), runs the same step on two threads
//       and checks that its responses are those of one thread and its loss agrees to rounding;
//   (d) returns the FNV-1a hashes of the sampled ids and of the weights after the step, for the portable `simd` build
//       (which must agree bit for bit across runtimes) and, where this engine accepts it, the `relaxed-simd` build
//       (which may differ between engines: fused multiply-add is optional).

// ---- hashes ----

/** FNV-1a (32 bits) over bytes, continuing from `h`. */
function fnv1a(bytes, h = 0x811c9dc5) {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
  return h;
}
const hex = (h) => h.toString(16).padStart(8, '0');
const bytesOf = (typed) => new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
/** Hash of lists of token ids: each list as its length then its ids, little-endian int32. */
const hashIds = (lists) => hex(lists.reduce((h, ids) => fnv1a(bytesOf(Int32Array.from([ids.length, ...ids])), h), 0x811c9dc5));
/** Hash of every weight tensor's float32 bytes, tensors in name order (each prefixed by its name). */
const hashWeights = (weights) => hex(Object.keys(weights).sort()
  .reduce((h, name) => fnv1a(bytesOf(weights[name]), fnv1a(new TextEncoder().encode(name), h)), 0x811c9dc5));

// The tiny model of the sampled generation when the shared data is absent, and the policy of the ReMax step.
/** The shared files of the real-model check (a'), by the key runChecks reads them under in `data`. */
export const REAL_MODEL_FILES = {
  qwenConfig: 'models/hf/qwen2-tiny/config.json', qwenWeights: 'models/hf/qwen2-tiny/model.safetensors',
  qwenTokenizer: 'models/hf/qwen2-tiny/tokenizer.json', qwenTokenizerConfig: 'models/hf/qwen2-tiny/tokenizer_config.json',
  qwenGeneration: 'models/hf/qwen2-tiny/generation_config.json', q8: 'models/gguf/stories260K-q8_0.gguf', hfJson: 'reference/hf.json',
};

const TINY = {
  dim: 32, hiddenDim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 64, seqLen: 48,
  sharedClassifier: true, normEps: 1e-5, ropeTheta: 10000,
};

/**
 * Runs the checks and returns the RESULT object (`failures` counts the failed checks).
 * @param lib     the remax-wasm module (dist/index.js or dist/browser.js)
 * @param options runtime, version; data: { stories, aidreams, greedyJson } as Uint8Arrays, or null when absent;
 *                wasm: the kernel builds to use (default: the ones embedded in the bundle); log: a line printer;
 *                startHelpers(threads): helper engines for a run on that many threads (absent: no thread check)
 */
export async function runChecks(lib, { runtime, version, data, wasm = lib.wasmBuilds, log = console.log, startHelpers }) {
  const { RemaxEngine, ReMaxTrainer, DEFAULT_REMAX_OPTIONS, randomInitWeights, supportsRelaxedSimd } = lib;
  const failures = [];
  const fail = (message) => {
    failures.push(message);
    log(`FAIL (${runtime}): ${message}`);
  };
  const BUILDS = supportsRelaxedSimd(wasm) ? ['simd', 'relaxed-simd'] : ['simd'];
  const tinyModel = (seed) => ({ config: TINY, weights: randomInitWeights(TINY, seed), format: 'llama2c-v0' });
  const greedyRef = data ? JSON.parse(new TextDecoder().decode(data.greedyJson)) : null;
  if (!data) {
    log('skipping the greedy reference check: ../shared/models/{stories260K,aidreams260K}.bin or ../shared/reference/greedy.json ' +
      'not found (the shared test data lives in ../shared beside the project root)');
  }

  /** (a) every reference case of both models, greedily, in one batch per model. */
  async function checkGreedy(build) {
    if (!data) return null;
    let cases = 0;
    for (const [name, bytes] of [['stories260K.bin', data.stories], ['aidreams260K.bin', data.aidreams]]) {
      const engine = await RemaxEngine.create({ model: bytes, modelSource: name, build, wasm });
      if (engine.build !== build) fail(`${name}: asked for the ${build} build, got ${engine.build}`);
      const refCases = greedyRef.models[name].cases;
      const results = engine.generate(refCases.map((c) => ({ promptIds: c.prompt_ids })), { temperature: 0, maxNewTokens: 64, eosId: null });
      refCases.forEach((c, i) => {
        const got = results[i].ids;
        const same = got.length === c.expected_ids.length && got.every((t, j) => t === c.expected_ids[j]);
        if (!same) fail(`${name} (${build}) greedy case ${i}: got [${got.join(',')}], expected [${c.expected_ids.join(',')}]`);
      });
      cases += refCases.length;
    }
    return cases;
  }

  /**
   * (a') the real-model formats: a Hugging Face folder (qwen2-tiny: BF16, q/k/v biases, its Qwen tokenizer.json) from
   * its files' bytes, its text prompt encoded to the reference ids and its greedy ids; and a Q8_0 GGUF's greedy ids.
   */
  const real = data?.hfJson ? await loadRealModels() : null;
  async function loadRealModels() {
    const { loadModel, memoryFileSet } = lib;
    const qwen = await loadModel(memoryFileSet('qwen2-tiny', {
      'config.json': data.qwenConfig, 'model.safetensors': data.qwenWeights, 'tokenizer.json': data.qwenTokenizer,
      'tokenizer_config.json': data.qwenTokenizerConfig, 'generation_config.json': data.qwenGeneration,
    }), { context: 64 });
    const q8 = await loadModel(memoryFileSet('stories260K-q8_0.gguf', { 'stories260K-q8_0.gguf': data.q8 }));
    const ref = JSON.parse(new TextDecoder().decode(data.hfJson)).models;
    return [['hf/qwen2-tiny', qwen, ref['hf/qwen2-tiny']], ['gguf/stories260K-q8_0.gguf', q8, ref['gguf/stories260K-q8_0.gguf']]];
  }
  async function checkRealModels(build) {
    if (!real) return 0;
    let cases = 0;
    for (const [name, model, ref] of real) {
      const engine = await RemaxEngine.create({ model, modelSource: name, build, wasm });
      for (const [i, c] of ref.greedy.entries()) {
        const promptIds = c.prompt_text === null ? c.prompt_ids : engine.encode(c.prompt_text);
        if (promptIds.join(',') !== c.prompt_ids.join(',')) fail(`${name} greedy case ${i}: the prompt encodes to [${promptIds}], expected [${c.prompt_ids}]`);
        const [r] = engine.generate([{ promptIds: c.prompt_ids }], { temperature: 0, maxNewTokens: 32, stopIds: [] });
        if (r.ids.join(',') !== c.expected_ids.join(',')) fail(`${name} (${build}) greedy case ${i}: got [${r.ids.join(',')}], expected [${c.expected_ids.join(',')}]`);
        cases++;
      }
    }
    return cases;
  }

  /** (b) a seeded sampled generation: 4 prompts, temperature 1, top-p 0.9, seed 7, 32 new tokens. */
  async function sampled(build) {
    const model = data ? data.stories : tinyModel(11);
    const prompts = data ? [...greedyRef.models['stories260K.bin'].cases.map((c) => c.prompt_ids), [1]].slice(0, 4) : [[1], [1, 5, 9], [1, 40], [1]];
    const engine = await RemaxEngine.create({ model, build, wasm });
    const results = engine.generate(prompts.map((promptIds) => ({ promptIds })), { temperature: 1, topP: 0.9, seed: 7, maxNewTokens: 32, eosId: null });
    const ids = results.map((r) => r.ids);
    if (ids.some((r) => r.length !== 32)) fail(`sampled (${build}): expected 32 tokens per prompt, got ${ids.map((r) => r.length).join(', ')}`);
    return { model: data ? 'stories260K.bin' : 'tiny random (seed 11)', hash: hashIds(ids) };
  }

  /** (c) one seeded ReMax step on a tiny random model with a deterministic reward over the completion ids. */
  async function remaxStep(build, helpers = []) {
    const policy = await RemaxEngine.create({ model: tinyModel(3), build, wasm });
    const before = policy.readWeights();
    const prompts = [[1, 7], [1, 12, 30], [1, 3], [1, 50, 2, 9]].map((promptIds, i) => ({ prompt: `p${i}`, promptIds, meta: {} }));
    // Reward: the share of even token ids in the completion (deterministic, depends only on the ids).
    const reward = (ids) => (ids.length ? ids.filter((t) => t % 2 === 0).length / ids.length : 0);
    const scorer = async (groups) => ({ groupRewards: groups.map((g) => g.map((s) => reward(s.completionIds))), skipped: 0, errors: [] });
    const trainer = new ReMaxTrainer(policy, undefined, prompts, scorer, {
      ...DEFAULT_REMAX_OPTIONS, klCoef: 0, batchSize: 4, seed: 5, steps: 1, maxNewTokens: 12, eosId: null,
      schedule: { kind: 'constant', lr: 1e-2, warmupSteps: 0, totalSteps: 1 },
    }, undefined, helpers);
    let metrics;
    try {
      metrics = await trainer.runStep();
    } finally {
      trainer.close();
    }
    const after = policy.readWeights();
    if (!Number.isFinite(metrics.loss)) fail(`ReMax step (${build}): the loss is ${metrics.loss}`);
    const changed = Object.keys(before).filter((name) => !bytesOf(before[name]).every((b, i) => b === bytesOf(after[name])[i]));
    if (changed.length === 0) fail(`ReMax step (${build}): no weight changed (advantages ${metrics.advantage_mean} ± ${metrics.advantage_std})`);
    return { hash: hashWeights(after), loss: metrics.loss, gradNorm: metrics.grad_norm, changedTensors: `${changed.length}/${Object.keys(before).length}`, metrics };
  }

  /** (e) the step of (c) on two threads: the same responses (so the same rewards and lengths), the loss to rounding. */
  async function threadedStep(build, single) {
    const r = await remaxStep(build, startHelpers(2));
    for (const key of ['reward_mean', 'greedy_reward_mean', 'response_length_mean', 'advantage_mean']) {
      if (r.metrics[key] !== single.metrics[key]) fail(`ReMax step on 2 threads (${build}): ${key} ${r.metrics[key]}, one thread ${single.metrics[key]}`);
    }
    if (!(Math.abs(r.loss - single.loss) <= 1e-5 * Math.abs(single.loss))) fail(`ReMax step on 2 threads (${build}): loss ${r.loss}, one thread ${single.loss}`);
    return r.hash;
  }

  const results = {};
  let greedyCases = null;
  for (const build of BUILDS) {
    try {
      const cases = await checkGreedy(build);
      if (cases !== null) greedyCases = cases + await checkRealModels(build);
      const s = await sampled(build);
      const r = await remaxStep(build);
      const threadsWeightsHash = startHelpers ? await threadedStep(build, r) : null;
      results[build] = { sampledModel: s.model, sampledIdsHash: s.hash, weightsHash: r.hash, loss: r.loss, gradNorm: r.gradNorm, changedTensors: r.changedTensors, threadsWeightsHash };
    } catch (error) {
      fail(`${build}: ${error?.stack ?? error}`);
    }
  }

  const greedyFailed = failures.some((f) => f.includes('greedy'));
  const simd = results.simd ?? {};
  return {
    runtime, version, build: 'simd',
    greedyOk: data ? !greedyFailed : null, greedyCases,
    sampledModel: simd.sampledModel, sampledIdsHash: simd.sampledIdsHash, weightsHash: simd.weightsHash,
    loss: simd.loss, threadsWeightsHash: simd.threadsWeightsHash ?? null, relaxed: results['relaxed-simd'] ?? null,
    failures: failures.length, failureMessages: failures,
  };
}
