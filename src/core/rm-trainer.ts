import { TrainingDivergedError, type RemaxEngine } from './engine';
import { requireInput } from './errors';
import { learningRate, validateSchedule, type ScheduleConfig } from './schedule';
import { DataOrder } from './sft-data';
import { captureRun, resumeRun } from './run-state';
import { bradleyTerry } from './bradley-terry';
import { PolicyGroup } from './parallel/policy-group';
import type { HelperEngine } from './parallel/helper-client';
import type { TrainingOptions } from './training';
import type { PreferencePair } from './preference-data';
import type { OptimizerSettings, TrainingState } from './training-state';

// Reward-model training with the Bradley–Terry loss: each step draws a batch of preference pairs in the seeded data
// order; per micro-batch (pairs are never split) the training forward scores both responses of each pair, the loss's
// gradient per score goes back through the scalar head and the transformer, and one AdamW step follows. As for
// SFT, everything that decides the next step is in the engine or in state(), so a resumed run is the same run.

export interface RewardModelOptions {
  steps: number;
  batchSize: number;
  seed: number;
  schedule: ScheduleConfig;
  optimizer: OptimizerSettings;
  activationCheckpointing?: boolean;
}

export interface RewardModelStep {
  step: number;
  /** Mean −log σ(r_chosen − r_rejected) of this step's pairs, before the update. */
  loss: number;
  /** Fraction of this step's pairs ranked right (r_chosen > r_rejected), before the update. */
  accuracy: number;
  meanMargin: number;
  lr: number;
  gradNorm: number;
  seconds: number;
}

export class RewardModelTrainer {
  private order: DataOrder;
  private nextStep: number;
  private readonly training: TrainingOptions;
  private readonly group: PolicyGroup;

  /**
   * Starts a run, or continues the one `resume` was saved from (the engine must hold that run's weights). Helper
   * engines on other threads share each step's gradient (see parallel/policy-group.ts).
   */
  constructor(private readonly engine: RemaxEngine, private readonly pairs: PreferencePair[], private readonly options: RewardModelOptions, resume?: TrainingState,
    helpers: HelperEngine[] = []) {
    requireInput(engine.hasScoreHead, 'reward-model training needs a model with a scalar head (withScoreHead)');
    validateSchedule(options.schedule);
    requireInput(Number.isSafeInteger(options.batchSize) && options.batchSize > 0, `--batch must be a positive integer, got ${options.batchSize}`);
    // A micro-batch holds whole pairs: room for the longest.
    const longest = pairs.reduce((n, p) => Math.max(n, p.chosen.length + p.rejected.length), 0);
    this.training = {
      maxSeqs: Math.min(2 * options.batchSize, 16), maxTokens: Math.max(512, engine.config.seqLen, longest),
      activationCheckpointing: options.activationCheckpointing ?? false,
    };
    engine.enableTraining(this.training);
    this.group = new PolicyGroup(engine, undefined, helpers);
    if (resume) {
      this.order = resumeRun(engine, resume, pairs.length, 'preference pairs (same --pairs?)');
      this.nextStep = resume.step;
    } else {
      this.order = new DataOrder(pairs.length, options.seed);
      this.nextStep = 0;
    }
  }

  get step(): number {
    return this.nextStep;
  }

  get done(): boolean {
    return this.nextStep >= this.options.steps;
  }

  /** One optimizer step; a non-finite loss or gradient leaves the weights and the data order as they were and throws. */
  async runStep(): Promise<RewardModelStep> {
    await this.group.start(1, this.training);
    const started = performance.now();
    const position = this.order.position;
    const batch = this.order.nextBatch(this.options.batchSize).map((i) => this.pairs[i]!);
    const lr = learningRate(this.nextStep, this.options.schedule);
    try {
      const { chosen, rejected } = await this.group.pairGradients(batch.map((p) => [p.chosen, p.rejected]));
      const bt = bradleyTerry(chosen, rejected);
      if (!Number.isFinite(bt.loss)) {
        throw new TrainingDivergedError(`the loss is ${bt.loss}`, `the weights were not updated; lower --lr (now ${lr})`, this.nextStep + 1);
      }
      const { gradNorm } = this.engine.optimizerStep({ lr, ...this.options.optimizer });
      this.group.parametersChanged();
      this.nextStep++;
      return { step: this.nextStep, loss: bt.loss, accuracy: bt.accuracy, meanMargin: bt.meanMargin, lr, gradNorm, seconds: (performance.now() - started) / 1000 };
    } catch (error) {
      this.order = DataOrder.restore(this.pairs.length, this.order.seed, position);
      throw error instanceof TrainingDivergedError && error.step === undefined ? error.atStep(this.nextStep + 1) : error;
    }
  }

  /** Held-out pairs: the fraction ranked right and the mean loss, scored in batches of `batch` pairs. */
  evaluate(pairs: PreferencePair[], batch = 32): { accuracy: number; loss: number } {
    let right = 0, loss = 0;
    for (let i = 0; i < pairs.length; i += batch) {
      const part = pairs.slice(i, i + batch);
      const scores = this.engine.scores([...part.map((p) => p.chosen), ...part.map((p) => p.rejected)]);
      const bt = bradleyTerry(scores.slice(0, part.length), scores.slice(part.length));
      right += bt.accuracy * part.length;
      loss += bt.loss * part.length;
    }
    return { accuracy: right / pairs.length, loss: loss / pairs.length };
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
