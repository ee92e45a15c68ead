// PPO's update phase (issue 14): what the trainer does with one step's rollouts when --estimator ppo, in place of
// the one REINFORCE-style gradient of the other estimators. The rollouts, rewards and KL come from the same trainer
// step; here: the critic's values, GAE, whitening, then --ppo-epochs passes over --ppo-minibatches contiguous
// minibatches (rollout order, as DeepSpeed-Chat's step 3 iterates its experience), each one AdamW step of the policy
// (the clipped surrogate as token weights) and one of the critic (the clipped value loss as score gradients).
//
// Value alignment: the critic's value of response token t is the head's output at the row of the token BEFORE y_t
// (row promptLength − 1 + t of prompt + response): the state in which y_t is chosen, as OpenRLHF's critic takes
// values[:, -num_actions-1:-1]. The value after the last token (the episode's end) is 0 in GAE.
import { TrainingDivergedError, type RemaxEngine } from '../engine';
import { RemaxInputError, requireInput } from '../errors';
import { dropoutSeed } from '../lora';
import type { PolicyGroup } from '../parallel/policy-group';
import type { TrainingExample } from '../training';
import type { OptimizerSettings } from '../training-state';
import { clippedSurrogate, explainedVariance, gae, ppoTokenRewards, whiten } from './ppo';

export interface PpoSettings {
  /** Passes over the rollout batch (--ppo-epochs). */
  epochs: number;
  /** Minibatches per pass, each one optimizer step of the policy and of the critic (--ppo-minibatches). */
  minibatches: number;
  /** ε of the clipped surrogate (--ppo-clip). */
  clipRange: number;
  /** c of the clipped value loss (--value-clip). */
  valueClip: number;
  /** Scales the critic's gradient (--vf-coef); the critic has its own AdamW, so it matters only through clip-norm and eps. */
  vfCoef: number;
  /** λ of GAE (--gae-lambda); γ is the trainer's --gamma. */
  gaeLambda: number;
  /** Peak learning rate of the critic (--critic-lr), on the policy's schedule kind. */
  criticLr: number;
}

export const DEFAULT_PPO: Omit<PpoSettings, 'criticLr'> = { epochs: 1, minibatches: 1, clipRange: 0.2, valueClip: 0.2, vfCoef: 1, gaeLambda: 0.95 };

/** Each setting checked, naming its flag. */
export function validatePpoSettings(s: PpoSettings, responsesPerStep: number): void {
  requireInput(Number.isInteger(s.epochs) && s.epochs >= 1, `--ppo-epochs must be an integer ≥ 1, got ${s.epochs}`);
  requireInput(Number.isInteger(s.minibatches) && s.minibatches >= 1 && s.minibatches <= responsesPerStep,
    `--ppo-minibatches must be an integer from 1 to the responses per step (--batch × --samples-per-prompt = ${responsesPerStep}), got ${s.minibatches}`);
  requireInput(Number.isFinite(s.clipRange) && s.clipRange > 0, `--ppo-clip must be a number > 0, got ${s.clipRange}`);
  requireInput(Number.isFinite(s.valueClip) && s.valueClip > 0, `--value-clip must be a number > 0, got ${s.valueClip}`);
  requireInput(Number.isFinite(s.vfCoef) && s.vfCoef > 0, `--vf-coef must be a number > 0, got ${s.vfCoef}`);
  requireInput(Number.isFinite(s.gaeLambda) && s.gaeLambda >= 0 && s.gaeLambda <= 1, `--gae-lambda must be in [0, 1], got ${s.gaeLambda}`);
  requireInput(Number.isFinite(s.criticLr) && s.criticLr > 0, `--critic-lr must be a number > 0, got ${s.criticLr}`);
}

/** One sampled response of the step, with what the trainer knows of it. */
export interface PpoRollout {
  /** Prompt and response. */
  ids: number[];
  promptLength: number;
  /** The sequence reward (rule, reward model or both), put on the last token. */
  score: number;
  /** log π_old − log π_ref per response token (undefined without a KL penalty). */
  kl: number[] | undefined;
  /** log π_old of each response token, teacher-forced (the same pass the ratio's numerator uses). */
  oldLogprobs: number[];
}

