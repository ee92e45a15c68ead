/**
 * An error caused by the user's input (a file, a flag, a value): the message names what is wrong and how to fix it.
 * The CLI prints such errors as one line and exits with code 2; anything else is a bug and keeps its stack.
 */
export class RemaxInputError extends Error {
  override readonly name = 'RemaxInputError';
}

/** Throws a RemaxInputError with `message` unless `condition` holds. */
export function requireInput(condition: unknown, message: string): asserts condition {
  if (!condition) throw new RemaxInputError(message);
}

/**
 * A value read from a file, shown in an error message: its JSON, cut to `max` characters. Never throws (JSON.stringify
 * does on values nested too deep for the stack, which a corrupt or hostile file can hold).
 */
export function preview(value: unknown, max = 80): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    text = Array.isArray(value) ? `a list nested too deep to show` : `an object nested too deep to show`;
  }
  text ??= String(value);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** Deeper than any file remax reads (tokenizer.json nests about 6 levels): a corrupt or hostile file, refused at load. */
const MAX_JSON_DEPTH = 64;

/**
 * Throws a RemaxInputError when `value` nests deeper than MAX_JSON_DEPTH: later recursive walks of it (the components'
 * types, JSON.stringify when a model or a state is saved again) would overflow the stack. Iterative, so it cannot.
 */
export function requireShallow(value: unknown, source: string): void {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    requireInput(depth < MAX_JSON_DEPTH, `${source} nests objects and lists more than ${MAX_JSON_DEPTH} levels deep; it is corrupt`);
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
}
