// LoRA settings and adapter tensors (the kernels: assembly/model/lora.ts). Each targeted projection W [out, in] of
// every layer gets A [r, in] and B [out, r], stacked over layers like the weights; y = x·Wᵀ + (alpha/r)·(x·Aᵀ)·Bᵀ.
import { kvDim, qDim, type ModelConfig, type ModelWeights, type WeightName } from './config';
import { RemaxInputError } from './errors';
import { Prng } from './prng';

/** A projection an adapter can target; the order is the Model descriptor's (and a layer's loraU slots'). */
export type LoraTarget = 'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down';
export const LORA_TARGETS: readonly LoraTarget[] = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];

export interface LoraSettings {
  rank: number;
  alpha: number;
  /** Projections with an adapter, in LORA_TARGETS order. */
  targets: LoraTarget[];
  /** Dropout on the adapters' input in training (PEFT's lora_dropout), in [0, 1). */
  dropout: number;
}

/** A, B of one target, layers stacked: a [nLayers, rank, in], b [nLayers, out, rank]. */
export type LoraWeights = Partial<Record<LoraTarget, { a: Float32Array; b: Float32Array }>>;

/** The Model descriptor's adapter fields of each target. */
export const LORA_FIELDS: Record<LoraTarget, readonly [string, string]> = {
  q: ['loraAq', 'loraBq'], k: ['loraAk', 'loraBk'], v: ['loraAv', 'loraBv'], o: ['loraAo', 'loraBo'],
  gate: ['loraA1', 'loraB1'], up: ['loraA3', 'loraB3'], down: ['loraA2', 'loraB2'],
};

/** [in, out] of a target's projection. */
export function projectionDims(c: ModelConfig, target: LoraTarget): [number, number] {
  switch (target) {
    case 'q': return [c.dim, qDim(c)];
    case 'k': case 'v': return [c.dim, kvDim(c)];
    case 'o': return [qDim(c), c.dim];
    case 'gate': case 'up': return [c.dim, c.hiddenDim];
    case 'down': return [c.hiddenDim, c.dim];
  }
}

/** Shapes of each target's A and B (layers stacked). */
export function loraShapes(c: ModelConfig, lora: LoraSettings): { target: LoraTarget; a: number[]; b: number[] }[] {
  return lora.targets.map((target) => {
    const [inDim, outDim] = projectionDims(c, target);
    return { target, a: [c.nLayers, lora.rank, inDim], b: [c.nLayers, outDim, lora.rank] };
  });
}

/** Parses a --lora-targets list ("q,k,v,o,gate,up,down"; PEFT's q_proj etc. are accepted too). */
export function parseLoraTargets(list: string, source = '--lora-targets'): LoraTarget[] {
  const names = list.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => s.replace(/_proj$/, ''));
  const bad = names.find((n) => !(LORA_TARGETS as readonly string[]).includes(n));
  if (bad !== undefined) throw new RemaxInputError(`${source}: unknown projection "${bad}"; use a comma-separated list of ${LORA_TARGETS.join(', ')}`);
  if (names.length === 0) throw new RemaxInputError(`${source} is empty: name at least one of ${LORA_TARGETS.join(', ')}`);
  return LORA_TARGETS.filter((t) => names.includes(t));
}

/** Checks settings against the model; throws a RemaxInputError naming `source`, the field and the fix. */
export function checkLoraSettings(lora: LoraSettings, c: ModelConfig, source = 'LoRA'): void {
  const maxRank = Math.min(c.dim, c.hiddenDim, kvDim(c));
  if (!Number.isInteger(lora.rank) || lora.rank < 1 || lora.rank > maxRank) {
    throw new RemaxInputError(`${source}: rank (--lora-rank) ${lora.rank} must be an integer from 1 to ${maxRank} (the narrowest projection of this model)`);
  }
  if (!Number.isFinite(lora.alpha) || lora.alpha <= 0) throw new RemaxInputError(`${source}: alpha (--lora-alpha) ${lora.alpha} must be a positive number`);
  if (lora.targets.length === 0) throw new RemaxInputError(`${source}: no target projections (--lora-targets): name at least one of ${LORA_TARGETS.join(', ')}`);
  const bad = lora.targets.find((t) => !LORA_TARGETS.includes(t));
  if (bad !== undefined) throw new RemaxInputError(`${source}: unknown target projection "${bad}"; use ${LORA_TARGETS.join(', ')}`);
  if (!Number.isFinite(lora.dropout) || lora.dropout < 0 || lora.dropout >= 1) {
    throw new RemaxInputError(`${source}: LoRA dropout (--lora-dropout) ${lora.dropout} must be a probability from 0 up to (not including) 1`);
  }
}

