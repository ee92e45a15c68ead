import { dropoutSeed } from '../lora';
import { TrainingDivergedError, type RemaxEngine, type GenerateRequest } from '../engine';
import { requireInput } from '../errors';
import { learningRate, validateSchedule, type ScheduleConfig } from '../schedule';
import { DataOrder } from '../sft-data';
import { captureRun, resumeRun } from '../run-state';
import type { TrainingExample, TrainingOptions } from '../training';
import { PolicyGroup } from '../parallel/policy-group';
import type { HelperEngine } from '../parallel/helper-client';
import type { OptimizerSettings, TrainingState } from '../training-state';
import type { RewardSample } from '../rewards';
import { ESTIMATORS, computeAdvantages, minSamplesPerPrompt, tokenReturns, usesGreedy, type Estimator, type GroupRewards } from './advantages';
import type { PromptRecord } from './prompts';
import { findStopString } from '../stop-strings';
import { ppoUpdate, validatePpoSettings, type PpoRollout, type PpoSettings } from './ppo-update';

// The ReMax training loop (Li et al. 2023), and the estimators it is compared with. One step:
//   1. B prompts in the seeded data order; K sampled responses each, plus (ReMax) one greedy response, all decoded
//      in ONE batched generate call, with the log-probabilities of the sampled tokens;
//   2. the rewards of each prompt's responses requested together, prompts concurrently;
//   3. advantages from the estimator; per-token returns with the KL penalty to the frozen reference policy;
//   4. loss = −Σ return·log π over the response tokens (token mean or sequence sum), its gradient, one AdamW step;
//      PPO instead: the critic's values, GAE, and epochs × minibatches of clipped updates of policy and critic
//      (ppo-update.ts), on the same rollouts, rewards and KL.
// Every random choice is derived from (seed, step, position in the batch), so a resumed run replays exactly.

export type LossAggregation = 'token-mean' | 'sequence-sum';

export interface ReMaxOptions {
  estimator: Estimator;
  samplesPerPrompt: number;
  batchSize: number;
  steps: number;
  seed: number;
  schedule: ScheduleConfig;
  optimizer: OptimizerSettings;
  /** β of the per-token KL penalty to the reference policy; 0 = off (no reference forward). */
  klCoef: number;
  /** Discount γ of the per-token returns. */
  gamma: number;
  /** Advantages are clipped to [−clip, clip]. */
  advantageClip: number;
  lossAggregation: LossAggregation;
  temperature: number;
  topP: number;
  topK: number;
  maxNewTokens: number;
  /** Moving-average decay of the reinforce-ema baseline. */
  emaDecay: number;
  /** Tokens that end a response (kept in it); [] = none. Default: the model's stop tokens (RemaxEngine.stopIds). */
  stopIds?: number[];
  /** One stop token, or null for none (the older form of stopIds; stopIds wins when both are given). */
  eosId?: number | null;
  /** Strings that end a response where its text first contains one (the text before it is the response's). */
  stopStrings?: string[];
  /** Recompute activations layer by layer in the backward pass (less memory for one more forward pass of the layers). */
  activationCheckpointing?: boolean;
  /** --estimator ppo's settings (ppo-update.ts); the critic engine is the trainer's `critic` argument. */
  ppo?: PpoSettings;
}

export const DEFAULT_REMAX_OPTIONS: Omit<ReMaxOptions, 'steps' | 'schedule'> = {
  estimator: 'remax', samplesPerPrompt: 1, batchSize: 8, seed: 0,
  optimizer: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, clipNorm: 1 },
  klCoef: 0.05, gamma: 1, advantageClip: 5, lossAggregation: 'token-mean',
  temperature: 1, topP: 0.9, topK: 0, maxNewTokens: 64, emaDecay: 0.9,
};

/** Scores groups of samples (one group per prompt) and returns their rewards, null where a reward was skipped. */
export type RewardScorer = (groups: RewardSample[][]) => Promise<{ groupRewards: (number | null)[][]; skipped: number; errors: string[] }>;

