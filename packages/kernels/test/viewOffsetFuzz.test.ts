// Random jitted programs whose inputs are views of larger tensors, each compiled program called on
// several views of the same shapes. A WebGPU fused kernel reads a program input's offset in its
// buffer from the kernel's uniform block (compiler/writer.ts inputOffset), so one compiled
// pipeline serves views at any offset; only offset % 4 shapes the code (the vec4 path). Here each
// program is jitted once and called on 7 layouts of its inputs: four at offsets of every residue
// mod 4, one at the first's residue but another offset (the same code, other uniform words), then
// the first layout again and one from the middle (a variant met again). The views:
// - flat: elements [o, o + n) of a flat pool, reshaped (contiguous, any offset o);
// - rows: rows [r, r + d₀) of a [d₀ + 8, ...] base (contiguous, offset r · row);
// - select: entry i of an [8, ...shape] base (contiguous, offset i · n);
// - selectInner: entry i along axis 1 of a [d₀, 8, ...] base (strided: the run copies it dense);
// - narrow: columns [c, c + d) of a base three columns wider (strided);
// - transposed: the transpose of a stored [..., m, n] at an offset of a pool (strided);
// - broadcast: a stored shape with some axes 1, at an offset of a pool, expanded (stride 0).
// A program's inputs are views of one shared pool per dtype (one buffer read by several inputs at
// moving offsets, as minibatches of one dataset), or of a pool each, or of one and the other on
// alternate calls (the inputs' buffers grouped differently from call to call).
//
// The programs: elementwise chains with broadcast operands, row, column and full sums and maxes
// (keepdims or not; one program in six over rows of up to 9001, reduced cooperatively in one or
// two passes; one in four from a layer's [rows, features] activations, whose products are tiled
// matmuls) read again through reshapes (a keepdims row sum of [b·s, h] as [b, s, 1]), 2-D and
// batched products with a bias and activation epilogue (some read through a reshape merging their
// rows), pairs of products sharing a bias computed from an input (b², b/2, tanh b), reshapes that
// merge or split axes, transposes, slices, concats, int32 round trips, comparisons cast to float,
// int32 and bool inputs (added after a cast, masks of where), scans, argmaxes, gathers at int32
// index inputs and their gradients (scatter-adds), tanh and sigmoid, and now and then a chain of
// more transcendentals than a software adapter's kernel computes inline (16). Each runs on the
// software path (llvmpipe as it is) and on the forced hardware path (helpers.ts
// hardwarePathDevice: matmul epilogues fused, hardware vec4 blocking).
//
// Every call is held against eager WebGPU on the same views, against the CPU in float64 on the
// same views of the same data, and the program jitted on the CPU in float64 against the CPU's
// eager run. Tolerances come from the arithmetic: inputs are integers in [−3, 3]; every value
// carries a bound B on its magnitude, a count s of binary fraction digits (×½ adds one) and a
// bound E on |computed − exact| for any float32 evaluation order:
// - a value of integers times 2⁻ˢ whose every partial sum stays below 2²² (B·2ˢ) is exact in
//   float32 in any order (E = 0): jitted, eager and float64 agree bit for bit;
// - tanh and sigmoid (mathLibrary.ts, Lipschitz 1 and ¼) are within 2 ULP of the exact result
//   (mathLibrary.test.ts measures tanh; sigmoid is exp, within 1 ULP, and three roundings), so
//   E = L·E_in + 4 ulp(1);
// - add: E_a + E_b + ulp(B); mul: E_a·B_b + E_b·B_a + E_a·E_b + ulp(B); a sum or scan of n terms:
//   n·E + n·u·n·B (any order is within (n − 1)·u·Σ|terms| of the exact sum); a product's K terms
//   the same with the terms' own errors plus their roundings; max, gathers, reshapes and copies
//   carry E unchanged; a value past the exact range that looked exact is off by one ulp(B).
// Jitted and eager WebGPU are each within E of the exact value and the float64 runs far closer,
// so the comparisons with WebGPU allow 2E and the CPU's two float64 runs E. Seeds are fixed
// (1 to PROGRAMS, and 1001 onwards on the hardware path; about 30 s on llvmpipe with a cold
// shader cache), SCORCH_VIEWFUZZ_SEEDS=a-b runs others on both paths (seeds 1 to 450 passed on
// both when this was written) and SCORCH_VIEWFUZZ_STATS=1 prints counts of ops, views, calls and
// kernels. A failure prints the seed, the path, the program, each input's view at the failing call
// and the kernels.
// A check that the fuzz sees the defects it is for: with the lowering cache keyed by the inputs'
// offsets mod 4 instead of the offsets (a lowering's uniform words then stale for a new offset of
// a residue seen before), 59 of the 60 programs fail; with the vec4 path taken at unaligned
// offsets (writer.ts vectorAddress without its offset check), 17 of the 60.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grad, jit } from '@scorch/autograd';
import * as T from '@scorch/tensor';
import type { WebGPUHandle } from '@scorch/kernels';
import { firstMismatch, gpuDevice, hardwarePathDevice, hostRandom } from './helpers.js';
import { EXACT, type FuzzProgram, applySharedOp, broadcast, evaluateProgram, count, showProgram, ulpOf } from './fuzzOps.js';

