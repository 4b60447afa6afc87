// The fusion planner on small programs whose best grouping is known: what is stored, which
// kernels exist, what becomes an epilogue, and the limit on buffers a value may read.

import { describe, expect, it } from 'vitest';
import {
  type Equation, type FusionPlan, type Program, type ProgramVar, type Tensor, concat, definePrimitive, describePlan, gelu, kernelCost, kernelNamer, matmul, planFusion, randn, randomKey, regroupsAxes, regroupsRows, slotReuser, softplus, splitKey, splitsRows, sum, tensor, traceProgram,
  type CpuBackend, type CpuHandle, Program as ProgramClass, ProgramBuilder, apply, getBackend, pad, slice,
} from '@scorch/tensor';
import { expectCompiledMatches } from './programReference.js';
import { bitsOf } from './reference.js';
import { CPU_FUSION_OPTIONS } from '../src/cpu/compile.js';
import { grad } from '@scorch/autograd';

/** The program of `f` on these arguments (tensor arguments only; the outputs a tensor or a list). */
const makeProgram = <A extends Tensor[]>(f: (...args: A) => Tensor | Tensor[]) => (...args: A) =>
  traceProgram((tracers) => [f(...(tracers as A))].flat(), args, []).program;

const [k1, k2, k3] = splitKey(randomKey(11), 3);
const cpu = getBackend('cpu') as CpuBackend;

/** `fn`'s result and the insertions into any Set it made (Set.prototype.add counted while it runs). */
function countSetInsertions<T>(fn: () => T): [T, number] {
  const add = Set.prototype.add;
  let insertions = 0;
  Set.prototype.add = function (this: Set<unknown>, value: unknown) {
    insertions++;
    return add.call(this, value);
  } as typeof add;
  try {
    return [fn(), insertions];
  } finally {
    Set.prototype.add = add;
  }
}