/** One line of metrics.jsonl: what a step did. Times are in seconds. */
export interface StepMetrics {
  /** The step just completed (1-based). */
  step: number;
  /** Mean and standard deviation of the sampled responses' rewards (skipped samples left out). */
  reward_mean: number;
  reward_std: number;
  /** The same for the greedy responses: ReMax's baseline (null for the other estimators). */
  greedy_reward_mean: number | null;
  greedy_reward_std: number | null;
  /** Of the advantages that weighted the samples' log-likelihood (after clipping). */
  advantage_mean: number;
  advantage_std: number;
  /** Mean over samples of Σ_t (log π − log π_ref) (null without a KL penalty). */
  kl: number | null;
  loss: number;
  /** The global gradient norm before clipping. */
  grad_norm: number;
  lr: number;
  /** Mean length of the sampled responses in tokens (an EOS that ended one counts). */
  response_length_mean: number;
  /**
   * Samples dropped (no gradient) because a reward they depend on was skipped (--on-reward-error skip): their own,
   * their group's greedy baseline, or too many of their group's for RLOO/GRPO.
   */
  skipped: number;
  /** Reward calls (one per prompt) that failed and were skipped or zeroed (--on-reward-error skip|zero). */
  reward_errors: number;
  /** Generated tokens (sampled and greedy) per second of the whole step. */
  tokens_per_second: number;
  /**
   * The batched decode's time split by the sampled and greedy responses' shares of its tokens. time_greedy is an
   * upper bound on what the greedy baseline costs: its rows are shared with a sample while the two agree.
   */
  time_sampling: number;
  time_greedy: number;
  time_reward: number;
  /** The frozen reference's forward pass for the KL term. */
  time_reference: number;
  time_backward: number;
  time_optimizer: number;
  time_step: number;
  /**
   * The policy's mean entropy −Σ_v π(v)·log π(v) per response token of the batch it trained on (nats; every kept
   * sample's tokens, weight 0 too), from the backward pass's own softmax (with LoRA dropout, if any). PPO: its first
   * epoch, every token once (the first minibatch at the rollout's weights, each later one after the updates before it).
   * NaN when no sample was kept.
   */
  entropy: number;
  /** Mean reward of greedy responses to the held-out prompts, on the steps that evaluate. */
  eval_reward_mean?: number;
  // PPO only (--estimator ppo); means over its minibatch updates unless said otherwise.
  /** The clipped surrogate, aggregated as the loss (--loss-aggregation). */
  policy_loss?: number;
  /** ½·max((V − R)², (clip(V) − R)²), aggregated as the loss, before --vf-coef. */
  value_loss?: number;
  /** Share of the response tokens whose clipped ratio term was active (no gradient), over all passes. */
  clip_fraction?: number;
  /** Mean per token of k3 KL(π_old ‖ π) over all passes (0 on the first, whose weights are the rollout's). */
  approx_kl?: number;
  /** 1 − Var(R − V)/Var(R) of the rollout's values. */
  explained_variance?: number;
  /** Mean of the critic's values of the rollout's response tokens. */
  value_mean?: number;
  /** The critic's gradient norm before clipping. */
  critic_grad_norm?: number;
  critic_lr?: number;
  /** The critic's forward passes, gradients and optimizer steps. */
  time_critic?: number;
  /** The critic engine's WASM memory. */
  critic_memory_bytes?: number;
}

export interface SampleRow {
  step: number;
  prompt: string;
  completion: string;
  reward: number | null;
  greedy_completion?: string;
  greedy_reward?: number | null;
  advantage: number | null;
}

interface Response {
  prompt: PromptRecord;
  /** Up to and with the stop token or the token that completed a stop string. */
  ids: number[];
  /** Of sampled responses (the KL term reads them); a greedy baseline has none. */
  logprobs: number[];
  text: string;
}

/** A sampled response with its reward and advantage (null: dropped) in the step. */
interface Sample {
  response: Response;
  advantage: number | null;
  reward: number | null;
}

