import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FORMAT_VERSION, parseTrainingState, serializeTrainingState, type TrainingState } from '../../src/core/training-state';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, type ModelConfig } from '../../src/core/config';
import { RemaxInputError } from '../../src/core/errors';

const config: ModelConfig = {
  dim: 64, hiddenDim: 172, nLayers: 2, nHeads: 4, nKvHeads: 4, vocabSize: 512, seqLen: 256,
  sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA,
};

function sampleState(count = 7): TrainingState {
  return {
    step: 1234,
    schedule: { kind: 'cosine', lr: 3e-4, warmupSteps: 100, totalSteps: 5000, minLr: 3e-5 },
    optimizer: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clipNorm: 1 },
    data: { seed: -17, count: 900, position: { epoch: 3, index: 412 } },
    samplerState: 0xfedcba9876543210n, // above 2^63: must survive as a u64
    config,
    extra: { metrics: { loss: [2.5, 2.25], rewardMean: -0.125 }, remax: { samples: 4, kl: 0.02, baseline: 'greedy' } },
    m: Float32Array.from({ length: count }, (_, i) => (i - 3) * 0.1),
    v: Float32Array.from({ length: count }, (_, i) => i * i * 1e-6),
  };
}

const bytesOf = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function throwsInput(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RemaxInputError, `expected a RemaxInputError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

/** FNV-1a over 32-bit words, written out independently of the module (the state's integrity hash). */
function wordHash(bytes: Uint8Array, end: number): number {
  const words = new Uint32Array(bytes.slice(0, end).buffer);
  let h = 0x811c9dc5;
  for (const w of words) h = Math.imul(h ^ w, 0x01000193);
  return h >>> 0;
}

/** The file with its hash recomputed (after an edit the test makes on purpose). */
function resealed(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(out.length - 4, wordHash(out, out.length - 4), true);
  return out;
}

/** The file with its JSON section replaced by `json` (the moments kept, the hash recomputed). */
function withJson(bytes: Uint8Array, edit: (json: Record<string, any>) => void): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const length = view.getUint32(8, true);
  const json = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + length)));
  edit(json);
  const text = new TextEncoder().encode(JSON.stringify(json));
  const tail = bytes.subarray(Math.ceil((12 + length) / 4) * 4);
  const at = Math.ceil((12 + text.length) / 4) * 4;
  const out = new Uint8Array(at + tail.length);
  out.set(bytes.subarray(0, 8));
  new DataView(out.buffer).setUint32(8, text.length, true);
  out.set(text, 12);
  out.set(tail, at);
  return resealed(out);
}

test('layout: "RMXS", version, JSON length, JSON, zero padding to 4, count, m, v, hash', () => {
  const s = sampleState();
  const bytes = serializeTrainingState(s);
  const view = new DataView(bytes.buffer);
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), 'RMXS');
  assert.equal(view.getUint32(4, true), FORMAT_VERSION);
  const jsonLength = view.getUint32(8, true);
  const json = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + jsonLength)));
  assert.equal(json.samplerState, '18364758544493064720', 'the u64 as a decimal string');
  assert.deepEqual(json.data, { seed: -17, count: 900, epoch: 3, index: 412 });
  const countAt = Math.ceil((12 + jsonLength) / 4) * 4;
  assert.ok(bytes.subarray(12 + jsonLength, countAt).every((b) => b === 0), 'zero padding');
  assert.equal(view.getUint32(countAt, true), 7);
  assert.deepEqual(bytes.subarray(countAt + 4, countAt + 32), bytesOf(s.m));
  assert.deepEqual(bytes.subarray(countAt + 32, countAt + 60), bytesOf(s.v));
  assert.equal(bytes.length, countAt + 64);
  assert.equal(view.getUint32(countAt + 60, true), wordHash(bytes, countAt + 60), 'FNV-1a over the words before it');
});

test('integrity: any changed byte is refused, naming the file; a version 1 file (no hash) is still read', () => {
  const bytes = serializeTrainingState(sampleState());
  for (const at of [5, 12, bytes.length - 40, bytes.length - 5, bytes.length - 1]) {
    const flipped = bytes.slice();
    flipped[at]! ^= 0x10;
    assert.throws(() => parseTrainingState(flipped, 'run/model.bin.state'), (e: unknown) => e instanceof RemaxInputError &&
      /run\/model\.bin\.state (is corrupt: its integrity hash|has unknown training-state format|has training-state format version)/.test(e.message), `byte ${at}`);
  }
  const v1 = bytes.slice(0, bytes.length - 4);
  new DataView(v1.buffer).setUint32(4, 1, true);
  assert.deepEqual(bytesOf(parseTrainingState(v1, 'old.state').m), bytesOf(sampleState().m));
});

test('round trip: parse gives the state back and re-serializing is byte-exact', () => {
  for (const count of [0, 1, 7, 1000]) {
    const s = sampleState(count);
    const bytes = serializeTrainingState(s);
    const parsed = parseTrainingState(bytes, 'state.bin', { config, parameterCount: count });
    assert.deepEqual({ ...parsed, m: bytesOf(parsed.m), v: bytesOf(parsed.v) }, { ...s, m: bytesOf(s.m), v: bytesOf(s.v) });
    assert.ok(parsed.m instanceof Float32Array && parsed.v instanceof Float32Array);
    assert.deepEqual(serializeTrainingState(parsed), bytes, `count ${count}`);
  }
  // No minLr (the schedule default) stays absent; moments from an unaligned buffer still parse.
  const noMin = sampleState();
  delete noMin.schedule.minLr;
  const bytes = serializeTrainingState(noMin);
  const shifted = new Uint8Array(bytes.length + 1).subarray(1);
  shifted.set(bytes);
  const parsed = parseTrainingState(shifted, 'state.bin');
  assert.ok(!('minLr' in parsed.schedule));
  assert.deepEqual(bytesOf(parsed.v), bytesOf(noMin.v));
});

test('a state saved for another model: the error names the file and the mismatching field', () => {
  const bytes = serializeTrainingState({ ...sampleState(), config: { ...config, dim: 288, hiddenDim: 768, nHeads: 6, nKvHeads: 6 } });
  throwsInput(() => parseTrainingState(bytes, 'state.bin', { config, parameterCount: 7 }),
    /^state\.bin was saved for dim=288 but the model has dim=64: resume with the model it was saved with$/);
  const unshared = serializeTrainingState({ ...sampleState(), config: { ...config, sharedClassifier: false } });
  throwsInput(() => parseTrainingState(unshared, 'run/state.bin', { config, parameterCount: 7 }),
    /^run\/state\.bin was saved for shared_classifier=false but the model has shared_classifier=true/);
  throwsInput(() => parseTrainingState(serializeTrainingState(sampleState()), 'state.bin', { config, parameterCount: 8 }),
    /^state\.bin holds optimizer moments for 7 parameters but the model has 8: resume with the model it was saved with$/);
});

test('not a state file, another version, truncation and trailing bytes are errors naming the file', () => {
  const bytes = serializeTrainingState(sampleState());
  throwsInput(() => parseTrainingState(new Uint8Array(0), 'state.bin'), /^state\.bin is not a remax training state \(it does not start with "RMXS"\)/);
  throwsInput(() => parseTrainingState(new TextEncoder().encode('ak42 a model'), 'model.bin'), /^model\.bin is not a remax training state/);
  throwsInput(() => parseTrainingState(bytes.slice(0, 10), 'state.bin'), /^state\.bin is truncated \(10 bytes, shorter than its 12-byte header\)/);
  const newer = bytes.slice();
  new DataView(newer.buffer).setUint32(4, FORMAT_VERSION + 1, true);
  throwsInput(() => parseTrainingState(newer, 'state.bin'), /^state\.bin has training-state format version 3, newer than this remax reads \(2\); upgrade remax/);
  const zero = bytes.slice();
  new DataView(zero.buffer).setUint32(4, 0, true);
  throwsInput(() => parseTrainingState(zero, 'state.bin'), /^state\.bin has unknown training-state format version 0/);
  throwsInput(() => parseTrainingState(bytes.slice(0, 40), 'state.bin'), /^state\.bin is truncated \(40 bytes, its \d+-byte JSON section and parameter count need \d+\)/);
  throwsInput(() => parseTrainingState(bytes.slice(0, bytes.length - 1), 'state.bin'),
    new RegExp(`^state\\.bin is truncated \\(${bytes.length - 1} bytes, the moments of 7 parameters need ${bytes.length}\\); the save was interrupted`));
  const longer = new Uint8Array(bytes.length + 3);
  longer.set(bytes);
  throwsInput(() => parseTrainingState(longer, 'state.bin'), /^state\.bin has 3 bytes more than a state of 7 parameters; it is corrupt/);
});

test('a corrupt JSON section: the error names the file and the field', () => {
  const bytes = serializeTrainingState(sampleState());
  const broken = bytes.slice();
  broken[13] = 0x7d; // the first key's opening quote becomes '}': invalid JSON
  throwsInput(() => parseTrainingState(broken, 'state.bin'), /^state\.bin is corrupt: its integrity hash/);
  throwsInput(() => parseTrainingState(resealed(broken), 'state.bin'), /^state\.bin: the JSON section is not valid UTF-8 JSON/);
  const cases: [(j: Record<string, any>) => void, RegExp][] = [
    [(j) => { j.step = -1; }, /^state\.bin: step is -1; expected a non-negative integer/],
    [(j) => { delete j.optimizer.beta2; }, /^state\.bin: optimizer\.beta2 is missing; expected a number in \[0, 1\)/],
    [(j) => { j.optimizer.eps = 0; }, /^state\.bin: optimizer\.eps is 0; expected a positive number/],
    [(j) => { j.schedule.kind = 'exp'; }, /^state\.bin: schedule\.kind is "exp"; expected constant or linear or cosine/],
    [(j) => { j.schedule.warmupSteps = 6000; }, /^state\.bin: the saved schedule is invalid \(--warmup-steps 6000 is more than --steps 5000/],
    [(j) => { j.samplerState = 5; }, /^state\.bin: samplerState is 5; expected a u64 as a decimal string/],
    [(j) => { j.samplerState = '18446744073709551616'; }, /samplerState is "18446744073709551616"; expected a u64/],
    [(j) => { j.data.index = 900; }, /^state\.bin: data\.index is 900; expected an integer from 0 to data\.count − 1 = 899/],
    [(j) => { j.data.seed = 0.5; }, /^state\.bin: data\.seed is 0\.5; expected an integer/],
    [(j) => { j.config.dim = 0; }, /^state\.bin: dim is 0; it must be an integer/],
    [(j) => { j.config.sharedClassifier = 1; }, /^state\.bin: config\.sharedClassifier is 1; expected true or false/],
    [(j) => { j.extra = [1]; }, /^state\.bin: extra is \[1\]; expected an object/],
    [(j) => { delete j.extra; }, /^state\.bin: extra is missing/],
  ];
  for (const [edit, message] of cases) {
    const edited = withJson(bytes, edit);
    throwsInput(() => parseTrainingState(edited, 'state.bin'), message);
  }
  // The helper itself keeps an unedited file valid.
  assert.deepEqual(withJson(bytes, () => {}), bytes);
});

test('serialize refuses a state it could not read back (a caller bug, plain Error)', () => {
  const isBug = (e: unknown): boolean => e instanceof Error && !(e instanceof RemaxInputError);
  assert.throws(() => serializeTrainingState({ ...sampleState(), v: new Float32Array(3) }), isBug);
  assert.throws(() => serializeTrainingState({ ...sampleState(), step: NaN }), (e: unknown) => isBug(e) && /step is null/.test((e as Error).message));
  assert.throws(() => serializeTrainingState({ ...sampleState(), extra: { big: 1n } }), isBug);
});
