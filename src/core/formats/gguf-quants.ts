/**
 * ggml's tensor types as GGUF stores them: block sizes, byte sizes, dequantization to float32 and quantization for
 * writing. Block layouts and formulas follow ggml's reference C (ggml-common.h, ggml-quants.c: dequantize_row_q4_0,
 * dequantize_row_q8_0, dequantize_row_q2_K, dequantize_row_q4_K with get_scale_min_k4, dequantize_row_q5_K,
 * dequantize_row_q6_K, dequantize_row_iq2_xxs with the tables of iq2xxs-grid.ts, quantize_row_q8_0_ref), including where the C code rounds to float (Math.fround), so values are bit-identical to
 * llama.cpp's. Every block type stores its elements along ne[0] (a row), so a row length must be a multiple of the
 * block size. All numbers are little-endian.
 */
import { requireInput } from '../errors';
import { f16ToF32, f32ToF16, narrow16, widen16 } from './half';
import { IQ2XXS_GRID, KMASK_IQ2XS, KSIGNS_IQ2XS } from './iq2xxs-grid';

/** The types this engine reads (and, F32/F16/BF16/Q8_0, writes). */
export type GgmlTypeName = 'F32' | 'F16' | 'BF16' | 'Q4_0' | 'Q8_0' | 'Q2_K' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'IQ2_XXS';
/** The types quantize() writes. */
export type GgmlWritableType = 'F32' | 'F16' | 'BF16' | 'Q8_0';

export interface GgmlTypeInfo {
  name: GgmlTypeName;
  /** ggml's enum ggml_type value, as stored in a GGUF tensor info. */
  id: number;
  /** Elements per block (1 for the plain float types). */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
}

const QK_K = 256;

export const GGML_TYPES: Record<GgmlTypeName, GgmlTypeInfo> = {
  F32: { name: 'F32', id: 0, blockSize: 1, blockBytes: 4 },
  F16: { name: 'F16', id: 1, blockSize: 1, blockBytes: 2 },
  Q4_0: { name: 'Q4_0', id: 2, blockSize: 32, blockBytes: 2 + 16 }, // f16 d, 16 bytes of nibbles
  Q8_0: { name: 'Q8_0', id: 8, blockSize: 32, blockBytes: 2 + 32 }, // f16 d, 32 int8
  Q2_K: { name: 'Q2_K', id: 10, blockSize: QK_K, blockBytes: QK_K / 16 + QK_K / 4 + 2 + 2 }, // scales, qs, d, dmin
  Q4_K: { name: 'Q4_K', id: 12, blockSize: QK_K, blockBytes: 2 + 2 + 12 + QK_K / 2 }, // d, dmin, scales, qs
  Q5_K: { name: 'Q5_K', id: 13, blockSize: QK_K, blockBytes: 2 + 2 + 12 + QK_K / 8 + QK_K / 2 }, // d, dmin, scales, qh, qs
  Q6_K: { name: 'Q6_K', id: 14, blockSize: QK_K, blockBytes: QK_K / 2 + QK_K / 4 + QK_K / 16 + 2 }, // ql, qh, scales, d
  IQ2_XXS: { name: 'IQ2_XXS', id: 16, blockSize: QK_K, blockBytes: 2 + QK_K / 4 }, // f16 d, uint16 qs[32]
  BF16: { name: 'BF16', id: 30, blockSize: 1, blockBytes: 2 },
};

const BY_ID = new Map(Object.values(GGML_TYPES).map((t) => [t.id, t]));

/** ggml's names of all its type ids, so a message can say what an unsupported type is (gaps: ids ggml removed). */
const GGML_TYPE_NAMES = [
  'F32', 'F16', 'Q4_0', 'Q4_1', undefined, undefined, 'Q5_0', 'Q5_1', 'Q8_0', 'Q8_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K',
  'Q6_K', 'Q8_K', 'IQ2_XXS', 'IQ2_XS', 'IQ3_XXS', 'IQ1_S', 'IQ4_NL', 'IQ3_S', 'IQ2_S', 'IQ4_XS', 'I8', 'I16', 'I32',
  'I64', 'F64', 'IQ1_M', 'BF16', undefined, undefined, undefined, 'TQ1_0', 'TQ2_0', undefined, undefined, undefined,
  'MXFP4',
];

