/**
 * Hugging Face config.json ↔ ModelConfig, for the decoder-only architectures the engine runs exactly:
 *   LlamaForCausalLM (Llama 2/3.x, SmolLM2, TinyLlama), MistralForCausalLM, Qwen2ForCausalLM (q/k/v biases) and
 *   Qwen3ForCausalLM (RMSNorm of each q and k head before RoPE).
 * Defaults are transformers' own for each architecture. Anything the engine does not implement (another RoPE
 * scaling, biases it has no room for, another activation, a sliding window shorter than the context, partial
 * rotary…) is refused with an error naming the field and its value: a model is never run with a setting ignored.
 */
import { headSize, type ModelConfig, type RopeScaling } from '../config';
import { RemaxInputError, preview, requireInput, requireShallow } from '../errors';

export const HF_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM', 'Qwen3ForCausalLM'] as const;
export type HfArchitecture = (typeof HF_ARCHITECTURES)[number];

/** The reward-model class of each architecture: its transformer with score.weight [num_labels, hidden] for lm_head. */
export const sequenceClassification = (architecture: HfArchitecture): string => architecture.replace(/ForCausalLM$/, 'ForSequenceClassification');
const SEQUENCE_CLASSIFICATION = HF_ARCHITECTURES.map(sequenceClassification);

/** The context the engine plans for when none is asked for (KV cache per sequence); max_position_embeddings caps it. */
export const DEFAULT_HF_CONTEXT = 2048;

const MODEL_TYPES: Record<HfArchitecture, string> = {
  LlamaForCausalLM: 'llama', MistralForCausalLM: 'mistral', Qwen2ForCausalLM: 'qwen2', Qwen3ForCausalLM: 'qwen3',
};

/** transformers' defaults per architecture (configuration_<model>.py) for the fields a config.json may leave out. */
const DEFAULTS: Record<HfArchitecture, { maxPositionEmbeddings: number; rmsNormEps: number; ropeTheta: number; slidingWindow: number | null }> = {
  LlamaForCausalLM: { maxPositionEmbeddings: 2048, rmsNormEps: 1e-6, ropeTheta: 10000, slidingWindow: null },
  MistralForCausalLM: { maxPositionEmbeddings: 4096 * 32, rmsNormEps: 1e-6, ropeTheta: 10000, slidingWindow: 4096 },
  Qwen2ForCausalLM: { maxPositionEmbeddings: 32768, rmsNormEps: 1e-6, ropeTheta: 10000, slidingWindow: 4096 },
  Qwen3ForCausalLM: { maxPositionEmbeddings: 32768, rmsNormEps: 1e-6, ropeTheta: 10000, slidingWindow: 4096 },
};

/** Upper bound for any dimension: far above real models, low enough that garbage is caught before any arithmetic. */
const MAX_DIM = 1 << 24;

export interface HfModelConfig {
  /** The causal-LM class whose transformer this is (a …ForSequenceClassification folder: config.scoreHead). */
  architecture: HfArchitecture;
  /** architectures[0] as the folder names it (LlamaForSequenceClassification for a reward model). */
  className: string;
  config: ModelConfig;
  /** max_position_embeddings (or its default): the longest context the model was made for. */
  maxPositionEmbeddings: number;
  /** config.json's bos_token_id and eos_token_id (an int or a list), when given. */
  bosTokenId?: number;
  eosTokenIds?: number[];
  /** torch_dtype (or dtype) as written, e.g. "bfloat16". */
  torchDtype?: string;
}

