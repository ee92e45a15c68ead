import type { FlagSpec } from '../args';
import { parseFlags, helpText, requiredString } from '../args';
import { loadEngineFromFiles } from '../load';
import { readInputFile, writeFileAtomic } from '../files';
import { RemaxInputError } from '../../core/errors';
import { weightShapes, type ModelConfig, type ModelWeights } from '../../core/config';
import { hfTensors } from '../../core/formats/hf-model';
import { ggufTensors } from '../../core/formats/gguf-model';
import type { LoadedModel } from '../../core/formats/model';
import { CONTEXT_FLAG, MODEL_FLAG, contextFlag, loadedLine } from '../model-io';
import { serializeSafetensors } from '../../core/formats/safetensors';
import type { TrainingExample } from '../../core/training';

export const gradFlags: FlagSpec[] = [
  MODEL_FLAG,
  CONTEXT_FLAG,
  { name: 'batch', type: 'string', help: 'JSON file: [{"prompt_ids":[...],"response_ids":[...],"advantage":0.7}, ...]' },
  { name: 'out', type: 'string', help: "safetensors file for the gradients (float32, with the model's own tensor names and shapes: transformers', GGUF's or llama2.c's)" },
  { name: 'json', type: 'boolean', help: 'print {"loss":...,"grad_norm":...} instead of a sentence' },
];

/** The ReMax loss L = −Σ_i advantage_i·Σ_{t∈response_i} log π(y_t | x_i, y_<t) of a batch, and its gradient. */
export async function gradCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<void> {
  const flags = parseFlags('grad', argv, gradFlags);
  if (flags.help) return out(helpText('grad', "Compute the ReMax loss of a batch and write the gradient of every weight, named by the model's format.", gradFlags));
  const model = requiredString(flags, 'model', 'the model (a Hugging Face folder, a .gguf or a llama2.c checkpoint)');
  const batchPath = requiredString(flags, 'batch', 'the batch JSON file');
  const outPath = requiredString(flags, 'out', 'where to write the gradients (.safetensors)');
  const examples = parseBatch(readInputFile(batchPath, '--batch'), batchPath);
  const engine = await loadEngineFromFiles({ model, weightsDtype: 'f32', ...contextFlag(flags) }); // gradients: float32 weights
  engine.enableTraining({ maxSeqs: Math.min(16, examples.length) });
  engine.zeroGradients();
  const { loss } = engine.accumulateGradients(examples);
  const grads = engine.readGradients();
  const bytes = serializeSafetensors(namedTensors(engine.model.format, engine.config, grads), { format: 'pt', loss: String(loss), model });
  writeFileAtomic(outPath, bytes);
  const gradNorm = engine.gradientNorm();
  if (!flags.json) err(loadedLine(engine, model));
  out(flags.json ? JSON.stringify({ loss, grad_norm: gradNorm }) : `loss ${loss}\ngradient norm ${gradNorm}\nwrote ${outPath}`);
}

function parseBatch(bytes: Uint8Array, source: string): TrainingExample[] {
  let data: unknown;
  try {
    data = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new RemaxInputError(`--batch ${source} is not valid JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(data) || data.length === 0) {
    throw new RemaxInputError(`--batch ${source} must be a non-empty JSON array of {"prompt_ids", "response_ids", "advantage"}`);
  }
  return data.map((item, i) => {
    const where = `--batch ${source}, item ${i}`;
    const ids = (key: string) => {
      const v = (item as Record<string, unknown>)?.[key];
      if (!Array.isArray(v) || !v.every((t) => Number.isInteger(t) && t >= 0)) {
        throw new RemaxInputError(`${where}: "${key}" must be an array of non-negative integer token ids`);
      }
      return v as number[];
    };
    const prompt = ids('prompt_ids'), response = ids('response_ids');
    if (prompt.length === 0) throw new RemaxInputError(`${where}: "prompt_ids" is empty (it needs at least BOS = 1)`);
    const advantage = (item as Record<string, unknown>).advantage;
    if (typeof advantage !== 'number' || !Number.isFinite(advantage)) throw new RemaxInputError(`${where}: "advantage" must be a finite number`);
    return { ids: [...prompt, ...response], weights: [...prompt.map(() => 0), ...response.map(() => advantage)] };
  });
}

/** Tensors (here: gradients, which have the weights' layout) under the names and shapes of the model's own format. */
function namedTensors(format: LoadedModel['format'], config: ModelConfig, tensors: ModelWeights): { name: string; shape: number[]; data: Float32Array }[] {
  if (format === 'hf') return hfTensors(config, tensors);
  if (format === 'gguf') return ggufTensors(config, tensors);
  return weightShapes(config).map(({ name, shape }) => ({ name, shape, data: tensors[name]! }));
}
