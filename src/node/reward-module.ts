// A user's reward function from a file (`--reward ./reward.ts`): its default export, (samples) => number[].
//
// The module runs on a worker thread of its own (reward-worker.js, built beside this bundle), so that nothing it does
// can hurt the trainer: a call that runs past its timeout (even a synchronous endless loop) is stopped by ending the
// thread; a throw from a timer, an unhandled rejection or a process.exit() ends only the thread. Each of these is a
// failed call (the --on-reward-error policy applies), and the next call loads the module again on a fresh thread.
// The thread is started at load time (so a module that does not load fails at once) and does not keep the process
// alive while no call is in flight. One thread serves every call, so module state (a cache, a counter) is shared by
// the calls as it was in-process, until a restart.
//
// .js/.mjs files are imported as they are. .ts/.mts files are bundled with esbuild (with their local imports and
// packages, so the bundle runs from anywhere) into a temp .mjs file that the thread imports and that is then removed;
// in the bundle each file's import.meta.url, .dirname and .filename are those of the file itself, so
// `new URL('./data.json', import.meta.url)` finds the reward's own data. esbuild is loaded only for .ts files.
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { RemaxInputError } from '../core/errors';
import { RewardCallError, type RewardCall, type RewardFunction, type RewardSample } from '../core/rewards';

const DIRECT = ['.js', '.mjs'];
const BUNDLED = ['.ts', '.mts'];

/** The reward worker bundle beside the running bundle (dist/, or build/tests and build/bench for the tests). */
const WORKER_SCRIPT = new URL('./reward-worker.js', import.meta.url);
const DEFAULT_LOAD_TIMEOUT_MS = 30_000;

/** What the thread is told: the module to import (the file, or its temp bundle). */
export interface RewardWorkerData { url: string }
/** One call, main thread → worker thread. */
export interface RewardWorkerCall { id: number; samples: RewardSample[] }
/** Worker thread → main thread. */
export type FromRewardWorker =
  | { kind: 'ready' }
  | { kind: 'no-default'; exports: string[] }
  | { kind: 'load-error'; message: string }
  | { kind: 'result'; id: number; rewards: unknown }
  | { kind: 'threw'; id: number; message: string }
  | { kind: 'problem'; id: number; message: string }
  | { kind: 'fault'; what: 'exception' | 'rejection'; message: string };

export interface RewardModuleOptions {
  /** How long loading the module may take, at the start and again on a fresh thread; default 30 s. */
  loadTimeoutMs?: number;
  /** The worker thread's script; default reward-worker.js beside this bundle. */
  workerScript?: URL;
  /** Where a .ts module's bundle is written while a thread loads it; default the system's temp folder. */
  tempDir?: string;
}

/** A reward module's function. close() ends its thread (an idle thread does not keep the process alive anyway). */
export type RewardModule = RewardFunction & { close(): Promise<void> };

export async function loadRewardModule(path: string, options: RewardModuleOptions = {}): Promise<RewardModule> {
  if (!existsSync(path)) throw new RemaxInputError(`--reward ${path}: no such file`);
  if (statSync(path).isDirectory()) throw new RemaxInputError(`--reward ${path} is a directory; give the path of a .js, .mjs, .ts or .mts file`);
  const extension = extname(path).toLowerCase();
  let source: ModuleSource;
  if (DIRECT.includes(extension)) source = { url: pathToFileURL(resolve(path)).href };
  else if (BUNDLED.includes(extension)) source = { code: await bundle(path) };
  else throw new RemaxInputError(`--reward ${path}: unknown kind of file "${extension || '(no extension)'}"; give a .js, .mjs, .ts or .mts module, or a built-in reward name`);

  const script = options.workerScript ?? WORKER_SCRIPT;
  if (script.protocol === 'file:' && !existsSync(fileURLToPath(script))) {
    throw new Error(`the reward worker script ${fileURLToPath(script)} is missing (it is built beside the remax bundle)`);
  }
  const host = new RewardThreads(path, source, script, options.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS, options.tempDir ?? tmpdir());
  await host.start();
  const reward = (samples: RewardSample[], call?: RewardCall) => host.call(samples, call);
  return Object.assign(reward, { close: () => host.close() });
}

