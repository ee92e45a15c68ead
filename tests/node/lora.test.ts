// LoRA adapters in the engine: the forward equals the model with the adapters merged into its weights, the
// gradients of A and B (and of the inputs through the adapters, which the earlier layer's adapters see) agree with
// finite differences of a float64 model, only the adapters train, and the memory is planned for them alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemaxEngine } from '../../src/core/engine';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, weightShapes, type ModelConfig, type ModelWeights } from '../../src/core/config';
import { dropoutKeep, initLoraWeights, loraScale, loraShapes, LORA_WEIGHT, mergeLora, parseLoraTargets, projectionDims, type LoraSettings, type LoraWeights } from '../../src/core/lora';
import { Prng } from '../../src/core/prng';
import { RemaxInputError } from '../../src/core/errors';
import { planModel, planOptimizer, planWorkspace, workspaceSizes } from '../../src/core/memory-plan';
import { referenceLoss, type ReferenceLora, type Weights64 } from './reference-llama';

const maxAbs = (t: ArrayLike<number>) => Array.from(t).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

const tiny = (overrides: Partial<ModelConfig>): ModelConfig => ({
  dim: 24, hiddenDim: 20, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 19, seqLen: 12,
  sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA, ...overrides,
});

function randomWeights(config: ModelConfig, seed: number): ModelWeights {
  const w = randomInitWeights(config, seed);
  const rng = new Prng(seed + 1);
  for (const { name } of weightShapes(config)) {
    const t = w[name]!;
    for (let i = 0; i < t.length; i++) t[i] = name.startsWith('rms') ? 0.5 + rng.nextFloat64() : t[i]! * 12;
  }
  return w;
}

/** Adapters with B nonzero too (fresh ones have B = 0, whose A gradient is 0: a check that could not fail). */
function randomAdapters(config: ModelConfig, lora: LoraSettings, seed: number): LoraWeights {
  const rng = new Prng(seed), out: LoraWeights = {};
  for (const { target, a, b } of loraShapes(config, lora)) {
    const fill = (shape: number[], scale: number) => Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => (2 * rng.nextFloat64() - 1) * scale);
    out[target] = { a: fill(a, 0.6), b: fill(b, 0.6) };
  }
  return out;
}

const EXAMPLES = [
  { ids: [1, 5, 9, 3, 17, 2], weights: [0, 0, 0, 0.7, 0.7, 0.7] },
  { ids: [1, 11, 4, 4, 8, 13, 6, 2, 10], weights: [0, 0, -0.3, -0.3, -0.3, -0.3, -0.3, -0.3, -0.3] },
  { ids: [1, 7], weights: [0, 1.5] },
];

/** Float64 merged weights W + s·B·A (the float64 reference model knows no adapters). */
function merged64(config: ModelConfig, weights: ModelWeights, lora: LoraSettings, adapters: Record<string, { a: Float64Array; b: Float64Array }>): Weights64 {
  const w64: Weights64 = {};
  for (const { name } of weightShapes(config)) w64[name] = Float64Array.from(weights[name]!);
  const s = loraScale(lora), r = lora.rank;
  for (const target of lora.targets) {
    const [inDim, outDim] = projectionDims(config, target), w = w64[LORA_WEIGHT[target]]!, { a, b } = adapters[target]!;
    for (let l = 0; l < config.nLayers; l++) {
      for (let o = 0; o < outDim; o++) {
        for (let i = 0; i < inDim; i++) {
          let sum = 0;
          for (let k = 0; k < r; k++) sum += b[l * outDim * r + o * r + k]! * a[l * r * inDim + k * inDim + i]!;
          w[l * outDim * inDim + o * inDim + i]! += s * sum;
        }
      }
    }
  }
  return w64;
}

