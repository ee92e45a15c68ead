import type { FlagSpec, Flags } from '../args';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseFlags, helpText, requiredString, optionalString, numberFlag } from '../args';
import { loadEngineFromFiles } from '../load';
import { appendToFile, checkOutputFolder, commitJournal, completeWrite, readInputFile } from '../files';
import { acquireLock, keepLinesUpTo, refuseSpecialPath } from '../run-folder';
import { trainingStateExtra } from '../../core/training-state';
import { withInterruptFlag } from '../interrupt';
import { threadsFlag, withHelperWorkers } from '../helper-workers';
import { loadRunState, saveEngineCheckpoint, statePath } from '../run-checkpoint';
import { CONTEXT_FLAG, contextFlag, formatFlag, loadedLine, loadModelFromPath, loadTokenizerFromPath, QUANTIZE_HELP, weightsDtypeOf } from '../model-io';
import { RemaxInputError } from '../../core/errors';
import { loadSftExamples } from '../../core/sft-data';
import { SftTrainer, type SftStep } from '../../core/sft-trainer';
import { HelperError } from '../../core/parallel/helper-client';
import { SCHEDULE_KINDS, type ScheduleKind } from '../../core/schedule';
import { LORA_DEFAULTS, LORA_FLAG_HELP, chooseLora, isAdapterFolder, loraSettingsFrom, readAdapterFolder, refuseChangedLora, refuseWeightsDtypeWithoutLora } from '../lora';
import { RemaxEngine } from '../../core/engine';
import { checkRunMemory, dryRun, maxMemoryFlag, planModelFrom, type RunMemorySettings } from '../run-memory';

