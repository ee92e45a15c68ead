// remax-wasm: the public API. Everything here takes bytes; the Node adapter (readModelFile etc.) adds files.
export { RemaxEngine } from './core/engine';
export type { EngineOptions, GenerateOptions, GenerateRequest, Generation, SamplingOptions, FinishReason } from './core/engine';
export { Tokenizer, BOS_ID, EOS_ID } from './core/tokenizers/llama2c';
export type { TextTokenizer, EncodeTextOptions, DecodeTextOptions } from './core/tokenizers/types';
export { HfTokenizer, tokenizerFromHfFiles } from './core/tokenizers/hf-tokenizer';
export { tokenizerFromGguf } from './core/tokenizers/gguf-vocab';
export { renderChat, chatPromptIds } from './core/tokenizers/chat-template';
export type { ChatMessage } from './core/tokenizers/chat-template';

// Model formats: Hugging Face folders, GGUF, llama2.c; detected from their content.
export { loadModel, loadTokenizerFile, sniffFile } from './core/formats/load';
export type { ModelLoadOptions } from './core/formats/load';
export type { LoadedModel, ModelFileSet, ModelFormat } from './core/formats/model';
export { memoryFileSet } from './core/formats/file-set';
export { modelFiles, formatOf, SAVE_FORMATS } from './core/formats/save';
export type { SaveFormat, SaveOptions } from './core/formats/save';
export { loadHfModel, hfModelFiles, hfTensors } from './core/formats/hf-model';
export { parseGguf, serializeGguf } from './core/formats/gguf';
export { loadGguf, modelToGguf, ggufTensors } from './core/formats/gguf-model';
export { parseCheckpoint, serializeCheckpoint, randomInitWeights, validateConfig } from './core/formats/llama2c';
export { peftAdapterFiles, parsePeftAdapter, ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME } from './core/formats/peft';
export { LORA_TARGETS, initLoraWeights, mergeLora, parseLoraTargets, type LoraSettings, type LoraTarget, type LoraWeights } from './core/lora';
export type { Checkpoint } from './core/formats/llama2c';
export type { ModelConfig, ModelWeights } from './core/config';
export { RemaxInputError } from './core/errors';
export type { WasmBuilds, WasmSource, BuildChoice, BuildName } from './core/kernels';
export { supportsRelaxedSimd } from './core/kernels';
export { wasmBuilds } from './wasm-builds';

// Training: SFT and the ReMax trainer with its estimators and rewards.
export type { TrainingExample, TrainingOptions, AdamWOptions } from './core/training';
export { SftTrainer } from './core/sft-trainer';
export type { SftOptions, SftStep } from './core/sft-trainer';
export { loadSftExamples, DataOrder } from './core/sft-data';
export { learningRate } from './core/schedule';
export type { ScheduleConfig, ScheduleKind } from './core/schedule';
export { serializeTrainingState, parseTrainingState } from './core/training-state';
export type { TrainingState, OptimizerSettings } from './core/training-state';
export { ReMaxTrainer, DEFAULT_REMAX_OPTIONS } from './core/rl/trainer';
export type { ReMaxOptions, StepMetrics, SampleRow, RewardScorer, LossAggregation } from './core/rl/trainer';
export { ESTIMATORS, computeAdvantages, tokenReturns } from './core/rl/advantages';
export { HelperEngine, HelperError } from './core/parallel/helper-client';
export { serveHelper } from './core/parallel/helper-server';
export type { Transport } from './core/parallel/protocol';
export type { Estimator } from './core/rl/advantages';
export { loadPrompts } from './core/rl/prompts';
export type { PromptRecord } from './core/rl/prompts';
export { scoreSamples, RewardError } from './core/rewards';
export type { RewardSample, RewardFunction, RewardErrorPolicy } from './core/rewards';
export { BUILTIN_REWARDS, builtinReward } from './core/builtin-rewards';
export { httpReward } from './core/http-reward';
export { REWARD_PROTOCOLS, rewardRequestBody, rewardAnswerBody, parseRewardRequest } from './core/reward-protocols';
export type { RewardProtocol } from './core/reward-protocols';
export { rewardFunctionScorer, ScoringError } from './core/request-scorer';
export type { RequestScorer } from './core/request-scorer';
export { serializeSafetensors, parseSafetensors } from './core/formats/safetensors';
export { renderReport, parseMetricsJsonl } from './report/report';
