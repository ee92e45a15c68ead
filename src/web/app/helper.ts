// A helper engine's Web Worker for the trainer page's --threads (its training worker starts threads − 1 of these).
import { serveHelper } from '../../core/parallel/helper-server';

serveHelper({
  postMessage: (message) => (self as unknown as Worker).postMessage(message),
  onMessage: (handler) => { self.onmessage = (event: MessageEvent) => handler(event.data); },
});