describe('planFusion', () => {
  it('an elementwise chain with broadcasts is one kernel that stores only the result', () => {
    const x = randn([8, 5], { key: k1 });
    const b = randn([5], { key: k2 });
    const program = makeProgram((x: Tensor, b: Tensor) => x.mul(2).add(b).exp().sub(1).tanh())(x, b);
    const plan = planFusion(program);
    expect(describePlan(plan)).toEqual(['elementwise [8,5]×1']);
    expect([...plan.materialized]).toEqual([program.outputs[0]!.id]);
  });

  it('bias and activation after a large matmul are its epilogue; the raw product is not stored', () => {
    const x = randn([64, 32], { key: k1 });
    const w = randn([32, 16], { key: k2 });
    const b = randn([16], { key: k3 });
    const plan = planFusion(makeProgram((x: Tensor, w: Tensor, b: Tensor) => matmul(x, w).add(b).tanh())(x, w, b));
    expect(describePlan(plan)).toEqual(['matmul matmul [64,16] + epilogue ×1 (result not stored)']);
  });

  it('an epilogue value may read another value of the same epilogue at its own coordinates', () => {
    const x = randn([64, 32], { key: k1 });
    const w = randn([32, 16], { key: k2 });
    const b = randn([16], { key: k3 });
    // softplus(z) = relu(z) + log1p(e), with e = exp(−|z|) stored for the backward pass.
    const program = makeProgram((x: Tensor, w: Tensor, b: Tensor) => {
      const z = matmul(x, w).add(b);
      const e = z.abs().neg().exp();
      return [e, z.maximum(0).add(e.log1p())];
    })(x, w, b);
    expect(describePlan(planFusion(program))).toEqual(['matmul matmul [64,16] + epilogue ×2 (result not stored)']);
  });

  it('with splitRowEpilogues, a batched product\'s bias and activation are its epilogue through the reshape of its rows', () => {
    // matmul folds [4, 16, 32] @ [32, 16] into [64, 32] @ [32, 16] and reshapes the product to
    // [4, 16, 16]. The CPU (the option off) keeps the activation a pass of its own.
    const x = randn([4, 16, 32], { key: k1 });
    const w = randn([32, 16], { key: k2 });
    const b = randn([16], { key: k3 });
    const program = makeProgram((x: Tensor, w: Tensor, b: Tensor) => matmul(x, w).add(b).tanh())(x, w, b);
    expect(describePlan(planFusion(program, { splitRowEpilogues: true }))).toEqual(['matmul matmul [64,16] + epilogue ×1 (result not stored)']);
    expect(describePlan(planFusion(program))).toEqual(['matmul matmul [64,16]', 'elementwise [4,16,16]×1']);
    // Read as [4, 256] (a row joined to the columns) it is not the product's element at a split row.
    const merged = makeProgram((x: Tensor, w: Tensor) => matmul(x, w).reshape([4, 256]).tanh())(x, w);
    expect(describePlan(planFusion(merged, { splitRowEpilogues: true }))).toEqual(['matmul matmul [64,16]', 'elementwise [4,256]×1']);
  });

  it('with splitRowEpilogues, a batched product\'s rows merged ([b, m, n] read as [b·m, n]) take its epilogue', () => {
    // Both operands batched: the product is [4, 16, 16] itself, read as [64, 16] by the bias and
    // activation, the same memory in the same order.
    const a = randn([4, 16, 32], { key: k1 });
    const w = randn([4, 32, 16], { key: k2 });
    const b = randn([16], { key: k3 });
    const program = makeProgram((a: Tensor, w: Tensor, b: Tensor) => matmul(a, w).reshape([64, 16]).add(b).tanh())(a, w, b);
    expect(describePlan(planFusion(program, { splitRowEpilogues: true }))).toEqual(['matmul matmul [4,16,16] + epilogue ×1 (result not stored)']);
    expect(describePlan(planFusion(program))).toEqual(['matmul matmul [4,16,16]', 'elementwise [64,16]×1']);
  });

  it('an epilogue operand computed from an input and broadcast (b², b·2, exp(b) read by two products) does not keep the epilogue out', () => {
    // Computed after the product in program order, the operand's store came after the product's
    // kernel, which then could not take the bias and activation that read it.
    const x = randn([64, 32], { key: k1 });
    const w = randn([32, 16], { key: k2 });
    const w2 = randn([32, 16], { key: k3 });
    const b = randn([16], { key: k3 });
    const cpu = { ...CPU_FUSION_OPTIONS };
    for (const op of [(b: Tensor) => b.square(), (b: Tensor) => b.mul(2)]) {
      const program = makeProgram((x: Tensor, w: Tensor, b: Tensor) => matmul(x, w).add(op(b)).tanh())(x, w, b);
      // The CPU stores the operand (broadcastStoreMin: its WebAssembly kernels read stored operands).
      expect(describePlan(planFusion(program, cpu))).toEqual(['elementwise [16]×1', 'matmul matmul [64,16] + epilogue ×1 (result not stored)']);
      expect(describePlan(planFusion(program))).toEqual(['matmul matmul [64,16] + epilogue ×1 (result not stored)']);
      const batched = makeProgram((x: Tensor, w: Tensor, b: Tensor) => matmul(x.reshape([4, 16, 32]), w).add(op(b)).relu())(x, w, b);
      expect(describePlan(planFusion(batched, cpu))).toEqual(['elementwise [16]×1', 'matmul matmul [64,16] + epilogue ×1 (result not stored)']);
    }
    // exp(b), costly, read by two products' epilogues: stored once as [16] (not as its broadcast
    // [64, 16]), before both products.
    const shared = makeProgram((x: Tensor, w: Tensor, w2: Tensor, b: Tensor) => {
      const e = b.exp();
      return [matmul(x, w).add(e).tanh(), matmul(x, w2).mul(e).tanh()];
    })(x, w, w2, b);
    for (const options of [{}, cpu]) {
      expect(describePlan(planFusion(shared, options))).toEqual([
        'elementwise [16]×1', 'matmul matmul [64,16] + epilogue ×1 (result not stored)', 'matmul matmul [64,16] + epilogue ×1 (result not stored)',
      ]);
    }
  });

  it('a keepdims sum read as [b, s, 1] (or a full one as [1, 1]) takes its epilogue, with or without splitRowEpilogues\' reshapes', () => {
    const y = randn([4, 16, 32], { key: k1 });
    const keepdims = makeProgram((y: Tensor) => y.sum(-1, true).div(32).sqrt())(y);
    const rows = makeProgram((y: Tensor) => y.reshape([64, 32]).sum(1).reshape([4, 16, 1]).div(32).sqrt())(y);
    const full = makeProgram((y: Tensor) => y.reshape([64, 32]).sum([0, 1], true).div(2048).sqrt())(y);
    for (const options of [{ splitRowEpilogues: true }, CPU_FUSION_OPTIONS]) {
      expect(describePlan(planFusion(keepdims, options))).toEqual(['reduce sum [4,16] + epilogue ×1 (result not stored)']);
      expect(describePlan(planFusion(rows, options))).toEqual(['reduce sum [64] + epilogue ×1 (result not stored)']);
      expect(describePlan(planFusion(full, options))).toEqual(['reduce sum [] + epilogue ×1 (result not stored)']);
    }
    expect(describePlan(planFusion(keepdims))).toEqual(['reduce sum [4,16]', 'elementwise [4,16,1]×1']);
  });

  it('regroupsAxes: any axes regrouped over one finer shape, the last included', () => {
    expect(regroupsAxes([4, 16], [4, 16, 1])).toBe(true);
    expect(regroupsAxes([64], [4, 16, 1])).toBe(true);
    expect(regroupsAxes([], [1, 1])).toBe(true);
    expect(regroupsAxes([12, 5], [3, 20])).toBe(true);
    expect(regroupsAxes([6, 4], [4, 6])).toBe(false);
    expect(regroupsAxes([4, 16], [4, 16])).toBe(false);
    expect(regroupsAxes([0, 5], [5, 0])).toBe(false);
    // A product's columns are kept (regroupsRows): [b, s] to [b, s, 1] is not a regrouping of its rows.
    expect(regroupsRows([4, 16], [4, 16, 1])).toBe(false);
  });

  it('regroupsRows: the leading axes split, merged, or both, over one finer shape, the last kept', () => {
    expect(regroupsRows([12, 5], [3, 4, 5])).toBe(true); // split
    expect(regroupsRows([2, 6, 5], [12, 5])).toBe(true); // merged
    expect(regroupsRows([2, 6, 5], [4, 3, 5])).toBe(true); // both: [2, 2, 3] grouped two ways
    expect(regroupsRows([2, 6, 5], [1, 12, 1, 5])).toBe(true);
    expect(regroupsRows([6, 4, 5], [4, 6, 5])).toBe(false); // no common finer shape
    expect(regroupsRows([12, 5], [12, 5])).toBe(false); // equal
    expect(regroupsRows([12, 5], [3, 20])).toBe(false); // a row joined to the columns
    expect(regroupsRows([12, 4], [12, 2, 2])).toBe(false); // the columns split
    expect(regroupsRows([0, 5], [0, 1, 5])).toBe(false); // empty
  });

  it('splitsRows: the leading axes split into consecutive ones, the last kept', () => {
    expect(splitsRows([12, 5], [3, 4, 5])).toBe(true);
    expect(splitsRows([2, 12, 5], [2, 3, 4, 5])).toBe(true);
    expect(splitsRows([12, 5], [1, 12, 1, 5])).toBe(true);
    expect(splitsRows([12, 5], [12, 5])).toBe(false); // equal
    expect(splitsRows([12, 5], [3, 20])).toBe(false); // a row joined to the columns
    expect(splitsRows([12, 4], [12, 2, 2])).toBe(false); // the columns split
    expect(splitsRows([2, 6, 5], [12, 5])).toBe(false); // rows merged
    expect(splitsRows([6, 4, 5], [4, 6, 5])).toBe(false); // not consecutive splits
    expect(splitsRows([0, 5], [0, 1, 5])).toBe(false); // empty
  });

  it('a tiny inner dimension is computed inline; a skinny output is a dot-product kernel with a prologue', () => {
    const x = randn([100, 2], { key: k1 });
    const w1 = randn([2, 20], { key: k2 });
    const w2 = randn([20, 2], { key: k3 });
    const plan = planFusion(makeProgram((x: Tensor, w1: Tensor, w2: Tensor) => matmul(matmul(x, w1).tanh(), w2))(x, w1, w2));
    // x·w1 (K = 2) and tanh feed the dot kernel's prologue: nothing but the result is stored.
    expect(describePlan(plan)).toEqual(['dot matmul [100,2]']);
  });

  it('a mean is a reduction whose division is its epilogue', () => {
    const x = randn([50, 30], { key: k1 });
    expect(describePlan(planFusion(makeProgram((x: Tensor) => x.square().mean(0))(x)))).toEqual(['reduce sum [30] + epilogue ×1 (result not stored)']);
  });

  it('a costly value read by two kernels is stored once; a cheap one is recomputed', () => {
    const x = randn([40, 40], { key: k1 });
    const costly = planFusion(makeProgram((x: Tensor) => {
      const e = x.exp().log1p();
      return [e.sum(0), e.sum(1)];
    })(x));
    expect(describePlan(costly)).toEqual(['elementwise [40,40]×1', 'reduce sum [40]', 'reduce sum [40]']);
    const cheap = planFusion(makeProgram((x: Tensor) => {
      const e = x.mul(3);
      return [e.sum(0), e.sum(1)];
    })(x));
    expect(describePlan(cheap)).toEqual(['reduce sum [40]', 'reduce sum [40]']);
  });

  it('a value reading more buffers than allowed stores part of its computation first', () => {
    const xs = Array.from({ length: 12 }, (_, i) => tensor([i, i + 1, i + 2]));
    const program = makeProgram((...t: Tensor[]) => t.reduce((a, b) => a.mul(b).add(1)))(...xs);
    const unlimited = planFusion(program);
    expect(describePlan(unlimited)).toEqual(['elementwise [3]×1']);
    const limited = planFusion(program, { maxReadsPerValue: 5 });
    // Every stored value now reads at most 5 buffers.
    for (const id of limited.materialized) {
      const reads = new Set<number>();
      const inputs = new Set(program.inputs.map((v) => v.id));
      const visit = (v: { id: number }): void => {
        if (inputs.has(v.id) || (limited.materialized.has(v.id) && v.id !== id)) {
          reads.add(v.id);
          return;
        }
        for (const x of limited.definitions.get(v.id)!.inputs) visit(x);
      };
      visit({ id });
      expect(reads.size, `value ${id}`).toBeLessThanOrEqual(5);
    }
    expect(limited.materialized.size).toBeGreaterThan(1);
  });
});

