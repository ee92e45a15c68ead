import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSafetensors, serializeSafetensors, type SafetensorsTensor } from '../../src/core/formats/safetensors';
import { RemaxInputError } from '../../src/core/errors';

const bytesOf = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** A file as another writer might produce it: `json` as given (no padding), then `data`. */
function rawFile(json: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const header = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

const sample = (): SafetensorsTensor[] => [
  { name: 'wq', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, -0, 1e-30]) },
  { name: 'bias', shape: [3], data: Float32Array.from([NaN, Infinity, -Infinity]) },
  { name: 'scale', shape: [], data: Float32Array.from([0.25]) },
  { name: 'empty', shape: [0, 4], data: new Float32Array(0) },
];

test('serialize writes the spec layout: u64 header length, space-padded JSON, data in the given order', () => {
  const bytes = serializeSafetensors(sample(), { format: 'pt', step: '12' });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0, 'the data section starts 8-byte aligned');
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  const json =
    '{"__metadata__":{"format":"pt","step":"12"},' +
    '"wq":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},' +
    '"bias":{"dtype":"F32","shape":[3],"data_offsets":[24,36]},' +
    '"scale":{"dtype":"F32","shape":[],"data_offsets":[36,40]},' +
    '"empty":{"dtype":"F32","shape":[0,4],"data_offsets":[40,40]}}';
  assert.equal(headerText, json.padEnd(n, ' '));
  assert.equal(bytes.length, 8 + n + 40);
  const data = bytes.subarray(8 + n);
  assert.deepEqual(data.subarray(0, 24), bytesOf(sample()[0]!.data));
  assert.deepEqual(data.subarray(24, 36), bytesOf(sample()[1]!.data));
  assert.equal(new DataView(data.buffer, data.byteOffset).getFloat32(36, true), 0.25, 'little-endian float32');
});

test('round trip: parse gives the same names, order, shapes, bits and metadata; re-serializing is byte-exact', () => {
  const metadata = { format: 'pt', note: 'ünïcödé "quoted"' };
  // Integer-like names would be reordered by a JS object; the data order must still be kept.
  const tensors = [...sample(), { name: '10', shape: [1], data: Float32Array.from([7]) }, { name: '2', shape: [1], data: Float32Array.from([8]) }];
  const bytes = serializeSafetensors(tensors, metadata);
  const parsed = parseSafetensors(bytes, 'model.safetensors');
  assert.deepEqual([...parsed.tensors.keys()], tensors.map((t) => t.name));
  for (const t of tensors) {
    const got = parsed.tensors.get(t.name)!;
    assert.deepEqual(got.shape, t.shape, t.name);
    assert.ok(got.data instanceof Float32Array);
    assert.deepEqual(bytesOf(got.data), bytesOf(t.data), `${t.name}: bit-exact (NaN, -0, infinities included)`);
  }
  assert.deepEqual(parsed.metadata, metadata);
  const again = serializeSafetensors([...parsed.tensors].map(([name, t]) => ({ name, ...t })), parsed.metadata);
  assert.deepEqual(again, bytes);
});

test('no metadata: the header has no __metadata__ and parse returns {}', () => {
  const bytes = serializeSafetensors([{ name: 'x', shape: [1], data: Float32Array.from([1]) }]);
  assert.ok(!new TextDecoder().decode(bytes).includes('__metadata__'));
  assert.deepEqual(parseSafetensors(bytes).metadata, {});
  assert.deepEqual(serializeSafetensors([], {}), serializeSafetensors([]), 'empty metadata is omitted');
  assert.equal(parseSafetensors(serializeSafetensors([])).tensors.size, 0);
});

test('parses a file from another writer: unpadded header, keys not in data order, unaligned data', () => {
  const a = Float32Array.from([1, 2]), b = Float32Array.from([3]);
  const data = new Uint8Array(12);
  data.set(bytesOf(a), 0);
  data.set(bytesOf(b), 8);
  const json = '{"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} ';
  const parsed = parseSafetensors(rawFile(json, data), 'other.safetensors');
  assert.deepEqual([...parsed.tensors.keys()], ['a', 'b'], 'in data order');
  assert.deepEqual(Array.from(parsed.tensors.get('a')!.data), [1, 2]);
  assert.deepEqual(Array.from(parsed.tensors.get('b')!.data), [3]);
  assert.deepEqual(parsed.metadata, { k: 'v' });
});

