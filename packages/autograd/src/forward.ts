// Forward mode: a JVP trace carries (primal, tangent) pairs through every primitive. Each
// nested `jvp` call is a new trace level, so tangents of different calls never mix
// (no perturbation confusion): d/dx [x · d/dy (x + y)] = 1.

import { type OutputInfo, type Primitive, type PrimitiveParams, Tensor, Trace, apply, checkTensor, fmtShape, isFloatDType } from '@scorch/tensor';
import { jvpRules } from './rules.js';

interface JvpPayload {
  primal: Tensor;
  tangent: Tensor;
}

/** The trace level of one `jvp` call: its tracers carry a primal and a tangent, pushed through `jvpRules`. */
export class JvpTrace extends Trace {
  readonly name = 'jvp';

  /** A tracer standing for `primal` moving in direction `tangent`; errors name `op`, the transformation called (jvp, hvp). */
  lift(primal: Tensor, tangent: Tensor, what: string, op = 'jvp'): Tensor {
    checkTensor(op, tangent, `${what} tangent`); // a Tensor, and live
    if (tangent.dtype !== primal.dtype || tangent.shape.length !== primal.shape.length || tangent.shape.some((d, i) => d !== primal.shape[i])) {
      throw new Error(`${op}: ${what} tangent is ${tangent.dtype} ${fmtShape(tangent.shape)} but its primal is ${primal.dtype} ${fmtShape(primal.shape)}; they must match`);
    }
    if (!isFloatDType(primal.dtype)) throw new TypeError(`${op}: ${what} primal has dtype ${primal.dtype}; only float tensors have tangents`);
    // The tracer takes its primal's device, and the rules mix the two: a tangent elsewhere came
    // back as it was (f = identity) or failed in whichever op first met both ('where: tensors
    // are on different devices').
    if (tangent.device !== primal.device) {
      throw new Error(`${op}: ${what} tangent is on '${tangent.device}' but its primal is on '${primal.device}'; move the tangent to its primal's device`);
    }
    return Tensor._tracer(this, primal.shape, primal.dtype, primal.device, { primal, tangent } satisfies JvpPayload);
  }

  /** Splits a value into (primal, tangent) at this level; the tangent is null off this trace. */
  unpack(t: Tensor): [Tensor, Tensor | null] {
    if (t._trace === this) {
      const p = t._payload as JvpPayload;
      return [p.primal, p.tangent];
    }
    return [t, null];
  }

  process<P extends Primitive>(prim: P, inputs: readonly Tensor[], params: PrimitiveParams[P], _out: OutputInfo): Tensor {
    const primals: Tensor[] = [];
    const tangents: (Tensor | null)[] = [];
    for (const x of inputs) {
      const [p, t] = this.unpack(x);
      primals.push(p);
      tangents.push(t);
    }
    const y = apply(prim, primals, params);
    if (!isFloatDType(y.dtype)) return y;
    const ty = (jvpRules[prim] as (typeof jvpRules)[P])(primals, tangents, y, params);
    return ty ? Tensor._tracer(this, y.shape, y.dtype, y.device, { primal: y, tangent: ty } satisfies JvpPayload) : y;
  }

  children(t: Tensor): Tensor[] {
    const p = t._payload as JvpPayload;
    return [p.primal, p.tangent];
  }

  primal(t: Tensor): Tensor {
    return (t._payload as JvpPayload).primal;
  }
}
