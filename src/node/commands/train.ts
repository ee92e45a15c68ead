import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parseFlags, helpText } from '../args';
import { appendToFile, commitJournal, completeWrite, readInputFile, writeFileAtomic } from '../files';
import { RunFolder, keepLinesUpTo, readJsonObject } from '../run-folder';
import { enableRelaxedSimd } from '../load';
import { withInterruptFlag } from '../interrupt';
import { threadCount, withHelperWorkers } from '../helper-workers';
import { engineCheckpointEntries, loadRunState, saveEngineCheckpoint } from '../run-checkpoint';
import { checkStopIds, findRunModel, weightsDtypeOf, formatOf, loadModelFromPath, loadTokenizerFromPath, loadedLine, modelFiles, parseStopIds, runModelPath, writeModel } from '../model-io';
import { loadReward } from '../load-reward';
import { loadRewardModelEngine, parseRewardWeights, resolveRewardModel, type RewardModelSource } from '../reward-model-source';
import { resolveTrainOptions, trainFlagSpecs, type TrainValues } from '../train-options';
import { TrainProgress } from '../train-progress';
import { RemaxInputError } from '../../core/errors';
import { createCritic, setUpRun } from '../../core/rl/run-setup';
import { ReMaxTrainer, type ReMaxOptions, type StepMetrics } from '../../core/rl/trainer';
import { HelperError } from '../../core/parallel/helper-client';
import { scoreSamples, RewardError, type RewardFunction, type RewardErrorPolicy } from '../../core/rewards';
import { httpReward } from '../../core/http-reward';
import type { RewardProtocol } from '../../core/reward-protocols';
import type { ScheduleKind } from '../../core/schedule';
import type { Estimator } from '../../core/rl/advantages';
import { headSize, weightShapes, type ModelConfig } from '../../core/config';
import { chooseLora, isAdapterFolder, loraSettingsFrom, readAdapterFolder, refuseChangedLora, refuseWeightsDtypeWithoutLora } from '../lora';
import { RemaxEngine } from '../../core/engine';
import { RunningMoments } from '../../core/running-moments';
import { DEFAULT_PPO } from '../../core/rl/ppo-update';
import type { SaveFormat } from '../model-io';
import { rewardModelReward, weightedRewards } from '../../core/reward-model-reward';
import { chooseWeightTypes, type WeightsDtype } from '../../core/weight-types';
import type { LoraSettings } from '../../core/lora';
import { usesGreedy } from '../../core/rl/advantages';
import { checkRunMemory, dryRun, maxMemoryFlag, planModelFrom, type PlannedModel, type RunMemorySettings } from '../run-memory';

/** The built-in default task, shipped in the package beside dist/. */
const DEFAULT_TASK = fileURLToPath(new URL('../assets/default-task/', import.meta.url));

const SUMMARY = 'Fine-tune a model with ReMax (or REINFORCE, RLOO, GRPO, PPO) against a reward. With no flags: the built-in default task.';

/** The flags that only --estimator ppo reads. */
const PPO_FLAGS = ['ppo-epochs', 'ppo-minibatches', 'ppo-clip', 'value-clip', 'vf-coef', 'gae-lambda', 'critic-lr', 'critic-from', 'critic-model'];

