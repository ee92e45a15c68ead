/**
 * The training report (`remax plot`): one self-contained HTML page — inline CSS and inline SVG charts, no script, no
 * link, nothing fetched — from the metrics lines a training run writes (one JSON object per step). Pure: text in,
 * text out, so it runs on any runtime and in a browser.
 *
 * Charts: reward of samples (mean ± std) and of greedy responses, with evaluation points; KL; response length; the
 * time split of a step (stacked); loss and gradient norm; learning rate. Several runs overlay their curves (each run
 * one colour) to compare them, e.g. estimators. Missing fields leave out a series or a chart with a note; null, NaN
 * and absent values are gaps in the lines.
 */
import { RemaxInputError } from '../core/errors';
import {
  renderChart, escapeXml, formatValue, isFiniteValue, DECIMATE_ABOVE, type ChartSpec, type LineSeries, type StackLayer,
} from './svg-chart';

export interface MetricsRun {
  /** Legend and table name of the run (e.g. its file path). */
  label: string;
  /** Metrics lines in file order (as parseMetricsJsonl returns them). */
  rows: Record<string, unknown>[];
}

export interface ReportOptions {
  /** Page and header title (default "ReMax training report"). */
  title?: string;
  /** Window (logged steps) of the moving average behind the summary's rewards and the comparison curves. */
  smoothWindow?: number;
}

/** The time split of a step, in stacking order: field, legend name. */
export const TIME_FIELDS: readonly (readonly [string, string])[] = [
  ['time_sampling', 'sampling'],
  ['time_greedy', 'greedy'],
  ['time_reward', 'reward'],
  ['time_reference', 'reference'],
  ['time_backward', 'backward'],
  ['time_optimizer', 'optimizer'],
];

const CHARTED = new Set([
  'step', 'reward_mean', 'reward_std', 'greedy_reward_mean', 'eval_reward_mean', 'kl', 'loss', 'grad_norm', 'lr',
  'response_length_mean', 'skipped', 'tokens_per_second', 'tokens', 'seconds', 'time_step', ...TIME_FIELDS.map(([f]) => f),
]);

const RUN_COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const TIME_COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#e15759', '#76b7b2'];
const OTHER_TIME_COLOR = '#bab0ac';
const COLOR = { samples: '#1f77b4', greedy: '#ff7f0e', eval: '#2ca02c', kl: '#9467bd', length: '#17becf', loss: '#1f77b4', grad: '#d62728', lr: '#8c564b' };

// ---------------------------------------------------------------------------------------------------------------
// Parsing

/**
 * One object per non-blank line. Bare NaN / Infinity / -Infinity (as Python's json module writes them) read as null,
 * a gap. Invalid JSON or a line that is not an object throws a RemaxInputError naming `source` and the line.
 */
