import type { RemaxEngine } from './engine';
import { requireInput } from './errors';
import type { ScheduleConfig } from './schedule';
import { DataOrder } from './sft-data';
import type { OptimizerSettings, TrainingState } from './training-state';

// What the SFT and ReMax trainers share about saving and resuming a run: the optimizer state lives in the engine,
// the data order's position in a DataOrder; everything else is the trainer's own settings.

/** Puts a saved run's optimizer state into `engine` and returns its data order, continued where it stopped. */
export function resumeRun(engine: RemaxEngine, state: TrainingState, count: number, data: string): DataOrder {
  requireInput(state.data.count === count,
    `the saved run trained on ${state.data.count} ${data} but there are now ${count}: resume with the data the run started with`);
  const optimizerSteps = typeof state.extra.optimizerSteps === 'number' ? state.extra.optimizerSteps : state.step;
  engine.writeOptimizerState({ step: optimizerSteps, m: state.m, v: state.v });
  return DataOrder.restore(count, state.data.seed, state.data.position);
}

/**
 * A run's state for its checkpoint at trainer step `step`: the engine's optimizer state, the data position, the
 * trainer's settings. AdamW's own step count is kept too when it differs (a step whose samples were all skipped
 * takes no optimizer step).
 */
export function captureRun(engine: RemaxEngine, step: number, order: DataOrder, schedule: ScheduleConfig, optimizer: OptimizerSettings, extra: Record<string, unknown>): TrainingState {
  const { step: optimizerSteps, m, v } = engine.readOptimizerState();
  return {
    step, schedule, optimizer, data: { seed: order.seed, count: order.count, position: order.position },
    samplerState: 0n, config: engine.config, extra: optimizerSteps === step ? extra : { ...extra, optimizerSteps }, m, v,
  };
}
