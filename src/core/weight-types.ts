// How the engine stores each weight matrix in linear memory: float32, or compact frozen weights (bf16, f16, Q8_0)
// that the kernels widen in registers (assembly/kernels/weights.ts, with the same codes). Norms and biases are always
// float32. Widening is exact, so a compact engine computes bit for bit what the float32 widening of its weights does.
import { elementCount, weightShapes, type ModelConfig, type WeightName } from './config';
import { RemaxInputError } from './errors';
import { f16BitsOfF32Bits, f16ToF32, f32ToBf16 } from './formats/half';
import { dequantize, quantize } from './formats/gguf-quants';
import { quantizeQ4_K } from './formats/quantize-q4k';
import type { StoredTensor, StoredTensors } from './formats/model';

export type WeightType = 'F32' | 'BF16' | 'F16' | 'Q8_0' | 'Q4_K';
export const WEIGHT_TYPE_CODES: Record<WeightType, number> = { F32: 0, BF16: 1, F16: 2, Q8_0: 3, Q4_K: 4 };

/**
 * What an engine keeps: 'auto' each matrix as its source stores it (BF16, F16, Q8_0, Q4_K; anything else float32), lossless;
 * 'f32' everything widened to float32 (what training needs); 'bf16' every matrix rounded to bf16 (lossy for others);
 * 'f16' what 'auto' keeps compact as stored (lossless, and Q4_K/Q8_0 smaller than 2 bytes), every other matrix (float32,
 * or a type without a kernel of its own: GGUF Q2_K, Q5_K, Q6_K, IQ2_XXS, Q4_0) rounded to IEEE half — except a matrix
 * with a value half cannot hold (|x| ≥ 65520 would round to infinity) or one whose values are all below half's normal
 * range (2^-14, where half keeps fewer bits), which stays float32 (see chooseWeightTypes; weightTypes says which).
 * 'q8_0' and 'q4_k' (`--quantize`) quantize every matrix at load as ggml does, lossy: Q4_K needs rows of a multiple of
 * 256 values, Q8_0 of 32; a matrix whose rows are not falls back to Q8_0, then to float32 (as llama.cpp's quantize
 * falls back for such rows). A matrix the file already stores in the asked type keeps its own blocks.
 */
export type WeightsDtype = 'auto' | 'f32' | 'bf16' | 'f16' | 'q8_0' | 'q4_k';
export const WEIGHTS_DTYPES: readonly WeightsDtype[] = ['auto', 'f32', 'bf16', 'f16', 'q8_0', 'q4_k'];
/** The lossy quantizations `--quantize` offers. */
export const QUANTIZE_DTYPES: readonly WeightsDtype[] = ['q8_0', 'q4_k'];

/** The tensors that may be compact: the matrices (token_embedding_table doubles as a tied classifier). */
export const MATRIX_WEIGHTS: readonly WeightName[] = ['token_embedding_table', 'wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3', 'wcls'];

/** The compact tensors' types; a tensor not listed is F32. */
export type WeightTypes = Partial<Record<WeightName, Exclude<WeightType, 'F32'>>>;

export function checkWeightsDtype(value: unknown, what: string): WeightsDtype {
  if (!WEIGHTS_DTYPES.includes(value as WeightsDtype)) {
    throw new RemaxInputError(`${what} is ${JSON.stringify(value)}; it must be one of ${WEIGHTS_DTYPES.join(', ')} ` +
      '(auto: as the model is stored, f32: widened to float32, bf16: rounded to bfloat16, f16: what is not stored compact rounded to IEEE half, ' +
      'q8_0 / q4_k: every matrix quantized as ggml does)');
  }
  return value as WeightsDtype;
}

/**
 * The type each tensor of the model gets under `choice` (absent = F32). 'auto' keeps a matrix compact only when its
 * values are exactly the stored type's (they are when they came from the file; not after training changed them):
 * checked here, except for BF16, which the engine checks as it packs (and then plans float32 instead).
 */
export function chooseWeightTypes(config: ModelConfig, weights: Partial<Record<WeightName, Float32Array>>, stored: StoredTensors | undefined,
  choice: WeightsDtype): WeightTypes {
  const types: WeightTypes = {};
  if (choice === 'f32') return types;
  for (const { name, shape } of weightShapes(config)) {
    if (!MATRIX_WEIGHTS.includes(name)) continue;
    if (choice === 'bf16') { types[name] = 'BF16'; continue; }
    if (choice === 'q8_0' || choice === 'q4_k') {
      const type = quantizedType(choice, shape[shape.length - 1]!);
      if (type) types[name] = type;
      continue;
    }
    const s = stored?.[name], values = weights[name];
    if (s && values && exactly(values, s)) types[name] = s.type;
    else if (choice === 'f16' && (!values || halfHolds(values))) types[name] = 'F16';
  }
  return types;
}

/** The type `--quantize choice` gives a matrix with rows of `rowLength` values (undefined: float32). */
export function quantizedType(choice: 'q8_0' | 'q4_k', rowLength: number): 'Q8_0' | 'Q4_K' | undefined {
  if (choice === 'q4_k' && rowLength % 256 === 0) return 'Q4_K';
  return rowLength % 32 === 0 ? 'Q8_0' : undefined;
}

/** Half's largest finite value is 65504; from 65520 up a float32 rounds to infinity. Below 2^-14 halves are subnormal. */
const HALF_OVERFLOW_BITS = 0x477ff000, HALF_MIN_NORMAL_BITS = 0x38800000;

/**
 * Whether IEEE half holds a matrix well enough to round it ('f16'): no finite value that would overflow to infinity,
 * and not every value in half's subnormal range (a matrix of tiny values would keep only a few bits each). NaNs and
 * infinities do not decide: the engine refuses them whatever the type.
 */
