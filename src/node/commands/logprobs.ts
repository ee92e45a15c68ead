import type { FlagSpec } from '../args';
import { buildFlag } from '../args';
import { parseFlags, helpText, requiredString, idListFlag, optionalString } from '../args';
import { loadEngineFromFiles } from '../load';
import { RemaxInputError } from '../../core/errors';
import { CONTEXT_FLAG, MODEL_FLAG, QUANTIZE_FLAG, WEIGHTS_DTYPE_FLAG, contextFlag, loadedLine, weightsDtypeFlag } from '../model-io';

export const logprobsFlags: FlagSpec[] = [
  MODEL_FLAG,
  CONTEXT_FLAG,
  { name: 'adapter', type: 'string', help: 'a PEFT LoRA adapter folder to apply' },
  { name: 'ids', type: 'string', help: 'token ids of the sequence, comma-separated (e.g. 1,429,479)' },
  { name: 'build', type: 'string', help: 'kernel build: auto, simd or relaxed-simd', default: 'auto' },
  WEIGHTS_DTYPE_FLAG,
  QUANTIZE_FLAG,
  { name: 'json', type: 'boolean', help: 'print {"ids":[...],"logprobs":[...]}' },
];

export async function logprobsCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<void> {
  const flags = parseFlags('logprobs', argv, logprobsFlags);
  if (flags.help) return out(helpText('logprobs', 'Teacher-forced log-probabilities: logprobs[t-1] = log p(ids[t] | ids[<t]).', logprobsFlags));
  const model = requiredString(flags, 'model', 'the model (a Hugging Face folder, a .gguf or a llama2.c checkpoint)');
  const ids = idListFlag(flags, 'ids');
  if (!ids || ids.length < 2) throw new RemaxInputError('--ids needs at least two token ids (the first is the context for the second)');
  const build = buildFlag(flags);
  const adapter = optionalString(flags, 'adapter');
  const engine = await loadEngineFromFiles({ model, build, weightsDtype: weightsDtypeFlag(flags), ...contextFlag(flags), ...(adapter ? { adapter } : {}) });
  const [logprobs] = engine.logprobs([ids]);
  if (flags.json) return out(JSON.stringify({ ids, logprobs }));
  err(loadedLine(engine, model));
  logprobs!.forEach((lp, i) => out(`${i + 1}\t${ids[i + 1]}\t${lp.toFixed(6)}`));
  out(`sum\t\t${logprobs!.reduce((a, b) => a + b, 0).toFixed(6)}`);
}
