// The trainer page: reads the form, starts the Web Worker that trains, and draws what it reports (charts with the
// same renderer as `remax plot`, a table of recent completions, a checkpoint download).
import { renderChart } from '../../report/svg-chart';
import type { SampleRow, StepMetrics } from '../../core/rl/trainer';
import type { Estimator } from '../../core/rl/advantages';
import type { TrainRequest, WorkerMessage } from './protocol';

const DEFAULT_REWARD = `// samples: [{ prompt, completion, promptIds, completionIds, meta }], meta = the prompt line's other fields.
// Return one number per sample, or a Promise of them. The completion ends with "</s>" when the model stopped.
(samples) => samples.map((s) => {
  const answer = s.completion.split('</s>')[0].trim().split('\\n')[0].trim();
  return answer === String(s.meta.answer) ? 1 : 0;
})
`;
const MAX_TABLE_ROWS = 12;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement>(id);
const ui = {
  source: $<HTMLSelectElement>('source'), ownFiles: $('own-files'), reward: $<HTMLTextAreaElement>('reward'),
  train: $<HTMLButtonElement>('train'), stop: $<HTMLButtonElement>('stop'), download: $<HTMLButtonElement>('download'),
  status: $('status'), summary: $('summary'), rewardChart: $('reward-chart'), speedChart: $('speed-chart'), samples: $('samples-body'),
  estimator: $<HTMLSelectElement>('estimator'), ppoOptions: $('ppo-options'),
};

ui.reward.value = DEFAULT_REWARD;
ui.source.onchange = () => { ui.ownFiles.hidden = ui.source.value !== 'files'; };
// PPO's fields only for PPO (also when the browser restores the form of an earlier visit).
const showPpoOptions = () => { ui.ppoOptions.hidden = ui.estimator.value !== 'ppo'; };
ui.estimator.onchange = showPpoOptions;
showPpoOptions();
// Helper threads share memory, which only a cross-origin isolated page has; up to one per core.
(document.getElementById('threads') as HTMLInputElement).max = String(globalThis.crossOriginIsolated ? navigator.hardwareConcurrency || 1 : 1);

const history: StepMetrics[] = [];
const evals: { step: number; reward: number }[] = [];
let recent: SampleRow[] = [];
let worker: Worker | undefined;
let totalSteps = 0;

function setStatus(text: string, error = false): void {
  ui.status.textContent = text;
  ui.status.classList.toggle('error', error);
}

function setRunning(running: boolean): void {
  ui.train.disabled = running;
  ui.stop.disabled = !running;
  document.body.dataset.running = String(running);
}

const fileBytes = async (id: string, what: string, required: boolean): Promise<Uint8Array | null> => {
  const file = input(id).files?.[0];
  if (!file) {
    if (required) throw new Error(`choose the ${what} file`);
    return null;
  }
  return new Uint8Array(await file.arrayBuffer());
};

/** Every file picked for the model (a Hugging Face folder's files, or one file). */
const modelFiles = async (): Promise<{ name: string; bytes: Uint8Array }[]> => {
  const files = Array.from(input('model-file').files ?? []);
  if (files.length === 0) throw new Error('choose the model file (or a Hugging Face folder\'s files)');
  return Promise.all(files.map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
};

/** What messages call the picked model: its file, or the folder its files came from. */
const modelName = (): string => {
  const files = Array.from(input('model-file').files!);
  const folder = (files[0] as File & { webkitRelativePath?: string }).webkitRelativePath?.split('/')[0];
  return files.length === 1 ? files[0]!.name : folder || `${files.length} picked files (${files.map((f) => f.name).join(', ')})`;
};

const numberField = (id: string, name: string, integer: boolean, min: number): number => {
  const value = Number(input(id).value);
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new Error(`${name} must be ${integer ? 'an integer' : 'a number'} ≥ ${min} (got "${input(id).value}")`);
  }
  return value;
};

