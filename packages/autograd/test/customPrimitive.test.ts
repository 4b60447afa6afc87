// Primitives defined with definePrimitive, on the CPU: values against float64 host math, the
// definition's own jvp and vjp rules reached by jvp, grad, vmap and jit (a deliberately wrong
// rule proves which rule runs), checkGrads to order 2, the default batching of both kinds, and
// the errors of bad definitions (name collisions, malformed fields, rules returning the wrong
// thing). The WebGPU side is in packages/kernels/test/customPrimitive.test.ts; both test the
// definitions in tests/fixtures/definedPrimitives.ts.
//
// Tolerances: float64 throughout, against the same formula in host doubles: the CPU
// implementation is that formula, so values agree to a few ulps (1e-14 relative covers the
// handful of roundings of log1p/exp/products). checkGrads uses its documented defaults.

import { describe, expect, it } from 'vitest';
import {
  type Tensor, definePrimitive, definedPrimitives, memory, mul, primitiveDefinition, randn, randomKey, sum, tensor, tidy,
} from '@scorch/tensor';
import { checkGrads, grad, jit, jvp, jvpRules, makeProgram, vjp, vjpRules, vmap, batchRules } from '@scorch/autograd';
import { messageOf } from './helpers.js';
import { rowSquares, scaledExp, softplusHost, softplusSquare, softplusSquareDerivative } from '../../../tests/fixtures/definedPrimitives.js';

const f64 = (values: number[] | number[][] | number[][][]) => tensor(values, { dtype: 'float64' });

async function expectClose(t: Tensor, expected: readonly number[], rtol = 1e-14): Promise<void> {
  const got = Array.from(await t.data());
  expect(got.length).toBe(expected.length);
  got.forEach((g, i) => {
    const e = expected[i]!;
    if (Math.abs(g - e) > rtol * Math.abs(e) + 1e-300) throw new Error(`element ${i}: got ${g}, expected ${e}`);
  });
}

