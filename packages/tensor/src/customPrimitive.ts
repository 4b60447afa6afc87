// definePrimitive: a new primitive for kernel researchers, with its CPU implementation, its
// WebGPU kernel (an elementwise WGSL expression the jit fuser inlines, or a whole compute
// shader), its jvp and vjp rules written with tensor ops and, optionally, its batching rule.
// The result is a function on tensors that goes through `apply` like every built-in op, so it
// works eagerly and under grad, jvp, vmap and jit (JAX's `Primitive` + `def_impl` +
// `defjvp`/`deflinear` + `batching.primitive_batchers`, gathered into one object).

import { checkOptions } from '@scorch/options';
import { PRIMITIVES } from './primitives.js';
import {
  type PrimitiveDefinition, findPrimitiveDefinition, registerDefinition,
} from './primitiveRegistry.js';
import { broadcastShapes, shapesEqual } from './shape.js';
import { Tensor, apply, composite } from './tensor.js';
import { broadcastTo, scalarLike } from './ops.js';

/** A defined primitive: call it on tensors (numbers take the first tensor's dtype and device). */
export interface DefinedPrimitive {
  (...inputs: (Tensor | number)[]): Tensor;
  readonly definition: PrimitiveDefinition;
}

const COMMON_KEYS = ['name', 'kind', 'inputs', 'cpu', 'wgsl', 'jvp', 'vjp', 'batch'];
const ELEMENTWISE_WGSL_KEYS = ['expression', 'functions'];
const SHADER_WGSL_KEYS = ['code', 'workgroupSize', 'dispatch'];
/** WGSL reserves identifiers that begin with two underscores; names become part of `cp_<name>`. */
const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

function fail(where: string, msg: string): never {
  throw new Error(`${where}: ${msg}`);
}

function checkFunction(where: string, what: string, f: unknown, required = true): void {
  if (f === undefined && !required) return;
  if (typeof f !== 'function') fail(where, `'${what}' must be a function, got ${f === undefined ? 'nothing' : typeof f}`);
}

/**
 * Defines a primitive and returns the function that applies it.
 *
 *   const softplusSquare = definePrimitive({
 *     name: 'softplusSquare', kind: 'elementwise', inputs: ['x'],
 *     cpu: (x) => (Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)))) ** 2,
 *     wgsl: { expression: 'softplusSquare_f(x)', functions: 'fn softplusSquare_f(x: f32) -> f32 { … }' },
 *     jvp: ([x], [t], y) => (t ? mul(t, derivative(x)) : null),
 *     vjp: (ct, [x]) => [mul(ct, derivative(x))],
 *   });
 *
 * Kinds: 'elementwise' (inputs of one float dtype, broadcast to one shape; `cpu` is per element;
 * `wgsl.expression` is fused into neighbouring kernels under jit) or 'shader' (`infer` gives the
 * output, `cpu` fills a host array, `wgsl.code` is a whole compute shader; see ShaderWgsl for
 * its bindings). Rules get null for zero tangents and may return null for zero results.
 * Without `batch`, vmap batches an elementwise primitive like a built-in one (batched operands
 * moved to the front, unbatched ones broadcast) and a shader primitive one example at a time
 * (a loop of slices, then a concat: correct, not fast; give `batch` to do better).
 * Names are global and final: defining a name twice, or a built-in's name, is an error.
 */
