import { argmax, maxValue, expShifted } from "./softmax";
import { rngNextF32 } from "./rng";

// Picks the next token from one row of logits.
// temperature ≤ 0: greedy (first index of the maximum logit). Otherwise softmax(logits / temperature), then
// top-k (keep the k most likely; 0 = off), then top-p (the smallest set of the most likely remaining tokens whose
// renormalised mass reaches p; 1 = off), then one draw from the seeded generator at rngState.
// Tokens rank by probability, ties by token id, so the kept set is a pure function of the logits. It is found
// without sorting: the last kept token is selected (a heap for top-k; for top-p, probability buckets narrow the
// boundary down to one bucket, then a mass-guided quickselect), and
// the draw then walks the vocabulary in id order over the tokens that rank at or before it.
// scratchProbs (vocab floats) and scratchIds (vocab ints) are workspace buffers.
export function sampleToken(
  logits: usize, vocab: i32, temperature: f32, topK: i32, topP: f32, rngState: usize,
  scratchProbs: usize, scratchIds: usize,
): i32 {
  if (!(temperature > 0) || vocab == 1) return argmax(logits, vocab);
  const probs = scratchProbs;
  const total = expShifted(probs, logits, vocab, <f32>1.0 / temperature, maxValue(logits, vocab));
  const u = rngNextF32(rngState);
  const useTopK = topK > 0 && topK < vocab;
  const useTopP = topP < <f32>1.0 && topP > <f32>0.0;
  if (!useTopK && !useTopP) return drawFromAll(probs, vocab, u * total);

  // The last kept token (the worst of the top k, the heap's root, or the nucleus boundary) and the kept mass.
  // Masses add up in f64: over tens of thousands of tokens f32 sums drift by more than one token's share.
  let last: i32;
  let kept: f64;
  if (useTopK) {
    const count = selectTopK(probs, vocab, topK, scratchIds);
    let mass: f64 = 0;
    for (let j = 0; j < count; j++) mass += pr(probs, id(scratchIds, j));
    last = useTopP ? nucleusBoundary(scratchIds, count, probs, <f64>topP * mass) : id(scratchIds, 0);
    kept = massUpTo(scratchIds, count, probs, last);
  } else {
    // Tokens below (1 − p)/(vocab − 1) of the mass can never be in the nucleus (llama2.c's cut): fewer candidates.
    const cutoff = (<f32>1.0 - topP) / <f32>(vocab - 1) * total;
    last = nucleusOfAll(probs, vocab, cutoff, topP, scratchIds);
    kept = nucleusMass;
  }
  const r = <f64>u * kept;
  let cumulative: f64 = 0;
  let chosen = last;
  for (let i = 0; i < vocab; i++) {
    if (before(probs, last, i)) continue;
    cumulative += pr(probs, i);
    chosen = i;
    if (r < cumulative) return i;
  }
  return chosen;
}

// Buckets of probabilities by their float bits: 8 exponent and 4 mantissa bits, so a bucket spans 1/16 of an octave
// and a higher bucket holds only more probable tokens. The probabilities are e^(logit − max) ≤ 1: keys < 2048.
const BUCKET_SHIFT: u32 = 19;
const BUCKETS: i32 = 2048;
const bucketMass = memory.data(BUCKETS << 3, 16); // f64 per bucket
/** The mass of the nucleus nucleusOfAll found (a second result). */
let nucleusMass: f64 = 0;

// @ts-ignore: decorator
@inline function bucketOf(p: f32): i32 { return <i32>(reinterpret<u32>(p) >> BUCKET_SHIFT); }

/**
 * The nucleus boundary over the whole vocabulary (tokens with probability ≥ cutoff): the masses of the probability
 * buckets locate the bucket the boundary falls in, and the quickselect runs on that bucket's tokens only (a flat
 * distribution of 32000 tokens spreads over a few dozen buckets). With no candidate, the most probable token.
 */
function nucleusOfAll(probs: usize, vocab: i32, cutoff: f32, topP: f32, ids: usize): i32 {
  memory.fill(bucketMass, 0, <usize>BUCKETS << 3);
  let total: f64 = 0;
  for (let i = 0; i < vocab; i++) {
    const p = pr(probs, i);
    total += p;
    if (p >= cutoff) {
      const at = bucketMass + (<usize>bucketOf(p) << 3);
      store<f64>(at, load<f64>(at) + p);
    }
  }
  const target = <f64>topP * total;
  // From the most probable bucket down: the first whose mass takes the running total to the target. If rounding
  // leaves the total short, the boundary is the last token of the lowest bucket (the nucleus is every candidate).
  let above: f64 = 0;
  let boundary = -1;
  for (let b = BUCKETS - 1; b >= 0; b--) {
    const mass = load<f64>(bucketMass + (<usize>b << 3));
    if (mass == 0) continue;
    boundary = b;
    if (above + mass >= target) break;
    above += mass;
  }
  if (boundary < 0) {
    // p below 1/vocab on a flat distribution: the cut dropped every token; the most likely one is always in.
    const best = argmax(probs, vocab);
    nucleusMass = pr(probs, best);
    return best;
  }
  let count = 0;
  for (let i = 0; i < vocab; i++) {
    const p = pr(probs, i);
    if (p >= cutoff && bucketOf(p) == boundary) { store<i32>(ids + (<usize>count << 2), i); count++; }
  }
  const last = nucleusBoundary(ids, count, probs, target - above);
  nucleusMass = above + massUpTo(ids, count, probs, last);
  return last;
}

