// The Tensor class and the one dispatch point every operation passes through: `apply`.
// A tensor is either concrete (a backend handle) or a tracer owned by a transformation
// (forward- or reverse-mode autodiff, in @scorch/autograd). `apply` finds the innermost
// transformation among its inputs and lets it process the primitive; with none it runs the
// backend. The ambient reverse mode (`requiresGrad`, `backward()`) is a hook called after
// concrete operations, so this package knows nothing of differentiation itself.

import { type Backend, type BackendHandle, getBackend, listDevices } from './backend.js';
import { type DType, type TypedArray, bytesPerElement, isFloatDType, storedValue } from './dtype.js';
import { type OutputInfo, type Primitive, type PrimitiveParams, inferOutput, primitiveCallName } from './primitives.js';
import { type Shape, fmtShape, sizeOf } from './shape.js';
import { showValue } from '@scorch/options';
import * as ops from './ops.js';
import { executeProfiled, profilerSession } from './profiler.js';
import { formatValues } from './format.js';
import { countedAsTidy } from './tidyDepth.js';
import { isPlainObject } from './tree.js';

// ---------------------------------------------------------------------------------------------
// Transformations (traces)

/**
 * A transformation level. Autograd subclasses it (forward mode, reverse mode). Levels nest: the
 * trace pushed last has the highest level, and `apply` hands a primitive to the highest level
 * among its inputs' traces, which processes it by calling `apply` on lower-level values.
 */
export abstract class Trace {
  /** False once the transformation has returned; its tracers may no longer be used. */
  active = true;
  constructor(readonly level: number) {}
  /** Processes `prim` where at least one input is a tracer of this trace. */
  abstract process<P extends Primitive>(prim: P, inputs: readonly Tensor[], params: PrimitiveParams[P], out: OutputInfo): Tensor;
  /** The tensors a tracer of this trace holds (primal, tangent, ...), for memory scopes. */
  abstract children(tracer: Tensor): Tensor[];
  /** The value a tracer stands for, one level down. */
  abstract primal(tracer: Tensor): Tensor;
  abstract readonly name: string;
  /**
   * True for a transformation whose later work reads the concrete values made while it is active
   * (reverse mode: its backward pass runs after the function returns). A `tidy` inside it leaves
   * what it made to the enclosing scope, the transformation's, instead of disposing it.
   */
  readonly readsValuesLater: boolean = false;
  /**
   * `target.assign(value)` where this trace owns `target` or `value` (or is the dynamic trace):
   * a trace that can stage an in-place update (jit) implements it; others refuse.
   */
  assign?(target: Tensor, value: Tensor): void;
}

const traceStack: Trace[] = [];
/**
 * The dynamic trace (Autodidax part 3): while `jit` traces a function, every `apply` lands in its
 * program, even one whose inputs are all concrete (constants, zeros, random draws), unless a
 * higher-level transformation owns an input. Null outside tracing.
 */
let dynamicTrace: Trace | null = null;

/** Runs `fn` with `trace` (already pushed) as the dynamic trace, restoring the previous one after. */
export function withDynamicTrace<T>(trace: Trace, fn: () => T): T {
  const saved = dynamicTrace;
  dynamicTrace = trace;
  try {
    return fn();
  } finally {
    dynamicTrace = saved;
  }
}

/** The trace every operation lands in when no input outranks it (see `withDynamicTrace`). */
export function currentDynamicTrace(): Trace | null {
  return dynamicTrace;
}

/**
 * Pushes a new transformation level; `make` receives its level number. Until the matching
 * popTrace the code running is the function the transformation traces, the caller's: ops called
 * there behave as at top level (opDepth 0: an unchanged input comes back as a tensor of its own,
 * `unchanged`), as they do when the function runs untransformed.
 */
export function pushTrace<T extends Trace>(make: (level: number) => T): T {
  const t = make(traceStack.length + 1);
  traceStack.push(t);
  depthsOutsideTraces.push(opDepth);
  opDepth = 0;
  return t;
}

/** Number of transformations currently active. */
export function traceDepth(): number {
  return traceStack.length;
}

/** Pops `trace`, which must be the innermost one; its tracers become inactive. */
export function popTrace(trace: Trace): void {
  const top = traceStack.pop();
  if (top !== trace) throw new Error(`internal: trace stack out of order (popping ${trace.name}@${trace.level})`);
  opDepth = depthsOutsideTraces.pop()!;
  trace.active = false;
}

// ---------------------------------------------------------------------------------------------
// Ambient reverse mode hook (installed by @scorch/autograd)

/** What @scorch/autograd installs so concrete operations on tensors that require grad are recorded. */
export interface AmbientAutograd {
  /** Called after a concrete op whose inputs include a tensor with a graph node. */
  record(prim: Primitive, inputs: readonly Tensor[], params: unknown, out: Tensor): void;
  /** Makes `t` a leaf that accumulates `.grad`, or detaches it from the graph. */
  setRequiresGrad(t: Tensor, value: boolean): void;
  backward(t: Tensor, gradient: Tensor | undefined, opts: BackwardOptions): void;
}

export interface BackwardOptions {
  /** Record the backward pass itself, so the gradients can be differentiated again. Default false. */
  createGraph?: boolean;
}

let ambient: AmbientAutograd | null = null;
/** Operations recorded into the ambient graph so far (composite keeps what a body that recorded made). */
let ambientRecords = 0;
/** Calls of `keep` so far (composite: a body that kept a tensor may have shared its intermediates). */
let keepCalls = 0;
let gradEnabledDepth = 0; // > 0 inside noGrad-like scopes

/**
 * Installs the hooks that give tensors `requiresGrad`, `backward()` and `.grad` (the ambient
 * graph). `@scorch/autograd` calls it when imported; before that, setting `requiresGrad` throws.
 */
export function installAmbientAutograd(hooks: AmbientAutograd): void {
  ambient = hooks;
}

/** Runs `fn` with ambient gradient recording off (or on, when `enabled`), restoring it after. */
export function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const saved = gradEnabledDepth;
  gradEnabledDepth = enabled ? 0 : saved + 1;
  try {
    return fn();
  } finally {
    gradEnabledDepth = saved;
  }
}

