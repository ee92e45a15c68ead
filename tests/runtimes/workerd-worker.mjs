// The runtime checks (checks.mjs) as a Cloudflare Worker, served by workerd on 127.0.0.1: GET / runs them and answers
// the RESULT object as JSON. workerd compiles no WASM from bytes at run time, so this uses the library's workerd
// bundle (dist/workerd.js, the package's "workerd" export), which imports the kernel builds as WASM modules named in
// the worker's config, as wrangler would bundle them. The shared test data arrives as data modules too
// (shared-data.mjs, written by the test: the data, or null when ../shared is absent).
import * as remax from '../../dist/workerd.js';
import { runChecks } from './checks.mjs';
import shared from './shared-data.mjs';

export default {
  async fetch(request) {
    const version = new URL(request.url).searchParams.get('version') ?? 'unknown';
    const lines = [];
    const result = await runChecks(remax, { runtime: 'workerd', version, data: shared, log: (line) => lines.push(line) });
    return Response.json({ ...result, log: lines });
  },
};
