// A policy spread over the main engine and its helper engines, one per extra thread (remax train, sft and generate
// --threads): each decode, reference pass and gradient is cut into contiguous parts, the main engine takes the first
// while the helpers work on the others, and the parts are joined in order. Decoding is exact (every sequence carries its own sampler seed,
// and a sequence's tokens do not depend on its batch), so sampled and greedy responses are those of one engine;
// gradients are summed part by part, so they depend on the number of parts (as any parallel reduction's rounding
// does): a run replays exactly with the same seed and the same number of threads.
// With no helpers every call goes straight to the main engine, exactly as before.
// PPO's critic is a second group over the same helper threads (role 'critic'): each helper hosts a share of the
// policy and of the critic, so the critic's values and gradients are split like the policy's.
import type { GenerateOptions, GenerateRequest, Generation, RemaxEngine } from '../engine';
import type { GradientResult, TrainingExample, TrainingOptions } from '../training';
import type { HelperEngine } from './helper-client';
import type { EngineRole, HelperOp, HelperOps, ValueTarget } from './protocol';
import { valueGradients, type ValueLossSettings } from '../rl/value-gradients';
import { RemaxInputError } from '../errors';
import type { LoadedModel } from '../formats/model';
import { pairGradient } from '../bradley-terry';

export class PolicyGroup {
  private started: Promise<void> | undefined;
  /** The helpers' pending setParameters (awaited with their next results, so that a failure surfaces). */
  private syncing: Promise<unknown> = Promise.resolve();
  /**
   * Shared with the helpers, allocated once (fresh pages cost more than the copy on this kind of machine): the
   * parameters the main engine publishes after each optimizer step, and each helper's gradients.
   */
  private sharedParameters: Float32Array | undefined;
  private sharedGradients: Float32Array[] = [];
  /** Each helper's WASM memory in bytes (known once started). */
  helperMemoryBytes: number[] = [];

  /**
   * `policy` is the main thread's engine of `role`: the policy (with its `reference`), or PPO's critic (no reference;
   * its group shares the policy group's helpers and is not the one that ends them).
   */
  constructor(readonly policy: RemaxEngine, readonly reference: RemaxEngine | undefined, private readonly helpers: HelperEngine[],
    private readonly role: EngineRole = 'policy') {}

  /** `op` on helper `i`'s engine of this group's role. */
  private call<K extends HelperOp>(i: number, op: K, args: HelperOps[K]['args']): Promise<HelperOps[K]['result']> {
    return this.helpers[i]!.call(op, args, this.role);
  }

  get threads(): number {
    return 1 + this.helpers.length;
  }

  /**
   * Creates the helpers' engines from the main engine's current weights (once; later calls wait for the first);
   * `training` null: they only decode.
   */
  start(maxBatch: number, training: TrainingOptions | null): Promise<void> {
    if (this.helpers.length === 0) return Promise.resolve();
    this.started ??= (async () => {
      if (typeof SharedArrayBuffer !== 'function') {
        throw new RemaxInputError('more than one thread needs SharedArrayBuffer (in a browser: a cross-origin isolated page)');
      }
      const bytes = 4 * this.policy.parameterSlots;
      const parameters = new SharedArrayBuffer(bytes);
      this.sharedParameters = new Float32Array(parameters);
      const policy = portableModel(this.policy);
      // A LoRA run's reference is the policy with its adapters off (the same engine): the helpers do the same.
      const referenceIsPolicy = this.reference === this.policy;
      const reference = this.reference && !referenceIsPolicy ? portableModel(this.reference) : undefined;
      const lora = this.policy.lora ? { settings: this.policy.lora, weights: this.policy.readAdapters() } : undefined;
      this.helperMemoryBytes = (await Promise.all(this.helpers.map((h, i) => {
        const gradients = new SharedArrayBuffer(bytes);
        this.sharedGradients[i] = new Float32Array(gradients);
        return h.call('init', { policy, reference, referenceIsPolicy, lora, build: this.policy.build, maxBatch, training, parameters, gradients }, this.role);
      }))).map((r) => r.memoryBytes);
    })();
    return this.started;
  }

