// sinkBroadcasts (program.ts) on random programs: elementwise ops of every dtype (float, int32 and
// bool: casts, comparisons, where), concats and K = 1 products on broadcasts of smaller inputs
// (expand, reshapes adding or dropping unit axes, full constants, scalar numbers), reductions after
// them and broadcasts returned as outputs. jit(f), jit(grad(f)) and jit(vmap(f)) equal their eager
// counterparts bit for bit in float32 and float64, signed zeros included; a NaN is compared as NaN
// (its sign bit can differ between the eager and the compiled kernels, with or without the pass:
// 0/0 is 0xffc00000 eagerly, 0x7fc00000 compiled). Shapes are small: the CPU computes their
// products with one kernel however the pass shrinks them (a K = 1 product large enough for the
// WebAssembly kernel eagerly, shrunk onto the TypeScript one, can differ in the sign of a zero
// product that underflowed).

import { describe, expect, it } from 'vitest';
import { grad, jit, makeProgram, vmap } from '@scorch/autograd';
import {
  type DType, type Primitive, type Program, type Tensor, broadcastTo, cast, concat, full, isBinary, isCompare, isUnary, matmul, sum, tensor, where,
} from '@scorch/tensor';
import { mulberry32 } from '../../../tests/fixtures/mulberry32.js';

type Kind = 'float' | 'int' | 'bool' | 'other';
const SPECIAL = [0, -0, NaN, Infinity, -Infinity, 1, -1, 0.5, -2, 3, 1e-30, 1e30];
const UNARY = ['neg', 'exp', 'log', 'sin', 'cos', 'sqrt', 'reciprocal', 'tanh', 'log1p', 'expm1', 'sigmoid', 'floor', 'ceil', 'round', 'sign', 'erf', 'abs', 'square', 'relu'] as const;
const BINARY = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'pow'] as const;
const COMPARE = ['less', 'lessEqual', 'equal', 'notEqual', 'greater'] as const;

type Method = (this: Tensor, ...args: unknown[]) => Tensor;
const call = (x: Tensor, op: string, ...args: unknown[]): Tensor => (x as unknown as Record<string, Method>)[op]!.call(x, ...args);

/** A random program on broadcasts of its inputs, and its arguments. */
function randomTrial(seed: number, dtype: DType): { f: (...xs: Tensor[]) => Tensor[]; args: Tensor[] } {
  const rnd = mulberry32(seed);
  const rank = 1 + Math.floor(rnd() * 3);
  const S = Array.from({ length: rank }, () => 1 + Math.floor(rnd() * 4));
  if (!S.some((d) => d > 1)) S[rank - 1] = 3;
  // Broadcast sources: S with some extents 1, some stored without their unit axes; then one full-size input.
  const sources = Array.from({ length: 2 + Math.floor(rnd() * 3) }, () => S.map((d) => (rnd() < 0.6 ? 1 : d)));
  const stored = sources.map((s) => (rnd() < 0.4 ? s.filter((d) => d !== 1) : s));
  sources.push([...S]);
  stored.push([...S]);
  const draw = () => (rnd() < 0.25 ? SPECIAL[Math.floor(rnd() * SPECIAL.length)]! : rnd() < 0.5 ? Math.floor(rnd() * 9) - 4 : (rnd() * 2 - 1) * 4);
  const args = stored.map((s) => tensor(Array.from({ length: s.reduce((a, b) => a * b, 1) }, draw), { dtype }).reshape(s));
  const plan = Array.from({ length: 400 }, () => rnd());
  const steps = 3 + Math.floor(rnd() * 10);
  const f = (...xs: Tensor[]): Tensor[] => {
    let p = 0;
    const r = () => plan[p++ % plan.length]!;
    const pk = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
    const pool: { t: Tensor; kind: Kind }[] = xs.map((x, i) => ({ t: i === xs.length - 1 ? x : broadcastTo(x.reshape(sources[i]!), S), kind: 'float' }));
    pool.push({ t: full(S, pk([0, -0, 2, NaN, -1.5]), { dtype }), kind: 'float' });
    const of = (k: Kind) => pool.filter((v) => v.kind === k);
    const side: Tensor[] = [];
    for (let s = 0; s < steps; s++) {
      const u = r();
      const floats = of('float');
      const a = pk(floats).t;
      if (u < 0.25) pool.push({ t: call(a, pk(UNARY)), kind: 'float' });
      else if (u < 0.5) pool.push({ t: call(a, pk(BINARY), r() < 0.3 ? pk([2, -0, 0.5, 3]) : pk(floats).t), kind: 'float' });
      else if (u < 0.6) pool.push({ t: call(a, pk(COMPARE), r() < 0.3 ? pk([0, 1]) : pk(floats).t), kind: 'bool' });
      else if (u < 0.68) {
        const conds = of('bool');
        if (conds.length > 0) pool.push({ t: where(pk(conds).t, a, r() < 0.3 ? 1.5 : pk(floats).t), kind: 'float' });
      } else if (u < 0.76) {
        const to = pk(['int32', 'bool', dtype === 'float32' ? 'float64' : 'float32'] as const);
        const c = cast(a, to);
        pool.push({ t: c, kind: to === 'int32' ? 'int' : to === 'bool' ? 'bool' : 'other' });
        if (to !== 'int32' && to !== 'bool') pool.push({ t: cast(c, dtype), kind: 'float' });
      } else if (u < 0.82) {
        const ints = of('int');
        if (ints.length === 0) continue;
        const x = pk(ints).t;
        const op = pk(['add', 'mul', 'maximum', 'neg', 'less'] as const);
        const y = op === 'neg' ? x.neg() : call(x, op, r() < 0.5 ? 2 : pk(ints).t);
        pool.push({ t: y, kind: op === 'less' ? 'bool' : 'int' });
        if (op !== 'less' && r() < 0.5) pool.push({ t: cast(y, dtype), kind: 'float' });
      } else if (u < 0.86) {
        // A unit axis inserted, an op, and the axis removed (or every unit axis dropped and restored).
        const at = Math.floor(r() * (rank + 1));
        const up = [...S.slice(0, at), 1, ...S.slice(at)];
        const y = a.reshape(up);
        const z = r() < 0.5 ? y.exp() : y.mul(broadcastTo(pk(floats).t.reshape(up), up));
        const squeezed = S.filter((d) => d !== 1);
        pool.push({ t: r() < 0.5 ? z.reshape(S) : z.reshape(squeezed).neg().reshape(S), kind: 'float' });
      } else if (u < 0.92) {
        const c = concat([a, pk(floats).t], Math.floor(r() * rank));
        side.push(r() < 0.5 ? c.sin() : c);
      } else if (rank >= 2) {
        // K = 1 products [..., M, 1] @ [..., 1, N]: rows of a broadcast (or of a slice) by a row.
        const i = Math.floor(r() * (xs.length - 1));
        const src = sources[i]!;
        const lhsB = broadcastTo(xs[i]!.reshape(src).slice(src.map(() => 0), [...src.slice(0, -1), 1]), [...S.slice(0, -1), 1]);
        const lhs = r() < 0.3 ? a.slice(S.map(() => 0), [...S.slice(0, -1), 1]) : r() < 0.5 ? lhsB.exp() : lhsB;
        const row = pk(floats).t.slice(S.map(() => 0), [...S.slice(0, -2), 1, S[rank - 1]!]);
        const rhs = r() < 0.5 ? broadcastTo(row.sum(S.slice(0, -2).map((_, d) => d), true), row.shape) : row;
        pool.push({ t: matmul(lhs, rhs), kind: 'float' });
      }
    }
    const outs: Tensor[] = [];
    for (let i = 1 + Math.floor(r() * 3); i > 0; i--) outs.push(pk(r() < 0.2 ? pool : pool.slice(xs.length)).t);
    outs.push(pk(pool).t.cast(dtype).sum());
    if (r() < 0.5) outs.push(pk(of('float')).t.max(rank - 1));
    return [...outs, ...side];
  };
  return { f, args };
}