async function start(): Promise<void> {
  let request: TrainRequest;
  try {
    const own = ui.source.value === 'files';
    const settings = {
      steps: numberField('steps', 'steps', true, 1), batchSize: numberField('batch', 'prompts per step', true, 1),
      lr: numberField('lr', 'learning rate', false, 0), klCoef: numberField('kl', 'KL coefficient', false, 0),
      estimator: ui.estimator.value as Estimator, samplesPerPrompt: numberField('samples', 'samples per prompt', true, 1),
      maxNewTokens: numberField('max-new', 'max new tokens', true, 1), seed: numberField('seed', 'seed', true, 0), evalEvery: 10,
      threads: numberField('threads', 'threads', true, 1),
      ppo: { epochs: numberField('ppo-epochs', 'PPO epochs', true, 1), minibatches: numberField('ppo-minibatches', 'PPO minibatches', true, 1),
        clipRange: numberField('ppo-clip', 'PPO clip range', false, 0) },
    };
    const responses = settings.batchSize * settings.samplesPerPrompt;
    if (settings.estimator === 'ppo' && settings.ppo.minibatches > responses) {
      throw new Error(`PPO minibatches must be at most the responses per step (prompts per step × samples per prompt = ${responses}), got ${settings.ppo.minibatches}`);
    }
    request = {
      type: 'start', settings, rewardSource: ui.reward.value,
      model: own ? await modelFiles() : null,
      modelName: own ? modelName() : 'built-in',
      tokenizer: own ? await fileBytes('tokenizer-file', 'tokenizer', false) : null,
      prompts: own ? await fileBytes('prompts-file', 'prompts', true) : null,
    };
  } catch (error) {
    setStatus((error as Error).message, true);
    return;
  }
  history.length = 0;
  evals.length = 0;
  recent = [];
  totalSteps = request.settings.steps;
  draw();
  worker?.terminate();
  worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  worker.onmessage = (event: MessageEvent<WorkerMessage>) => onWorkerMessage(event.data);
  worker.onerror = (event) => {
    setStatus(`the worker failed: ${event.message}`, true);
    setRunning(false);
  };
  setRunning(true);
  setStatus('starting…');
  worker.postMessage(request);
}

function onWorkerMessage(message: WorkerMessage): void {
  switch (message.type) {
    case 'status':
      return setStatus(message.text);
    case 'ready':
      ui.download.disabled = false;
      return setStatus(`training: ${message.prompts} prompts, ${(message.parameters / 1e6).toFixed(2)} M parameters, ${message.build} build, ` +
        `${message.threads} thread${message.threads === 1 ? '' : 's'}`);
    case 'eval':
      evals.push({ step: message.step, reward: message.reward });
      return draw();
    case 'step': {
      history.push(message.metrics);
      recent = [...message.samples, ...recent].slice(0, MAX_TABLE_ROWS);
      const m = message.metrics;
      setStatus(`step ${m.step}/${totalSteps}: reward ${m.reward_mean.toFixed(3)}` +
        (m.greedy_reward_mean === null ? '' : `, greedy ${m.greedy_reward_mean.toFixed(3)}`) +
        `, ${Math.round(m.tokens_per_second)} tokens/s`);
      return draw();
    }
    case 'done':
      setRunning(false);
      return setStatus(`${message.stopped ? 'stopped' : 'done'} at step ${message.step}: download the checkpoint, or press Train to start again`);
    case 'checkpoint':
      // A Hugging Face model downloads as its folder's files, prefixed with the step.
      for (const file of message.files) saveFile(file.bytes, `remax-step${message.step}${file.name.startsWith('.') ? '' : '-'}${file.name}`);
      return;
    case 'error':
      setRunning(false);
      return setStatus(message.message, true);
  }
}

