// How a weight matrix is stored: float32, or compact frozen weights that the matrix kernels widen to float32 in
// registers. Widening gives exactly the float32 values the host's loaders give (bf16 and f16 are subsets of float32;
// a Q8_0 value d·q has 19 significant bits; Q4_K rounds as ggml does), so a kernel reading compact weights computes bit
// for bit what it computes from their float32 widening.
// Codes are the Model's *Type fields (src/core/weight-types.ts lists the same).
import { madd } from "./simd";

export const F32: i32 = 0;
export const BF16: i32 = 1; // the upper half of a float32
export const F16: i32 = 2;  // IEEE half
export const Q8_0: i32 = 3; // ggml's blocks of 32: f16 scale d, then 32 int8 q; value d·q. Rows are whole blocks.
// ggml's super-blocks of 256: f16 d and dmin, 12 bytes of 6-bit (scale, min) pairs of 8 sub-blocks of 32, then 128 bytes
// of 4-bit q (each 32 bytes: the low nibbles of a pair's first sub-block, the high ones of its second);
// value (d·scale)·q − dmin·min, each step rounded to float32 as ggml's dequantize_row_q4_K. Rows are whole blocks.
export const Q4_K: i32 = 4;

// The generic kernels take the type as a marker type parameter W: f32 = F32, u16 = BF16, i16 = F16, i8 = Q8_0,
// u8 = Q4_K.

const Q8_BLOCK_BYTES: usize = 34;
const Q4K_BLOCK_BYTES: usize = 144;

/** Bytes of `count` consecutive weights of a row (count a multiple of 32 for Q8_0). */
// @ts-ignore: decorator
@inline export function weightBytes<W>(count: i32): usize {
  if (isFloat<W>()) return <usize>count << 2;
  if (sizeof<W>() == 2) return <usize>count << 1;
  if (isSigned<W>()) return <usize>(count >> 5) * Q8_BLOCK_BYTES;
  return <usize>(count >> 8) * Q4K_BLOCK_BYTES;
}

/** Bytes of a rows × cols matrix stored as `type`. */
export function matrixBytes(type: i32, rows: i32, cols: i32): usize {
  const r = <usize>rows;
  if (type == F32) return r * weightBytes<f32>(cols);
  if (type == Q8_0) return r * weightBytes<i8>(cols);
  if (type == Q4_K) return r * weightBytes<u8>(cols);
  return r * weightBytes<u16>(cols);
}

/**
 * Weights k..k+3 of the row at `row`, widened, where xByte = 4·k is the byte offset of the same elements in a float32
 * row (the kernels walk their inputs by it; k is a multiple of 4).
 */
// @ts-ignore: decorator
@inline export function load4<W>(row: usize, xByte: usize): v128 {
  if (isFloat<W>()) return v128.load(row + xByte);
  if (sizeof<W>() == 2) {
    const h = v128.load16x4_u(row + (xByte >> 1));
    return isSigned<W>() ? f16x4(h) : i32x4.shl(h, 16);
  }
  const k = xByte >> 2;
  if (!isSigned<W>()) {
    const block = row + (k >> 8) * Q4K_BLOCK_BYTES, sub = <i32>((k >> 5) & 7);
    return q4kx4(block + 16 + ((k >> 6) & 3) * 32 + (k & 31), sub & 1, f32x4.splat(q4kScale(block, sub)), f32x4.splat(q4kMin(block, sub)));
  }
  const block = row + (k >> 5) * Q8_BLOCK_BYTES;
  return q8x4(block + 2 + (k & 31), f32x4.splat(f16(load<u16>(block))));
}

/** Weight k of the row at `row`, widened (the scalar twin of load4). */
// @ts-ignore: decorator
@inline export function load1<W>(row: usize, k: usize): f32 {
  if (isFloat<W>()) return load<f32>(row + (k << 2));
  if (sizeof<W>() == 2) {
    const h = <u32>load<u16>(row + (k << 1));
    return isSigned<W>() ? f16(h) : reinterpret<f32>(h << 16);
  }
  if (!isSigned<W>()) {
    const block = row + (k >> 8) * Q4K_BLOCK_BYTES, sub = <i32>((k >> 5) & 7);
    const q = <u32>load<u8>(block + 16 + ((k >> 6) & 3) * 32 + (k & 31));
    return <f32>((sub & 1) != 0 ? q >> 4 : q & 15) * q4kScale(block, sub) - q4kMin(block, sub);
  }
  const block = row + (k >> 5) * Q8_BLOCK_BYTES;
  return <f32>load<i8>(block + 2 + (k & 31)) * f16(load<u16>(block));
}

