/**
 * The GGUF container (llama.cpp's model file, ggml/docs/gguf.md), versions 2 and 3, little-endian, as bytes in and
 * bytes out: no Node API here.
 *
 * Layout: "GGUF", u32 version, u64 tensor count, u64 metadata count; the metadata (string key, u32 value type, value);
 * the tensor infos (string name, u32 n_dims, u64 ne[n_dims] with ne[0] the row length, u32 ggml type, u64 offset into
 * the data section); padding to `general.alignment` (default 32); the data section, each tensor at an aligned offset.
 * Strings are u64 length + UTF-8 bytes; arrays are u32 element type + u64 count + elements.
 *
 * Metadata comes back as two maps in file order: `metadata` (key → plain value: number, boolean, string, or an array
 * of those as a plain JS array) and `types` (key → its GGUF type, e.g. 'u32', 'f32', 'array<string>'), which
 * serializeGguf needs to write a file back exactly. 64-bit integers are numbers when they are safe integers; a larger
 * one is an error naming its key. Strings decode as UTF-8; invalid bytes become U+FFFD rather than an error (llama.cpp
 * keeps strings as bytes and accepts them), so only such a string would not write back byte for byte.
 *
 * Every check happens before anything of a size read from the file is allocated: a count or length is compared with
 * the bytes left first, so a forged 2^40 is a message, not an out-of-memory.
 */
import { RemaxInputError, requireInput } from '../errors';
import {
  GGML_TYPES, SUPPORTED_TYPES_TEXT, ggmlTypeById, ggmlTypeLabel, quantize, tensorByteLength,
  type GgmlTypeName, type GgmlWritableType,
} from './gguf-quants';

export type GgufScalarType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'string' | 'u64' | 'i64' | 'f64';
/** A metadata value's GGUF type; arrays carry their element type (GGUF arrays of arrays are not supported). */
export type GgufMetaType = GgufScalarType | `array<${GgufScalarType}>`;
export type GgufScalar = number | boolean | string;
export type GgufValue = GgufScalar | number[] | boolean[] | string[];

export interface GgufTensorInfo {
  name: string;
  /** ggml order: shape[0] = ne[0] is the row length (innermost); a row-major [rows, cols] matrix is [cols, rows]. */
  shape: number[];
  type: GgmlTypeName;
  /** Byte offset of the data from the start of the data section. */
  offset: number;
  byteLength: number;
}

export interface GgufFile {
  version: 2 | 3;
  /** Key → value, in file order. */
  metadata: Map<string, GgufValue>;
  /** Key → GGUF type, same keys. */
  types: Map<string, GgufMetaType>;
  /** general.alignment, or 32. */
  alignment: number;
  /** In file order. */
  tensors: GgufTensorInfo[];
  /** Byte offset of the data section in the file. */
  dataOffset: number;
}

export const GGUF_DEFAULT_ALIGNMENT = 32;
const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const MAX_DIMS = 4; // GGML_MAX_DIMS
/** Far above any tensor (the largest models' embeddings have ~2^31 values), low enough that byte sizes stay exact. */
const MAX_ELEMENTS = 2 ** 48;

// GGUF value type ids (gguf_type) and the byte size of the fixed-size ones.
const TYPE_IDS: GgufScalarType[] = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string'];
const ARRAY_ID = 9;
const typeOfId = (id: number): GgufScalarType | 'array' | undefined =>
  id < 9 ? TYPE_IDS[id] : id === ARRAY_ID ? 'array' : (['u64', 'i64', 'f64'] as const)[id - 10];
const idOfType = (t: GgufScalarType): number => (t === 'u64' ? 10 : t === 'i64' ? 11 : t === 'f64' ? 12 : TYPE_IDS.indexOf(t));
const FIXED_BYTES: Record<Exclude<GgufScalarType, 'string'>, number> = {
  u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, u64: 8, i64: 8, f64: 8,
};
/** The fewest bytes a value of the type takes (a string: its u64 length). */
const minBytes = (t: GgufScalarType): number => (t === 'string' ? 8 : FIXED_BYTES[t]);

