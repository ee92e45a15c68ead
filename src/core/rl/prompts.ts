import { RemaxInputError } from '../errors';
import type { TextTokenizer } from '../tokenizers/types';
import { renderChat, type ChatMessage, type ChatSettings } from '../tokenizers/chat-template';

export type { ChatSettings };

/** One line of a prompts file: the prompt text, its tokens, and every other field of the line (e.g. the answer). */
export interface PromptRecord {
  /** The text the model is prompted with (for a chat line: the rendered template). */
  prompt: string;
  promptIds: number[];
  /** A chat line's messages, as given. */
  messages?: ChatMessage[];
  meta: Record<string, unknown>;
}

export interface PromptLoadOptions {
  seqLen: number;
  maxNewTokens: number;
  /** Keep a too-long prompt's last tokens instead of stopping with an error. */
  truncate?: boolean;
  chat?: ChatSettings;
  /**
   * Told once per file, with the line numbers, when some lines are not valid UTF-8 (their bad bytes are read as U+FFFD,
   * which the model then sees): `remax train` prints it. Default: nothing is said.
   */
  onWarning?: (message: string) => void;
}

/**
 * Reads JSONL prompts, one {"prompt": "...", ...meta} or {"messages": [{"role", "content"}, …], ...meta} per
 * non-empty line. Messages go through the chat template with the generation prompt added (the template's own BOS and
 * special tokens; the tokenizer adds none), or with chat.disabled are joined by newlines and encoded as a prompt. A
 * prompt that leaves no room for maxNewTokens in the model's context is an error naming the line, or with `truncate`
 * keeps its last tokens.
 */
export function loadPrompts(bytes: Uint8Array, source: string, tokenizer: TextTokenizer, options: PromptLoadOptions): PromptRecord[] {
  const { seqLen, maxNewTokens, truncate = false, chat = {}, onWarning } = options;
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  const badLines = onWarning ? invalidUtf8Lines(bytes) : [];
  if (badLines.length > 0) {
    const shown = badLines.slice(0, 5).join(', ') + (badLines.length > 5 ? `, … (${badLines.length} lines)` : '');
    onWarning!(`warning: ${source} is not valid UTF-8 on line${badLines.length === 1 ? '' : 's'} ${shown}: each invalid byte ` +
      'was read as U+FFFD (the replacement character) and the prompts use it; save the file as UTF-8 to train on the text it meant');
  }
  const records: PromptRecord[] = [];
  const room = seqLen - Math.max(1, Math.min(maxNewTokens, seqLen - 1));
  const shape = 'each line must be {"prompt": "...", ...} or {"messages": [{"role": "user", "content": "..."}], ...}';
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const where = `${source} line ${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new RemaxInputError(`${where} is not valid JSON: ${JSON.stringify(line.slice(0, 60))}; ${shape}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RemaxInputError(`${where} is not a JSON object; ${shape}`);
    const record = toRecord(value as Record<string, unknown>, where, shape, tokenizer, chat);
    if (record.promptIds.length === 0) {
      throw new RemaxInputError(`${where}: the prompt encodes to no tokens (an empty prompt, and tokenizer ${tokenizer.source} adds no BOS); ` +
        'give it some text: a response needs at least one token to follow');
    }
    if (record.promptIds.length > room) {
      if (!truncate) {
        throw new RemaxInputError(`${where}: the prompt has ${record.promptIds.length} tokens, but with --max-new-tokens ${maxNewTokens} ` +
          `only ${room} fit the model's context of ${seqLen}; shorten it, lower --max-new-tokens, or pass --truncate`);
      }
      // The first token (BOS, or a chat template's first) stays: the model expects its text to start that way.
      record.promptIds = [record.promptIds[0]!, ...record.promptIds.slice(record.promptIds.length - room + 1)];
    }
    records.push(record);
  });
  if (records.length === 0) throw new RemaxInputError(`${source} has no prompts: give one {"prompt": "..."} per line`);
  return records;
}

function toRecord(value: Record<string, unknown>, where: string, shape: string, tokenizer: TextTokenizer, chat: ChatSettings): PromptRecord {
  const { prompt, messages, ...meta } = value;
  if (prompt !== undefined && messages !== undefined) throw new RemaxInputError(`${where} has both "prompt" and "messages"; give one of them`);
  if (typeof prompt === 'string') return { prompt, promptIds: encodeAt(() => tokenizer.encodePrompt(prompt), where), meta };
  if (messages === undefined) throw new RemaxInputError(`${where} has no "prompt" string and no "messages"; ${shape}`);
  const turns = checkMessages(messages, where);
  if (chat.disabled) {
    const plain = turns.map((m) => m.content).join('\n');
    return { prompt: plain, promptIds: encodeAt(() => tokenizer.encodePrompt(plain), where), messages: turns, meta };
  }
  const template = chat.template ?? tokenizer.chatTemplate;
  if (template === undefined) {
    throw new RemaxInputError(`${where} has "messages" but tokenizer ${tokenizer.source} has no chat template: ` +
      'give one with --chat-template FILE, send the contents as plain text with --no-chat-template, or use "prompt"');
  }
  const templateSource = chat.templateSource ?? `the chat template of ${tokenizer.source}`;
  const rendered = encodeAt(() => renderChat(template, turns, { addGenerationPrompt: true, specialTokenStrings: tokenizer.specialTokenStrings, source: templateSource }), where);
  // As apply_chat_template: the rendered text without the tokenizer's own special tokens (the template has its BOS).
  return { prompt: rendered, promptIds: encodeAt(() => tokenizer.encode(rendered, { specialTokens: false }), where), messages: turns, meta };
}

function checkMessages(messages: unknown, where: string): ChatMessage[] {
  const ok = Array.isArray(messages) && messages.length > 0 && messages.every((m) =>
    typeof m === 'object' && m !== null && typeof (m as ChatMessage).role === 'string' && typeof (m as ChatMessage).content === 'string');
  if (!ok) throw new RemaxInputError(`${where}: "messages" must be a non-empty list of {"role": "user", "content": "..."} objects`);
  return messages as ChatMessage[];
}

/** Runs an encoder, with the line prepended to its errors (a character the tokenizer cannot encode, a failing template). */
function encodeAt<T>(encode: () => T, where: string): T {
  try {
    return encode();
  } catch (error) {
    if (error instanceof RemaxInputError) throw new RemaxInputError(`${where}: ${error.message}`);
    throw error;
  }
}

/** 1-based numbers of the lines of `bytes` (split at "\n") that are not valid UTF-8; [] fast when the whole file is. */
export function invalidUtf8Lines(bytes: Uint8Array): number[] {
  const strict = new TextDecoder('utf-8', { fatal: true });
  try {
    strict.decode(bytes);
    return [];
  } catch {
    // Some line is bad: find which (a newline byte never belongs to a multi-byte sequence, so lines decode alone).
  }
  const bad: number[] = [];
  let start = 0, line = 1;
  for (;;) {
    const end = bytes.indexOf(0x0a, start);
    try {
      strict.decode(bytes.subarray(start, end < 0 ? bytes.length : end));
    } catch {
      bad.push(line);
    }
    if (end < 0) return bad;
    start = end + 1;
    line++;
  }
}
