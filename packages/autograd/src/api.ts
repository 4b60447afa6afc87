// The functional API (JAX style) and the training-style switches (PyTorch style).

import {
  Tensor, apply, checkBoolean, checkOneOf, checkOptions, collectCreated, composite, eye, flattenTree, fmtShape, isFloatDType, onesLike, popTrace,
  pushTrace, reshape, transpose, unflattenTree, withGradMode, zeros, zerosLike, refusePromise, refuseHiddenTracers,
  checkTensor, type FloatDType,
} from '@scorch/tensor';
import { JvpTrace } from './forward.js';
import { VjpTrace, backwardPass, freeIntermediates, unpackVjp } from './reverse.js';
import { vmap } from './vmap.js';

export type TensorFn = (...args: Tensor[]) => Tensor;

function checkArgs(op: string, args: readonly unknown[]): asserts args is Tensor[] {
  args.forEach((a, i) => {
    // A Tensor, and live, as the ops check theirs: a disposed argument failed in the function's
    // first op, under that op's name, and one returned (jvp or vjp of the identity) came back as
    // a result.
    checkTensor(op, a, `argument ${i}`);
    if (!isFloatDType(a.dtype)) throw new TypeError(`${op}: argument ${i} has dtype ${a.dtype}; only float32/float64 tensors can be differentiated`);
  });
}

function checkFunction(op: string, f: unknown): void {
  if (typeof f !== 'function') throw new TypeError(`${op}: expected a function, got ${f === null ? 'null' : typeof f}`);
}

/** `primals`/`tangents` of jvp and hvp: an array, one entry per argument of f. */
function checkList(op: string, what: 'primals' | 'tangents', list: unknown): void {
  if (!Array.isArray(list)) {
    const got = list === null ? 'null' : list instanceof Tensor ? 'a Tensor' : typeof list;
    throw new TypeError(`${op}: ${what} must be an array of tensors, one per argument of f (e.g. ${op}(f, [x], [v])), got ${got}`);
  }
}

/** Refuses an async function's Promise under the transformation's name. */
function refuseAsync(op: string, out: unknown): void {
  refusePromise(out, `${op}: the function returned a Promise; it must be synchronous and return a Tensor (an async function's work would run after the transformation ended)`);
}

function checkOutput(op: string, out: unknown): asserts out is Tensor {
  refuseAsync(op, out);
  if (!(out instanceof Tensor)) throw new TypeError(`${op}: the function must return a Tensor, got ${out === null ? 'null' : typeof out}`);
}

/**
 * grad (a `scalar` output) and jacobian differentiate float outputs only, as JAX's grad and jacrev
 * ('requires real-valued outputs'); PyTorch gives an integer tensor no gradient. An int32 or bool
 * output is piecewise constant, and its Jacobian came out as zeros: float32 in reverse mode, but
 * of the output's own dtype in forward mode (an int32 or bool Jacobian). vjp and jvp, given the
 * cotangent or tangent, still accept such outputs (zeros, as JAX's float0).
 */
function checkFloatOutput(op: string, out: Tensor, scalar = false): void {
  if (!isFloatDType(out.dtype)) {
    const [what, derivative, elsewhere] = scalar ? ['scalar', 'gradient', ''] : ['tensor', 'derivative', ', or use vjp or jvp'];
    throw new TypeError(`${op}: the function must return a float ${what} (float32 or float64), got ${out.dtype}; ${aDType(out.dtype)} value has no ${derivative} (cast inside the function where a float is meant${elsewhere})`);
  }
}

/** 'an int32', 'a bool': a dtype with its article, for messages. */
const aDType = (dtype: string): string => `${dtype === 'int32' ? 'an' : 'a'} ${dtype}`;

/**
 * The pullback of `vjp`: output cotangent to one cotangent per argument. `P` is the primals'
 * tuple type, so the cotangents are a tuple of as many tensors (`Tensor[]` for primals of
 * unknown count).
 */
export type Pullback<P extends readonly Tensor[] = Tensor[]> = (cotangent: Tensor) => { -readonly [K in keyof P]: Tensor };

/**
 * Evaluates `f(...primals)` and returns its value with the pullback u ↦ uᵀ∂f (one cotangent per
 * argument: `const [gx, gy] = pullback(u)` for `vjp(f, x, y)`). The pullback may be called many times.
 */