type Tensor = T.Tensor;

let gpu: WebGPUHandle;
let dev = 'webgpu';
beforeAll(async () => {
  gpu = await gpuDevice();
  dev = gpu.device;
});

const u = 2 ** -24;

interface Node {
  op: string;
  args: number[];
  p: (number | number[] | boolean)[];
  shape: number[];
  /** Bound on |value|. */
  B: number;
  /** Binary fraction digits of an exact value. */
  s: number;
  /** Bound on |float32 value − exact value|; 0 for an exact value. */
  E: number;
  exact: boolean;
  /** An input's dtype (int32 and bool inputs are read by where and by casts); values are float. */
  dtype?: 'int32' | 'bool' | 'index';
  /** An index input's values are in [0, extent). */
  extent?: number;
}

const TRANSCENDENTAL: Record<string, number> = { tanh: 1, sigmoid: 0.25 };

type Program = FuzzProgram<Node>;

function apply(n: Node, xs: Tensor[]): Tensor {
  const [a, b] = [xs[n.args[0]!]!, xs[n.args[1]!]!];
  const p = n.p;
  const shared = applySharedOp(n.op, a, b, p);
  if (shared) return shared;
  switch (n.op) {
    case 'sum': return p[0] === null ? T.sum(a) : a.sum(p[0] as number, p[1] as boolean);
    case 'where': return T.where(a, b, b.neg());
    case 'addInt': return b.add(a.cast(b.dtype));
    case 'argmax': return a.argmax(p[0] as number).cast(a.dtype);
    case 'gather': return T.indexSelect(a, p[0] as number, b);
    // Gather's gradient: a scatter-add of the cotangent c (the third argument) at the indices.
    case 'scatter': return grad((z: Tensor) => T.sum(T.indexSelect(z, p[0] as number, b).mul(xs[n.args[2]!]!)))(a);
  }
  throw new Error(`unknown op ${n.op}`);
}

