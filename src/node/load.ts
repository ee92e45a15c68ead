// Node adapter: an engine from file paths. The core only ever sees bytes.
import v8 from 'node:v8';
import { RemaxEngine, type EngineOptions } from '../core/engine';
import { readInputFile } from './files';

/**
 * Node 20 ships relaxed SIMD behind a V8 flag; setting it before the first compile lets 'auto' pick the
 * faster build there too (later Node versions, Deno, Bun and browsers accept it without a flag).
 */
export function enableRelaxedSimd(): void {
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    // Not V8 (e.g. Bun): its engine decides by itself through WebAssembly.validate.
  }
}

export interface FileEngineOptions extends Omit<EngineOptions, 'model' | 'tokenizer' | 'modelSource' | 'tokenizerSource'> {
  model: string;
  tokenizer?: string;
}

export async function loadEngineFromFiles(options: FileEngineOptions): Promise<RemaxEngine> {
  const { model, tokenizer, ...rest } = options;
  return RemaxEngine.create({
    ...rest,
    model: readInputFile(model, '--model'),
    modelSource: model,
    tokenizer: tokenizer === undefined ? undefined : readInputFile(tokenizer, '--tokenizer'),
    tokenizerSource: tokenizer,
  });
}
