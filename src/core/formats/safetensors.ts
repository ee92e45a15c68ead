/**
 * The safetensors format (huggingface/safetensors) as bytes in and bytes out: F32, F16 and BF16 tensors, read into
 * and written from float32.
 *
 * Layout: u64 little-endian N; N bytes of UTF-8 JSON
 *   {"__metadata__": {string: string}, "name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}
 * padded with spaces so the data starts 8-byte aligned; then the data section, little-endian, with offsets relative to
 * its start. Like the reference implementation we require the tensors to tile the data section exactly (no gaps, no
 * overlaps, no trailing bytes), so every file we accept is one Hugging Face's loader accepts too.
 *
 * Two levels: readSafetensorsHeader checks a header against the file size (names, dtypes, shapes, offsets) without
 * touching the data, so a loader can check a whole model before it allocates anything; decodeSafetensor then widens
 * one tensor into float32. parseSafetensors does both for a whole file (float32 only unless asked for more).
 */
import { elementCount } from '../config';
import { RemaxInputError, requireInput } from '../errors';
import { f16ToF32, f32ToF16 } from './half';

/** The stored types we read and write (every value of each widens to float32 exactly). */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';
export const SAFETENSORS_DTYPES: readonly SafetensorsDtype[] = ['F32', 'F16', 'BF16'];
const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export interface SafetensorsTensor {
  name: string;
  shape: number[];
  data: Float32Array;
  /** How to store the values (default F32); F16 and BF16 round to nearest even. */
  dtype?: SafetensorsDtype;
}

export interface ParsedSafetensors {
  /** In data-section order (the order serializeSafetensors wrote them in). */
  tensors: Map<string, { shape: number[]; data: Float32Array; dtype: SafetensorsDtype }>;
  /** `__metadata__`, or {} when the file has none. */
  metadata: Record<string, string>;
}