/** Σ probability of the tokens among ids[0..count) that rank at or before `last`. */
function massUpTo(ids: usize, count: i32, probs: usize, last: i32): f64 {
  let mass: f64 = 0;
  for (let j = 0; j < count; j++) {
    const t = id(ids, j);
    if (!before(probs, last, t)) mass += pr(probs, t);
  }
  return mass;
}

/**
 * The lowest-ranked token of the nucleus among ids[0..count): the token t such that the tokens ranking at or
 * before t hold at least `target` mass and those strictly before it do not. Quickselect guided by mass: expected
 * linear time, and the answer is unique because the ranking is a total order.
 */
function nucleusBoundary(ids: usize, count: i32, probs: usize, target: f64): i32 {
  let lo = 0, hi = count;
  let needed = target;
  while (hi - lo > 1) {
    const pivot = id(ids, lo + ((hi - lo) >> 1));
    // Partition [lo, hi): the tokens ranking before the pivot first, then the pivot, then the rest.
    let store_ = lo;
    for (let j = lo; j < hi; j++) if (before(probs, id(ids, j), pivot)) { swap(ids, j, store_); store_++; }
    let upper: f64 = 0;
    for (let j = lo; j < store_; j++) upper += pr(probs, id(ids, j));
    if (upper >= needed) { hi = store_; continue; }
    if (upper + <f64>pr(probs, pivot) >= needed) return pivot;
    needed -= upper + <f64>pr(probs, pivot);
    // Everything from store_ on except the pivot ranks after it: drop the pivot and continue with those.
    let next = store_;
    for (let j = store_; j < hi; j++) if (id(ids, j) != pivot) { swap(ids, j, next); next++; }
    lo = store_;
    hi = next;
    if (lo == hi) return pivot; // rounding left a sliver of mass unclaimed: the nucleus is everything
  }
  return id(ids, lo);
}

// @ts-ignore: decorator
@inline function pr(probs: usize, i: i32): f32 { return load<f32>(probs + (<usize>i << 2)); }
// @ts-ignore: decorator
@inline function id(ids: usize, j: i32): i32 { return load<i32>(ids + (<usize>j << 2)); }

/** Inverse-CDF draw over all tokens: the first token whose running mass exceeds r. */
function drawFromAll(probs: usize, vocab: i32, r: f32): i32 {
  let cumulative: f32 = 0;
  for (let i = 0; i < vocab; i++) {
    cumulative += pr(probs, i);
    if (r < cumulative) return i;
  }
  return vocab - 1;
}

/** a ranks before b: more probable, or equally probable with a smaller id. */
// @ts-ignore: decorator
@inline function before(probs: usize, a: i32, b: i32): bool {
  const pa = pr(probs, a), pb = pr(probs, b);
  return pa > pb || (pa == pb && a < b);
}

/** Writes the ids of the k highest-ranked tokens to ids[0..k) (unordered), using a heap whose root is the worst kept. */
function selectTopK(probs: usize, vocab: i32, k: i32, ids: usize): i32 {
  for (let i = 0; i < k; i++) { store<i32>(ids + (<usize>i << 2), i); siftUpWorst(ids, i, probs); }
  for (let i = k; i < vocab; i++) {
    if (before(probs, i, id(ids, 0))) { store<i32>(ids, i); siftDownWorst(ids, 0, k, probs); }
  }
  return k;
}

// Heap ordered so that the parent ranks after its children (the worst kept token is at the root).
function siftUpWorst(ids: usize, i: i32, probs: usize): void {
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!before(probs, id(ids, parent), id(ids, i))) break;
    swap(ids, i, parent);
    i = parent;
  }
}

function siftDownWorst(ids: usize, i: i32, n: i32, probs: usize): void {
  while (true) {
    const l = 2 * i + 1, r = l + 1;
    let worst = i;
    if (l < n && before(probs, id(ids, worst), id(ids, l))) worst = l;
    if (r < n && before(probs, id(ids, worst), id(ids, r))) worst = r;
    if (worst == i) return;
    swap(ids, i, worst);
    i = worst;
  }
}

// @ts-ignore: decorator
@inline function swap(ids: usize, i: i32, j: i32): void {
  const pi = ids + (<usize>i << 2), pj = ids + (<usize>j << 2);
  const t = load<i32>(pi); store<i32>(pi, load<i32>(pj)); store<i32>(pj, t);
}
