// The worker side of a helper engine: answers the main engine's requests (protocol.ts) in the order they arrive.
import { RemaxEngine } from '../engine';
import { RemaxInputError } from '../errors';
import type { WasmBuilds } from '../kernels';
import { pairGradient } from '../bradley-terry';
import { valueGradients } from '../rl/value-gradients';
import type { EngineRole, HelperOps, HelperReply, HelperRequest, Transport } from './protocol';

interface HelperState {
  policy: RemaxEngine;
  reference: RemaxEngine | undefined;
  parameters: Float32Array;
  gradients: Float32Array;
}

export function serveHelper(transport: Transport, wasm?: WasmBuilds): void {
  // One engine (and state) per role: the policy's, and PPO's critic's when the run has one.
  const states: Partial<Record<EngineRole, HelperState>> = {};
  let role: EngineRole = 'policy'; // the role of the request being handled (one at a time: see the queue below)
  const ready = () => {
    const state = states[role];
    if (!state) throw new Error(`helper ${role} engine used before init`);
    return state;
  };
  const handlers: { [K in keyof HelperOps]: (args: HelperOps[K]['args']) => Promise<HelperOps[K]['result']> | HelperOps[K]['result'] } = {
    async init({ policy: policyModel, reference: referenceModel, referenceIsPolicy, lora, build, maxBatch, training, parameters, gradients }) {
      const own = role; // (the engine is created across awaits)
      const policy = await RemaxEngine.create({
        // LoRA: the base as the main engine holds it ('auto' of its exportModel(), whose stored types are the main
        // engine's own: a base it keeps as f16 arrives as exact halves marked F16, and stays so).
        model: policyModel, build, maxBatch, wasm, ...(training && !lora ? { weightsDtype: 'f32' as const } : {}),
        ...(lora ? { lora: lora.settings, loraWeights: lora.weights } : {}),
      });
      if (training) policy.enableTraining({ ...training, optimizerState: false }); // the main engine steps the optimizer
      const reference = referenceIsPolicy ? policy : referenceModel ? await RemaxEngine.create({ model: referenceModel, build, maxBatch, wasm }) : undefined;
      states[own] = { policy, reference, parameters: new Float32Array(parameters), gradients: new Float32Array(gradients) };
      return { memoryBytes: policy.memoryBytes + (reference && reference !== policy ? reference.memoryBytes : 0) };
    },
    setParameters() {
      const { policy, parameters } = ready();
      policy.writeParameters(parameters);
      return null;
    },
    generate({ requests, options }) {
      return ready().policy.generate(requests, options);
    },
    logprobs({ sequences }) {
      return ready().policy.logprobs(sequences);
    },
    referenceLogprobs({ sequences }) {
      const { reference } = ready();
      if (!reference) throw new Error('helper has no reference engine');
      return reference.logprobs(sequences, { adapters: false });
    },
    gradients({ examples }) {
      const { policy, gradients } = ready();
      policy.zeroGradients();
      const result = policy.accumulateGradients(examples);
      policy.copyGradientsTo(gradients);
      return result;
    },
    pairGradients({ pairs, batchSize }) {
      const { policy, gradients } = ready();
      policy.zeroGradients();
      const seen = { chosen: [] as number[], rejected: [] as number[] };
      policy.accumulateScoreGradients(pairs, pairGradient(batchSize, seen));
      policy.copyGradientsTo(gradients);
      return seen;
    },
    tokenScores({ sequences }) {
      return ready().policy.tokenScores(sequences);
    },
    valueGradients({ targets, valueClip, vfCoef, denominator }) {
      const { policy: critic, gradients } = ready();
      const result = valueGradients(critic, targets, { valueClip, vfCoef, denominator });
      critic.copyGradientsTo(gradients);
      return result;
    },
  };
  // One request at a time: a helper's engine is not reentrant, and replies keep the requests' order.
  let queue = Promise.resolve();
  transport.onMessage((message) => {
    const request = message as HelperRequest;
    queue = queue.then(async () => {
      let reply: HelperReply;
      role = request.role ?? 'policy';
      try {
        reply = { id: request.id, ok: true, result: await (handlers[request.op] as (args: unknown) => unknown)(request.args) };
      } catch (error) {
        reply = { id: request.id, ok: false, error: { message: (error as Error).message, input: error instanceof RemaxInputError } };
      }
      transport.postMessage(reply);
    });
  });
}