/** Whether operations are recorded for `backward()` now: false inside `noGrad` (and `withGradMode(false, …)`). */
export function isGradEnabled(): boolean {
  return gradEnabledDepth === 0;
}

// ---------------------------------------------------------------------------------------------
// Memory scopes

const scopes: Set<Tensor>[] = [];
let liveTensors = 0;
/** Ids of concrete tensors, in creation order (jit tells tensors made while it traced from older ones). */
let nextTensorId = 0;

/** The id the next tensor (concrete or tracer) will get. */
export function tensorIdCounter(): number {
  return nextTensorId;
}

function track(t: Tensor): void {
  liveTensors++;
  scopes[scopes.length - 1]?.add(t);
}

/**
 * Collects the tensors reachable from a returned value (arrays, plain objects, tracer payloads).
 * Each container is walked once (`seen`): a result that refers to itself is finite to walk.
 */
function collectTensors(value: unknown, into: Set<Tensor>, seen = new Set<object>()): void {
  if (value instanceof Tensor) {
    if (into.has(value)) return;
    into.add(value);
    // A value a kept tracer holds goes where its stand-in in the scopes goes (see keepForTracer).
    if (value._keptStandIn) into.add(value._keptStandIn);
    if (value._trace) for (const c of value._trace.children(value)) collectTensors(c, into, seen);
    return;
  }
  const isArray = Array.isArray(value);
  // As tree.ts (jit's results, composite's ownResult): an object of null prototype is plain too.
  if (!isArray && !isPlainObject(value)) return;
  if (seen.has(value as object)) return;
  seen.add(value as object);
  for (const v of isArray ? (value as unknown[]) : Object.values(value as object)) collectTensors(v, into, seen);
}

/**
 * Runs `fn` and disposes every tensor it created that is not part of its result (tensors in the
 * returned value, arrays and plain objects are kept, and move to the enclosing scope). Inside
 * `grad` or `vjp`, whose backward pass reads them later, nothing is disposed: everything moves
 * to the enclosing scope, and the transformation frees it when it returns.
 * `fn` must be synchronous: WebGPU work it queues still runs in order. If `fn` throws (or
 * returns a Promise, which is an error), everything it created is disposed before the error
 * propagates, so a failed step does not leak.
 */
export function tidy<T>(fn: () => T): T {
  // Called as tidy(tensor) or with a name first (TF.js's tidy(name, fn)), it failed as 'fn is not a function'.
  if (typeof fn !== 'function') throw new TypeError(`tidy: expected a function to run (the tensors it makes and does not return are disposed), got ${showValue(fn)}`);
  const [result, scope] = countedAsTidy(() =>
    inScope(fn, (created) => {
      for (const t of created) t.dispose();
    }),
  );
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    refusePromise(result, 'tidy: the function returned a Promise; tidy scopes are synchronous (await outside, or dispose by hand)');
  }
  const kept = new Set<Tensor>();
  collectTensors(result, kept);
  const parent = scopes[scopes.length - 1];
  // Inside grad or vjp, the backward pass reads the values made here after this scope ends: they
  // go to the enclosing scope (grad's, which frees them when it returns; a vjp outside any scope
  // leaves its forward values to the caller), as composite leaves them under a transformation.
  const deferred = traceStack.some((t) => t.readsValuesLater);
  // A kept tracer's stand-in (keepForTracer) stays while a transformation runs: the tracers made
  // after this tidy (a tangent passed through by add, the outputs) may hold its value, which goes
  // when the transformation's scope ends and the side value is disposed.
  const tracing = traceStack.length > 0;
  for (const t of scope) {
    if (deferred || kept.has(t) || (tracing && keptStandIns.has(t))) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/**
 * Throws a TypeError with `message` when `value` is a Promise (the function given to a
 * synchronous scope or transformation was async). The abandoned Promise gets a handler first: its
 * remaining work may fail once it runs (a tensor disposed, a tracer used after its transformation
 * ended), and that rejection must not surface as an unhandled rejection, which ends a Node
 * process, after the caller has caught this error.
 */
export function refusePromise(value: unknown, message: string): void {
  if (!(value instanceof Promise)) return;
  value.catch(() => undefined);
  throw new TypeError(message);
}

/**
 * Refuses a pytree leaf that is a container the tree does not walk but that holds a
 * transformation's tracers (or the tensors `made` picks): a Map or Set with one among its values,
 * or another object (a class instance) with one among its own properties. The transformation cannot see tensors there, so it
 * would hand its tracers back, to fail at their first use with a message that blames the caller
 * for not returning them.
 */
export function refuseHiddenTracers(op: string, what: string, leaves: readonly unknown[], made: (t: Tensor) => boolean = (t) => t._trace !== null): void {
  leaves.forEach((leaf, i) => {
    const held = opaqueContainer(leaf);
    if (!held?.values.some((v) => v instanceof Tensor && made(v))) return;
    throw new TypeError(`${op}: ${what} leaf ${i} is ${held.kind} holding tensors the function computed; return tensors in arrays and plain objects (pytrees), e.g. Object.fromEntries(map)`);
  });
}

/**
 * A pytree leaf that is an object the tree does not walk (a Map, a Set, a class instance): its
 * kind in words ('a Map', 'a Model') and the values it holds (its own properties for an
 * instance), where tensors can hide from a transformation; undefined for any other leaf.
 */
export function opaqueContainer(leaf: unknown): { kind: string; values: unknown[] } | undefined {
  if (leaf === null || typeof leaf !== 'object' || leaf instanceof Tensor || ArrayBuffer.isView(leaf)) return undefined;
  const values = leaf instanceof Map ? [...leaf.values()] : leaf instanceof Set ? [...leaf] : Object.values(leaf);
  const kind = leaf instanceof Map ? 'a Map' : leaf instanceof Set ? 'a Set' : leaf.constructor?.name ? `a ${leaf.constructor.name}` : 'an object';
  return { kind, values };
}

/** `fn`'s result and the tensors it created (a new scope); if it throws, `onThrow` gets them first. */
function inScope<T>(fn: () => T, onThrow: (created: Set<Tensor>) => void): [T, Set<Tensor>] {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scopes.pop();
    onThrow(scope);
    throw err;
  }
  scopes.pop();
  return [result, scope];
}

