import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_REWARDS, builtinReward } from '../../src/core/builtin-rewards';
import { RemaxInputError } from '../../src/core/errors';
import type { RewardSample } from '../../src/core/rewards';

const sample = (completion: string, meta: Record<string, unknown> = {}, prompt = 'Q: 2+2?'): RewardSample =>
  ({ prompt, completion, promptIds: [1, 5], completionIds: [7], meta });
/** Scores samples with a built-in reward (all built-ins are synchronous). */
const score = (name: string, samples: RewardSample[], options: Record<string, unknown> = {}): number[] =>
  builtinReward(name, options)(samples) as number[];

function throwsInput(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RemaxInputError, `expected a RemaxInputError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('every built-in has a description; an unknown name lists the known ones', () => {
  for (const [name, reward] of Object.entries(BUILTIN_REWARDS)) assert.ok(reward.description.length > 10, name);
  throwsInput(() => builtinReward('exact'), /unknown reward "exact"/, /exact-match, contains-answer, regex, keyword, length/);
  throwsInput(() => builtinReward('toString'), /unknown reward "toString"/);
});

test('unknown options are rejected by name', () => {
  throwsInput(() => builtinReward('exact-match', { answer: '4' }), /the exact-match reward has no option "answer"; it takes no options/);
  throwsInput(() => builtinReward('regex', { patern: 'x' }), /no option "patern"; its options are pattern, flags/);
});

test('exact-match: the first line of the completion (before EOS text), trimmed, against the trimmed answer', () => {
  const meta = { answer: ' 4 ' };
  assert.deepEqual(score('exact-match', [
    sample(' 4', meta), sample('4\nbecause 2+2=4', meta), sample('4</s>junk', meta), sample('\n 4 \n', meta),
    sample('44', meta), sample('four', meta), sample('', meta), sample('4.', meta),
  ]), [1, 1, 1, 1, 0, 0, 0, 0]);
  assert.deepEqual(score('exact-match', [sample('42', { answer: 42 }), sample('true', { answer: true })]), [1, 1], 'String(answer)');
  throwsInput(() => score('exact-match', [sample('4', {}, 'What is 2+2?')]),
    /exact-match needs an "answer" field in each prompt line; prompt "What is 2\+2\?" has none/);
});

test('contains-answer: the answer anywhere in the completion', () => {
  const meta = { answer: 'Paris ' };
  assert.deepEqual(score('contains-answer', [
    sample('It is Paris.', meta), sample('paris', meta), sample('Lyon', meta), sample('Lyon</s>Paris', meta),
  ]), [1, 0, 0, 0]);
  throwsInput(() => score('contains-answer', [sample('x', { answer: null })]), /contains-answer needs an "answer" field/);
});

test('regex: the prompt line\'s pattern first, else the option; flags apply', () => {
  assert.deepEqual(score('regex', [sample('The answer is 42'), sample('no digits')], { pattern: '\\d+' }), [1, 0]);
  assert.deepEqual(score('regex', [sample('abc', { pattern: '^a' }), sample('abc', { pattern: '^b' })], { pattern: 'c' }), [1, 0]);
  assert.deepEqual(score('regex', [sample('HELLO')], { pattern: 'hello', flags: 'i' }), [1]);
  // A "g" flag makes RegExp.test stateful; the reward must not be.
  const fn = builtinReward('regex', { pattern: 'a', flags: 'g' });
  assert.deepEqual([fn([sample('a')]), fn([sample('a')]), fn([sample('a')])], [[1], [1], [1]]);
  throwsInput(() => builtinReward('regex', { pattern: '(' }), /options.pattern "\(" .* is not a valid regular expression/);
  throwsInput(() => score('regex', [sample('x', { pattern: '[' }, 'p')]), /the pattern of prompt "p" "\[" .* is not a valid regular expression/);
  throwsInput(() => score('regex', [sample('x', {}, 'p')]), /regex reward needs a "pattern" field .* prompt "p" has neither/);
});

test('keyword: the fraction of keywords present', () => {
  const meta = { keywords: ['cat', 'dog', 'sun', 'park'] };
  assert.deepEqual(score('keyword', [sample('the cat and the dog', meta), sample('nothing', meta), sample('cat dog sun park', meta)]), [0.5, 0, 1]);
  assert.deepEqual(score('keyword', [sample('a cat'), sample('a cat', { keywords: ['dog'] })], { keywords: ['cat', 'hat'] }), [0.5, 0]);
  throwsInput(() => builtinReward('keyword', { keywords: 'cat' }), /options.keywords must be a non-empty list of non-empty strings, got "cat"/);
  throwsInput(() => score('keyword', [sample('x', { keywords: [] }, 'p')]), /the "keywords" of prompt "p" must be a non-empty list/);
  throwsInput(() => score('keyword', [sample('x', {}, 'p')]), /keyword reward needs a "keywords" list .* prompt "p" has neither/);
});

test('length: 1 − |len − target| / target clipped to [−1, 1], in characters', () => {
  const t = { target: 10 };
  assert.deepEqual(score('length', [
    sample('x'.repeat(10)), sample('x'.repeat(5)), sample('x'.repeat(15)), sample(''), sample('x'.repeat(20)), sample('x'.repeat(100)),
  ], t), [1, 0.5, 0.5, 0, 0, -1]);
  assert.deepEqual(score('length', [sample('é'.repeat(4)), sample('😀'.repeat(4))], { target: 4 }), [1, 1], 'characters, not UTF-16 units');
  assert.deepEqual(score('length', [sample('xx</s>', { target_length: 2 }), sample('xx', { target_length: '4' })], t), [1, 0.5]);
  throwsInput(() => builtinReward('length', { target: 0 }), /options.target must be a number of characters > 0, got 0/);
  throwsInput(() => score('length', [sample('x', { target_length: 'long' }, 'p')]), /the "target_length" of prompt "p" must be a number/);
  throwsInput(() => score('length', [sample('x', {}, 'p')]), /length reward needs a "target_length" field .* prompt "p" has neither/);
});

test('built-ins are deterministic and keep the sample order', () => {
  const samples = [sample('4', { answer: 4 }), sample('5', { answer: 4 }), sample('4', { answer: 5 })];
  const fn = builtinReward('exact-match');
  assert.deepEqual(fn(samples), [1, 0, 0]);
  assert.deepEqual(fn(samples), fn(samples));
});
