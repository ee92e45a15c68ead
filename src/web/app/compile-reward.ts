// The reward typed into the page: JavaScript source whose value is a function (samples) => number[] (or a Promise of
// one). It runs in the worker, the same scope a reward module would have; errors name what to fix.
import { RemaxInputError } from '../../core/errors';
import type { RewardFunction } from '../../core/rewards';

export function compileReward(source: string): RewardFunction {
  let value: unknown;
  try {
    value = new Function(`"use strict";\nreturn (${source}\n);`)();
  } catch (error) {
    throw new RemaxInputError(`the reward function does not compile: ${(error as Error).message}. ` +
      'Write one expression whose value is a function, e.g. (samples) => samples.map((s) => s.completion.length)');
  }
  if (typeof value !== 'function') {
    throw new RemaxInputError(`the reward source evaluates to ${value === null ? 'null' : typeof value}, not a function: ` +
      'write e.g. (samples) => samples.map((s) => s.completion.length)');
  }
  return value as RewardFunction;
}
