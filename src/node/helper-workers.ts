// Helper engines on worker threads for `--threads N`: N − 1 workers, each running helper-worker.js (built beside
// this bundle), wrapped as the core's HelperEngine.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { HelperEngine, HelperError } from '../core/parallel/helper-client';
import { numberFlag, type Flags } from './args';

/** The helper-worker bundle beside the running bundle (dist/, or build/tests and build/bench for the tests). */
const WORKER_SCRIPT = new URL('./helper-worker.js', import.meta.url);

/** Starts `threads − 1` helper engines. A worker that fails (e.g. out of memory) rejects the calls waiting on it. */
export function startHelperWorkers(threads: number, script: URL = WORKER_SCRIPT): HelperEngine[] {
  return Array.from({ length: threads - 1 }, () => {
    const worker = new Worker(script);
    const helper = new HelperEngine({
      postMessage: (message) => worker.postMessage(message),
      onMessage: (handler) => worker.on('message', handler),
      terminate: () => void worker.terminate(),
    });
    worker.on('error', (error) => helper.fail(new HelperError(`a helper thread failed: ${error.message}`)));
    worker.on('exit', (code) => helper.fail(new HelperError(`a helper thread stopped (exit code ${code})`)));
    return helper;
  });
}

/** --threads: a count (already checked), or 'auto' for every core this process may use. */
export function threadCount(value: number | 'auto'): number {
  return value === 'auto' ? availableParallelism() : value;
}

/** The --threads flag of sft and generate: an integer from 1 to 256, or auto. */
export function threadsFlag(flags: Flags): number {
  return threadCount(flags.threads === 'auto' ? 'auto' : numberFlag(flags, 'threads', 1, { integer: true, min: 1, max: 256, orWord: 'auto' }));
}

/**
 * Starts `threads − 1` helper engines and hands them to `make` (a trainer's constructor): when it throws (a state
 * that does not fit, bad options), the helpers are ended, or their threads would keep the process alive forever.
 */
export function withHelperWorkers<T>(threads: number, make: (helpers: HelperEngine[]) => T): T {
  const helpers = startHelperWorkers(threads);
  try {
    return make(helpers);
  } catch (error) {
    for (const helper of helpers) helper.terminate();
    throw error;
  }
}
