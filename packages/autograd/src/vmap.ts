// vmap: the batching transformation (JAX's vmap). A batch tracer stands for a per-example value
// and holds the batched value (one more axis, the batch axis, at `bdim`). Each primitive has a
// batching rule that computes the batched output from batched inputs with primitives one level
// down, so vmap composes with grad, jvp and jit in every order: under grad the batched program is
// what is differentiated; inside grad, the rules run on reverse-mode tracers.
//
// The rules move the batch axis to the front (a permute, which jit fuses away) and shift the
// primitive's axes by one; an unbatched operand of an elementwise primitive is broadcast (a view);
// products keep an unbatched weight matrix unbroadcast by folding the batch into the rows or
// columns; gathers and scatters with batched indices fold the batch into the indexed axis.
//
// Random draws inside `f` are not batched: keys are host values, so every example sees the same
// numbers, and an array of keys is not mapped over. Per-example noise is drawn outside and passed
// in batched.

import {
  type OutputInfo, type Primitive, type PrimitiveParams, Tensor, Trace, add, apply, arange, broadcastTo, cast, fmtShape,
  checkActive, checkOptions, composite, concat, flattenTree, inferOutput, isPlainObject, isRandomKey, mul, permute, popTrace, primitiveDefinition, pushTrace, reshape, slice,
  unflattenTree, refusePromise, where, less,
  checkTensor,
} from '@scorch/tensor';

interface BatchPayload {
  /** The batched value: the per-example shape with the batch axis inserted at `bdim`. */
  readonly value: Tensor;
  readonly bdim: number;
}

/** A batching rule: the batched output (and its batch axis, null if unbatched) from inputs at their batch axes (null: unbatched). */
export type BatchRule<P extends Primitive> = (
  values: readonly Tensor[], bdims: readonly (number | null)[], params: PrimitiveParams[P], size: number,
) => [Tensor, number | null];

/** The trace level of one `vmap` call: its tracers hold batched values and the position of their batch axis. */
export class BatchTrace extends Trace {
  readonly name = 'vmap';
  constructor(level: number, readonly size: number) {
    super(level);
  }

  /** A tracer for `value` batched along `bdim`. */
  wrap(value: Tensor, bdim: number): Tensor {
    const shape = value.shape.filter((_, i) => i !== bdim);
    return Tensor._tracer(this, shape, value.dtype, value.device, { value, bdim } satisfies BatchPayload);
  }

  /** The value one level down and its batch axis (null when `t` is not batched here). */
  unpack(t: Tensor): [Tensor, number | null] {
    if (t._trace === this) {
      const p = t._payload as BatchPayload;
      return [p.value, p.bdim];
    }
    return [t, null];
  }

  process<P extends Primitive>(prim: P, inputs: readonly Tensor[], params: PrimitiveParams[P], _out: OutputInfo): Tensor {
    const values: Tensor[] = [];
    const bdims: (number | null)[] = [];
    for (const x of inputs) {
      const [v, b] = this.unpack(x);
      values.push(v);
      bdims.push(b);
    }
    if (bdims.every((b) => b === null)) return apply(prim, values, params);
    const [y, bdim] = (batchRules[prim] as BatchRule<P>)(values, bdims, params, this.size);
    return bdim === null ? y : this.wrap(y, bdim);
  }

  children(t: Tensor): Tensor[] {
    return [(t._payload as BatchPayload).value];
  }

