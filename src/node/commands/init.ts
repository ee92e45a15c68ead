import type { FlagSpec } from '../args';
import { parseFlags, helpText, requiredString, numberFlag } from '../args';
import { writeFileAtomic } from '../files';
import { randomInitWeights, serializeCheckpoint, validateConfig } from '../../core/formats/llama2c';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, type ModelConfig } from '../../core/config';

export const initFlags: FlagSpec[] = [
  { name: 'out', type: 'string', help: 'where to write the llama2.c checkpoint' },
  { name: 'dim', type: 'string', help: 'model width' },
  { name: 'hidden', type: 'string', help: 'feed-forward width' },
  { name: 'layers', type: 'string', help: 'number of layers' },
  { name: 'heads', type: 'string', help: 'attention heads' },
  { name: 'kv-heads', type: 'string', help: 'key/value heads (divides --heads)', default: 'same as --heads' },
  { name: 'vocab', type: 'string', help: 'vocabulary size' },
  { name: 'seq', type: 'string', help: 'context length' },
  { name: 'seed', type: 'string', help: 'initialisation seed', default: '0' },
  { name: 'unshared-classifier', type: 'boolean', help: 'give the classifier its own weights instead of the embedding' },
];

export async function initCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<void> {
  const flags = parseFlags('init', argv, initFlags);
  if (flags.help) return out(helpText('init', 'Write a randomly initialised model in llama2.c format.', initFlags));
  const path = requiredString(flags, 'out', 'the path of the checkpoint to write');
  const positive = { integer: true, min: 1 };
  const need = (name: string) => {
    requiredString(flags, name, `the model's ${initFlags.find((f) => f.name === name)!.help} (remax init --help lists every flag)`);
    return numberFlag(flags, name, 0, positive);
  };
  const heads = need('heads');
  const config: ModelConfig = {
    dim: need('dim'), hiddenDim: need('hidden'), nLayers: need('layers'), nHeads: heads,
    nKvHeads: numberFlag(flags, 'kv-heads', heads, positive), vocabSize: need('vocab'), seqLen: need('seq'),
    sharedClassifier: !flags['unshared-classifier'], normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA,
  };
  validateConfig(config, 'the flags');
  const seed = numberFlag(flags, 'seed', 0, { integer: true, min: 0 });
  const bytes = serializeCheckpoint(config, randomInitWeights(config, seed));
  writeFileAtomic(path, bytes);
  err(`wrote ${path}: ${(bytes.length / 2 ** 20).toFixed(2)} MiB, dim ${config.dim}, hidden ${config.hiddenDim}, ` +
    `${config.nLayers} layers, ${config.nHeads} heads (${config.nKvHeads} kv), vocab ${config.vocabSize}, seq ${config.seqLen}`);
}