export interface HfConfigOptions {
  /** The context to run at (default DEFAULT_HF_CONTEXT): seqLen = min(max_position_embeddings, context). */
  context?: number;
  /** What messages call the file (default "config.json"). */
  source?: string;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => {
  let text: string | undefined;
  try {
    text = JSON.stringify(v);
  } catch {
    return preview(v); // nested too deep for JSON.stringify: preview says so
  }
  return text === undefined ? String(v) : text.length > 120 ? `${text.slice(0, 117)}...` : text;
};

/** Parses the bytes of a JSON file; a RemaxInputError naming `source` when it is not JSON (or not an object). */
export function parseJsonObject(bytes: Uint8Array, source: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new RemaxInputError(`${source}: not valid UTF-8 JSON (${(error as Error).message}); the file is corrupt or truncated`);
  }
  requireShallow(value, source); // a config nested deeper than any real one: every later walk of it is safe
  requireInput(isPlainObject(value), `${source}: the file holds ${show(value)}, not a JSON object`);
  return value;
}

/** Token ids of a field that may be an int or a list of ints (eos_token_id); undefined when absent or null. */
export function tokenIdList(json: Record<string, unknown>, field: string, source: string): number[] | undefined {
  const v = json[field];
  if (v === undefined || v === null) return undefined;
  const list = Array.isArray(v) ? v : [v];
  requireInput(list.every((id) => Number.isSafeInteger(id) && (id as number) >= 0),
    `${source}: ${field} is ${show(v)}; it must be a token id (a non-negative integer) or a list of them`);
  return list as number[];
}

/**
 * config.json (parsed) → the engine's ModelConfig and what else the loader needs. Throws a RemaxInputError naming
 * the file, the field and its value for anything missing, malformed or not implemented by the engine.
 */