describe('planFusion on long chains: the per-value sets of inline equations are handed on, not copied', () => {
  it('a chain of 3,000 ops: a few set insertions per equation, not a copy of up to 256 ids each', () => {
    // Each value's region (INLINE_OPS_MAX) and the recompute rule's needs are the union of its
    // inline inputs' sets. Copied, a chain's sets grow to 256 ids and every op copies its
    // input's twice (261 insertions per equation measured); handed on (the input read by this
    // value alone), an op adds its input and the shared constant it reads to each set (4), and
    // the planner's other sets (stored values, consumers, kernels) a few more: 8 measured.
    const x = randn([64], { key: k1 });
    const program = makeProgram((y: Tensor) => {
      for (let i = 0; i < 3000; i++) y = i % 3 === 0 ? y.mul(1.001) : i % 3 === 1 ? y.add(0.01) : y.tanh();
      return y;
    })(x);
    const [plan, insertions] = countSetInsertions(() => planFusion(program));
    expect(insertions / program.equations.length).toBeLessThan(32);
    // The chain is cut every 256 inline equations: 3,000 ops (and the two constants, one
    // equation each, shared by the whole chain) make 12 stored values, the result among them,
    // in one kernel.
    expect(program.equations.length).toBe(3002);
    expect(describePlan(plan)).toEqual(['elementwise [64]×12']);
  });
});

