// --dry-run and --max-memory of remax train and sft: the run's engines planned from the model's shape
// (core/memory-report.ts) before anything is allocated; a run that cannot fit is refused in one line that names the
// settings which would make it fit (each tried in the plan).
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ModelConfig } from '../core/config';
import { RemaxInputError } from '../core/errors';
import { parseHfConfig } from '../core/formats/hf-config';
import { instantiateKernels } from '../core/kernels';
import type { LoraSettings } from '../core/lora';
import { formatBytes, formatRunMemory, parseMemorySize, planRunMemory, type EngineMemorySpec, type RunMemory } from '../core/memory-report';
import type { TrainingOptions } from '../core/training';
import { chooseWeightTypes, type WeightsDtype, type WeightTypes } from '../core/weight-types';
import { wasmBuilds } from '../wasm-builds';
import { loadModelFromPath } from './model-io';
import { loraSettingsFrom } from './lora';

/** A model's shape and how an engine would keep its matrices for a weights dtype. */
export interface PlannedModel {
  config: ModelConfig;
  types(dtype: WeightsDtype): WeightTypes;
}

/**
 * The model at `input` for planning: a Hugging Face folder (or its config.json, by any name) from config.json alone, its stored
 * dtype taken from torch_dtype (no weights read: a Qwen2.5-0.5B plans without its 1 GB of safetensors); any other
 * format is loaded.
 */
export async function planModelFrom(input: string, flag: string, options: { context?: number } = {}): Promise<PlannedModel> {
  const configPath = input.endsWith('.json') && !input.endsWith('.safetensors.index.json') ? input // a config.json by any name (bench/configs/)
    : existsSync(input) && statSync(input).isDirectory() ? path.join(input, 'config.json') : undefined;
  if (configPath && existsSync(configPath)) {
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new RemaxInputError(`${flag} ${configPath} is not JSON: ${(error as Error).message}`);
    }
    const { config } = parseHfConfig(json, { ...options, source: configPath });
    const stored = json.torch_dtype === 'bfloat16' ? 'BF16' : json.torch_dtype === 'float16' ? 'F16' : undefined;
    return {
      config,
      types: (dtype) => {
        const as = dtype === 'bf16' ? 'BF16' : dtype === 'auto' ? stored : dtype === 'f16' ? stored ?? 'F16' : undefined;
        const matrices = Object.keys(chooseWeightTypes(config, {}, undefined, 'bf16'));
        return as ? Object.fromEntries(matrices.map((n) => [n, as])) as WeightTypes : {};
      },
    };
  }
  const model = await loadModelFromPath(input, flag, options);
  return { config: model.config, types: (dtype) => chooseWeightTypes(model.config, model.weights, model.stored, dtype) };
}

/** What sizes a train or sft run's engines (the settings --dry-run and the refusal can change). */
export interface RunMemorySettings {
  command: 'train' | 'sft';
  policy: PlannedModel;
  lora?: LoraSettings;
  /** train: the KL reference (none without a KL penalty, none of its own with LoRA: the base is the policy). */
  reference?: { model: PlannedModel; dtype: WeightsDtype };
  rewardModel?: PlannedModel;
  critic?: PlannedModel;
  batch: number;
  samplesPerPrompt: number;
  /** ReMax decodes a greedy response per prompt too. */
  greedy: boolean;
  maxNewTokens: number;
  /** Longest prompt in tokens; unknown (--dry-run from the config alone): prompts filling the context. */
  longestPrompt?: number;
  activationCheckpointing: boolean;
  threads: number;
  /** LoRA: how the policy's frozen base keeps its weights (default auto: as stored). */
  weightsDtype?: WeightsDtype;
}

/** rl/trainer.ts: one micro-batch for a step's responses up to this many tokens. */
const MICRO_BATCH_TOKENS = 1024;

