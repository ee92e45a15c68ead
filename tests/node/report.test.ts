// remax plot: the metrics parser, the HTML report (charts, summary, missing data) and the command itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RemaxInputError } from '../../src/core/errors';
import { parseMetricsJsonl, renderReport, summarizeRun, movingAverage, TIME_FIELDS } from '../../src/report/report';
import { niceTicks, niceAxis, formatTick, formatTicks, renderChart, DECIMATE_ABOVE } from '../../src/report/svg-chart';
import { plotCommand, splitPositionals, plotFlags } from '../../src/node/commands/plot';

/** A ReMax-like run: rising noisy reward, NaN rewards at steps 50, 51 and 120, a NaN KL at 77, step 100 logs only its
 *  reward, an evaluation every 10th step. */
function syntheticRows(n = 200, seed = 1): Record<string, unknown>[] {
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const rows: Record<string, unknown>[] = [];
  for (let step = 1; step <= n; step++) {
    const trend = 0.2 + 0.5 * (1 - Math.exp(-step / 60));
    if (step === 100) { rows.push({ step, reward_mean: trend }); continue; }
    const row: Record<string, unknown> = {
      step,
      reward_mean: [50, 51, 120].includes(step) ? NaN : trend + 0.05 * (rand() - 0.5),
      reward_std: 0.1 + 0.02 * rand(),
      greedy_reward_mean: trend + 0.03 + 0.05 * (rand() - 0.5),
      greedy_reward_std: 0.05,
      advantage_mean: 0.01 * (rand() - 0.5),
      advantage_std: 0.1,
      kl: step === 77 ? NaN : 0.002 * step * (1 + 0.2 * rand()),
      loss: -0.05 + 0.02 * rand(),
      grad_norm: 0.5 + rand(),
      lr: step <= 20 ? 1e-4 * step / 20 : 1e-4,
      response_length_mean: 40 + step / 10 + 3 * rand(),
      skipped: step % 37 === 0 ? 1 : 0,
      tokens_per_second: 1000 + 100 * rand(),
      time_sampling: 0.8 + 0.1 * rand(),
      time_greedy: 0.3,
      time_reward: 0.05,
      time_reference: 0.2,
      time_backward: 1.1 + 0.1 * rand(),
      time_optimizer: 0.1,
      estimator: 'remax',
    };
    if (step % 10 === 0) row.eval_reward_mean = trend + 0.02;
    rows.push(row);
  }
  return rows;
}

const toJsonl = (rows: Record<string, unknown>[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const svgs = (html: string) => html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
const svgTitle = (svg: string) => /aria-label="([^"]*)"/.exec(svg)![1]!;

/** Points drawn for a series: polyline vertices plus lone-point circles, and the polylines themselves. */
function drawn(html: string, id: string) {
  const esc = id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const polylines = [...html.matchAll(new RegExp(`<polyline data-series="${esc}" points="([^"]*)"`, 'g'))].map((m) => m[1]!.split(' ').map((p) => p.split(',').map(Number)));
  const lone = [...html.matchAll(new RegExp(`<circle data-series="${esc}" `, 'g'))].length;
  const markers = [...html.matchAll(new RegExp(`<circle data-marker="${esc}" `, 'g'))].length;
  return { polylines, points: polylines.reduce((n, p) => n + p.length, 0) + lone, lone, markers };
}

test('parseMetricsJsonl: one object per line, blank lines skipped, Python NaN/Infinity read as null', () => {
  const text = '{"step": 1, "kl": 0.5}\n\n{"step": 2, "kl": NaN, "note": "NaN stays in strings", "x": -Infinity}\r\n{"step": 3}';
  const rows = parseMetricsJsonl(text, 'run/metrics.jsonl');
  assert.equal(rows.length, 3);
  assert.deepEqual(rows[1], { step: 2, kl: null, note: 'NaN stays in strings', x: null });
  assert.deepEqual(parseMetricsJsonl('', 'empty.jsonl'), []);
});

