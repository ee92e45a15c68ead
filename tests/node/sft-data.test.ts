import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataOrder, loadSftExamples, type TrainingExample } from '../../src/core/sft-data';
import { BOS_ID, EOS_ID, Tokenizer } from '../../src/core/tokenizers/llama2c';
import { RemaxInputError } from '../../src/core/errors';
import { readShared, skipUnlessShared } from './shared-data';
import { buildTokenizerBin, syntheticTokenizer } from './fixtures';
import { tokenizerFromHfFiles } from '../../src/core/tokenizers/hf-tokenizer';


// Without pieces every character is its byte-fallback token: encode(s) = BOS, then byte + 3 for each byte of " " + s.
const bytesTok = syntheticTokenizer();
const byteIds = (text: string): number[] => [BOS_ID, ...[...new TextEncoder().encode(' ' + text)].map((b) => b + 3)];
// With merges: ' '=259 'a'=260 'b'=261 'x'=262 'ab'=263 ' x'=264.
const mergeTok = syntheticTokenizer([[' ', 0], ['a', 0], ['b', 0], ['x', 0], ['ab', 2], [' x', 1]]);

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const jsonl = (...lines: string[]): Uint8Array => utf8(lines.join('\n'));
const ones = (n: number): number[] => [0, ...Array<number>(n - 1).fill(1)];

