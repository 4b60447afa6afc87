// Random programs under jit on the path a hardware GPU takes (hardwarePath.test.ts forces it on
// the software adapter: matmul epilogues fused, register-blocked matmuls blocked at a hardware
// GPU's workgroup count). Each program is a random chain over float32 inputs of small integers:
// batched and 2-D matmuls of sizes around the tile and vec4 block sizes (1, 3, 7, 33, 65, 129,
// and multiples of 4), broadcast operands ([h], [b, 1, h], [s, h], [b, s, 1]...), elementwise
// ops, reductions over any axis, scans and softmaxes, reshapes that split or merge rows or
// columns, permutes, slices and concats, blocks of a network (gated products, residuals,
// attention), comparisons and int32 casts, broadcast leading axes, some values returned and
// consumed again, some arguments given as views (transposed, or sliced at an offset);
// then jit(grad(·)) of such programs. The jitted values are held against eager WebGPU and, where
// exact, the CPU. The gradient programs use only exact ops (no transcendental, mean or max) and
// are compared where the backward bound (gradientExact) shows the gradients exact (most are).
//
// Tolerances come from the arithmetic. Every value carries a bound B on its magnitude, a count s
// of binary fraction digits (×½ adds one) and, once a transcendental or a mean has touched it, a
// bound E on |jitted − eager|:
// - a value of integers times 2⁻ˢ whose every partial sum stays below 2²² (B·2ˢ, a product's
//   K·B_a·B_b) is exact in float32 in any summation order: jitted, eager and CPU agree bit for
//   bit (E = 0);
// - a transcendental f evaluates eager's WGSL expression, so on inputs that differ by E its
//   results differ by at most L·E (L: f's Lipschitz constant) plus 2 ulp of its bound (the
//   rounding of a differently contracted expression); a mean divides an exact sum by n (2 ulp);
// - sums (and products' K sums) of inexact terms in other orders: n·E (the terms' differences)
//   plus 2·n·u·n·B (each order within n·u·Σ|terms| of the exact sum), and the other ops as their
//   first-order error propagation (add: E_a + E_b + ulp, mul: E_a·B_b + E_b·B_a + ulp).
// Seeds are fixed (1 to FORWARD, then GRADIENT: about 20 s on llvmpipe with a cold shader cache,
// most of it compiling), or SCORCH_HWFUZZ_SEEDS=a-b runs others (seeds 1 to 450 of each passed
// when this was written); every failure prints its seed, the program and the kernels it compiled
// to. A check that the fuzz sees the defects it is for: with finishReduction (compiler/lower.ts)
// writing every epilogue at the kernel's own coordinates, as before 4a121a0, seeds 1 to 100 fail
// in 84 of the 200 programs.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grad, jit } from '@scorch/autograd';
import * as T from '@scorch/tensor';
import type { WebGPUHandle } from '@scorch/kernels';
import { firstMismatch, hardwarePathDevice, hostRandom } from './helpers.js';
import { EXACT, type FuzzProgram, applySharedOp, broadcast, evaluateProgram, count, showProgram, ulpOf } from './fuzzOps.js';

type Tensor = T.Tensor;

let gpu: WebGPUHandle;
let dev = 'webgpu';
let restore: () => void;
beforeAll(async () => {
  ({ gpu, restore } = await hardwarePathDevice());
  dev = gpu.device;
});
afterAll(() => restore());

const u = 2 ** -24;

/** One value of a program: an input (small integers) or an op over earlier values. */
interface Node {
  op: string;
  args: number[];
  p: (number | number[] | boolean)[];
  shape: number[];
  /** Bound on |value|. */
  B: number;
  /** Binary fraction digits of an exact value. */
  s: number;
  /** Bound on |jitted − eager|; 0 for an exact value. */
  E: number;
  exact: boolean;
}