export function parseMetricsJsonl(text: string, source: string): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  const lines = text.split('\n');
  const unterminated = !text.endsWith('\n');
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    const where = `${source} line ${i + 1}`;
    const start = JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}…` : line);
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      try {
        value = JSON.parse(withoutBareNonFinite(line));
      } catch {
        const partial = unterminated && i === lines.length - 1
          ? ' (it is the last line and has no newline: if the run is still writing it, try again in a moment)' : '';
        throw new RemaxInputError(`${where} is not valid JSON (${(error as Error).message}): ${start}${partial}; ` +
          `each line must be one JSON object such as {"step": 1, "reward_mean": 0.25, "kl": 0.01}`);
      }
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new RemaxInputError(`${where} is ${Array.isArray(value) ? 'an array' : `a JSON ${value === null ? 'null' : typeof value}`}, ` +
        `not an object: ${start}; each line must be one JSON object such as {"step": 1, "reward_mean": 0.25}`);
    }
    rows.push(value as Record<string, unknown>);
  });
  return rows;
}

/** Replaces NaN, Infinity and -Infinity outside strings by null. */
function withoutBareNonFinite(line: string): string {
  return line.replace(/"(?:[^"\\]|\\.)*"|-?\bInfinity\b|\bNaN\b/g, (m) => (m.startsWith('"') ? m : 'null'));
}

// ---------------------------------------------------------------------------------------------------------------
// Runs: steps, values, summary

interface PreparedRun {
  label: string;
  /** Rows sorted by step, one per step (the last line wins for a repeated step). */
  rows: Record<string, unknown>[];
  xs: number[];
  notes: string[];
  values(field: string): (number | null)[];
  has(field: string): boolean;
  fields: Set<string>;
}

/**
 * Values beyond ±1e300 count as missing, as NaN does: a chart over −1e308 … 1e308 (a corrupt line) spans more than a
 * double holds, and its axis asked for ~1e308 ticks until V8 aborted the process. Sums and mean ± std of values within
 * the bound stay finite.
 */
const MAX_MAGNITUDE = 1e300;
const numeric = (v: unknown): number | null => (typeof v === 'number' && Math.abs(v) <= MAX_MAGNITUDE ? v : null);

function prepareRun(run: MetricsRun): PreparedRun {
  const notes: string[] = [];
  const rows = run.rows;
  const firstWithStep = rows.findIndex((r) => numeric(r.step) !== null);
  const steps: number[] = [];
  let missing = 0;
  rows.forEach((row, i) => {
    const s = numeric(row.step);
    if (s !== null) { steps.push(s); return; }
    missing++;
    if (firstWithStep < 0) steps.push(i + 1);
    else if (i < firstWithStep) steps.push(numeric(rows[firstWithStep]!.step)! - (firstWithStep - i));
    else steps.push(steps[i - 1]! + 1);
  });
  if (missing > 0) {
    notes.push(firstWithStep < 0 ? `no line has a numeric "step" field: the lines are numbered 1, 2, 3, …`
      : `${missing} ${missing === 1 ? 'line has' : 'lines have'} no numeric "step" field; each is placed one step after the line before it`);
  }
  // A resumed run may append steps it already logged: keep the last line of each step.
  const lastOf = new Map<number, number>();
  steps.forEach((s, i) => lastOf.set(s, i));
  const repeated = steps.length - lastOf.size;
  if (repeated > 0) {
    notes.push(`${repeated} ${repeated === 1 ? 'line repeats' : 'lines repeat'} an earlier step (e.g. a run resumed from an earlier ` +
      `checkpoint, appending to the same file); the later line of each step is used`);
  }
  const order = [...lastOf.values()].sort((a, b) => steps[a]! - steps[b]! || a - b);
  const sorted = order.map((i) => rows[i]!);
  const xs = order.map((i) => steps[i]!);
  const fields = new Set<string>();
  for (const r of sorted) for (const k of Object.keys(r)) fields.add(k);
  const cache = new Map<string, (number | null)[]>();
  const values = (field: string) => {
    let v = cache.get(field);
    if (!v) { v = sorted.map((r) => numeric(r[field])); cache.set(field, v); }
    return v;
  };
  return { label: run.label, rows: sorted, xs, notes, values, has: (field) => values(field).some((v) => v !== null), fields };
}

/** Trailing moving average over `window` present values, positioned at the step of each window's last value. */
export function movingAverage(xs: readonly number[], ys: readonly (number | null)[], window: number): { xs: number[]; ys: number[] } {
  const px: number[] = [];
  const py: number[] = [];
  ys.forEach((y, i) => { if (isFiniteValue(y)) { px.push(xs[i]!); py.push(y); } });
  const w = Math.max(1, Math.min(Math.floor(window), py.length));
  const out = { xs: [] as number[], ys: [] as number[] };
  let sum = 0;
  for (let i = 0; i < py.length; i++) {
    sum += py[i]!;
    if (i >= w) sum -= py[i - w]!;
    if (i >= w - 1) { out.xs.push(px[i]!); out.ys.push(sum / w); }
  }
  return out;
}

/** About a tenth of the run, between 1 and 50 logged steps. */
export function defaultSmoothWindow(rowCount: number): number {
  return Math.max(1, Math.min(50, Math.round(rowCount / 10)));
}

export interface RunSummary {
  /** Training steps logged (one per step number; lines with only evaluations do not count), the first and last. */
  steps: number;
  firstStep: number | null;
  lastStep: number | null;
  /** The moving-average window used (at most the number of reward values). */
  window: number;
  /** reward_mean smoothed: the first and last full window, the best window and the step it ends at. */
  rewardFirst: number | null;
  rewardLast: number | null;
  rewardBest: number | null;
  rewardBestStep: number | null;
  /** greedy_reward_mean smoothed over the last window. */
  greedyLast: number | null;
  /** The last and best eval_reward_mean (not smoothed: evaluations are sparse). */
  evalLast: number | null;
  evalBest: number | null;
  /** Sum over steps of time_step, or of the time split (time_sampling, …) on lines without it, or of "seconds". */
  totalSeconds: number | null;
  /** Mean of tokens_per_second, or total tokens / total seconds when only those are logged. */
  meanTokensPerSecond: number | null;
  /** Sum of "skipped" (true counts 1), when logged. */
  skipped: number | null;
}

function summarize(run: PreparedRun, window: number): RunSummary {
  const reward = movingAverage(run.xs, run.values('reward_mean'), window);
  let best: number | null = null;
  let bestStep: number | null = null;
  reward.ys.forEach((y, i) => { if (best === null || y > best) { best = y; bestStep = reward.xs[i]!; } });
  const greedy = movingAverage(run.xs, run.values('greedy_reward_mean'), window);
  const evals = run.values('eval_reward_mean').filter(isFiniteValue);
  let total: number | null = null;
  run.rows.forEach((r) => {
    const split = TIME_FIELDS.map(([f]) => numeric(r[f])).filter(isFiniteValue);
    const seconds = numeric(r.time_step) ?? (split.length > 0 ? split.reduce((a, b) => a + b, 0) : numeric(r.seconds));
    if (seconds !== null) total = (total ?? 0) + seconds;
  });
  const tps = run.values('tokens_per_second').filter(isFiniteValue);
  let meanTps: number | null = tps.length > 0 ? tps.reduce((a, b) => a + b, 0) / tps.length : null;
  if (meanTps === null) {
    let tokens = 0;
    let seconds = 0;
    run.rows.forEach((r) => {
      const t = numeric(r.tokens);
      const s = numeric(r.seconds);
      if (t !== null && s !== null) { tokens += t; seconds += s; }
    });
    if (seconds > 0) meanTps = tokens / seconds;
  }
  const skipped = run.fields.has('skipped')
    ? run.rows.reduce((sum, r) => sum + (r.skipped === true ? 1 : numeric(r.skipped) ?? 0), 0) : null;
  const rewardCount = run.values('reward_mean').filter(isFiniteValue).length;
  // Training steps: lines with a number besides the step and evaluations (not the step-0 evaluation line of a run).
  const trained = run.xs.filter((_, i) => Object.entries(run.rows[i]!).some(([k, v]) => k !== 'step' && !k.startsWith('eval_') && numeric(v) !== null));
  return {
    steps: trained.length,
    firstStep: trained[0] ?? null,
    lastStep: trained[trained.length - 1] ?? null,
    window: Math.max(1, Math.min(window, rewardCount)),
    rewardFirst: reward.ys[0] ?? null,
    rewardLast: reward.ys[reward.ys.length - 1] ?? null,
    rewardBest: best,
    rewardBestStep: bestStep,
    greedyLast: greedy.ys[greedy.ys.length - 1] ?? null,
    evalLast: evals[evals.length - 1] ?? null,
    evalBest: evals.length > 0 ? evals.reduce((a, b) => Math.max(a, b)) : null,
    totalSeconds: total,
    meanTokensPerSecond: meanTps,
    skipped,
  };
}

/** The summary numbers of one run, as the report's table shows them. */
export function summarizeRun(rows: Record<string, unknown>[], window = defaultSmoothWindow(rows.length)): RunSummary {
  return summarize(prepareRun({ label: '', rows }), window);
}

// ---------------------------------------------------------------------------------------------------------------
// Charts

interface Card { html: string }

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function gapNote(run: PreparedRun, field: string, prefix: string): string | null {
  if (!run.has(field)) return null;
  const missing = interiorGaps(run.values(field));
  return missing === 0 ? null
    : `${prefix}${field}: ${missing} of ${plural(run.rows.length, 'logged step')} ${missing === 1 ? 'has' : 'have'} no value (null, NaN or missing) and ${missing === 1 ? 'shows' : 'show'} as a gap`;
}

function card(spec: ChartSpec, notes: string[], extra = ''): Card {
  const list = notes.length > 0 ? `<ul class="notes">${notes.map((n) => `<li>${escapeXml(n)}</li>`).join('')}</ul>` : '';
  return { html: `<section class="card">\n${renderChart(spec)}\n${list}${extra}</section>` };
}

function rewardChart(runs: PreparedRun[], window: number, notShown: string[]): Card | null {
  const fields = ['reward_mean', 'greedy_reward_mean', 'eval_reward_mean'];
  if (!runs.some((r) => fields.some((f) => r.has(f)))) {
    notShown.push('Reward: no line has a numeric reward_mean, greedy_reward_mean or eval_reward_mean');
    return null;
  }
  const lines: LineSeries[] = [];
  const notes: string[] = [];
  const compare = runs.length > 1;
  runs.forEach((run, k) => {
    const prefix = compare ? `${run.label}: ` : '';
    if (!fields.some((f) => run.has(f))) { notes.push(`${prefix}no numeric reward field`); return; }
    const id = (f: string) => (compare ? `${run.label}::${f}` : f);
    const color = RUN_COLORS[k % RUN_COLORS.length]!;
    if (run.has('reward_mean')) {
      const mean = run.values('reward_mean');
      if (!compare) {
        const std = run.has('reward_std') ? run.values('reward_std') : null;
        const band = std
          ? {
            lo: mean.map((m, i) => (m !== null && std[i] !== null ? m - std[i]! : null)),
            hi: mean.map((m, i) => (m !== null && std[i] !== null ? m + std[i]! : null)),
            label: 'samples ± std',
          }
          : undefined;
        if (!std) notes.push('no numeric reward_std: no ± std band');
        lines.push({ label: 'samples (mean)', id: id('reward_mean'), color: COLOR.samples, xs: run.xs, ys: mean, band });
      } else {
        const smooth = movingAverage(run.xs, mean, window);
        lines.push({ label: `${run.label} samples`, id: id('reward_mean'), color, xs: run.xs, ys: mean, width: 1, opacity: 0.28, hideInLegend: true });
        lines.push({ label: `${run.label} samples`, id: id('reward_mean:smoothed'), color, xs: smooth.xs, ys: smooth.ys, width: 2.2 });
      }
    } else {
      notes.push(`${prefix}no numeric reward_mean: the samples' reward is not shown`);
    }
    if (run.has('greedy_reward_mean')) {
      const greedy = run.values('greedy_reward_mean');
      if (!compare) lines.push({ label: 'greedy (mean)', id: id('greedy_reward_mean'), color: COLOR.greedy, xs: run.xs, ys: greedy });
      else {
        const smooth = movingAverage(run.xs, greedy, window);
        lines.push({ label: `${run.label} greedy`, id: id('greedy_reward_mean:smoothed'), color, xs: smooth.xs, ys: smooth.ys, width: 1.6, dash: '6 4' });
      }
    } else {
      notes.push(`${prefix}no numeric greedy_reward_mean (an estimator without a greedy baseline?): the greedy responses' reward is not shown`);
    }
    if (run.has('eval_reward_mean')) {
      lines.push({
        label: compare ? `${run.label} eval` : 'eval (mean)', id: id('eval_reward_mean'), color: compare ? color : COLOR.eval,
        xs: run.xs, ys: run.values('eval_reward_mean'), markers: true, connect: true, width: 1, dash: '2 3',
      });
    }
    for (const f of ['reward_mean', 'greedy_reward_mean']) {
      const gap = gapNote(run, f, prefix);
      if (gap) notes.push(gap);
    }
  });
  if (compare) {
    notes.unshift(`bold: moving average of the samples' mean reward over ${plural(window, 'logged step')}; dashed: the same for greedy ` +
      `responses; faint: the samples' mean reward of each step; circles: evaluations`);
  }
  return card({ title: compare ? 'Reward (moving averages)' : 'Reward', xLabel: 'step', yLabel: 'reward', lines, xInteger: true }, notes);
}

