import { argmax, maxValue, expShifted } from "./softmax";
import { rngNextF32 } from "./rng";

// Picks the next token from one row of logits.
// temperature ≤ 0: greedy (first index of the maximum logit). Otherwise softmax(logits / temperature), then
// top-k (keep the k most likely; 0 = off), then top-p (the smallest prefix of the remaining tokens, most likely
// first, whose renormalised mass reaches p; 1 = off), then one draw from the seeded generator at rngState.
// Ties between equal probabilities order by token id, so the choice is a pure function of logits and state.
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

  let count: i32;
  if (useTopK) {
    count = selectTopK(probs, vocab, topK, scratchIds);
  } else {
    // Tokens below (1 − p)/(vocab − 1) of the mass can never be in the nucleus (llama2.c's cut), which keeps the sort short.
    const cutoff = (<f32>1.0 - topP) / <f32>(vocab - 1) * total;
    count = 0;
    for (let i = 0; i < vocab; i++) {
      if (pr(probs, i) >= cutoff) { store<i32>(scratchIds + (<usize>count << 2), i); count++; }
    }
    // With p below 1/vocab on a flat distribution the cut can drop every token; the most likely one is always in.
    if (count == 0) { store<i32>(scratchIds, argmax(probs, vocab)); count = 1; }
  }
  sortByProbability(scratchIds, count, probs);

  // Mass the nucleus is measured against: the top-k survivors (renormalised), or the whole distribution (the
  // prefilter only dropped tokens that cannot be in the nucleus).
  let kept = count;
  let mass: f32 = 0;
  if (useTopK) {
    for (let j = 0; j < count; j++) mass += pr(probs, id(scratchIds, j));
  } else {
    mass = total;
  }
  if (useTopP) {
    const target = topP * mass;
    let cumulative: f32 = 0;
    for (let j = 0; j < count; j++) {
      cumulative += pr(probs, id(scratchIds, j));
      if (cumulative >= target || j == count - 1) { kept = j + 1; mass = cumulative; break; }
    }
  }
  const r = u * mass;
  let cumulative: f32 = 0;
  for (let j = 0; j < kept; j++) {
    cumulative += pr(probs, id(scratchIds, j));
    if (r < cumulative) return id(scratchIds, j);
  }
  return id(scratchIds, kept - 1);
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

/** Heapsort of ids[0..n) into rank order (most probable first); a total order, so the result is unique. */
function sortByProbability(ids: usize, n: i32, probs: usize): void {
  // Build a heap with the worst at the root, then move the root to the end repeatedly: the best ends up first.
  for (let i = (n >> 1) - 1; i >= 0; i--) siftDownWorst(ids, i, n, probs);
  for (let end = n - 1; end > 0; end--) {
    swap(ids, 0, end);
    siftDownWorst(ids, 0, end, probs);
  }
}
