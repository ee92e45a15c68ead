/**
 * TextTokenizer over a Hugging Face tokenizer.json (+ tokenizer_config.json), run by @huggingface/tokenizers (Hugging
 * Face's own pure-JS implementation: BPE, Unigram, WordPiece, every normalizer, pre-tokenizer and decoder of the
 * hub's files). Portable: takes bytes or parsed JSON, no Node APIs. GGUF byte-level BPE vocabularies come here too
 * (gguf-vocab.ts builds a tokenizer.json-shaped object from them).
 *
 * What this file decides on top of the library:
 * - decode never applies `clean_up_tokenization_spaces` (Llama 3's config asks for it): that rewrite (" ." → ".",
 *   " n't" → "n't") is lossy and not local, so completions would not come out as the model wrote them, and
 *   decodeContinuation could not be a suffix of the full text. Decoding is exactly the decoder's output.
 * - addBos (see HfTokenizer.addBos) and eosIds (the eos_token, the caller's extra ids, the chat end tokens).
 */
import { Tokenizer as HfCoreTokenizer } from '@huggingface/tokenizers';
import { RemaxInputError, preview, requireInput, requireShallow } from '../errors';
import { CHAT_END_TOKENS, continuationText, requireTokenIds, uniqueIds } from './common';
import type { DecodeTextOptions, EncodeTextOptions, SpecialTokenStrings, TextTokenizer } from './types';

export interface HfTokenizerOptions {
  /** The tokenizer.json's path or name, named in every error about it. */
  source: string;
  /** The tokenizer_config.json's path or name (default: `source` with its file name replaced). */
  configSource?: string;
  /** More ids that end a response, e.g. generation_config.json's eos_token_id (a number or a list). */
  extraEosIds?: readonly number[];
  /** A chat template that replaces tokenizer_config.json's (a folder's chat_template.jinja, a GGUF's). */
  chatTemplate?: string;
  /** Overrides the addBos rule (gguf-vocab.ts: tokenizer.ggml.add_bos_token). */
  addBos?: boolean;
  /** Overrides the description ("GGUF gpt2 vocabulary (byte-level BPE, pre qwen2)"). */
  description?: string;
}

/** The largest token id read: far above real vocabularies (256k), low enough that a corrupt id is caught at load. */
const MAX_TOKEN_ID = (1 << 24) - 1;

