// @scorch/score: score matching on top of @scorch/tensor and @scorch/autograd.
//
// Conventions (conventions.ts, docs/conventions.md):
// - A score function is `(x: Tensor, cond?: Tensor) => Tensor` with x of shape [N, d]; `cond` is
//   σ (noise-conditional models) or t (SDE models), shape [N].
// - Every loss is `lossName(score, x, opts) → scalar Tensor`, the batch mean, with an explicit
//   random key in `opts` wherever it draws noise or projections.
// - Objectives use the ½ convention: ESM = ½E‖s − ∇log p‖², ISM = E[½‖s‖² + tr ∂s/∂x],
//   SSM = E[vᵀ(∂s/∂x)v + ½(vᵀs)²], SSM-VR = E[vᵀ(∂s/∂x)v + ½‖s‖²],
//   DSM = ½E‖s(x̃) + (x̃ − x)/σ²‖², so that ESM = ISM + ½E‖∇log p‖² and DSM → ESM as σ → 0.
// - Every options object rejects names it does not know.
//
// The one barrel of the package. Training: models, losses, KDE targets, optimisers, the training
// loop (train.ts). Sampling: SDEs, samplers, toy data, metrics. By name, for front ends: the
// registry of data sets, objectives and samplers. (Plots and the HTML report: @scorch/report.)

export type { ScoreFunction, EnergyFunction } from './conventions.js';
export * from './models.js';
export * from './losses.js';
export * from './kde.js';
export * from './optim.js';
export * from './train.js';
export * from './sde.js';
export * from './samplers.js';
export * from './data.js';
export * from './metrics.js';
export * from './registry.js';
