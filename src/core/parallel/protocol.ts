// The messages between a ReMax run's main engine and its helper engines (one per worker thread), and the transport
// they travel on. The core only sees this interface; the runtime adapters wrap Node's worker_threads or a Web Worker.
import type { BuildName } from '../kernels';
import type { GenerateOptions, GenerateRequest, Generation } from '../engine';
import type { GradientResult, TrainingExample, TrainingOptions } from '../training';
import type { LoadedModel } from '../formats/model';
import type { LoraSettings, LoraWeights } from '../lora';

/** A message channel to or from a worker (structured-clone messages). */
export interface Transport {
  postMessage(message: unknown): void;
  onMessage(handler: (message: unknown) => void): void;
  /** Ends the worker (helpers only). */
  terminate?(): void;
}

/**
 * Which of a helper's engines a request is for: its share of the policy (with the reference), or of PPO's critic
 * (a scalar-head engine; the same thread hosts both, so each step's work alternates between them on every thread).
 */
export type EngineRole = 'policy' | 'critic';

/** One response's terms of PPO's clipped value loss (ppo.ts clippedValueLoss), as the critic's gradient needs them. */
export interface ValueTarget {
  /** Prompt and response. */
  ids: number[];
  promptLength: number;
  /** The rollout's values and the GAE returns of the response tokens. */
  oldValues: number[];
  returns: number[];
}

/** What a helper does, by operation: arguments in, result out. */
export interface HelperOps {
  /**
   * Creates the helper's engine of a role from the main engine's model, built as the main engine is: the policy (and
   * its reference), or the critic (`policy` then holds the critic's model, no reference, no LoRA).
   */
  init: {
    args: {
      /** training: the policy's training workspace (null: the helper only decodes). */
      policy: LoadedModel; reference?: LoadedModel; build: BuildName; maxBatch: number; training: TrainingOptions | null;
      /** The policy's LoRA adapters (their current values), and whether the reference is the policy without them. */
      lora?: { settings: LoraSettings; weights: LoraWeights }; referenceIsPolicy?: boolean;
      /** Shared with the main thread: the policy's parameters (read at setParameters) and this helper's gradients. */
      parameters: SharedArrayBuffer; gradients: SharedArrayBuffer;
    };
    /** The WASM memory of the helper's engines, in bytes. */
    result: { memoryBytes: number };
  };
  /** Replaces the policy's parameters with those in the shared parameter buffer (the main engine's, just written). */
  setParameters: { args: null; result: null };
  generate: { args: { requests: GenerateRequest[]; options: GenerateOptions }; result: Generation[] };
  /** Teacher-forced log-probabilities under the policy (with its adapters): PPO's π_old and ratios. */
  logprobs: { args: { sequences: number[][] }; result: number[][] };
  /** Log-probabilities under the frozen reference. */
  referenceLogprobs: { args: { sequences: number[][] }; result: number[][] };
  /**
   * The policy's gradient of these examples alone (from zero), left in the shared gradient buffer; the result gives
   * their loss, weighted token count and the entropy sum of the tokens they measure.
   */
  gradients: { args: { examples: TrainingExample[] }; result: GradientResult };
  /**
   * A reward model's Bradley–Terry gradient of these preference pairs (of a batch of batchSize pairs) alone, from
   * zero, left in the shared gradient buffer; the result gives the pairs' scores (bradley-terry.ts pairGradient).
   */
  pairGradients: { args: { pairs: [number[], number[]][]; batchSize: number }; result: { chosen: number[]; rejected: number[] } };
  /** A scalar-head engine's score after every prefix of each sequence (the critic's values). */
  tokenScores: { args: { sequences: number[][] }; result: number[][] };
  /**
   * The critic's gradient of PPO's clipped value loss over these responses alone (from zero; value-gradients.ts), left
   * in the shared gradient buffer; the result is their share of the value loss.
   */
  valueGradients: { args: { targets: ValueTarget[]; valueClip: number; vfCoef: number; denominator: number }; result: { valueLoss: number } };
}

export type HelperOp = keyof HelperOps;

export interface HelperRequest<K extends HelperOp = HelperOp> {
  id: number;
  op: K;
  /** Absent: 'policy'. */
  role?: EngineRole;
  args: HelperOps[K]['args'];
}

export type HelperReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { message: string; input: boolean } };
