// The checker itself: each case is a rule that is wrong in one way only (a factor, an offset of
// 1e-4, a second derivative, a reverse rule compared with its own transpose), which checkGrads
// must reject; a checker that passed any of them would let such a rule into the library.
// Then its options: the tolerance's bound and reference, its defaults (order 2, ε), its key,
// a direction per argument, and a reverse-only check that runs no forward mode.
import { describe, expect, it } from 'vitest';
import { checkGrads, customJvp, customVjp } from '@scorch/autograd';
import { type Tensor, cos, definePrimitive, mul, randn, randomKey } from '@scorch/tensor';

const f64 = { dtype: 'float64' as const };
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

describe('checkGrads: tolerances, defaults and options', () => {
  it('exact agreement passes at rtol 0 and atol 0 (the bound is inclusive)', async () => {
    // x ↦ 0·x: the JVP, the central difference and both inner products are exactly 0.
    await checkGrads((t) => t.mul(0), [x()], { rtol: 0, atol: 0 });
  });

  it('rtol is relative to the reference value, not to the value under test', async () => {
    // A jvp rule 1.5× the true derivative: |got − want| = 0.5·|want|, which rtol 0.4 rejects
    // (0.4·|want|); measured against |got| (0.6·|want|) it would pass.
    const tooBig = customJvp((t: Tensor) => t.sin(), ({ primals: [p], tangents: [t] }) => t.mul(p.cos()).mul(1.5));
    await expect(checkGrads((t) => tooBig(t), [x()], { order: 1, modes: ['fwd'], rtol: 0.4, atol: 0 })).rejects.toThrow(/JVP vs central difference differs/);
  });

  it('each argument gets its own direction: cotangents swapped between two same-shape arguments are rejected', async () => {
    // f(a, b) = a·b with backward [ct·a, ct·b] (swapped; the truth is [ct·b, ct·a]). With one
    // direction v for both arguments ⟨ct·a, v⟩ + ⟨ct·b, v⟩ equals the true sum, and so does
    // the forward transpose: only distinct directions see it.
    const swapped = customVjp((a: Tensor, b: Tensor) => a.mul(b), { backward: ([a, b]: Tensor[], ct: Tensor) => [ct.mul(a!), ct.mul(b!)] });
    const b = randn([4], { key: randomKey(4), ...f64 });
    await expect(checkGrads((p, q) => swapped(p, q), [x(), b], { order: 1 })).rejects.toThrow(/differs/);
  });

  it('checks to order 2 by default', async () => {
    // The rule's cos(x) is detached: right to first order, its second derivative misses −sin(x).
    const firstOrderOnly = customJvp((t: Tensor) => t.sin(), ({ primals: [p], tangents: [t] }) => t.mul(p.detach().cos()));
    await checkGrads((t) => firstOrderOnly(t), [x()], { order: 1 });
    await expect(checkGrads((t) => firstOrderOnly(t), [x()])).rejects.toThrow(/\((jvp|vjp)\) .*differs/);
  });

  it('the default step keeps the central difference\'s rounding error inside the default tolerances', async () => {
    // x ↦ x + 1000: the derivative is 1 and the difference's rounding error is about
    // u·|f|/ε = 1.1e-16·1e3/1e-6 ≈ 1e-7 at ε = 1e-6, inside atol 1e-6 + rtol 1e-5; at ε = 1e-9
    // it would be ≈ 1e-4, far outside.
    await checkGrads((t) => t.add(1000), [x()]);
  });

  it('refuses a negative atol, naming the option', async () => {
    await expect(checkGrads((t) => t.sin(), [x()], { atol: -1 })).rejects.toThrow('checkGrads: atol must be');
  });

  it('the key chooses the directions: the first disagreement differs between keys and repeats with one key', async () => {
    const wrong = customJvp((t: Tensor) => t.sin(), ({ primals: [p], tangents: [t] }) => t.mul(p.cos()).mul(2));
    const failure = (seed: number) => checkGrads((t) => wrong(t), [x()], { order: 1, key: randomKey(seed) }).then(() => 'passed', (e: Error) => e.message);
    const [a, b, a2] = [await failure(11), await failure(12), await failure(11)];
    expect(a).toMatch(/^checkGrads: JVP vs central difference differs/);
    expect(a2).toBe(a);
    expect(b).not.toBe(a);
  });

  it("with modes ['rev'] runs no forward mode: a primitive whose jvp rule is not written yet is checked in reverse", async () => {
    const sinVjpOnly = definePrimitive({
      name: 'sinVjpOnlyForCheckGrads', kind: 'elementwise', inputs: ['x'], cpu: Math.sin, wgsl: { expression: 'sin(x)' },
      jvp: () => { throw new Error('jvp not written yet'); },
      vjp: (ct, [p]) => [mul(ct, cos(p!))],
    });
    await checkGrads((t) => sinVjpOnly(t), [x()], { order: 1, modes: ['rev'] });
    // The reverse check still compares: a wrong vjp is caught against the central difference.
    const sinWrongVjp = definePrimitive({
      name: 'sinWrongVjpForCheckGrads', kind: 'elementwise', inputs: ['x'], cpu: Math.sin, wgsl: { expression: 'sin(x)' },
      jvp: () => { throw new Error('jvp not written yet'); },
      vjp: (ct, [p]) => [mul(ct, cos(p!)).mul(1.5)],
    });
    await expect(checkGrads((t) => sinWrongVjp(t), [x()], { order: 1, modes: ['rev'] })).rejects.toThrow(/⟨VJP, v⟩ vs ⟨u, JVP⟩ differs/);
  });
});
