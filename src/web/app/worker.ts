// The trainer page's Web Worker: it owns the engine and runs the ReMax loop, so the page stays responsive. It posts
// every step's metrics and a few completions; between steps (the reward call is async) it takes Stop and Download.
// PPO's critic is the model with a fresh scalar head, as `remax train --estimator ppo` starts it by default; it shares
// the helper workers (each hosts a share of the policy and of the critic).
import type { RemaxEngine } from '../../core/engine';
import { RemaxInputError } from '../../core/errors';
import { loadModel, loadTokenizerFile } from '../../core/formats/load';
import { memoryFileSet } from '../../core/formats/file-set';
import { formatOf, modelFiles } from '../../core/formats/save';
import { createCritic, setUpRun } from '../../core/rl/run-setup';
import { ReMaxTrainer, DEFAULT_REMAX_OPTIONS } from '../../core/rl/trainer';
import { DEFAULT_PPO } from '../../core/rl/ppo-update';
import { scoreSamples } from '../../core/rewards';
import { fetchBytes } from '../index';
import { compileReward } from './compile-reward';
import { startWebHelpers } from '../helper-workers';
import type { PageMessage, TrainRequest, WorkerMessage } from './protocol';

/** The built-in default task, copied beside the page at build time (the same files as `remax train` with no flags). */
const DEFAULT_TASK = new URL('./default-task/', import.meta.url);
const REWARD_TIMEOUT_MS = 10_000;
/** The helper engines' worker script, bundled beside this one. */
const HELPER_SCRIPT = new URL('./helper.js', import.meta.url);

const post = (message: WorkerMessage, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(message, transfer);

let policy: RemaxEngine | undefined;
let trainer: ReMaxTrainer | undefined;
let running = false;
let stopRequested = false;

self.onmessage = (event: MessageEvent<PageMessage>) => {
  const message = event.data;
  if (message.type === 'start') {
    if (running) return post({ type: 'error', message: 'training is already running: stop it first' });
    running = true;
    stopRequested = false;
    train(message)
      .catch((error) => post({ type: 'error', message: error instanceof RemaxInputError ? error.message : String((error as Error)?.stack ?? error) }))
      .finally(() => {
        running = false;
        trainer?.close(); // the helper workers; the policy stays for Download
      });
  } else if (message.type === 'stop') {
    stopRequested = true;
  } else if (message.type === 'download') {
    if (!policy) return post({ type: 'error', message: 'no model yet: press Train first' });
    const model = policy.exportModel();
    const format = formatOf(model);
    const files = Object.entries(modelFiles(model, { format })).map(([name, bytes]) => ({ name: name || (format === 'gguf' ? '.gguf' : '.bin'), bytes }));
    post({ type: 'checkpoint', files, step: trainer?.step ?? 0 }, files.map((f) => f.bytes.buffer as ArrayBuffer));
  }
};

const task = (file: string) => fetchBytes(new URL(file, DEFAULT_TASK), `built-in task's ${file}`);

async function train(request: TrainRequest): Promise<void> {
  const s = request.settings;
  post({ type: 'status', text: 'loading the model…' });
  const builtIn = request.model === null;
  const [modelFiles, tokenizerBytes, promptBytes, evalBytes] = await Promise.all([
    request.model ?? task('model.bin').then((bytes) => [{ name: 'model.bin', bytes }]),
    request.tokenizer ?? (builtIn ? task('tokenizer.bin') : undefined),
    request.prompts ?? task('train.jsonl'),
    builtIn ? task('eval.jsonl') : undefined,
  ]);
  const modelName = builtIn ? 'the built-in model' : request.modelName;
  const reward = compileReward(request.rewardSource);
  const model = await loadModel(memoryFileSet(modelName, Object.fromEntries(modelFiles.map((f) => [f.name, f.bytes]))));
  const run = await setUpRun({
    policy: { model, source: modelName },
    tokenizer: tokenizerBytes && loadTokenizerFile(tokenizerBytes, request.tokenizer ? 'the tokenizer file' : 'the built-in tokenizer'),
    prompts: { bytes: promptBytes, source: request.prompts ? 'the prompts file' : 'the built-in prompts' },
    evalPrompts: evalBytes ? { bytes: evalBytes, source: 'eval.jsonl', limit: 100 } : undefined,
  }, s);
  const { reference, prompts, evalPrompts } = run;
  policy = run.policy;
  const scorer = (groups: Parameters<typeof scoreSamples>[1]) => scoreSamples(reward, groups, { timeoutMs: REWARD_TIMEOUT_MS, onError: 'abort', concurrency: 8 });
  const ppo = s.estimator === 'ppo';
  const critic = ppo ? { engine: await createCritic({ model, source: `${modelName} with a fresh scalar head` }, s.seed, s.batchSize * s.samplesPerPrompt) } : undefined;
  trainer?.close();
  trainer = new ReMaxTrainer(policy, reference, prompts, scorer, {
    ...DEFAULT_REMAX_OPTIONS,
    estimator: s.estimator, samplesPerPrompt: s.samplesPerPrompt, batchSize: s.batchSize, steps: s.steps, seed: s.seed,
    klCoef: s.klCoef, maxNewTokens: run.maxNewTokens,
    schedule: { kind: 'constant', lr: s.lr, warmupSteps: 0, totalSteps: s.steps },
    ...(ppo ? { ppo: { ...DEFAULT_PPO, ...s.ppo, criticLr: s.lr } } : {}),
  }, undefined, startWebHelpers(s.threads, HELPER_SCRIPT), critic);
  const parameters = Object.values(policy.readWeights()).reduce((n, tensor) => n + tensor.length, 0);
  post({ type: 'ready', build: policy.build, prompts: prompts.length, evalPrompts: evalPrompts.length, parameters, steps: s.steps, threads: s.threads });

  const evaluate = async () => {
    if (evalPrompts.length > 0 && s.evalEvery > 0) post({ type: 'eval', step: trainer!.step, reward: await trainer!.evaluate(evalPrompts) });
  };
  await evaluate();
  while (!trainer.done && !stopRequested) {
    const metrics = await trainer.runStep();
    post({ type: 'step', metrics, samples: trainer.lastSamples.slice(0, 8) });
    if (s.evalEvery > 0 && (metrics.step % s.evalEvery === 0 || trainer.done)) await evaluate();
    // Let Stop and Download in even when the reward is synchronous.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  post({ type: 'done', step: trainer.step, stopped: stopRequested });
}
