// The reward a --reward flag names (remax train, remax serve-reward): a built-in reward, or a .ts/.js module that runs
// on a worker thread of its own (reward-module.ts), so that a call past the timeout is stopped and nothing the
// module does can end the process.
import { existsSync } from 'node:fs';
import { BUILTIN_REWARDS, builtinReward } from '../core/builtin-rewards';
import type { RewardFunction } from '../core/rewards';
import { loadRewardModule, type RewardModule } from './reward-module';

/** `loadTimeoutMs`: how long loading a module may take. */
export async function loadReward(name: string, loadTimeoutMs: number): Promise<RewardFunction | RewardModule> {
  if (Object.hasOwn(BUILTIN_REWARDS, name)) return builtinReward(name);
  if (/\.(m?[jt]s)$/.test(name) || existsSync(name)) return loadRewardModule(name, { loadTimeoutMs });
  return builtinReward(name); // an unknown name: the error lists the built-in ones
}