/** The supported type with ggml id `id`, or undefined. */
export const ggmlTypeById = (id: number): GgmlTypeInfo | undefined => BY_ID.get(id);

/** "Q4_1" for a type ggml knows but we do not read, else "unknown". */
export const ggmlTypeLabel = (id: number): string => GGML_TYPE_NAMES[id] ?? 'unknown to ggml';

/** "F32 (0), F16 (1), …" for messages. */
export const SUPPORTED_TYPES_TEXT = Object.values(GGML_TYPES).map((t) => `${t.name} (${t.id})`).join(', ');

/**
 * Bytes of a tensor of `elements` values of `type` whose rows have `rowLength` values; throws a RemaxInputError
 * naming `what` (source and tensor) when the row length is not a multiple of the block size.
 */
export function tensorByteLength(type: GgmlTypeInfo, rowLength: number, elements: number, what: string): number {
  requireInput(rowLength % type.blockSize === 0,
    `${what}: its rows have ${rowLength} values, not a multiple of ${type.name}'s block of ${type.blockSize}; ` +
    `a ${type.name} tensor needs rows of a multiple of ${type.blockSize} (store this tensor as F16 or F32 instead)`);
  return (elements / type.blockSize) * type.blockBytes;
}

// ---------------------------------------------------------------------------------------------------------------------
// Dequantization

const f = Math.fround;
const half = (b: Uint8Array, o: number): number => f16ToF32(b[o]! | (b[o + 1]! << 8));
const int8 = (v: number): number => (v << 24) >> 24;

/** get_scale_min_k4: the j-th of 8 (scale, min) pairs packed in 6 bits each into 12 bytes at q[o…]. */
function scaleMinK4(j: number, q: Uint8Array, o: number): [number, number] {
  if (j < 4) return [q[o + j]! & 63, q[o + j + 4]! & 63];
  return [
    (q[o + j + 4]! & 0xf) | ((q[o + j - 4]! >> 6) << 4),
    (q[o + j + 4]! >> 4) | ((q[o + j]! >> 6) << 4),
  ];
}

function dequantQ4_0(src: Uint8Array, out: Float32Array, blocks: number): void {
  for (let i = 0; i < blocks; i++) {
    const o = i * 18, y = i * 32, d = half(src, o);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 2 + j]!;
      out[y + j] = f(((q & 0x0f) - 8) * d);
      out[y + j + 16] = f(((q >> 4) - 8) * d);
    }
  }
}

function dequantQ8_0(src: Uint8Array, out: Float32Array, blocks: number): void {
  for (let i = 0; i < blocks; i++) {
    const o = i * 34, y = i * 32, d = half(src, o);
    for (let j = 0; j < 32; j++) out[y + j] = f(int8(src[o + 2 + j]!) * d);
  }
}

/**
 * dequantize_row_q2_K: 16 sub-blocks of 16 values, each with a 4-bit scale (low nibble of scales[k]) and a 4-bit min
 * (high nibble); value = d·scale·q − dmin·min for a 2-bit q. Each half of 128 values reads 32 bytes of qs four times,
 * 2 bits further each time; sub-blocks alternate between the first and the last 16 of those bytes.
 */
function dequantQ2_K(src: Uint8Array, out: Float32Array, blocks: number): void {
  for (let i = 0; i < blocks; i++) {
    const o = i * 84, d = half(src, o + 80), min = half(src, o + 82);
    let q = o + 16, y = i * QK_K, is = o;
    for (let n = 0; n < QK_K; n += 128) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (let h = 0; h < 32; h += 16) { // q[l], then q[l + 16]
          const sc = src[is++]!, dl = f(d * (sc & 0xf)), ml = f(min * (sc >> 4));
          for (let l = 0; l < 16; l++) out[y++] = f(f(dl * ((src[q + h + l]! >> shift) & 3)) - ml);
        }
      }
      q += 32;
    }
  }
}

