// The engine against the independent references in ../shared/reference: greedy ids exactly, log-probs within 2e-4,
// for both models and both kernel builds (the relaxed-SIMD build fuses multiply-adds, results must still hold).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import { RemaxEngine } from '../../src/core/engine';
import { wasmBuilds } from '../../src/wasm-builds';
import { supportsRelaxedSimd, type BuildName } from '../../src/core/kernels';
import { MODEL_NAMES, readShared, readSharedJson, skipUnlessShared } from './shared-data';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const BUILDS: BuildName[] = supportsRelaxedSimd(wasmBuilds) ? ['simd', 'relaxed-simd'] : ['simd'];
if (BUILDS.length === 1) console.log('relaxed-SIMD build not accepted by this engine: testing the simd build only');

interface GreedyCase { prompt_ids: number[]; expected_ids: number[] }
interface LogprobSequence { name: string; ids: number[]; logprobs: number[] }

const skip = skipUnlessShared('reference/greedy.json', 'reference/logprobs.json', ...MODEL_NAMES.map((m) => `models/${m}`));

for (const build of BUILDS) {
  for (const name of MODEL_NAMES) {
    const engine = () => RemaxEngine.create({ model: readShared(`models/${name}`), modelSource: name, build });
    const cases = () => readSharedJson('reference/greedy.json').models[name].cases as GreedyCase[];

    test(`${name} (${build}): greedy decoding of all cases in one batch reproduces the reference ids`, { skip }, async () => {
      const e = await engine();
      assert.equal(e.build, build);
      const results = e.generate(cases().map((c) => ({ promptIds: c.prompt_ids })), { temperature: 0, maxNewTokens: 64, eosId: null });
      cases().forEach((c, i) => assert.deepEqual(results[i]!.ids, c.expected_ids, `case ${i}`));
    });

    test(`${name} (${build}): greedy decoding one case at a time reproduces the reference ids`, { skip }, async () => {
      const e = await engine();
      for (const [i, c] of cases().entries()) {
        const [r] = e.generate([{ promptIds: c.prompt_ids }], { temperature: 0, maxNewTokens: 64, eosId: null });
        assert.deepEqual(r!.ids, c.expected_ids, `case ${i}`);
        assert.equal(r!.finishReason, 'length');
      }
    });

    test(`${name} (${build}): log-probabilities within 2e-4 of the float64 reference, batched and chunked`, { skip }, async () => {
      const sequences = readSharedJson('reference/logprobs.json').models[name].sequences as LogprobSequence[];
      // maxTokens 37 forces the prefill into several chunks that split sequences.
      for (const maxTokens of [256, 37]) {
        const e = await RemaxEngine.create({ model: readShared(`models/${name}`), build, maxTokens });
        const got = e.logprobs(sequences.map((s) => s.ids));
        sequences.forEach((s, i) => {
          assert.equal(got[i]!.length, s.logprobs.length);
          s.logprobs.forEach((expected, t) => {
            const diff = Math.abs(got[i]![t]! - expected);
            assert.ok(diff <= 2e-4, `${s.name} token ${t + 1}: ${got[i]![t]} vs ${expected} (|diff| ${diff.toExponential(2)})`);
          });
        });
      }
    });
  }
}