interface FieldLine { field: string; label: string; color: string; axis?: 'left' | 'right'; dash?: string; axisLabel?: string }

function fieldChart(runs: PreparedRun[], title: string, yLabel: string, fieldLines: FieldLine[], notShown: string[],
  options: { yZero?: boolean; yRightLabel?: string } = {}): Card | null {
  const present = fieldLines.filter((f) => runs.some((r) => r.has(f.field)));
  if (present.length === 0) {
    notShown.push(`${title}: no line has a numeric ${fieldLines.map((f) => f.field).join(' or ')}`);
    return null;
  }
  const useRight = options.yRightLabel !== undefined && present.some((f) => f.axis === 'right') && present.some((f) => f.axis !== 'right');
  const compare = runs.length > 1;
  const lines: LineSeries[] = [];
  const notes: string[] = [];
  for (const f of fieldLines) if (!present.includes(f)) notes.push(`no numeric ${f.field}: ${f.label} is not shown`);
  runs.forEach((run, k) => {
    const prefix = compare ? `${run.label}: ` : '';
    for (const f of present) {
      if (!run.has(f.field)) {
        if (compare) notes.push(`${prefix}no numeric ${f.field}`);
        continue;
      }
      lines.push({
        label: compare ? (present.length > 1 ? `${run.label} ${f.label}` : run.label) : f.label,
        id: compare ? `${run.label}::${f.field}` : f.field,
        color: compare ? RUN_COLORS[k % RUN_COLORS.length]! : f.color,
        dash: compare ? f.dash : undefined,
        axis: useRight ? f.axis : 'left',
        xs: run.xs,
        ys: run.values(f.field),
      });
      const gap = gapNote(run, f.field, prefix);
      if (gap) notes.push(gap);
    }
  });
  const leftField = present.find((f) => f.axis !== 'right') ?? present[0]!;
  const yLabelLeft = useRight ? leftField.axisLabel ?? leftField.label : present.length === 1 ? present[0]!.axisLabel ?? yLabel : yLabel;
  return card({
    title, xLabel: 'step', yLabel: yLabelLeft, yRightLabel: useRight ? options.yRightLabel : undefined, lines,
    yZero: options.yZero, xInteger: true,
  }, notes);
}