function generate(seed: number): Program {
  const r = hostRandom(seed);
  const pick = <X,>(xs: readonly X[]): X => xs[Math.floor(r() * xs.length)]!;
  const SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33];
  const nodes: Node[] = [];
  const inputs: number[] = [];
  const MAX = 20_000;
  const input = (shape: number[], dtype?: Node['dtype'], extent?: number): number => {
    nodes.push({ op: 'input', args: [], p: [], shape, B: dtype === 'bool' ? 1 : 3, s: 0, E: 0, exact: true, dtype, extent });
    inputs.push(nodes.length - 1);
    return nodes.length - 1;
  };
  const push = (n: Node): number => {
    // An exact-looking value past the exact range has been rounded: one ulp of its bound.
    const exact = n.exact && n.E === 0 && n.B * 2 ** n.s < EXACT;
    nodes.push({ ...n, exact, E: exact ? 0 : Math.max(n.E, ulpOf(n.B)) });
    return nodes.length - 1;
  };
  const same = (x: Node, op: string, args: number[], p: Node['p'], shape: number[]) => push({ op, args, p, shape, B: x.B, s: x.s, E: x.E, exact: x.exact });
  const elementwise = (op: string, a: number, b: number | null, p: Node['p'] = []): number => {
    const x = nodes[a]!;
    const y = b === null ? null : nodes[b]!;
    const shape = y ? broadcast(x.shape, y.shape)! : x.shape;
    let B = x.B, s = x.s, E = x.E, exact = x.exact;
    if (op in TRANSCENDENTAL) { B = 1; s = 0; E = TRANSCENDENTAL[op]! * x.E + 4 * ulpOf(1); exact = false; }
    else if (op === 'half') { B = x.B / 2; s = x.s + 1; E = x.E / 2; }
    else if (op === 'clamp') { B = Math.min(x.B, p[0] as number); }
    else if (op === 'positive') { B = 1; s = 0; E = x.exact ? 0 : 1; }
    else if (op === 'truncate') { s = 0; }
    else if (y) {
      exact = x.exact && y.exact;
      if (op === 'add' || op === 'sub') { B = x.B + y.B; s = Math.max(x.s, y.s); E = x.E + y.E + (exact ? 0 : ulpOf(B)); }
      else if (op === 'mul') { B = x.B * y.B; s = x.s + y.s; E = x.E * y.B + y.E * x.B + x.E * y.E + (exact ? 0 : ulpOf(B)); }
      else { B = Math.max(x.B, y.B); s = Math.max(x.s, y.s); E = Math.max(x.E, y.E); }
    }
    return push({ op, args: b === null ? [a] : [a, b], p, shape: [...shape], B, s, E, exact });
  };
  /** Clamped to [−3, 3] where the value is large (keeps products and sums in the exact range). */
  const small = (a: number): number => (nodes[a]!.B > 3 || nodes[a]!.s > 2 ? elementwise('clamp', a, null, [3]) : a);
  const multiply = (lhs: number, rhs: number): number | null => {
    lhs = small(lhs);
    rhs = small(rhs);
    const [a, b] = [nodes[lhs]!, nodes[rhs]!];
    const K = a.shape[a.shape.length - 1]!;
    const lead = broadcast(a.shape.slice(0, -2), b.shape.slice(0, -2));
    if (lead === null) return null;
    const outShape = [...lead, ...(a.shape.length >= 2 ? [a.shape[a.shape.length - 2]!] : []), b.shape[b.shape.length - 1]!];
    if (count(outShape) > MAX) return null;
    const exact = a.exact && b.exact;
    const B = K * a.B * b.B;
    const E = exact ? 0 : K * (a.E * b.B + b.E * a.B + a.E * b.E) + 2 * K * u * B;
    return push({ op: 'matmul', args: [lhs, rhs], p: [], shape: outShape, B, s: a.s + b.s, E, exact });
  };
  const sum = (a: number, axis: number | null, keep: boolean): number => {
    const x = nodes[a]!;
    const n = axis === null ? count(x.shape) : x.shape[axis]!;
    const shape = axis === null ? [] : keep ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis);
    const B = n * x.B;
    const exact = x.exact && B * 2 ** x.s < EXACT;
    return push({ op: 'sum', args: [a], p: [axis as number, keep], shape, B, s: x.s, E: exact ? 0 : n * x.E + n * u * B, exact });
  };
  /** A new operand broadcast against shape: its last axis, or some axes 1 and some leading axes dropped. */
  const broadcastOperand = (shape: readonly number[]): number[] => {
    if (shape.length === 0) return [];
    const kind = r();
    if (kind < 0.3) return [shape[shape.length - 1]!];
    const drop = kind < 0.5 ? Math.floor(r() * shape.length) : 0;
    return shape.slice(drop).map((d) => (r() < 0.4 ? 1 : d));
  };
  const activation = (x: number): number => {
    const k = r();
    return k < 0.3 ? elementwise('relu', x, null) : k < 0.5 ? elementwise(pick(['tanh', 'sigmoid']), x, null) : k < 0.65 ? elementwise('abs', x, null) : x;
  };
  const bias = (x: number): number => elementwise(pick(['add', 'add', 'sub', 'mul']), x, input(broadcastOperand(nodes[x]!.shape)));

  const rank = 1 + Math.floor(r() * 3);
  // One program in six starts from long rows (a reduction over them is cooperative, in two
  // passes past 8192 elements: the epilogue in the second).
  // One in four starts from a layer's activations, [rows, features] or batched (their products
  // tiled matmuls, with epilogues on the hardware path).
  const start = r();
  let cur = input(
    start < 1 / 6 ? [pick([1, 2, 3]), pick([70, 129, 4099, 9001])]
      : start < 5 / 12 ? [...(r() < 0.4 ? [pick([2, 3])] : []), pick([8, 16, 32, 64, 65]), pick([4, 8, 16, 33])]
        : Array.from({ length: rank }, () => pick(SIZES)),
  );
  const steps = 2 + Math.floor(r() * 6);
  for (let step = 0; step < steps; step++) {
    const x = nodes[cur]!;
    const shape = x.shape;
    const k = r();
    let next: number | null = null;
    if (k < 0.07 && shape.length >= 1) {
      // Two products of x sharing a bias computed from an input view (b·b, b/2, tanh(b) or b
      // itself, broadcast into both), gated or summed: the planner places such an operand before
      // the products that read it.
      const kk = shape[shape.length - 1]!;
      const n = pick([1, 4, 8, 17, 33]);
      const raw = input(r() < 0.5 ? [n] : [...shape.slice(0, -1).map((d) => (r() < 0.5 ? 1 : d)), n]);
      const b = pick([() => elementwise('mul', raw, raw), () => elementwise('half', raw, null), () => elementwise('tanh', raw, null), () => raw])();
      const p1 = multiply(cur, input([kk, n]));
      const p2 = p1 === null ? null : multiply(cur, input([kk, n]));
      if (p1 !== null && p2 !== null) {
        const [q1, q2] = [elementwise('add', p1, b), elementwise('add', p2, b)];
        next = r() < 0.6 ? elementwise('mul', small(q1), small(activation(q2))) : elementwise('add', q1, q2);
      }
    } else if (k < 0.25 && shape.length >= 1) {
      // A product (2-D weight, transposed weight, batched, or a new matrix times x), then perhaps
      // a bias and activation epilogue, some read through a reshape merging a batched product's rows.
      const kk = shape[shape.length - 1]!;
      const variant = r();
      let lhs = cur;
      let rhs: number;
      const n = pick([1, 3, 4, 8, 16, 17, 32, 33, 64, 65]);
      if (variant < 0.35 || shape.length < 2) rhs = input([kk, n]);
      else if (variant < 0.5) rhs = same(nodes[input([n, kk])]!, 'permute', [nodes.length - 1], [[1, 0]], [kk, n]);
      else if (variant < 0.8) rhs = input([...shape.slice(0, -2).map((d) => (r() < 0.3 ? 1 : d)), kk, n]);
      else { lhs = input([...shape.slice(0, -2), pick([1, 3, 8, 33, 65]), shape[shape.length - 2]!]); rhs = cur; }
      const product = multiply(lhs, rhs);
      if (product !== null) {
        next = product;
        const ps = nodes[product]!.shape;
        if (ps.length === 3 && r() < 0.4) next = same(nodes[product]!, 'reshape', [product], [[ps[0]! * ps[1]!, ps[2]!]], [ps[0]! * ps[1]!, ps[2]!]);
        if (r() < 0.7) next = activation(bias(next));
      }
    } else if (k < 0.38) {
      // A binary op with a broadcast operand (a new input) or an earlier value that broadcasts to x.
      let other: number;
      if (r() < 0.6) other = input(broadcastOperand(shape));
      else {
        const candidates = nodes.map((n, i) => [n, i] as const).filter(([n]) => { if (n.dtype) return false; const b = broadcast(shape, n.shape); return b !== null && b.length === shape.length && b.every((d, i) => d === shape[i]); });
        other = pick(candidates)[1];
      }
      const op = pick(['add', 'sub', 'mul', 'maximum']);
      next = elementwise(op, op === 'mul' ? small(cur) : cur, op === 'mul' ? small(other) : other);
    } else if (k < 0.44) {
      // An int32 or bool input (a view too, in its own pool): added after a cast, or a mask.
      const other = r() < 0.5 ? input(broadcastOperand(shape), 'int32') : input(broadcastOperand(shape), 'bool');
      if (nodes[other]!.dtype === 'int32') next = push({ op: 'addInt', args: [other, cur], p: [], shape: [...shape], B: x.B + 3, s: x.s, E: x.E + (x.exact ? 0 : ulpOf(x.B + 3)), exact: x.exact });
      else next = same(x, 'where', [other, cur], [], [...shape]);
    } else if (k < 0.5 && shape.length >= 1) {
      // A scan, an argmax (cast to float), a gather at an index input (a view of an int32 pool of
      // indices), or a gather's gradient (a scatter-add of a cotangent input at those indices).
      const axis = Math.floor(r() * shape.length);
      const d = shape[axis]!;
      const v = r();
      if (v < 0.3) {
        const B = d * x.B;
        const exact = x.exact && B * 2 ** x.s < EXACT;
        next = push({ op: 'cumsum', args: [cur], p: [axis], shape: [...shape], B, s: x.s, E: exact ? 0 : d * x.E + d * u * B, exact });
      } else if (v < 0.5 && x.exact) {
        next = push({ op: 'argmax', args: [cur], p: [axis], shape: shape.filter((_, i) => i !== axis), B: d, s: 0, E: 0, exact: true });
      } else {
        const m = pick([1, 3, 4, 7, 9]);
        const idx = input([m], 'index', d);
        const gathered = shape.map((e, i) => (i === axis ? m : e));
        if (v < 0.75) next = same(x, 'gather', [cur, idx], [axis], gathered);
        else {
          const c = input(gathered);
          next = push({ op: 'scatter', args: [cur, idx, c], p: [axis], shape: [...shape], B: 3 * m, s: 0, E: 0, exact: true });
        }
      }
    } else if (k < 0.54) {
      const op = pick(['relu', 'neg', 'abs', 'half', 'clamp', 'tanh', 'sigmoid', 'positive', 'truncate']);
      if (op === 'truncate' && !x.exact) next = elementwise('relu', cur, null);
      else next = elementwise(op, cur, null, op === 'clamp' ? [1 + Math.floor(r() * 3)] : []);
    } else if (k < 0.53) {
      // More transcendentals than a software adapter's kernel computes inline (16): t ↦ tanh(t)·… .
      let t = elementwise('tanh', cur, null);
      const length = 12 + Math.floor(r() * 10);
      for (let i = 1; i < length; i++) t = elementwise(i % 2 ? 'sigmoid' : 'tanh', t, null);
      next = t;
    } else if (k < 0.68 && shape.length >= 1) {
      // A reduction: row, column or full; some keepdims; then perhaps read again through a reshape
      // against the value it came from (x − rowsum(x) as [b, s, 1] for x [b·s, h]).
      const v = r();
      if (v < 0.15) next = sum(cur, null, false);
      else {
        const axis = v < 0.55 ? shape.length - 1 : Math.floor(r() * shape.length);
        const keep = r() < 0.5;
        next = r() < 0.7 ? sum(cur, axis, keep) : same(x, 'max', [cur], [axis, keep], keep ? shape.map((d, i) => (i === axis ? 1 : d)) : shape.filter((_, i) => i !== axis));
        if (keep && shape.length === 2 && axis === 1 && r() < 0.6) {
          const M = shape[0]!;
          const b = pick([1, ...[2, 3, 4].filter((f) => M % f === 0)]);
          const grouped = same(nodes[next]!, 'reshape', [next], [[b, M / b, 1]], [b, M / b, 1]);
          const x3 = same(x, 'reshape', [cur], [[b, M / b, shape[1]!]], [b, M / b, shape[1]!]);
          next = elementwise(pick(['sub', 'add', 'maximum']), x3, grouped);
        }
      }
    } else if (k < 0.78) {
      // Reshape: merge two adjacent axes, split one into two factors, or insert a 1.
      const variant = r();
      let out: number[] | null = null;
      if (variant < 0.4 && shape.length >= 2) {
        const i = Math.floor(r() * (shape.length - 1));
        out = [...shape.slice(0, i), shape[i]! * shape[i + 1]!, ...shape.slice(i + 2)];
      } else if (variant < 0.85 && shape.length < 4 && shape.length >= 1) {
        const i = Math.floor(r() * shape.length);
        const d = shape[i]!;
        const factors = Array.from({ length: d }, (_, f) => f + 1).filter((f) => f > 1 && f < d && d % f === 0);
        if (factors.length) { const f = pick(factors); out = [...shape.slice(0, i), f, d / f, ...shape.slice(i + 1)]; }
      } else if (shape.length < 4) {
        const i = Math.floor(r() * (shape.length + 1));
        out = [...shape.slice(0, i), 1, ...shape.slice(i)];
      }
      if (out) next = same(x, 'reshape', [cur], [out], out);
    } else if (k < 0.82 && shape.length >= 1) {
      // A slice inside the program (of an input, a view of a view; or of a computed value).
      const axis = Math.floor(r() * shape.length);
      const d = shape[axis]!;
      if (d > 1) {
        const begin = Math.floor(r() * (d - 1));
        const size = 1 + Math.floor(r() * (d - begin - 1));
        const out = shape.map((e, i) => (i === axis ? size : e));
        next = same(x, 'slice', [cur], [shape.map((_, i) => (i === axis ? begin : 0)), out], out);
      }
    } else if (k < 0.88 && shape.length >= 2) {
      const perm = [...shape.keys()];
      if (r() < 0.5) [perm[perm.length - 1], perm[perm.length - 2]] = [perm[perm.length - 2]!, perm[perm.length - 1]!];
      else for (let i = perm.length - 1; i > 0; i--) { const j = Math.floor(r() * (i + 1)); [perm[i], perm[j]] = [perm[j]!, perm[i]!]; }
      next = same(x, 'permute', [cur], [perm], perm.map((i) => shape[i]!));
    } else if (shape.length >= 1 && count(shape) * 2 <= MAX) {
      // Concat with a new input (itself a view) or an earlier value, along an axis where shapes agree.
      const axis = Math.floor(r() * shape.length);
      const candidates = nodes.map((n, i) => [n, i] as const).filter(([n]) => !n.dtype && n.shape.length === shape.length && n.shape.every((d, i) => i === axis || d === shape[i]));
      const other = r() < 0.5 ? input(shape.map((d, i) => (i === axis ? pick([1, 3, 4, 5]) : d))) : pick(candidates)[1];
      const y = nodes[other]!;
      next = push({
        op: 'concat', args: [cur, other], p: [axis], shape: shape.map((d, i) => (i === axis ? d + y.shape[axis]! : d)),
        B: Math.max(x.B, y.B), s: Math.max(x.s, y.s), E: Math.max(x.E, y.E), exact: x.exact && y.exact,
      });
    }
    if (next !== null) cur = next;
  }
  const outputs = [cur];
  for (let i = 0; i < nodes.length - 1; i++) if (nodes[i]!.op !== 'input' && i !== cur && r() < 0.25) outputs.push(i);
  return { nodes, inputs, outputs };
}