export async function trainCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<number | void> {
  const specs = trainFlagSpecs();
  const flags = parseFlags('train', argv, specs);
  if (flags.help) return out(helpText('train', SUMMARY, specs));
  enableRelaxedSimd();

  // Options: a resumed run's saved config, then --config, then the flags.
  const resumeDir = typeof flags.resume === 'string' ? flags.resume : undefined;
  const overwrite = flags.overwrite === true;
  if (resumeDir && overwrite) throw new RemaxInputError('give --resume or --overwrite, not both: --overwrite starts the folder\'s run again from nothing');
  // A resumed run's folder is locked before anything is read from it: no second process can mix in its steps.
  const run = resumeDir ? RunFolder.open(resumeDir, 'resume') : undefined;
  const saved = run ? run.readConfig() : {};
  const configPath = typeof flags.config === 'string' ? flags.config : undefined;
  const fromFile = configPath ? readJsonObject(configPath, '--config') : {};
  const v = resolveTrainOptions(flags, { ...saved, ...fromFile }, configPath ?? 'config');
  if (run) {
    refuseMoved(flags, saved, resumeDir!);
    refuseChangedLora(flags, saved, resumeDir!);
  }
  const ppoFlag = PPO_FLAGS.find((f) => flags[f] !== undefined);
  if (ppoFlag && v.estimator !== 'ppo') throw new RemaxInputError(`--${ppoFlag} is a setting of --estimator ppo, but the estimator is ${v.estimator}: add --estimator ppo or drop --${ppoFlag}`);
  if (v['critic-model'] !== undefined && v['critic-from'] !== undefined) throw new RemaxInputError('give --critic-model or --critic-from, not both: --critic-model names the critic\'s starting model itself');
  if (v['critic-from'] === 'reward-model' && v['reward-model'] === undefined) throw new RemaxInputError('--critic-from reward-model needs --reward-model (or use --critic-from policy)');
  refuseWeightsDtypeWithoutLora(weightsDtypeSetting(v).weightsDtype, v['lora-rank'] !== undefined || v.adapter !== undefined);
  const usingDefaultTask = v.model === undefined && v.prompts === undefined;
  // Inputs by absolute path, so that a run resumes from any working directory.
  const file = (key: string, fallback: string) => {
    const given = (v[key] as string | undefined) ?? (usingDefaultTask ? path.join(DEFAULT_TASK, fallback) : undefined);
    return given === undefined ? undefined : path.resolve(given);
  };
  const modelPath = file('model', 'model.bin');
  const tokenizerPath = file('tokenizer', 'tokenizer.bin');
  const promptsPath = file('prompts', 'train.jsonl');
  const evalPath = file('eval-prompts', 'eval.jsonl');
  const chatTemplate = v['chat-template'] === undefined ? undefined : path.resolve(v['chat-template'] as string);
  if (!modelPath) throw new RemaxInputError('--model is required when --prompts is given (or give neither to run the built-in default task)');
  // --dry-run: the engines' memory plan from the model's shape (a Hugging Face config.json alone), nothing trained.
  const maxMemory = maxMemoryFlag(v['max-memory']);
  if (v['dry-run'] === true) {
    try {
      return await dryRun(await trainMemorySettings(v, await planModelFrom(modelPath, '--model', contextOf(v)), undefined), maxMemory, out);
    } finally {
      run?.release();
    }
  }
  if (!promptsPath) throw new RemaxInputError('--prompts is required: a JSONL file with one {"prompt": "...", ...} per line');
  const outDir = resumeDir ?? (v.out as string);
  if (!run) RunFolder.check(outDir, overwrite ? 'overwrite' : 'new'); // before the model is loaded: a folder that holds a run is refused
  const rewardFile = typeof v.reward === 'string' && existsSync(v.reward) ? path.resolve(v.reward) : undefined;
  if (rewardFile) v.reward = rewardFile;
  const rewardModel = v['reward-model'] === undefined ? undefined : resolveRewardModel(v['reward-model'] as string);
  if (rewardModel) v['reward-model'] = path.resolve(v['reward-model'] as string);
  run?.checkInputs({ tokenizer: tokenizerPath, prompts: promptsPath, 'eval-prompts': evalPath, reward: rewardFile, 'chat-template': chatTemplate, 'reward-model': rewardModel?.weights, 'reward-model-head': rewardModel?.head },
    true, v['accept-changed-inputs'] === true);

  const options = trainerOptions(v);
  const ruleReward = v['reward-model'] === undefined || v.reward !== undefined || v['reward-url'] !== undefined ? await makeReward(v) : undefined;
  const loadOptions = v.context === undefined ? {} : { context: v.context as number };
  // LoRA: the base model stays as it is; the run's checkpoint is the adapter folder adapter/ (PEFT's format), and the
  // KL reference is the base (the policy engine with its adapters off).
  const loraSettings = loraSettingsFrom({
    rank: v['lora-rank'] as number | undefined, alpha: v['lora-alpha'] as number | undefined,
    targets: v['lora-targets'] as string | undefined, dropout: v['lora-dropout'] as number | undefined,
  });
  const adapterDir = path.join(outDir, 'adapter');
  const loraRun = loraSettings !== undefined || v.adapter !== undefined;
  // A resumed run continues from its own last checkpoint, in the format the run started with (none yet: from the start).
  const resumed = run ? (loraRun ? (isAdapterFolder(adapterDir) ? { model: adapterDir, format: undefined } : undefined) : findRunModel(run.dir)) : undefined;
  const policySource = loraRun ? modelPath : resumed?.model ?? modelPath;
  const policyModel = await loadModelFromPath(policySource, resumed && !loraRun ? '--resume' : '--model', loadOptions);
  const format = resumed?.format ?? formatOf(policyModel);
  const lora = loraRun
    ? { ...(resumed ? readAdapterFolder(adapterDir, policyModel.config, '--resume') : chooseLora(v.adapter as string | undefined, loraSettings, policyModel.config)!), seed: v.seed as number }
    : undefined;
  const modelOut = lora ? adapterDir : runModelPath(outDir, format, 'model'), referencePath = runModelPath(outDir, format, 'reference');
  const resumeReference = run !== undefined && options.klCoef > 0 && !lora && existsSync(referencePath);
  const { policy, reference, prompts, evalPrompts, maxNewTokens: maxNew } = await setUpRun({
    policy: { model: policyModel, source: policySource },
    // A resumed run keeps the reference it started from; a new one starts from the policy.
    reference: resumeReference ? { model: await loadModelFromPath(referencePath, '--resume', loadOptions), source: referencePath } : undefined,
    tokenizer: tokenizerPath === undefined ? undefined : loadTokenizerFromPath(tokenizerPath, '--tokenizer'),
    prompts: { bytes: readInputFile(promptsPath, '--prompts'), source: promptsPath },
    evalPrompts: evalPath ? { bytes: readInputFile(evalPath, '--eval-prompts'), source: evalPath, limit: v['eval-size'] as number } : undefined,
    truncate: v.truncate === true,
    ...(lora ? { lora } : {}),
    onWarning: (message) => err(message),
    referenceDtype: v['reference-dtype'] as WeightsDtype,
    ...weightsDtypeSetting(v),
    // Before any engine: the plan must fit one instance's 4 GiB per engine and --max-memory in all.
    beforeEngines: async (records) => {
      const planned = { config: policyModel.config, types: (dtype: WeightsDtype) => chooseWeightTypes(policyModel.config, policyModel.weights, policyModel.stored, dtype) };
      const longestPrompt = records.reduce((m, p) => Math.max(m, p.promptIds.length), 0);
      await checkRunMemory(await trainMemorySettings(v, planned, lora?.settings, longestPrompt), maxMemory);
    },
    chat: {
      disabled: v['no-chat-template'] === true,
      ...(chatTemplate ? { template: new TextDecoder().decode(readInputFile(chatTemplate, '--chat-template')), templateSource: chatTemplate } : {}),
    },
  }, options);
  if (reference && reference !== policy) checkSameModel(reference.config, policy.config, resumeReference ? referencePath : policySource, policySource);
  checkStopIds(options.stopIds, policy.config.vocabSize, '--stop-ids');
  const state = resumed ? loadRunState(resumed.model, policyModel, { parameterCount: policy.parameterSlots }, lora ? policy.readAdapters() : undefined) : undefined;
  // --reward-model: its own engine scores the responses, alone or weighted with the rule reward.
  const normalizer = v['reward-normalize'] === true ? new RunningMoments() : undefined;
  if (normalizer && state?.extra.rewardNormalizer !== undefined) normalizer.restore(state.extra.rewardNormalizer, `--resume ${resumed!.model}`);
  const reward = await combinedReward(v, rewardModel, ruleReward, policy, normalizer, loadOptions);
  // A reward server's call may take all its attempts (each with the timeout) and the back-off between them.
  const attemptMs = v['reward-timeout'] as number, retries = v['reward-url'] !== undefined ? v['reward-retries'] as number : 0;
  const callTimeoutMs = (retries + 1) * attemptMs + retries * 10_000;
  const scorer = (groups: Parameters<typeof scoreSamples>[1]) => scoreSamples(reward, groups, {
    timeoutMs: callTimeoutMs, onError: v['on-reward-error'] as RewardErrorPolicy, concurrency: v['reward-concurrency'] as number,
  });
  // PPO's critic: the run's own once it saved one, else from --critic-model, the reward model or the policy.
  const criticFormat: SaveFormat = format === 'gguf' ? 'hf' : format; // GGUF holds no scalar head
  const criticPath = runModelPath(outDir, criticFormat, 'critic');
  const critic = options.estimator === 'ppo'
    ? await loadCritic(v, { resumed: resumed !== undefined, criticPath, rewardModel: rewardModel?.model, policyModel, loadOptions, maxBatch: options.batchSize * options.samplesPerPrompt })
    : undefined;
  // --threads N: N − 1 helper engines on worker threads share each step's decoding and the policy's gradients (and
  // PPO's critic's values and gradients: each helper hosts a critic engine too).
  const trainer = withHelperWorkers(threadCount(v.threads as number | 'auto'),
    (helpers) => new ReMaxTrainer(policy, reference, prompts, scorer, { ...options, maxNewTokens: maxNew }, state, helpers, critic));
  try {

    // The run folder: the reference policy, metrics and samples, then the options (config.json marks a complete start).
    const folder = run ?? RunFolder.open(outDir, overwrite ? 'overwrite' : 'new');
    const metricsPath = folder.file('metrics.jsonl'), samplesPath = folder.file('samples.jsonl'), errorsPath = folder.file('reward-errors.jsonl');
    const { resume: _r, config: _c, 'stop-at': _s, quiet: _q, overwrite: _o, 'accept-changed-inputs': _a, ...toSave } = v;
    const savedOptions = {
      ...toSave, model: modelPath, ...(tokenizerPath ? { tokenizer: tokenizerPath } : {}), prompts: promptsPath,
      ...(evalPath ? { 'eval-prompts': evalPath } : {}), ...(chatTemplate ? { 'chat-template': chatTemplate } : {}),
      ...(typeof v.adapter === 'string' ? { adapter: path.resolve(v.adapter) } : {}),
    };
    if (!resumed) {
      // A new run (or a resumed one that had not saved a checkpoint yet) starts here.
      if (options.klCoef > 0 && !resumeReference && !lora) writeModel(referencePath, modelFiles(policyModel, { format }), '--out');
      writeFileAtomic(metricsPath, '');
      writeFileAtomic(samplesPath, '');
      writeFileAtomic(errorsPath, '');
      folder.checkInputs({ tokenizer: tokenizerPath, prompts: promptsPath, 'eval-prompts': evalPath, reward: rewardFile, 'chat-template': chatTemplate, 'reward-model': rewardModel?.weights, 'reward-model-head': rewardModel?.head },
        false, true);
    } else {
      keepLinesUpTo(metricsPath, trainer.step);
      keepLinesUpTo(samplesPath, trainer.step);
      keepLinesUpTo(errorsPath, trainer.step);
    }
    // The options, with the flags given at a resume merged in: a later plain --resume continues with them.
    folder.writeConfig(savedOptions);
    let lastSaved: number | undefined = resumed ? trainer.step : undefined;
    const save = () => {
      // PPO's critic is written in the same set of files as the policy: a crash leaves both of one step.
      const companions = critic ? engineCheckpointEntries(criticPath, critic.engine, criticFormat, trainer.criticState()) : [];
      const s = trainer.state();
      saveEngineCheckpoint(modelOut, policy, format, normalizer ? { ...s, extra: { ...s.extra, rewardNormalizer: normalizer.state() } } : s, lora ? modelPath : null, companions);
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
    if (v.quiet !== true) err(loadedLine(policy, policySource));
    let rewardErrorsShown = 0;
    progress.start(`remax train: ${options.estimator}, ${prompts.length} prompt${prompts.length === 1 ? '' : 's'} from ${promptsPath}, batch ${options.batchSize} × ` +
      `${options.samplesPerPrompt} sample(s), ${options.steps} steps, ${policy.build} build → ${outDir}` +
      (resumeDir ? ` (resuming at step ${trainer.step})` : ''));
    const stopAt = (v['stop-at'] as number | undefined) ?? options.steps;
    const evalEvery = v['eval-every'] as number, sampleEvery = v['sample-every'] as number, checkpointEvery = v['checkpoint-every'] as number;
    return await withInterruptFlag(async (interrupt) => {
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
        // Failed reward calls that --on-reward-error skip/zero let through: every one logged, the first few shown.
        if (trainer.lastRewardErrors.length > 0) {
          log(errorsPath, trainer.lastRewardErrors.map((error) => JSON.stringify({ step: metrics.step, error })).join('\n') + '\n');
          for (const error of trainer.lastRewardErrors) {
            if (rewardErrorsShown++ < 3) progress.note(`step ${metrics.step}: ${error} (${v['on-reward-error']}; every failure is logged in ${errorsPath})`);
          }
        }
        if (sampleEvery > 0 && metrics.step % sampleEvery === 0) {
          log(samplesPath, trainer.lastSamples.slice(0, 4).map((row) => JSON.stringify(row)).join('\n') + '\n');
        }
        progress.update(metrics);
        if (checkpointEvery > 0 && metrics.step % checkpointEvery === 0 && !trainer.done) save();
      }
      save();
      progress.finish(trainer.done ? `done: ${modelOut} (step ${trainer.step}); metrics in ${metricsPath}; report: remax plot ${metricsPath}`
        : `${interrupt.received ? `interrupted (${interrupt.signal})` : 'stopped'} at step ${trainer.step}: saved to ${outDir} (continue with --resume ${outDir})`);
      return interrupt.exitCode;
    });
  } finally {
    trainer.close();
    run?.release();
  }
}

