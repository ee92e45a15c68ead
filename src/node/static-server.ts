// A small static file server for `remax serve` and the browser tests: GET only, bound to 127.0.0.1 by default,
// files resolved by a caller-given mapping (so nothing outside the mapped folders is reachable).
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.jsonl': 'application/x-ndjson',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Maps a URL path to a file path, or undefined (404). */
export type FileResolver = (urlPath: string) => string | undefined;

/** Serves the file of `folder` under the URL prefix `prefix`, refusing paths that climb out of it. */
export function folderUnder(prefix: string, folder: string): FileResolver {
  const root = path.resolve(folder);
  return (urlPath) => {
    if (!urlPath.startsWith(prefix)) return undefined;
    const relative = urlPath.slice(prefix.length) || 'index.html';
    const file = path.resolve(root, relative);
    return file.startsWith(root + path.sep) ? file : undefined;
  };
}

/** The first resolver's answer. */
export const firstOf = (...resolvers: FileResolver[]): FileResolver => (urlPath) => {
  for (const resolve of resolvers) {
    const file = resolve(urlPath);
    if (file) return file;
  }
  return undefined;
};

export interface StaticServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Starts serving; port 0 picks a free one (see `url`). */
export function startStaticServer(resolve: FileResolver, { host = '127.0.0.1', port = 0 } = {}): Promise<StaticServer> {
  const server = createServer(async (request, response) => {
    const urlPath = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    const file = request.method === 'GET' || request.method === 'HEAD' ? resolve(urlPath) : undefined;
    if (!file) {
      response.writeHead(request.method === 'GET' || request.method === 'HEAD' ? 404 : 405).end();
      return;
    }
    try {
      const body = await readFile(file);
      response.writeHead(200, {
        'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
        'content-length': body.length,
        'cache-control': 'no-cache',
        // Cross-origin isolation: the trainer page's helper threads share memory through SharedArrayBuffer.
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-embedder-policy': 'require-corp',
      });
      response.end(request.method === 'HEAD' ? undefined : body);
    } catch {
      response.writeHead(404).end();
    }
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address() as { port: number };
      resolvePromise({
        server,
        url: `http://${host}:${address.port}/`,
        close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }),
      });
    });
  });
}
