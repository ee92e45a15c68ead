import { Model, Workspace, ScoreJob } from "./layout";
import { forwardTokens } from "./forward";
import { getI32, setI32 } from "./generate";

// Scores of a scalar-head model (a reward model, a critic) at the wanted tokens of given sequences, batched as the
// log-probabilities are: groups of up to ws.maxSeqs sequences share the KV cache (one slot each), their tokens are
// packed into chunks of up to ws.maxTokens rows, and each wanted row gets its score (its logit row of width 1).
export function scores(m: Model, ws: Workspace, job: ScoreJob): void {
  for (let first = 0; first < job.nSeqs; first += ws.maxSeqs) {
    const last = min(job.nSeqs, first + ws.maxSeqs);
    let rows = 0, wanted = 0;
    for (let s = first; s < last; s++) {
      const start = getI32(job.offsets, s), end = getI32(job.offsets, s + 1);
      for (let t = start; t < end; t++) {
        if (rows == ws.maxTokens || wanted == ws.maxLogitRows) {
          forwardTokens(m, ws, rows, wanted);
          writeScores(ws, job, wanted, first);
          rows = 0; wanted = 0;
        }
        setI32(ws.tokens, rows, getI32(job.ids, t));
        setI32(ws.slots, rows, s - first);
        setI32(ws.positions, rows, t - start);
        if (getI32(job.wanted, t) != 0) { setI32(ws.logitRows, wanted, rows); wanted++; }
        rows++;
      }
    }
    if (rows > 0) {
      forwardTokens(m, ws, rows, wanted);
      writeScores(ws, job, wanted, first);
    }
  }
}

function writeScores(ws: Workspace, job: ScoreJob, wanted: i32, first: i32): void {
  for (let j = 0; j < wanted; j++) {
    const row = getI32(ws.logitRows, j);
    const s = getI32(ws.slots, row) + first;
    const t = getI32(job.offsets, s) + getI32(ws.positions, row);
    store<f32>(job.out + (<usize>t << 2), load<f32>(ws.logits + (<usize>j << 2)));
  }
}