/** tokenizer_class values whose models start every prompt with BOS (their slow tokenizers add it). */
const BOS_CLASSES = /^(LlamaTokenizer|LlamaTokenizerFast|CodeLlamaTokenizer|CodeLlamaTokenizerFast)$/;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses JSON given as bytes or text; errors name `source`. */
export function parseJsonFile(data: Uint8Array | string, source: string, what: string): unknown {
  let text: string;
  if (typeof data === 'string') {
    text = data;
  } else {
    requireInput(data instanceof Uint8Array, `${source}: expected the file contents as a Uint8Array or a string`);
    try {
      text = utf8.decode(data);
    } catch {
      throw new RemaxInputError(`${source} is not UTF-8 text; pass ${what}`);
    }
  }
  requireInput(text.trim().length > 0, `${source} is empty; pass ${what}`);
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new RemaxInputError(`${source} is not valid JSON (${(e as Error).message}); pass ${what}`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function siblingPath(source: string, name: string): string {
  const slash = Math.max(source.lastIndexOf('/'), source.lastIndexOf('\\'));
  return slash >= 0 ? source.slice(0, slash + 1) + name : name;
}

/**
 * Runs a call into @huggingface/tokenizers: it checks few of a component's options when it loads them, so a corrupt
 * tokenizer.json (a Split whose "behavior" is a number) fails inside it later with a TypeError; that becomes a
 * RemaxInputError naming the file.
 */
function library<T>(source: string, what: string, call: () => T): T {
  try {
    return call();
  } catch (e) {
    if (e instanceof RemaxInputError) throw e;
    throw new RemaxInputError(
      `${source}: @huggingface/tokenizers failed ${what}: ${(e as Error)?.message ?? String(e)}; ` +
        `the tokenizer.json is corrupt or uses a component option it does not support`,
    );
  }
}

/** Text every tokenizer.json is tried on at load (letters, digits, punctuation, accents, CJK, an emoji, spaces). */
const PROBE_TEXT = 'Hello, world! 12+7=19 \u00e9t\u00e9 \u65e5\u672c \ud83d\ude00\n\t  x';

/** The `type`s of a component tree (a Sequence's parts included), for the description. */
function componentTypes(component: unknown, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(component)) for (const c of component) componentTypes(c, out);
  else if (isObject(component)) {
    if (typeof component.type === 'string' && component.type !== 'Sequence') out.add(component.type);
    for (const [k, v] of Object.entries(component)) if (k !== 'vocab' && k !== 'merges') componentTypes(v, out);
  }
  return out;
}

/**
 * A tokenizer.json's TextTokenizer; construct with tokenizerFromHfFiles (bytes) or HfTokenizer.fromJson (parsed).
 *
 * - bosId: the id of tokenizer_config's bos_token (a string or {content}); null when it is null or absent.
 * - addBos: tokenizer_config.add_bos_token when given; else true when the tokenizer's post-processor puts BOS first,
 *   for tokenizer_class LlamaTokenizer(Fast)/CodeLlamaTokenizer(Fast), and for PreTrainedTokenizerFast with a bos_token
 *   (Llama 3, whose tokenizer.json adds no BOS although its prompts start with <|begin_of_text|>); false otherwise
 *   (Qwen2Tokenizer and GPT2Tokenizer: no BOS).
 * - eosIds: the eos_token's id, the caller's extra ids, then the chat end tokens the vocabulary has as special tokens.
 * - encode(text) is the library's encode (special-token strings in the text become their ids);
 *   encodePrompt(text) = encode(text) without the post-processor's tokens, BOS in front when addBos (never twice).
 */
export class HfTokenizer implements TextTokenizer {
  readonly source: string;
  readonly description: string;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosIds: readonly number[];
  readonly addBos: boolean;
  readonly chatTemplate?: string;
  readonly specialTokenStrings: SpecialTokenStrings;
  /** The parsed tokenizer.json (what ggufTokenizerMetadata writes out); do not modify. */
  readonly json: Readonly<Record<string, unknown>>;
  /** The parsed tokenizer_config.json ({} when there is none). */
  readonly config: Readonly<Record<string, unknown>>;

  private readonly core: HfCoreTokenizer;
  private readonly vocab: readonly (string | undefined)[];
  private readonly specialIds: ReadonlySet<number>;

  private constructor(json: Record<string, unknown>, config: Record<string, unknown>, options: HfTokenizerOptions) {
    const source = options.source;
    const configSource = options.configSource ?? siblingPath(source, 'tokenizer_config.json');
    this.source = source;
    const hint = "pass a model folder's tokenizer.json as the transformers library writes it";

    const model = json.model;
    requireInput(isObject(model), `${source} has no "model" object (the vocabulary and its algorithm); ${hint}`);
    requireInput(
      isObject(model.vocab) || Array.isArray(model.vocab),
      `${source}: model.vocab is ${model.vocab === undefined ? 'missing' : 'not an object or a list'}; ${hint}`,
    );
    if (model.type === 'BPE') requireInput(Array.isArray(model.merges), `${source}: the BPE model has no "merges" list; ${hint}`);
    // Ids as the library would take them (it checks none): a negative, fractional or huge id would come out of encode.
    if (isObject(model.vocab)) {
      for (const token in model.vocab) {
        const id = model.vocab[token];
        requireInput(
          typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= MAX_TOKEN_ID,
          `${source}: model.vocab[${preview(token, 40)}] is ${preview(id, 40)}; a token id must be an integer from 0 to ${MAX_TOKEN_ID}; ${hint}`,
        );
      }
    }
    const addedTokens = json.added_tokens ?? [];
    requireInput(Array.isArray(addedTokens), `${source}: added_tokens is not a list; ${hint}`);
    addedTokens.forEach((t, i) =>
      requireInput(
        isObject(t) && Number.isInteger(t.id) && (t.id as number) >= 0 && (t.id as number) <= MAX_TOKEN_ID && typeof t.content === 'string',
        `${source}: added_tokens[${i}] needs an integer "id" (0 to ${MAX_TOKEN_ID}) and a string "content", got ${preview(t)}`,
      ),
    );
    // The library wants every component key present (null = none).
    const full: Record<string, unknown> = {
      normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...json, added_tokens: addedTokens,
    };
    for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) {
      requireInput(full[key] === null || isObject(full[key]), `${source}: "${key}" is not an object or null; ${hint}`);
    }
    try {
      this.core = new HfCoreTokenizer(full, config);
    } catch (e) {
      throw new RemaxInputError(
        `${source}: @huggingface/tokenizers cannot load it: ${(e as Error).message}; ` +
          `it supports the BPE, Unigram and WordPiece models and the components the hub's tokenizers use`,
      );
    }
    this.json = full;
    this.config = config;
    this.vocab = (this.core.model as unknown as { vocab: (string | undefined)[] }).vocab;
    this.vocabSize = this.vocab.length;
    requireInput(this.vocabSize > 0, `${source}: the vocabulary is empty; ${hint}`);
    const added = this.core.get_added_tokens_decoder();
    this.specialIds = new Set([...added].filter(([, t]) => t.special).map(([id]) => id));
    // Components the library took can still fail on text (an option of the wrong type): find out now, not mid-run.
    library(source, 'encoding and decoding a test text', () => {
      for (const add_special_tokens of [true, false]) {
        const ids = this.core.encode(PROBE_TEXT, { add_special_tokens }).ids.filter((id) => this.vocab[id] !== undefined);
        if (ids.length > 0) this.core.decode(ids, { skip_special_tokens: !add_special_tokens, clean_up_tokenization_spaces: false });
      }
    });

    // Special token strings from tokenizer_config.json.
    const strings: SpecialTokenStrings = {};
    const ids: Partial<Record<keyof SpecialTokenStrings, number>> = {};
    for (const field of ['bos_token', 'eos_token', 'pad_token', 'unk_token'] as const) {
      const value = config[field];
      if (value === undefined || value === null) continue;
      const text = typeof value === 'string' ? value : isObject(value) && typeof value.content === 'string' ? value.content : undefined;
      requireInput(
        text !== undefined,
        `${configSource}: ${field} is ${preview(value, 60)}; expected a string, {"content": …} or null`,
      );
      const id = this.core.token_to_id(text);
      requireInput(
        id !== undefined || field === 'pad_token' || field === 'unk_token',
        `${configSource}: ${field} ${preview(text, 60)} is not a token of ${source}; ` +
          `the two files must come from the same model`,
      );
      strings[field] = text;
      if (id !== undefined) ids[field] = id;
    }
    this.specialTokenStrings = strings;
    this.bosId = ids.bos_token ?? null;

    // addBos.
    const explicit = options.addBos ?? config.add_bos_token;
    requireInput(
      explicit === undefined || typeof explicit === 'boolean',
      `${configSource}: add_bos_token is ${preview(explicit, 60)}; expected true or false`,
    );
    if (explicit !== undefined) {
      requireInput(
        !explicit || this.bosId !== null,
        `${configSource}: add_bos_token is true but there is no bos_token; set bos_token or add_bos_token false`,
      );
      this.addBos = explicit;
    } else if (this.bosId === null) {
      this.addBos = false;
    } else {
      const cls = typeof config.tokenizer_class === 'string' ? config.tokenizer_class : '';
      const postProcessorAddsBos = library(source, 'encoding a test text', () =>
        this.core.encode('a', { add_special_tokens: true }).ids[0] === this.bosId &&
        this.core.encode('a', { add_special_tokens: false }).ids[0] !== this.bosId);
      this.addBos = postProcessorAddsBos || BOS_CLASSES.test(cls) || cls === 'PreTrainedTokenizerFast';
    }

    // eosIds.
    const extra = options.extraEosIds ?? [];
    extra.forEach((id, i) =>
      requireInput(
        Number.isInteger(id) && id >= 0 && id < this.vocabSize,
        `${source}: extra EOS id [${i}] = ${id} (generation_config.json eos_token_id) is not a token id: ` +
          `expected an integer in 0..${this.vocabSize - 1}`,
      ),
    );
    const chatEnds = CHAT_END_TOKENS.flatMap((t) => {
      const id = this.core.token_to_id(t);
      return id !== undefined && this.specialIds.has(id) ? [id] : [];
    });
    this.eosIds = uniqueIds(ids.eos_token === undefined ? [] : [ids.eos_token], extra, chatEnds);

    // chatTemplate: a string, or a list of {name, template} of which "default" is used.
    if (options.chatTemplate !== undefined) {
      this.chatTemplate = options.chatTemplate;
    } else {
      const t = config.chat_template;
      if (typeof t === 'string') {
        this.chatTemplate = t;
      } else if (Array.isArray(t)) {
        const named = t.find((x) => isObject(x) && x.name === 'default');
        requireInput(
          named === undefined || typeof named.template === 'string',
          `${configSource}: chat_template "default" has no string "template"`,
        );
        this.chatTemplate = named?.template as string | undefined;
      } else {
        requireInput(
          t === undefined || t === null,
          `${configSource}: chat_template is ${typeof t}; expected a string or a list of {"name", "template"}`,
        );
      }
    }

    const types = [...componentTypes([full.normalizer, full.pre_tokenizer, full.decoder])];
    const parts = [String(model.type ?? 'unknown model')];
    for (const t of ['ByteLevel', 'Metaspace', 'ByteFallback']) if (types.includes(t)) parts.push(t);
    this.description = options.description ?? `tokenizer.json (${parts.join(', ')})`;
  }

  /** From tokenizer.json and tokenizer_config.json as parsed JSON values (`config` may be undefined: none). */
  static fromJson(tokenizerJson: unknown, tokenizerConfig: unknown, options: HfTokenizerOptions): HfTokenizer {
    requireInput(
      isObject(tokenizerJson),
      `${options.source} is not a tokenizer.json: it holds ${Array.isArray(tokenizerJson) ? 'a list' : typeof tokenizerJson}, ` +
        `not an object with "model"`,
    );
    const configSource = options.configSource ?? siblingPath(options.source, 'tokenizer_config.json');
    requireInput(
      tokenizerConfig === undefined || isObject(tokenizerConfig),
      `${configSource} is not a tokenizer_config.json: it holds ` +
        `${Array.isArray(tokenizerConfig) ? 'a list' : typeof tokenizerConfig}, not an object`,
    );
    requireShallow(tokenizerJson, options.source);
    requireShallow(tokenizerConfig, configSource);
    return new HfTokenizer(tokenizerJson, tokenizerConfig ?? {}, options);
  }

  encode(text: string, options: EncodeTextOptions = {}): number[] {
    requireInput(typeof text === 'string', `encoding with tokenizer ${this.source}: text must be a string, got ${typeof text}`);
    const ids = library(this.source, 'encoding a text', () => this.core.encode(text, { add_special_tokens: options.specialTokens ?? true }).ids);
    // A piece with no id (no token for it and no unk_token; a vocabulary with gaps) comes out as undefined.
    const bad = ids.findIndex((id) => !Number.isInteger(id) || this.vocab[id] === undefined);
    requireInput(bad < 0,
      `encoding with tokenizer ${this.source}: the text ${preview(text, 40)} has a piece the vocabulary has no token for ` +
        `(token ${bad} is ${String(ids[bad])}) and the tokenizer has no unk_token; use a tokenizer that covers the text`);
    return ids;
  }

  encodePrompt(text: string): number[] {
    const ids = this.encode(text, { specialTokens: false });
    if (this.addBos && ids[0] !== this.bosId) ids.unshift(this.bosId!);
    return ids;
  }

  decode(ids: readonly number[], options: DecodeTextOptions = {}): string {
    requireTokenIds(ids, this.vocabSize, this.source, (id) => this.vocab[id] !== undefined);
    if (ids.length === 0) return ''; // the library throws on an empty list
    return library(this.source, 'decoding', () => this.core.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    }));
  }

  decodeContinuation(promptIds: readonly number[], ids: readonly number[], options?: DecodeTextOptions): string {
    return continuationText((x, o) => this.decode(x, o), promptIds, ids, options);
  }

  tokenStrings(ids: readonly number[]): string[] {
    requireTokenIds(ids, this.vocabSize, this.source, (id) => this.vocab[id] !== undefined);
    return ids.map((id) => this.vocab[id]!);
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** The token string of an id, or undefined when the vocabulary has no such id (a gap, or out of range). */
  tokenString(id: number): string | undefined {
    return this.vocab[id];
  }

  /** The id of a token string, or undefined when the vocabulary has none. */
  tokenToId(token: string): number | undefined {
    return this.core.token_to_id(token);
  }
}

/**
 * A Hugging Face tokenizer from its files' bytes (or text): tokenizer.json and, when the folder has one,
 * tokenizer_config.json. Every error names the file.
 */
export function tokenizerFromHfFiles(
  tokenizerJson: Uint8Array | string,
  tokenizerConfig: Uint8Array | string | undefined,
  options: HfTokenizerOptions,
): HfTokenizer {
  const json = parseJsonFile(tokenizerJson, options.source, "a model folder's tokenizer.json");
  const configSource = options.configSource ?? siblingPath(options.source, 'tokenizer_config.json');
  const config =
    tokenizerConfig === undefined ? undefined : parseJsonFile(tokenizerConfig, configSource, "the folder's tokenizer_config.json");
  return HfTokenizer.fromJson(json, config, { ...options, configSource });
}