/** One tensor of a header; begin and end are byte offsets into the data section (which starts at header.dataStart). */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** A checked header: every entry's bytes lie inside the file and the entries tile the data section exactly. */
export interface SafetensorsHeader {
  /** What messages call the file. */
  source: string;
  /** Entries in data-section order. */
  tensors: SafetensorsEntry[];
  /** The same entries by name. */
  byName: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** File offset of the data section (8 + header length). */
  dataStart: number;
  /** Size of the whole file in bytes. */
  fileSize: number;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const METADATA_KEY = '__metadata__';
/** The reference implementation's limit; a larger header is a corrupt length field, not a real file. */
const MAX_HEADER_BYTES = 100_000_000;
const NOT_SAFETENSORS = 'the file is truncated or is not a safetensors file';

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNonNegativeInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function dtypeList(dtypes: readonly string[]): string {
  return dtypes.length <= 1 ? dtypes.join('') : `${dtypes.slice(0, -1).join(', ')} and ${dtypes[dtypes.length - 1]}`;
}

// ---------------------------------------------------------------------------------------------------------------------
// Reading

export interface HeaderOptions {
  /** Size of the whole file when `bytes` is only its beginning (it must hold the whole header); default bytes.length. */
  fileSize?: number;
  /** The dtypes to accept (default all of SAFETENSORS_DTYPES); any other is an error naming the tensor. */
  dtypes?: readonly SafetensorsDtype[];
}

/**
 * Reads and checks the header of a safetensors file without reading any tensor data. `bytes` is the file (or its
 * beginning, with options.fileSize). Every problem is a RemaxInputError naming `source`, the tensor and the value.
 */
export function readSafetensorsHeader(bytes: Uint8Array, source = 'safetensors', options: HeaderOptions = {}): SafetensorsHeader {
  const fileSize = options.fileSize ?? bytes.length;
  const dtypes = options.dtypes ?? SAFETENSORS_DTYPES;
  requireInput(fileSize >= 8,
    `${source}: the file has ${fileSize} bytes, fewer than the 8-byte safetensors header length; ${NOT_SAFETENSORS}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  requireInput(declared <= BigInt(fileSize - 8),
    `${source}: the header length field says ${declared} bytes but the file has only ${fileSize - 8} after it; ${NOT_SAFETENSORS}`);
  requireInput(declared <= BigInt(MAX_HEADER_BYTES),
    `${source}: the header length field says ${declared} bytes, more than the ${MAX_HEADER_BYTES}-byte limit of safetensors; the file is corrupt`);
  const headerLength = Number(declared);
  if (bytes.length < 8 + headerLength) {
    throw new Error(`readSafetensorsHeader(${source}): given ${bytes.length} bytes, the header needs ${8 + headerLength}`);
  }

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (error) {
    throw new RemaxInputError(`${source}: the ${headerLength}-byte header is not valid UTF-8 JSON (${(error as Error).message}); ${NOT_SAFETENSORS}`);
  }
  requireInput(isPlainObject(header), `${source}: the header is not a JSON object; ${NOT_SAFETENSORS}`);

  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      requireInput(isPlainObject(info) && Object.values(info).every((v) => typeof v === 'string'),
        `${source}: "${METADATA_KEY}" must be an object of string values`);
      metadata = Object.fromEntries(Object.entries(info)) as Record<string, string>; // a copy, even of a "__proto__" key
      continue;
    }
    const where = `${source}: tensor ${JSON.stringify(name)}`;
    requireInput(isPlainObject(info), `${where}: the header entry is not an object with dtype, shape and data_offsets`);
    const dtype = info.dtype;
    if (!(dtypes as readonly unknown[]).includes(dtype)) {
      throw new RemaxInputError(dtypes.length === 1 && dtypes[0] === 'F32'
        ? `${where} has dtype ${JSON.stringify(dtype)}; only F32 is supported, so save the tensors as float32`
        : `${where} has dtype ${JSON.stringify(dtype)}; the supported dtypes are ${dtypeList(dtypes)}, ` +
          `so save the model in one of them (for example torch_dtype bfloat16; quantized models are not supported)`);
    }
    const shape = info.shape, offsets = info.data_offsets;
    requireInput(Array.isArray(shape) && shape.every(isNonNegativeInt),
      `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    requireInput(Array.isArray(offsets) && offsets.length === 2 && offsets.every(isNonNegativeInt) && offsets[0] <= offsets[1],
      `${where}: data_offsets ${JSON.stringify(offsets)} is not a pair [begin, end] of integers with begin ≤ end`);
    const [begin, end] = offsets as [number, number];
    const bytesNeeded = DTYPE_BYTES[dtype as SafetensorsDtype] * elementCount(shape);
    requireInput(end - begin === bytesNeeded,
      `${where}: shape [${shape}] needs ${bytesNeeded} bytes but data_offsets [${begin}, ${end}] span ${end - begin}; the header is corrupt`);
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end });
  }

  // The tensors must tile the data section: sorted by offset, each starts where the previous one ended.
  const dataStart = 8 + headerLength, dataLength = fileSize - dataStart;
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const { name, begin, end } of entries) {
    requireInput(end <= dataLength,
      `${source}: tensor ${JSON.stringify(name)} data_offsets [${begin}, ${end}] go past the ${dataLength}-byte data section; ${NOT_SAFETENSORS}`);
    requireInput(begin === expected,
      `${source}: tensor ${JSON.stringify(name)} starts at data offset ${begin} but the previous tensor ends at ${expected} ` +
        `(${begin > expected ? 'a gap' : 'an overlap'}); the header is corrupt`);
    expected = end;
  }
  requireInput(expected === dataLength,
    `${source}: the tensors cover ${expected} bytes but the data section has ${dataLength}; ${NOT_SAFETENSORS}`);
  return { source, tensors: entries, byName: new Map(entries.map((e) => [e.name, e])), metadata, dataStart, fileSize };
}

/** F16 bits → float32 bits, built on first use (256 KiB): one table look-up per value instead of a function call. */
let f16Table: Uint32Array | undefined;
function f16BitsTable(): Uint32Array {
  if (!f16Table) {
    const values = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) values[bits] = f16ToF32(bits);
    f16Table = new Uint32Array(values.buffer);
  }
  return f16Table;
}

/** Values per step of the unaligned paths (copied to an aligned scratch first). */
const CHUNK = 1 << 16;