export function parseHfConfig(json: Record<string, unknown>, options: HfConfigOptions = {}): HfModelConfig {
  const source = options.source ?? 'config.json';
  const context = options.context ?? DEFAULT_HF_CONTEXT;
  requireInput(Number.isSafeInteger(context) && context >= 1 && context <= MAX_DIM,
    `the context is ${context}; it must be an integer from 1 to ${MAX_DIM} (--context)`);
  requireInput(isPlainObject(json), `${source}: not a JSON object`);
  const { architecture, scoreHead } = architectureOf(json, source);
  const defaults = DEFAULTS[architecture];
  const has = (field: string): boolean => json[field] !== undefined && json[field] !== null;

  const int = (field: string, fallback?: number): number => {
    const v = has(field) ? json[field] : fallback;
    requireInput(v !== undefined, `${source}: ${field} is missing; a ${architecture} config.json must give it`);
    requireInput(Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= MAX_DIM,
      `${source}: ${field} is ${show(v)}; it must be an integer from 1 to ${MAX_DIM}`);
    return v as number;
  };
  const positive = (field: string, fallback: number, container: Record<string, unknown> = json, prefix = ''): number => {
    const v = container[field] ?? fallback;
    requireInput(typeof v === 'number' && Number.isFinite(v) && v > 0,
      `${source}: ${prefix}${field} is ${show(v)}; it must be a positive number`);
    return v;
  };
  const flag = (field: string, fallback: boolean): boolean => {
    const v = json[field] ?? fallback;
    requireInput(typeof v === 'boolean', `${source}: ${field} is ${show(v)}; it must be true or false`);
    return v;
  };

  const dim = int('hidden_size');
  const hiddenDim = int('intermediate_size');
  const nLayers = int('num_hidden_layers');
  const nHeads = int('num_attention_heads');
  const nKvHeads = int('num_key_value_heads', nHeads);
  const vocabSize = int('vocab_size');
  const maxPositionEmbeddings = int('max_position_embeddings', defaults.maxPositionEmbeddings);
  if (!has('head_dim')) {
    requireInput(dim % nHeads === 0,
      `${source}: hidden_size ${dim} is not divisible by num_attention_heads ${nHeads} and head_dim is not given; ` +
        `give head_dim (the channels per head)`);
  }
  const hs = int('head_dim', dim / nHeads);
  requireInput(nHeads % nKvHeads === 0,
    `${source}: num_attention_heads ${nHeads} is not divisible by num_key_value_heads ${nKvHeads}; ` +
      `grouped-query attention shares each KV head among num_attention_heads / num_key_value_heads query heads`);
  requireInput(hs % 2 === 0, `${source}: head_dim is ${hs}, odd; RoPE rotates channel pairs, so it must be even`);
  const normEps = positive('rms_norm_eps', defaults.rmsNormEps);

  // Settings the engine does not implement: refused, never ignored.
  const act = json.hidden_act ?? 'silu';
  requireInput(act === 'silu' || act === 'swish',
    `${source}: hidden_act is ${show(act)}; the engine implements only "silu" (SwiGLU feed-forward), so this model cannot run`);
  if (architecture !== 'Qwen2ForCausalLM') {
    requireInput(!flag('attention_bias', false),
      `${source}: attention_bias is true: ${architecture} then has biases on q, k, v and o_proj, and the engine has none ` +
        `on o_proj; this model cannot run (only Qwen2ForCausalLM's q/k/v biases are supported)`);
  }
  requireInput(!flag('mlp_bias', false),
    `${source}: mlp_bias is true; the engine's feed-forward has no biases, so this model cannot run`);
  if (has('partial_rotary_factor')) {
    const f = json.partial_rotary_factor;
    requireInput(f === 1, `${source}: partial_rotary_factor is ${show(f)}; the engine rotates every channel of a head (1.0), so this model cannot run`);
  }
  requireInput(!has('quantization_config'),
    `${source}: quantization_config is ${show(json.quantization_config)}; quantized checkpoints are not supported, ` +
      `use the model's float32, float16 or bfloat16 weights`);
  const seqLen = Math.min(maxPositionEmbeddings, context);
  checkSlidingWindow(json, architecture, nLayers, seqLen, source, defaults.slidingWindow);

  const { ropeTheta, ropeScaling } = ropeOf(json, source, positive);

  let tied: boolean;
  {
    const v = json.tie_word_embeddings ?? false; // false is transformers' default for all four
    requireInput(typeof v === 'boolean', `${source}: tie_word_embeddings is ${show(v)}; it must be true or false`);
    tied = v;
  }

  const config: ModelConfig = {
    dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen, sharedClassifier: tied, normEps, ropeTheta,
  };
  if (hs !== dim / nHeads) config.headSize = hs;
  if (architecture === 'Qwen2ForCausalLM') config.qkvBias = true;
  if (architecture === 'Qwen3ForCausalLM') config.qkNorm = true;
  if (ropeScaling) config.ropeScaling = ropeScaling;

  if (scoreHead) {
    // transformers' num_labels: given, else the size of id2label, else its default 2. A reward model has one.
    const labels = json.num_labels ?? (isPlainObject(json.id2label) ? Object.keys(json.id2label).length : 2);
    requireInput(labels === 1,
      `${source}: a ${sequenceClassification(architecture)} with num_labels ${show(labels)}${json.num_labels === undefined ? ' (from id2label, or transformers\' default)' : ''}; ` +
        'the engine runs reward models and critics, with one score (num_labels 1)');
    config.scoreHead = true;
    config.sharedClassifier = true; // no classifier: nothing to tie
  }
  const out: HfModelConfig = { architecture, className: scoreHead ? sequenceClassification(architecture) : architecture, config, maxPositionEmbeddings };
  const bos = tokenIdList(json, 'bos_token_id', source);
  if (bos) {
    requireInput(bos.length === 1, `${source}: bos_token_id is ${show(json.bos_token_id)}; it must be one token id`);
    out.bosTokenId = bos[0];
  }
  const eos = tokenIdList(json, 'eos_token_id', source);
  if (eos) out.eosTokenIds = eos;
  const dtype = json.torch_dtype ?? json.dtype;
  if (typeof dtype === 'string') out.torchDtype = dtype;
  return out;
}

