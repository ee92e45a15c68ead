// A minimal SVG chart renderer shared by scripts/experiments.mjs and scripts/experiments-learned-reward.mjs (the
// library's chart code is not part of its public exports).


export const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
export const num = (x) => (Math.round(x * 10) / 10).toString();

export function niceTicks(lo, hi, count = 5, integer = false) {
  if (hi === lo) { hi = lo + 1; }
  const raw = integer ? Math.max(1, (hi - lo) / count) : (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).filter((s) => !integer || Number.isInteger(s)).find((s) => s >= raw) ?? 10 * mag;
  const t0 = Math.floor(lo / step + 1e-9) * step, t1 = Math.ceil(hi / step - 1e-9) * step;
  const ticks = [];
  for (let t = t0; t <= t1 + step * 1e-6; t += step) ticks.push(Number(t.toPrecision(12)));
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9) + (step / mag === 2.5 ? 1 : 0));
  return { ticks, lo: t0, hi: t1, label: (t) => (Math.abs(t) >= 1e4 || (Math.abs(t) < 1e-3 && t !== 0) ? t.toExponential(1) : t.toFixed(decimals)) };
}

export function frame({ title, subtitle, xLabel, yLabel, width, height, legend }) {
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" ` +
    `font-family="Helvetica, Arial, sans-serif" font-size="12">`, `<rect width="${width}" height="${height}" fill="#fff"/>`,
  `<text x="16" y="22" font-size="15" font-weight="bold" fill="#222">${esc(title)}</text>`];
  // The subtitle wraps at word boundaries (about 6 px per character at 11 px).
  const lines = [];
  for (const word of (subtitle ?? '').split(' ')) {
    if (lines.length && (lines[lines.length - 1] + ' ' + word).length * 6 < width - 32) lines[lines.length - 1] += ' ' + word;
    else if (word) lines.push(word);
  }
  lines.forEach((line, i) => out.push(`<text x="16" y="${40 + 15 * i}" font-size="11" fill="#666">${esc(line)}</text>`));
  let lx = 16;
  let ly = lines.length ? 58 + 15 * (lines.length - 1) : 42;
  for (const item of legend) {
    const itemWidth = 23 + item.label.length * 6.6 + 18;
    if (lx > 16 && lx + itemWidth > width - 10) { lx = 16; ly += 18; }
    out.push(item.kind === 'box'
      ? `<rect x="${lx}" y="${ly - 6}" width="14" height="10" fill="${item.color}"/>`
      : `<line x1="${lx}" y1="${ly}" x2="${lx + 18}" y2="${ly}" stroke="${item.color}" stroke-width="2.5"${item.dash ? ` stroke-dasharray="${item.dash}"` : ''}/>`);
    out.push(`<text x="${lx + 23}" y="${ly + 4}" fill="#333">${esc(item.label)}</text>`);
    lx += itemWidth;
  }
  if (xLabel) out.push(`<text x="${width / 2}" y="${height - 8}" text-anchor="middle" fill="#333">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${height / 2 + 20}) rotate(-90)" text-anchor="middle" fill="#333">${esc(yLabel)}</text>`);
  return { out, top: ly + 18 };
}

/** A label under a bar group: a string, or an array of lines. */
export const groupLabel = (label, x, B) => (Array.isArray(label) ? label : [label])
  .map((line, i) => `<text x="${num(x)}" y="${B + 17 + 14 * i}" text-anchor="middle" fill="#333"${i ? ' font-size="11"' : ''}>${esc(line)}</text>`).join('\n');

