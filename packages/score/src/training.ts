// The training side of @scorch/score in one import: score and energy models, the score-matching
// losses, KDE score targets, optimisers and the training loop. Named exports only: the modules'
// shared validation helpers (checkOneOf, checkBatch) stay internal.

export {
  mlpScore, mlpEnergy, energyScore, paramList, sinusoidalEmbedding, fourierEmbedding, saveParams, loadParams,
  loadParamsInto,
} from './models.js';
export type { ScoreFunction, EnergyFunction } from './conventions.js';
export type {
  Params, Activation, Conditioning, Embedding, OutputScaling, MlpOptions, MlpScoreOptions,
  ScoreModel, EnergyModel, SavedParams,
} from './models.js';

export {
  explicitScoreMatchingLoss, implicitScoreMatchingLoss, scoreJacobianTrace, energyHessianTrace,
  slicedScoreMatchingLoss, projectedJacobianTrace, drawProjections, denoisingScoreMatchingLoss, ncsnLoss,
  sdeScoreLoss,
} from './losses.js';
export type {
  Reduction, LossOptions, ExplicitScoreMatchingOptions, TraceMethod, JacobianTraceOptions,
  ImplicitScoreMatchingOptions, ProjectionDistribution, DrawProjectionsOptions, SlicedMethod, SlicedScoreMatchingOptions,
  ProjectedJacobianTraceOptions,
  DenoisingScoreMatchingOptions, NcsnLossOptions, SdeWeighting, SdeScoreLossOptions,
} from './losses.js';

export { kdeScore, kdeLogDensity, ruleOfThumbBandwidth } from './kde.js';
export type { BandwidthRule, KdeOptions } from './kde.js';

export { adam, sgd, ema, clipGradNorm, globalNorm, linearWarmup } from './optim.js';
export type { LearningRate, Optimizer, AdamOptions, SgdOptions, EmaOptions, Ema } from './optim.js';

export { train } from './train.js';
export type { TrainProgress, TrainOptions, TrainResult } from './train.js';