const INTEGER_RANGES: Partial<Record<GgufScalarType, [number, number]>> = {
  u8: [0, 0xff], i8: [-0x80, 0x7f], u16: [0, 0xffff], i16: [-0x8000, 0x7fff], u32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff], u64: [0, Number.MAX_SAFE_INTEGER], i64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** A key or tensor name for a message: a corrupt file's may be megabytes long. */
const shown = (name: string): string => (name.length > 100 ? `${name.slice(0, 100)}… (${name.length} characters)` : name);

const alignUp = (n: number, alignment: number): number => Math.ceil(n / alignment) * alignment;
const isPowerOfTwo = (n: number): boolean => Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0 && n <= 2 ** 30;

// ---------------------------------------------------------------------------------------------------------------------
// Reading

const utf8 = new TextDecoder('utf-8');

type What = string | (() => string);
const text = (what: What): string => (typeof what === 'string' ? what : what());

/** Reads little-endian values; every check builds its message only when it fails (the vocabularies are 150,000 reads). */
class Reader {
  pos = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array, private readonly source: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get left(): number {
    return this.bytes.length - this.pos;
  }

  need(n: number, what: What): void {
    if (n > this.left) {
      throw new RemaxInputError(
        `${this.source}: the file ends inside ${text(what)} (${n} bytes needed at offset ${this.pos}, the file has ` +
        `${this.bytes.length}); it is truncated or corrupt: download or convert it again`);
    }
  }

  u32(what: What): number { this.need(4, what); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }

  /** A u64 as a number; exact up to 2^53, beyond that only good for "too large" comparisons (messages use u64Text). */
  u64(what: What): number {
    this.need(8, what);
    const lo = this.view.getUint32(this.pos, true), hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    return hi * 2 ** 32 + lo;
  }

  /** The exact decimal text of the u64 just read. */
  lastU64Text(): string {
    return this.view.getBigUint64(this.pos - 8, true).toString();
  }

  /** A count of items of at least `itemBytes` bytes each, checked against the bytes left before anyone allocates. */
  count(itemBytes: number, what: What, items: string): number {
    const n = this.u64(what);
    this.checkCount(n, () => this.lastU64Text(), itemBytes, what, items);
    return n;
  }

  /** Throws unless `n` items of at least `itemBytes` bytes each fit in the bytes left. */
  checkCount(n: number, exact: () => string, itemBytes: number, what: What, items: string, where = 'in the file'): void {
    if (n * itemBytes > this.left) {
      throw new RemaxInputError(
        `${this.source}: ${text(what)} is ${n > Number.MAX_SAFE_INTEGER ? exact() : n} ${items}, more than ` +
        `the ${this.left} bytes left ${where} can hold; the file is truncated or corrupt: download or convert it again`);
    }
  }

  string(what: What): string {
    const n = this.count(1, () => `the length of ${text(what)}`, 'bytes');
    const start = this.pos, bytes = this.bytes;
    this.pos += n;
    if (n < 64) {
      // Most keys and vocabulary pieces are short ASCII: skip the decoder's call overhead.
      let ascii = '';
      for (let i = start; i < start + n; i++) {
        const b = bytes[i]!;
        if (b >= 0x80) return utf8.decode(bytes.subarray(start, start + n));
        ascii += String.fromCharCode(b);
      }
      return ascii;
    }
    return utf8.decode(bytes.subarray(start, start + n));
  }

