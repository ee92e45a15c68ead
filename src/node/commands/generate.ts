import type { FlagSpec } from '../args';
import { buildFlag } from '../args';
import { parseFlags, helpText, requiredString, optionalString, numberFlag, idListFlag } from '../args';
import { loadEngineFromFiles } from '../load';
import { LORA_FLAG_HELP } from '../lora';
import { startHelperWorkers, threadsFlag } from '../helper-workers';
import { RemaxInputError } from '../../core/errors';
import { PolicyGroup } from '../../core/parallel/policy-group';
import type { Generation, RemaxEngine } from '../../core/engine';
import { CONTEXT_FLAG, MODEL_FLAG, QUANTIZE_FLAG, WEIGHTS_DTYPE_FLAG, checkStopIds, heldWeights, contextFlag, loadedLine, parseStopIds, weightsDtypeFlag } from '../model-io';
import { chatPromptIds } from '../../core/tokenizers/chat-template';
import { findStopString } from '../../core/stop-strings';

export const generateFlags: FlagSpec[] = [
  MODEL_FLAG,
  { name: 'tokenizer', type: 'string', help: 'tokenizer.json, tokenizer.bin or .gguf (needed for --prompt and text output when the model carries none)', default: "the model's own" },
  CONTEXT_FLAG,
  { name: 'adapter', type: 'string', help: LORA_FLAG_HELP.adapter.replace(/ \(and, training.*\)$/, '') },
  { name: 'prompt', type: 'string', help: 'prompt text (with BOS when the model\'s prompts start with it)' },
  { name: 'chat', type: 'boolean', help: 'send --prompt as a user message through the chat template, with the generation prompt' },
  { name: 'prompt-ids', type: 'string', help: 'prompt token ids, comma-separated, BOS included (e.g. 1,429,479)' },
  { name: 'max-new-tokens', type: 'string', help: 'new tokens per sequence, at most up to the context', default: '256' },
  { name: 'temperature', type: 'string', help: 'sampling temperature; 0 = greedy', default: '1.0' },
  { name: 'top-k', type: 'string', help: 'keep the k most likely tokens; 0 = off', default: '0' },
  { name: 'top-p', type: 'string', help: 'nucleus sampling mass; 1 = off', default: '0.9' },
  { name: 'seed', type: 'string', help: 'sampler seed; sequence i of the batch uses stream (seed, i)', default: '0' },
  { name: 'batch', type: 'string', help: 'number of sequences decoded together from the same prompt', default: '1' },
  { name: 'threads', type: 'string', help: 'threads that share the batch (N − 1 helper workers), or auto = every core; the tokens are the same on any number', default: '1' },
  { name: 'stop-ids', type: 'string', help: 'token ids that end a sequence (kept), comma-separated, or none to always run to --max-new-tokens', default: "the model's end tokens (llama2.c: 1,2)" },
  { name: 'eos', type: 'string', help: 'one stop token id, or "none" (the older form of --stop-ids)' },
  { name: 'stop', type: 'string', help: 'a string that ends a sequence: the text is cut before it' },
  { name: 'build', type: 'string', help: 'kernel build: auto, simd or relaxed-simd', default: 'auto' },
  WEIGHTS_DTYPE_FLAG,
  QUANTIZE_FLAG,
  { name: 'json', type: 'boolean', help: 'print one JSON object per sequence' },
];

