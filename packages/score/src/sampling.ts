// Barrel for the data, metrics and sampler modules (toy distributions with exact scores, sample
// and score quality measures, Langevin/annealed-Langevin/reverse-SDE/PC/probability-flow samplers).

export * from './data.js';
export * from './metrics.js';
export * from './samplers.js';