  scalar(type: GgufScalarType, what: What): GgufScalar {
    if (type === 'string') return this.string(what);
    this.need(FIXED_BYTES[type], what);
    const v = this.view, p = this.pos;
    this.pos += FIXED_BYTES[type];
    switch (type) {
      case 'u8': return v.getUint8(p);
      case 'i8': return v.getInt8(p);
      case 'u16': return v.getUint16(p, true);
      case 'i16': return v.getInt16(p, true);
      case 'u32': return v.getUint32(p, true);
      case 'i32': return v.getInt32(p, true);
      case 'f32': return v.getFloat32(p, true);
      case 'f64': return v.getFloat64(p, true);
      case 'bool': {
        const b = v.getUint8(p);
        if (b > 1) throw new RemaxInputError(`${this.source}: ${text(what)} is a bool stored as ${b}; GGUF bools are 0 or 1, so the file is corrupt`);
        return b === 1;
      }
      case 'u64': case 'i64': {
        const lo = v.getUint32(p, true), hi = type === 'u64' ? v.getUint32(p + 4, true) : v.getInt32(p + 4, true);
        const n = hi * 2 ** 32 + lo;
        if (!Number.isSafeInteger(n)) {
          throw new RemaxInputError(
            `${this.source}: ${text(what)} is ${type === 'u64' ? v.getBigUint64(p, true) : v.getBigInt64(p, true)}, beyond ` +
            `the integers JavaScript represents exactly (±2^53); the file is corrupt or the value cannot be read here`);
        }
        return n;
      }
    }
  }
}

function readValue(r: Reader, key: string, source: string): { type: GgufMetaType; value: GgufValue } {
  const where = `metadata ${key}`;
  const typeId = r.u32(`the type of ${where}`);
  const type = typeOfId(typeId);
  requireInput(type !== undefined,
    `${source}: ${where} has value type ${typeId}, not a GGUF type (0–12); the file is corrupt or from a newer GGUF version`);
  if (type !== 'array') return { type, value: r.scalar(type, where) };

  const itemId = r.u32(`the element type of ${where}`);
  const item = typeOfId(itemId);
  requireInput(item !== undefined && item !== 'array',
    `${source}: ${where} is an array of value type ${itemId}; ` +
    `${item === 'array' ? 'arrays of arrays are not supported' : 'that is not a GGUF type, so the file is corrupt'}`);
  const n = r.count(minBytes(item), `the element count of ${where}`, 'elements');
  const values: GgufScalar[] = new Array(n);
  for (let i = 0; i < n; i++) values[i] = r.scalar(item, () => `${where}[${i}]`);
  return { type: `array<${item}>`, value: values as GgufValue };
}

/**
 * Parses a GGUF file (version 2 or 3, little-endian): metadata, tensor infos and where each tensor's data is.
 * Reads no tensor data (see tensorBytes). Every error is a RemaxInputError naming `source` and the key or tensor.
 */
