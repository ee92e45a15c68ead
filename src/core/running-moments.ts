/**
 * Running mean and variance of every value seen (Welford's update, in float64), for normalising rewards:
 * (r − mean) / sqrt(variance + 1e-8). Its state is three numbers, saved in a run's checkpoint so a resumed run
 * normalises exactly as the uninterrupted one.
 */
export interface MomentsState {
  count: number;
  mean: number;
  m2: number;
}

export class RunningMoments {
  private count = 0;
  private mean = 0;
  private m2 = 0;

  /** Adds `values` to the statistics, then returns them normalised by the updated mean and standard deviation. */
  updateAndNormalize(values: readonly number[]): number[] {
    for (const v of values) {
      this.count++;
      const delta = v - this.mean;
      this.mean += delta / this.count;
      this.m2 += delta * (v - this.mean);
    }
    const std = Math.sqrt(this.m2 / Math.max(1, this.count) + 1e-8);
    return values.map((v) => (v - this.mean) / std);
  }

  state(): MomentsState {
    return { count: this.count, mean: this.mean, m2: this.m2 };
  }

  /** Continues from a saved state (checked: anything else is a corrupt checkpoint). */
  restore(state: unknown, source: string): void {
    const s = state as MomentsState;
    if (typeof s !== 'object' || s === null || !Number.isSafeInteger(s.count) || s.count < 0 || !Number.isFinite(s.mean) || !Number.isFinite(s.m2) || s.m2 < 0) {
      throw new Error(`${source}: the saved reward normalisation ${JSON.stringify(state)} is not {count, mean, m2}; the state is corrupt`);
    }
    this.count = s.count;
    this.mean = s.mean;
    this.m2 = s.m2;
  }
}
