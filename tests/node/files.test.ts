// Atomic writes (src/node/files.ts, src/node/run-checkpoint.ts) when the disk is full: the error names the file and
// the cause, and nothing already on disk is lost. The full disk is a real one: a 256 KiB tmpfs mounted for the test
// (needs root, as in CI; skipped with the reason otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendToFile, writeFileAtomic } from '../../src/node/files';
import { saveRunCheckpoint, loadRunState, weightsHash } from '../../src/node/run-checkpoint';
import { randomInitWeights, serializeCheckpoint } from '../../src/core/formats/llama2c';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, type ModelConfig, type ModelWeights } from '../../src/core/config';
import type { TrainingState } from '../../src/core/training-state';
import { RemaxInputError } from '../../src/core/errors';

const config: ModelConfig = {
  dim: 16, hiddenDim: 32, nLayers: 1, nHeads: 2, nKvHeads: 2, vocabSize: 32, seqLen: 16,
  sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA,
};
const HEADER_BYTES = 28; // llama2.c v0 header: seven int32

function checkpointPair(seed: number): { model: Uint8Array; weights: ModelWeights; state: TrainingState } {
  const weights = randomInitWeights(config, seed);
  const model = serializeCheckpoint(config, weights);
  const count = (model.length - HEADER_BYTES) / 4;
  return {
    model, weights,
    state: {
      step: seed, schedule: { kind: 'constant', lr: 1e-3, warmupSteps: 0, totalSteps: 10, minLr: 0 },
      optimizer: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, clipNorm: 1 },
      data: { seed: 1, count: 4, position: { epoch: 0, index: seed } }, samplerState: 7n, config, extra: {},
      m: new Float32Array(count).fill(seed), v: new Float32Array(count).fill(seed * 1e-3),
    },
  };
}

function throwsDiskFull(fn: () => unknown, path: string, rest: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RemaxInputError, `expected a RemaxInputError, got ${String(e)}`);
    assert.ok(e.message.includes(path), `the message names ${path}: ${e.message}`);
    assert.match(e.message, /the disk is full/);
    assert.match(e.message, rest);
    return true;
  });
}

/** Mounts a tmpfs of `bytes` for the body, or returns why it cannot. */
function withTinyDisk(bytes: number, body: (dir: string) => void): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'remax-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    return `cannot mount a small tmpfs here (${String((error as Error).message).split('\n')[0]})`;
  }
  try {
    body(dir);
  } finally {
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
  return undefined;
}

/** Fills the disk of dir until about `free` bytes are left. */
function fillUntil(dir: string, free: number): void {
  const stat = statfsSync(dir);
  const filler = stat.bavail * stat.bsize - free;
  if (filler > 0) writeFileSync(join(dir, `filler-${free}`), new Uint8Array(filler));
}

const temps = (dir: string) => readdirSync(dir, { recursive: true }).map(String).filter((name) => name.endsWith('.tmp'));

test('a folder that does not exist: the error names the path and the cause', () => {
  const path = join(tmpdir(), 'remax-no-such-folder', 'model.bin');
  assert.throws(() => writeFileAtomic(path, 'x'), (e: unknown) => e instanceof RemaxInputError && e.message.includes(path) &&
    /its folder does not exist; nothing was written/.test(e.message));
});

test('a full disk: writeFileAtomic keeps the old file, a checkpoint save keeps the old model and state as a pair, appends name the file', (t) => {
  const skip = withTinyDisk(256 * 1024, (dir) => {
    const one = checkpointPair(1), two = checkpointPair(2);
    const stateBytes = one.model.length * 2 + 1024; // the moments m, v and a JSON section: more than a model's size
    mkdirSync(join(dir, 'run'));
    const modelPath = join(dir, 'run', 'model.bin');
    saveRunCheckpoint(modelPath, { '': one.model }, one.state, weightsHash(config, one.weights));
    const expect = { config, parameterCount: one.state.m.length };
    assert.equal(loadRunState(modelPath, { config, weights: one.weights }, expect).step, 1);

    // Room for neither temp file, then room for the model's temp but not the state's: the save fails either way.
    for (const free of [one.model.length / 2, one.model.length + stateBytes / 2]) {
      fillUntil(dir, free);
      throwsDiskFull(() => saveRunCheckpoint(modelPath, { '': two.model }, two.state, weightsHash(config, two.weights)), modelPath.slice(0, -'model.bin'.length), /none of .* was replaced/);
      assert.deepEqual(new Uint8Array(readFileSync(modelPath)), one.model, 'the previous model is kept');
      assert.equal(loadRunState(modelPath, { config, weights: one.weights }, expect).step, 1, 'the previous state still belongs to it');
      assert.deepEqual(temps(dir), [], 'no temp file is left behind');
    }

    const notePath = join(dir, 'run', 'note.txt');
    rmSync(join(dir, `filler-${one.model.length / 2}`));
    writeFileAtomic(notePath, 'old');
    fillUntil(dir, 0);
    throwsDiskFull(() => writeFileAtomic(notePath, 'x'.repeat(64 * 1024)), notePath, /nothing was written/);
    assert.equal(readFileSync(notePath, 'utf8'), 'old');
    assert.deepEqual(temps(dir), []);
    throwsDiskFull(() => appendToFile(join(dir, 'run', 'metrics.jsonl'), 'x'.repeat(64 * 1024)), join(dir, 'run', 'metrics.jsonl'), /^cannot append to /);
    assert.ok(existsSync(modelPath));
  });
  if (skip) t.skip(skip);
});
