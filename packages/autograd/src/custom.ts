// Custom derivatives for functions built from ops (JAX's custom_jvp / custom_vjp, TF.js's
// customGrad): a numerically stable or cheaper derivative for a composite, used by every
// transformation. A call dispatches on the innermost transformation among its arguments, like
// a primitive: forward mode applies the jvp rule (or, for a vjp rule, its transpose), reverse
// mode records one node whose reverse rule is the vjp rule (or the jvp rule's transpose), and
// the primal value is computed by the same function one level down, so nested transformations
// (grad of grad, jvp of grad) each see the custom rule. Rules are written with tensor ops, so
// they are differentiated in turn at higher orders. Under jit (or with no transformation) the
// function simply runs.
//
// The transposes: a jvp rule t ↦ J·t is linear in t, so Jᵀ·c = ∇ₜ⟨c, J·t⟩; a vjp rule
// c ↦ Jᵀ·c is linear in c, so J·t = ∇_c⟨Jᵀ·c, t⟩. Both are computed with `grad` on the rule.

import { type DType, Tensor, type Trace, composite, flattenTree, fmtShape, isFloatDType, isGradEnabled, mul, sum, zeros, zerosLike, refusePromise } from '@scorch/tensor';
import { grad } from './api.js';
import { JvpTrace } from './forward.js';
import { GradNode, type NodeRule, VjpTrace } from './reverse.js';
import { BatchTrace, fromFront, vmap } from './vmap.js';

/**
 * What a jvp rule receives: the primal inputs, a tangent for each (zeros where none), the primal
 * output. `A` is the function's parameter list, so for `(x: Tensor, y: Tensor) => …` the rule's
 * `({ primals: [x, y], tangents: [tx, ty] })` are Tensors (not Tensor | undefined).
 */
export interface JvpRuleInputs<A extends readonly Tensor[] = readonly Tensor[]> {
  readonly primals: { readonly [K in keyof A]: Tensor };
  readonly tangents: { readonly [K in keyof A]: Tensor };
  readonly output: Tensor;
}

/**
 * The rule of `customVjp`. `S` is what `forward` saves (the arguments when there is no forward);
 * `A` is the function's parameter list: forward takes those arguments, and backward returns one
 * cotangent (or null) for each.
 */
export interface CustomVjpRule<S, A extends readonly Tensor[] = Tensor[]> {
  /**
   * Computes the output and what the backward rule needs (`saved`). Default: the function itself,
   * saving its arguments.
   */
  forward?: (...args: A) => { output: Tensor; saved: S };
  /** The cotangent of every argument (null for none) from the output's cotangent. */
  backward: (saved: S, cotangent: Tensor, output: Tensor) => { readonly [K in keyof A]: Tensor | null };
}

type Definition =
  | { kind: 'jvp'; name: string; f: (...args: Tensor[]) => Tensor; rule: (inputs: JvpRuleInputs) => Tensor }
  | { kind: 'vjp'; name: string; f: (...args: Tensor[]) => Tensor; rule: CustomVjpRule<unknown> };

/**
 * `f` with a custom forward-mode rule: `jvpRule({ primals, tangents, output })` returns the
 * output's tangent J·t (it must be linear in the tangents). Reverse mode uses its transpose.
 * f takes tensors and returns one tensor. It may close over tensors that transformations outside
 * the call trace; one traced by the transformation that traces its arguments must be passed as an
 * argument (else its derivative would bypass the rule): refused, saying so. So is, for
 * `backward()`, a tensor that requires grad when an argument does (detach() a constant).
 *
 *   const logsumexp = customJvp((x) => x.exp().sum().log(), ({ tangents: [t], output }) => ...);
 */
export function customJvp<A extends Tensor[]>(f: (...args: A) => Tensor, jvpRule: (inputs: JvpRuleInputs<A>) => Tensor): (...args: A) => Tensor {
  if (typeof f !== 'function' || typeof jvpRule !== 'function') throw new TypeError('customJvp: expected a function and its jvp rule, (inputs) => tangent');
  // The rule is called with one primal and one tangent per argument of f: the JvpRuleInputs<A> it takes.
  const def: Definition = { kind: 'jvp', name: f.name || 'customJvp', f: f as (...args: Tensor[]) => Tensor, rule: jvpRule as (inputs: JvpRuleInputs) => Tensor };
  return ((...args: A) => composite(() => call(def, args))) as (...args: A) => Tensor;
}

