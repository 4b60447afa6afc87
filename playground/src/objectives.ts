// The objectives the playground offers: those of @scorch/score's registry whose model is
// unconditional — the data itself ('none': sliced and implicit score matching) or the data noised
// at one σ ('dsm') — since the page's particles run plain Langevin dynamics on s(x) and its field
// shows s(x), with no noise level to choose.

import { OBJECTIVES, OBJECTIVE_NAMES, type ObjectiveName } from '@scorch/score';

export const PLAYGROUND_OBJECTIVES: readonly ObjectiveName[] = OBJECTIVE_NAMES.filter((o) => {
  const family = OBJECTIVES[o].family;
  return family === 'none' || family === 'single';
});

export function isPlaygroundObjective(name: unknown): name is ObjectiveName {
  return (PLAYGROUND_OBJECTIVES as readonly unknown[]).includes(name);
}
