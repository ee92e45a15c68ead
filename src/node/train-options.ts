// The options of `remax train`: one table gives each option's flag (also its key in a --config JSON file), its type,
// default and help, so the flags, the config file and --help never disagree.
import { RemaxInputError, preview } from '../core/errors';
import type { FlagSpec, Flags } from './args';
import { numberFlag } from './args';
import { LORA_DEFAULTS, LORA_FLAG_HELP } from './lora';
import { QUANTIZE_HELP } from './model-io';

export interface TrainOption {
  name: string;
  kind: 'string' | 'number' | 'integer' | 'boolean';
  default?: string | number | boolean;
  /** What --help shows when the default is not a plain value. */
  defaultText?: string;
  help: string;
  /** Lower bound (numbers). */
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** A number option that also takes the word "auto". */
  auto?: boolean;
}

export const TRAIN_OPTIONS: TrainOption[] = [
  { name: 'config', kind: 'string', help: 'JSON file whose keys are these flag names (flags given on the command line win)' },
  { name: 'model', kind: 'string', help: 'the starting policy: a Hugging Face folder (or its config.json), a .gguf file or a llama2.c checkpoint; the run saves it in the same format', defaultText: 'the built-in default task model' },
  { name: 'tokenizer', kind: 'string', help: 'tokenizer.json, tokenizer.bin or .gguf of the model', defaultText: "the model's own (the default task's tokenizer)" },
  { name: 'context', kind: 'integer', min: 2, help: 'context length to plan for (Hugging Face and GGUF models)', defaultText: "2048, at most the model's" },
  { name: 'prompts', kind: 'string', help: 'training prompts, JSONL: {"prompt": "...", ...meta} or {"messages": [{"role": "user", "content": "..."}], ...meta} per line', defaultText: 'the default task prompts' },
  { name: 'chat-template', kind: 'string', help: 'Jinja chat template file for "messages" prompts', defaultText: "the tokenizer's" },
  { name: 'no-chat-template', kind: 'boolean', help: 'send "messages" prompts as plain text (their contents, one per line) instead of through the chat template' },
  { name: 'eval-prompts', kind: 'string', help: 'held-out prompts for periodic greedy evaluation (JSONL)', defaultText: 'none (the default task: its eval set)' },
  { name: 'reward', kind: 'string', help: 'reward: a .ts/.js module (default export (samples) => number[]) or a built-in name', defaultText: 'exact-match' },
  { name: 'reward-url', kind: 'string', help: 'reward server (instead of --reward): POST {"samples":[...]} → {"rewards":[...]}, or see --reward-protocol' },
  { name: 'reward-protocol', kind: 'string', choices: ['remax', 'openrlhf'], help: 'wire format of --reward-url: remax {"samples":[...]}, or openrlhf {"query","prompts","labels"} (OpenRLHF\'s remote reward servers; labels from each prompt line\'s "label")', default: 'remax' },
  { name: 'reward-model', kind: 'string', help: 'score responses with a reward model: a remax rm run folder or a reward model (…ForSequenceClassification folder, llama2.c checkpoint with its .score); with --reward too, the weighted sum (--reward-weights)' },
  { name: 'reward-normalize', kind: 'boolean', help: 'normalise the reward model\'s scores by their running mean and standard deviation (kept in checkpoints)' },
  { name: 'reward-weights', kind: 'string', help: 'weights of --reward and --reward-model in their sum, comma-separated', default: '1,1' },
  { name: 'reward-timeout', kind: 'number', min: 1, max: 2147483647, help: 'milliseconds per reward call', default: 30000 },
  { name: 'reward-retries', kind: 'integer', min: 0, max: 100, help: 'retries of a failed reward server request', default: 2 },
  { name: 'reward-max-bytes', kind: 'integer', min: 1, help: 'largest reward server answer, in bytes: a longer one fails the call', default: 64 * 1024 * 1024 },
  { name: 'reward-concurrency', kind: 'integer', min: 1, help: 'reward calls in flight at once', default: 8 },
  { name: 'on-reward-error', kind: 'string', choices: ['abort', 'skip', 'zero'], help: 'a reward that throws, is not finite, has the wrong count or times out', default: 'abort' },
  { name: 'estimator', kind: 'string', choices: ['remax', 'reinforce', 'reinforce-ema', 'rloo', 'grpo', 'ppo'], help: 'advantage estimator (ppo: a critic, GAE and clipped updates, see the --ppo-… and --critic-… flags)', default: 'remax' },
  { name: 'ppo-epochs', kind: 'integer', min: 1, max: 1000, help: 'ppo: passes over each step\'s rollouts', default: 1 },
  { name: 'ppo-minibatches', kind: 'integer', min: 1, max: 1048576, help: 'ppo: minibatches per pass, each one optimizer step of the policy and of the critic', default: 1 },
  { name: 'ppo-clip', kind: 'number', min: 0, help: 'ppo: ε of the clipped ratio', default: 0.2 },
  { name: 'value-clip', kind: 'number', min: 0, help: 'ppo: the critic\'s new values are clipped to its rollout values ± this in the value loss', default: 0.2 },
  { name: 'vf-coef', kind: 'number', min: 0, help: 'ppo: scale of the critic\'s gradient (it has its own AdamW: this acts through --clip-norm only)', default: 1 },
  { name: 'gae-lambda', kind: 'number', min: 0, max: 1, help: 'ppo: λ of the generalised advantage estimate (γ is --gamma)', default: 0.95 },
  { name: 'critic-lr', kind: 'number', min: 0, help: 'ppo: the critic\'s peak learning rate (on the --lr-schedule)', defaultText: '--lr' },
  { name: 'critic-from', kind: 'string', choices: ['reward-model', 'policy'], help: 'ppo: start the critic from the reward model (with its head) or from the policy with a fresh scalar head', defaultText: 'reward-model with --reward-model, else policy' },
  { name: 'critic-model', kind: 'string', help: 'ppo: start the critic from this model (a reward model, or a causal LM given a fresh head) instead of --critic-from' },
  { name: 'samples-per-prompt', kind: 'integer', min: 1, max: 255, help: 'sampled responses per prompt (rloo and grpo need ≥ 2)', default: 1 },
  { name: 'batch', kind: 'integer', min: 1, max: 4096, help: 'prompts per step', default: 16 },
  { name: 'steps', kind: 'integer', min: 1, help: 'optimizer steps in the whole run', default: 150 },
  { name: 'lr', kind: 'number', min: 0, help: 'peak learning rate', default: 3e-4 },
  { name: 'lr-schedule', kind: 'string', choices: ['constant', 'linear', 'cosine'], help: 'learning-rate schedule', default: 'constant' },
  { name: 'warmup-steps', kind: 'integer', min: 0, help: 'linear warm-up steps', default: 0 },
  { name: 'min-lr', kind: 'number', min: 0, help: 'floor of the linear and cosine decays', defaultText: 'lr/10' },
  { name: 'weight-decay', kind: 'number', min: 0, help: 'AdamW decoupled weight decay', default: 0 },
  { name: 'beta1', kind: 'number', min: 0, max: 0.999999, help: 'AdamW β1', default: 0.9 },
  { name: 'beta2', kind: 'number', min: 0, max: 0.999999, help: 'AdamW β2', default: 0.95 },
  { name: 'clip-norm', kind: 'number', min: 0, help: 'clip the global gradient norm; 0 = off', default: 1 },
  { name: 'kl-coef', kind: 'number', min: 0, help: 'β of the per-token KL penalty to the starting policy; 0 = off', default: 0.05 },
  { name: 'reference-dtype', kind: 'string', choices: ['auto', 'bf16', 'f16', 'f32'], help: 'how the KL reference keeps its weights: as stored (lossless), rounded to bf16, what is not stored compact rounded to IEEE half (f16), or float32', default: 'auto' },
  { name: 'weights-dtype', kind: 'string', choices: ['auto', 'f32', 'bf16', 'f16', 'q8_0', 'q4_k'], help: 'with LoRA: how the frozen base keeps its weights (and so its KL reference): as stored (lossless), float32, rounded to bf16, f16 (what is stored compact stays so, every other matrix — e.g. GGUF IQ2_XXS, Q2_K, Q5_K — rounded to IEEE half), or q8_0 / q4_k (as --quantize); without LoRA the whole model trains in float32', defaultText: 'auto' },
  { name: 'quantize', kind: 'string', choices: ['q8_0', 'q4_k'], help: `with LoRA: ${QUANTIZE_HELP}` },
  { name: 'gamma', kind: 'number', min: 0, max: 1, help: 'discount of the per-token returns', default: 1 },
  { name: 'advantage-clip', kind: 'number', min: 0, help: 'clip advantages to [−c, c]', default: 5 },
  { name: 'loss-aggregation', kind: 'string', choices: ['token-mean', 'sequence-sum'], help: 'token mean over the batch, or per-sequence sums averaged', default: 'token-mean' },
  { name: 'temperature', kind: 'number', min: 0, help: 'sampling temperature of the sampled responses', default: 1 },
  { name: 'top-p', kind: 'number', min: 0, max: 1, help: 'nucleus sampling mass; 1 = off', default: 0.9 },
  { name: 'top-k', kind: 'integer', min: 0, help: 'keep the k most likely tokens; 0 = off', default: 0 },
  { name: 'max-new-tokens', kind: 'integer', min: 1, help: 'longest response', default: 64 },
  { name: 'stop-ids', kind: 'string', help: 'token ids that end a response, comma-separated (kept in it), or none', defaultText: "the model's end tokens (llama2.c: 1,2)" },
  { name: 'stop', kind: 'string', help: 'a string that ends a response (the text before it is the response)' },
  { name: 'ema-decay', kind: 'number', min: 0, max: 1, help: 'moving-average decay of the reinforce-ema baseline', default: 0.9 },
  { name: 'seed', kind: 'integer', min: 0, max: 16777215, help: 'seed of the prompt order and of every sampled token', default: 0 },
  { name: 'out', kind: 'string', help: 'run folder: checkpoints, metrics.jsonl, samples.jsonl, config.json', default: 'remax-run' },
  { name: 'resume', kind: 'string', help: 'continue the run saved in this folder (its config.json gives the options; flags given override them and are saved)' },
  { name: 'overwrite', kind: 'boolean', help: 'start afresh in an --out folder that holds a run (its files are removed first); without it such a folder is refused' },
  { name: 'accept-changed-inputs', kind: 'boolean', help: 'with --resume: go on although the prompts, tokenizer, reward or chat template changed since the run started' },
  { name: 'checkpoint-every', kind: 'integer', min: 0, help: 'write a checkpoint every N steps (and always at the end); 0 = only at the end', default: 50 },
  { name: 'eval-every', kind: 'integer', min: 0, help: 'evaluate on --eval-prompts every N steps; 0 = never', default: 25 },
  { name: 'eval-size', kind: 'integer', min: 1, help: 'held-out prompts per evaluation', default: 100 },
  { name: 'sample-every', kind: 'integer', min: 0, help: 'write a few (prompt, completion, reward) rows to samples.jsonl every N steps; 0 = never', default: 10 },
  { name: 'stop-at', kind: 'integer', min: 1, help: 'stop after this step and save, as if interrupted (resume with --resume)', defaultText: '--steps' },
  { name: 'threads', kind: 'integer', min: 1, max: 256, auto: true, default: 1, help: 'threads whose engines share each step (N − 1 helper workers), or auto = every core. Decoding is exact; gradients are summed per thread, so a run replays with the same seed and thread count' },
  { name: 'lora-rank', kind: 'integer', min: 1, help: `${LORA_FLAG_HELP['lora-rank']}: the run folder's adapter/; the KL reference is the base model` },
  { name: 'lora-alpha', kind: 'number', min: 0, help: LORA_FLAG_HELP['lora-alpha'], defaultText: LORA_DEFAULTS['lora-alpha'] },
  { name: 'lora-targets', kind: 'string', help: LORA_FLAG_HELP['lora-targets'], defaultText: LORA_DEFAULTS['lora-targets'] },
  { name: 'lora-dropout', kind: 'number', min: 0, max: 1, help: LORA_FLAG_HELP['lora-dropout'], defaultText: LORA_DEFAULTS['lora-dropout'] },
  { name: 'adapter', kind: 'string', help: LORA_FLAG_HELP.adapter },
  { name: 'activation-checkpointing', kind: 'boolean', help: 'recompute activations layer by layer in the backward pass: less memory for one more forward pass of the layers (15M: 534 → 416 MiB, about 8 % slower)' },
  { name: 'dry-run', kind: 'boolean', help: 'print the memory plan of every engine (policy, reference, reward model, critic, each helper thread), part by part, and exit without training (a Hugging Face model is planned from its config.json alone)' },
  { name: 'max-memory', kind: 'string', help: 'refuse, before allocating, a run whose engines need more than this in all (e.g. 3GiB, 2500MiB); each engine is also held to the 4 GiB of one WebAssembly instance', defaultText: 'no cap' },
  { name: 'truncate', kind: 'boolean', help: 'keep the last tokens of prompts too long for the context instead of stopping' },
  { name: 'quiet', kind: 'boolean', help: 'no progress output (metrics are still written)' },
];

