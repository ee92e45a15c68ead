// The runtime checks (checks.mjs) in Chromium, once in the page and once in a module Web Worker. The same bundle is
// the page's script and the worker's: in the page it runs the checks, starts the worker on itself, and publishes both
// RESULT objects as `window.remaxCheckResults` (the test reads it). The shared test data comes from the test's server
// under /shared/ (404 when ../shared is absent). With ?speed in the URL it times decoding and training instead
// (speed.mjs), for `npm run bench -- --only=runtimes`, and publishes those results.
import * as remax from '../../dist/browser.js';
import { runChecks, REAL_MODEL_FILES } from './checks.mjs';
import { runSpeed } from './speed.mjs';

const version = navigator.userAgent.match(/Chrome\/([\d.]+)/)?.[1] ?? navigator.userAgent;

async function sharedData() {
  const get = async (file) => {
    const response = await fetch(`/shared/${file}`);
    return response.ok ? new Uint8Array(await response.arrayBuffer()) : null;
  };
  const [stories, aidreams, greedyJson] = await Promise.all([get('models/stories260K.bin'), get('models/aidreams260K.bin'), get('reference/greedy.json')]);
  const realFiles = Object.entries(REAL_MODEL_FILES);
  const realBytes = await Promise.all(realFiles.map(([, file]) => get(file)));
  const real = realBytes.every(Boolean) ? Object.fromEntries(realFiles.map(([key], i) => [key, realBytes[i]])) : {};
  return stories && aidreams && greedyJson ? { stories, aidreams, greedyJson, ...real } : null;
}

const speedMode = new URL(import.meta.url).searchParams.has('speed') || (typeof location !== 'undefined' && new URLSearchParams(location.search).has('speed'));

async function check(runtime) {
  const lines = [];
  try {
    if (speedMode) return await runSpeed(remax, { runtime, version, stories: (await sharedData())?.stories ?? null });
    const result = await runChecks(remax, { runtime, version, data: await sharedData(), log: (line) => lines.push(line) });
    return { ...result, log: lines };
  } catch (error) {
    return { runtime, failures: 1, failureMessages: [String(error?.stack ?? error)], log: lines };
  }
}

if (typeof document === 'undefined') {
  // In the Web Worker: run and post the result to the page.
  check('chromium-worker').then((result) => postMessage(result));
} else {
  const inWorker = new Promise((resolve) => {
    const worker = new Worker(speedMode ? `${import.meta.url}?speed` : import.meta.url, { type: 'module' });
    worker.onmessage = (event) => resolve(event.data);
    worker.onerror = (event) => resolve({ runtime: 'chromium-worker', failures: 1, failureMessages: [`worker error: ${event.message}`] });
  });
  const inPage = await check('chromium-page');
  window.remaxCheckResults = [inPage, await inWorker];
  document.body.textContent = JSON.stringify(window.remaxCheckResults, null, 2);
}