/** Lines with optional ± bands and point markers. */
export function lineChart({ title, subtitle, xLabel, yLabel, series, yRange, width = 760, height = 420 }) {
  const { out, top } = frame({ title, subtitle, xLabel, yLabel, width, height, legend: series.map((s) => ({ label: s.label, color: s.color, dash: s.dash })) });
  const xs = series.flatMap((s) => s.xs);
  const ys = series.flatMap((s) => [...s.ys, ...(s.lo ?? []), ...(s.hi ?? [])]).filter(Number.isFinite);
  const xt = niceTicks(Math.min(...xs), Math.max(...xs), 8, true);
  const yt = niceTicks(yRange ? yRange[0] : Math.min(...ys), yRange ? yRange[1] : Math.max(...ys), 6);
  const L = 62, R = width - 20, T = top, B = height - 44;
  const sx = (x) => L + ((x - xt.lo) / (xt.hi - xt.lo)) * (R - L);
  const sy = (y) => B - ((y - yt.lo) / (yt.hi - yt.lo)) * (B - T);
  for (const t of yt.ticks) {
    out.push(`<line x1="${L}" y1="${num(sy(t))}" x2="${R}" y2="${num(sy(t))}" stroke="#e5e5e5"/>`,
      `<text x="${L - 6}" y="${num(sy(t) + 4)}" text-anchor="end" fill="#555">${yt.label(t)}</text>`);
  }
  for (const t of xt.ticks) {
    out.push(`<line x1="${num(sx(t))}" y1="${B}" x2="${num(sx(t))}" y2="${B + 4}" stroke="#888"/>`,
      `<text x="${num(sx(t))}" y="${B + 17}" text-anchor="middle" fill="#555">${xt.label(t)}</text>`);
  }
  out.push(`<line x1="${L}" y1="${B}" x2="${R}" y2="${B}" stroke="#888"/>`, `<line x1="${L}" y1="${T}" x2="${L}" y2="${B}" stroke="#888"/>`);
  for (const s of series) {
    if (!s.lo) continue;
    const upper = s.xs.map((x, i) => `${num(sx(x))},${num(sy(s.hi[i]))}`);
    const lower = s.xs.map((x, i) => `${num(sx(x))},${num(sy(s.lo[i]))}`).reverse();
    out.push(`<polygon points="${upper.concat(lower).join(' ')}" fill="${s.color}" fill-opacity="0.13" stroke="none"/>`);
  }
  for (const s of series) {
    out.push(`<polyline points="${s.xs.map((x, i) => `${num(sx(x))},${num(sy(s.ys[i]))}`).join(' ')}" fill="none" stroke="${s.color}" ` +
      `stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} stroke-linejoin="round"/>`);
    if (s.markers) for (let i = 0; i < s.xs.length; i++) out.push(`<circle cx="${num(sx(s.xs[i]))}" cy="${num(sy(s.ys[i]))}" r="2.6" fill="${s.color}"/>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Grouped bars with ± error bars. groups: [{ label, bars: [{ value, err, color, label }] }]. */
export function barChart({ title, subtitle, yLabel, groups, legend, width = 760, height = 420 }) {
  const { out, top } = frame({ title, subtitle, xLabel: '', yLabel, width, height, legend: legend.map((l) => ({ ...l, kind: 'box' })) });
  const hiValue = Math.max(...groups.flatMap((g) => g.bars.map((b) => b.value + (b.err ?? 0))));
  const yt = niceTicks(0, hiValue, 6);
  const L = 70, R = width - 20, T = top, B = height - 50;
  const sy = (y) => B - ((y - yt.lo) / (yt.hi - yt.lo)) * (B - T);
  for (const t of yt.ticks) {
    out.push(`<line x1="${L}" y1="${num(sy(t))}" x2="${R}" y2="${num(sy(t))}" stroke="#e5e5e5"/>`,
      `<text x="${L - 6}" y="${num(sy(t) + 4)}" text-anchor="end" fill="#555">${yt.label(t)}</text>`);
  }
  const gw = (R - L) / groups.length;
  groups.forEach((g, gi) => {
    const bw = Math.min(42, (gw * 0.8) / g.bars.length);
    const x0 = L + gi * gw + (gw - bw * g.bars.length) / 2;
    g.bars.forEach((b, bi) => {
      const x = x0 + bi * bw;
      out.push(`<rect x="${num(x + 1)}" y="${num(sy(b.value))}" width="${num(bw - 2)}" height="${num(B - sy(b.value))}" fill="${b.color}"/>`);
      if (b.err) {
        const cx = x + bw / 2;
        out.push(`<line x1="${num(cx)}" y1="${num(sy(b.value - b.err))}" x2="${num(cx)}" y2="${num(sy(b.value + b.err))}" stroke="#222"/>`,
          `<line x1="${num(cx - 4)}" y1="${num(sy(b.value + b.err))}" x2="${num(cx + 4)}" y2="${num(sy(b.value + b.err))}" stroke="#222"/>`,
          `<line x1="${num(cx - 4)}" y1="${num(sy(b.value - b.err))}" x2="${num(cx + 4)}" y2="${num(sy(b.value - b.err))}" stroke="#222"/>`);
      }
      if (b.text) out.push(`<text x="${num(x + bw / 2)}" y="${num(sy(b.value + (b.err ?? 0)) - 4)}" text-anchor="middle" font-size="9" fill="#333">${esc(b.text)}</text>`);
    });
    out.push(groupLabel(g.label, L + gi * gw + gw / 2, B));
  });
  out.push(`<line x1="${L}" y1="${B}" x2="${R}" y2="${B}" stroke="#888"/>`, `<line x1="${L}" y1="${T}" x2="${L}" y2="${B}" stroke="#888"/>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** One stacked bar per group. groups: [{ label, parts: [value…] }], layers: [{ label, color }]. */
export function stackedBars({ title, subtitle, yLabel, groups, layers, width = 760, height = 400 }) {
  const { out, top } = frame({ title, subtitle, xLabel: '', yLabel, width, height, legend: layers.map((l) => ({ ...l, kind: 'box' })) });
  const yt = niceTicks(0, Math.max(...groups.map((g) => g.parts.reduce((a, b) => a + b, 0))), 6);
  const L = 62, R = width - 20, T = top, B = height - 50;
  const sy = (y) => B - ((y - yt.lo) / (yt.hi - yt.lo)) * (B - T);
  for (const t of yt.ticks) {
    out.push(`<line x1="${L}" y1="${num(sy(t))}" x2="${R}" y2="${num(sy(t))}" stroke="#e5e5e5"/>`,
      `<text x="${L - 6}" y="${num(sy(t) + 4)}" text-anchor="end" fill="#555">${yt.label(t)}</text>`);
  }
  const gw = (R - L) / groups.length;
  groups.forEach((g, gi) => {
    const bw = Math.min(70, gw * 0.6);
    const x = L + gi * gw + (gw - bw) / 2;
    let acc = 0;
    g.parts.forEach((v, li) => {
      out.push(`<rect x="${num(x)}" y="${num(sy(acc + v))}" width="${num(bw)}" height="${num(sy(acc) - sy(acc + v))}" fill="${layers[li].color}"/>`);
      acc += v;
    });
    out.push(`<text x="${num(x + bw / 2)}" y="${num(sy(acc) - 5)}" text-anchor="middle" font-size="11" fill="#222">${acc.toFixed(1)}</text>`,
      groupLabel(g.label, L + gi * gw + gw / 2, B));
  });
  out.push(`<line x1="${L}" y1="${B}" x2="${R}" y2="${B}" stroke="#888"/>`, `<line x1="${L}" y1="${T}" x2="${L}" y2="${B}" stroke="#888"/>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