const UNARY_EXACT = ['relu', 'neg', 'abs', 'clamp', 'half', 'leaky', 'square'] as const;
// name: [Lipschitz constant, bound on |f| given the input bound]
const TRANSCENDENTAL: Record<string, [number, (b: number) => number]> = {
  silu: [1.1, (b) => b + 1], gelu: [1.13, (b) => b + 1], softplus: [1, (b) => b + 1], sigmoid: [0.25, () => 1], tanh: [1, () => 1], geluTanh: [1.13, (b) => b + 1],
};
const BINARY = ['add', 'sub', 'mul', 'maximum', 'whereGreater'] as const;

type Program = FuzzProgram<Node>;

function apply(n: Node, xs: Tensor[]): Tensor {
  const [a, b] = [xs[n.args[0]!]!, xs[n.args[1]!]!];
  const p = n.p;
  const shared = applySharedOp(n.op, a, b, p);
  if (shared) return shared;
  switch (n.op) {
    case 'whereGreater': return T.where(a.greater(b), a, b);
    case 'leaky': return T.where(a.greater(0), a, a.mul(0.25));
    case 'square': return a.square();
    case 'expand': return a.reshape([1, ...a.shape]).expand(p[0] as number[]);
    case 'silu': return a.silu();
    case 'gelu': return a.gelu();
    case 'geluTanh': return a.gelu({ approximate: 'tanh' });
    case 'softplus': return a.softplus();
    case 'sum': return a.sum(p[0] as number, p[1] as boolean);
    case 'mean': return a.mean(p[0] as number, p[1] as boolean);
    case 'softmax': return T.softmax(a, p[0] as number);
  }
  throw new Error(`unknown op ${n.op}`);
}