test('parseMetricsJsonl: invalid JSON or a non-object line is a RemaxInputError naming the file and line', () => {
  const lines = toJsonl(syntheticRows(10)).split('\n');
  lines[6] = '{"step": 7, "reward_mean": 0.3,,}';
  assert.throws(() => parseMetricsJsonl(lines.join('\n'), 'a/metrics.jsonl'), (e: unknown) =>
    e instanceof RemaxInputError && /a\/metrics\.jsonl line 7 is not valid JSON/.test(e.message) && e.message.includes('0.3,,}'));
  assert.throws(() => parseMetricsJsonl('{"step": 1}\n[1, 2]\n', 'm.jsonl'), (e: unknown) =>
    e instanceof RemaxInputError && /m\.jsonl line 2 is an array, not an object/.test(e.message));
  assert.throws(() => parseMetricsJsonl('{"step": 1}\n\n42\n', 'm.jsonl'), /m\.jsonl line 3 is a JSON number/);
  // A half-written last line (a run still logging) says so.
  assert.throws(() => parseMetricsJsonl('{"step": 1}\n{"step": 2, "rew', 'live.jsonl'), /live\.jsonl line 2 .*still writing it/);
});

test('svg-chart: nice ticks, tick labels, a single point and an empty chart', () => {
  assert.deepEqual(niceTicks(1, 200, 6, true).ticks, [50, 100, 150, 200]);
  assert.deepEqual(niceTicks(0, 1, 5).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0, 3, 6, true).ticks, [0, 1, 2, 3], 'integer axes have no fractional ticks');
  assert.equal(formatTick(0.30000000000000004, 0.1), '0.3');
  assert.equal(formatTick(2e-4, 1e-4), '2e-4');
  assert.equal(formatTick(1.5e-4, 5e-5), '1.5e-4');
  assert.equal(formatTick(1500, 500), '1500');
  assert.deepEqual(formatTicks([0, 0.0005, 0.001, 0.0015], 0.0005), ['0', '0.0005', '0.0010', '0.0015'], 'one notation per axis');
  assert.deepEqual(formatTicks([0, 2e-5, 4e-5, 6e-5, 8e-5, 1e-4], 2e-5), ['0', '2e-5', '4e-5', '6e-5', '8e-5', '1e-4']);
  const axis = niceAxis(-0.21, 1.12);
  assert.deepEqual(axis.extent, [axis.ticks[0], axis.ticks[axis.ticks.length - 1]], 'the value axis ends on ticks');
  assert.deepEqual(axis.ticks, [-0.4, -0.2, 0, 0.2, 0.4, 0.6, 0.8, 1, 1.2]);
  const one = renderChart({ title: 'one', xLabel: 'step', yLabel: 'y', lines: [{ label: 's', color: '#000', xs: [5], ys: [0.25] }], xInteger: true });
  assert.equal(drawn(one, 's').lone, 1, 'a single point is a circle');
  assert.ok(!/NaN|Infinity/.test(one));
  assert.match(one, />4<\/text>[\s\S]*>5<\/text>[\s\S]*>6<\/text>/, 'the x axis is padded around the single step');
  const empty = renderChart({ title: 'none', xLabel: 'step', yLabel: 'y', lines: [{ label: 's', color: '#000', xs: [1, 2], ys: [null, NaN] }] });
  assert.match(empty, /no data/);
  assert.ok(!/NaN|Infinity/.test(empty.replace(/ys/g, '')));
});

test('svg-chart: a long series is thinned to its per-pixel envelope, keeping spikes and gaps', () => {
  const n = 20000;
  const xs = Array.from({ length: n }, (_, i) => i + 1);
  const ys: (number | null)[] = xs.map((x) => Math.sin(x / 500) + 0.01 * ((x * 7919) % 13));
  ys[12345] = 5; // a spike
  ys[15000] = null; // a gap
  const svg = renderChart({ title: 'long', xLabel: 'step', yLabel: 'y', lines: [{ label: 's', color: '#000', xs, ys }], xInteger: true });
  const d = drawn(svg, 's');
  assert.ok(n > DECIMATE_ABOVE);
  assert.equal(d.polylines.length, 2, 'the gap stays');
  assert.ok(d.points < 4 * 640 + 10, `${d.points} points drawn`);
  const full = renderChart({ title: 'long', xLabel: 'step', yLabel: 'y', lines: [{ label: 's', color: '#000', xs: xs.slice(0, 2), ys: [5, -1] }], xInteger: true });
  const topY = (svgText: string) => Math.min(...drawn(svgText, 's').polylines.flat().map((p) => p[1]!));
  assert.equal(topY(svg), topY(full), 'the spike is drawn at full height');
});

