// Helper engines (src/core/parallel/): what a run does when a helper fails. The happy paths (same responses as one
// thread, exact replay and resume, two threads in Node, Deno, Bun and Chromium) are tested through the CLI, the
// runtime checks and the trainer page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { RemaxEngine } from '../../src/core/engine';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import { ReMaxTrainer, DEFAULT_REMAX_OPTIONS } from '../../src/core/rl/trainer';
import { HelperEngine, HelperError } from '../../src/core/parallel/helper-client';
import type { HelperReply, HelperRequest } from '../../src/core/parallel/protocol';
import { startHelperWorkers } from '../../src/node/helper-workers';
import type { ModelConfig } from '../../src/core/config';

const TINY: ModelConfig = {
  dim: 32, hiddenDim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 64, seqLen: 48,
  sharedClassifier: true, normEps: 1e-5, ropeTheta: 10000,
};

async function trainerWith(helpers: HelperEngine[]) {
  const policy = await RemaxEngine.create({ model: { config: TINY, weights: randomInitWeights(TINY, 3), format: 'llama2c-v0' }, build: 'simd' });
  const prompts = [[1, 7], [1, 12, 30], [1, 3], [1, 50, 2, 9]].map((promptIds, i) => ({ prompt: `p${i}`, promptIds, meta: {} }));
  const scorer = async (groups: { completionIds: number[] }[][]) => ({ groupRewards: groups.map((g) => g.map((s) => s.completionIds.length % 3)), skipped: 0, errors: [] });
  return new ReMaxTrainer(policy, undefined, prompts, scorer as never, {
    ...DEFAULT_REMAX_OPTIONS, klCoef: 0, batchSize: 4, seed: 5, steps: 10, maxNewTokens: 8, eosId: null,
    schedule: { kind: 'constant', lr: 1e-2, warmupSteps: 0, totalSteps: 10 },
  }, undefined, helpers);
}

/** A helper that answers init and setParameters but whose engine throws on every other request. */
function brokenHelper(): HelperEngine {
  let handler: (message: unknown) => void = () => {};
  return new HelperEngine({
    postMessage: (message) => {
      const request = message as HelperRequest;
      const reply: HelperReply = request.op === 'init' ? { id: request.id, ok: true, result: { memoryBytes: 0 } }
        : { id: request.id, ok: false, error: { message: 'out of memory', input: false } };
      queueMicrotask(() => handler(reply));
    },
    onMessage: (h) => { handler = h; },
  });
}

test('a helper whose engine fails: the step rejects with a HelperError and changes nothing (step, data order)', async () => {
  const trainer = await trainerWith([brokenHelper()]);
  const before = trainer.state().data;
  await assert.rejects(trainer.runStep(), (error: Error) => error instanceof HelperError && /engine failed: out of memory/.test(error.message));
  assert.equal(trainer.step, 0);
  assert.deepEqual(trainer.state().data, before, 'the failed step put its prompts back');
  trainer.close();
});

test('a helper thread that dies: the step rejects at once with a HelperError, and so does every later call', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-helper-'));
  try {
    const script = path.join(dir, 'dies.mjs');
    writeFileSync(script, 'throw new Error("helper crashed on start");\n');
    const [helper] = startHelperWorkers(2, pathToFileURL(script));
    const trainer = await trainerWith([helper!]);
    await assert.rejects(trainer.runStep(), (error: Error) => error instanceof HelperError && /helper crashed on start/.test(error.message));
    await assert.rejects(helper!.call('setParameters', null), HelperError);
    assert.equal(trainer.step, 0);
    trainer.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