/**
 * Runs the body of an op composed of other ops (a broadcast, softplus, logsumexp, a convolution)
 * so that, as a primitive does, it leaves only its result: the tensors the body created besides
 * the result are disposed on return, as TF.js disposes its ops' intermediates. Under a
 * transformation (grad, jvp, vmap, jit) the body runs as it is: the transformation owns its
 * tracers and frees them, and a backward pass may read them. So it does when the body recorded
 * into the ambient graph (an input requires grad), whose `backward()` reads the intermediates:
 * they are then left to the enclosing scope, as before.
 */
export function composite<T>(fn: () => T): T {
  const start = nextTensorId;
  const result = asOp(() => compositeBody(fn));
  return opDepth === 0 ? ownResult(result, start) : result;
}

/**
 * Runs `fn` as the caller's own code (outside every op: `unchanged` gives views, a tensor it
 * disposes is its own) while, as an op, leaving only its result: the tensors it created besides
 * are freed on return, or released with the result when it recorded into the ambient graph.
 * For a function run eagerly in place of its compiled program (jit's fallback for `requiresGrad`
 * inputs), whose compiled call would have left only its outputs.
 */
export function ownedScope<T>(fn: () => T): T {
  const start = nextTensorId;
  const result = compositeBody(fn);
  return opDepth === 0 ? ownResult(result, start) : result;
}

function compositeBody<T>(fn: () => T): T {
  if (traceStack.length > 0 || dynamicTrace !== null) return fn();
  const records = ambientRecords;
  const keeps = keepCalls;
  const [result, scope] = inScope(fn, (created) => releaseComposite(created, null, ambientRecords !== records, true));
  if (result instanceof Promise) {
    releaseComposite(scope, null, ambientRecords !== records, true);
    refusePromise(result, 'composite: the function returned a Promise; composite ops are synchronous (await outside)');
  }
  releaseComposite(scope, result, ambientRecords !== records, keepCalls !== keeps);
  return result;
}

/**
 * Ops running now (composite bodies, a transformation's rules for a primitive, `asOp`): 0 while
 * the code running is the caller's, outside every op (pushTrace resets it for the function a
 * transformation traces, and popTrace brings back the depth outside).
 */
let opDepth = 0;
/** opDepth outside each pushed trace, innermost last. */
const depthsOutsideTraces: number[] = [];

/** Runs `fn` as the body of an op (the ambient backward pass's rules): ops it calls return an unchanged input as it is. */
export function asOp<T>(fn: () => T): T {
  opDepth++;
  try {
    return fn();
  } finally {
    opDepth--;
  }
}

/**
 * An op's result that is its input unchanged (a reshape to its own shape, a whole slice, a cast to
 * its own dtype, a sum over no axes), as the op returns it: inside another op's body the input
 * itself (the body's caller gets the op's own result); to code outside every op a new tensor with
 * the input's values, a view of its storage (as any reshape's), as every op's result is one: disposing
 * it leaves the input alone and disposing the input leaves it readable, and under jit it is a value
 * of its own, which a later `assign` to the input does not change.
 */
export function unchanged(x: Tensor): Tensor {
  return opDepth > 0 ? x : apply('reshape', [x], { shape: x.shape });
}

/**
 * A composite op's result as its caller outside every op gets it: any tensor of it (the result, or
 * one anywhere in the arrays and plain objects it returns, as jvp's [[primals], [tangents]] or
 * valueAndGrad's [[value, aux], grads]) that existed before the op began (an id below `start`), a
 * value the body passed through, becomes `unchanged`'s new tensor. Only the containers that held
 * one are copied; the rest come back as they were.
 */
function ownResult<T>(result: T, start: number, done = new Map<object, unknown>()): T {
  if (result instanceof Tensor) return (result._id < start ? unchanged(result) : result) as T;
  if (!Array.isArray(result) && !isPlainObject(result)) return result;
  if (done.has(result)) return done.get(result) as T;
  done.set(result, result); // a cycle back to it: the container as it is
  let changed = false;
  const own = (v: unknown) => {
    const o = ownResult(v, start, done);
    if (o !== v) changed = true;
    return o;
  };
  const copy = Array.isArray(result) ? result.map(own) : Object.fromEntries(Object.entries(result).map(([k, v]) => [k, own(v)]));
  if (changed) done.set(result, copy);
  return (changed ? copy : result) as T;
}

/**
 * Intermediates of a composite op that the ambient graph may read, released with the op's
 * results: when every result the body made is disposed, no backward pass can reach them.
 */
interface Companions {
  pending: number;
  readonly tensors: readonly Tensor[];
}

/**
 * Disposes what a composite op created outside its result. When the body recorded into the
 * ambient graph (counted, since a recorded tensor the body `keep`s has left the scope) or any of
 * it is a graph node, `backward()` may read the intermediates: they go to the enclosing scope,
 * and, unless the body kept a tensor (which might reach them through the graph), they are
 * disposed once every result the body made is. Outside any `tidy` they would otherwise live for
 * good, though only the graph behind the results can reach them: a training step written with
 * `requiresGrad` that disposes its own tensors would leave a softplus's intermediates each step.
 */
function releaseComposite(scope: Set<Tensor>, result: unknown, recordedAny: boolean, keptAny: boolean): void {
  if (scope.size === 0) return;
  const parent = scopes[scopes.length - 1];
  let recorded = recordedAny;
  for (const t of scope) {
    if (t._node !== null) {
      recorded = true;
      break;
    }
  }
  const kept = new Set<Tensor>();
  collectTensors(result, kept);
  if (recorded) {
    for (const t of scope) parent?.add(t);
    if (keptAny) return;
    releaseWith([...kept].filter((t) => scope.has(t)), [...scope].filter((t) => !kept.has(t)));
    return;
  }
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
}

/**
 * @internal Hands `tensors` to the innermost open scope (a tidy, or an op's), to be freed when it
 * ends unless kept or returned; false when no scope is open (the caller then decides).
 */