test('renderReport: a self-contained page with the six charts, polylines that match the data and gaps at NaN', () => {
  const rows = parseMetricsJsonl(toJsonl(syntheticRows()), 'metrics.jsonl');
  const html = renderReport([{ label: 'runs/remax/metrics.jsonl', rows }]);
  assert.ok(html.startsWith('<!doctype html>\n<html lang="en">'));
  assert.ok(html.trimEnd().endsWith('</html>'));
  assert.equal((html.match(/<svg /g) ?? []).length, 6);
  assert.equal((html.match(/<\/svg>/g) ?? []).length, 6);
  assert.deepEqual(svgs(html).map(svgTitle), ['Reward', 'KL divergence to the reference', 'Response length', 'Time per step', 'Loss and gradient norm', 'Learning rate']);
  assert.ok(!/https?:\/\//.test(html), 'no URL at all');
  assert.ok(!/<script|<link|<img|<iframe|@import|url\(|\ssrc=/i.test(html), 'nothing loaded from elsewhere');
  assert.ok(!/="[^"]*(NaN|Infinity|undefined)/.test(html), 'no NaN or undefined in any attribute');

  // Every x of every chart lies inside its viewBox; x increases along each polyline.
  for (const svg of svgs(html)) {
    const [, , w, h] = /viewBox="([^"]*)"/.exec(svg)![1]!.split(' ').map(Number);
    for (const m of svg.matchAll(/points="([^"]*)"/g)) {
      for (const [x, y] of m[1]!.split(' ').map((p) => p.split(',').map(Number))) {
        assert.ok(x! >= 0 && x! <= w! && y! >= 0 && y! <= h!, `${svgTitle(svg)}: ${x},${y} outside 0 0 ${w} ${h}`);
      }
    }
  }
  const count = (field: string) => rows.filter((r) => finite(r[field])).length;
  const reward = drawn(html, 'reward_mean');
  assert.equal(reward.points, count('reward_mean'));
  assert.equal(reward.points, 197);
  assert.equal(reward.polylines.length, 3, 'NaN at steps 50–51 and 120 split the line in three');
  for (const line of reward.polylines) for (let i = 1; i < line.length; i++) assert.ok(line[i]![0]! > line[i - 1]![0]!);
  assert.equal(drawn(html, 'greedy_reward_mean').points, count('greedy_reward_mean'));
  assert.equal(drawn(html, 'kl').points, count('kl'));
  assert.equal(drawn(html, 'kl').points, 198, 'step 77 (NaN) and step 100 (no kl) are gaps');
  assert.equal(drawn(html, 'kl').polylines.length, 3);
  for (const f of ['response_length_mean', 'loss', 'grad_norm', 'lr']) assert.equal(drawn(html, f).points, count(f), f);
  const evals = drawn(html, 'eval_reward_mean');
  assert.equal(evals.markers, 19, 'every 10th step but step 100, which lacks the field');
  assert.equal(evals.points, 19, 'the evaluations are joined across the steps without one');
  assert.equal((html.match(/<polygon data-band="reward_mean"/g) ?? []).length, 4, 'the ±std band breaks with the line and at step 100 (no std)');
  for (const [field] of TIME_FIELDS) assert.ok(html.includes(`data-layer="${field}"`), field);
  assert.match(html, /samples ± std/);
  assert.match(html, /reward_mean: 3 of 200 logged steps have no value/);
  assert.match(html, /kl: 2 of 200 logged steps have no value/);
  assert.match(html, /other fields, not charted: advantage_mean, estimator/);
  assert.match(html, /time-table[\s\S]*<tr><td>backward<\/td><td>1\.15 s <span class="share">\(43\.\d%\)<\/span><\/td>/);
});