function throwsInput(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RemaxInputError, `expected a RemaxInputError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// .txt

test('.txt: documents split at blank lines become one BOS…EOS stream cut into windows sharing one token', () => {
  // Two documents: blank, whitespace-only and \r\n lines all separate; the first keeps its single newline.
  const text = '\n\nab\r\ncd\r\n\r\n  \n\t\nef\n';
  const stream = [...byteIds('ab\ncd'), EOS_ID, ...byteIds('ef'), EOS_ID];
  assert.equal(stream.length, 13);

  const six = loadSftExamples(utf8(text), 'stories.txt', bytesTok, 6);
  assert.deepEqual(six.map((e) => e.ids), [stream.slice(0, 6), stream.slice(5, 11), stream.slice(10, 13)]);
  assert.deepEqual(six.map((e) => e.weights), [ones(6), ones(6), ones(3)]);

  // seqLen 7: windows start at 0 and 6; the 1-token tail (nothing to predict) is dropped.
  const seven = loadSftExamples(utf8(text), 'stories.txt', bytesTok, 7);
  assert.deepEqual(seven.map((e) => e.ids), [stream.slice(0, 7), stream.slice(6, 13)]);

  // Every stream token after the first is predicted (weight 1, not at t = 0) exactly once.
  for (const examples of [six, seven, loadSftExamples(utf8(text), 'stories.txt', bytesTok, 2)]) {
    const targets = examples.flatMap((e) => e.ids.filter((_, t) => e.weights[t] === 1));
    assert.deepEqual(targets, stream.slice(1));
  }
});

test('.txt: one short document is one window; the extension is case-insensitive', () => {
  const [only, ...rest] = loadSftExamples(utf8('hi'), 'NOTES.TXT', bytesTok, 256);
  assert.equal(rest.length, 0);
  assert.deepEqual(only, { ids: [...byteIds('hi'), EOS_ID], weights: ones(5) });
});

test('.txt: empty or blank files and untokenizable text are errors naming the file (and line)', () => {
  throwsInput(() => loadSftExamples(utf8(''), 'empty.txt', bytesTok, 8), /^empty\.txt holds no training examples/);
  throwsInput(() => loadSftExamples(utf8('\n  \n\n'), 'blank.txt', bytesTok, 8), /^blank\.txt holds no training examples/);
  const tiny = Tokenizer.fromBytes(buildTokenizerBin([{ piece: '<unk>', score: 0 }, { piece: 'B', score: 0 }, { piece: 'E', score: 0 }]), 'tiny.bin');
  throwsInput(() => loadSftExamples(utf8('\n\nfine?\n\nhello'), 'doc.txt', tiny, 8), /^doc\.txt line 3: tokenizer tiny\.bin .* has no byte-fallback token/);
});

// ---------------------------------------------------------------------------------------------------------------------
// .jsonl

test('.jsonl {"text"}: BOS + text + EOS, weight 1 on every token after BOS; blank lines and extra keys are ignored', () => {
  const examples = loadSftExamples(jsonl('{"text": "hello", "id": 7}', '', '   ', '{"text":"a b"}\r', ''), 'data.jsonl', bytesTok, 64);
  assert.deepEqual(examples, [
    { ids: [...byteIds('hello'), EOS_ID], weights: ones(8) },
    { ids: [...byteIds('a b'), EOS_ID], weights: ones(6) },
  ]);
});

test('.jsonl {"prompt","completion"}: ids = encode(prompt + completion) + EOS, weights on the completion and EOS', () => {
  // Byte-level tokenizer: the boundary is exact.
  const [plain] = loadSftExamples(jsonl('{"prompt": "Q:", "completion": " yes"}'), 'qa.jsonl', bytesTok, 64);
  assert.deepEqual(plain!.ids, [...byteIds('Q: yes'), EOS_ID]);
  assert.deepEqual(plain!.weights, [0, 0, 0, 0, 1, 1, 1, 1, 1]); // BOS ' ' 'Q' ':' | ' ' 'y' 'e' 's' EOS

  // "xa" + "b": the merge "ab" straddles the boundary; that token counts as completion.
  assert.deepEqual(mergeTok.encode('xa'), [BOS_ID, 264, 260]);
  const [straddle] = loadSftExamples(jsonl('{"prompt": "xa", "completion": "b"}'), 'qa.jsonl', mergeTok, 64);
  assert.deepEqual(straddle, { ids: [BOS_ID, 264, 263, EOS_ID], weights: [0, 0, 1, 1] });

  // An empty prompt: everything after BOS is completion.
  const [unconditional] = loadSftExamples(jsonl('{"prompt": "", "completion": "ab"}'), 'qa.jsonl', mergeTok, 64);
  assert.deepEqual(unconditional, { ids: [BOS_ID, 259, 263, EOS_ID], weights: [0, 1, 1, 1] });
});

test('.jsonl: an example longer than seqLen is an error naming the line and both lengths, or truncated on request', () => {
  const data = jsonl('{"text": "ok"}', '{"text": "far too long"}');
  throwsInput(() => loadSftExamples(data, 'long.jsonl', bytesTok, 8),
    /^long\.jsonl line 2: the example has 15 tokens \(with BOS and EOS\) but the sequence length is 8; use a larger --seq/, /--truncate/);
  const [, cut] = loadSftExamples(data, 'long.jsonl', bytesTok, 8, { truncate: true });
  assert.deepEqual(cut, { ids: byteIds('far too long').slice(0, 8), weights: ones(8) });

  // A prompt that fills the whole sequence leaves nothing to learn even when truncating.
  const prompt = jsonl('{"prompt": "a long prompt", "completion": " x"}');
  throwsInput(() => loadSftExamples(prompt, 'p.jsonl', bytesTok, 6, { truncate: true }), /^p\.jsonl line 1: the prompt alone fills the 6-token sequence/);
  const [kept] = loadSftExamples(prompt, 'p.jsonl', bytesTok, 16, { truncate: true });
  assert.deepEqual(kept!.weights, [...Array<number>(15).fill(0), 1], 'the first completion token survives');
});

test('.jsonl: bad lines are errors naming the file and the line', () => {
  const load = (...lines: string[]) => () => loadSftExamples(jsonl(...lines), 'train.jsonl', bytesTok, 64);
  const good = '{"text": "fine"}';
  throwsInput(load(good, '', '{"text": "unterminated', good), /^train\.jsonl line 3 is not valid JSON \(/, /: "\{\\"text\\": \\"unterminated"; each line must be one JSON object/);
  throwsInput(load(`{"text": "${'x'.repeat(100)}`), /line 1 is not valid JSON .*: "\{\\"text\\": \\"x{30}…"/); // quotes only the start
  throwsInput(load(good, '[1, 2]'), /^train\.jsonl line 2 is an array, not an object: "\[1, 2\]"/);
  throwsInput(load('"just text"'), /^train\.jsonl line 1 is a JSON string, not an object/);
  throwsInput(load('null'), /^train\.jsonl line 1 is a JSON null, not an object/);
  throwsInput(load(good, good, good, good, good, good, '{"text": ""}'), /^train\.jsonl line 7: "text" is empty/);
  throwsInput(load('{"input": "a", "output": "b"}'), /^train\.jsonl line 1: the object has neither "text" nor "prompt" and "completion" \(its keys: input, output\)/);
  throwsInput(load('{"text": "a", "prompt": "b", "completion": "c"}'), /^train\.jsonl line 1: the object has both "text" and "prompt"\/"completion"/);
  throwsInput(load('{"prompt": "b"}'), /^train\.jsonl line 1: "prompt" has no "completion"/);
  throwsInput(load('{"completion": "b"}'), /^train\.jsonl line 1: "completion" has no "prompt"/);
  throwsInput(load('{"prompt": "b", "completion": ""}'), /^train\.jsonl line 1: "completion" is empty/);
  throwsInput(load('{"text": 5}'), /^train\.jsonl line 1: "text" must be a string, got 5/);
  throwsInput(load('{"prompt": null, "completion": "x"}'), /^train\.jsonl line 1: "prompt" must be a string, got null/);
  throwsInput(load('', '  '), /^train\.jsonl holds no training examples/);
});