export function adoptIntoScope(tensors: readonly Tensor[]): boolean {
  const scope = scopes[scopes.length - 1];
  if (!scope) return false;
  for (const t of tensors) if (!t._disposed) scope.add(t);
  return true;
}

/**
 * Disposes `tensors` once every tensor of `results` is disposed (now, if `results` is empty):
 * for intermediates that only the ambient graph behind the results reads, a composite op's or a
 * `backward({ createGraph: true })` pass's. They stay in their scope too, so a `tidy` may free
 * them first.
 */
export function releaseWith(results: readonly Tensor[], tensors: readonly Tensor[]): void {
  if (tensors.length === 0) return;
  const owners = new Set(results.filter((t) => !t.isDisposed));
  if (owners.size === 0) {
    for (const t of tensors) t.dispose();
    return;
  }
  const group: Companions = { pending: owners.size, tensors };
  for (const t of owners) (t._companions ??= []).push(group);
}

/**
 * Runs `fn` and returns its result with every tensor it created that is still alive. The
 * tensors stay owned by the enclosing scope; the caller decides what to dispose (`onThrow` is
 * given them when `fn` throws).
 */
export function collectCreated<T>(fn: () => T, onThrow?: (created: Tensor[]) => void): [T, Tensor[]] {
  const toParent = (scope: Set<Tensor>) => {
    const parent = scopes[scopes.length - 1];
    if (parent) for (const t of scope) parent.add(t);
  };
  const [result, scope] = inScope(fn, (made) => {
    toParent(made);
    onThrow?.([...made]);
  });
  toParent(scope);
  return [result, [...scope]];
}

/**
 * Checks an argument of a public op (ops.ts, nn/): a Tensor, and not disposed. Checking
 * liveness there, before any broadcasting or scalar constants, makes the error name the op the
 * caller wrote.
 */
export function checkTensor(op: string, x: unknown, what = 'argument'): asserts x is Tensor {
  if (!(x instanceof Tensor)) throw new TypeError(`${op}: ${what} must be a Tensor, got ${x === null ? 'null' : typeof x}`);
  if (x.isDisposed) {
    throw new Error(`${op}: ${what}, a ${x.dtype} ${fmtShape(x.shape)} tensor, was disposed (${x._disposedBy}) and cannot be used`);
  }
}

/** The gradients `backward()` set on `.grad` and nothing has replaced since (Tensor's grad setter). */
const accumulatedGrads = new WeakSet<Tensor>();

/**
 * @internal How `backward()` sets `target.grad` to the accumulated `value` (kept out of every
 * scope by the caller): the value it replaces is the backward pass's to free, and the new one, once
 * replaced or cleared by the user, goes to the innermost tidy open then (Tensor's grad setter).
 */
export function setAccumulatedGrad(target: Tensor, value: Tensor): void {
  const prev = target.grad;
  if (prev !== null) accumulatedGrads.delete(prev);
  target.grad = value;
  accumulatedGrads.add(value);
}

/**
 * Exempts `t` from the enclosing tidy scopes (and composite ops' scopes): it lives until disposed by hand.
 * A tracer (a side value inside grad, jvp, vmap) has no storage: the values it stands for live
 * until it is disposed, and go then if nothing else holds them (see keepForTracer).
 */
export function keep<T extends Tensor>(t: T): T {
  if (!(t instanceof Tensor)) throw new TypeError(`keep: expected a Tensor, got ${showValue(t)}`);
  keepCalls++;
  const held = new Set<Tensor>();
  collectTensors(t, held);
  if (t._trace) {
    // A disposed tracer no longer holds anything (its share would never be given back).
    if (!t._disposed) keepForTracer(t, held);
  }
  // A concrete tensor (with the stand-in of a kept tracer's value: it is the caller's now).
  else for (const s of scopes) for (const x of held) s.delete(x);
  return t;
}

/** The stand-ins keepForTracer puts in the scopes (they hold no storage), each with its value's group. */
const keptStandIns = new WeakMap<Tensor, Companions>();

/**
 * keep() of a tracer. Its owner is the user, who can dispose only the tracer, not the concrete
 * values it stands for (`held`: a jvp tracer's primal and tangent, a vjp or vmap tracer's value,
 * at every level). Each of those that a scope would free (one the transformation, or a tidy, made)
 * leaves that scope, and a stand-in without storage takes its place there: the value is freed
 * when both the stand-in and every tracer that kept it are disposed (a companions group, as a
 * composite op's intermediates go with its results). So the value lives while the side value is
 * kept, and no longer than it would have without keep once that is disposed: the stand-in goes
 * where the value would have gone, to the enclosing scope when a scope returns the value (a
 * transformation's result, which the caller owns), or with vjp's forward values, which its pullback
 * reads until the tidy around vjp ends. A value in no scope (the caller's argument, tangent or
 * closed-over tensor at top level) is not the tracer's, and is left alone. A value another tracer
 * kept already gets this one as one more holder.
 */
function keepForTracer(tracer: Tensor, held: ReadonlySet<Tensor>): void {
  for (const x of held) {
    if (x._trace || x._disposed || keptStandIns.has(x)) continue;
    const known = x._keptStandIn && keptStandIns.get(x._keptStandIn);
    if (known) {
      if (known.pending > 0) {
        known.pending++;
        (tracer._companions ??= []).push(known);
      }
      continue;
    }
    let home: Set<Tensor> | undefined;
    for (const s of scopes) if (s.delete(x)) home = s; // the innermost scope that held it
    if (!home) continue;
    const standIn = new Tensor([], x.dtype, x.device);
    const group: Companions = { pending: 2, tensors: [x] };
    keptStandIns.set(standIn, group);
    standIn._companions = [group];
    home.add(standIn);
    x._keptStandIn = standIn;
    (tracer._companions ??= []).push(group);
  }
}

export interface MemoryInfo {
  /** Concrete tensors created and not yet disposed. */
  tensors: number;
  /** Storage allocations held by all backends. */
  buffers: number;
  /** Bytes held by all backends. */
  bytes: number;
}