/** Nulls between the first and the last present value (leading and trailing ones draw nothing). */
function interiorGaps(values: readonly (number | null)[]): number {
  const first = values.findIndex((v) => v !== null);
  if (first < 0) return 0;
  let last = values.length - 1;
  while (values[last] === null) last--;
  let gaps = 0;
  for (let i = first; i <= last; i++) if (values[i] === null) gaps++;
  return gaps;
}

/** A run's stacked time split: the TIME_FIELDS it logs, and "other" (time_step minus the split) when it logs time_step. */
function timeLayersOf(run: PreparedRun): StackLayer[] {
  const layers: StackLayer[] = [];
  TIME_FIELDS.forEach(([field, name], i) => {
    if (run.has(field)) layers.push({ label: name, id: field, color: TIME_COLORS[i]!, ys: run.values(field) });
  });
  if (layers.length > 0 && run.has('time_step')) {
    const ys = run.values('time_step').map((t, i) => (t === null ? null : Math.max(0, t - layers.reduce((sum, l) => sum + (l.ys[i] ?? 0), 0))));
    layers.push({ label: 'other', id: 'time_other', color: OTHER_TIME_COLOR, ys });
  }
  return layers;
}

function timeCards(runs: PreparedRun[], notShown: string[]): Card[] {
  if (!runs.some((r) => TIME_FIELDS.some(([f]) => r.has(f)))) {
    notShown.push(`Time per step: no line has a numeric ${TIME_FIELDS.map(([f]) => f).join(', ')}`);
    return [];
  }
  const compare = runs.length > 1;
  const perRun = runs.map(timeLayersOf);
  const totals = perRun.map((layers, k) => runs[k]!.xs.map((_, i) =>
    (layers.every((l) => l.ys[i] === null) ? null : layers.reduce((sum, l) => sum + (l.ys[i] ?? 0), 0))));
  // In a comparison every run's chart gets the same axes.
  const xRange = [Math.min(...runs.map((r) => r.xs[0]!)), Math.max(...runs.map((r) => r.xs[r.xs.length - 1]!))] as const;
  const yRange = [0, totals.reduce((m, t) => t.reduce<number>((a, v) => Math.max(a, v ?? 0), m), 0)] as const;
  const table = timeTable(runs, perRun, totals);
  const cards: Card[] = [];
  runs.forEach((run, k) => {
    const layers = perRun[k]!;
    const notes: string[] = [];
    if (layers.length === 0) {
      notShown.push(`Time per step of ${run.label}: no time_* fields`);
      return;
    }
    const absent = TIME_FIELDS.filter(([f]) => !run.has(f)).map(([f]) => f);
    if (absent.length > 0) notes.push(`not in the metrics: ${absent.join(', ')}`);
    if (layers.some((l) => l.id === 'time_other')) notes.push('other: time_step minus the split (the rest of the step)');
    const gaps = interiorGaps(totals[k]!);
    const partial = run.xs.filter((_, i) => totals[k]![i] !== null && layers.some((l) => l.ys[i] === null)).length;
    if (gaps > 0) notes.push(`${plural(gaps, 'step')} without any time field ${gaps === 1 ? 'is a gap' : 'are gaps'}`);
    if (partial > 0) notes.push(`${plural(partial, 'step')} ${partial === 1 ? 'lacks' : 'lack'} some of the time fields; they count as 0 s there`);
    const last = k === runs.length - 1;
    cards.push(card({
      title: compare ? `Time per step: ${run.label}` : 'Time per step', xLabel: 'step', yLabel: 'seconds',
      stack: { xs: run.xs, layers }, xInteger: true, xRange: compare ? xRange : undefined, yRange: compare ? yRange : undefined,
    }, notes, last ? table : ''));
  });
  return cards;
}