/** get_scale_min_k4: the 6-bit scale (min = false) or min of sub-block j of the 12 bytes at q. */
// @ts-ignore: decorator
@inline function scaleMinK4(q: usize, j: i32, min: bool): u32 {
  const o = <usize>j;
  if (j < 4) return <u32>load<u8>(q + o + (min ? 4 : 0)) & 63;
  const lo = <u32>load<u8>(q + o + 4);
  return min ? (lo >> 4) | ((<u32>load<u8>(q + o) >> 6) << 4) : (lo & 0xf) | ((<u32>load<u8>(q + o - 4) >> 6) << 4);
}

/** d·scale of sub-block j of the Q4_K block at `block` (float32, as ggml rounds it). */
// @ts-ignore: decorator
@inline function q4kScale(block: usize, j: i32): f32 {
  return f16(load<u16>(block)) * <f32>scaleMinK4(block + 4, j, false);
}

/** dmin·min of sub-block j. */
// @ts-ignore: decorator
@inline function q4kMin(block: usize, j: i32): f32 {
  return f16(load<u16>(block + 2)) * <f32>scaleMinK4(block + 4, j, true);
}

/** Four Q4_K values: the low (high = 0) or high nibbles of the 4 bytes at p, times scale, minus min (two roundings). */
// @ts-ignore: decorator
@inline function q4kx4(p: usize, high: i32, scale: v128, min: v128): v128 {
  let q = i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(p)));
  q = high != 0 ? i32x4.shr_u(q, 4) : v128.and(q, i32x4.splat(15));
  return f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(q), scale), min);
}

/** float32 value of IEEE half bits (every case: normal, subnormal, ±0, ±∞, NaN). */
// @ts-ignore: decorator
@inline export function f16(h: u32): f32 {
  const sign = (h & 0x8000) << 16, e = h & 0x7c00, em = (h & 0x7fff) << 13;
  if (e == 0x7c00) return reinterpret<f32>(sign | 0x7f800000 | em);
  if (e == 0) return reinterpret<f32>(sign | reinterpret<u32>(<f32>(h & 0x3ff) * 5.9604644775390625e-8)); // m·2⁻²⁴
  return reinterpret<f32>(sign | (em + (112 << 23)));
}

// f16x4's constants, each broadcast from this table where it is used: V8 rebuilds a v128.const inside every loop
// iteration with three instructions (see EXP_TABLE in simd.ts), a load32_splat is one.
const F16_TABLE = memory.data<i32>([0x7c00, 0x7fff, 112 << 23, 1 << 23, 113 << 23, 0x8000]);
const EXP_MASK = 0, ABS_MASK = 4, REBIAS = 8, ONE_EXP = 12, MAGIC = 16, SIGN = 20;

// @ts-ignore: decorator
@inline function f16k(at: usize): v128 {
  return v128.load32_splat(F16_TABLE + at);
}

/**
 * float32 values of four IEEE halves (zero-extended in i32 lanes), every case exact and without subnormal arithmetic
 * (slow on x64): the exponent rebiased by 127 − 15; Inf/NaN rebiased once more to 255; a subnormal m·2⁻²⁴ as
 * (1 + m/1024)·2⁻¹⁴ − 2⁻¹⁴, an exact subtraction of normal numbers (F. Giesen's half_to_float).
 */
// @ts-ignore: decorator
@inline export function f16x4(h: v128): v128 {
  const e = v128.and(h, f16k(EXP_MASK)), rebias = f16k(REBIAS);
  let o = i32x4.add(i32x4.shl(v128.and(h, f16k(ABS_MASK)), 13), rebias);
  o = i32x4.add(o, v128.and(i32x4.eq(e, f16k(EXP_MASK)), rebias));
  const sub = f32x4.sub(i32x4.add(o, f16k(ONE_EXP)), f16k(MAGIC));
  o = v128.bitselect(sub, o, i32x4.eq(e, i32x4.splat(0)));
  return v128.or(o, i32x4.shl(v128.and(h, f16k(SIGN)), 16));
}

/** Q8_0 weights at p (4 int8) times their block's scale s (in all lanes): their values, exact. */
// @ts-ignore: decorator
@inline export function q8x4(p: usize, s: v128): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(p)))), s);
}

// The 16-bit constants of the eight-at-a-time decoding, broadcast from a table (as F16_TABLE's).
const F16X8_TABLE = memory.data<i32>([0x7c007c00, 0x7fff7fff, (112 << 7) * 0x10001, <i32>0x80008000]);
const X8_EXP = 0, X8_ABS = 4, X8_REBIAS = 8, X8_SIGN = 12;