/**
 * Widens `n` little-endian values of `dtype` at file offset `at` of `bytes` into `out` (float32, exact). The BF16
 * path is one shift per value over typed-array views; unaligned data is copied to an aligned scratch in chunks.
 */
function widenInto(bytes: Uint8Array, at: number, n: number, dtype: SafetensorsDtype, out: Float32Array): void {
  const dst = new Uint32Array(out.buffer, out.byteOffset, n);
  if (!LITTLE_ENDIAN) {
    const view = new DataView(bytes.buffer, bytes.byteOffset + at, DTYPE_BYTES[dtype] * n);
    if (dtype === 'F32') for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
    else if (dtype === 'BF16') for (let i = 0; i < n; i++) dst[i] = view.getUint16(2 * i, true) << 16;
    else { const table = f16BitsTable(); for (let i = 0; i < n; i++) dst[i] = table[view.getUint16(2 * i, true)]!; }
    return;
  }
  const start = bytes.byteOffset + at;
  if (dtype === 'F32') {
    if (start % 4 === 0) dst.set(new Uint32Array(bytes.buffer, start, n)); // bits, not values: NaN payloads survive
    else new Uint8Array(out.buffer, out.byteOffset, 4 * n).set(bytes.subarray(at, at + 4 * n));
    return;
  }
  const table = dtype === 'F16' ? f16BitsTable() : undefined;
  const convert = (src: Uint16Array, offset: number, count: number): void => {
    if (table) for (let i = 0; i < count; i++) dst[offset + i] = table[src[i]!]!;
    else for (let i = 0; i < count; i++) dst[offset + i] = src[i]! << 16;
  };
  if (start % 2 === 0) {
    convert(new Uint16Array(bytes.buffer, start, n), 0, n);
    return;
  }
  const scratch = new Uint16Array(Math.min(n, CHUNK));
  const scratchBytes = new Uint8Array(scratch.buffer);
  for (let done = 0; done < n; done += CHUNK) {
    const count = Math.min(CHUNK, n - done);
    scratchBytes.set(bytes.subarray(at + 2 * done, at + 2 * (done + count)));
    convert(scratch, done, count);
  }
}

/**
 * The float32 values of one tensor of a file whose header is `header` (`bytes` is the whole file). Into `out` when
 * given (its length must be the tensor's element count), else into a fresh array.
 */
export function decodeSafetensor(bytes: Uint8Array, header: SafetensorsHeader, entry: SafetensorsEntry, out?: Float32Array): Float32Array {
  if (bytes.length !== header.fileSize) {
    throw new Error(`decodeSafetensor(${header.source}): given ${bytes.length} bytes, the header was read for ${header.fileSize}`);
  }
  const n = elementCount(entry.shape);
  const target = out ?? new Float32Array(n);
  if (target.length !== n) throw new Error(`decodeSafetensor(${header.source}, ${entry.name}): out has ${target.length} values, the tensor ${n}`);
  widenInto(bytes, header.dataStart + entry.begin, n, entry.dtype, target);
  return target;
}

export interface ParseOptions {
  /** The dtypes to accept; default F32 only (what `remax grad` writes), so a half-precision file is an error. */
  dtypes?: readonly SafetensorsDtype[];
}

/**
 * Parses a safetensors file; tensors are fresh float32 copies (widened from F16/BF16 when options.dtypes admits
 * them). Every error names `source` (a file name).
 */
export function parseSafetensors(bytes: Uint8Array, source = 'safetensors', options: ParseOptions = {}): ParsedSafetensors {
  const header = readSafetensorsHeader(bytes, source, { dtypes: options.dtypes ?? ['F32'] });
  const tensors = new Map<string, { shape: number[]; data: Float32Array; dtype: SafetensorsDtype }>();
  for (const entry of header.tensors) {
    tensors.set(entry.name, { shape: entry.shape, data: decodeSafetensor(bytes, header, entry), dtype: entry.dtype });
  }
  return { tensors, metadata: header.metadata };
}

// ---------------------------------------------------------------------------------------------------------------------
// Writing