  /**
   * A batch tracer stands for every example at once: it has no single value to read (its payload
   * is the whole batch, of another shape). Reading it is an error, as in JAX and PyTorch's vmap.
   */
  primal(t: Tensor): Tensor {
    checkActive('vmap', this);
    throw new Error(
      `vmap: the values of a per-example ${t.dtype} ${fmtShape(t.shape)} tensor cannot be read inside vmap (it stands for every ` +
        'example of the batch at once); return it from the function and read the batched result after the call',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers of the rules

/** `x` with its batch axis moved to the front; an unbatched `x` broadcast over the batch (a view). */
function front(x: Tensor, bdim: number | null, size: number): Tensor {
  if (bdim === null) return broadcastTo(reshape(x, [1, ...x.shape]), [size, ...x.shape]);
  if (bdim === 0) return x;
  const perm = [bdim, ...x.shape.map((_, i) => i).filter((i) => i !== bdim)];
  return permute(x, perm);
}

/** `x` with its front axis moved to `axis` (the inverse of `front`): [B, …] → […, B at axis, …]. */
export function fromFront(x: Tensor, axis: number): Tensor {
  if (axis === 0) return x;
  const perm = [...Array(x.shape.length).keys()].slice(1);
  perm.splice(axis, 0, 0);
  return permute(x, perm);
}

/** A primitive applied to every input at the front, with axes shifted by one: output batched at 0. */
function atFront<P extends Primitive>(prim: P, params: (p: PrimitiveParams[P], size: number) => PrimitiveParams[P]): BatchRule<P> {
  return (values, bdims, p, size) => [apply(prim, values.map((v, i) => front(v, bdims[i]!, size)), params(p, size)), 0];
}

/** Folds the batch axis (at the front) into axis `axis` + 1: [B, …a, n, …] → […a, B·n, …]. */
function foldInto(x: Tensor, axis: number): Tensor {
  const moved = fromFront(x, axis);
  const shape = [...moved.shape];
  shape.splice(axis, 2, shape[axis]! * shape[axis + 1]!);
  return reshape(moved, shape);
}

/**
 * Splits axis `axis` of length B·n into (B, n): the batch axis lands at `axis`. n is given, not
 * divided out: with B = 0 the axis has length 0 for every n.
 */
function splitAt(x: Tensor, axis: number, size: number, n: number): Tensor {
  const shape = [...x.shape];
  shape.splice(axis, 1, size, n);
  return reshape(x, shape);
}

/**
 * Batched int32 indices [B, n] made global for a folded axis of length B·extent: i + b·extent,
 * flattened. An index outside [0, extent) would land in a neighbouring example's slice (extent in
 * example b reads b + 1's first element), which no range check of the folded axis sees: it
 * becomes −1, which the primitive refuses, as it refuses the index without vmap.
 */
function globalIndices(indices: Tensor, size: number, extent: number): Tensor {
  const offsets = mul(arange(0, size, 1, { dtype: 'int32', device: indices.device }), extent);
  const global = add(indices, reshape(offsets, [size, 1]));
  const checked = where(less(indices, 0), -1, where(less(indices, extent), global, -1));
  return reshape(checked, [indices.shape[0]! * indices.shape[1]!]);
}

const shifted = (axes: readonly number[]) => axes.map((a) => a + 1);

// ---------------------------------------------------------------------------------------------
// The rules, one per primitive (a missing one is a compile error)

function elementwiseRule<P extends Primitive>(prim: P): BatchRule<P> {
  return (values, bdims, params, size) => {
    // One batched operand: the primitive runs on it where it is, no transpose.
    if (values.length === 1) return [apply(prim, values, params), bdims[0]!];
    return [apply(prim, values.map((v, i) => front(v, bdims[i]!, size)), params), 0];
  };
}

function matmulRule(values: readonly Tensor[], bdims: readonly (number | null)[], _params: PrimitiveParams['matmul'], size: number): [Tensor, number | null] {
  const [a, b] = values as [Tensor, Tensor];
  const [da, db] = bdims as [number | null, number | null];
  // A batched left operand times an unbatched matrix: the batch joins the rows, [B·m, k]·[k, n].
  if (db === null && a.shape.length === 3 && b.shape.length === 2) {
    const af = front(a, da!, size);
    const [, m, k] = af.shape as [number, number, number];
    return [reshape(apply('matmul', [reshape(af, [size * m, k]), b], {}), [size, m, b.shape[1]!]), 0];
  }
  // An unbatched matrix times a batched right operand: the batch joins the columns, [m, k]·[k, B·n].
  if (da === null && a.shape.length === 2 && b.shape.length === 3) {
    const bf = front(b, db!, size);
    const [, k, n] = bf.shape as [number, number, number];
    const columns = reshape(permute(bf, [1, 0, 2]), [k, size * n]);
    return [reshape(apply('matmul', [a, columns], {}), [a.shape[0]!, size, n]), 1];
  }
  return [apply('matmul', [front(a, da, size), front(b, db, size)], {}), 0];
}

function gatherRule(values: readonly Tensor[], bdims: readonly (number | null)[], params: PrimitiveParams['gather'], size: number): [Tensor, number | null] {
  const [x, indices] = values as [Tensor, Tensor];
  const [dx, di] = bdims as [number | null, number | null];
  const { axis } = params;
  if (di === null) return [apply('gather', [front(x, dx!, size), indices], { axis: axis + 1 }), 0];
  const idx = front(indices, di, size); // [B, n]
  if (dx === null) {
    // Every example's indices into the one x: gather B·n slices, then split the axis.
    const flat = reshape(idx, [idx.shape[0]! * idx.shape[1]!]);
    return [splitAt(apply('gather', [x, flat], { axis }), axis, size, idx.shape[1]!), axis];
  }
  const xf = front(x, dx, size);
  const extent = xf.shape[axis + 1]!;
  const out = apply('gather', [foldInto(xf, axis), globalIndices(idx, size, extent)], { axis });
  return [splitAt(out, axis, size, idx.shape[1]!), axis];
}

function scatterAddRule(values: readonly Tensor[], bdims: readonly (number | null)[], params: PrimitiveParams['scatterAdd'], size: number): [Tensor, number | null] {
  const [updates, indices] = values as [Tensor, Tensor];
  const [du, di] = bdims as [number | null, number | null];
  const { axis } = params;
  if (di === null) return [apply('scatterAdd', [front(updates, du, size), indices], { axis: axis + 1, size: params.size }), 0];
  const idx = front(indices, di, size);
  const uf = front(updates, du, size);
  const out = apply('scatterAdd', [foldInto(uf, axis), globalIndices(idx, size, params.size)], { axis, size: size * params.size });
  return [splitAt(out, axis, size, params.size), axis];
}

/**
 * A defined primitive: its own batching rule when it has one; else an elementwise one is batched
 * like a built-in elementwise op, and a shader one example at a time (each example's slices
 * through the primitive, the results concatenated along a new front axis).
 */
function customRule(values: readonly Tensor[], bdims: readonly (number | null)[], params: PrimitiveParams['custom'], size: number): [Tensor, number | null] {
  const def = primitiveDefinition(params.name);
  if (def.batch) {
    const r = def.batch(values, bdims, size) as unknown;
    if (!Array.isArray(r) || r.length !== 2) {
      throw new Error(`${params.name}: its batching rule must return [tensor, batch axis or null], got ${r instanceof Tensor ? 'a Tensor, not a pair' : Array.isArray(r) ? `an array of ${r.length}` : String(r)}`);
    }
    const [y, bdim] = r as [unknown, unknown];
    if (!(y instanceof Tensor) || !(bdim === null || (Number.isInteger(bdim) && (bdim as number) >= 0 && (bdim as number) < y.shape.length))) {
      throw new Error(`${params.name}: its batching rule must return [tensor, batch axis or null], got a batch axis ${bdim} for ${y instanceof Tensor ? fmtShape(y.shape) : typeof y}`);
    }
    // The result must be what the primitive gives one example, with the batch axis inserted.
    const one = inferOutput('custom', values.map((v, i) => (bdims[i] === null ? v : { shape: v.shape.filter((_, d) => d !== bdims[i]), dtype: v.dtype })), params);
    const shape = bdim === null ? one.shape : [...one.shape.slice(0, bdim as number), size, ...one.shape.slice(bdim as number)];
    if (y.dtype !== one.dtype || y.shape.length !== shape.length || y.shape.some((d, k) => d !== shape[k])) {
      throw new Error(`${params.name}: its batching rule returned a ${y.dtype} ${fmtShape(y.shape)} tensor with batch axis ${bdim}; for ${size} examples of a ${one.dtype} ${fmtShape(one.shape)} output it must be ${one.dtype} ${fmtShape(shape)}`);
    }
    return [y, bdim as number | null];
  }
  if (def.kind === 'elementwise') return elementwiseRule('custom')(values, bdims, params, size);
  const fronts = values.map((v, i) => (bdims[i] === null ? null : front(v, bdims[i]!, size)));
  if (size === 0) {
    // No example to run: the result is empty, with the shape and dtype one example's would have.
    // It is made from a batched operand (emptied, cast), so it stays on that operand's device
    // and trace.
    const out = def.infer(values.map((v, i) => (fronts[i] ? { shape: fronts[i]!.shape.slice(1), dtype: v.dtype } : v)));
    const empty = reshape(fronts.find((f) => f !== null)!, [0]);
    return [reshape(empty.dtype === out.dtype ? empty : cast(empty, out.dtype), [0, ...out.shape]), 0];
  }
  const examples: Tensor[] = [];
  for (let b = 0; b < size; b++) {
    const inputs = values.map((v, i) => {
      const f = fronts[i];
      if (!f) return v;
      return reshape(slice(f, [b, ...f.shape.slice(1).map(() => 0)], [1, ...f.shape.slice(1)]), f.shape.slice(1));
    });
    const y = apply('custom', inputs, params);
    examples.push(reshape(y, [1, ...y.shape]));
  }
  return [concat(examples, 0), 0];
}

const noInputs = <P extends Primitive>(prim: P): BatchRule<P> => () => {
  throw new Error(`internal: vmap reached ${prim}, which has no tensor inputs`);
};

/** Batching rules by primitive: frozen (a defined primitive brings its rule through 'custom'). */
export const batchRules: { readonly [P in Primitive]: BatchRule<P> } = Object.freeze({
  neg: elementwiseRule('neg'),
  exp: elementwiseRule('exp'),
  log: elementwiseRule('log'),
  sin: elementwiseRule('sin'),
  cos: elementwiseRule('cos'),
  sqrt: elementwiseRule('sqrt'),
  reciprocal: elementwiseRule('reciprocal'),
  tanh: elementwiseRule('tanh'),
  log1p: elementwiseRule('log1p'),
  expm1: elementwiseRule('expm1'),
  sigmoid: elementwiseRule('sigmoid'),
  floor: elementwiseRule('floor'),
  ceil: elementwiseRule('ceil'),
  round: elementwiseRule('round'),
  sign: elementwiseRule('sign'),
  erf: elementwiseRule('erf'),
  add: elementwiseRule('add'),
  sub: elementwiseRule('sub'),
  mul: elementwiseRule('mul'),
  div: elementwiseRule('div'),
  max: elementwiseRule('max'),
  pow: elementwiseRule('pow'),
  less: elementwiseRule('less'),
  lessEqual: elementwiseRule('lessEqual'),
  equal: elementwiseRule('equal'),
  notEqual: elementwiseRule('notEqual'),
  where: elementwiseRule('where'),
  cast: elementwiseRule('cast'),
  stopGradient: elementwiseRule('stopGradient'),
  sum: atFront('sum', (p) => ({ axes: shifted(p.axes) })),
  reduceMax: atFront('reduceMax', (p) => ({ axes: shifted(p.axes) })),
  argmax: atFront('argmax', (p) => ({ axis: p.axis + 1 })),
  argmin: atFront('argmin', (p) => ({ axis: p.axis + 1 })),
  cumsum: atFront('cumsum', (p) => ({ ...p, axis: p.axis + 1 })),
  cumprod: atFront('cumprod', (p) => ({ ...p, axis: p.axis + 1 })),
  reshape: atFront('reshape', (p, size) => ({ shape: [size, ...p.shape] })),
  expand: atFront('expand', (p, size) => ({ shape: [size, ...p.shape] })),
  permute: atFront('permute', (p) => ({ perm: [0, ...shifted(p.perm)] })),
  slice: atFront('slice', (p, size) => ({ starts: [0, ...p.starts], ends: [size, ...p.ends] })),
  pad: atFront('pad', (p) => ({ before: [0, ...p.before], after: [0, ...p.after] })),
  concat: atFront('concat', (p) => ({ axis: p.axis + 1 })),
  gather: gatherRule,
  scatterAdd: scatterAddRule,
  matmul: matmulRule,
  random: noInputs('random'),
  full: noInputs('full'),
  custom: customRule,
});

// ---------------------------------------------------------------------------------------------
// The transformation

/**
 * Where the batch axis is: one number (or null: not batched) for a whole argument or output, an
 * array of specs matching an array's elements, or a plain object of specs with the same keys as a
 * plain object (a params record: `{ w: null, b: 0 }`); JAX's in_axes/out_axes as a tree prefix.
 */
export type AxisSpec = number | null | readonly AxisSpec[] | { readonly [key: string]: AxisSpec };

export interface VmapOptions {
  /**
   * The batch axis of each positional argument, as an array with one spec per argument (each a
   * number, null, or an array or plain object of specs matching the argument's structure), or one
   * number for every leaf of every argument (random keys excepted), each of which must then be a
   * tensor; null: shared by every example (give a number or other non-tensor argument null).
   * Default 0 (JAX's in_axes=0).
   */
  inAxes?: AxisSpec;
  /** Where each output's batch axis goes (null: the output is the same for every example), as a spec over the output. Default 0. */
  outAxes?: AxisSpec;
}

const VMAP_OPTION_KEYS = ['inAxes', 'outAxes'];

/**
 * The axis of every leaf of `value` (flattenTree's order), from a spec that is a prefix of its
 * structure; `keys`: how many random keys a (non-null) axis was given to and left unbatched.
 */
function leafAxes(where: string, value: unknown, spec: AxisSpec, what: string): { leaves: unknown[]; axes: (number | null)[]; keys: number } {
  if (spec === null || typeof spec === 'number') {
    if (spec !== null && !Number.isInteger(spec)) throw new TypeError(`${where}: ${what} must be an integer axis or null, got ${spec}`);
    const { leaves } = flattenTree(value, isRandomKey);
    // Random keys are host values, never batched (the same draw for every example).
    const axes = leaves.map((leaf) => (isRandomKey(leaf) ? null : spec));
    return { leaves, axes, keys: spec === null ? 0 : leaves.filter(isRandomKey).length };
  }
  const got = () => (Array.isArray(value) ? `an array of ${value.length}` : value instanceof Tensor ? 'a tensor' : typeof value);
  // (child value, its spec, its name) in flattenTree's order: an array's elements, an object's keys in the value's order.
  let children: [unknown, AxisSpec, string][];
  if (isPlainObject(spec)) {
    if (!isPlainObject(value)) throw new Error(`${where}: ${what} is an object of specs but the value it describes is ${got()}`);
    const keys = Object.keys(value);
    const missing = keys.filter((k) => !Object.hasOwn(spec, k));
    const extra = Object.keys(spec).filter((k) => !Object.hasOwn(value, k));
    if (missing.length > 0 || extra.length > 0) {
      const parts = [missing.length > 0 ? `no spec for ${missing.map((k) => `'${k}'`).join(', ')}` : '', extra.length > 0 ? `specs for ${extra.map((k) => `'${k}'`).join(', ')}, which the value lacks` : ''];
      throw new Error(`${where}: ${what} has ${parts.filter(Boolean).join(' and ')} (the value's keys: ${keys.join(', ') || 'none'})`);
    }
    children = keys.map((k) => [value[k], (spec as Record<string, AxisSpec>)[k]!, `${what}.${k}`]);
  } else {
    if (!Array.isArray(spec)) throw new TypeError(`${where}: ${what} must be a number, null, an array or a plain object of those, got ${spec === undefined ? 'undefined' : typeof spec}`);
    if (!Array.isArray(value) || value.length !== spec.length) throw new Error(`${where}: ${what} is an array of ${spec.length} specs but the value it describes is ${got()}`);
    children = spec.map((s, k) => [value[k], s, `${what}[${k}]`]);
  }
  const leaves: unknown[] = [];
  const axes: (number | null)[] = [];
  let keys = 0;
  for (const [v, s, name] of children) {
    const r = leafAxes(where, v, s, name);
    leaves.push(...r.leaves);
    axes.push(...r.axes);
    keys += r.keys;
  }
  return { leaves, axes, keys };
}

function normalizeAxis(where: string, axis: number, rank: number, what: string): number {
  // A scalar has no axis at all: the range below would read [0, -1].
  if (rank === 0) throw new RangeError(`${where}: ${what} is axis ${axis}, but a scalar has no axis to map over (inAxes null shares it with every example)`);
  if (axis < -rank || axis >= rank) throw new RangeError(`${where}: ${what} is axis ${axis}, outside [${-rank}, ${rank - 1}]`);
  return axis < 0 ? axis + rank : axis;
}

/**
 * Vectorizes `f` over a batch axis: `vmap(f)(xs)` equals stacking `f(x)` over the slices x of
 * xs along axis 0, computed with batched operations instead of a loop. Arguments are tensors or
 * pytrees of tensors (arrays, plain objects); `inAxes` says where each argument's batch axis is
 * (null: shared by every example), `outAxes` where to put it in each output leaf.
 *
 *   const perExampleGrads = vmap(grad((w, x) => loss(w, x)), { inAxes: [null, 0] });
 */
export function vmap<F extends (...args: never[]) => unknown>(f: F, opts: VmapOptions = {}): (...args: Parameters<F>) => ReturnType<F> {
  const where = 'vmap';
  if (typeof f !== 'function') throw new TypeError(`${where}: expected a function, got ${typeof f}`);
  checkOptions(where, opts, VMAP_OPTION_KEYS, VMAP_OPTION_KEYS); // null: not mapped (JAX's None)
  return ((...args: unknown[]) =>
    composite(() => {
      const spec = opts.inAxes === undefined ? 0 : opts.inAxes;
      if (Array.isArray(spec) && spec.length !== args.length) {
        throw new Error(`${where}: inAxes has ${spec.length} entries but the function was called with ${args.length} arguments`);
      }
      // The batch size, from every batched leaf (they must agree).
      let size: number | null = null;
      let sizeFrom = '';
      const { leaves, axes, keys } = leafAxes(where, args, Array.isArray(spec) ? spec : args.map(() => spec as number | null), 'inAxes');
      const { def } = flattenTree(args, isRandomKey);
      const normalized = leaves.map((leaf, j) => {
        const axis = axes[j]!;
        if (axis === null) return null;
        if (!(leaf instanceof Tensor)) {
          // As JAX and torch.func: only tensors are mapped over; say how to pass the rest as they are.
          const given = opts.inAxes === undefined ? ' (the default inAxes)' : '';
          throw new TypeError(
            `${where}: input leaf ${j} is batched (axis ${axis}${given}) but is ${leaf === null ? 'null' : typeof leaf}, not a Tensor; ` +
              `only tensors are mapped over: give it inAxes null (e.g. inAxes: [0, null]) to pass it to every example as it is`,
          );
        }
        // As grad and jvp: a function that returned it handed the disposed tensor back, and one
        // that used it failed under the name of its first op.
        checkTensor(where, leaf, `input leaf ${j}`);
        const a = normalizeAxis(where, axis, leaf.shape.length, `the batch axis of input leaf ${j} (${fmtShape(leaf.shape)})`);
        const n = leaf.shape[a]!;
        if (size === null) {
          size = n;
          sizeFrom = `input leaf ${j} ${fmtShape(leaf.shape)} at axis ${a}`;
        } else if (n !== size) {
          throw new Error(`${where}: batch sizes differ: ${sizeFrom} has ${size} but input leaf ${j} ${fmtShape(leaf.shape)} has ${n} at axis ${a}`);
        }
        return a;
      });
      if (size === null) {
        // JAX maps over an array of keys (vmap of random.normal over split keys); here keys are
        // host values, never batched, so say so rather than that nothing was asked to be mapped.
        if (keys > 0) {
          throw new Error(
            `${where}: no argument is batched: inAxes gives a batch axis only to random keys (${keys}), and keys are never mapped over (every example ` +
              'would see the same draws); draw the per-example noise outside, e.g. randn([B, ...shape], { key }), and pass it batched',
          );
        }
        throw new Error(`${where}: no argument is batched (every inAxes entry is null or applies to no tensor); there is nothing to map over`);
      }
      const batch: number = size;
      const trace = pushTrace((level) => new BatchTrace(level, batch));
      let out: unknown;
      try {
        const traced = unflattenTree(def, leaves.map((leaf, j) => (normalized[j] === null ? leaf : trace.wrap(leaf as Tensor, normalized[j]!)))) as unknown[];
        out = (f as unknown as (...a: unknown[]) => unknown)(...traced);
      } finally {
        popTrace(trace);
      }
      refusePromise(out, `${where}: the function returned a Promise; it must return tensors synchronously (an async function's work would run after the transformation ended)`);
      const outSpec = leafAxes(where, out, opts.outAxes === undefined ? 0 : opts.outAxes, 'outAxes');
      const results = outSpec.leaves.map((leaf, j) => {
        if (!(leaf instanceof Tensor)) throw new TypeError(`${where}: the function must return tensors (or pytrees of them); output leaf ${j} is ${leaf === null ? 'null' : typeof leaf}`);
        const [value, bdim] = trace.unpack(leaf);
        const axis = outSpec.axes[j]!;
        if (axis === null) {
          if (bdim !== null) throw new Error(`${where}: output leaf ${j} depends on the batch, but its outAxes entry is null`);
          return value;
        }
        const rank = leaf.shape.length + 1;
        const target = normalizeAxis(where, axis, rank, `outAxes for output leaf ${j} (${fmtShape(leaf.shape)} per example)`);
        return fromFront(front(value, bdim, batch), target);
      });
      return unflattenTree(flattenTree(out).def, results);
    })) as (...args: Parameters<F>) => ReturnType<F>;
}