/** The options of a software adapter (the WebGPU backend's `plan` on llvmpipe). */
const SOFTWARE = { maxReadsPerValue: 14, matmulEpilogues: false, splitRowEpilogues: true, inlineTranscendentalsMax: 16 };

/** For each elementwise kernel of `plan`, each root's computation: the root and the inline equations it reads. */
function rootComputations(plan: FusionPlan): Set<number>[][] {
  const stored = (id: number) => plan.materialized.has(id) || plan.program.inputs.some((v) => v.id === id);
  const computation = (root: ProgramVar): Set<number> => {
    const seen = new Set<number>();
    const walk = (v: ProgramVar, isRoot: boolean): void => {
      if ((!isRoot && stored(v.id)) || seen.has(v.id) || !plan.definitions.has(v.id)) return;
      seen.add(v.id);
      for (const x of plan.definitions.get(v.id)!.inputs) walk(x, false);
    };
    walk(root, true);
    return seen;
  };
  return plan.kernels.flatMap((k) => (k.kind === 'elementwise' ? [k.segments.flatMap((s) => s.roots.map(computation))] : []));
}

describe('planFusion: inlineTranscendentalsMax (a software adapter\'s cap)', () => {
  const TRANSCENDENTAL = new Set(['exp', 'log', 'sin', 'cos', 'tanh', 'log1p', 'expm1', 'sigmoid', 'pow', 'erf']);
  /** Transcendental equations each elementwise kernel computes: its roots and their inline inputs, each once. */
  const perKernel = (plan: FusionPlan): number[] =>
    rootComputations(plan).map((roots) => new Set(roots.flatMap((ids) => [...ids])))
      .map((ids) => [...ids].filter((id) => TRANSCENDENTAL.has(plan.definitions.get(id)!.prim)).length);
  // mul, add, tanh in turn: N / 3 tanh.
  const chain = (n: number) => (y: Tensor) => {
    for (let i = 0; i < n; i++) y = i % 3 === 0 ? y.mul(1.001) : i % 3 === 1 ? y.add(0.01) : y.tanh();
    return y;
  };

  it('the gradient of a chain of 3,000 ops under the cap: sets handed on, not copied; each cut priced in one pass', () => {
    // With the cap, each value's set of inline equations was a copy of its inputs' (a cut may
    // store another input and retry with them as they were): 351 insertions per equation
    // measured on this program, most of its plan's time; and a cut priced each candidate by a
    // walk of all the value needs (tens of walks of up to INLINE_OPS_MAX values). Now the set is
    // taken over (the ids added taken out again on a retry), an input already in it brings
    // nothing, and the candidates' counts come from the values' dominators in one pass: 96.
    // The plan is the one of before: 913 kernels (sha-256 of every kernel, stored value and
    // producer equal before and after on this and ~3,600 other programs, benchmarks/NOTES.md).
    const program = traceProgram(([x]) => [grad((y: Tensor) => sum(chain(3000)(y)))(x!)], [randn([64], { key: k1 })], []).program;
    const [plan, insertions] = countSetInsertions(() => planFusion(program, SOFTWARE));
    expect(insertions / program.equations.length).toBeLessThan(160);
    expect(plan.kernels.length).toBe(913);
    expect(Math.max(...perKernel(plan))).toBeLessThanOrEqual(16);
  });

  it('a chain of 120 ops with 40 tanh is cut into kernels of at most the cap; without it one kernel', () => {
    const program = makeProgram(chain(120))(randn([64], { key: k1 }));
    expect(perKernel(planFusion(program))).toEqual([40]);
    const capped = perKernel(planFusion(program, { inlineTranscendentalsMax: 16 }));
    expect(capped).toEqual([16, 16, 8]);
  });

  it('a value with two branchy inputs stores the one with more transcendentals', () => {
    const x = randn([16], { key: k1 });
    // a: 6 tanh, b: 3 exp; a + b needs 9 > 8: a is stored, the sum's kernel computes b's 3.
    const f = (x: Tensor) => {
      let a = x;
      for (let i = 0; i < 6; i++) a = a.tanh().mul(2);
      let b = x;
      for (let i = 0; i < 3; i++) b = b.exp().mul(0.5);
      return a.add(b);
    };
    const program = makeProgram(f)(x);
    const plan = planFusion(program, { inlineTranscendentalsMax: 8 });
    expect(perKernel(plan).every((n) => n <= 8)).toBe(true);
    expect(perKernel(plan).reduce((a, b) => a + b, 0)).toBe(9);
    // The result and a (its last link: a tanh times 2).
    const stored = [...plan.materialized].map((id) => plan.definitions.get(id)!);
    expect(stored.map((eq) => eq.prim).sort()).toEqual(['add', 'mul']);
    const a = stored.find((eq) => eq.prim === 'mul')!;
    expect(plan.definitions.get(a.inputs[0]!.id)?.prim).toBe('tanh');
    expect(perKernel(planFusion(program))).toEqual([9]);
  });

  it('a cut at a softplus stores its input, which its four paths read, not one of its branches', () => {
    // 16 tanh, a softplus (max(y, 0) + log1p(exp(−|y|)): y read by four equations), then two
    // tanh: 20 in all. When the exp passed 16, storing its operand −|y| (the input with most)
    // left y's chain in max(y, 0)'s path: the sum passed the cap again and stored that select,
    // and y and its comparison, each now read from two kernels, were stored by the recompute
    // rule: five kernels. Storing y: two.
    const f = (x: Tensor) => {
      let y = x;
      for (let i = 0; i < 16; i++) y = y.tanh().mul(2);
      return softplus(y).tanh().mul(2).tanh();
    };
    const program = makeProgram(f)(randn([64], { key: k1 }));
    const plan = planFusion(program, { inlineTranscendentalsMax: 16 });
    expect(perKernel(plan)).toEqual([16, 4]);
    const stored = [...plan.materialized].map((id) => plan.definitions.get(id)!);
    expect(stored).toHaveLength(2);
    // The result, and y: 2·tanh(…), read by the softplus's comparison, both selects and a negation.
    const y = stored.find((eq) => eq.out.id !== program.outputs[0]!.id)!;
    expect(y.prim).toBe('mul');
    expect(plan.definitions.get(y.inputs[0]!.id)?.prim).toBe('tanh');
  });

  it('the gradient of softplus, gelu and tanh in turn: each inline value walked once per pass, not once per path', () => {
    // softplus reads its input on four paths and gelu on two, and their gradients read those
    // values again: paths through a chain of them multiply. The pass that finds the stored
    // values a value reads (maxReadsPerValue) walked its inline inputs once per path, and the
    // cap's cuts leave such chains inline between stored values: on 90 steps 25,796 set
    // insertions per equation (2 s), on 60 steps 1.7 million (110 s). Each value walked once:
    // 207 and 170. The leaves and flags found are the same sets, so the plans are the same
    // (checked against the old planner on 1,060 plans, benchmarks/NOTES.md).
    for (const [steps, kernels] of [[90, 156], [150, 250]] as const) {
      const chain = (y: Tensor) => {
        for (let i = 0; i < steps; i++) y = i % 3 === 0 ? softplus(y) : i % 3 === 1 ? gelu(y) : y.tanh();
        return y;
      };
      const program = traceProgram(([x]) => [grad((y: Tensor) => sum(chain(y)))(x!)], [randn([64], { key: k1 })], []).program;
      const [plan, insertions] = countSetInsertions(() => planFusion(program, SOFTWARE));
      expect(insertions / program.equations.length).toBeLessThan(400);
      expect(plan.kernels.length).toBe(kernels);
      expect(Math.max(...perKernel(plan))).toBeLessThanOrEqual(16);
    }
  });

  it('programs within the cap plan as without it', () => {
    const x = randn([8, 5], { key: k1 });
    const b = randn([5], { key: k2 });
    const program = makeProgram((x: Tensor, b: Tensor) => x.mul(2).add(b).exp().sub(1).tanh().sigmoid())(x, b);
    expect(describePlan(planFusion(program, { inlineTranscendentalsMax: 3 }))).toEqual(describePlan(planFusion(program)));
  });
});

