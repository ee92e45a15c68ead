// What every tokenizer shares: the chat end tokens a vocabulary may define, decodeContinuation's rule, the id check
// and the check of a tokenizer against a model's embedding.
import { RemaxInputError, requireInput } from '../errors';
import type { DecodeTextOptions, TextTokenizer, VocabularyCheck } from './types';

/**
 * Tokens that end a turn or a text in the chat formats we know (ChatML, Llama 3, GPT-2/Qwen, Llama 2, Gemma). A
 * vocabulary that defines one of them as a special token stops generation on it too (llama.cpp does the same).
 */
export const CHAT_END_TOKENS: readonly string[] = [
  '<|im_end|>',
  '<|eot_id|>',
  '<|end_of_text|>',
  '<|endoftext|>',
  '</s>',
  '<end_of_turn>',
];


/** `first` followed by the ids of `more` that are not in it yet (order kept). */
export function uniqueIds(first: readonly number[], ...more: (readonly number[])[]): number[] {
  const out: number[] = [];
  for (const list of [first, ...more]) for (const id of list) if (!out.includes(id)) out.push(id);
  return out;
}

/**
 * decodeContinuation for tokenizers whose decode is not a plain concatenation per token: the text decoding
 * prompt ++ ids adds to decoding the prompt. A prompt that ends inside a multi-byte character decodes with trailing
 * U+FFFD that the full text replaces by the character, so those are dropped before the prefix test. When the prompt's
 * text is still not a prefix (a decoder that rewrites across the boundary), the ids are decoded alone.
 */
export function continuationText(
  decode: (ids: readonly number[], options?: DecodeTextOptions) => string,
  promptIds: readonly number[],
  ids: readonly number[],
  options?: DecodeTextOptions,
): string {
  if (promptIds.length === 0) return decode(ids, options);
  const full = decode([...promptIds, ...ids], options);
  let head = decode(promptIds, options);
  if (full.startsWith(head)) return full.slice(head.length);
  head = head.replace(/\uFFFD+$/, '');
  if (full.startsWith(head)) return full.slice(head.length);
  return decode(ids, options);
}

/** Throws a RemaxInputError unless every id is an integer in 0 … vocabSize − 1 (and, when given, `known(id)`). */
export function requireTokenIds(
  ids: readonly number[],
  vocabSize: number,
  source: string,
  known?: (id: number) => boolean,
): void {
  requireInput(Array.isArray(ids), `decoding with tokenizer ${source}: ids must be an array of token ids`);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    requireInput(
      Number.isInteger(id) && id >= 0 && id < vocabSize && (known === undefined || known(id)),
      `ids[${i}] = ${id} is not a token id of tokenizer ${source}: expected an integer in 0..${vocabSize - 1}` +
        (known !== undefined && Number.isInteger(id) && id >= 0 && id < vocabSize ? ' that the vocabulary defines' : ''),
    );
  }
}

/**
 * Throws a RemaxInputError unless `tokenizer` fits a model whose embedding has `modelVocabSize` rows: every id it
 * can produce must have a row. A smaller tokenizer is fine (Qwen pads its embedding to 151,680 rows for a
 * 151,669-token vocabulary; those rows are never produced).
 */
export const checkTokenizerFitsModel: VocabularyCheck = (tokenizer: TextTokenizer, modelVocabSize: number, modelSource: string) => {
  requireInput(
    Number.isInteger(modelVocabSize) && modelVocabSize > 0,
    `${modelSource}: vocabulary size ${modelVocabSize} is not a positive integer`,
  );
  if (tokenizer.vocabSize <= modelVocabSize) return;
  throw new RemaxInputError(
    `tokenizer ${tokenizer.source} has ${tokenizer.vocabSize} tokens but ${modelSource} has only ${modelVocabSize} ` +
      `embedding rows (vocab_size ${modelVocabSize}): ids ${modelVocabSize}..${tokenizer.vocabSize - 1} would have no row; ` +
      `use the tokenizer that came with this model`,
  );
};