/** True when any of the 8 halves in h is zero, subnormal, infinite or NaN (what f16x8Low/High do not convert). */
// @ts-ignore: decorator
@inline export function f16Special(h: v128): bool {
  const mask = v128.load32_splat(F16X8_TABLE + X8_EXP), e = v128.and(h, mask);
  // A zero exponent, or an all-ones one (e ^ mask = 0): the minimum of the two is 0 in that lane.
  return v128.any_true(i16x8.eq(i16x8.min_u(e, v128.xor(e, mask)), i16x8.splat(0)));
}

/**
 * madd(x1, high four, madd(x0, low four, acc)) of eight bf16 values h: each four widened by interleaving zeros below
 * them (one unpack instruction a four, against a widening load and a shift), the same madds as float32 weights.
 */
// @ts-ignore: decorator
@inline export function maddBf16x8(x0: v128, x1: v128, h: v128, acc: v128): v128 {
  const zero = i32x4.splat(0);
  return madd(x1, i16x8.shuffle(zero, h, 4, 12, 5, 13, 6, 14, 7, 15), madd(x0, i16x8.shuffle(zero, h, 0, 8, 1, 9, 2, 10, 3, 11), acc));
}

/** madd(x1, high four, madd(x0, low four, acc)) of the eight halves at p (h, loaded): fast unless one is special. */
// @ts-ignore: decorator
@inline export function maddF16x8(x0: v128, x1: v128, p: usize, h: v128, acc: v128): v128 {
  if (f16Special(h)) return madd(x1, f16x4(v128.load16x4_u(p + 8)), madd(x0, f16x4(v128.load16x4_u(p)), acc));
  return madd(x1, f16x8High(h), madd(x0, f16x8Low(h), acc));
}

// Eight normal halves at once, in 16-bit lanes: a float32's upper half is sign | (exponent + 112) << 7 | mantissa >> 3,
// its lower half the mantissa's last 3 bits << 13; two shuffles interleave the halves into float32 lanes.
// @ts-ignore: decorator
@inline function f16Upper(h: v128): v128 {
  const abs = v128.and(h, v128.load32_splat(F16X8_TABLE + X8_ABS));
  return v128.or(i16x8.add(i16x8.shr_u(abs, 3), v128.load32_splat(F16X8_TABLE + X8_REBIAS)), v128.and(h, v128.load32_splat(F16X8_TABLE + X8_SIGN)));
}

/** float32 values of the low four of eight normal halves h. */
// @ts-ignore: decorator
@inline export function f16x8Low(h: v128): v128 {
  return i16x8.shuffle(i16x8.shl(h, 13), f16Upper(h), 0, 8, 1, 9, 2, 10, 3, 11);
}

/** float32 values of the high four of eight normal halves h. */
// @ts-ignore: decorator
@inline export function f16x8High(h: v128): v128 {
  return i16x8.shuffle(i16x8.shl(h, 13), f16Upper(h), 4, 12, 5, 13, 6, 14, 7, 15);
}

/** out[0..count) = the widened weights of the row at `row`. */
// @ts-ignore: decorator
@inline export function widenRowOf<W>(out: usize, row: usize, count: i32): void {
  const vecBytes = <usize>(count & ~3) << 2;
  let k: usize = 0;
  if (sizeof<W>() == 1 && !isSigned<W>()) {
    for (; k + 1024 <= vecBytes; k += 1024) { // Q4_K: each sub-block's scale and min once for its 8 vectors
      const block = row + (k >> 10) * Q4K_BLOCK_BYTES;
      for (let j = 0; j < 8; j++) {
        const scale = f32x4.splat(q4kScale(block, j)), min = f32x4.splat(q4kMin(block, j));
        const q = block + 16 + <usize>(j >> 1) * 32, at = out + k + (<usize>j << 7);
        for (let l: usize = 0; l < 32; l += 4) v128.store(at + (l << 2), q4kx4(q + l, j & 1, scale, min));
      }
    }
  } else if (sizeof<W>() == 1) {
    for (; k + 128 <= vecBytes; k += 128) { // Q8_0: a block's scale once for its 8 vectors
      const block = row + (k >> 7) * Q8_BLOCK_BYTES, scale = f32x4.splat(f16(load<u16>(block)));
      for (let j: usize = 0; j < 32; j += 4) v128.store(out + k + (j << 2), q8x4(block + 2 + j, scale));
    }
  } else if (sizeof<W>() == 2 && isSigned<W>()) {
    for (; k + 32 <= vecBytes; k += 32) { // IEEE halves: eight at a time unless one is special
      const h = v128.load(row + (k >> 1));
      if (f16Special(h)) {
        v128.store(out + k, load4<W>(row, k));
        v128.store(out + k + 16, load4<W>(row, k + 16));
      } else {
        v128.store(out + k, f16x8Low(h));
        v128.store(out + k + 16, f16x8High(h));
      }
    }
  }
  for (; k < vecBytes; k += 16) v128.store(out + k, load4<W>(row, k));
  for (let k = count & ~3; k < count; k++) store<f32>(out + (<usize>k << 2), load1<W>(row, <usize>k));
}