/**
 * Live tensors, and the buffers and bytes held by the registered backends. A backend replaced
 * under its name (a new WebGPU device after a loss) is no longer counted: its memory went with it.
 */
export function memory(): MemoryInfo {
  let buffers = 0;
  let bytes = 0;
  for (const device of listDevices()) {
    const m = getBackend(device).memory();
    buffers += m.buffers;
    bytes += m.bytes;
  }
  return { tensors: liveTensors, buffers, bytes };
}

/**
 * Frees the memory every registered backend keeps for reuse and no tensor holds (the CPU's pool of
 * freed arrays, WebGPU's pool of freed buffers); returns the bytes freed. As PyTorch's
 * `torch.cuda.empty_cache()`: `memory()`'s figures do not change (they count what tensors hold),
 * and the next steps allocate what they need again. For a long-lived page or server that is done
 * with a large piece of work. On the CPU, pooled float arrays of 1 KiB or more live in the
 * kernels' heap where SharedArrayBuffer exists (a WebAssembly memory, which cannot shrink): their
 * bytes are counted as freed and go back to the heap's free regions for later arrays, but the
 * process keeps them (the CPU backend's `memoryStats().heapBytes`); the other arrays go to the
 * garbage collector.
 */
export function releasePooledMemory(): number {
  let bytes = 0;
  for (const device of listDevices()) bytes += getBackend(device).trimPool?.() ?? 0;
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Tensor

type Operand = Tensor | number;

/** An n-dimensional array on a device, differentiable through @scorch/autograd. */
export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: string;
  /** @internal Backend storage of a concrete tensor; null for tracers and after dispose. */
  _handle: BackendHandle | null = null;
  /** @internal The transformation that owns this tracer; null for concrete tensors. */
  _trace: Trace | null = null;
  /** @internal Transformation-specific data of a tracer. */
  _payload: unknown = null;
  /** @internal Node in the ambient reverse-mode graph (see @scorch/autograd). */
  _node: unknown = null;
  /** @internal */
  _disposed = false;
  /** @internal What disposed it, for the error on a later use (default: dispose() or tidy()). */
  _disposedBy = 'by dispose() or tidy()';
  /** @internal Groups of a composite op's intermediates released when this result is disposed. */
  _companions: Companions[] | null = null;
  /** @internal For a value a kept tracer holds: its stand-in in the scopes (keepForTracer). */
  _keptStandIn: Tensor | null = null;
  /** @internal Creation order of every tensor, tracers included (tensorIdCounter; composite's ownResult). */
  readonly _id = nextTensorId++;
  /**
   * @internal Number of in-place updates of the values (`assign`, a jit program's update), as
   * PyTorch's version counter: a backward pass checks that the values a graph saved are unchanged.
   */
  _version = 0;
  private _gradValue: Tensor | null = null;

  /**
   * Gradient accumulated by `backward()` for a tensor that requires grad; owned by this tensor
   * (disposed with it). A gradient `backward()` made that is replaced or cleared (`w.grad = null`,
   * as PyTorch's `zero_grad()` leaves it) is owned by the innermost `tidy` open then, as a tensor
   * made there: disposed when that tidy ends unless it returns or keeps it. Outside any tidy it is
   * the caller's to dispose.
   */
  get grad(): Tensor | null {
    return this._gradValue;
  }

  set grad(value: Tensor | null) {
    const old = this._gradValue;
    this._gradValue = value;
    // keep() had taken it out of every scope for good: set to null inside a training step's tidy
    // without a dispose(), one gradient a step stayed alive.
    if (old !== null && old !== value && accumulatedGrads.delete(old)) adoptIntoScope([old]);
  }

  /** @internal Use the creation functions (`tensor`, `zeros`, ...) instead. */
  constructor(shape: Shape, dtype: DType, device: string) {
    // A frozen shape (another tensor's, an op's output that equals its input's) is shared as it is.
    this.shape = Object.isFrozen(shape) ? shape : Object.freeze([...shape]);
    this.dtype = dtype;
    this.device = device;
  }

  /** @internal Wraps a backend handle as a new concrete tensor. */
  static _fromHandle(handle: BackendHandle, shape: Shape, dtype: DType, backend: Backend): Tensor {
    const t = new Tensor(shape, dtype, backend.name);
    t._handle = handle;
    track(t);
    return t;
  }

  /** @internal Makes a tracer of `trace` standing for a value of the given shape and dtype. */
  static _tracer(trace: Trace, shape: Shape, dtype: DType, device: string, payload: unknown): Tensor {
    const t = new Tensor(shape, dtype, device);
    t._trace = trace;
    t._payload = payload;
    return t;
  }

  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return sizeOf(this.shape);
  }
  get isDisposed(): boolean {
    return this._disposed;
  }
  /** True for tensors whose operations are recorded for `backward()`. */
  get requiresGrad(): boolean {
    return this._node !== null;
  }
  set requiresGrad(value: boolean) {
    if (!ambient) throw new Error('requiresGrad: import @scorch/autograd to enable gradients');
    ambient.setRequiresGrad(this, value);
  }

  /** Frees the tensor's storage now. Using it afterwards is an error. Idempotent. */
  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    if (this._handle) {
      getBackend(this.device).dispose(this._handle);
      this._handle = null;
      liveTensors--;
      for (const s of scopes) s.delete(this);
    }
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
    const groups = this._companions;
    if (groups) {
      this._companions = null;
      for (const g of groups) if (--g.pending === 0) for (const t of g.tensors) t.dispose();
    }
  }

  /**
   * @internal Gives this concrete tensor new storage (same shape and dtype), freeing the old
   * unless it is the same handle (an in-place update): how `jit` applies a program's updates.
   */
  _replaceHandle(handle: BackendHandle): void {
    const old = this._live('assign');
    if (old !== handle) getBackend(this.device).dispose(old);
    this._handle = handle;
    this._version++;
  }

  /**
   * @internal The concrete tensor a tracer stands for (itself when concrete). A tracer that
   * outlived its transformation can still be read (a side value kept with `keep`); a trace with
   * no value to give (vmap's, jit's) refuses in its `primal`.
   */
  _concrete(): Tensor {
    let t: Tensor = this;
    while (t._trace) t = t._trace.primal(t);
    return t;
  }

  /** @internal Live handle, or an error naming the operation that needed it. */
  _live(op: string): BackendHandle {
    if (this._disposed || !this._handle) {
      throw new Error(`${op}: tensor ${fmtShape(this.shape)} ${this.dtype} was disposed (${this._disposedBy}) and cannot be used`);
    }
    return this._handle;
  }

  /** Reads the values into a new typed array (flat, row-major). */
  async data(): Promise<TypedArray> {
    return this._read('data');
  }
  /** Reads the values; a disposed tensor's error names `op`, the method the caller wrote. */
  private _read(op: string): Promise<TypedArray> {
    const c = this._concrete();
    return getBackend(c.device).read(c._live(op));
  }
  /** Synchronous read; only on backends that allow it (the CPU). */
  dataSync(): TypedArray {
    const c = this._concrete();
    const b = getBackend(c.device);
    if (!b.readSync) throw new Error(`dataSync: device '${c.device}' reads asynchronously; use await tensor.data()`);
    return b.readSync(c._live('dataSync'));
  }
  /** Reads the values as nested arrays (numbers; booleans for bool tensors). */
  async toArray(): Promise<NestedArray> {
    return toNested(await this._read('toArray'), this.shape, this.dtype);
  }
  /**
   * Reads the single value of a one-element tensor, as a number: a bool tensor reads as 1 or 0
   * (`toArray` gives true or false, as PyTorch's `item` and `tolist` both do).
   */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item: expected a tensor with one element, got shape ${fmtShape(this.shape)}`);
    return (await this._read('item'))[0]!;
  }

  /** Reverse-mode gradient of this scalar into every tensor that requires grad (`.grad`). */
  backward(gradient?: Tensor, opts: BackwardOptions = {}): void {
    if (!ambient) throw new Error('backward: import @scorch/autograd to enable gradients');
    ambient.backward(this, gradient, opts);
  }

  /** A tensor with the same values and no gradient connection to this one (stop-gradient). */
  detach(): Tensor {
    if (this._disposed) this._live('detach');
    return apply('stopGradient', [this], {});
  }

  /**
   * Overwrites this concrete tensor's values with `value`'s (same shape and dtype), keeping its
   * identity, `requiresGrad` and `.grad`: the way to update parameters in place. Inside a
   * function that `jit` traces, the update is staged: it happens on every call of the compiled
   * function, and later reads in the function see the new value. Views made from this tensor
   * before (slices, reshapes) keep the values they had (PyTorch's would see the write).
   */
  assign(value: Tensor): this {
    if (!(value instanceof Tensor)) throw new TypeError(`assign: expected a Tensor value, got ${value === null ? 'null' : typeof value}`);
    if (value.dtype !== this.dtype || value.shape.length !== this.shape.length || value.shape.some((d, i) => d !== this.shape[i])) {
      throw new Error(`assign: expected a ${this.dtype} ${fmtShape(this.shape)} value, got ${value.dtype} ${fmtShape(value.shape)}`);
    }
    let owner: Trace | null = dynamicTrace;
    for (const t of [this._trace, value._trace]) {
      if (t) checkActive('assign', t);
      if (t && (!owner || t.level > owner.level)) owner = t;
    }
    if (owner) {
      if (!owner.assign) throw new Error(`assign: cannot assign ${this._trace ? 'to a traced tensor' : 'a traced value'} inside ${owner.name}; return the new value from the function instead`);
      owner.assign(this, value);
      return this;
    }
    const src = value._concrete();
    const backend = getBackend(this.device);
    if (src.device !== this.device) throw new Error(`assign: value is on '${src.device}', this tensor on '${this.device}'`);
    // Both handles are checked before the copy is made, so a failed assign allocates nothing.
    const old = this._live('assign');
    const h = backend.execute('reshape', [src._live('assign')], { shape: this.shape }, { shape: [...this.shape], dtype: this.dtype });
    backend.dispose(old);
    this._handle = h;
    this._version++;
    return this;
  }

  toString(): string {
    return `Tensor(${this.dtype}, ${fmtShape(this.shape)}, ${this.device}${this._trace ? `, traced by ${this._trace.name}` : ''})`;
  }

  // Arithmetic (NumPy broadcasting; numbers adopt the tensor's dtype)
  add(b: Operand): Tensor { return ops.add(this, b); }
  sub(b: Operand): Tensor { return ops.sub(this, b); }
  mul(b: Operand): Tensor { return ops.mul(this, b); }
  div(b: Operand): Tensor { return ops.div(this, b); }
  pow(b: Operand): Tensor { return ops.pow(this, b); }
  maximum(b: Operand): Tensor { return ops.maximum(this, b); }
  minimum(b: Operand): Tensor { return ops.minimum(this, b); }
  neg(): Tensor { return ops.neg(this); }
  exp(): Tensor { return ops.exp(this); }
  log(): Tensor { return ops.log(this); }
  log1p(): Tensor { return ops.log1p(this); }
  expm1(): Tensor { return ops.expm1(this); }
  sin(): Tensor { return ops.sin(this); }
  cos(): Tensor { return ops.cos(this); }
  tanh(): Tensor { return ops.tanh(this); }
  sigmoid(): Tensor { return ops.sigmoid(this); }
  softplus(): Tensor { return ops.softplus(this); }
  silu(): Tensor { return ops.silu(this); }
  relu(): Tensor { return ops.relu(this); }
  elu(alpha?: number): Tensor { return ops.elu(this, alpha); }
  sqrt(): Tensor { return ops.sqrt(this); }
  rsqrt(): Tensor { return ops.rsqrt(this); }
  reciprocal(): Tensor { return ops.reciprocal(this); }
  abs(): Tensor { return ops.abs(this); }
  square(): Tensor { return ops.square(this); }
  floor(): Tensor { return ops.floor(this); }
  ceil(): Tensor { return ops.ceil(this); }
  round(): Tensor { return ops.round(this); }
  sign(): Tensor { return ops.sign(this); }
  erf(): Tensor { return ops.erf(this); }
  gelu(opts?: ops.GeluOptions): Tensor { return ops.gelu(this, opts); }
  clamp(min?: Operand | null, max?: Operand | null): Tensor { return ops.clamp(this, min, max); }
  // Comparisons (bool results)
  less(b: Operand): Tensor { return ops.less(this, b); }
  lessEqual(b: Operand): Tensor { return ops.lessEqual(this, b); }
  greater(b: Operand): Tensor { return ops.greater(this, b); }
  greaterEqual(b: Operand): Tensor { return ops.greaterEqual(this, b); }
  equal(b: Operand): Tensor { return ops.equal(this, b); }
  notEqual(b: Operand): Tensor { return ops.notEqual(this, b); }
  // Reductions
  sum(axes?: number | readonly number[], keepdims = false): Tensor { return ops.sum(this, axes, keepdims); }
  mean(axes?: number | readonly number[], keepdims = false): Tensor { return ops.mean(this, axes, keepdims); }
  max(axes?: number | readonly number[], keepdims = false): Tensor { return ops.max(this, axes, keepdims); }
  min(axes?: number | readonly number[], keepdims = false): Tensor { return ops.min(this, axes, keepdims); }
  logsumexp(axes?: number | readonly number[], keepdims = false): Tensor { return ops.logsumexp(this, axes, keepdims); }
  variance(axes?: number | readonly number[], opts?: ops.VarianceOptions): Tensor { return ops.variance(this, axes, opts); }
  argmax(axis?: number, opts?: ops.ArgReduceOptions): Tensor { return ops.argmax(this, axis, opts); }
  argmin(axis?: number, opts?: ops.ArgReduceOptions): Tensor { return ops.argmin(this, axis, opts); }
  cumsum(axis: number, opts?: ops.ScanOptions): Tensor { return ops.cumsum(this, axis, opts); }
  cumprod(axis: number, opts?: ops.ScanOptions): Tensor { return ops.cumprod(this, axis, opts); }
  // Linear algebra and movement
  matmul(b: Tensor): Tensor { return ops.matmul(this, b); }
  reshape(shape: readonly number[]): Tensor { return ops.reshape(this, shape); }
  transpose(perm?: readonly number[]): Tensor { return ops.transpose(this, perm); }
  permute(perm: readonly number[]): Tensor { return ops.permute(this, perm); }
  /** Broadcast to `shape` (a view); −1 keeps an axis's size, as PyTorch's `expand`. */
  expand(shape: readonly number[]): Tensor { return ops.expand(this, shape); }
  slice(begin: readonly number[], size?: readonly number[]): Tensor { return ops.slice(this, begin, size); }
  squeeze(axes?: number | readonly number[]): Tensor { return ops.squeeze(this, axes); }
  unsqueeze(axis: number): Tensor { return ops.unsqueeze(this, axis); }
  flatten(): Tensor { return ops.reshape(this, [this.size]); }
  indexSelect(axis: number, indices: Tensor | readonly number[]): Tensor { return ops.indexSelect(this, axis, indices); }
  split<const S extends number | readonly number[]>(sections: S, axis?: number): ops.SplitPieces<S> { return ops.split(this, sections, axis); }
  flip(axes?: number | readonly number[]): Tensor { return ops.flip(this, axes); }
  tile(reps: readonly number[]): Tensor { return ops.tile(this, reps); }
  cast(dtype: DType): Tensor { return ops.cast(this, dtype); }
}

/** Past this many elements Node's inspection of a tensor does not read its values. */
const INSPECT_READ_MAX = 1_000_000;

// What Node's console.log and util.inspect print for a tensor: toString() and, for a tensor the
// host reads synchronously (the CPU's) of at most INSPECT_READ_MAX elements, its values as PyTorch
// lays them out (format.ts). A tensor that only reads asynchronously (WebGPU's), a tracer inside a
// transformation, or a disposed one prints toString() and why the values are not shown. (A
// method on the prototype, not in the class body: a class's computed method name must be a
// unique symbol, and Symbol.for's is not.)
Object.defineProperty(Tensor.prototype, Symbol.for('nodejs.util.inspect.custom'), {
  value: function inspectTensor(this: Tensor): string {
    const head = this.toString();
    if (this._trace) return head;
    if (this._disposed) return `${head} (disposed)`;
    const backend = getBackend(this.device);
    if (!backend.readSync) return `${head} (values on the device: await t.data() or t.toArray())`;
    if (this.size > INSPECT_READ_MAX) return `${head} (${this.size} elements; read them with t.data())`;
    return `${head}\n${formatValues(backend.readSync(this._live('inspect')), this.shape, this.dtype)}`;
  },
});

export type NestedArray = number | boolean | NestedArray[];

function toNested(data: TypedArray, shape: Shape, dtype: DType): NestedArray {
  const conv = dtype === 'bool' ? (v: number) => v !== 0 : (v: number) => v;
  if (shape.length === 0) return conv(data[0]!);
  const build = (dim: number, offset: number): NestedArray[] => {
    const n = shape[dim]!;
    const out: NestedArray[] = new Array(n);
    if (dim === shape.length - 1) {
      for (let i = 0; i < n; i++) out[i] = conv(data[offset + i]!);
    } else {
      const stride = sizeOf(shape.slice(dim + 1));
      for (let i = 0; i < n; i++) out[i] = build(dim + 1, offset + i * stride);
    }
    return out;
  };
  return build(0, 0);
}

// ---------------------------------------------------------------------------------------------
// Dispatch

/**
 * @internal What an error about tensors on two devices tells the user to do: scorch moves
 * nothing implicitly and has no `.to(device)`; a tensor's values are copied by reading them.
 */
export const MOVE_TO_DEVICE = 'copy one to the other\'s device first: tensor(await t.data(), { shape: t.shape, dtype: t.dtype, device })';

/**
 * Applies a primitive: the single entry point of every tensor operation. The call is checked
 * here once (inputs an array of tensors, params an object whose axes, shapes, windows and other
 * values fit the primitive, and the inputs' shapes and dtypes); then the innermost transformation
 * among the inputs processes it, or, with none, the device's backend computes it (and the ambient
 * autograd hook records it).
 */
export function apply<P extends Primitive>(prim: P, inputs: readonly Tensor[], params: PrimitiveParams[P]): Tensor {
  // apply is public: params left out failed as "Cannot destructure property 'axes' of 'params'",
  // and an input that is not a tensor as 'expected a float tensor, got undefined'.
  if (!Array.isArray(inputs)) throw new TypeError(`${String(prim)}: inputs must be an array of tensors, got ${showValue(inputs)}`);
  if (params === null || typeof params !== 'object') throw new TypeError(`${String(prim)}: params must be an object (the primitive's parameters; {} for none), got ${showValue(params)}`);
  for (let i = 0; i < inputs.length; i++) {
    if (!(inputs[i] instanceof Tensor)) throw new TypeError(`${primitiveCallName(prim, params)}: input ${i} must be a Tensor, got ${showValue(inputs[i])}`);
  }
  const out = inferOutput(prim, inputs, params);
  let top: Trace | null = dynamicTrace;
  for (const x of inputs) {
    const tr = x._trace;
    if (tr) {
      checkActive(primitiveCallName(prim, params), tr);
      if (!top || tr.level > top.level) top = tr;
    }
  }
  // The transformation's rule for the primitive is the op's body.
  if (top) return asOp(() => top.process(prim, inputs, params, out));
  return applyConcrete(prim, inputs, params, out);
}

