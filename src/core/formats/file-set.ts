// A ModelFileSet over files already in memory (name → bytes): what tests use, and what the trainer page builds from
// the files a user picked.
import type { ModelFileSet } from './model';

/** The files `files` (names without paths) as a ModelFileSet called `source` in messages. */
export function memoryFileSet(source: string, files: Record<string, Uint8Array>): ModelFileSet {
  const table = new Map(Object.entries(files));
  return {
    source,
    names: () => [...table.keys()],
    read: async (name) => table.get(name),
    size: async (name) => table.get(name)?.length,
  };
}