function generate(seed: number, forGradient: boolean): Program {
  const r = hostRandom(seed);
  const pick = <X,>(xs: readonly X[]): X => xs[Math.floor(r() * xs.length)]!;
  const SIZES = [1, 3, 4, 7, 8, 16, 32, 33, 64, 65, 129];
  const BATCH = [1, 2, 3];
  const nodes: Node[] = [];
  const inputs: number[] = [];
  const MAX = 40_000;
  const input = (shape: number[]): number => {
    nodes.push({ op: 'input', args: [], p: [], shape, B: 3, s: 0, E: 0, exact: true });
    inputs.push(nodes.length - 1);
    return nodes.length - 1;
  };
  const push = (n: Node): number => {
    const exact = n.exact && n.E === 0 && n.B * 2 ** n.s < EXACT;
    nodes.push({ ...n, exact, E: exact ? 0 : Math.max(n.E, 1e-30) });
    return nodes.length - 1;
  };
  /** Result of an elementwise op on a (and b), with its error terms. */
  const elementwise = (op: string, a: number, b: number | null, p: Node['p'] = []): number => {
    const x = nodes[a]!;
    const y = b === null ? null : nodes[b]!;
    const shape = y ? broadcast(x.shape, y.shape)! : x.shape;
    let B = x.B, s = x.s, E = x.E, exact = x.exact;
    if (op in TRANSCENDENTAL) {
      const [lip, bound] = TRANSCENDENTAL[op]!;
      B = bound(x.B); E = lip * x.E + 2 * ulpOf(B); exact = false;
    } else if (op === 'half') { B = x.B / 2; s = x.s + 1; E = x.E / 2; }
    else if (op === 'leaky') { s = x.s + 2; }
    else if (op === 'clamp') { B = Math.min(x.B, p[0] as number); }
    else if (op === 'square') { B = x.B * x.B; s = 2 * x.s; E = 2 * x.B * x.E + x.E * x.E + (x.exact ? 0 : ulpOf(B)); }
    else if (y) {
      exact = x.exact && y.exact;
      if (op === 'add' || op === 'sub') { B = x.B + y.B; s = Math.max(x.s, y.s); E = x.E + y.E + (exact ? 0 : ulpOf(B)); }
      else if (op === 'mul') { B = x.B * y.B; s = x.s + y.s; E = x.E * y.B + y.E * x.B + x.E * y.E + (exact ? 0 : ulpOf(B)); }
      else { B = Math.max(x.B, y.B); s = Math.max(x.s, y.s); E = Math.max(x.E, y.E); }
    }
    return push({ op, args: b === null ? [a] : [a, b], p, shape: [...shape], B, s, E, exact });
  };
  /** lhs @ rhs, its operands clamped to [−3, 3] where the product would leave the exact range; null when too large. */
  const multiply = (lhs: number, rhs: number): number | null => {
    for (const side of [0, 1]) {
      const [a, b] = [nodes[lhs]!, nodes[rhs]!];
      const K = a.shape[a.shape.length - 1]!;
      if (K * a.B * b.B * 2 ** (a.s + b.s) < EXACT) break;
      const big = (side === 0) === a.B * 2 ** a.s >= b.B * 2 ** b.s ? lhs : rhs;
      const clamped = elementwise('clamp', big, null, [3]);
      if (big === lhs) lhs = clamped; else rhs = clamped;
    }
    const [a, b] = [nodes[lhs]!, nodes[rhs]!];
    const K = a.shape[a.shape.length - 1]!;
    const outShape = [...broadcast(a.shape.slice(0, -2), b.shape.slice(0, -2))!, ...(a.shape.length >= 2 ? [a.shape[a.shape.length - 2]!] : []), b.shape[b.shape.length - 1]!];
    if (count(outShape) > MAX) return null;
    const exact = a.exact && b.exact;
    const B = K * a.B * b.B;
    const E = exact ? 0 : K * (a.E * b.B + b.E * a.B + a.E * b.E) + 2 * K * u * B;
    return push({ op: 'matmul', args: [lhs, rhs], p: [], shape: outShape, B, s: a.s + b.s, E, exact });
  };
  /** A new operand broadcast against shape: some axes 1, some leading axes dropped. */
  const broadcastOperand = (shape: readonly number[]): number[] => {
    const kind = r();
    if (shape.length === 0) return [];
    if (kind < 0.25) return [shape[shape.length - 1]!];
    const drop = kind < 0.5 ? Math.floor(r() * shape.length) : 0;
    return shape.slice(drop).map((d) => (r() < 0.4 ? 1 : d));
  };
  const batch = Array.from({ length: Math.floor(r() * 3) }, () => pick(BATCH));
  let cur = input([...batch, pick(SIZES), pick(SIZES)]);
  if (count(nodes[cur]!.shape) > MAX) cur = input([pick(BATCH), pick(SIZES), pick([3, 7, 8, 33])]);
  const steps = 3 + Math.floor(r() * 8);
  for (let step = 0; step < steps; step++) {
    const x = nodes[cur]!;
    const shape = x.shape;
    const k = r();
    let next: number | null = null;
    if (k < 0.1 && shape.length >= 2) {
      // Blocks of a network: a gated pair of products of x (p₁ · act(p₂), or p₁ + p₂), a residual
      // x + act(x @ w) with w [k, k], or attention softmax(x xᵀ) x over its last two axes.
      const kk = shape[shape.length - 1]!;
      const variant = r();
      if (variant < 0.4) {
        const n = pick(SIZES);
        const p1 = multiply(cur, input([kk, n]));
        const p2 = p1 === null ? null : multiply(cur, input([kk, n]));
        if (p1 !== null && p2 !== null) {
          const gate = forGradient ? elementwise(pick(['relu', 'abs', 'leaky']), p2, null) : r() < 0.5 ? elementwise(pick(Object.keys(TRANSCENDENTAL)), p2, null) : p2;
          next = elementwise(r() < 0.7 ? 'mul' : 'add', p1, gate);
        }
      } else if (variant < 0.7) {
        const p = multiply(cur, input([kk, kk]));
        if (p !== null) next = elementwise('add', cur, elementwise(forGradient || r() < 0.5 ? pick(['relu', 'leaky']) : pick(Object.keys(TRANSCENDENTAL)), p, null));
      } else {
        const t = push({ op: 'permute', args: [cur], p: [[...shape.keys()].map((i) => (i < shape.length - 2 ? i : 2 * shape.length - 3 - i))], shape: [...shape.slice(0, -2), kk, shape[shape.length - 2]!], B: x.B, s: x.s, E: x.E, exact: x.exact });
        const scores = multiply(cur, t);
        if (scores !== null) {
          const n = nodes[scores]!;
          const m = n.shape[n.shape.length - 1]!;
          const weights = forGradient
            ? elementwise('clamp', scores, null, [1])
            : push({ op: 'softmax', args: [scores], p: [-1], shape: [...n.shape], B: 1, s: 0, E: 0.5 * n.E + 2 * m * u + 4 * ulpOf(1), exact: false });
          next = multiply(weights, cur);
        }
      }
    } else if (k < 0.35 && shape.length >= 1) {
      // A product: by a new weight [k, n], a batched [..., k, n], an earlier value, or x by its
      // own transpose; or a new matrix times x.
      const kk = shape[shape.length - 1]!;
      const variant = r();
      let lhs = cur;
      let rhs: number;
      if (variant < 0.3 || shape.length < 2) rhs = input([kk, pick(SIZES)]);
      else if (variant < 0.4) {
        // A weight stored transposed (x @ wᵀ, as a linear layer keeps it).
        const n = pick(SIZES);
        const w = input([n, kk]);
        rhs = push({ op: 'permute', args: [w], p: [[1, 0]], shape: [kk, n], B: 3, s: 0, E: 0, exact: true });
      }
      else if (variant < 0.6) rhs = input([...shape.slice(0, -2).map((d) => (r() < 0.3 ? 1 : d)), kk, pick(SIZES)]);
      else if (variant < 0.75) {
        rhs = push({ op: 'permute', args: [cur], p: [[...shape.keys()].map((i) => (i < shape.length - 2 ? i : 2 * shape.length - 3 - i))], shape: [...shape.slice(0, -2), kk, shape[shape.length - 2]!], B: x.B, s: x.s, E: x.E, exact: x.exact });
      } else if (variant < 0.9) {
        const candidates = nodes.map((n, i) => [n, i] as const).filter(([n, i]) => i !== cur && n.shape.length >= 2 && n.shape[n.shape.length - 2] === kk && broadcast(shape.slice(0, -2), n.shape.slice(0, -2)) !== null);
        rhs = candidates.length ? pick(candidates)[1] : input([kk, pick(SIZES)]);
      } else {
        lhs = input([...shape.slice(0, -2), pick(SIZES), shape[shape.length - 2]!]);
        rhs = cur;
      }
      const product = multiply(lhs, rhs);
      if (product !== null) {
        next = product;
        // Half the products get a layer's epilogue: a broadcast bias, then an activation.
        if (r() < 0.5) {
          next = elementwise(pick(['add', 'add', 'sub', 'mul']), next, input(broadcastOperand(nodes[product]!.shape)));
          if (r() < 0.7) {
            const op = !forGradient && r() < 0.6 ? pick(Object.keys(TRANSCENDENTAL)) : pick(['relu', 'leaky', 'abs']);
            next = elementwise(op, next, null);
          }
        }
      }
    } else if (k < 0.45) {
      // A binary op with a broadcast operand, an earlier value of a broadcastable shape, or x itself.
      const variant = r();
      let other: number;
      if (variant < 0.6) other = input(broadcastOperand(shape));
      else {
        const candidates = nodes.map((n, i) => [n, i] as const).filter(([n]) => { const b = broadcast(shape, n.shape); return b !== null && b.length === shape.length && b.every((d, i) => d === shape[i]); });
        other = pick(candidates)[1];
      }
      const op = pick(BINARY.filter((o) => !(forGradient && o === 'maximum')));
      next = r() < 0.5 ? elementwise(op, cur, other) : elementwise(op, other, cur);
      // The other order of a broadcast can grow the shape (a bias first): keep it only when equal.
      if (!nodes[next]!.shape.every((d, i) => d === shape[i]) || nodes[next]!.shape.length !== shape.length) {
        nodes.pop();
        next = elementwise(op, cur, other);
      }
    } else if (k < 0.62) {
      const transcendental = !forGradient && r() < 0.45;
      const op = transcendental ? pick(Object.keys(TRANSCENDENTAL)) : pick(UNARY_EXACT);
      next = op === 'square' && x.B > 64 ? elementwise('clamp', cur, null, [3]) : elementwise(op, cur, null, op === 'clamp' ? [1 + Math.floor(r() * 4)] : []);
    } else if (k < 0.66 && shape.length >= 1) {
      // A scan (exact: integer partial sums) or a softmax along an axis.
      const axis = Math.floor(r() * shape.length);
      const n = shape[axis]!;
      if (forGradient || r() < 0.5) next = push({ op: 'cumsum', args: [cur], p: [axis], shape: [...shape], B: n * x.B, s: x.s, E: x.exact && n * x.B * 2 ** x.s < EXACT ? 0 : n * x.E + 2 * n * u * n * x.B, exact: x.exact });
      else {
        // |∂softmaxᵢ/∂x| sums to 2sᵢ(1 − sᵢ) ≤ ½ along a row; the exponentials' sum in other orders: 2n·u relative.
        next = push({ op: 'softmax', args: [cur], p: [axis], shape: [...shape], B: 1, s: 0, E: 0.5 * x.E + 2 * n * u + 4 * ulpOf(1), exact: false });
      }
    } else if (k < 0.74 && shape.length >= 1) {
      const axis = Math.floor(r() * shape.length);
      const keep = r() < 0.5;
      const op = forGradient ? 'sum' : pick(['sum', 'sum', 'max', 'mean']);
      const n = shape[axis]!;
      const out = keep ? shape.map((d, i) => (i === axis ? 1 : d)) : shape.filter((_, i) => i !== axis);
      if (op === 'max') next = push({ op, args: [cur], p: [axis, keep], shape: out, B: x.B, s: x.s, E: x.E, exact: x.exact });
      else {
        const B = n * x.B;
        const exactSum = x.exact && B * 2 ** x.s < EXACT;
        const sumE = exactSum ? 0 : n * x.E + 2 * n * u * B;
        if (op === 'sum') next = push({ op, args: [cur], p: [axis, keep], shape: out, B, s: x.s, E: sumE, exact: exactSum });
        else next = push({ op, args: [cur], p: [axis, keep], shape: out, B: x.B, s: x.s, E: sumE / n + 2 * ulpOf(x.B), exact: false });
      }
    } else if (k < 0.82) {
      // Reshape: merge two adjacent axes, split one into two factors, or insert a 1.
      const variant = r();
      let out: number[] | null = null;
      if (variant < 0.4 && shape.length >= 2) {
        const i = Math.floor(r() * (shape.length - 1));
        out = [...shape.slice(0, i), shape[i]! * shape[i + 1]!, ...shape.slice(i + 2)];
      } else if (variant < 0.85 && shape.length < 4) {
        const i = Math.floor(r() * shape.length);
        const d = shape[i]!;
        const factors = Array.from({ length: d }, (_, f) => f + 1).filter((f) => f > 1 && f < d && d % f === 0);
        if (factors.length) { const f = pick(factors); out = [...shape.slice(0, i), f, d / f, ...shape.slice(i + 1)]; }
      } else if (shape.length < 4) {
        const i = Math.floor(r() * (shape.length + 1));
        out = [...shape.slice(0, i), 1, ...shape.slice(i)];
      }
      if (out) next = push({ op: 'reshape', args: [cur], p: [out], shape: out, B: x.B, s: x.s, E: x.E, exact: x.exact });
    } else if (k < 0.86 && shape.length >= 1) {
      // A comparison cast to float (0 or 1), an exact value through int32 and back, or a new
      // leading axis broadcast (a stride-0 operand for what follows).
      const variant = r();
      if (variant < 0.35) next = push({ op: 'positive', args: [cur], p: [], shape: [...shape], B: 1, s: 0, E: x.exact ? 0 : 1, exact: x.exact });
      else if (variant < 0.6 && x.exact && !forGradient) next = push({ op: 'truncate', args: [cur], p: [], shape: [...shape], B: x.B, s: 0, E: 0, exact: true });
      else if (shape.length < 4 && count(shape) * 3 <= MAX) {
        const out = [pick([2, 3]), ...shape];
        next = push({ op: 'expand', args: [cur], p: [out], shape: out, B: x.B, s: x.s, E: x.E, exact: x.exact });
      }
    } else if (k < 0.9 && shape.length >= 2) {
      const perm = [...shape.keys()];
      if (r() < 0.5) [perm[perm.length - 1], perm[perm.length - 2]] = [perm[perm.length - 2]!, perm[perm.length - 1]!];
      else for (let i = perm.length - 1; i > 0; i--) { const j = Math.floor(r() * (i + 1)); [perm[i], perm[j]] = [perm[j]!, perm[i]!]; }
      next = push({ op: 'permute', args: [cur], p: [perm], shape: perm.map((i) => shape[i]!), B: x.B, s: x.s, E: x.E, exact: x.exact });
    } else if (k < 0.95 && shape.length >= 1) {
      const axis = Math.floor(r() * shape.length);
      const d = shape[axis]!;
      if (d > 1) {
        const begin = Math.floor(r() * (d - 1));
        const size = 1 + Math.floor(r() * (d - begin - 1));
        next = push({ op: 'slice', args: [cur], p: [shape.map((_, i) => (i === axis ? begin : 0)), shape.map((e, i) => (i === axis ? size : e))], shape: shape.map((e, i) => (i === axis ? size : e)), B: x.B, s: x.s, E: x.E, exact: x.exact });
      }
    } else if (shape.length >= 1 && count(shape) * 2 <= MAX) {
      // Concat with an earlier value, a new input, or itself (along an axis where shapes agree).
      const axis = Math.floor(r() * shape.length);
      const candidates = nodes.map((n, i) => [n, i] as const).filter(([n]) => n.shape.length === shape.length && n.shape.every((d, i) => i === axis || d === shape[i]));
      const other = r() < 0.3 ? input(shape.map((d, i) => (i === axis ? pick([1, 3, 4]) : d))) : pick(candidates)[1];
      const y = nodes[other]!;
      next = push({
        op: 'concat', args: [cur, other], p: [axis], shape: shape.map((d, i) => (i === axis ? d + y.shape[axis]! : d)),
        B: Math.max(x.B, y.B), s: Math.max(x.s, y.s), E: Math.max(x.E, y.E), exact: x.exact && y.exact,
      });
    }
    if (next !== null) cur = next;
  }
  // The last value, and some earlier ones (a product returned and consumed again).
  const outputs = [cur];
  for (let i = 0; i < nodes.length - 1; i++) if (nodes[i]!.op !== 'input' && i !== cur && r() < 0.3) outputs.push(i);
  return { nodes, inputs, outputs };
}

