// ropeTablesInit + ropeForward: rotary embedding of interleaved pairs (2i, 2i+1) of every head, as llama2.c,
// angle = pos · theta^(−2i/headSize). Two references:
//  * the exact f64 rotation (angle in f64). The kernel rounds the angle to f32 on purpose (llama2.c and PyTorch
//    do), so its error grows with the angle: the exponent 2i/headSize, theta^e and pos·freq are each rounded to
//    f32, giving |Δangle| ≲ (ln(theta)·e + 2)·2^-24·angle. Bound used: 1e-6 + 8e-7·angle per unit of |x|
//    (theta ≤ 1e6: ln θ ≤ 13.9). For the angles of a short context this is ~1e-5.
//  * llama2.c's arithmetic (f32 exponent, f32 freq = 1/powf, f32 angle), cos/sin in f64: tables within 1 f32 ulp,
//    rotation within 1e-6 absolute (|x| < 1).
import { ropeTablesInit, ropeForward } from "../../assembly/kernels/rope";
import { Rng, allocF32, allocI32, getF32, setF32, setI32, fillUniform, bits } from "./support/ref";

/** Exact angle of pair i at pos. */
function angle64(pos: i32, i: i32, headSize: i32, theta: f32): f64 {
  return <f64>pos * Math.pow(<f64>theta, -2.0 * <f64>i / <f64>headSize);
}

/** llama2.c: float freq = 1.0f / powf(theta, head_dim / (float)head_size); float val = pos * freq. */
function angle32(pos: i32, i: i32, headSize: i32, theta: f32): f64 {
  const e: f32 = <f32>(i * 2) / <f32>headSize;
  const freq: f32 = <f32>1.0 / <f32>Math.pow(<f64>theta, <f64>e);
  return <f64>(<f32>pos * freq);
}

function angleTol(angle: f64): f64 {
  return 1e-6 + 8e-7 * Math.abs(angle);
}

/** Worst table error vs. the exact angle, relative to angleTol (≤ 1 passes); and vs. llama2.c, in f32 ulps·2^-24. */
function checkTables(seqLen: i32, headSize: i32, theta: f32): void {
  const cosT = allocF32(seqLen * headSize), sinT = allocF32(seqLen * headSize);
  ropeTablesInit(cosT, sinT, seqLen, headSize, theta);
  let worstExact: f64 = 0, worst32: f64 = 0, layoutErrors = 0;
  for (let pos = 0; pos < seqLen; pos++) {
    for (let i = 0; i < headSize / 2; i++) {
      const base = pos * headSize + 2 * i;
      const c0 = <f64>getF32(cosT, base), c1 = <f64>getF32(cosT, base + 1);
      const s0 = <f64>getF32(sinT, base), s1 = <f64>getF32(sinT, base + 1);
      // layout: cos duplicated over the pair, sin as (−s, +s)
      if (bits(<f32>c1) != bits(<f32>c0) || bits(<f32>s0) != bits(<f32>-s1)) layoutErrors++;
      const a = angle64(pos, i, headSize, theta);
      let e = Math.max(Math.abs(c0 - Math.cos(a)), Math.abs(s1 - Math.sin(a))) / angleTol(a);
      if (!(e <= worstExact)) worstExact = e;
      const b = angle32(pos, i, headSize, theta);
      e = Math.max(Math.abs(c0 - Math.cos(b)), Math.abs(s1 - Math.sin(b)));
      if (!(e <= worst32)) worst32 = e;
    }
  }
  expect<i32>(layoutErrors).toBe(0, "pairs not laid out as (c, c) and (-s, s)");
  expect<f64>(worstExact).toBeLessThanOrEqual(1.0, `tables vs exact angle, headSize=${headSize} theta=${theta}`);
  expect<f64>(worst32).toBeLessThanOrEqual(6e-8, `tables vs llama2.c f32 angle, headSize=${headSize} theta=${theta}`);
  heap.free(cosT); heap.free(sinT);
}