/** What step 4 (the update) gives the step's metrics. */
interface StepUpdate {
  loss: number;
  gradNorm: number;
  timeBackward: number;
  timeOptimizer: number;
  /** The advantages that weighted the log-likelihoods (PPO: per token, before whitening). */
  advantages: number[];
  /** A sample's advantage in samples.jsonl. */
  advantageOf: (sample: Sample) => number | null;
  /** StepMetrics.entropy. */
  entropy: number;
  /** The estimator's own metrics. */
  metrics: Partial<StepMetrics>;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const std = (xs: number[]) => {
  const m = mean(xs);
  return xs.length ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length) : NaN;
};
/** Largest micro-batch the trainer plans, in tokens (the training workspace grows with it). */
const MICRO_BATCH_TOKENS = 1024;

const seconds = (since: number) => (performance.now() - since) / 1000;

export class ReMaxTrainer {
  private order: DataOrder;
  private nextStep = 0;
  private emaBaseline: number | undefined;
  private readonly training: TrainingOptions;
  private readonly group: PolicyGroup;
  /** PPO: the critic over the same threads. */
  private readonly criticGroup: PolicyGroup | undefined;
  /** The last step's sample rows (for samples.jsonl). */
  lastSamples: SampleRow[] = [];
  /** The last step's failed reward calls (skipped or zeroed): one line each, naming the prompt and the problem. */
  lastRewardErrors: string[] = [];

  constructor(
    private readonly policy: RemaxEngine,
    reference: RemaxEngine | undefined,
    private readonly prompts: PromptRecord[],
    private readonly score: RewardScorer,
    private readonly options: ReMaxOptions,
    resume?: TrainingState,
    /** Helper engines on other threads that share each step's work (see parallel/policy-group.ts). */
    helpers: HelperEngine[] = [],
    /** --estimator ppo: the critic (a scalar-head engine; its work is shared with the helpers too) and its saved state when resuming. */
    private readonly critic?: { engine: RemaxEngine; resume?: TrainingState },
  ) {
    validateSchedule(options.schedule);
    requireInput(ESTIMATORS.includes(options.estimator), `--estimator must be one of ${ESTIMATORS.join(', ')}, got "${options.estimator}"`);
    requireInput(Number.isInteger(options.samplesPerPrompt) && options.samplesPerPrompt >= minSamplesPerPrompt(options.estimator),
      `--samples-per-prompt must be an integer ≥ ${minSamplesPerPrompt(options.estimator)} for ${options.estimator}, got ${options.samplesPerPrompt}`);
    requireInput(options.klCoef === 0 || reference !== undefined, 'a KL coefficient above 0 needs the reference policy');
    requireInput(Number.isFinite(options.klCoef) && options.klCoef >= 0, `--kl-coef must be ≥ 0, got ${options.klCoef}`);
    requireInput(options.gamma > 0 && options.gamma <= 1, `--gamma must be in (0, 1], got ${options.gamma}`);
    requireInput(options.advantageClip > 0, `--advantage-clip must be > 0, got ${options.advantageClip}`);
    const ppo = options.estimator === 'ppo';
    requireInput(!ppo || (critic !== undefined && options.ppo !== undefined), 'the ppo estimator needs a critic (a scalar-head engine) and its settings');
    requireInput(ppo || critic === undefined, `a critic is only used by --estimator ppo, not ${options.estimator}`);
    if (ppo) {
      validatePpoSettings(options.ppo!, options.batchSize * options.samplesPerPrompt);
      const c = critic!.engine;
      requireInput(c.hasScoreHead, 'the critic must be a scalar-head model (a reward model, or a causal LM given a fresh head)');
      requireInput(c.config.vocabSize === policy.config.vocabSize && c.config.seqLen >= policy.config.seqLen,
        `the critic (vocabulary ${c.config.vocabSize}, context ${c.config.seqLen}) must read the policy's tokens (vocabulary ${policy.config.vocabSize}, ` +
        `context ${policy.config.seqLen}): give a critic of the policy's tokenizer, or --critic-from policy`);
    }
    // One micro-batch for a step's sampled responses when they fit in MICRO_BATCH_TOKENS (each further micro-batch
    // repeats per-call work such as the classifier transpose: a stories260K step took 74 ms in two, 56 ms in one).
    const seqLen = policy.config.seqLen;
    const longestPrompt = prompts.reduce((m, p) => Math.max(m, p.promptIds.length), 0);
    const responses = options.batchSize * options.samplesPerPrompt;
    const stepTokens = responses * Math.min(seqLen, longestPrompt + options.maxNewTokens);
    this.training = {
      maxSeqs: Math.min(16, responses), maxTokens: Math.max(seqLen, Math.min(stepTokens, MICRO_BATCH_TOKENS)),
      activationCheckpointing: options.activationCheckpointing ?? false,
    };
    policy.enableTraining(this.training);
    critic?.engine.enableTraining(this.training);
    this.group = new PolicyGroup(policy, reference, helpers);
    // PPO's critic shares the helper threads: each hosts a critic engine beside its policy engine.
    this.criticGroup = critic ? new PolicyGroup(critic.engine, undefined, helpers, 'critic') : undefined;
    if (resume) {
      this.order = resumeRun(policy, resume, prompts.length, 'prompts');
      this.nextStep = resume.step;
      const ema = resume.extra.emaBaseline;
      this.emaBaseline = typeof ema === 'number' ? ema : undefined;
      if (critic) {
        const saved = critic.resume;
        requireInput(saved !== undefined && saved.step === resume.step,
          `the critic's saved state is ${saved ? `at step ${saved.step}` : 'missing'} but the policy's at step ${resume.step}: resume from a run whose critic was saved with its policy`);
        resumeRun(critic.engine, saved, prompts.length, 'prompts');
      }
    } else {
      this.order = new DataOrder(prompts.length, options.seed);
    }
  }