/** Mean seconds per step of each part of the split, and its share of the step, one column per run. */
function timeTable(runs: PreparedRun[], perRun: StackLayer[][], totals: (number | null)[][]): string {
  const ids: { id: string; label: string }[] = [];
  for (const layers of perRun) for (const l of layers) if (!ids.some((x) => x.id === l.id)) ids.push({ id: l.id!, label: l.label });
  const order = [...TIME_FIELDS.map(([f]) => f), 'time_other'];
  ids.sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
  const columns = perRun.map((layers, k) => {
    const steps = totals[k]!.filter((t) => t !== null).length;
    const total = totals[k]!.reduce<number>((a, v) => a + (v ?? 0), 0);
    const sums = new Map(layers.map((l) => [l.id!, l.ys.reduce<number>((a, v) => a + (isFiniteValue(v) ? v : 0), 0)]));
    return { steps, total, sums };
  });
  const head = `<tr><th>mean time per step</th>${runs.map((r) => `<th>${escapeXml(r.label)}</th>`).join('')}</tr>`;
  const body = ids.map(({ id, label }) => `<tr><td>${escapeXml(label)}</td>${columns.map((c) => {
    const sum = c.sums.get(id);
    if (sum === undefined || c.steps === 0) return '<td>—</td>';
    const share = c.total > 0 ? ` <span class="share">(${(100 * sum / c.total).toFixed(1)}%)</span>` : '';
    return `<td>${formatSeconds(sum / c.steps)}${share}</td>`;
  }).join('')}</tr>`);
  const total = `<tr class="total"><td>total</td>${columns.map((c) => `<td>${c.steps > 0 ? formatSeconds(c.total / c.steps) : '—'}</td>`).join('')}</tr>`;
  return `<table class="time-table">${head}${body.join('')}${total}</table>`;
}

