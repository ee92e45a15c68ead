import { Model, Workspace, LogprobsJob } from "./layout";
import { classifyRows, forwardLayers } from "./forward";
import { logSumExp } from "../kernels/softmax";
import { getI32, setI32 } from "./generate";

// Teacher-forced log-probabilities of given sequences, batched: groups of up to ws.maxSeqs sequences share the
// KV cache (one slot each); their tokens are packed into chunks of up to ws.maxTokens rows, and every row that
// has a next token in its sequence gets logits, from which log p(next) is taken.
export function logprobs(m: Model, ws: Workspace, job: LogprobsJob): void {
  for (let first = 0; first < job.nSeqs; first += ws.maxSeqs) {
    const last = min(job.nSeqs, first + ws.maxSeqs);
    let rows = 0, logitRows = 0;
    for (let s = first; s < last; s++) {
      const start = getI32(job.offsets, s), end = getI32(job.offsets, s + 1);
      for (let t = start; t < end; t++) {
        if (rows == ws.maxTokens) {
          forwardChunk(m, ws, job, rows, logitRows, first);
          rows = 0; logitRows = 0;
        }
        setI32(ws.tokens, rows, getI32(job.ids, t));
        setI32(ws.slots, rows, s - first);
        setI32(ws.positions, rows, t - start);
        if (t + 1 < end) { setI32(ws.logitRows, logitRows, rows); logitRows++; }
        rows++;
      }
    }
    if (rows > 0) {
      forwardChunk(m, ws, job, rows, logitRows, first);
    }
  }
}

/** The layers over a chunk of rows, then the classifier and log-softmax in chunks of ws.maxLogitRows logit rows. */
function forwardChunk(m: Model, ws: Workspace, job: LogprobsJob, rows: i32, logitRows: i32, first: i32): void {
  forwardLayers(m, ws, rows);
  for (let c = 0; c < logitRows; c += ws.maxLogitRows) {
    const count = min(ws.maxLogitRows, logitRows - c);
    classifyRows(m, ws, c, count);
    writeLogprobs(m, ws, job, c, count, first);
  }
}

// ws.tokens / slots / positions still describe the chunk, so each logit row knows its sequence and position;
// the target token is read from the job (it may sit in the next chunk). Logit rows [c, c + count) are in ws.logits.
function writeLogprobs(m: Model, ws: Workspace, job: LogprobsJob, c: i32, count: i32, first: i32): void {
  const vocab = m.vocabSize;
  for (let j = 0; j < count; j++) {
    const row = getI32(ws.logitRows, c + j);
    const s = getI32(ws.slots, row) + first;
    const pos = getI32(ws.positions, row);
    const start = getI32(job.offsets, s);
    const target = getI32(job.ids, start + pos + 1);
    const logits = ws.logits + ((<usize>j * vocab) << 2);
    const logp = <f64>load<f32>(logits + (<usize>target << 2)) - logSumExp(logits, vocab, ws.probs);
    store<f32>(job.out + (<usize>(start - s + pos) << 2), <f32>logp);
  }
}