  get step(): number {
    return this.nextStep;
  }

  get done(): boolean {
    return this.nextStep >= this.options.steps;
  }

  /**
   * One training step; resolves to its metrics. With `update: false` the gradient is computed (readable with
   * policy.readGradients()) but no optimizer step is taken: for measuring the estimator's variance at fixed weights.
   */
  async runStep(options: { update?: boolean } = {}): Promise<StepMetrics> {
    const position = this.order.position;
    try {
      return await this.takeStep(options.update ?? true);
    } catch (error) {
      // A failed step (a reward that aborts, a diverged loss) changed no weights: its prompts come again in the next
      // step, or first in a run resumed from the checkpoint saved now, which then continues exactly.
      this.order = DataOrder.restore(this.prompts.length, this.order.seed, position);
      throw error;
    }
  }

  private async takeStep(update: boolean): Promise<StepMetrics> {
    const o = this.options;
    const withGreedy = usesGreedy(o.estimator);
    const perPrompt = o.samplesPerPrompt + (withGreedy ? 1 : 0);
    await this.startHelpers();
    const stepStarted = performance.now();
    const batch = this.order.nextBatch(o.batchSize).map((i) => this.prompts[i]!);

    // 1. One batched decode of every sampled and greedy response.
    const requests: GenerateRequest[] = [];
    batch.forEach((p, i) => {
      for (let j = 0; j < perPrompt; j++) {
        const greedy = withGreedy && j === o.samplesPerPrompt;
        requests.push({
          promptIds: p.promptIds, maxNewTokens: o.maxNewTokens,
          temperature: greedy ? 0 : o.temperature, topP: o.topP, topK: o.topK,
          seed: requestSeed(o.seed, this.nextStep, i * perPrompt + j), logprobs: !greedy,
        });
      }
    });
    let started = performance.now();
    const generated = await this.group.generate(requests, this.stopOptions(), perPrompt);
    const timeSampling = seconds(started);
    const responses: Response[] = generated.map((g, k) => this.response(batch[Math.floor(k / perPrompt)]!, g.ids, g.logprobs ?? []));

    // 2. Rewards, one call per prompt with all of its responses.
    started = performance.now();
    const groups = batch.map((_, i) => responses.slice(i * perPrompt, (i + 1) * perPrompt).map((r) => rewardSample(r.prompt, r.ids, r.text)));
    const scored = await this.score(groups);
    this.lastRewardErrors = scored.errors;
    const timeReward = seconds(started);
    const groupRewards: GroupRewards[] = scored.groupRewards.map((rs) => ({
      samples: rs.slice(0, o.samplesPerPrompt), greedy: withGreedy ? rs[o.samplesPerPrompt] ?? null : undefined,
    }));

    // 3. Advantages, KL to the reference, per-token returns.
    const { advantages, emaBaseline } = computeAdvantages(o.estimator, groupRewards, o.advantageClip, this.emaBaseline, o.emaDecay);
    const sampled = batch.flatMap((_, i) => responses.slice(i * perPrompt, i * perPrompt + o.samplesPerPrompt)
      .map((r, j) => ({ response: r, advantage: advantages[i]![j]!, reward: groupRewards[i]!.samples[j]! })));
    const kept = sampled.filter((s) => s.advantage !== null && s.response.ids.length > 0);
    // Whatever went non-finite is named here, at the step it happened, before it reaches the loss weights.
    const step = this.nextStep + 1;
    const lowerLr = `lower --lr (now ${learningRate(this.nextStep, o.schedule)}) and resume from the last checkpoint`;
    const badAdvantage = kept.findIndex((s) => !Number.isFinite(s.advantage));
    if (badAdvantage >= 0) {
      const rewards = groupRewards.flatMap((g) => g.samples).filter((r): r is number => r !== null);
      const widest = rewards.reduce((m, r) => Math.max(m, Math.abs(r)), 0);
      throw new TrainingDivergedError(`the advantage of sample ${badAdvantage} is ${kept[badAdvantage]!.advantage} (${o.estimator}, rewards up to |${widest}|)`,
        'the rewards must be finite numbers small enough to subtract and square: scale them down', step);
    }
    const badPolicy = kept.findIndex((s) => s.response.logprobs.some((lp) => !Number.isFinite(lp)));
    if (badPolicy >= 0) {
      const lp = kept[badPolicy]!.response.logprobs.find((v) => !Number.isFinite(v));
      throw new TrainingDivergedError(`the policy's log-probability of a sampled token (response ${badPolicy}) is ${lp}: its weights no longer give finite logits`,
        this.nextStep === 0 ? 'the model given is not usable: check its weights' : lowerLr, step);
    }
    started = performance.now();
    if (this.critic && kept.length > 0) {
      // PPO's ratio needs π_old from the pass that computes π (teacher-forced), not the decode's: the KL uses them too.
      const old = await this.group.logprobs(kept.map((s) => [...s.response.prompt.promptIds, ...s.response.ids]));
      kept.forEach((s, i) => (s.response.logprobs = old[i]!.slice(s.response.prompt.promptIds.length - 1)));
    }
    let kl: number[][] | undefined;
    if (o.klCoef > 0 && kept.length > 0) {
      const refLogprobs = await this.group.referenceLogprobs(kept.map((s) => [...s.response.prompt.promptIds, ...s.response.ids]));
      kl = kept.map((s, i) => {
        const ref = refLogprobs[i]!.slice(s.response.prompt.promptIds.length - 1);
        return s.response.logprobs.map((lp, t) => lp - ref[t]!);
      });
      const badKl = kl.findIndex((k) => k.some((v) => !Number.isFinite(v)));
      if (badKl >= 0) {
        throw new TrainingDivergedError(`the KL to the reference of response ${badKl} is ${kl[badKl]!.find((v) => !Number.isFinite(v))} ` +
          '(the reference model gives non-finite log-probabilities)', 'check the reference model\'s weights (reference.bin of the run)', step);
      }
    }
    const timeReference = seconds(started);

    // 4. Loss and one optimizer step (PPO: its update phase).
    const lr = learningRate(this.nextStep, o.schedule);
    const { loss, gradNorm, timeBackward, timeOptimizer, advantages: adv, advantageOf, entropy, metrics: estimatorMetrics } = this.critic
      ? await this.ppoStep(kept, kl, lr, update)
      : await this.reinforceUpdate(kept, kl, lr, update, lowerLr, step);
    this.emaBaseline = emaBaseline;
    this.nextStep++;

    const sampleRewards = sampled.map((s) => s.reward).filter((r): r is number => r !== null);
    const greedyRewards = groupRewards.map((g) => g.greedy).filter((r): r is number => typeof r === 'number');
    const generatedTokens = responses.reduce((sum, r) => sum + r.ids.length, 0);
    const greedyTokens = withGreedy ? responses.filter((_, k) => k % perPrompt === o.samplesPerPrompt).reduce((sum, r) => sum + r.ids.length, 0) : 0;
    const greedyShare = generatedTokens > 0 ? greedyTokens / generatedTokens : 0;
    const timeStep = seconds(stepStarted);
    this.lastSamples = sampled.map((s, k) => {
      const i = Math.floor(k / o.samplesPerPrompt);
      const greedy = withGreedy ? responses[i * perPrompt + o.samplesPerPrompt]! : undefined;
      return {
        step: this.nextStep, prompt: s.response.prompt.prompt, completion: s.response.text, reward: s.reward,
        ...(greedy ? { greedy_completion: greedy.text, greedy_reward: groupRewards[i]!.greedy ?? null } : {}),
        advantage: advantageOf(s),
      };
    });
    return {
      step: this.nextStep,
      reward_mean: mean(sampleRewards), reward_std: std(sampleRewards),
      greedy_reward_mean: withGreedy ? mean(greedyRewards) : null, greedy_reward_std: withGreedy ? std(greedyRewards) : null,
      advantage_mean: mean(adv), advantage_std: std(adv),
      kl: kl ? mean(kl.map((k) => k.reduce((a, b) => a + b, 0))) : null,
      loss, grad_norm: gradNorm, lr, entropy,
      response_length_mean: mean(sampled.map((s) => s.response.ids.length)),
      skipped: sampled.filter((s) => s.advantage === null).length,
      reward_errors: scored.errors.length,
      tokens_per_second: generatedTokens / timeStep,
      // Sampled and greedy responses are decoded in one batch: the batch's time is split by their share of tokens
      // (an upper bound for the greedy part: its rows are shared with a sample for as long as the two agree).
      time_sampling: timeSampling * (1 - greedyShare), time_greedy: timeSampling * greedyShare,
      time_reward: timeReward, time_reference: timeReference,
      time_backward: timeBackward, time_optimizer: timeOptimizer, time_step: timeStep,
      ...estimatorMetrics,
    };
  }

