// Writing files that belong together (a checkpoint: the model's files and its training state) as ONE atomic step,
// whatever kills the process or fails between the system calls:
//   1. every file is written to a temp file beside its target and flushed (fsync);
//   2. a journal listing the renames is written the same way, then renamed into place: THE COMMIT POINT;
//   3. the temps are renamed over their targets, and the journal is removed.
// A crash or a failure before 2 leaves the previous files as they were (the temps are debris, removed later); after
// 2, completePendingCommit() — which every reader of such files calls first — finishes the renames. So a reader
// always sees the old set or the new one, never a mix, and a failed rename never loses the last good set.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { RemaxInputError } from '../core/errors';

export interface FileToWrite {
  path: string;
  bytes: Uint8Array | string;
}

const tempPath = (path: string): string => join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
const TEMP = /^\..+\.(\d+)\.tmp$/;

/** Writes bytes to `path` and flushes them to the disk before returning. */
export function writeDurably(path: string, bytes: Uint8Array | string): void {
  const fd = openSync(path, 'w');
  try {
    const data = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
    // At most 1 GiB a call: Node refuses a single write of 2 GiB or more.
    for (let at = 0; at < data.length;) at += writeSync(fd, data, at, Math.min(data.length - at, 2 ** 30));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes chunks one after the other to `path` (a file of any size from a few MiB of memory), then flushes it. */
export function writeChunksDurably(path: string, chunks: Iterable<Uint8Array>): void {
  const fd = openSync(path, 'w');
  try {
    for (const chunk of chunks) {
      for (let at = 0; at < chunk.length;) at += writeSync(fd, chunk, at, Math.min(chunk.length - at, 2 ** 30));
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Flushes a folder's entries (renames) to the disk; where the platform cannot, renames are still atomic. */
export function syncFolder(folder: string): void {
  try {
    const fd = openSync(folder, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
  } catch {
    // Windows opens no folders: nothing to flush there.
  }
}

/**
 * Commits `files` together under the journal `journal` (a hidden file beside them that names the set). Errors are
 * RemaxInputErrors that name the flag and the file, and say whether the set was replaced.
 */
export function commitFiles(files: FileToWrite[], journal: string, flag: string, describe: (error: unknown) => string): void {
  completePendingCommit(journal, flag, describe);
  const temps = files.map((f) => tempPath(f.path));
  const folders = [...new Set(files.map((f) => dirname(f.path)))];
  let at = 0;
  try {
    for (; at < files.length; at++) writeDurably(temps[at]!, files[at]!.bytes);
    for (const folder of folders) syncFolder(folder);
    const base = dirname(journal);
    const renames = files.map((f, i) => [relative(base, temps[i]!), relative(base, f.path)]);
    writeDurably(tempPath(journal), JSON.stringify({ renames }));
    renameSync(tempPath(journal), journal); // the commit point
    syncFolder(base);
  } catch (error) {
    for (const temp of [...temps, tempPath(journal)]) rmSync(temp, { force: true });
    const which = files[Math.min(at, files.length - 1)]!.path;
    const kept = files.length > 1 ? `; none of ${files.map((f) => f.path).join(', ')} was replaced` : '; nothing was replaced';
    throw new RemaxInputError(`cannot write ${flag} ${which}: ${describe(error)}${kept}`);
  }
  completePendingCommit(journal, flag, describe);
}

/**
 * Finishes a commit that a crash or a failed rename interrupted after its commit point (see the file comment), and
 * removes the temps of commits that never reached it. Idempotent; a no-op when no journal is there.
 */
export function completePendingCommit(journal: string, flag: string, describe: (error: unknown) => string): void {
  const base = dirname(journal);
  if (existsSync(journal)) {
    let renames: [string, string][];
    try {
      renames = (JSON.parse(readFileSync(journal, 'utf8')) as { renames: [string, string][] }).renames;
      if (!Array.isArray(renames) || !renames.every((r) => Array.isArray(r) && r.length === 2 && r.every((p) => typeof p === 'string'))) throw new Error('no renames');
    } catch (error) {
      throw new RemaxInputError(`${flag}: the commit journal ${journal} is unreadable (${(error as Error).message}); it was not written by remax, ` +
        'or the disk is failing: remove it to keep the files as they are');
    }
    for (const [temp, target] of renames) {
      const from = resolve(base, temp);
      if (!existsSync(from)) continue; // renamed before the interruption
      try {
        renameSync(from, resolve(base, target));
      } catch (error) {
        throw new RemaxInputError(`cannot write ${flag} ${resolve(base, target)}: ${describe(error)}; the new files are complete ` +
          `(journal ${journal}): run the command again to finish replacing them`);
      }
    }
    syncFolder(base);
    rmSync(journal, { force: true });
  }
  removeDebris(journal);
}

/** Temps of this journal's set left by writers that died before the commit point (their process is gone). */
function removeDebris(journal: string): void {
  const base = dirname(journal);
  const folders = new Set([base]);
  try {
    for (const entry of readdirSync(base, { withFileTypes: true })) if (entry.isDirectory()) folders.add(join(base, entry.name));
  } catch {
    return;
  }
  for (const folder of folders) {
    let names: string[];
    try {
      names = readdirSync(folder);
    } catch {
      continue;
    }
    for (const name of names) {
      const pid = TEMP.exec(name)?.[1];
      if (pid !== undefined && !isAlive(Number(pid))) rmSync(join(folder, name), { force: true });
    }
  }
}

/** Whether a process of this id exists (on this machine). */
export function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // it exists, but is someone else's
  }
}
