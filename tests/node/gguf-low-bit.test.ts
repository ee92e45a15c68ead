// GGUF's 2-bit types, IQ2_XXS and Q2_K (what most of TinyLlama-1.1B-Chat's published GGUF is): the IQ2_XXS tables
// against their invariants and against the generator ggml builds them from, hand-built blocks whose values are worked
// out here from ggml's formulas (not from the code under test), and a GGUF file of such tensors that loads, runs, and
// under weightsDtype 'f16' gives what a float32 engine of the same weights rounded to half gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IQ2XXS_GRID, KMASK_IQ2XS, KSIGNS_IQ2XS } from '../../src/core/formats/iq2xxs-grid';
import { GGML_TYPES, dequantize, ggmlTypeById } from '../../src/core/formats/gguf-quants';
import { parseGguf, serializeGguf, type GgufMetaType, type GgufTensorToWrite, type GgufValue } from '../../src/core/formats/gguf';
import { loadGguf } from '../../src/core/formats/gguf-model';
import { f16ToF32, f32ToF16 } from '../../src/core/formats/half';
import { RemaxEngine } from '../../src/core/engine';
import { RemaxInputError } from '../../src/core/errors';
import { Prng } from '../../src/core/prng';
import type { ModelWeights } from '../../src/core/config';

const f = Math.fround;
const le16 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff];
const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const bytesOf = (seed: number, n: number): number[] => {
  const rng = new Prng(seed);
  return Array.from({ length: n }, () => rng.nextUint32() & 0xff);
};
/** IEEE half by its definition: (−1)^s · 2^(e−15) · (1 + m/1024), subnormals 2^−14 · m/1024. */
function halfValue(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  return e === 0 ? s * 2 ** -14 * (m / 1024) : s * 2 ** (e - 15) * (1 + m / 1024);
}
const popcount = (v: number): number => { let n = 0; for (; v; v >>= 1) n += v & 1; return n; };

/**
 * kgrid_2bit_256 of ggml-quants.c (iq2xs_init_impl, MIT, the ggml authors): the generator of iq2xxs_grid. Point i
 * packs 8 two-bit levels l (value j in bits 2j, 2j + 1), each the magnitude [8, 25, 43][l] in iq2xxs_grid.
 */
const KGRID_2BIT_256 = [
  0, 2, 5, 8, 10, 17, 20, 32, 34, 40, 42, 65, 68, 80, 88, 97, 100, 128, 130, 138, 162, 257, 260, 272, 277, 320, 388, 408,
  512, 514, 546, 642, 1025, 1028, 1040, 1057, 1060, 1088, 1090, 1096, 1120, 1153, 1156, 1168, 1188, 1280, 1282, 1288, 1312,
  1350, 1385, 1408, 1425, 1545, 1552, 1600, 1668, 1700, 2048, 2053, 2056, 2068, 2088, 2113, 2116, 2128, 2130, 2184, 2308,
  2368, 2562, 2580, 4097, 4100, 4112, 4129, 4160, 4192, 4228, 4240, 4245, 4352, 4360, 4384, 4432, 4442, 4480, 4644, 4677,
  5120, 5128, 5152, 5157, 5193, 5248, 5400, 5474, 5632, 5654, 6145, 6148, 6160, 6208, 6273, 6400, 6405, 6560, 6737, 8192,
  8194, 8202, 8260, 8289, 8320, 8322, 8489, 8520, 8704, 8706, 9217, 9220, 9232, 9280, 9302, 9472, 9537, 9572, 9872, 10248,
  10272, 10388, 10820, 16385, 16388, 16400, 16408, 16417, 16420, 16448, 16456, 16470, 16480, 16513, 16516, 16528, 16640,
  16672, 16737, 16768, 16773, 16897, 16912, 16968, 16982, 17000, 17408, 17416, 17440, 17536, 17561, 17682, 17700, 17920,
  18433, 18436, 18448, 18496, 18501, 18688, 18776, 18785, 18818, 19013, 19088, 20480, 20488, 20497, 20505, 20512, 20608,
  20616, 20740, 20802, 20900, 21137, 21648, 21650, 21770, 22017, 22100, 22528, 22545, 22553, 22628, 22848, 23048, 24580,
  24592, 24640, 24680, 24832, 24917, 25112, 25184, 25600, 25605, 25872, 25874, 25988, 26690, 32768, 32770, 32778, 32833,
  32898, 33028, 33048, 33088, 33297, 33793, 33796, 33808, 33813, 33856, 33888, 34048, 34118, 34196, 34313, 34368, 34400,
  34818, 35076, 35345, 36868, 36880, 36900, 36928, 37025, 37142, 37248, 37445, 37888, 37922, 37956, 38225, 39041, 39200,
  40962, 41040, 41093, 41225, 41472, 42008, 43088, 43268,
];
/** Magnitude of value j of grid point i, from the generator (independent of iq2xxs-grid.ts). */
const magnitude = (i: number, j: number): number => [8, 25, 43][(KGRID_2BIT_256[i]! >> (2 * j)) & 3]!;

