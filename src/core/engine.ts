import { parseCheckpoint, serializeCheckpoint } from './formats/llama2c';
import type { LoadedModel, StoredTensors } from './formats/model';
import { decays, headSize, weightShapes, elementCount, type ModelConfig, type ModelWeights, type WeightName } from './config';
import { scaleInverseFrequencies } from './rope-scaling';
import { RemaxInputError, requireInput } from './errors';
import { Arena, WASM_MAX_PAGES, WASM_PAGE_BYTES } from './arena';
import { instantiateKernels, ensureMemory, type BuildChoice, type BuildName, type Kernels, type WasmBuilds } from './kernels';
import { GENERATE_JOB_FIELDS, LOGPROBS_JOB_FIELDS, MODEL_FIELDS, SCORE_JOB_FIELDS, TRAIN_JOB_FIELDS, WORKSPACE_FIELDS, writeDescriptor } from './layout';
import { inferenceLogitRows, planModel, planOptimizer, planWorkspace, type ModelPlan, type OptimizerPlan, type WorkspacePlan, type WorkspaceSpec } from './memory-plan';
import { packMicroBatches, tensorViews, type AdamWOptions, type GradientResult, type TrainingExample, type TrainingOptions } from './training';
import { samplerState } from './seed';
import { BOS_ID, EOS_ID } from './tokenizers/llama2c';
import type { TextTokenizer } from './tokenizers/types';
import { checkTokenizerForModel, loadTokenizerFile, nonFiniteTensors, nonFiniteWeightsMessage, type NonFiniteTensor } from './formats/load';
import { wasmBuilds } from '../wasm-builds';
import { checkLoraSettings, dropoutFields, initLoraWeights, loraScale, loraShapes, LORA_FIELDS, type LoraSettings, type LoraWeights } from './lora';
import {
  MATRIX_WEIGHTS, QUANTIZE_DTYPES, WEIGHT_TYPE_CODES, checkWeightsDtype, chooseWeightTypes, exactStored, halfHolds, packTensor, tensorBytes, unpackTensor, type WeightTypes,
  type WeightsDtype,
} from './weight-types';

export interface EngineOptions {
  /** The kernel builds (bytes or compiled modules); default: the builds embedded in this bundle. */
  wasm?: WasmBuilds;
  /** A llama2.c checkpoint (bytes), or a model already loaded from any format (formats/load.ts). */
  model: Uint8Array | LoadedModel;
  /** Name of the model for error messages (e.g. its file path). */
  modelSource?: string;
  /**
   * A tokenizer file's bytes (tokenizer.json, a GGUF, llama2.c's tokenizer.bin) or one already loaded; default: the
   * model's own (a Hugging Face folder's or a GGUF's). Text prompts need one.
   */
  tokenizer?: Uint8Array | TextTokenizer;
  tokenizerSource?: string;
  /** Which kernel build to run: 'auto' (default) prefers relaxed SIMD where the engine accepts it. */
  build?: BuildChoice;
  /** Sequences the KV cache is planned for up front (default 1); a larger batch re-plans the workspace. */
  maxBatch?: number;
  /** Token rows per forward pass (default 256); longer prefills run in chunks of this size. */
  maxTokens?: number;
  /** LoRA adapters on the model's projections: then only they train (lora.ts); the weights stay frozen. */
  lora?: LoraSettings;
  /** The adapters' values (e.g. loaded from a PEFT folder or a checkpoint); default: fresh (initLoraWeights). */
  loraWeights?: LoraWeights;
  /** Seed of fresh adapters' A (default 0). */
  loraSeed?: number;
  /**
   * How the weight matrices are kept in memory: 'auto' (default) as the model is stored (BF16, F16, Q8_0 and Q4_K
   * stay compact, read by the kernels directly, bit for bit as their float32 widening), 'f32' widened to float32,
   * 'bf16' rounded to bfloat16, 'f16' what 'auto' keeps compact kept so and every other matrix rounded to IEEE half
   * (weight-types.ts: GGUF types without a kernel, such as IQ2_XXS and Q2_K, then take 2 bytes a value). Full fine-tuning widens to float32 (enableTraining); LoRA keeps the frozen base as loaded.
   */
  weightsDtype?: WeightsDtype;
}

export interface SamplingOptions {
  /** Softmax temperature; 0 = greedy (first index of the maximum logit). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 = off (default). */
  topK?: number;
  /** Nucleus sampling: the smallest set of most likely tokens whose mass reaches p; 1 = off. Default 0.9 (as llama2.c). */
  topP?: number;
}

export interface GenerateRequest extends SamplingOptions {
  /** Prompt token ids, BOS included (at least one id). */
  promptIds: number[];
  maxNewTokens?: number;
  /** Seed of this sequence's sampler; default: derived from the batch seed and the sequence's index. */
  seed?: number | bigint;
  /** Log-probabilities for this sequence (default: the batch's `logprobs` option). */
  logprobs?: boolean;
}

export interface GenerateOptions extends SamplingOptions {
  /** Maximum new tokens per sequence (default 256; never past the context). */
  maxNewTokens?: number;
  /** Batch seed (default 0): sequence i samples from the stream (seed, firstIndex + i). */
  seed?: number | bigint;
  /** Index of this batch's first sequence in a larger batch cut into parts (default 0), so each keeps its stream. */
  firstIndex?: number;
  /** Tokens that end a sequence (kept in the output); [] = none. Default: the model's stop tokens (stopIds). */
  stopIds?: readonly number[];
  /** One stop token, or null for none (the older form of stopIds; stopIds wins when both are given). */
  eosId?: number | null;
  /** Also return log π of each new token (a log-sum-exp over the vocabulary per token). Default false. */
  logprobs?: boolean;
}

export type FinishReason = 'eos' | 'length' | 'context';

export interface Generation {
  promptIds: number[];
  /** New tokens only. */
  ids: number[];
  /** log π(token) of each new token under the untempered model, when requested (`logprobs`). */
  logprobs?: number[];
  finishReason: FinishReason;
}

const DEFAULTS = { temperature: 1, topK: 0, topP: 0.9, maxNewTokens: 256, maxTokens: 256 } as const;