/** The function of a program: inputs in, outputs out. */
const evaluate = (prog: Program) => evaluateProgram(prog, apply);

// ---------------------------------------------------------------------------------------------
// Views

const VIEW_KINDS = ['flat', 'rows', 'select', 'selectInner', 'narrow', 'transposed', 'broadcast'] as const;
type ViewKind = (typeof VIEW_KINDS)[number];

/** Where one input's view sits at one call: its kind and position (an offset, row or index). */
interface View {
  kind: ViewKind;
  at: number;
  /** broadcast: which axes are stored as 1. */
  ones?: boolean[];
}

const describeView = (v: View) => `${v.kind} at ${v.at}${v.ones ? ` (axes stored as 1: ${v.ones.flatMap((o, i) => (o ? [i] : [])).join(',')})` : ''}`;

/** Positions a view of `kind` can take over its base (every residue mod 4 where the kind allows). */
const POSITIONS = 8;

/**
 * The view of `shape`, built from base tensors made by `make(shape, data offset)` (a dense base
 * holding the pool's data from that offset). Every kind reads `pool` from element `at`-dependent
 * positions, so views at other positions read other data.
 */
function buildView(view: View, shape: readonly number[], pool: Tensor): Tensor {
  const n = count(shape);
  const rank = shape.length;
  switch (view.kind) {
    case 'flat': return pool.slice([view.at], [n]).reshape(shape);
    case 'rows': {
      if (rank === 0) return pool.slice([view.at], [1]).reshape([]);
      const row = n / shape[0]!;
      const rows = shape[0]! + POSITIONS;
      return pool.slice([0], [rows * row]).reshape([rows, ...shape.slice(1)]).slice([view.at, ...shape.slice(1).map(() => 0)], [...shape]);
    }
    case 'select': return pool.slice([0], [POSITIONS * n]).reshape([POSITIONS, ...shape]).slice([view.at, ...shape.map(() => 0)], [1, ...shape]).reshape(shape);
    case 'selectInner': {
      if (rank === 0) return pool.slice([view.at], [1]).reshape([]);
      const base = [shape[0]!, POSITIONS, ...shape.slice(1)];
      return pool.slice([0], [count(base)]).reshape(base).slice([0, view.at, ...shape.slice(1).map(() => 0)], [shape[0]!, 1, ...shape.slice(1)]).reshape(shape);
    }
    case 'narrow': {
      if (rank === 0) return pool.slice([view.at], [1]).reshape([]);
      const base = [...shape.slice(0, -1), shape[rank - 1]! + 3];
      return T.narrow(pool.slice([0], [count(base)]).reshape(base), rank - 1, view.at % 4, shape[rank - 1]!);
    }
    case 'transposed': {
      if (rank < 2) return pool.slice([view.at], [n]).reshape(shape);
      const perm = [...shape.keys()].map((i) => (i < rank - 2 ? i : 2 * rank - 3 - i));
      return pool.slice([view.at], [n]).reshape(perm.map((i) => shape[i]!)).permute(perm);
    }
    case 'broadcast': {
      const stored = shape.map((d, i) => (view.ones![i] ? 1 : d));
      return pool.slice([view.at], [count(stored)]).reshape(stored).expand(shape);
    }
  }
}

