// LoRA adapters in PEFT's format (what PeftModel.save_pretrained writes and PEFT, transformers and vLLM load): a
// folder with adapter_config.json and adapter_model.safetensors, whose tensors are named
// base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight [r, in] and ...lora_B.weight [out, r].
// The engine keeps q and k rows in RoPE's interleaved order (rope-order.ts): a q_proj/k_proj lora_B is permuted
// like the weight it adds to, to rotate-half at save and back at load (A's rows are the rank, never permuted).
import { headSize, type ModelConfig } from '../config';
import { RemaxInputError } from '../errors';
import { LORA_TARGETS, checkLoraSettings, loraShapes, type LoraSettings, type LoraTarget, type LoraWeights } from '../lora';
import { halfToInterleaved, interleavedToHalf } from './rope-order';
import { SAFETENSORS_DTYPES, parseSafetensors, serializeSafetensors, type SafetensorsTensor } from './safetensors';

export const ADAPTER_CONFIG_NAME = 'adapter_config.json';
export const ADAPTER_WEIGHTS_NAME = 'adapter_model.safetensors';

/** transformers' module path of each target inside a decoder layer (Llama, Qwen2, Qwen3 and Mistral alike). */
const MODULES: Record<LoraTarget, string> = {
  q: 'self_attn.q_proj', k: 'self_attn.k_proj', v: 'self_attn.v_proj', o: 'self_attn.o_proj',
  gate: 'mlp.gate_proj', up: 'mlp.up_proj', down: 'mlp.down_proj',
};

const tensorName = (layer: number, target: LoraTarget, which: 'A' | 'B'): string =>
  `base_model.model.model.layers.${layer}.${MODULES[target]}.lora_${which}.weight`;

/** Heads of the rows of a target's B that RoPE rotates (q, k), or undefined. */
function ropeHeads(c: ModelConfig, target: LoraTarget): number | undefined {
  return target === 'q' ? c.nHeads : target === 'k' ? c.nKvHeads : undefined;
}

/** The files of a PEFT adapter folder (name → bytes). `base` becomes base_model_name_or_path (null when unknown). */
export function peftAdapterFiles(c: ModelConfig, lora: LoraSettings, adapters: LoraWeights, base: string | null): Record<string, Uint8Array> {
  const config = {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: base, r: lora.rank, lora_alpha: lora.alpha,
    lora_dropout: lora.dropout, target_modules: lora.targets.map((t) => MODULES[t].split('.')[1]), bias: 'none',
    fan_in_fan_out: false, use_rslora: false, use_dora: false, init_lora_weights: true, inference_mode: true,
    modules_to_save: null, layers_to_transform: null, layers_pattern: null, rank_pattern: {}, alpha_pattern: {}, revision: null,
  };
  const tensors: SafetensorsTensor[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    for (const { target, a, b } of loraShapes(c, lora)) {
      const aSize = a[1]! * a[2]!, bSize = b[1]! * b[2]!, pair = adapters[target]!;
      const heads = ropeHeads(c, target);
      const bLayer = pair.b.subarray(l * bSize, (l + 1) * bSize);
      tensors.push({ name: tensorName(l, target, 'A'), shape: [a[1]!, a[2]!], data: pair.a.subarray(l * aSize, (l + 1) * aSize) });
      tensors.push({ name: tensorName(l, target, 'B'), shape: [b[1]!, b[2]!], data: heads ? interleavedToHalf(bLayer, heads, headSize(c), lora.rank) : bLayer });
    }
  }
  return {
    [ADAPTER_CONFIG_NAME]: new TextEncoder().encode(JSON.stringify(config, null, 2) + '\n'),
    [ADAPTER_WEIGHTS_NAME]: serializeSafetensors(tensors, { format: 'pt' }),
  };
}

/**
 * A PEFT LoRA adapter for a model of `c`: its settings and tensors (in the engine's layout). Every error names
 * `source` (the folder) and the file, field or tensor.
 */
