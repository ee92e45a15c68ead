// The messages between the trainer page and its Web Worker (the worker owns the engine; the page only draws).
import type { SampleRow, StepMetrics } from '../../core/rl/trainer';
import type { Estimator } from '../../core/rl/advantages';
import type { PpoSettings } from '../../core/rl/ppo-update';

/** What to train: the built-in task (files served beside the page), or the user's own files. */
export interface TrainRequest {
  type: 'start';
  /**
   * The model's files (a Hugging Face folder's files picked together, one .gguf, or one llama2.c checkpoint), the
   * tokenizer (optional when the model carries one) and prompts JSONL; null = the built-in default task's file.
   */
  model: { name: string; bytes: Uint8Array }[] | null;
  modelName: string;
  tokenizer: Uint8Array | null;
  prompts: Uint8Array | null;
  /** JavaScript source of the reward: a function (samples) => number[] | Promise<number[]>. */
  rewardSource: string;
  settings: TrainSettings;
}

export interface TrainSettings {
  steps: number;
  batchSize: number;
  lr: number;
  klCoef: number;
  estimator: Estimator;
  samplesPerPrompt: number;
  maxNewTokens: number;
  seed: number;
  /** Greedy evaluation on the held-out prompts every N steps (built-in task only); 0 = never. */
  evalEvery: number;
  /** Engines sharing each step: the worker's and threads − 1 helper workers (needs a cross-origin isolated page). */
  threads: number;
  /** The ppo estimator's update phase (its other settings: DEFAULT_PPO; the critic's learning rate is lr). */
  ppo: Pick<PpoSettings, 'epochs' | 'minibatches' | 'clipRange'>;
}

export type PageMessage = TrainRequest | { type: 'stop' } | { type: 'download' };

export type WorkerMessage =
  | { type: 'status'; text: string }
  | { type: 'ready'; build: string; prompts: number; evalPrompts: number; parameters: number; steps: number; threads: number }
  | { type: 'eval'; step: number; reward: number }
  | { type: 'step'; metrics: StepMetrics; samples: SampleRow[] }
  | { type: 'done'; step: number; stopped: boolean }
  /** The policy in the format it was loaded in: one file (model.bin, model.gguf) or a Hugging Face folder's files. */
  | { type: 'checkpoint'; files: { name: string; bytes: Uint8Array }[]; step: number }
  | { type: 'error'; message: string };
