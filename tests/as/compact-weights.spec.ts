// Compact weights (assembly/kernels/weights.ts): matmulForward{Bf16,F16,Q8_0}, matmulBackwardInputOf, embeddingForwardOf
// and widenMatrix against the float32 kernels run on the weights widened here by an independent reference (bf16: the
// upper half of a float32; f16: sign·m·2⁻²⁴ or sign·(1024 + m)·2^(e−25) in f64; Q8_0: d·q). Widening is exact, so
// every result must be bit-identical, at shapes that are not multiples of the 4×2 tile, of the vectors or of K_BLOCK
// (tiles of 4 input rows read the weights widened into scratch, single rows widen them in registers: both are run).
import { matmulForward, matmulForwardBf16, matmulForwardF16, matmulForwardQ8_0, matmulForwardQ4_K, matmulBackwardInput, matmulBackwardInputOf, WEIGHT_SCRATCH_FLOATS } from "../../assembly/kernels/matmul";
import { embeddingForwardOf } from "../../assembly/kernels/embedding";
import { BF16, F16, Q8_0, Q4_K, matrixBytes, widenMatrix, narrowBf16 } from "../../assembly/kernels/weights";
import { Rng, allocF32, allocI32, getF32, setF32, setI32, fillUniform, bits } from "./support/ref";

/** Reference float32 value of IEEE half bits. */
function halfRef(h: u32): f32 {
  const sign: f64 = (h & 0x8000) != 0 ? -1 : 1, e = <i32>((h >> 10) & 0x1f), m = <f64>(h & 0x3ff);
  if (e == 31) return m == 0 ? <f32>(sign * Infinity) : reinterpret<f32>(((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13));
  if (e == 0) return <f32>(sign * m * Math.pow(2, -24));
  return <f32>(sign * (1024 + m) * Math.pow(2, e - 25));
}

// 0: no zero or subnormal half (the kernels' fast eight-at-a-time path throughout), else one in `specialEvery`.
let specialEvery: i32 = 16;

/** A random finite half: mostly of weight-like size, some subnormal, some ±0. */
function randomHalf(rng: Rng): u16 {
  const kind = specialEvery == 0 ? 1 : rng.below(specialEvery), sign = <u32>(rng.below(2) << 15);
  if (kind == 0) return <u16>(sign | <u32>rng.below(0x400)); // subnormal or zero
  const e = <u32>(8 + rng.below(10)); // 2^-7 … 2^2
  return <u16>(sign | (e << 10) | <u32>rng.below(0x400));
}

/** get_scale_min_k4 as ggml writes it (the reference for Q4_K). */
function scaleMinRef(q: usize, j: i32, wantMin: bool): f32 {
  let sc: u32, m: u32;
  if (j < 4) {
    sc = load<u8>(q + j) & 63; m = load<u8>(q + j + 4) & 63;
  } else {
    sc = (load<u8>(q + j + 4) & 0xf) | ((load<u8>(q + j - 4) >> 6) << 4);
    m = (load<u8>(q + j + 4) >> 4) | ((load<u8>(q + j) >> 6) << 4);
  }
  return <f32>(wantMin ? m : sc);
}

/** rows × cols weights of `type` (random) and their widening into `wide` (float32 rows × cols). */
function makeWeights(type: i32, rows: i32, cols: i32, rng: Rng, wide: usize): usize {
  const w = heap.alloc(max<usize>(matrixBytes(type, rows, cols), 4));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      if (type == BF16) {
        const h = <u16>(reinterpret<u32>(rng.uniform(-1, 1)) >> 16);
        store<u16>(w + (<usize>i << 1), h);
        setF32(wide, i, reinterpret<f32>(<u32>h << 16));
      } else if (type == F16) {
        const h = randomHalf(rng);
        store<u16>(w + (<usize>i << 1), h);
        setF32(wide, i, halfRef(h));
      } else if (type == Q4_K) {
        // dequantize_row_q4_K: (d·scale)·q − dmin·min, each product and the difference rounded to float32.
        const block = w + <usize>r * matrixBytes(Q4_K, 1, cols) + <usize>(c >> 8) * 144;
        const j = (c & 255) >> 5;
        if ((c & 255) == 0) {
          store<u16>(block, randomHalf(rng) & 0x3fff); // d ≥ 0, below 2
          store<u16>(block + 2, randomHalf(rng) & 0x3fff);
          for (let b = 0; b < 12; b++) store<u8>(block + 4 + b, <u8>rng.below(256));
          for (let b = 0; b < 128; b++) store<u8>(block + 16 + b, <u8>rng.below(256));
        }
        const byte = <u32>load<u8>(block + 16 + (j >> 1) * 32 + (c & 31));
        const q = <f32>((j & 1) != 0 ? byte >> 4 : byte & 15);
        const d1 = halfRef(load<u16>(block)) * scaleMinRef(block + 4, j, false), m1 = halfRef(load<u16>(block + 2)) * scaleMinRef(block + 4, j, true);
        setF32(wide, i, d1 * q - m1);
      } else {
        const block = w + <usize>r * matrixBytes(Q8_0, 1, cols) + <usize>(c >> 5) * 34;
        if ((c & 31) == 0) store<u16>(block, randomHalf(rng));
        const q = <i8>(rng.below(256) - 128);
        store<i8>(block + 2 + (c & 31), q);
        setF32(wide, i, <f32>q * halfRef(load<u16>(block)));
      }
    }
  }
  return w;
}

