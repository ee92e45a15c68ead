// The browser adapter's URL loading (src/web/index.ts) against a local HTTP server: kernel builds compiled from URLs
// run an engine, and a URL that cannot be fetched is an error naming it (the relaxed build's too).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { compileBuildsFromUrls, RemaxEngine } from '../../src/web/index';
import { randomInitWeights } from '../../src/core/formats/llama2c';
import type { ModelConfig } from '../../src/core/config';

const FILES: Record<string, string> = { '/remax.simd.wasm': 'build/remax.simd.wasm', '/remax.relaxed.wasm': 'build/remax.relaxed.wasm' };

async function serve(): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const file = FILES[req.url ?? ''];
    if (!file) { res.writeHead(404).end('not found'); return; }
    res.writeHead(200, { 'content-type': 'application/wasm' }).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const TINY: ModelConfig = { dim: 16, hiddenDim: 32, nLayers: 1, nHeads: 2, nKvHeads: 1, vocabSize: 32, seqLen: 16, sharedClassifier: true, normEps: 1e-5, ropeTheta: 10000 };

test('compileBuildsFromUrls: the compiled builds run an engine; the relaxed one is kept only where the engine compiles it', async () => {
  const { server, base } = await serve();
  try {
    const wasm = await compileBuildsFromUrls({ simd: `${base}/remax.simd.wasm`, relaxed: `${base}/remax.relaxed.wasm` });
    assert.ok(wasm.simd instanceof WebAssembly.Module);
    const relaxedCompiles = WebAssembly.validate(readFileSync('build/remax.relaxed.wasm'));
    assert.equal(wasm.relaxed instanceof WebAssembly.Module, relaxedCompiles);
    const engine = await RemaxEngine.create({ model: { config: TINY, weights: randomInitWeights(TINY, 3), format: 'llama2c-v0' }, wasm, build: 'simd' });
    const [out] = engine.generate([{ promptIds: [1, 5] }], { temperature: 0, maxNewTokens: 4, eosId: null });
    assert.equal(out!.ids.length, 4);
  } finally {
    server.close();
  }
});

test('compileBuildsFromUrls: a kernel URL that answers 404 is an error naming the URL, the relaxed one included', async () => {
  const { server, base } = await serve();
  try {
    await assert.rejects(compileBuildsFromUrls({ simd: `${base}/missing.wasm` }), /simd kernel build at http:\/\/127\.0\.0\.1:\d+\/missing\.wasm: HTTP 404/);
    await assert.rejects(compileBuildsFromUrls({ simd: `${base}/remax.simd.wasm`, relaxed: `${base}/relaxd.wasm` }),
      /relaxed-simd kernel build at http:\/\/127\.0\.0\.1:\d+\/relaxd\.wasm: HTTP 404/);
  } finally {
    server.close();
  }
});