const FD_CASES: [string, ModelConfig, LoraSettings][] = [
  ['rank 3, every projection', tiny({}), { rank: 3, alpha: 5, targets: parseLoraTargets('q,k,v,o,gate,up,down'), dropout: 0 }],
  ['rank 2, q/v/down on biases and q/k norms, head size 8 (Qwen-like)', tiny({ qkvBias: true, qkNorm: true, headSize: 8, sharedClassifier: false }),
    { rank: 2, alpha: 16, targets: parseLoraTargets('q_proj,v_proj,down_proj'), dropout: 0 }],
  ['rank 4, o/gate/up, narrow layers, 3 layers', tiny({ nLayers: 3, dim: 20, nHeads: 2, hiddenDim: 9, nKvHeads: 2 }),
    { rank: 4, alpha: 4, targets: parseLoraTargets('o,gate,up'), dropout: 0 }],
];

for (const [what, config, lora] of FD_CASES) {
  test(`LoRA gradients of A and B agree with finite differences of a float64 model: ${what}`, async () => {
    const weights = randomWeights(config, 3), adapters = randomAdapters(config, lora, 11);
    const engine = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' }, lora, loraWeights: adapters });
    engine.enableTraining({ maxTokens: config.seqLen, maxSeqs: 2 });
    engine.zeroGradients();
    const { loss } = engine.accumulateGradients(EXAMPLES);
    const grads = engine.readAdapterGradients();
    const a64: Record<string, { a: Float64Array; b: Float64Array }> = {};
    for (const t of lora.targets) a64[t] = { a: Float64Array.from(adapters[t]!.a), b: Float64Array.from(adapters[t]!.b) };
    const lossOf = () => referenceLoss(config, merged64(config, weights, lora, a64), EXAMPLES);
    const reference = lossOf();
    assert.ok(Math.abs(loss - reference) <= 1e-5 * Math.abs(reference), `loss ${loss} vs float64 merged ${reference}`);
    const rng = new Prng(9);
    for (const target of lora.targets) {
      for (const which of ['a', 'b'] as const) {
        const t = a64[target]![which], g = grads[target]![which], scale = maxAbs(g);
        assert.ok(scale > 0, `${target} ${which}: gradient is all zero`);
        // Samples in every layer: layer 0's adapters see the gradient coming back through layer 1's adapters.
        for (let sample = 0; sample < 6; sample++) {
          const i = Math.floor(((sample % config.nLayers) + rng.nextFloat64()) / config.nLayers * t.length);
          const h = 1e-5 * Math.max(1, Math.abs(t[i]!)), keep = t[i]!;
          t[i] = keep + h;
          const plus = lossOf();
          t[i] = keep - h;
          const minus = lossOf();
          t[i] = keep;
          const fd = (plus - minus) / (2 * h);
          const err = Math.abs(g[i]! - fd) / Math.max(Math.abs(fd), 1e-2 * scale);
          assert.ok(err <= 1e-3, `${target} ${which}[${i}]: gradient ${g[i]} vs finite difference ${fd} (relative error ${err.toExponential(2)})`);
        }
      }
    }
  });
}

