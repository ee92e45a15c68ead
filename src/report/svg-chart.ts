/**
 * A small SVG chart renderer for the training report (report.ts): linear scales with nice ticks, polylines that break
 * at missing values, ±std bands, stacked areas, a second y axis on the right, and a legend inside the chart. It only
 * builds strings (no DOM, no Node API), and the SVG needs nothing outside itself: no fonts, scripts or links.
 *
 * Conventions the report's tests rely on: every drawn point of a line series is either a vertex of one of its
 * `<polyline data-series="ID">` segments or, when a missing value isolates it, a `<circle data-series="ID">`; markers
 * of sparse series are `<circle data-marker="ID">`; bands are `<polygon data-band="ID">` (or a `<line data-band>` for
 * a lone point); stacked layers are `<polygon|rect data-layer="ID">`.
 */

/** A value of a series: null, undefined, NaN and ±Infinity are missing (a gap in the line). */
export type Value = number | null | undefined;

export const isFiniteValue = (v: Value): v is number => typeof v === 'number' && Number.isFinite(v);

export interface LineSeries {
  /** Legend text. */
  label: string;
  /** The data-series attribute of its elements; default: the label. */
  id?: string;
  color: string;
  xs: readonly number[];
  /** One value per x; a missing value breaks the line. */
  ys: readonly Value[];
  /** Stroke width (default 1.5), dash pattern such as "6 4", opacity (default 1). */
  width?: number;
  dash?: string;
  opacity?: number;
  /** Plot against the right y axis (ChartSpec.yRightLabel). */
  axis?: 'left' | 'right';
  /** A circle at every point (for sparse series such as evaluations). */
  markers?: boolean;
  /** Join the present points across missing values instead of breaking the line (sparse series). */
  connect?: boolean;
  /** Leave out of the legend. */
  hideInLegend?: boolean;
  /** A filled band from lo to hi (e.g. mean ± std), drawn under the line where both are present. */
  band?: { lo: readonly Value[]; hi: readonly Value[]; label?: string; opacity?: number };
}