/**
 * Rotates n rows (row stride rowLen ≥ nHeads·headSize) at random positions and compares with both references.
 * The padding after nHeads·headSize in each row must stay untouched.
 */
function checkForward(rng: Rng, n: i32, rowLen: i32, nHeads: i32, headSize: i32, seqLen: i32, theta: f32): void {
  const cosT = allocF32(seqLen * headSize), sinT = allocF32(seqLen * headSize);
  ropeTablesInit(cosT, sinT, seqLen, headSize, theta);
  const vec = allocF32(n * rowLen), orig = allocF32(n * rowLen), positions = allocI32(n);
  fillUniform(vec, n * rowLen, rng);
  memory.copy(orig, vec, <usize>(n * rowLen) << 2);
  for (let r = 0; r < n; r++) setI32(positions, r, r == 0 ? seqLen - 1 : rng.below(seqLen)); // include the last position

  ropeForward(vec, n, rowLen, positions, nHeads, headSize, cosT, sinT);

  let worstExact: f64 = 0, worst32: f64 = 0, paddingChanged = 0;
  for (let r = 0; r < n; r++) {
    const pos = load<i32>(positions + (<usize>r << 2));
    for (let h = 0; h < nHeads; h++) {
      for (let i = 0; i < headSize / 2; i++) {
        const k = r * rowLen + h * headSize + 2 * i;
        const x0 = <f64>getF32(orig, k), x1 = <f64>getF32(orig, k + 1);
        const g0 = <f64>getF32(vec, k), g1 = <f64>getF32(vec, k + 1);
        const a = angle64(pos, i, headSize, theta);
        let c = Math.cos(a), s = Math.sin(a);
        let e = Math.max(Math.abs(g0 - (x0 * c - x1 * s)), Math.abs(g1 - (x0 * s + x1 * c))) / angleTol(a);
        if (!(e <= worstExact)) worstExact = e;
        const b = angle32(pos, i, headSize, theta);
        c = Math.cos(b); s = Math.sin(b);
        e = Math.max(Math.abs(g0 - (x0 * c - x1 * s)), Math.abs(g1 - (x0 * s + x1 * c)));
        if (!(e <= worst32)) worst32 = e;
      }
    }
    for (let k = nHeads * headSize; k < rowLen; k++) {
      if (bits(getF32(vec, r * rowLen + k)) != bits(getF32(orig, r * rowLen + k))) paddingChanged++;
    }
  }
  expect<i32>(paddingChanged).toBe(0, "floats after nHeads * headSize in a row changed");
  const what = `n=${n} rowLen=${rowLen} nHeads=${nHeads} headSize=${headSize} theta=${theta}`;
  expect<f64>(worstExact).toBeLessThanOrEqual(1.0, `vs exact angle (in units of the tolerance), ${what}`);
  expect<f64>(worst32).toBeLessThanOrEqual(1e-6, `vs llama2.c f32 angle, ${what}`);
  heap.free(cosT); heap.free(sinT); heap.free(vec); heap.free(orig); heap.free(positions);
}

const HEAD_SIZES: i32[] = [2, 4, 6, 8, 10, 14, 16, 48, 64];

describe("ropeTablesInit", () => {
  test("cos/sin tables for head sizes 2..64 (incl. 6, 10, 14), theta 1e4 and 1e6", () => {
    for (let i = 0; i < HEAD_SIZES.length; i++) {
      checkTables(64, HEAD_SIZES[i], 10000.0);
      checkTables(37, HEAD_SIZES[i], 1000000.0);
    }
  });
});