/**
 * `f` with a custom reverse-mode rule: `backward(saved, cotangent, output)` returns one
 * cotangent per argument (it must be linear in the cotangent), `forward` computes the output and
 * what backward needs. Forward mode uses the rule's transpose. f takes tensors and returns one;
 * what it may close over is as for `customJvp`.
 *
 *   const clip = customVjp((x) => x, { backward: (_, ct) => [ct.maximum(-1).minimum(1)] });
 */
export function customVjp<A extends Tensor[], S = A>(f: (...args: A) => Tensor, rule: CustomVjpRule<S, A>): (...args: A) => Tensor {
  if (typeof f !== 'function' || rule === null || typeof rule !== 'object' || typeof rule.backward !== 'function') {
    throw new TypeError('customVjp: expected a function and { backward(saved, cotangent, output), forward? }');
  }
  for (const key of Object.keys(rule)) {
    if (key !== 'forward' && key !== 'backward') throw new TypeError(`customVjp: unknown rule field '${key}'; expected forward, backward`);
  }
  const def: Definition = { kind: 'vjp', name: f.name || 'customVjp', f: f as (...args: Tensor[]) => Tensor, rule: rule as CustomVjpRule<unknown> };
  return ((...args: A) => composite(() => call(def, args))) as (...args: A) => Tensor;
}

function checkArgs(def: Definition, args: readonly unknown[]): asserts args is Tensor[] {
  args.forEach((a, i) => {
    if (!(a instanceof Tensor)) throw new TypeError(`${def.name}: argument ${i} must be a Tensor, got ${a === null ? 'null' : typeof a}`);
  });
}

function checkOutput(def: Definition, out: unknown, what: string): asserts out is Tensor {
  refusePromise(out, `${def.name}: ${what} returned a Promise; it must be synchronous and return a Tensor`);
  if (!(out instanceof Tensor)) throw new TypeError(`${def.name}: ${what} must return a Tensor, got ${out === null ? 'null' : typeof out}`);
}

function checkLike(def: Definition, value: Tensor | null, like: { readonly dtype: DType; readonly shape: readonly number[] }, what: string): void {
  if (value === null) return;
  if (!(value instanceof Tensor) || value.dtype !== like.dtype || value.shape.length !== like.shape.length || value.shape.some((d, i) => d !== like.shape[i])) {
    const got = value instanceof Tensor ? `${value.dtype} ${fmtShape(value.shape)}` : typeof value;
    throw new Error(`${def.name}: ${what} must be ${like.dtype} ${fmtShape(like.shape)} (like its primal), got ${got}`);
  }
}

/**
 * The backward rule's cotangents, checked in every mode (reverse, forward through it, and vmap's
 * batched backward): an array of one per argument, each null (zero; not undefined, 0 or false)
 * or a tensor of its argument's dtype and shape (`likes`, per example under vmap).
 */
function backwardOf(def: Definition, rule: CustomVjpRule<unknown>, saved: unknown, ct: Tensor, output: Tensor, likes: readonly { readonly dtype: DType; readonly shape: readonly number[] }[]): readonly (Tensor | null)[] {
  const name = def.name;
  const arity = likes.length;
  const cts = rule.backward(saved, ct, output);
  if (!Array.isArray(cts) || cts.length !== arity) {
    const got = Array.isArray(cts) ? `${cts.length}` : cts instanceof Tensor ? 'a Tensor, not an array' : cts === null ? 'null' : typeof cts;
    throw new Error(`${name}: the backward rule must return one cotangent (or null) per argument (${arity}), got ${got}`);
  }
  cts.forEach((g, i) => checkLike(def, g, likes[i]!, `the backward rule's cotangent ${i}`));
  return cts;
}

/** The primal output and what the vjp rule needs, one level below the current trace. */
function primal(def: Definition, args: Tensor[]): { output: Tensor; saved: unknown } {
  if (def.kind === 'vjp' && def.rule.forward) {
    const r = def.rule.forward(...args);
    checkOutput(def, r?.output, 'forward');
    return r;
  }
  const output = call(def, args);
  return { output, saved: args };
}

