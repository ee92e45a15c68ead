// Gradient check of ropeBackward(grad, n, rowLen, positions, nHeads, headSize, cosTable, sinTable) (in place, the
// transposed rotation) against central finite differences of an f64 scalar forward of ropeForward:
//   out = x with every pair (2i, 2i+1) of heads 0..nHeads−1 rotated by angle = pos·theta^(−2i/headSize)
//   (angle rounded to f32 as llama2.c and ropeTablesInit do, cos/sin in f64), floats after nHeads·headSize of a
//   row (rowLen > nHeads·headSize) passed through unchanged — so their gradient is dOut itself, which is what an
//   in-place backward that leaves them alone produces.
// L = Σ dOut ⊙ out; FD on every element of x. Error measure: per element |g − fd| / max(|fd|, 1e-2·max|fd|)
// (support/gradcheck.ts), bound 1e-3. The padding floats are also checked bit for bit.
import { ropeTablesInit, ropeForward, ropeBackward } from "../../assembly/kernels/rope";
import { Rng, allocF32, allocI32, getF32, setI32, bits } from "./support/ref";
import { GRAD_TOL, H_REL, randomF64, writeF32, readF64, maxAbs, sampleIndices, centralDiffs, gradError, worse, Worst } from "./support/gradcheck";

const FWD_TOL: f64 = 1e-6; // absolute, |x| < 1 (tables within 1 f32 ulp of cos/sin of the f32 angle)
const worstSeen = new Worst();

// ---- f64 reference ----
let gX = new StaticArray<f64>(0);
let gDOut = new StaticArray<f64>(0);
let gPos: i32[] = [];
let gN = 0, gRowLen = 0, gHeads = 0, gHs = 0;
let gTheta: f32 = 10000.0;

/** Angle of pair i (dims 2i, 2i+1). llama2.c: float freq = 1.0f / powf(theta, head_dim / (float)head_size); float val = pos * freq. */
function angle32(pos: i32, i: i32, headSize: i32, theta: f32): f64 {
  const e: f32 = <f32>(i * 2) / <f32>headSize;
  const freq: f32 = <f32>1.0 / <f32>Math.pow(<f64>theta, <f64>e);
  return <f64>(<f32>pos * freq);
}

/** out[r*rowLen + k] of the reference forward. */
function outRef(r: i32, k: i32): f64 {
  const base = r * gRowLen;
  if (k >= gHeads * gHs) return gX[base + k];
  const within = k % gHs, pair = within >> 1;
  const a = angle32(gPos[r], pair, gHs, gTheta);
  const c = Math.cos(a), s = Math.sin(a);
  const k0 = base + (k & ~1);
  const x0 = gX[k0], x1 = gX[k0 + 1];
  return (k & 1) == 0 ? x0 * c - x1 * s : x0 * s + x1 * c;
}

function lossRef(): f64 {
  let l: f64 = 0;
  for (let r = 0; r < gN; r++) for (let k = 0; k < gRowLen; k++) l += gDOut[r * gRowLen + k] * outRef(r, k);
  return l;
}

/** One case; returns the worst FD error of ropeBackward's result. */
function runCase(rng: Rng, posList: i32[], rowLen: i32, nHeads: i32, headSize: i32, seqLen: i32, theta: f32, limit: i32 = 1 << 30): f64 {
  const n = posList.length;
  gN = n; gRowLen = rowLen; gHeads = nHeads; gHs = headSize; gTheta = theta; gPos = posList;
  gX = randomF64(rng, n * rowLen);
  gDOut = randomF64(rng, n * rowLen);
  const cosT = allocF32(seqLen * headSize), sinT = allocF32(seqLen * headSize);
  ropeTablesInit(cosT, sinT, seqLen, headSize, theta);
  const positions = allocI32(n);
  for (let r = 0; r < n; r++) setI32(positions, r, posList[r]);
  const buf = allocF32(n * rowLen);

  // forward of the kernel == reference forward
  writeF32(buf, gX);
  ropeForward(buf, n, rowLen, positions, nHeads, headSize, cosT, sinT);
  let fwd: f64 = 0;
  for (let r = 0; r < n; r++) for (let k = 0; k < rowLen; k++) fwd = worse(fwd, Math.abs(<f64>getF32(buf, r * rowLen + k) - outRef(r, k)));
  expect<f64>(fwd).toBeLessThanOrEqual(FWD_TOL, "ropeForward vs f64 forward");

  // backward in place on dOut
  writeF32(buf, gDOut);
  ropeBackward(buf, n, rowLen, positions, nHeads, headSize, cosT, sinT);
  let paddingChanged = 0;
  for (let r = 0; r < n; r++) {
    for (let k = nHeads * headSize; k < rowLen; k++) {
      if (bits(getF32(buf, r * rowLen + k)) != bits(<f32>gDOut[r * rowLen + k])) paddingChanged++;
    }
  }
  expect<i32>(paddingChanged).toBe(0, "ropeBackward changed floats after nHeads * headSize");
  const got = readF64(buf, n * rowLen);
  const idx = sampleIndices(rng, n * rowLen, limit);
  const fd = centralDiffs(gX, idx, lossRef, H_REL * maxAbs(gX));
  const e = gradError(got, fd, idx);
  worstSeen.add(e);
  heap.free(cosT); heap.free(sinT); heap.free(positions); heap.free(buf);
  return e;
}

