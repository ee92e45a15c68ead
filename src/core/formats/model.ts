// What every model format loads into and writes from: the engine's tensors (float32, llama2.c's names and layout,
// see config.ts) with the configuration, and what came with them (tokenizer, stop tokens, the original files'
// settings for writing the model back as it came).
import type { ModelConfig, ModelWeights, WeightName } from '../config';
import type { TextTokenizer } from '../tokenizers/types';

export type ModelFormat = 'llama2c' | 'hf' | 'gguf';

export interface LoadedModel {
  config: ModelConfig;
  weights: ModelWeights;
  /** How the model was stored: llama2.c's two versions, a Hugging Face folder or a GGUF file. */
  format: 'llama2c-v0' | 'llama2c-v1' | 'hf' | 'gguf';
  /** For the line every command prints: "LlamaForCausalLM", "Qwen2ForCausalLM", "gguf qwen2", "llama2.c". */
  architecture?: string;
  /** The stored tensor types, for the same line: "F32", "BF16", "F16 + Q8_0". */
  dtype?: string;
  /** The tokenizer the model carries (a folder's tokenizer.json, a GGUF's vocabulary); llama2.c has none. */
  tokenizer?: TextTokenizer;
  /** Ids that end a response by default (generation_config.json's eos_token_id, the GGUF EOS); none: EOS = 2. */
  stopIds?: number[];
  /**
   * Tensors whose stored type an engine can keep as is (RemaxEngine's weightsDtype 'auto'): every slice of the engine
   * tensor stored as that one type. `weights` holds their exact float32 widening either way.
   */
  stored?: StoredTensors;
  /** What writing the model back in its own format needs (original config files, metadata); format-specific. */
  origin?: HfOrigin | GgufOrigin;
}

/** BF16 and F16 tensors are their widened values' own bits; Q8_0 and Q4_K carry their blocks, in the engine's layout. */
export type StoredTensor = { type: 'BF16' | 'F16' } | { type: 'Q8_0' | 'Q4_K'; blocks: Uint8Array };
export type StoredTensors = Partial<Record<WeightName, StoredTensor>>;

/** A Hugging Face folder's own files, kept to write it back unchanged where the weights do not decide them. */
export interface HfOrigin {
  kind: 'hf';
  /** config.json as parsed. */
  config: Record<string, unknown>;
  /** The other small files to copy on export: generation_config.json, tokenizer.json, tokenizer_config.json, … */
  files: Record<string, Uint8Array>;
}

/** A GGUF file's metadata (key → value, and each key's GGUF type), kept to write it back. */
export interface GgufOrigin {
  kind: 'gguf';
  architecture: string;
  metadata: Map<string, unknown>;
  /** The GGUF type of each key ('u32', 'f32', 'array<string>', …), so a file written back keeps them. */
  types?: Map<string, string>;
}

/**
 * A set of files that make up a model: one file (a llama2.c checkpoint, a .gguf) or a folder (config.json,
 * *.safetensors, tokenizer files). The core reads through it and never touches a file system: the Node adapter
 * lists a folder, the trainer page the files a user picked.
 */
export interface ModelFileSet {
  /** What messages call it: the folder or file path. */
  readonly source: string;
  /** The names of the files in the set (no paths). */
  names(): string[];
  /** The bytes of one file, or undefined when the set has no such file. */
  read(name: string): Promise<Uint8Array | undefined>;
  /** A file's size in bytes without reading it (for checks before allocating), or undefined when absent. */
  size(name: string): Promise<number | undefined>;
}
