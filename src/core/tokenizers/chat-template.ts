/**
 * Chat templates: the Jinja template a tokenizer carries (tokenizer_config.json's chat_template, GGUF
 * tokenizer.chat_template) rendered with @huggingface/jinja, Hugging Face's own renderer for them. Portable.
 */
import { Template } from '@huggingface/jinja';
import { RemaxInputError, preview, requireInput } from '../errors';
import type { SpecialTokenStrings, TextTokenizer } from './types';

/** A turn: role ("system", "user", "assistant", "tool") and text; templates may read more fields (tool_calls, …). */
export interface ChatMessage {
  role: string;
  content: string;
  [field: string]: unknown;
}

/** How data given as chat messages is rendered (train's prompts, sft's conversations). */
export interface ChatSettings {
  /** A template instead of the tokenizer's own (--chat-template FILE). */
  template?: string;
  templateSource?: string;
  /** --no-chat-template: the messages' contents are joined by newlines and used as plain text instead. */
  disabled?: boolean;
}

export interface RenderChatOptions {
  /** End with the opening of the assistant's turn (transformers' add_generation_prompt). */
  addGenerationPrompt: boolean;
  /** bos_token, eos_token, … as the template refers to them. */
  specialTokenStrings: SpecialTokenStrings;
  /** Where the template came from ("…/tokenizer_config.json", "GGUF tokenizer.chat_template"), named in errors. */
  source: string;
  /** More variables for the template, e.g. { enable_thinking: false } (Qwen3), tools, documents. */
  variables?: Record<string, unknown>;
}

/** The most numbers a template's range() may produce: far above any chat (one per message or tool). */
export const MAX_TEMPLATE_RANGE = 1_000_000;

/**
 * range() for templates, as Python's (integer arguments, step not zero) and bounded: @huggingface/jinja's own builds
 * any array it is asked for, so `range(99999999999)` or a step of 1e-16 ran until V8 aborted the process.
 */
function boundedRange(...args: unknown[]): number[] {
  requireInput(args.length >= 1 && args.length <= 3, `range() takes 1 to 3 arguments, got ${args.length}`);
  requireInput(args.every((a) => Number.isSafeInteger(a)), `range() arguments must be integers, got ${args.map(String).join(', ')}`);
  const [start, stop, step] = args.length === 1 ? [0, args[0] as number, 1] : [args[0] as number, args[1] as number, (args[2] ?? 1) as number];
  requireInput(step !== 0, 'range() step must not be zero');
  const length = Math.max(0, Math.ceil((stop - start) / step));
  requireInput(length <= MAX_TEMPLATE_RANGE, `range(${args.join(', ')}) has ${length} numbers, more than the ${MAX_TEMPLATE_RANGE} a chat template may ask for`);
  return Array.from({ length }, (_, i) => start + i * step);
}

/** What the template's `range` is renamed to (Template.render declares the library's range and refuses a second). */
const BOUNDED_RANGE = '__remax_bounded_range__';

/** Points every use of the name `range` in a parsed template (not `x.range`, not `f(range=…)`) at boundedRange. */
function useBoundedRange(node: unknown): void {
  if (Array.isArray(node)) {
    for (const child of node) useBoundedRange(child);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const n = node as Record<string, unknown>;
  if (n.type === 'Identifier' && n.value === 'range') {
    n.value = BOUNDED_RANGE;
    return;
  }
  for (const [key, child] of Object.entries(n)) {
    if ((n.type === 'MemberExpression' && key === 'property' && !n.computed) || (n.type === 'KeywordArgumentExpression' && key === 'key')) continue;
    useBoundedRange(child);
  }
}

function checkMessages(messages: readonly ChatMessage[], source: string): void {
  requireInput(Array.isArray(messages), `rendering the chat template of ${source}: messages must be a list of {role, content}`);
  messages.forEach((m, i) =>
    requireInput(
      typeof m === 'object' && m !== null && typeof m.role === 'string' && typeof m.content === 'string',
      `rendering the chat template of ${source}: messages[${i}] must be {"role": string, "content": string}, ` +
        `got ${preview(m)}`,
    ),
  );
}

/**
 * Renders `template` for `messages` as transformers' apply_chat_template(tokenize=False) does. The template sees
 * `messages`, `add_generation_prompt`, the special token strings (bos_token, eos_token, pad_token, unk_token),
 * `options.variables`, and the globals `raise_exception(message)`, `strftime_now(format)`, `range` (Python's, at most
 * MAX_TEMPLATE_RANGE numbers), `namespace`.
 * A template that does not parse, or fails or raises while rendering, is a RemaxInputError naming `source` and the
 * template's message.
 */
export function renderChat(template: string, messages: readonly ChatMessage[], options: RenderChatOptions): string {
  const { source } = options;
  requireInput(typeof template === 'string', `${source}: the chat template is ${typeof template}, not a string`);
  checkMessages(messages, source);
  let parsed: Template;
  try {
    parsed = new Template(template);
    useBoundedRange(parsed.parsed);
  } catch (e) {
    throw new RemaxInputError(`${source}: the chat template does not parse: ${(e as Error).message}; fix the template`);
  }
  try {
    return parsed.render({
      ...options.specialTokenStrings,
      ...options.variables,
      [BOUNDED_RANGE]: boundedRange,
      messages: messages.map((m) => ({ ...m })),
      add_generation_prompt: options.addGenerationPrompt,
    });
  } catch (e) {
    throw new RemaxInputError(
      `${source}: the chat template failed for these ${messages.length} message(s): ${(e as Error).message}`,
    );
  }
}

export interface ChatPromptOptions {
  /** Default true: the ids end where the assistant's reply begins. */
  addGenerationPrompt?: boolean;
  variables?: Record<string, unknown>;
  /** A template to use instead of the tokenizer's own. */
  template?: string;
  /** What errors call that template (default: the tokenizer's source). */
  templateSource?: string;
}

/**
 * The ids of a chat prompt: the tokenizer's chat template rendered, then encoded WITHOUT the tokenizer's own special
 * tokens, as transformers' apply_chat_template does (the template writes BOS into the text where the model wants it;
 * its special-token strings become their ids). Llama 3: one 128000 first; Qwen: no BOS.
 */
export function chatPromptIds(tokenizer: TextTokenizer, messages: readonly ChatMessage[], options: ChatPromptOptions = {}): number[] {
  const template = options.template ?? tokenizer.chatTemplate;
  const source = options.templateSource ?? (options.template === undefined ? tokenizer.source : 'the chat template');
  requireInput(
    template !== undefined,
    `tokenizer ${tokenizer.source} (${tokenizer.description}) has no chat template; pass prompts as plain text, ` +
      `or give a template of your own`,
  );
  const text = renderChat(template, messages, {
    addGenerationPrompt: options.addGenerationPrompt ?? true,
    specialTokenStrings: tokenizer.specialTokenStrings,
    source,
    variables: options.variables,
  });
  return tokenizer.encode(text, { specialTokens: false });
}
