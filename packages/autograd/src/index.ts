// @scorch/autograd: reverse- and forward-mode differentiation that compose in every order
// (grad of grad, jvp of grad, grad of jvp, jvp of jvp), the PyTorch-style `backward()`, and
// `checkGrads`. Importing it enables `requiresGrad` and `backward()` on tensors.

import { installAmbientAutograd } from '@scorch/tensor';
import { ambientAutograd } from './reverse.js';

installAmbientAutograd(ambientAutograd);

export { vjp, grad, gradOf, valueAndGrad, jvp, hvp, jacobian, hessian, noGrad, enableGrad } from './api.js';
export type { TensorFn, Pullback, GradOptions, GradOptionsMany, Gradients, GradOptionsOne, GradOptionsWithAux, JacobianOptions } from './api.js';
export { jit, makeProgram } from './jit.js';
export { customJvp, customVjp } from './custom.js';
export { vmap, batchRules, BatchTrace } from './vmap.js';
export type { AxisSpec, BatchRule, VmapOptions } from './vmap.js';
export type { JvpRuleInputs, CustomVjpRule } from './custom.js';
export type { JitOptions, JittedFunction, LoweredProgram } from './jit.js';
export { checkGrads } from './checkGrads.js';
export type { CheckGradsOptions } from './checkGrads.js';
export { jvpRules, vjpRules } from './rules.js';
export type { JvpRule, VjpRule } from './rules.js';
export { GradNode, VjpTrace } from './reverse.js';
export { JvpTrace } from './forward.js';
