import { parseCheckpoint, type Checkpoint } from './checkpoint';
import { headSize, type ModelConfig } from './config';
import { RemaxInputError, requireInput } from './errors';
import { Arena } from './arena';
import { instantiateKernels, ensureMemory, type BuildChoice, type BuildName, type Kernels, type WasmBuilds } from './kernels';
import { GENERATE_JOB_FIELDS, LOGPROBS_JOB_FIELDS, MODEL_FIELDS, WORKSPACE_FIELDS, writeDescriptor } from './layout';
import { planModel, planWorkspace, type ModelPlan, type WorkspacePlan } from './memory-plan';
import { samplerState } from './seed';
import { EOS_ID, Tokenizer } from './tokenizer';
import { wasmBuilds } from '../wasm-builds';

export interface EngineOptions {
  /** The kernel builds (bytes or compiled modules); default: the builds embedded in this bundle. */
  wasm?: WasmBuilds;
  /** A llama2.c checkpoint (bytes), or one already parsed. */
  model: Uint8Array | Checkpoint;
  /** Name of the model for error messages (e.g. its file path). */
  modelSource?: string;
  /** A llama2.c tokenizer.bin (bytes), or one already loaded; required for text prompts. */
  tokenizer?: Uint8Array | Tokenizer;
  tokenizerSource?: string;
  /** Which kernel build to run: 'auto' (default) prefers relaxed SIMD where the engine accepts it. */
  build?: BuildChoice;
  /** Sequences the KV cache is planned for up front (default 1); a larger batch re-plans the workspace. */
  maxBatch?: number;
  /** Token rows per forward pass (default 256); longer prefills run in chunks of this size. */
  maxTokens?: number;
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
}

export interface GenerateOptions extends SamplingOptions {
  /** Maximum new tokens per sequence (default 256; never past the context). */
  maxNewTokens?: number;
  /** Batch seed (default 0): sequence i samples from the stream (seed, i). */
  seed?: number | bigint;
  /** Token that ends a sequence (kept in the output); null = none. Default EOS = 2. */
  eosId?: number | null;
  /** Also return log π of each new token (a log-sum-exp over the vocabulary per token). Default false. */
  logprobs?: boolean;
}

export type FinishReason = 'eos' | 'length' | 'context';

export interface Generation {
  promptIds: number[];
  /** New tokens only. */
  ids: number[];
  /** log π(token) of each new token under the untempered model, when requested with `logprobs: true`. */
  logprobs?: number[];
  finishReason: FinishReason;
}

const DEFAULTS = { temperature: 1, topK: 0, topP: 0.9, maxNewTokens: 256, maxTokens: 256 } as const;

/**
 * A Llama-family model in WASM memory: batched generation and teacher-forced log-probabilities.
 * Create with `RemaxEngine.create(options)`; the core takes bytes and never touches files or the network.
 */
export class RemaxEngine {
  readonly config: ModelConfig;
  readonly tokenizer?: Tokenizer;
  readonly build: BuildName;
  private readonly kernels: Kernels;
  private readonly modelPlan: ModelPlan;
  private workspace!: WorkspacePlan;

  private constructor(kernels: Kernels, checkpoint: Checkpoint, tokenizer: Tokenizer | undefined, maxBatch: number, maxTokens: number) {
    this.kernels = kernels;
    this.build = kernels.build;
    this.config = checkpoint.config;
    this.tokenizer = tokenizer;
    const k = kernels.exports;
    checkDescriptor('Model', k.modelDescBytes(), MODEL_FIELDS.length);
    checkDescriptor('Workspace', k.workspaceDescBytes(), WORKSPACE_FIELDS.length);
    checkDescriptor('GenerateJob', k.generateJobBytes(), GENERATE_JOB_FIELDS.length);
    checkDescriptor('LogprobsJob', k.logprobsJobBytes(), LOGPROBS_JOB_FIELDS.length);
    this.modelPlan = planModel(this.config, k.heapBase());
    this.loadWeights(checkpoint);
    this.reserveWorkspace(maxBatch, maxTokens);
  }

  static async create(options: EngineOptions): Promise<RemaxEngine> {
    const modelSource = options.modelSource ?? 'model';
    const checkpoint = options.model instanceof Uint8Array ? parseCheckpoint(options.model, modelSource) : options.model;
    let tokenizer: Tokenizer | undefined;
    if (options.tokenizer) {
      tokenizer = options.tokenizer instanceof Tokenizer
        ? options.tokenizer
        : Tokenizer.fromBytes(options.tokenizer, options.tokenizerSource ?? 'tokenizer');
      tokenizer.assertFitsModel(checkpoint.config.vocabSize, modelSource);
    }
    const maxBatch = options.maxBatch ?? 1;
    const maxTokens = options.maxTokens ?? DEFAULTS.maxTokens;
    requireInput(Number.isInteger(maxBatch) && maxBatch >= 1, `maxBatch must be a positive integer, got ${maxBatch}`);
    requireInput(Number.isInteger(maxTokens) && maxTokens >= 1, `maxTokens must be a positive integer, got ${maxTokens}`);
    const kernels = await instantiateKernels(options.wasm ?? wasmBuilds, options.build ?? 'auto');
    return new RemaxEngine(kernels, checkpoint, tokenizer, maxBatch, maxTokens);
  }

