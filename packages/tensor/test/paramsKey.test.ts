import { describe, expect, it } from 'vitest';
import {
  type CpuBackend, type CpuHandle, type RandomKey, type Tensor, Program, ProgramBuilder, eliminateDeadCode, exactNumbers, foldIn, getBackend, interpretProgram, paramsHash, paramsKey, randn,
  randomKey, sameParams, simplifyProgram, splitKey, tensor, traceProgram,
} from '../src/index.js';
import { splitKeyAt } from '../src/random.js';

const cpu = getBackend('cpu') as CpuBackend;

// paramsKey is how simplifyProgram and structuralKey tell params apart: it must be the text
// JSON.stringify(params, exactNumbers) gives for every params object, the fast ones and the rest.
describe('paramsKey', () => {
  const cases: [string, object][] = [
    ['empty', {}],
    ['axes', { axes: [0, 2] }],
    ['shape', { shape: [64, 1, 3] }],
    ['empty array', { shape: [] }],
    ['full', { value: 1.01, shape: [64], dtype: 'float32', device: 'cpu' }],
    ['full NaN', { value: NaN, shape: [], dtype: 'float64', device: 'cpu' }],
    ['full -0', { value: -0, shape: [2], dtype: 'float32', device: 'cpu' }],
    ['full +0', { value: 0, shape: [2], dtype: 'float32', device: 'cpu' }],
    ['full ±Infinity', { value: -Infinity, shape: [Infinity, -0, NaN], dtype: 'float32', device: 'cpu' }],
    ['tiny and huge numbers', { value: 5e-324, other: 1.7976931348623157e308, third: 1e21, fourth: 1e-7 }],
    ['booleans and null', { axis: 1, reverse: true, flag: false, none: null }],
    ['undefined is left out', { a: undefined, b: 1, c: undefined }],
    ['a string that needs escaping', { name: 'my "op"\n\u2028\\', device: 'gpu:0' }],
    ['random', { key: [0xffffffff, 7], distribution: 'normal', shape: [3], dtype: 'float32', device: 'cpu' }],
    ['integer-like keys come first', { b: 1, 2: 'x', a: [1], 1: 'y' }],
    ['a nested object', { spec: { x: [1, -0], y: NaN }, z: 2 }],
    ['an array of strings', { names: ['a', 'b'] }],
    ['an array with a hole', { xs: [1, , 3] }],
    ['an array of arrays', { xs: [[1, 2], [NaN]] }],
    ['a function value', { f: () => 1, g: 2 }],
    ['a toJSON', { toJSON: () => ({ replaced: -0 }) }],
    ['a key that needs quoting', { 'a"b': 1, 'c\nd': [2] }],
  ];
  for (const [name, params] of cases) {
    it(`matches JSON.stringify with exactNumbers: ${name}`, () => {
      expect(paramsKey(params)).toBe(JSON.stringify(params, exactNumbers));
    });
  }

  it('matches it for a class instance (toJSON and getters on the prototype) and a null-prototype object', () => {
    class P {
      readonly axis = 1;
      get shape(): number[] {
        return [2];
      }
      toJSON(): unknown {
        return { axis: -0 };
      }
    }
    const bare = Object.assign(Object.create(null) as object, { shape: [1, -0], value: NaN });
    for (const params of [new P(), bare]) expect(paramsKey(params)).toBe(JSON.stringify(params, exactNumbers));
  });

  it('tells apart the params that exactNumbers keeps apart (−0 from 0, NaN from null, ±Infinity)', () => {
    const keys = [{ value: 0 }, { value: -0 }, { value: NaN }, { value: null }, { value: Infinity }, { value: -Infinity }].map(paramsKey);
    expect(new Set(keys).size).toBe(keys.length);
  });
});