  /** Step 4 of the REINFORCE-style estimators: loss −Σ return·log π (token mean or sequence sum), one AdamW step. */
  private async reinforceUpdate(kept: Sample[], kl: number[][] | undefined, lr: number, update: boolean,
    lowerLr: string, step: number): Promise<StepUpdate> {
    const o = this.options;
    let started: number;
    const tokenCount = kept.reduce((sum, s) => sum + s.response.ids.length, 0);
    const denominator = o.lossAggregation === 'token-mean' ? Math.max(1, tokenCount) : Math.max(1, kept.length);
    const examples: TrainingExample[] = kept.map((s, i) => {
      const returns = tokenReturns(s.advantage!, kl?.[i], o.klCoef, o.gamma, s.response.ids.length);
      const bad = returns.findIndex((r) => !Number.isFinite(r / denominator));
      if (bad >= 0) {
        throw new TrainingDivergedError(`the return of token ${bad} of response ${i} is ${returns[bad]! / denominator} ` +
          `(advantage ${s.advantage}, --kl-coef ${o.klCoef}, summed KL ${kl?.[i]?.reduce((a, b) => a + b, 0) ?? 0})`, 'lower --kl-coef', step);
      }
      const promptLength = s.response.prompt.promptIds.length;
      return {
        ids: [...s.response.prompt.promptIds, ...s.response.ids],
        weights: [...new Array<number>(promptLength).fill(0), ...returns.map((r) => r / denominator)],
        dropoutSeed: dropoutSeed(o.seed, this.nextStep, i), entropyFrom: promptLength,
      };
    });
    started = performance.now();
    const { loss, entropySum, entropyTokens } = await this.group.gradients(examples);
    const timeBackward = seconds(started);
    started = performance.now();
    let gradNorm = 0;
    if (examples.length > 0 && update) {
      if (!Number.isFinite(loss)) throw new TrainingDivergedError(`the loss is ${loss}`, `the weights were not updated; ${lowerLr}`, step);
      try {
        gradNorm = this.policy.optimizerStep({ lr, ...o.optimizer }).gradNorm;
      } catch (error) {
        throw error instanceof TrainingDivergedError ? error.atStep(step) : error;
      }
      this.group.parametersChanged();
    }
    const timeOptimizer = seconds(started);
    return {
      loss, gradNorm, timeBackward, timeOptimizer, advantages: kept.map((s) => s.advantage!), advantageOf: (s) => s.advantage,
      entropy: entropySum / entropyTokens, metrics: {},
    };
  }