// ---------------------------------------------------------------------------------------------------------------
// Page

/** A short time: 1.23 s, 12.3 ms, 456 µs. */
export function formatSeconds(seconds: number): string {
  if (seconds === 0) return '0 s';
  if (seconds >= 1) return `${Number(seconds.toPrecision(3))} s`;
  if (seconds >= 1e-3) return `${Number((seconds * 1e3).toPrecision(3))} ms`;
  return `${Number((seconds * 1e6).toPrecision(3))} µs`;
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(2) : seconds.toFixed(1)} s`;
  if (seconds < 3600) {
    const m = Math.floor(seconds / 60);
    return `${m} min ${String(Math.round(seconds - 60 * m)).padStart(2, '0')} s`;
  }
  const h = Math.floor(seconds / 3600);
  return `${h} h ${String(Math.round((seconds - 3600 * h) / 60)).padStart(2, '0')} min`;
}

function summaryTable(runs: PreparedRun[], summaries: RunSummary[], window: number): string {
  const any = (f: string) => runs.some((r) => r.has(f));
  const v = (x: number | null) => (x === null ? '—' : formatValue(x));
  const columns: { head: string; cell: (s: RunSummary) => string; when: boolean }[] = [
    { head: 'steps', cell: (s) => (s.steps === 0 ? '0' : `${s.steps} <span class="range">(${formatValue(s.firstStep!)}–${formatValue(s.lastStep!)})</span>`), when: true },
    { head: 'reward first', cell: (s) => v(s.rewardFirst), when: any('reward_mean') },
    { head: 'reward last', cell: (s) => v(s.rewardLast), when: any('reward_mean') },
    { head: 'reward best (step)', cell: (s) => (s.rewardBest === null ? '—' : `${v(s.rewardBest)} <span class="range">(${formatValue(s.rewardBestStep!)})</span>`), when: any('reward_mean') },
    { head: 'greedy last', cell: (s) => v(s.greedyLast), when: any('greedy_reward_mean') },
    { head: 'eval last', cell: (s) => v(s.evalLast), when: any('eval_reward_mean') },
    { head: 'eval best', cell: (s) => v(s.evalBest), when: any('eval_reward_mean') },
    { head: 'total time', cell: (s) => (s.totalSeconds === null ? '—' : formatDuration(s.totalSeconds)), when: true },
    { head: 'mean tokens/s', cell: (s) => (s.meanTokensPerSecond === null ? '—' : formatValue(Math.round(s.meanTokensPerSecond * 10) / 10)), when: true },
    { head: 'skipped', cell: (s) => v(s.skipped), when: runs.some((r) => r.fields.has('skipped')) },
  ];
  const shown = columns.filter((c) => c.when);
  const head = `<tr><th>run</th>${shown.map((c) => `<th>${c.head}</th>`).join('')}</tr>`;
  const body = summaries.map((s, i) => `<tr><td class="run"><span class="swatch" style="background:${runs.length > 1 ? RUN_COLORS[i % RUN_COLORS.length] : COLOR.samples}"></span>` +
    `${escapeXml(runs[i]!.label)}</td>${shown.map((c) => `<td>${c.cell(s)}</td>`).join('')}</tr>`);
  const caption = any('reward_mean') || any('greedy_reward_mean')
    ? `<p class="caption">Rewards: the samples' mean reward (greedy: the greedy response's), averaged over windows of ` +
      `${plural(window, 'logged step')} — the first window, the last one and the best one (ending at the step shown). ` +
      `Total time: the sum of the step times (time_step, or the time split).</p>`
    : '';
  return `<div class="table-wrap"><table class="summary">${head}${body.join('')}</table></div>${caption}`;
}

const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f6f8; color: #222; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
.page { max-width: 1400px; margin: 0 auto; padding: 12px 20px 40px; }
h1 { font-size: 22px; margin: 12px 0 2px; }
.sub { color: #666; margin: 0 0 14px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; background: #fff; font-variant-numeric: tabular-nums; }
table.summary { border: 1px solid #e1e4e8; border-radius: 6px; }
th, td { padding: 5px 12px; border-bottom: 1px solid #eceef1; text-align: right; white-space: nowrap; }
th { font-weight: 600; color: #444; background: #fafbfc; }
th:first-child, td:first-child { text-align: left; }
td.run { max-width: 420px; overflow: hidden; text-overflow: ellipsis; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 7px; vertical-align: -1px; }
.range, .share { color: #888; }
.caption { color: #666; font-size: 12.5px; margin: 6px 0 0; }
.not-shown { background: #fff8e6; border: 1px solid #f0dca8; border-radius: 6px; padding: 8px 14px; margin: 14px 0 0; font-size: 13px; }
.not-shown ul, .run-notes ul { margin: 4px 0 0; padding-left: 18px; }
.run-notes { font-size: 13px; color: #555; margin: 12px 0 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 600px), 1fr)); gap: 16px; margin-top: 18px; }
.card { background: #fff; border: 1px solid #e1e4e8; border-radius: 8px; padding: 6px 6px 8px; min-width: 0; }
svg.chart { display: block; width: 100%; height: auto; }
ul.notes { color: #666; font-size: 12.5px; margin: 2px 10px 0; padding-left: 16px; }
table.time-table { margin: 8px 10px 2px; font-size: 12.5px; }
table.time-table th, table.time-table td { padding: 3px 10px; }
table.time-table tr.total td { font-weight: 600; border-bottom: none; }
@media print { body { background: #fff; } .card { break-inside: avoid; } }
`;

