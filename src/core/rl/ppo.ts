// PPO's arithmetic on the host (InstructGPT; DeepSpeed-Chat's RLHF step 3; OpenRLHF), per response token:
//   reward     r_t = −β·(log π_old(y_t) − log π_ref(y_t)), plus the reward model's score on the last token
//   GAE        δ_t = r_t + γ·V_{t+1} − V_t (V past the last token = 0), A_t = Σ_{l ≥ 0} (γλ)^l δ_{t+l}, return R_t = A_t + V_t
//   policy     L = −min(ρ_t·A_t, clip(ρ_t, 1 − ε, 1 + ε)·A_t), ρ_t = π(y_t) / π_old(y_t), advantages whitened over the batch
//   critic     L = ½·max((V − R)², (clip(V, V_old ± c) − R)²)
// The engine minimises −Σ w_t·log π(y_t) and (for a scalar head) Σ g_t·V_t for given weights w and gradients g, so
// each loss is handed over as its gradient with respect to log π or V: dL/dlog π_t = −A_t·ρ_t where the unclipped
// term is the smaller, else 0.

/** Per-token rewards of one response: the KL penalty on every token and the score on the last. */
export function ppoTokenRewards(score: number, klPerToken: readonly number[], klCoef: number): number[] {
  const n = klPerToken.length;
  return klPerToken.map((k, t) => -klCoef * k + (t === n - 1 ? score : 0));
}

/** Generalised advantage estimation over one response (the value after its last token is 0: the episode ends). */
export function gae(rewards: readonly number[], values: readonly number[], gamma: number, lambda: number): { advantages: number[]; returns: number[] } {
  if (rewards.length !== values.length) throw new Error(`gae: ${rewards.length} rewards but ${values.length} values`);
  const n = rewards.length;
  const advantages = new Array<number>(n);
  let running = 0;
  for (let t = n - 1; t >= 0; t--) {
    const next = t + 1 < n ? values[t + 1]! : 0;
    running = rewards[t]! + gamma * next - values[t]! + gamma * lambda * running;
    advantages[t] = running;
  }
  return { advantages, returns: advantages.map((a, t) => a + values[t]!) };
}

/** The advantages of every token of every response shifted and scaled to mean 0 and standard deviation 1. */
export function whiten(perResponse: readonly (readonly number[])[], eps = 1e-8): number[][] {
  const all = perResponse.flat();
  if (all.length === 0) return perResponse.map(() => []);
  const mean = all.reduce((a, b) => a + b, 0) / all.length;
  const variance = all.reduce((a, b) => a + (b - mean) ** 2, 0) / all.length;
  const scale = 1 / Math.sqrt(variance + eps);
  return perResponse.map((xs) => xs.map((x) => (x - mean) * scale));
}

export interface SurrogateTerms {
  /** −min(ρ·A, clip(ρ)·A) per token. */
  loss: number[];
  /** dL/dlog π per token: −A·ρ where the unclipped term is active, else 0. */
  gradient: number[];
  /** Tokens whose clipped term was the smaller (no gradient). */
  clipped: number;
  /** Σ of the k3 estimate of KL(π_old ‖ π): (ρ − 1) − log ρ, ≥ 0. */
  approxKl: number;
}

/** The clipped surrogate of one response's tokens, from the current and the rollout log-probabilities. */
export function clippedSurrogate(advantages: readonly number[], logp: readonly number[], logpOld: readonly number[], clipRange: number): SurrogateTerms {
  const n = advantages.length;
  if (logp.length !== n || logpOld.length !== n) throw new Error(`clippedSurrogate: ${n} advantages, ${logp.length} log-probabilities, ${logpOld.length} old ones`);
  const loss = new Array<number>(n), gradient = new Array<number>(n);
  let clipped = 0, approxKl = 0;
  for (let t = 0; t < n; t++) {
    const a = advantages[t]!, logRatio = logp[t]! - logpOld[t]!, ratio = Math.exp(logRatio);
    const unclipped = ratio * a;
    const bounded = Math.min(Math.max(ratio, 1 - clipRange), 1 + clipRange) * a;
    // The clipped term wins (and carries no gradient) only when it is strictly smaller: ρ outside [1 − ε, 1 + ε] on
    // the side where moving further would help.
    const clippedWins = bounded < unclipped;
    loss[t] = -(clippedWins ? bounded : unclipped);
    gradient[t] = clippedWins ? 0 : -unclipped;
    if (clippedWins) clipped++;
    approxKl += ratio - 1 - logRatio;
  }
  return { loss, gradient, clipped, approxKl };
}

export interface ValueLossTerms {
  /** ½·max((V − R)², (clip(V, V_old ± c) − R)²) per token. */
  loss: number[];
  /** dL/dV per token. */
  gradient: number[];
  /** Tokens where the clipped error was the larger. */
  clipped: number;
}

/** The clipped value loss (PPO2, OpenRLHF's ValueLoss) of one response's tokens. */
export function clippedValueLoss(values: readonly number[], valuesOld: readonly number[], returns: readonly number[], valueClip: number): ValueLossTerms {
  const n = values.length;
  if (valuesOld.length !== n || returns.length !== n) throw new Error(`clippedValueLoss: ${n} values, ${valuesOld.length} old ones, ${returns.length} returns`);
  const loss = new Array<number>(n), gradient = new Array<number>(n);
  let clipped = 0;
  for (let t = 0; t < n; t++) {
    const v = values[t]!, old = valuesOld[t]!, r = returns[t]!;
    const vClipped = Math.min(Math.max(v, old - valueClip), old + valueClip);
    const plain = (v - r) ** 2, bounded = (vClipped - r) ** 2;
    if (bounded > plain) {
      // The clipped value is constant in V outside the band: no gradient there.
      loss[t] = 0.5 * bounded;
      gradient[t] = vClipped === v ? vClipped - r : 0;
      clipped++;
    } else {
      loss[t] = 0.5 * plain;
      gradient[t] = v - r;
    }
  }
  return { loss, gradient, clipped };
}

/** 1 − Var(R − V) / Var(R): how much of the returns' variance the values explain (1 = all, ≤ 0 = none). */
export function explainedVariance(values: readonly number[], returns: readonly number[]): number {
  const n = returns.length;
  if (n === 0) return 0;
  const variance = (xs: readonly number[]) => {
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    return xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
  };
  const varReturns = variance(returns);
  return varReturns === 0 ? 0 : 1 - variance(returns.map((r, i) => r - values[i]!)) / varReturns;
}
