/**
 * Preference pairs for reward-model training, from .jsonl bytes: one object per non-empty line,
 *   {"prompt": "...", "chosen": "...", "rejected": "..."}            each response encoded as SFT encodes a prompt and
 *     its completion: encode(prompt + response) + EOS (sft-data.ts pairExample);
 *   {"messages": [...], "chosen": "...", "rejected": "..."}          the conversation with the response as the last
 *     assistant turn, through the chat template (as SFT renders a conversation; --no-chat-template: plain text), up to
 *     the turn's end token: what a template writes after it (Qwen's newline) is dropped, since a policy's response
 *     ends at that token and the reward model scores the same place it learnt.
 * The reward model scores each sequence at its last token (the EOS or the template's end of turn). A pair that cannot
 * teach anything or cannot run is refused with its line: an empty or missing response, chosen identical to rejected
 * (as text or as tokens), a sequence longer than the context.
 */
import { RemaxInputError, preview, requireInput } from './errors';
import type { TextTokenizer } from './tokenizers/types';
import type { ChatMessage, ChatSettings } from './tokenizers/chat-template';
import { chatExample, pairExample } from './sft-data';

export interface PreferencePair {
  chosen: number[];
  rejected: number[];
  /** 1-based line of the file, for messages. */
  line: number;
}

const FORM = '{"prompt": "...", "chosen": "...", "rejected": "..."} or {"messages": [...], "chosen": "...", "rejected": "..."}';

export function loadPreferencePairs(bytes: Uint8Array, fileName: string, tokenizer: TextTokenizer, seqLen: number, chat: ChatSettings = {}): PreferencePair[] {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new RemaxInputError(`${fileName} is not UTF-8 text; save it as UTF-8`);
  }
  const pairs: PreferencePair[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') return;
    const where = `${fileName} line ${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new RemaxInputError(`${where} is not valid JSON (${(error as Error).message}); each line must be one object ${FORM}`);
    }
    requireInput(typeof value === 'object' && value !== null && !Array.isArray(value), `${where} is ${preview(value)}, not an object; write ${FORM}`);
    const object = value as Record<string, unknown>;
    const response = (key: 'chosen' | 'rejected'): string => {
      const v = object[key];
      requireInput(v !== undefined, `${where}: "${key}" is missing; each line needs ${FORM}`);
      requireInput(typeof v === 'string', `${where}: "${key}" must be a string, got ${preview(v)}`);
      requireInput(v.trim() !== '', `${where}: "${key}" is empty; a pair needs two responses to compare`);
      return v;
    };
    const chosenText = response('chosen'), rejectedText = response('rejected');
    requireInput(chosenText !== rejectedText, `${where}: "chosen" and "rejected" are the same text; a pair must differ to teach a preference (remove the line)`);
    const hasMessages = Object.hasOwn(object, 'messages'), hasPrompt = Object.hasOwn(object, 'prompt');
    requireInput(hasMessages !== hasPrompt, `${where}: give either "prompt" or "messages" (${hasMessages ? 'both are there' : 'neither is there'}); write ${FORM}`);
    const render = (reply: string): number[] => {
      if (hasPrompt) {
        const prompt = object.prompt;
        requireInput(typeof prompt === 'string', `${where}: "prompt" must be a string, got ${preview(prompt)}`);
        return pairExample(prompt, reply, where, tokenizer).ids;
      }
      const messages = object.messages;
      requireInput(Array.isArray(messages), `${where}: "messages" must be a list of {"role", "content"} objects, got ${preview(messages)}`);
      const { ids, weights } = chatExample([...(messages as ChatMessage[]), { role: 'assistant', content: reply }], where, tokenizer, chat);
      const ends = new Set(tokenizer.eosIds);
      let last = ids.length - 1;
      while (last > 0 && weights[last]! > 0 && !ends.has(ids[last]!)) last--;
      return weights[last]! > 0 && ends.has(ids[last]!) ? ids.slice(0, last + 1) : ids;
    };
    const chosen = render(chosenText), rejected = render(rejectedText);
    for (const [name, ids] of [['chosen', chosen], ['rejected', rejected]] as const) {
      requireInput(ids.length <= seqLen,
        `${where}: the prompt with "${name}" is ${ids.length} tokens, longer than the context of ${seqLen}; shorten it, remove the line or raise --context`);
    }
    requireInput(chosen.join(',') !== rejected.join(','), `${where}: "chosen" and "rejected" encode to the same tokens; a pair must differ to teach a preference`);
    pairs.push({ chosen, rejected, line: i + 1 });
  });
  requireInput(pairs.length > 0, `${fileName} holds no preference pairs (it is empty or blank); write one ${FORM} per line`);
  return pairs;
}