test('file-level errors: unknown extension, invalid UTF-8, bad seqLen', () => {
  throwsInput(() => loadSftExamples(utf8('{}'), 'data.json', bytesTok, 8), /^data\.json: unknown training data format "\.json"; use a \.txt file .* or a \.jsonl file/);
  throwsInput(() => loadSftExamples(utf8('x'), 'README', bytesTok, 8), /^README: unknown training data format "\(no extension\)"/);
  throwsInput(() => loadSftExamples(Uint8Array.from([0x61, 0xff, 0x62]), 'bad.txt', bytesTok, 8), /^bad\.txt is not UTF-8 text/);
  throwsInput(() => loadSftExamples(utf8('x'), 'a.txt', bytesTok, 1), /--seq must be an integer ≥ 2 .*got 1/);
  throwsInput(() => loadSftExamples(utf8('x'), 'a.txt', bytesTok, 2.5), /--seq must be an integer ≥ 2 .*got 2.5/);
});

const skipReal = skipUnlessShared('models/aidreams260K.tok512.bin');

test('the real aidreams260K tokenizer: prompt/completion weights cover exactly the completion text', { skip: skipReal }, () => {
  const tok = Tokenizer.fromBytes(readShared('models/aidreams260K.tok512.bin'), 'aidreams260K.tok512.bin');
  const rows = [
    { prompt: 'Lily went to the park', completion: ' and played with her ball.' },
    { prompt: 'Once upon a time,', completion: ' there was a little dog.' },
  ];
  const examples = loadSftExamples(jsonl(...rows.map((r) => JSON.stringify(r))), 'real.jsonl', tok, 256);
  examples.forEach((e: TrainingExample, i) => {
    const { prompt, completion } = rows[i]!;
    assert.deepEqual(e.ids, [...tok.encode(prompt + completion), EOS_ID]);
    const first = e.weights.indexOf(1);
    assert.ok(first > 1 && e.weights.slice(first).every((w) => w === 1) && e.weights.slice(0, first).every((w) => w === 0));
    assert.equal(tok.decode(e.ids), prompt + completion);
    const learned = tok.decode(e.ids.slice(first));
    assert.ok((prompt + completion).endsWith(learned) && learned.length >= completion.length,
      `the weighted tokens decode to the completion (plus at most a straddling piece of the prompt): ${JSON.stringify(learned)}`);
  });
  const windows = loadSftExamples(utf8('Lily went to the park.\n\nTom had a red ball.\n'), 'real.txt', tok, 8);
  const stream = [...tok.encode('Lily went to the park.'), EOS_ID, ...tok.encode('Tom had a red ball.'), EOS_ID];
  assert.deepEqual(windows.flatMap((w, k) => (k === 0 ? w.ids : w.ids.slice(1))), stream);
});

// ---------------------------------------------------------------------------------------------------------------------
// DataOrder

/** new DataOrder(10, 1): epochs 0 and 1, as computed when the order was introduced. */
const PINNED_SEED1_COUNT10 = [2, 3, 1, 6, 5, 8, 7, 9, 0, 4, 6, 3, 9, 1, 8, 5, 0, 7, 2, 4];
const take = (order: DataOrder, batches: number, size: number): number[][] => Array.from({ length: batches }, () => order.nextBatch(size));

