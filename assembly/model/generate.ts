import { Model, Workspace, GenerateJob } from "./layout";
import { classifyRows, forwardLayers, layerCacheOffset } from "./forward";
import { sampleToken } from "../kernels/sampler";
import { logSumExp, sumValues } from "../kernels/softmax";

// Batched generation, the whole loop inside WASM. Sequence s uses KV-cache slot s.
// 1. Prefill: all prompt tokens of all sequences are packed into rows (chunks of ws.maxTokens) and run as
//    matrix-matrix work; the last prompt row of each sequence yields its first sampled token.
// 2. Decode: each step packs one row per still-active sequence, so the weights are read once per step for the
//    whole batch. A sequence stops after emitting a stop token (kept), after maxNewTokens, or when its context is full.
// Sequences with the same tokens so far (ReMax's sampled and greedy responses of a prompt, or its k samples) share
// rows: only the first of them is computed, the others sample from its logits and copy its keys and values. The
// prompt is shared that way, and decoding too for as long as their tokens agree (a trained policy's samples often
// follow the greedy path). Identical inputs, identical arithmetic: every sequence gets exactly what it would alone.
// Returns the number of new tokens over all sequences.
export function generate(m: Model, ws: Workspace, job: GenerateJob): i32 {
  const nSeqs = job.nSeqs;
  for (let s = 0; s < nSeqs; s++) setI32(job.outLengths, s, 0);

  // Prefill, chunked so that at most maxTokens rows are in flight.
  let rows = 0, logitRows = 0;
  for (let s = 0; s < nSeqs; s++) {
    if (getI32(job.sharedWith, s) != s) continue; // an earlier sequence's prefill serves this one
    const start = getI32(job.promptOffsets, s), end = getI32(job.promptOffsets, s + 1);
    for (let t = start; t < end; t++) {
      if (rows == ws.maxTokens) {
        prefillChunk(m, ws, job, rows, logitRows);
        rows = 0; logitRows = 0;
      }
      setI32(ws.tokens, rows, getI32(job.promptIds, t));
      setI32(ws.slots, rows, s);
      setI32(ws.positions, rows, t - start);
      if (t == end - 1) { setI32(ws.logitRows, logitRows, rows); logitRows++; }
      rows++;
    }
  }
  if (rows > 0) {
    prefillChunk(m, ws, job, rows, logitRows);
  }
  copySharedPrompts(m, ws, job);

  // Decode: feed back each active sequence's last token, once per group of sequences that still agree.
  let produced = 0;
  for (let s = 0; s < nSeqs; s++) produced += getI32(job.outLengths, s);
  while (true) {
    let n = 0;
    for (let s = 0; s < nSeqs; s++) {
      if (!isActive(m, job, s)) continue;
      const source = getI32(job.sharedWith, s);
      if (source != s) {
        if (isActive(m, job, source)) continue; // the shared sequence's row serves s
        setI32(job.sharedWith, s, s); // the shared sequence has stopped (its own budget): s goes on alone
      }
      setI32(ws.tokens, n, lastToken(job, s));
      setI32(ws.slots, n, s);
      setI32(ws.positions, n, promptLength(job, s) + getI32(job.outLengths, s) - 1);
      setI32(ws.logitRows, n, n);
      n++;
    }
    if (n == 0) break;
    forwardLayers(m, ws, n);
    // The classifier in chunks of ws.maxLogitRows rows, each sampled before the next is computed.
    for (let c = 0; c < n; c += ws.maxLogitRows) {
      const count = min(ws.maxLogitRows, n - c);
      classifyRows(m, ws, c, count);
      for (let j = c; j < c + count; j++) {
        const source = getI32(ws.slots, j);
        for (let s = source + 1; s < nSeqs; s++) {
          if (getI32(job.sharedWith, s) != source || !isActive(m, job, s)) continue;
          copyCacheRows(m, ws, source, s, getI32(ws.positions, j), 1);
          appendToken(m, ws, job, s, j - c);
          produced++;
        }
        appendToken(m, ws, job, source, j - c);
        produced++;
        splitDiverged(job, source);
      }
    }
  }
  return produced;
}

/** Sequences sharing rows with `source` whose last tokens differ from its own go on alone. */
function splitDiverged(job: GenerateJob, source: i32): void {
  const token = lastToken(job, source);
  for (let s = source + 1; s < job.nSeqs; s++) {
    if (getI32(job.sharedWith, s) == source && lastToken(job, s) != token) setI32(job.sharedWith, s, s);
  }
}

// @ts-ignore: decorator
@inline function lastToken(job: GenerateJob, s: i32): i32 {
  const len = getI32(job.outLengths, s);
  return len == 0 ? -1 : getI32(job.outIds, s * job.outStride + len - 1);
}

/**
 * Samples the first new token of each sequence whose last prompt row is among the logit rows [c, c + count) (their
 * logits in ws.logits rows 0…count − 1), and of the sequences sharing that prompt (they come later in the batch).
 */
