// File access for the Node adapter (also works under Deno and Bun's Node compatibility): reading inputs with
// errors that name the flag and the path, and atomic writes (temp file, then rename) so a crash or a full disk
// never leaves a half-written file where a good one was.
import { accessSync, appendFileSync, constants, mkdirSync, readFileSync, writeFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { RemaxInputError } from '../core/errors';

export function readInputFile(path: string, flag: string): Uint8Array {
  try {
    const stat = statSync(path);
    if (stat.isDirectory()) throw new RemaxInputError(`${flag} ${path} is a directory; give the path of a file`);
    // A plain Uint8Array over the Buffer's memory: no copy (a model file can be gigabytes), and unlike a Buffer its
    // slice() copies, as the parsers expect.
    const data = readFileSync(path);
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (error) {
    if (error instanceof RemaxInputError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String((error as Error).message);
    throw new RemaxInputError(`cannot read ${flag} ${path}: ${why}`);
  }
}

export function writeFileAtomic(path: string, bytes: Uint8Array | string, flag = '--out'): void {
  writeFilesAtomic([{ path, bytes }], flag);
}

/**
 * Writes files that belong together (a model and its training state) so that a failure replaces none of them: every
 * temp file is written first, and only then is each renamed over its target. A full disk fails while the temps are
 * written, so the previous files stay as they were, still a pair.
 */
export function writeFilesAtomic(files: { path: string; bytes: Uint8Array | string }[], flag = '--out'): void {
  const temps = files.map(({ path }) => join(dirname(path), `.${basename(path)}.${process.pid}.tmp`));
  let at = 0;
  try {
    for (; at < files.length; at++) writeFileSync(temps[at]!, files[at]!.bytes);
  } catch (error) {
    for (const temp of temps) rmSync(temp, { force: true });
    const what = files.length > 1 ? `; none of ${files.map((f) => f.path).join(', ')} was replaced` : '; nothing was written';
    throw new RemaxInputError(`cannot write ${flag} ${files[at]!.path}: ${writeFailure(error)}${what}`);
  }
  for (at = 0; at < files.length; at++) {
    try {
      renameSync(temps[at]!, files[at]!.path);
    } catch (error) {
      for (const temp of temps.slice(at)) rmSync(temp, { force: true });
      throw new RemaxInputError(`cannot write ${flag} ${files[at]!.path}: ${writeFailure(error)}`);
    }
  }
}

/** Creates a run folder (and its parents) if it is missing, with an error that names the flag, the path and the cause. */
export function makeFolder(path: string, flag: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'a file is in the way (the run needs a folder there)' : writeFailure(error);
    throw new RemaxInputError(`cannot create the ${flag} folder ${path}: ${why}`);
  }
}

/**
 * Checks, before a long run, that the folder of an output file exists and is writable, so that the run does not
 * train for hours and then fail to save.
 */
export function checkOutputFolder(path: string, flag: string): void {
  const folder = dirname(path);
  try {
    if (!statSync(folder).isDirectory()) throw new RemaxInputError(`cannot write ${flag} ${path}: ${folder} is not a folder`);
    accessSync(folder, constants.W_OK);
  } catch (error) {
    if (error instanceof RemaxInputError) throw error;
    throw new RemaxInputError(`cannot write ${flag} ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? `its folder ${folder} does not exist` : writeFailure(error)}`);
  }
}

/** Appends text to a log file (metrics, samples), with an error that names the file and the cause. */
export function appendToFile(path: string, text: string): void {
  try {
    appendFileSync(path, text);
  } catch (error) {
    throw new RemaxInputError(`cannot append to ${path}: ${writeFailure(error)}`);
  }
}

function writeFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' ? 'the disk is full' : code === 'ENOENT' ? 'its folder does not exist'
    : code === 'EACCES' ? 'permission denied' : String((error as Error).message);
}
