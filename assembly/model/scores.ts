import { Model, Workspace, ScoreJob } from "./layout";
import { classifyRows, forwardLayers } from "./forward";
import { copyCacheRows, getI32, setI32 } from "./generate";

// Scores of a scalar-head model (a reward model, a critic) at the wanted tokens of given sequences, batched as the
// log-probabilities are: groups of up to ws.maxSeqs sequences share the KV cache (one slot each), their tokens are
// packed into chunks of up to ws.maxTokens rows, and each wanted row gets its score (its logit row of width 1).
// Two savings, neither changing a bit of any score:
// - Only the wanted rows go through the last layer past its keys and values (forwardLayers' kept rows): scoring at the
//   last token, that layer costs its key and value projections alone.
// - A sequence whose leading tokens are an earlier one's of its group (a prompt's responses share the prompt) takes
//   that prefix's keys and values, and scores, from it instead of computing them: the same tokens at the same
//   positions give the same values.
export function scores(m: Model, ws: Workspace, job: ScoreJob): void {
  for (let first = 0; first < job.nSeqs; first += ws.maxSeqs) {
    const last = min(job.nSeqs, first + ws.maxSeqs);
    let rows = 0, wanted = 0;
    let chunkSeq = 0, chunkPos = 0; // sequence and position of the pending chunk's first row
    for (let s = first; s < last; s++) {
      const start = getI32(job.offsets, s), end = getI32(job.offsets, s + 1);
      let t0 = start;
      const source = sharedSource(job, first, s);
      if (source >= 0) {
        const shared = sharedLength(job, source, s);
        // The source's rows before `shared` may still wait in the pending chunk (conservatively: any of its rows).
        if (rows > 0 && (source > chunkSeq || (source == chunkSeq && shared > chunkPos))) {
          scoreChunk(m, ws, job, rows, wanted, first);
          rows = 0; wanted = 0;
        }
        copyCacheRows(m, ws, source - first, s - first, 0, shared);
        const from = getI32(job.offsets, source);
        for (let i = 0; i < shared; i++) {
          if (getI32(job.wanted, start + i) != 0) store<f32>(job.out + (<usize>(start + i) << 2), load<f32>(job.out + (<usize>(from + i) << 2)));
        }
        t0 = start + shared;
      }
      for (let t = t0; t < end; t++) {
        if (rows == ws.maxTokens || wanted == ws.maxLogitRows) {
          scoreChunk(m, ws, job, rows, wanted, first);
          rows = 0; wanted = 0;
        }
        if (rows == 0) { chunkSeq = s; chunkPos = t - start; }
        setI32(ws.tokens, rows, getI32(job.ids, t));
        setI32(ws.slots, rows, s - first);
        setI32(ws.positions, rows, t - start);
        if (getI32(job.wanted, t) != 0) { setI32(ws.logitRows, wanted, rows); wanted++; }
        rows++;
      }
    }
    if (rows > 0) scoreChunk(m, ws, job, rows, wanted, first);
  }
}

/** The chunk's layers, then each wanted row's score into job.out. */
function scoreChunk(m: Model, ws: Workspace, job: ScoreJob, rows: i32, wanted: i32, first: i32): void {
  forwardLayers(m, ws, rows, wanted);
  if (wanted == 0) return;
  classifyRows(m, ws, 0, wanted);
  // The wanted rows are now rows 0…wanted − 1 (forwardLayers): their slots and positions give each score's place.
  for (let j = 0; j < wanted; j++) {
    const s = getI32(ws.slots, j) + first;
    const t = getI32(job.offsets, s) + getI32(ws.positions, j);
    store<f32>(job.out + (<usize>t << 2), load<f32>(ws.logits + (<usize>j << 2)));
  }
}

/** The earlier sequence of the group [first, s) sharing the longest prefix with s (the first of equals), or −1. */
function sharedSource(job: ScoreJob, first: i32, s: i32): i32 {
  let best = -1, bestLength = 0;
  for (let u = first; u < s; u++) {
    const length = sharedLength(job, u, s);
    if (length > bestLength) { best = u; bestLength = length; }
  }
  return best;
}

/**
 * Leading positions where s has u's tokens, up to the first where s wants a score that u does not (u has none to give).
 */
function sharedLength(job: ScoreJob, u: i32, s: i32): i32 {
  const from = getI32(job.offsets, u), start = getI32(job.offsets, s);
  const length = min(getI32(job.offsets, u + 1) - from, getI32(job.offsets, s + 1) - start);
  let i = 0;
  while (i < length && getI32(job.ids, from + i) == getI32(job.ids, start + i)
    && (getI32(job.wanted, start + i) == 0 || getI32(job.wanted, from + i) != 0)) i++;
  return i;
}
