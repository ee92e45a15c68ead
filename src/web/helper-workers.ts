// Helper engines on Web Workers (the trainer page's threads setting). SharedArrayBuffer, which the helpers share
// parameters and gradients through, exists only in a cross-origin isolated page (remax serve sends the headers).
import { HelperEngine, HelperError } from '../core/parallel/helper-client';
import { RemaxInputError } from '../core/errors';

/** Starts `threads − 1` helper engines, each a module Web Worker running `script` (the bundled app/helper.ts). */
export function startWebHelpers(threads: number, script: URL): HelperEngine[] {
  if (threads > 1 && !globalThis.crossOriginIsolated) {
    throw new RemaxInputError('more than one thread needs a cross-origin isolated page (Cross-Origin-Opener-Policy: same-origin and ' +
      'Cross-Origin-Embedder-Policy: require-corp, as remax serve sends): set threads to 1 or serve the page with those headers');
  }
  return Array.from({ length: threads - 1 }, () => {
    const worker = new Worker(script, { type: 'module' });
    const helper = new HelperEngine({
      postMessage: (message) => worker.postMessage(message),
      onMessage: (handler) => { worker.onmessage = (event: MessageEvent) => handler(event.data); },
      terminate: () => worker.terminate(),
    });
    worker.onerror = (event) => helper.fail(new HelperError(`a helper thread failed: ${event.message}`));
    return helper;
  });
}