test('LoRA dropout: the loss and the gradients of A and B match a float64 model with the same masks (PEFT\'s dropout on the adapters\' input)', async () => {
  const config = tiny({ qkvBias: true }), lora: LoraSettings = { rank: 3, alpha: 6, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'], dropout: 0.3 };
  const weights = randomWeights(config, 3), adapters = randomAdapters(config, lora, 12);
  const examples = EXAMPLES.map((e, i) => ({ ...e, dropoutSeed: 1000 + 77 * i }));
  const engine = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' }, lora, loraWeights: adapters });
  engine.enableTraining({ maxTokens: config.seqLen, maxSeqs: 2 });
  engine.zeroGradients();
  const { loss } = engine.accumulateGradients(examples);
  const grads = engine.readAdapterGradients();
  const w64: Weights64 = {};
  for (const { name } of weightShapes(config)) w64[name] = Float64Array.from(weights[name]!);
  const ref: ReferenceLora = {
    rank: lora.rank, scale: loraScale(lora), adapters: {},
    keep: (seed, pos, layer, target, col) => dropoutKeep(lora, seed, pos, layer, target as LoraSettings['targets'][number], col),
  };
  for (const t of lora.targets) ref.adapters[t] = { a: Float64Array.from(adapters[t]!.a), b: Float64Array.from(adapters[t]!.b) };
  const reference = referenceLoss(config, w64, examples, ref);
  assert.ok(Math.abs(loss - reference) <= 1e-5 * Math.abs(reference), `loss ${loss} vs float64 ${reference}`);
  // The masks matter: without them the loss differs; about 30 % of the values are dropped.
  const noDropout = referenceLoss(config, w64, examples, { ...ref, keep: undefined });
  assert.ok(Math.abs(noDropout - reference) > 1e-3 * Math.abs(reference), `dropout changes the loss: ${noDropout} vs ${reference}`);
  let dropped = 0;
  for (let col = 0; col < 1000; col++) if (dropoutKeep(lora, 5, 2, 1, 'q', col) === 0) dropped++;
  assert.ok(dropped > 250 && dropped < 350, `${dropped} of 1000 dropped`);
  const rng = new Prng(19);
  for (const target of lora.targets) {
    for (const which of ['a', 'b'] as const) {
      const t = ref.adapters[target]![which], g = grads[target]![which], scale = maxAbs(g);
      for (let sample = 0; sample < 4; sample++) {
        const i = Math.floor(((sample % config.nLayers) + rng.nextFloat64()) / config.nLayers * t.length);
        const h = 1e-5 * Math.max(1, Math.abs(t[i]!)), keep = t[i]!;
        t[i] = keep + h;
        const plus = referenceLoss(config, w64, examples, ref);
        t[i] = keep - h;
        const minus = referenceLoss(config, w64, examples, ref);
        t[i] = keep;
        const fd = (plus - minus) / (2 * h);
        const err = Math.abs(g[i]! - fd) / Math.max(Math.abs(fd), 1e-2 * scale);
        assert.ok(err <= 1e-3, `${target} ${which}[${i}]: gradient ${g[i]} vs finite difference ${fd} (relative error ${err.toExponential(2)})`);
      }
    }
  }
  // Recomputed layers rebuild the same masks: bit-identical gradients. Inference has no dropout.
  const recomputing = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' }, lora, loraWeights: adapters });
  recomputing.enableTraining({ maxTokens: config.seqLen, maxSeqs: 2, activationCheckpointing: true });
  recomputing.zeroGradients();
  assert.equal(recomputing.accumulateGradients(examples).loss, loss);
  assert.deepEqual(recomputing.readAdapterGradients(), grads);
  const lp = engine.logprobs(examples.map((e) => e.ids));
  const noDrop = -examples.reduce((sum, e, i) => sum + lp[i]!.reduce((s, v, t) => s + v * e.weights[t + 1]!, 0), 0);
  assert.ok(Math.abs(noDrop - noDropout) <= 1e-5 * Math.abs(noDropout), `inference log-likelihood ${noDrop} vs float64 without dropout ${noDropout}`);
});

test('LoRA: the input gradient through the adapters reaches the earlier layers (checked against a full engine on merged weights)', async () => {
  // The gradient of a weight below an adapted projection depends on dx through the adapter: a full-training engine
  // on the merged weights has the same dx, so layer 0's adapter gradient equals s·(∂L/∂W')·Aᵀ etc. of that engine.
  const config = tiny({}), lora: LoraSettings = { rank: 3, alpha: 6, targets: ['q', 'o', 'down'], dropout: 0 };
  const weights = randomWeights(config, 5), adapters = randomAdapters(config, lora, 6);
  const engine = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' }, lora, loraWeights: adapters });
  engine.enableTraining({ maxTokens: 64, maxSeqs: 4 });
  engine.zeroGradients();
  engine.accumulateGradients(EXAMPLES);
  const g = engine.readAdapterGradients();
  const full = await RemaxEngine.create({ model: { config, weights: mergeLora(config, weights, lora, adapters), format: 'llama2c-v0' } });
  full.enableTraining({ maxTokens: 64, maxSeqs: 4 });
  full.zeroGradients();
  full.accumulateGradients(EXAMPLES);
  const gw = full.readGradients(), s = loraScale(lora), r = lora.rank;
  for (const target of lora.targets) {
    const [inDim, outDim] = projectionDims(config, target), dW = gw[LORA_WEIGHT[target]]!, { a, b } = adapters[target]!;
    for (let l = 0; l < config.nLayers; l++) {
      // ∂L/∂B[o,k] = s·Σ_i ∂L/∂W'[o,i]·A[k,i];  ∂L/∂A[k,i] = s·Σ_o B[o,k]·∂L/∂W'[o,i].
      const expB = new Float64Array(outDim * r), expA = new Float64Array(r * inDim);
      for (let o = 0; o < outDim; o++) for (let i = 0; i < inDim; i++) {
        const d = dW[l * outDim * inDim + o * inDim + i]!;
        for (let k = 0; k < r; k++) {
          expB[o * r + k]! += s * d * a[l * r * inDim + k * inDim + i]!;
          expA[k * inDim + i]! += s * b[l * outDim * r + o * r + k]! * d;
        }
      }
      const gotB = g[target]!.b.subarray(l * outDim * r, (l + 1) * outDim * r), gotA = g[target]!.a.subarray(l * r * inDim, (l + 1) * r * inDim);
      for (const [name, got, exp] of [['B', gotB, expB], ['A', gotA, expA]] as const) {
        const scale = maxAbs(exp);
        exp.forEach((v, i) => assert.ok(Math.abs(got[i]! - v) <= 2e-4 * scale, `layer ${l} ${target} ${name}[${i}]: ${got[i]} vs ${v}`));
      }
    }
  }
});

test('LoRA: fresh adapters (B = 0) give the base model; adapters off (the reference) is the base engine bit for bit', async () => {
  const config = tiny({ qkvBias: true }), weights = randomWeights(config, 8);
  const lora: LoraSettings = { rank: 4, alpha: 8, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'], dropout: 0 };
  const base = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' } });
  const fresh = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' }, lora, loraSeed: 3 });
  const seqs = EXAMPLES.map((e) => e.ids), expected = base.logprobs(seqs);
  assert.deepEqual(fresh.logprobs(seqs), expected);
  // PEFT's init: A uniform in ±1/√in, B zero.
  const init = fresh.readAdapters();
  assert.ok(maxAbs(init.q!.a) > 0 && maxAbs(init.q!.a) <= 1 / Math.sqrt(config.dim) && maxAbs(init.q!.b) === 0);
  assert.deepEqual(init, initLoraWeights(config, lora, 3));
  const adapted = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' }, lora, loraWeights: randomAdapters(config, lora, 2) });
  assert.notDeepEqual(adapted.logprobs(seqs), expected);
  assert.deepEqual(adapted.logprobs(seqs, { adapters: false }), expected);
  // Generation reads the adapters too (the same forward): greedy text of the merged model.
  const merged = await RemaxEngine.create({ model: { config, weights: mergeLora(config, weights, lora, adapted.readAdapters()), format: 'llama2c-v0' } });
  const lpA = adapted.logprobs(seqs), lpM = merged.logprobs(seqs);
  lpA.forEach((row, s) => row.forEach((v, t) => assert.ok(Math.abs(v - lpM[s]![t]!) <= 1e-4, `seq ${s} t ${t}: ${v} vs merged ${lpM[s]![t]}`)));
  const request = [{ promptIds: [1, 5, 9], maxNewTokens: 6 }];
  assert.deepEqual(adapted.generate(request, { temperature: 0 }).map((g) => g.ids), merged.generate(request, { temperature: 0 }).map((g) => g.ids));
});

test('LoRA training: only the adapters change; activation checkpointing gives bit-identical adapter gradients', async () => {
  const config = tiny({ nLayers: 3 }), weights = randomWeights(config, 4);
  const lora: LoraSettings = { rank: 3, alpha: 3, targets: ['q', 'v', 'up'], dropout: 0 };
  const run = async (activationCheckpointing: boolean) => {
    const engine = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' }, lora, loraWeights: randomAdapters(config, lora, 1) });
    engine.enableTraining({ maxTokens: 4 * config.seqLen, maxSeqs: 4, activationCheckpointing });
    engine.zeroGradients();
    engine.accumulateGradients(EXAMPLES);
    return engine;
  };
  const saved = await run(false), recomputed = await run(true);
  assert.deepEqual(recomputed.readAdapterGradients(), saved.readAdapterGradients());
  const before = saved.readAdapters();
  saved.optimizerStep({ lr: 1e-2, weightDecay: 0.1 });
  assert.deepEqual(saved.readWeights(), weights, 'the frozen weights are untouched');
  const after = saved.readAdapters();
  for (const t of lora.targets) assert.notDeepEqual(after[t]!.a, before[t]!.a, `${t} A moved`);
  // The trainable region is the adapters' (with the arena's alignment gaps).
  const adapterFloats = loraShapes(config, lora).reduce((n, { a, b }) => n + a.reduce((x, y) => x * y) + b.reduce((x, y) => x * y), 0);
  assert.equal(saved.trainableParameterCount, adapterFloats);
  assert.ok(saved.parameterSlots >= adapterFloats && saved.parameterSlots < adapterFloats + 16 * 2 * lora.targets.length);
  assert.equal(saved.readOptimizerState().m.length, saved.parameterSlots);
  assert.throws(() => saved.readGradients(), /readAdapterGradients/);
});

test('LoRA memory: gradients and Adam moments for the adapters only', async () => {
  // A model whose weights dominate the memory: dim 256, 4 layers, vocab 512.
  const config = tiny({ dim: 256, hiddenDim: 688, nLayers: 4, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 64 });
  const weights = randomInitWeights(config, 1);
  const lora: LoraSettings = { rank: 8, alpha: 16, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'], dropout: 0 };
  const measure = async (withLora: boolean) => {
    const engine = await RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' }, ...(withLora ? { lora } : {}) });
    const loaded = engine.memoryBytes;
    engine.enableTraining({ maxTokens: 64, maxSeqs: 1 });
    engine.zeroGradients();
    engine.accumulateGradients([{ ids: Array.from({ length: 64 }, (_, i) => 1 + (i % 500)), weights: Array(64).fill(1) }]);
    engine.optimizerStep({ lr: 1e-3 });
    return { loaded, training: engine.memoryBytes, slots: engine.parameterSlots, trainable: engine.trainableParameterCount };
  };
  const full = await measure(false), adapted = await measure(true);
  const adapterFloats = loraShapes(config, lora).reduce((n, { a, b }) => n + a.reduce((x, y) => x * y) + b.reduce((x, y) => x * y), 0);
  assert.equal(adapted.trainable, adapterFloats);
  // Full training adds 3 copies of the weights (gradients, m, v) to what loading takes; LoRA 3 copies of the adapters.
  const weightBytes = 4 * full.slots;
  assert.ok(full.training - full.loaded >= 3 * weightBytes, `full: +${full.training - full.loaded} bytes`);
  assert.ok(adapted.training < full.training - 2.5 * weightBytes, `LoRA ${adapted.training} vs full ${full.training} bytes`);
  console.log(`# memory (dim 256, 4 layers, vocab 512, ${full.slots} weights; rank 8 on all 7 projections, ${adapterFloats} adapter values): ` +
    `full training ${(full.training / 2 ** 20).toFixed(1)} MiB, LoRA ${(adapted.training / 2 ** 20).toFixed(1)} MiB (loaded: ${(full.loaded / 2 ** 20).toFixed(1)} / ${(adapted.loaded / 2 ** 20).toFixed(1)} MiB)`);
});

test('LoRA settings are checked: rank, alpha, targets, dropout', async () => {
  const config = tiny({}), weights = randomWeights(config, 1);
  const make = (lora: Partial<LoraSettings>) => RemaxEngine.create({ model: { config, weights, format: 'llama2c-v0' }, lora: { rank: 2, alpha: 4, targets: ['q'], dropout: 0, ...lora } });
  await assert.rejects(make({ rank: 0 }), (e: Error) => e instanceof RemaxInputError && /--lora-rank.*0.*1 to 12/.test(e.message));
  await assert.rejects(make({ rank: 2.5 }), RemaxInputError);
  await assert.rejects(make({ alpha: -1 }), /--lora-alpha/);
  await assert.rejects(make({ dropout: 1 }), /--lora-dropout.*from 0 up to \(not including\) 1/);
  await make({ dropout: 0.1 });
  assert.throws(() => parseLoraTargets('q,attn'), /unknown projection "attn"/);
  assert.deepEqual(parseLoraTargets('down,q_proj,v'), ['q', 'v', 'down']);
  const engine = await make({});
  assert.throws(() => engine.writeAdapters({ q: { a: new Float32Array(3), b: new Float32Array(3) } }), /q projection's LoRA A must have 96 values/);
});

test('LoRA memory plan: adapters after the weights; gradients and both moments span the adapter region alone', () => {
  const config = tiny({ nLayers: 3 }), lora: LoraSettings = { rank: 5, alpha: 5, targets: ['k', 'gate'], dropout: 0.1 };
  const full = planModel(config, 1024), plan = planModel(config, 1024, {}, lora);
  assert.equal(plan.paramEnd - plan.paramStart, full.paramEnd - full.paramStart, 'the weights are laid out as without adapters');
  assert.ok(plan.loraStart >= plan.paramEnd && plan.trainStart === plan.loraStart && plan.trainEnd === plan.loraEnd);
  const adapterBytes = 4 * loraShapes(config, lora).reduce((n, { a, b }) => n + a.reduce((x, y) => x * y) + b.reduce((x, y) => x * y), 0);
  assert.ok(plan.loraEnd - plan.loraStart >= adapterBytes && plan.loraEnd - plan.loraStart < adapterBytes + 4 * 64);
  const opt = planOptimizer(plan);
  assert.equal(opt.end - plan.end, 3 * (plan.loraEnd - plan.loraStart), 'gradients, m and v of the adapters, nothing for the weights');
  // Workspaces: u per layer and adapted projection when training (one layer's when recomputing or in inference),
  // its gradient, the rows' dropout seeds and one dropped-out input.
  const spec = { maxSeqs: 2, maxTokens: 24, maxLogitRows: 8, lora };
  const training = workspaceSizes(config, { ...spec, training: true }), recompute = workspaceSizes(config, { ...spec, training: true, recompute: true });
  const inference = workspaceSizes(config, { ...spec, training: false });
  assert.equal(training.loraU, 3 * 2 * 4 * 5 * 24);
  assert.equal(recompute.loraU, 2 * 4 * 5 * 24);
  assert.equal(inference.loraU, 2 * 4 * 5 * 24);
  assert.deepEqual([training.loraDu, training.loraSeeds, training.loraXd], [4 * 5 * 24, 4 * 24, 4 * 24 * Math.max(config.dim, config.hiddenDim)]);
  assert.deepEqual([inference.loraDu, inference.loraSeeds, inference.loraXd], [0, 0, 0]);
  assert.equal(workspaceSizes(config, { ...spec, lora: { ...lora, dropout: 0 }, training: true }).loraXd, 0);
  assert.equal(planWorkspace(config, 0, { ...spec, training: true }).loraStride, 2 * 4 * 5 * 24);
  assert.equal(planWorkspace(config, 0, { ...spec, training: true, recompute: true }).loraStride, 0);
});
