import type { FlagSpec } from '../args';
import { parseFlags, helpText, optionalString, requiredString } from '../args';
import { CONTEXT_FLAG, MODEL_FLAG, contextFlag, formatFlag, loadedLine, modelFiles, writeModel } from '../model-io';
import { loadEngineFromFiles } from '../load';
import type { LoadedModel } from '../../core/formats/model';
import type { SaveFormat } from '../../core/formats/save';
import { RemaxInputError } from '../../core/errors';
import { mergeLora } from '../../core/lora';

export const exportFlags: FlagSpec[] = [
  MODEL_FLAG,
  { name: 'tokenizer', type: 'string', help: 'a tokenizer to write with it (tokenizer.json, tokenizer.bin or .gguf)', default: "the model's own" },
  { name: 'format', type: 'string', help: 'hf (a folder transformers, vLLM, verl and OpenRLHF load), gguf (llama.cpp) or llama2c', default: 'the format of --model' },
  { name: 'dtype', type: 'string', help: 'hf: f32, bf16 or f16; gguf: f32, f16 or q8_0; llama2c: f32', default: 'the stored type where the format has it, else f32' },
  { name: 'out', type: 'string', help: 'where to write: a folder for hf, a file for gguf and llama2c' },
  { name: 'adapter', type: 'string', help: 'a PEFT LoRA adapter folder (a LoRA run\'s adapter) to merge into the weights (with --merge-lora)' },
  { name: 'merge-lora', type: 'boolean', help: 'write the model with the --adapter merged in: W + (lora_alpha/r)·B·A, a plain model any loader reads' },
  CONTEXT_FLAG,
];

/** Writes a model in another format (or the same with another dtype). */
export async function exportCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<void> {
  const flags = parseFlags('export', argv, exportFlags);
  if (flags.help) return out(helpText('export', 'Write a model as a Hugging Face folder, a GGUF file or a llama2.c checkpoint.', exportFlags));
  const modelPath = requiredString(flags, 'model', 'the model to export');
  const outPath = requiredString(flags, 'out', 'where to write the model');
  const adapter = optionalString(flags, 'adapter');
  if (adapter !== undefined && flags['merge-lora'] !== true) {
    throw new RemaxInputError(`--adapter ${adapter}: export writes a plain model; add --merge-lora to merge the adapter into the weights`);
  }
  if (flags['merge-lora'] === true && adapter === undefined) throw new RemaxInputError('--merge-lora needs --adapter DIR: the PEFT LoRA adapter folder to merge');
  const engine = await loadEngineFromFiles({ model: modelPath, tokenizer: optionalString(flags, 'tokenizer'), ...contextFlag(flags), ...(adapter ? { adapter } : {}) });
  const plain = engine.exportModel();
  const model = engine.lora ? { ...plain, weights: mergeLora(engine.config, plain.weights, engine.lora, engine.readAdapters()) } : plain;
  const format = formatFlag(flags, engine);
  const dtype = optionalString(flags, 'dtype') ?? defaultDtype(model, format);
  const files = modelFiles(model, { format, dtype });
  writeModel(outPath, files, '--out');
  err(loadedLine(engine, modelPath));
  if (engine.lora) err(`merged ${adapter}: rank ${engine.lora.rank}, alpha ${engine.lora.alpha}, on ${engine.lora.targets.join(', ')}`);
  const bytes = Object.values(files).reduce((n, f) => n + f.length, 0);
  err(`wrote ${outPath}: ${format === 'hf' ? `Hugging Face folder (${Object.keys(files).sort().join(', ')})` : format === 'gguf' ? 'GGUF' : 'llama2.c checkpoint'}, ` +
    `${dtype.toUpperCase()}, ${(bytes / 2 ** 20).toFixed(1)} MiB`);
}

/** The model's own stored type when the target format stores it, else F32. */
function defaultDtype(model: LoadedModel, format: SaveFormat): string {
  const stored = model.dtype?.split(' + ')[0];
  const writable: Record<SaveFormat, string[]> = { hf: ['F32', 'BF16', 'F16'], gguf: ['F32', 'F16', 'Q8_0'], llama2c: ['F32'] };
  if (stored && writable[format].includes(stored)) return stored;
  if (stored === 'BF16' && format === 'gguf') return 'F16';
  if (stored !== undefined && stored !== 'F32' && format === 'hf') return 'BF16'; // a quantized GGUF's nearest
  return 'F32';
}
