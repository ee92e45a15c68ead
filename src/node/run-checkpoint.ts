// A training checkpoint on disk: the model as a llama2.c file at PATH and the training state at PATH.state, written
// together (both temp files first, then the two renames: a full disk leaves the previous pair as it was). The state
// records a hash of the model bytes, so a model and state that do not belong together (a crash between the two
// renames, or a hand-copied file) are refused on resume instead of mixed.
import { existsSync } from 'node:fs';
import { readInputFile, writeFilesAtomic } from './files';
import { parseTrainingState, serializeTrainingState, type TrainingState } from '../core/training-state';
import { RemaxInputError } from '../core/errors';
import type { ModelConfig } from '../core/config';

export const statePath = (modelPath: string): string => `${modelPath}.state`;

/** FNV-1a 32-bit over the bytes: enough to tell two checkpoints apart, fast on megabytes. */
export function bytesHash(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

export function saveRunCheckpoint(modelPath: string, modelBytes: Uint8Array, state: TrainingState): void {
  const withHash = { ...state, extra: { ...state.extra, modelHash: bytesHash(modelBytes) } };
  writeFilesAtomic([{ path: modelPath, bytes: modelBytes }, { path: statePath(modelPath), bytes: serializeTrainingState(withHash) }], '--out');
}

export function loadRunState(modelPath: string, modelBytes: Uint8Array, expect: { config: ModelConfig; parameterCount: number }): TrainingState {
  const path = statePath(modelPath);
  if (!existsSync(path)) {
    throw new RemaxInputError(`--resume ${modelPath}: no training state ${path} beside it; resume from a checkpoint written by remax sft`);
  }
  const state = parseTrainingState(readInputFile(path, '--resume'), path, expect);
  const hash = bytesHash(modelBytes);
  if (state.extra.modelHash !== hash) {
    throw new RemaxInputError(`--resume: ${path} belongs to a different model file than ${modelPath} ` +
      `(hash ${String(state.extra.modelHash)} vs ${hash}); resume from a model and state saved together`);
  }
  return state;
}