/** Narrows (or copies) float32 values into `out` at byte `at`, little-endian, rounding to nearest even. */
export function encodeSafetensorValues(values: Float32Array, dtype: SafetensorsDtype, out: Uint8Array, at: number): void {
  const n = values.length;
  const view = new DataView(out.buffer, out.byteOffset + at, DTYPE_BYTES[dtype] * n);
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN) out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), at);
    else for (let i = 0; i < n; i++) view.setFloat32(4 * i, values[i]!, true);
    return;
  }
  if (dtype === 'F16') {
    for (let i = 0; i < n; i++) view.setUint16(2 * i, f32ToF16(values[i]!), true);
    return;
  }
  // BF16, inlined (half.ts f32ToBf16 per value): keep the upper 16 bits rounded to nearest even; NaN stays quiet.
  const src = new Uint32Array(values.buffer, values.byteOffset, n);
  const aligned = LITTLE_ENDIAN && (out.byteOffset + at) % 2 === 0;
  const dst = aligned ? new Uint16Array(out.buffer, out.byteOffset + at, n) : undefined;
  for (let i = 0; i < n; i++) {
    const x = src[i]!;
    const bits = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x0040 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    if (dst) dst[i] = bits;
    else view.setUint16(2 * i, bits, true);
  }
}

/** Bytes of a tensor of `shape` stored as `dtype`. */
export const safetensorByteLength = (shape: number[], dtype: SafetensorsDtype = 'F32'): number => DTYPE_BYTES[dtype] * elementCount(shape);

/** A tensor's entry in a header: where its bytes go is decided by the order of the list. */
export interface SafetensorsHeaderEntry {
  name: string;
  shape: number[];
  dtype?: SafetensorsDtype;
}

/**
 * The bytes before the data section of a file holding `entries` in this order (u64 length, JSON padded with spaces
 * to 8 bytes) and the length of its data section: what a writer that streams the data needs first. A duplicate name
 * or a bad shape or dtype is a caller bug and throws a plain Error.
 */
export function safetensorsHeaderBytes(entries: SafetensorsHeaderEntry[], metadata?: Record<string, string>): { bytes: Uint8Array; dataLength: number } {
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw new Error(`safetensors metadata ${key} is a ${typeof value}; values must be strings`);
    }
    parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  }
  const names = new Set<string>();
  let offset = 0;
  for (const { name, shape, dtype = 'F32' } of entries) {
    if (name === METADATA_KEY || names.has(name)) throw new Error(`safetensors tensor name ${JSON.stringify(name)} is reserved or repeated`);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`safetensors tensor ${name}: shape [${shape}] is not a list of sizes`);
    if (!SAFETENSORS_DTYPES.includes(dtype)) throw new Error(`safetensors tensor ${name}: dtype ${String(dtype)} is not one of ${SAFETENSORS_DTYPES}`);
    names.add(name);
    const size = safetensorByteLength(shape, dtype);
    const info = { dtype, shape, data_offsets: [offset, offset + size] };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`); // built by hand to keep the caller's order
    offset += size;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + headerLength);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(headerLength), true);
  bytes.set(json, 8);
  bytes.fill(0x20, 8 + json.length); // space padding
  return { bytes, dataLength: offset };
}

/**
 * Writes `tensors` (data in the given order, each as its dtype, default F32) and optional string `metadata` (omitted
 * from the header when empty). A duplicate name or a shape that does not match the data length is a caller bug and
 * throws a plain Error.
 */
export function serializeSafetensors(tensors: SafetensorsTensor[], metadata?: Record<string, string>): Uint8Array {
  for (const { name, shape, data } of tensors) {
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || elementCount(shape) !== data.length) {
      throw new Error(`safetensors tensor ${name}: shape [${shape}] does not match its ${data.length} values`);
    }
  }
  const header = safetensorsHeaderBytes(tensors, metadata);
  const out = new Uint8Array(header.bytes.length + header.dataLength);
  out.set(header.bytes);
  let at = header.bytes.length;
  for (const { data, dtype = 'F32' } of tensors) {
    encodeSafetensorValues(data, dtype, out, at);
    at += DTYPE_BYTES[dtype] * data.length;
  }
  return out;
}