/** wasm32 linear memory: 4 GiB at most. */
const WASM_MAX_BYTES = WASM_MAX_PAGES * WASM_PAGE_BYTES;
const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(2)} GiB`;

/**
 * Training produced a value that is not a finite number (a loss, a gradient norm, a KL, an advantage, a weight). A
 * RemaxInputError: the fix is in the settings (a lower learning rate). `atStep` gives the trainer's step to the message.
 */
export class TrainingDivergedError extends RemaxInputError {
  constructor(readonly what: string, readonly fix: string, readonly step?: number) {
    super(`training diverged${step === undefined ? '' : ` at step ${step}`}: ${what}; ${fix}`);
  }

  atStep(step: number): TrainingDivergedError {
    return new TrainingDivergedError(this.what, this.fix, step);
  }
}

/**
 * A Llama-family model in WASM memory: batched generation and teacher-forced log-probabilities.
 * Create with `RemaxEngine.create(options)`; the core takes bytes and never touches files or the network.
 */
export class RemaxEngine {
  readonly config: ModelConfig;
  /** The model as it was loaded (format, architecture, stop tokens, origin): what exporting it back needs. */
  readonly model: Omit<LoadedModel, 'weights' | 'tokenizer'>;
  readonly tokenizer?: TextTokenizer;
  readonly build: BuildName;
  private readonly kernels: Kernels;
  private modelPlan: ModelPlan;
  /** The compact matrices and their types (weight-types.ts); every other tensor is float32. */
  private types: WeightTypes;
  private workspace!: WorkspacePlan;
  private optimizer?: OptimizerPlan;
  private trainWorkspace?: WorkspacePlan;
  private adamStep = 0;
  /** The adapters' settings (LoRA), or undefined: the whole model trains. */
  readonly lora?: LoraSettings;

  private constructor(kernels: Kernels, model: LoadedModel, tokenizer: TextTokenizer | undefined, maxBatch: number, maxTokens: number, source: string,
    weightsDtype: WeightsDtype, lora?: { settings: LoraSettings; weights?: LoraWeights; seed: number }) {
    this.kernels = kernels;
    this.build = kernels.build;
    this.config = model.config;
    const { weights: _w, tokenizer: _t, stored: _s, ...description } = model; // (stored: what these weights were at load)
    this.model = description;
    this.tokenizer = tokenizer;
    const k = kernels.exports;
    checkDescriptor('Model', k.modelDescBytes(), MODEL_FIELDS.length);
    checkDescriptor('Workspace', k.workspaceDescBytes(), WORKSPACE_FIELDS.length);
    checkDescriptor('GenerateJob', k.generateJobBytes(), GENERATE_JOB_FIELDS.length);
    checkDescriptor('LogprobsJob', k.logprobsJobBytes(), LOGPROBS_JOB_FIELDS.length);
    checkDescriptor('TrainJob', k.trainJobBytes(), TRAIN_JOB_FIELDS.length);
    checkDescriptor('ScoreJob', k.scoreJobBytes(), SCORE_JOB_FIELDS.length);
    if (lora) {
      checkLoraSettings(lora.settings, this.config);
      this.lora = { ...lora.settings, targets: [...lora.settings.targets] };
    }
    this.types = chooseWeightTypes(this.config, model.weights, model.stored, weightsDtype);
    this.modelPlan = planModel(this.config, k.heapBase(), this.types, this.lora);
    const checkSize = () => {
      if (this.modelPlan.end <= WASM_MAX_BYTES) return;
      // Matrices held as float32 that 2 bytes would make fit: say so (f16 keeps what is compact as it is).
      const halved = planModel(this.config, k.heapBase(), chooseWeightTypes(this.config, {}, undefined, 'f16'), this.lora).end;
      const wide = weightShapes(this.config).some(({ name }) => MATRIX_WEIGHTS.includes(name) && !this.types[name]);
      throw new RemaxInputError(`${source}: the model's weights need ${gib(this.modelPlan.end)} of engine memory, over the 4 GiB a wasm32 engine can address; ` +
        (wide && halved <= WASM_MAX_BYTES
          ? `keep its float32 matrices in 2 bytes and it fits (${gib(halved)}): weightsDtype 'f16' (--weights-dtype f16: IEEE half, what is stored compact stays so) or 'bf16'`
          : 'no engine can load it: use a smaller model (at most about 1 billion parameters of 4 bytes, 2 billion of bf16; training one takes 16 bytes per parameter)'));
    };
    checkSize();
    // 'auto' (and 'f16') keep a bf16 matrix only if its values are all bf16 (the kernels tell while packing): else
    // float32 ('f16': rounded to half, when half holds them).
    // (--quantize keeps a file's own blocks of the asked type only where they hold exactly the weights given.)
    const stored = QUANTIZE_DTYPES.includes(weightsDtype) ? exactStored(model.weights, model.stored, this.types) : model.stored;
    for (let inexact = this.loadWeights(model.weights, source, stored, weightsDtype === 'auto' || weightsDtype === 'f16'); inexact.length > 0;) {
      for (const name of inexact) {
        if (weightsDtype === 'f16' && halfHolds(model.weights[name]!)) this.types[name] = 'F16';
        else delete this.types[name];
      }
      this.modelPlan = planModel(this.config, k.heapBase(), this.types, this.lora);
      checkSize();
      inexact = this.loadWeights(model.weights, source, stored, true);
    }
    if (lora) this.writeAdapters(lora.weights ?? initLoraWeights(this.config, this.lora!, lora.seed), 'LoRA adapters');
    this.reserveWorkspace(maxBatch, maxTokens);
  }

  static async create(options: EngineOptions): Promise<RemaxEngine> {
    const modelSource = options.modelSource ?? 'model';
    const model: LoadedModel = options.model instanceof Uint8Array ? parseCheckpoint(options.model, modelSource) : options.model;
    const given = options.tokenizer;
    const tokenizer = given instanceof Uint8Array ? loadTokenizerFile(given, options.tokenizerSource ?? 'tokenizer') : given ?? model.tokenizer;
    if (tokenizer) checkTokenizerForModel(tokenizer, model.config.vocabSize, modelSource);
    const maxBatch = options.maxBatch ?? 1;
    const maxTokens = options.maxTokens ?? DEFAULTS.maxTokens;
    requireInput(Number.isInteger(maxBatch) && maxBatch >= 1, `maxBatch must be a positive integer, got ${maxBatch}`);
    requireInput(Number.isInteger(maxTokens) && maxTokens >= 1, `maxTokens must be a positive integer, got ${maxTokens}`);
    const weightsDtype = checkWeightsDtype(options.weightsDtype ?? 'auto', 'weightsDtype');
    const kernels = await instantiateKernels(options.wasm ?? wasmBuilds, options.build ?? 'auto');
    const lora = options.lora ? { settings: options.lora, weights: options.loraWeights, seed: options.loraSeed ?? 0 } : undefined;
    return new RemaxEngine(kernels, model, tokenizer, maxBatch, maxTokens, modelSource, weightsDtype, lora);
  }

  /**
   * The tokens that end a response unless a call says otherwise: the model's own (generation_config.json's
   * eos_token_id, the GGUF EOS) and its tokenizer's end tokens; for a llama2.c model EOS = 2 and BOS = 1, which
   * llama2.c's data puts between texts (its run.c stops there too).
   */
  get stopIds(): number[] {
    const llama2c = this.model.format.startsWith('llama2c');
    const ids = new Set<number>([...(this.model.stopIds ?? (llama2c ? [BOS_ID, EOS_ID] : [])), ...(this.tokenizer?.eosIds ?? [])]);
    return [...ids].filter((id) => id < this.config.vocabSize).sort((a, b) => a - b);
  }

  /** Bytes of linear memory in use (it only grows, so this is also the peak). */
  get memoryBytes(): number {
    return this.kernels.memory.buffer.byteLength;
  }

  /** How each weight matrix is kept (tensors not listed are float32). */
  get weightTypes(): WeightTypes {
    return { ...this.types };
  }

  /** Bytes of the weights as held (compact matrices at their real size). */
  get weightBytes(): number {
    return this.modelPlan.paramEnd - this.modelPlan.paramStart;
  }

  /** Sequences and token rows the workspace is currently planned for. */
  get capacity(): { maxSeqs: number; maxTokens: number } {
    return { maxSeqs: this.workspace.maxSeqs, maxTokens: this.workspace.maxTokens };
  }

  /** A prompt's ids: the text's tokens, with BOS first when the model's prompts start with it. */
  encode(text: string): number[] {
    return this.requireTokenizer().encodePrompt(text);
  }

  /**
   * The text of new tokens after `promptIds` (as they read in the whole text: a leading space, a character split
   * across the boundary), without special tokens (BOS, EOS, a chat template's end of turn).
   */
  decode(ids: number[], promptIds: number[] = []): string {
    const tokenizer = this.requireTokenizer();
    // A model's vocabulary may be padded past its tokenizer's (Qwen2.5: 151,936 rows, 151,665 tokens); a sampled id
    // of a padding row has no text, as in transformers' decode.
    const known = (part: number[]) => part.every((id) => id < tokenizer.vocabSize) ? part : part.filter((id) => id < tokenizer.vocabSize);
    return tokenizer.decodeContinuation(known(promptIds), known(ids), { skipSpecialTokens: true });
  }

  /**
   * Generates for a batch of prompts in one batched decode: all prompts are prefilled together, then every
   * step runs one token of each unfinished sequence. Per-request settings override the batch options.
   */
  generate(requests: GenerateRequest[], options: GenerateOptions = {}): Generation[] {
    requireInput(requests.length > 0, 'generate needs at least one prompt');
    this.refuseScoreHead('generate');
    const c = this.config;
    const stopIds = options.stopIds ?? (options.eosId === undefined ? this.stopIds : options.eosId === null ? [] : [options.eosId]);
    stopIds.forEach((id) => requireInput(Number.isInteger(id) && id >= 0 && id < c.vocabSize,
      `stop token ${id} is outside the vocabulary [0, ${c.vocabSize})`));
    const stopSet = new Set(stopIds);
    const specs = requests.map((r, i) => {
      const promptIds = r.promptIds;
      this.checkIds(promptIds, `prompt ${i}`);
      requireInput(promptIds.length < c.seqLen,
        `prompt ${i} has ${promptIds.length} tokens but the model's context (seq_len) is ${c.seqLen}: ` +
        `shorten the prompt to at most ${c.seqLen - 1} tokens so that at least one new token fits`);
      const maxNew = r.maxNewTokens ?? options.maxNewTokens ?? DEFAULTS.maxNewTokens;
      const temperature = r.temperature ?? options.temperature ?? DEFAULTS.temperature;
      const topK = r.topK ?? options.topK ?? DEFAULTS.topK;
      const topP = r.topP ?? options.topP ?? DEFAULTS.topP;
      requireInput(Number.isInteger(maxNew) && maxNew >= 0, `maxNewTokens must be a non-negative integer, got ${maxNew}`);
      requireInput(Number.isFinite(temperature) && temperature >= 0, `temperature must be a number ≥ 0, got ${temperature}`);
      requireInput(Number.isInteger(topK) && topK >= 0, `topK must be a non-negative integer, got ${topK}`);
      requireInput(Number.isFinite(topP) && topP > 0 && topP <= 1, `topP must be in (0, 1], got ${topP}`);
      const state = r.seed !== undefined ? samplerState(r.seed, 0) : samplerState(options.seed ?? 0, (options.firstIndex ?? 0) + i);
      const logprobs = r.logprobs ?? options.logprobs ?? false;
      return { promptIds, maxNew: Math.min(maxNew, c.seqLen - promptIds.length), temperature, topK, topP, state, logprobs };
    });

    this.reserveWorkspace(specs.length, this.workspace.maxTokens);
    const n = specs.length;
    const stride = Math.max(1, ...specs.map((s) => s.maxNew));
    const totalPrompt = specs.reduce((sum, s) => sum + s.promptIds.length, 0);
    const io = new Arena(this.ioStart);
    const at = {
      promptIds: io.take(4 * totalPrompt), promptOffsets: io.take(4 * (n + 1)), maxNewTokens: io.take(4 * n),
      temperature: io.take(4 * n), topK: io.take(4 * n), topP: io.take(4 * n), rngStates: io.take(8 * n),
      outIds: io.take(4 * n * stride), outLengths: io.take(4 * n),
      outLogprobs: specs.some((s) => s.logprobs) ? io.take(4 * n * stride) : 0,
      sharedWith: io.take(4 * n), wantLogprobs: io.take(4 * n), stopIds: io.take(4 * Math.max(1, stopIds.length)),
    };
    ensureMemory(this.kernels.memory, io.end);
    const buffer = this.kernels.memory.buffer;
    const i32 = (p: number, len: number) => new Int32Array(buffer, p, len);
    const f32 = (p: number, len: number) => new Float32Array(buffer, p, len);
    writePacked(buffer, at.promptIds, at.promptOffsets, specs.map((s) => s.promptIds));
    i32(at.maxNewTokens, n).set(specs.map((s) => s.maxNew));
    f32(at.temperature, n).set(specs.map((s) => s.temperature));
    i32(at.topK, n).set(specs.map((s) => s.topK));
    f32(at.topP, n).set(specs.map((s) => s.topP));
    new BigUint64Array(buffer, at.rngStates, n).set(specs.map((s) => s.state));
    i32(at.wantLogprobs, n).set(specs.map((s) => (s.logprobs ? 1 : 0)));
    i32(at.stopIds, stopIds.length).set(stopIds);
    // Requests with the same prompt share one prefill (computed for the first of them).
    const firstWithPrompt = new Map<string, number>();
    i32(at.sharedWith, n).set(specs.map((s, i) => {
      const key = s.promptIds.join(',');
      if (!firstWithPrompt.has(key)) firstWithPrompt.set(key, i);
      return firstWithPrompt.get(key)!;
    }));
    writeDescriptor(buffer, this.modelPlan.jobDesc, GENERATE_JOB_FIELDS, {
      nSeqs: n, ...at, nStopIds: stopIds.length, outStride: stride,
    });

    this.kernels.exports.generate(this.modelPlan.modelDesc, this.modelPlan.workspaceDesc, this.modelPlan.jobDesc);

    const out = this.kernels.memory.buffer;
    const lengths = new Int32Array(out, at.outLengths, n);
    return specs.map((s, i) => {
      const len = lengths[i]!;
      const ids = Array.from(new Int32Array(out, at.outIds + 4 * i * stride, len));
      const logprobs = s.logprobs ? Array.from(new Float32Array(out, at.outLogprobs + 4 * i * stride, len)) : undefined;
      const finishReason: FinishReason = len > 0 && stopSet.has(ids[len - 1]!) ? 'eos'
        : len >= s.maxNew && s.promptIds.length + len < c.seqLen ? 'length' : 'context';
      return { promptIds: s.promptIds, ids, logprobs, finishReason };
    });
  }

  /**
   * Teacher-forced log-probabilities, batched: for each sequence, result[t − 1] = log p(ids[t] | ids[<t]).
   */
  logprobs(sequences: number[][], options: { adapters?: boolean } = {}): number[][] {
    requireInput(sequences.length > 0, 'logprobs needs at least one sequence');
    this.refuseScoreHead('log-probabilities');
    this.checkSequences(sequences);
    const n = sequences.length;
    const total = sequences.reduce((sum, s) => sum + s.length, 0);
    const io = new Arena(this.ioStart);
    const at = { ids: io.take(4 * total), offsets: io.take(4 * (n + 1)), out: io.take(4 * Math.max(1, total - n)) };
    ensureMemory(this.kernels.memory, io.end);
    const buffer = this.kernels.memory.buffer;
    writePacked(buffer, at.ids, at.offsets, sequences);
    writeDescriptor(buffer, this.modelPlan.jobDesc, LOGPROBS_JOB_FIELDS, { nSeqs: n, ...at });

    // adapters: false is the base model (a LoRA run's reference policy): the same weights, no second copy.
    const model = options.adapters === false ? this.modelPlan.baseModelDesc : this.modelPlan.modelDesc;
    this.kernels.exports.logprobs(model, this.modelPlan.workspaceDesc, this.modelPlan.jobDesc);

    const out = new Float32Array(this.kernels.memory.buffer, at.out, Math.max(0, total - n));
    let start = 0;
    return sequences.map((s) => {
      const row = Array.from(out.subarray(start, start + s.length - 1));
      start += s.length - 1;
      return row;
    });
  }

  /** True for a model with a scalar head (a reward model, a critic): it gives scores, not tokens. */
  get hasScoreHead(): boolean {
    return this.config.scoreHead === true;
  }

  /**
   * A scalar-head model's score of each sequence at its last token (a reward model's reward; sequences are packed,
   * never padded, so the last token is the one before any padding), batched as logprobs is.
   */
  scores(sequences: number[][]): number[] {
    return this.scoresAt(sequences, (ids) => ids.map((_, t) => t === ids.length - 1)).map((row) => row[row.length - 1]!);
  }

  /** A scalar-head model's score after every prefix: result[s][t] = score of sequences[s][≤t] (a critic's values). */
  tokenScores(sequences: number[][]): number[][] {
    return this.scoresAt(sequences, (ids) => ids.map(() => true));
  }

  /** A reward model gives scores, not tokens: what needs token probabilities is refused with the fix. */
  private refuseScoreHead(what: string): void {
    requireInput(!this.hasScoreHead, `this model (${this.model.architecture ?? 'a scalar head'}) is a reward model (a scalar head, no token probabilities): ` +
      `${what} needs a causal LM; score sequences with scores(), or use the causal LM it was trained from`);
  }

  private scoresAt(sequences: number[][], wanted: (ids: number[]) => boolean[]): number[][] {
    requireInput(this.hasScoreHead, 'this model has no scalar head (it is a causal LM): scores need a reward model or critic');
    requireInput(sequences.length > 0, 'scores needs at least one sequence');
    this.checkSequences(sequences);
    const n = sequences.length;
    const total = sequences.reduce((sum, s) => sum + s.length, 0);
    const io = new Arena(this.ioStart);
    const at = { ids: io.take(4 * total), offsets: io.take(4 * (n + 1)), wanted: io.take(4 * total), out: io.take(4 * total) };
    ensureMemory(this.kernels.memory, io.end);
    const buffer = this.kernels.memory.buffer;
    writePacked(buffer, at.ids, at.offsets, sequences);
    new Int32Array(buffer, at.wanted, total).set(sequences.flatMap((ids) => wanted(ids).map((w) => (w ? 1 : 0))));
    new Float32Array(buffer, at.out, total).fill(Number.NaN);
    writeDescriptor(buffer, this.modelPlan.jobDesc, SCORE_JOB_FIELDS, { nSeqs: n, ...at });

    this.kernels.exports.scores(this.modelPlan.modelDesc, this.modelPlan.workspaceDesc, this.modelPlan.jobDesc);

    const out = new Float32Array(this.kernels.memory.buffer, at.out, total);
    let start = 0;
    return sequences.map((s) => {
      const row = Array.from(out.subarray(start, start + s.length));
      start += s.length;
      return row;
    });
  }

  private requireTokenizer(): TextTokenizer {
    if (!this.tokenizer) throw new RemaxInputError('this engine has no tokenizer: load one (e.g. --tokenizer tokenizer.bin) to use text');
    return this.tokenizer;
  }

  /** Every sequence holds token ids of the vocabulary and fits the context. */
  private checkSequences(sequences: number[][], what = (i: number) => `sequence ${i}`): void {
    sequences.forEach((ids, i) => {
      this.checkIds(ids, what(i));
      requireInput(ids.length <= this.config.seqLen,
        `${what(i)} has ${ids.length} tokens but the model's context (seq_len) is ${this.config.seqLen}: shorten it`);
    });
  }

  private checkIds(ids: number[], what: string): void {
    requireInput(Array.isArray(ids) && ids.length > 0, `${what} is empty: it needs at least one token id (BOS = 1)`);
    const bad = ids.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= this.config.vocabSize);
    requireInput(bad < 0, `${what}: token id ${ids[bad]} at index ${bad} is outside the vocabulary [0, ${this.config.vocabSize})`);
  }

  /** Writes the weights and the model's descriptor and RoPE tables; `exactOnly`: see writeTensors (then returns early). */
  private loadWeights(weights: ModelWeights, source: string, stored?: LoadedModel['stored'], exactOnly = false): WeightName[] {
    const c = this.config, plan = this.modelPlan;
    ensureMemory(this.kernels.memory, plan.end);
    const inexact = this.writeTensors(weights, source, stored, exactOnly);
    if (inexact.length > 0) return inexact;
    this.writeModelDescriptor(plan.modelDesc, tensorPointers(plan.weights), adapterPointers(plan.adapters, 0), this.types);
    this.writeModelDescriptor(plan.baseModelDesc, tensorPointers(plan.weights), null, this.types);
    const hs = headSize(c);
    if (hs % 2 !== 0) throw new RemaxInputError(`head size ${hs} is odd: RoPE needs an even head size`);
    // The inverse frequencies come from the kernels' formula; a model with RoPE scaling rescales them here.
    this.kernels.exports.ropeInverseFrequencies(plan.ropeFreqs, hs, c.ropeTheta);
    if (c.ropeScaling) scaleInverseFrequencies(new Float32Array(this.kernels.memory.buffer, plan.ropeFreqs, hs / 2), c.ropeScaling);
    this.kernels.exports.initRope(plan.modelDesc, plan.ropeFreqs);
    return [];
  }

  /** Lays out the inference workspace for at least `maxSeqs` sequences and `maxTokens` rows (never shrinks). */
  private reserveWorkspace(maxSeqs: number, maxTokens: number): void {
    const current = this.workspace;
    if (current && current.maxSeqs >= maxSeqs && current.maxTokens >= maxTokens) return;
    const seqs = Math.max(maxSeqs, current?.maxSeqs ?? 0);
    const rows = Math.max(maxTokens, seqs, current?.maxTokens ?? 0);
    this.layOut({ maxSeqs: seqs, maxTokens: rows, maxLogitRows: inferenceLogitRows(this.config, rows), training: false, lora: this.lora }, this.trainWorkspace);
  }

  /**
   * Places the workspaces after the fixed part (model, and optimizer state when training) and writes their
   * descriptors. Workspaces hold scratch only, so moving them loses nothing.
   */
  private layOut(inference: WorkspaceSpec, training: WorkspaceSpec | undefined): void {
    const fixedEnd = this.optimizer?.end ?? this.modelPlan.end;
    const ws = planWorkspace(this.config, fixedEnd, inference);
    const tws = training ? planWorkspace(this.config, ws.end, { ...training, training: true }) : undefined;
    const end = (tws ?? ws).end;
    requireInput(end <= WASM_MAX_BYTES,
      `the engine needs ${gib(end)} of memory, over the 4 GiB a wasm32 engine can address: the model takes ${gib(this.modelPlan.end)}` +
      `${this.optimizer ? `, its gradients and optimizer state ${gib(this.optimizer.end - this.modelPlan.end)}` : ''}, the workspace for ` +
      `${inference.maxSeqs} sequence(s) of up to ${this.config.seqLen} tokens ${gib(ws.end - ws.start)}` +
      `${tws ? `, the training workspace (${training!.maxSeqs} sequences, ${training!.maxTokens} tokens per micro-batch) ${gib(tws.end - tws.start)}` : ''}` +
      `: use a smaller batch, a shorter context (--context) or, training, --activation-checkpointing`);
    ensureMemory(this.kernels.memory, end);
    const buffer = this.kernels.memory.buffer;
    for (const [plan, at] of [[ws, this.modelPlan.workspaceDesc], [tws, this.modelPlan.trainWorkspaceDesc]] as const) {
      if (!plan) continue;
      writeDescriptor(buffer, at, WORKSPACE_FIELDS, {
        maxTokens: plan.maxTokens, maxSeqs: plan.maxSeqs, maxLogitRows: plan.maxLogitRows,
        layerStride: plan.layerStride, layerStrideHidden: plan.layerStrideHidden, layerStrideProbs: plan.layerStrideProbs,
        layerStrideIn: plan.layerStrideIn, layerStrideQ: plan.layerStrideQ, layerStrideKv: plan.layerStrideKv,
        recomputeLayers: plan.recompute ? 1 : 0, loraStride: plan.loraStride, ...plan.offsets,
      });
    }
    this.workspace = ws;
    this.trainWorkspace = tws;
  }

  /** First byte after every workspace: where a call's I/O buffers go. */
  private get ioStart(): number {
    return (this.trainWorkspace ?? this.workspace).end;
  }

  // ---- training ----

  /**
   * Lays out gradients, Adam moments and a training workspace (saved activations for micro-batches of up to
   * `maxTokens` rows and `maxSeqs` sequences). Calling it again with larger sizes re-plans the workspace; the
   * gradients and optimizer state are kept.
   */
  enableTraining(options: TrainingOptions = {}): void {
    const c = this.config;
    // Full fine-tuning updates every weight, so they become float32; LoRA's frozen base stays as loaded (compact ones
    // are read as stored by the backward pass too).
    if (Object.keys(this.types).length > 0 && !this.lora) this.widenWeights();
    const maxTokens = options.maxTokens ?? Math.max(512, c.seqLen);
    const maxSeqs = options.maxSeqs ?? 16;
    // About 16 MB of logits per classifier chunk, in whole tiles of 4 rows (a leftover row runs the classifier as a
    // matrix-vector product, streaming all its weights for that one row).
    const maxLogitRows = options.maxLogitRows ?? Math.min(maxTokens, Math.max(16, Math.floor(2 ** 22 / c.vocabSize) & ~3));
    requireInput(Number.isInteger(maxTokens) && maxTokens >= c.seqLen,
      `training maxTokens must be an integer ≥ the context length ${c.seqLen} (a sequence must fit in one micro-batch), got ${maxTokens}`);
    requireInput(Number.isInteger(maxSeqs) && maxSeqs >= 1, `training maxSeqs must be a positive integer, got ${maxSeqs}`);
    requireInput(Number.isInteger(maxLogitRows) && maxLogitRows >= 1, `training maxLogitRows must be a positive integer, got ${maxLogitRows}`);
    if (!this.optimizer) {
      const optimizer = planOptimizer(this.modelPlan, options.optimizerState ?? true);
      requireInput(optimizer.end <= WASM_MAX_BYTES,
        `training this model needs ${gib(optimizer.end)} for its weights, ${this.lora ? 'the LoRA adapters\' ' : 'their '}gradients${optimizer.moments ? ' and two Adam moments' : ''} ` +
        `before any activation, over the 4 GiB a wasm32 engine can address: train a smaller model ` +
        `(at most about ${optimizer.moments ? 250 : 500} million parameters)`);
      this.optimizer = optimizer;
      ensureMemory(this.kernels.memory, this.optimizer.end);
      new Uint8Array(this.kernels.memory.buffer, this.modelPlan.end, this.optimizer.end - this.modelPlan.end).fill(0);
      // The gradients' descriptor: every tensor a fixed offset from its weight (absent tensors stay 0); with LoRA
      // only the adapters', the frozen weights' fields 0 (the backward pass computes no gradient for them).
      const pointers = tensorPointers(this.modelPlan.weights);
      for (const key of Object.keys(pointers) as (keyof typeof pointers)[]) {
        if (this.lora) pointers[key] = 0;
        else if (pointers[key] !== 0) pointers[key] += this.optimizer.gradDelta;
      }
      this.writeModelDescriptor(this.modelPlan.gradDesc, pointers, adapterPointers(this.modelPlan.adapters, this.optimizer.gradDelta));
    }
    const current = this.trainWorkspace;
    const recompute = options.activationCheckpointing ?? current?.recompute ?? false;
    const spec: WorkspaceSpec = {
      maxTokens: Math.max(maxTokens, current?.maxTokens ?? 0), maxSeqs: Math.max(maxSeqs, current?.maxSeqs ?? 0),
      maxLogitRows: Math.max(maxLogitRows, current?.maxLogitRows ?? 0), training: true, recompute, lora: this.lora,
    };
    if (!current || spec.maxTokens > current.maxTokens || spec.maxSeqs > current.maxSeqs || spec.maxLogitRows > current.maxLogitRows ||
      recompute !== (current.recompute ?? false)) {
      this.layOut(this.workspace, spec);
    }
  }

  /**
   * Re-plans the model part with every tensor float32 (what training updates), widening the compact ones exactly; the
   * workspaces, which hold scratch only, move after it.
   */
  private widenWeights(): void {
    const plan = planModel(this.config, this.kernels.exports.heapBase(), {}, this.lora);
    requireInput(plan.end <= WASM_MAX_BYTES,
      `training needs the weights as float32, ${gib(plan.end)}, over the 4 GiB a wasm32 engine can address: use a smaller model`);
    const weights = this.readWeights();
    const adapters = this.lora ? this.readAdapters() : undefined; // they move with the re-plan
    this.types = {};
    this.modelPlan = plan;
    this.loadWeights(weights, 'weights');
    if (adapters) this.writeAdapters(adapters);
    this.layOut(this.workspace, this.trainWorkspace);
  }

  /** Sets every gradient to zero (call before accumulating the gradient of a new batch). */
  zeroGradients(): void {
    const opt = this.requireTraining();
    const { trainStart, trainEnd } = this.modelPlan;
    new Uint8Array(this.kernels.memory.buffer, trainStart + opt.gradDelta, trainEnd - trainStart).fill(0);
  }

  /**
   * Adds the gradient of L = −Σ_examples Σ_t weights[t]·log π(ids[t] | ids[<t]) to the gradients, in micro-batches
   * that fit the training workspace (so any batch size gives the same sum). Returns L and the weighted token count.
   * A scalar-head model takes weights[t] as the given ∂L/∂score at token t instead (t from 0; 0 = no score there):
   * the gradient of L = Σ_t weights[t]·score(ids[≤t]) goes through the head and the whole transformer.
   * Where an example asks (entropyFrom), the sum of the policy's entropies at those tokens comes back too.
   */
  accumulateGradients(examples: TrainingExample[]): GradientResult {
    this.requireTraining();
    const tws = this.trainWorkspace!;
    const c = this.config;
    examples.forEach((e, i) => {
      this.checkIds(e.ids, `example ${i}`);
      requireInput(e.ids.length <= c.seqLen, `example ${i} has ${e.ids.length} tokens but the model's context (seq_len) is ${c.seqLen}`);
      requireInput(e.weights.length === e.ids.length, `example ${i} has ${e.ids.length} ids but ${e.weights.length} weights`);
      const bad = e.weights.findIndex((w) => !Number.isFinite(w));
      requireInput(bad < 0, `example ${i}: loss weight ${e.weights[bad]} at index ${bad} is not a finite number`);
      requireInput(e.entropyFrom === undefined || (Number.isInteger(e.entropyFrom) && e.entropyFrom >= 1),
        `example ${i}: entropyFrom must be an integer ≥ 1 (the first token whose prediction is measured), got ${e.entropyFrom}`);
      requireInput(e.entropyFrom === undefined || !this.hasScoreHead, `example ${i}: a scalar-head model has no token distribution to measure: drop entropyFrom`);
    });
    let loss = 0, tokens = 0, entropySum = 0, entropyTokens = 0;
    for (const batch of packMicroBatches(examples, tws.maxTokens, tws.maxSeqs)) {
      const total = batch.reduce((sum, e) => sum + e.ids.length, 0);
      const io = new Arena(this.ioStart);
      const at = {
        ids: io.take(4 * total), offsets: io.take(4 * (batch.length + 1)), weights: io.take(4 * total), dropoutSeeds: io.take(4 * batch.length),
        entropyFrom: io.take(4 * batch.length), entropy: io.take(4 * total),
      };
      ensureMemory(this.kernels.memory, io.end);
      const buffer = this.kernels.memory.buffer;
      writePacked(buffer, at.ids, at.offsets, batch.map((e) => e.ids));
      new Uint32Array(buffer, at.dropoutSeeds, batch.length).set(batch.map((e) => (e.dropoutSeed ?? 0) >>> 0));
      new Float32Array(buffer, at.weights, total).set(batch.flatMap((e) => e.weights));
      new Int32Array(buffer, at.entropyFrom, batch.length).set(batch.map((e) => e.entropyFrom ?? e.ids.length));
      const measured = batch.some((e) => e.entropyFrom !== undefined);
      writeDescriptor(buffer, this.modelPlan.jobDesc, TRAIN_JOB_FIELDS, { nSeqs: batch.length, ...at, scores: 0, entropy: measured ? at.entropy : 0 });
      loss += this.kernels.exports.trainStep(this.modelPlan.modelDesc, this.modelPlan.gradDesc, this.modelPlan.trainWorkspaceDesc, this.modelPlan.jobDesc);
      const first = this.hasScoreHead ? 0 : 1;
      for (const e of batch) for (let t = first; t < e.weights.length; t++) if (e.weights[t] !== 0) tokens++;
      if (!measured) continue;
      const entropies = new Float32Array(this.kernels.memory.buffer, at.entropy, total);
      let start = 0;
      for (const e of batch) {
        for (let t = e.entropyFrom ?? e.ids.length; t < e.ids.length; t++) entropySum += entropies[start + t]!;
        entropyTokens += Math.max(0, e.ids.length - (e.entropyFrom ?? e.ids.length));
        start += e.ids.length;
      }
    }
    return { loss, tokens, entropySum, entropyTokens };
  }

  /**
   * A scalar-head model's gradient from its own scores, one forward pass per micro-batch: the groups of sequences (a
   * preference pair; a critic's one sequence) are packed into micro-batches without splitting a group; for each, the
   * training forward gives scores[g][s][t] (the score after sequences[s][≤t] of group g), `gradient` returns ∂L/∂score
   * in the same shape (0 = none), and the backward pass adds the gradient of L to the gradients. `gradient` sees each
   * micro-batch's groups, in order, and must not call this engine (its I/O is in use); returns Σ dScore·score.
   */
  accumulateScoreGradients(groups: number[][][], gradient: (scores: number[][][]) => number[][][]): { loss: number } {
    this.requireTraining();
    requireInput(this.hasScoreHead, 'accumulateScoreGradients needs a model with a scalar head');
    const tws = this.trainWorkspace!;
    groups.forEach((group, g) => this.checkSequences(group, (s) => `group ${g} sequence ${s}`));
    const batches: number[][][][] = [];
    let current: number[][][] = [], rows = 0, seqs = 0;
    for (const [g, group] of groups.entries()) {
      const size = group.reduce((n, ids) => n + ids.length, 0);
      requireInput(size <= tws.maxTokens && group.length <= tws.maxSeqs,
        `group ${g} (${group.length} sequences, ${size} tokens) does not fit one training micro-batch (${tws.maxSeqs} sequences, ${tws.maxTokens} tokens): enableTraining with more`);
      if (current.length > 0 && (rows + size > tws.maxTokens || seqs + group.length > tws.maxSeqs)) {
        batches.push(current);
        current = [];
        rows = 0;
        seqs = 0;
      }
      current.push(group);
      rows += size;
      seqs += group.length;
    }
    if (current.length > 0) batches.push(current);
    let loss = 0;
    for (const batch of batches) {
      const sequences = batch.flat();
      const total = sequences.reduce((sum, ids) => sum + ids.length, 0);
      const io = new Arena(this.ioStart);
      const at = {
        ids: io.take(4 * total), offsets: io.take(4 * (sequences.length + 1)), weights: io.take(4 * total), scores: io.take(4 * total),
        dropoutSeeds: io.take(4 * sequences.length), // no LoRA dropout on a scalar head's passes: seeds 0
      };
      ensureMemory(this.kernels.memory, io.end);
      const buffer = this.kernels.memory.buffer;
      new Uint32Array(buffer, at.dropoutSeeds, sequences.length).fill(0);
      writePacked(buffer, at.ids, at.offsets, sequences);
      writeDescriptor(buffer, this.modelPlan.jobDesc, TRAIN_JOB_FIELDS, { nSeqs: sequences.length, ...at, entropyFrom: 0, entropy: 0 });
      const k = this.kernels.exports, plan = this.modelPlan;
      k.trainForward(plan.modelDesc, plan.trainWorkspaceDesc, plan.jobDesc);
      const flat = new Float32Array(this.kernels.memory.buffer, at.scores, total);
      let t = 0;
      const scores = batch.map((group) => group.map((ids) => Array.from(flat.subarray(t, (t += ids.length)))));
      const d = gradient(scores);
      const weights = new Float32Array(this.kernels.memory.buffer, at.weights, total);
      t = 0;
      batch.forEach((group, g) => group.forEach((ids, s) => {
        const row = d[g]?.[s];
        requireInput(Array.isArray(row) && row.length === ids.length && row.every(Number.isFinite),
          `accumulateScoreGradients: the gradient of group ${g} sequence ${s} must be ${ids.length} finite numbers`);
        weights.set(row, t);
        t += ids.length;
      }));
      loss += k.trainBackward(plan.modelDesc, plan.gradDesc, plan.trainWorkspaceDesc, plan.jobDesc);
    }
    return { loss };
  }

  /** The global L2 norm of all gradients. */
  gradientNorm(): number {
    const opt = this.requireTraining();
    const { trainStart, trainEnd } = this.modelPlan;
    return Math.sqrt(this.kernels.exports.sumSquares(trainStart + opt.gradDelta, (trainEnd - trainStart) / 4));
  }

  /**
   * One AdamW step on the accumulated gradients, after clipping their global norm to clipNorm (0 = no clipping).
   * Weight decay applies to matrices and the embedding, not to RMSNorm weights. Returns the norm before clipping.
   * A non-finite gradient norm leaves the weights untouched and throws.
   */
  optimizerStep(options: AdamWOptions): { gradNorm: number; clipped: boolean } {
    const opt = this.requireTraining();
    const moments = this.requireMoments(opt);
    const { lr, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weightDecay = 0, clipNorm = 1 } = options;
    requireInput(Number.isFinite(lr) && lr > 0, `the learning rate must be a positive number, got ${lr}`);
    const gradNorm = this.gradientNorm();
    if (!Number.isFinite(gradNorm)) {
      throw new TrainingDivergedError(`the gradient norm is ${gradNorm}`, `the weights were not updated; lower the learning rate (now ${lr})`);
    }
    const clipped = clipNorm > 0 && gradNorm > clipNorm;
    const gradScale = clipped ? clipNorm / gradNorm : 1;
    this.adamStep++;
    const bc1 = 1 - beta1 ** this.adamStep, bc2 = 1 - beta2 ** this.adamStep;
    const step = (p: number, count: number, decay: number) => this.kernels.exports.adamwStep(p, p + opt.gradDelta,
      p + moments.mDelta, p + moments.vDelta, count, lr, beta1, beta2, eps, decay, gradScale, bc1, bc2);
    if (this.lora) {
      // Only the adapters train; they decay like the matrices they adapt.
      for (const { target, a, b } of loraShapes(this.config, this.lora)) {
        step(this.modelPlan.adapters[target]!.a, elementCount(a), weightDecay);
        step(this.modelPlan.adapters[target]!.b, elementCount(b), weightDecay);
      }
    } else {
      for (const { name, shape } of weightShapes(this.config)) step(this.modelPlan.weights[name]!, elementCount(shape), decays(name) ? weightDecay : 0);
    }
    // An update so large that a weight overflows (a huge learning rate): stop here, before anything saves them.
    const broken = this.nonFiniteTrainable(0);
    if (broken.length > 0) {
      const count = broken.reduce((n, t) => n + t.count, 0);
      throw new TrainingDivergedError(`the update (learning rate ${lr}, gradient norm ${gradNorm}) made ${count} ${count === 1 ? 'weight' : 'weights'} ` +
        `non-finite (the first in tensor ${broken[0]!.name})`, 'this engine\'s weights are lost, the checkpoints saved before are not: lower the learning rate and resume from the last one');
    }
    return { gradNorm, clipped };
  }

  /** Number of optimizer steps taken (the bias-correction step count). */
  get optimizerSteps(): number {
    return this.adamStep;
  }

  /** Copies of the current weights, by tensor name (llama2.c order and shapes, layers stacked). */
  readWeights(): ModelWeights {
    return this.copyTensors(0);
  }

  /** Copies of the accumulated gradients, named like the weights. */
  readGradients(): ModelWeights {
    // A LoRA engine has no weight gradients (its gradients region is the adapters').
    if (this.lora) throw new Error('this engine trains LoRA adapters, not its weights: read their gradients with readAdapterGradients()');
    return this.copyTensors(this.requireTraining().gradDelta);
  }

  /**
   * Replaces the weights (e.g. when resuming); shapes must match, and every value must be a finite number (a NaN or an
   * infinity is an error naming `source` and the tensor, in the model's own terms; the engine then holds them). A
   * compact matrix (weightTypes) keeps its type: bf16/f16 round the values, Q8_0 quantizes them (Q4_K is refused).
   */
  writeWeights(weights: ModelWeights, source = 'weights'): void {
    this.writeTensors(weights, source);
  }

  /**
   * writeWeights; with `exactOnly`, returns the bf16 matrices whose values are not all exactly bf16 (then the weights
   * are not complete: the caller re-plans them as float32 and writes again).
   */
  private writeTensors(weights: ModelWeights, source: string, stored?: LoadedModel['stored'], exactOnly = false): WeightName[] {
    const compactBad: Partial<Record<WeightName, Float32Array>> = {};
    const inexact: WeightName[] = [];
    for (const { name, shape } of weightShapes(this.config)) {
      const data = weights[name];
      requireInput(data && data.length === elementCount(shape), `weights: tensor ${name} must have ${elementCount(shape)} values`);
      const type = this.types[name];
      if (!type) {
        new Float32Array(this.kernels.memory.buffer, this.modelPlan.weights[name]!, data.length).set(data);
        continue;
      }
      if (type === 'BF16') {
        // Narrowed by the kernels, a chunk at a time (JavaScript takes 0.5 s more for 135M values).
        const packed = this.packBf16(data, this.modelPlan.weights[name]!);
        if (packed.inexact > 0) inexact.push(name);
        if (packed.nonFinite) compactBad[name] = data;
        continue;
      }
      // A compact matrix: its stored bits (Q8_0: the file's own blocks, checked to hold exactly these values).
      const from = stored?.[name];
      const target = new Uint8Array(this.kernels.memory.buffer, this.modelPlan.weights[name]!, tensorBytes(type, shape));
      const packed = packTensor(data, type, from && 'blocks' in from && from.type === type ? from.blocks : undefined, target);
      if (packed.bytes.buffer !== target.buffer) target.set(packed.bytes);
      if (packed.nonFinite > 0) compactBad[name] = data;
    }
    if (exactOnly && inexact.length > 0) return inexact;
    const bad = [...nonFiniteTensors(this.config, this.model.format, compactBad), ...this.nonFiniteTensors(0)];
    if (bad.length > 0) throw new RemaxInputError(nonFiniteWeightsMessage(source, bad));
    return [];
  }

  /** Writes the bf16 rounding of `data` at `at`: how many values were not bf16, and whether one may not be finite. */
  private packBf16(data: Float32Array, at: number): { inexact: number; nonFinite: boolean } {
    // Staged through memory past everything in use (what is there between calls is scratch).
    const stage = this.workspace ? this.ioStart : this.modelPlan.end, chunk = 1 << 18;
    ensureMemory(this.kernels.memory, stage + 4 * chunk);
    const k = this.kernels.exports, buffer = this.kernels.memory.buffer;
    let inexact = 0, nonFinite = false;
    for (let i = 0; i < data.length; i += chunk) {
      const part = data.subarray(i, Math.min(data.length, i + chunk));
      new Float32Array(buffer, stage, part.length).set(part);
      if (!Number.isFinite(k.sumSquares(stage, part.length))) nonFinite = true; // (also past float32's range: named only if not finite)
      inexact += k.narrowBf16(at + 2 * i, stage, part.length);
    }
    return { inexact, nonFinite };
  }

  /**
   * The tensors of the parameter region at `delta` (0: the weights) that hold a NaN or an infinity. One SIMD pass
   * (Σ x², non-finite when any x is); only when it is not finite (a NaN, an infinity, or squares past float32's
   * range) a plain scan finds and names them. 135M parameters (SmolLM2-135M's shape, 2-core machine): 45–55 ms,
   * against 290 ms for the rest of RemaxEngine.create and about 0.4 s for a plain JavaScript scan.
   */
  private nonFiniteTensors(delta: number): NonFiniteTensor[] {
    const { paramStart, paramEnd } = this.modelPlan;
    if (Object.keys(this.types).length === 0) {
      if (Number.isFinite(this.kernels.exports.sumSquares(paramStart + delta, (paramEnd - paramStart) / 4))) return [];
      const views = tensorViews(this.kernels.memory.buffer, this.config, (name: WeightName) => this.modelPlan.weights[name]! + delta, false);
      return nonFiniteTensors(this.config, this.model.format, views);
    }
    // Compact weights (no gradients, delta 0): the float32 tensors one by one; writeWeights checks the compact ones.
    const views: Partial<Record<WeightName, Float32Array>> = {};
    for (const { name, shape } of weightShapes(this.config)) {
      if (this.types[name]) continue;
      const at = this.modelPlan.weights[name]! + delta, count = elementCount(shape);
      if (!Number.isFinite(this.kernels.exports.sumSquares(at, count))) views[name] = new Float32Array(this.kernels.memory.buffer, at, count);
    }
    return nonFiniteTensors(this.config, this.model.format, views);
  }

  /**
   * The trainable tensors that hold a NaN or an infinity in the region at `delta` from them (0: the values): the
   * weights', or with LoRA the adapters'.
   */
  private nonFiniteTrainable(delta: number): NonFiniteTensor[] {
    if (!this.lora) return this.nonFiniteTensors(delta);
    const { loraStart, loraEnd } = this.modelPlan;
    if (Number.isFinite(this.kernels.exports.sumSquares(loraStart + delta, (loraEnd - loraStart) / 4))) return [];
    const found: NonFiniteTensor[] = [];
    for (const [target, pair] of Object.entries(this.readAdapterRegion(delta))) {
      for (const [which, t] of [['A', pair!.a], ['B', pair!.b]] as const) {
        const count = t.reduce((n, v) => (Number.isFinite(v) ? n : n + 1), 0);
        if (count > 0) found.push({ name: `LoRA ${which} of ${target}`, count, first: t.find((v) => !Number.isFinite(v))! });
      }
    }
    return found;
  }

  /** Copies the flat trainable region (every weight, or the adapters, in memory order) into `target`: what helper engines sync from. */
  copyParametersTo(target: Float32Array): void {
    if (!this.lora) this.requireFloat32('copyParametersTo'); // adapters are always float32
    target.set(new Float32Array(this.kernels.memory.buffer, this.modelPlan.trainStart, this.checkSlots(target.length, 'parameters')));
  }

  /** Replaces the flat trainable region with `values` (copyParametersTo of an engine of the same model). */
  writeParameters(values: Float32Array): void {
    if (!this.lora) this.requireFloat32('writeParameters');
    new Float32Array(this.kernels.memory.buffer, this.modelPlan.trainStart, this.checkSlots(values.length, 'parameters')).set(values);
  }

  /** Copies the accumulated gradients (the flat trainable region's) into `target`. */
  copyGradientsTo(target: Float32Array): void {
    const opt = this.requireTraining();
    target.set(new Float32Array(this.kernels.memory.buffer, this.modelPlan.trainStart + opt.gradDelta, this.checkSlots(target.length, 'gradients')));
  }

  /** Adds `values` (another engine's copyGradientsTo) to the accumulated gradients, element by element. */
  addGradients(values: Float32Array): void {
    const opt = this.requireTraining();
    const grads = new Float32Array(this.kernels.memory.buffer, this.modelPlan.trainStart + opt.gradDelta, this.checkSlots(values.length, 'gradients'));
    for (let i = 0; i < values.length; i++) grads[i]! += values[i]!;
  }

  /** The optimizer state: step count and both Adam moments over the flat parameter region. */
  readOptimizerState(): { step: number; m: Float32Array; v: Float32Array } {
    const opt = this.requireMoments(this.requireTraining());
    const { trainStart, trainEnd } = this.modelPlan;
    const count = (trainEnd - trainStart) / 4;
    const buffer = this.kernels.memory.buffer;
    return {
      step: this.adamStep,
      m: new Float32Array(buffer, trainStart + opt.mDelta, count).slice(),
      v: new Float32Array(buffer, trainStart + opt.vDelta, count).slice(),
    };
  }

  writeOptimizerState(state: { step: number; m: Float32Array; v: Float32Array }): void {
    const opt = this.requireMoments(this.requireTraining());
    const { trainStart, trainEnd } = this.modelPlan;
    const count = (trainEnd - trainStart) / 4;
    requireInput(state.m.length === count && state.v.length === count,
      `optimizer state has ${state.m.length} moments but this ${this.lora ? 'model\'s LoRA adapters have' : 'model has'} ${count} parameter slots`);
    const buffer = this.kernels.memory.buffer;
    new Float32Array(buffer, trainStart + opt.mDelta, count).set(state.m);
    new Float32Array(buffer, trainStart + opt.vDelta, count).set(state.v);
    for (const [moment, delta] of [['first', opt.mDelta], ['second', opt.vDelta]] as const) {
      const bad = this.nonFiniteTrainable(delta);
      if (bad.length === 0) continue;
      const n = bad.reduce((sum, t) => sum + t.count, 0);
      throw new RemaxInputError(`the optimizer state holds ${n} ${moment} Adam ${n === 1 ? 'moment' : 'moments'} that ${n === 1 ? 'is' : 'are'} not finite ` +
        `(the first for tensor ${bad[0]!.name}): the state file is corrupt or was saved from a run that diverged; resume from an earlier checkpoint`);
    }
    this.adamStep = state.step;
  }

  /** Number of weights (a shared classifier counted once). */
  get parameterCount(): number {
    return weightShapes(this.config).reduce((n, { shape }) => n + elementCount(shape), 0);
  }

  /** Length of the flat trainable region the optimizer state covers (the weights', or with LoRA the adapters'). */
  get parameterSlots(): number {
    return (this.modelPlan.trainEnd - this.modelPlan.trainStart) / 4;
  }

  /** Number of values the optimizer trains: every weight, or with LoRA the adapters'. */
  get trainableParameterCount(): number {
    return this.lora ? loraShapes(this.config, this.lora).reduce((n, { a, b }) => n + elementCount(a) + elementCount(b), 0) : this.parameterCount;
  }

  /** Copies of the LoRA adapters (A [nLayers, r, in], B [nLayers, out, r] per target). */
  readAdapters(): LoraWeights {
    return this.readAdapterRegion(0);
  }

  /** Copies of the adapters' accumulated gradients. */
  readAdapterGradients(): LoraWeights {
    return this.readAdapterRegion(this.requireTraining().gradDelta);
  }

  /** Replaces the adapters (every target of the engine's settings, shapes as readAdapters'); values must be finite. */
  writeAdapters(weights: LoraWeights, source = 'LoRA adapters'): void {
    const lora = this.requireLora();
    for (const { target, a, b } of loraShapes(this.config, lora)) {
      const given = weights[target];
      for (const [which, shape, data, at] of [['A', a, given?.a, this.modelPlan.adapters[target]!.a], ['B', b, given?.b, this.modelPlan.adapters[target]!.b]] as const) {
        requireInput(data !== undefined && data.length === elementCount(shape),
          `${source}: the ${target} projection's LoRA ${which} must have ${elementCount(shape)} values ([${shape.join(', ')}]), got ${data?.length ?? 'none'}`);
        const bad = data.findIndex((v) => !Number.isFinite(v));
        requireInput(bad < 0, `${source}: the ${target} projection's LoRA ${which} holds ${data[bad]} at index ${bad}: every value must be a finite number`);
        new Float32Array(this.kernels.memory.buffer, at, data.length).set(data);
      }
    }
  }

  private readAdapterRegion(delta: number): LoraWeights {
    const out: LoraWeights = {};
    for (const { target, a, b } of loraShapes(this.config, this.requireLora())) {
      const at = this.modelPlan.adapters[target]!, buffer = this.kernels.memory.buffer;
      out[target] = { a: new Float32Array(buffer, at.a + delta, elementCount(a)).slice(), b: new Float32Array(buffer, at.b + delta, elementCount(b)).slice() };
    }
    return out;
  }

  private requireLora(): LoraSettings {
    if (!this.lora) throw new Error('this engine has no LoRA adapters (create it with the lora option)');
    return this.lora;
  }

  /** The current weights as a llama2.c checkpoint (legacy format, loadable by llama2.c's run.c). */
  exportCheckpoint(): Uint8Array {
    return serializeCheckpoint(this.config, this.readWeights());
  }

  /**
   * The model with its current weights (copies), ready for a format's writer or another engine; compact matrices also
   * as `stored` (Q8_0 with a copy of its blocks), so an engine created from it keeps them so too.
   */
  exportModel(): LoadedModel {
    const stored: StoredTensors = {};
    for (const { name, shape } of weightShapes(this.config)) {
      const type = this.types[name];
      if (type === 'Q8_0' || type === 'Q4_K') stored[name] = { type, blocks: new Uint8Array(this.kernels.memory.buffer, this.modelPlan.weights[name]!, tensorBytes(type, shape)).slice() };
      else if (type) stored[name] = { type };
    }
    return {
      ...this.model, weights: this.readWeights(), ...(this.tokenizer ? { tokenizer: this.tokenizer } : {}),
      ...(Object.keys(stored).length > 0 ? { stored } : {}),
    };
  }

  private copyTensors(delta: number): ModelWeights {
    const buffer = this.kernels.memory.buffer;
    const out = tensorViews(buffer, this.config, (name: WeightName) => this.modelPlan.weights[name]! + delta, true, (name) => !this.types[name]);
    for (const { name, shape } of weightShapes(this.config)) {
      const type = this.types[name];
      if (type) out[name] = unpackTensor(new Uint8Array(buffer, this.modelPlan.weights[name]!, tensorBytes(type, shape)), type, elementCount(shape));
    }
    return out;
  }

  /** The flat parameter region is float32 only when no matrix is compact. */
  private requireFloat32(what: string): void {
    if (Object.keys(this.types).length > 0) {
      throw new Error(`${what}: this engine keeps compact weights (weightsDtype); create it with weightsDtype 'f32' or call enableTraining first`);
    }
  }

  private checkSlots(length: number, what: string): number {
    requireInput(length === this.parameterSlots, `${what}: expected ${this.parameterSlots} values, got ${length}`);
    return length;
  }

  private requireMoments(opt: OptimizerPlan): { mDelta: number; vDelta: number } {
    if (!opt.moments) throw new Error('this engine was set up to compute gradients only (enableTraining with optimizerState: false)');
    return opt.moments;
  }

  private requireTraining(): OptimizerPlan {
    if (!this.optimizer) throw new Error('call enableTraining() before computing gradients or stepping the optimizer');
    return this.optimizer;
  }

  /** `adapters` null: a descriptor without adapters (every adapter field 0). */
  private writeModelDescriptor(at: number, pointers: TensorPointers, adapters: Record<string, number> | null, types: WeightTypes = {}): void {
    const c = this.config, plan = this.modelPlan;
    const none = Object.fromEntries(Object.values(LORA_FIELDS).flat().map((field) => [field, 0]));
    const code = (name: WeightName): number => WEIGHT_TYPE_CODES[types[name] ?? 'F32'];
    writeDescriptor(this.kernels.memory.buffer, at, MODEL_FIELDS, {
      embeddingType: code('token_embedding_table'), wqType: code('wq'), wkType: code('wk'), wvType: code('wv'), woType: code('wo'),
      w1Type: code('w1'), w2Type: code('w2'), w3Type: code('w3'),
      wclsType: code(c.sharedClassifier ? 'token_embedding_table' : 'wcls'),
      dim: c.dim, hiddenDim: c.hiddenDim, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nKvHeads,
      vocabSize: c.vocabSize, seqLen: c.seqLen, normEps: c.normEps, ropeTheta: c.ropeTheta, headSize: headSize(c),
      ropeCos: plan.ropeCos, ropeSin: plan.ropeSin, ...pointers,
      loraRank: this.lora?.rank ?? 0, loraScale: this.lora ? loraScale(this.lora) : 0, ...none, ...(adapters ?? {}),
      loraDropThreshold: dropoutFields(this.lora).threshold, loraDropScale: dropoutFields(this.lora).scale,
    } as Record<(typeof MODEL_FIELDS)[number], number>);
  }
}

