// Gradient check of crossEntropyForwardBackward(logits, targets, weights, n, vocab): f64, which returns
// L = −Σ_r w_r·log softmax(logits_r)[t_r] and overwrites the logits with ∂L/∂logits, against an f64 scalar
// L (log-sum-exp with the max shifted out) and its central finite differences on every logit (a sample of 128
// for the big vocabulary). The returned loss is the forward: checked against the f64 L (relErr, absolute below 1).
// Error measure of the gradient: per element |g − fd| / max(|fd|, 1e-2·max|fd|) (support/gradcheck.ts), bound
// 1e-3. Weights include negative values (advantage-weighted log-likelihood) and 0 (the row's gradient must be 0).
// The entropies it writes when asked (the policy's entropy metric): each row's against −Σ p·log p in f64, within
// 1e-5 relative (plus 1e-6 nats, for near one-hot rows whose f32 sum 1 + ε has lost ε); asking for them changes no
// bit of the gradient or loss.
import { crossEntropyForwardBackward } from "../../assembly/kernels/cross-entropy";
import { Rng, allocF32, allocI32, getF32, setF32, setI32, relErr, bits } from "./support/ref";
import { GRAD_TOL, H_REL, randomF64, writeF32, readF64, maxAbs, sampleIndices, centralDiffs, gradError, Worst } from "./support/gradcheck";

const LOSS_TOL: f64 = 1e-5;
const ENTROPY_REL: f64 = 1e-5;
const ENTROPY_ABS: f64 = 1e-6;
const worstSeen = new Worst();
const worstLoss = new Worst();
const worstEntropy = new Worst();

// ---- f64 reference ----
let gLogits = new StaticArray<f64>(0);
let gTargets: i32[] = [];
let gWeights: f64[] = [];
let gVocab = 0;

function lossRef(): f64 {
  let l: f64 = 0;
  for (let r = 0; r < gTargets.length; r++) {
    const base = r * gVocab;
    let m = -Infinity;
    for (let k = 0; k < gVocab; k++) if (gLogits[base + k] > m) m = gLogits[base + k];
    let sum: f64 = 0;
    for (let k = 0; k < gVocab; k++) sum += Math.exp(gLogits[base + k] - m);
    l -= gWeights[r] * (gLogits[base + gTargets[r]] - m - Math.log(sum));
  }
  return l;
}

/** −Σ p·log p of softmax(row r of the f64 logits). */
function entropyRef(r: i32): f64 {
  const base = r * gVocab;
  let m = -Infinity;
  for (let k = 0; k < gVocab; k++) if (gLogits[base + k] > m) m = gLogits[base + k];
  let sum: f64 = 0;
  for (let k = 0; k < gVocab; k++) sum += Math.exp(gLogits[base + k] - m);
  let h: f64 = 0;
  for (let k = 0; k < gVocab; k++) {
    const p = Math.exp(gLogits[base + k] - m) / sum;
    if (p > 0) h -= p * Math.log(p);
  }
  return h;
}

/** Logits uniform in [lo, hi); row r's target targetList[r], weight weightList[r]. */
function runCase(rng: Rng, vocab: i32, targetList: i32[], weightList: f64[], lo: f64, hi: f64, limit: i32 = 1 << 30): f64 {
  const n = targetList.length;
  gVocab = vocab; gTargets = targetList; gWeights = weightList;
  gLogits = randomF64(rng, n * vocab, lo, hi);
  const logits = allocF32(n * vocab + 4), targets = allocI32(n), weights = allocF32(n);
  for (let r = 0; r < n; r++) { setI32(targets, r, targetList[r]); setF32(weights, r, <f32>weightList[r]); }
  writeF32(logits, gLogits);
  for (let g = 0; g < 4; g++) setF32(logits, n * vocab + g, 123.5);
  const plain = allocF32(n * vocab), entropies = allocF32(n + 1);
  writeF32(plain, gLogits);
  setF32(entropies, n, 123.5);

  const loss = crossEntropyForwardBackward(logits, targets, weights, entropies, n, vocab);
  const plainLoss = crossEntropyForwardBackward(plain, targets, weights, 0, n, vocab);

  for (let g = 0; g < 4; g++) expect<f32>(getF32(logits, n * vocab + g)).toBe(123.5, "wrote past the logits");
  expect<f32>(getF32(entropies, n)).toBe(123.5, "wrote past the entropies");
  expect<f64>(loss).toBe(plainLoss, "asking for entropies changed the loss");
  for (let k = 0; k < n * vocab; k++) expect<u32>(bits(getF32(logits, k))).toBe(bits(getF32(plain, k)), "asking for entropies changed the gradient");
  for (let r = 0; r < n; r++) {
    const want = entropyRef(r), got = <f64>getF32(entropies, r);
    expect<f64>(want).toBeLessThanOrEqual(Math.log(<f64>vocab) + 1e-12, "reference entropy ≤ log V");
    const err = Math.abs(got - want) / (ENTROPY_REL * want + ENTROPY_ABS);
    worstEntropy.add(err);
    expect<f64>(err).toBeLessThanOrEqual(1.0, `row ${r} entropy ${got} vs f64 ${want}, vocab=${vocab}`);
  }
  heap.free(plain); heap.free(entropies);
  const le = relErr(loss, lossRef());
  worstLoss.add(le);
  expect<f64>(le).toBeLessThanOrEqual(LOSS_TOL, `returned loss vs f64 loss, vocab=${vocab}`);
  const idx = sampleIndices(rng, n * vocab, limit);
  const fd = centralDiffs(gLogits, idx, lossRef, H_REL * maxAbs(gLogits));
  const e = gradError(readF64(logits, n * vocab), fd, idx);
  worstSeen.add(e);
  heap.free(logits); heap.free(targets); heap.free(weights);
  return e;
}