test('DataOrder: every index once per epoch, a new permutation each epoch, batches continue across epochs', () => {
  const order = new DataOrder(10, 42);
  const epochs = [0, 1, 2].map(() => order.nextBatch(10));
  for (const epoch of epochs) assert.deepEqual([...epoch].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.notDeepEqual(epochs[0], epochs[1]);
  assert.notDeepEqual(epochs[1], epochs[2]);
  assert.deepEqual(order.position, { epoch: 3, index: 0 });

  const batched = new DataOrder(10, 42);
  const flat = take(batched, 7, 4).flat(); // 28 = 2 epochs + 8: the 3rd batch spans the epoch boundary
  assert.deepEqual(flat, epochs.flat().slice(0, 28));
  assert.deepEqual(batched.position, { epoch: 2, index: 8 });
  assert.deepEqual(new DataOrder(3, 1).nextBatch(7).length, 7, 'a batch larger than the dataset spans epochs');
});

test('DataOrder: same seed same order, another seed another order, and a pinned order (same on every engine)', () => {
  assert.deepEqual(take(new DataOrder(50, 7), 5, 13), take(new DataOrder(50, 7), 5, 13));
  assert.notDeepEqual(new DataOrder(50, 7).nextBatch(50), new DataOrder(50, 8).nextBatch(50));
  // Only integer math and exactly rounded float operations: this must not change between engines or releases.
  assert.deepEqual(new DataOrder(10, 1).nextBatch(20), PINNED_SEED1_COUNT10);
  assert.deepEqual(new DataOrder(1, 5).nextBatch(3), [0, 0, 0]);
});

test('DataOrder.restore continues exactly as the uninterrupted order, mid-epoch and at epoch boundaries', () => {
  const reference = take(new DataOrder(11, 3), 12, 5).flat(); // 60 indices, 5+ epochs
  for (const stopAfter of [0, 1, 2, 3, 6, 11]) {
    const first = new DataOrder(11, 3);
    const before = take(first, stopAfter, 5).flat();
    const saved = JSON.parse(JSON.stringify(first.position)) as { epoch: number; index: number };
    const after = take(DataOrder.restore(11, 3, saved), 12 - stopAfter, 5).flat();
    assert.deepEqual([...before, ...after], reference, `restored after ${stopAfter} batches at ${JSON.stringify(saved)}`);
  }
  assert.deepEqual(DataOrder.restore(11, 3, { epoch: 2, index: 4 }).position, { epoch: 2, index: 4 });
});

test('DataOrder: bad arguments and positions are input errors', () => {
  throwsInput(() => new DataOrder(0, 1), /at least one example, got 0/);
  throwsInput(() => new DataOrder(5, 1.5), /--seed must be an integer, got 1.5/);
  throwsInput(() => new DataOrder(5, 1).nextBatch(0), /batch size must be a positive integer, got 0/);
  throwsInput(() => DataOrder.restore(5, 1, { epoch: 0, index: 5 }),
    /saved data position \(epoch 0, example 5\) does not fit a dataset of 5 examples; resume with the training data the run started with/);
  throwsInput(() => DataOrder.restore(5, 1, { epoch: -1, index: 0 }), /epoch -1/);
});

test('{"messages"} conversations: rendered by the chat template, the loss on the last assistant turn (with its end of turn)',
  { skip: skipUnlessShared('models/hf/qwen2-tiny/tokenizer.json') }, () => {
    const qwen = tokenizerFromHfFiles(readShared('models/hf/qwen2-tiny/tokenizer.json'), readShared('models/hf/qwen2-tiny/tokenizer_config.json'), { source: 'qwen' });
    const line = JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] });
    const [e] = loadSftExamples(new TextEncoder().encode(line + '\n'), 'chat.jsonl', qwen, 64);
    const learned = e!.ids.filter((_, t) => e!.weights[t] === 1);
    // What the model learns to write after the generation prompt: the reply and its end of turn, nothing of the prompt.
    // (Qwen3's template writes an empty thinking block into the last assistant turn: that is part of the reply.)
    assert.equal(qwen.decode(learned), '<think>\n\n</think>\n\nHello!<|im_end|>\n');
    assert.ok(qwen.decode(e!.ids).startsWith('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n'));
    assert.ok(!e!.ids.slice(0, e!.weights.indexOf(1)).some((_, t) => e!.weights[t] === 1));
    // --no-chat-template: the turns' text as prompt and completion; --chat-template: another template.
    const [plain] = loadSftExamples(new TextEncoder().encode(line + '\n'), 'chat.jsonl', qwen, 64, { chat: { disabled: true } });
    assert.equal(qwen.decode(plain!.ids.filter((_, t) => plain!.weights[t] === 1), { skipSpecialTokens: true }), 'Hello!');
    const template = '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}';
    const [own] = loadSftExamples(new TextEncoder().encode(line + '\n'), 'chat.jsonl', qwen, 64, { chat: { template, templateSource: 't.jinja' } });
    assert.equal(qwen.decode(own!.ids), '[user] Hi\n[assistant] Hello!\n');
    // The prompt ends with a space that BPE merges into ' Hello': a token across the boundary counts as completion.
    assert.equal(qwen.decode(own!.ids.filter((_, t) => own!.weights[t] === 1)), ' Hello!\n');
    // A conversation must end with the reply to learn.
    const userLast = JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }] });
    assert.throws(() => loadSftExamples(new TextEncoder().encode(userLast + '\n'), 'chat.jsonl', qwen, 64), /chat\.jsonl line 1: the last message is a "user" message/);
  });