export interface StackLayer {
  label: string;
  id?: string;
  color: string;
  /** One value per x of the stack; missing counts as 0 unless every layer is missing at that x (then a gap). */
  ys: readonly Value[];
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Label of the right y axis; shown when a series has axis 'right'. */
  yRightLabel?: string;
  /** Width and height of the plot area and its margins without the legend rows (default 640 × 300). */
  width?: number;
  height?: number;
  lines?: LineSeries[];
  stack?: { xs: readonly number[]; layers: StackLayer[] };
  /** Include 0 in the left y domain (rates, times, lengths). */
  yZero?: boolean;
  /** The x values are integers (steps): no fractional ticks. */
  xInteger?: boolean;
  /** Extents the axes cover besides the data (to give several charts the same scales). */
  xRange?: readonly [number, number];
  yRange?: readonly [number, number];
}

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif';
/** Approximate advance of one character at 11–12 px in a sans-serif font, for layout. */
const CHAR_WIDTH = 6.1;

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Maps [d0, d1] linearly onto [r0, r1]; a zero-width domain maps everything to the middle of the range. */
export function linearScale(domain: readonly [number, number], range: readonly [number, number]): (v: number) => number {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  if (d1 === d0) return () => (r0 + r1) / 2;
  const k = (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

/** A step of 1, 2 or 5 × 10^k giving about `count` intervals over `span`. */
export function niceStep(span: number, count = 5): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const rough = span / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const n = rough / magnitude;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * magnitude;
}

const clean = (v: number): number => (v === 0 ? 0 : Number(v.toPrecision(12)));

/** Multiples of a nice step inside [min, max] (both included when they are multiples). */
export function niceTicks(min: number, max: number, count = 5, integer = false): { ticks: number[]; step: number } {
  let step = niceStep(max - min, count);
  if (integer) step = Math.max(1, step);
  const first = Math.ceil(min / step - 1e-9);
  const last = Math.floor(max / step + 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(clean(i * step));
  return { ticks, step };
}

/** Widens a zero-width extent so that a single value or a constant series sits in the middle of the axis. */
export function padExtent(min: number, max: number, integer = false): [number, number] {
  if (max > min) return [min, max];
  const pad = integer ? 1 : Math.abs(min) * 0.1 || 1;
  return [min - pad, max + pad];
}

/** A value axis: the extent widened to the enclosing multiples of a nice step, and the ticks at that step. */
export function niceAxis(min: number, max: number, count = 5): { extent: [number, number]; ticks: number[]; step: number } {
  [min, max] = padExtent(min, max);
  const step = niceStep(max - min, count);
  const first = Math.floor(min / step + 1e-9);
  const last = Math.ceil(max / step - 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(clean(i * step));
  return { extent: [ticks[0]!, ticks[ticks.length - 1]!], ticks, step };
}

/** The extent widened to the enclosing nice ticks (for value axes). */
export function niceExtent(min: number, max: number, count = 5): [number, number] {
  return niceAxis(min, max, count).extent;
}

/**
 * A tick label: as many decimals as the tick step needs; exponent notation when the axis (`axisMax`, the largest
 * absolute tick; default |v|) is very small or very large, so that all the labels of an axis share one notation.
 */
export function formatTick(v: number, step: number, axisMax = Math.abs(v)): string {
  if (v === 0) return '0';
  if (axisMax >= 1e6 || axisMax < 1e-3) {
    const digits = Math.max(0, Math.min(6, Math.floor(Math.log10(Math.abs(v))) - Math.floor(Math.log10(step) + 1e-9)));
    return v.toExponential(digits).replace(/\.?0+e/, 'e').replace('e+', 'e');
  }
  const decimals = Math.max(0, Math.min(10, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(decimals);
}

/** The labels of an axis's ticks, in one notation. */
export function formatTicks(ticks: readonly number[], step: number): string[] {
  const axisMax = ticks.reduce((m, t) => Math.max(m, Math.abs(t)), 0);
  return ticks.map((t) => formatTick(t, step, axisMax));
}

const num = (v: number): string => {
  const s = v.toFixed(1);
  return s.endsWith('.0') ? s.slice(0, -2) : s;
};

/** Index runs of consecutive present points (or all present points as one run when `connect`), over `keep` if given. */
function segments(xs: readonly number[], ys: readonly Value[], connect = false, keep?: readonly number[]): number[][] {
  const out: number[][] = [];
  let current: number[] = [];
  const n = keep ? keep.length : Math.min(xs.length, ys.length);
  for (let j = 0; j < n; j++) {
    const i = keep ? keep[j]! : j;
    if (isFiniteValue(ys[i]) && Number.isFinite(xs[i]!)) current.push(i);
    else if (!connect && current.length > 0) { out.push(current); current = []; }
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Series longer than this are thinned to what the plot's pixel columns can show (decimateIndices). */
export const DECIMATE_ABOVE = 4000;

/**
 * The indices worth drawing of a long series: in each of `columns` equal x intervals of [x0, x1], the first, last,
 * lowest (by `low`) and highest (by `high`) present point, so the drawn envelope, spikes included, is the same as with
 * every point; and the first missing point, so gaps stay. In increasing index order.
 */
export function decimateIndices(xs: readonly number[], low: readonly Value[], high: readonly Value[], x0: number, x1: number, columns: number): number[] {
  const cols = Math.max(1, Math.floor(columns));
  const span = x1 - x0 || 1;
  const first = new Int32Array(cols).fill(-1);
  const last = new Int32Array(cols).fill(-1);
  const lowest = new Int32Array(cols).fill(-1);
  const highest = new Int32Array(cols).fill(-1);
  const gap = new Int32Array(cols).fill(-1);
  for (let i = 0; i < xs.length; i++) {
    const b = Math.max(0, Math.min(cols - 1, Math.floor(((xs[i]! - x0) / span) * cols)));
    const lo = low[i];
    const hi = high[i];
    if (!isFiniteValue(lo) || !isFiniteValue(hi)) { if (gap[b] < 0) gap[b] = i; continue; }
    if (first[b] < 0) first[b] = i;
    last[b] = i;
    if (lowest[b] < 0 || lo < (low[lowest[b]!] as number)) lowest[b] = i;
    if (highest[b] < 0 || hi > (high[highest[b]!] as number)) highest[b] = i;
  }
  const keep = new Set<number>();
  for (const arr of [first, last, lowest, highest, gap]) for (const i of arr) if (i >= 0) keep.add(i);
  return [...keep].sort((a, b) => a - b);
}

/** Of the indices `idx` (present values), the one with the highest (sign 1) or lowest (sign -1) value per pixel column. */
function columnExtremes(idx: readonly number[], xs: readonly number[], values: readonly Value[], sign: 1 | -1,
  extent: readonly [number, number], columns: number): number[] {
  const cols = Math.max(1, Math.floor(columns));
  const span = extent[1] - extent[0] || 1;
  const out: number[] = [];
  let column = -1;
  for (const i of idx) {
    const b = Math.max(0, Math.min(cols - 1, Math.floor(((xs[i]! - extent[0]) / span) * cols)));
    if (b !== column) { out.push(i); column = b; } else if (sign * (values[i] as number) > sign * (values[out[out.length - 1]!] as number)) out[out.length - 1] = i;
  }
  return out;
}

interface LegendItem { label: string; color: string; kind: 'line' | 'band' | 'area' | 'marker'; dash?: string; width?: number; opacity?: number }

function legendItems(spec: ChartSpec, hasRight: boolean): LegendItem[] {
  const items: LegendItem[] = [];
  for (const s of spec.lines ?? []) {
    if (s.hideInLegend) continue;
    const suffix = hasRight && s.axis === 'right' ? ' (right axis)' : '';
    if (s.markers && s.connect) items.push({ label: s.label + suffix, color: s.color, kind: 'marker', dash: s.dash });
    else items.push({ label: s.label + suffix, color: s.color, kind: 'line', dash: s.dash, width: s.width, opacity: s.opacity });
    if (s.band?.label) items.push({ label: s.band.label, color: s.color, kind: 'band', opacity: s.band.opacity });
  }
  for (const layer of spec.stack?.layers ?? []) items.push({ label: layer.label, color: layer.color, kind: 'area' });
  return items;
}

/** Cuts the middle out of a text longer than `max` characters (long file paths keep their start and end). */
export function ellipsize(text: string, max: number): string {
  if (text.length <= max) return text;
  const keep = Math.max(2, max - 1);
  const head = Math.ceil(keep / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (keep - head))}`;
}

function layoutLegend(items: LegendItem[], left: number, maxWidth: number): { x: number; row: number; item: LegendItem }[] {
  const placed: { x: number; row: number; item: LegendItem }[] = [];
  let x = left;
  let row = 0;
  const maxChars = Math.floor((maxWidth - 42) / CHAR_WIDTH);
  for (const original of items) {
    const item = { ...original, label: ellipsize(original.label, maxChars) };
    const w = 26 + item.label.length * CHAR_WIDTH + 16;
    if (x > left && x + w > left + maxWidth) { row++; x = left; }
    placed.push({ x, row, item });
    x += w;
  }
  return placed;
}

function legendSwatch(item: LegendItem, x: number, y: number): string {
  switch (item.kind) {
    case 'band': return `<rect x="${x}" y="${y - 5}" width="20" height="10" fill="${item.color}" fill-opacity="${item.opacity ?? 0.18}"/>`;
    case 'area': return `<rect x="${x}" y="${y - 5}" width="20" height="10" fill="${item.color}" fill-opacity="0.85"/>`;
    case 'marker':
      return `<line x1="${x}" y1="${y}" x2="${x + 20}" y2="${y}" stroke="${item.color}" stroke-width="1"${item.dash ? ` stroke-dasharray="${item.dash}"` : ''}/>` +
        `<circle cx="${x + 10}" cy="${y}" r="3.5" fill="#fff" stroke="${item.color}" stroke-width="1.8"/>`;
    default:
      return `<line x1="${x}" y1="${y}" x2="${x + 20}" y2="${y}" stroke="${item.color}" stroke-width="${Math.max(2, item.width ?? 1.5)}"` +
        `${item.dash ? ` stroke-dasharray="${item.dash}"` : ''}${item.opacity !== undefined ? ` stroke-opacity="${Math.max(0.5, item.opacity)}"` : ''}/>`;
  }
}

/** Cumulative tops of the stack: tops[k][i] is the sum of layers 0..k at x i, or null where every layer is missing. */
export function stackTops(layers: readonly { ys: readonly Value[] }[], n: number): (number | null)[][] {
  const tops: (number | null)[][] = layers.map(() => new Array<number | null>(n).fill(null));
  for (let i = 0; i < n; i++) {
    if (!layers.some((l) => isFiniteValue(l.ys[i]))) continue;
    let sum = 0;
    layers.forEach((l, k) => {
      const v = l.ys[i];
      sum += isFiniteValue(v) ? v : 0;
      tops[k]![i] = sum;
    });
  }
  return tops;
}

/** Renders one chart as an `<svg>` element sized by its viewBox (CSS can scale it to its container). */
export function renderChart(spec: ChartSpec): string {
  const W = spec.width ?? 640;
  const baseH = spec.height ?? 300;
  const lines = spec.lines ?? [];
  const hasRight = spec.yRightLabel !== undefined && lines.some((s) => s.axis === 'right');
  const onRight = (s: LineSeries) => hasRight && s.axis === 'right';

  // Extents.
  const xsAll: number[] = [];
  const left: number[] = [];
  const right: number[] = [];
  for (const s of lines) {
    const target = onRight(s) ? right : left;
    for (const seg of segments(s.xs, s.ys)) for (const i of seg) { xsAll.push(s.xs[i]!); target.push(s.ys[i]!); }
    if (s.band) {
      s.xs.forEach((_, i) => {
        const lo = s.band!.lo[i];
        const hi = s.band!.hi[i];
        if (isFiniteValue(lo) && isFiniteValue(hi) && isFiniteValue(s.ys[i])) target.push(lo, hi);
      });
    }
  }
  const stack = spec.stack;
  const stackN = stack ? stack.xs.length : 0;
  const tops = stack ? stackTops(stack.layers, stackN) : [];
  if (stack) {
    stack.xs.forEach((x, i) => {
      const top = tops[tops.length - 1]?.[i];
      if (top !== null && top !== undefined) { xsAll.push(x); left.push(top, 0); }
    });
  }
  const minOf = (a: number[]) => a.reduce((m, v) => Math.min(m, v), Infinity);
  const maxOf = (a: number[]) => a.reduce((m, v) => Math.max(m, v), -Infinity);
  const empty = xsAll.length === 0;
  if (!empty && spec.xRange) xsAll.push(...spec.xRange);
  if (!empty && spec.yRange) left.push(...spec.yRange);
  const xExtent = empty ? [0, 1] as [number, number] : padExtent(minOf(xsAll), maxOf(xsAll), spec.xInteger);
  const valueAxis = (values: number[], zero: boolean) => {
    if (values.length === 0) return niceAxis(0, 1);
    let lo = minOf(values);
    let hi = maxOf(values);
    if (zero) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
    return niceAxis(lo, hi);
  };
  const yTicks = valueAxis(left, Boolean(spec.yZero) || Boolean(stack));
  const yRightTicks = valueAxis(right, false);
  const yExtent = yTicks.extent;
  const yRightExtent = yRightTicks.extent;
  const xTicks = niceTicks(xExtent[0], xExtent[1], 6, spec.xInteger);
  const yLabels = formatTicks(yTicks.ticks, yTicks.step);
  const yRightLabels = formatTicks(yRightTicks.ticks, yRightTicks.step);
  const xLabels = formatTicks(xTicks.ticks, xTicks.step);

  // Layout: title, legend rows, plot, x axis.
  const labelWidth = (labels: string[]) => labels.reduce((m, l) => Math.max(m, l.length), 1) * CHAR_WIDTH;
  const marginLeft = Math.round(30 + labelWidth(yLabels));
  const marginRight = hasRight ? Math.round(30 + labelWidth(yRightLabels)) : 20;
  const items = legendItems(spec, hasRight);
  const placed = layoutLegend(items, marginLeft, W - marginLeft - marginRight);
  const legendRows = items.length === 0 ? 0 : placed[placed.length - 1]!.row + 1;
  const marginTop = 34 + legendRows * 18 + 6;
  const H = baseH + legendRows * 18;
  const marginBottom = 44;
  const px0 = marginLeft;
  const px1 = W - marginRight;
  const py0 = marginTop;
  const py1 = H - marginBottom;
  const sx = linearScale(xExtent, [px0, px1]);
  const sy = linearScale(yExtent, [py1, py0]);
  const syRight = linearScale(yRightExtent, [py1, py0]);
  const point = (x: number, y: number, s = sy) => `${num(sx(x))},${num(s(y))}`;

  const out: string[] = [];
  out.push(`<svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(spec.title)}" ` +
    `font-family='${FONT}' font-size="11">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${px0}" y="21" font-size="14" font-weight="600" fill="#222">${escapeXml(spec.title)}</text>`);

  // Grid and ticks.
  const grid: string[] = [];
  yTicks.ticks.forEach((t, i) => {
    const y = num(sy(t));
    grid.push(`<line x1="${px0}" y1="${y}" x2="${px1}" y2="${y}" stroke="#e6e6e6"/>`);
    grid.push(`<text x="${px0 - 6}" y="${y}" dy="0.32em" text-anchor="end" fill="#555">${yLabels[i]}</text>`);
  });
  if (hasRight) {
    yRightTicks.ticks.forEach((t, i) => {
      const y = num(syRight(t));
      grid.push(`<line x1="${px1}" y1="${y}" x2="${px1 + 4}" y2="${y}" stroke="#888"/>`);
      grid.push(`<text x="${px1 + 7}" y="${y}" dy="0.32em" text-anchor="start" fill="#555">${yRightLabels[i]}</text>`);
    });
  }
  xTicks.ticks.forEach((t, i) => {
    const x = num(sx(t));
    grid.push(`<line x1="${x}" y1="${py0}" x2="${x}" y2="${py1}" stroke="#f0f0f0"/>`);
    grid.push(`<line x1="${x}" y1="${py1}" x2="${x}" y2="${py1 + 4}" stroke="#888"/>`);
    grid.push(`<text x="${x}" y="${py1 + 16}" text-anchor="middle" fill="#555">${xLabels[i]}</text>`);
  });
  out.push(`<g class="grid">${grid.join('')}</g>`);

  // Stacked areas (under the lines).
  const columns = px1 - px0;
  const thin = (xs: readonly number[], low: readonly Value[], high: readonly Value[] = low) =>
    (xs.length > DECIMATE_ABOVE ? decimateIndices(xs, low, high, xExtent[0], xExtent[1], columns) : undefined);
  if (stack) {
    const stackKeep = thin(stack.xs, tops[tops.length - 1] ?? []);
    const barWidth = Math.max(2, Math.min(12, (px1 - px0) / Math.max(1, stackN) * 0.8));
    stack.layers.forEach((layer, k) => {
      const id = escapeXml(layer.id ?? layer.label);
      const top = tops[k]!;
      const bottom = k === 0 ? top.map((t) => (t === null ? null : 0)) : tops[k - 1]!;
      for (const idx of segments(stack.xs, top, false, stackKeep)) {
        if (idx.length === 1) {
          const i = idx[0]!;
          const y0 = sy(bottom[i]!);
          const y1 = sy(top[i]!);
          out.push(`<rect data-layer="${id}" x="${num(sx(stack.xs[i]!) - barWidth / 2)}" y="${num(y1)}" width="${num(barWidth)}" ` +
            `height="${num(Math.max(0, y0 - y1))}" fill="${layer.color}" fill-opacity="0.85"/>`);
          continue;
        }
        const upper = idx.map((i) => point(stack.xs[i]!, top[i]!));
        const lower = idx.map((i) => point(stack.xs[i]!, bottom[i]!)).reverse();
        out.push(`<polygon data-layer="${id}" points="${upper.concat(lower).join(' ')}" fill="${layer.color}" fill-opacity="0.85" ` +
          `stroke="${layer.color}" stroke-width="0.5"/>`);
      }
    });
  }

  // Bands, then lines, then markers.
  for (const s of lines) {
    if (!s.band) continue;
    const scale = onRight(s) ? syRight : sy;
    const id = escapeXml(s.id ?? s.label);
    const present = s.xs.map((_, i) => (isFiniteValue(s.ys[i]) && isFiniteValue(s.band!.lo[i]) && isFiniteValue(s.band!.hi[i]) ? 1 : null));
    const opacity = s.band.opacity ?? 0.18;
    const long = s.xs.length > DECIMATE_ABOVE;
    for (const idx of segments(s.xs, present)) {
      if (idx.length === 1) {
        const i = idx[0]!;
        out.push(`<line data-band="${id}" x1="${num(sx(s.xs[i]!))}" y1="${num(scale(s.band.lo[i]!))}" x2="${num(sx(s.xs[i]!))}" ` +
          `y2="${num(scale(s.band.hi[i]!))}" stroke="${s.color}" stroke-opacity="${Math.min(1, opacity * 3)}" stroke-width="3"/>`);
        continue;
      }
      // A long band keeps the highest hi and the lowest lo of each pixel column: its outer envelope.
      const upperIdx = long ? columnExtremes(idx, s.xs, s.band.hi, 1, xExtent, columns) : idx;
      const lowerIdx = long ? columnExtremes(idx, s.xs, s.band.lo, -1, xExtent, columns) : idx;
      const upper = upperIdx.map((i) => point(s.xs[i]!, s.band!.hi[i]!, scale));
      const lower = lowerIdx.map((i) => point(s.xs[i]!, s.band!.lo[i]!, scale)).reverse();
      out.push(`<polygon data-band="${id}" points="${upper.concat(lower).join(' ')}" fill="${s.color}" fill-opacity="${opacity}" stroke="none"/>`);
    }
  }
  for (const s of lines) {
    const scale = onRight(s) ? syRight : sy;
    const id = escapeXml(s.id ?? s.label);
    const width = s.width ?? 1.5;
    const style = `stroke="${s.color}" stroke-width="${width}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}` +
      `${s.opacity !== undefined ? ` stroke-opacity="${s.opacity}"` : ''}`;
    for (const seg of segments(s.xs, s.ys, s.connect, s.markers ? undefined : thin(s.xs, s.ys))) {
      if (seg.length === 1 && !s.markers) {
        const i = seg[0]!;
        out.push(`<circle data-series="${id}" cx="${num(sx(s.xs[i]!))}" cy="${num(scale(s.ys[i]!))}" r="${Math.max(3, width + 1.5)}" ` +
          `fill="${s.color}"${s.opacity !== undefined ? ` fill-opacity="${s.opacity}"` : ''}/>`);
      } else if (seg.length >= 2) {
        out.push(`<polyline data-series="${id}" points="${seg.map((i) => point(s.xs[i]!, s.ys[i]!, scale)).join(' ')}" fill="none" ${style} ` +
          `stroke-linejoin="round" stroke-linecap="round"/>`);
      }
    }
    if (s.markers) {
      for (const seg of segments(s.xs, s.ys, true)) {
        for (const i of seg) {
          const x = s.xs[i]!;
          const y = s.ys[i]!;
          out.push(`<circle data-marker="${id}" cx="${num(sx(x))}" cy="${num(scale(y))}" r="3.5" fill="#fff" stroke="${s.color}" stroke-width="1.8">` +
            `<title>${escapeXml(`${s.label}: ${formatValue(y)} at ${spec.xLabel} ${formatValue(x)}`)}</title></circle>`);
        }
      }
    }
  }

  // Axes and their labels.
  out.push(`<line x1="${px0}" y1="${py1}" x2="${px1}" y2="${py1}" stroke="#888"/>`);
  out.push(`<line x1="${px0}" y1="${py0}" x2="${px0}" y2="${py1}" stroke="#888"/>`);
  if (hasRight) out.push(`<line x1="${px1}" y1="${py0}" x2="${px1}" y2="${py1}" stroke="#888"/>`);
  out.push(`<text x="${num((px0 + px1) / 2)}" y="${H - 10}" text-anchor="middle" fill="#333">${escapeXml(spec.xLabel)}</text>`);
  out.push(`<text transform="translate(13 ${num((py0 + py1) / 2)}) rotate(-90)" text-anchor="middle" fill="#333">${escapeXml(spec.yLabel)}</text>`);
  if (hasRight) {
    out.push(`<text transform="translate(${W - 9} ${num((py0 + py1) / 2)}) rotate(90)" text-anchor="middle" fill="#333">` +
      `${escapeXml(spec.yRightLabel!)}</text>`);
  }
  if (empty) {
    out.push(`<text x="${num((px0 + px1) / 2)}" y="${num((py0 + py1) / 2)}" text-anchor="middle" fill="#999">no data</text>`);
  }

  // Legend.
  for (const { x, row, item } of placed) {
    const y = 34 + row * 18 + 4;
    out.push(`<g class="legend-item">${legendSwatch(item, x, y)}<text x="${x + 26}" y="${y}" dy="0.32em" fill="#333">${escapeXml(item.label)}</text></g>`);
  }
  out.push('</svg>');
  return out.join('\n');
}

/** A number with about 4 significant digits, for tables and tooltips. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const abs = Math.abs(v);
  if (abs >= 1e6 || abs < 1e-3) return v.toExponential(3).replace(/\.?0+e/, 'e').replace('e+', 'e');
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(4)));
}
