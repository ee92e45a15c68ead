import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parseFlags, helpText } from '../args';
import { appendToFile, makeFolder, readInputFile, writeFileAtomic } from '../files';
import { enableRelaxedSimd } from '../load';
import { withInterruptFlag } from '../interrupt';
import { threadCount, withHelperWorkers } from '../helper-workers';
import { loadRunState, saveEngineCheckpoint } from '../run-checkpoint';
import { checkStopIds, findRunModel, formatOf, loadModelFromPath, loadTokenizerFromPath, loadedLine, modelFiles, parseStopIds, runModelPath, writeModel } from '../model-io';
import { loadRewardModule } from '../reward-module';
import { resolveTrainOptions, trainFlagSpecs, type TrainValues } from '../train-options';
import { TrainProgress } from '../train-progress';
import { RemaxInputError } from '../../core/errors';
import { setUpRun } from '../../core/rl/run-setup';
import { ReMaxTrainer, type ReMaxOptions, type StepMetrics } from '../../core/rl/trainer';
import { HelperError } from '../../core/parallel/helper-client';
import { scoreSamples, RewardError, type RewardFunction, type RewardErrorPolicy } from '../../core/rewards';
import { BUILTIN_REWARDS, builtinReward } from '../../core/builtin-rewards';
import { httpReward } from '../../core/http-reward';
import type { ScheduleKind } from '../../core/schedule';
import type { Estimator } from '../../core/rl/advantages';

/** The built-in default task, shipped in the package beside dist/. */
const DEFAULT_TASK = fileURLToPath(new URL('../assets/default-task/', import.meta.url));

const SUMMARY = 'Fine-tune a model with ReMax (or REINFORCE, RLOO, GRPO) against a reward. With no flags: the built-in default task.';