describe('planFusion: kernelEquationsMax (a software adapter\'s bound on a kernel\'s size)', () => {
  /** The equations each elementwise kernel computes: each root's inline equations (itself included), summed. */
  const computed = (plan: FusionPlan): number[] => rootComputations(plan).map((roots) => roots.reduce((n, ids) => n + ids.size, 0));
  // The gradient of a concat of n one-element slices, each scaled: the slices' gradients are
  // pads of the concat's cotangent, summed into x's gradient by roots of one shape.
  const slices = (n: number) => (x: Tensor) => {
    const parts: Tensor[] = [];
    for (let i = 0; i < n; i++) parts.push(x.slice([i % 8], [1]).mul(i));
    return sum(concat(parts).exp());
  };

  it('roots of one shape join a kernel only while its equations stay within the bound; what is stored does not change', () => {
    const program = traceProgram(([x]) => [grad(slices(60))(x!)], [randn([64], { key: k1 })], []).program;
    const free = planFusion(program, SOFTWARE);
    const bounded = planFusion(program, { ...SOFTWARE, kernelEquationsMax: 256 });
    // Without the bound the gradient's roots make one kernel of 299 equations; with it, two.
    expect(computed(free)).toEqual([132, 299]);
    expect(computed(bounded)).toEqual([132, 154, 145]);
    expect([...bounded.materialized].sort((a, b) => a - b)).toEqual([...free.materialized].sort((a, b) => a - b));
  });

  it('200 pieces: every kernel within the bound (one of 1,007 equations without it)', () => {
    const program = traceProgram(([x]) => [grad(slices(200))(x!)], [randn([64], { key: k1 })], []).program;
    expect(Math.max(...computed(planFusion(program, SOFTWARE)))).toBe(1007);
    const sizes = computed(planFusion(program, { ...SOFTWARE, kernelEquationsMax: 256 }));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(256);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(231 + 256 + 1007);
  });

  it('programs within the bound plan as without it', () => {
    const program = makeProgram((x: Tensor) => softplus(x.mul(2)).tanh())(randn([8, 5], { key: k1 }));
    expect(describePlan(planFusion(program, { kernelEquationsMax: 256 }))).toEqual(describePlan(planFusion(program)));
  });
});

