/**
 * Learning-rate schedules: linear warm-up, then constant, linear or cosine decay (cosine as llama2.c train.py get_lr).
 *
 * For a 0-based optimizer step:
 *   step < warmupSteps:   lr · (step + 1) / warmupSteps   (step 0 already learns; step warmupSteps−1 reaches lr.
 *                         llama2.c uses step / warmupSteps, which wastes step 0 on lr = 0.)
 *   step ≥ totalSteps:    minLr (the schedule is over; 'constant' stays at lr)
 *   otherwise, with p = (step − warmupSteps) / (totalSteps − warmupSteps) in [0, 1):
 *     constant:  lr
 *     linear:    minLr + (1 − p) · (lr − minLr)
 *     cosine:    minLr + ½(1 + cos πp) · (lr − minLr)   (cos computed portably: the same bits on every engine)
 * So the decay starts at lr on step warmupSteps and would reach minLr on step totalSteps, one past the last step
 * 0..totalSteps−1 of a run.
 *
 * minLr defaults to lr/10 for both decays (the Chinchilla advice quoted in llama2.c); it is ignored by 'constant'.
 * Error messages use the flag names of `remax train`: --lr-schedule, --lr, --min-lr, --warmup-steps, --steps.
 */
import { requireInput } from './errors';

export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export const SCHEDULE_KINDS: readonly ScheduleKind[] = ['constant', 'linear', 'cosine'];

export interface ScheduleConfig {
  kind: ScheduleKind;
  /** Peak learning rate, reached at the end of the warm-up. */
  lr: number;
  /** Number of warm-up steps (0 = none). */
  warmupSteps: number;
  /** Total number of optimizer steps of the run; the decay ends here. */
  totalSteps: number;
  /** Floor of the linear and cosine decays; default lr/10. */
  minLr?: number;
}

/** The floor a schedule decays to (lr for 'constant'). */
export function minLearningRate(s: ScheduleConfig): number {
  return s.kind === 'constant' ? s.lr : s.minLr ?? s.lr / 10;
}

/** Throws RemaxInputError naming the flag when a schedule setting is out of range. */
export function validateSchedule(s: ScheduleConfig): void {
  requireInput(SCHEDULE_KINDS.includes(s.kind),
    `--lr-schedule must be one of ${SCHEDULE_KINDS.join(', ')}, got ${JSON.stringify(s.kind)}`);
  requireInput(typeof s.lr === 'number' && Number.isFinite(s.lr) && s.lr > 0,
    `--lr must be a positive number, got ${s.lr} (for example 3e-4)`);
  requireInput(Number.isSafeInteger(s.totalSteps) && s.totalSteps > 0,
    `--steps must be a positive integer, got ${s.totalSteps}`);
  requireInput(Number.isSafeInteger(s.warmupSteps) && s.warmupSteps >= 0,
    `--warmup-steps must be a non-negative integer, got ${s.warmupSteps} (0 disables the warm-up)`);
  requireInput(s.warmupSteps <= s.totalSteps,
    `--warmup-steps ${s.warmupSteps} is more than --steps ${s.totalSteps}; the warm-up must fit in the run, so lower --warmup-steps`);
  if (s.minLr !== undefined) {
    requireInput(typeof s.minLr === 'number' && Number.isFinite(s.minLr) && s.minLr >= 0 && s.minLr <= s.lr,
      `--min-lr must be a number from 0 to --lr (${s.lr}), got ${s.minLr}`);
  }
}

/** The learning rate of 0-based optimizer step `step` (see the file comment for the formula). */
export function learningRate(step: number, s: ScheduleConfig): number {
  if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`learningRate: step ${step} is not a non-negative integer`);
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (s.kind === 'constant') return s.lr;
  const minLr = minLearningRate(s);
  if (step >= s.totalSteps) return minLr;
  const progress = (step - s.warmupSteps) / (s.totalSteps - s.warmupSteps);
  const coeff = s.kind === 'linear' ? 1 - progress : 0.5 * (1 + portableCos(Math.PI * progress));
  return coeff * s.lr + (1 - coeff) * minLr; // = minLr + coeff·(lr − minLr), but exactly lr when coeff = 1
}

/**
 * cos x for x in [0, π] from exactly rounded operations only, so the schedule (and thus training) gives the same bits
 * on every engine; Math.cos may differ in the last bit (see prng.ts). Taylor series on [0, π/2], mirrored above it;
 * the terms up to x^32/32! leave an error far below one ulp.
 */
export function portableCos(x: number): number {
  if (x > Math.PI / 2) return -portableCos(Math.PI - x);
  const x2 = x * x;
  let sum = 0, term = 1;
  for (let k = 0; k <= 16; k++) {
    sum += term;
    term *= -x2 / ((2 * k + 1) * (2 * k + 2));
  }
  return sum;
}
