// The same decoding and training work (tests/runtimes/speed.mjs) timed in each JavaScript runtime: Node, Deno, Bun
// and Chromium (page and Web Worker). workerd is left out: a Worker's clock only advances on I/O (a Spectre
// mitigation), so it cannot time WASM compute.
import { runChromiumCheck } from '../../tests/node/runtime-chromium';
import { chromiumUnavailable } from '../../tests/node/chromium';
import { runCheckScript, scriptRuntimeUnavailable, SCRIPT_RUNTIMES } from '../../tests/node/runtime-scripts';

interface SpeedResult { runtime: string; version: string; build: string; model: string; decodeTokensPerSecond: number; trainTokensPerSecond: number }

/** One runtime after the other (they would compete for the cores). */
export async function benchRuntimes(): Promise<string[]> {
  const results: SpeedResult[] = [];
  const lines: string[] = [];
  const runners: [string, () => Promise<SpeedResult[]>][] = [
    ...SCRIPT_RUNTIMES.map((r): [string, () => Promise<SpeedResult[]>] => [r.name, async () => {
      const reason = scriptRuntimeUnavailable(r);
      if (reason) throw new Error(reason);
      const run = await runCheckScript(r, 'SPEED ', ['--speed'], 300_000);
      if (run.problem) throw new Error(`${run.problem}\n${run.output}`);
      return run.value as SpeedResult[];
    }]),
    ['chromium', async () => {
      const reason = chromiumUnavailable();
      if (reason) throw new Error(reason);
      const run = await runChromiumCheck(300_000, '?speed');
      if (!run.results) throw new Error(run.error ?? 'no results');
      return (run.results as SpeedResult[][]).flat();
    }],
  ];
  for (const [name, run] of runners) {
    try {
      results.push(...(await run()));
    } catch (error) {
      lines.push(`${name}: skipped (${(error as Error).message.split('\n')[0]})`);
    }
  }
  return [
    'Runtimes: the same work in each (tests/runtimes/speed.mjs; medians of 5): sampled decode 16 × 128 tokens, train step 8 × 128 tokens',
    '  runtime            version          build          decode tok/s   train tok/s   model',
    ...results.map((r) => `  ${r.runtime.padEnd(18)} ${r.version.padEnd(16)} ${r.build.padEnd(14)} ${String(r.decodeTokensPerSecond).padStart(12)} ${String(r.trainTokensPerSecond).padStart(13)}   ${r.model}`),
    ...lines,
  ];
}
