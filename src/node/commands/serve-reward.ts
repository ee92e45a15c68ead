// `remax serve-reward`: a reward (a .ts/.js module or a built-in name, loaded as `remax train --reward` loads it)
// served over HTTP, for trainers on other machines: remax train --reward-url (POST /), and OpenRLHF's remote reward
// client (--remote_rm_url http://HOST:PORT/get_reward). See reward-server.ts for the answers and the limits.
import type { FlagSpec } from '../args';
import { parseFlags, helpText, numberFlag, optionalString, requiredString } from '../args';
import { loadReward } from '../load-reward';
import { loadRewardModelEngine, parseRewardWeights, resolveRewardModel } from '../reward-model-source';
import { loadedLine } from '../model-io';
import { rewardModelReward, weightedRewards } from '../../core/reward-model-reward';
import type { RewardFunction } from '../../core/rewards';
import { startRewardServer, type RewardServer } from '../reward-server';
import { RemaxInputError } from '../../core/errors';
import { DEFAULT_MAX_ANSWER_BYTES } from '../../core/http-reward';
import { rewardFunctionScorer, type RequestScorer } from '../../core/request-scorer';

const DEFAULTS = { port: 5000, timeout: 30_000, maxConcurrent: 8, maxQueue: 64, maxRequestBytes: DEFAULT_MAX_ANSWER_BYTES };

const serveRewardFlags: FlagSpec[] = [
  { name: 'reward', type: 'string', help: 'the reward: a .ts/.js module (default export (samples) => number[]) or a built-in name, as remax train --reward takes it' },
  { name: 'reward-model', type: 'string', help: 'score with a reward model (a remax rm run folder, a …ForSequenceClassification folder, a llama2.c checkpoint with its .score); with --reward too, the weighted sum' },
  { name: 'reward-weights', type: 'string', help: 'weights of --reward and --reward-model in their sum, "RULE,MODEL"', default: '1,1' },
  { name: 'reward-timeout', type: 'string', help: 'milliseconds per request\'s reward call (a module past it has its worker thread stopped; the answer is 500)', default: String(DEFAULTS.timeout) },
  { name: 'port', type: 'string', help: 'TCP port; 0 picks a free one', default: String(DEFAULTS.port) },
  { name: 'host', type: 'string', help: 'address to listen on; 0.0.0.0 (or ::) to let other machines in', default: '127.0.0.1' },
  { name: 'max-concurrent', type: 'string', help: 'requests scored at once; the next ones wait their turn', default: String(DEFAULTS.maxConcurrent) },
  { name: 'max-queue', type: 'string', help: 'requests that may wait for a turn; past them a request gets 503 with Retry-After', default: String(DEFAULTS.maxQueue) },
  { name: 'max-request-bytes', type: 'string', help: 'largest request body; a larger one gets 413', default: String(DEFAULTS.maxRequestBytes) },
  { name: 'quiet', type: 'boolean', help: 'no line per request answered with an error' },
];

const SUMMARY = 'Serve a reward over HTTP to trainers on other machines. POST / takes {"samples":[{"prompt","completion","meta"}]} ' +
  '(remax train --reward-url); POST /get_reward takes OpenRLHF\'s {"query","prompts","labels"} (--remote_rm_url). ' +
  'Both answer {"rewards":[...]}; errors are {"error":"..."} with a 4xx (the request) or 5xx (the reward) status.';

/** Serves until SIGINT, SIGTERM or SIGHUP, then stops cleanly (requests being scored finish first, for up to 5 s). */
export async function serveRewardCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<void> {
  const flags = parseFlags('serve-reward', argv, serveRewardFlags);
  if (flags.help) return out(helpText('serve-reward', SUMMARY, serveRewardFlags));
  const modelSource = optionalString(flags, 'reward-model');
  const name = modelSource === undefined ? requiredString(flags, 'reward', 'a .ts/.js reward module or a built-in reward name (or --reward-model)') : optionalString(flags, 'reward');
  const timeoutMs = numberFlag(flags, 'reward-timeout', DEFAULTS.timeout, { min: 0, minExclusive: true, max: 2147483647 });
  const port = numberFlag(flags, 'port', DEFAULTS.port, { integer: true, min: 0, max: 65535 });
  const host = optionalString(flags, 'host') ?? '127.0.0.1';
  const maxConcurrent = numberFlag(flags, 'max-concurrent', DEFAULTS.maxConcurrent, { integer: true, min: 1, max: 4096 });
  const maxQueue = numberFlag(flags, 'max-queue', DEFAULTS.maxQueue, { integer: true, min: 0, max: 1_000_000 });
  const maxRequestBytes = numberFlag(flags, 'max-request-bytes', DEFAULTS.maxRequestBytes, { integer: true, min: 1 });

  const weights = modelSource === undefined ? undefined : parseRewardWeights(optionalString(flags, 'reward-weights') ?? '1,1', name !== undefined);
  const rule = name === undefined ? undefined : await loadReward(name, timeoutMs);
  // The one place that decides what scores a request: the reward, a reward model (its own engine, the text encoded
  // with its own tokenizer: requests carry no ids), or their weighted sum.
  let reward: RewardFunction = rule!;
  if (modelSource !== undefined) {
    const source = resolveRewardModel(modelSource);
    const engine = await loadRewardModelEngine(source);
    const scored = rewardModelReward(engine, { source: source.model, policyVocabSize: engine.config.vocabSize, fromText: true });
    reward = rule ? weightedRewards(rule, scored, weights!) : scored;
    err(`remax serve-reward: ${loadedLine(engine, source.model)}`);
  }
  const scorer: RequestScorer = rewardFunctionScorer(reward, timeoutMs);
  const closeReward = async () => { if (rule && 'close' in rule) await (rule as { close(): Promise<void> }).close(); };

  let server: RewardServer;
  try {
    const onProblem = flags.quiet === true ? undefined : (line: string) => err(`remax serve-reward: ${line}`);
    server = await startRewardServer(scorer, { host, port, maxConcurrent, maxQueue, maxRequestBytes, onProblem });
  } catch (error) {
    await closeReward();
    const code = (error as NodeJS.ErrnoException).code;
    throw new RemaxInputError(`cannot listen on ${host}:${port} (${code ?? (error as Error).message})` +
      (code === 'EADDRINUSE' ? ': the port is taken; pick another with --port (0 = any free port)' : ''));
  }
  out(`remax reward server: ${server.url}  (remax: POST /, OpenRLHF: POST /get_reward; Ctrl-C stops)`);
  const signal = await new Promise<string>((resolve) => {
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    const handlers = signals.map((s) => [s, () => {
      for (const [other, handler] of handlers) process.removeListener(other, handler);
      resolve(s);
    }] as const);
    for (const [s, handler] of handlers) process.on(s, handler);
  });
  await server.close();
  await closeReward();
  out(`remax reward server: stopped (${signal})`);
}