export interface PpoContext {
  group: PolicyGroup;
  policy: RemaxEngine;
  critic: RemaxEngine;
  /** The critic over the same threads as the policy (its group's main engine is `critic`). */
  criticGroup: PolicyGroup;
  settings: PpoSettings;
  klCoef: number;
  gamma: number;
  lossAggregation: 'token-mean' | 'sequence-sum';
  optimizer: OptimizerSettings;
  lr: number;
  criticLr: number;
  /** false: compute the first pass's gradients only, no optimizer step (see ReMaxTrainer.runStep). */
  update: boolean;
  seed: number;
  /** The 0-based trainer step (dropout seeds, error messages). */
  step: number;
}

export interface PpoPass {
  policyLoss: number;
  valueLoss: number;
  gradNorm: number;
  criticGradNorm: number;
}

export interface PpoResult {
  /** One per minibatch update, in order. */
  passes: PpoPass[];
  /** Raw (unwhitened) GAE advantages and returns, and the rollout values, per response token. */
  advantages: number[][];
  returns: number[][];
  values: number[][];
  clipFraction: number;
  approxKl: number;
  explainedVariance: number;
  /** The policy's mean entropy per response token over the first epoch's minibatches (every token once). */
  entropy: number;
  timeBackward: number;
  timeOptimizer: number;
  timeCritic: number;
}

const seconds = (since: number) => (performance.now() - since) / 1000;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** The critic's values of each rollout's response tokens (see the file comment for the alignment). */
export async function responseValues(critic: PolicyGroup, rollouts: readonly PpoRollout[]): Promise<number[][]> {
  if (rollouts.length === 0) return [];
  const scores = await critic.tokenScores(rollouts.map((r) => r.ids));
  return rollouts.map((r, i) => scores[i]!.slice(r.promptLength - 1, r.ids.length - 1));
}

/** The rollout's advantages (whitened over the batch) and returns from the critic's values. */
export function ppoTargets(rollouts: readonly PpoRollout[], values: readonly number[][], klCoef: number, gamma: number, lambda: number) {
  const estimates = rollouts.map((r, i) => {
    const n = r.ids.length - r.promptLength;
    const rewards = ppoTokenRewards(r.score, r.kl ?? new Array<number>(n).fill(0), klCoef);
    return gae(rewards, values[i]!, gamma, lambda);
  });
  const advantages = estimates.map((e) => e.advantages);
  return { advantages, returns: estimates.map((e) => e.returns), whitened: whiten(advantages) };
}

/** `count` items cut into `parts` contiguous runs of nearly equal length (the longer ones first), none empty. */
export function minibatchRanges(count: number, parts: number): [number, number][] {
  const k = Math.min(parts, count), ranges: [number, number][] = [];
  let start = 0;
  for (let p = 0; p < k; p++) {
    const size = Math.floor(count / k) + (p < count % k ? 1 : 0);
    ranges.push([start, start + size]);
    start += size;
  }
  return ranges;
}

export async function ppoUpdate(c: PpoContext, rollouts: PpoRollout[]): Promise<PpoResult> {
  const progress = { steps: 0 };
  try {
    return await update(c, rollouts, progress);
  } catch (error) {
    // After an optimizer step the weights are part-way through this step: a failure then (a helper thread's, which the
    // CLI would otherwise save as the step before) must not be saved; the last checkpoint resumes exactly.
    if (progress.steps === 0 || error instanceof RemaxInputError) throw error;
    throw new RemaxInputError(`${(error as Error).message}; PPO had taken ${progress.steps} of this step's optimizer steps, so nothing was saved: ` +
      'resume from the last checkpoint');
  }
}