test('iq2xxs_grid: 256 distinct points of 8 bytes, each 0x08, 0x19 or 0x2b, equal to ggml\'s generator kgrid_2bit_256', () => {
  assert.equal(IQ2XXS_GRID.length, 256 * 8);
  assert.ok(IQ2XXS_GRID.every((b) => b === 0x08 || b === 0x19 || b === 0x2b), 'every magnitude is 8, 25 or 43');
  const points = new Set<string>();
  for (let i = 0; i < 256; i++) points.add(Array.from(IQ2XXS_GRID.subarray(8 * i, 8 * i + 8)).join(','));
  assert.equal(points.size, 256, 'distinct points');
  assert.equal(KGRID_2BIT_256.length, 256);
  for (let i = 0; i < 256; i++) {
    for (let j = 0; j < 8; j++) assert.equal(IQ2XXS_GRID[8 * i + j], magnitude(i, j), `point ${i} value ${j}`);
  }
  // Anchors of ggml-common.h as printed there (uint64, value 0 the least significant byte).
  const hex = (i: number) => Array.from(IQ2XXS_GRID.subarray(8 * i, 8 * i + 8)).reverse().map((b) => b.toString(16).padStart(2, '0')).join('');
  assert.equal(hex(0), '0808080808080808');
  assert.equal(hex(1), '080808080808082b');
  assert.equal(hex(128), '082b2b0808082b08');
  assert.equal(hex(132), '1908080808080819');
  assert.equal(hex(255), '2b2b2b1908081908');
});

test('ksigns_iq2xs: entry i is i with its parity as bit 7, so every entry has an even number of set bits; kmask is bit j', () => {
  assert.equal(KSIGNS_IQ2XS.length, 128);
  for (let i = 0; i < 128; i++) {
    const s = KSIGNS_IQ2XS[i]!;
    assert.equal(s & 127, i, `entry ${i}: the 7 sign bits`);
    assert.equal(popcount(s) % 2, 0, `entry ${i}: even number of minus signs`);
    assert.equal(s >> 7, popcount(i) & 1, `entry ${i}: bit 7 is the parity of the index`);
  }
  assert.deepEqual(Array.from(KMASK_IQ2XS), [1, 2, 4, 8, 16, 32, 64, 128]);
});

test('ggml type ids and block sizes: Q2_K 10 (84 bytes per 256), IQ2_XXS 16 (66 bytes per 256)', () => {
  assert.deepEqual(ggmlTypeById(10), { name: 'Q2_K', id: 10, blockSize: 256, blockBytes: 84 });
  assert.deepEqual(ggmlTypeById(16), { name: 'IQ2_XXS', id: 16, blockSize: 256, blockBytes: 66 });
});

