// remax-wasm/node: the core API plus file loading for Node, Deno and Bun.
export * from '../index';
export { loadEngineFromFiles, enableRelaxedSimd } from './load';
export type { FileEngineOptions } from './load';
export { readInputFile, writeFileAtomic } from './files';
export { loadRewardModule } from './reward-module';
export { startHelperWorkers } from './helper-workers';
export { startRewardServer, REWARD_ROUTES } from './reward-server';
export type { RewardServer, RewardServerOptions } from './reward-server';