export function parseGguf(bytes: Uint8Array, source: string): GgufFile {
  const r = new Reader(bytes, source);
  requireInput(r.u32('the magic') === MAGIC,
    `${source}: not a GGUF file (it does not start with "GGUF"); pass a .gguf model file from llama.cpp or the Hugging Face hub`);
  const version = r.u32('the version');
  const swapped = ((version & 0xff) << 24 | (version & 0xff00) << 8 | (version >>> 8) & 0xff00 | version >>> 24) >>> 0;
  requireInput(!(version > 0xffff && swapped >= 1 && swapped <= 3),
    `${source}: a big-endian GGUF file (version ${swapped} in big-endian byte order); only little-endian files are ` +
    `supported: convert the model again on (or for) a little-endian machine`);
  requireInput(version === 2 || version === 3,
    version === 1
      ? `${source}: GGUF version 1 is not supported (it was replaced in 2023); convert the model again with a current llama.cpp`
      : `${source}: GGUF version ${version} is not supported; only versions 2 and 3 are (the file is corrupt or from a newer llama.cpp)`);

  // The smallest tensor info: empty name (8), n_dims (4), type (4), offset (8); the smallest pair: empty key (8), type (4), a u8 (1).
  // The tensor count is checked once the metadata is read, so a file cut inside the metadata says where.
  const tensorCount = r.u64('the tensor count');
  const tensorCountText = r.lastU64Text();
  const kvCount = r.count(13, 'the metadata count', 'entries');

  const metadata = new Map<string, GgufValue>();
  const types = new Map<string, GgufMetaType>();
  for (let i = 0; i < kvCount; i++) {
    const key = r.string(`the key of metadata entry ${i}`);
    requireInput(!metadata.has(key), `${source}: metadata key ${shown(key)} appears twice; the file is corrupt`);
    const { type, value } = readValue(r, shown(key), source);
    metadata.set(key, value);
    types.set(key, type);
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (metadata.has('general.alignment')) {
    const a = metadata.get('general.alignment');
    requireInput(typeof a === 'number' && isPowerOfTwo(a),
      `${source}: metadata general.alignment is ${JSON.stringify(a)} (${types.get('general.alignment')}); it must be a ` +
      `power of two (llama.cpp writes 32); the file is corrupt`);
    alignment = a;
  }

  r.checkCount(tensorCount, () => tensorCountText, 24, 'the tensor count', 'tensors', 'after the metadata');
  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = r.string(`the name of tensor ${i}`), label = shown(name);
    const where = `${source}: tensor ${label}`;
    requireInput(!names.has(name), `${where} appears twice in the tensor table; the file is corrupt`);
    names.add(name);
    const nDims = r.u32(`the dimension count of tensor ${label}`);
    requireInput(nDims <= MAX_DIMS, `${where} has ${nDims} dimensions; ggml tensors have at most ${MAX_DIMS}, so the file is corrupt`);
    const shape: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const n = r.u64(`dimension ${d} of tensor ${label}`);
      requireInput(n > 0 && n <= Number.MAX_SAFE_INTEGER,
        `${where}: dimension ${d} is ${n > Number.MAX_SAFE_INTEGER ? r.lastU64Text() : n}; every dimension must be a positive ` +
        `integer, so the file is corrupt`);
      shape.push(n);
    }
    const typeId = r.u32(`the type of tensor ${label}`);
    const info = ggmlTypeById(typeId);
    requireInput(info !== undefined,
      `${where} has ggml type ${typeId} (${ggmlTypeLabel(typeId)}), which is not supported; supported types: ` +
      `${SUPPORTED_TYPES_TEXT}. Re-quantize the model to one of them (llama.cpp: llama-quantize model.gguf out.gguf Q8_0)`);
    const offset = r.u64(`the data offset of tensor ${label}`);
    const elements = shape.reduce((a, b) => a * b, 1);
    if (elements > MAX_ELEMENTS) {
      throw new RemaxInputError(`${where}: shape [${shape}] has ${shape.reduce((a, b) => a * BigInt(b), 1n)} values, ` +
        `more than any model file holds (2^48); the file is corrupt`);
    }
    const byteLength = tensorByteLength(info, shape[0] ?? 1, elements, where);
    tensors.push({ name, shape, type: info.name, offset, byteLength });
  }

  const dataOffset = alignUp(r.pos, alignment);
  const dataLength = bytes.length - dataOffset;
  for (const t of tensors) {
    const where = `${source}: tensor ${shown(t.name)}`;
    requireInput(t.offset % alignment === 0,
      `${where}: its data offset ${t.offset} is not a multiple of the alignment ${alignment}; the file is corrupt`);
    requireInput(t.offset + t.byteLength <= dataLength,
      `${where}: its ${t.byteLength} bytes at data offset ${t.offset} run past the end of the file (the data section has ` +
      `${Math.max(0, dataLength)} bytes); the file is truncated: download or convert it again`);
  }
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!, t = byOffset[i]!;
    requireInput(t.offset >= prev.offset + prev.byteLength,
      `${source}: tensor ${shown(t.name)} (data offset ${t.offset}) overlaps tensor ${shown(prev.name)} (data offset ${prev.offset}, ` +
      `${prev.byteLength} bytes); the file is corrupt`);
  }
  return { version: version as 2 | 3, metadata, types, alignment, tensors, dataOffset };
}

/** The stored bytes of `tensor` (a view into `bytes`, the file parseGguf read). */
export function tensorBytes(file: GgufFile, bytes: Uint8Array, tensor: GgufTensorInfo): Uint8Array {
  const start = file.dataOffset + tensor.offset;
  return bytes.subarray(start, start + tensor.byteLength);
}