/** One IQ2_XXS block: f16 d, then per group of 32 four grid indices and a uint32 of 4 × 7 sign bits and a 4-bit scale. */
function iq2xxsBlock(d: number, groups: { grid: number[]; signs: number[]; scale: number }[]): number[] {
  return [...le16(d), ...groups.flatMap((g) => [...g.grid, ...le32((g.signs[0]! | (g.signs[1]! << 7) | (g.signs[2]! << 14) | (g.signs[3]! << 21) | (g.scale << 28)) >>> 0)])];
}

test('dequantize IQ2_XXS: ±(d·(0.5 + s)·0.25)·magnitude, value 7 of a group of 8 negative when its 7 sign bits are odd', () => {
  // Hand-checked: d = 1, scale 3: db = 3.5 · 0.25 = 0.875. Group 0: grid point 0 (all magnitudes 8) → 7, sign index 1
  // (value 0 negative; odd, so value 7 too). Group 1: point 255 = 2b2b2b1908081908 (value 0 the low byte: 8, 25, 8, 8,
  // 25, 43, 43, 43), no signs. Group 2: point 1 = 080808080808082b, sign index 127 (seven minus signs, odd: all eight).
  // Group 3: point 2 = 0808080808081919, sign index 3 (values 0 and 1; even: value 7 plus).
  const one = iq2xxsBlock(0x3c00, [
    { grid: [0, 255, 1, 2], signs: [1, 0, 127, 3], scale: 3 },
    ...Array.from({ length: 7 }, () => ({ grid: [0, 0, 0, 0], signs: [0, 0, 0, 0], scale: 0 })),
  ]);
  const got = dequantize('IQ2_XXS', Uint8Array.from(one), 256);
  const times = (m: number[]) => m.map((v) => 0.875 * v);
  assert.deepEqual(Array.from(got.subarray(0, 8)), [-7, 7, 7, 7, 7, 7, 7, -7]);
  assert.deepEqual(Array.from(got.subarray(8, 16)), times([8, 25, 8, 8, 25, 43, 43, 43]));
  assert.deepEqual(Array.from(got.subarray(16, 24)), times([-43, -8, -8, -8, -8, -8, -8, -8]));
  assert.deepEqual(Array.from(got.subarray(24, 32)), times([-25, -25, 8, 8, 8, 8, 8, 8]));
  assert.equal(got[32], 0.125 * 8, 'scale 0: db = d/8');
});

test('dequantize IQ2_XXS of random blocks: element by element from the formula (d normal, negative, subnormal)', () => {
  for (const d of [0x2c00, 0xa3c5, 0x0013]) {
    const rng = new Prng(d);
    const groups = Array.from({ length: 8 }, () => ({
      grid: Array.from({ length: 4 }, () => rng.nextUint32() & 255), signs: Array.from({ length: 4 }, () => rng.nextUint32() & 127), scale: rng.nextUint32() & 15,
    }));
    const two = [...iq2xxsBlock(d, groups), ...iq2xxsBlock(0x3800, groups.slice().reverse())];
    const got = dequantize('IQ2_XXS', Uint8Array.from(two), 512);
    for (let i = 0; i < 512; i++) {
      const block = i >> 8, g = (block ? groups.slice().reverse() : groups)[(i >> 5) & 7]!, l = (i >> 3) & 3, j = i & 7;
      const db = f(f(halfValue(block ? 0x3800 : d) * (0.5 + g.scale)) * 0.25);
      const negative = j < 7 ? (g.signs[l]! >> j) & 1 : popcount(g.signs[l]!) & 1;
      const expected = f(db * magnitude(g.grid[l]!, j)) * (negative ? -1 : 1);
      assert.ok(Object.is(got[i], expected), `d ${d.toString(16)} element ${i}: ${got[i]} vs ${expected}`);
    }
  }
});

