import type { FlagSpec } from '../args';
import { parseFlags, helpText, optionalString, requiredString } from '../args';
import { loadTokenizerFromPath } from '../model-io';
import { RemaxInputError } from '../../core/errors';
import { renderChat, type ChatMessage } from '../../core/tokenizers/chat-template';

export const tokenizeFlags: FlagSpec[] = [
  { name: 'model', type: 'string', help: "a model whose tokenizer to use: a Hugging Face folder (or its config.json) or a .gguf file" },
  { name: 'tokenizer', type: 'string', help: 'a tokenizer instead: tokenizer.json, tokenizer.bin or .gguf' },
  { name: 'text', type: 'string', help: 'the text to tokenize (with --chat: a JSON {"messages": [{"role": "user", "content": "..."}]})' },
  { name: 'chat', type: 'boolean', help: 'render --text\'s messages with the chat template and the generation prompt, then tokenize (as apply_chat_template)' },
  { name: 'no-special-tokens', type: 'boolean', help: 'leave out the special tokens the tokenizer adds itself (BOS…), as encode(add_special_tokens=False)' },
  { name: 'json', type: 'boolean', help: 'print one {"ids": [...], "tokens": [...]} (with --chat also "text": the rendered prompt)' },
];

/** Token ids and pieces of a text, as the model's tokenizer (Hugging Face's encode) gives them. */
export async function tokenizeCommand(argv: string[], out: (line: string) => void): Promise<void> {
  const flags = parseFlags('tokenize', argv, tokenizeFlags);
  if (flags.help) return out(helpText('tokenize', 'Print the token ids and pieces of a text (or of a chat prompt) with a model\'s tokenizer.', tokenizeFlags));
  const model = optionalString(flags, 'model'), tokenizerPath = optionalString(flags, 'tokenizer');
  if ((model === undefined) === (tokenizerPath === undefined)) throw new RemaxInputError('give exactly one of --model DIR|file.gguf or --tokenizer FILE');
  const text = requiredString(flags, 'text', 'the text to tokenize');
  const tokenizer = loadTokenizerFromPath(model !== undefined ? modelFolder(model) : tokenizerPath!, model !== undefined ? '--model' : '--tokenizer');
  let rendered: string | undefined;
  let ids: number[];
  if (flags.chat) {
    const messages = parseMessages(text);
    if (!tokenizer.chatTemplate) throw new RemaxInputError(`--chat: tokenizer ${tokenizer.source} (${tokenizer.description}) has no chat template`);
    rendered = renderChat(tokenizer.chatTemplate, messages, { addGenerationPrompt: true, specialTokenStrings: tokenizer.specialTokenStrings, source: tokenizer.source });
    ids = tokenizer.encode(rendered, { specialTokens: false });
  } else {
    ids = tokenizer.encode(text, { specialTokens: flags['no-special-tokens'] !== true });
  }
  const tokens = tokenizer.tokenStrings(ids);
  if (flags.json) return out(JSON.stringify({ ids, tokens, ...(rendered !== undefined ? { text: rendered } : {}) }));
  if (rendered !== undefined) out(`${JSON.stringify(rendered)}\n`);
  ids.forEach((id, i) => out(`${id}\t${JSON.stringify(tokens[i])}${tokenizer.isSpecial(id) ? '\t(special)' : ''}`));
  out(`${ids.length} token${ids.length === 1 ? '' : 's'} (${tokenizer.description})`);
}

/** A Hugging Face model's tokenizer lives in its folder: a config.json or .safetensors path stands for it. */
function modelFolder(model: string): string {
  return /(^|[/\\])(config\.json|[^/\\]*\.safetensors(\.index\.json)?)$/.test(model) ? model.replace(/[/\\][^/\\]*$/, '') || '.' : model;
}

function parseMessages(text: string): ChatMessage[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RemaxInputError(`--chat: --text must be JSON like {"messages": [{"role": "user", "content": "Hi"}]}: ${(error as Error).message}`);
  }
  const messages = (value as { messages?: unknown })?.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new RemaxInputError('--chat: --text must be {"messages": [{"role": "user", "content": "..."}, …]} with at least one message');
  }
  return messages as ChatMessage[];
}
