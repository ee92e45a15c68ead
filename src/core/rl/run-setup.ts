import { RemaxEngine } from '../engine';
import { parseCheckpoint } from '../formats/llama2c';
import { requireInput } from '../errors';
import type { Tokenizer } from '../tokenizers/llama2c';
import { loadPrompts, type PromptRecord } from './prompts';
import type { ReMaxOptions } from './trainer';

// What `remax train` and the in-browser trainer page both build, from bytes, before a ReMax run's first step: the
// policy engine, the frozen reference (only with a KL penalty) and the prompts, tokenised against the model's context.

/** Bytes and the name errors give them (a file path, "the built-in model", …). */
export interface NamedBytes {
  bytes: Uint8Array;
  source: string;
}

export interface RunInputs {
  policy: NamedBytes;
  /** The frozen reference's weights; default: the policy's (a run that starts now). */
  reference?: NamedBytes;
  tokenizer: Tokenizer;
  prompts: NamedBytes;
  /** Held-out prompts for evaluation; the first `limit` are kept. */
  evalPrompts?: NamedBytes & { limit: number };
  /** Keep the last tokens of prompts too long for the context instead of stopping. */
  truncate?: boolean;
}

export interface RunSetup {
  policy: RemaxEngine;
  reference?: RemaxEngine;
  prompts: PromptRecord[];
  evalPrompts: PromptRecord[];
  /** The options' token budget per response (checked to leave room for a prompt in the context). */
  maxNewTokens: number;
}

export async function setUpRun(inputs: RunInputs, options: Pick<ReMaxOptions, 'maxNewTokens' | 'klCoef' | 'batchSize' | 'samplesPerPrompt'>): Promise<RunSetup> {
  const { policy: policyFile, tokenizer } = inputs;
  const checkpoint = parseCheckpoint(policyFile.bytes, policyFile.source);
  tokenizer.assertFitsModel(checkpoint.config.vocabSize, policyFile.source);
  const seqLen = checkpoint.config.seqLen;
  // A prompt is at least BOS and one token: a longer response budget could never run in this context.
  requireInput(options.maxNewTokens <= seqLen - 2, `--max-new-tokens ${options.maxNewTokens} leaves no room for a prompt in the context of ` +
    `${policyFile.source} (seq_len ${seqLen}): use at most ${seqLen - 2}`);
  const maxNewTokens = options.maxNewTokens;
  const load = (file: NamedBytes) => loadPrompts(file.bytes, file.source, tokenizer, seqLen, maxNewTokens, inputs.truncate ?? false);
  const prompts = load(inputs.prompts);
  const evalPrompts = inputs.evalPrompts ? load(inputs.evalPrompts).slice(0, inputs.evalPrompts.limit) : [];
  const policy = await RemaxEngine.create({ model: checkpoint, tokenizer, modelSource: policyFile.source });
  const referenceFile = inputs.reference ?? policyFile;
  const reference = options.klCoef > 0
    ? await RemaxEngine.create({ model: referenceFile.bytes, modelSource: referenceFile.source, maxBatch: options.batchSize * options.samplesPerPrompt })
    : undefined;
  return { policy, reference, prompts, evalPrompts, maxNewTokens };
}
