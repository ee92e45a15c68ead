// The same decoding and training work (tests/runtimes/speed.mjs) timed in each JavaScript runtime: Node, Deno, Bun
// and Chromium (page and Web Worker). workerd is left out: a Worker's clock only advances on I/O (a Spectre
// mitigation), so it cannot time WASM compute.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runChromiumCheck } from '../../tests/node/runtime-chromium';
import { chromiumUnavailable } from '../../tests/node/chromium';

interface SpeedResult { runtime: string; version: string; build: string; model: string; decodeTokensPerSecond: number; trainTokensPerSecond: number }

const SCRIPT = 'tests/runtimes/check.mjs';
const bin = (name: string) => path.resolve('node_modules', '.bin', name);

function runScript(command: string, args: string[]): Promise<SpeedResult[]> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 300_000, maxBuffer: 16 << 20, env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' } }, (error, stdout, stderr) => {
      const line = stdout.split('\n').find((l) => l.startsWith('SPEED '));
      if (error || !line) reject(new Error(`${command} ${args.join(' ')}: ${error?.message ?? 'no SPEED line'}\n${stderr}`));
      else resolve(JSON.parse(line.slice('SPEED '.length)) as SpeedResult[]);
    });
  });
}

/** One runtime after the other (they would compete for the cores). */
export async function benchRuntimes(): Promise<string[]> {
  const results: SpeedResult[] = [];
  const lines: string[] = [];
  const runners: [string, () => Promise<SpeedResult[]>][] = [
    ['node', () => runScript(process.execPath, [SCRIPT, '--speed'])],
    ['deno', () => runScript(bin('deno'), ['run', '--allow-read', SCRIPT, '--speed'])],
    ['bun', () => runScript(bin('bun'), [SCRIPT, '--speed'])],
    ['chromium', async () => {
      const reason = chromiumUnavailable();
      if (reason) throw new Error(reason);
      const run = await runChromiumCheck(300_000, '?speed');
      if (!run.results) throw new Error(run.error ?? 'no results');
      return (run.results as SpeedResult[][]).flat();
    }],
  ];
  for (const [name, run] of runners) {
    if (name !== 'node' && name !== 'chromium' && !existsSync(bin(name))) {
      lines.push(`${name}: skipped (no ${bin(name)})`);
      continue;
    }
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