export async function trainCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<void> {
  const specs = trainFlagSpecs();
  const flags = parseFlags('train', argv, specs);
  if (flags.help) return out(helpText('train', SUMMARY, specs));
  enableRelaxedSimd();

  // Options: a resumed run's saved config, then --config, then the flags.
  const resumeDir = typeof flags.resume === 'string' ? flags.resume : undefined;
  const saved = resumeDir ? readJson(path.join(resumeDir, 'config.json'), '--resume') : {};
  const configPath = typeof flags.config === 'string' ? flags.config : undefined;
  const fromFile = configPath ? readJson(configPath, '--config') : {};
  const v = resolveTrainOptions(flags, { ...saved, ...fromFile }, configPath ?? 'config');
  const usingDefaultTask = v.model === undefined && v.prompts === undefined;
  const file = (key: string, fallback: string) => (v[key] as string | undefined) ?? (usingDefaultTask ? path.join(DEFAULT_TASK, fallback) : undefined);
  const modelPath = file('model', 'model.bin');
  const tokenizerPath = file('tokenizer', 'tokenizer.bin');
  const promptsPath = file('prompts', 'train.jsonl');
  const evalPath = file('eval-prompts', 'eval.jsonl');
  if (!modelPath) throw new RemaxInputError('--model is required when --prompts is given (or give neither to run the built-in default task)');
  if (!promptsPath) throw new RemaxInputError('--prompts is required: a JSONL file with one {"prompt": "...", ...} per line');
  const outDir = resumeDir ?? (v.out as string);

  const options = trainerOptions(v);
  const reward = await makeReward(v);
  const loadOptions = v.context === undefined ? {} : { context: v.context as number };
  // A resumed run continues from its own last checkpoint, in the format the run started with.
  const resumed = resumeDir ? findRunModel(resumeDir) : undefined;
  const policyModel = await loadModelFromPath(resumed?.model ?? modelPath, resumeDir ? '--resume' : '--model', loadOptions);
  const format = resumed?.format ?? formatOf(policyModel);
  const modelOut = runModelPath(outDir, format, 'model'), referencePath = runModelPath(outDir, format, 'reference');
  const chatTemplate = v['chat-template'] as string | undefined;
  const { policy, reference, prompts, evalPrompts, maxNewTokens: maxNew } = await setUpRun({
    policy: { model: policyModel, source: modelPath },
    // A resumed run keeps the reference it started from; a new one starts from the policy.
    reference: resumeDir && options.klCoef > 0 ? { model: await loadModelFromPath(referencePath, '--resume', loadOptions), source: referencePath } : undefined,
    tokenizer: tokenizerPath === undefined ? undefined : loadTokenizerFromPath(tokenizerPath, '--tokenizer'),
    prompts: { bytes: readInputFile(promptsPath, '--prompts'), source: promptsPath },
    evalPrompts: evalPath ? { bytes: readInputFile(evalPath, '--eval-prompts'), source: evalPath, limit: v['eval-size'] as number } : undefined,
    truncate: v.truncate === true,
    chat: {
      disabled: v['no-chat-template'] === true,
      ...(chatTemplate ? { template: new TextDecoder().decode(readInputFile(chatTemplate, '--chat-template')), templateSource: chatTemplate } : {}),
    },
  }, options);
  checkStopIds(options.stopIds, policy.config.vocabSize, '--stop-ids');
  const state = resumed ? loadRunState(resumed.model, policyModel, { parameterCount: policy.parameterSlots }) : undefined;
  // A reward server's call may take all its attempts (each with the timeout) and the back-off between them.
  const attemptMs = v['reward-timeout'] as number, retries = v['reward-url'] !== undefined ? v['reward-retries'] as number : 0;
  const callTimeoutMs = (retries + 1) * attemptMs + retries * 10_000;
  const scorer = (groups: Parameters<typeof scoreSamples>[1]) => scoreSamples(reward, groups, {
    timeoutMs: callTimeoutMs, onError: v['on-reward-error'] as RewardErrorPolicy, concurrency: v['reward-concurrency'] as number,
  });
  // --threads N: N − 1 helper engines on worker threads share each step's decoding and gradients.
  const trainer = withHelperWorkers(threadCount(v.threads as number | 'auto'),
    (helpers) => new ReMaxTrainer(policy, reference, prompts, scorer, { ...options, maxNewTokens: maxNew }, state, helpers));
  try {

    // The run folder: options (so --resume needs no flags), the reference policy, metrics and samples.
    makeFolder(outDir, resumeDir ? '--resume' : '--out');
    const metricsPath = path.join(outDir, 'metrics.jsonl'), samplesPath = path.join(outDir, 'samples.jsonl');
    if (!resumeDir) {
      const { resume: _r, config: _c, 'stop-at': _s, quiet: _q, ...toSave } = v;
      writeFileAtomic(path.join(outDir, 'config.json'), JSON.stringify({
        ...toSave, model: modelPath, ...(tokenizerPath ? { tokenizer: tokenizerPath } : {}), prompts: promptsPath, ...(evalPath ? { 'eval-prompts': evalPath } : {}),
      }, null, 2) + '\n');
      // The reference in float32, so a resumed run's KL term is that of the start.
      if (options.klCoef > 0) writeModel(referencePath, modelFiles(policyModel, { format }), '--out');
      writeFileSync(metricsPath, '');
      writeFileSync(samplesPath, '');
    } else {
      keepLinesUpTo(metricsPath, trainer.step);
      keepLinesUpTo(samplesPath, trainer.step);
    }
    let lastSaved: number | undefined = resumeDir ? trainer.step : undefined;
    const save = () => {
      saveEngineCheckpoint(modelOut, policy, format, trainer.state());
      lastSaved = trainer.step;
    };
    // A log line that cannot be written (a full disk) stops the run; the message says what is kept.
    const log = (file: string, text: string) => {
      try {
        appendToFile(file, text);
      } catch (error) {
        const kept = lastSaved === undefined ? 'no checkpoint was saved yet' : `the last checkpoint in ${outDir} is step ${lastSaved} (resume with --resume ${outDir})`;
        throw new RemaxInputError(`${(error as Error).message}; ${kept}`);
      }
    };

    const progress = new TrainProgress(options.steps, trainer.step, err, v.quiet === true);
    if (v.quiet !== true) err(loadedLine(policy, resumed?.model ?? modelPath));
    progress.start(`remax train: ${options.estimator}, ${prompts.length} prompt${prompts.length === 1 ? '' : 's'} from ${promptsPath}, batch ${options.batchSize} × ` +
      `${options.samplesPerPrompt} sample(s), ${options.steps} steps, ${policy.build} build → ${outDir}` +
      (resumeDir ? ` (resuming at step ${trainer.step})` : ''));
    const stopAt = (v['stop-at'] as number | undefined) ?? options.steps;
    const evalEvery = v['eval-every'] as number, sampleEvery = v['sample-every'] as number, checkpointEvery = v['checkpoint-every'] as number;
    await withInterruptFlag(async (interrupt) => {
      if (trainer.step === 0 && evalPrompts.length > 0 && evalEvery > 0) {
        const evalReward = await trainer.evaluate(evalPrompts);
        log(metricsPath, JSON.stringify({ step: 0, eval_reward_mean: evalReward }) + '\n');
        progress.note(`step 0: eval reward ${evalReward.toFixed(3)} on ${evalPrompts.length} held-out prompts (greedy)`);
      }
      while (!trainer.done && trainer.step < stopAt && !(await interrupt.check())) {
        let metrics: StepMetrics;
        try {
          metrics = await trainer.runStep();
        } catch (error) {
          // A failed reward or helper thread leaves the weights and the data order of the last completed step: saved,
          // nothing trained is lost.
          const recoverable = error instanceof RewardError || error instanceof HelperError;
          if (!(error instanceof RemaxInputError) && !recoverable) throw error;
          if (recoverable) save();
          const saved = `; saved step ${trainer.step} to ${outDir} (resume with --resume ${outDir}${error instanceof HelperError ? ', perhaps with fewer --threads' : ''})`;
          throw new RemaxInputError(`${(error as Error).message}${recoverable ? saved : ''}`);
        }
        if (evalPrompts.length > 0 && evalEvery > 0 && (metrics.step % evalEvery === 0 || metrics.step === options.steps)) {
          metrics.eval_reward_mean = await trainer.evaluate(evalPrompts);
        }
        log(metricsPath, JSON.stringify(metrics) + '\n');
        if (sampleEvery > 0 && metrics.step % sampleEvery === 0) {
          log(samplesPath, trainer.lastSamples.slice(0, 4).map((row) => JSON.stringify(row)).join('\n') + '\n');
        }
        progress.update(metrics);
        if (checkpointEvery > 0 && metrics.step % checkpointEvery === 0 && !trainer.done) save();
      }
      save();
      progress.finish(trainer.done ? `done: ${modelOut} (step ${trainer.step}); metrics in ${metricsPath}; report: remax plot ${metricsPath}`
        : `${interrupt.received ? 'interrupted' : 'stopped'} at step ${trainer.step}: saved to ${outDir} (continue with --resume ${outDir})`);
    });
  } finally {
    trainer.close();
  }
}

