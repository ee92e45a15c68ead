// Share of time per WASM function (kernel) during training steps, from V8's sampling profiler on the build with
// a name section (build/remax.simd.profile.wasm), so the next optimisation goes where the time is.
import { Session } from 'node:inspector/promises';
import { existsSync, readFileSync } from 'node:fs';
import type { ModelConfig } from '../../src/core/config';
import { trainingBatch, trainingEngine, trainingStep } from './training';

const PROFILE_WASM = 'build/remax.simd.profile.wasm';

export async function profileTraining(label: string, config: ModelConfig, steps: number): Promise<string[]> {
  if (!existsSync(PROFILE_WASM)) return [`(no ${PROFILE_WASM}: run npm run build:wasm)`];
  const engine = await trainingEngine(config, 'simd', { simd: new Uint8Array(readFileSync(PROFILE_WASM)) });
  const batch = trainingBatch(config.vocabSize);
  trainingStep(engine, batch);
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  for (let i = 0; i < steps; i++) trainingStep(engine, batch);
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  const byName = new Map<string, number>();
  const nodes = new Map(profile.nodes.map((n) => [n.id, n.callFrame.functionName || '(anonymous)']));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  // Samples taken inside the inspector session's own post (its message dispatch) are the profiler, not the steps.
  const inProfiler = (id: number): boolean => {
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) if (nodes.get(at) === 'post') return true;
    return false;
  };
  profile.samples!.forEach((id, i) => {
    if (inProfiler(id)) return;
    const name = nodes.get(id)!.replace(/^assembly\//, '');
    byName.set(name, (byName.get(name) ?? 0) + profile.timeDeltas![i]!);
  });
  const total = [...byName.values()].reduce((a, b) => a + b, 0);
  return [`${label}: share of time per function over ${steps} training steps (simd build)`,
    ...[...byName.entries()].sort((a, b) => b[1] - a[1]).slice(0, 14)
      .map(([name, t]) => `  ${((100 * t) / total).toFixed(1).padStart(5)} %  ${name}`)];
}