export function definePrimitive(def: PrimitiveDefinition): DefinedPrimitive {
  const where = 'definePrimitive';
  if (def === null || typeof def !== 'object') fail(where, `expected a definition object, got ${def === null ? 'null' : typeof def}`);
  const name = (def as { name?: unknown }).name;
  if (typeof name !== 'string' || !NAME.test(name)) {
    fail(where, `name must be letters, digits and '_' starting with a letter, got ${JSON.stringify(name)}`);
  }
  const at = `${where}('${name}')`;
  if ((PRIMITIVES as readonly string[]).includes(name) || name === 'custom') fail(at, `'${name}' is a built-in primitive; choose another name`);
  if (findPrimitiveDefinition(name)) fail(at, `a primitive named '${name}' is already defined; names are unique`);
  if (def.kind !== 'elementwise' && def.kind !== 'shader') fail(at, `kind must be 'elementwise' or 'shader', got ${JSON.stringify((def as { kind?: unknown }).kind)}`);
  checkOptions(at, def, def.kind === 'shader' ? [...COMMON_KEYS, 'infer'] : COMMON_KEYS);
  if (!Array.isArray(def.inputs) || def.inputs.length === 0 || def.inputs.some((n) => typeof n !== 'string' || !NAME.test(n))) {
    fail(at, `inputs must be a non-empty array of names (letters, digits, '_'), got ${JSON.stringify(def.inputs)}`);
  }
  if (new Set(def.inputs).size !== def.inputs.length) fail(at, `input names must differ, got ${JSON.stringify(def.inputs)}`);
  checkFunction(at, 'cpu', def.cpu);
  checkFunction(at, 'jvp', def.jvp);
  checkFunction(at, 'vjp', def.vjp);
  checkFunction(at, 'batch', def.batch, false);
  if (def.wgsl === null || typeof def.wgsl !== 'object') fail(at, `'wgsl' must be an object, got ${def.wgsl === null ? 'null' : typeof def.wgsl}`);
  if (def.kind === 'elementwise') {
    checkOptions(`${at} wgsl`, def.wgsl, ELEMENTWISE_WGSL_KEYS);
    if (typeof def.wgsl.expression !== 'string' || def.wgsl.expression.trim() === '') fail(at, `wgsl.expression must be a non-empty WGSL expression`);
    if (def.wgsl.functions !== undefined && typeof def.wgsl.functions !== 'string') fail(at, `wgsl.functions must be WGSL source text`);
  } else {
    checkOptions(`${at} wgsl`, def.wgsl, SHADER_WGSL_KEYS);
    checkFunction(at, 'infer', def.infer);
    const code = def.wgsl.code;
    if (typeof code !== 'string' && typeof code !== 'function') fail(at, `wgsl.code must be WGSL source text or a function of the call's shapes`);
    const ws = def.wgsl.workgroupSize;
    if (!Array.isArray(ws) || ws.length !== 3 || ws.some((d) => !Number.isInteger(d) || d < 1)) {
      fail(at, `wgsl.workgroupSize must be three positive integers, got ${JSON.stringify(ws)}`);
    }
    checkFunction(at, 'wgsl.dispatch', def.wgsl.dispatch, false);
  }
  const frozen = Object.freeze({ ...def, inputs: Object.freeze([...def.inputs]), wgsl: Object.freeze({ ...def.wgsl }) }) as PrimitiveDefinition;
  registerDefinition(frozen);
  const params = Object.freeze({ name });
  const fn = ((...args: (Tensor | number)[]) => {
    if (args.length !== frozen.inputs.length) {
      fail(name, `expected ${frozen.inputs.length} input(s) (${frozen.inputs.join(', ')}), got ${args.length}`);
    }
    const first = args.find((a): a is Tensor => a instanceof Tensor);
    if (!first) fail(name, 'at least one input must be a Tensor (a number takes the first tensor\'s dtype and device)');
    args.forEach((a, i) => {
      if (typeof a !== 'number' && !(a instanceof Tensor)) fail(name, `input ${i} (${frozen.inputs[i]}) must be a Tensor or a number, got ${typeof a}`);
    });
    const run = () => {
      const tensors = args.map((a) => (typeof a === 'number' ? scalarLike(a, first) : a));
      return apply('custom', frozen.kind === 'elementwise' ? broadcastAll(name, tensors) : tensors, params);
    };
    // Numbers made constants and operands broadcast are intermediates: a composite scope frees
    // them, as a built-in binary op's (only the calls that make any pay for the scope).
    const direct = args.every((a) => a instanceof Tensor && (frozen.kind === 'shader' || shapesEqual(a.shape, first.shape)));
    return direct ? run() : composite(run);
  }) as DefinedPrimitive;
  Object.defineProperty(fn, 'definition', { value: frozen });
  Object.defineProperty(fn, 'name', { value: name });
  return fn;
}

/**
 * The inputs of an elementwise primitive broadcast to one shape (NumPy rules). An input already
 * of that shape is passed as it is: broadcastTo makes a new view even then, which the direct call
 * (no composite scope) would leave alive, holding the input's storage.
 */
function broadcastAll(name: string, xs: readonly Tensor[]): Tensor[] {
  let shape = xs[0]!.shape;
  for (const x of xs.slice(1)) shape = broadcastShapes(name, shape, x.shape);
  return xs.map((x) => (shapesEqual(x.shape, shape) ? x : broadcastTo(x, shape)));
}
