import type { FlagSpec } from '../args';
import { buildFlag } from '../args';
import { parseFlags, helpText, requiredString, optionalString, numberFlag, idListFlag } from '../args';
import { loadEngineFromFiles } from '../load';
import { startHelperWorkers, threadsFlag } from '../helper-workers';
import { RemaxInputError } from '../../core/errors';
import { PolicyGroup } from '../../core/parallel/policy-group';
import type { Generation } from '../../core/engine';

export const generateFlags: FlagSpec[] = [
  { name: 'model', type: 'string', help: 'llama2.c checkpoint (.bin)' },
  { name: 'tokenizer', type: 'string', help: 'llama2.c tokenizer.bin (needed for --prompt and for text output)' },
  { name: 'prompt', type: 'string', help: 'prompt text (BOS is added)' },
  { name: 'prompt-ids', type: 'string', help: 'prompt token ids, comma-separated, BOS included (e.g. 1,429,479)' },
  { name: 'max-new-tokens', type: 'string', help: 'new tokens per sequence, at most up to the context', default: '256' },
  { name: 'temperature', type: 'string', help: 'sampling temperature; 0 = greedy', default: '1.0' },
  { name: 'top-k', type: 'string', help: 'keep the k most likely tokens; 0 = off', default: '0' },
  { name: 'top-p', type: 'string', help: 'nucleus sampling mass; 1 = off', default: '0.9' },
  { name: 'seed', type: 'string', help: 'sampler seed; sequence i of the batch uses stream (seed, i)', default: '0' },
  { name: 'batch', type: 'string', help: 'number of sequences decoded together from the same prompt', default: '1' },
  { name: 'threads', type: 'string', help: 'threads that share the batch (N − 1 helper workers), or auto = every core; the tokens are the same on any number', default: '1' },
  { name: 'eos', type: 'string', help: 'stop token id, or "none" to always run to --max-new-tokens', default: '2' },
  { name: 'build', type: 'string', help: 'kernel build: auto, simd or relaxed-simd', default: 'auto' },
  { name: 'json', type: 'boolean', help: 'print one JSON object per sequence' },
];

export async function generateCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<void> {
  const flags = parseFlags('generate', argv, generateFlags);
  if (flags.help) return out(helpText('generate', 'Generate text with a llama2.c model, batched, in WASM.', generateFlags));
  const model = requiredString(flags, 'model', 'the llama2.c checkpoint to generate with');
  const tokenizerPath = optionalString(flags, 'tokenizer');
  const promptText = optionalString(flags, 'prompt');
  const promptIdsFlag = idListFlag(flags, 'prompt-ids');
  if ((promptText === undefined) === (promptIdsFlag === undefined)) {
    throw new RemaxInputError('give exactly one of --prompt TEXT or --prompt-ids 1,2,3');
  }
  if (promptText !== undefined && tokenizerPath === undefined) {
    throw new RemaxInputError('--prompt needs --tokenizer to encode the text (or pass token ids with --prompt-ids)');
  }
  const maxNewTokens = numberFlag(flags, 'max-new-tokens', 256, { integer: true, min: 0 });
  const temperature = numberFlag(flags, 'temperature', 1, { min: 0 });
  const topK = numberFlag(flags, 'top-k', 0, { integer: true, min: 0 });
  const topP = numberFlag(flags, 'top-p', 0.9, { min: 0, minExclusive: true, max: 1 });
  const seed = numberFlag(flags, 'seed', 0, { integer: true, min: 0 });
  const batch = numberFlag(flags, 'batch', 1, { integer: true, min: 1, max: 4096 });
  const eosRaw = optionalString(flags, 'eos');
  const eosId = eosRaw === 'none' ? null : numberFlag(flags, 'eos', 2, { integer: true, min: 0 });
  const build = buildFlag(flags);
  const threads = threadsFlag(flags);

  const engine = await loadEngineFromFiles({ model, tokenizer: tokenizerPath, build, maxBatch: batch });
  if (eosId !== null && eosId >= engine.config.vocabSize) {
    throw new RemaxInputError(`--eos ${eosId} is outside the vocabulary of ${model} (size ${engine.config.vocabSize})`);
  }
  const promptIds = promptIdsFlag ?? engine.encode(promptText!);
  // --threads: helper engines decode their share of the batch on worker threads.
  const group = new PolicyGroup(engine, undefined, startHelperWorkers(Math.min(threads, batch)));
  let results: Generation[], seconds: number;
  try {
    await group.start(batch, null);
    const started = performance.now();
    results = await group.generate(Array.from({ length: batch }, () => ({ promptIds })), { maxNewTokens, temperature, topK, topP, seed, eosId });
    seconds = (performance.now() - started) / 1000;
  } finally {
    group.close();
  }
  const newTokens = results.reduce((sum, r) => sum + r.ids.length, 0);
  const tokensPerSecond = newTokens / seconds;

  for (const r of results) {
    const text = engine.tokenizer ? engine.decode(r.ids, r.promptIds) : null;
    if (flags.json) {
      out(JSON.stringify({ prompt_ids: r.promptIds, ids: r.ids, text, tokens_per_second: tokensPerSecond }));
    } else if (text !== null) {
      out((promptText ?? engine.tokenizer!.decode(r.promptIds)) + text);
    } else {
      out(r.ids.join(' '));
    }
  }
  if (!flags.json) {
    err(`${newTokens} new tokens in ${seconds.toFixed(3)} s: ${tokensPerSecond.toFixed(1)} tokens/s ` +
      `(batch ${batch}, ${group.threads} thread${group.threads === 1 ? '' : 's'}, ${engine.build} build, ${(engine.memoryBytes / 2 ** 20).toFixed(1)} MiB of WASM memory)`);
  }
}
