import { WASM_MAX_PAGES, WASM_PAGE_BYTES } from './arena';
import { weightShapes, type ModelConfig } from './config';
import type { LoraSettings } from './lora';
import { inferenceLogitRows, planModel, planOptimizer, planWorkspace, type WorkspacePlan } from './memory-plan';
import type { TrainingOptions } from './training';
import { tensorBytes, type WeightType, type WeightTypes } from './weight-types';

// What a run's engines will take, from the planners alone (nothing is allocated): each engine is one WebAssembly
// instance with its own linear memory, so each must fit wasm32's 4 GiB; a cap (--max-memory) bounds their sum.
// The steps mirror RemaxEngine: create (model part, inference workspace for maxSeqs sequences), enableTraining
// (weights widened to float32, gradients and Adam moments, a training workspace after the inference one);
// tests/node/memory-report.test.ts checks each engine's total against engine.memoryBytes after the same setup.

export const WASM_INSTANCE_BYTES = WASM_MAX_PAGES * WASM_PAGE_BYTES;

export interface EngineMemorySpec {
  /** What the report calls it: 'policy', 'reference', 'reward model', 'critic'. */
  role: string;
  /** 0: the main thread; 1…: helper thread k (each helper hosts its own engines). */
  thread: number;
  config: ModelConfig;
  /** The compact matrices (weight-types.ts); ignored when training without LoRA (the engine widens to float32). */
  types?: WeightTypes;
  lora?: LoraSettings;
  /** Sequences decoded or scored at once, and the inference workspace's token rows (the engine's maxTokens, 256). */
  maxSeqs: number;
  maxTokens?: number;
  /** enableTraining's options, when the engine trains (optimizerState false: a helper, gradients only). */
  training?: TrainingOptions;
}

export interface MemoryPart {
  part: string;
  bytes: number;
}

export interface EngineMemory {
  role: string;
  thread: number;
  parts: MemoryPart[];
  /** Linear memory in whole pages: what engine.memoryBytes reports after the same setup (before any call's I/O). */
  total: number;
}

export interface RunMemory {
  engines: EngineMemory[];
  total: number;
  /** The first engine over one instance's 4 GiB, or undefined. */
  overInstance?: EngineMemory;
}

/** The training micro-batch's classifier rows when not given (as RemaxEngine.enableTraining: about 16 MB of logits). */
export const trainingLogitRows = (c: ModelConfig, maxTokens: number): number =>
  Math.min(maxTokens, Math.max(16, Math.floor(2 ** 22 / c.vocabSize) & ~3));