function architectureOf(json: Record<string, unknown>, source: string): { architecture: HfArchitecture; scoreHead: boolean } {
  const supported = `supported: ${[...HF_ARCHITECTURES, ...SEQUENCE_CLASSIFICATION].join(', ')}`;
  const archs = json.architectures, modelType = json.model_type;
  let fromArchs: HfArchitecture | undefined;
  let scoreHead = false;
  if (archs !== undefined && archs !== null) {
    requireInput(Array.isArray(archs) && archs.length >= 1 && typeof archs[0] === 'string',
      `${source}: architectures is ${show(archs)}; it must be a list naming the model class (${supported})`);
    const seqCls = SEQUENCE_CLASSIFICATION.indexOf(archs[0]);
    requireInput((HF_ARCHITECTURES as readonly string[]).includes(archs[0]) || seqCls >= 0,
      `${source}: architectures[0] is ${show(archs[0])}, an architecture the engine does not implement (${supported})`);
    scoreHead = seqCls >= 0;
    fromArchs = seqCls >= 0 ? HF_ARCHITECTURES[seqCls] : archs[0] as HfArchitecture;
  }
  if (modelType !== undefined && modelType !== null) {
    const fromType = HF_ARCHITECTURES.find((a) => MODEL_TYPES[a] === modelType);
    requireInput(fromType !== undefined,
      `${source}: model_type is ${show(modelType)}, an architecture the engine does not implement ` +
        `(supported model_type: ${HF_ARCHITECTURES.map((a) => MODEL_TYPES[a]).join(', ')})`);
    requireInput(fromArchs === undefined || fromArchs === fromType,
      `${source}: architectures[0] is ${show(Array.isArray(archs) ? archs[0] : fromArchs)} but model_type is ${show(modelType)} (${fromType}); the file is inconsistent`);
    return { architecture: fromType, scoreHead };
  }
  requireInput(fromArchs !== undefined, `${source}: neither architectures nor model_type is given; one must name the model (${supported})`);
  return { architecture: fromArchs, scoreHead };
}

function checkSlidingWindow(json: Record<string, unknown>, architecture: HfArchitecture, nLayers: number, seqLen: number,
  source: string, defaultWindow: number | null): void {
  const window = json.sliding_window === undefined ? defaultWindow : json.sliding_window;
  const windowShorter = (): boolean => {
    if (window === null) return false;
    requireInput(Number.isSafeInteger(window) && (window as number) >= 1,
      `${source}: sliding_window is ${show(window)}; it must be null or a positive integer`);
    return (window as number) < seqLen;
  };
  const fix = `run with a context of at most ${show(window)} (--context ${show(window)})`;
  if (architecture === 'MistralForCausalLM' || architecture === 'LlamaForCausalLM') {
    // Mistral attends within the window on every layer; Llama has no window (a sliding_window key there is inert).
    if (architecture === 'MistralForCausalLM' && windowShorter()) {
      throw new RemaxInputError(`${source}: sliding_window is ${window}, shorter than the context ${seqLen} we would run at; ` +
        `the engine attends to the whole context, so ${fix}`);
    }
    return;
  }
  // Qwen2/Qwen3: the window applies only with use_sliding_window, to the layers from max_window_layers on (or as
  // layer_types says).
  const use = json.use_sliding_window ?? false;
  requireInput(typeof use === 'boolean', `${source}: use_sliding_window is ${show(use)}; it must be true or false`);
  if (!use || !windowShorter()) return;
  let slidingLayers: number;
  if (json.layer_types !== undefined && json.layer_types !== null) {
    const types = json.layer_types;
    requireInput(Array.isArray(types) && types.every((t) => typeof t === 'string'),
      `${source}: layer_types is ${show(types)}; it must be a list of "full_attention" / "sliding_attention"`);
    slidingLayers = types.filter((t) => t === 'sliding_attention').length;
  } else {
    const first = json.max_window_layers ?? 28;
    requireInput(Number.isSafeInteger(first) && (first as number) >= 0,
      `${source}: max_window_layers is ${show(first)}; it must be a non-negative integer`);
    slidingLayers = Math.max(0, nLayers - (first as number));
  }
  if (slidingLayers > 0) {
    throw new RemaxInputError(`${source}: use_sliding_window is true with sliding_window ${window}, shorter than the context ` +
      `${seqLen} we would run at, on ${slidingLayers} layer(s); the engine attends to the whole context, so ${fix}`);
  }
}

