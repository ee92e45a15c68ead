// Writing a whole folder as one step (remax init --like): its files go into a hidden temp folder beside the target,
// each flushed, and the temp folder is renamed to the target, the commit point. A kill before it leaves the target as
// it was (the temp is debris, removed by the next write of that target); --overwrite moves the previous folder aside
// just before the rename and removes it after, and a kill between those two renames is undone by the next write (the
// previous folder comes back). So no half-written folder ever sits at the target.
import * as fs from 'node:fs';
import { existsSync, readdirSync, renameSync, rmSync, rmdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { RemaxInputError } from '../core/errors';
import { isAlive, syncFolder, writeChunksDurably, writeDurably } from './commit';
import { makeFolder } from './files';
import { refuseSpecialPath } from './run-folder';

export interface FolderFile {
  name: string;
  /** The bytes, or a generator of them chunk by chunk (for files too large to hold). */
  bytes: Uint8Array | (() => Iterable<Uint8Array>);
}

const tempName = (target: string, pid: number, kind: 'partial' | 'replaced'): string =>
  path.join(path.dirname(target), `.${path.basename(target)}.${pid}.${kind}`);

/**
 * Removes the temps of writers of `target` that died, and puts back a previous folder that an --overwrite moved aside
 * before it was killed (the new folder had not been renamed into place).
 */
function recover(target: string): void {
  const parent = path.dirname(target), base = path.basename(target);
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  const ours = new RegExp(`^\\.${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d+)\\.(partial|replaced)$`);
  for (const name of names) {
    const [, pid, kind] = ours.exec(name) ?? [];
    if (pid === undefined || isAlive(Number(pid))) continue;
    const at = path.join(parent, name);
    if (kind === 'replaced' && !existsSync(target)) renameSync(at, target);
    else rmSync(at, { recursive: true, force: true });
  }
}

/**
 * Checks, before anything is computed, that `target` can become the folder: not on a kernel file system, not a file,
 * empty or absent, or (with `overwrite`) a model folder (holding config.json): --overwrite never deletes a folder of
 * other things.
 */
export function checkFolderTarget(target: string, flag: string, overwrite: boolean): void {
  refuseSpecialPath(target, flag);
  const relative = path.relative(path.resolve(target), process.cwd());
  if (!relative.startsWith('..') && !path.isAbsolute(relative)) {
    throw new RemaxInputError(`${flag} ${target} is the current folder or holds it; the folder is replaced whole, so give a new folder (e.g. ${path.join(target, 'model')})`);
  }
  recover(target);
  if (!existsSync(target)) return;
  if (!statSync(target).isDirectory()) throw new RemaxInputError(`${flag} ${target} is a file; give the path of a folder to write (absent or empty)`);
  const names = readdirSync(target);
  if (names.length === 0) return;
  const shown = `${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}`;
  if (!overwrite) {
    throw new RemaxInputError(`${flag} ${target} is not empty (${names.length} entries: ${shown}); choose another folder, ` +
      'or give --overwrite to replace it');
  }
  if (!names.includes('config.json')) {
    throw new RemaxInputError(`${flag} ${target} holds ${shown} but no config.json, so it is not a model folder; --overwrite ` +
      'replaces only a model folder: remove its contents yourself or choose another folder');
  }
}

/** Refuses a write of `bytes` that the disk holding `target` has no room for (when the platform says how much it has). */
export function checkFreeSpace(target: string, bytes: number, flag: string): void {
  let free: number;
  try {
    // Looked up, not imported by name: a runtime without statfs (older Deno or Bun) still loads this module.
    const statfs = (fs as { statfsSync?: (p: string) => { bavail: number; bsize: number } }).statfsSync;
    if (!statfs) return;
    const s = statfs(path.dirname(path.resolve(target)));
    free = s.bavail * s.bsize;
  } catch {
    return; // the parent is yet to be made: the write itself reports a full disk
  }
  if (bytes > free) {
    throw new RemaxInputError(`${flag} ${target}: the folder needs ${formatBytes(bytes)} and its disk has ${formatBytes(free)} free; ` +
      'free some space or choose a folder on another disk');
  }
}

export const formatBytes = (bytes: number): string =>
  bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(bytes >= 10 * 2 ** 20 ? 0 : 2)} MiB`;

/** Writes `files` as the folder `target` in one step (see the file comment); checkFolderTarget first. */
export function writeFolderAtomic(given: string, files: FolderFile[], flag: string, overwrite: boolean): void {
  checkFolderTarget(given, flag, overwrite);
  const target = path.resolve(given); // "model/" and "./model" name the folder, not something inside it
  const parent = path.dirname(target);
  makeFolder(parent, flag);
  const temp = tempName(target, process.pid, 'partial'), old = tempName(target, process.pid, 'replaced');
  let current = '';
  try {
    rmSync(temp, { recursive: true, force: true });
    makeFolder(temp, flag);
    for (const file of files) {
      current = file.name;
      const at = path.join(temp, file.name);
      if (file.bytes instanceof Uint8Array) writeDurably(at, file.bytes);
      else writeChunksDurably(at, file.bytes());
    }
    current = '';
    syncFolder(temp);
    if (existsSync(target)) {
      // Empty (checked), or a model folder to replace: moved aside, so that the rename below cannot fail on it.
      if (readdirSync(target).length === 0) rmdirSync(target);
      else renameSync(target, old);
    }
    renameSync(temp, target); // the commit point
    syncFolder(parent);
  } catch (error) {
    rmSync(temp, { recursive: true, force: true });
    if (existsSync(old) && !existsSync(target)) renameSync(old, target);
    if (error instanceof RemaxInputError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOSPC' ? 'the disk is full' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (error as Error).message;
    throw new RemaxInputError(`cannot write ${flag} ${given}${current ? ` (${current})` : ''}: ${why}; nothing was written`);
  }
  rmSync(old, { recursive: true, force: true });
}
