import { TrainingDivergedError, type RemaxEngine } from './engine';
import { requireInput } from './errors';
import { learningRate, validateSchedule, type ScheduleConfig } from './schedule';
import { DataOrder } from './sft-data';
import { captureRun, resumeRun } from './run-state';
import type { TrainingExample, TrainingOptions } from './training';
import { PolicyGroup } from './parallel/policy-group';
import { dropoutSeed } from './lora';
import type { HelperEngine } from './parallel/helper-client';
import type { OptimizerSettings, TrainingState } from './training-state';

// Supervised fine-tuning (or pre-training of a fresh model) with the token cross-entropy: each step draws a batch
// in the seeded data order, averages the loss over the batch's weighted tokens, and takes one AdamW step.
// Everything that decides the next step (weights, moments, step, data position) is in the engine or in
// state(), so a run saved and resumed continues exactly as the uninterrupted run.

export interface SftOptions {
  steps: number;
  batchSize: number;
  seed: number;
  schedule: ScheduleConfig;
  optimizer: OptimizerSettings;
  /** Recompute activations layer by layer in the backward pass (less memory for one more forward pass of the layers). */
  activationCheckpointing?: boolean;
}

export interface SftStep {
  step: number;
  /** Mean cross-entropy per weighted token of this step's batch (nats). */
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  /**
   * The model's mean entropy −Σ_v p_v·log p_v per token of the batch from each example's first trained token on (nats),
   * from the backward pass's own softmax; NaN when no example has a trained token.
   */
  entropy: number;
  seconds: number;
}

export class SftTrainer {
  private order: DataOrder;
  private nextStep: number;
  private readonly training: TrainingOptions;
  private readonly group: PolicyGroup;

  /** Starts a run, or continues the one `resume` was saved from (the engine must hold that run's weights). */
  constructor(
    private readonly engine: RemaxEngine,
    private readonly examples: TrainingExample[],
    private readonly options: SftOptions,
    resume?: TrainingState,
    /** Helper engines on other threads that share each step's gradient (see parallel/policy-group.ts). */
    helpers: HelperEngine[] = [],
  ) {
    validateSchedule(options.schedule);
    requireInput(Number.isSafeInteger(options.batchSize) && options.batchSize > 0, `--batch must be a positive integer, got ${options.batchSize}`);
    this.training = { maxSeqs: Math.min(options.batchSize, 16), activationCheckpointing: options.activationCheckpointing ?? false };
    engine.enableTraining(this.training);
    this.group = new PolicyGroup(engine, undefined, helpers);
    if (resume) {
      this.order = resumeRun(engine, resume, examples.length, 'examples (same --data and --seq?)');
      this.nextStep = resume.step;
    } else {
      this.order = new DataOrder(examples.length, options.seed);
      this.nextStep = 0;
    }
  }

  get step(): number {
    return this.nextStep;
  }

  get done(): boolean {
    return this.nextStep >= this.options.steps;
  }

  /**
   * One optimizer step. A gradient that is not finite leaves the weights as they were and throws; the step's
   * examples then come again in the next step.
   */
  async runStep(): Promise<SftStep> {
    await this.group.start(1, this.training);
    const started = performance.now();
    const position = this.order.position;
    const batch = this.order.nextBatch(this.options.batchSize).map((i) => this.examples[i]!);
    const weightSum = batch.reduce((sum, e) => sum + e.weights.reduce((s, w) => s + Math.abs(w), 0), 0);
    const scaled: TrainingExample[] = batch.map((e, i) => {
      const firstTrained = e.weights.findIndex((w, t) => t > 0 && w !== 0);
      return {
        ids: e.ids, weights: e.weights.map((w) => w / weightSum), dropoutSeed: dropoutSeed(this.options.seed, this.nextStep, i),
        ...(firstTrained > 0 ? { entropyFrom: firstTrained } : {}),
      };
    });
    const lr = learningRate(this.nextStep, this.options.schedule);
    let result: { loss: number; tokens: number; entropy: number; gradNorm: number };
    try {
      const { loss, tokens, entropySum, entropyTokens } = await this.group.gradients(scaled);
      if (!Number.isFinite(loss)) {
        throw new TrainingDivergedError(`the loss is ${loss}`,
          this.nextStep === 0 ? 'the weights were not updated; the model gives non-finite log-probabilities from the start: check its weights'
            : `the weights were not updated; lower --lr (now ${lr})`, this.nextStep + 1);
      }
      result = { loss, tokens, entropy: entropySum / entropyTokens, gradNorm: this.engine.optimizerStep({ lr, ...this.options.optimizer }).gradNorm };
    } catch (error) {
      this.order = DataOrder.restore(this.examples.length, this.order.seed, position);
      throw error instanceof TrainingDivergedError && error.step === undefined ? error.atStep(this.nextStep + 1) : error;
    }
    this.group.parametersChanged();
    this.nextStep++;
    return { step: this.nextStep, ...result, lr, seconds: (performance.now() - started) / 1000 };
  }

  /** Ends the helper engines' threads (a run with helpers must call this when done, or the process stays up). */
  close(): void {
    this.group.close();
  }

  /** Everything a resumed run needs besides the weights. */
  state(extra: Record<string, unknown> = {}): TrainingState {
    return captureRun(this.engine, this.nextStep, this.order, this.options.schedule, this.options.optimizer, extra);
  }
}