test('renderReport: the summary table holds the smoothed first/last/best reward, the total time and the mean tokens/s', () => {
  const rows = syntheticRows();
  const window = 20;
  const s = summarizeRun(rows, window);
  const rewards = rows.filter((r) => finite(r.reward_mean));
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  const values = rewards.map((r) => r.reward_mean as number);
  const windows = values.slice(window - 1).map((_, i) => mean(values.slice(i, i + window)));
  const bestIndex = windows.indexOf(Math.max(...windows));
  assert.equal(s.steps, 200);
  assert.equal(s.window, 20);
  assert.ok(Math.abs(s.rewardFirst! - windows[0]!) < 1e-12);
  assert.ok(Math.abs(s.rewardLast! - windows[windows.length - 1]!) < 1e-12);
  assert.ok(Math.abs(s.rewardBest! - windows[bestIndex]!) < 1e-12);
  assert.equal(s.rewardBestStep, rewards[bestIndex + window - 1]!.step);
  const greedy = rows.filter((r) => finite(r.greedy_reward_mean)).map((r) => r.greedy_reward_mean as number);
  assert.ok(Math.abs(s.greedyLast! - mean(greedy.slice(-window))) < 1e-12);
  const evals = rows.filter((r) => finite(r.eval_reward_mean)).map((r) => r.eval_reward_mean as number);
  assert.equal(s.evalLast, evals[evals.length - 1]);
  assert.equal(s.evalBest, Math.max(...evals));
  const total = rows.reduce((sum, r) => sum + TIME_FIELDS.reduce((t, [f]) => t + (finite(r[f]) ? r[f] as number : 0), 0), 0);
  assert.ok(Math.abs(s.totalSeconds! - total) < 1e-9);
  const tps = rows.filter((r) => finite(r.tokens_per_second)).map((r) => r.tokens_per_second as number);
  assert.ok(Math.abs(s.meanTokensPerSecond! - mean(tps)) < 1e-9);
  assert.equal(s.skipped, 5, 'steps 37, 74, 111, 148, 185');

  // The page shows the same numbers (200 steps → default window 20).
  const html = renderReport([{ label: 'r', rows }]);
  const table = /<table class="summary">([\s\S]*?)<\/table>/.exec(html)![1]!;
  const fmt = (v: number) => String(Number(v.toPrecision(4)));
  assert.match(table, /<th>reward first<\/th><th>reward last<\/th><th>reward best \(step\)<\/th>/);
  assert.ok(table.includes(`<td>${fmt(s.rewardFirst!)}</td><td>${fmt(s.rewardLast!)}</td><td>${fmt(s.rewardBest!)} <span class="range">(${s.rewardBestStep})</span>`));
  assert.ok(table.includes(`200 <span class="range">(1–200)</span>`));
  const minutes = Math.floor(total / 60);
  assert.ok(table.includes(`<td>${minutes} min ${String(Math.round(total - 60 * minutes)).padStart(2, '0')} s</td>`), `total time ${total}`);
  assert.ok(table.includes(`<td>${fmt(Math.round(mean(tps) * 10) / 10)}</td>`));
  assert.match(html, /averaged over windows of 20 logged steps/);
  assert.ok(movingAverage([1, 2, 3], [1, null, 3], 2).ys[0] === 2, 'the moving average skips gaps');
});

test('renderReport: missing fields drop a series or a chart with a note; one step still draws', () => {
  // sft-style metrics: no rewards, no KL, no time split.
  const sft = [1, 2, 3, 4].map((step) => ({ step, loss: 3 - step / 10, lr: 1e-3, grad_norm: 1 / step, tokens: 512, seconds: 0.5 }));
  const html = renderReport([{ label: 'sft', rows: sft }]);
  assert.deepEqual(svgs(html).map(svgTitle), ['Loss and gradient norm', 'Learning rate']);
  assert.match(html, /<strong>Not shown<\/strong>/);
  for (const what of ['Reward: no line has a numeric reward_mean', 'KL divergence to the reference: no line has a numeric kl',
    'Response length: no line has a numeric response_length_mean', 'Time per step: no line has a numeric time_sampling']) {
    assert.ok(html.includes(what), what);
  }
  const s = summarizeRun(sft);
  assert.equal(s.totalSeconds, 2, 'seconds stands in for the time split');
  assert.equal(s.meanTokensPerSecond, 1024, 'tokens / seconds stands in for tokens_per_second');
  assert.equal(s.rewardFirst, null);
  assert.match(html, /<td>2\.00 s<\/td><td>1024<\/td>/);

  // No reward_std: no band; no greedy: a note; a field that is null on every line counts as absent.
  const noStd = syntheticRows(30).map(({ reward_std: _a, greedy_reward_mean: _b, ...rest }) => ({ ...rest, kl: null }));
  const html2 = renderReport([{ label: 'x', rows: noStd }]);
  assert.ok(!html2.includes('data-band='));
  assert.match(html2, /no numeric reward_std: no ± std band/);
  assert.match(html2, /no numeric greedy_reward_mean/);
  assert.ok(html2.includes('KL divergence to the reference: no line has a numeric kl'));
  assert.equal(svgs(html2).length, 5);

  // A single step: every chart draws its point, no NaN anywhere.
  const single = renderReport([{ label: 'one', rows: [syntheticRows(1)[0]!] }]);
  assert.equal(svgs(single).length, 6);
  assert.equal(drawn(single, 'reward_mean').lone, 1);
  assert.equal(drawn(single, 'kl').lone, 1);
  assert.equal((single.match(/<rect data-layer=/g) ?? []).length, TIME_FIELDS.length, 'one stacked bar per time field');
  assert.ok(!/NaN|undefined|Infinity/.test(single));

  // Steps missing or repeated (a resumed run appending to the same file).
  const resumed = [{ step: 1, kl: 1 }, { step: 2, kl: 2 }, { step: 3, kl: 3 }, { step: 2, kl: 20 }, { step: 3, kl: 30 }, { kl: 40 }];
  const html3 = renderReport([{ label: 'r', rows: resumed }]);
  assert.match(html3, /2 lines repeat an earlier step/);
  assert.match(html3, /1 line has no numeric &quot;step&quot; field/);
  const kl = drawn(html3, 'kl');
  assert.equal(kl.points, 4, 'steps 1, 2, 3, 4');
  assert.equal(summarizeRun(resumed).steps, 4);
});

