// @scorch/score: score matching on top of @scorch/tensor and @scorch/autograd.
//
// Conventions (see each module for details):
// - A score function is `(x: Tensor, cond?: Tensor) => Tensor` with x of shape [N, d]; `cond` is
//   σ (noise-conditional models) or t (SDE models), shape [N].
// - Every loss is `lossName(score, x, opts) → scalar Tensor`, the batch mean, with an explicit
//   random key in `opts` wherever it draws noise or projections.
// - Objectives use the ½ convention: ESM = ½E‖s − ∇log p‖², ISM = E[½‖s‖² + tr ∂s/∂x],
//   SSM = E[vᵀ(∂s/∂x)v + ½(vᵀs)²], SSM-VR = E[vᵀ(∂s/∂x)v + ½‖s‖²],
//   DSM = ½E‖s(x̃) + (x̃ − x)/σ²‖², so that ESM = ISM + ½E‖∇log p‖² and DSM → ESM as σ → 0.

export * from './sde.js';
export * from './training.js';
export * from './sampling.js';
