/**
 * A reward model (or critic) from a causal LM, and its head beside a llama2.c checkpoint.
 *
 * withScoreHead replaces the LM's classifier by the scalar head `score` [1, dim] (transformers'
 * …ForSequenceClassification with num_labels 1: score.weight, no bias), drawn from a seeded normal of std 1/(dim + 1)
 * as OpenRLHF initialises its value and reward heads: small, so the first scores are near 0 and every sequence starts
 * about even, but not zero, so the transformer's weights get a gradient from the first step.
 *
 * llama2.c form: the transformer is an ordinary llama2.c checkpoint (shared classifier: it stores none) and the head
 * is a sidecar PATH.score beside it, a safetensors file with the one F32 tensor score.weight [1, dim]. run.c still
 * reads the checkpoint (as a language model); remax reads the pair as the reward model.
 */
import { weightShapes, type ModelWeights } from './config';
import { requireInput } from './errors';
import type { LoadedModel } from './formats/model';
import { readSafetensorsHeader, decodeSafetensor, serializeSafetensors } from './formats/safetensors';
import { Prng } from './prng';

/** The sidecar's name beside a llama2.c checkpoint. */
export const SCORE_SIDECAR_SUFFIX = '.score';
/** The head's tensor name (Hugging Face's, in a folder and in the sidecar). */
export const SCORE_TENSOR = 'score.weight';

/** `model` with its classifier replaced by a fresh scalar head (see the file comment); a reward model is returned as it is. */
export function withScoreHead(model: LoadedModel, seed: number): LoadedModel {
  if (model.config.scoreHead) return model;
  const { wcls: _dropped, ...rest } = model.weights;
  const config = { ...model.config, scoreHead: true, sharedClassifier: true };
  const score = new Float32Array(config.dim);
  new Prng(seed).fillNormal(score, 1 / (config.dim + 1));
  const architecture = model.architecture?.replace(/ForCausalLM$/, 'ForSequenceClassification');
  return { ...model, config, weights: { ...rest, score } as ModelWeights, ...(architecture ? { architecture } : {}) };
}

/** The llama2.c form's sidecar: the head as safetensors. */
export function scoreSidecarBytes(model: LoadedModel): Uint8Array {
  requireInput(model.config.scoreHead === true && model.weights.score !== undefined, 'scoreSidecarBytes: the model has no scalar head');
  return serializeSafetensors([{ name: SCORE_TENSOR, shape: [1, model.config.dim], data: model.weights.score! }]);
}

/** A llama2.c checkpoint's model with the head read from its sidecar's bytes; errors name `source`. */
export function attachScoreSidecar(model: LoadedModel, bytes: Uint8Array, source: string): LoadedModel {
  const header = readSafetensorsHeader(bytes, source);
  const entry = header.byName.get(SCORE_TENSOR);
  requireInput(entry !== undefined && header.tensors.length === 1,
    `${source}: a reward model's head file holds the one tensor ${SCORE_TENSOR}, but it holds ${header.tensors.map((t) => t.name).join(', ') || 'none'}`);
  const dim = model.config.dim;
  requireInput(entry.shape.length === 2 && entry.shape[0] === 1 && entry.shape[1] === dim,
    `${source}: ${SCORE_TENSOR} has shape [${entry.shape}] but the checkpoint beside it has dim ${dim}: it needs [1, ${dim}]; ` +
      'the head belongs to another model');
  const config = { ...model.config, scoreHead: true, sharedClassifier: true };
  const { wcls: _dropped, ...rest } = model.weights;
  const weights = { ...rest, score: decodeSafetensor(bytes, header, entry) } as ModelWeights;
  requireInput(weightShapes(config).every(({ name }) => weights[name] !== undefined), `${source}: internal: a tensor is missing`);
  return { ...model, config, weights, architecture: 'llama2.c reward model' };
}
