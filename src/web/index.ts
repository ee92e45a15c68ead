// remax-wasm/browser: the core API plus loading over URLs, for browser pages and Web Workers (and any runtime with
// fetch). The core only ever sees bytes; this adapter fetches them.
import { RemaxEngine, type EngineOptions } from '../core/engine';
import { RemaxInputError } from '../core/errors';
import type { WasmBuilds } from '../core/kernels';

export * from '../index';

/** The bytes at `url`; the error names the URL and the HTTP status when the server refuses. */
export async function fetchBytes(url: string | URL, what = 'file'): Promise<Uint8Array<ArrayBuffer>> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new RemaxInputError(`could not fetch the ${what} at ${url}: ${(error as Error).message}`);
  }
  if (!response.ok) throw new RemaxInputError(`could not fetch the ${what} at ${url}: HTTP ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

export interface UrlEngineOptions extends Omit<EngineOptions, 'model' | 'tokenizer' | 'modelSource' | 'tokenizerSource'> {
  /** URL of a llama2.c checkpoint. */
  model: string | URL;
  /** URL of a llama2.c tokenizer.bin (needed for text prompts). */
  tokenizer?: string | URL;
}

/** An engine from URLs (fetched concurrently). */
export async function loadEngineFromUrls(options: UrlEngineOptions): Promise<RemaxEngine> {
  const { model, tokenizer, ...rest } = options;
  const [modelBytes, tokenizerBytes] = await Promise.all([
    fetchBytes(model, 'model'), tokenizer === undefined ? undefined : fetchBytes(tokenizer, 'tokenizer'),
  ]);
  return RemaxEngine.create({
    ...rest, model: modelBytes, modelSource: String(model), tokenizer: tokenizerBytes, tokenizerSource: tokenizer && String(tokenizer),
  });
}

/**
 * Compiles kernel builds served as separate .wasm files, for pages that would rather not carry the builds embedded in
 * the bundle; pass the result as `wasm` to RemaxEngine.create. The relaxed build is optional: when it cannot be
 * fetched or this engine does not compile it, the result has only the simd build (and `auto` picks that).
 */
export async function compileBuildsFromUrls(urls: { simd: string | URL; relaxed?: string | URL }): Promise<WasmBuilds> {
  const compile = async (url: string | URL) => WebAssembly.compile(await fetchBytes(url, 'kernel build'));
  const [simd, relaxed] = await Promise.all([compile(urls.simd), urls.relaxed ? compile(urls.relaxed).catch(() => undefined) : undefined]);
  return { simd, relaxed };
}