/**
 * dequantize_row_iq2_xxs: 8 groups of 32 values; a group's 8 bytes are 4 grid indices (each 8 magnitudes of
 * iq2xxs_grid) then a little-endian uint32 of 4 × 7 sign bits (to ksigns_iq2xs, which adds the parity bit) and a
 * 4-bit scale s in its top bits; value = ±(d·(0.5 + s)·0.25)·magnitude, each product in float.
 */
function dequantIQ2_XXS(src: Uint8Array, out: Float32Array, blocks: number): void {
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  for (let i = 0; i < blocks; i++) {
    const o = i * 66, d = half(src, o);
    let y = i * QK_K;
    for (let ib32 = 0; ib32 < 8; ib32++) {
      const a = o + 2 + 8 * ib32, aux1 = view.getUint32(a + 4, true);
      const db = f(f(d * (0.5 + (aux1 >>> 28))) * 0.25);
      for (let l = 0; l < 4; l++) {
        const grid = 8 * src[a + l]!, signs = 8 * ((aux1 >>> (7 * l)) & 127);
        for (let j = 0; j < 8; j++) out[y + j] = f(db * IQ2XXS_GRID[grid + j]!) * IQ2XXS_SIGNS[signs + j]!;
        y += 8;
      }
    }
  }
}

/** ±1 of value j of a group for each 7-bit sign index s at [8s + j]: signs & kmask_iq2xs[j] ? −1 : 1, as a table. */
const IQ2XXS_SIGNS = Float32Array.from({ length: 128 * 8 }, (_, i) => (KSIGNS_IQ2XS[i >> 3]! & KMASK_IQ2XS[i & 7]! ? -1 : 1));

function dequantQ4_K(src: Uint8Array, out: Float32Array, blocks: number): void {
  for (let i = 0; i < blocks; i++) {
    const o = i * 144, d = half(src, o), min = half(src, o + 2), scales = o + 4;
    let q = o + 16, y = i * QK_K;
    for (let is = 0; is < 8; is += 2) {
      const [sc1, m1] = scaleMinK4(is, src, scales), [sc2, m2] = scaleMinK4(is + 1, src, scales);
      const d1 = f(d * sc1), dm1 = f(min * m1), d2 = f(d * sc2), dm2 = f(min * m2);
      for (let l = 0; l < 32; l++) out[y++] = f(f(d1 * (src[q + l]! & 0xf)) - dm1);
      for (let l = 0; l < 32; l++) out[y++] = f(f(d2 * (src[q + l]! >> 4)) - dm2);
      q += 32;
    }
  }
}

function dequantQ5_K(src: Uint8Array, out: Float32Array, blocks: number): void {
  for (let i = 0; i < blocks; i++) {
    const o = i * 176, d = half(src, o), min = half(src, o + 2), scales = o + 4, qh = o + 16;
    let ql = o + 48, y = i * QK_K, u1 = 1, u2 = 2;
    for (let is = 0; is < 8; is += 2) {
      const [sc1, m1] = scaleMinK4(is, src, scales), [sc2, m2] = scaleMinK4(is + 1, src, scales);
      const d1 = f(d * sc1), dm1 = f(min * m1), d2 = f(d * sc2), dm2 = f(min * m2);
      for (let l = 0; l < 32; l++) out[y++] = f(f(d1 * ((src[ql + l]! & 0xf) + (src[qh + l]! & u1 ? 16 : 0))) - dm1);
      for (let l = 0; l < 32; l++) out[y++] = f(f(d2 * ((src[ql + l]! >> 4) + (src[qh + l]! & u2 ? 16 : 0))) - dm2);
      ql += 32;
      u1 <<= 2;
      u2 <<= 2;
    }
  }
}