type TensorPointers = Record<'tokenEmbedding' | 'rmsAtt' | 'wq' | 'wk' | 'wv' | 'wo' | 'rmsFfn' | 'w1' | 'w2' | 'w3' | 'rmsFinal' | 'wcls'
  | 'bq' | 'bk' | 'bv' | 'rmsQ' | 'rmsK' | 'wscore', number>;

/** The Model descriptor's tensor fields from the plan's offsets (0 for a tensor the model does not have). */
function tensorPointers(w: Partial<Record<WeightName, number>>): TensorPointers {
  return {
    tokenEmbedding: w.token_embedding_table!, rmsAtt: w.rms_att_weight!, wq: w.wq!, wk: w.wk!, wv: w.wv!, wo: w.wo!,
    rmsFfn: w.rms_ffn_weight!, w1: w.w1!, w2: w.w2!, w3: w.w3!, rmsFinal: w.rms_final_weight!, wcls: w.wcls!,
    bq: w.bq ?? 0, bk: w.bk ?? 0, bv: w.bv ?? 0, rmsQ: w.rms_q_weight ?? 0, rmsK: w.rms_k_weight ?? 0, wscore: w.score ?? 0,
  };
}

/** The adapter fields of a Model descriptor: each adapter's A and B offset plus `delta` (0 for projections without one). */
function adapterPointers(adapters: ModelPlan['adapters'], delta: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [target, [fieldA, fieldB]] of Object.entries(LORA_FIELDS)) {
    const at = adapters[target as keyof typeof adapters];
    out[fieldA] = at ? at.a + delta : 0;
    out[fieldB] = at ? at.b + delta : 0;
  }
  return out;
}

/** Writes sequences packed one after another at idsAt, and their n + 1 start offsets at offsetsAt (the jobs' layout). */
function writePacked(buffer: ArrayBuffer, idsAt: number, offsetsAt: number, sequences: number[][]): void {
  const offsets = new Int32Array(buffer, offsetsAt, sequences.length + 1);
  let offset = 0;
  sequences.forEach((ids, i) => {
    new Int32Array(buffer, idsAt + 4 * offset, ids.length).set(ids);
    offsets[i] = offset;
    offset += ids.length;
  });
  offsets[sequences.length] = offset;
}

function checkDescriptor(name: string, wasmBytes: number, fields: number): void {
  if (wasmBytes !== 4 * fields) {
    throw new Error(`kernel build mismatch: descriptor ${name} is ${wasmBytes} bytes in WASM but the host lists ${fields} fields; rebuild with npm run build`);
  }
}