const HEAD_SIZES: i32[] = [2, 6, 8, 10, 14, 4, 16];

describe("ropeBackward (finite differences)", () => {
  test("head sizes 2, 6, 8, 10, 14 (+4, 16), 1..4 heads, positions incl. 0 and seqLen − 1, with and without padding", () => {
    const rng = new Rng(9001);
    for (let i = 0; i < HEAD_SIZES.length; i++) {
      const hs = HEAD_SIZES[i];
      let e = runCase(rng, [0], hs, 1, hs, 16, 10000.0);
      expect<f64>(e).toBeLessThanOrEqual(GRAD_TOL, `hs=${hs} single row pos 0`);
      e = runCase(rng, [15, 3, 0], 3 * hs, 3, hs, 16, 10000.0);
      expect<f64>(e).toBeLessThanOrEqual(GRAD_TOL, `hs=${hs} 3 heads`);
      e = runCase(rng, [5, 1, 9, 9, 31], 4 * hs + 3, 4, hs, 32, 10000.0); // rowLen > nHeads·headSize
      expect<f64>(e).toBeLessThanOrEqual(GRAD_TOL, `hs=${hs} 4 heads, padding 3`);
      e = runCase(rng, [19, 2], 2 * hs + 5, 1, hs, 20, 1000000.0); // only the first head of a 2-head row rotates
      expect<f64>(e).toBeLessThanOrEqual(GRAD_TOL, `hs=${hs} theta 1e6, 1 of 2 heads`);
    }
  });

  test("model sizes: 6 heads × 48 (rowLen 288) at positions up to 255, 128 sampled elements", () => {
    const rng = new Rng(9002);
    expect<f64>(runCase(rng, [255, 0, 100, 37, 254], 288, 6, 48, 256, 10000.0, 128)).toBeLessThanOrEqual(GRAD_TOL, "6x48");
    expect<f64>(runCase(rng, [200, 7, 64], 288, 2, 48, 256, 10000.0, 128)).toBeLessThanOrEqual(GRAD_TOL, "2 of 6 heads");
  });

  test("backward after forward is the identity (a rotation's transpose is its inverse)", () => {
    const rng = new Rng(9003);
    const hs = 6, nHeads = 4, rowLen = 4 * 6 + 3, seqLen = 64, n = 5;
    const cosT = allocF32(seqLen * hs), sinT = allocF32(seqLen * hs);
    ropeTablesInit(cosT, sinT, seqLen, hs, 10000.0);
    const positions = allocI32(n), buf = allocF32(n * rowLen);
    const x = randomF64(rng, n * rowLen);
    writeF32(buf, x);
    for (let r = 0; r < n; r++) setI32(positions, r, r * 13);
    ropeForward(buf, n, rowLen, positions, nHeads, hs, cosT, sinT);
    ropeBackward(buf, n, rowLen, positions, nHeads, hs, cosT, sinT);
    let worst: f64 = 0;
    for (let i = 0; i < n * rowLen; i++) worst = worse(worst, Math.abs(<f64>getF32(buf, i) - x[i]));
    expect<f64>(worst).toBeLessThanOrEqual(1e-6);
    heap.free(cosT); heap.free(sinT); heap.free(positions); heap.free(buf);
  });

  test("worst relative gradient error (logged)", () => {
    log<string>(`rope backward: worst FD error ${worstSeen.value}`);
    expect<f64>(worstSeen.value).toBeLessThanOrEqual(GRAD_TOL);
  });
});
