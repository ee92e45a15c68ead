// Ctrl-C during a training command: instead of killing the process, it raises a flag that the loop reads between
// steps, so the command saves its checkpoint and exits normally (nothing trained is lost).
// Node delivers SIGINT from its event loop, and a loop whose steps are synchronous (sft) or only await settled
// promises (train with a synchronous reward) never returns there: the signal would wait until the loop ended.
// So each check first yields one turn of the event loop.

export interface InterruptFlag {
  /** Yields to the event loop (so that a pending SIGINT is handled), then tells whether one has arrived. */
  check(): Promise<boolean>;
  /** Whether SIGINT has arrived, as of the last check. */
  readonly received: boolean;
}

/** Runs `body` with a flag that SIGINT raises; the handler is removed when body ends. */
export async function withInterruptFlag<T>(body: (flag: InterruptFlag) => Promise<T>): Promise<T> {
  let received = false;
  const onInterrupt = () => { received = true; };
  process.once('SIGINT', onInterrupt);
  const flag: InterruptFlag = {
    check: () => new Promise((resolve) => setImmediate(() => resolve(received))),
    get received() { return received; },
  };
  try {
    return await body(flag);
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
}