export async function generateCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<void> {
  const flags = parseFlags('generate', argv, generateFlags);
  if (flags.help) return out(helpText('generate', 'Generate text with a model (Hugging Face, GGUF or llama2.c), batched, in WASM.', generateFlags));
  const model = requiredString(flags, 'model', 'the llama2.c checkpoint to generate with');
  const tokenizerPath = optionalString(flags, 'tokenizer');
  const promptText = optionalString(flags, 'prompt');
  const promptIdsFlag = idListFlag(flags, 'prompt-ids');
  if ((promptText === undefined) === (promptIdsFlag === undefined)) {
    throw new RemaxInputError('give exactly one of --prompt TEXT or --prompt-ids 1,2,3');
  }
  const maxNewTokens = numberFlag(flags, 'max-new-tokens', 256, { integer: true, min: 0 });
  const temperature = numberFlag(flags, 'temperature', 1, { min: 0 });
  const topK = numberFlag(flags, 'top-k', 0, { integer: true, min: 0 });
  const topP = numberFlag(flags, 'top-p', 0.9, { min: 0, minExclusive: true, max: 1 });
  const seed = numberFlag(flags, 'seed', 0, { integer: true, min: 0 });
  const batch = numberFlag(flags, 'batch', 1, { integer: true, min: 1, max: 4096 });
  const stopIdsRaw = optionalString(flags, 'stop-ids') ?? optionalString(flags, 'eos');
  if (flags['stop-ids'] !== undefined && flags.eos !== undefined) throw new RemaxInputError('give --stop-ids or --eos, not both');
  const stopIds = stopIdsRaw === undefined ? undefined : parseStopIds(stopIdsRaw, flags.eos !== undefined ? '--eos' : '--stop-ids');
  const stop = optionalString(flags, 'stop');
  const build = buildFlag(flags);
  const threads = threadsFlag(flags);

  const adapter = optionalString(flags, 'adapter');
  const weightsDtype = weightsDtypeFlag(flags);
  const engine = await loadEngineFromFiles({ model, tokenizer: tokenizerPath, build, maxBatch: batch, weightsDtype, ...contextFlag(flags), ...(adapter ? { adapter } : {}) });
  checkStopIds(stopIds, engine.config.vocabSize, flags.eos !== undefined ? '--eos' : '--stop-ids');
  if (promptText !== undefined && !engine.tokenizer) throw new RemaxInputError(`--prompt needs a tokenizer: ${model} carries none, so give --tokenizer (or pass --prompt-ids)`);
  if (stop !== undefined && !engine.tokenizer) throw new RemaxInputError(`--stop needs a tokenizer: ${model} carries none, so give --tokenizer`);
  if (flags.chat && promptText === undefined) throw new RemaxInputError('--chat needs --prompt (the user message)');
  const promptIds = promptIdsFlag ?? (flags.chat
    ? chatPromptIds(engine.tokenizer!, [{ role: 'user', content: promptText! }])
    : engine.encode(promptText!));
  // --threads: helper engines decode their share of the batch on worker threads.
  const group = new PolicyGroup(engine, undefined, startHelperWorkers(Math.min(threads, batch)));
  let results: Generation[], seconds: number;
  try {
    await group.start(batch, null);
    const started = performance.now();
    results = await group.generate(Array.from({ length: batch }, () => ({ promptIds })), { maxNewTokens, temperature, topK, topP, seed, ...(stopIds ? { stopIds } : {}) });
    seconds = (performance.now() - started) / 1000;
  } finally {
    group.close();
  }
  const newTokens = results.reduce((sum, r) => sum + r.ids.length, 0);
  const tokensPerSecond = newTokens / seconds;

  for (const generated of results) {
    const { generation: r, text } = withText(engine, generated, stop);
    if (flags.json) {
      out(JSON.stringify({ prompt_ids: r.promptIds, ids: r.ids, text, tokens_per_second: tokensPerSecond }));
    } else if (text !== null) {
      out((flags.chat || promptText === undefined ? engine.tokenizer!.decode(r.promptIds) : promptText) + text);
    } else {
      out(r.ids.join(' '));
    }
  }
  if (!flags.json) {
    err(loadedLine(engine, model));
    err(`${newTokens} new tokens in ${seconds.toFixed(3)} s: ${tokensPerSecond.toFixed(1)} tokens/s ` +
      `(batch ${batch}, ${group.threads} thread${group.threads === 1 ? '' : 's'}, ${engine.build} build, ${heldWeights(engine)}, ${(engine.memoryBytes / 2 ** 20).toFixed(1)} MiB of WASM memory)`);
  }
}

/** A generation and its text, cut at the first occurrence of the stop string (the token that completed it kept, the text before it). */
function withText(engine: RemaxEngine, r: Generation, stop: string | undefined): { generation: Generation; text: string | null } {
  if (!engine.tokenizer) return { generation: r, text: null };
  const found = stop === undefined ? null : findStopString(r.ids, (ids) => engine.decode([...ids], r.promptIds), [stop]);
  if (!found) return { generation: r, text: engine.decode(r.ids, r.promptIds) };
  const ids = r.ids.slice(0, found.length);
  return { generation: { ...r, ids, ...(r.logprobs ? { logprobs: r.logprobs.slice(0, found.length) } : {}), finishReason: 'eos' }, text: found.text };
}