describe('planFusion on long programs', () => {
  it('plans a chain of 3,000 small matmuls, each with its epilogue, in linear time', () => {
    // Each product's tanh is its epilogue and nothing else reads it, so no product is stored.
    // Deciding that walked every stored value's inputs once per product: 3,000 × 3,000 walks
    // (about 17 s); one walk per stored value takes well under a second.
    const x = randn([8, 8], { key: k1 });
    const w = randn([8, 8], { key: k2 });
    const count = 3_000;
    const program = makeProgram((x: Tensor, w: Tensor) => {
      let y = x;
      for (let i = 0; i < count; i++) y = matmul(y, w).tanh();
      return y;
    })(x, w);
    const plan = planFusion(program);
    expect(describePlan(plan)).toEqual(Array.from({ length: count }, () => 'matmul matmul [8,8] + epilogue ×1 (result not stored)'));
  }, 5_000);

  it('plans 20,000 alternating reductions and elementwise kernels in linear time', () => {
    // y ← y − sum(y), every y a result: a reduction, then an elementwise kernel that must follow
    // it. Each elementwise value looked for its kernel from the program's first kernel, filtering
    // what it reads at every elementwise kernel on the way: 20,000²/2 steps (~30 s); it starts
    // now at the first kernel after everything it reads (~1 s alone, up to ~7 s beside a full
    // test run: hence the 15 s limit, half the quadratic search's time). The program is
    // written out rather than traced (tracing 80,000 ops takes seconds of its own).
    const count = 20_000;
    let id = 0;
    const v = (shape: number[]) => ({ id: id++, shape, dtype: 'float32' }) as ProgramVar;
    const x = v([64]);
    const equations: Equation[] = [];
    const outputs: ProgramVar[] = [];
    let y = x;
    for (let i = 0; i < count; i++) {
      const s = v([]), r = v([1]), e = v([64]), d = v([64]);
      equations.push(
        { prim: 'sum', inputs: [y], params: { axes: [0] }, out: s } as unknown as Equation,
        { prim: 'reshape', inputs: [s], params: { shape: [1] }, out: r } as unknown as Equation,
        { prim: 'expand', inputs: [r], params: { shape: [64] }, out: e } as unknown as Equation,
        { prim: 'sub', inputs: [y, e], params: {}, out: d } as unknown as Equation,
      );
      outputs.push((y = d));
    }
    const plan = planFusion({ inputs: [x], outputs, updates: [], equations } as unknown as Program);
    expect(describePlan(plan)).toEqual(Array.from({ length: 2 * count }, (_, i) => (i % 2 === 0 ? 'reduce sum []' : 'elementwise [64]×1')));
  }, 15_000);
});

describe('scans and arg-reductions', () => {
  it('are anchors of their own kind with their input inline; elementwise consumers read their result', () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    const scan = planFusion(makeProgram((t: Tensor) => t.exp().mul(2).cumsum(1).add(1))(x));
    expect(describePlan(scan)).toEqual(['scan cumsum [2,3]', 'elementwise [2,3]×1']);
    const arg = planFusion(makeProgram((t: Tensor) => t.sin().argmax(0))(x));
    expect(describePlan(arg)).toEqual(['argReduce argmax [3]']);
    // The rounding ops and erf are elementwise: computed inline like any other.
    expect(describePlan(planFusion(makeProgram((t: Tensor) => t.floor().add(t.round()).mul(t.erf()).sign())(x)))).toEqual(['elementwise [2,3]×1']);
  });
});

describe('defined primitives (definePrimitive)', () => {
  const dilate = definePrimitive({
    name: 'fusionTestDilate', kind: 'elementwise', inputs: ['x'], cpu: (x) => 2 * x, wgsl: { expression: '2.0 * x' },
    jvp: () => null, vjp: () => [null],
  });
  const rowMax = definePrimitive({
    name: 'fusionTestRowMax', kind: 'shader', inputs: ['x'],
    infer: ([x]) => ({ shape: [x!.shape[0]!], dtype: x!.dtype }),
    cpu: () => undefined,
    wgsl: { code: '@compute @workgroup_size(1) fn main() {}', workgroupSize: [1, 1, 1] },
    jvp: () => null, vjp: () => [null],
  });

  it('an elementwise one is computed inline like a built-in op; a shader one is a kernel of its own reading a stored operand', () => {
    const x = randn([4, 6], { key: k1 });
    expect(describePlan(planFusion(makeProgram((t: Tensor) => dilate(t.exp()).add(1).tanh())(x)))).toEqual(['elementwise [4,6]×1']);
    const program = makeProgram((t: Tensor) => rowMax(t.exp()).add(1))(x);
    const plan = planFusion(program);
    // exp(t) is stored for the shader, which writes its own result; the add reads it.
    expect(describePlan(plan)).toEqual(['elementwise [4,6]×1', 'custom fusionTestRowMax [4]', 'elementwise [4]×1']);
    const shaderInput = program.equations.find((eq) => eq.prim === 'custom')!.inputs[0]!;
    expect(plan.materialized.has(shaderInput.id)).toBe(true);
  });
});