export function vjp<P extends Tensor[]>(f: (...args: P) => Tensor, ...primals: P): [Tensor, Pullback<P>] {
  checkFunction('vjp', f);
  checkArgs('vjp', primals);
  const [value, pullback] = vjpOf('vjp', f as (...args: Tensor[]) => unknown, primals);
  // One cotangent per primal, in order: the tuple that Pullback<P> names.
  return [value, pullback as Pullback<P>];
}

/**
 * `vjp` for the transformation `op` built on it (grad, jacobian): its errors name `op`. With
 * `hasAux`, f returns [value, aux]: only the value is differentiated, and the aux (any pytree)
 * comes back third with its tensors as plain values (no longer traced).
 */
function vjpOf(op: string, f: (...args: Tensor[]) => unknown, primals: readonly Tensor[], hasAux = false): [Tensor, Pullback, unknown] {
  const trace = pushTrace((level) => new VjpTrace(level));
  let out: unknown;
  let made: Tensor[];
  try {
    // The forward values f computes are the caller's once vjp returns (its value and pullback
    // reach them); if f throws, nothing can, so they are freed with the error, as grad and jvp do.
    [out, made] = collectCreated(
      () => f(...primals.map((p, i) => trace.leafFor(p, i))),
      (made) => {
        for (const t of made) t.dispose();
      },
    );
  } finally {
    popTrace(trace);
  }
  let aux: unknown;
  refuseAsync(op, out); // before hasAux reads it as a pair
  if (hasAux) {
    if (!Array.isArray(out) || out.length !== 2) {
      const got = Array.isArray(out) ? `an array of ${out.length}` : out instanceof Tensor ? 'a Tensor' : out === null ? 'null' : typeof out;
      throw new TypeError(`${op}: with hasAux the function must return a pair [value, aux] (the scalar to differentiate, then anything to carry out), got ${got}`);
    }
    const { leaves, def } = flattenTree(out[1]);
    refuseHiddenTracers(op, 'aux', leaves);
    aux = unflattenTree(def, leaves.map((leaf) => (leaf instanceof Tensor ? unpackVjp(trace, leaf)[0] : leaf)));
    out = out[0];
  } else if ((op === 'grad' || op === 'valueAndGrad') && Array.isArray(out) && out.length === 2 && out[0] instanceof Tensor) {
    throw new TypeError(`${op}: the function must return a Tensor, got a pair [Tensor, ${out[1] instanceof Tensor ? 'Tensor' : typeof out[1]}]; to differentiate the first and carry the second out, pass hasAux: true`);
  }
  checkOutput(op, out);
  const [primalValue, root] = unpackVjp(trace, out);
  // A value f did not make (an argument or a tensor it closes over, returned as it is) is given
  // back as a tensor of its own, a view of the same storage, as every transformation's result is
  // (docs/autograd.md, "Memory"): disposing it must not free the caller's tensor.
  const value = op === 'vjp' && !made.includes(primalValue) ? apply('reshape', [primalValue], { shape: primalValue.shape }) : primalValue;
  const pullback: Pullback = (cotangent) => {
    if (!(cotangent instanceof Tensor) || cotangent.dtype !== value.dtype || cotangent.shape.length !== value.shape.length || cotangent.shape.some((d, i) => d !== value.shape[i])) {
      const got = cotangent instanceof Tensor ? `${cotangent.dtype} ${fmtShape(cotangent.shape)}` : typeof cotangent;
      throw new Error(`vjp: the cotangent must match the output (${value.dtype} ${fmtShape(value.shape)}), got ${got}`);
    }
    checkTensor('vjp', cotangent, 'the cotangent');
    // The rules mix the cotangent with the values f made: one elsewhere came back as it was (f the
    // identity) or failed in whichever op first met both, naming neither vjp nor the cotangent.
    if (cotangent.device !== value.device) {
      throw new Error(`vjp: the cotangent is on '${cotangent.device}' but the output is on '${value.device}'; move the cotangent to the output's device`);
    }
    const results: (Tensor | null)[] = primals.map(() => null);
    // A rule that throws midway: the cotangents computed so far are freed with the error.
    const [, created] = collectCreated(() => {
      // One cotangent can reach two arguments as one tensor (add passes it through): give each
      // argument its own (a reshape primitive: a copy that stays differentiable), so disposing
      // one result never frees another.
      const handedOut = new Set<Tensor>([cotangent]);
      if (root) {
        backwardPass(root, cotangent, (leaf, ct) => {
          const own = handedOut.has(ct) ? apply('reshape', [ct], { shape: ct.shape }) : ct;
          handedOut.add(own);
          results[leaf.leaf as number] = own;
        });
      }
    }, (made) => freeIntermediates(made, new Set()));
    const grads = results.map((g, i) => g ?? zerosLike(primals[i]!));
    freeIntermediates(created, new Set(grads));
    return grads;
  };
  return [value, pullback, aux];
}