function trainerOptions(v: TrainValues): ReMaxOptions {
  const steps = v.steps as number;
  return {
    estimator: v.estimator as Estimator, samplesPerPrompt: v['samples-per-prompt'] as number, batchSize: v.batch as number,
    steps, seed: v.seed as number,
    schedule: { kind: v['lr-schedule'] as ScheduleKind, lr: v.lr as number, warmupSteps: v['warmup-steps'] as number, totalSteps: steps, minLr: v['min-lr'] as number | undefined },
    optimizer: { beta1: v.beta1 as number, beta2: v.beta2 as number, eps: 1e-8, weightDecay: v['weight-decay'] as number, clipNorm: v['clip-norm'] as number },
    klCoef: v['kl-coef'] as number, gamma: v.gamma as number, advantageClip: v['advantage-clip'] as number,
    lossAggregation: v['loss-aggregation'] as ReMaxOptions['lossAggregation'],
    temperature: v.temperature as number, topP: v['top-p'] as number, topK: v['top-k'] as number,
    maxNewTokens: v['max-new-tokens'] as number, emaDecay: v['ema-decay'] as number,
    ...(v['stop-ids'] !== undefined ? { stopIds: parseStopIds(v['stop-ids'] as string) } : {}),
    ...(v.stop !== undefined ? { stopStrings: [v.stop as string] } : {}),
    activationCheckpointing: v['activation-checkpointing'] === true,
  };
}

async function makeReward(v: TrainValues): Promise<RewardFunction> {
  const url = v['reward-url'] as string | undefined;
  const name = (v.reward as string | undefined) ?? 'exact-match';
  if (url !== undefined) {
    if (v.reward !== undefined) throw new RemaxInputError('give either --reward or --reward-url, not both');
    return httpReward(url, { fetch: globalThis.fetch, timeoutMs: v['reward-timeout'] as number, retries: v['reward-retries'] as number });
  }
  if (Object.hasOwn(BUILTIN_REWARDS, name)) return builtinReward(name);
  if (/\.(m?[jt]s)$/.test(name) || existsSync(name)) return loadRewardModule(name);
  return builtinReward(name); // an unknown name: the error lists the built-in ones
}

function readJson(file: string, flag: string): Record<string, unknown> {
  const text = new TextDecoder().decode(readInputFile(file, flag));
  try {
    const value = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch (error) {
    throw new RemaxInputError(`${flag} ${file} is not a JSON object of options: ${(error as Error).message}`);
  }
}

/**
 * Drops the lines of a JSONL file written after `step` (a resumed run rewrites them), and a last line cut short
 * (a run killed or out of disk while writing it). Any other line that is not JSON is an error naming it.
 */
function keepLinesUpTo(file: string, step: number): void {
  if (!existsSync(file)) return;
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const torn = !text.endsWith('\n') ? lines.length - 1 : -1;
  const kept = lines.filter((line, i) => {
    if (line.trim() === '') return false;
    try {
      return (JSON.parse(line) as { step: number }).step <= step;
    } catch {
      if (i === torn) return false;
      throw new RemaxInputError(`--resume: line ${i + 1} of ${file} is not JSON; remove it or the lines after step ${step}`);
    }
  });
  writeFileAtomic(file, kept.length ? kept.join('\n') + '\n' : '');
}