/** J·t for every argument's tangent (zeros where none). */
function tangentOf(def: Definition, primals: Tensor[], tangents: Tensor[], output: Tensor, saved: unknown): Tensor {
  if (def.kind === 'jvp') {
    const t = def.rule({ primals, tangents, output });
    checkOutput(def, t, 'the jvp rule');
    checkLike(def, t, output, 'the jvp rule\'s tangent');
    return t;
  }
  // J·t = ∇_c ⟨Jᵀc, t⟩, the backward rule being linear in c.
  const inner = (c: Tensor): Tensor => {
    const cts = backwardOf(def, def.rule, saved, c, output, primals);
    let total: Tensor | null = null;
    cts.forEach((g, i) => {
      if (g === null || !isFloatDType(primals[i]!.dtype)) return;
      const term = sum(mul(g, tangents[i]!));
      total = total ? total.add(term) : term;
    });
    return total ?? sum(mul(c, 0));
  };
  return grad(inner)(zerosLike(output)) as Tensor;
}

/** The reverse rule of a node: per-argument cotangents from the output's. */
function reverseRule(def: Definition, primals: Tensor[], output: Tensor, saved: unknown): NodeRule {
  return (ct, needs) => {
    if (def.kind === 'vjp') {
      const cts = backwardOf(def, def.rule, saved, ct, output, primals);
      return cts.map((g, i) => (needs[i] ? g : null));
    }
    // Jᵀc = ∇ₜ ⟨c, J·t⟩, the jvp rule being linear in t.
    const wanted = primals.flatMap((p, i) => (needs[i] && isFloatDType(p.dtype) ? [i] : []));
    if (wanted.length === 0) return primals.map(() => null);
    const inner = (...ts: Tensor[]): Tensor => {
      const tangents = primals.map((p, i) => {
        const k = wanted.indexOf(i);
        return k >= 0 ? ts[k]! : zerosLike(p);
      });
      return sum(mul(ct, tangentOf(def, primals, tangents, output, saved)));
    };
    const grads = grad(inner, { argnums: wanted.map((_, k) => k) })(...wanted.map((i) => zerosLike(primals[i]!))) as Tensor[];
    return primals.map((_, i) => {
      const k = wanted.indexOf(i);
      return k >= 0 ? grads[k]! : null;
    });
  };
}

/**
 * The definition vmap makes of `def` for arguments batched along `bdims` (null: unbatched): its
 * function, rule and forward are vmapped (outputs and saved values batched at axis 0); its
 * backward's cotangents come back at each argument's own batch axis, summed over the batch for
 * an unbatched argument.
 */
function batched(def: Definition, values: readonly Tensor[], bdims: readonly (number | null)[]): Definition {
  const f = vmap(def.f, { inAxes: [...bdims] }) as (...args: Tensor[]) => Tensor;
  const name = `vmap(${def.name})`;
  if (def.kind === 'jvp') {
    const rule = def.rule;
    const ruleB = vmap((primals: Tensor[], tangents: Tensor[], output: Tensor) => rule({ primals, tangents, output }), { inAxes: [[...bdims], [...bdims], 0] });
    return { kind: 'jvp', name, f, rule: ({ primals, tangents, output }) => ruleB([...primals], [...tangents], output) as Tensor };
  }
  const rule = def.rule;
  const forward = rule.forward;
  const perExample = values.map((v, i) => (bdims[i] === null ? v.shape : v.shape.filter((_, d) => d !== bdims[i])));
  const backward = (saved: unknown, ct: Tensor, output: Tensor): Tensor[] =>
    backwardOf(def, rule, saved, ct, output, values.map((v, i) => ({ dtype: v.dtype, shape: perExample[i]! }))).map((g, i) => g ?? zeros(perExample[i]!, { dtype: values[i]!.dtype, device: values[i]!.device }));
  const forwardB = forward
    ? (vmap((...args: Tensor[]) => {
        const r = forward(...args);
        const leaves = flattenTree(r?.saved).leaves;
        if (!leaves.every((x) => x instanceof Tensor)) throw new TypeError(`${def.name}: under vmap, forward's saved values must be tensors (or pytrees of them)`);
        return r;
      }, { inAxes: [...bdims] }) as (...args: Tensor[]) => { output: Tensor; saved: unknown })
    : undefined;
  // Saved values: the arguments at their own axes (no forward), or batched at 0 by forwardB.
  const savedAxes = forward ? 0 : [...bdims];
  const backwardB = vmap(backward, { inAxes: [savedAxes as never, 0, 0] });
  return {
    kind: 'vjp', name, f,
    rule: {
      forward: forwardB,
      backward: (saved, ct, output) =>
        (backwardB(saved, ct, output) as Tensor[]).map((g, i) => {
          const b = bdims[i];
          if (b === null || b === undefined) return sum(g, [0]);
          return fromFront(g, b);
        }),
    },
  };
}

