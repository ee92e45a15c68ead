import type { LoraSettings, LoraWeights } from '../lora';
import { RemaxEngine } from '../engine';
import { requireInput } from '../errors';
import { checkTokenizerForModel } from '../formats/load';
import type { LoadedModel } from '../formats/model';
import type { TextTokenizer } from '../tokenizers/types';
import { loadPrompts, type ChatSettings, type PromptRecord } from './prompts';
import type { ReMaxOptions } from './trainer';
import type { WeightsDtype } from '../weight-types';
import { withScoreHead } from '../score-head';

// What `remax train` and the in-browser trainer page both build before a ReMax run's first step: the policy engine,
// the frozen reference (only with a KL penalty) and the prompts, tokenised against the model's context; for PPO, the
// critic engine.

/** Bytes and the name errors give them (a file path, "the built-in model", …). */
export interface NamedBytes {
  bytes: Uint8Array;
  source: string;
}

/** A loaded model (formats/load.ts) and the name errors give it. */
export interface NamedModel {
  model: LoadedModel;
  source: string;
}

export interface RunInputs {
  policy: NamedModel;
  /** LoRA: adapters on the policy (fresh ones seeded by `seed`, or given weights); the reference is then the base. */
  lora?: { settings: LoraSettings; weights?: LoraWeights; seed?: number };
  /** The frozen reference's weights; default: the policy's (a run that starts now). */
  reference?: NamedModel;
  /** Default: the model's own (a Hugging Face folder's or a GGUF's); a llama2.c model needs one. */
  tokenizer?: TextTokenizer;
  prompts: NamedBytes;
  /** Held-out prompts for evaluation; the first `limit` are kept. */
  evalPrompts?: NamedBytes & { limit: number };
  /** Keep the last tokens of prompts too long for the context instead of stopping. */
  truncate?: boolean;
  /** How prompts given as chat messages are rendered. */
  chat?: ChatSettings;
  /** Where warnings about the prompts go (invalid UTF-8). */
  onWarning?: (message: string) => void;
  /** How the frozen reference keeps its weights (default 'auto': as stored, lossless; weight-types.ts). */
  referenceDtype?: WeightsDtype;
  /**
   * LoRA: how the policy's frozen base keeps its weights (default 'auto': as stored; 'f16' or 'bf16' to hold a model
   * whose float32 widening does not fit). A fully trained policy is float32 whatever this says.
   */
  weightsDtype?: WeightsDtype;
  /** Called with the prompts before any engine is created (a memory check that can refuse the run). */
  beforeEngines?: (prompts: PromptRecord[]) => Promise<void> | void;
}

export interface RunSetup {
  policy: RemaxEngine;
  reference?: RemaxEngine;
  prompts: PromptRecord[];
  evalPrompts: PromptRecord[];
  /** The options' token budget per response (checked to leave room for a prompt in the context). */
  maxNewTokens: number;
}

export async function setUpRun(inputs: RunInputs, options: Pick<ReMaxOptions, 'maxNewTokens' | 'klCoef' | 'batchSize' | 'samplesPerPrompt'>): Promise<RunSetup> {
  const { model, source } = inputs.policy;
  const tokenizer = inputs.tokenizer ?? model.tokenizer;
  requireInput(tokenizer, `${source} carries no tokenizer: give its tokenizer (--tokenizer tokenizer.bin, tokenizer.json or a .gguf); rewards see text, so the trainer decodes every response`);
  checkTokenizerForModel(tokenizer, model.config.vocabSize, source);
  const seqLen = model.config.seqLen;
  // A prompt is at least one token: a longer response budget could never run in this context.
  requireInput(options.maxNewTokens <= seqLen - 2, `--max-new-tokens ${options.maxNewTokens} leaves no room for a prompt in the context of ` +
    `${source} (seq_len ${seqLen}): use at most ${seqLen - 2}`);
  const maxNewTokens = options.maxNewTokens;
  const load = (file: NamedBytes) => loadPrompts(file.bytes, file.source, tokenizer, { seqLen, maxNewTokens, truncate: inputs.truncate, chat: inputs.chat, onWarning: inputs.onWarning });
  const prompts = load(inputs.prompts);
  const evalPrompts = inputs.evalPrompts ? load(inputs.evalPrompts).slice(0, inputs.evalPrompts.limit) : [];
  await inputs.beforeEngines?.(prompts);
  const lora = inputs.lora;
  // The policy trains: float32 for full fine-tuning; a LoRA policy's frozen base stays as stored (compact weights are
  // read as they are, bit for bit their float32 widening) or as inputs.weightsDtype says, and so does its KL
  // reference, the same engine's base. A separate reference only runs forward: compact weights as the options say.
  const policy = await RemaxEngine.create({
    model, tokenizer, modelSource: source, weightsDtype: lora ? inputs.weightsDtype ?? 'auto' : 'f32',
    ...(lora ? { lora: lora.settings, loraSeed: lora.seed ?? 0, ...(lora.weights ? { loraWeights: lora.weights } : {}) } : {}),
  });
  // A LoRA run's reference is its base model: the policy engine with the adapters off, no second copy of the weights.
  const reference = options.klCoef > 0 && lora ? policy : options.klCoef > 0
    ? await RemaxEngine.create({
      model: (inputs.reference ?? inputs.policy).model, modelSource: (inputs.reference ?? inputs.policy).source,
      maxBatch: options.batchSize * options.samplesPerPrompt, weightsDtype: inputs.referenceDtype ?? 'auto',
    })
    : undefined;
  return { policy, reference, prompts, evalPrompts, maxNewTokens };
}

/**
 * A new PPO critic engine from `from`: a reward model as it is (its head too), a causal LM (the starting policy, by
 * default) with a fresh scalar head seeded by the run's seed + 1. It trains fully, LoRA run or not.
 */
export async function createCritic(from: NamedModel, seed: number, maxBatch: number): Promise<RemaxEngine> {
  return RemaxEngine.create({ model: withScoreHead(from.model, seed + 1), modelSource: from.source, maxBatch });
}