function ropeOf(json: Record<string, unknown>, source: string,
  positive: (field: string, fallback: number, container?: Record<string, unknown>, prefix?: string) => number,
): { ropeTheta: number; ropeScaling?: RopeScaling } {
  // transformers ≥ 5 writes rope_parameters {rope_type, rope_theta, …}; before, rope_theta and rope_scaling.
  let field = 'rope_scaling';
  let params: unknown = json.rope_scaling;
  let ropeTheta: number;
  if (json.rope_parameters !== undefined && json.rope_parameters !== null) {
    field = 'rope_parameters';
    params = json.rope_parameters;
    requireInput(isPlainObject(params), `${source}: rope_parameters is ${show(params)}; it must be an object with rope_type and rope_theta`);
    ropeTheta = positive('rope_theta', typeof json.rope_theta === 'number' ? json.rope_theta : 10000, params, 'rope_parameters.');
  } else {
    ropeTheta = positive('rope_theta', 10000);
  }
  if (params === undefined || params === null) return { ropeTheta };
  requireInput(isPlainObject(params), `${source}: ${field} is ${show(params)}; it must be null or an object with rope_type`);
  const typeKey = params.rope_type !== undefined ? 'rope_type' : 'type';
  const type = params[typeKey] ?? 'default';
  if (type === 'default') return { ropeTheta };
  requireInput(type === 'llama3',
    `${source}: ${field}.${typeKey} is ${show(type)}; the engine implements RoPE without scaling ("default") and ` +
      `"llama3" only, so this model cannot run`);
  const p = params;
  const num = (key: string): number => {
    const v = p[key];
    requireInput(typeof v === 'number' && Number.isFinite(v) && v > 0,
      `${source}: ${field}.${key} is ${show(v)}; llama3 RoPE scaling needs it as a positive number`);
    return v;
  };
  const factor = num('factor'), lowFreqFactor = num('low_freq_factor'), highFreqFactor = num('high_freq_factor');
  const originalMaxPositionEmbeddings = num('original_max_position_embeddings');
  requireInput(highFreqFactor > lowFreqFactor,
    `${source}: ${field}.high_freq_factor ${highFreqFactor} is not above low_freq_factor ${lowFreqFactor}; llama3 RoPE scaling needs low < high`);
  return { ropeTheta, ropeScaling: { type: 'llama3', factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings } };
}

// ---------------------------------------------------------------------------------------------------------------------
// Writing

export type TorchDtype = 'float32' | 'bfloat16' | 'float16';
export const TORCH_DTYPES: Record<'F32' | 'BF16' | 'F16', TorchDtype> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };

/** The HF class that runs `config`: Qwen3 with q/k norms, Qwen2 with q/k/v biases, else Llama. */
export function hfArchitectureFor(config: ModelConfig): HfArchitecture {
  requireInput(!(config.qkNorm && config.qkvBias),
    'the model has both q/k/v biases and q/k norms; no Hugging Face architecture has both, so it cannot be written as a folder');
  return config.qkNorm ? 'Qwen3ForCausalLM' : config.qkvBias ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM';
}

/**
 * A config.json transformers loads for `config` (LlamaForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM), with
 * max_position_embeddings = seqLen.
 */
