/**
 * Supervised fine-tuning data: token sequences with per-token loss weights, read from .txt or .jsonl bytes, and the
 * seeded, resumable order in which training visits them.
 *
 * An example's weights[t] is the loss weight of predicting ids[t] from ids[<t]; weights[0] is always 0 (nothing
 * predicts the first token).
 *
 * .txt: documents separated by one or more blank (or whitespace-only) lines, each trimmed, encoded as a prompt (with
 *   BOS when the model's prompts start with it) and followed by the tokenizer's EOS, all concatenated into one stream and cut into windows of seqLen tokens. Consecutive windows share
 *   one token (window k starts at k·(seqLen−1), as llama2.c cuts its chunks), so every token after the first is a
 *   target exactly once. The last, shorter window is kept when it predicts at least one token (2+ tokens). Weights
 *   are 1 from t = 1 on, also across document boundaries.
 * .jsonl: one JSON object per non-empty line:
 *   {"text": "..."}                          ids = encode(text) + EOS, weight 1 on every token after BOS.
 *   {"prompt": "...", "completion": "..."}   ids = encode(prompt + completion) + EOS (the tokenization the model sees
 *     for the whole text). BPE merges may join the last prompt characters with the first completion characters, so
 *     the boundary is where encode(prompt) stops being a prefix of those ids: tokens from there on (a token straddling
 *     the boundary counts as completion) and the EOS get weight 1, the prompt tokens 0. The prompt may be empty.
 *   {"messages": [{"role": "user", …}, …, {"role": "assistant", "content": "..."}]}  the conversation through the
 *     tokenizer's chat template; weight 1 on the last (assistant) turn's tokens (chatExample).
 *   Other keys (an "id", say) are ignored.
 */
import { RemaxInputError, preview, requireInput } from './errors';
import { Prng } from './prng';
import { samplerState } from './seed';
import type { TextTokenizer } from './tokenizers/types';
import { renderChat, type ChatMessage, type ChatSettings } from './tokenizers/chat-template';
import type { TrainingExample } from './training';

export type { TrainingExample };

export interface SftLoadOptions {
  /** Cut .jsonl examples longer than seqLen to their first seqLen tokens instead of rejecting them. Default false. */
  truncate?: boolean;
  /** How {"messages"} conversations are rendered. */
  chat?: ChatSettings;
}

const ACCEPTED = 'a .txt file (documents separated by blank lines) or a .jsonl file (one {"text": ...} or {"prompt": ..., "completion": ...} object per line)';

/** Reads training examples from the bytes of `fileName` (its extension picks the format); every error names the file. */
export function loadSftExamples(
  bytes: Uint8Array, fileName: string, tokenizer: TextTokenizer, seqLen: number, options: SftLoadOptions = {},
): TrainingExample[] {
  requireInput(Number.isSafeInteger(seqLen) && seqLen >= 2,
    `--seq must be an integer ≥ 2 (a sequence needs a token to predict from and one to predict), got ${seqLen}`);
  const extension = /\.[^./\\]*$/.exec(fileName)?.[0].toLowerCase() ?? '';
  requireInput(extension === '.txt' || extension === '.jsonl',
    `${fileName}: unknown training data format "${extension || '(no extension)'}"; use ${ACCEPTED}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new RemaxInputError(`${fileName} is not UTF-8 text; save it as UTF-8`);
  }
  const lines = text.split('\n').map((line) => line.replace(/\r$/, ''));
  const examples = extension === '.txt'
    ? textWindows(lines, fileName, tokenizer, seqLen)
    : jsonlExamples(lines, fileName, tokenizer, seqLen, options.truncate ?? false, options.chat ?? {});
  requireInput(examples.length > 0, `${fileName} holds no training examples (it is empty or blank); use ${ACCEPTED}`);
  return examples;
}

/** The token that ends a text: the tokenizer's EOS (llama2.c: 2), or nothing for a tokenizer without one. */
const endOfText = (tokenizer: TextTokenizer): number[] => tokenizer.eosIds.slice(0, 1);

/** tokenizer.encodePrompt with the file position prepended to its errors (a character the tokenizer cannot encode). */
function encodeAt(tokenizer: TextTokenizer, text: string, where: string): number[] {
  return atLine(where, () => tokenizer.encodePrompt(text));
}

/** Runs an encoder with the file position prepended to its errors. */
function atLine(where: string, encode: () => number[]): number[] {
  try {
    return encode();
  } catch (error) {
    if (error instanceof RemaxInputError) throw new RemaxInputError(`${where}: ${error.message}`);
    throw error;
  }
}

function textWindows(lines: string[], fileName: string, tokenizer: TextTokenizer, seqLen: number): TrainingExample[] {
  // Documents: runs of non-blank lines; remember where each starts for error messages.
  const stream: number[] = [];
  let doc: string[] = [], docLine = 0;
  const flush = (): void => {
    const body = doc.join('\n').trim();
    doc = [];
    if (body === '') return;
    for (const id of encodeAt(tokenizer, body, `${fileName} line ${docLine}`)) stream.push(id); // no spread: documents can be long
    stream.push(...endOfText(tokenizer));
  };
  lines.forEach((line, i) => {
    if (line.trim() === '') return flush();
    if (doc.length === 0) docLine = i + 1;
    doc.push(line);
  });
  flush();

  const examples: TrainingExample[] = [];
  for (let start = 0; stream.length - start >= 2; start += seqLen - 1) {
    const ids = stream.slice(start, start + seqLen);
    examples.push({ ids, weights: ids.map((_, t) => (t === 0 ? 0 : 1)) });
  }
  return examples;
}

function jsonlExamples(lines: string[], fileName: string, tokenizer: TextTokenizer, seqLen: number, truncate: boolean, chat: ChatSettings): TrainingExample[] {
  const examples: TrainingExample[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${fileName} line ${i + 1}`;
    const start = JSON.stringify(line.length > 40 ? `${line.slice(0, 40)}…` : line);
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new RemaxInputError(`${where} is not valid JSON (${(error as Error).message}): ${start}; ` +
        `each line must be one JSON object such as {"text": "..."} or {"prompt": "...", "completion": "..."}`);
    }
    requireInput(typeof value === 'object' && value !== null && !Array.isArray(value),
      `${where} is ${Array.isArray(value) ? 'an array' : `a JSON ${value === null ? 'null' : typeof value}`}, not an object: ${start}; ` +
        `write {"text": "..."} or {"prompt": "...", "completion": "..."}`);
    const example = toExample(value as Record<string, unknown>, where, tokenizer, chat);
    if (example.ids.length > seqLen) {
      requireInput(truncate,
        `${where}: the example has ${example.ids.length} tokens (with BOS and EOS) but the sequence length is ${seqLen}; ` +
          `use a larger --seq (up to the model's seq_len), shorten the example, or truncate long examples (--truncate)`);
      example.ids.length = seqLen;
      example.weights.length = seqLen;
      requireInput(example.weights.some((w) => w > 0),
        `${where}: the prompt alone fills the ${seqLen}-token sequence, so truncation leaves no completion token to learn; ` +
          `use a larger --seq or a shorter prompt`);
    }
    examples.push(example);
  });
  return examples;
}