/**
 * The function runs one level below `top` on its arguments' values; an output still traced at
 * `top` or above comes from a tensor the function closes over that `top` (or a transformation
 * inside the function's caller at that level) traces. Its derivative or batch would then pass
 * outside the rule, and wrapping the output again would leak a tracer: refused, naming the cure.
 */
function checkNotClosedOver(def: Definition, output: Tensor, top: Trace): void {
  const t = output._trace;
  if (t !== null && t.level >= top.level) {
    throw new Error(
      `${def.name}: its function closes over a tensor traced by ${top.name}, the transformation its arguments are traced by; pass that tensor to the function as an argument (the rule then covers it), or compute it inside the function`,
    );
  }
}

function call(def: Definition, args: unknown[]): Tensor {
  checkArgs(def, args);
  // The innermost (highest-level) trace among the arguments decides, as for a primitive.
  let innermost: Trace | null = null;
  for (const a of args) {
    const t = a._trace;
    if (!t) continue;
    if (!t.active) throw new Error(`${def.name}: a tensor traced by ${t.name} was used after that transformation returned`);
    if (!innermost || t.level > innermost.level) innermost = t;
  }
  const top = innermost instanceof JvpTrace || innermost instanceof VjpTrace || innermost instanceof BatchTrace ? innermost : null;
  if (top === null) {
    // No transformation of ours at the top: the function runs (jit records its operations).
    const needsAmbient = isGradEnabled() && args.some((a) => a._node !== null && a._trace === null);
    if (!needsAmbient) {
      const out = def.f(...args);
      checkOutput(def, out, 'the function');
      return out;
    }
    // PyTorch-style recording: one node with the custom rule, the function itself unrecorded.
    // The arguments' nodes are hidden while it runs (so their operations record nothing) and
    // gradients stay on: an operation that still records read another tensor that requires grad,
    // one the rule would bypass, refused as under grad.
    const nodes = args.map((a) => a._node);
    for (const a of args) a._node = null;
    let result: { output: Tensor; saved: unknown };
    try {
      result = primal(def, args);
    } finally {
      args.forEach((a, i) => { a._node = nodes[i]; });
    }
    const { saved } = result;
    let output = result.output;
    // The function returned an argument itself (clip's x => x): the node goes on a new tensor,
    // not on the argument, whose own node stays.
    if (args.includes(output)) output = output.detach();
    else if (output._node !== null) {
      throw new Error(
        `${def.name}: its function closes over a tensor that requires grad (recorded for backward()); pass that tensor to the function as an argument (the rule then covers it), or detach() it if it is a constant`,
      );
    }
    if (isFloatDType(output.dtype)) {
      const node = new GradNode('custom', null, args, output, args.map((a) => a._node as GradNode | null));
      node.rule = reverseRule(def, args, output, saved);
      output._node = node;
    }
    return output;
  }
  if (top instanceof BatchTrace) {
    // vmap: the batched definition one level down, so the rules still apply below it.
    const trace = top;
    const unpacked = args.map((a) => trace.unpack(a));
    const values = unpacked.map(([v]) => v);
    const out = call(batched(def, values, unpacked.map(([, b]) => b)), values);
    checkNotClosedOver(def, out, trace);
    return trace.wrap(out, 0);
  }
  if (top instanceof JvpTrace) {
    const unpacked = args.map((a) => top.unpack(a));
    const primals = unpacked.map(([p]) => p);
    const { output, saved } = primal(def, primals);
    checkNotClosedOver(def, output, top);
    if (!isFloatDType(output.dtype)) return output;
    const tangents = unpacked.map(([p, t]) => t ?? zerosLike(p));
    const tangent = tangentOf(def, primals, tangents, output, saved);
    return top.lift(output, tangent, `${def.name}'s output`);
  }
  const values = args.map((a) => (a._trace === top ? (top.primal(a) as Tensor) : a));
  const parents = args.map((a) => top.nodeOf(a));
  const { output, saved } = primal(def, values);
  checkNotClosedOver(def, output, top);
  if (!isFloatDType(output.dtype)) return output;
  const node = new GradNode('custom', null, values, output, parents);
  node.rule = reverseRule(def, values, output, saved);
  return top.wrap(output, node);
}
