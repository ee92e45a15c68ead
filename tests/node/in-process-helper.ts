// A helper engine served in this thread (the worker's code without the worker): messages pass on microtasks. Lets a
// test run the helper protocol (two engines, parts summed) without worker threads.
import { HelperEngine } from '../../src/core/parallel/helper-client';
import { serveHelper } from '../../src/core/parallel/helper-server';

export function inProcessHelper(): HelperEngine {
  let toClient: (message: unknown) => void = () => {};
  let toServer: (message: unknown) => void = () => {};
  serveHelper({ postMessage: (m) => queueMicrotask(() => toClient(m)), onMessage: (h) => { toServer = h; } });
  return new HelperEngine({ postMessage: (m) => queueMicrotask(() => toServer(m)), onMessage: (h) => { toClient = h; } });
}
