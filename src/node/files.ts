// File access for the Node adapter (also works under Deno and Bun's Node compatibility): reading inputs with
// errors that name the flag and the path, and atomic writes (temp file, then rename) so a crash or a full disk
// never leaves a half-written file where a good one was.
import { readFileSync, writeFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { RemaxInputError } from '../core/errors';

export function readInputFile(path: string, flag: string): Uint8Array {
  try {
    const stat = statSync(path);
    if (stat.isDirectory()) throw new RemaxInputError(`${flag} ${path} is a directory; give the path of a file`);
    return new Uint8Array(readFileSync(path));
  } catch (error) {
    if (error instanceof RemaxInputError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String((error as Error).message);
    throw new RemaxInputError(`cannot read ${flag} ${path}: ${why}`);
  }
}

export function writeFileAtomic(path: string, bytes: Uint8Array | string, flag = '--out'): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(temp, bytes);
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOSPC' ? 'the disk is full' : code === 'ENOENT' ? 'its folder does not exist'
      : code === 'EACCES' ? 'permission denied' : String((error as Error).message);
    throw new RemaxInputError(`cannot write ${flag} ${path}: ${why}; nothing was written`);
  }
}
