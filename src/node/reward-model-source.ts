// --reward-model as `remax train` and `remax serve-reward` take it: a remax rm run folder or a reward model's own
// path, loaded into its own inference engine, and its weight against a rule reward.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { findRunModel, loadModelFromPath, loadTokenizerFromPath } from './model-io';
import { readJsonObject } from './run-folder';
import { RemaxEngine } from '../core/engine';
import { RemaxInputError } from '../core/errors';
import { SCORE_SIDECAR_SUFFIX } from '../core/score-head';

export interface RewardModelSource {
  /** The checkpoint or folder to load. */
  model: string;
  /** The tokenizer its rm run was trained with, when the model carries none. */
  tokenizer?: string;
  /** The file whose hash a resumed run checks (a changed reward model would change the run). */
  weights?: string;
  /** A llama2.c reward model's head file. */
  head?: string;
}

/** A remax rm run folder's checkpoint (with the tokenizer it was trained with), or the path itself. */
export function resolveRewardModel(source: string): RewardModelSource {
  const dir = path.resolve(source);
  const isRun = existsSync(path.join(dir, 'config.json')) && !existsSync(path.join(dir, 'model.safetensors')) && !existsSync(path.join(dir, 'model.safetensors.index.json'));
  const fromRun = isRun ? findRunModel(dir) : undefined;
  if (isRun && !fromRun) throw new RemaxInputError(`--reward-model ${source} is a run folder without a checkpoint yet: let its remax rm run save one`);
  const model = fromRun?.model ?? dir;
  const tokenizer = fromRun ? readJsonObject(path.join(dir, 'config.json'), '--reward-model').tokenizer : undefined;
  const weights = [path.join(model, 'model.safetensors'), path.join(model, 'model.safetensors.index.json'), model].find((f) => existsSync(f) && !statSync(f).isDirectory());
  const head = existsSync(model + SCORE_SIDECAR_SUFFIX) ? model + SCORE_SIDECAR_SUFFIX : undefined;
  return { model, ...(typeof tokenizer === 'string' ? { tokenizer } : {}), ...(weights ? { weights } : {}), ...(head ? { head } : {}) };
}

/** The reward model in its own inference engine (batches of up to 16 sequences planned; more re-plan). */
export async function loadRewardModelEngine(source: RewardModelSource, loadOptions: { context?: number } = {}): Promise<RemaxEngine> {
  const model = await loadModelFromPath(source.model, '--reward-model', loadOptions);
  return RemaxEngine.create({
    model, modelSource: source.model, maxBatch: 16,
    ...(source.tokenizer !== undefined && !model.tokenizer ? { tokenizer: loadTokenizerFromPath(source.tokenizer, '--reward-model') } : {}),
  });
}

/** --reward-weights "RULE,MODEL": the two weights of a rule reward and a reward model's score in their sum. */
export function parseRewardWeights(text: string, withRule: boolean): [number, number] {
  const weights = text.split(',').map((w) => Number(w.trim()));
  if (weights.length !== 2 || weights.some((w) => !Number.isFinite(w)) || text.trim() === '') {
    throw new RemaxInputError(`--reward-weights must be two numbers "RULE,MODEL" like 1,0.5, got "${text}"`);
  }
  if (!withRule && text !== '1,1') throw new RemaxInputError('--reward-weights weighs --reward against --reward-model: give both');
  return weights as [number, number];
}