export interface GradOptions {
  /** Which arguments to differentiate: an index (result is one tensor) or a list (an array); negative counts from the end. Default 0. */
  argnums?: number | readonly number[];
  /**
   * The function returns a pair [value, aux]: only the scalar value is differentiated, and aux
   * (a tensor, or any array/object of them and other values: metrics, intermediate results) is
   * returned beside the result, not differentiated (JAX's `has_aux`). Default false.
   */
  hasAux?: boolean;
}

/** GradOptions with `hasAux: true`: the function returns [value, aux]. */
export type GradOptionsWithAux = GradOptions & { hasAux: true };

// The overloads of grad and valueAndGrad type the gradient by `argnums`: one tensor for an index
// (or the default 0), an array for a list, as the result is at run time (a tuple of as many
// tensors for a list literal). Options whose argnums is not known to be one or the other (a
// GradOptions variable) get the union.

/** Options with `argnums` an index or left out: the gradient is one tensor. */
export type GradOptionsOne = GradOptions & { argnums?: number };
/** Options with `argnums` a list: the gradients are an array, one per listed argument. */
export type GradOptionsMany<A extends readonly number[] = readonly number[]> = GradOptions & { argnums: A };
/** The gradients for the list `argnums` A, one Tensor each: a tuple for a list literal, `Tensor[]` for an array. */
export type Gradients<A extends readonly number[]> = { -readonly [K in keyof A]: Tensor };

const GRAD_OPTIONS = ['argnums', 'hasAux'] as const satisfies readonly (keyof GradOptions)[];

/**
 * The argument indices `argnums` names, negative ones counted from the end (as JAX's and
 * PyTorch's). An index listed twice is an error (as PyTorch's): the second copy of the argument
 * would replace the first inside f, so the first would get a zero gradient.
 */
function argIndices(op: string, argnums: number | readonly number[], n: number): number[] {
  if (typeof argnums !== 'number' && !Array.isArray(argnums)) {
    throw new TypeError(`${op}: argnums must be an argument index or an array of them, got ${JSON.stringify(argnums) ?? typeof argnums}`);
  }
  const list = typeof argnums === 'number' ? [argnums] : [...argnums];
  const idx = list.map((a) => {
    if (!Number.isInteger(a)) {
      const what = typeof argnums === 'number' ? `${a} is` : `${JSON.stringify(argnums)} holds ${JSON.stringify(a) ?? typeof a},`;
      throw new TypeError(`${op}: argnums ${what} not an integer argument index`);
    }
    if (a < -n || a >= n) throw new RangeError(`${op}: argnums ${JSON.stringify(argnums)} out of range for ${n} argument(s)`);
    return a < 0 ? a + n : a;
  });
  idx.forEach((a, j) => {
    if (idx.indexOf(a) !== j) throw new Error(`${op}: argnums ${JSON.stringify(argnums)} names argument ${a} twice; list each argument once`);
  });
  return idx;
}

/**
 * Value of a scalar function and its gradient with respect to `argnums`: `[value, gradient(s)]`.
 * With `hasAux`, f returns [value, aux] and the result is `[[value, aux], gradient(s)]` (JAX's
 * `value_and_grad(f, has_aux=True)`).
 */
export function valueAndGrad<Aux>(f: (...args: Tensor[]) => [Tensor, Aux], opts: GradOptionsWithAux & GradOptionsOne): (...args: Tensor[]) => [[Tensor, Aux], Tensor];
export function valueAndGrad<Aux, const A extends readonly number[]>(f: (...args: Tensor[]) => [Tensor, Aux], opts: GradOptionsWithAux & GradOptionsMany<A>): (...args: Tensor[]) => [[Tensor, Aux], Gradients<A>];
export function valueAndGrad<Aux>(f: (...args: Tensor[]) => [Tensor, Aux], opts: GradOptionsWithAux): (...args: Tensor[]) => [[Tensor, Aux], Tensor | Tensor[]];
export function valueAndGrad(f: TensorFn, opts?: GradOptionsOne & { hasAux?: false }): (...args: Tensor[]) => [Tensor, Tensor];
export function valueAndGrad<const A extends readonly number[]>(f: TensorFn, opts: GradOptionsMany<A> & { hasAux?: false }): (...args: Tensor[]) => [Tensor, Gradients<A>];
export function valueAndGrad(f: TensorFn, opts?: GradOptions): (...args: Tensor[]) => [Tensor, Tensor | Tensor[]];
export function valueAndGrad(f: (...args: Tensor[]) => unknown, opts: GradOptions = {}): (...args: Tensor[]) => [unknown, Tensor | Tensor[]] {
  return valueAndGradAs('valueAndGrad', f, opts);
}