/** Elements of the pool a view of `kind` needs past its position. */
function poolSize(kind: ViewKind, shape: readonly number[]): number {
  const n = Math.max(count(shape), 1);
  const rank = shape.length;
  switch (kind) {
    case 'rows': return rank ? (n / shape[0]!) * (shape[0]! + POSITIONS) : n + POSITIONS;
    case 'select': return POSITIONS * n;
    case 'selectInner': return rank ? POSITIONS * n : n + POSITIONS;
    case 'narrow': return rank ? (n / shape[rank - 1]!) * (shape[rank - 1]! + 3) + POSITIONS : n + POSITIONS;
    default: return n + POSITIONS;
  }
}

/**
 * The layouts of one program's inputs at each call: a kind per input, fixed for the program (the
 * kind decides whether the run copies the view dense), and per call a position; positions cover
 * every residue mod 4 and the last calls go back to earlier ones.
 */
function planViews(prog: Program, seed: number): { calls: View[][]; shared: boolean[]; mode: string } {
  const r = hostRandom(seed ^ 0x2545f491);
  const m = r();
  const mode = m < 0.4 ? 'one shared pool' : m < 0.8 ? 'a pool per input' : 'a shared pool every other call';
  const kinds = prog.inputs.map(() => {
    // Contiguous views (the offset a uniform word) most often: flat, rows, select.
    const k = r();
    return k < 0.3 ? 'flat' : k < 0.5 ? 'rows' : k < 0.62 ? 'select' : VIEW_KINDS[Math.floor(r() * VIEW_KINDS.length)]!;
  });
  const ones = prog.inputs.map((i) => prog.nodes[i]!.shape.map(() => r() < 0.5));
  const fresh = 5;
  const positions = prog.inputs.map(() => {
    const start = Math.floor(r() * 4);
    // Residues start, start + 1, ...: every residue mod 4 over the first four calls (flat at
    // offsets 0..7), then the first call's residue at another offset (one code, other words).
    const first = Array.from({ length: 4 }, (_, c) => (start + c) % 4 + 4 * Math.floor(r() * 2));
    return [...first, (first[0]! + 4) % POSITIONS];
  });
  const calls: View[][] = [];
  for (let c = 0; c < fresh; c++) calls.push(prog.inputs.map((_, j) => ({ kind: kinds[j]!, at: positions[j]![c]!, ones: kinds[j] === 'broadcast' ? ones[j] : undefined })));
  // Back to the first layout, and to one in the middle.
  calls.push(calls[0]!);
  calls.push(calls[1 + Math.floor(r() * (fresh - 1))]!);
  const shared = calls.map((_, c) => mode === 'one shared pool' || (mode !== 'a pool per input' && c % 2 === 0));
  return { calls, shared, mode };
}