describe('a defined elementwise primitive on the CPU', () => {
  const xs = [-30, -2.5, -0.1, 0, 0.7, 3, 40];

  it('computes its values eagerly, in float64 and float32', async () => {
    await expectClose(softplusSquare(f64(xs)), xs.map((x) => softplusHost(x) ** 2));
    const y32 = softplusSquare(tensor(xs));
    expect(y32.dtype).toBe('float32');
    expect(Array.from(await y32.data())).toEqual(xs.map((x) => Math.fround(softplusHost(Math.fround(x)) ** 2)));
  });

  it('broadcasts its operands and takes numbers', async () => {
    const a = f64([[1, 2, 3], [4, 5, 6]]);
    const b = f64([0.5, -1, 2]);
    await expectClose(scaledExp(a, b), [1, 2, 3, 4, 5, 6].map((v, i) => v * Math.exp([0.5, -1, 2][i % 3]!)));
    await expectClose(scaledExp(a, 1), [1, 2, 3, 4, 5, 6].map((v) => v * Math.E));
  });

  it('takes derivatives through its own rules: grad, jvp, second order', async () => {
    const x = f64(xs);
    const g = grad((t: Tensor) => sum(softplusSquare(t)))(x) as Tensor;
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    await expectClose(g, xs.map((v) => 2 * softplusHost(v) * sig(v)), 1e-13);
    const [, tangent] = jvp((t: Tensor) => softplusSquare(t), [x], [f64(xs.map(() => 1))]);
    await expectClose(tangent, xs.map((v) => 2 * softplusHost(v) * sig(v)), 1e-13);
    // d²/dx² s² = 2(σ² + s·σ(1 − σ))
    const second = grad((t: Tensor) => sum(grad((u: Tensor) => sum(softplusSquare(u)))(t) as Tensor))(x) as Tensor;
    await expectClose(second, xs.map((v) => 2 * (sig(v) ** 2 + softplusHost(v) * sig(v) * (1 - sig(v)))), 1e-12);
  });

  it('passes checkGrads to order 2 in both modes (one and two inputs)', async () => {
    await checkGrads((t) => softplusSquare(t), [randn([3, 4], { dtype: 'float64', key: randomKey(1) })], { order: 2, modes: ['fwd', 'rev'] });
    const a = randn([2, 3], { dtype: 'float64', key: randomKey(2) });
    const b = randn([3], { dtype: 'float64', key: randomKey(3) });
    await checkGrads((u, v) => scaledExp(u, v), [a, b], { order: 2, modes: ['fwd', 'rev'] });
  });

  it('is batched by vmap like a built-in elementwise op (batched and unbatched operands)', async () => {
    const a = f64([[1, 2], [3, 4], [5, 6]]);
    const b = f64([0.5, -1]);
    const y = vmap((u: Tensor, v: Tensor) => scaledExp(u, v), { inAxes: [0, null] })(a, b) as Tensor;
    expect(y.shape).toEqual([3, 2]);
    await expectClose(y, [1, 2, 3, 4, 5, 6].map((v, i) => v * Math.exp([0.5, -1][i % 2]!)));
    // Per-example gradients through the primitive.
    const perExample = vmap(grad((t: Tensor) => sum(softplusSquare(t))))(f64([[0.5, -1], [2, 0]])) as Tensor;
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    await expectClose(perExample, [0.5, -1, 2, 0].map((v) => 2 * softplusHost(v) * sig(v)), 1e-13);
  });

  it('is one equation of a traced program and runs under jit', async () => {
    const f = (t: Tensor) => softplusSquare(t.mul(2)).add(1);
    const program = makeProgram(f)(f64(xs));
    expect(program.equations.filter((eq) => eq.prim === 'custom').map((eq) => eq.params)).toEqual([{ name: 'softplusSquare' }]);
    expect(program.toString()).toContain('softplusSquare');
    const compiled = jit(f);
    await expectClose(compiled(f64(xs)) as Tensor, xs.map((x) => softplusHost(2 * x) ** 2 + 1));
    const g = jit(grad((t: Tensor) => sum(f(t))));
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    await expectClose(g(f64(xs)) as Tensor, xs.map((x) => 4 * softplusHost(2 * x) * sig(2 * x)), 1e-13);
  });

  it('frees what it makes', () => {
    const before = memory().tensors;
    const g = tidy(() => grad((t: Tensor) => sum(rowSquares(softplusSquare(t).reshape([1, 7]))))(f64(xs)) as Tensor);
    expect(memory().tensors).toBe(before + 1); // the gradient, the one result kept
    g.dispose();
    expect(memory().tensors).toBe(before);
  });

  it('called outside a tidy with a number or operands to broadcast, leaves only its result', async () => {
    // The constant a number becomes and the broadcast operands are intermediates, freed as a
    // built-in binary op's are (docs/autograd.md, "Memory"); they outlived every call.
    const a = f64([[0.5], [-1]]);
    const b = f64([0.25, 2, -3]);
    // The plain call with operands of one shape too: each was passed through a broadcastTo view
    // that nothing freed (and that held the operand's storage).
    const a2 = f64([[0.5, 1, -2], [-1, 0.25, 3]]);
    const b2 = f64([[0.25, 2, -3], [1, -1, 0.5]]);
    const calls = [() => scaledExp(a, 2), () => scaledExp(a, b), () => scaledExp(3, b), () => scaledExp(a2, b2)];
    for (const call of calls) {
      call().dispose();
      const before = memory().tensors;
      for (let i = 0; i < 5; i++) call().dispose();
      expect(memory().tensors).toBe(before);
    }
    await expectClose(scaledExp(a, b), [0.5 * Math.exp(0.25), 0.5 * Math.exp(2), 0.5 * Math.exp(-3), -Math.exp(0.25), -Math.exp(2), -Math.exp(-3)]);
    // Recorded for backward (an input requires grad): freed with the result, after backward read them.
    const recorded = async () => {
      const w = f64([0.5, -1]);
      w.requiresGrad = true;
      const y = scaledExp(w, 2);
      const s = sum(y);
      s.backward();
      const g = Array.from(await w.grad!.data());
      for (const t of [s, y, w.grad!, w]) t.dispose();
      return g;
    };
    expect(await recorded()).toEqual([Math.exp(2), Math.exp(2)]);
    const before = memory().tensors;
    for (let i = 0; i < 5; i++) await recorded();
    expect(memory().tensors).toBe(before);
  });
});

