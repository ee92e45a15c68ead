/**
 * Reward functions that ship with remax, chosen by name (`--reward exact-match`). Each reads what it checks against
 * from the sample's prompt line (meta: "answer", "pattern", "keywords", "target_length") or, for a value shared by
 * every prompt, from its options. All are pure and deterministic; string comparisons are case-sensitive.
 */
import { RemaxInputError, requireInput } from './errors';
import { promptLabel, type RewardFunction, type RewardSample } from './rewards';

export interface BuiltinReward {
  description: string;
  /** Checks the options (an unknown or bad option is a RemaxInputError) and returns the reward function. */
  make(options: Record<string, unknown>): RewardFunction;
}

/** Text that marks the end of a response when a decoder leaves it in (llama2.c's EOS piece). */
const EOS_TEXT = '</s>';

export const BUILTIN_REWARDS: Record<string, BuiltinReward> = {
  'exact-match': {
    description: '1 if the first line of the completion, trimmed, equals the prompt line\'s "answer" (trimmed), else 0',
    make(options) {
      checkOptions('exact-match', options, []);
      return perSample((s) => (firstLine(s.completion) === answerOf(s, 'exact-match') ? 1 : 0));
    },
  },
  'contains-answer': {
    description: '1 if the completion contains the prompt line\'s "answer" (trimmed), else 0',
    make(options) {
      checkOptions('contains-answer', options, []);
      return perSample((s) => (beforeEos(s.completion).trim().includes(answerOf(s, 'contains-answer')) ? 1 : 0));
    },
  },
  regex: {
    description: '1 if the completion matches the regular expression "pattern" (from the prompt line, else options.pattern; options.flags), else 0',
    make(options) {
      checkOptions('regex', options, ['pattern', 'flags']);
      const flags = options.flags === undefined ? '' : String(options.flags);
      const compiled = new Map<string, RegExp>(); // one RegExp per distinct pattern
      const compile = (pattern: string, where: string): RegExp => {
        let re = compiled.get(pattern);
        if (re === undefined) {
          try {
            re = new RegExp(pattern, flags);
          } catch (error) {
            throw new RemaxInputError(`regex reward: ${where} ${JSON.stringify(pattern)} (flags "${flags}") is not a valid regular expression: ${(error as Error).message}`);
          }
          compiled.set(pattern, re);
        }
        return re;
      };
      if (options.pattern !== undefined) compile(String(options.pattern), 'options.pattern'); // fail before training starts
      return perSample((s) => {
        const fromMeta = s.meta.pattern !== undefined && s.meta.pattern !== null;
        requireInput(fromMeta || options.pattern !== undefined,
          `regex reward needs a "pattern" field in each prompt line or a pattern option; prompt ${promptLabel(s.prompt)} has neither`);
        const pattern = String(fromMeta ? s.meta.pattern : options.pattern);
        const re = compile(pattern, fromMeta ? `the pattern of prompt ${promptLabel(s.prompt)}` : 'options.pattern');
        return s.completion.search(re) >= 0 ? 1 : 0; // search ignores lastIndex, so a "g" flag stays deterministic
      });
    },
  },
  keyword: {
    description: 'the fraction of the "keywords" (a list, from the prompt line, else options.keywords) that occur in the completion',
    make(options) {
      checkOptions('keyword', options, ['keywords']);
      const shared = options.keywords === undefined ? undefined : keywordList(options.keywords, 'options.keywords');
      return perSample((s) => {
        const own = s.meta.keywords;
        requireInput(own !== undefined || shared !== undefined,
          `keyword reward needs a "keywords" list in each prompt line or a keywords option; prompt ${promptLabel(s.prompt)} has neither`);
        const keywords = own !== undefined ? keywordList(own, `the "keywords" of prompt ${promptLabel(s.prompt)}`) : shared!;
        return keywords.filter((k) => s.completion.includes(k)).length / keywords.length;
      });
    },
  },
  length: {
    description: '1 − |length − target| / target, clipped to [−1, 1]: length in characters, target from the prompt line\'s "target_length", else options.target',
    make(options) {
      checkOptions('length', options, ['target']);
      if (options.target !== undefined) targetLength(options.target, 'options.target');
      return perSample((s) => {
        const own = s.meta.target_length;
        requireInput(own !== undefined || options.target !== undefined,
          `length reward needs a "target_length" field in each prompt line or a target option; prompt ${promptLabel(s.prompt)} has neither`);
        const target = own !== undefined
          ? targetLength(own, `the "target_length" of prompt ${promptLabel(s.prompt)}`)
          : targetLength(options.target, 'options.target');
        const length = [...beforeEos(s.completion)].length; // characters, not UTF-16 units
        return Math.max(-1, Math.min(1, 1 - Math.abs(length - target) / target));
      });
    },
  },
};

/** The built-in reward `name` with its options; an unknown name is a RemaxInputError listing the known ones. */
export function builtinReward(name: string, options: Record<string, unknown> = {}): RewardFunction {
  const reward = Object.hasOwn(BUILTIN_REWARDS, name) ? BUILTIN_REWARDS[name] : undefined;
  if (reward === undefined) {
    throw new RemaxInputError(`unknown reward "${name}"; the built-in rewards are ${Object.keys(BUILTIN_REWARDS).join(', ')} (or give the path of a .js/.ts reward module)`);
  }
  return reward.make(options);
}

const perSample = (score: (s: RewardSample) => number): RewardFunction => (samples) => samples.map(score);

function checkOptions(name: string, options: Record<string, unknown>, known: string[]): void {
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  requireInput(unknown.length === 0,
    `the ${name} reward has no option "${unknown[0]}"; ${known.length ? `its options are ${known.join(', ')}` : 'it takes no options'}`);
}

/** The completion up to the EOS text, if a decoder left one in. */
function beforeEos(completion: string): string {
  const end = completion.indexOf(EOS_TEXT);
  return end < 0 ? completion : completion.slice(0, end);
}

/** The answer part of a completion: up to the first newline or EOS text, trimmed. Leading blank lines are skipped. */
function firstLine(completion: string): string {
  const text = beforeEos(completion).replace(/^\s+/, '');
  const end = text.indexOf('\n');
  return (end < 0 ? text : text.slice(0, end)).trim();
}

function answerOf(s: RewardSample, reward: string): string {
  const answer = s.meta.answer;
  requireInput(answer !== undefined && answer !== null,
    `${reward} needs an "answer" field in each prompt line; prompt ${promptLabel(s.prompt)} has none`);
  return String(answer).trim();
}

function keywordList(value: unknown, where: string): string[] {
  requireInput(Array.isArray(value) && value.length > 0 && value.every((k) => typeof k === 'string' && k !== ''),
    `keyword reward: ${where} must be a non-empty list of non-empty strings, got ${JSON.stringify(value)}`);
  return value as string[];
}

function targetLength(value: unknown, where: string): number {
  const target = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  requireInput(typeof target === 'number' && Number.isFinite(target) && target > 0,
    `length reward: ${where} must be a number of characters > 0, got ${JSON.stringify(value)}`);
  return target;
}