function toExample(object: Record<string, unknown>, where: string, tokenizer: TextTokenizer, chat: ChatSettings): TrainingExample {
  const has = (key: string): boolean => Object.prototype.hasOwnProperty.call(object, key);
  const field = (key: string): string => {
    const value = object[key];
    requireInput(typeof value === 'string', `${where}: "${key}" must be a string, got ${preview(value)}`);
    return value;
  };
  const isPair = has('prompt') || has('completion');
  requireInput(!(has('text') && isPair),
    `${where}: the object has both "text" and "prompt"/"completion"; use {"text": ...} or {"prompt": ..., "completion": ...}, not both`);

  if (has('messages')) {
    requireInput(!has('text') && !isPair, `${where}: the object has "messages" and also "text" or "prompt"/"completion"; give one form`);
    return chatExample(object.messages, where, tokenizer, chat);
  }
  if (has('text')) {
    const text = field('text');
    requireInput(text !== '', `${where}: "text" is empty; remove the line or give it some text`);
    const ids = [...encodeAt(tokenizer, text, where), ...endOfText(tokenizer)];
    return { ids, weights: ids.map((_, t) => (t === 0 ? 0 : 1)) };
  }
  requireInput(isPair,
    `${where}: the object has neither "text" nor "prompt" and "completion" (its keys: ${Object.keys(object).join(', ') || 'none'}); ` +
      `write {"text": "..."} or {"prompt": "...", "completion": "..."}`);
  requireInput(has('prompt'), `${where}: "completion" has no "prompt"; add "prompt": "..." (it may be "")`);
  requireInput(has('completion'), `${where}: "prompt" has no "completion"; add the "completion" the model should learn`);
  const prompt = field('prompt'), completion = field('completion');
  requireInput(completion !== '', `${where}: "completion" is empty; give the text the model should learn to produce`);

  return pairExample(prompt, completion, where, tokenizer);
}

/** A prompt and its completion: the loss on the completion's tokens and EOS (see the file comment). */
export function pairExample(prompt: string, completion: string, where: string, tokenizer: TextTokenizer): TrainingExample {
  const promptIds = encodeAt(tokenizer, prompt, where);
  const ids = [...encodeAt(tokenizer, prompt + completion, where), ...endOfText(tokenizer)];
  return { ids, weights: completionWeights(promptIds, ids) };
}

/** Weight 1 from where the prompt's ids stop being a prefix of the whole text's ids (a merged piece counts as completion). */
function completionWeights(promptIds: number[], ids: number[]): number[] {
  let boundary = 0;
  while (boundary < promptIds.length && promptIds[boundary] === ids[boundary]) boundary++;
  return ids.map((_, t) => (t >= boundary && t > 0 ? 1 : 0));
}

