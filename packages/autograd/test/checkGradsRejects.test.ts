// The checker itself: each case is a rule that is wrong in one way only (a factor, an offset of
// 1e-4, a second derivative, a reverse rule compared with its own transpose), which checkGrads
// must reject; a checker that passed any of them would let such a rule into the library.
import { describe, expect, it } from 'vitest';
import { checkGrads, customJvp, customVjp } from '@scorch/autograd';
import { type Tensor, randn, randomKey } from '@scorch/tensor';

const x = () => randn([4], { dtype: 'float64', key: randomKey(3) });

describe('checkGrads rejects wrong derivatives', () => {
  it('a wrong jvp rule (reverse mode is its transpose, so only the fwd comparison sees it)', async () => {
    const bad = customJvp((t: Tensor) => t.sin(), ({ primals: [p], tangents: [t] }) => t.mul(p.cos()).mul(2));
    await expect(checkGrads((t) => bad(t), [x()], { order: 1 })).rejects.toThrow(/JVP vs central difference differs/);
  });
  it('a jvp rule off by 1e-3 relative is rejected at the default tolerances', async () => {
    const bad = customJvp((t: Tensor) => t.sin(), ({ primals: [p], tangents: [t] }) => t.mul(p.cos()).mul(1.001));
    await expect(checkGrads((t) => bad(t), [x()], { order: 1 })).rejects.toThrow(/differs/);
  });
  it('a jvp rule off by 1e-4 absolute is rejected', async () => {
    const bad = customJvp((t: Tensor) => t.sin(), ({ primals: [p], tangents: [t] }) => t.mul(p.cos()).add(t.mul(1e-4)));
    await expect(checkGrads((t) => bad(t), [x()], { order: 1 })).rejects.toThrow(/differs/);
  });
  it('a first derivative right and a second one wrong is rejected at order 2', async () => {
    const bad = customJvp((t: Tensor) => t.sin(), ({ primals: [p], tangents: [t] }) => t.mul(p.detach().cos()));
    await checkGrads((t) => bad(t), [x()], { order: 1 });
    await expect(checkGrads((t) => bad(t), [x()], { order: 2 })).rejects.toThrow(/differs/);
  });
  it('a backward rule whose own derivative is wrong is rejected at order 2 in reverse mode', async () => {
    const bad = customVjp((t: Tensor) => t.sin(), { backward: (s, ct) => [ct.mul((s as Tensor[])[0]!.detach().cos())] });
    await checkGrads((t) => bad(t), [x()], { order: 1, modes: ['rev'] });
    await expect(checkGrads((t) => bad(t), [x()], { order: 2, modes: ['rev'] })).rejects.toThrow(/differs/);
  });
  it('modes rev alone compares the VJP with the central difference, not with the rule\'s own transpose', async () => {
    const bad = customVjp((t: Tensor) => t.sin(), { backward: (s, ct) => [ct.mul((s as Tensor[])[0]!.cos()).mul(2)] });
    await expect(checkGrads((t) => bad(t), [x()], { order: 1, modes: ['rev'] })).rejects.toThrow(/⟨VJP, v⟩ vs ⟨u, JVP⟩ differs/);
  });
  it('modes fwd at order 2 checks the JVP of the JVP', async () => {
    const bad = customJvp((t: Tensor) => t.sin(), ({ primals: [p], tangents: [t] }) => t.mul(p.detach().cos()));
    await expect(checkGrads((t) => bad(t), [x()], { order: 2, modes: ['fwd'] })).rejects.toThrow(/\(jvp\) JVP vs central difference differs/);
  });
});
