/**
 * The safetensors format (huggingface/safetensors), float32 tensors only, as bytes in and bytes out.
 *
 * Layout: u64 little-endian N; N bytes of UTF-8 JSON
 *   {"__metadata__": {string: string}, "name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}
 * padded with spaces so the data starts 8-byte aligned; then the data section, little-endian, with offsets relative to
 * its start. Like the reference implementation we require the tensors to tile the data section exactly (no gaps, no
 * overlaps, no trailing bytes), so every file we accept is one Hugging Face's loader accepts too.
 */
import { elementCount } from '../config';
import { RemaxInputError, requireInput } from '../errors';

export interface SafetensorsTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface ParsedSafetensors {
  /** In data-section order (the order serializeSafetensors wrote them in). */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  /** `__metadata__`, or {} when the file has none. */
  metadata: Record<string, string>;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const METADATA_KEY = '__metadata__';
/** The reference implementation's limit; a larger header is a corrupt length field, not a real file. */
const MAX_HEADER_BYTES = 100_000_000;

/**
 * Writes `tensors` (data in the given order) and optional string `metadata` (omitted from the header when empty).
 * A duplicate name or a shape that does not match the data length is a caller bug and throws a plain Error.
 */
export function serializeSafetensors(tensors: SafetensorsTensor[], metadata?: Record<string, string>): Uint8Array {
  const entries: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw new Error(`safetensors metadata ${key} is a ${typeof value}; values must be strings`);
    }
    entries.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  }
  const names = new Set<string>();
  let offset = 0;
  for (const { name, shape, data } of tensors) {
    if (name === METADATA_KEY || names.has(name)) throw new Error(`safetensors tensor name ${JSON.stringify(name)} is reserved or repeated`);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || elementCount(shape) !== data.length) {
      throw new Error(`safetensors tensor ${name}: shape [${shape}] does not match its ${data.length} values`);
    }
    names.add(name);
    const info = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    entries.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`); // built by hand to keep the caller's order
    offset += data.byteLength;
  }
  const json = new TextEncoder().encode(`{${entries.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;

  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength); // space padding
  let at = 8 + headerLength;
  for (const { data } of tensors) {
    if (LITTLE_ENDIAN) out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    else for (let i = 0; i < data.length; i++) view.setFloat32(at + 4 * i, data[i]!, true);
    at += data.byteLength;
  }
  return out;
}

interface HeaderEntry {
  name: string;
  shape: number[];
  begin: number;
  end: number;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNonNegativeInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Parses a float32 safetensors file; tensors are fresh copies. Every error names `source` (a file name). */
export function parseSafetensors(bytes: Uint8Array, source = 'safetensors'): ParsedSafetensors {
  const notSafetensors = 'the file is truncated or is not a safetensors file';
  requireInput(bytes.length >= 8,
    `${source}: the file has ${bytes.length} bytes, fewer than the 8-byte safetensors header length; ${notSafetensors}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  requireInput(declared <= BigInt(bytes.length - 8),
    `${source}: the header length field says ${declared} bytes but the file has only ${bytes.length - 8} after it; ${notSafetensors}`);
  requireInput(declared <= BigInt(MAX_HEADER_BYTES),
    `${source}: the header length field says ${declared} bytes, more than the ${MAX_HEADER_BYTES}-byte limit of safetensors; the file is corrupt`);
  const headerLength = Number(declared);

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (error) {
    throw new RemaxInputError(`${source}: the ${headerLength}-byte header is not valid UTF-8 JSON (${(error as Error).message}); ${notSafetensors}`);
  }
  requireInput(isPlainObject(header), `${source}: the header is not a JSON object; ${notSafetensors}`);

  let metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      requireInput(isPlainObject(info) && Object.values(info).every((v) => typeof v === 'string'),
        `${source}: "${METADATA_KEY}" must be an object of string values`);
      metadata = Object.fromEntries(Object.entries(info)) as Record<string, string>; // a copy, even of a "__proto__" key
      continue;
    }
    const where = `${source}: tensor ${JSON.stringify(name)}`;
    requireInput(isPlainObject(info), `${where}: the header entry is not an object with dtype, shape and data_offsets`);
    requireInput(info.dtype === 'F32',
      `${where} has dtype ${JSON.stringify(info.dtype)}; only F32 is supported, so save the tensors as float32`);
    const shape = info.shape, offsets = info.data_offsets;
    requireInput(Array.isArray(shape) && shape.every(isNonNegativeInt),
      `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    requireInput(Array.isArray(offsets) && offsets.length === 2 && offsets.every(isNonNegativeInt) && offsets[0] <= offsets[1],
      `${where}: data_offsets ${JSON.stringify(offsets)} is not a pair [begin, end] of integers with begin ≤ end`);
    const [begin, end] = offsets as [number, number];
    const bytesNeeded = 4 * elementCount(shape);
    requireInput(end - begin === bytesNeeded,
      `${where}: shape [${shape}] needs ${bytesNeeded} bytes but data_offsets [${begin}, ${end}] span ${end - begin}; the header is corrupt`);
    entries.push({ name, shape, begin, end });
  }

  // The tensors must tile the data section: sorted by offset, each starts where the previous one ended.
  const dataStart = 8 + headerLength, dataLength = bytes.length - dataStart;
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const { name, begin, end } of entries) {
    requireInput(end <= dataLength,
      `${source}: tensor ${JSON.stringify(name)} data_offsets [${begin}, ${end}] go past the ${dataLength}-byte data section; ${notSafetensors}`);
    requireInput(begin === expected,
      `${source}: tensor ${JSON.stringify(name)} starts at data offset ${begin} but the previous tensor ends at ${expected} ` +
        `(${begin > expected ? 'a gap' : 'an overlap'}); the header is corrupt`);
    expected = end;
  }
  requireInput(expected === dataLength,
    `${source}: the tensors cover ${expected} bytes but the data section has ${dataLength}; ${notSafetensors}`);

  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const { name, shape, begin, end } of entries) {
    const count = (end - begin) / 4;
    let data: Float32Array;
    if (LITTLE_ENDIAN) {
      data = new Float32Array(bytes.slice(dataStart + begin, dataStart + end).buffer); // slice: an aligned copy
    } else {
      data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getFloat32(dataStart + begin + 4 * i, true);
    }
    tensors.set(name, { shape, data });
  }
  return { tensors, metadata };
}