/** The transformations built on valueAndGrad, by the name their errors give. */
type GradName = 'valueAndGrad' | 'grad' | 'gradOf' | 'hessian' | 'hvp';

/** valueAndGrad for the transformation `op` (valueAndGrad, grad, ...): its errors name `op`. */
function valueAndGradAs(op: GradName, f: (...args: Tensor[]) => unknown, opts: GradOptions): (...args: Tensor[]) => [unknown, Tensor | Tensor[]] {
  checkFunction(op, f);
  checkOptions(op, opts, GRAD_OPTIONS);
  const argnums = opts.argnums ?? 0;
  if (opts.hasAux !== undefined) checkBoolean(op, 'hasAux', opts.hasAux);
  const hasAux = opts.hasAux ?? false;
  return (...args) =>
    composite(() => {
      const idx = argIndices(op, argnums, args.length);
      checkArgs(op, idx.map((i) => args[i]));
      const g = (...diff: Tensor[]): unknown => {
        const full = [...args];
        idx.forEach((a, j) => (full[a] = diff[j]!));
        return f(...full);
      };
      const [value, pullback, aux] = vjpOf(op, g, idx.map((i) => args[i]!), hasAux);
      if (value.size !== 1 || value.rank !== 0) {
        // The way out for a vector function: its vjp, or for second derivatives (hessian, hvp) the
        // Jacobian of its Jacobian (JAX's jacfwd(jacrev(f)) for any output shape).
        const wayOut = op === 'hessian' || op === 'hvp' ? 'for a function of other outputs use jacobian(jacobian(f), { mode: \'fwd\' })' : 'use vjp with a cotangent for other outputs';
        throw new Error(`${op}: the function must return a scalar (shape []), got shape ${fmtShape(value.shape)}; ${wayOut}`);
      }
      // As JAX's grad ("grad requires real-valued outputs") and PyTorch (an integer tensor never
      // requires grad): an integer or boolean value is piecewise constant, and a gradient of
      // zeros would look like a result.
      checkFloatOutput(op, value, true);
      const grads = pullback(onesLike(value));
      const gradient = typeof argnums === 'number' ? grads[0]! : grads;
      return [hasAux ? [value, aux] : value, gradient];
    });
}

/**
 * Gradient of a scalar function: `grad(f)(x)` = ∇f(x); with `argnums` a list, one per argument.
 * With `hasAux`, f returns [value, aux] and the result is `[gradient(s), aux]` (JAX's
 * `grad(f, has_aux=True)`).
 */
export function grad<Aux>(f: (...args: Tensor[]) => [Tensor, Aux], opts: GradOptionsWithAux & GradOptionsOne): (...args: Tensor[]) => [Tensor, Aux];
export function grad<Aux, const A extends readonly number[]>(f: (...args: Tensor[]) => [Tensor, Aux], opts: GradOptionsWithAux & GradOptionsMany<A>): (...args: Tensor[]) => [Gradients<A>, Aux];
export function grad<Aux>(f: (...args: Tensor[]) => [Tensor, Aux], opts: GradOptionsWithAux): (...args: Tensor[]) => [Tensor | Tensor[], Aux];
export function grad(f: TensorFn, opts?: GradOptionsOne & { hasAux?: false }): (...args: Tensor[]) => Tensor;
export function grad<const A extends readonly number[]>(f: TensorFn, opts: GradOptionsMany<A> & { hasAux?: false }): (...args: Tensor[]) => Gradients<A>;
export function grad(f: TensorFn, opts?: GradOptions): (...args: Tensor[]) => Tensor | Tensor[];
export function grad(f: (...args: Tensor[]) => unknown, opts: GradOptions = {}): (...args: Tensor[]) => unknown {
  return gradAs('grad', f, opts);
}

/** grad for the transformation `op` (grad, and those built on it: hessian, hvp, gradOf): its errors name `op`. */
function gradAs(op: GradName, f: (...args: Tensor[]) => unknown, opts: GradOptions): (...args: Tensor[]) => unknown {
  const vg = valueAndGradAs(op, f, opts);
  if (!opts.hasAux) return (...args) => composite(() => vg(...args)[1]);
  return (...args) =>
    composite(() => {
      const [[, aux], gradient] = vg(...args) as [[Tensor, unknown], Tensor | Tensor[]];
      return [gradient, aux];
    });
}