function randomTargets(rng: Rng, n: i32, vocab: i32): i32[] {
  const t = new Array<i32>(n);
  for (let r = 0; r < n; r++) t[r] = r == 0 ? vocab - 1 : r == 1 ? 0 : rng.below(vocab);
  return t;
}

function randomWeights(rng: Rng, n: i32): f64[] {
  const w = new Array<f64>(n);
  for (let r = 0; r < n; r++) w[r] = <f64>rng.uniform(-2, 2);
  return w;
}

const VOCABS: i32[] = [2, 3, 5, 7, 13, 37, 67, 4, 8];

describe("crossEntropyForwardBackward (finite differences)", () => {
  test("vocab 2, 3, 5, 7, 13, 37, 67 (+4, 8) × n 1, 3, 5, weights in [-2, 2], targets incl. 0 and vocab − 1", () => {
    const rng = new Rng(3001);
    const ns: i32[] = [1, 3, 5];
    for (let a = 0; a < VOCABS.length; a++) {
      for (let b = 0; b < ns.length; b++) {
        const v = VOCABS[a], n = ns[b];
        const e = runCase(rng, v, randomTargets(rng, n, v), randomWeights(rng, n), -2, 2);
        expect<f64>(e).toBeLessThanOrEqual(GRAD_TOL, `vocab=${v} n=${n}`);
      }
    }
  });

  test("peaky rows (logits in ±15), shifted rows (logits in [50, 60]) and a zero weight", () => {
    const rng = new Rng(3002);
    for (let a = 0; a < VOCABS.length; a++) {
      const v = VOCABS[a];
      expect<f64>(runCase(rng, v, randomTargets(rng, 3, v), [1.0, -0.5, 0.0], -15, 15)).toBeLessThanOrEqual(GRAD_TOL, `vocab=${v} peaky`);
      expect<f64>(runCase(rng, v, randomTargets(rng, 2, v), [0.75, 1.25], 50, 60)).toBeLessThanOrEqual(GRAD_TOL, `vocab=${v} shifted`);
    }
  });

  test("the same target in several rows, and vocab 512 (128 sampled logits)", () => {
    const rng = new Rng(3003);
    expect<f64>(runCase(rng, 13, [4, 4, 4, 9], [1.0, 0.5, -1.0, 2.0], -3, 3)).toBeLessThanOrEqual(GRAD_TOL, "repeated target");
    expect<f64>(runCase(rng, 512, randomTargets(rng, 3, 512), randomWeights(rng, 3), -4, 4, 128)).toBeLessThanOrEqual(GRAD_TOL, "vocab 512");
  });

  test("vocab 1: loss 0 and gradient 0 exactly; weight 0 rows give an all-zero gradient row", () => {
    const logits = allocF32(3), targets = allocI32(3), weights = allocF32(3);
    for (let r = 0; r < 3; r++) { setF32(logits, r, <f32>(r * 2 - 1.5)); setI32(targets, r, 0); setF32(weights, r, <f32>(r - 1)); }
    const entropies = allocF32(3);
    expect<f64>(crossEntropyForwardBackward(logits, targets, weights, entropies, 3, 1)).toBe(0);
    for (let r = 0; r < 3; r++) expect<f32>(Mathf.abs(getF32(entropies, r))).toBe(0, "vocab 1: entropy 0");
    heap.free(entropies);
    for (let r = 0; r < 3; r++) expect<f32>(Mathf.abs(getF32(logits, r))).toBe(0);
    heap.free(logits); heap.free(targets); heap.free(weights);

    const rng = new Rng(3004);
    const vocab = 7;
    const lg = allocF32(2 * vocab), tg = allocI32(2), wt = allocF32(2);
    const vals = randomF64(rng, 2 * vocab, -2, 2);
    writeF32(lg, vals);
    setI32(tg, 0, 3); setI32(tg, 1, 6); setF32(wt, 0, 0); setF32(wt, 1, 1);
    crossEntropyForwardBackward(lg, tg, wt, 0, 2, vocab);
    for (let k = 0; k < vocab; k++) expect<f32>(Mathf.abs(getF32(lg, k))).toBe(0, "weight 0 row");
    // weight 1 row: a probability vector minus onehot sums to 0
    let s: f64 = 0;
    for (let k = 0; k < vocab; k++) s += <f64>getF32(lg, vocab + k);
    expect<f64>(Math.abs(s)).toBeLessThanOrEqual(1e-6);
    heap.free(lg); heap.free(tg); heap.free(wt);
  });

  test("worst relative gradient and loss errors (logged)", () => {
    log<string>(`cross-entropy: worst FD error ${worstSeen.value}, worst loss error ${worstLoss.value}, worst entropy error ${worstEntropy.value} of its tolerance`);
    expect<f64>(worstSeen.value).toBeLessThanOrEqual(GRAD_TOL);
  });
});