/** Throws if `trace` has returned: a tensor it traced leaked out of the function (stored outside and used later). */
export function checkActive(op: string, trace: Trace): void {
  if (!trace.active) throw new Error(`${op}: a tensor traced by ${trace.name} was used after that transformation returned; return it from the function instead`);
}

/** The device a primitive call runs on: its inputs', or its params' for a source (random, full). */
export function deviceOf<P extends Primitive>(prim: P, inputs: readonly { device: string }[], params: PrimitiveParams[P]): string {
  const device = inputs.length > 0 ? inputs[0]!.device : (params as PrimitiveParams['random']).device;
  for (const x of inputs) {
    if (x.device !== device) {
      throw new Error(`${primitiveCallName(prim, params)}: tensors are on different devices ('${device}' and '${x.device}'); ${MOVE_TO_DEVICE}`);
    }
  }
  return device;
}

function applyConcrete<P extends Primitive>(prim: P, inputs: readonly Tensor[], params: PrimitiveParams[P], out: OutputInfo): Tensor {
  const device = deviceOf(prim, inputs, params);
  const backend = getBackend(device);
  if (!backend.dtypes.includes(out.dtype)) {
    throw new Error(`${primitiveCallName(prim, params)}: device '${device}' does not support dtype ${out.dtype} (it supports ${backend.dtypes.join(', ')})`);
  }
  // A loop, and the op's name made only for the error of a disposed input.
  const handles = new Array<BackendHandle>(inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    const x = inputs[i]!;
    handles[i] = x._handle !== null && !x._disposed ? x._handle : x._live(primitiveCallName(prim, params));
  }
  const session = profilerSession();
  const handle = session ? executeProfiled(session, backend, prim, handles, inputs, params, out) : backend.execute(prim, handles, params, out);
  const result = Tensor._fromHandle(handle, out.shape, out.dtype, backend);
  if (ambient && gradEnabledDepth === 0 && isFloatDType(out.dtype) && prim !== 'stopGradient') {
    for (const x of inputs) {
      if (x._node !== null) {
        ambient.record(prim, inputs, params, result);
        ambientRecords++;
        break;
      }
    }
  }
  return result;
}

