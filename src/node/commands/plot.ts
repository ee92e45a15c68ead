import { statSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import type { FlagSpec } from '../args';
import { parseFlags, helpText, optionalString, numberFlag } from '../args';
import { readInputFile, writeFileAtomic } from '../files';
import { RemaxInputError } from '../../core/errors';
import { parseMetricsJsonl, renderReport, type MetricsRun } from '../../report/report';

export const plotFlags: FlagSpec[] = [
  { name: 'metrics', type: 'string', help: 'metrics .jsonl file(s), comma-separated (or list them as arguments: remax plot a.jsonl b.jsonl)' },
  { name: 'out', type: 'string', help: 'the HTML report to write (a folder: report.html in it)', default: 'report.html beside the first metrics file' },
  { name: 'label', type: 'string', help: 'run names for the legend, comma-separated, one per metrics file', default: 'the file paths' },
  { name: 'title', type: 'string', help: 'title of the report', default: 'ReMax training report' },
  { name: 'smooth', type: 'string', help: 'moving-average window (logged steps) of the summary rewards and compared curves', default: 'a tenth of the run, 1 to 50' },
];

const SUMMARY = 'Write a self-contained HTML report (inline SVG charts, works offline) of the metrics of one training run, ' +
  'or of several runs overlaid to compare them.';

/**
 * Separates file arguments from flags: parseFlags takes no positionals, so `remax plot a.jsonl b.jsonl --out x.html`
 * is split here. A string flag's value (`--out x.html`) is never taken for a file; everything after `--` is a file.
 */
export function splitPositionals(argv: string[], specs: FlagSpec[]): { positionals: string[]; flags: string[] } {
  const takesValue = new Set(specs.filter((s) => s.type === 'string').map((s) => s.name));
  const positionals: string[] = [];
  const flags: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') { positionals.push(...argv.slice(i + 1)); break; }
    if (arg.startsWith('-') && arg !== '-') {
      flags.push(arg);
      if (arg.startsWith('--') && !arg.includes('=') && takesValue.has(arg.slice(2)) && i + 1 < argv.length) flags.push(argv[++i]!);
    } else {
      positionals.push(arg);
    }
  }
  return { positionals, flags };
}

const commaList = (raw: string) => raw.split(',').map((p) => p.trim());

export async function plotCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<void> {
  const { positionals, flags: flagArgs } = splitPositionals(argv, plotFlags);
  const flags = parseFlags('plot', flagArgs, plotFlags);
  if (flags.help) {
    return out(helpText('plot', SUMMARY, plotFlags).replace('remax plot [flags]', 'remax plot METRICS.jsonl [MORE.jsonl ...] [flags]'));
  }
  const listed = optionalString(flags, 'metrics');
  const files = [...positionals, ...(listed === undefined ? [] : commaList(listed).filter((p) => p !== ''))];
  if (files.length === 0) {
    throw new RemaxInputError('no metrics file given: name the .jsonl file(s) a training run wrote, as in ' +
      'remax plot run/metrics.jsonl --out report.html (or --metrics a.jsonl,b.jsonl)');
  }
  const labelFlag = optionalString(flags, 'label');
  let labels = files;
  if (labelFlag !== undefined) {
    labels = commaList(labelFlag);
    if (labels.length !== files.length) {
      throw new RemaxInputError(`--label has ${labels.length} ${labels.length === 1 ? 'name' : 'names'} ("${labelFlag}") for ` +
        `${files.length} metrics ${files.length === 1 ? 'file' : 'files'} (${files.join(', ')}); give one name per file, comma-separated`);
    }
    const blank = labels.findIndex((l) => l === '');
    if (blank >= 0) throw new RemaxInputError(`--label "${labelFlag}": name ${blank + 1} is empty; give one non-empty name per metrics file`);
  }
  const outFlag = optionalString(flags, 'out');
  if (outFlag === '') throw new RemaxInputError('--out is empty: give the path of the HTML report to write, e.g. report.html');
  // A folder (one that exists, or a path ending in a separator) gets report.html inside it, as cp puts a file in one.
  const outPath = outFlag === undefined ? join(dirname(files[0]!), 'report.html')
    : isFolder(outFlag) || outFlag.endsWith('/') || outFlag.endsWith(sep) ? join(outFlag, 'report.html') : outFlag;
  if (outFlag !== undefined && outPath !== outFlag && isFolder(outPath)) {
    throw new RemaxInputError(`--out ${outFlag} is a folder and ${outPath} in it is a folder too; give the path of the HTML file to write`);
  }
  const clash = files.find((f) => resolve(f) === resolve(outPath));
  if (clash !== undefined) throw new RemaxInputError(`--out ${outPath} is also a metrics file to read; give another path such as report.html`);
  const smoothWindow = flags.smooth === undefined ? undefined : numberFlag(flags, 'smooth', 1, { integer: true, min: 1 });

  const decoder = new TextDecoder('utf-8');
  const runs: MetricsRun[] = files.map((file, i) => {
    const text = decoder.decode(readInputFile(file, 'metrics file')).replace(/^\uFEFF/, '');
    const rows = parseMetricsJsonl(text, file);
    if (rows.length === 0) {
      throw new RemaxInputError(`metrics file ${file} has no metrics lines (it is empty or blank); plot it once the run has logged a step`);
    }
    return { label: labels[i]!, rows };
  });
  const html = renderReport(runs, { title: optionalString(flags, 'title'), smoothWindow });
  writeFileAtomic(outPath, html);
  const charts = html.split('<svg ').length - 1;
  const steps = runs.map((r) => r.rows.length).join(' + ');
  err(`wrote ${outPath}: ${runs.length === 1 ? '1 run' : `${runs.length} runs`} (${steps} lines), ${charts} ${charts === 1 ? 'chart' : 'charts'}, ` +
    `${(Buffer.byteLength(html) / 1024).toFixed(0)} KiB`);
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