async function update(c: PpoContext, rollouts: PpoRollout[], progress: { steps: number }): Promise<PpoResult> {
  const s = c.settings, step = c.step + 1;
  const passes: PpoPass[] = [];
  let started = performance.now();
  const values = await responseValues(c.criticGroup, rollouts);
  let timeCritic = seconds(started);
  const bad = values.findIndex((v) => v.some((x) => !Number.isFinite(x)));
  if (bad >= 0) throw new TrainingDivergedError(`the critic's value of response ${bad} is ${values[bad]!.find((x) => !Number.isFinite(x))}`, 'check the critic (--critic-model, critic of the run) or lower --critic-lr', step);
  const { advantages, returns, whitened } = ppoTargets(rollouts, values, c.klCoef, c.gamma, s.gaeLambda);
  let clipped = 0, surrogateTokens = 0, approxKl = 0, timeBackward = 0, timeOptimizer = 0, entropySum = 0, entropyTokens = 0;
  const ranges = minibatchRanges(rollouts.length, s.minibatches);
  for (let epoch = 0; epoch < (c.update ? s.epochs : 1); epoch++) {
    for (const [m, [from, to]] of ranges.entries()) {
      const batch = rollouts.slice(from, to);
      const tokens = sum(batch.map((r) => r.ids.length - r.promptLength));
      const denominator = c.lossAggregation === 'token-mean' ? Math.max(1, tokens) : batch.length;
      // The first update sees the weights the rollouts were scored with: ρ = 1 exactly, no forward pass needed.
      started = performance.now();
      const first = epoch === 0 && m === 0;
      const logp = first ? batch.map((r) => r.oldLogprobs) : (await c.group.logprobs(batch.map((r) => r.ids))).map((lp, i) => lp.slice(batch[i]!.promptLength - 1));
      let policyLoss = 0;
      const examples: TrainingExample[] = batch.map((r, i) => {
        const k = from + i;
        const terms = clippedSurrogate(whitened[k]!, logp[i]!, r.oldLogprobs, s.clipRange);
        clipped += terms.clipped;
        surrogateTokens += terms.loss.length;
        approxKl += terms.approxKl;
        policyLoss += sum(terms.loss) / denominator;
        // The engine minimises −Σ w·log π: w = −dL/dlog π.
        const weights = terms.gradient.map((g) => -g / denominator);
        const badWeight = weights.findIndex((w) => !Number.isFinite(w));
        if (badWeight >= 0) {
          throw new TrainingDivergedError(`the PPO weight of token ${badWeight} of response ${k} is ${weights[badWeight]} (ratio exp(${logp[i]![badWeight]! - r.oldLogprobs[badWeight]!}))`,
            'lower --lr or --ppo-epochs and resume from the last checkpoint', step);
        }
        return {
          ids: r.ids, weights: [...new Array<number>(r.promptLength).fill(0), ...weights], dropoutSeed: dropoutSeed(c.seed, c.step, epoch * rollouts.length + k),
          ...(epoch === 0 ? { entropyFrom: r.promptLength } : {}),
        };
      });
      // The main engine's share of the policy gradient runs now; the helpers' shares while the critic works below.
      const policyGradients = c.group.gradients(examples);
      policyGradients.catch(() => undefined); // awaited below; a failure must not go unhandled while the critic works
      timeBackward += seconds(started);

      started = performance.now();
      const targets = batch.map((r, i) => ({ ids: r.ids, promptLength: r.promptLength, oldValues: values[from + i]!, returns: returns[from + i]! }));
      const { valueLoss } = await c.criticGroup.valueGradients(targets, { valueClip: s.valueClip, vfCoef: s.vfCoef, denominator });
      let criticGradNorm = 0;
      if (c.update) {
        try {
          criticGradNorm = c.critic.optimizerStep({ lr: c.criticLr, ...c.optimizer }).gradNorm;
          progress.steps++;
          c.criticGroup.parametersChanged();
        } catch (error) {
          throw error instanceof TrainingDivergedError ? new TrainingDivergedError(`the critic: ${error.what}`, error.fix.replace('learning rate', '--critic-lr'), step) : error;
        }
      }
      timeCritic += seconds(started);

      started = performance.now();
      const gradients = await policyGradients;
      entropySum += gradients.entropySum;
      entropyTokens += gradients.entropyTokens;
      timeBackward += seconds(started);
      started = performance.now();
      let gradNorm = 0;
      if (c.update) {
        try {
          gradNorm = c.policy.optimizerStep({ lr: c.lr, ...c.optimizer }).gradNorm;
          progress.steps++;
        } catch (error) {
          throw error instanceof TrainingDivergedError ? error.atStep(step) : error;
        }
        c.group.parametersChanged();
      }
      timeOptimizer += seconds(started);
      passes.push({ policyLoss, valueLoss, gradNorm, criticGradNorm });
    }
  }
  return {
    passes, advantages, returns, values,
    clipFraction: surrogateTokens ? clipped / surrogateTokens : 0, approxKl: surrogateTokens ? approxKl / surrogateTokens : 0,
    explainedVariance: explainedVariance(values.flat(), returns.flat()), entropy: entropySum / entropyTokens,
    timeBackward, timeOptimizer, timeCritic,
  };
}