test('renderReport: metrics as remax train writes them (step-0 evaluation line, time_step, no greedy baseline)', () => {
  const rows: Record<string, unknown>[] = [{ step: 0, eval_reward_mean: 0.1 }];
  for (const row of syntheticRows(40)) {
    if (row.step === 100) continue;
    rows.push({ ...row, greedy_reward_mean: null, greedy_reward_std: null, time_greedy: 0, time_step: 3 });
  }
  const html = renderReport([{ label: 'rloo', rows: parseMetricsJsonl(toJsonl(rows), 'metrics.jsonl') }]);
  const s = summarizeRun(rows);
  assert.equal(s.steps, 40, 'the step-0 evaluation line is not a training step');
  assert.equal(s.firstStep, 1);
  assert.equal(s.totalSeconds, 120, 'time_step is the time of a step');
  assert.match(html, /rloo · 40 training steps/);
  assert.match(html, /40 <span class="range">\(1–40\)<\/span>/);
  assert.equal(drawn(html, 'eval_reward_mean').markers, 5, 'steps 0, 10, 20, 30, 40');
  assert.ok(!/reward_mean: \d+ of/.test(html), 'the missing values of the step-0 line are not gaps');
  assert.ok(!/without any time field/.test(html));
  assert.match(html, /no numeric greedy_reward_mean \(an estimator without a greedy baseline\?\)/);
  assert.ok(html.includes('data-layer="time_other"'), 'time_step minus the split is drawn as "other"');
  const other = Number(/<tr><td>other<\/td><td>([\d.]+) ms/.exec(html)![1]) / 1000;
  const split = rows.slice(1).reduce((sum, r) => sum + TIME_FIELDS.reduce((t, [f]) => t + (r[f] as number), 0), 0) / 40;
  assert.ok(Math.abs(other - (3 - split)) < 1e-3, `other ${other} = 3 − ${split}`);
  assert.ok(!html.includes('not charted: time_step'));
});

