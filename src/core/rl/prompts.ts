import { RemaxInputError } from '../errors';
import type { Tokenizer } from '../tokenizers/llama2c';

/** One line of a prompts file: the prompt text, its tokens, and every other field of the line (e.g. the answer). */
export interface PromptRecord {
  prompt: string;
  promptIds: number[];
  meta: Record<string, unknown>;
}

/**
 * Reads JSONL prompts, one {"prompt": "...", ...meta} per non-empty line. A prompt that leaves no room for
 * maxNewTokens in the model's context is an error naming the line, or with `truncate` keeps its last tokens.
 */
export function loadPrompts(bytes: Uint8Array, source: string, tokenizer: Tokenizer, seqLen: number, maxNewTokens: number, truncate = false): PromptRecord[] {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  const records: PromptRecord[] = [];
  const room = seqLen - Math.max(1, Math.min(maxNewTokens, seqLen - 1));
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const where = `${source} line ${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new RemaxInputError(`${where} is not valid JSON: ${JSON.stringify(line.slice(0, 60))}; each line must be {"prompt": "...", ...}`);
    }
    if (typeof value !== 'object' || value === null || typeof (value as { prompt?: unknown }).prompt !== 'string') {
      throw new RemaxInputError(`${where} has no "prompt" string; each line must be {"prompt": "...", ...}`);
    }
    const { prompt, ...meta } = value as { prompt: string };
    let promptIds = tokenizer.encode(prompt);
    if (promptIds.length > room) {
      if (!truncate) {
        throw new RemaxInputError(`${where}: the prompt has ${promptIds.length} tokens, but with --max-new-tokens ${maxNewTokens} ` +
          `only ${room} fit the model's context of ${seqLen}; shorten it, lower --max-new-tokens, or pass --truncate`);
      }
      promptIds = [promptIds[0]!, ...promptIds.slice(promptIds.length - room + 1)];
    }
    records.push({ prompt, promptIds, meta });
  });
  if (records.length === 0) throw new RemaxInputError(`${source} has no prompts: give one {"prompt": "..."} per line`);
  return records;
}