/** The engines of the run, as the trainers and the helper threads create them. */
export function runEngineSpecs(s: RunMemorySettings): EngineMemorySpec[] {
  const c = s.policy.config, seqLen = c.seqLen;
  const specs: EngineMemorySpec[] = [];
  // A LoRA policy keeps its frozen base as stored; a fully trained one is widened to float32 (its types ignored).
  const policyTypes = s.lora ? { types: s.policy.types(s.weightsDtype ?? 'auto') } : {};
  if (s.command === 'sft') {
    const training: TrainingOptions = { maxSeqs: Math.min(s.batch, 16), activationCheckpointing: s.activationCheckpointing };
    for (let t = 0; t < s.threads; t++) {
      specs.push({ role: 'policy', thread: t, config: c, ...policyTypes, lora: s.lora, maxSeqs: 1, training: t === 0 ? training : { ...training, optimizerState: false } });
    }
    return specs;
  }
  const responses = s.batch * s.samplesPerPrompt, unit = s.samplesPerPrompt + (s.greedy ? 1 : 0);
  const decoded = s.batch * unit;
  const longest = Math.min(seqLen, (s.longestPrompt ?? seqLen) + s.maxNewTokens);
  const training: TrainingOptions = {
    maxSeqs: Math.min(16, responses), maxTokens: Math.max(seqLen, Math.min(responses * longest, MICRO_BATCH_TOKENS)),
    activationCheckpointing: s.activationCheckpointing,
  };
  // The main engine decodes its share of the step's sequences (the helpers split them by cost: one prompt's more, at worst).
  const share = s.threads === 1 ? decoded : Math.min(decoded, Math.ceil(decoded / s.threads) + unit);
  specs.push({ role: 'policy', thread: 0, config: c, ...policyTypes, lora: s.lora, maxSeqs: share, training });
  const ref = s.reference;
  if (ref) specs.push({ role: 'reference', thread: 0, config: ref.model.config, types: ref.model.types(ref.dtype), maxSeqs: responses });
  if (s.rewardModel) specs.push({ role: 'reward model', thread: 0, config: s.rewardModel.config, types: s.rewardModel.types('auto'), maxSeqs: 16 });
  if (s.critic) specs.push({ role: 'critic', thread: 0, config: { ...s.critic.config, scoreHead: true, sharedClassifier: true }, maxSeqs: responses, training });
  // Each helper thread: its own policy (gradients only: the main engine steps the optimizer) and reference, both
  // planned for the whole step's sequences (PolicyGroup.start), and PPO's critic (gradients only too).
  for (let t = 1; t < s.threads; t++) {
    specs.push({ role: 'policy', thread: t, config: c, ...policyTypes, lora: s.lora, maxSeqs: decoded, training: { ...training, optimizerState: false } });
    if (ref) specs.push({ role: 'reference', thread: t, config: ref.model.config, types: ref.model.types(ref.dtype), maxSeqs: decoded });
    if (s.critic) specs.push({ role: 'critic', thread: t, config: { ...s.critic.config, scoreHead: true, sharedClassifier: true }, maxSeqs: responses, training: { ...training, optimizerState: false } });
  }
  return specs;
}

let heapBase: number | undefined;
/** Where the kernels' static data ends (the module is instantiated once, with its 64 KiB of initial memory). */
export async function kernelsHeapBase(): Promise<number> {
  heapBase ??= (await instantiateKernels(wasmBuilds, 'auto')).exports.heapBase();
  return heapBase;
}

export async function planRun(s: RunMemorySettings): Promise<RunMemory> {
  return planRunMemory(runEngineSpecs(s), await kernelsHeapBase());
}

/** --max-memory's bytes, or undefined when not given. */
export function maxMemoryFlag(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const bytes = typeof value === 'string' ? parseMemorySize(value) : typeof value === 'number' && value > 0 ? value : undefined;
  if (bytes === undefined) throw new RemaxInputError(`--max-memory must be a size such as 3GiB, 2500MiB or 800M, got "${String(value)}"`);
  return bytes;
}

const fits = (run: RunMemory, maxMemory: number | undefined) => !run.overInstance && (maxMemory === undefined || run.total <= maxMemory);

/** Settings tried alone but left out of the combined changes: alternatives to --weights-dtype f16 (bf16: as small; q4_k: smaller, lossier). */
const ALTERNATIVES = ['--weights-dtype bf16', '--quantize q4_k'];

/**
 * Refuses a run whose plan does not fit (an engine over one instance's 4 GiB, or the total over --max-memory), in one
 * line: what it needs and which changed settings fit, each tried in the plan.
 */
