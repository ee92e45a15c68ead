// Field lists of the descriptors in assembly/model/layout.ts, in the same order (every field is 4 bytes).
// The engine checks the byte sizes against the module's own at start-up, so a mismatch fails loudly.

export const MODEL_FIELDS = [
  'dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'vocabSize', 'seqLen', 'normEps', 'ropeTheta',
  'tokenEmbedding', 'rmsAtt', 'wq', 'wk', 'wv', 'wo', 'rmsFfn', 'w1', 'w2', 'w3', 'rmsFinal', 'wcls',
  'ropeCos', 'ropeSin', 'headSize', 'bq', 'bk', 'bv', 'rmsQ', 'rmsK',
  'loraRank', 'loraScale', 'loraAq', 'loraBq', 'loraAk', 'loraBk', 'loraAv', 'loraBv', 'loraAo', 'loraBo',
  'loraA1', 'loraB1', 'loraA3', 'loraB3', 'loraA2', 'loraB2', 'loraDropThreshold', 'loraDropScale', 'wscore',
  'embeddingType', 'wqType', 'wkType', 'wvType', 'woType', 'w1Type', 'w2Type', 'w3Type', 'wclsType',
] as const;

export const WORKSPACE_FIELDS = [
  'maxTokens', 'maxSeqs', 'maxLogitRows', 'layerStride', 'layerStrideHidden',
  'tokens', 'slots', 'positions', 'logitRows', 'x', 'xIn', 'xb', 'q', 'k', 'v', 'attOut', 'xMid', 'xbFfn',
  'h1', 'h3', 'gated', 'sigmoid', 'scores', 'logits', 'kCache', 'vCache', 'probs', 'ids',
  'targets', 'weights', 'dx', 'dxb', 'dq', 'dk', 'dv', 'dh1', 'dh3', 'dGated', 'attScratch',
  'headRows', 'headTargets', 'headWeights', 'headEntropy', 'headX', 'headDx', 'layerStrideProbs', 'attProbs',
  'transposeA', 'transposeB', 'classifierT', 'weightsT', 'layerStrideIn', 'recomputeLayers',
  'layerStrideQ', 'layerStrideKv', 'qPre', 'kPre', 'loraStride', 'loraU', 'loraDu', 'loraSeeds', 'loraXd', 'weightRows',
  'loraBt',
] as const;

export const GENERATE_JOB_FIELDS = [
  'nSeqs', 'promptIds', 'promptOffsets', 'maxNewTokens', 'temperature', 'topK', 'topP', 'rngStates', 'stopIds', 'nStopIds',
  'outIds', 'outStride', 'outLengths', 'outLogprobs', 'sharedWith', 'wantLogprobs',
] as const;

export const LOGPROBS_JOB_FIELDS = ['nSeqs', 'ids', 'offsets', 'out'] as const;

export const TRAIN_JOB_FIELDS = ['nSeqs', 'ids', 'offsets', 'weights', 'dropoutSeeds', 'scores', 'entropyFrom', 'entropy'] as const;

export const SCORE_JOB_FIELDS = ['nSeqs', 'ids', 'offsets', 'wanted', 'out'] as const;

/** Fields stored as f32; all others are i32 or pointers. */
const FLOAT_FIELDS = new Set<string>(['normEps', 'ropeTheta', 'loraScale', 'loraDropScale']);

/** Writes a descriptor at byte offset `at`: integer fields as i32, float fields as f32. */
export function writeDescriptor<F extends string>(
  memory: ArrayBuffer, at: number, fields: readonly F[], values: Record<F, number>,
): void {
  const view = new DataView(memory);
  fields.forEach((field, i) => {
    const value = values[field];
    if (value === undefined || !Number.isFinite(value)) throw new Error(`descriptor field ${field} is not set`);
    if (FLOAT_FIELDS.has(field)) view.setFloat32(at + 4 * i, value, true);
    else view.setInt32(at + 4 * i, value, true);
  });
}
