/**
 * The wire formats of a reward served over HTTP, one place for both sides (the trainer's client, http-reward.ts, and
 * `remax serve-reward`):
 *
 *   remax     POST {"samples": [{"prompt": "...", "completion": "...", "meta": {...}}, ...]}  →  {"rewards": [...]}
 *   openrlhf  POST {"query": [prompt + completion, ...], "prompts": [...], "labels": [...]}
 *             →  {"rewards": [...], "scores": [...], "extra_logs": {}}
 *
 * OpenRLHF's remote reward client (remote_rm_url) posts the full texts as "query" (each a prompt followed by its
 * response), the prompts and the dataset's labels, and reads "rewards" from the answer (newer versions also "scores"
 * and "extra_logs"). Older OpenRLHF versions and its curl examples post "query" alone, or without "labels": a missing
 * "prompts" makes every query a completion of the empty prompt, a missing "labels" leaves meta without a label.
 * A sample's label is its prompt line's "label" field (meta.label); a sample without one is sent "", as OpenRLHF
 * sends for a dataset without a label column. Token ids do not travel: a served reward sees empty promptIds and
 * completionIds.
 */
import { RemaxInputError, preview, requireShallow } from './errors';
import type { RewardSample } from './rewards';

export type RewardProtocol = 'remax' | 'openrlhf';
export const REWARD_PROTOCOLS: readonly RewardProtocol[] = ['remax', 'openrlhf'];

/** The JSON a client posts for these samples. */
export function rewardRequestBody(protocol: RewardProtocol, samples: RewardSample[]): string {
  if (protocol === 'openrlhf') {
    return JSON.stringify({
      query: samples.map((s) => s.prompt + s.completion),
      prompts: samples.map((s) => s.prompt),
      labels: samples.map((s) => (Object.hasOwn(s.meta, 'label') ? s.meta.label : '')),
    });
  }
  return JSON.stringify({ samples: samples.map((s) => ({ prompt: s.prompt, completion: s.completion, meta: s.meta })) });
}

/** The JSON a server answers with these rewards. */
export function rewardAnswerBody(protocol: RewardProtocol, rewards: number[]): string {
  return JSON.stringify(protocol === 'openrlhf' ? { rewards, scores: rewards, extra_logs: {} } : { rewards });
}

/**
 * The samples of a request body (already parsed JSON), for the server. Bad input is a RemaxInputError whose message
 * names the field and the index (the server answers it with 400).
 */
export function parseRewardRequest(protocol: RewardProtocol, body: unknown): RewardSample[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RemaxInputError(`the request body must be a JSON object, got ${preview(body)}`);
  }
  requireShallow(body, 'the request body'); // a reward's copy of its samples would overflow the stack
  return protocol === 'openrlhf' ? parseOpenRlhf(body as Record<string, unknown>) : parseRemax(body as Record<string, unknown>);
}

function parseRemax(body: Record<string, unknown>): RewardSample[] {
  if (!('samples' in body) && 'query' in body) {
    throw new RemaxInputError('this endpoint takes {"samples": [...]}; an OpenRLHF request ({"query": [...]}) goes to POST /get_reward');
  }
  const samples = body.samples;
  if (!Array.isArray(samples)) throw new RemaxInputError(`"samples" must be an array of {"prompt", "completion", "meta"}, got ${preview(samples)}`);
  return samples.map((s: unknown, i) => {
    if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new RemaxInputError(`samples[${i}] must be an object {"prompt", "completion", "meta"}, got ${preview(s)}`);
    const { prompt, completion, meta = {} } = s as Record<string, unknown>;
    if (typeof prompt !== 'string') throw new RemaxInputError(`samples[${i}].prompt must be a string, got ${preview(prompt)}`);
    if (typeof completion !== 'string') throw new RemaxInputError(`samples[${i}].completion must be a string, got ${preview(completion)}`);
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw new RemaxInputError(`samples[${i}].meta must be an object, got ${preview(meta)}`);
    return { prompt, completion, promptIds: [], completionIds: [], meta: meta as Record<string, unknown> };
  });
}

function parseOpenRlhf(body: Record<string, unknown>): RewardSample[] {
  if (!('query' in body) && 'samples' in body) {
    throw new RemaxInputError('this endpoint takes OpenRLHF\'s {"query": [...], "prompts": [...], "labels": [...]}; a remax request ({"samples": [...]}) goes to POST /');
  }
  const queries = stringList(body, 'query', true)!;
  const prompts = stringList(body, 'prompts', false);
  const labels = body.labels;
  if (labels !== undefined && labels !== null && !Array.isArray(labels)) throw new RemaxInputError(`"labels" must be an array (one label per query), got ${preview(labels)}`);
  for (const [name, list] of [['prompts', prompts], ['labels', labels]] as const) {
    if (Array.isArray(list) && list.length !== queries.length) {
      throw new RemaxInputError(`"${name}" has ${list.length} item${list.length === 1 ? '' : 's'} and "query" ${queries.length}: give one per query`);
    }
  }
  return queries.map((query, i) => {
    const prompt = prompts?.[i] ?? '';
    const start = promptStart(query, prompt);
    if (start < 0) {
      throw new RemaxInputError(`query[${i}] does not start with prompts[${i}] (each query is its prompt followed by the response): ` +
        `query ${preview(query, 60)}, prompt ${preview(prompt, 60)}`);
    }
    const meta = Array.isArray(labels) ? { label: labels[i] as unknown } : {};
    return { prompt, completion: query.slice(start + prompt.length), promptIds: [], completionIds: [], meta };
  });
}

/**
 * Where the prompt starts in its query, or −1. OpenRLHF decodes the whole sequence with its special tokens, so a
 * tokenizer that adds a BOS puts it (and SentencePiece a space after it) before the prompt text: leading tokens of the
 * form <…> (`<s>`, `<|begin_of_text|>`), each optionally followed by one space, are skipped.
 */
function promptStart(query: string, prompt: string): number {
  if (query.startsWith(prompt)) return 0;
  const lead = /^(?:<[^<>\s]{1,40}>\s?)+/.exec(query)?.[0];
  return lead !== undefined && query.startsWith(prompt, lead.length) ? lead.length : -1;
}

/** body[name] as an array of strings; undefined when absent (or null) and not required. */
function stringList(body: Record<string, unknown>, name: string, required: boolean): string[] | undefined {
  const list = body[name];
  if ((list === undefined || list === null) && !required) return undefined;
  if (!Array.isArray(list)) throw new RemaxInputError(`"${name}" must be an array of strings, got ${preview(list)}`);
  const bad = list.findIndex((item) => typeof item !== 'string');
  if (bad >= 0) throw new RemaxInputError(`${name}[${bad}] must be a string, got ${preview(list[bad])}`);
  return list as string[];
}