type ModuleSource = { url: string } | { code: string };

/** What a failed call says about the thread: it was ended, and the next call starts another. */
const RESTARTED = 'its worker thread was ended, and the next call loads the module again on a fresh one';
/** What a timed-out (or otherwise stopped) call says. */
const STOPPED = "the reward module's worker thread was stopped, and the next call loads the module again on a fresh one";

interface Thread {
  worker: Worker;
  ready: boolean;
  /** Ended by us: its messages and its exit are no news. */
  ending: boolean;
  /** Settles when the module loaded (or failed to: the problem). */
  loaded: Promise<void>;
  loadSettled: (problem?: string) => void;
  loadTimer: ReturnType<typeof setTimeout>;
  tempDir?: string;
}

interface Pending {
  id: number;
  samples: RewardSample[];
  resolve: (rewards: number[]) => void;
  reject: (error: unknown) => void;
  /** The thread the call was posted to; undefined while it waits for a thread that is loading. */
  thread?: Thread;
  call?: RewardCall;
  onAbort?: () => void;
}

/** The worker thread of one reward module, started again whenever it had to be ended. */
class RewardThreads {
  private thread: Thread | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  /** A thread that failed while no call was in flight: the next call reports it. */
  private fault: string | undefined;
  private starting = false;
  private closed = false;

  constructor(
    private readonly given: string, private readonly source: ModuleSource, private readonly script: URL,
    private readonly loadTimeoutMs: number, private readonly tempRoot: string,
  ) {}

  /** Starts the first thread; a module that does not load is a RemaxInputError naming the --reward path. */
  async start(): Promise<void> {
    this.starting = true;
    const thread = this.spawn();
    try {
      await thread.loaded;
    } catch (problem) {
      throw new RemaxInputError(`--reward ${this.given} ${problem as string}`);
    } finally {
      this.starting = false;
      this.updateRef();
    }
  }

