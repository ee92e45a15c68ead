// remax-wasm: the public API. Everything here takes bytes; the Node adapter (readModelFile etc.) adds files.
export { RemaxEngine } from './core/engine';
export type { EngineOptions, GenerateOptions, GenerateRequest, Generation, SamplingOptions, FinishReason } from './core/engine';
export { Tokenizer, BOS_ID, EOS_ID } from './core/tokenizer';
export { parseCheckpoint, serializeCheckpoint, randomInitWeights, validateConfig } from './core/checkpoint';
export type { Checkpoint } from './core/checkpoint';
export type { ModelConfig, ModelWeights } from './core/config';
export { RemaxInputError } from './core/errors';
export type { WasmBuilds, WasmSource, BuildChoice, BuildName } from './core/kernels';
export { wasmBuilds } from './wasm-builds';