  /** Step 4 of PPO: its update phase on the step's rollouts (ppo-update.ts), and its metrics. */
  private async ppoStep(kept: Sample[], kl: number[][] | undefined, lr: number, update: boolean): Promise<StepUpdate> {
    const o = this.options, critic = this.critic!;
    const rollouts: PpoRollout[] = kept.map((s, i) => ({
      ids: [...s.response.prompt.promptIds, ...s.response.ids], promptLength: s.response.prompt.promptIds.length,
      score: s.advantage!, kl: kl?.[i], oldLogprobs: s.response.logprobs,
    }));
    const criticLr = learningRate(this.nextStep, this.criticSchedule!);
    const r = rollouts.length === 0 ? undefined : await ppoUpdate({
      group: this.group, policy: this.policy, critic: critic.engine, criticGroup: this.criticGroup!, settings: o.ppo!, klCoef: o.klCoef, gamma: o.gamma,
      lossAggregation: o.lossAggregation, optimizer: o.optimizer, lr, criticLr, update, seed: o.seed, step: this.nextStep,
    }, rollouts);
    const passes = r?.passes ?? [];
    const meanOf = (f: (p: (typeof passes)[number]) => number) => (passes.length ? mean(passes.map(f)) : 0);
    const loss = meanOf((p) => p.policyLoss);
    const keptIndex = new Map(kept.map((s, i) => [s, i]));
    return {
      loss, gradNorm: meanOf((p) => p.gradNorm), timeBackward: r?.timeBackward ?? 0, timeOptimizer: r?.timeOptimizer ?? 0,
      advantages: r ? r.advantages.flat() : [], entropy: r?.entropy ?? NaN,
      // A sample's advantage in samples.jsonl: GAE's at its first token (its return's excess over V of the prompt).
      advantageOf: (s) => {
        const i = keptIndex.get(s);
        return i === undefined || !r ? null : r.advantages[i]![0]!;
      },
      metrics: {
        policy_loss: loss, value_loss: meanOf((p) => p.valueLoss), clip_fraction: r?.clipFraction ?? 0, approx_kl: r?.approxKl ?? 0,
        explained_variance: r?.explainedVariance ?? 0, value_mean: r ? mean(r.values.flat()) : 0,
        critic_grad_norm: meanOf((p) => p.criticGradNorm), critic_lr: criticLr,
        time_critic: r?.timeCritic ?? 0, critic_memory_bytes: critic.engine.memoryBytes,
      },
    };
  }

