// remax rm: train a reward model (a scalar head on a transformer) on preference pairs with the Bradley–Terry loss.
// The run folder is train's (run-folder.ts): config.json (the options; --resume needs no other flag), inputs.json,
// the checkpoint model/ (Hugging Face) or model.bin + model.bin.score (llama2.c form) with its .state, metrics.jsonl,
// and the lock.
import path from 'node:path';
import type { FlagSpec, Flags } from '../args';
import { parseFlags, helpText, numberFlag, optionalString } from '../args';
import { appendToFile, readInputFile, writeFileAtomic } from '../files';
import { RunFolder, keepLinesUpTo } from '../run-folder';
import { withInterruptFlag } from '../interrupt';
import { loadRunState, saveEngineCheckpoint } from '../run-checkpoint';
import { CONTEXT_FLAG, findRunModel, formatOf, loadModelFromPath, loadTokenizerFromPath, loadedLine, runModelPath, type SaveFormat } from '../model-io';
import { TrainProgress } from '../train-progress';
import { threadsFlag, withHelperWorkers } from '../helper-workers';
import { HelperError } from '../../core/parallel/helper-client';
import { RemaxEngine } from '../../core/engine';
import { RemaxInputError } from '../../core/errors';
import { withScoreHead } from '../../core/score-head';
import { loadPreferencePairs, type PreferencePair } from '../../core/preference-data';
import { RewardModelTrainer, type RewardModelStep } from '../../core/rm-trainer';
import { SCHEDULE_KINDS, type ScheduleKind } from '../../core/schedule';
import type { ChatSettings } from '../../core/tokenizers/chat-template';

export const rmFlags: FlagSpec[] = [
  { name: 'model', type: 'string', help: 'the model to start from: a causal LM (its classifier is replaced by a scalar head) or a reward model to train on (Hugging Face folder or llama2.c checkpoint)' },
  { name: 'tokenizer', type: 'string', help: 'tokenizer.json, tokenizer.bin or .gguf matching the model', default: "the model's own" },
  CONTEXT_FLAG,
  { name: 'pairs', type: 'string', help: '.jsonl of preference pairs: {"prompt","chosen","rejected"} or {"messages":[...],"chosen","rejected"} per line' },
  { name: 'eval-pairs', type: 'string', help: 'held-out pairs (same form): accuracy and loss at step 0, every --eval-every steps and at the end' },
  { name: 'out', type: 'string', help: 'the run folder to write (the reward model, its state, metrics.jsonl)' },
  { name: 'resume', type: 'string', help: 'continue the run in this folder exactly where it stopped (its options are kept; flags given override them)' },
  { name: 'overwrite', type: 'boolean', help: 'replace the run that --out holds' },
  { name: 'format', type: 'string', help: 'write the reward model as hf (a folder transformers loads) or llama2c (checkpoint + .score head)', default: 'the format of --model' },
  { name: 'steps', type: 'string', help: 'optimizer steps in the whole run', default: '100' },
  { name: 'batch', type: 'string', help: 'preference pairs per step', default: '8' },
  { name: 'lr', type: 'string', help: 'peak learning rate', default: '1e-4' },
  { name: 'lr-schedule', type: 'string', help: `learning-rate schedule: ${SCHEDULE_KINDS.join(', ')}`, default: 'cosine' },
  { name: 'warmup-steps', type: 'string', help: 'linear warm-up steps', default: '0' },
  { name: 'min-lr', type: 'string', help: 'floor of the linear and cosine decays', default: 'lr/10' },
  { name: 'weight-decay', type: 'string', help: 'AdamW decoupled weight decay (matrices, embedding and head)', default: '0' },
  { name: 'beta1', type: 'string', help: 'AdamW β1', default: '0.9' },
  { name: 'beta2', type: 'string', help: 'AdamW β2', default: '0.95' },
  { name: 'clip-norm', type: 'string', help: 'clip the global gradient norm to this; 0 = off', default: '1.0' },
  { name: 'seed', type: 'string', help: 'seed of the data order and of the fresh head (normal, std 1/(dim+1))', default: '0' },
  { name: 'stop-at', type: 'string', help: 'stop after this step and save, as if interrupted (resume later with --resume)', default: '--steps' },
  { name: 'checkpoint-every', type: 'string', help: 'also write the checkpoint every N steps; 0 = only at the end', default: '0' },
  { name: 'eval-every', type: 'string', help: 'evaluate --eval-pairs every N steps; 0 = only at step 0 and the end', default: '0' },
  { name: 'chat-template', type: 'string', help: 'Jinja chat template file for {"messages"} pairs', default: "the tokenizer's" },
  { name: 'no-chat-template', type: 'boolean', help: 'render {"messages"} pairs as plain text: the turns as the prompt, the response as the completion' },
  { name: 'threads', type: 'string', help: 'threads whose engines share each step\'s gradient (N − 1 helper workers), or auto = every core; a run replays exactly with the same seed and thread count', default: '1' },
  { name: 'activation-checkpointing', type: 'boolean', help: 'recompute activations layer by layer in the backward pass (less memory)' },
  { name: 'quiet', type: 'boolean', help: 'print nothing but errors' },
];

