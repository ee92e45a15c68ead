// Entry of a reward module's worker thread (remax train --reward FILE; Node, Deno and Bun's worker_threads): imports
// the module named in workerData, then answers the main thread's calls with its default export. Whatever the module
// does on this thread (throws from a timer, leaves a rejection unhandled, calls process.exit, loops forever) ends at
// most this thread: the main thread turns it into a failed reward call and starts a fresh thread for the next one.
import { parentPort, workerData } from 'node:worker_threads';
import type { FromRewardWorker, RewardWorkerCall, RewardWorkerData } from './reward-module';

const port = parentPort!;
const { url } = workerData as RewardWorkerData;
const post = (message: FromRewardWorker) => port.postMessage(message);
const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

// Errors outside any call's promise: reported, and the main thread then ends this thread (its state is suspect).
process.on('uncaughtException', (error) => post({ kind: 'fault', what: 'exception', message: messageOf(error) }));
process.on('unhandledRejection', (reason) => post({ kind: 'fault', what: 'rejection', message: messageOf(reason) }));

let reward: ((samples: unknown) => unknown) | undefined;
try {
  const module = (await import(url)) as Record<string, unknown>;
  if (typeof module.default === 'function') {
    reward = module.default as (samples: unknown) => unknown;
    post({ kind: 'ready' });
  } else {
    post({ kind: 'no-default', exports: Object.keys(module).filter((k) => k !== 'default') });
  }
} catch (error) {
  post({ kind: 'load-error', message: messageOf(error) });
}

if (reward !== undefined) {
  const fn = reward;
  port.on('message', async ({ id, samples }: RewardWorkerCall) => {
    let result: unknown;
    try {
      result = await fn(samples);
    } catch (error) {
      post({ kind: 'threw', id, message: messageOf(error) });
      return;
    }
    try {
      post({ kind: 'result', id, rewards: result });
    } catch (error) {
      post({ kind: 'problem', id, message: `reward function returned a value that cannot be copied out of its worker thread (${messageOf(error)})` });
    }
  });
}