describe('kernelNamer', () => {
  it('names the first kernel of a name by it, later ones by the first free suffix', () => {
    const name = kernelNamer();
    expect(['sum', 'sum', 'sum_2', 'sum', 'add'].map(name)).toEqual(['sum', 'sum_2', 'sum_2_2', 'sum_3', 'add']);
  });

  it('names 20,000 kernels of one shape in linear time', () => {
    // Each name tried every suffix from _2: 2e8 names built for 20,000 kernels (about a minute).
    const name = kernelNamer();
    const names = Array.from({ length: 20_000 }, () => name('reduce_sum'));
    expect(names[0]).toBe('reduce_sum');
    expect(names[19_999]).toBe('reduce_sum_20000');
    expect(new Set(names).size).toBe(20_000);
  }, 5_000);
});

describe('kernelCost', () => {
  it('costs each kernel of a plan of 60,000 kernels in linear time', () => {
    // 60,000 sums of one [2, 2] input, each its own kernel. Each call scanned every kernel of the
    // plan for the anchors whose result is not stored: 3.6e9 steps (about 30 s).
    const x: ProgramVar = { id: 0, shape: [2, 2], dtype: 'float32' } as ProgramVar;
    const count = 60_000;
    const equations = Array.from({ length: count }, (_, i) => ({
      prim: 'sum', inputs: [x], out: { id: i + 1, shape: [2], dtype: 'float32' }, params: { axes: [1], keepdims: false },
    })) as unknown as Equation[];
    const plan = {
      program: { inputs: [x], outputs: [equations[0]!.out], updates: [], equations },
      kernels: equations.map((_, i) => ({ kind: 'reduce', equation: i, epilogue: [], writesResult: true })),
      materialized: new Set(equations.map((e) => e.out.id)),
    } as unknown as FusionPlan;
    const costs = equations.map((_, i) => kernelCost(plan, [i], () => 4));
    // Each reads the [2, 2] input (16 bytes) and writes its [2] result (8 bytes).
    expect(costs.every((c) => c.bytes === 24)).toBe(true);
  }, 5_000);
});

describe('slotReuser', () => {
  /** The scan the CPU and WebGPU lowerings made: the first slot of the key free before `born`. */
  const firstFit = () => {
    const keys: string[] = [];
    const freeAfter: number[] = [];
    return (key: string, born: number, until: number): number => {
      let slot = freeAfter.findIndex((free, s) => free < born && keys[s] === key);
      if (slot < 0) slot = keys.push(key) - 1;
      freeAfter[slot] = until;
      return slot;
    };
  };
  const place = () => {
    const reuse = slotReuser();
    let count = 0;
    return (key: string, born: number, until: number): number => {
      let slot = reuse.take(key, born);
      if (slot < 0) slot = count++;
      reuse.hold(key, slot, until);
      return slot;
    };
  };

  it('takes the lowest-numbered slot of the key freed before the value is made', () => {
    const p = place();
    expect(p('f32', 0, 2)).toBe(0); // new
    expect(p('f32', 1, 1)).toBe(1); // 0 is read at kernel 2: new
    expect(p('i32', 1, 3)).toBe(2); // another key: new
    expect(p('f32', 2, 5)).toBe(1); // 1 was last read at kernel 1; 0 is read at kernel 2
    expect(p('f32', 3, 4)).toBe(0); // 0 is free now
    expect(p('f32', 6, 6)).toBe(0); // 0 and 1 are both free: the lower
    expect(p('f32', 6, 7)).toBe(1);
    expect(p('i32', 7, 7)).toBe(2);
  });

  it('places values exactly as a scan of every slot in order does', () => {
    // Deterministic pseudo-random lifetimes: kernels made in order, read up to 20 kernels later.
    let state = 7;
    const rand = (n: number) => ((state = (state * 1103515245 + 12345) >>> 0) % n);
    for (let trial = 0; trial < 200; trial++) {
      const a = firstFit();
      const b = place();
      let born = 0;
      for (let i = 0; i < 100; i++) {
        born += rand(3);
        const key = `k${rand(3)}`;
        const until = born + rand(20);
        expect(b(key, born, until)).toBe(a(key, born, until));
      }
    }
  });

  it('places 200,000 values that all stay live in n log n time', () => {
    // The forward values of a long chain's gradient all live until the backward pass reads them.
    // A scan of every slot per value made 2·10^10 comparisons here (the lowering of jit(grad) of a
    // chain of 3,000 matmuls spent ~0.15 s on it); a heap makes ~4·10^6.
    const count = 200_000;
    const p = place();
    let distinct = 0;
    for (let i = 0; i < count; i++) if (p('f32', i, count) === i) distinct++;
    expect(distinct).toBe(count);
  }, 5_000);
});