  /** Bytes of linear memory in use (it only grows, so this is also the peak). */
  get memoryBytes(): number {
    return this.kernels.memory.buffer.byteLength;
  }

  /** Sequences and token rows the workspace is currently planned for. */
  get capacity(): { maxSeqs: number; maxTokens: number } {
    return { maxSeqs: this.workspace.maxSeqs, maxTokens: this.workspace.maxTokens };
  }

  /** Encodes text with the model's tokenizer (BOS first). */
  encode(text: string): number[] {
    return this.requireTokenizer().encode(text);
  }

  /** Decodes new tokens; pass the prompt ids so the space after BOS is handled as llama2.c does. */
  decode(ids: number[], promptIds: number[] = []): string {
    const afterBos = promptIds.length === 1 && promptIds[0] === 1;
    return this.requireTokenizer().decode(ids, { afterBos });
  }

  /**
   * Generates for a batch of prompts in one batched decode: all prompts are prefilled together, then every
   * step runs one token of each unfinished sequence. Per-request settings override the batch options.
   */
  generate(requests: GenerateRequest[], options: GenerateOptions = {}): Generation[] {
    requireInput(requests.length > 0, 'generate needs at least one prompt');
    const c = this.config;
    const eosId = options.eosId === undefined ? EOS_ID : options.eosId ?? -1;
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
      const state = r.seed !== undefined ? samplerState(r.seed, 0) : samplerState(options.seed ?? 0, i);
      return { promptIds, maxNew: Math.min(maxNew, c.seqLen - promptIds.length), temperature, topK, topP, state };
    });

    this.reserveWorkspace(specs.length, this.workspace.maxTokens);
    const n = specs.length;
    const stride = Math.max(1, ...specs.map((s) => s.maxNew));
    const totalPrompt = specs.reduce((sum, s) => sum + s.promptIds.length, 0);
    const io = new Arena(this.workspace.end);
    const at = {
      promptIds: io.take(4 * totalPrompt), promptOffsets: io.take(4 * (n + 1)), maxNewTokens: io.take(4 * n),
      temperature: io.take(4 * n), topK: io.take(4 * n), topP: io.take(4 * n), rngStates: io.take(8 * n),
      outIds: io.take(4 * n * stride), outLengths: io.take(4 * n), outLogprobs: options.logprobs ? io.take(4 * n * stride) : 0,
    };
    ensureMemory(this.kernels.memory, io.end);
    const buffer = this.kernels.memory.buffer;
    const i32 = (p: number, len: number) => new Int32Array(buffer, p, len);
    const f32 = (p: number, len: number) => new Float32Array(buffer, p, len);
    i32(at.promptIds, totalPrompt).set(specs.flatMap((s) => s.promptIds));
    let offset = 0;
    i32(at.promptOffsets, n + 1).set([0, ...specs.map((s) => (offset += s.promptIds.length))]);
    i32(at.maxNewTokens, n).set(specs.map((s) => s.maxNew));
    f32(at.temperature, n).set(specs.map((s) => s.temperature));
    i32(at.topK, n).set(specs.map((s) => s.topK));
    f32(at.topP, n).set(specs.map((s) => s.topP));
    new BigUint64Array(buffer, at.rngStates, n).set(specs.map((s) => s.state));
    writeDescriptor(buffer, this.modelPlan.jobDesc, GENERATE_JOB_FIELDS, {
      nSeqs: n, ...at, eosId, outStride: stride,
    });

    this.kernels.exports.generate(this.modelPlan.modelDesc, this.modelPlan.workspaceDesc, this.modelPlan.jobDesc);

    const out = this.kernels.memory.buffer;
    const lengths = new Int32Array(out, at.outLengths, n);
    return specs.map((s, i) => {
      const len = lengths[i]!;
      const ids = Array.from(new Int32Array(out, at.outIds + 4 * i * stride, len));
      const logprobs = options.logprobs ? Array.from(new Float32Array(out, at.outLogprobs + 4 * i * stride, len)) : undefined;
      const finishReason: FinishReason = len > 0 && ids[len - 1] === eosId ? 'eos'
        : len >= s.maxNew && s.promptIds.length + len < c.seqLen ? 'length' : 'context';
      return { promptIds: s.promptIds, ids, logprobs, finishReason };
    });
  }

  /**
   * Teacher-forced log-probabilities, batched: for each sequence, result[t − 1] = log p(ids[t] | ids[<t]).
   */
  logprobs(sequences: number[][]): number[][] {
    requireInput(sequences.length > 0, 'logprobs needs at least one sequence');
    const c = this.config;
    sequences.forEach((ids, i) => {
      this.checkIds(ids, `sequence ${i}`);
      requireInput(ids.length <= c.seqLen,
        `sequence ${i} has ${ids.length} tokens but the model's context (seq_len) is ${c.seqLen}: shorten it`);
    });
    const n = sequences.length;
    const total = sequences.reduce((sum, s) => sum + s.length, 0);
    const io = new Arena(this.workspace.end);
    const at = { ids: io.take(4 * total), offsets: io.take(4 * (n + 1)), out: io.take(4 * Math.max(1, total - n)) };
    ensureMemory(this.kernels.memory, io.end);
    const buffer = this.kernels.memory.buffer;
    new Int32Array(buffer, at.ids, total).set(sequences.flat());
    let offset = 0;
    new Int32Array(buffer, at.offsets, n + 1).set([0, ...sequences.map((s) => (offset += s.length))]);
    writeDescriptor(buffer, this.modelPlan.jobDesc, LOGPROBS_JOB_FIELDS, { nSeqs: n, ...at });

    this.kernels.exports.logprobs(this.modelPlan.modelDesc, this.modelPlan.workspaceDesc, this.modelPlan.jobDesc);

    const out = new Float32Array(this.kernels.memory.buffer, at.out, Math.max(0, total - n));
    let start = 0;
    return sequences.map((s) => {
      const row = Array.from(out.subarray(start, start + s.length - 1));
      start += s.length - 1;
      return row;
    });
  }

  private requireTokenizer(): Tokenizer {
    if (!this.tokenizer) throw new RemaxInputError('this engine has no tokenizer: load one (e.g. --tokenizer tokenizer.bin) to use text');
    return this.tokenizer;
  }

  private checkIds(ids: number[], what: string): void {
    requireInput(Array.isArray(ids) && ids.length > 0, `${what} is empty: it needs at least one token id (BOS = 1)`);
    const bad = ids.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= this.config.vocabSize);
    requireInput(bad < 0, `${what}: token id ${ids[bad]} at index ${bad} is outside the vocabulary [0, ${this.config.vocabSize})`);
  }

  private loadWeights(checkpoint: Checkpoint): void {
    const c = this.config, plan = this.modelPlan;
    ensureMemory(this.kernels.memory, plan.end);
    const buffer = this.kernels.memory.buffer;
    for (const [name, data] of Object.entries(checkpoint.weights)) {
      if (!data) continue;
      new Float32Array(buffer, plan.weights[name as keyof typeof plan.weights], data.length).set(data);
    }
    writeDescriptor(buffer, plan.modelDesc, MODEL_FIELDS, {
      dim: c.dim, hiddenDim: c.hiddenDim, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nKvHeads,
      vocabSize: c.vocabSize, seqLen: c.seqLen, normEps: c.normEps, ropeTheta: c.ropeTheta,
      tokenEmbedding: plan.weights.token_embedding_table, rmsAtt: plan.weights.rms_att_weight,
      wq: plan.weights.wq, wk: plan.weights.wk, wv: plan.weights.wv, wo: plan.weights.wo,
      rmsFfn: plan.weights.rms_ffn_weight, w1: plan.weights.w1, w2: plan.weights.w2, w3: plan.weights.w3,
      rmsFinal: plan.weights.rms_final_weight, wcls: plan.weights.wcls,
      ropeCos: plan.ropeCos, ropeSin: plan.ropeSin,
    });
    if (headSize(c) % 2 !== 0) throw new RemaxInputError(`head size ${headSize(c)} is odd: RoPE needs an even head size`);
    this.kernels.exports.initRope(plan.modelDesc);
  }

  /** Lays out the workspace for at least `maxSeqs` sequences (never shrinks) and writes its descriptor. */
  private reserveWorkspace(maxSeqs: number, maxTokens: number): void {
    const current = this.workspace;
    if (current && current.maxSeqs >= maxSeqs && current.maxTokens >= maxTokens) return;
    const seqs = Math.max(maxSeqs, current?.maxSeqs ?? 0);
    const rows = Math.max(maxTokens, seqs, current?.maxTokens ?? 0);
    const plan = planWorkspace(this.config, this.modelPlan.end, seqs, rows);
    ensureMemory(this.kernels.memory, plan.end);
    writeDescriptor(this.kernels.memory.buffer, this.modelPlan.workspaceDesc, WORKSPACE_FIELDS, {
      maxTokens: plan.maxTokens, maxSeqs: plan.maxSeqs, ...plan.offsets,
    });
    this.workspace = plan;
  }
}

function checkDescriptor(name: string, wasmBytes: number, fields: number): void {
  if (wasmBytes !== 4 * fields) {
    throw new Error(`kernel build mismatch: descriptor ${name} is ${wasmBytes} bytes in WASM but the host lists ${fields} fields; rebuild with npm run build`);
  }
}