  /** The main engine's weights changed (an optimizer step): the helpers take a copy before their next work. */
  parametersChanged(): void {
    if (this.helpers.length === 0) return;
    // Safe to overwrite: every helper has finished this step's gradients, its last use of the previous parameters.
    this.policy.copyParametersTo(this.sharedParameters!);
    this.syncing = Promise.all(this.helpers.map((h) => h.call('setParameters', null, this.role)));
    this.syncing.catch(() => undefined); // a failure surfaces where the next call awaits it, or not at all after close
  }

  /**
   * policy.generate over all engines; `unit` requests in a row stay together (they share rows: one prompt's). Each
   * part keeps its sequences' sampler streams (firstIndex), so the tokens are those of one engine.
   */
  async generate(requests: GenerateRequest[], options: GenerateOptions, unit = 1): Promise<Generation[]> {
    const parts = this.split(requests, unit, (r) => r.promptIds.length + (r.maxNewTokens ?? options.maxNewTokens ?? 0));
    const firstIndex = parts.map((_, p) => (options.firstIndex ?? 0) + parts.slice(0, p).reduce((n, part) => n + part.length, 0));
    const remote = parts.slice(1).map((part, i) =>
      (part.length ? this.call(i, 'generate', { requests: part, options: { ...options, firstIndex: firstIndex[i + 1] } }) : []));
    const local = parts[0]!.length ? this.policy.generate(parts[0]!, options) : [];
    const [, ...rest] = await Promise.all([this.syncing, ...remote]);
    return [...local, ...rest.flat()];
  }

  /** policy.logprobs over all engines (with the adapters of a LoRA policy). */
  logprobs(sequences: number[][]): Promise<number[][]> {
    return this.perSequence('logprobs', sequences, (part) => this.policy.logprobs(part));
  }

  /** reference.logprobs over all engines (without adapters: a LoRA policy engine serves as its own reference). */
  referenceLogprobs(sequences: number[][]): Promise<number[][]> {
    return this.perSequence('referenceLogprobs', sequences, (part) => this.reference!.logprobs(part, { adapters: false }));
  }

  /**
   * One row of results per sequence, over all engines: the sequences cut into parts by length, `op` on each helper's
   * part, `local` on the main engine's, the rows joined in order.
   */
  private async perSequence(op: 'logprobs' | 'referenceLogprobs' | 'tokenScores', sequences: number[][],
    local: (part: number[][]) => number[][]): Promise<number[][]> {
    const parts = this.split(sequences, 1, (s) => s.length);
    const remote = parts.slice(1).map((part, i) => (part.length ? this.call(i, op, { sequences: part }) : []));
    const mine = parts[0]!.length ? local(parts[0]!) : [];
    const [, ...rest] = await Promise.all([this.syncing, ...remote]);
    return [...mine, ...(rest as number[][][]).flat()];
  }

  /**
   * Sets the main engine's gradients to those of `examples` (zeroGradients, then accumulateGradients): each engine
   * computes its part's from zero and the main engine adds the helpers' in order.
   */
  async gradients(examples: TrainingExample[]): Promise<GradientResult> {
    this.policy.zeroGradients();
    const none: GradientResult = { loss: 0, tokens: 0, entropySum: 0, entropyTokens: 0 };
    if (examples.length === 0) return none;
    const parts = this.split(examples, 1, (e) => e.ids.length);
    const remote = parts.slice(1).map((part, i) => (part.length ? this.call(i, 'gradients', { examples: part }) : undefined));
    const total = parts[0]!.length ? this.policy.accumulateGradients(parts[0]!) : none;
    const [, ...results] = await Promise.all([this.syncing, ...remote]);
    results.forEach((result, i) => {
      if (!result) return;
      this.policy.addGradients(this.sharedGradients[i]!);
      // Sums, so the entropy's mean is over every measured token of the batch, whichever engine measured it.
      total.loss += result.loss;
      total.tokens += result.tokens;
      total.entropySum += result.entropySum;
      total.entropyTokens += result.entropyTokens;
    });
    return total;
  }