describe('planFusion: thresholds at their bounds', () => {
  it('a matmul whose inner dimension equals inlineContractionMax is computed inline; one past it is a kernel', () => {
    const a = randn([16, 4], { key: randomKey(1) });
    const b = randn([4, 16], { key: randomKey(2) });
    const a5 = randn([16, 5], { key: randomKey(3) });
    const b5 = randn([5, 16], { key: randomKey(4) });
    const mm = (xs: readonly Tensor[]) => [matmul(xs[0]!, xs[1]!).tanh()];
    expect(describePlan(planFusion(traceProgram(mm, [a, b], []).program))).toEqual(['elementwise [16,16]×1']);
    expect(describePlan(planFusion(traceProgram(mm, [a5, b5], []).program))).toEqual(['matmul matmul [16,16] + epilogue ×1 (result not stored)']);
    for (const t of [a, b, a5, b5]) t.dispose();
  });

  it('a value of inline cost exactly recomputeCostMax read by two kernels is recomputed; one more is stored', () => {
    const x = randn([40, 40], { key: randomKey(5) });
    // Four binary ops of cost 1 each (constants cost nothing): cost 4, the default recomputeCostMax.
    const at = (extra: boolean) => planFusion(traceProgram((xs) => {
      let e = xs[0]!.mul(3).add(1).mul(2).add(5);
      if (extra) e = e.mul(7);
      return [e.sum(0), e.sum(1)];
    }, [x], []).program);
    expect(describePlan(at(false))).toEqual(['reduce sum [40]', 'reduce sum [40]']);
    expect(describePlan(at(true))).toEqual(['elementwise [40,40]×1', 'reduce sum [40]', 'reduce sum [40]']);
    x.dispose();
  });
});

describe('planFusion: what must be stored', () => {
  it('an update\'s value computed inline is stored, and a compiled run returns it after the outputs', () => {
    const b = new ProgramBuilder();
    const x = b.newVar([3], 'float32');
    const y = b.newVar([3], 'float32');
    const z = b.newVar([3], 'float32');
    b.add('neg', [x], {}, y);
    b.add('floor', [x], {}, z);
    const program = new ProgramClass('cpu', [x], [{ kind: 'argument', index: 0 }], [], [], b.equations, [z], [{ input: 0, value: y }]);
    expect([...planFusion(program).materialized].sort()).toEqual([y.id, z.id].sort());
    const t = tensor([1.5, -2, 3]);
    const compiled = cpu.compile(program);
    const [out, upd] = compiled.run([t._live('test') as CpuHandle], [], [false]);
    expect(Array.from(cpu.readSync(out!))).toEqual([1, -2, 3]);
    expect(Array.from(cpu.readSync(upd!))).toEqual([-1.5, 2, -3]);
    cpu.dispose(out!);
    cpu.dispose(upd!);
    compiled.dispose();
    t.dispose();
  });

  it('a scatter-add\'s computed operand is stored (the kernel reads it from memory)', () => {
    const x = randn([5, 4], { key: randomKey(8) });
    const idx = tensor([4, 0, 0, 2, 1], { dtype: 'int32' });
    const program = traceProgram(([x, idx]) => [apply('scatterAdd', [x!.add(1), idx!], { axis: 0, size: 7 })], [x, idx], []).program;
    const plan = planFusion(program);
    const operand = program.equations.find((eq) => eq.prim === 'scatterAdd')!.inputs[0]!;
    expect(plan.materialized.has(operand.id)).toBe(true);
    x.dispose();
    idx.dispose();
  });
});

describe('planFusion: anchors that are results', () => {
  it('a reduction that is an output is written even when its only reader is its epilogue', () => {
    const x = randn([8, 16], { key: randomKey(6) });
    const f = (xs: readonly Tensor[]) => {
      const s = xs[0]!.sum(1);
      return [s, s.exp()];
    };
    expect(describePlan(planFusion(traceProgram(f, [x], []).program))).toEqual(['reduce sum [8] + epilogue ×1']);
    // And on the CPU the compiled outputs equal the op-by-op run bit for bit.
    expectCompiledMatches(cpu, f, [x], { bits: bitsOf });
    x.dispose();
  });
});

describe('planFusion: padStoreReaders at its bound', () => {
  it('a pad read by exactly padStoreReaders windows is stored; by one fewer it is not', () => {
    const x = randn([6, 6], { key: randomKey(7) });
    const windows = (n: number) => (xs: readonly Tensor[]) => {
      const p = pad(xs[0]!, [[1, 1], [1, 1]]); // cost 0: the recompute rule would not store it
      return Array.from({ length: n }, (_, i) => slice(p, [i, 0], [6, 8]).tanh());
    };
    const stored = (n: number) => {
      const program = traceProgram(windows(n), [x], []).program;
      const plan = planFusion(program, { padStoreReaders: 2 });
      return program.equations.filter((eq) => eq.prim === 'pad' && plan.materialized.has(eq.out.id)).length;
    };
    expect(stored(2)).toBe(1);
    expect(stored(1)).toBe(0);
    x.dispose();
  });
});