describe('the rules that run are the definition\'s', () => {
  // The same function as softplusSquare with a vjp that is off by a factor of 3: reverse mode
  // gives 3× the true gradient, forward mode (its correct jvp) the true one.
  const wrongVjp = definePrimitive({
    name: 'softplusSquareWrongVjp',
    kind: 'elementwise',
    inputs: ['x'],
    cpu: (x) => softplusHost(x) ** 2,
    wgsl: { expression: 'x' },
    jvp: ([x], [t]) => (t ? mul(t, softplusSquareDerivative(x!)) : null),
    vjp: (ct, [x]) => [mul(ct, mul(softplusSquareDerivative(x!), 3))],
  });

  it('grad uses the vjp rule and jvp the jvp rule', async () => {
    const x = f64([0.3, -1.2]);
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const truth = [0.3, -1.2].map((v) => 2 * softplusHost(v) * sig(v));
    await expectClose(grad((t: Tensor) => sum(wrongVjp(t)))(x) as Tensor, truth.map((v) => 3 * v), 1e-13);
    const [, pullback] = vjp((t: Tensor) => wrongVjp(t), x);
    await expectClose(pullback(f64([1, 1]))[0]!, truth.map((v) => 3 * v), 1e-13);
    const [, tangent] = jvp((t: Tensor) => wrongVjp(t), [x], [f64([1, 1])]);
    await expectClose(tangent, truth, 1e-13);
  });

  it('checkGrads finds the wrong rule (reverse mode) and passes forward mode', async () => {
    const x = randn([4], { dtype: 'float64', key: randomKey(9) });
    await checkGrads((t) => wrongVjp(t), [x], { order: 1, modes: ['fwd'] });
    await expect(checkGrads((t) => wrongVjp(t), [x], { order: 1, modes: ['rev'] })).rejects.toThrow(/⟨VJP, v⟩ vs ⟨u, JVP⟩ differs/);
  });

  it('a rule returning the wrong shape is named', async () => {
    const badShape = definePrimitive({
      name: 'badShapeRules', kind: 'elementwise', inputs: ['x'], cpu: (x) => x, wgsl: { expression: 'x' },
      jvp: ([x]) => sum(x!),
      vjp: (ct) => [sum(ct)],
    });
    const x = f64([1, 2]);
    expect(() => jvp((t: Tensor) => badShape(t), [x], [x])).toThrow(/badShapeRules: its jvp rule returned a float64 \[\] tangent for a float64 \[2\] output/);
    expect(() => grad((t: Tensor) => sum(badShape(t)))(x)).toThrow(/badShapeRules: its vjp rule returned a float64 \[\] tensor as the cotangent of input 0/);
  });
});