/** SCORCH_VIEWFUZZ_STATS=1: counts of ops, view kinds and calls, printed at the end. */
const STATS = process.env.SCORCH_VIEWFUZZ_STATS === '1';
const tally = new Map<string, number>();
const count1 = (key: string, by = 1) => tally.set(key, (tally.get(key) ?? 0) + by);

async function check(seed: number, path: string): Promise<string | null> {
  const prog = generate(seed);
  const { calls, shared, mode } = planViews(prog, seed);
  if (STATS) {
    count1('programs');
    count1('calls', calls.length);
    count1(mode);
    for (const n of prog.nodes) count1(`op ${n.op}`);
    for (const v of calls[0]!) count1(`view ${v.kind}`);
  }
  const shapes = prog.inputs.map((i) => prog.nodes[i]!.shape);
  const r = hostRandom(seed ^ 0x5bd1e995);
  // Pools: one shared by every input (each input at its own start within it; one per dtype), and
  // one per input; each call takes its views from the shared pools or from the inputs' own.
  const sizes = shapes.map((s, j) => poolSize(calls[0]![j]!.kind, s));
  const starts = sizes.map((_, j) => Math.floor(r() * 5) + sizes.slice(0, j).reduce((a, b) => a + b, 0) * (r() < 0.3 ? 0 : 1));
  // Per input its pool's dtype: a shared pool is one per dtype (float, int32, bool).
  const dtypes = prog.inputs.map((i) => prog.nodes[i]!.dtype ?? 'float');
  // Index inputs have pools of their own (values in [0, extent)), shared or not.
  const KINDS = ['float', 'int32', 'bool'];
  const poolOf = (j: number, inShared: boolean) => (inShared && dtypes[j] !== 'index' ? KINDS.indexOf(dtypes[j]!) : 3 + j);
  const sharedLength = Math.max(...starts.map((s, j) => s + sizes[j]!));
  const poolKind = (p: number) => (p < 3 ? KINDS[p]! : dtypes[p - 3]!);
  const lengths = [...KINDS.map(() => sharedLength), ...sizes];
  const poolData = lengths.map((n, p) => Array.from({ length: n }, () => {
    const kind = poolKind(p);
    return kind === 'bool' ? Math.floor(r() * 2) : kind === 'index' ? Math.floor(r() * prog.nodes[prog.inputs[p - 3]!]!.extent!) : Math.floor(r() * 7) - 3;
  }));
  const pools = (device: string, float: 'float32' | 'float64') => poolData.map((d, p) => {
    const kind = poolKind(p);
    return T.tensor(d, { shape: [d.length], dtype: kind === 'float' ? float : kind === 'bool' ? 'bool' : 'int32', device });
  });
  const gpuPools = pools(dev, 'float32');
  const cpuPools = pools('cpu', 'float64');
  const viewsAt = (c: number, ps: Tensor[]) => calls[c]!.map((v, j) => {
    const p = poolOf(j, shared[c]!);
    const pool = p < 3 ? ps[p]!.slice([starts[j]!], [sizes[j]!]) : ps[p]!;
    return buildView(v, shapes[j]!, pool);
  });
  const f = evaluate(prog);
  const compiled = jit(f);
  const compiledCpu = jit(f);
  const outs = prog.outputs.map((i) => prog.nodes[i]!);
  const context = (c: number) => `seed ${seed} (${path}), call ${c} of ${calls.length}, ${mode} (this call ${shared[c] ? 'shared' : 'own pools'}), inputs: ${prog.inputs.map((i, j) => `v${i}${prog.nodes[i]!.dtype ? ` (${prog.nodes[i]!.dtype})` : ''} ${describeView(calls[c]![j]!)}`).join('; ')}, program:\n${showProgram(prog)}`;
  const problems: string[] = [];
  try {
    for (let c = 0; c < calls.length && !problems.length; c++) {
      const args = viewsAt(c, gpuPools);
      let got: Tensor[];
      try {
        got = compiled(...args);
        await got[0]!.data();
      } catch (e) {
        problems.push(`${context(c)}\njit threw: ${(e as Error).stack}`);
        break;
      }
      const want = T.tidy(() => f(...args));
      const cpuArgs = viewsAt(c, cpuPools);
      const reference = T.tidy(() => f(...cpuArgs));
      const onCpu = compiledCpu(...cpuArgs);
      for (let i = 0; i < outs.length; i++) {
        const tol = outs[i]!.exact ? 0 : 2 * outs[i]!.E;
        if (got[i]!.shape.join() !== want[i]!.shape.join()) problems.push(`output ${i}: shape [${got[i]!.shape}], eager [${want[i]!.shape}]`);
        const g = await got[i]!.data();
        const m = firstMismatch(await want[i]!.data(), g, () => tol);
        if (m) problems.push(`output ${i} against eager WebGPU: ${m}`);
        const m64 = firstMismatch(reference[i]!.dataSync(), g, () => tol);
        if (m64) problems.push(`output ${i} against the CPU in float64: ${m64}`);
        const e64 = firstMismatch(reference[i]!.dataSync(), await want[i]!.data(), () => tol);
        if (e64) problems.push(`output ${i}: eager WebGPU against the CPU in float64: ${e64}`);
        // The CPU's compiled program in float64 (its errors far below E): within E of eager's.
        const c64 = firstMismatch(reference[i]!.dataSync(), onCpu[i]!.dataSync(), () => tol / 2);
        if (c64) problems.push(`output ${i}: jitted on the CPU in float64 against eager there: ${c64}`);
      }
      if (problems.length) {
        const kernels = T.tidy(() => compiled.lower(...args).kernels().map((k) => k.name).join(', '));
        problems.unshift(context(c));
        problems.push(`kernels: ${kernels}`);
      }
      if (STATS && c === 0) for (const k of T.tidy(() => compiled.lower(...args).kernels())) count1(`kernel ${k.name.replace(/_?\d+(x\d+)*/g, '').replace(/_from$/, '')}${/U\.w\[/.test(k.source) ? ' (offsets as uniforms)' : ''}`);
      for (const t of [...got, ...want, ...reference, ...onCpu]) t.dispose();
    }
  } finally {
    for (const t of [...gpuPools, ...cpuPools]) t.dispose();
  }
  return problems.length ? problems.join('\n') : null;
}

