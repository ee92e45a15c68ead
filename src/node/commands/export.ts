import type { FlagSpec } from '../args';
import { parseFlags, helpText, optionalString, requiredString } from '../args';
import { CONTEXT_FLAG, MODEL_FLAG, contextFlag, formatFlag, loadedLine, modelFiles, writeModel } from '../model-io';
import { loadEngineFromFiles } from '../load';
import type { LoadedModel } from '../../core/formats/model';
import type { SaveFormat } from '../../core/formats/save';

export const exportFlags: FlagSpec[] = [
  MODEL_FLAG,
  { name: 'tokenizer', type: 'string', help: 'a tokenizer to write with it (tokenizer.json, tokenizer.bin or .gguf)', default: "the model's own" },
  { name: 'format', type: 'string', help: 'hf (a folder transformers, vLLM, verl and OpenRLHF load), gguf (llama.cpp) or llama2c', default: 'the format of --model' },
  { name: 'dtype', type: 'string', help: 'hf: f32, bf16 or f16; gguf: f32, f16 or q8_0; llama2c: f32', default: 'the stored type where the format has it, else f32' },
  { name: 'out', type: 'string', help: 'where to write: a folder for hf, a file for gguf and llama2c' },
  CONTEXT_FLAG,
];

/** Writes a model in another format (or the same with another dtype). */
export async function exportCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<void> {
  const flags = parseFlags('export', argv, exportFlags);
  if (flags.help) return out(helpText('export', 'Write a model as a Hugging Face folder, a GGUF file or a llama2.c checkpoint.', exportFlags));
  const modelPath = requiredString(flags, 'model', 'the model to export');
  const outPath = requiredString(flags, 'out', 'where to write the model');
  const engine = await loadEngineFromFiles({ model: modelPath, tokenizer: optionalString(flags, 'tokenizer'), ...contextFlag(flags) });
  const model = engine.exportModel();
  const format = formatFlag(flags, engine);
  const dtype = optionalString(flags, 'dtype') ?? defaultDtype(model, format);
  const files = modelFiles(model, { format, dtype });
  writeModel(outPath, files, '--out');
  err(loadedLine(engine, modelPath));
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