describe('a defined shader primitive on the CPU', () => {
  const m = f64([[1, 2, 3], [-1, 0.5, 2]]);

  it('computes its values with its own output shape', async () => {
    const y = rowSquares(m);
    expect(y.shape).toEqual([2]);
    await expectClose(y, [14, 5.25]);
    expect(() => rowSquares(f64([1, 2]))).toThrow(/rowSquares: expected a matrix, got rank 1/);
  });

  it('passes checkGrads to order 2 and is batched one example at a time by default', async () => {
    await checkGrads((t) => rowSquares(t), [randn([3, 4], { dtype: 'float64', key: randomKey(4) })], { order: 2, modes: ['fwd', 'rev'] });
    const batch = f64([[[1, 2], [3, 4]], [[0, 1], [-2, 2]], [[1, 1], [1, 1]]]);
    const y = vmap((t: Tensor) => rowSquares(t))(batch) as Tensor;
    expect(y.shape).toEqual([3, 2]);
    await expectClose(y, [5, 25, 1, 8, 2, 2]);
    // Batch axis elsewhere: axis 1 of [2, 3, 2] holds the examples.
    const y1 = vmap((t: Tensor) => rowSquares(t), { inAxes: 1 })(batch.permute([1, 0, 2])) as Tensor;
    await expectClose(y1, [5, 25, 1, 8, 2, 2]);
  });

  it('uses its own batching rule when it has one', async () => {
    let calls = 0;
    const batched = definePrimitive({
      name: 'rowSquaresBatched', kind: 'shader', inputs: ['x'],
      infer: ([x]) => ({ shape: x!.shape.slice(0, -1), dtype: x!.dtype }),
      cpu: ([x], out) => {
        const n = x!.shape[x!.shape.length - 1]!;
        for (let i = 0; i < out.data.length; i++) {
          let acc = 0;
          for (let j = 0; j < n; j++) acc += x!.data[i * n + j]! ** 2;
          out.data[i] = acc;
        }
      },
      wgsl: { code: '@compute @workgroup_size(1) fn main() {}', workgroupSize: [1, 1, 1] },
      jvp: () => null,
      vjp: () => [null],
      batch: ([x], [bdim]) => {
        calls++;
        return [batched(x!), bdim ?? null];
      },
    });
    const y = vmap((t: Tensor) => batched(t))(f64([[[1, 2]], [[3, 4]]])) as Tensor;
    expect(calls).toBe(1);
    await expectClose(y, [5, 25]);
  });

  it('a batching rule returning the wrong shape, dtype or structure is named, not taken as the result', () => {
    /** The identity on a matrix, with the batching rule `batch` (the rule is all that is under test). */
    const withBatch = (name: string, batch: (x: Tensor, bdim: number | null) => unknown) => definePrimitive({
      name, kind: 'shader', inputs: ['x'],
      infer: ([x]) => ({ shape: x!.shape, dtype: x!.dtype }),
      cpu: ([x], out) => out.data.set(x!.data),
      wgsl: { code: '@compute @workgroup_size(1) fn main() {}', workgroupSize: [1, 1, 1] },
      jvp: () => null, vjp: () => [null],
      batch: ([x], [bdim]) => batch(x!, bdim!) as [Tensor, number | null],
    });
    const xs = f64([[[1, 2, 3]], [[4, 5, 6]]]); // 2 examples of [1, 3]
    // Summed over the batch: vmap returned the [1, 3] sum as the whole [2, 1, 3] result.
    const summed = withBatch('batchSummed', (x) => [sum(x, [0]), 0]);
    expect(() => vmap((t: Tensor) => summed(t))(xs)).toThrow(/batchSummed: its batching rule returned a float64 \[1,3\] tensor with batch axis 0; for 2 examples of a float64 \[1,3\] output it must be float64 \[2,1,3\]/);
    const cast32 = withBatch('batchCast', (x, b) => [x.cast('float32'), b]);
    expect(() => vmap((t: Tensor) => cast32(t))(xs)).toThrow(/batchCast: its batching rule returned a float32 \[2,1,3\] tensor with batch axis 0; for 2 examples of a float64 \[1,3\] output it must be float64 \[2,1,3\]/);
    // A bare tensor: "object is not iterable" from destructuring.
    const bare = withBatch('batchBare', (x) => x);
    expect(() => vmap((t: Tensor) => bare(t))(xs)).toThrow(/batchBare: its batching rule must return \[tensor, batch axis or null\], got a Tensor, not a pair/);
  });
});