export function halfHolds(values: Float32Array): boolean {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  let max = 0;
  for (let i = 0; i < bits.length; i++) {
    const a = bits[i]! & 0x7fffffff;
    if (a > max && a < 0x7f800000) max = a;
  }
  return max < HALF_OVERFLOW_BITS && (max === 0 || max >= HALF_MIN_NORMAL_BITS);
}

/**
 * The stored tensors of the type `types` gives them whose blocks hold exactly these values (what `--quantize` may keep
 * as they are; chooseWeightTypes checks the others' choices itself). Only those are checked: a block of another type
 * would not be kept anyway.
 */
export function exactStored(weights: Partial<Record<WeightName, Float32Array>>, stored: StoredTensors | undefined, types: WeightTypes): StoredTensors | undefined {
  if (!stored) return undefined;
  const out: StoredTensors = {};
  for (const [name, s] of Object.entries(stored) as [WeightName, StoredTensor][]) {
    const values = weights[name];
    if (values && 'blocks' in s && s.type === types[name] && exactly(values, s)) out[name] = s;
  }
  return out;
}

/** True when `values` are exactly the stored tensor's values. */
function exactly(values: Float32Array, s: StoredTensor): boolean {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  if (!('blocks' in s)) {
    if (s.type === 'BF16') return true; // (checked by the engine as it packs)
    for (let i = 0; i < bits.length; i++) if (f16Bits(bits[i]!) < 0) return false;
    return true;
  }
  if (s.blocks.length !== tensorBytes(s.type, [values.length])) return false;
  const q = new Uint32Array(dequantize(s.type, s.blocks, values.length).buffer);
  return q.every((x, i) => x === bits[i]);
}

/** Bytes of a tensor of `shape` (row length last) stored as `type`. */
export function tensorBytes(type: WeightType, shape: number[]): number {
  const count = elementCount(shape);
  if (type === 'F32') return 4 * count;
  if (type === 'Q8_0') return (count / 32) * 34;
  if (type === 'Q4_K') return (count / 256) * 144;
  return 2 * count;
}

/**
 * The stored bytes of float32 `values` as `type`: bf16/f16 rounded to nearest even (exact for values widened from that
 * type); Q8_0 and Q4_K the source's own blocks when given (chooseWeightTypes checked them), else quantized as ggml
 * does (rows of a multiple of 32 values for Q8_0, 256 for Q4_K). Also counts values that are not finite.
 */
export function packTensor(values: Float32Array, type: Exclude<WeightType, 'F32'>, blocks?: Uint8Array, into?: Uint8Array): { bytes: Uint8Array; nonFinite: number } {
  if (type === 'Q8_0' || type === 'Q4_K') {
    let nonFinite = 0;
    for (let i = 0; i < values.length; i++) if (!(values[i]! - values[i]! === 0)) nonFinite++;
    return { bytes: blocks ?? (type === 'Q4_K' ? quantizeQ4_K(values) : quantize('Q8_0', values, 32, 'a Q8_0 tensor')), nonFinite };
  }
  // (Written straight into `into`, the engine's memory, when given.)
  const out = into ? new Uint16Array(into.buffer, into.byteOffset, values.length) : new Uint16Array(values.length);
  let nonFinite = 0;
  if (type === 'BF16') {
    // bf16 of a value widened from bf16: its upper half (the common case, without rounding). Halves of the
    // little-endian float32s: the upper one is the odd one.
    const halves = new Uint16Array(values.buffer, values.byteOffset, 2 * values.length);
    for (let i = 0; i < values.length; i++) {
      const hi = halves[2 * i + 1]!;
      if ((hi & 0x7f80) === 0x7f80) nonFinite++;
      out[i] = halves[2 * i] === 0 ? hi : f32ToBf16(values[i]!);
    }
  } else {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < values.length; i++) {
      const x = bits[i]!;
      if ((x & 0x7f800000) === 0x7f800000) nonFinite++;
      out[i] = f16BitsOfF32Bits(x); // (an exact half's own bits; others rounded to nearest even)
    }
  }
  return { bytes: new Uint8Array(out.buffer, out.byteOffset, 2 * values.length), nonFinite };
}

/**
 * The IEEE half bits of float32 bits x when its value is exactly a half (±0, a subnormal m·2⁻²⁴ or a normal half),
 * else −1: a few integer operations (f32ToF16 and back costs 50 ns a value, 7 s for a 135M-parameter model).
 */
export function f16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000, e = (x >>> 23) & 0xff, mant = x & 0x7fffff;
  if ((x & 0x7fffffff) === 0) return sign;
  if (e >= 113 && e <= 142) return (mant & 0x1fff) === 0 ? sign | ((e - 112) << 10) | (mant >>> 13) : -1;
  if (e >= 103 && e <= 112) { // m·2⁻²⁴ = (1.mant)·2^(e−127): m = (2²³ + mant) >> (126 − e), exact when the bits shifted out are 0
    const shift = 126 - e;
    return (mant & ((1 << shift) - 1)) === 0 ? sign | ((mant | 0x800000) >>> shift) : -1;
  }
  return -1;
}

/** float32 values of a tensor stored as `type` (count values). */
export function unpackTensor(bytes: Uint8Array, type: Exclude<WeightType, 'F32'>, count: number): Float32Array {
  if (type === 'Q8_0' || type === 'Q4_K') return dequantize(type, bytes, count);
  const h = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
  const out = new Float32Array(count);
  if (type === 'BF16') {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) u[i] = h[i]! << 16;
  } else for (let i = 0; i < count; i++) out[i] = f16ToF32(h[i]!);
  return out;
}
