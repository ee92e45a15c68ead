// The Node adapter's model files: a --model path (a file, a folder, or a config.json or .safetensors inside a
// folder) as the core's ModelFileSet, read lazily so a folder's big shards are read only when the loader asks.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ModelFileSet } from '../core/formats/model';
import { RemaxInputError } from '../core/errors';
import { readInputFile } from './files';

/**
 * The files of the model at `input`: a folder is its files; a config.json, a .safetensors or a
 * model.safetensors.index.json stands for its folder (a Hugging Face model is the whole folder); any other file is a
 * set of that one file. The error for a missing path names the flag.
 */
export function modelFileSet(input: string, flag: string): ModelFileSet {
  let stat;
  try {
    stat = statSync(input);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RemaxInputError(`cannot read ${flag} ${input}: ${code === 'ENOENT' ? 'no such file or folder' : (error as Error).message}`);
  }
  const base = path.basename(input);
  const standsForFolder = base === 'config.json' || base.endsWith('.safetensors') || base.endsWith('.safetensors.index.json');
  if (stat.isDirectory()) return folderFileSet(input, flag);
  if (standsForFolder) return folderFileSet(path.dirname(input) || '.', flag);
  return singleFileSet(input, flag);
}

function folderFileSet(folder: string, flag: string): ModelFileSet {
  const names = readdirSync(folder, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name).sort();
  const has = new Set(names);
  return {
    source: folder,
    names: () => names,
    read: async (name) => (has.has(name) ? readInputFile(path.join(folder, name), flag) : undefined),
    size: async (name) => (has.has(name) ? statSync(path.join(folder, name)).size : undefined),
  };
}

function singleFileSet(file: string, flag: string): ModelFileSet {
  const name = path.basename(file);
  return {
    source: file,
    names: () => [name],
    read: async (n) => (n === name ? readInputFile(file, flag) : undefined),
    size: async (n) => (n === name ? statSync(file).size : undefined),
  };
}
