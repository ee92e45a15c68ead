// A training checkpoint on disk: the model in its format at PATH (a llama2.c or GGUF file, or a Hugging Face folder)
// and the training state at PATH.state, written together (every temp file first, then the renames: a full disk leaves
// the previous checkpoint as it was). The state records a hash of the model's weights, so a model and state that do
// not belong together (a crash between the renames, or a hand-copied file) are refused on resume instead of mixed.
import { existsSync } from 'node:fs';
import { commitJournal, completeWrite, readInputFile } from './files';
import { modelFileEntries, modelFiles, writeModel, type SaveFormat } from './model-io';
import type { RemaxEngine } from '../core/engine';
import { parseTrainingState, serializeTrainingState, type TrainingState } from '../core/training-state';
import { RemaxInputError } from '../core/errors';
import { weightShapes, type ModelConfig, type ModelWeights } from '../core/config';
import { fnv1a, fnv1aWords, hex8 } from '../core/hash';
import { peftAdapterFiles } from '../core/formats/peft';
import type { LoraWeights } from '../core/lora';

export const statePath = (modelPath: string): string => `${modelPath.replace(/[/\\]+$/, '')}.state`;

/** FNV-1a of a file's bytes (how states written before weightsHash identified their llama2.c file). */
export const bytesHash = (bytes: Uint8Array): string => hex8(fnv1a(bytes));

/** FNV-1a over the 32-bit words of every tensor in the engine's order: the same for a model in any format. */
export function weightsHash(config: ModelConfig, weights: ModelWeights): string {
  let h = fnv1a();
  for (const { name } of weightShapes(config)) {
    const t = weights[name]!;
    h = fnv1aWords(new Uint32Array(t.buffer, t.byteOffset, t.length), h);
  }
  return hex8(h);
}

/** FNV-1a over the words of every adapter tensor (A, B per target in order): a LoRA checkpoint's identity. */
export function adaptersHash(adapters: LoraWeights): string {
  let h = fnv1a();
  for (const pair of Object.values(adapters)) {
    for (const t of [pair!.a, pair!.b]) h = fnv1aWords(new Uint32Array(t.buffer, t.byteOffset, t.length), h);
  }
  return hex8(h);
}

/** Writes the model's files (modelFiles() of model-io.ts) at modelPath and the state beside them, all or none. */
export function saveRunCheckpoint(modelPath: string, files: Record<string, Uint8Array>, state: TrainingState, hash: string,
  companions: FileEntry[] = []): void {
  const withHash = { ...state, extra: { ...state.extra, weightsHash: hash } };
  writeModel(modelPath, files, '--out', [{ path: statePath(modelPath), bytes: serializeTrainingState(withHash) }, ...companions]);
}

type FileEntry = { path: string; bytes: Uint8Array };

/**
 * A second engine's checkpoint (PPO's critic: a full model, no LoRA) at modelPath with its state, as files to write
 * in the same set as the policy's (saveEngineCheckpoint's `companions`): both or neither are replaced.
 */
export function engineCheckpointEntries(modelPath: string, engine: RemaxEngine, format: SaveFormat, state: TrainingState): FileEntry[] {
  const model = engine.exportModel();
  const withHash = { ...state, extra: { ...state.extra, weightsHash: weightsHash(model.config, model.weights) } };
  return [...modelFileEntries(modelPath, modelFiles(model, { format }), '--out'), { path: statePath(modelPath), bytes: serializeTrainingState(withHash) }];
}

/**
 * The state saved beside the model at modelPath, checked to belong to the loaded weights (a LoRA run's: to the
 * adapters loaded from the adapter folder at modelPath).
 */
export function loadRunState(modelPath: string, model: { config: ModelConfig; weights?: ModelWeights }, expect: { parameterCount: number },
  adapters?: LoraWeights): TrainingState {
  if (!adapters && !model.weights) throw new Error('loadRunState needs the weights or, for a LoRA run, the adapters');
  completeWrite(commitJournal(modelPath), '--resume');
  const path = statePath(modelPath);
  if (!existsSync(path)) {
    throw new RemaxInputError(`--resume ${modelPath}: no training state ${path} beside it; resume from a checkpoint written by remax sft or remax train`);
  }
  const state = parseTrainingState(readInputFile(path, '--resume'), path, { config: model.config, parameterCount: expect.parameterCount });
  // States written before weightsHash hashed the llama2.c file's bytes.
  const [saved, actual] = typeof state.extra.weightsHash === 'string'
    ? [state.extra.weightsHash, adapters ? adaptersHash(adapters) : weightsHash(model.config, model.weights!)]
    : [state.extra.modelHash, bytesHash(readInputFile(modelPath, '--resume'))];
  if (saved !== actual) {
    throw new RemaxInputError(`--resume: ${path} belongs to a different model file than ${modelPath} ` +
      `(hash ${String(saved)} vs ${actual}); resume from a model and state saved together`);
  }
  return state;
}

/**
 * Saves an engine's current model in `format` at modelPath, with the trainer's state beside it; a LoRA engine's
 * adapters alone, as a PEFT adapter folder at modelPath (`base`: its base_model_name_or_path).
 */
export function saveEngineCheckpoint(modelPath: string, engine: RemaxEngine, format: SaveFormat, state: TrainingState, base: string | null = null,
  companions: FileEntry[] = []): void {
  if (engine.lora) {
    const adapters = engine.readAdapters();
    saveRunCheckpoint(modelPath, peftAdapterFiles(engine.config, engine.lora, adapters, base), state, adaptersHash(adapters), companions);
    return;
  }
  const model = engine.exportModel();
  saveRunCheckpoint(modelPath, modelFiles(model, { format }), state, weightsHash(model.config, model.weights), companions);
}