describe('definitions are checked, names are unique', () => {
  const valid = {
    kind: 'elementwise' as const, inputs: ['x'], cpu: (x: number) => x, wgsl: { expression: 'x' },
    jvp: () => null, vjp: () => [null],
  };

  it('refuses a call with more or fewer inputs than the definition names', () => {
    const x = tensor([1, 2], { dtype: 'float64' });
    const call = softplusSquare as (...args: unknown[]) => unknown;
    expect(() => call(x, x)).toThrow('softplusSquare: expected 1 input(s) (x), got 2');
    expect(() => call()).toThrow('softplusSquare: expected 1 input(s) (x), got 0');
  });

  it('rejects a built-in name and a name defined before', () => {
    expect(() => definePrimitive({ ...valid, name: 'exp' })).toThrow(/definePrimitive\('exp'\): 'exp' is a built-in primitive; choose another name/);
    expect(() => definePrimitive({ ...valid, name: 'custom' })).toThrow(/'custom' is a built-in primitive/);
    expect(() => definePrimitive({ ...valid, name: 'softplusSquare' })).toThrow(/a primitive named 'softplusSquare' is already defined; names are unique/);
  });

  it('rejects malformed definitions with what was wrong', () => {
    expect(() => definePrimitive({ ...valid, name: '2fast' })).toThrow(/name must be letters, digits and '_' starting with a letter, got "2fast"/);
    expect(() => definePrimitive({ ...valid, name: 'noInputs', inputs: [] })).toThrow(/inputs must be a non-empty array of names/);
    expect(() => definePrimitive({ ...valid, name: 'twice', inputs: ['x', 'x'] })).toThrow(/input names must differ/);
    expect(() => definePrimitive({ ...valid, name: 'noVjp', vjp: undefined as never })).toThrow(/'vjp' must be a function, got nothing/);
    expect(() => definePrimitive({ ...valid, name: 'typo', jvpRule: () => null } as never)).toThrow(/unknown option 'jvpRule' \(did you mean 'jvp'\?\)/);
    expect(() => definePrimitive({ ...valid, name: 'noExpr', wgsl: { expression: ' ' } })).toThrow(/wgsl.expression must be a non-empty WGSL expression/);
    expect(() => definePrimitive({ ...valid, name: 'badKind', kind: 'fused' } as never)).toThrow(/kind must be 'elementwise' or 'shader', got "fused"/);
    expect(() => definePrimitive({
      ...valid, name: 'badWorkgroup', kind: 'shader', infer: (i: readonly { shape: readonly number[]; dtype: 'float32' }[]) => i[0]!,
      cpu: () => undefined, wgsl: { code: '', workgroupSize: [64, 1] },
    } as never)).toThrow(/wgsl.workgroupSize must be three positive integers, got \[64,1\]/);
    // Nothing of a rejected definition was registered.
    expect(definedPrimitives().filter((n) => ['2fast', 'noInputs', 'twice', 'noVjp', 'typo', 'noExpr', 'badKind', 'badWorkgroup'].includes(n))).toEqual([]);
  });

  it('a call with the wrong arity or a non-tensor says so', () => {
    expect(() => scaledExp(f64([1]))).toThrow(/scaledExp: expected 2 input\(s\) \(a, b\), got 1/);
    expect(() => softplusSquare(2)).toThrow(/softplusSquare: at least one input must be a Tensor/);
    expect(() => softplusSquare(tensor([1], { dtype: 'int32' }))).toThrow(/softplusSquare: expected float tensors, got int32/);
  });

  it('a shader primitive whose infer returns no valid { shape, dtype } is named at the call', () => {
    const inferring = (name: string, infer: (inputs: readonly { shape: readonly number[]; dtype: string }[]) => unknown) => definePrimitive({
      name, kind: 'shader', inputs: ['x'], infer: infer as never, cpu: () => undefined,
      wgsl: { code: '', workgroupSize: [1, 1, 1] }, jvp: () => null, vjp: () => [null],
    });
    const x = f64([1, 2]);
    const expected = 'its infer must return \\{ shape: non-negative integers, dtype: one of float32, float64, int32, bool \\}, got';
    // These reached the allocator ("Invalid array buffer length"), a property read of undefined,
    // or the device's dtype check, which named 'custom' rather than the primitive.
    expect(() => inferring('negativeExtent', ([i]) => ({ shape: [-1], dtype: i!.dtype }))(x)).toThrow(new RegExp(`negativeExtent: ${expected} \\{ shape: \\[-1\\], dtype: "float64" \\}`));
    expect(() => inferring('inferredNothing', () => undefined)(x)).toThrow(new RegExp(`inferredNothing: ${expected} undefined`));
    expect(() => inferring('unknownDType', ([i]) => ({ shape: i!.shape, dtype: 'complex64' }))(x)).toThrow(new RegExp(`unknownDType: ${expected} \\{ shape: \\[2\\], dtype: "complex64" \\}`));
    expect(() => inferring('fractionalExtent', () => ({ shape: [1.5], dtype: 'float64' }))(x)).toThrow(/fractionalExtent: its infer must return/);
  });

  it('defining a primitive changes no built-in rule, and the rule tables are frozen', () => {
    expect(Object.isFrozen(jvpRules) && Object.isFrozen(vjpRules) && Object.isFrozen(batchRules)).toBe(true);
    expect(() => {
      (vjpRules as Record<string, unknown>).sin = () => [];
    }).toThrow(TypeError);
    expect(Object.keys(vjpRules)).not.toContain('softplusSquare');
  });
});