function forwardOf(type: i32, out: usize, x: usize, w: usize, n: i32, inDim: i32, outDim: i32, accumulate: bool): void {
  const scratch = allocF32(WEIGHT_SCRATCH_FLOATS);
  if (type == BF16) matmulForwardBf16(out, x, w, n, inDim, outDim, accumulate, scratch);
  else if (type == F16) matmulForwardF16(out, x, w, n, inDim, outDim, accumulate, scratch);
  else if (type == Q8_0) matmulForwardQ8_0(out, x, w, n, inDim, outDim, accumulate, scratch);
  else matmulForwardQ4_K(out, x, w, n, inDim, outDim, accumulate, scratch);
  heap.free(scratch);
}

/** Outputs of the compact forward that differ in any bit from the float32 forward of the widened weights. */
function forwardMismatches(type: i32, rng: Rng, n: i32, inDim: i32, outDim: i32, accumulate: bool): i32 {
  const wide = allocF32(outDim * inDim), x = allocF32(n * inDim);
  const w = makeWeights(type, outDim, inDim, rng, wide);
  fillUniform(x, n * inDim, rng);
  const got = allocF32(n * outDim), want = allocF32(n * outDim);
  fillUniform(got, n * outDim, rng);
  memory.copy(want, got, <usize>(n * outDim) << 2);
  forwardOf(type, got, x, w, n, inDim, outDim, accumulate);
  matmulForward(want, x, wide, n, inDim, outDim, accumulate);
  let bad = 0;
  for (let i = 0; i < n * outDim; i++) if (bits(getF32(got, i)) != bits(getF32(want, i))) bad++;
  heap.free(wide); heap.free(x); heap.free(w); heap.free(got); heap.free(want);
  return bad;
}

/** The same for dx = dOut·w (matmulBackwardInputOf against matmulBackwardInput). */
function backwardMismatches(type: i32, rng: Rng, n: i32, inDim: i32, outDim: i32, accumulate: bool): i32 {
  const wide = allocF32(outDim * inDim), dOut = allocF32(n * outDim), scratch = allocF32(inDim * outDim);
  const w = makeWeights(type, outDim, inDim, rng, wide);
  fillUniform(dOut, n * outDim, rng);
  const got = allocF32(n * inDim), want = allocF32(n * inDim);
  fillUniform(got, n * inDim, rng);
  memory.copy(want, got, <usize>(n * inDim) << 2);
  matmulBackwardInputOf(got, dOut, w, type, n, inDim, outDim, accumulate, scratch);
  matmulBackwardInput(want, dOut, wide, n, inDim, outDim, accumulate, scratch);
  let bad = 0;
  for (let i = 0; i < n * inDim; i++) if (bits(getF32(got, i)) != bits(getF32(want, i))) bad++;
  heap.free(wide); heap.free(dOut); heap.free(scratch); heap.free(w); heap.free(got); heap.free(want);
  return bad;
}

const NS: i32[] = [1, 2, 3, 4, 5, 9];
const DIMS_16: i32[] = [1, 3, 5, 7, 33, 67];
const DIMS_Q8: i32[] = [32, 96];
const OUTS: i32[] = [1, 2, 3, 5, 9, 13];