test('renderReport: several runs overlay their reward curves, each labelled, one time chart per run', () => {
  const a = syntheticRows(200, 1);
  const b = syntheticRows(150, 2).map((r) => ({ ...r, reward_mean: finite(r.reward_mean) ? (r.reward_mean as number) - 0.1 : r.reward_mean }));
  const html = renderReport([{ label: 'remax', rows: a }, { label: 'rloo <k=4>', rows: b }], { title: 'Estimators', smoothWindow: 10 });
  assert.match(html, /<title>Estimators<\/title>/);
  assert.ok(html.includes('rloo &lt;k=4&gt;') && !html.includes('rloo <k=4>'), 'labels are escaped');
  assert.deepEqual(svgs(html).map(svgTitle), ['Reward (moving averages)', 'KL divergence to the reference', 'Response length',
    'Time per step: remax', 'Time per step: rloo &lt;k=4&gt;', 'Loss and gradient norm', 'Learning rate']);
  const reward = svgs(html)[0]!;
  for (const label of ['remax', 'rloo &lt;k=4&gt;']) {
    assert.ok(reward.includes(`>${label} samples</text>`), `${label} in the legend`);
    assert.ok(reward.includes(`>${label} greedy</text>`));
  }
  assert.equal(drawn(html, 'remax::reward_mean').points, a.filter((r) => finite(r.reward_mean)).length);
  assert.equal(drawn(html, 'rloo &lt;k=4&gt;::reward_mean').points, b.filter((r) => finite(r.reward_mean)).length);
  assert.equal(drawn(html, 'remax::reward_mean:smoothed').points, a.filter((r) => finite(r.reward_mean)).length - 9);
  const summary = /<table class="summary">([\s\S]*?)<\/table>/.exec(html)![1]!;
  assert.equal((summary.match(/<tr>/g) ?? []).length, 3, 'header and one row per run');
  assert.match(html, /2 runs compared: remax \(200 steps\), rloo &lt;k=4&gt; \(150 steps\)/);
});

test('plot command: metrics files as arguments or --metrics, labels, default --out, errors naming the file', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'remax-plot-'));
  try {
    const a = path.join(dir, 'a.jsonl');
    const b = path.join(dir, 'b.jsonl');
    writeFileSync(a, toJsonl(syntheticRows(60, 1)));
    writeFileSync(b, toJsonl(syntheticRows(40, 3)));
    const lines: string[] = [];
    const out = path.join(dir, 'cmp.html');
    await plotCommand([a, b, '--out', out, '--label', 'remax,reinforce', '--title', 'A vs B'], (l) => lines.push(l), (l) => lines.push(l));
    const html = readFileSync(out, 'utf8');
    assert.ok(html.startsWith('<!doctype html>'));
    assert.match(html, /<h1>A vs B<\/h1>/);
    assert.ok(html.includes('>remax samples</text>') && html.includes('>reinforce samples</text>'));
    assert.match(lines.join('\n'), /wrote .*cmp\.html: 2 runs \(60 \+ 40 lines\), 7 charts/);

    // --metrics with a comma list, report beside the first file by default.
    await plotCommand(['--metrics', `${a},${b}`], () => {}, () => {});
    assert.ok(existsSync(path.join(dir, 'report.html')));
    assert.match(readFileSync(path.join(dir, 'report.html'), 'utf8'), new RegExp(`${a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} samples`), 'labelled by path');
    let help = '';
    await plotCommand(['--help'], (l) => { help = l; }, () => {});
    assert.match(help, /--label VALUE/);

    const rejects = (argv: string[], pattern: RegExp) =>
      assert.rejects(plotCommand(argv, () => {}, () => {}), (e: unknown) => e instanceof RemaxInputError && pattern.test(e.message), pattern.source);
    await rejects([], /no metrics file given/);
    await rejects([a, b, '--label', 'only-one'], /--label has 1 name \("only-one"\) for 2 metrics files/);
    await rejects([a, '--label', ''], /name 1 is empty/);
    await rejects([path.join(dir, 'missing.jsonl')], /cannot read metrics file .*missing\.jsonl: no such file/);
    await rejects([a, '--out', a], /--out .*a\.jsonl is also a metrics file/);
    await rejects([a, '--smooth', '0'], /--smooth must be an integer ≥ 1/);
    await rejects([a, '--colour', 'red'], /Unknown option '--colour'/);
    const bad = path.join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"step": 1}\n{"step": 2\n');
    await rejects([bad, '--out', path.join(dir, 'bad.html')], /bad\.jsonl line 2 is not valid JSON/);
    assert.ok(!existsSync(path.join(dir, 'bad.html')), 'nothing written');
    const empty = path.join(dir, 'empty.jsonl');
    writeFileSync(empty, '\n');
    await rejects([empty], /empty\.jsonl has no metrics lines/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('splitPositionals: files anywhere, string flag values are not files, everything after -- is a file', () => {
  assert.deepEqual(splitPositionals(['a.jsonl', '--out', 'x.html', 'b.jsonl', '--title=T', '--help', '--', '--odd.jsonl'], plotFlags), {
    positionals: ['a.jsonl', 'b.jsonl', '--odd.jsonl'], flags: ['--out', 'x.html', '--title=T', '--help'],
  });
});