/** Single-argument gradient with a Tensor result type (the common case). */
export function gradOf(f: (x: Tensor) => Tensor): (x: Tensor) => Tensor {
  const g = gradAs('gradOf', f, {});
  return (x) => g(x) as Tensor;
}

/**
 * Forward mode: evaluates `f(...primals)` and its directional derivative ∂f·tangents.
 * `f` may return a tensor or an array of tensors (the tangent result has the same form).
 */
export function jvp<R extends Tensor | Tensor[]>(f: (...args: Tensor[]) => R, primals: readonly Tensor[], tangents: readonly Tensor[]): [R, R] {
  return jvpAs('jvp', f, primals, tangents);
}

/** `jvp` for the transformation `op` (jvp, and the hvp built on it): its errors name `op`. */
function jvpAs<R extends Tensor | Tensor[]>(op: 'jvp' | 'hvp', f: (...args: Tensor[]) => R, primals: readonly Tensor[], tangents: readonly Tensor[]): [R, R] {
  checkFunction(op, f);
  checkList(op, 'primals', primals);
  checkList(op, 'tangents', tangents);
  return composite(() => {
    checkArgs(op, primals);
    if (!Array.isArray(tangents) || tangents.length !== primals.length) {
      throw new Error(`${op}: expected one tangent per primal (${primals.length}), got ${Array.isArray(tangents) ? tangents.length : typeof tangents}`);
    }
    const trace = pushTrace((level) => new JvpTrace(level));
    let out: unknown;
    try {
      out = f(...primals.map((p, i) => trace.lift(p, tangents[i]!, `argument ${i}`, op)));
    } finally {
      popTrace(trace);
    }
    // f returns a tensor or an array of tensors: anything else is named as such (checkOutput's
    // 'must return a Tensor' read as if the array that jvp accepts were refused).
    const split = (o: unknown, i?: number): [Tensor, Tensor] => {
      if (!(o instanceof Tensor)) {
        refuseAsync(op, o);
        const got = o === null ? 'null' : Array.isArray(o) ? 'a nested array' : typeof o;
        throw new TypeError(`${op}: the function must return a Tensor or an array of tensors, got ${i === undefined ? got : `an array whose element ${i} is ${got}`}`);
      }
      const [p, t] = trace.unpack(o);
      return [p, t ?? zerosLike(p)];
    };
    if (Array.isArray(out)) {
      const pairs = out.map((o, i) => split(o, i));
      return [pairs.map((p) => p[0]) as R, pairs.map((p) => p[1]) as R];
    }
    const [p, t] = split(out);
    return [p as R, t as R];
  });
}

/**
 * Hessian-vector product of a scalar function: (∇²f) v, forward-over-reverse. One primal gives
 * one tensor; several give an array, one product per primal (the tangents taken together):
 * typed as a tuple of as many tensors when the primals are a list literal.
 */
export function hvp(f: TensorFn, primals: readonly [Tensor], tangents: readonly [Tensor]): Tensor;
export function hvp<P extends readonly [Tensor, Tensor, ...Tensor[]]>(f: TensorFn, primals: P, tangents: { readonly [K in keyof P]: Tensor }): { -readonly [K in keyof P]: Tensor };
export function hvp(f: TensorFn, primals: readonly Tensor[], tangents: readonly Tensor[]): Tensor | Tensor[];
export function hvp(f: TensorFn, primals: readonly Tensor[], tangents: readonly Tensor[]): Tensor | Tensor[] {
  checkFunction('hvp', f);
  // The jvp inside is hvp's: it checks the primals and the tangents (each once, before the
  // gradient is built from their count) under hvp's name, not jvp's.
  const g = (...xs: Tensor[]) => gradAs('hvp', f, { argnums: xs.length === 1 ? 0 : xs.map((_, i) => i) })(...xs) as Tensor | Tensor[];
  return composite(() => jvpAs('hvp', g, primals, tangents)[1]);
}

export interface JacobianOptions {
  /** 'rev': one pullback per output element; 'fwd': one JVP per input element. Default 'rev'. */
  mode?: 'fwd' | 'rev';
}