describe("compact weights", () => {
  test("widening: every one of the 65536 halves (subnormals, ±0, ±∞, NaN) and bf16 values, bit for bit", () => {
    const table = heap.alloc(65536 * 2), out = allocF32(65536), wide = allocF32(65536);
    for (let h = 0; h < 65536; h++) store<u16>(table + (<usize>h << 1), <u16>h);
    widenMatrix(out, table, F16, 1, 65536, false);
    let bad = 0;
    for (let h = 0; h < 65536; h++) if (bits(getF32(out, h)) != bits(halfRef(<u32>h))) bad++;
    expect<i32>(bad).toBe(0, "f16 vector widening");
    // The scalar tail (a row of 3) takes load1's path.
    bad = 0;
    for (let h = 0; h < 65536; h += 3) {
      widenMatrix(wide, table + (<usize>h << 1), F16, 1, min(3, 65536 - h), false);
      for (let j = 0; j < min(3, 65536 - h); j++) if (bits(getF32(wide, j)) != bits(halfRef(<u32>(h + j)))) bad++;
    }
    expect<i32>(bad).toBe(0, "f16 scalar widening");
    widenMatrix(out, table, BF16, 1, 65535, false);
    bad = 0;
    for (let h = 0; h < 65535; h++) if (bits(getF32(out, h)) != (<u32>h << 16)) bad++;
    expect<i32>(bad).toBe(0, "bf16 widening");
    heap.free(table); heap.free(out); heap.free(wide);
  });

  test("matmulForward from bf16 and f16 weights is bit-identical to float32 at ragged shapes, accumulating or not", () => {
    const rng = new Rng(11);
    for (let t = 0; t < 2; t++) {
      const type = t == 0 ? BF16 : F16;
      for (let a = 0; a < NS.length; a++) for (let b = 0; b < DIMS_16.length; b++) for (let c = 0; c < OUTS.length; c++) {
        const acc = (a + b + c) % 2 == 1;
        expect<i32>(forwardMismatches(type, rng, NS[a], DIMS_16[b], OUTS[c], acc)).toBe(0, `type ${type} n=${NS[a]} in=${DIMS_16[b]} out=${OUTS[c]}`);
      }
    }
  });

  test("f16 weights without special values, or with one in 200 (both paths of the eight-at-a-time decoding)", () => {
    const rng = new Rng(16);
    for (let v = 0; v < 2; v++) {
      specialEvery = v == 0 ? 0 : 200;
      for (let a = 0; a < NS.length; a++) for (let b = 0; b < DIMS_16.length; b++) {
        expect<i32>(forwardMismatches(F16, rng, NS[a], DIMS_16[b], 13, a % 2 == 1)).toBe(0, `n=${NS[a]} in=${DIMS_16[b]} special 1/${specialEvery}`);
      }
      expect<i32>(forwardMismatches(F16, rng, 1, 2053, 301, false)).toBe(0, "1x2053x301");
      expect<i32>(forwardMismatches(F16, rng, 8, 1029, 9, true)).toBe(0, "8x1029x9");
    }
    specialEvery = 16;
  });

  test("matmulForward from Q8_0 weights is bit-identical to float32 of d·q", () => {
    const rng = new Rng(12);
    for (let a = 0; a < NS.length; a++) for (let b = 0; b < DIMS_Q8.length; b++) for (let c = 0; c < OUTS.length; c++) {
      expect<i32>(forwardMismatches(Q8_0, rng, NS[a], DIMS_Q8[b], OUTS[c], c % 2 == 1)).toBe(0, `n=${NS[a]} in=${DIMS_Q8[b]} out=${OUTS[c]}`);
    }
  });

  test("matmulForward from Q4_K weights is bit-identical to float32 of ggml's dequantization", () => {
    const rng = new Rng(17);
    const ins: i32[] = [256, 512];
    for (let a = 0; a < NS.length; a++) for (let b = 0; b < 2; b++) for (let c = 0; c < OUTS.length; c++) {
      expect<i32>(forwardMismatches(Q4_K, rng, NS[a], ins[b], OUTS[c], c % 2 == 0)).toBe(0, `n=${NS[a]} in=${ins[b]} out=${OUTS[c]}`);
    }
    expect<i32>(forwardMismatches(Q4_K, rng, 5, 2304, 7, false)).toBe(0, "5x2304x7 (past K_BLOCK)");
    expect<i32>(forwardMismatches(Q4_K, rng, 1, 768, 301, true)).toBe(0, "1x768x301 (split)");
  });

  test("long reductions (past K_BLOCK 2048) and large matrices (the split into two weight streams)", () => {
    const rng = new Rng(13);
    expect<i32>(forwardMismatches(BF16, rng, 5, 2051, 7, false)).toBe(0, "bf16 5x2051x7");
    expect<i32>(forwardMismatches(F16, rng, 6, 2053, 3, true)).toBe(0, "f16 6x2053x3");
    expect<i32>(forwardMismatches(Q8_0, rng, 5, 2080, 5, false)).toBe(0, "q8 5x2080x5");
    expect<i32>(forwardMismatches(BF16, rng, 9, 520, 301, false)).toBe(0, "bf16 9x520x301 (split)");
    expect<i32>(forwardMismatches(Q8_0, rng, 1, 1024, 301, true)).toBe(0, "q8 1x1024x301 (split)");
    // Decode batches on the streamed path (16-bit rows widened a slice at a time), with scalar tails.
    expect<i32>(forwardMismatches(F16, rng, 16, 579, 260, true)).toBe(0, "f16 16x579x260 acc (streamed)");
    expect<i32>(forwardMismatches(BF16, rng, 32, 1030, 150, false)).toBe(0, "bf16 32x1030x150 (streamed)");
    expect<i32>(forwardMismatches(BF16, rng, 13, 2051, 70, false)).toBe(0, "bf16 13x2051x70 (streamed, two K blocks)");
  });

  test("matmulBackwardInputOf: dx from compact weights is bit-identical (direct kernel and transposed tile)", () => {
    const rng = new Rng(14);
    for (let t = 0; t < 4; t++) {
      const type = t == 0 ? BF16 : t == 1 ? F16 : t == 2 ? Q8_0 : Q4_K;
      const ins: i32[] = t == 3 ? [256, 512] : t == 2 ? [32, 288] : [5, 67, 261];
      for (let a = 0; a < 3; a++) for (let b = 0; b < ins.length; b++) for (let c = 0; c < 3; c++) {
        const n = NS[a * 2], outDim = c == 2 ? 259 : OUTS[c * 2 + 1];
        expect<i32>(backwardMismatches(type, rng, n, ins[b], outDim, c == 1)).toBe(0, `type ${type} n=${n} in=${ins[b]} out=${outDim}`);
      }
      // A rank-short reduction over a wide input (LoRA-like; the direct kernel since DIRECT_MAX_SHORT).
      const wide = t == 3 ? 512 : t == 2 ? 608 : 600;
      expect<i32>(backwardMismatches(type, rng, 5, wide, 16, false)).toBe(0, `type ${type} 5x${wide}x16`);
      expect<i32>(backwardMismatches(type, rng, 9, wide, 65, true)).toBe(0, `type ${type} 9x${wide}x65 acc`);
    }
  });

  test("embeddingForwardOf widens the tokens' rows (bf16, f16, Q8_0, Q4_K)", () => {
    const rng = new Rng(15);
    const types: i32[] = [BF16, F16, Q8_0, Q4_K], dims: i32[] = [7, 13, 64, 512];
    for (let t = 0; t < 4; t++) {
      const vocab = 11, dim = dims[t], n = 6;
      const wide = allocF32(vocab * dim), tokens = allocI32(n), out = allocF32(n * dim);
      const table = makeWeights(types[t], vocab, dim, rng, wide);
      for (let r = 0; r < n; r++) setI32(tokens, r, (r * 7 + 3) % vocab);
      embeddingForwardOf(out, table, types[t], tokens, n, dim);
      let bad = 0;
      for (let r = 0; r < n; r++) for (let k = 0; k < dim; k++) {
        if (bits(getF32(out, r * dim + k)) != bits(getF32(wide, ((r * 7 + 3) % vocab) * dim + k))) bad++;
      }
      expect<i32>(bad).toBe(0, `type ${types[t]}`);
      heap.free(wide); heap.free(tokens); heap.free(out); heap.free(table);
    }
  });

  test("narrowBf16: round to nearest even (ties both ways), the count of values that were not bf16", () => {
    const rng = new Rng(18);
    const n = 1003, src = allocF32(n), dst = heap.alloc(2 * n);
    let want = 0;
    for (let i = 0; i < n; i++) {
      let x = rng.nextU32() & 0xbfffffff; // finite
      if (i % 5 == 0) x &= 0xffff0000; // exactly bf16
      else if (i % 5 == 1) x = (x & 0xffff0000) | 0x8000; // a tie
      store<u32>(src + (<usize>i << 2), x);
      if ((x & 0xffff) != 0) want++;
    }
    expect<i32>(narrowBf16(dst, src, n)).toBe(want, "inexact count");
    let bad = 0;
    for (let i = 0; i < n; i++) {
      const x = load<u32>(src + (<usize>i << 2)), lo = x & 0xffff, hi = x >> 16;
      const rounded = lo > 0x8000 || (lo == 0x8000 && (hi & 1) != 0) ? hi + 1 : hi; // nearest, ties to even
      if (<u32>load<u16>(dst + (<usize>i << 1)) != rounded) bad++;
    }
    expect<i32>(bad).toBe(0, "rounded bits");
    heap.free(src); heap.free(dst);
  });
});