// simplifyProgram finds equal params by paramsHash and sameParams: both must agree with the
// texts, for params whose texts are equal however they were written.
describe('paramsHash and sameParams', () => {
  class Axis {
    readonly axis = 1;
  }
  class WithJson {
    toJSON(): unknown {
      return { value: '#NaN', shape: [2] };
    }
  }
  const inherited = Object.create({ extra: 5 }) as Record<string, unknown>;
  inherited.axis = 1;
  const corpus: object[] = [
    {}, Object.create(null) as object, { toJSON: () => ({}) }, { toJSON: () => undefined }, { toJSON: () => 5 }, { toJSON: 1 },
    { axis: 1 }, new Axis(), inherited, { axis: 1, gone: undefined }, { axis: 1, f: () => 2 }, { axis: 2 }, { axis: '1' }, { axis: true },
    { axis: null }, { axes: [0, 1] }, { axes: [1, 0] }, { axes: [0, 1, 2] }, { axes: [] }, { axes: [undefined] }, { axes: [null] },
    { value: NaN, shape: [2] }, { value: '#NaN', shape: [2] }, new WithJson(), { value: NaN, shape: [2], dtype: 'float32' },
    { value: 0, shape: [2] }, { value: -0, shape: [2] }, { value: '#-0', shape: [2] }, { value: Infinity, shape: [2] },
    { value: -Infinity, shape: [2] }, { value: 1.01, shape: [64], dtype: 'float32', device: 'cpu' },
    { value: 1.01, shape: [64], dtype: 'float32', device: 'cpu' }, { value: 1.0100000000000002, shape: [64], dtype: 'float32', device: 'cpu' },
    { value: 1.01, shape: [64], dtype: 'float64', device: 'cpu' }, { shape: [64], value: 1.01, dtype: 'float32', device: 'cpu' },
    { value: 1.01, shape: [-0], dtype: 'float32', device: 'cpu' }, { value: 1.01, shape: [0], dtype: 'float32', device: 'cpu' },
    { key: [1, 2], distribution: 'normal' }, { key: [1, 2], distribution: 'uniform' }, { key: [2, 1], distribution: 'normal' },
    { spec: { a: 1 } }, { spec: { a: 1 } }, { spec: { a: -0 } }, { 2: 'x', 1: 'y' }, { 1: 'y', 2: 'x' }, { name: '#x' }, { name: '#y' },
    // Boxed numbers: JSON writes one as its number (NaN and ±Infinity as null, −0 as 0), with no replacer call on the number.
    { axis: new Number(1) }, { axes: [new Number(1), 2] }, { axes: [1, 2] }, { value: new Number(-0), shape: [2] },
    { value: new Number(NaN), shape: [2] }, { value: null, shape: [2] }, { value: new Number(Infinity), shape: [2] }, { axis: new String('1') },
  ];
  it('agree with the texts for every pair', () => {
    for (const a of corpus) {
      for (const b of corpus) {
        const sameText = paramsKey(a) === paramsKey(b);
        expect([a, b, sameParams(a, b)]).toEqual([a, b, sameText]);
        if (sameText) expect([a, b, paramsHash(a)]).toEqual([a, b, paramsHash(b)]);
      }
    }
  });
});

describe('simplifyProgram', () => {
  it('computes equal equations once and keeps apart those the texts tell apart', () => {
    const b = new ProgramBuilder();
    const x = b.newVar([2], 'float32');
    const full = (value: number, shape: number[]) => {
      const v = b.newVar(shape, 'float32');
      b.add('full', [], { value, shape, dtype: 'float32', device: 'cpu' }, v);
      return v;
    };
    const eq = (prim: 'add' | 'mul' | 'expand' | 'reshape', inputs: ReturnType<typeof full>[], params: object, shape: number[]) => {
      const v = b.newVar(shape, 'float32');
      b.add(prim, inputs, params as never, v);
      return v;
    };
    const c1 = full(-0, []);
    const c2 = eq('expand', [eq('reshape', [full(-0, [])], { shape: [1] }, [1])], { shape: [2] }, [2]); // −0 broadcast: full −0 [2]
    const c3 = full(-0, [2]);
    const c4 = full(0, [2]);
    const c5 = full(NaN, [2]);
    const c6 = full(NaN, [2]);
    const outs = [
      eq('add', [x, eq('expand', [eq('reshape', [c1], { shape: [1] }, [1])], { shape: [2] }, [2])], {}, [2]),
      eq('add', [x, c2], {}, [2]), eq('add', [x, c3], {}, [2]), eq('add', [x, c4], {}, [2]),
      eq('mul', [x, c5], {}, [2]), eq('mul', [x, c6], {}, [2]), eq('mul', [c6, x], {}, [2]),
    ];
    const program = new Program('cpu', [x], [{ kind: 'argument', index: 0 }], [], [], b.equations, outs, []);
    const simple = simplifyProgram(program);
    // (−0 prints as 0: the first constant is −0, the second +0.)
    expect(simple.equationLines()).toEqual([
      'b:f32[2] = full[value=0]',
      'c:f32[2] = full[value=0]',
      'd:f32[2] = full[value=NaN]',
      'e:f32[2] = add a b',
      'f:f32[2] = add a c',
      'g:f32[2] = mul a d',
      'h:f32[2] = mul d a',
    ]);
    expect(Object.is((simple.equations[0]!.params as { value: number }).value, -0)).toBe(true);
    expect(Object.is((simple.equations[1]!.params as { value: number }).value, 0)).toBe(true);
    // The outputs: the three adds of −0 are one, the add of +0 another; the two muls of NaN by x are one.
    const names = simple.toString().split('\n').at(-1);
    expect(names).toBe('  in ( e, e, e, f, g, g, h ) }');
  });
});

