// Shared pieces of the benchmarks: median timing with tinybench, the result table, the model configs.
import { Bench } from 'tinybench';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, type ModelConfig } from '../../src/core/config';

export const quick = process.argv.includes('--quick');

export const CONFIG_15M: ModelConfig = {
  dim: 288, hiddenDim: 768, nLayers: 6, nHeads: 6, nKvHeads: 6, vocabSize: 32000, seqLen: 256,
  sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA,
};

export const CONFIG_260K: ModelConfig = {
  dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512,
  sharedClassifier: true, normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA,
};

/**
 * This machine's 128-bit FMA peak on one core, measured with a native loop of 12 independent FMA chains
 * (bench/native/fma-peak.c: `gcc -O3 -mfma -funroll-loops`; 57.7, 59.4, 59.8 GFLOP/s on the AMD EPYC of
 * docs/BENCHMARKS.md, 2026-12-02; 55.7 on the Xeon before it).
 */
export const FMA_PEAK_GFLOPS = 59.4;

export interface Row { build: string; benchmark: string; median: string; throughput: string; memory: string }
export const rows: Row[] = [];
export const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** Runs fn repeatedly (tinybench, which awaits a returned promise) and returns the median milliseconds per call. */
export async function medianMs(name: string, fn: () => unknown, minIterations: number): Promise<number> {
  const bench = new Bench({ iterations: quick ? 2 : minIterations, time: quick ? 50 : 1500, warmupIterations: 1, warmupTime: 0 });
  bench.add(name, fn);
  await bench.run();
  const result = bench.tasks[0]!.result as { latency?: { p50: number }; error?: Error };
  if (!result.latency) throw result.error ?? new Error(`${name}: no result`);
  return result.latency.p50;
}

/** The median of a list. */
export function median(xs: number[]): number {
  return [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
}

/** Anything whose step the benchmarks time: a ReMax or an SFT trainer. */
export interface Stepper<T> {
  runStep(): Promise<T>;
}

/**
 * Each trainer's steps over `rounds` rounds, the trainers stepping in turn, so that all see the same stretch of this
 * shared machine's load and their ratios are not skewed by it: per step, the milliseconds around runStep and its result.
 */
export async function stepsInTurn<T>(trainers: Stepper<T>[], rounds: number): Promise<{ ms: number; result: T }[][]> {
  const steps = trainers.map(() => [] as { ms: number; result: T }[]);
  for (let r = 0; r < rounds; r++) {
    for (const [i, trainer] of trainers.entries()) {
      const started = performance.now();
      const result = await trainer.runStep();
      steps[i]!.push({ ms: performance.now() - started, result });
    }
  }
  return steps;
}

/** The median milliseconds of each trainer's step (stepsInTurn). */
export async function medianStepsInTurn(trainers: Stepper<unknown>[], rounds: number): Promise<number[]> {
  return (await stepsInTurn(trainers, rounds)).map((steps) => median(steps.map((s) => s.ms)));
}
