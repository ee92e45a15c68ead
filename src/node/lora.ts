// LoRA for the commands: the flags (--lora-rank, --lora-alpha, --lora-targets, --lora-dropout, --adapter) and PEFT
// adapter folders on disk (core/formats/peft.ts has the format).
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ModelConfig } from '../core/config';
import { RemaxInputError } from '../core/errors';
import { ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, parsePeftAdapter } from '../core/formats/peft';
import { LORA_TARGETS, parseLoraTargets, type LoraSettings, type LoraWeights } from '../core/lora';
import { readInputFile } from './files';

export const LORA_FLAG_HELP = {
  'lora-rank': 'train LoRA adapters of this rank on the projections instead of every weight (the weights stay frozen; the run saves a PEFT adapter folder)',
  'lora-alpha': 'LoRA alpha: the adapters\' output is scaled by alpha/rank',
  'lora-targets': `projections with an adapter, comma-separated: ${LORA_TARGETS.join(',')} (PEFT's q_proj etc. too)`,
  'lora-dropout': 'dropout on the adapters\' input in training (PEFT\'s lora_dropout): seeded by --seed, the step and the example, so a run replays exactly',
  adapter: 'a PEFT LoRA adapter folder (adapter_config.json and adapter_model.safetensors) to apply (and, training, to continue from: its r, lora_alpha and target_modules)',
} as const;

export const LORA_DEFAULTS = { 'lora-alpha': 'the rank', 'lora-targets': LORA_TARGETS.join(','), 'lora-dropout': '0' } as const;

/** Adapters to create or load: settings and, from a folder, their values. */
export interface LoraChoice {
  settings: LoraSettings;
  weights?: LoraWeights;
}

/** The LoRA settings of the flags' values (already numbers where numeric), or undefined without --lora-rank. */
export function loraSettingsFrom(values: { rank?: number; alpha?: number; targets?: string; dropout?: number }): LoraSettings | undefined {
  if (values.rank === undefined) {
    const stray = (['alpha', 'targets', 'dropout'] as const).find((k) => values[k] !== undefined);
    if (stray) throw new RemaxInputError(`--lora-${stray} needs --lora-rank (the adapters' rank): give it, or drop --lora-${stray}`);
    return undefined;
  }
  return {
    rank: values.rank, alpha: values.alpha ?? values.rank,
    targets: parseLoraTargets(values.targets ?? LORA_TARGETS.join(',')), dropout: values.dropout ?? 0,
  };
}

/** A folder holding a PEFT adapter. */
export const isAdapterFolder = (dir: string): boolean => existsSync(path.join(dir, ADAPTER_CONFIG_NAME));

/** The PEFT adapter in folder `dir`, for a model of `config`. */
export function readAdapterFolder(dir: string, config: ModelConfig, flag: string): Required<LoraChoice> {
  if (!isAdapterFolder(dir)) {
    throw new RemaxInputError(`${flag} ${dir}: no ${ADAPTER_CONFIG_NAME} there; give a PEFT LoRA adapter folder (save_pretrained's, or a LoRA run's)`);
  }
  const weightsFile = path.join(dir, ADAPTER_WEIGHTS_NAME);
  if (!existsSync(weightsFile)) {
    throw new RemaxInputError(`${flag} ${dir}: no ${ADAPTER_WEIGHTS_NAME} beside its ${ADAPTER_CONFIG_NAME} (an adapter_model.bin is pickle: save it as safetensors)`);
  }
  return parsePeftAdapter({ config: readInputFile(path.join(dir, ADAPTER_CONFIG_NAME), flag), weights: readInputFile(weightsFile, flag) }, config, dir);
}

/** --adapter and the --lora-* flags together: the folder's settings are the adapter's own. */
export function chooseLora(adapterDir: string | undefined, settings: LoraSettings | undefined, config: ModelConfig, flag = '--adapter'): LoraChoice | undefined {
  if (adapterDir === undefined) return settings ? { settings } : undefined;
  if (settings) throw new RemaxInputError(`${flag} ${adapterDir} brings its own r, lora_alpha and target_modules: drop --lora-rank and the other --lora-* flags`);
  return readAdapterFolder(adapterDir, config, flag);
}

export const LORA_FLAG_NAMES = ['lora-rank', 'lora-alpha', 'lora-targets', 'lora-dropout', 'adapter'] as const;

/**
 * A resumed run keeps its LoRA settings (its checkpoint holds adapters of them, or the whole model): a --lora-* or
 * --adapter flag that differs from the saved one is refused rather than silently ignored.
 */
export function refuseChangedLora(given: Record<string, unknown>, saved: Record<string, unknown>, where: string): void {
  for (const key of LORA_FLAG_NAMES) {
    const now = given[key], was = saved[key];
    if (now === undefined) continue;
    // Saved values may be numbers (train's config.json) or the flags' strings (sft's state).
    const same = was !== undefined && (key === 'adapter' ? path.resolve(String(now)) === path.resolve(String(was))
      : String(now) === String(was) || Number(now) === Number(was));
    if (!same) {
      throw new RemaxInputError(`--${key} ${String(now)}: the run resumed from ${where} ${was === undefined ? 'has no such setting' : `was started with --${key} ${String(was)}`}; ` +
        `a run keeps its LoRA settings: drop --${key}, or start a new run`);
    }
  }
}

/**
 * --weights-dtype says how a LoRA run keeps its frozen base; without LoRA the whole model trains, in float32: any
 * other value would be silently ignored, so it is refused (train and sft).
 */
export function refuseWeightsDtypeWithoutLora(dtype: string | undefined, lora: boolean): void {
  if (dtype === undefined || dtype === 'f32' || lora) return;
  const flag = dtype === 'q8_0' || dtype === 'q4_k' ? `--quantize ${dtype} (or --weights-dtype ${dtype})` : `--weights-dtype ${dtype}`;
  throw new RemaxInputError(`${flag} sets how a LoRA run keeps its frozen base model, but this run has no LoRA: ` +
    `the whole model trains, in float32. Add --lora-rank 8 (adapters on the frozen base), or drop ${flag.split(' ')[0]}`);
}