/** The report as one HTML document (UTF-8, self-contained). */
export function renderReport(runs: MetricsRun[], options: ReportOptions = {}): string {
  const title = options.title ?? 'ReMax training report';
  const prepared = runs.map(prepareRun);
  const longest = prepared.reduce((m, r) => Math.max(m, r.rows.length), 0);
  const window = Math.max(1, Math.floor(options.smoothWindow ?? defaultSmoothWindow(longest)));
  const summaries = prepared.map((r) => summarize(r, window));
  const withRows = prepared.filter((r) => r.rows.length > 0);
  const notShown: string[] = [];
  const cards: Card[] = [];
  if (withRows.length > 0) {
    const push = (c: Card | null) => { if (c) cards.push(c); };
    push(rewardChart(withRows, window, notShown));
    push(fieldChart(withRows, 'KL divergence to the reference', 'KL', [{ field: 'kl', label: 'KL', color: COLOR.kl }], notShown));
    push(fieldChart(withRows, 'Response length', 'tokens', [{ field: 'response_length_mean', label: 'mean response length', color: COLOR.length }], notShown));
    cards.push(...timeCards(withRows, notShown));
    push(fieldChart(withRows, 'Loss and gradient norm', 'loss, gradient norm', [
      { field: 'loss', label: 'loss', color: COLOR.loss, axisLabel: 'loss' },
      { field: 'grad_norm', label: 'gradient norm', color: COLOR.grad, axis: 'right', dash: '6 4', axisLabel: 'gradient norm' },
    ], notShown, { yRightLabel: 'gradient norm' }));
    push(fieldChart(withRows, 'Learning rate', 'learning rate', [{ field: 'lr', label: 'learning rate', color: COLOR.lr }], notShown, { yZero: true }));
  }
  const runNotes: string[] = [];
  prepared.forEach((r) => {
    const prefix = runs.length > 1 ? `${r.label}: ` : '';
    if (r.rows.length === 0) runNotes.push(`${prefix}no metrics lines`);
    if (r.rows.length > DECIMATE_ABOVE) {
      runNotes.push(`${prefix}${r.rows.length} steps: each pixel column of a chart draws its first, last, lowest and highest value, ` +
        `which traces the same envelope (spikes and gaps included) as drawing every step`);
    }
    for (const n of r.notes) runNotes.push(prefix + n);
    const other = [...r.fields].filter((f) => !CHARTED.has(f) && !f.endsWith('_std'));
    if (other.length > 0) runNotes.push(`${prefix}other fields, not charted: ${other.join(', ')}`);
  });
  const sub = runs.length === 0 ? 'no runs'
    : runs.length === 1 ? `${escapeXml(runs[0]!.label)} · ${plural(summaries[0]!.steps, 'training step')}`
      : `${runs.length} runs compared: ${prepared.map((r, i) => `${escapeXml(r.label)} (${plural(summaries[i]!.steps, 'step')})`).join(', ')}`;
  const list = (items: string[]) => `<ul>${items.map((n) => `<li>${escapeXml(n)}</li>`).join('')}</ul>`;
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="generator" content="remax plot">',
    `<title>${escapeXml(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    '<div class="page">',
    `<header><h1>${escapeXml(title)}</h1><p class="sub">${sub}</p></header>`,
    runs.length > 0 ? summaryTable(prepared, summaries, window) : '',
    notShown.length > 0 ? `<div class="not-shown"><strong>Not shown</strong>${list(notShown)}</div>` : '',
    runNotes.length > 0 ? `<div class="run-notes">${list(runNotes)}</div>` : '',
    `<main class="charts">\n${cards.map((c) => c.html).join('\n')}\n</main>`,
    '</div>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
