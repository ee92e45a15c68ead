// 16-bit floats to and from float32: IEEE half (F16) and bfloat16 (BF16, the upper half of a float32).
// Widening is exact; narrowing rounds to nearest, ties to even, as numpy, PyTorch and ggml do.

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 value of bfloat16 bits. */
export function bf16ToF32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/** bfloat16 bits of a float32 value (round to nearest even; NaN stays a quiet NaN). */
export function f32ToBf16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x0040) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 value of IEEE half bits. */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/** IEEE half bits of a float32 value (round to nearest even; overflow to ±infinity; NaN to a quiet NaN). */
export function f32ToF16(value: number): number {
  f32[0] = value;
  return f16BitsOfF32Bits(u32[0]!);
}

/**
 * IEEE half bits of the float32 whose bits are `x` (a uint32), in integer operations only (round to nearest even,
 * overflow to ±infinity, NaN to a quiet NaN): a few nanoseconds a value, for packing a billion weights.
 */
export function f16BitsOfF32Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000, a = x & 0x7fffffff;
  if (a >= 0x47800000) return a > 0x7f800000 ? sign | 0x7e00 : sign | 0x7c00; // NaN; past 2^16 or infinity
  if (a >= 0x38800000) { // a normal half (or up to infinity by rounding): rebias the exponent, round at bit 13
    const m = a - 0x38000000;
    return sign | ((m + 0xfff + ((m >>> 13) & 1)) >>> 13);
  }
  if (a < 0x33000000) return sign; // below half the smallest subnormal (2^-25 itself ties to 0)
  const e = a >>> 23, mant = (a & 0x7fffff) | 0x800000, shift = 126 - e; // a subnormal m·2^-24, m = mant >> shift rounded
  const rest = mant & ((1 << shift) - 1), halfway = 1 << (shift - 1);
  let out = mant >>> shift;
  if (rest > halfway || (rest === halfway && (out & 1))) out++;
  return sign | out;
}

/** Widens n little-endian 16-bit values at bytes[offset…] to float32. */
export function widen16(bytes: Uint8Array, offset: number, n: number, kind: 'F16' | 'BF16', out = new Float32Array(n)): Float32Array {
  if (kind === 'BF16' && LITTLE_ENDIAN && (bytes.byteOffset + offset) % 2 === 0) {
    // Fast path: each output's bits are the input's shifted up.
    const src = new Uint16Array(bytes.buffer, bytes.byteOffset + offset, n);
    const dst = new Uint32Array(out.buffer, out.byteOffset, n);
    for (let i = 0; i < n; i++) dst[i] = src[i]! << 16;
    return out;
  }
  const convert = kind === 'F16' ? f16ToF32 : bf16ToF32;
  for (let i = 0; i < n; i++) out[i] = convert(bytes[offset + 2 * i]! | (bytes[offset + 2 * i + 1]! << 8));
  return out;
}

/** Narrows float32 values to little-endian 16-bit values at out[offset…]. */
export function narrow16(values: Float32Array, kind: 'F16' | 'BF16', out: Uint8Array, offset: number): void {
  const convert = kind === 'F16' ? f32ToF16 : f32ToBf16;
  for (let i = 0; i < values.length; i++) {
    const bits = convert(values[i]!);
    out[offset + 2 * i] = bits & 0xff;
    out[offset + 2 * i + 1] = bits >>> 8;
  }
}