function saveFile(bytes: Uint8Array, name: string): void {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function draw(): void {
  document.body.dataset.steps = String(history.length);
  const xs = history.map((m) => m.step);
  const evalXs = evals.map((e) => e.step);
  const xRange: [number, number] = [0, Math.max(1, totalSteps)];
  ui.rewardChart.innerHTML = renderChart({
    title: 'Reward', xLabel: 'step', yLabel: 'mean reward', xInteger: true, xRange, width: 640, height: 260,
    lines: [
      { label: 'sampled', id: 'reward', color: '#0969da', xs, ys: history.map((m) => m.reward_mean) },
      { label: 'greedy', id: 'greedy', color: '#bf3989', xs, ys: history.map((m) => m.greedy_reward_mean), dash: '5 3' },
      { label: 'held-out (greedy)', id: 'eval', color: '#1a7f37', xs: evalXs, ys: evals.map((e) => e.reward), markers: true, connect: true },
    ],
  });
  ui.speedChart.innerHTML = renderChart({
    title: 'KL to the start and speed', xLabel: 'step', yLabel: 'KL', yRightLabel: 'tokens/s', xInteger: true, xRange, width: 640, height: 220, yZero: true,
    lines: [
      { label: 'KL', id: 'kl', color: '#9a6700', xs, ys: history.map((m) => m.kl) },
      { label: 'tokens/s', id: 'tokens', color: '#6e7781', xs, ys: history.map((m) => m.tokens_per_second), axis: 'right' },
    ],
  });
  drawSummary(history.at(-1));
  ui.samples.replaceChildren(...recent.map(sampleRow));
}

/** The last step's figures; PPO's own after them. Each is a span named by its metric (data-metric), for tests and styling. */
const SUMMARY: [keyof StepMetrics, string, number][] = [
  ['loss', 'loss', 4], ['grad_norm', 'grad norm', 3], ['entropy', 'entropy', 3], ['response_length_mean', 'mean response', 1],
  ['policy_loss', 'policy loss', 4], ['value_loss', 'value loss', 4], ['clip_fraction', 'clip fraction', 3], ['approx_kl', 'approx KL', 5],
  ['explained_variance', 'explained variance', 3],
];

function drawSummary(last: StepMetrics | undefined): void {
  if (!last) return ui.summary.replaceChildren();
  const span = (metric: string, text: string) => {
    const el = document.createElement('span');
    el.dataset.metric = metric;
    el.textContent = text;
    return el;
  };
  const parts = [span('step', `step ${last.step} of ${totalSteps}`)];
  for (const [field, label, digits] of SUMMARY) {
    const value = last[field];
    if (typeof value !== 'number') continue; // PPO's figures on PPO steps only
    const shown = Number.isFinite(value) ? value.toFixed(digits) : '—';
    parts.push(span(field, `${label} ${shown}${field === 'response_length_mean' ? ' tokens' : ''}`));
  }
  if (evals.length) parts.push(span('eval_reward_mean', `held-out reward ${evals.at(-1)!.reward.toFixed(3)}`));
  ui.summary.replaceChildren(...parts.flatMap((part, i) => (i === 0 ? [part] : [' · ', part])));
}

function sampleRow(row: SampleRow): HTMLTableRowElement {
  const tr = document.createElement('tr');
  const cell = (text: string, className: string) => {
    const td = document.createElement('td');
    td.className = className;
    td.textContent = text;
    tr.append(td);
  };
  const reward = (r: number | null | undefined) => (r === null || r === undefined ? '—' : r.toFixed(3));
  cell(String(row.step), 'num');
  cell(row.prompt, 'text');
  cell(row.completion, 'text');
  cell(reward(row.reward), 'num reward');
  cell(row.greedy_completion ?? '', 'text');
  cell(reward(row.greedy_reward), 'num');
  return tr;
}

ui.train.onclick = () => void start();
ui.stop.onclick = () => worker?.postMessage({ type: 'stop' });
ui.download.onclick = () => worker?.postMessage({ type: 'download' });
setRunning(false);
draw();