export const sftFlags: FlagSpec[] = [
  { name: 'model', type: 'string', help: 'model to start from: a Hugging Face folder (or its config.json), a .gguf file or a llama2.c checkpoint (e.g. one written by remax init)' },
  { name: 'tokenizer', type: 'string', help: 'tokenizer.json, tokenizer.bin or .gguf matching the model', default: "the model's own" },
  CONTEXT_FLAG,
  { name: 'data', type: 'string', help: '.txt (documents separated by blank lines) or .jsonl ({"text"}, {"prompt","completion"} or {"messages"} per line)' },
  { name: 'out', type: 'string', help: 'checkpoint to write, in the format of --model (a folder for a Hugging Face model; the training state goes to OUT.state)' },
  { name: 'format', type: 'string', help: 'write the checkpoint as llama2c, hf (a folder) or gguf instead', default: 'the format of --model' },
  { name: 'steps', type: 'string', help: 'optimizer steps in the whole run', default: '100' },
  { name: 'batch', type: 'string', help: 'sequences per step', default: '8' },
  { name: 'seq', type: 'string', help: 'tokens per sequence (at most the model context)', default: 'the model context' },
  { name: 'lr', type: 'string', help: 'peak learning rate', default: '1e-3' },
  { name: 'lr-schedule', type: 'string', help: `learning-rate schedule: ${SCHEDULE_KINDS.join(', ')}`, default: 'cosine' },
  { name: 'warmup-steps', type: 'string', help: 'linear warm-up steps', default: '0' },
  { name: 'min-lr', type: 'string', help: 'floor of the linear and cosine decays', default: 'lr/10' },
  { name: 'weight-decay', type: 'string', help: 'AdamW decoupled weight decay (matrices and embedding only)', default: '0' },
  { name: 'beta1', type: 'string', help: 'AdamW β1', default: '0.9' },
  { name: 'beta2', type: 'string', help: 'AdamW β2', default: '0.95' },
  { name: 'clip-norm', type: 'string', help: 'clip the global gradient norm to this; 0 = off', default: '1.0' },
  { name: 'seed', type: 'string', help: 'seed of the data order', default: '0' },
  { name: 'stop-at', type: 'string', help: 'stop after this step and save, as if interrupted (resume later with --resume)', default: '--steps' },
  { name: 'checkpoint-every', type: 'string', help: 'also write the checkpoint every N steps; 0 = only at the end', default: '0' },
  { name: 'log-every', type: 'string', help: 'print a progress line every N steps', default: 'about 20 lines per run' },
  { name: 'metrics', type: 'string', help: 'append one JSON line per step (step, loss, lr, grad_norm, tokens, entropy, seconds) to this file' },
  { name: 'overwrite', type: 'boolean', help: 'start afresh although --out (or --metrics) holds an earlier run: its checkpoint is replaced and its metrics emptied' },
  { name: 'resume', type: 'string', help: 'continue the run saved at this checkpoint (its .state beside it); other flags as in that run' },
  { name: 'chat-template', type: 'string', help: 'Jinja chat template file for {"messages"} conversations', default: "the tokenizer's" },
  { name: 'no-chat-template', type: 'boolean', help: 'train {"messages"} conversations as plain text: the earlier turns as the prompt, the last reply as the completion' },
  { name: 'truncate', type: 'boolean', help: 'cut .jsonl examples longer than --seq instead of stopping with an error' },
  { name: 'threads', type: 'string', help: 'threads whose engines share each step\'s gradient (N − 1 helper workers), or auto = every core; a run replays exactly with the same seed and thread count', default: '1' },
  { name: 'lora-rank', type: 'string', help: `${LORA_FLAG_HELP['lora-rank']}: --out is that folder` },
  { name: 'lora-alpha', type: 'string', help: LORA_FLAG_HELP['lora-alpha'], default: LORA_DEFAULTS['lora-alpha'] },
  { name: 'lora-targets', type: 'string', help: LORA_FLAG_HELP['lora-targets'], default: LORA_DEFAULTS['lora-targets'] },
  { name: 'lora-dropout', type: 'string', help: LORA_FLAG_HELP['lora-dropout'], default: LORA_DEFAULTS['lora-dropout'] },
  { name: 'adapter', type: 'string', help: LORA_FLAG_HELP.adapter },
  { name: 'weights-dtype', type: 'string', help: 'with LoRA: how the frozen base keeps its weights: auto (as stored, lossless), f32, bf16 (rounded), or f16 (what is stored compact stays so, every other matrix — e.g. GGUF IQ2_XXS, Q2_K, Q5_K — rounded to IEEE half), or q8_0 / q4_k (as --quantize); without LoRA the model trains in float32', default: 'auto' },
  { name: 'quantize', type: 'string', help: `with LoRA: ${QUANTIZE_HELP}` },
  { name: 'activation-checkpointing', type: 'boolean', help: 'recompute activations layer by layer in the backward pass: less memory for one more forward pass of the layers (15M: 534 → 416 MiB, about 8 % slower)' },
  { name: 'dry-run', type: 'boolean', help: 'print the memory plan of every engine (the policy, each helper thread), part by part, and exit without training (a Hugging Face model is planned from its config.json alone)' },
  { name: 'max-memory', type: 'string', help: 'refuse, before allocating, a run whose engines need more than this in all (e.g. 3GiB, 2500MiB); each engine is also held to the 4 GiB of one WebAssembly instance', default: 'no cap' },
];

function loraFlags(flags: Flags) {
  return loraSettingsFrom({
    rank: flags['lora-rank'] === undefined ? undefined : numberFlag(flags, 'lora-rank', 0, { integer: true, min: 1 }),
    alpha: flags['lora-alpha'] === undefined ? undefined : numberFlag(flags, 'lora-alpha', 0, { min: 0, minExclusive: true }),
    targets: optionalString(flags, 'lora-targets'),
    dropout: flags['lora-dropout'] === undefined ? undefined : numberFlag(flags, 'lora-dropout', 0, { min: 0, max: 1 }),
  });
}

/**
 * A fresh run (no --resume) never mixes with an earlier one: a checkpoint at --out (or its state, or a commit of it
 * in progress) and lines in --metrics are refused unless --overwrite, which empties the metrics (the checkpoint is
 * replaced by the first save).
 */
function refuseEarlierRun(outPath: string, metricsPath: string | undefined, overwrite: boolean): void {
  const checkpoint = [outPath, statePath(outPath), commitJournal(outPath)].find((p) => existsSync(p));
  const metricsUsed = metricsPath !== undefined && existsSync(metricsPath) && statSync(metricsPath).size > 0;
  if (overwrite) {
    if (metricsUsed) writeFileSync(metricsPath!, '');
    return;
  }
  if (checkpoint !== undefined) {
    throw new RemaxInputError(`--out ${outPath} already holds a checkpoint (${checkpoint}); continue that run with --resume ${outPath}, ` +
      'or replace it with --overwrite, or choose another --out');
  }
  if (metricsUsed) {
    throw new RemaxInputError(`--metrics ${metricsPath} already holds lines of an earlier run; give --overwrite to empty it, or choose another file`);
  }
}

