import { Model, Workspace } from "./layout";
import { matmulForward } from "../kernels/matmul";
import { rmsnormForward } from "../kernels/rmsnorm";
import { ropeForward } from "../kernels/rope";
import { attentionForward } from "../kernels/attention";
import { swigluForward } from "../kernels/swiglu";

// The transformer over n packed token rows (ws.tokens / ws.slots / ws.positions), any mix of sequences and
// positions: prefill of many prompts, one decode step of many sequences, or teacher forcing all come here.
// Every row's keys and values are written to its slot's cache before attention, so rows of the same sequence
// in one call see each other causally. Logits are computed only for the nLogitRows rows listed in ws.logitRows,
// into ws.logits[0..nLogitRows).
export function forwardTokens(m: Model, ws: Workspace, n: i32, nLogitRows: i32): void {
  const dim = m.dim, hidden = m.hiddenDim, headSize = dim / m.nHeads, kvDim = m.nKvHeads * headSize;
  const dimBytes = <usize>dim << 2;

  for (let r = 0; r < n; r++) {
    const token = load<i32>(ws.tokens + (<usize>r << 2));
    memory.copy(ws.x + <usize>r * dimBytes, m.tokenEmbedding + <usize>token * dimBytes, dimBytes);
  }

  for (let l = 0; l < m.nLayers; l++) {
    const L = <usize>l;
    // Attention block.
    rmsnormForward(ws.xb, ws.x, m.rmsAtt + L * dimBytes, n, dim, m.normEps);
    matmulForward(ws.q, ws.xb, m.wq + L * <usize>dim * dimBytes, n, dim, dim, false);
    matmulForward(ws.k, ws.xb, m.wk + L * <usize>kvDim * dimBytes, n, dim, kvDim, false);
    matmulForward(ws.v, ws.xb, m.wv + L * <usize>kvDim * dimBytes, n, dim, kvDim, false);
    ropeForward(ws.q, n, dim, ws.positions, m.nHeads, headSize, m.ropeCos, m.ropeSin);
    ropeForward(ws.k, n, kvDim, ws.positions, m.nKvHeads, headSize, m.ropeCos, m.ropeSin);
    const layerCache = L * <usize>ws.maxSeqs * m.seqLen * kvDim << 2;
    storeKeysValues(ws, n, kvDim, m.seqLen, ws.kCache + layerCache, ws.vCache + layerCache);
    attentionForward(ws.xb2, ws.q, ws.kCache + layerCache, ws.vCache + layerCache, n, ws.slots, ws.positions,
      m.nHeads, m.nKvHeads, headSize, m.seqLen, ws.scores);
    matmulForward(ws.x, ws.xb2, m.wo + L * <usize>dim * dimBytes, n, dim, dim, true);
    // Feed-forward block.
    rmsnormForward(ws.xb, ws.x, m.rmsFfn + L * dimBytes, n, dim, m.normEps);
    matmulForward(ws.hb, ws.xb, m.w1 + L * <usize>hidden * dimBytes, n, dim, hidden, false);
    matmulForward(ws.hb2, ws.xb, m.w3 + L * <usize>hidden * dimBytes, n, dim, hidden, false);
    swigluForward(ws.hb, ws.hb, ws.hb2, n * hidden);
    matmulForward(ws.x, ws.hb, m.w2 + L * <usize>dim * (<usize>hidden << 2), n, hidden, dim, true);
  }

  if (nLogitRows == 0) return;
  // Final norm of the wanted rows only, gathered into xb, then the classifier.
  for (let j = 0; j < nLogitRows; j++) {
    const r = load<i32>(ws.logitRows + (<usize>j << 2));
    rmsnormForward(ws.xb + <usize>j * dimBytes, ws.x + <usize>r * dimBytes, m.rmsFinal, 1, dim, m.normEps);
  }
  matmulForward(ws.logits, ws.xb, m.wcls, nLogitRows, dim, m.vocabSize, false);
}

function storeKeysValues(ws: Workspace, n: i32, kvDim: i32, seqLen: i32, kCache: usize, vCache: usize): void {
  const rowBytes = <usize>kvDim << 2;
  for (let r = 0; r < n; r++) {
    const slot = load<i32>(ws.slots + (<usize>r << 2));
    const pos = load<i32>(ws.positions + (<usize>r << 2));
    const at = (<usize>slot * seqLen + pos) * rowBytes;
    memory.copy(kCache + at, ws.k + <usize>r * rowBytes, rowBytes);
    memory.copy(vCache + at, ws.v + <usize>r * rowBytes, rowBytes);
  }
}
