// Entry of a helper engine's worker thread (Node, Deno and Bun's worker_threads): serves the main engine's requests.
import { parentPort } from 'node:worker_threads';
import { serveHelper } from '../core/parallel/helper-server';
import { enableRelaxedSimd } from './load';

enableRelaxedSimd();
const port = parentPort!;
serveHelper({
  postMessage: (message) => port.postMessage(message),
  onMessage: (handler) => port.on('message', handler),
});