/** out[0..count) = the first `count` weights of the row at `row` (of any type), as float32. */
export function widenRow(out: usize, row: usize, type: i32, count: i32): void {
  if (type == F32) memory.copy(out, row, <usize>count << 2);
  else if (type == BF16) widenRowOf<u16>(out, row, count);
  else if (type == F16) widenRowOf<i16>(out, row, count);
  else if (type == Q8_0) widenRowOf<i8>(out, row, count);
  else widenRowOf<u8>(out, row, count);
}

/** out = the rows × cols matrix w (of any type) as float32, row-major, or transposed ([cols, rows]) when asked. */
export function widenMatrix(out: usize, w: usize, type: i32, rows: i32, cols: i32, transposed: bool): void {
  const rowBytes = matrixBytes(type, 1, cols);
  if (!transposed) {
    for (let r = 0; r < rows; r++) widenRow(out + ((<usize>r * cols) << 2), w + <usize>r * rowBytes, type, cols);
    return;
  }
  if (type == F32) transposeOf<f32>(out, w, rows, cols, rowBytes);
  else if (type == BF16) transposeOf<u16>(out, w, rows, cols, rowBytes);
  else if (type == F16) transposeOf<i16>(out, w, rows, cols, rowBytes);
  else if (type == Q8_0) transposeOf<i8>(out, w, rows, cols, rowBytes);
  else transposeOf<u8>(out, w, rows, cols, rowBytes);
}

// out[cols, rows] = widened w[rows, cols]ᵀ, each weight decoded once (lanes scattered by scalar stores: this runs once
// per matrix and backward call, next to a product of n·rows·cols).
// @ts-ignore: decorator
@inline function transposeOf<W>(out: usize, w: usize, rows: i32, cols: i32, rowBytes: usize): void {
  const outRow = <usize>rows << 2, cols4 = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const row = w + <usize>r * rowBytes, at = out + (<usize>r << 2);
    for (let c = 0; c < cols4; c += 4) {
      const v = load4<W>(row, <usize>c << 2), p = at + <usize>c * outRow;
      store<f32>(p, f32x4.extract_lane(v, 0));
      store<f32>(p + outRow, f32x4.extract_lane(v, 1));
      store<f32>(p + 2 * outRow, f32x4.extract_lane(v, 2));
      store<f32>(p + 3 * outRow, f32x4.extract_lane(v, 3));
    }
    for (let c = cols4; c < cols; c++) store<f32>(at + <usize>c * outRow, load1<W>(row, <usize>c));
  }
}

/**
 * dst[0..count) = the bf16 bits of the float32 values at src, rounded to nearest even (the host packs a model's weights
 * through this); returns how many were not exactly bf16 (those whose lower 16 bits are not all zero).
 */
export function narrowBf16(dst: usize, src: usize, count: i32): i32 {
  let inexact = 0, k = 0;
  const half = i32x4.splat(0x7fff), one = i32x4.splat(1);
  for (; k + 8 <= count; k += 8) {
    const a = v128.load(src + (<usize>k << 2)), b = v128.load(src + (<usize>k << 2), 16);
    const ra = i32x4.add(a, i32x4.add(half, v128.and(i32x4.shr_u(a, 16), one)));
    const rb = i32x4.add(b, i32x4.add(half, v128.and(i32x4.shr_u(b, 16), one)));
    v128.store(dst + (<usize>k << 1), i16x8.shuffle(ra, rb, 1, 3, 5, 7, 9, 11, 13, 15));
    const low = i16x8.shuffle(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
    inexact += <i32>popcnt(i16x8.bitmask(v128.not(i16x8.eq(low, i16x8.splat(0)))));
  }
  for (; k < count; k++) {
    const x = load<u32>(src + (<usize>k << 2));
    store<u16>(dst + (<usize>k << 1), <u16>((x + 0x7fff + ((x >> 16) & 1)) >> 16));
    if ((x & 0xffff) != 0) inexact++;
  }
  return inexact;
}
