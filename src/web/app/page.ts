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
};

ui.reward.value = DEFAULT_REWARD;
ui.source.onchange = () => { ui.ownFiles.hidden = ui.source.value !== 'files'; };
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
      estimator: $<HTMLSelectElement>('estimator').value as Estimator, samplesPerPrompt: numberField('samples', 'samples per prompt', true, 1),
      maxNewTokens: numberField('max-new', 'max new tokens', true, 1), seed: numberField('seed', 'seed', true, 0), evalEvery: 10,
      threads: numberField('threads', 'threads', true, 1),
    };
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
  const last = history.at(-1);
  ui.summary.textContent = last
    ? `step ${last.step} of ${totalSteps} · loss ${last.loss.toFixed(4)} · grad norm ${last.grad_norm.toFixed(3)} · mean response ${last.response_length_mean.toFixed(1)} tokens` +
      (evals.length ? ` · held-out reward ${evals.at(-1)!.reward.toFixed(3)}` : '')
    : '';
  ui.samples.replaceChildren(...recent.map(sampleRow));
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
