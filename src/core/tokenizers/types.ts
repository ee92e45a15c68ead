// The one interface every tokenizer presents to the engine, the trainers and the CLI: llama2.c's tokenizer.bin
// (llama2c.ts), Hugging Face tokenizer.json files (hf-tokenizer.ts) and the vocabularies inside GGUF files
// (gguf-vocab.ts). Everything that turns text into ids or back goes through it.

export interface EncodeTextOptions {
  /**
   * Add the special tokens the tokenizer itself adds, exactly as Hugging Face's `encode(text)` does (its
   * post-processor's BOS/EOS; llama2.c's tokenizer: BOS). Default true.
   */
  specialTokens?: boolean;
}

export interface DecodeTextOptions {
  /** Leave out special (control) tokens: BOS, EOS, <|im_end|>… Default false. */
  skipSpecialTokens?: boolean;
}

/** Strings a chat template refers to (tokenizer_config.json's bos_token, eos_token, …); absent when the tokenizer has none. */
export interface SpecialTokenStrings {
  bos_token?: string;
  eos_token?: string;
  pad_token?: string;
  unk_token?: string;
}

export interface TextTokenizer {
  /** Where it came from (a file path, "the built-in tokenizer"), named in every error. */
  readonly source: string;
  /** What kind it is, for the line each command prints ("llama2.c tokenizer.bin", "tokenizer.json BPE", …). */
  readonly description: string;
  /** Number of ids it produces and decodes: 0 … vocabSize − 1 (may be less than a model's padded embedding). */
  readonly vocabSize: number;
  /** The beginning-of-sequence id, or null when the model has none (Qwen). */
  readonly bosId: number | null;
  /** Ids that end a text or a turn: EOS and the chat end tokens (<|im_end|>, <|eot_id|>) it defines. */
  readonly eosIds: readonly number[];
  /** Whether the model's prompts start with BOS (its convention); encodePrompt applies it. */
  readonly addBos: boolean;
  /** The Jinja chat template it carries (tokenizer_config.json's chat_template, GGUF tokenizer.chat_template). */
  readonly chatTemplate?: string;
  readonly specialTokenStrings: SpecialTokenStrings;

  /**
   * Token ids of `text`, as Hugging Face's encode: special-token strings written in the text ("<|im_start|>",
   * "<s>") become their ids whatever `specialTokens` says, which only decides the tokens the tokenizer adds itself.
   */
  encode(text: string, options?: EncodeTextOptions): number[];
  /**
   * Token ids of a prompt or training text for the model: the text's tokens (without the tokens the tokenizer adds
   * itself) with BOS in front when addBos, and never a second BOS when the text already starts with it.
   */
  encodePrompt(text: string): number[];
  /** Text of `ids`: the decoder's output as it is (no clean-up of spaces before punctuation). */
  decode(ids: readonly number[], options?: DecodeTextOptions): string;
  /**
   * Text of `ids` when they follow `promptIds`: what decoding the whole sequence adds to decoding the prompt (so a
   * leading space, a byte split across the boundary or a merged piece come out as in the full text).
   */
  decodeContinuation(promptIds: readonly number[], ids: readonly number[], options?: DecodeTextOptions): string;
  /** Each id's piece as the vocabulary spells it ("Ġworld", "▁the", "<0x0A>"). */
  tokenStrings(ids: readonly number[]): string[];
  /** True for control tokens (BOS, EOS, <|im_start|>…), which skipSpecialTokens leaves out. */
  isSpecial(id: number): boolean;
}

/** Throws unless `tokenizer` fits a model's embedding of `modelVocabSize` rows (it may be smaller: padded rows). */
export type VocabularyCheck = (tokenizer: TextTokenizer, modelVocabSize: number, modelSource: string) => void;
