// sdeOf is typed Sde for an 'sde' noise spec and Sde | undefined only for a spec of unknown kind.
// The type half of each case is checked by `pnpm typecheck` (tsc reads the tests): an assignment
// that did not fit, or a `@ts-expect-error` line that compiled, fails it. The run-time half checks
// that the values are what the types say.

import { describe, expect, it } from 'vitest';
import { type NoiseSpec, type Sde, noiseFor, sdeOf } from '@scorch/score';

describe('sdeOf result types', () => {
  it('an sde spec gives an Sde; a spec of any kind may give undefined', () => {
    const ve: Sde = sdeOf({ kind: 'sde', sde: 've', sigmaMin: 0.01, sigmaMax: 2 });
    const spec: NoiseSpec = noiseFor('dsm', {});
    if (spec.kind === 'sde') throw new Error('dsm has one noise level, not an SDE');
    // @ts-expect-error a NoiseSpec of unknown kind may have no SDE
    const none: Sde = sdeOf(spec);
    const vp = noiseFor('vp', {});
    const narrowed: Sde = vp.kind === 'sde' ? sdeOf(vp) : ve; // narrowed to 'sde': no undefined
    expect(ve.kind).toBe('ve');
    expect(none).toBeUndefined();
    expect(narrowed.kind).toBe('vp');
  });
});