/** The function of a program: inputs in, outputs out. */
const evaluate = (prog: Program) => evaluateProgram(prog, apply);

/**
 * The gradient of Σᵢ sum(outputᵢ · cᵢ) (cᵢ integers in [−2, 2]) with respect to every input, and
 * whether it is exact: a bound on each value's gradient, propagated back through the products'
 * and broadcasts' sums (each op's terms times the other operand's bound), stays below 2²² at the
 * program's finest fraction.
 */
function gradientExact(prog: Program): boolean {
  const G = prog.nodes.map(() => 0);
  for (const o of prog.outputs) G[o]! += 2;
  let digits = 0;
  for (const n of prog.nodes) digits += n.op === 'half' ? 1 : n.op === 'leaky' ? 2 : 0;
  let largest = 0;
  for (let i = prog.nodes.length - 1; i >= 0; i--) {
    const n = prog.nodes[i]!;
    const g = G[i]!;
    largest = Math.max(largest, g, n.B);
    const terms = (arg: number, extra = 1) => (count(n.shape) * extra) / Math.max(1, count(prog.nodes[arg]!.shape));
    if (n.op === 'matmul') {
      const [a, b] = n.args.map((j) => prog.nodes[j]!);
      const K = a!.shape[a!.shape.length - 1]!;
      G[n.args[0]!]! += g * b!.B * terms(n.args[0]!, K);
      G[n.args[1]!]! += g * a!.B * terms(n.args[1]!, K);
      largest = Math.max(largest, g * b!.B * terms(n.args[0]!, K), g * a!.B * terms(n.args[1]!, K));
    } else if (n.op === 'mul') {
      G[n.args[0]!]! += g * prog.nodes[n.args[1]!]!.B * terms(n.args[0]!);
      G[n.args[1]!]! += g * prog.nodes[n.args[0]!]!.B * terms(n.args[1]!);
    } else if (n.op === 'square') G[n.args[0]!]! += 2 * g * prog.nodes[n.args[0]!]!.B;
    else if (n.op === 'cumsum') G[n.args[0]!]! += g * n.shape[n.p[0] as number]!;
    else for (const a of new Set(n.args)) G[a]! += g * terms(a) * n.args.filter((x) => x === a).length;
  }
  return Math.max(largest, ...G) * 2 ** (2 * digits) < EXACT;
}

