/**
 * The Bradley–Terry preference loss of a reward model over a batch of pairs: the mean of −log σ(r_chosen − r_rejected)
 * (as InstructGPT, DeepSpeed-Chat and OpenRLHF train their reward models), and its gradient with respect to each score.
 * −log σ(m) = softplus(−m), computed as max(−m, 0) + log1p(exp(−|m|)) so that no margin overflows.
 */
export interface BradleyTerry {
  /** Mean over the pairs of −log σ(margin). */
  loss: number;
  /** ∂loss/∂r_chosen[i] = −σ(−margin_i)/n, and ∂loss/∂r_rejected[i] = +σ(−margin_i)/n. */
  dChosen: number[];
  dRejected: number[];
  /** Fraction of pairs with r_chosen > r_rejected (a tie counts as wrong). */
  accuracy: number;
  /** Mean of r_chosen − r_rejected. */
  meanMargin: number;
}

const softplus = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
/** σ(x) without overflow for large |x|. */
export const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

export function bradleyTerry(chosen: readonly number[], rejected: readonly number[]): BradleyTerry {
  if (chosen.length !== rejected.length || chosen.length === 0) {
    throw new Error(`bradleyTerry: ${chosen.length} chosen and ${rejected.length} rejected scores; give the same number (≥ 1)`);
  }
  const n = chosen.length;
  let loss = 0, right = 0, margins = 0;
  const dChosen: number[] = [], dRejected: number[] = [];
  for (let i = 0; i < n; i++) {
    const margin = chosen[i]! - rejected[i]!;
    loss += softplus(-margin);
    const g = sigmoid(-margin) / n;
    dChosen.push(-g);
    dRejected.push(g);
    if (margin > 0) right++;
    margins += margin;
  }
  return { loss: loss / n, dChosen, dRejected, accuracy: right / n, meanMargin: margins / n };
}

/**
 * engine.accumulateScoreGradients' `gradient` for groups [chosen, rejected] out of a batch of `batchSize` pairs: the
 * batch loss's ∂/∂score at each response's last token (the loss is the mean over the whole batch, whichever engine or
 * micro-batch a pair is in). Appends the pairs' last-token scores to `seen`, in order.
 */
export function pairGradient(batchSize: number, seen: { chosen: number[]; rejected: number[] }): (scores: number[][][]) => number[][][] {
  return (scores) => {
    const last = scores.map(([c, r]) => [c![c!.length - 1]!, r![r!.length - 1]!] as const);
    const part = bradleyTerry(last.map(([c]) => c), last.map(([, r]) => r));
    for (const [c, r] of last) {
      seen.chosen.push(c);
      seen.rejected.push(r);
    }
    const scale = last.length / batchSize;
    const atLast = (row: number[], d: number) => row.map((_, t) => (t === row.length - 1 ? d * scale : 0));
    return scores.map(([c, r], i) => [atLast(c!, part.dChosen[i]!), atLast(r!, part.dRejected[i]!)]);
  };
}