/** The memory of one engine, part by part; heapBase is the kernels' (the module's static data ends there). */
export function planEngineMemory(spec: EngineMemorySpec, heapBase: number): EngineMemory {
  const c = spec.config, training = spec.training;
  // Full fine-tuning widens every weight to float32; LoRA keeps the frozen base as stored (engine.enableTraining).
  const types = training && !spec.lora ? {} : spec.types ?? {};
  const model = planModel(c, heapBase, types, spec.lora);
  const optimizer = training ? planOptimizer(model, training.optimizerState ?? true) : undefined;
  const seqs = spec.maxSeqs, rows = Math.max(spec.maxTokens ?? 256, seqs);
  const ws = planWorkspace(c, optimizer?.end ?? model.end, { maxSeqs: seqs, maxTokens: rows, maxLogitRows: inferenceLogitRows(c, rows), training: false, lora: spec.lora });
  let tws: WorkspacePlan | undefined;
  if (training) {
    const maxTokens = training.maxTokens ?? Math.max(512, c.seqLen);
    tws = planWorkspace(c, ws.end, {
      maxTokens, maxSeqs: training.maxSeqs ?? 16, maxLogitRows: training.maxLogitRows ?? trainingLogitRows(c, maxTokens),
      training: true, recompute: training.activationCheckpointing ?? false, lora: spec.lora,
    });
  }
  const end = (tws ?? ws).end;
  const total = Math.max(1, Math.ceil(end / WASM_PAGE_BYTES)) * WASM_PAGE_BYTES;

  const parts: MemoryPart[] = [];
  const byType = new Map<WeightType, number>();
  for (const { name, shape } of weightShapes(c)) {
    const type = types[name] ?? 'F32';
    byType.set(type, (byType.get(type) ?? 0) + tensorBytes(type, shape));
  }
  for (const [type, bytes] of byType) parts.push({ part: `weights ${type.toLowerCase()}`, bytes });
  if (spec.lora) parts.push({ part: 'LoRA adapters', bytes: model.loraEnd - model.loraStart });
  if (optimizer) {
    const trained = model.trainEnd - model.trainStart;
    parts.push({ part: 'gradients', bytes: trained });
    if (optimizer.moments) parts.push({ part: 'Adam m and v', bytes: 2 * trained });
  }
  const span = (plan: WorkspacePlan, names: (keyof WorkspacePlan['offsets'])[]) =>
    names.reduce((sum, n) => sum + (plan.offsets[n] ? sizeOf(plan, n) : 0), 0);
  const kv = span(ws, ['kCache', 'vCache']), logits = span(ws, ['logits']);
  parts.push({ part: `KV cache (${seqs} × ${c.seqLen} tokens)`, bytes: kv });
  parts.push({ part: `logits (${ws.maxLogitRows} rows)`, bytes: logits });
  parts.push({ part: 'inference activations', bytes: ws.end - ws.start - kv - logits });
  if (tws) {
    const chunk = span(tws, ['logits', 'headX', 'headDx']), classifierT = span(tws, ['classifierT']);
    parts.push({ part: `training logits chunk (${tws.maxLogitRows} rows)`, bytes: chunk });
    parts.push({ part: 'transposed classifier (training)', bytes: classifierT });
    parts.push({
      part: `training activations (${tws.maxTokens} tokens${tws.recompute ? ', checkpointed' : ''})`,
      bytes: tws.end - tws.start - chunk - classifierT,
    });
  }
  const counted = parts.reduce((sum, p) => sum + p.bytes, 0);
  parts.push({ part: 'static data, RoPE tables, alignment', bytes: total - counted });
  return { role: spec.role, thread: spec.thread, parts, total };
}

export function planRunMemory(engines: EngineMemorySpec[], heapBase: number): RunMemory {
  const planned = engines.map((e) => planEngineMemory(e, heapBase));
  return {
    engines: planned, total: planned.reduce((sum, e) => sum + e.total, 0),
    overInstance: planned.find((e) => e.total > WASM_INSTANCE_BYTES),
  };
}

/** A buffer's bytes: up to the next buffer's offset (the arena's 64-byte alignment included). */
function sizeOf(plan: WorkspacePlan, name: keyof WorkspacePlan['offsets']): number {
  const at = plan.offsets[name];
  const next = Object.values(plan.offsets).filter((o) => o > at).reduce((m, o) => Math.min(m, o), plan.end);
  return next - at;
}

/** "3GiB", "2500MiB", "512M", "1.5G", or plain bytes → bytes; undefined when it is none of these. */
export function parseMemorySize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = (m[2] ?? 'b').toLowerCase()[0]!;
  const scale = unit === 'g' ? 2 ** 30 : unit === 'm' ? 2 ** 20 : unit === 'k' ? 2 ** 10 : 1;
  const bytes = Math.round(Number(m[1]) * scale);
  return bytes > 0 ? bytes : undefined;
}

/** 1536 MiB / 2.50 GiB. */
export function formatBytes(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** The plan as a table: one line per engine and part, then the total. */
export function formatRunMemory(run: RunMemory, maxMemory?: number): string {
  const lines: string[] = [];
  const width = Math.max(...run.engines.flatMap((e) => e.parts.map((p) => p.part.length)), 10);
  for (const e of run.engines) {
    lines.push(`${e.role}${e.thread === 0 ? '' : ` (helper thread ${e.thread})`}: ${formatBytes(e.total)}${e.total > WASM_INSTANCE_BYTES ? '  OVER the 4 GiB of one instance' : ''}`);
    for (const p of e.parts) if (p.bytes > 0) lines.push(`  ${p.part.padEnd(width)}  ${formatBytes(p.bytes).padStart(11)}`);
  }
  lines.push(`total: ${formatBytes(run.total)} in ${run.engines.length} engine(s)${maxMemory === undefined ? '' : ` (--max-memory ${formatBytes(maxMemory)})`}; at most 4 GiB per engine`);
  return lines.join('\n');
}