// ---------------------------------------------------------------------------------------------------------------------
// Writing

/** A tensor to write: float32 values quantized here, or (`blocks`) bytes already encoded as any type this engine reads. */
export type GgufTensorToWrite = {
  name: string;
  /** ggml order (ne[0] first), as GgufTensorInfo.shape. */
  shape: number[];
} & ({
  /** The type to store it as; the data is quantized here. */
  type: GgmlWritableType;
  data: Float32Array;
} | {
  /** The blocks' type (e.g. IQ2_XXS, Q2_K: a quantizer's output, for tests and tools); written as given. */
  type: GgmlTypeName;
  blocks: Uint8Array;
});

export interface GgufToWrite {
  /** Key → value, written in this order. */
  metadata: Map<string, GgufValue>;
  /** Key → GGUF type; every metadata key needs one. */
  types: Map<string, GgufMetaType>;
  tensors: GgufTensorToWrite[];
}

/** Whether `value` can be written as a GGUF `type` (integers: in the type's range). */
export function ggufValueFits(type: GgufScalarType, value: unknown): boolean {
  const range = INTEGER_RANGES[type];
  return type === 'string' ? typeof value === 'string'
    : type === 'bool' ? typeof value === 'boolean'
    : type === 'f32' || type === 'f64' ? typeof value === 'number'
    : typeof value === 'number' && Number.isInteger(value) && value >= range![0] && value <= range![1];
}

/** Checks that `value` fits `type` (a caller bug otherwise: plain Error). */
function checkScalar(key: string, type: GgufScalarType, value: unknown): void {
  if (!ggufValueFits(type, value)) throw new Error(`GGUF metadata ${key}: ${JSON.stringify(value)} is not a ${type}`);
}

class Writer {
  pos = 0;
  readonly view: DataView;
  constructor(readonly out: Uint8Array) {
    this.view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  }
  u32(v: number): void { this.view.setUint32(this.pos, v, true); this.pos += 4; }
  u64(v: number): void { this.view.setBigUint64(this.pos, BigInt(v), true); this.pos += 8; }
  bytes(b: Uint8Array): void { this.out.set(b, this.pos); this.pos += b.length; }
  string(s: Uint8Array): void { this.u64(s.length); this.bytes(s); }
  scalar(type: GgufScalarType, v: GgufScalar, encoded?: Uint8Array): void {
    const view = this.view, p = this.pos;
    if (type === 'string') { this.string(encoded ?? new TextEncoder().encode(v as string)); return; }
    switch (type) {
      case 'u8': view.setUint8(p, v as number); break;
      case 'i8': view.setInt8(p, v as number); break;
      case 'u16': view.setUint16(p, v as number, true); break;
      case 'i16': view.setInt16(p, v as number, true); break;
      case 'u32': view.setUint32(p, v as number, true); break;
      case 'i32': view.setInt32(p, v as number, true); break;
      case 'f32': view.setFloat32(p, v as number, true); break;
      case 'f64': view.setFloat64(p, v as number, true); break;
      case 'bool': view.setUint8(p, v ? 1 : 0); break;
      case 'u64': view.setBigUint64(p, BigInt(v as number), true); break;
      case 'i64': view.setBigInt64(p, BigInt(v as number), true); break;
    }
    this.pos += FIXED_BYTES[type];
  }
}

/**
 * Writes a GGUF version 3 file: the metadata with its explicit types, then the tensors quantized to their types, each
 * at an offset aligned to general.alignment (or 32) with zero padding (also after the last, as gguf-py does).
 * A metadata value that does not fit its type, a missing type, a repeated tensor name or a shape that does not match
 * the data is a caller bug (plain Error); a row length the type cannot store is a RemaxInputError naming the tensor.
 */