  call(samples: RewardSample[], call?: RewardCall): Promise<number[]> {
    return new Promise<number[]>((resolve, reject) => {
      if (this.closed) return reject(new RewardCallError('the reward module was closed'));
      if (this.fault !== undefined) {
        const fault = this.fault;
        this.fault = undefined;
        return reject(new RewardCallError(fault));
      }
      const p: Pending = { id: this.nextId++, samples, resolve, reject, call };
      this.pending.set(p.id, p);
      if (call) {
        p.onAbort = () => this.stop(p);
        call.signal.addEventListener('abort', p.onAbort);
        if (call.signal.aborted) return this.stop(p);
      }
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of [...this.pending.values()]) this.settle(p, new RewardCallError('the reward module was closed'));
    if (this.thread) await this.end(this.thread);
  }

  /** Starts a thread if calls wait and none runs, and posts the waiting calls once it is ready. */
  private dispatch(): void {
    if (this.closed) return;
    if (this.pending.size > 0 && this.thread === undefined) this.spawn();
    const thread = this.thread;
    if (thread?.ready) {
      for (const p of this.pending.values()) {
        if (p.thread !== undefined) continue;
        p.thread = thread;
        thread.worker.postMessage({ id: p.id, samples: p.samples } satisfies RewardWorkerCall);
      }
    }
    this.updateRef();
  }

  private spawn(): Thread {
    let url: string, tempDir: string | undefined;
    if ('url' in this.source) url = this.source.url;
    else {
      tempDir = mkdtempSync(join(this.tempRoot, 'remax-reward-'));
      const file = join(tempDir, 'reward.mjs');
      writeFileSync(file, this.source.code);
      url = pathToFileURL(file).href;
    }
    const worker = new Worker(this.script, { workerData: { url } satisfies RewardWorkerData });
    let loadSettled!: (problem?: string) => void;
    const loaded = new Promise<void>((resolve, reject) => {
      loadSettled = (problem) => (problem === undefined ? resolve() : reject(problem));
    });
    loaded.catch(() => {}); // a fresh thread's load failure is reported through its calls
    const thread: Thread = {
      worker, ready: false, ending: false, loaded, loadSettled, tempDir,
      loadTimer: setTimeout(() => this.loadFailed(thread, `did not finish loading within ${this.loadTimeoutMs} ms`), this.loadTimeoutMs),
    };
    (thread.loadTimer as { unref?: () => void }).unref?.(); // the thread's own ref keeps the process alive while needed
    this.thread = thread;
    worker.on('message', (message: FromRewardWorker) => this.receive(thread, message));
    worker.on('error', (error) => this.failed(thread, `the reward module's worker thread failed: ${error.message}`));
    worker.on('exit', (code) => this.failed(thread, `the reward module called process.exit(${code})`));
    this.updateRef();
    return thread;
  }

  private receive(thread: Thread, message: FromRewardWorker): void {
    if (thread.ending) return;
    switch (message.kind) {
      case 'ready':
        thread.ready = true;
        this.loadDone(thread);
        thread.loadSettled();
        this.dispatch();
        return;
      case 'no-default':
        return this.loadFailed(thread, `must have a default export (samples) => number[]; it exports: ${message.exports.length ? message.exports.join(', ') : 'nothing'}`);
      case 'load-error':
        return this.loadFailed(thread, `failed to load: ${message.message}`);
      case 'fault':
        return this.failed(thread, message.what === 'exception'
          ? `the reward module threw an uncaught exception (from a timer or a callback): ${message.message}`
          : `the reward module left a promise rejection unhandled: ${message.message}`);
    }
    const p = this.pending.get(message.id);
    if (p === undefined || p.thread !== thread) return; // a call that was stopped
    if (message.kind === 'result') this.settle(p, undefined, message.rewards as number[]); // scoreSamples checks them
    else this.settle(p, message.kind === 'threw' ? new Error(message.message) : new RewardCallError(message.message));
  }

  /** The thread failed (a fault, an error, an exit of its own): its calls fail, or the next call if none is in flight. */
  private failed(thread: Thread, problem: string): void {
    if (thread.ending) return;
    if (!thread.ready) return this.loadFailed(thread, `failed to load: ${problem}`);
    void this.end(thread);
    const calls = [...this.pending.values()].filter((p) => p.thread === thread);
    if (calls.length === 0) this.fault = `between calls, ${problem}; ${RESTARTED}`;
    for (const p of calls) this.settle(p, new RewardCallError(`${problem}; ${RESTARTED}`));
    this.dispatch();
  }

  private loadFailed(thread: Thread, problem: string): void {
    if (thread.ending) return;
    void this.end(thread);
    thread.loadSettled(problem);
    if (this.starting) return; // start() reports it
    // A fresh thread that cannot load the module again (the file changed or went away): the calls waiting fail.
    for (const p of [...this.pending.values()]) {
      if (p.thread === undefined) this.settle(p, new RewardCallError(`--reward ${this.given}, loaded again on a fresh worker thread, ${problem}`));
    }
    this.updateRef();
  }

  /** A call whose signal was aborted (its timeout): ended with its thread if it runs there; the other calls move to a fresh one. */
  private stop(p: Pending): void {
    if (!this.pending.has(p.id)) return;
    const thread = p.thread;
    if (thread !== undefined && thread === this.thread) {
      p.call!.stopped = STOPPED;
      void this.end(thread);
      for (const other of this.pending.values()) if (other.thread === thread) other.thread = undefined;
    }
    this.settle(p, p.call!.signal.reason ?? new Error('stopped'));
    // Later, so that when a whole scoring stops (all its calls aborted at once) no thread is started for nothing.
    queueMicrotask(() => this.dispatch());
  }

  private settle(p: Pending, error: unknown, rewards?: number[]): void {
    this.pending.delete(p.id);
    if (p.onAbort) p.call!.signal.removeEventListener('abort', p.onAbort);
    if (error === undefined) p.resolve(rewards!);
    else p.reject(error);
    this.updateRef();
  }

  private end(thread: Thread): Promise<unknown> {
    thread.ending = true;
    this.loadDone(thread);
    if (this.thread === thread) this.thread = undefined;
    return thread.worker.terminate().catch(() => {});
  }

  /** Clears the load timer and removes the temp bundle (the imported module stays in the thread's memory). */
  private loadDone(thread: Thread): void {
    clearTimeout(thread.loadTimer);
    if (thread.tempDir !== undefined) rmSync(thread.tempDir, { recursive: true, force: true });
    thread.tempDir = undefined;
  }

  /** The thread keeps the process alive only while it loads for start() or calls are in flight. */
  private updateRef(): void {
    const worker = this.thread?.worker;
    if (worker === undefined) return;
    if (this.starting || this.pending.size > 0) worker.ref();
    else worker.unref();
  }
}

type Esbuild = typeof import('esbuild');

// Each bundled file that uses import.meta gets its own url, dirname and filename: variables declared at its top and
// put in place of import.meta.url and the others (esbuild renames them apart per file).
const META = { url: '__remax_import_meta_url', dirname: '__remax_import_meta_dirname', filename: '__remax_import_meta_filename' };
const LOADERS: Record<string, 'ts' | 'tsx' | 'js' | 'jsx'> = { '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.tsx': 'tsx', '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.jsx': 'jsx' };
const importMetaOfEachFile: import('esbuild').Plugin = {
  name: 'remax-import-meta',
  setup(build) {
    build.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, async (args) => {
      const loader = LOADERS[extname(args.path).toLowerCase()];
      if (args.namespace !== 'file' || loader === undefined) return undefined;
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta')) return undefined;
      // On the first line, so that the line numbers of messages stay those of the file; a #! line becomes a comment.
      const declarations = `var ${META.url} = ${JSON.stringify(pathToFileURL(args.path).href)}, ${META.dirname} = ${JSON.stringify(dirname(args.path))}, ` +
        `${META.filename} = ${JSON.stringify(args.path)};`;
      return { contents: declarations + (text.startsWith('#!') ? `//${text.slice(2)}` : text), loader };
    });
  },
};

