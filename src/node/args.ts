// Command-line flags: node:util's parseArgs for the syntax, and typed readers whose errors name the flag.
import { parseArgs } from 'node:util';
import { RemaxInputError } from '../core/errors';
import { BUILD_CHOICES, type BuildChoice } from '../core/kernels';

export interface FlagSpec {
  /** Flag name without the dashes. */
  name: string;
  type: 'string' | 'boolean';
  help: string;
  /** Shown in --help. */
  default?: string;
}

export type Flags = Record<string, string | boolean | undefined>;

export function parseFlags(command: string, argv: string[], specs: FlagSpec[]): Flags {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const s of specs) options[s.name] = { type: s.type };
  options.help = { type: 'boolean' };
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Flags;
  } catch (error) {
    const message = (error as Error).message.replace(/\s*\n\s*/g, ' ');
    throw new RemaxInputError(`${message} (see remax ${command} --help)`);
  }
}

export function helpText(command: string, summary: string, specs: FlagSpec[]): string {
  const rows = specs.map((s) => {
    const flag = `--${s.name}${s.type === 'string' ? ' VALUE' : ''}`;
    return `  ${flag.padEnd(24)} ${s.help}${s.default !== undefined ? ` (default ${s.default})` : ''}`;
  });
  return `Usage: remax ${command} [flags]\n${summary}\n\n${rows.join('\n')}\n`;
}

export function requiredString(flags: Flags, name: string, what: string): string {
  const value = flags[name];
  if (typeof value !== 'string' || value === '') throw new RemaxInputError(`--${name} is required: ${what}`);
  return value;
}

export function optionalString(flags: Flags, name: string): string | undefined {
  const value = flags[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * A number flag, checked. `orWord` names a word the caller accepts instead (e.g. "auto"), for the error message: the
 * caller handles that word before calling. An integer flag is always bounded, and its message says by what: the
 * caller's min and max, else the safe integers (±(2^53 − 1)), beyond which numbers are no longer exact (1e20 is an
 * "integer" to JavaScript, but no count, seed or port).
 */
export function numberFlag(flags: Flags, name: string, fallback: number,
  check: { integer?: boolean; min?: number; max?: number; minExclusive?: boolean; orWord?: string } = {}, label = `--${name}`): number {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  const min = check.min ?? (check.integer ? -Number.MAX_SAFE_INTEGER : undefined);
  const max = check.integer ? Math.min(check.max ?? Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) : check.max;
  const range = `${min !== undefined ? `${check.minExclusive ? '>' : '≥'} ${min}` : ''}${max !== undefined ? `${min !== undefined ? ' and ' : ''}≤ ${max}` : ''}`;
  const kind = check.integer ? 'an integer' : 'a number';
  const bad = typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(value) || (check.integer && !Number.isInteger(value))
    || (min !== undefined && (check.minExclusive ? value <= min : value < min))
    || (max !== undefined && value > max);
  if (bad) throw new RemaxInputError(`${label} must be ${kind}${range ? ` ${range}` : ''}${check.orWord ? ` (or ${check.orWord})` : ''}, got "${raw}"`);
  return value;
}

/** A comma-separated list of token ids, e.g. "1,429,479". */
export function idListFlag(flags: Flags, name: string): number[] | undefined {
  const raw = optionalString(flags, name);
  if (raw === undefined) return undefined;
  const parts = raw.split(',').map((p) => p.trim());
  const bad = parts.findIndex((p) => !/^\d+$/.test(p));
  if (bad >= 0) throw new RemaxInputError(`--${name} must be comma-separated non-negative integers like 1,429,479; "${parts[bad]}" is not one`);
  return parts.map(Number);
}

/** The --build flag: which kernel build to run. */
export function buildFlag(flags: Flags): BuildChoice {
  const build = optionalString(flags, 'build') ?? 'auto';
  if (!BUILD_CHOICES.includes(build as BuildChoice)) throw new RemaxInputError(`--build must be ${BUILD_CHOICES.join(', ')}, got "${build}"`);
  return build as BuildChoice;
}
