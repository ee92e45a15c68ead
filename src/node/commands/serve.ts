// `remax serve`: the in-browser trainer page (dist/web, built beside the CLI) on 127.0.0.1.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FlagSpec } from '../args';
import { parseFlags, helpText, numberFlag, optionalString } from '../args';
import { folderUnder, startStaticServer } from '../static-server';
import { RemaxInputError } from '../../core/errors';

/** The page's files: dist/web beside dist/cli.js. */
const WEB_DIR = fileURLToPath(new URL('./web/', import.meta.url));

const serveFlags: FlagSpec[] = [
  { name: 'port', type: 'string', help: 'TCP port; 0 picks a free one', default: '8080' },
  { name: 'host', type: 'string', help: 'address to listen on (the page needs no other machine: keep it local)', default: '127.0.0.1' },
];

const SUMMARY = 'Serve the in-browser trainer page: pick the built-in task or load a llama2.c model, edit the reward, ' +
  'train in a Web Worker, watch the charts, download the checkpoint. The page is static: dist/web can go on any host.';

export async function serveCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<void> {
  const flags = parseFlags('serve', argv, serveFlags);
  if (flags.help) return out(helpText('serve', SUMMARY, serveFlags));
  const port = numberFlag(flags, 'port', 8080, { integer: true, min: 0, max: 65535 });
  const host = optionalString(flags, 'host') ?? '127.0.0.1';
  if (!existsSync(`${WEB_DIR}index.html`)) {
    throw new RemaxInputError(`the trainer page is not built: ${WEB_DIR}index.html is missing (run npm run build)`);
  }
  let server;
  try {
    // A request that fails is answered 500 and reported here, as any other error the server survives: it keeps serving.
    const onError = (error: unknown) => err(`remax serve: ${error instanceof Error ? error.message : String(error)} (still serving)`);
    server = await startStaticServer(folderUnder('/', WEB_DIR), { host, port, onError });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RemaxInputError(`cannot listen on ${host}:${port} (${code ?? (error as Error).message})` +
      (code === 'EADDRINUSE' ? ': the port is taken; pick another with --port (0 = any free port)' : ''));
  }
  out(`remax trainer page: ${server.url}  (Ctrl-C stops)`);
  await new Promise<void>((resolve) => {
    const stop = () => void server.close().then(resolve);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