/** The first element whose bits differ (NaN matching any NaN), or null. */
async function firstDifference(got: readonly Tensor[], want: readonly Tensor[]): Promise<string | null> {
  if (got.length !== want.length) return `${got.length} outputs, expected ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    if (got[i]!.shape.join() !== want[i]!.shape.join() || got[i]!.dtype !== want[i]!.dtype) return `output ${i}: ${got[i]!.dtype}[${got[i]!.shape}], expected ${want[i]!.dtype}[${want[i]!.shape}]`;
    const [x, y] = [await got[i]!.data(), await want[i]!.data()];
    for (let k = 0; k < y.length; k++) {
      if (!Object.is(x[k], y[k]) && !(Number.isNaN(x[k]) && Number.isNaN(y[k]))) {
        const show = (v: number) => (Object.is(v, -0) ? '-0' : String(v));
        return `output ${i} element ${k}: ${show(x[k]!)}, expected ${show(y[k]!)}`;
      }
    }
  }
  return null;
}

/**
 * Whether the program has work sinkBroadcasts moved: an expand of a value an elementwise
 * primitive, concat or matmul made (f's own expands read its inputs, slices and sums).
 */
function rewritten(program: Program): boolean {
  const made = new Map(program.equations.map((e) => [e.out.id, e.prim]));
  const moved = (p: Primitive | undefined) => p !== undefined && (isUnary(p) || isBinary(p) || isCompare(p) || p === 'where' || p === 'cast' || p === 'concat' || p === 'matmul');
  return program.equations.some((e) => e.prim === 'expand' && moved(made.get(e.inputs[0]!.id)));
}

const SEED = Number(process.env.SCORCH_TEST_SEED ?? 0);
const TRIALS = 150;

describe('sinkBroadcasts on random programs', () => {
  for (const dtype of ['float32', 'float64'] as DType[]) {
    it(`jit, jit(grad) and jit(vmap) equal eager bit for bit (${dtype}, ${TRIALS} programs, seed ${SEED})`, async () => {
      let sunk = 0;
      for (let t = 0; t < TRIALS; t++) {
        const { f, args } = randomTrial(SEED * 1000 + t * 7 + 1, dtype);
        const label = `program ${t} (SCORCH_TEST_SEED=${SEED}, ${dtype})`;
        if (rewritten(makeProgram(f)(...args))) sunk++;
        expect(await firstDifference(jit(f)(...args), f(...args)), `${label}: jit`).toBeNull();
        const loss = (...xs: Tensor[]) => f(...xs).filter((o) => o.dtype === dtype).map((o) => sum(o.mul(0.5).sin())).reduce((x, y) => x.add(y));
        const g = grad(loss, { argnums: args.map((_, i) => i) });
        expect(await firstDifference(jit(g)(...args) as Tensor[], g(...args) as Tensor[]), `${label}: grad`).toBeNull();
        const batched = args.map((a) => concat([a.unsqueeze(0), a.neg().unsqueeze(0)], 0));
        const v = vmap(f);
        expect(await firstDifference(jit(v)(...batched) as Tensor[], v(...batched) as Tensor[]), `${label}: vmap`).toBeNull();
      }
      // Most programs have work the pass moved before a broadcast.
      expect(sunk).toBeGreaterThan(TRIALS / 3);
    });
  }
});