export async function sftCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<number | void> {
  const given = parseFlags('sft', argv, sftFlags);
  if (given.help) return out(helpText('sft', 'Fine-tune (or pre-train) a model with the token cross-entropy.', sftFlags));
  const resumePath = optionalString(given, 'resume');
  // A resumed run continues with the settings it saved; flags given now override them (and are saved with it).
  const saved = resumePath === undefined ? {} : savedSettings(resumePath);
  if (resumePath !== undefined && typeof given.model === 'string' && typeof saved.model === 'string' && path.resolve(given.model) !== saved.model) {
    throw new RemaxInputError(`--resume ${resumePath} --model ${given.model}: the run continues from its checkpoint ${resumePath} ` +
      `(it started from ${saved.model}); drop --model, or start a new run without --resume`);
  }
  if (resumePath !== undefined) refuseChangedLora(given, saved, resumePath);
  const flags: Flags = { ...saved, ...given };
  // A LoRA run's checkpoint is its adapter folder: it resumes from the base model it started from and that folder.
  const loraResume = resumePath !== undefined && isAdapterFolder(resumePath);
  const modelPath = resumePath !== undefined && !loraResume ? resumePath
    : requiredString(flags, 'model', 'the model to train (a Hugging Face folder, a .gguf or a llama2.c checkpoint)');
  const tokenizer = optionalString(flags, 'tokenizer');
  // The engines' memory plan, from the model's shape (a Hugging Face config.json alone): --dry-run prints it; a
  // plan over 4 GiB per engine or over --max-memory is refused before anything is allocated.
  const maxMemory = maxMemoryFlag(flags['max-memory']);
  // --weights-dtype: the frozen base of a LoRA run (refused without LoRA, where the model trains in float32).
  const weightsDtype = weightsDtypeOf(optionalString(flags, 'weights-dtype'), optionalString(flags, 'quantize'));
  refuseWeightsDtypeWithoutLora(weightsDtype, loraResume || flags['lora-rank'] !== undefined || flags.adapter !== undefined);
  const memorySettings = async (): Promise<RunMemorySettings> => {
    const policy = await planModelFrom(modelPath, '--model', contextFlag(flags));
    const lora = loraResume ? readAdapterFolder(resumePath!, policy.config, '--resume').settings : chooseLora(optionalString(flags, 'adapter'), loraFlags(flags), policy.config)?.settings;
    return {
      command: 'sft', policy, lora, batch: numberFlag(flags, 'batch', 8, { integer: true, min: 1, max: 4096 }), samplesPerPrompt: 1, greedy: false, maxNewTokens: 0,
      activationCheckpointing: flags['activation-checkpointing'] === true, threads: threadsFlag(flags), ...(weightsDtype ? { weightsDtype } : {}),
    };
  };
  if (flags['dry-run'] === true) return dryRun(await memorySettings(), maxMemory, out);
  const dataPath = requiredString(flags, 'data', 'the training text (.txt or .jsonl)');
  const outPath = requiredString(flags, 'out', 'where to write the trained checkpoint');
  const steps = numberFlag(flags, 'steps', 100, { integer: true, min: 1 });
  const batchSize = numberFlag(flags, 'batch', 8, { integer: true, min: 1, max: 4096 });
  const lr = numberFlag(flags, 'lr', 1e-3, { min: 0, minExclusive: true });
  const kind = (optionalString(flags, 'lr-schedule') ?? 'cosine') as ScheduleKind;
  if (!SCHEDULE_KINDS.includes(kind)) throw new RemaxInputError(`--lr-schedule must be one of ${SCHEDULE_KINDS.join(', ')}, got "${kind}"`);
  const minLr = flags['min-lr'] === undefined ? undefined : numberFlag(flags, 'min-lr', 0, { min: 0 });
  const checkpointEvery = numberFlag(flags, 'checkpoint-every', 0, { integer: true, min: 0 });
  const stopAt = numberFlag(flags, 'stop-at', steps, { integer: true, min: 1, max: steps });
  const logEvery = numberFlag(flags, 'log-every', Math.max(1, Math.round(steps / 20)), { integer: true, min: 1 });
  const metricsPath = optionalString(flags, 'metrics');
  refuseSpecialPath(outPath, '--out');
  checkOutputFolder(outPath, '--out');
  if (metricsPath) {
    refuseSpecialPath(metricsPath, '--metrics');
    checkOutputFolder(metricsPath, '--metrics');
  }
  // One process per checkpoint: a second sft on the same --out would interleave its saves with this one's.
  const releaseLock = acquireLock(path.join(path.dirname(outPath), `.${path.basename(outPath)}.lock`), `--out ${outPath}`);
  if (resumePath === undefined) {
    try {
      refuseEarlierRun(outPath, metricsPath, flags.overwrite === true);
    } catch (error) {
      releaseLock();
      throw error;
    }
  }
  const options = {
    steps, batchSize, seed: numberFlag(flags, 'seed', 0, { integer: true, min: 0 }),
    schedule: { kind, lr, warmupSteps: numberFlag(flags, 'warmup-steps', 0, { integer: true, min: 0 }), totalSteps: steps, minLr },
    optimizer: {
      beta1: numberFlag(flags, 'beta1', 0.9, { min: 0, max: 0.999999 }), beta2: numberFlag(flags, 'beta2', 0.95, { min: 0, max: 0.999999 }),
      eps: 1e-8, weightDecay: numberFlag(flags, 'weight-decay', 0, { min: 0 }), clipNorm: numberFlag(flags, 'clip-norm', 1, { min: 0 }),
    },
    activationCheckpointing: flags['activation-checkpointing'] === true,
  };

  const threads = threadsFlag(flags);
  const loraSettings = loraFlags(flags);
  const adapterPath = optionalString(flags, 'adapter');
  const loraRun = loraResume || loraSettings !== undefined || adapterPath !== undefined;
  if (loraRun && given.format !== undefined) {
    throw new RemaxInputError('--format: a LoRA run saves a PEFT adapter folder at --out; write the merged model with remax export --adapter DIR --merge-lora');
  }
  await checkRunMemory(await memorySettings(), maxMemory);
  const engine = loraRun ? await loraEngine() : await loadEngineFromFiles({ model: modelPath, tokenizer, weightsDtype: 'f32', ...contextFlag(flags) }); // trained: float32
  async function loraEngine(): Promise<RemaxEngine> {
    const model = await loadModelFromPath(modelPath, '--model', contextFlag(flags));
    const lora = loraResume ? readAdapterFolder(resumePath!, model.config, '--resume') : chooseLora(adapterPath, loraSettings, model.config)!;
    return RemaxEngine.create({
      model, modelSource: modelPath, weightsDtype: weightsDtype ?? 'auto' /* the frozen base as stored */, lora: lora.settings, ...(lora.weights ? { loraWeights: lora.weights } : {}), loraSeed: numberFlag(flags, 'seed', 0, { integer: true, min: 0 }),
      ...(tokenizer === undefined ? {} : { tokenizer: loadTokenizerFromPath(tokenizer, '--tokenizer'), tokenizerSource: tokenizer }),
    });
  }
  if (!engine.tokenizer) throw new RemaxInputError(`${modelPath} carries no tokenizer: give --tokenizer (tokenizer.bin, tokenizer.json or a .gguf)`);
  const format = formatFlag(flags, engine);
  const seqLen = numberFlag(flags, 'seq', engine.config.seqLen, { integer: true, min: 2, max: engine.config.seqLen });
  const chatTemplate = optionalString(flags, 'chat-template');
  const examples = loadSftExamples(readInputFile(dataPath, '--data'), dataPath, engine.tokenizer!, seqLen, {
    truncate: Boolean(flags.truncate),
    chat: {
      disabled: flags['no-chat-template'] === true,
      ...(chatTemplate ? { template: new TextDecoder().decode(readInputFile(chatTemplate, '--chat-template')), templateSource: chatTemplate } : {}),
    },
  });
  const resume = resumePath === undefined ? undefined
    : loadRunState(resumePath, { config: engine.config, ...(engine.lora ? {} : { weights: engine.readWeights() }) }, { parameterCount: engine.parameterSlots },
      engine.lora ? engine.readAdapters() : undefined);
  const trainer = withHelperWorkers(threads, (helpers) => new SftTrainer(engine, examples, options, resume, helpers));
  const tokensInData = examples.reduce((sum, e) => sum + e.ids.length, 0);
  err(loadedLine(engine, modelPath));
  err(`sft: ${examples.length} sequences (${tokensInData} tokens) from ${dataPath}, ${engine.build} build, ` +
    `${resume ? `resuming at step ${trainer.step} of ${steps}` : `${steps} steps`} of ${batchSize} × ≤${seqLen} tokens`);

  let lastSaved: number | undefined = resume?.step;
  const save = () => {
    saveEngineCheckpoint(outPath, engine, format, trainer.state({ sftSettings: settingsToSave(flags, outPath) }), engine.lora ? path.resolve(modelPath) : null);
    lastSaved = trainer.step;
  };
  // What an error leaves behind, for its message.
  const kept = () => lastSaved === undefined ? 'nothing was saved' : `the last good checkpoint is ${outPath} (step ${lastSaved})`;
  const started = performance.now();
  const firstStep = trainer.step;
  try {
    if (resume && metricsPath) keepLinesUpTo(metricsPath, trainer.step); // lines of steps after the checkpoint come again
    return await withInterruptFlag(async (interrupt) => {
      while (!trainer.done && trainer.step < stopAt && !(await interrupt.check())) {
        let result: SftStep;
        try {
          result = await trainer.runStep();
        } catch (error) {
          if (!(error instanceof RemaxInputError) && !(error instanceof HelperError)) throw error;
          throw new RemaxInputError(`${error.message}; ${kept()}`);
        }
        if (metricsPath) {
          try {
            appendToFile(metricsPath, JSON.stringify({ step: result.step, loss: result.loss, lr: result.lr, grad_norm: result.gradNorm, tokens: result.tokens, entropy: result.entropy, seconds: result.seconds }) + '\n');
          } catch (error) {
            throw new RemaxInputError(`${(error as Error).message}; ${kept()}`);
          }
        }
        if (result.step % logEvery === 0 || result.step === steps || result.step === firstStep + 1) {
          const elapsed = (performance.now() - started) / 1000;
          const perStep = elapsed / (result.step - firstStep);
          err(`step ${result.step}/${steps}  loss ${result.loss.toFixed(4)}  lr ${result.lr.toExponential(2)}  ` +
            `grad norm ${result.gradNorm.toFixed(3)}  entropy ${result.entropy.toFixed(3)}  ${Math.round(result.tokens / result.seconds)} tokens/s  ` +
            `eta ${Math.round(perStep * (steps - result.step))} s`);
        }
        if (checkpointEvery > 0 && result.step % checkpointEvery === 0 && result.step < steps) save();
      }
      save();
      err(trainer.done ? `wrote ${outPath} and ${statePath(outPath)} (step ${trainer.step})`
        : `${interrupt.received ? `interrupted (${interrupt.signal})` : 'stopped'}: saved step ${trainer.step} to ${outPath} (continue with --resume ${outPath})`);
      return interrupt.exitCode;
    });
  } finally {
    trainer.close(); // ends the helper threads, if any
    releaseLock();
  }
}

/** The flags a run keeps for --resume: every one given but those of one invocation, with paths made absolute. */
function settingsToSave(flags: Flags, outPath: string): Flags {
  const { resume: _r, 'stop-at': _s, help: _h, overwrite: _o, ...kept } = flags;
  for (const key of ['model', 'tokenizer', 'data', 'metrics', 'chat-template', 'adapter'] as const) {
    if (typeof kept[key] === 'string') kept[key] = path.resolve(kept[key]);
  }
  kept.out = path.resolve(outPath);
  return kept;
}

/** The settings saved with the checkpoint at `resumePath` (none in a state written before they were: the flags alone). */
function savedSettings(resumePath: string): Flags {
  const state = statePath(resumePath);
  completeWrite(commitJournal(resumePath), '--resume');
  if (!existsSync(state)) return {};
  const settings = trainingStateExtra(readInputFile(state, '--resume'), state).sftSettings;
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) return {};
  return settings as Flags; // its model is where the run started: the run continues from the checkpoint
}
