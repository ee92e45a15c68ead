// One plain-JS ESM check that runs unchanged on Node, Deno and Bun (run from the project root):
//   node tests/runtimes/check.mjs
//   deno run --allow-read tests/runtimes/check.mjs
//   bun tests/runtimes/check.mjs
// It loads the bundled library (dist/index.js, WASM embedded), and
//   (a) decodes the reference cases of ../shared/reference/greedy.json greedily in one batch and checks the ids exactly
//       (skipped with a printed line when ../shared is absent);
//   (b) runs a seeded sampled generation (temperature 1, top-p 0.9, seed 7, 32 tokens, 4 prompts);
//   (c) runs one seeded ReMax step on a tiny random model with a deterministic reward over the completion ids, and
//       checks the loss is finite and the weights changed;
//   (d) prints ONE JSON line (prefixed with "RESULT ") with FNV-1a hashes of the sampled ids and of the weights after the
//       step, for the portable `simd` build (which must agree bit for bit across runtimes) and, where this engine
//       accepts it, the `relaxed-simd` build (which may differ between engines: fused multiply-add is optional).
// Exits non-zero when a check fails.
import { RemaxEngine, ReMaxTrainer, DEFAULT_REMAX_OPTIONS, randomInitWeights, wasmBuilds } from '../../dist/index.js';

const runtime = globalThis.Deno ? 'deno' : globalThis.Bun ? 'bun' : 'node';
const version = runtime === 'deno' ? globalThis.Deno.version.deno : runtime === 'bun' ? globalThis.Bun.version : globalThis.process.versions.node;

// ---- a tiny runtime adapter: files and exit ----

/** The bytes of a file (relative to the working directory), or null when it does not exist. */
async function readBytes(path) {
  try {
    if (globalThis.Deno) return await globalThis.Deno.readFile(path);
    const { readFile } = await import('node:fs/promises');
    return new Uint8Array(await readFile(path));
  } catch (error) {
    if (error?.code === 'ENOENT' || (globalThis.Deno && error instanceof globalThis.Deno.errors.NotFound)) return null;
    throw error;
  }
}

function exit(code) {
  if (globalThis.Deno) globalThis.Deno.exit(code);
  globalThis.process.exit(code);
}

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

// ---- the checks ----

const failures = [];
const fail = (message) => {
  failures.push(message);
  console.error(`FAIL (${runtime}): ${message}`);
};

// Node 20 accepts the relaxed-SIMD build only behind a V8 flag (as the Node tests set it); Deno and Bun need none.
if (runtime === 'node' && wasmBuilds.relaxed && !WebAssembly.validate(wasmBuilds.relaxed)) {
  try {
    (await import('node:v8')).setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    // no such flag: the build is reported as unavailable below
  }
}
const relaxedAvailable = Boolean(wasmBuilds.relaxed) && WebAssembly.validate(wasmBuilds.relaxed);
const BUILDS = relaxedAvailable ? ['simd', 'relaxed-simd'] : ['simd'];

const SHARED = '../shared';
const [stories, aidreams, greedyJson] = await Promise.all([
  readBytes(`${SHARED}/models/stories260K.bin`), readBytes(`${SHARED}/models/aidreams260K.bin`), readBytes(`${SHARED}/reference/greedy.json`),
]);
const shared = stories && aidreams && greedyJson;
const greedyRef = shared ? JSON.parse(new TextDecoder().decode(greedyJson)) : null;
if (!shared) {
  console.log(`skipping the greedy reference check: ${SHARED}/models/{stories260K,aidreams260K}.bin or ${SHARED}/reference/greedy.json not found ` +
    '(the shared test data lives in ../shared beside the project root)');
}

// The tiny model of the sampled generation when ../shared is absent, and the policy of the ReMax step.
const TINY = {
  dim: 32, hiddenDim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 64, seqLen: 48,
  sharedClassifier: true, normEps: 1e-5, ropeTheta: 10000,
};
const tinyModel = (seed) => ({ config: TINY, weights: randomInitWeights(TINY, seed), format: 'llama2c-v0' });