const contextOf = (v: TrainValues) => (v.context === undefined ? {} : { context: v.context as number });

/** What sizes the run's engines: the policy, its KL reference, the reward model, PPO's critic, the helper threads. */
async function trainMemorySettings(v: TrainValues, policy: PlannedModel, lora: LoraSettings | undefined, longestPrompt?: number): Promise<RunMemorySettings> {
  lora ??= chooseLora(v.adapter as string | undefined, loraSettingsFrom({
    rank: v['lora-rank'] as number | undefined, alpha: v['lora-alpha'] as number | undefined,
    targets: v['lora-targets'] as string | undefined, dropout: v['lora-dropout'] as number | undefined,
  }), policy.config)?.settings;
  const rewardModel = v['reward-model'] === undefined ? undefined
    : await planModelFrom(resolveRewardModel(v['reward-model'] as string).model, '--reward-model', contextOf(v));
  const estimator = v.estimator as Estimator;
  const criticFrom = (v['critic-from'] as string | undefined) ?? (rewardModel ? 'reward-model' : 'policy');
  const critic = estimator !== 'ppo' ? undefined : v['critic-model'] !== undefined
    ? await planModelFrom(path.resolve(v['critic-model'] as string), '--critic-model', contextOf(v)) : criticFrom === 'reward-model' ? rewardModel : policy;
  return {
    command: 'train', policy, lora, rewardModel, critic,
    // A LoRA run's reference is the policy engine itself (adapters off).
    reference: (v['kl-coef'] as number) > 0 && !lora ? { model: policy, dtype: v['reference-dtype'] as WeightsDtype } : undefined,
    batch: v.batch as number, samplesPerPrompt: v['samples-per-prompt'] as number, greedy: usesGreedy(estimator),
    maxNewTokens: v['max-new-tokens'] as number, longestPrompt, activationCheckpointing: v['activation-checkpointing'] === true,
    threads: threadCount(v.threads as number | 'auto'),
    ...weightsDtypeSetting(v),
  };
}