const PROGRAMS = 30;
const range = process.env.SCORCH_VIEWFUZZ_SEEDS?.split('-').map(Number);
const seeds = (first: number) => (range ? Array.from({ length: range[1]! - range[0]! + 1 }, (_, i) => range[0]! + i) : Array.from({ length: PROGRAMS }, (_, i) => first + i));

async function fuzz(first: number, path: string): Promise<void> {
  const failures: string[] = [];
  for (const seed of seeds(first)) {
    const problem = await check(seed, path).catch((e: Error) => `seed ${seed} (${path}): ${e.stack}`);
    if (problem) failures.push(problem);
  }
  expect(failures.join('\n\n')).toBe('');
}

afterAll(() => {
  if (STATS) console.log([...tally].sort().map(([k, v]) => `${k}: ${v}`).join('\n'));
});

describe('jitted programs on views at moving offsets equal eager WebGPU and the CPU in float64', () => {
  it(`${PROGRAMS} programs on the software path`, () => fuzz(1, 'software path'), range ? 3_600_000 : 120_000);

  describe('on the hardware path', () => {
    let restore: () => void = () => {};
    beforeAll(async () => {
      ({ restore } = await hardwarePathDevice());
    });
    afterAll(() => restore());
    it(`${PROGRAMS} programs on the hardware path`, () => fuzz(1001, 'hardware path'), range ? 3_600_000 : 120_000);
  });
});
