// The main side of a helper engine: each call posts a request and resolves with the helper's reply.
import { RemaxInputError } from '../errors';
import type { HelperOp, HelperOps, HelperReply, Transport } from './protocol';

export class HelperEngine {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  constructor(private readonly transport: Transport) {
    transport.onMessage((message) => {
      const reply = message as HelperReply;
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(reply.error.input ? new RemaxInputError(reply.error.message) : new Error(`helper engine: ${reply.error.message}`));
    });
  }

  call<K extends HelperOp>(op: K, args: HelperOps[K]['args']): Promise<HelperOps[K]['result']> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.transport.postMessage({ id, op, args });
    });
  }

  /** Rejects every call waiting on this helper (its thread failed). */
  fail(error: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }

  terminate(): void {
    this.fail(new Error('helper engine terminated'));
    this.transport.terminate?.();
  }
}