/** (a) every reference case of both models, greedily, in one batch per model. */
async function checkGreedy(build) {
  if (!shared) return null;
  let cases = 0;
  for (const [name, bytes] of [['stories260K.bin', stories], ['aidreams260K.bin', aidreams]]) {
    const engine = await RemaxEngine.create({ model: bytes, modelSource: name, build });
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

/** (b) a seeded sampled generation: 4 prompts, temperature 1, top-p 0.9, seed 7, 32 new tokens. */
async function sampled(build) {
  const model = shared ? stories : tinyModel(11);
  const prompts = shared ? [...greedyRef.models['stories260K.bin'].cases.map((c) => c.prompt_ids), [1]].slice(0, 4) : [[1], [1, 5, 9], [1, 40], [1]];
  const engine = await RemaxEngine.create({ model, build });
  const results = engine.generate(prompts.map((promptIds) => ({ promptIds })), { temperature: 1, topP: 0.9, seed: 7, maxNewTokens: 32, eosId: null });
  const ids = results.map((r) => r.ids);
  if (ids.some((r) => r.length !== 32)) fail(`sampled (${build}): expected 32 tokens per prompt, got ${ids.map((r) => r.length).join(', ')}`);
  return { model: shared ? 'stories260K.bin' : 'tiny random (seed 11)', hash: hashIds(ids) };
}

/** (c) one seeded ReMax step on a tiny random model with a deterministic reward over the completion ids. */
async function remaxStep(build) {
  const policy = await RemaxEngine.create({ model: tinyModel(3), build });
  const before = policy.readWeights();
  const prompts = [[1, 7], [1, 12, 30], [1, 3], [1, 50, 2, 9]].map((promptIds, i) => ({ prompt: `p${i}`, promptIds, meta: {} }));
  // Reward: the share of even token ids in the completion (deterministic, depends only on the ids).
  const reward = (ids) => (ids.length ? ids.filter((t) => t % 2 === 0).length / ids.length : 0);
  const scorer = async (groups) => ({ groupRewards: groups.map((g) => g.map((s) => reward(s.completionIds))), skipped: 0, errors: [] });
  const trainer = new ReMaxTrainer(policy, undefined, prompts, scorer, {
    ...DEFAULT_REMAX_OPTIONS, klCoef: 0, batchSize: 4, seed: 5, steps: 1, maxNewTokens: 12, eosId: null,
    schedule: { kind: 'constant', lr: 1e-2, warmupSteps: 0, totalSteps: 1 },
  });
  const metrics = await trainer.runStep();
  const after = policy.readWeights();
  if (!Number.isFinite(metrics.loss)) fail(`ReMax step (${build}): the loss is ${metrics.loss}`);
  const changed = Object.keys(before).filter((name) => !bytesOf(before[name]).every((b, i) => b === bytesOf(after[name])[i]));
  if (changed.length === 0) fail(`ReMax step (${build}): no weight changed (advantages ${metrics.advantage_mean} ± ${metrics.advantage_std})`);
  return { hash: hashWeights(after), loss: metrics.loss, gradNorm: metrics.grad_norm, changedTensors: `${changed.length}/${Object.keys(before).length}` };
}

const results = {};
let greedyCases = null;
for (const build of BUILDS) {
  const cases = await checkGreedy(build);
  if (cases !== null) greedyCases = cases;
  const s = await sampled(build);
  const r = await remaxStep(build);
  results[build] = { sampledModel: s.model, sampledIdsHash: s.hash, weightsHash: r.hash, loss: r.loss, gradNorm: r.gradNorm, changedTensors: r.changedTensors };
}

const greedyFailed = failures.some((f) => f.includes('greedy'));
const simd = results.simd;
console.log('RESULT ' + JSON.stringify({
  runtime, version, build: 'simd',
  greedyOk: shared ? !greedyFailed : null, greedyCases,
  sampledModel: simd.sampledModel, sampledIdsHash: simd.sampledIdsHash, weightsHash: simd.weightsHash,
  loss: simd.loss, relaxed: results['relaxed-simd'] ?? null, failures: failures.length,
}));
exit(failures.length > 0 ? 1 : 0);