export async function checkRunMemory(s: RunMemorySettings, maxMemory: number | undefined): Promise<RunMemory> {
  const run = await planRun(s);
  if (fits(run, maxMemory)) return run;
  const tries: [string, Partial<RunMemorySettings>][] = [];
  if (!s.activationCheckpointing) tries.push(['--activation-checkpointing', { activationCheckpointing: true }]);
  if (!s.lora) tries.push(['--lora-rank 16', { lora: loraSettingsFrom({ rank: 16 }), reference: undefined }]);
  // The frozen base of a LoRA run in 2 bytes a value (a model whose float32 widening is what does not fit); alone it
  // helps only a LoRA run, after --lora-rank in the combined changes.
  // (--quantize q4_k: a lossy alternative, about 4.5 bits a value.)
  const wideBase = s.weightsDtype !== 'f16' && s.weightsDtype !== 'bf16' && s.weightsDtype !== 'q8_0' && s.weightsDtype !== 'q4_k';
  if (wideBase) tries.push(['--weights-dtype f16', { weightsDtype: 'f16' }], ['--weights-dtype bf16', { weightsDtype: 'bf16' }]);
  if (s.lora && s.weightsDtype !== 'q4_k') tries.push(['--quantize q4_k', { weightsDtype: 'q4_k' }]);
  if (s.batch > 1) tries.push([`--batch ${Math.ceil(s.batch / 2)}`, { batch: Math.ceil(s.batch / 2) }]);
  if (s.command === 'train' && s.maxNewTokens > 1) tries.push([`--max-new-tokens ${Math.ceil(s.maxNewTokens / 2)}`, { maxNewTokens: Math.ceil(s.maxNewTokens / 2) }]);
  if (s.reference && s.reference.dtype !== 'bf16') tries.push(['--reference-dtype bf16', { reference: { ...s.reference, dtype: 'bf16' } }]);
  for (let t = s.threads - 1; t >= 1; t--) tries.push([`--threads ${t}`, { threads: t }]);
  const fitting: string[] = [];
  for (const [flag, change] of tries) {
    if (flag.startsWith('--threads') && fitting.some((f) => f.startsWith('--threads'))) continue; // the most threads that fit
    if (fits(await planRun({ ...s, ...change }), maxMemory)) fitting.push(flag);
  }
  // None alone: the changes together, in this order, up to the first set that fits.
  let combined: string[] | undefined;
  if (fitting.length === 0) {
    let changed = s;
    const used: string[] = [];
    for (const [flag, change] of tries) {
      if (flag.startsWith('--threads') || ALTERNATIVES.includes(flag)) continue;
      changed = { ...changed, ...change };
      used.push(flag);
      if (fits(await planRun(changed), maxMemory)) { combined = used; break; }
    }
    if (!combined) {
      for (let t = s.threads - 1; t >= 1 && !combined; t--) {
        if (fits(await planRun({ ...changed, threads: t }), maxMemory)) combined = [...used, `--threads ${t}`];
      }
    }
  }
  const over = run.overInstance;
  const need = over
    ? `its ${over.role} engine${over.thread ? ` on helper thread ${over.thread}` : ''} needs ${formatBytes(over.total)}, over the 4 GiB of one WebAssembly instance`
    : `its ${run.engines.length} engine(s) need ${formatBytes(run.total)}, over --max-memory ${formatBytes(maxMemory!)}`;
  const fix = fitting.length > 0 ? `it would fit with ${fitting.join(', or ')}`
    : combined ? `no one setting makes it fit, together they do: ${combined.join(' ')}`
    : `not even ${tries.map(([f]) => f).filter((f) => !ALTERNATIVES.includes(f)).join(' ')} together make it fit: use a smaller model or a shorter --context`;
  throw new RemaxInputError(`${need} (see --dry-run); ${fix}`);
}


/** --dry-run: prints the plan; 0 when it fits, else the refusal's line too and 2 (what the run would exit with). */
export async function dryRun(s: RunMemorySettings, maxMemory: number | undefined, out: (line: string) => void): Promise<number> {
  out(formatRunMemory(await planRun(s), maxMemory));
  try {
    await checkRunMemory(s, maxMemory);
  } catch (error) {
    if (!(error instanceof RemaxInputError)) throw error;
    out(`refused: ${error.message}`);
    return 2;
  }
  out(`remax ${s.command} --dry-run: fits; nothing allocated, nothing trained${s.longestPrompt === undefined && s.command === 'train' ? ' (planned for prompts that fill the context)' : ''}`);
  return 0;
}