/**
 * Fresh adapters as PEFT initialises them (init_lora_weights=True): A kaiming-uniform with a = √5, which is
 * uniform in ±1/√in, from the seeded portable generator; B zero, so the adapted model starts as the base model.
 */
export function initLoraWeights(c: ModelConfig, lora: LoraSettings, seed: number): LoraWeights {
  const rng = new Prng(seed);
  const out: LoraWeights = {};
  for (const { target, a, b } of loraShapes(c, lora)) {
    const A = new Float32Array(a.reduce((x, y) => x * y, 1)), bound = 1 / Math.sqrt(a[2]!);
    for (let i = 0; i < A.length; i++) A[i] = (2 * rng.nextFloat64() - 1) * bound;
    out[target] = { a: A, b: new Float32Array(b.reduce((x, y) => x * y, 1)) };
  }
  return out;
}

/** alpha / rank: the adapters' output scale (PEFT's `scaling` without rsLoRA). */
export const loraScale = (lora: LoraSettings): number => lora.alpha / lora.rank;

/** The weight each target adapts (llama2.c names: gate = w1, up = w3, down = w2). */
export const LORA_WEIGHT = { q: 'wq', k: 'wk', v: 'wv', o: 'wo', gate: 'w1', up: 'w3', down: 'w2' } as const satisfies Record<LoraTarget, WeightName>;

/** The weights with the adapters merged in: W + (alpha/r)·B·A per layer (copies; the others shared). */
export function mergeLora(c: ModelConfig, weights: ModelWeights, lora: LoraSettings, adapters: LoraWeights): ModelWeights {
  const out: ModelWeights = { ...weights };
  const s = loraScale(lora), r = lora.rank;
  for (const target of lora.targets) {
    const [inDim, outDim] = projectionDims(c, target), name = LORA_WEIGHT[target];
    const w = Float32Array.from(weights[name]!), { a, b } = adapters[target]!;
    for (let l = 0; l < c.nLayers; l++) {
      const W = l * outDim * inDim, A = l * r * inDim, B = l * outDim * r;
      for (let o = 0; o < outDim; o++) {
        for (let i = 0; i < inDim; i++) {
          let sum = 0;
          for (let k = 0; k < r; k++) sum += b[B + o * r + k]! * a[A + k * inDim + i]!;
          w[W + o * inDim + i] = w[W + o * inDim + i]! + s * sum;
        }
      }
    }
    out[name] = w;
  }
  return out;
}

// ---- dropout (the kernels' assembly/model/lora.ts computes the same) ----

/** murmur3's 32-bit finaliser. */
function mix(h: number): number {
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
  return h >>> 0;
}

/** The descriptor's dropout fields: a value is dropped when its hash's top 24 bits are below threshold. */
export function dropoutFields(lora: LoraSettings | undefined): { threshold: number; scale: number } {
  const p = lora?.dropout ?? 0;
  return p > 0 ? { threshold: Math.max(1, Math.round(p * 2 ** 24)), scale: Math.fround(1 / (1 - p)) } : { threshold: 0, scale: 0 };
}

/**
 * The dropout multiplier (0 or 1/(1 − p)) of input column `col` of layer `layer`'s `target` projection at position
 * `pos` of the sequence whose dropout seed is `seed`.
 */
export function dropoutKeep(lora: LoraSettings, seed: number, pos: number, layer: number, target: LoraTarget, col: number): number {
  const { threshold, scale } = dropoutFields(lora);
  if (threshold === 0) return 1;
  const key = mix(mix(mix((seed ^ 0x9e3779b9) >>> 0) ^ pos) ^ ((layer << 3) | LORA_TARGETS.indexOf(target)));
  return (mix(key ^ col) >>> 8) >= threshold ? scale : 0;
}

/** A training example's dropout seed: a hash of the run's seed, the step and the example's index in the step's batch. */
export function dropoutSeed(runSeed: number, step: number, index: number): number {
  return mix(mix(mix(runSeed >>> 0) ^ step) ^ index);
}