/** The frozen base's weightsDtype that --weights-dtype or --quantize asks for, as a settings field. */
function weightsDtypeSetting(v: TrainValues): { weightsDtype?: WeightsDtype } {
  const weightsDtype = weightsDtypeOf(v['weights-dtype'] as string | undefined, v.quantize as string | undefined);
  return weightsDtype !== undefined ? { weightsDtype } : {};
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
    ...(v.estimator === 'ppo' ? {
      ppo: {
        ...DEFAULT_PPO, epochs: v['ppo-epochs'] as number, minibatches: v['ppo-minibatches'] as number, clipRange: v['ppo-clip'] as number,
        valueClip: v['value-clip'] as number, vfCoef: v['vf-coef'] as number, gaeLambda: v['gae-lambda'] as number,
        criticLr: (v['critic-lr'] as number | undefined) ?? (v.lr as number),
      },
    } : {}),
    ...(v['stop-ids'] !== undefined ? { stopIds: parseStopIds(v['stop-ids'] as string) } : {}),
    ...(v.stop !== undefined ? { stopStrings: [v.stop as string] } : {}),
    activationCheckpointing: v['activation-checkpointing'] === true,
  };
}

/**
 * PPO's critic engine: a resumed run's own (with its optimizer state), else a new one from --critic-model, or by
 * --critic-from the reward model (its head too) or the starting policy with a fresh scalar head. It trains fully,
 * LoRA or not.
 */