export function serializeGguf({ metadata, types, tensors }: GgufToWrite): Uint8Array {
  const encoder = new TextEncoder();
  const alignment = metadata.get('general.alignment') ?? GGUF_DEFAULT_ALIGNMENT;
  if (typeof alignment !== 'number' || !isPowerOfTwo(alignment) || (metadata.has('general.alignment') && types.get('general.alignment') !== 'u32')) {
    throw new Error(`GGUF metadata general.alignment must be a u32 power of two, got ${JSON.stringify(alignment)}`);
  }

  // Sizes first, so the file is allocated once.
  let size = 4 + 4 + 8 + 8;
  const encodedKeys: Uint8Array[] = [], encodedStrings = new Map<string, Uint8Array[]>();
  for (const [key, value] of metadata) {
    const type = types.get(key);
    if (type === undefined) throw new Error(`GGUF metadata ${key} has no type`);
    const k = encoder.encode(key);
    encodedKeys.push(k);
    size += 8 + k.length + 4;
    const item = (type.startsWith('array<') ? type.slice(6, -1) : type) as GgufScalarType;
    const items = type === item ? [value] : value;
    if (!Array.isArray(items)) throw new Error(`GGUF metadata ${key}: ${JSON.stringify(value)} is not an ${type}`);
    if (type !== item) size += 4 + 8;
    for (const v of items) checkScalar(key, item, v);
    if (item === 'string') {
      const encoded = (items as string[]).map((s) => encoder.encode(s));
      encodedStrings.set(key, encoded);
      for (const e of encoded) size += 8 + e.length;
    } else {
      size += items.length * FIXED_BYTES[item];
    }
  }
  const names = new Set<string>();
  const encodedNames = tensors.map((t) => {
    if (names.has(t.name)) throw new Error(`GGUF tensor ${t.name} appears twice`);
    names.add(t.name);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.shape.length > MAX_DIMS || !t.shape.every((d) => Number.isSafeInteger(d) && d > 0)
      || ('data' in t ? count !== t.data.length : t.blocks.length !== tensorByteLength(GGML_TYPES[t.type], t.shape[0]!, count, `GGUF tensor ${t.name}`))) {
      throw new Error(`GGUF tensor ${t.name}: shape [${t.shape}] does not match its ${'data' in t ? `${t.data.length} values` : `${t.blocks.length} bytes of ${t.type}`} (or has over ${MAX_DIMS} dimensions)`);
    }
    const n = encoder.encode(t.name);
    size += 8 + n.length + 4 + 8 * t.shape.length + 4 + 8;
    return n;
  });
  const dataOffset = alignUp(size, alignment);
  const encodedData = tensors.map((t) => ('data' in t ? quantize(t.type, t.data, t.shape[0] ?? 1, `tensor ${t.name}`) : t.blocks));
  const offsets: number[] = [];
  let dataSize = 0;
  for (const d of encodedData) {
    offsets.push(dataSize);
    dataSize = alignUp(dataSize + d.length, alignment);
  }

  const w = new Writer(new Uint8Array(dataOffset + dataSize)); // zero-filled: the padding
  w.u32(MAGIC);
  w.u32(3);
  w.u64(tensors.length);
  w.u64(metadata.size);
  let k = 0;
  for (const [key, value] of metadata) {
    const type = types.get(key)!;
    w.string(encodedKeys[k++]!);
    if (type.startsWith('array<')) {
      const item = type.slice(6, -1) as GgufScalarType, items = value as GgufScalar[];
      w.u32(ARRAY_ID);
      w.u32(idOfType(item));
      w.u64(items.length);
      const strings = encodedStrings.get(key);
      items.forEach((v, i) => w.scalar(item, v, strings?.[i]));
    } else {
      w.u32(idOfType(type as GgufScalarType));
      w.scalar(type as GgufScalarType, value as GgufScalar, encodedStrings.get(key)?.[0]);
    }
  }
  tensors.forEach((t, i) => {
    w.string(encodedNames[i]!);
    w.u32(t.shape.length);
    for (const d of t.shape) w.u64(d);
    w.u32(GGML_TYPES[t.type].id);
    w.u64(offsets[i]!);
  });
  encodedData.forEach((d, i) => w.out.set(d, dataOffset + offsets[i]!));
  return w.out;
}