  /**
   * Sets the main engine's gradients to a reward model's Bradley–Terry gradient of a batch of preference pairs, split
   * among the engines as gradients() splits examples; returns every pair's scores, in order.
   */
  async pairGradients(pairs: [number[], number[]][]): Promise<{ chosen: number[]; rejected: number[] }> {
    this.policy.zeroGradients();
    const parts = this.split(pairs, 1, ([c, r]) => c.length + r.length);
    const remote = parts.slice(1).map((part, i) => (part.length ? this.call(i, 'pairGradients', { pairs: part, batchSize: pairs.length }) : undefined));
    const seen = { chosen: [] as number[], rejected: [] as number[] };
    if (parts[0]!.length) this.policy.accumulateScoreGradients(parts[0]!, pairGradient(pairs.length, seen));
    const [, ...results] = await Promise.all([this.syncing, ...remote]);
    results.forEach((result, i) => {
      if (!result) return;
      this.policy.addGradients(this.sharedGradients[i]!);
      seen.chosen.push(...result.chosen);
      seen.rejected.push(...result.rejected);
    });
    return seen;
  }

  /** A scalar-head engine's tokenScores over all engines (the critic's values; exact: no sum across engines). */
  tokenScores(sequences: number[][]): Promise<number[][]> {
    return this.perSequence('tokenScores', sequences, (part) => this.policy.tokenScores(part));
  }

  /**
   * Sets the main engine's (the critic's) gradients to PPO's value loss over `targets`, split as gradients() splits
   * examples; returns the value loss, the parts' sums added in order.
   */
  async valueGradients(targets: ValueTarget[], settings: ValueLossSettings): Promise<{ valueLoss: number }> {
    const parts = this.split(targets, 1, (t) => t.ids.length);
    const remote = parts.slice(1).map((part, i) => (part.length ? this.call(i, 'valueGradients', { targets: part, ...settings }) : undefined));
    let { valueLoss } = valueGradients(this.policy, parts[0]!, settings);
    const [, ...results] = await Promise.all([this.syncing, ...remote]);
    results.forEach((result, i) => {
      if (!result) return;
      this.policy.addGradients(this.sharedGradients[i]!);
      valueLoss += result.valueLoss;
    });
    return { valueLoss };
  }

  /** Ends the helpers' workers (the policy group's job: a critic group shares them). */
  close(): void {
    if (this.role !== 'policy') return;
    for (const helper of this.helpers) helper.terminate();
  }

  /**
   * `items` cut into one contiguous part per engine, whole units of `unit` items each, with about equal cost per part
   * (the main engine's part first). A pure function of the items and the number of engines.
   */
  private split<T>(items: T[], unit: number, cost: (item: T) => number): T[][] {
    const engines = this.threads;
    if (engines === 1) return [items];
    const units: T[][] = [];
    for (let i = 0; i < items.length; i += unit) units.push(items.slice(i, i + unit));
    const unitCost = units.map((u) => u.reduce((sum, item) => sum + cost(item), 0));
    const total = unitCost.reduce((a, b) => a + b, 0);
    const parts: T[][] = Array.from({ length: engines }, () => []);
    let done = 0;
    units.forEach((u, i) => {
      // The part whose share of the total cost this unit's middle falls in.
      const part = total > 0 ? Math.min(engines - 1, Math.floor(((done + unitCost[i]! / 2) / total) * engines)) : 0;
      parts[part]!.push(...u);
      done += unitCost[i]!;
    });
    return parts;
  }
}

/** What a helper's engine is created from: the engine's model with its current weights (no tokenizer, no origin files). */
function portableModel(engine: RemaxEngine): LoadedModel {
  const { origin: _origin, tokenizer: _tokenizer, ...model } = engine.exportModel();
  return model;
}