export type TrainValues = Record<string, string | number | boolean | undefined>;

export const trainFlagSpecs = (): FlagSpec[] => TRAIN_OPTIONS.map((o) => ({
  name: o.name, type: o.kind === 'boolean' ? 'boolean' : 'string', help: o.help + (o.choices ? ` (${o.choices.join(' | ')})` : ''),
  default: o.defaultText ?? (o.default === undefined ? undefined : String(o.default)),
}));

/** Values from a config object (keys = flag names), overridden by the command-line flags; defaults where absent. */
export function resolveTrainOptions(flags: Flags, config: Record<string, unknown>, configSource: string): TrainValues {
  const known = new Set(TRAIN_OPTIONS.map((o) => o.name));
  for (const key of Object.keys(config)) {
    if (!known.has(key)) throw new RemaxInputError(`${configSource}: unknown option "${key}"; the options are the flag names of remax train --help`);
  }
  const values: TrainValues = {};
  for (const o of TRAIN_OPTIONS) {
    const fromFlag = flags[o.name];
    const fromConfig = config[o.name];
    if (fromFlag !== undefined) values[o.name] = parseValue(o, fromFlag, `--${o.name}`);
    else if (fromConfig !== undefined) values[o.name] = parseValue(o, fromConfig, `${configSource}: "${o.name}"`);
    else values[o.name] = o.default;
  }
  return values;
}

function parseValue(o: TrainOption, raw: unknown, where: string): string | number | boolean {
  if (o.kind === 'boolean') {
    if (typeof raw !== 'boolean') throw new RemaxInputError(`${where} must be true or false, got ${preview(raw)}`);
    return raw;
  }
  if (o.kind === 'string') {
    if (typeof raw !== 'string' || raw === '') throw new RemaxInputError(`${where} must be a non-empty string, got ${preview(raw)}`);
    if (o.choices && !o.choices.includes(raw)) throw new RemaxInputError(`${where} must be one of ${o.choices.join(', ')}, got "${raw}"`);
    return raw;
  }
  if (o.auto && raw === 'auto') return raw;
  const text = typeof raw === 'number' ? String(raw) : raw;
  if (typeof text !== 'string') throw new RemaxInputError(`${where} must be a number, got ${preview(raw)}`);
  return numberFlag({ [o.name]: text }, o.name, 0, {
    integer: o.kind === 'integer', min: o.min, max: o.max, minExclusive: ['lr', 'reward-timeout', 'lora-alpha', 'critic-lr', 'ppo-clip', 'value-clip', 'vf-coef'].includes(o.name), orWord: o.auto ? 'auto' : undefined,
  }, where);
}