const SUMMARY = 'Train a reward model (a scalar head) on preference pairs with the Bradley–Terry loss.';

export async function rmCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<number | void> {
  const given = parseFlags('rm', argv, rmFlags);
  if (given.help) return out(helpText('rm', SUMMARY, rmFlags));
  const resumeDir = optionalString(given, 'resume');
  const overwrite = given.overwrite === true;
  if (resumeDir && overwrite) throw new RemaxInputError('give --resume or --overwrite, not both: --overwrite starts the folder\'s run again from nothing');
  // A resumed run's folder is locked before anything is read from it.
  const run = resumeDir ? RunFolder.open(resumeDir, 'resume') : undefined;
  const saved = (run ? run.readConfig() : {}) as Flags;
  if (run && typeof given.out === 'string' && path.resolve(given.out) !== path.resolve(resumeDir!)) {
    throw new RemaxInputError(`--resume ${resumeDir} --out ${given.out}: a resumed run stays in its folder; start a new run with --model ${resumeDir}/model… --out ${given.out}`);
  }
  if (run && typeof given.model === 'string' && typeof saved.model === 'string' && path.resolve(given.model) !== saved.model) {
    throw new RemaxInputError(`--resume ${resumeDir} --model ${given.model}: the run continues from its own checkpoint (it started from ${saved.model}); drop --model, or start a new run with --out`);
  }
  const flags: Flags = { ...saved, ...given };
  const modelPath = optionalString(flags, 'model');
  const pairsPath = optionalString(flags, 'pairs');
  if (!modelPath) throw new RemaxInputError('--model is required: the causal LM (or reward model) to train from');
  if (!pairsPath) throw new RemaxInputError('--pairs is required: a .jsonl of {"prompt","chosen","rejected"} lines');
  const outDir = resumeDir ?? optionalString(flags, 'out');
  if (!outDir) throw new RemaxInputError('--out is required: the run folder to write');
  if (!run) RunFolder.check(outDir, overwrite ? 'overwrite' : 'new');
  const steps = numberFlag(flags, 'steps', 100, { integer: true, min: 1 });
  const kind = (optionalString(flags, 'lr-schedule') ?? 'cosine') as ScheduleKind;
  if (!SCHEDULE_KINDS.includes(kind)) throw new RemaxInputError(`--lr-schedule must be one of ${SCHEDULE_KINDS.join(', ')}, got "${kind}"`);
  const seed = numberFlag(flags, 'seed', 0, { integer: true, min: 0 });
  const options = {
    steps, batchSize: numberFlag(flags, 'batch', 8, { integer: true, min: 1, max: 4096 }), seed,
    schedule: {
      kind, lr: numberFlag(flags, 'lr', 1e-4, { min: 0, minExclusive: true }), warmupSteps: numberFlag(flags, 'warmup-steps', 0, { integer: true, min: 0 }),
      totalSteps: steps, minLr: flags['min-lr'] === undefined ? undefined : numberFlag(flags, 'min-lr', 0, { min: 0 }),
    },
    optimizer: {
      beta1: numberFlag(flags, 'beta1', 0.9, { min: 0, max: 0.999999 }), beta2: numberFlag(flags, 'beta2', 0.95, { min: 0, max: 0.999999 }),
      eps: 1e-8, weightDecay: numberFlag(flags, 'weight-decay', 0, { min: 0 }), clipNorm: numberFlag(flags, 'clip-norm', 1, { min: 0 }),
    },
    activationCheckpointing: flags['activation-checkpointing'] === true,
  };
  const stopAt = numberFlag(flags, 'stop-at', steps, { integer: true, min: 1, max: steps });
  const checkpointEvery = numberFlag(flags, 'checkpoint-every', 0, { integer: true, min: 0 });
  const evalEvery = numberFlag(flags, 'eval-every', 0, { integer: true, min: 0 });
  const evalPath = optionalString(flags, 'eval-pairs');
  const tokenizerPath = optionalString(flags, 'tokenizer');
  const chatTemplate = optionalString(flags, 'chat-template');
  const quiet = flags.quiet === true;

  // The model: a resumed run's own checkpoint, else --model with a fresh head (a reward model keeps its own).
  const resumed = run ? findRunModel(run.dir) : undefined;
  const loadOptions = flags.context === undefined ? {} : { context: numberFlag(flags, 'context', 0, { integer: true, min: 2 }) };
  const source = resumed?.model ?? modelPath;
  const loaded = await loadModelFromPath(source, resumed ? '--resume' : '--model', loadOptions);
  const model = withScoreHead(loaded, seed);
  const format = resumed?.format ?? rmFormat(optionalString(flags, 'format'), formatOf(model));
  const engine = await RemaxEngine.create({
    model, modelSource: source, maxBatch: Math.min(2 * options.batchSize, 64),
    ...(tokenizerPath ? { tokenizer: loadTokenizerFromPath(tokenizerPath, '--tokenizer'), tokenizerSource: tokenizerPath } : {}),
  });
  if (!engine.tokenizer) throw new RemaxInputError(`${modelPath} carries no tokenizer: give --tokenizer (tokenizer.bin, tokenizer.json or a .gguf)`);
  const chat: ChatSettings = {
    disabled: flags['no-chat-template'] === true,
    ...(chatTemplate ? { template: new TextDecoder().decode(readInputFile(chatTemplate, '--chat-template')), templateSource: chatTemplate } : {}),
  };
  const seqLen = engine.config.seqLen;
  const pairs = loadPreferencePairs(readInputFile(pairsPath, '--pairs'), pairsPath, engine.tokenizer, seqLen, chat);
  const evalPairs: PreferencePair[] = evalPath ? loadPreferencePairs(readInputFile(evalPath, '--eval-pairs'), evalPath, engine.tokenizer, seqLen, chat) : [];
  run?.checkInputs({ pairs: pairsPath, 'eval-pairs': evalPath, tokenizer: tokenizerPath, 'chat-template': chatTemplate }, true, false);
  const state = resumed ? loadRunState(resumed.model, loaded, { parameterCount: engine.parameterSlots }) : undefined;
  const trainer = withHelperWorkers(threadsFlag(flags), (helpers) => new RewardModelTrainer(engine, pairs, options, state, helpers));

  let opened: RunFolder | undefined = run;
  try {
    const folder = opened ??= RunFolder.open(outDir, overwrite ? 'overwrite' : 'new');
    const metricsPath = folder.file('metrics.jsonl');
    const modelOut = runModelPath(folder.dir, format, 'model');
    if (resumed) keepLinesUpTo(metricsPath, trainer.step); // lines of steps after the checkpoint come again
    else {
      writeFileAtomic(metricsPath, '');
      folder.checkInputs({ pairs: pairsPath, 'eval-pairs': evalPath, tokenizer: tokenizerPath, 'chat-template': chatTemplate }, false, true);
    }
    folder.writeConfig(settingsToSave(flags, outDir, format));
    let lastSaved: number | undefined = resumed ? trainer.step : undefined;
    const kept = () => (lastSaved === undefined ? 'nothing was saved' : `the last checkpoint in ${outDir} is step ${lastSaved} (resume with --resume ${outDir})`);
    const save = () => {
      saveEngineCheckpoint(modelOut, engine, format, trainer.state());
      lastSaved = trainer.step;
    };
    const log = (line: Record<string, unknown>) => {
      try {
        appendToFile(metricsPath, JSON.stringify(line) + '\n');
      } catch (error) {
        throw new RemaxInputError(`${(error as Error).message}; ${kept()}`);
      }
    };
    const progress = new TrainProgress(steps, trainer.step, err, quiet);
    if (!quiet) err(loadedLine(engine, source));
    progress.start(`remax rm: ${pairs.length} pairs from ${pairsPath}${evalPairs.length ? `, ${evalPairs.length} held out` : ''}, batch ${options.batchSize}, ` +
      `${steps} steps, ${engine.build} build → ${outDir}${resumed ? ` (resuming at step ${trainer.step})` : ''}`);
    return await withInterruptFlag(async (interrupt) => {
      if (trainer.step === 0 && evalPairs.length > 0) {
        const e = trainer.evaluate(evalPairs);
        log({ step: 0, eval_accuracy: e.accuracy, eval_loss: e.loss });
        progress.note(`step 0: eval accuracy ${e.accuracy.toFixed(3)} on ${evalPairs.length} held-out pairs`);
      }
      while (!trainer.done && trainer.step < stopAt && !(await interrupt.check())) {
        let r: RewardModelStep;
        try {
          r = await trainer.runStep();
        } catch (error) {
          if (!(error instanceof RemaxInputError) && !(error instanceof HelperError)) throw error;
          throw new RemaxInputError(`${error.message}; ${kept()}`);
        }
        const line: Record<string, unknown> = {
          step: r.step, loss: r.loss, accuracy: r.accuracy, mean_margin: r.meanMargin, lr: r.lr, grad_norm: r.gradNorm, seconds: r.seconds,
        };
        const evaluate = evalPairs.length > 0 && ((evalEvery > 0 && r.step % evalEvery === 0) || r.step === steps);
        if (evaluate) {
          const e = trainer.evaluate(evalPairs);
          Object.assign(line, { eval_accuracy: e.accuracy, eval_loss: e.loss });
        }
        log(line);
        progress.show(r.step, `loss ${r.loss.toFixed(4)}  accuracy ${r.accuracy.toFixed(3)}  margin ${r.meanMargin.toFixed(3)}` +
          (evaluate ? `  eval ${(line.eval_accuracy as number).toFixed(3)}` : ''), evaluate);
        if (checkpointEvery > 0 && r.step % checkpointEvery === 0 && !trainer.done) save();
      }
      save();
      progress.finish(trainer.done ? `done: ${modelOut} (step ${trainer.step}); metrics in ${metricsPath}`
        : `${interrupt.received ? `interrupted (${interrupt.signal})` : 'stopped'} at step ${trainer.step}: saved to ${outDir} (continue with --resume ${outDir})`);
      return interrupt.exitCode;
    });
  } finally {
    trainer.close(); // ends the helper threads, if any
    opened?.release();
  }
}

/** --format for a reward model: hf or llama2c (GGUF has no reward models); default the model's own, GGUF → hf. */
function rmFormat(value: string | undefined, own: SaveFormat): SaveFormat {
  if (value === undefined) return own === 'gguf' ? 'hf' : own;
  if (value !== 'hf' && value !== 'llama2c') throw new RemaxInputError(`--format must be hf or llama2c for a reward model, got "${value}"`);
  return value;
}

/** The options a run keeps for --resume: all but those of one invocation, with paths made absolute. */
function settingsToSave(flags: Flags, outDir: string, format: SaveFormat): Flags {
  const { resume: _r, 'stop-at': _s, help: _h, overwrite: _o, quiet: _q, ...kept } = flags;
  for (const key of ['model', 'tokenizer', 'pairs', 'eval-pairs', 'chat-template'] as const) {
    if (typeof kept[key] === 'string') kept[key] = path.resolve(kept[key]);
  }
  return { ...kept, out: path.resolve(outDir), format };
}
