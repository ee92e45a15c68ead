// A user's reward function from a file (`--reward ./reward.ts`): its default export, (samples) => number[].
// .js/.mjs files are imported as they are. .ts/.mts files are bundled with esbuild (with their local imports and
// packages, so the bundle runs from anywhere) into a temp .mjs file that is imported and then removed; esbuild is
// loaded only then, so JavaScript reward files work without it.
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RemaxInputError } from '../core/errors';
import type { RewardFunction } from '../core/rewards';

const DIRECT = ['.js', '.mjs'];
const BUNDLED = ['.ts', '.mts'];

export async function loadRewardModule(path: string): Promise<RewardFunction> {
  if (!existsSync(path)) throw new RemaxInputError(`--reward ${path}: no such file`);
  if (statSync(path).isDirectory()) throw new RemaxInputError(`--reward ${path} is a directory; give the path of a .js, .mjs, .ts or .mts file`);
  const extension = extname(path).toLowerCase();
  let module: Record<string, unknown>;
  if (DIRECT.includes(extension)) module = await importFile(path, path);
  else if (BUNDLED.includes(extension)) module = await importTypeScript(path);
  else throw new RemaxInputError(`--reward ${path}: unknown kind of file "${extension || '(no extension)'}"; give a .js, .mjs, .ts or .mts module, or a built-in reward name`);

  const reward = module.default;
  if (typeof reward !== 'function') {
    const names = Object.keys(module).filter((k) => k !== 'default');
    throw new RemaxInputError(`--reward ${path} must have a default export (samples) => number[]; it exports: ${names.length ? names.join(', ') : 'nothing'}`);
  }
  return reward as RewardFunction;
}

async function importTypeScript(path: string): Promise<Record<string, unknown>> {
  const code = await bundle(path);
  const dir = mkdtempSync(join(tmpdir(), 'remax-reward-'));
  try {
    const file = join(dir, 'reward.mjs');
    writeFileSync(file, code);
    return await importFile(file, path);
  } finally {
    rmSync(dir, { recursive: true, force: true }); // the imported module stays in memory
  }
}

type Esbuild = typeof import('esbuild');

/** The file bundled to one ES module; a syntax or resolution error is a RemaxInputError with file:line:column. */
async function bundle(path: string): Promise<string> {
  const esbuild = await loadEsbuild();
  if (esbuild === undefined) {
    throw new RemaxInputError(`--reward ${path}: loading a TypeScript reward needs the esbuild package (npm install esbuild), or compile it to .js/.mjs`);
  }
  try {
    const result = await esbuild.build({
      entryPoints: [path], bundle: true, format: 'esm', platform: 'node', write: false, target: 'es2022', logLevel: 'silent',
    });
    return result.outputFiles[0]!.text;
  } catch (error) {
    const messages = (error as { errors?: import('esbuild').Message[] }).errors;
    if (!messages?.length) throw error;
    const lines = messages.map((m) => (m.location ? `${m.location.file}:${m.location.line}:${m.location.column + 1}: ${m.text}` : m.text));
    throw new RemaxInputError(`--reward ${path} does not compile: ${lines.join('; ')}`);
  }
}

/** esbuild from remax's own dependencies, else from the current folder's project (a global remax, a local esbuild). */
async function loadEsbuild(): Promise<Esbuild | undefined> {
  try {
    return await import('esbuild');
  } catch {
    try {
      const resolved = createRequire(join(process.cwd(), 'package.json')).resolve('esbuild');
      const module = (await import(pathToFileURL(resolved).href)) as Esbuild & { default?: Esbuild };
      return typeof module.build === 'function' ? module : module.default;
    } catch {
      return undefined;
    }
  }
}

/** import() of a file; an error while the module runs names the --reward path the user gave. */
async function importFile(file: string, given: string): Promise<Record<string, unknown>> {
  try {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new RemaxInputError(`--reward ${given} failed to load: ${message}`);
  }
}
