// tests/runtimes/check.mjs on the command lines of Node, Deno (npm `deno`) and Bun (npm `bun`): the runtime tests
// run its checks, the runtimes bench its --speed mode. Each run prints one JSON line after a known prefix.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

export const CHECK_SCRIPT = 'tests/runtimes/check.mjs';
const bin = (name: string) => path.resolve('node_modules', '.bin', name);

export interface ScriptRuntime {
  name: 'node' | 'deno' | 'bun';
  command: string;
  args: string[];
}

export const SCRIPT_RUNTIMES: ScriptRuntime[] = [
  { name: 'node', command: process.execPath, args: [CHECK_SCRIPT] },
  { name: 'deno', command: bin('deno'), args: ['run', '--allow-read', CHECK_SCRIPT] },
  { name: 'bun', command: bin('bun'), args: [CHECK_SCRIPT] },
];

/** Why a runtime binary cannot run (missing, or the npm package's placeholder when its postinstall did not run). */
export function binaryUnavailable(name: string, command: string): string | undefined {
  if (!existsSync(command)) return `${name} binary not found at ${command} (install the npm package "${name}")`;
  try {
    execFileSync(command, ['--version'], { stdio: 'pipe', timeout: 30_000 });
    return undefined;
  } catch (error) {
    return `${command} --version failed (${(error as Error).message.split('\n')[0]}); ` +
      `the npm package "${name}" installs its binary in a postinstall script: reinstall without --ignore-scripts`;
  }
}

/** Why this runtime cannot run the script, or undefined (Node always can: it runs this process). */
export const scriptRuntimeUnavailable = (r: ScriptRuntime): string | undefined =>
  r.name === 'node' ? undefined : binaryUnavailable(r.name, r.command);

export interface ScriptRun {
  /** The JSON after the prefix, when the script printed it. */
  value?: unknown;
  /** What went wrong: a non-zero exit or no such line. */
  problem?: string;
  output: string;
}

/** Runs the script in one runtime with `extraArgs` and parses the line that starts with `prefix` (e.g. "RESULT "). */
export function runCheckScript(runtime: ScriptRuntime, prefix: string, extraArgs: string[] = [], timeoutMs = 120_000): Promise<ScriptRun> {
  return new Promise((resolve) => {
    execFile(runtime.command, [...runtime.args, ...extraArgs], {
      cwd: process.cwd(),
      timeout: timeoutMs,
      maxBuffer: 16 << 20,
      env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1', NO_COLOR: '1', DO_NOT_TRACK: '1' },
    }, (error, stdout, stderr) => {
      const line = stdout.split('\n').find((l) => l.startsWith(prefix));
      resolve({
        value: line ? JSON.parse(line.slice(prefix.length)) : undefined,
        problem: error ? `exited with ${error.code}` : line ? undefined : `printed no ${prefix.trim()} line`,
        output: `stdout:\n${stdout}\nstderr:\n${stderr}`,
      });
    });
  });
}
