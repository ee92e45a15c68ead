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