/**
 * {"messages": [..., {"role": "assistant", "content": "..."}]}: the whole conversation through the chat template; the
 * loss is on the last (assistant) turn: the tokens after the prompt the template renders for the turns before it with
 * the generation prompt (as apply_chat_template), end-of-turn tokens included. No EOS is added: the template ends turns.
 */
export function chatExample(messages: unknown, where: string, tokenizer: TextTokenizer, chat: ChatSettings): TrainingExample {
  requireInput(Array.isArray(messages) && messages.length >= 1 && messages.every((m) =>
    typeof m === 'object' && m !== null && typeof m.role === 'string' && typeof m.content === 'string'),
  `${where}: "messages" must be a list of {"role": "...", "content": "..."} objects`);
  const turns = messages as ChatMessage[];
  requireInput(turns.at(-1)!.role === 'assistant',
    `${where}: the last message is a "${turns.at(-1)!.role}" message; an SFT conversation ends with the "assistant" reply to learn`);
  // --no-chat-template: the earlier turns' contents are the prompt, the reply the completion.
  if (chat.disabled) return pairExample(turns.slice(0, -1).map((m) => m.content).join('\n'), turns.at(-1)!.content, where, tokenizer);
  const template = chat.template ?? tokenizer.chatTemplate;
  requireInput(template !== undefined, `${where}: "messages" need a chat template, and tokenizer ${tokenizer.source} has none; ` +
    'give one with --chat-template FILE, or --no-chat-template, or use {"prompt", "completion"}');
  const source = chat.templateSource ?? `the chat template of ${tokenizer.source}`;
  const render = (part: ChatMessage[], addGenerationPrompt: boolean) => atLine(where, () => tokenizer.encode(
    renderChat(template, part, { addGenerationPrompt, specialTokenStrings: tokenizer.specialTokenStrings, source }),
    { specialTokens: false }));
  const promptIds = render(turns.slice(0, -1), true);
  const ids = render(turns, false);
  const weights = completionWeights(promptIds, ids);
  requireInput(weights.some((w) => w > 0), `${where}: the chat template renders the assistant turn as nothing; check the messages`);
  return { ids, weights };
}

// ---------------------------------------------------------------------------------------------------------------------
// Order

/** The seeded permutation of 0..count−1 for `epoch`: Fisher-Yates driven by Prng, so identical on every JS engine. */
function epochPermutation(count: number, seed: number, epoch: number): number[] {
  // Each epoch gets its own stream keyed by (seed, epoch): restoring needs no replay of earlier epochs.
  const rng = new Prng(Number(BigInt.asUintN(53, samplerState(seed, epoch))));
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rng.nextFloat64() * (i + 1)); // exact IEEE operations: portable
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** Where a DataOrder is: `index` examples of epoch `epoch` have been handed out (0 ≤ index < count). */
export interface DataPosition {
  epoch: number;
  index: number;
}

/** A seeded order over `count` examples: a fresh permutation every epoch, resumable from its position. */
export class DataOrder {
  readonly count: number;
  readonly seed: number;
  private epoch = 0;
  private index = 0;
  private order: number[] | undefined; // the current epoch's permutation, computed when first needed

  constructor(count: number, seed: number) {
    requireInput(Number.isSafeInteger(count) && count > 0, `the training data must hold at least one example, got ${count}`);
    requireInput(Number.isSafeInteger(seed), `--seed must be an integer, got ${seed}`);
    this.count = count;
    this.seed = seed;
  }

  /** The order continued from `position` (as saved from `position` of an order with the same count and seed). */
  static restore(count: number, seed: number, position: DataPosition): DataOrder {
    const order = new DataOrder(count, seed);
    const { epoch, index } = position;
    requireInput(Number.isSafeInteger(epoch) && epoch >= 0 && Number.isSafeInteger(index) && index >= 0 && index < count,
      `the saved data position (epoch ${epoch}, example ${index}) does not fit a dataset of ${count} examples; ` +
        `resume with the training data the run started with`);
    order.epoch = epoch;
    order.index = index;
    return order;
  }

  get position(): DataPosition {
    return { epoch: this.epoch, index: this.index };
  }

  /** The next `size` example indices; a batch that crosses the end of an epoch continues in the next permutation. */
  nextBatch(size: number): number[] {
    requireInput(Number.isSafeInteger(size) && size > 0, `the batch size must be a positive integer, got ${size}`);
    const batch: number[] = [];
    while (batch.length < size) {
      this.order ??= epochPermutation(this.count, this.seed, this.epoch);
      batch.push(this.order[this.index]!);
      if (++this.index === this.count) {
        this.epoch++;
        this.index = 0;
        this.order = undefined;
      }
    }
    return batch;
  }
}