async function check(seed: number, forGradient: boolean): Promise<string | null> {
  const prog = generate(seed, forGradient);
  const r = hostRandom(seed ^ 0x5bd1e995);
  const data = prog.inputs.map((i) => Float32Array.from({ length: count(prog.nodes[i]!.shape) }, () => Math.floor(r() * 7) - 3));
  const outs = prog.outputs.map((i) => prog.nodes[i]!);
  const cots = outs.map((n) => Float32Array.from({ length: count(n.shape) }, () => Math.floor(r() * 5) - 2));
  // Some arguments are views: a transpose of a stored [..., n, m] (strided reads of jit's inputs).
  // Or a slice: rows 1 onwards of a stored [n + 1, ...] (an offset into the buffer).
  const views = prog.inputs.map((i) => (prog.nodes[i]!.shape.length >= 2 && r() < 0.25 ? 'transposed' : prog.nodes[i]!.shape.length >= 1 && r() < 0.15 ? 'sliced' : ''));
  const argument = (j: number, device: string) => {
    const shape = prog.nodes[prog.inputs[j]!]!.shape;
    if (views[j] === 'sliced') {
      const row = count(shape) / shape[0]!;
      const stored = Float32Array.from({ length: row + count(shape) }, (_, i) => (i < row ? 3 - (i % 7) : data[j]![i - row]!));
      return T.tensor(stored, { shape: [shape[0]! + 1, ...shape.slice(1)], device }).slice(shape.map((_, i) => (i === 0 ? 1 : 0)), shape);
    }
    if (!views[j]) return T.tensor(data[j]!, { shape, device });
    const perm = [...shape.keys()].map((i) => (i < shape.length - 2 ? i : 2 * shape.length - 3 - i));
    return T.tensor(data[j]!, { shape: perm.map((i) => shape[i]!), device }).permute(perm);
  };
  const make = (device: string) => [
    ...prog.inputs.map((_, j) => argument(j, device)),
    ...(forGradient ? outs.map((n, j) => T.tensor(cots[j]!, { shape: n.shape, device })) : []),
  ];
  const f = evaluate(prog);
  const nIn = prog.inputs.length;
  const fn = forGradient
    ? (...xs: Tensor[]) => grad((...ys: Tensor[]) => f(...ys.slice(0, nIn)).reduce((acc, o, j) => acc.add(T.sum(o.mul(ys[nIn + j]!))), T.zeros([], { device: ys[0]!.device })), { argnums: [...Array(nIn).keys()] })(...xs) as Tensor[]
    : f;
  // Which outputs are exact, and the tolerance of the others.
  const exactGradient = forGradient && gradientExact(prog);
  const tolerance = forGradient ? prog.inputs.map(() => (exactGradient ? 0 : null)) : outs.map((n) => (n.exact ? 0 : n.E));
  const context = () => `seed ${seed}${forGradient ? ' (gradient)' : ''}${views.some((v) => v) ? `, arguments given as views: ${views.flatMap((v, j) => (v ? [`v${prog.inputs[j]} ${v}`] : [])).join(', ')}` : ''}, program:\n${showProgram(prog)}`;
  const args = make(dev);
  const compiled = jit(fn);
  let got: Tensor[];
  try {
    got = compiled(...args);
    await got[0]!.data();
  } catch (e) {
    return `${context()}\njit threw: ${(e as Error).message}`;
  }
  const want = T.tidy(() => fn(...args));
  const onCpu = T.tidy(() => fn(...make('cpu')));
  const problems: string[] = [];
  for (let i = 0; i < want.length; i++) {
    const tol = tolerance[i];
    if (tol === null || tol === undefined) continue;
    const w = await want[i]!.data();
    const g = await got[i]!.data();
    if (got[i]!.shape.join() !== want[i]!.shape.join()) problems.push(`output ${i}: shape [${got[i]!.shape}], eager [${want[i]!.shape}]`);
    const m = firstMismatch(w, g, () => tol);
    if (m) problems.push(`output ${i} against eager WebGPU: ${m}`);
    if (tol === 0) {
      const c = firstMismatch(await onCpu[i]!.data(), g, () => 0);
      if (c) problems.push(`output ${i} against the CPU: ${c}`);
    }
  }
  const kernels = problems.length ? compiled.lower(...args).kernels().map((k) => k.name).join(', ') : '';
  for (const t of [...args, ...got, ...want]) t.dispose();
  return problems.length ? `${context()}\n${problems.join('\n')}\nkernels: ${kernels}` : null;
}

const FORWARD = 24;
const GRADIENT = 8;
const range = process.env.SCORCH_HWFUZZ_SEEDS?.split('-').map(Number);
const seeds = (n: number) => (range ? Array.from({ length: range[1]! - range[0]! + 1 }, (_, i) => range[0]! + i) : Array.from({ length: n }, (_, i) => i + 1));

describe('random programs on the hardware path: jitted equals eager WebGPU and the CPU', () => {
  it(`${FORWARD} programs`, async () => {
    const failures: string[] = [];
    for (const seed of seeds(FORWARD)) {
      const problem = await check(seed, false).catch((e: Error) => `seed ${seed}: ${e.stack}`);
      if (problem) failures.push(problem);
    }
    expect(failures.join('\n\n')).toBe('');
  }, range ? 3_600_000 : 120_000);

  it(`jit(grad) of ${GRADIENT} programs`, async () => {
    const failures: string[] = [];
    for (const seed of seeds(GRADIENT)) {
      const problem = await check(1000 + seed, true).catch((e: Error) => `seed ${1000 + seed} (gradient): ${e.stack}`);
      if (problem) failures.push(problem);
    }
    expect(failures.join('\n\n')).toBe('');
  }, range ? 3_600_000 : 120_000);
});
