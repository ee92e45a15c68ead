// A small static file server for `remax serve` and the browser tests: GET only, bound to 127.0.0.1 by default,
// files resolved by a caller-given mapping (so nothing outside the mapped folders is reachable).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
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

export interface StaticServerOptions {
  host?: string;
  /** Port; 0 picks a free one (see `url`). */
  port?: number;
  /**
   * Called with an error the server survived: a failing handler (answered 500) or the server's own 'error' event
   * after it started listening. Default: ignored. No request and no error ends the server: only close() does.
   */
  onError?: (error: unknown) => void;
}

/** Starts serving; port 0 picks a free one (see `url`). */
export function startStaticServer(resolve: FileResolver, { host = '127.0.0.1', port = 0, onError = () => {} }: StaticServerOptions = {}): Promise<StaticServer> {
  const report = (error: unknown): void => {
    try {
      onError(error);
    } catch {
      // A failing error callback must not end the server either.
    }
  };
  const server = createServer((request, response) => {
    // Whatever a request does (a malformed URL, a resolver that throws, a client that hangs up mid-answer), the
    // answer is an error status for that request, never an exception that ends the server. (Requests that are not
    // HTTP at all get Node's own clientError answer: 400 and the socket closed.)
    serveRequest(resolve, request, response).catch((error: unknown) => {
      report(error);
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('internal server error\n');
      else response.destroy();
    });
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      // After listen: an 'error' event with no listener would throw and end the process.
      server.on('error', report);
      const address = server.address() as { port: number };
      resolvePromise({
        server,
        url: `http://${host}:${address.port}/`,
        close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }),
      });
    });
  });
}

/** Answers one request: 400 for a path that is not a valid percent-encoded URL path, 404/405, or the file. */
async function serveRequest(resolve: FileResolver, request: IncomingMessage, response: ServerResponse): Promise<void> {
  response.on('error', () => response.destroy()); // a write to a socket the client closed
  const readable = request.method === 'GET' || request.method === 'HEAD';
  let urlPath: string;
  try {
    urlPath = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
  } catch {
    response.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('bad request: the path is not a valid URL path\n');
    return;
  }
  // A NUL byte is no file name (fs would throw): 404 like any other name that is not there.
  const file = readable && !urlPath.includes('\0') ? resolve(urlPath) : undefined;
  if (!file) {
    response.writeHead(readable ? 404 : 405).end();
    return;
  }
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch {
    response.writeHead(404).end();
    return;
  }
  response.writeHead(200, {
    'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
    'content-length': body.length,
    'cache-control': 'no-cache',
    // Cross-origin isolation: the trainer page's helper threads share memory through SharedArrayBuffer.
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-embedder-policy': 'require-corp',
  });
  response.end(request.method === 'HEAD' ? undefined : body);
}
