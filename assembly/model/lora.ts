import { Model, Workspace } from "./layout";
import { matmulForward, matmulBackwardInput, matmulBackwardWeight } from "../kernels/matmul";

// LoRA (Hu et al. 2021, as PEFT computes it): a projection y = x·Wᵀ gains (alpha/r)·(x·Aᵀ)·Bᵀ, with A [r, in] and
// B [out, r] trainable and W frozen. Called right after each projection of forward.ts / backward.ts; a projection
// whose A pointer is 0 has no adapter and these return at once. u = scale·x·Aᵀ is kept per layer for the backward
// pass (ws.loraU); the projection's input x is the activation the layer saves anyway.

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
  matmulForward(u, x, a + L * (<usize>r * inDim << 2), n, inDim, r, false);
  scaleInPlace(u, n * r, m.loraScale);
  matmulForward(out, u, adapterB(m, which) + L * (<usize>outDim * r << 2), n, r, outDim, true);
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
  matmulBackwardWeight(adapterA(grads, which) + aOffset, du, x, n, inDim, r, ws.transposeA, ws.transposeB);
  matmulBackwardInput(dx, du, a + aOffset, n, inDim, r, true, ws.transposeA);
}

function scaleInPlace(p: usize, count: i32, s: f32): void {
  const end = p + (<usize>count << 2);
  for (let at = p; at < end; at += 4) store<f32>(at, load<f32>(at) * s);
}