  /** Runs the remaining steps, yielding each step's metrics. */
  async *run(): AsyncGenerator<StepMetrics> {
    while (!this.done) yield await this.runStep();
  }

  /** Mean reward of greedy responses to `prompts` (held-out evaluation); no state changes. */
  async evaluate(prompts: PromptRecord[]): Promise<number> {
    await this.startHelpers();
    const generated = await this.group.generate(prompts.map((p) => ({ promptIds: p.promptIds, maxNewTokens: this.options.maxNewTokens })), { temperature: 0, ...this.stopOptions() });
    const groups = generated.map((g, i) => {
      const r = this.response(prompts[i]!, g.ids, []);
      return [rewardSample(r.prompt, r.ids, r.text)];
    });
    const { groupRewards } = await this.score(groups);
    return mean(groupRewards.map((r) => r[0]).filter((r): r is number => typeof r === 'number'));
  }

  /** The WASM memory of each helper thread's engines (policy, reference, critic), in bytes, once the first step has started them. */
  get helperMemoryBytes(): number[] {
    return this.group.helperMemoryBytes.map((bytes, i) => bytes + (this.criticGroup?.helperMemoryBytes[i] ?? 0));
  }

  /** Ends the helper engines' threads (a run with helpers must call this when done, or the process stays up). */
  close(): void {
    this.group.close();
  }