async function loadCritic(v: TrainValues, o: { resumed: boolean; criticPath: string; rewardModel: string | undefined; policyModel: Awaited<ReturnType<typeof loadModelFromPath>>;
  loadOptions: { context?: number }; maxBatch: number }) {
  if (o.resumed) {
    completeWrite(commitJournal(o.criticPath), '--resume');
    if (!existsSync(o.criticPath)) {
      throw new RemaxInputError(`--resume --estimator ppo: the run has no critic ${o.criticPath} (it was trained with another estimator): resume it with its own estimator, or start a PPO run from its model with --out`);
    }
    const model = await loadModelFromPath(o.criticPath, '--resume', o.loadOptions);
    const engine = await RemaxEngine.create({ model, modelSource: o.criticPath, maxBatch: o.maxBatch });
    return { engine, resume: loadRunState(o.criticPath, model, { parameterCount: engine.parameterSlots }) };
  }
  const from = v['critic-model'] !== undefined ? 'critic-model' : (v['critic-from'] as string | undefined) ?? (o.rewardModel !== undefined ? 'reward-model' : 'policy');
  const source = from === 'critic-model' ? path.resolve(v['critic-model'] as string) : from === 'reward-model' ? o.rewardModel! : undefined;
  const loaded = source ? await loadModelFromPath(source, from === 'critic-model' ? '--critic-model' : '--reward-model', o.loadOptions) : o.policyModel;
  return { engine: await createCritic({ model: loaded, source: source ?? 'the policy with a fresh scalar head' }, v.seed as number, o.maxBatch) };
}

