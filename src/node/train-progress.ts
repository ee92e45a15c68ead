// Progress of a training run on stderr: one line redrawn in place on a terminal, plain lines otherwise
// (about 20 over the run), each with step, its figures (reward, KL, entropy, tokens/s; a reward model's loss and accuracy)
// and the time left.
import type { StepMetrics } from '../core/rl/trainer';

export class TrainProgress {
  private readonly tty = Boolean(process.stderr.isTTY);
  private readonly started = performance.now();
  private readonly every: number;

  constructor(private readonly steps: number, private readonly firstStep: number, private readonly err: (line: string) => void, private readonly quiet: boolean) {
    this.every = Math.max(1, Math.round(steps / 20));
  }

  start(line: string): void {
    if (!this.quiet) this.err(line);
  }

  note(line: string): void {
    if (this.quiet) return;
    if (this.tty) process.stderr.write('\r\x1b[K');
    this.err(line);
  }

  update(m: StepMetrics): void {
    const fmt = (x: number | null | undefined, digits = 3) => (x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits));
    this.show(m.step, `reward ${fmt(m.reward_mean)}` + (m.greedy_reward_mean !== null ? ` (greedy ${fmt(m.greedy_reward_mean)})` : '') +
      (m.eval_reward_mean !== undefined ? `  eval ${fmt(m.eval_reward_mean)}` : '') +
      `  kl ${fmt(m.kl, 4)}  entropy ${fmt(m.entropy)}  ${Math.round(m.tokens_per_second)} tok/s`, m.eval_reward_mean !== undefined);
  }

  /** Step `step`'s figures with the bar and the time left; `keep`: a line that stays on a terminal (an evaluation). */
  show(step: number, figures: string, keep = false): void {
    if (this.quiet) return;
    const elapsed = (performance.now() - this.started) / 1000;
    const eta = (elapsed / (step - this.firstStep)) * (this.steps - step);
    const width = 20, filled = Math.round((width * step) / this.steps);
    const text = `step ${step}/${this.steps}  ${figures}  eta ${formatSeconds(eta)}`;
    if (this.tty) {
      process.stderr.write(`\r\x1b[K[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${text}`);
      if (keep) process.stderr.write('\n');
    } else if (step % this.every === 0 || step === this.steps || keep) {
      this.err(text);
    }
  }

  finish(line: string): void {
    if (this.quiet) return;
    if (this.tty) process.stderr.write('\n');
    this.err(line);
  }
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}
