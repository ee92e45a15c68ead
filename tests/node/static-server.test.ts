// `remax serve` and its static file server under hostile requests: no request may stop the server. A malformed
// percent-encoding is a 400, a handler that throws a 500; the server answers the next request either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { firstOf, folderUnder, startStaticServer } from '../../src/node/static-server';

const CLI = process.env.REMAX_CLI ?? path.resolve('dist/cli.js');

/** Sends `head` (a request line and headers, as raw bytes: nothing normalises the path) and returns the status code. */
function rawRequest(port: number, head: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head));
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d) => { text += d; });
    socket.on('error', reject);
    socket.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve(m ? Number(m[1]) : undefined);
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer to ${JSON.stringify(head)}`)));
  });
}
const get = (port: number, target: string, method = 'GET') =>
  rawRequest(port, `${method} ${target} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`);

test('static server: malformed paths get 400, a throwing resolver 500, and the server keeps serving', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-serve-'));
  writeFileSync(path.join(dir, 'index.html'), '<p>hi</p>');
  const errors: unknown[] = [];
  const explode = (urlPath: string) => {
    if (urlPath === '/boom') throw new Error('resolver failed');
    return undefined;
  };
  const server = await startStaticServer(firstOf(explode, folderUnder('/', dir)), { onError: (e) => errors.push(e) });
  const port = Number(new URL(server.url).port);
  try {
    assert.equal(await get(port, '/'), 200);
    // Malformed percent-encodings: decodeURIComponent threw inside the handler and ended the process.
    for (const target of ['/%E0%A4%A', '/%', '/%zz', '/%C0%AF', '/%ED%A0%80', '/a%E0%A4']) {
      assert.equal(await get(port, target), 400, target);
      assert.equal(await get(port, target, 'HEAD'), 400, `HEAD ${target}`);
      assert.equal(await get(port, '/index.html'), 200, `still serving after ${target}`);
    }
    // Still refused: paths that climb out, NUL bytes, directories, other methods.
    for (const target of ['/..%2f..%2fetc%2fpasswd', '/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/a%00b', '/%00', '/missing.js']) {
      assert.equal(await get(port, target), 404, target);
    }
    assert.equal(await get(port, '/', 'POST'), 405);
    // A handler error is a 500 for that request, reported once, and nothing more.
    assert.equal(await get(port, '/boom'), 500);
    assert.equal(errors.length, 1);
    assert.match(String((errors[0] as Error).message), /resolver failed/);
    assert.equal(await get(port, '/index.html'), 200);
    // Not HTTP at all, or an absolute-form target that is no URL: Node answers 400 (or closes), the server survives.
    await rawRequest(port, 'hello\r\n\r\n');
    await rawRequest(port, 'GET http://[ HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    await rawRequest(port, `GET /${'a'.repeat(100_000)} HTTP/1.1\r\nhost: x\r\n\r\n`);
    assert.equal(await get(port, '/index.html'), 200);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

const webBuilt = existsSync(path.join(path.dirname(CLI), 'web', 'index.html'));

test('remax serve survives a malformed request (curl --path-as-is http://127.0.0.1:PORT/%E0%A4%A) and answers 400',
  { skip: webBuilt ? false : `the trainer page is not built beside ${CLI}`, timeout: 60_000 }, async () => {
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stderr!.on('data', (d) => { stderr += d; });
    let exited: number | null | undefined;
    child.once('exit', (code) => { exited = code; });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout!.on('data', (d) => {
          stdout += d;
          const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(stdout);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (code) => reject(new Error(`remax serve exited with ${code}: ${stderr}`)));
      });
      assert.equal(await get(port, '/%E0%A4%A'), 400);
      assert.equal(await get(port, '/%'), 400);
      assert.equal(await get(port, '/'), 200);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(exited, undefined, `remax serve is still running (stderr: ${stderr})`);
    } finally {
      child.kill('SIGTERM');
    }
  });