/** The file bundled to one ES module; a syntax or resolution error is a RemaxInputError with file:line:column. */
async function bundle(path: string): Promise<string> {
  const esbuild = await loadEsbuild();
  if (esbuild === undefined) {
    throw new RemaxInputError(`--reward ${path}: loading a TypeScript reward needs the esbuild package (npm install esbuild), or compile it to .js/.mjs`);
  }
  try {
    const result = await esbuild.build({
      entryPoints: [path], bundle: true, format: 'esm', platform: 'node', write: false, target: 'es2022', logLevel: 'silent',
      plugins: [importMetaOfEachFile],
      define: { 'import.meta.url': META.url, 'import.meta.dirname': META.dirname, 'import.meta.filename': META.filename },
    });
    return result.outputFiles[0]!.text;
  } catch (error) {
    const messages = (error as { errors?: import('esbuild').Message[] }).errors;
    if (!messages?.length) throw error;
    const lines = messages.map((m) => (m.location ? `${m.location.file}:${m.location.line}:${m.location.column + 1}: ${m.text}` : m.text));
    throw new RemaxInputError(`--reward ${path} does not compile: ${lines.join('; ')}`);
  }
}

/** esbuild from remax's own dependencies, else from the current folder's project (a global remax, a local esbuild). */
async function loadEsbuild(): Promise<Esbuild | undefined> {
  try {
    return await import('esbuild');
  } catch {
    try {
      const resolved = createRequire(join(process.cwd(), 'package.json')).resolve('esbuild');
      const module = (await import(pathToFileURL(resolved).href)) as Esbuild & { default?: Esbuild };
      return typeof module.build === 'function' ? module : module.default;
    } catch {
      return undefined;
    }
  }
}