/**
 * @internal `body(c, like)` (or `body(like, c)`) where `c` is the number `value` as a concrete
 * constant of `like`'s dtype, device and shape, for a binary op with a number operand outside
 * `jit` (ops.ts calls it only while no dynamic trace is active, so no program sees it). `c` holds
 * the values the public path gives (`full` of shape [] with the value `storedValue` makes, a
 * `reshape` and an `expand` to `like`'s shape): one backend `full` of shape [1, …, 1] and, where
 * `like` has more than one element on some axis, the backend's `expand` of it (a view on the CPU
 * and WebGPU), with no intermediate tensor, output inference or composite scope. `c` is then
 * freed as a composite op frees its intermediates: now, unless the op was recorded into the
 * ambient graph (freed with the result) or runs inside a transformation (grad, jvp, vmap), whose
 * scope owns it and may read it later.
 */
export function withNumberOperand(value: number, like: Tensor, numberFirst: boolean, body: (a: Tensor, b: Tensor) => Tensor): Tensor {
  const { dtype, device, shape } = like;
  const backend = getBackend(device);
  const rank = shape.length;
  let stretched = false;
  const ones = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    ones[i] = 1;
    if (shape[i] !== 1) stretched = true;
  }
  const params: PrimitiveParams['full'] = { value: storedValue(value, dtype), shape: ones, dtype, device };
  const info: OutputInfo = { shape: ones, dtype };
  const session = profilerSession();
  const source = session ? executeProfiled(session, backend, 'full', [], [], params, info) : backend.execute('full', [], params, info);
  let handle = source;
  if (stretched) {
    const expanded: OutputInfo = { shape, dtype };
    try {
      handle = session ? executeProfiled(session, backend, 'expand', [source], [info], { shape }, expanded) : backend.execute('expand', [source], { shape }, expanded);
    } finally {
      backend.dispose(source); // the view holds the storage it reads
    }
  }
  const c = Tensor._fromHandle(handle, shape, dtype, backend);
  const records = ambientRecords;
  let result: Tensor;
  try {
    result = numberFirst ? body(c, like) : body(like, c);
  } catch (err) {
    c.dispose();
    throw err;
  }
  if (traceStack.length > 0) return result;
  if (ambientRecords !== records) releaseWith([result], [c]);
  else c.dispose();
  return result;
}

/** Bytes a concrete tensor of this shape and dtype occupies. */
export function byteSize(shape: Shape, dtype: DType): number {
  return sizeOf(shape) * bytesPerElement(dtype);
}