export function hfConfigFromModel(config: ModelConfig, options: { dtype: 'F32' | 'BF16' | 'F16'; bosTokenId?: number; eosTokenIds?: number[]; padTokenId?: number }): Record<string, unknown> {
  const architecture = hfArchitectureFor(config);
  let ropeScaling: Record<string, unknown> | null = null;
  if (config.ropeScaling) {
    const s = config.ropeScaling;
    requireInput(s.type === 'llama3',
      `the model's RoPE scaling is a table of per-frequency factors (a GGUF rope_freqs tensor); config.json cannot express it, ` +
        'so this model cannot be written as a Hugging Face folder');
    ropeScaling = {
      factor: s.factor, low_freq_factor: s.lowFreqFactor, high_freq_factor: s.highFreqFactor,
      original_max_position_embeddings: s.originalMaxPositionEmbeddings, rope_type: 'llama3',
    };
  }
  const out: Record<string, unknown> = {
    architectures: [config.scoreHead ? sequenceClassification(architecture) : architecture],
    model_type: MODEL_TYPES[architecture],
    hidden_size: config.dim,
    intermediate_size: config.hiddenDim,
    num_hidden_layers: config.nLayers,
    num_attention_heads: config.nHeads,
    num_key_value_heads: config.nKvHeads,
    head_dim: headSize(config),
    vocab_size: config.vocabSize,
    max_position_embeddings: config.seqLen,
    rms_norm_eps: config.normEps,
    rope_theta: config.ropeTheta,
    rope_scaling: ropeScaling,
    tie_word_embeddings: config.scoreHead ? false : config.sharedClassifier, // a reward model has no classifier to tie
    hidden_act: 'silu',
  };
  if (config.scoreHead) Object.assign(out, { id2label: { 0: 'LABEL_0' }, label2id: { LABEL_0: 0 } }); // num_labels 1, as save_pretrained writes it
  if (architecture === 'LlamaForCausalLM') Object.assign(out, { attention_bias: false, mlp_bias: false });
  else {
    Object.assign(out, { use_sliding_window: false, sliding_window: null, max_window_layers: config.nLayers });
    if (architecture === 'Qwen3ForCausalLM') out.attention_bias = false;
  }
  out.attention_dropout = 0.0;
  out.initializer_range = 0.02;
  if (options.bosTokenId !== undefined) out.bos_token_id = options.bosTokenId;
  if (options.eosTokenIds && options.eosTokenIds.length > 0) {
    out.eos_token_id = options.eosTokenIds.length === 1 ? options.eosTokenIds[0] : options.eosTokenIds;
  }
  if (options.padTokenId !== undefined) out.pad_token_id = options.padTokenId; // what transformers finds a padded batch's last token by
  out.torch_dtype = TORCH_DTYPES[options.dtype];
  out.use_cache = true;
  return out;
}

/** Keys whose values transformers types as float: written with a decimal point (10000.0), as Python writes them. */
const FLOAT_KEYS = new Set([
  'rope_theta', 'rms_norm_eps', 'initializer_range', 'attention_dropout', 'factor', 'low_freq_factor', 'high_freq_factor',
  'partial_rotary_factor', 'attention_factor', 'beta_fast', 'beta_slow', 'mscale', 'mscale_all_dim', 'repetition_penalty',
  'temperature', 'top_p', 'length_penalty',
]);

/** JSON text as Python's json.dumps(indent=2) writes a config: floats under float keys keep a ".0". */
export function configJsonText(value: Record<string, unknown>): string {
  const write = (v: unknown, indent: string, key?: string): string => {
    if (typeof v === 'number' && key !== undefined && FLOAT_KEYS.has(key) && Number.isInteger(v)) return `${v}.0`;
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      const inner = indent + '  ';
      return `[\n${v.map((x) => inner + write(x, inner)).join(',\n')}\n${indent}]`;
    }
    if (isPlainObject(v)) {
      const entries = Object.entries(v).filter(([, x]) => x !== undefined);
      if (entries.length === 0) return '{}';
      const inner = indent + '  ';
      return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${write(x, inner, k)}`).join(',\n')}\n${indent}}`;
    }
    return JSON.stringify(v) ?? 'null';
  };
  return write(value, '') + '\n';
}