/** The n×n identity as a stack of basis tensors shaped like `like`: shape [n, ...like.shape]. */
function basisStack(like: Tensor): Tensor {
  return reshape(eye(like.size, like.size, { dtype: like.dtype as FloatDType, device: like.device }), [like.size, ...like.shape]);
}

/**
 * Jacobian of a function with respect to its first argument: shape [...out.shape, ...x.shape].
 * Further arguments are passed through as constants (JAX's and PyTorch's default argnums 0). Both modes are one
 * batched pass (JAX's jacfwd/jacrev): 'fwd' is `vmap` of `jvp` over the basis tangents of x (one
 * column per input element), 'rev' one forward pass and `vmap` of its pullback over the basis
 * cotangents of f(x) (one row per output element).
 */
export function jacobian<A extends unknown[]>(f: (x: Tensor, ...rest: A) => Tensor, opts: JacobianOptions = {}): (x: Tensor, ...rest: A) => Tensor {
  checkFunction('jacobian', f);
  checkOptions('jacobian', opts, ['mode']);
  const mode = opts.mode ?? 'rev';
  checkOneOf('jacobian', 'mode', mode, ['fwd', 'rev'] as const);
  return (x, ...rest) =>
    composite(() => {
      checkArgs('jacobian', [x]);
      if (mode === 'fwd') {
        // jvp accepts an array of outputs; the Jacobian is of one tensor.
        const g = (x: Tensor): Tensor => {
          const y = f(x, ...rest);
          checkOutput('jacobian', y);
          checkFloatOutput('jacobian', y);
          return y;
        };
        if (x.size === 0) return zeros([...g(x).shape, ...x.shape], { dtype: x.dtype, device: x.device });
        let outShape: readonly number[] = [];
        const columns = vmap((t: Tensor) => {
          const [y, jt] = jvp(g, [x], [t]);
          outShape = y.shape;
          return jt;
        })(basisStack(x)); // [x.size, ...out]
        const outSize = outShape.reduce((a, b) => a * b, 1);
        return reshape(transpose(reshape(columns, [x.size, outSize])), [...outShape, ...x.shape]);
      }
      const [y, pullback] = vjpOf('jacobian', (x) => f(x, ...rest), [x]);
      checkFloatOutput('jacobian', y);
      if (y.size === 0) return zeros([...y.shape, ...x.shape], { dtype: x.dtype, device: x.device });
      const rows = vmap((u: Tensor) => pullback(u)[0]!)(basisStack(y)); // [y.size, ...x.shape]
      return reshape(rows, [...y.shape, ...x.shape]);
    });
}

/**
 * Hessian of a scalar function with respect to its first argument (forward-over-reverse): shape
 * [...x.shape, ...x.shape]. Further arguments are passed through as constants, as in `jacobian`.
 */
export function hessian<A extends unknown[]>(f: (x: Tensor, ...rest: A) => Tensor): (x: Tensor, ...rest: A) => Tensor {
  const g = gradAs('hessian', f as TensorFn, {});
  const h = jacobian((x: Tensor, ...rest: A) => g(x, ...(rest as Tensor[])) as Tensor, { mode: 'fwd' });
  return (x, ...rest) => {
    checkArgs('hessian', [x]); // under hessian's name, not that of the jacobian inside
    return h(x, ...rest);
  };
}

/**
 * Runs `fn` without recording operations for `backward()` (functional transforms still work).
 * `fn` must be synchronous: the mode is restored when it returns, so an async function's work
 * after its first `await` would be recorded, and it is refused (call noGrad inside it instead).
 */
export function noGrad<T>(fn: () => T): T {
  checkFunction('noGrad', fn);
  return gradModeScope('noGrad', false, fn);
}

/** Runs `fn` with recording for `backward()` on, even inside `noGrad`; `fn` must be synchronous, as for noGrad. */
export function enableGrad<T>(fn: () => T): T {
  checkFunction('enableGrad', fn);
  return gradModeScope('enableGrad', true, fn);
}

/**
 * `fn` under the grad mode `enabled`, refusing a Promise: the mode is process-wide and restored
 * when `fn` returns, before an async function's awaited work runs, which would then run under
 * whatever mode is current at that time (another loop's, interleaved at an await).
 */
function gradModeScope<T>(op: string, enabled: boolean, fn: () => T): T {
  const result = withGradMode(enabled, fn);
  const mode = enabled ? 'recording on' : 'recording off';
  refusePromise(result, `${op}: the function returned a Promise; ${op} is synchronous (${mode} lasts until the function returns, so work after an await would not get it): call ${op} inside the async function, around each synchronous part`);
  return result;
}