export function parsePeftAdapter(files: { config: Uint8Array; weights: Uint8Array }, c: ModelConfig, source: string): { settings: LoraSettings; weights: LoraWeights } {
  const where = `${source}/${ADAPTER_CONFIG_NAME}`;
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder().decode(files.config));
  } catch (error) {
    throw new RemaxInputError(`${where} is not valid JSON (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new RemaxInputError(`${where} must hold a JSON object`);
  const field = (name: string) => json[name];
  const refuse = (name: string, why: string) => { throw new RemaxInputError(`${where}: ${name} ${JSON.stringify(field(name))} ${why}`); };
  if (field('peft_type') !== 'LORA') refuse('peft_type', 'is not "LORA": only LoRA adapters can be loaded');
  const rank = field('r'), alpha = field('lora_alpha') ?? 8;
  if (typeof rank !== 'number') refuse('r', 'must be the rank, a positive integer');
  if (typeof alpha !== 'number') refuse('lora_alpha', 'must be a number');
  if (field('use_rslora') === true) refuse('use_rslora', 'is not supported (scaling alpha/√r): use an adapter trained with use_rslora false');
  if (field('use_dora') === true) refuse('use_dora', 'is not supported (DoRA)');
  if ((field('bias') ?? 'none') !== 'none') refuse('bias', 'is not supported: only bias "none"');
  if (field('fan_in_fan_out') === true) refuse('fan_in_fan_out', 'is not supported (Conv1D layers)');
  for (const name of ['rank_pattern', 'alpha_pattern']) {
    const v = field(name);
    if (v !== undefined && v !== null && (typeof v !== 'object' || Object.keys(v).length > 0)) refuse(name, 'is not supported: every projection must share r and lora_alpha');
  }
  for (const name of ['layers_to_transform', 'modules_to_save']) {
    const v = field(name);
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) refuse(name, 'is not supported: the adapter must cover every layer and save no other module');
  }
  const modules = field('target_modules');
  if (!Array.isArray(modules) || !modules.every((m) => typeof m === 'string')) {
    refuse('target_modules', 'must be a list of module names (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)');
  }
  const names = (modules as string[]).map((m) => m.replace(/^.*\./, ''));
  const targets = LORA_TARGETS.filter((t) => names.includes(MODULES[t].split('.')[1]!));
  const unknown = names.find((n) => !Object.values(MODULES).some((m) => m.endsWith(`.${n}`)));
  if (unknown !== undefined) refuse('target_modules', `names "${unknown}", which is none of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj`);
  const dropout = field('lora_dropout') ?? 0;
  if (typeof dropout !== 'number') refuse('lora_dropout', 'must be a probability from 0 up to 1');
  const settings: LoraSettings = { rank: rank as number, alpha: alpha as number, targets, dropout: dropout as number };
  checkLoraSettings(settings, c, where);

  const weightsSource = `${source}/${ADAPTER_WEIGHTS_NAME}`;
  const { tensors } = parseSafetensors(files.weights, weightsSource, { dtypes: SAFETENSORS_DTYPES });
  const weights: LoraWeights = {};
  const used = new Set<string>();
  for (const { target, a, b } of loraShapes(c, settings)) {
    const A = new Float32Array(a[0]! * a[1]! * a[2]!), B = new Float32Array(b[0]! * b[1]! * b[2]!);
    for (let l = 0; l < c.nLayers; l++) {
      for (const [which, shape, out] of [['A', [a[1]!, a[2]!], A], ['B', [b[1]!, b[2]!], B]] as const) {
        const name = tensorName(l, target, which), t = tensors.get(name) ?? tensors.get(name.replace('.weight', '.default.weight'));
        if (!t) throw new RemaxInputError(`${weightsSource} has no tensor ${name}: an adapter for this model's ${MODULES[target]} needs one per layer (${c.nLayers} layers)`);
        if (t.shape.join(',') !== shape.join(',')) {
          throw new RemaxInputError(`${weightsSource}: tensor ${name} has shape [${t.shape}], this model needs [${shape}] (r ${settings.rank}): the adapter belongs to another model`);
        }
        used.add(tensors.has(name) ? name : name.replace('.weight', '.default.weight'));
        const heads = ropeHeads(c, target);
        out.set(which === 'B' && heads ? halfToInterleaved(t.data, heads, headSize(c), settings.rank) : t.data, l * t.data.length);
      }
    }
    weights[target] = { a: A, b: B };
  }
  const extra = [...tensors.keys()].find((n) => !used.has(n));
  if (extra !== undefined) {
    throw new RemaxInputError(`${weightsSource} holds tensor ${extra}, which is not a lora_A/lora_B of the target_modules of ${where} on this model's layers; ` +
      'only plain LoRA adapters of the attention and MLP projections can be loaded');
  }
  return { settings, weights };
}
