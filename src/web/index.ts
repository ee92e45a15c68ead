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
 * the bundle; pass the result as `wasm` to RemaxEngine.create. The relaxed build is optional: when this engine does
 * not compile relaxed SIMD, the result has only the simd build (and `auto` picks that). A URL that cannot be fetched
 * is an error either way (a wrong relaxed URL would otherwise cost its speed without a word).
 */
export async function compileBuildsFromUrls(urls: { simd: string | URL; relaxed?: string | URL }): Promise<WasmBuilds> {
  const [simdBytes, relaxedBytes] = await Promise.all([
    fetchBytes(urls.simd, 'simd kernel build'), urls.relaxed === undefined ? undefined : fetchBytes(urls.relaxed, 'relaxed-simd kernel build'),
  ]);
  const simd = await WebAssembly.compile(simdBytes);
  let relaxed: WebAssembly.Module | undefined;
  if (relaxedBytes) {
    try {
      relaxed = await WebAssembly.compile(relaxedBytes);
    } catch (error) {
      if (!(error instanceof WebAssembly.CompileError)) throw error;
    }
  }
  return { simd, relaxed };
}
