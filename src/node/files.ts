// File access for the Node adapter (also works under Deno and Bun's Node compatibility): reading inputs with
// errors that name the flag and the path, and atomic writes (temp file, then rename) so a crash or a full disk
// never leaves a half-written file where a good one was.
import { accessSync, appendFileSync, constants, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { RemaxInputError } from '../core/errors';
import { commitFiles, completePendingCommit, writeDurably } from './commit';

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

/** Replaces one file atomically: temp, flush, rename. */
export function writeFileAtomic(path: string, bytes: Uint8Array | string, flag = '--out'): void {
  writeFilesAtomic([{ path, bytes }], flag);
}

/**
 * Writes files that belong together (a model and its training state) as one atomic step (commit.ts): a crash or a
 * failure at any moment leaves either all of the previous files or all of the new ones, never a mix; readers call
 * completePendingCommit(journal) first. `journal` names the set (default: a hidden file beside the first file).
 * One file alone is written to a temp, flushed and renamed into place: already atomic, no journal.
 */
export function writeFilesAtomic(files: { path: string; bytes: Uint8Array | string }[], flag = '--out', journal?: string): void {
  if (files.length === 1 && journal === undefined) {
    const { path, bytes } = files[0]!;
    const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
    try {
      writeDurably(temp, bytes);
      renameSync(temp, path);
    } catch (error) {
      rmSync(temp, { force: true });
      throw new RemaxInputError(`cannot write ${flag} ${path}: ${writeFailure(error)}; nothing was written`);
    }
    return;
  }
  commitFiles(files, journal ?? commitJournal(files[0]!.path), flag, writeFailure);
}

/** The journal of a set of files whose first is `path` (writeFilesAtomic's default). */
export const commitJournal = (path: string): string => join(dirname(path), `.${basename(path).replace(/[/\\]+$/, '')}.commit`);

/** Finishes an interrupted writeFilesAtomic of the set `journal` names (before reading those files). */
export function completeWrite(journal: string, flag: string): void {
  completePendingCommit(journal, flag, writeFailure);
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
    : code === 'EISDIR' ? 'it is a folder (give the path of a file)'
    : code === 'EACCES' ? 'permission denied' : String((error as Error).message);
}
