// Node adapter: an engine from file paths. The core only ever sees bytes.
import v8 from 'node:v8';
import { RemaxEngine, type EngineOptions } from '../core/engine';
import { loadModelFromPath, loadTokenizerFromPath } from './model-io';
import { readAdapterFolder } from './lora';

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
  /** A Hugging Face folder (or its config.json), a .gguf file or a llama2.c checkpoint. */
  model: string;
  /** tokenizer.json, a .gguf's vocabulary or llama2.c's tokenizer.bin; default: the model's own. */
  tokenizer?: string;
  /** The context to plan for (Hugging Face and GGUF models; default 2048, at most the model's). */
  context?: number;
  /** A PEFT LoRA adapter folder to apply (--adapter). */
  adapter?: string;
}

export async function loadEngineFromFiles(options: FileEngineOptions): Promise<RemaxEngine> {
  const { model, tokenizer, context, adapter, ...rest } = options;
  const loaded = await loadModelFromPath(model, '--model', context === undefined ? {} : { context });
  const lora = adapter === undefined ? undefined : readAdapterFolder(adapter, loaded.config, '--adapter');
  return RemaxEngine.create({
    ...rest,
    ...(lora ? { lora: lora.settings, loraWeights: lora.weights } : {}),
    model: loaded,
    modelSource: model,
    tokenizer: tokenizer === undefined ? undefined : loadTokenizerFromPath(tokenizer, '--tokenizer'),
    tokenizerSource: tokenizer,
  });
}