  private async startHelpers(): Promise<void> {
    const o = this.options;
    await this.group.start(o.batchSize * (o.samplesPerPrompt + (usesGreedy(o.estimator) ? 1 : 0)), this.training);
    await this.criticGroup?.start(o.batchSize * o.samplesPerPrompt, this.training);
  }

  private stopOptions(): { stopIds?: number[]; eosId?: number | null } {
    const { stopIds, eosId } = this.options;
    return { ...(stopIds !== undefined ? { stopIds } : {}), ...(eosId !== undefined ? { eosId } : {}) };
  }

  /**
   * A generated response cut at the first stop string (the token that completed it is kept, as a stop token is), with
   * its text: without special tokens or the stop string. An engine without a tokenizer (rewards that read ids only)
   * gives ''.
   */
  private response(prompt: PromptRecord, ids: number[], logprobs: number[]): Response {
    if (!this.policy.tokenizer) return { prompt, ids, logprobs, text: '' };
    const textOf = (part: readonly number[]) => this.policy.decode([...part], prompt.promptIds);
    const stop = findStopString(ids, textOf, this.options.stopStrings ?? []);
    if (!stop) return { prompt, ids, logprobs, text: textOf(ids) };
    return { prompt, ids: ids.slice(0, stop.length), logprobs: logprobs.slice(0, stop.length), text: stop.text };
  }

  /** Everything a resumed run needs besides the policy weights (and the reference, saved once at the start). */
  state(): TrainingState {
    return captureRun(this.policy, this.nextStep, this.order, this.options.schedule, this.options.optimizer,
      { trainer: 'remax', estimator: this.options.estimator, ...(this.emaBaseline !== undefined ? { emaBaseline: this.emaBaseline } : {}) });
  }

  /** PPO: the critic's state (its AdamW moments and step count), saved beside the critic's weights. */
  criticState(): TrainingState {
    requireInput(this.critic !== undefined, 'criticState: this run has no critic (--estimator ppo)');
    return captureRun(this.critic.engine, this.nextStep, this.order, this.criticSchedule!, this.options.optimizer, { trainer: 'ppo-critic' });
  }

  /** The critic's schedule: the policy's kind and warm-up, peaking at --critic-lr (a --min-lr scaled alike). */
  private get criticSchedule(): ScheduleConfig | undefined {
    const o = this.options;
    if (!o.ppo) return undefined;
    const scale = o.ppo.criticLr / o.schedule.lr;
    return { ...o.schedule, lr: o.ppo.criticLr, ...(o.schedule.minLr !== undefined ? { minLr: o.schedule.minLr * scale } : {}) };
  }
}

/** What a reward function sees of one response. */
function rewardSample(prompt: PromptRecord, ids: number[], text: string): RewardSample {
  return {
    prompt: prompt.prompt, completion: text, promptIds: prompt.promptIds, completionIds: ids, meta: prompt.meta,
    ...(prompt.messages ? { messages: prompt.messages } : {}),
  };
}

/** The seed of one response's sampler: a function of the run seed, the step and the response's place in the batch. */
function requestSeed(seed: number, step: number, index: number): bigint {
  return BigInt.asUintN(64, (BigInt(seed) << 40n) ^ (BigInt(step) << 20n) ^ BigInt(index));
}