test('dequantize Q2_K: d·(scale & 15)·q − dmin·(scale >> 4), 16 sub-blocks of 16, 2-bit q at shifts 0, 2, 4, 6 of 32 bytes per 128', () => {
  // Hand-checked: d 1, dmin 0.5; sub-block 5 (elements 80–95: the first half's third shift, 2 bits 4–5, of qs[16…31])
  // has scale 10 and min 3; qs[18] = 0b00110000 gives element 82 q = 3: 10·3 − 0.5·3 = 28.5; its neighbours q = 0: −1.5.
  const scales = Array(16).fill(0), qs = Array(64).fill(0);
  scales[5] = 0x3a;
  qs[18] = 0b00110000;
  const got = dequantize('Q2_K', Uint8Array.from([...scales, ...qs, ...le16(0x3c00), ...le16(0x3800)]), 256);
  assert.equal(got[82], 28.5);
  assert.equal(got[81], -1.5);
  assert.equal(got[18], 0, 'the same byte at shift 0 is sub-block 1: scale 0, min 0');
  for (const [d, dmin] of [[0x2c00, 0x2400], [0x1e66, 0x9555], [0x0007, 0x8001]] as const) {
    const sc = bytesOf(d, 16), q = bytesOf(d + 1, 64);
    const block = [...sc, ...q, ...le16(d), ...le16(dmin)];
    const values = dequantize('Q2_K', Uint8Array.from(block), 256);
    for (let i = 0; i < 256; i++) {
      // Half n = i/128; within it shift 2·(r/32) and the first or last 16 bytes of its 32 by (r/16) & 1.
      const n = i >> 7, r = i & 127, shift = 2 * (r >> 5), second = (r >> 4) & 1, l = r & 15;
      const k = 8 * n + 2 * (r >> 5) + second, quant = (q[32 * n + 16 * second + l]! >> shift) & 3;
      const expected = f(f(f(halfValue(d) * (sc[k]! & 15)) * quant) - f(halfValue(dmin) * (sc[k]! >> 4)));
      assert.ok(Object.is(values[i], expected), `Q2_K d ${d.toString(16)} element ${i}: ${values[i]} vs ${expected}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// A GGUF file of such tensors (rows of 256: dim 256, hidden 512), mixed per layer as TinyLlama's ffn_down is.

const CONFIG = { dim: 256, hidden: 512, layers: 2, heads: 2, kvHeads: 1, vocab: 40 };

/** Random blocks of `type` for `count` values, with scales that keep the values about ±0.1. */
function randomBlocks(type: 'IQ2_XXS' | 'Q2_K', count: number, rng: Prng): Uint8Array {
  const info = GGML_TYPES[type], out = new Uint8Array((count / 256) * info.blockBytes);
  for (let i = 0; i < out.length; i++) out[i] = rng.nextUint32() & 0xff;
  for (let o = 0; o < out.length; o += info.blockBytes) {
    const d = f32ToF16(0.002 + (rng.nextUint32() & 255) / 40000), dmin = f32ToF16(0.001 + (rng.nextUint32() & 255) / 80000);
    if (type === 'IQ2_XXS') out.set(le16(d), o);
    else out.set([...le16(d), ...le16(dmin)], o + 80);
  }
  return out;
}

function lowBitGguf(): { bytes: Uint8Array; blocks: Map<string, { type: 'IQ2_XXS' | 'Q2_K'; blocks: Uint8Array }> } {
  const { dim: D, hidden: H, layers, heads, kvHeads, vocab: V } = CONFIG, kv = (D / heads) * kvHeads;
  const rng = new Prng(7);
  const metadata = new Map<string, GgufValue>(), types = new Map<string, GgufMetaType>();
  const put = (key: string, type: GgufMetaType, value: GgufValue) => { metadata.set(key, value); types.set(key, type); };
  put('general.architecture', 'string', 'llama');
  put('llama.context_length', 'u32', 64);
  put('llama.embedding_length', 'u32', D);
  put('llama.block_count', 'u32', layers);
  put('llama.feed_forward_length', 'u32', H);
  put('llama.attention.head_count', 'u32', heads);
  put('llama.attention.head_count_kv', 'u32', kvHeads);
  put('llama.attention.layer_norm_rms_epsilon', 'f32', 1e-5);
  const blocks = new Map<string, { type: 'IQ2_XXS' | 'Q2_K'; blocks: Uint8Array }>();
  const tensors: GgufTensorToWrite[] = [];
  const quantized = (name: string, ne: number[], type: 'IQ2_XXS' | 'Q2_K') => {
    const b = randomBlocks(type, ne[0]! * ne[1]!, rng);
    blocks.set(name, { type, blocks: b });
    tensors.push({ name, shape: ne, type, blocks: b });
  };
  const norm = (name: string) => tensors.push({ name, shape: [D], type: 'F32', data: Float32Array.from({ length: D }, () => 1 + ((rng.nextUint32() & 255) - 128) / 1024) });
  quantized('token_embd.weight', [D, V], 'Q2_K');
  for (let l = 0; l < layers; l++) {
    norm(`blk.${l}.attn_norm.weight`);
    quantized(`blk.${l}.attn_q.weight`, [D, D], 'IQ2_XXS');
    quantized(`blk.${l}.attn_k.weight`, [D, kv], 'IQ2_XXS');
    quantized(`blk.${l}.attn_v.weight`, [D, kv], 'Q2_K');
    quantized(`blk.${l}.attn_output.weight`, [D, D], 'IQ2_XXS');
    norm(`blk.${l}.ffn_norm.weight`);
    quantized(`blk.${l}.ffn_gate.weight`, [D, H], 'IQ2_XXS');
    quantized(`blk.${l}.ffn_up.weight`, [D, H], 'IQ2_XXS');
    quantized(`blk.${l}.ffn_down.weight`, [H, D], l === 0 ? 'Q2_K' : 'IQ2_XXS'); // mixed, as TinyLlama's
  }
  norm('output_norm.weight');
  quantized('output.weight', [D, V], 'IQ2_XXS');
  return { bytes: serializeGguf({ metadata, types, tensors }), blocks };
}

const ENGINE_NAMES: Record<string, keyof ModelWeights> = {
  attn_q: 'wq', attn_k: 'wk', attn_v: 'wv', attn_output: 'wo', ffn_gate: 'w1', ffn_up: 'w3', ffn_down: 'w2',
};

test('a GGUF of IQ2_XXS and Q2_K tensors loads: every value its blocks\' dequantization, layers stacked; types in the description', () => {
  const { bytes, blocks } = lowBitGguf();
  const g = parseGguf(bytes, 'low-bit.gguf');
  assert.equal(g.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!.type, 'IQ2_XXS');
  assert.equal(g.tensors.find((t) => t.name === 'token_embd.weight')!.type, 'Q2_K');
  const model = loadGguf(bytes, 'low-bit.gguf');
  assert.equal(model.dtype, 'IQ2_XXS + Q2_K + F32');
  assert.equal(model.stored, undefined, 'no kernel reads these types: nothing is kept as stored');
  for (const [name, { type, blocks: b }] of blocks) {
    const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(name);
    const weight = m ? ENGINE_NAMES[m[2]!]! : name === 'output.weight' ? 'wcls' : 'token_embedding_table';
    const count = (b.length / GGML_TYPES[type].blockBytes) * 256, layer = m ? Number(m[1]) : 0;
    const got = model.weights[weight]!.subarray(layer * count, (layer + 1) * count);
    assert.deepEqual(new Uint32Array(got.slice().buffer), new Uint32Array(dequantize(type, b, count).buffer), name);
  }
});

test('weightsDtype f16 on IQ2_XXS/Q2_K weights: every matrix 2 bytes, bit-identical to the float32 engine of the weights rounded to half', async () => {
  const model = loadGguf(lowBitGguf().bytes, 'low-bit.gguf');
  const half = await RemaxEngine.create({ model, weightsDtype: 'f16', maxBatch: 2 });
  const auto = await RemaxEngine.create({ model, maxBatch: 2 });
  assert.deepEqual(auto.weightTypes, {}, 'auto: float32 (no kernel of their own)');
  for (const name of ['token_embedding_table', 'wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3', 'wcls'] as const) assert.equal(half.weightTypes[name], 'F16', name);
  const rounded = { ...model, weights: Object.fromEntries(Object.entries(model.weights).map(([name, w]) =>
    [name, ['rms_att_weight', 'rms_ffn_weight', 'rms_final_weight'].includes(name) ? w : w!.map((v) => f16ToF32(f32ToF16(v)))])) as ModelWeights };
  const wide = await RemaxEngine.create({ model: rounded, weightsDtype: 'f32', maxBatch: 2 });
  const sequences = [[1, 5, 9, 2, 14, 3, 7, 30], [1, 17, 4, 4, 22, 39]];
  const bits = (rows: number[][]) => rows.map((r) => Array.from(new Uint32Array(Float32Array.from(r).buffer)));
  assert.deepEqual(bits(half.logprobs(sequences)), bits(wide.logprobs(sequences)), 'log-probabilities bit for bit');
  const prompts = sequences.map((s) => ({ promptIds: s.slice(0, 3) }));
  const options = { temperature: 1, topP: 1, seed: 3, maxNewTokens: 10, stopIds: [] as number[] };
  assert.deepEqual(half.generate(prompts, options), wide.generate(prompts, options), 'sampled tokens');
  assert.ok(half.weightBytes < 0.55 * wide.weightBytes, `2 bytes a matrix value: ${half.weightBytes} vs ${wide.weightBytes}`);
});

test('fuzz: truncations, bit flips and forged type ids of a low-bit GGUF either load or throw a RemaxInputError', () => {
  const { bytes: original } = lowBitGguf();
  const g = parseGguf(original, 'low-bit.gguf');
  const rng = new Prng(20251203);
  const below = (n: number): number => Math.floor(rng.nextFloat64() * n);
  const outcomes = { loaded: 0, rejected: 0 };
  for (let i = 0; i < 800; i++) {
    const bytes = original.slice();
    const at = rng.nextFloat64() < 0.7 ? below(g.dataOffset) : below(bytes.length); // the blocks too: any bytes decode
    let mutated: Uint8Array = bytes, what: string;
    if (i % 3 === 0) {
      mutated = bytes.subarray(0, at);
      what = `truncated to ${at} bytes`;
    } else if (i % 3 === 1) {
      const bit = below(8);
      bytes[at] ^= 1 << bit;
      what = `bit ${bit} of byte ${at} flipped`;
    } else {
      // Another ggml type id for a tensor (its type field is the u32 before its u64 offset, at the end of its entry).
      const t = g.tensors[below(g.tensors.length)]!, id = [0, 1, 2, 8, 10, 12, 13, 14, 16, 17, 30, 99][below(12)]!;
      const nameBytes = new TextEncoder().encode(t.name);
      const entry = findEntry(original, nameBytes, g.dataOffset) + 8 + nameBytes.length + 4 + 8 * t.shape.length;
      bytes.set(le32(id), entry);
      what = `${t.name} given type ${id}`;
    }
    try {
      loadGguf(mutated, 'fuzz.gguf');
      outcomes.loaded++;
    } catch (e) {
      if (!(e instanceof RemaxInputError) || !e.message.startsWith('fuzz.gguf: ')) assert.fail(`${what}: ${(e as Error)?.stack ?? e}`);
      outcomes.rejected++;
    }
  }
  assert.ok(outcomes.loaded > 50 && outcomes.rejected > 200, `both outcomes occur: ${JSON.stringify(outcomes)}`);
});

/** Offset of the tensor-table entry whose name is `name` (its u64 length first) in a GGUF's header. */
function findEntry(bytes: Uint8Array, name: Uint8Array, end: number): number {
  outer: for (let o = 0; o + 8 + name.length < end; o++) {
    if (bytes[o] !== name.length || bytes[o + 1] !== 0) continue;
    for (let k = 0; k < name.length; k++) if (bytes[o + 8 + k] !== name[k]) continue outer;
    return o;
  }
  throw new Error('tensor entry not found');
}
