// A training run's folder (remax train --out DIR / --resume DIR): what it holds, and the rules that keep it whole.
//   config.json    the options (so --resume needs no flags; flags given at --resume are merged into it)
//   inputs.json    the absolute path and a content hash of every input the run reads again on --resume
//   reference.*    the frozen reference policy, written once, before config.json
//   model.*        the policy's last checkpoint (model.bin, model.gguf or the Hugging Face folder model/) and its .state
//   adapter/       instead, a LoRA run's: its PEFT adapter folder, and adapter.state
//   metrics.jsonl, samples.jsonl, reward-errors.jsonl
//   .lock          the process that has the folder (a second one is refused; a dead one's lock is taken over)
// config.json is written after the reference, so a folder with a config.json always holds what a resume needs; a
// resume that finds no checkpoint yet starts the run again from step 0.
import { closeSync, existsSync, openSync, readFileSync, readdirSync, realpathSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { RemaxInputError } from '../core/errors';
import { isAlive } from './commit';
import { fnv1a, hex8 } from '../core/hash';
import { makeFolder, readInputFile, writeFileAtomic } from './files';

/** Files of a run folder that --overwrite removes (everything a run writes). */
const RUN_FILES = /^(config\.json|inputs\.json|metrics\.jsonl|samples\.jsonl|reward-errors\.jsonl|(model|reference|adapter)(\.bin|\.gguf)?(\.state|\.score)?|\.(model|reference|adapter).*\.commit)$/;

/** Paths that are not ordinary folders: Node's own mkdir can hang on them (/proc). */
const SPECIAL = ['/proc', '/sys', '/dev'];

/** Refuses a path on a kernel file system (where writing a run makes no sense and mkdir may hang). */
export function refuseSpecialPath(target: string, flag: string): void {
  let real = path.resolve(target);
  // The nearest existing ancestor, with its links resolved.
  for (let p = real; ; p = path.dirname(p)) {
    if (existsSync(p)) {
      real = path.join(realpathSync(p), path.relative(p, real));
      break;
    }
    if (path.dirname(p) === p) break;
  }
  const special = SPECIAL.find((s) => real === s || real.startsWith(s + path.sep));
  if (special) throw new RemaxInputError(`${flag} ${target} is on ${special}, a kernel file system, not a place to write files: choose another folder`);
}

export class RunFolder {
  private releaseLock: (() => void) | undefined;

  private constructor(readonly dir: string, readonly flag: string) {}

  /**
   * The folder of a new run (`--out`): refused when it already holds a run, unless `overwrite` (which removes that
   * run's files first); or of a run to resume (`--resume`), which must hold one. Either way the folder is locked.
   */
  static open(dir: string, mode: 'new' | 'resume' | 'overwrite'): RunFolder {
    RunFolder.check(dir, mode);
    const run = new RunFolder(dir, mode === 'resume' ? '--resume' : '--out');
    makeFolder(dir, run.flag);
    run.lock();
    if (mode === 'overwrite') {
      for (const name of readdirSync(dir)) if (RUN_FILES.test(name)) rmSync(path.join(dir, name), { recursive: true, force: true });
    }
    return run;
  }

  /** The checks of open() without touching the folder: it can be used for `mode`. */
  static check(dir: string, mode: 'new' | 'resume' | 'overwrite'): void {
    const flag = mode === 'resume' ? '--resume' : '--out';
    refuseSpecialPath(dir, flag);
    const config = path.join(dir, 'config.json');
    if (mode === 'resume' && !existsSync(config)) {
      throw new RemaxInputError(`--resume ${dir}: no config.json in it, so it holds no run to resume` +
        `${existsSync(dir) ? '' : ' (the folder does not exist)'}; start one with --out ${dir}`);
    }
    if (mode === 'new' && existsSync(config)) {
      throw new RemaxInputError(`--out ${dir} already holds a run (its config.json); continue it with --resume ${dir}, ` +
        'or replace it with --overwrite, or choose another folder');
    }
  }

  get configPath(): string {
    return path.join(this.dir, 'config.json');
  }

  file(name: 'metrics.jsonl' | 'samples.jsonl' | 'reward-errors.jsonl' | 'inputs.json'): string {
    return path.join(this.dir, name);
  }

  /** The saved options. */
  readConfig(): Record<string, unknown> {
    return readJsonObject(this.configPath, this.flag);
  }

  writeConfig(values: Record<string, unknown>): void {
    writeFileAtomic(this.configPath, JSON.stringify(values, null, 2) + '\n', this.flag);
  }

  /**
   * Records the inputs' absolute paths and content hashes (start), or checks them against the record (resume): an
   * input that moved or changed is refused unless `acceptChanged`, since the run would silently train on other data.
   */
  checkInputs(inputs: Record<string, string | undefined>, resuming: boolean, acceptChanged: boolean): void {
    const current = Object.fromEntries(Object.entries(inputs).filter((e): e is [string, string] => e[1] !== undefined)
      .map(([flag, file]) => [flag, { path: path.resolve(file), hash: fileHash(file, `--${flag}`) }]));
    const recordPath = this.file('inputs.json');
    if (resuming && existsSync(recordPath)) {
      const recorded = readJsonObject(recordPath, '--resume') as Record<string, { path: string; hash: string }>;
      for (const [flag, now] of Object.entries(current)) {
        const then = recorded[flag];
        if (!then || then.hash === now.hash || acceptChanged) continue;
        throw new RemaxInputError(`--resume: --${flag} ${now.path} is not the file the run started with ` +
          `(${then.path === now.path ? 'its content changed' : `that was ${then.path}`}; hash ${now.hash}, recorded ${then.hash}): ` +
          'give the original file, or --accept-changed-inputs to go on with this one');
      }
    }
    writeFileAtomic(recordPath, JSON.stringify(current, null, 2) + '\n', this.flag);
  }

  private lock(): void {
    this.releaseLock = acquireLock(path.join(this.dir, '.lock'), `${this.flag} ${this.dir}`);
  }

  /** Gives the lock back (also done when the process exits). */
  release(): void {
    this.releaseLock?.();
    this.releaseLock = undefined;
  }
}

/**
 * Takes the lock file `lockPath` for `what` (a run folder, an sft checkpoint), or says which live process has it; a
 * lock whose process is gone is taken over. Returns the function that gives it back (also called when the process exits).
 */
export function acquireLock(lockPath: string, what: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      const release = () => {
        process.removeListener('exit', release);
        if (Number.parseInt(readFileSafe(lockPath), 10) === process.pid) rmSync(lockPath, { force: true });
      };
      process.once('exit', release);
      return release;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new RemaxInputError(`cannot lock ${what}: ${(error as Error).message}`);
    }
    const owner = Number.parseInt(readFileSafe(lockPath), 10);
    if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
      throw new RemaxInputError(`${what} is in use by process ${owner} (its lock ${lockPath}); wait for it to finish, ` +
        'or stop it: two processes on one run would mix their steps');
    }
    rmSync(lockPath, { force: true }); // stale: its process is gone
  }
  throw new RemaxInputError(`cannot lock ${what}: another process keeps taking ${lockPath}`);
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** A JSON object file, with errors that name the flag and the file. */
export function readJsonObject(file: string, flag: string): Record<string, unknown> {
  const text = new TextDecoder().decode(readInputFile(file, flag));
  try {
    const value = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch (error) {
    throw new RemaxInputError(`${flag} ${file} is not a JSON object of options: ${(error as Error).message}`);
  }
}

/** FNV-1a of a file's bytes, as hex. */
const fileHash = (file: string, flag: string): string => hex8(fnv1a(readInputFile(file, flag)));

/**
 * Drops the lines of a JSONL file written after `step` (a resumed run rewrites them), and a last line cut short
 * (a run killed or out of disk while writing it). Any other line that is not JSON is an error naming it.
 */
export function keepLinesUpTo(file: string, step: number): void {
  if (!existsSync(file)) return;
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const torn = !text.endsWith('\n') ? lines.length - 1 : -1;
  const kept = lines.filter((line, i) => {
    if (line.trim() === '') return false;
    try {
      return (JSON.parse(line) as { step: number }).step <= step;
    } catch {
      if (i === torn) return false;
      throw new RemaxInputError(`--resume: line ${i + 1} of ${file} is not JSON; remove it or the lines after step ${step}`);
    }
  });
  writeFileAtomic(file, kept.length ? kept.join('\n') + '\n' : '');
}