/** The rule reward, the reward model, or their weighted sum (--reward-weights). */
async function combinedReward(v: TrainValues, resolved: RewardModelSource | undefined, rule: RewardFunction | undefined, policy: RemaxEngine,
  normalizer: RunningMoments | undefined, loadOptions: { context?: number }): Promise<RewardFunction> {
  if (v['reward-normalize'] === true && resolved === undefined) throw new RemaxInputError('--reward-normalize normalises the scores of --reward-model; give one');
  if (resolved === undefined) return rule!;
  const engine = await loadRewardModelEngine(resolved, loadOptions);
  const scored = rewardModelReward(engine, { source: resolved.model, policyVocabSize: policy.config.vocabSize, ...(policy.tokenizer ? { policyTokenizer: policy.tokenizer } : {}), ...(normalizer ? { normalizer } : {}) });
  const weights = parseRewardWeights(v['reward-weights'] as string, rule !== undefined);
  return rule ? weightedRewards(rule, scored, weights) : scored;
}

async function makeReward(v: TrainValues): Promise<RewardFunction> {
  const url = v['reward-url'] as string | undefined;
  const name = (v.reward as string | undefined) ?? 'exact-match';
  if (url === undefined && v['reward-protocol'] !== 'remax') {
    throw new RemaxInputError(`--reward-protocol ${v['reward-protocol']} is the wire format of a reward server: give it with --reward-url`);
  }
  if (url !== undefined) {
    if (v.reward !== undefined) throw new RemaxInputError('give either --reward or --reward-url, not both');
    return httpReward(url, {
      fetch: globalThis.fetch, timeoutMs: v['reward-timeout'] as number, retries: v['reward-retries'] as number, maxBytes: v['reward-max-bytes'] as number,
      protocol: v['reward-protocol'] as RewardProtocol,
    });
  }
  return loadReward(name, v['reward-timeout'] as number);
}

/**
 * --resume continues the run in its folder from its own checkpoint: an --out or --model that names something else
 * would be silently ignored, so it is refused.
 */
function refuseMoved(flags: Record<string, unknown>, saved: Record<string, unknown>, dir: string): void {
  if (typeof flags.out === 'string' && path.resolve(flags.out) !== path.resolve(dir)) {
    throw new RemaxInputError(`--resume ${dir} --out ${flags.out}: a resumed run stays in its folder; to start a new run from it, use --model ${dir}/model… --out ${flags.out}`);
  }
  if (typeof flags.model === 'string' && typeof saved.model === 'string' && path.resolve(flags.model) !== path.resolve(saved.model)) {
    throw new RemaxInputError(`--resume ${dir} --model ${flags.model}: the run continues from its own checkpoint (it started from ${saved.model}); ` +
      'drop --model, or start a new run with --out');
  }
}

/** The reference must be a model of the policy's shape: a KL term against another model is meaningless. */
function checkSameModel(reference: ModelConfig, policy: ModelConfig, referenceSource: string, policySource: string): void {
  const a = weightShapes(reference).map((s) => `${s.name}[${s.shape}]`).join(' '), b = weightShapes(policy).map((s) => `${s.name}[${s.shape}]`).join(' ');
  if (a === b && reference.ropeTheta === policy.ropeTheta && headSize(reference) === headSize(policy)) return;
  throw new RemaxInputError(`the reference ${referenceSource} is not a model of the policy's shape (${policySource}): ` +
    `dim ${reference.dim} vs ${policy.dim}, ${reference.nLayers} vs ${policy.nLayers} layers, vocab ${reference.vocabSize} vs ${policy.vocabSize}; ` +
    'the run folder was mixed with another run\'s files: start again with --overwrite');
}