describe('the registry and the checks of a definition, field by field', () => {
  const identity = {
    kind: 'elementwise' as const, inputs: ['x'], cpu: (x: number) => x, wgsl: { expression: 'x' },
    jvp: () => null, vjp: () => [null],
  };
  const shader = {
    kind: 'shader' as const, inputs: ['x'],
    infer: (i: readonly { shape: readonly number[]; dtype: 'float64' }[]) => i[0]!,
    cpu: () => undefined, wgsl: { code: '@compute @workgroup_size(1) fn main() {}', workgroupSize: [1, 1, 1] as const },
    jvp: () => null, vjp: () => [null],
  };

  it('lists the defined primitives in definition order, and names them in an unknown name\'s error', () => {
    definePrimitive({ ...identity, name: 'zListedFirst' });
    definePrimitive({ ...identity, name: 'aListedSecond' });
    expect(definedPrimitives().filter((n) => n.startsWith('zListed') || n.startsWith('aListed'))).toEqual(['zListedFirst', 'aListedSecond']);
    expect(() => primitiveDefinition('missing')).toThrow(/\(defined: .*zListedFirst, aListedSecond\)$/);
  });

  it('names must be WGSL-safe identifiers: no leading underscore, nothing after the letters', () => {
    expect(() => definePrimitive({ ...identity, name: '_lead' })).toThrow(/^definePrimitive: name must be letters, digits and '_' starting with a letter, got "_lead"$/);
    expect(() => definePrimitive({ ...identity, name: 'has-dash' })).toThrow(/got "has-dash"$/);
    expect(() => definePrimitive({ ...identity, name: 'badInput', inputs: ['x', 'y z'] })).toThrow(/^definePrimitive\('badInput'\): inputs must be a non-empty array of names \(letters, digits, '_'\), got \["x","y z"\]$/);
  });

  it('a definition that is not an object is refused as such', () => {
    expect(() => definePrimitive(null as never)).toThrow(/^definePrimitive: expected a definition object, got null$/);
  });

  it('optional functions and WGSL fields of the wrong type are refused', () => {
    expect(() => definePrimitive({ ...identity, name: 'badBatch', batch: 5 } as never)).toThrow(/^definePrimitive\('badBatch'\): 'batch' must be a function, got number$/);
    expect(() => definePrimitive({ ...identity, name: 'badFunctions', wgsl: { expression: 'x', functions: 5 } } as never)).toThrow(/^definePrimitive\('badFunctions'\): wgsl.functions must be WGSL source text$/);
    expect(() => definePrimitive({ ...shader, name: 'noInfer', infer: undefined } as never)).toThrow(/^definePrimitive\('noInfer'\): 'infer' must be a function, got nothing$/);
    expect(() => definePrimitive({ ...shader, name: 'badCode', wgsl: { code: 5, workgroupSize: [1, 1, 1] } } as never)).toThrow(/^definePrimitive\('badCode'\): wgsl.code must be WGSL source text or a function of the call's shapes$/);
    expect(() => definePrimitive({ ...shader, name: 'zeroWorkgroup', wgsl: { code: '', workgroupSize: [0, 1, 1] } } as never)).toThrow(/^definePrimitive\('zeroWorkgroup'\): wgsl.workgroupSize must be three positive integers, got \[0,1,1\]$/);
    expect(() => definePrimitive({ ...shader, name: 'badDispatch', wgsl: { ...shader.wgsl, dispatch: 'x' } } as never)).toThrow(/^definePrimitive\('badDispatch'\): 'wgsl.dispatch' must be a function, got string$/);
  });

  it("keys of the other kind are unknown: infer and the shader's wgsl fields on an elementwise primitive", () => {
    expect(() => definePrimitive({ ...identity, name: 'elementwiseInfer', infer: shader.infer } as never)).toThrow(/unknown option 'infer'/);
    expect(() => definePrimitive({ ...identity, name: 'elementwiseWorkgroup', wgsl: { expression: 'x', workgroupSize: [1, 1, 1] } } as never)).toThrow(/unknown option 'workgroupSize'/);
  });

  it('nothing of a refused definition is registered', () => {
    const refused = ['_lead', 'has-dash', 'badInput', 'badBatch', 'badFunctions', 'noInfer', 'badCode', 'zeroWorkgroup', 'badDispatch', 'elementwiseInfer', 'elementwiseWorkgroup'];
    expect(definedPrimitives().filter((n) => refused.includes(n))).toEqual([]);
  });

  it('the defined function is named after the primitive and refuses an input that is neither a tensor nor a number', () => {
    const pair = definePrimitive({ ...identity, name: 'namedPair', inputs: ['a', 'b'], cpu: (a: number, b: number) => a + b });
    expect(pair.name).toBe('namedPair');
    expect(() => (pair as (...args: unknown[]) => Tensor)(f64([1, 2]), 'two')).toThrow(/^namedPair: input 1 \(b\) must be a Tensor or a number, got string$/);
  });

  it('keeps a frozen copy of its definition: changing the object given afterwards changes nothing', () => {
    const inputs = ['x'];
    const wgsl = { expression: 'x' };
    const id = definePrimitive({ ...identity, name: 'frozenCopy', inputs, wgsl });
    inputs.push('y');
    wgsl.expression = 'y';
    expect(id.definition.inputs).toEqual(['x']);
    expect(id.definition.wgsl).toEqual({ expression: 'x' });
    expect(Object.isFrozen(id.definition.inputs) && Object.isFrozen(id.definition.wgsl)).toBe(true);
    expect(Array.from(id(f64([3, 4])).dataSync())).toEqual([3, 4]);
  });
});

describe("what a definition's rules return is checked, and only what was asked for", () => {
  const noKernel = { code: '@compute @workgroup_size(1) fn main() {}', workgroupSize: [1, 1, 1] as [number, number, number] };
  /** x·y elementwise, with the rules given. */
  const product = (name: string, rules: { jvp?: () => unknown; vjp?: (ct: Tensor) => unknown }) => definePrimitive({
    name, kind: 'shader', inputs: ['a', 'b'],
    infer: ([a]) => ({ shape: a!.shape, dtype: a!.dtype }),
    cpu: ([a, b], out) => { for (let i = 0; i < out.data.length; i++) out.data[i] = a!.data[i]! * b!.data[i]!; },
    wgsl: noKernel,
    jvp: (rules.jvp ?? (() => null)) as never,
    vjp: (rules.vjp ?? (() => [null, null])) as never,
  });

  it('a jvp rule returning a tangent of another dtype, or a number, is named', () => {
    const twice = definePrimitive({
      name: 'ruleCheckTwiceJvp32', kind: 'shader', inputs: ['x'],
      infer: ([x]) => ({ shape: x!.shape, dtype: x!.dtype }),
      cpu: ([x], out) => { for (let i = 0; i < out.data.length; i++) out.data[i] = 2 * x!.data[i]!; },
      wgsl: noKernel,
      jvp: (_p, [t]) => t!.mul(2).cast('float32'),
      vjp: (ct) => [ct.mul(2)],
    });
    expect(messageOf(() => jvp((x: Tensor) => twice(x), [f64([1, 2])], [f64([1, 1])]))).toBe('ruleCheckTwiceJvp32: its jvp rule returned a float32 [2] tangent for a float64 [2] output');
    const numberTangent = product('ruleCheckNumberTangent', { jvp: () => 0 });
    expect(messageOf(() => jvp((a: Tensor) => numberTangent(a, a), [f64([1, 2])], [f64([1, 1])]))).toBe('ruleCheckNumberTangent: its jvp rule must return a Tensor or null, got number');
  });

  it('a vjp rule returning too few cotangents is named (not read as no gradient for the rest)', () => {
    const oneCotangent = product('ruleCheckOneCotangent', { vjp: (ct) => [ct] });
    expect(messageOf(() => grad((a: Tensor, b: Tensor) => oneCotangent(a, b).sum(), { argnums: [0, 1] })(f64([1, 2]), f64([3, 4]))))
      .toBe('ruleCheckOneCotangent: its vjp rule must return an array of 2 cotangent(s) (null for none), got 1');
  });

  it('a jvp rule is not asked for the tangent of an integer output', () => {
    // A float → int32 primitive (how many entries are positive) whose rule writes "no derivative"
    // as a zero tangent of its input's shape and dtype: asked for the int32 output, the check of
    // the rule's result refused it (a float64 [3] tangent for an int32 [] output).
    let calls = 0;
    const countPositive = definePrimitive({
      name: 'ruleCheckCountPositive', kind: 'shader', inputs: ['x'],
      infer: () => ({ shape: [], dtype: 'int32' }),
      cpu: ([x], out) => { out.data[0] = Array.from(x!.data as Float64Array).filter((v) => v > 0).length; },
      wgsl: noKernel,
      jvp: ([x]) => { calls++; return x!.mul(0); },
      vjp: () => [null],
    });
    const [y, ty] = jvp((a: Tensor) => a.mul(countPositive(a).cast('float64')), [f64([1, -2, 3])], [f64([1, 1, 1])]) as [Tensor, Tensor];
    expect(Array.from(y.dataSync())).toEqual([2, -4, 6]);
    expect(Array.from(ty.dataSync())).toEqual([2, 2, 2]); // d(x·c) = c·dx, the count c = 2 held constant
    expect(calls).toBe(0);
  });

  it('a vjp rule is held to the cotangents asked for: what it gives an integer input is ignored', () => {
    // x·k with k int32: no cotangent is asked for k, so whatever the rule returns there (here ȳ
    // itself, a float64 tensor) is not checked against k.
    const scaleBy = definePrimitive({
      name: 'ruleCheckScaleByInt', kind: 'shader', inputs: ['x', 'k'],
      infer: ([x]) => ({ shape: x!.shape, dtype: x!.dtype }),
      cpu: ([x, k], out) => { for (let i = 0; i < out.data.length; i++) out.data[i] = x!.data[i]! * k!.data[i]!; },
      wgsl: noKernel,
      jvp: () => null,
      vjp: (ct, [, k]) => [ct.mul(k!.cast('float64')), ct],
    });
    const k = tensor([2, 3], { dtype: 'int32' });
    expect(Array.from((grad((x: Tensor) => scaleBy(x, k).sum())(f64([5, 7])) as Tensor).dataSync())).toEqual([2, 3]);
  });
});