describe("ropeForward", () => {
  test("head sizes 2..64 (incl. 6, 10, 14), 1 and 3 heads, n 1..5, rows with and without padding", () => {
    const rng = new Rng(21);
    for (let i = 0; i < HEAD_SIZES.length; i++) {
      const hs = HEAD_SIZES[i];
      checkForward(rng, 1, hs, 1, hs, 16, 10000.0);
      checkForward(rng, 3, 3 * hs, 3, hs, 32, 10000.0);
      checkForward(rng, 5, 3 * hs + 5, 3, hs, 32, 10000.0); // rowLen > nHeads * headSize
      checkForward(rng, 2, 2 * hs + 1, 2, hs, 20, 1000000.0);
    }
  });

  test("model sizes: 6 heads × 48 (dim 288), GQA-style k rows (rowLen 288, 2 heads rotated), seqLen 256", () => {
    const rng = new Rng(22);
    checkForward(rng, 7, 288, 6, 48, 256, 10000.0);
    checkForward(rng, 4, 288, 2, 48, 256, 10000.0); // only the first 2 heads of each 288-float row
    checkForward(rng, 3, 6 * 6 + 3, 6, 6, 256, 10000.0);
  });

  test("position 0 is the identity (bit for bit) and rows at equal positions rotate alike", () => {
    const rng = new Rng(23);
    const hs = 6, nHeads = 2, rowLen = 13, seqLen = 8;
    const cosT = allocF32(seqLen * hs), sinT = allocF32(seqLen * hs);
    ropeTablesInit(cosT, sinT, seqLen, hs, 10000.0);
    const vec = allocF32(3 * rowLen), orig = allocF32(3 * rowLen), positions = allocI32(3);
    fillUniform(vec, rowLen, rng);
    memory.copy(vec + (<usize>rowLen << 2), vec, <usize>rowLen << 2); // rows 0..2 identical
    memory.copy(vec + (<usize>(2 * rowLen) << 2), vec, <usize>rowLen << 2);
    memory.copy(orig, vec, <usize>(3 * rowLen) << 2);
    setI32(positions, 0, 0); setI32(positions, 1, 5); setI32(positions, 2, 5);
    ropeForward(vec, 3, rowLen, positions, nHeads, hs, cosT, sinT);
    for (let k = 0; k < rowLen; k++) {
      expect<u32>(bits(getF32(vec, k))).toBe(bits(getF32(orig, k)), "pos 0 must not change the row");
      expect<u32>(bits(getF32(vec, 2 * rowLen + k))).toBe(bits(getF32(vec, rowLen + k)), "same position, same result");
    }
    // and position 5 did rotate
    let moved = 0;
    for (let k = 0; k < nHeads * hs; k++) if (getF32(vec, rowLen + k) != getF32(orig, rowLen + k)) moved++;
    expect<i32>(moved).toBeGreaterThan(nHeads * hs / 2);
    heap.free(cosT); heap.free(sinT); heap.free(vec); heap.free(orig); heap.free(positions);
  });

  test("rotation keeps the norm of every pair", () => {
    const rng = new Rng(24);
    const hs = 10, nHeads = 3, n = 4, seqLen = 64;
    const cosT = allocF32(seqLen * hs), sinT = allocF32(seqLen * hs);
    ropeTablesInit(cosT, sinT, seqLen, hs, 10000.0);
    const vec = allocF32(n * nHeads * hs), orig = allocF32(n * nHeads * hs), positions = allocI32(n);
    fillUniform(vec, n * nHeads * hs, rng);
    memory.copy(orig, vec, <usize>(n * nHeads * hs) << 2);
    for (let r = 0; r < n; r++) setI32(positions, r, 7 + 13 * r);
    ropeForward(vec, n, nHeads * hs, positions, nHeads, hs, cosT, sinT);
    for (let k = 0; k < n * nHeads * hs; k += 2) {
      const a0 = <f64>getF32(orig, k), a1 = <f64>getF32(orig, k + 1);
      const b0 = <f64>getF32(vec, k), b1 = <f64>getF32(vec, k + 1);
      expect<f64>(Math.abs((b0 * b0 + b1 * b1) - (a0 * a0 + a1 * a1))).toBeLessThanOrEqual(1e-6);
    }
    heap.free(cosT); heap.free(sinT); heap.free(vec); heap.free(orig); heap.free(positions);
  });
});