function samplePrefillRows(m: Model, ws: Workspace, job: GenerateJob, c: i32, count: i32): void {
  for (let j = 0; j < count; j++) {
    const source = getI32(ws.slots, getI32(ws.logitRows, c + j));
    for (let s = source; s < job.nSeqs; s++) {
      if (getI32(job.sharedWith, s) != source) continue;
      if (getI32(job.maxNewTokens, s) > 0 && promptLength(job, s) < m.seqLen) appendToken(m, ws, job, s, j);
    }
  }
}

/** A prefill chunk's layers, then its last-prompt rows' classifier in chunks of ws.maxLogitRows, each sampled. */
function prefillChunk(m: Model, ws: Workspace, job: GenerateJob, rows: i32, logitRows: i32): void {
  forwardLayers(m, ws, rows);
  for (let c = 0; c < logitRows; c += ws.maxLogitRows) {
    const count = min(ws.maxLogitRows, logitRows - c);
    classifyRows(m, ws, c, count);
    samplePrefillRows(m, ws, job, c, count);
  }
}

/** Copies the prompt's keys and values from the sequence whose prefill was shared; splits off diverged ones. */
function copySharedPrompts(m: Model, ws: Workspace, job: GenerateJob): void {
  for (let s = 0; s < job.nSeqs; s++) {
    const source = getI32(job.sharedWith, s);
    if (source == s) continue;
    copyCacheRows(m, ws, source, s, 0, promptLength(job, s));
  }
  for (let s = 0; s < job.nSeqs; s++) if (getI32(job.sharedWith, s) == s) splitDiverged(job, s);
}

/** Copies the keys and values of `count` positions from `position` on, every layer, from slot `from` to slot `to`. */
export function copyCacheRows(m: Model, ws: Workspace, from: i32, to: i32, position: i32, count: i32): void {
  const rowBytes = <usize>(m.nKvHeads * m.headSize) << 2;
  const slotBytes = <usize>m.seqLen * rowBytes;
  const offset = <usize>position * rowBytes, bytes = <usize>count * rowBytes;
  for (let l = 0; l < m.nLayers; l++) {
    const layer = layerCacheOffset(m, ws, l) + offset;
    const src = layer + <usize>from * slotBytes, dst = layer + <usize>to * slotBytes;
    memory.copy(ws.kCache + dst, ws.kCache + src, bytes);
    memory.copy(ws.vCache + dst, ws.vCache + src, bytes);
  }
}

/** Samples from logit row j for sequence s and appends the token (and its log-probability) to the output. */
function appendToken(m: Model, ws: Workspace, job: GenerateJob, s: i32, j: i32): void {
  const vocab = m.vocabSize;
  const logits = ws.logits + ((<usize>j * vocab) << 2);
  const token = sampleToken(logits, vocab, getF32(job.temperature, s), getI32(job.topK, s), getF32(job.topP, s),
    job.rngStates + (<usize>s << 3), ws.probs, ws.ids);
  const len = getI32(job.outLengths, s);
  const at = s * job.outStride + len;
  setI32(job.outIds, at, token);
  if (job.outLogprobs != 0 && getI32(job.wantLogprobs, s) != 0) {
    // At temperature 1 the sampler has left e^(logit − max) of every token in ws.probs: no second pass of exps.
    const logp = getF32(job.temperature, s) == 1
      ? Math.log(<f64>load<f32>(ws.probs + (<usize>token << 2)) / <f64>sumValues(ws.probs, vocab))
      : <f64>load<f32>(logits + (<usize>token << 2)) - logSumExp(logits, vocab, ws.probs);
    store<f32>(job.outLogprobs + (<usize>at << 2), <f32>logp);
  }
  setI32(job.outLengths, s, len + 1);
}

/** Still generating: the last token is not a stop token, the budget is not spent and the context has room for one more. */
function isActive(m: Model, job: GenerateJob, s: i32): bool {
  const len = getI32(job.outLengths, s);
  if (len == 0) return false;
  if (len >= getI32(job.maxNewTokens, s)) return false;
  if (promptLength(job, s) + len >= m.seqLen) return false;
  return !isStopToken(job, lastToken(job, s));
}

function isStopToken(job: GenerateJob, token: i32): bool {
  for (let i = 0; i < job.nStopIds; i++) if (getI32(job.stopIds, i) == token) return true;
  return false;
}

// @ts-ignore: decorator
@inline function promptLength(job: GenerateJob, s: i32): i32 {
  return getI32(job.promptOffsets, s + 1) - getI32(job.promptOffsets, s);
}

// @ts-ignore: decorator
@inline export function getI32(base: usize, i: i32): i32 { return load<i32>(base + (<usize>i << 2)); }
// @ts-ignore: decorator
@inline export function setI32(base: usize, i: i32, v: i32): void { store<i32>(base + (<usize>i << 2), v); }
// @ts-ignore: decorator
@inline export function getF32(base: usize, i: i32): f32 { return load<f32>(base + (<usize>i << 2)); }
