// Flags shared by several commands (backend, seed, output directory, sampler settings), declared
// once so their names, defaults and help text agree everywhere.

import { SAMPLER_DEFAULTS, SAMPLER_NAMES } from '@scorch/score';
import type { FlagSpec } from './args.js';
import { BACKEND_CHOICES } from './backend.js';
import { LANGEVIN_STEP_PER_VARIANCE, lossesBySampler } from './sampling.js';

export const backendFlag: FlagSpec = {
  name: 'backend',
  kind: 'choice',
  valueName: 'NAME',
  choices: BACKEND_CHOICES,
  default: 'auto',
  description: "where tensors live: 'auto' takes WebGPU whenever an adapter exists (on a machine without a GPU, Mesa's llvmpipe through Dawn) and the CPU otherwise",
};

export const seedFlag: FlagSpec = {
  name: 'seed',
  kind: 'integer',
  valueName: 'S',
  min: 0,
  default: 0,
  description: 'seed of every random draw (data, initialisation, noise, sampler); the same seed draws the same numbers on every backend (normals to float32 rounding), so runs on two backends agree to rounding, not bit for bit',
};

// At most 65536: each layer's activations are [B, width] (a step holds several, with their
// gradients); 10⁸ failed at allocation with the runtime's "Array buffer allocation failed".
export const batchFlag: FlagSpec = { name: 'batch', kind: 'integer', valueName: 'B', min: 2, max: 65536, default: 256, description: 'data points per step (fresh draws every step)' };

export const lrFlag: FlagSpec = {
  name: 'lr', kind: 'number', valueName: 'LR', min: 0, exclusiveMin: true, default: 0.01,
  description: "Adam's learning rate, held for the first half of training and then decayed linearly to 2% of it (the schedule of @scorch/score's own trained-model tests)",
};

export const forceFlag: FlagSpec = {
  name: 'force',
  kind: 'boolean',
  description: "write into --out even if it already holds files: they are first moved, whole, to a sibling '<out>.replaced-<date>-<time>' (kept; delete it when you no longer need it), so --out never mixes two runs' files",
};

export const samplerFlags: readonly FlagSpec[] = [
  {
    name: 'sampler',
    kind: 'choice',
    valueName: 'NAME',
    choices: SAMPLER_NAMES,
    defaultText: `per loss: ${lossesBySampler((fits) => fits[0]!)}`,
    source: "ald: Song & Ermon 2019; em: Song et al. 2021's VP and sub-VP configurations",
    description: 'langevin: Langevin dynamics; ald: annealed Langevin dynamics; em: reverse-time SDE by Euler–Maruyama; pc: predictor–corrector; ode: probability-flow ODE (adaptive RK45)',
  },
  // At most 16384: the metrics (MMD², energy distance) hold n × n matrices of every pair of
  // points, 1 GiB each in float32 at 16384 (a run there peaked at 10.7 GB and took a minute on the
  // CPU); 70000 failed only after sampling, with the runtime's 'Invalid typed array length'.
  { name: 'n', kind: 'integer', valueName: 'N', min: 2, max: 16384, default: 1000, description: 'number of samples to draw (the metrics compare every pair of them: memory and time grow as N²)' },
  {
    name: 'sample-steps',
    kind: 'integer',
    valueName: 'N',
    min: 1,
    defaultText: `${SAMPLER_DEFAULTS.langevin.steps} for langevin (Song & Ermon 2019, toy experiment); ${SAMPLER_DEFAULTS.reverseSde.steps} for em and pc (Song et al. 2021); ode is adaptive`,
    description: 'sampler steps: Langevin steps, or time steps of the reverse SDE',
  },
  {
    name: 'steps-per-level',
    kind: 'integer',
    valueName: 'T',
    min: 1,
    default: SAMPLER_DEFAULTS.annealedLangevin.stepsPerLevel,
    source: 'Song & Ermon 2019, Alg. 1',
    description: 'annealed Langevin steps per noise level',
  },
  {
    name: 'step-size',
    kind: 'number',
    valueName: 'EPS',
    min: 0,
    exclusiveMin: true,
    defaultText: `${SAMPLER_DEFAULTS.annealedLangevin.stepSize} for ald (Song & Ermon 2019, Alg. 1); for langevin ${LANGEVIN_STEP_PER_VARIANCE}·v, v the variance of the data's finest structure (Song & Ermon 2019's toy step ${SAMPLER_DEFAULTS.langevin.stepSize} for unit-variance modes)`,
    description: 'Langevin step size ε',
  },
];
