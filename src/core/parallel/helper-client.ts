// The main side of a helper engine: each call posts a request and resolves with the helper's reply.
import { RemaxInputError } from '../errors';
import type { EngineRole, HelperOp, HelperOps, HelperReply, Transport } from './protocol';

/**
 * A helper failed: its engine threw (other than on bad input), or its thread died. The main engine's state is that of
 * the last completed step, so a run can save it and go on with fewer threads.
 */
export class HelperError extends Error {}

export class HelperEngine {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  /** Set once the helper has failed: every later call is refused at once (a dead thread would never answer). */
  private failure: Error | undefined;

  constructor(private readonly transport: Transport) {
    transport.onMessage((message) => {
      const reply = message as HelperReply;
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(reply.error.input ? new RemaxInputError(reply.error.message) : new HelperError(`a helper thread's engine failed: ${reply.error.message}`));
    });
  }

  /** `op` on the helper's engine of `role`. */
  call<K extends HelperOp>(op: K, args: HelperOps[K]['args'], role: EngineRole = 'policy'): Promise<HelperOps[K]['result']> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.transport.postMessage(role === 'policy' ? { id, op, args } : { id, op, args, role });
    });
  }

  /** Rejects every call waiting on this helper and every later one (its thread failed or was ended). */
  fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }

  terminate(): void {
    this.fail(new HelperError('the helper thread was ended'));
    this.transport.terminate?.();
  }
}
