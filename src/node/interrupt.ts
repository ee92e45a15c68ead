// Ctrl-C, kill (SIGTERM: what systemd, Docker and CI send) and a closed terminal (SIGHUP) during a training command:
// instead of killing the process, each raises a flag that the loop reads between steps, so the command saves its
// checkpoint and exits with 128 + the signal's number (130, 143, 129), as a shell reports a killed command.
// Node delivers signals from its event loop, and a loop whose steps are synchronous (sft) or only await settled
// promises (train with a synchronous reward) never returns there: the signal would wait until the loop ended.
// So each check first yields one turn of the event loop.

const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
export type StopSignal = keyof typeof SIGNALS;

export interface InterruptFlag {
  /** Yields to the event loop (so that a pending signal is handled), then tells whether one has arrived. */
  check(): Promise<boolean>;
  /** Whether a signal has arrived, as of the last check. */
  readonly received: boolean;
  /** The first signal that arrived. */
  readonly signal: StopSignal | undefined;
  /** The exit code a command that stopped for it returns: 128 + the signal's number; 0 when none arrived. */
  readonly exitCode: number;
}

/** Runs `body` with a flag that SIGINT, SIGTERM and SIGHUP raise; the handlers are removed when body ends. */
export async function withInterruptFlag<T>(body: (flag: InterruptFlag) => Promise<T>): Promise<T> {
  let signal: StopSignal | undefined;
  const handlers = (Object.keys(SIGNALS) as StopSignal[]).map((name) => {
    const handler = () => { signal ??= name; };
    process.on(name, handler);
    return [name, handler] as const;
  });
  const flag: InterruptFlag = {
    check: () => new Promise((resolve) => setImmediate(() => resolve(signal !== undefined))),
    get received() { return signal !== undefined; },
    get signal() { return signal; },
    get exitCode() { return signal ? 128 + SIGNALS[signal] : 0; },
  };
  try {
    return await body(flag);
  } finally {
    for (const [name, handler] of handlers) process.removeListener(name, handler);
  }
}
