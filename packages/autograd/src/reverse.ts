// Reverse mode. A graph of GradNodes records which primitive made each value from which inputs;
// a backward pass walks it from the output in reverse topological order, applying vjp rules.
// Two recorders share the graph and the pass:
// - the functional trace (`vjp`, `grad`): a trace level whose tracers carry a node; its backward
//   pass runs after the level is popped, so the rules' ops are recorded by any enclosing
//   transformation, which is how grad of grad and jvp of grad come for free;
// - the ambient recorder (`requiresGrad`, `backward()`), PyTorch style: concrete tensors carry
//   nodes; `createGraph` keeps recording during the backward pass.

import {
  type OutputInfo, type Primitive, type PrimitiveParams, Tensor, Trace, add, apply, checkBoolean, checkOptions, fmtShape,
  asOp, checkActive, isFloatDType, keep, onesLike, traceDepth, withGradMode, collectCreated, releaseWith, adoptIntoScope,
  checkTensor, showValue, setAccumulatedGrad,
} from '@scorch/tensor';
import { vjpRules } from './rules.js';

/** A node's own reverse rule (a custom derivative): one cotangent per input, null where none. */
export type NodeRule = (ct: Tensor, needs: readonly boolean[]) => (Tensor | null)[];

/** One recorded operation (or a leaf). */
export class GradNode {
  /** For a value made by a function with a custom derivative: its reverse rule (prim is 'custom'). */
  rule: NodeRule | null = null;
  /** The `_version` of each input and of the output when recorded: the rule reads those values. */
  readonly versions: readonly number[];

  constructor(
    /** Primitive that produced the value ('custom' for customJvp/customVjp); null for a leaf. */
    readonly prim: Primitive | 'custom' | null,
    readonly params: unknown,
    /** Values the rule reads (one level below the recording trace). */
    readonly inputs: readonly Tensor[],
    /** The produced value. */
    readonly out: Tensor | null,
    /** Nodes of the inputs at this level; null where an input is a constant here. */
    readonly parents: readonly (GradNode | null)[],
    /** For leaves: the argument index (functional) or the tensor whose `.grad` accumulates. */
    readonly leaf: number | Tensor | null = null,
  ) {
    const versions = new Array<number>(inputs.length + 1);
    for (let i = 0; i < inputs.length; i++) versions[i] = inputs[i]!._version;
    versions[inputs.length] = out ? out._version : 0;
    this.versions = versions;
  }
}

