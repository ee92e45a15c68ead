import { Model, Workspace } from "./layout";
import { matmulForward, matmulForwardTransposed, matmulBackwardInput, matmulBackwardWeight } from "../kernels/matmul";
import { transpose } from "../kernels/transpose";

// LoRA (Hu et al. 2021, as PEFT computes it): a projection y = x·Wᵀ gains (alpha/r)·(x·Aᵀ)·Bᵀ, with A [r, in] and
// B [out, r] trainable and W frozen. Called right after each projection of forward.ts / backward.ts; a projection
// whose A pointer is 0 has no adapter and these return at once. u = scale·x·Aᵀ is kept per layer for the backward
// pass (ws.loraU); the projection's input x is the activation the layer saves anyway.
// Dropout (training only, as PEFT's lora_dropout): the adapter reads x with each value kept with probability 1 − p
// and scaled by 1/(1 − p); which values are dropped is a hash of (sequence seed, position, layer, projection,
// column) — src/core/lora.ts computes the same — so the backward pass (and a recomputed layer) rebuilds the mask
// instead of storing it.

// Projections, in the order of the Model descriptor's adapter fields and of a layer's loraU slots.
export const LQ = 0, LK = 1, LV = 2, LO = 3, LGATE = 4, LUP = 5, LDOWN = 6;

/** The adapter pointer pair of projection `which` in descriptor m: A at +0, B at +4 bytes. */
// @ts-ignore: decorator
@inline function pairAt(m: Model, which: i32): usize {
  return changetype<usize>(m) + offsetof<Model>("loraAq") + (<usize>which << 3);
}

// @ts-ignore: decorator
@inline function adapterA(m: Model, which: i32): usize { return load<usize>(pairAt(m, which)); }
// @ts-ignore: decorator
@inline function adapterB(m: Model, which: i32): usize { return load<usize>(pairAt(m, which) + 4); }

/** Layer l's u buffer for projection `which`: slots of the adapted projections only, one after the other. */
function loraU(m: Model, ws: Workspace, l: i32, which: i32): usize {
  let slot = 0;
  for (let p = 0; p < which; p++) if (adapterA(m, p) != 0) slot++;
  return ws.loraU + <usize>l * ws.loraStride + <usize>slot * (<usize>ws.maxTokens * m.loraRank << 2);
}

/** out[n, outDim] += scale·(x·Aᵀ)·Bᵀ for layer l's adapter of projection `which` (none: nothing). */
export function loraForward(m: Model, ws: Workspace, l: i32, which: i32, out: usize, x: usize, n: i32, inDim: i32, outDim: i32): void {
  const a = adapterA(m, which);
  if (a == 0) return;
  const r = m.loraRank, L = <usize>l;
  const u = loraU(m, ws, l, which);
  const dropout = m.loraDropThreshold > 0 && ws.loraXd != 0;
  if (dropout) dropInto(ws.loraXd, x, m, ws, l, which, n, inDim);
  matmulForward(u, dropout ? ws.loraXd : x, a + L * (<usize>r * inDim << 2), n, inDim, r, false);
  scaleInPlace(u, n * r, m.loraScale);
  // u·Bᵀ reduces over only r: as outer products over Bᵀ's rows, not the tile's dot products, whose horizontal sums
  // cost as much as the rank's madds (measured at SmolLM2's shapes: 1.3–1.6× at r = 16 and 32, the transpose included).
  transpose(ws.loraBt, adapterB(m, which) + L * (<usize>outDim * r << 2), outDim, r);
  matmulForwardTransposed(out, u, ws.loraBt, n, r, outDim, true);
}

/**
 * Given dOut = ∂L/∂out of the projection: ∂L/∂B += dOutᵀ·u, ∂L/∂A += (scale·dOut·B)ᵀ·x (into grads' adapters), and
 * dx += (scale·dOut·B)·A, the adapter's share of the input's gradient (W's is matmulBackwardInput's).
 */