test('parse returns copies: changing the file bytes afterwards does not change the tensors', () => {
  const bytes = serializeSafetensors([{ name: 'x', shape: [2], data: Float32Array.from([1, 2]) }]);
  const x = parseSafetensors(bytes).tensors.get('x')!.data;
  bytes.fill(0, bytes.length - 8);
  assert.deepEqual(Array.from(x), [1, 2]);
});

test('bad files: one RemaxInputError naming the file and the problem', () => {
  const t = (name: string, dtype: string, shape: unknown, offsets: unknown): string =>
    `${JSON.stringify(name)}:{"dtype":"${dtype}","shape":${JSON.stringify(shape)},"data_offsets":${JSON.stringify(offsets)}}`;
  const eight = new Uint8Array(8);
  const hugeLength = new Uint8Array(16);
  new DataView(hugeLength.buffer).setBigUint64(0, 1n << 40n, true);
  const cases: [string, Uint8Array, RegExp][] = [
    ['too short', new Uint8Array(5), /5 bytes, fewer than the 8-byte safetensors header length/],
    ['header length past the end', hugeLength, /header length field says 1099511627776 bytes but the file has only 8 after it/],
    ['invalid JSON', rawFile('{"a": '), /header is not valid UTF-8 JSON/],
    ['invalid UTF-8', rawFile('{"a":1}').map((b, i) => (i === 10 ? 0xff : b)), /not valid UTF-8 JSON/], // the "a" byte
    ['header is an array', rawFile('[]'), /header is not a JSON object/],
    ['F16 tensor', rawFile(`{${t('w', 'F16', [4], [0, 8])}}`, eight), /tensor "w" has dtype "F16"; only F32 is supported/],
    ['bad shape', rawFile(`{${t('w', 'F32', [-2], [0, 8])}}`, eight), /tensor "w": shape \[-2\] is not a list of non-negative integers/],
    ['bad offsets', rawFile(`{${t('w', 'F32', [2], [8, 0])}}`, eight), /tensor "w": data_offsets \[8,0\] is not a pair/],
    ['offsets disagree with shape', rawFile(`{${t('w', 'F32', [3], [0, 8])}}`, eight), /tensor "w": shape \[3\] needs 12 bytes but data_offsets \[0, 8\] span 8/],
    ['past the data', rawFile(`{${t('w', 'F32', [4], [0, 16])}}`, eight), /tensor "w" data_offsets \[0, 16\] go past the 8-byte data section/],
    ['gap', rawFile(`{${t('w', 'F32', [1], [4, 8])}}`, eight), /tensor "w" starts at data offset 4 but the previous tensor ends at 0 \(a gap\)/],
    ['overlap', rawFile(`{${t('a', 'F32', [2], [0, 8])},${t('b', 'F32', [1], [4, 8])}}`, eight), /tensor "b" starts at data offset 4 but the previous tensor ends at 8 \(an overlap\)/],
    ['trailing bytes', rawFile(`{${t('w', 'F32', [1], [0, 4])}}`, eight), /the tensors cover 4 bytes but the data section has 8/],
    ['non-string metadata', rawFile('{"__metadata__":{"step":12}}'), /"__metadata__" must be an object of string values/],
    ['entry not an object', rawFile('{"w":[1,2]}'), /tensor "w": the header entry is not an object/],
  ];
  for (const [what, bytes, message] of cases) {
    assert.throws(() => parseSafetensors(bytes, 'bad.safetensors'),
      (e: unknown) => e instanceof RemaxInputError && e.message.startsWith('bad.safetensors') && message.test(e.message), what);
  }
});

test('serialize rejects caller bugs with a plain Error', () => {
  const x = { name: 'x', shape: [2], data: Float32Array.from([1, 2]) };
  const isBug = (e: unknown): boolean => e instanceof Error && !(e instanceof RemaxInputError);
  assert.throws(() => serializeSafetensors([x, x]), isBug, 'repeated name');
  assert.throws(() => serializeSafetensors([{ ...x, name: '__metadata__' }]), isBug, 'reserved name');
  assert.throws(() => serializeSafetensors([{ ...x, shape: [3] }]), isBug, 'shape mismatch');
  assert.throws(() => serializeSafetensors([x], { step: 1 as unknown as string }), isBug, 'non-string metadata');
});