/** Reverse topological order of the nodes reachable from `root` (iterative: graphs can be deep). */
function topoOrder(root: GradNode): GradNode[] {
  const order: GradNode[] = [];
  const visited = new Set<GradNode>([root]);
  const stack: [GradNode, number][] = [[root, 0]];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [node, i] = top;
    if (i < node.parents.length) {
      top[1] = i + 1;
      const p = node.parents[i];
      if (p && !visited.has(p)) {
        visited.add(p);
        stack.push([p, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order.reverse();
}

/** The tensors the nodes reachable from `root` hold for their rules (inputs and outputs). */
function savedTensors(root: GradNode): Set<Tensor> {
  const saved = new Set<Tensor>();
  for (const node of topoOrder(root)) {
    for (const x of node.inputs) saved.add(x);
    if (node.out) saved.add(node.out);
  }
  return saved;
}

/**
 * Refuses, before the pass makes anything, a graph it cannot run right:
 * - one whose saved values were updated in place (assign) after they were recorded: the rules
 *   would read the new values, or an output would no longer be the function of its inputs the
 *   graph says (PyTorch: 'one of the variables needed for gradient computation has been modified
 *   by an inplace operation');
 * - a leaf tensor whose `.grad`, set by hand, does not fit it: added to the cotangent, one of
 *   another shape would broadcast silently (PyTorch refuses it when assigned);
 * - a `.grad` that is not a tensor, or was disposed (disposed and not set to null): the sum with
 *   it failed midway, as 'add: first operand ... was disposed' or inside add for a non-tensor,
 *   after leaves earlier in the order had accumulated their cotangents into their `.grad`.
 */
function checkGraph(order: readonly GradNode[]): void {
  for (const node of order) {
    if (node.prim === null) {
      const target = node.leaf;
      // A leaf turned to requiresGrad = false since the forward pass gets nothing (backward()
      // skips it), so its .grad is not the pass's concern.
      if (target instanceof Tensor && !target.requiresGrad) continue;
      const g: unknown = target instanceof Tensor ? target.grad : null;
      if (g === null || g === undefined || !(target instanceof Tensor)) continue;
      const of = `the .grad of a ${target.dtype} ${fmtShape(target.shape)} tensor on '${target.device}'`;
      if (!(g instanceof Tensor)) {
        throw new TypeError(`backward: ${of} is ${showValue(g)}, not a Tensor; a .grad is a tensor of its tensor's shape, dtype and device, or null`);
      }
      if (g.isDisposed) {
        throw new Error(`backward: ${of} was disposed (by dispose() or tidy()); set it to null after disposing it to start again`);
      }
      if (g.dtype !== target.dtype || g.device !== target.device || g.shape.length !== target.shape.length || g.shape.some((d, i) => d !== target.shape[i])) {
        throw new Error(
          `backward: ${of} is ${g.dtype} ${fmtShape(g.shape)} on '${g.device}'; ` +
            'a .grad must have its tensor\'s shape, dtype and device (set it to null to start again)',
        );
      }
      continue;
    }
    [...node.inputs, node.out].forEach((x, i) => {
      if (x && x._trace === null && x._version !== node.versions[i]) {
        throw new Error(
          `backward: the ${x === node.out ? 'output' : 'input'} ${fmtShape(x.shape)} ${x.dtype} of '${node.prim}' was modified in place (assign) after ` +
            'the operation was recorded, so the recorded gradient no longer holds; run the backward pass before the update, or compute again from the updated tensor',
        );
      }
    });
  }
}

/**
 * Propagates `seed` from `root` to the leaves, calling `onLeaf` once per reached leaf with its
 * total cotangent, after the whole pass: a pass that fails midway (a saved tensor disposed, a
 * custom rule that throws) delivers nothing, where leaves earlier in the order had already
 * accumulated into their `.grad` and a caller that caught the error and ran again counted them
 * twice. Pure: it frees nothing (see `freeIntermediates`). A seed given as a function is made
 * after the graph is checked, so a refused graph leaves nothing behind.
 */
export function backwardPass(root: GradNode, seed: Tensor | (() => Tensor), onLeaf: (leaf: GradNode, ct: Tensor) => void): void {
  const order = topoOrder(root);
  checkGraph(order);
  const cts = new Map<GradNode, Tensor>([[root, typeof seed === 'function' ? seed() : seed]]);
  const reached: [GradNode, Tensor][] = [];
  for (const node of order) {
    const ct = cts.get(node);
    if (!ct) continue;
    cts.delete(node);
    if (node.prim === null) {
      reached.push([node, ct]);
      continue;
    }
    node.inputs.forEach((x, i) => {
      if (x._trace !== null || !x.isDisposed) return;
      // A tensor that requires grad (an ambient leaf), disposed by hand, is not an op's saved tensor.
      throw new Error(
        node.parents[i]?.leaf instanceof Tensor
          ? `backward: the ${x.dtype} ${fmtShape(x.shape)} tensor that requires grad, an input of '${node.prim}', was disposed (${x._disposedBy}) before backward(); dispose it after the backward pass`
          : `backward: a tensor saved for the gradient of '${node.prim}' was disposed (${x._disposedBy}); run the backward pass inside the same tidy() as the forward pass`,
      );
    });
    const needs = node.parents.map((p) => p !== null);
    const grads = node.rule
      ? node.rule(ct, needs)
      : (vjpRules[node.prim as Primitive] as (typeof vjpRules)[Primitive])(ct, node.inputs, node.out!, node.params as never, needs);
    node.parents.forEach((p, i) => {
      const g = grads[i];
      if (!p || !g) return;
      const prev = cts.get(p);
      cts.set(p, prev ? add(prev, g) : g);
    });
  }
  for (const [leaf, ct] of reached) onLeaf(leaf, ct);
}

/**
 * Frees the tensors a backward pass created, except `results`, when nothing can refer to them:
 * no transformation is active (none could have captured them) and none was recorded by the
 * ambient graph (a recorded op would have given its output a node).
 */
export function freeIntermediates(created: readonly Tensor[], results: ReadonlySet<Tensor>): void {
  if (traceDepth() > 0 || created.some((t) => t._node !== null)) return;
  for (const t of created) if (!results.has(t)) t.dispose();
}

interface VjpPayload {
  value: Tensor;
  node: GradNode;
}

/** The functional reverse-mode trace used by `vjp` and `grad`. */
export class VjpTrace extends Trace {
  readonly name = 'vjp';
  /** The backward pass reads the values the function made, after it returned. */
  override readonly readsValuesLater = true;

  /** A leaf tracer for argument `index`. */
  leafFor(value: Tensor, index: number): Tensor {
    return this.wrap(value, new GradNode(null, null, [], null, [], index));
  }

  /** A tracer of this trace standing for `value`, produced by `node`. */
  wrap(value: Tensor, node: GradNode): Tensor {
    return Tensor._tracer(this, value.shape, value.dtype, value.device, { value, node } satisfies VjpPayload);
  }

  nodeOf(t: Tensor): GradNode | null {
    return t._trace === this ? (t._payload as VjpPayload).node : null;
  }

  process<P extends Primitive>(prim: P, inputs: readonly Tensor[], params: PrimitiveParams[P], _out: OutputInfo): Tensor {
    const values = inputs.map((x) => (x._trace === this ? (x._payload as VjpPayload).value : x));
    const parents = inputs.map((x) => this.nodeOf(x));
    const y = apply(prim, values, params);
    if (!isFloatDType(y.dtype)) return y;
    return this.wrap(y, new GradNode(prim, params, values, y, parents));
  }

  children(t: Tensor): Tensor[] {
    return [(t._payload as VjpPayload).value];
  }

  primal(t: Tensor): Tensor {
    return (t._payload as VjpPayload).value;
  }
}

// Ambient (PyTorch-style) reverse mode ----------------------------------------------------------

export const ambientAutograd = {
  record(prim: Primitive, inputs: readonly Tensor[], params: unknown, out: Tensor): void {
    out._node = new GradNode(prim, params, inputs, out, inputs.map((x) => x._node as GradNode | null));
  },

  setRequiresGrad(t: Tensor, value: boolean): void {
    if (typeof value !== 'boolean') {
      throw new TypeError(`requiresGrad: must be true or false, got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`);
    }
    if (t._trace) {
      checkActive('requiresGrad', t._trace);
      throw new Error(`requiresGrad: cannot be set on a tensor traced by ${t._trace.name} (inside grad, jvp, vmap or jit)`);
    }
    const node = t._node as GradNode | null;
    if (node && node.prim !== null) {
      throw new Error('requiresGrad: can only be changed on leaf tensors; use detach() to cut a computed tensor from the graph');
    }
    if (value) {
      if (!isFloatDType(t.dtype)) throw new TypeError(`requiresGrad: only float tensors can require gradients, got ${t.dtype}`);
      if (!node) t._node = new GradNode(null, null, [], null, [], t);
    } else {
      t._node = null;
    }
  },

  backward(t: Tensor, gradient: Tensor | undefined, opts: { createGraph?: boolean }): void {
    if (gradient !== undefined && !(gradient instanceof Tensor)) {
      const got = gradient === null ? 'null' : Array.isArray(gradient) ? 'an array' : typeof gradient === 'object' ? 'an object' : typeof gradient;
      throw new TypeError(`backward: gradient must be a Tensor of the output's shape (or omitted for a scalar output), got ${got}; options go second: backward(undefined, { createGraph })`);
    }
    if (t._trace) {
      checkActive('backward', t._trace);
      throw new Error(`backward: cannot be called on a tensor traced by ${t._trace.name}; inside a transformation use grad or vjp (backward() differentiates concrete tensors that require grad)`);
    }
    // A disposed output's node still reached the graph: the pass ran (its default seed needs
    // only the shape) or failed on an intermediate its composite op had freed with it ('a
    // tensor saved for the gradient of 'sum' was disposed ... run the backward pass inside the
    // same tidy()'), which blamed the wrong tensor.
    checkTensor('backward', t, 'the tensor it was called on');
    checkOptions('backward', opts, ['createGraph']);
    checkBoolean('backward', 'createGraph', opts.createGraph);
    const root = t._node as GradNode | null;
    if (!root) {
      throw new Error('backward: this tensor does not require grad (no input had requiresGrad = true, or it was computed under noGrad)');
    }
    if (!gradient && t.size !== 1) {
      throw new Error(`backward: the output has shape ${fmtShape(t.shape)}; pass a cotangent of that shape (backward(gradient)), or reduce it to a scalar first`);
    }
    if (gradient && (gradient.dtype !== t.dtype || gradient.shape.length !== t.shape.length || gradient.shape.some((d, i) => d !== t.shape[i]))) {
      throw new Error(`backward: gradient is ${gradient.dtype} ${fmtShape(gradient.shape)} but the output is ${t.dtype} ${fmtShape(t.shape)}`);
    }
    if (gradient) checkTensor('backward', gradient, 'gradient');
    if (gradient && gradient.device !== t.device) {
      throw new Error(`backward: gradient is on '${gradient.device}' but the output is on '${t.device}'; move the gradient to the output's device`);
    }
    const createGraph = opts.createGraph ?? false;
    const delivered = new Set<Tensor>();
    const replaced: Tensor[] = [];
    // What the pass made is freed as below however it ends: a rule that throws midway left the
    // cotangents computed so far (and .grads it had replaced) alive for good.
    let created: Tensor[] = [];
    try {
      // The rules are the ops' bodies (asOp), as when a transformation runs them.
      [, created] = collectCreated(() =>
        asOp(() => withGradMode(createGraph, () => {
          backwardPass(root, () => gradient ?? onesLike(t), (leaf, ct) => {
            const target = leaf.leaf as Tensor;
            // Turned off since the forward pass (a parameter frozen mid-step): no .grad, as
            // PyTorch's AccumulateGrad skips a leaf that no longer requires grad.
            if (!target.requiresGrad) return;
            const prev = target.grad;
            // A cotangent can reach two leaves as one tensor (add passes it through), and a
            // user's gradient stays the user's: each .grad gets its own storage. A recorded pass
            // gives a new .grad a differentiable copy (a reshape primitive, as vjp does): the
            // cotangent may also be another .grad, the user's, or an input that another .grad's
            // graph reads, and disposing this .grad must not free it.
            const own = createGraph
              ? prev ? ct : apply('reshape', [ct], { shape: ct.shape })
              : delivered.has(ct) || ct === gradient ? ct.detach() : ct;
            const next = prev ? add(prev, own) : own;
            if (prev) replaced.push(prev);
            setAccumulatedGrad(target, keep(next));
            delivered.add(next);
          });
        })),
        (made) => (created = made),
      );
    } finally {
      releasePass(t, root, createGraph, created, delivered, replaced);
    }
  },
};

/**
 * Frees what an ambient backward pass made, except the .grads it delivered and what their graph
 * reads. `output` is the tensor backward() was called on, `root` its node.
 */
function releasePass(output: Tensor, root: GradNode, createGraph: boolean, created: readonly Tensor[], delivered: ReadonlySet<Tensor>, replaced: readonly Tensor[]): void {
  if (!createGraph) freeIntermediates(created, delivered);
  // The old .grad is freed only after the pass, and only if this graph did not save it: a loss
  // built from x.grad (x.grad·x, or x.grad of a createGraph pass) still reads it when x's leaf
  // comes before that use in the reverse order. Freeing it at the leaf was a use-after-free.
  const saved = replaced.length > 0 ? savedTensors(root) : new Set<Tensor>();
  const unsaved = replaced.filter((prev) => !saved.has(prev));
  // One the graph saved is still read by that graph (and by another built from the same .grad, or
  // by the new .grad's graph under createGraph), so it is not freed now; but nothing else would
  // free it (backward() took it out of every scope when it set it as .grad): a step whose loss read
  // .grad leaked it, and under createGraph the pass it came from. It goes to the tidy open around
  // this backward(), as the step's other tensors do; outside any tidy, with the output (and the
  // new .grads that read it).
  const savedOld = replaced.filter((prev) => saved.has(prev));
  if (savedOld.length > 0 && !adoptIntoScope(savedOld)) {
    for (const prev of savedOld) prev._disposedBy = 'with the loss that read it as .grad (backward() had replaced it with a new .grad); outside a tidy it lives as long as that loss';
    releaseWith(createGraph && traceDepth() === 0 ? [output, ...delivered] : [output], savedOld);
  }
  // A reference kept to the old .grad (or a tensor set as .grad by hand) then fails saying why.
  for (const prev of unsaved) prev._disposedBy = 'by backward(), which replaced it as .grad with a new tensor holding the sum; read .grad again after each backward()';
  if (!createGraph) {
    for (const prev of unsaved) prev.dispose();
  } else if (traceDepth() === 0) {
    // The new .grads' graph reads what the pass made and the .grads it replaced (their sum's
    // input), and nothing else can reach them: they go when every new .grad is disposed, as a
    // composite op's intermediates go with its results. Outside a tidy nothing freed them.
    releaseWith([...delivered], [...created.filter((t) => !delivered.has(t)), ...unsaved]);
  }
}

/** The value and node of a traced output at `trace`. */
export function unpackVjp(trace: VjpTrace, t: Tensor): [Tensor, GradNode | null] {
  if (t._trace === trace) {
    const p = t._payload as VjpPayload;
    return [p.value, p.node];
  }
  return [t, null];
}