describe('Program: keys, names and structural keys', () => {
  it('resolveKeys refuses too many keys as well as too few, naming both counts', () => {
    const b = new ProgramBuilder();
    const k = b.newKey();
    const program = new Program('cpu', [], [], [k], [], [], [], []);
    expect(() => program.resolveKeys([])).toThrow('program: expected 1 key(s), got 0');
    expect(() => program.resolveKeys([randomKey(1), randomKey(2)])).toThrow('program: expected 1 key(s), got 2');
  });

  it('dead-code elimination keeps the derivations a live derived key is derived from, and resolves the chain', () => {
    // k1 = split(k0)[1] of 2, k2 = foldIn(k1, 5); a random draw reads k2 only.
    const b = new ProgramBuilder();
    const [k0, k1, k2] = [b.newKey(), b.newKey(), b.newKey()];
    b.keyDerivations.push({ kind: 'split', input: k0, count: 2, index: 1, out: k1 }, { kind: 'foldIn', input: k1, data: 5, out: k2 });
    const out = b.newVar([3], 'float32');
    b.add('random', [], { key: randomKey(0), distribution: 'normal', shape: [3], dtype: 'float32', device: 'cpu' }, out, k2);
    const program = eliminateDeadCode(new Program('cpu', [], [], [k0], b.keyDerivations, b.equations, [out], []));
    expect(program.keyDerivations.map((d) => d.kind)).toEqual(['split', 'foldIn']);
    const key = randomKey(42);
    expect(program.resolveKeys([key]).get(k2)).toEqual(foldIn(splitKeyAt(key, 1, 2), 5));
  });

  it('dead-code elimination keeps an equation an update alone needs', () => {
    const b = new ProgramBuilder();
    const x = b.newVar([2], 'float32');
    const y = b.newVar([2], 'float32');
    b.add('neg', [x], {}, y);
    const program = eliminateDeadCode(new Program('cpu', [x], [{ kind: 'argument', index: 0 }], [], [], b.equations, [], [{ input: 0, value: y }]));
    expect(program.equationLines()).toEqual(['b:f32[2] = neg a']);
  });

  it('names variables past z as jaxprs do: z, ba, bb (no two alike)', () => {
    const b = new ProgramBuilder();
    const x = b.newVar([2], 'float32');
    let v = x;
    for (let i = 0; i < 27; i++) {
      const w = b.newVar([2], 'float32');
      b.add('neg', [v], {}, w);
      v = w;
    }
    const lines = new Program('cpu', [x], [{ kind: 'argument', index: 0 }], [], [], b.equations, [v], []).equationLines();
    // a is the input; the 27 results are b … z (25 names), then ba, bb.
    expect(lines.slice(-3)).toEqual(['z:f32[2] = neg y', 'ba:f32[2] = neg z', 'bb:f32[2] = neg ba']);
  });

  it('two draws from two key inputs stay two equations when traced with equal keys', async () => {
    // Traced with one key passed twice, then called with two different keys: the draws differ.
    const k = randomKey(3);
    const { program } = traceProgram((_, ks) => [randn([4], { key: ks[0]! }), randn([4], { key: ks[1]! })], [], [k, k]);
    expect(program.primitiveCounts().random).toBe(2);
    const [ka, kb] = splitKey(randomKey(9), 2) as [RandomKey, RandomKey];
    const compiled = cpu.compile(program);
    const [a, b] = compiled.run([], [ka, kb], []);
    const [ea, eb] = [randn([4], { key: ka }), randn([4], { key: kb })];
    expect(Array.from(cpu.readSync(a!))).toEqual(Array.from(await ea.data()));
    expect(Array.from(cpu.readSync(b!))).toEqual(Array.from(await eb.data()));
    cpu.dispose(a!);
    cpu.dispose(b!);
    ea.dispose();
    eb.dispose();
    compiled.dispose();
  });

  it('structural keys tell apart a foldIn\'s data and an input\'s source (argument or capture), as documented', () => {
    // structuralKey is "equal for two programs exactly when they compute the same thing the same way".
    const make = (data: number, kind: 'argument' | 'capture') => {
      const b = new ProgramBuilder();
      const x = b.newVar([2], 'float32');
      const [k0, k1] = [b.newKey(), b.newKey()];
      b.keyDerivations.push({ kind: 'foldIn', input: k0, data, out: k1 });
      const r = b.newVar([2], 'float32');
      b.add('random', [], { key: randomKey(0), distribution: 'normal', shape: [2], dtype: 'float32', device: 'cpu' }, r, k1);
      const y = b.newVar([2], 'float32');
      b.add('add', [x, r], {}, y);
      return new Program('cpu', [x], [{ kind, index: 0 }], [k0], b.keyDerivations, b.equations, [y], []).structuralKey();
    };
    expect(make(7, 'argument')).toBe(make(7, 'argument'));
    expect(make(7, 'argument')).not.toBe(make(8, 'argument'));
    expect(make(7, 'argument')).not.toBe(make(7, 'capture'));
  });

  it('programs that differ only in the order of their outputs compile to their own results', () => {
    const twoWays = (swap: boolean) => (xs: readonly Tensor[]) => {
      const e = xs[0]!.exp();
      const n = xs[0]!.neg();
      return swap ? [n, e] : [e, n];
    };
    const x = tensor([0.5, -1, 2]);
    const [p1, p2] = [traceProgram(twoWays(false), [x], []).program, traceProgram(twoWays(true), [x], []).program];
    expect(p1.structuralKey()).not.toBe(p2.structuralKey());
    const c1 = cpu.compile(p1);
    const c2 = cpu.compile(p2);
    const h = x._live('test') as never;
    const r1 = c1.run([h], [], [false]);
    const r2 = c2.run([h], [], [false]);
    const neg = [-0.5, 1, -2];
    expect(Array.from(cpu.readSync(r1[1]!))).toEqual(neg);
    expect(Array.from(cpu.readSync(r2[0]!))).toEqual(neg);
    for (const r of [...r1, ...r2]) cpu.dispose(r);
    c1.dispose();
    c2.dispose();
    x.dispose();
  });
});