function dequantQ6_K(src: Uint8Array, out: Float32Array, blocks: number): void {
  for (let i = 0; i < blocks; i++) {
    const o = i * 210, d = half(src, o + 208);
    let ql = o, qh = o + 128, sc = o + 192, y = i * QK_K;
    for (let n = 0; n < QK_K; n += 128) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4, h = src[qh + l]!;
        const q1 = ((src[ql + l]! & 0xf) | (((h >> 0) & 3) << 4)) - 32;
        const q2 = ((src[ql + l + 32]! & 0xf) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((src[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((src[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
        // C: d * sc[is] * q, left to right, each product in float.
        out[y + l] = f(f(d * int8(src[sc + is]!)) * q1);
        out[y + l + 32] = f(f(d * int8(src[sc + is + 2]!)) * q2);
        out[y + l + 64] = f(f(d * int8(src[sc + is + 4]!)) * q3);
        out[y + l + 96] = f(f(d * int8(src[sc + is + 6]!)) * q4);
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function dequantF32(src: Uint8Array, out: Float32Array, count: number): void {
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer, out.byteOffset, 4 * count).set(src.subarray(0, 4 * count));
  } else {
    const view = new DataView(src.buffer, src.byteOffset, 4 * count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  }
}

/**
 * Decodes `count` values of `type` from `src` (the tensor's bytes, at least the byte length of `count` values) into
 * `out` (default a new array). `count` must be a whole number of blocks (tensorByteLength has checked the rows).
 */
export function dequantize(type: GgmlTypeName, src: Uint8Array, count: number, out: Float32Array = new Float32Array(count)): Float32Array {
  const info = GGML_TYPES[type];
  const blocks = count / info.blockSize;
  if (!Number.isInteger(blocks) || src.length < blocks * info.blockBytes || out.length < count) {
    throw new Error(`dequantize ${type}: ${count} values need ${Math.ceil(blocks) * info.blockBytes} bytes, got ${src.length}; output ${out.length}`);
  }
  switch (type) {
    case 'F32': dequantF32(src, out, count); break;
    case 'F16': case 'BF16': widen16(src, 0, count, type, out as Float32Array<ArrayBuffer>); break; // (half.ts's type is narrower than it needs)
    case 'Q4_0': dequantQ4_0(src, out, blocks); break;
    case 'Q8_0': dequantQ8_0(src, out, blocks); break;
    case 'Q2_K': dequantQ2_K(src, out, blocks); break;
    case 'IQ2_XXS': dequantIQ2_XXS(src, out, blocks); break;
    case 'Q4_K': dequantQ4_K(src, out, blocks); break;
    case 'Q5_K': dequantQ5_K(src, out, blocks); break;
    case 'Q6_K': dequantQ6_K(src, out, blocks); break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// Quantization

/** roundf: halves away from zero. */
const roundHalfAway = (v: number): number => (v < 0 ? -Math.round(-v) : Math.round(v));

/**
 * quantize_row_q8_0_ref: per block of 32, d = max|x| / 127 (float), stored as f16; id = 1/d (0 for a zero block);
 * q = roundf(x · id), each product in float. The quotient uses the float d, not the stored f16 one, as ggml does.
 */
function quantQ8_0(values: Float32Array, out: Uint8Array): void {
  const blocks = values.length / 32;
  for (let i = 0; i < blocks; i++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(values[i * 32 + j]!));
    const d = f(amax / 127), id = d ? f(1 / d) : 0;
    const bits = f32ToF16(d), o = i * 34;
    out[o] = bits & 0xff;
    out[o + 1] = bits >>> 8;
    for (let j = 0; j < 32; j++) out[o + 2 + j] = roundHalfAway(f(values[i * 32 + j]! * id)) & 0xff;
  }
}

/**
 * Encodes float32 `values` (rows of `rowLength`) as `type`. A row length that is not a multiple of the block size
 * is a RemaxInputError naming `what` (the tensor).
 */
export function quantize(type: GgmlWritableType, values: Float32Array, rowLength: number, what: string): Uint8Array {
  const info = GGML_TYPES[type];
  const out = new Uint8Array(tensorByteLength(info, rowLength, values.length, what));
  switch (type) {
    case 'F32':
      if (LITTLE_ENDIAN) out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      else { const view = new DataView(out.buffer); values.forEach((v, i) => view.setFloat32(4 * i, v, true)); }
      break;
    case 'F16': case 'BF16': narrow16(values, type, out, 0); break;
    case 'Q8_0': quantQ8_0(values, out); break;
  }
  return out;
}