export function loraBackward(m: Model, grads: Model, ws: Workspace, l: i32, which: i32, dx: usize, dOut: usize, x: usize,
  n: i32, inDim: i32, outDim: i32): void {
  const a = adapterA(m, which);
  if (a == 0) return;
  const r = m.loraRank, L = <usize>l;
  const u = loraU(m, ws, l, which), du = ws.loraDu;
  const aOffset = L * (<usize>r * inDim << 2), bOffset = L * (<usize>outDim * r << 2);
  const b = adapterB(m, which) + bOffset;
  matmulBackwardWeight(adapterB(grads, which) + bOffset, dOut, u, n, r, outDim, ws.transposeA, ws.transposeB);
  matmulBackwardInput(du, dOut, b, n, r, outDim, false, ws.transposeA);
  scaleInPlace(du, n * r, m.loraScale);
  if (m.loraDropThreshold > 0 && ws.loraXd != 0) {
    // ∂L/∂A from the dropped-out input, rebuilt; dx gets the mask's share of du·A.
    dropInto(ws.loraXd, x, m, ws, l, which, n, inDim);
    matmulBackwardWeight(adapterA(grads, which) + aOffset, du, ws.loraXd, n, inDim, r, ws.transposeA, ws.transposeB);
    matmulBackwardInput(ws.loraXd, du, a + aOffset, n, inDim, r, false, ws.transposeA);
    addDropped(dx, ws.loraXd, m, ws, l, which, n, inDim);
    return;
  }
  matmulBackwardWeight(adapterA(grads, which) + aOffset, du, x, n, inDim, r, ws.transposeA, ws.transposeB);
  matmulBackwardInput(dx, du, a + aOffset, n, inDim, r, true, ws.transposeA);
}

/** murmur3's 32-bit finaliser. */
// @ts-ignore: decorator
@inline function mix(h: u32): u32 {
  h ^= h >>> 16; h *= 0x85ebca6b; h ^= h >>> 13; h *= 0xc2b2ae35; h ^= h >>> 16;
  return h;
}

/** 1/(1 − p) if the dropout keeps input column c of row r of layer l's projection `which`, else 0. */
// @ts-ignore: decorator
@inline function keep(rowKey: u32, c: i32, m: Model): f32 {
  return (mix(rowKey ^ <u32>c) >>> 8) >= <u32>m.loraDropThreshold ? m.loraDropScale : 0;
}

/** The hash of a row's (sequence seed, position, layer, projection), mixed with each column in keep(). */
// @ts-ignore: decorator
@inline function rowKey(ws: Workspace, r: i32, l: i32, which: i32): u32 {
  const seed = load<u32>(ws.loraSeeds + (<usize>r << 2)), pos = load<u32>(ws.positions + (<usize>r << 2));
  return mix(mix(mix(seed ^ 0x9e3779b9) ^ pos) ^ ((<u32>l << 3) | <u32>which));
}

/** out[n, inDim] = dropout(x). */
function dropInto(out: usize, x: usize, m: Model, ws: Workspace, l: i32, which: i32, n: i32, inDim: i32): void {
  for (let r = 0; r < n; r++) {
    const key = rowKey(ws, r, l, which), row = <usize>r * inDim << 2;
    for (let c = 0; c < inDim; c++) {
      const at = row + (<usize>c << 2);
      store<f32>(out + at, load<f32>(x + at) * keep(key, c, m));
    }
  }
}

/** dx[n, inDim] += mask ⊙ g: the gradient g of dropout(x) carried back to x. */
function addDropped(dx: usize, g: usize, m: Model, ws: Workspace, l: i32, which: i32, n: i32, inDim: i32): void {
  for (let r = 0; r < n; r++) {
    const key = rowKey(ws, r, l, which), row = <usize>r * inDim << 2;
    for (let c = 0; c < inDim; c++) {
      const at = row + (<usize>c << 2);
      store<f32>(dx + at, load<f32>(dx + at) + load<f32>(g + at) * keep(key, c, m));
    }
  }
}

function scaleInPlace(p: usize, count: i32, s: f32): void {
  const end = p + (<usize>count << 2);
  for (let at = p; at < end; at += 4) store<f32>(at, load<f32>(at) * s);
}