describe('simplifyProgram: broadcasts sunk only through reshapes that keep the axes', () => {
  it('a broadcast column reshaped to other extents is not taken for a broadcast: exp runs on the reshaped values', () => {
    // [[1], [2]] expanded to [2, 6] and read as [6, 2]: rows 0–2 are all 1, rows 3–5 all 2.
    // A reshape [2, 6] → [6, 2] keeps two non-unit axes but not their extents: not a broadcast.
    const x = tensor([[1], [2]]);
    const { program } = traceProgram((xs) => [xs[0]!.expand([2, 6]).reshape([6, 2]).exp()], [x], []);
    const reference = interpretProgram(cpu, program);
    const [out] = reference.run([x._live('test') as CpuHandle], [], [false]);
    // exp(1) and exp(2) rounded to float32, as the eager kernel stores them.
    const [e1, e2] = [Math.fround(Math.exp(1)), Math.fround(Math.exp(2))];
    expect(Array.from(cpu.readSync(out!))).toEqual([e1, e1, e1, e1, e1, e1, e2, e2, e2, e2, e2, e2]);
    cpu.dispose(out!);
    x.dispose();
  });
});

describe('interpretProgram', () => {
  it('interpretProgram hands out one handle per output even when two outputs are one value', () => {
    const b = new ProgramBuilder();
    const x = b.newVar([2], 'float32');
    const y = b.newVar([2], 'float32');
    b.add('neg', [x], {}, y);
    const program = new Program('cpu', [x], [{ kind: 'argument', index: 0 }], [], [], b.equations, [y, y], []);
    const t = tensor([1, -3]);
    const [r1, r2] = interpretProgram(cpu, program).run([t._live('test') as CpuHandle], [], [false]);
    expect(r1).not.toBe(r2);
    cpu.dispose(r1!);
    // The second stays readable after the first is disposed.
    expect(Array.from(cpu.readSync(r2!))).toEqual([-1, 3]);
    cpu.dispose(r2!);
    t.dispose();
  });
});
