// Tracing a function into a Program. While a function is traced, a ProgramTrace sits at the
// bottom of the transformation stack as the dynamic trace: every `apply` lands in it (as an
// equation), including constants, random draws and stop-gradients; transformations pushed above
// it (grad, jvp) run first and emit their primitives into it. Nothing reads device data.
//
// Concrete tensors the function uses without taking them as arguments are captured: those that
// existed before tracing by reference (each call reads their current value, so a model's
// parameters updated between calls are seen), those made during tracing as a snapshot (they are
// temporaries of the trace, disposed when it ends). `assign` inside the function becomes an
// update of the program: applied on every call, and seen by later reads within the function.

import { getBackend } from './backend.js';
import type { OutputInfo, Primitive, PrimitiveParams, RandomKey } from './primitives.js';
import {
  type Equation, type InputSource, type KeyDerivation, type KeyVar, type ProgramUpdate, type ProgramVar, Program, ProgramBuilder,
  simplifyProgram,
} from './program.js';
import { type KeyObserver, copyKey, isStreamKey, withKeyObserver } from './random.js';
import { fmtShape } from './shape.js';
import {
  Tensor, Trace, checkActive, collectCreated, deviceOf, keep, popTrace, pushTrace, tensorIdCounter, traceDepth, withDynamicTrace,
} from './tensor.js';

interface Capture {
  readonly tensor: Tensor;
  /** A copy owned by the program for tensors made during tracing (null: read `tensor` by reference). */
  snapshot: Tensor | null;
}

/** The dynamic trace of `jit`: turns every primitive call into an equation. */
export class ProgramTrace extends Trace implements KeyObserver {
  readonly name = 'jit';
  readonly builder = new ProgramBuilder();
  device: string | null = null;
  /** Tensor inputs in order: arguments first (made by `argument`), then captures. */
  readonly inputs: ProgramVar[] = [];
  readonly inputSources: InputSource[] = [];
  readonly captures: Capture[] = [];
  private readonly captureVars = new Map<Tensor, ProgramVar>();
  /**
   * Argument tensor → its tracer. The function may also close over a tensor it is passed: that
   * is the argument's input too (reads see its assigns, assigns update it), as in eager mode.
   */
  private readonly argumentTracers = new Map<Tensor, { tracer: Tensor; index: number }>();
  /** Indices of the arguments the function also closed over (in first-use order). */
  readonly capturedArguments: number[] = [];
  /** Concrete tensors assigned during tracing: later reads see the assigned value. */
  private readonly assigned = new Map<Tensor, ProgramVar>();
  /** Input index → the value it takes after the call. */
  private readonly updates = new Map<number, ProgramVar>();
  readonly keyInputs: KeyVar[] = [];
  private readonly keyVars = new WeakMap<object, KeyVar>();
  /** Tensors with an id at least this were made during tracing. */
  private readonly firstTracedId = tensorIdCounter();

  private useDevice(device: string, what: string): void {
    if (this.device === null) this.device = device;
    else if (device !== this.device) {
      throw new Error(`jit: ${what} is on device '${device}' but the traced function already works on '${this.device}'; one compiled function runs on one device`);
    }
  }

  /** A tracer standing for argument tensor `value` (its `index`-th tensor leaf). */
  argument(value: Tensor, index: number): Tensor {
    this.useDevice(value.device, `argument tensor ${index}`);
    const v = this.builder.newVar(value.shape, value.dtype);
    this.inputs.push(v);
    this.inputSources.push({ kind: 'argument', index });
    const tracer = Tensor._tracer(this, value.shape, value.dtype, value.device, v);
    this.argumentTracers.set(value, { tracer, index });
    return tracer;
  }

  /**
   * The tracer of argument tensor `t`, which the function also closes over (recorded in
   * `capturedArguments`); undefined for a tensor that is not an argument.
   */
  private argumentTracer(t: Tensor): Tensor | undefined {
    const arg = this.argumentTracers.get(t);
    if (arg === undefined) return undefined;
    if (!this.capturedArguments.includes(arg.index)) this.capturedArguments.push(arg.index);
    return arg.tracer;
  }

  /** A traced key standing for key argument `index`: keys derived from it are program keys. */
  keyArgument(key: RandomKey): RandomKey {
    const k = copyKey(key);
    const v = this.builder.newKey();
    this.keyInputs.push(v);
    this.keyVars.set(k, v);
    return k;
  }

  /**
   * How to compute returned key `key` from a call's key inputs: the derivations that lead to it
   * from a key input (recorded in full: the program keeps only those its draws need), or null
   * for a key not derived from a key input (a constant).
   */
  keyOutput(key: RandomKey): ((keyInputs: readonly RandomKey[]) => RandomKey) | null {
    const target = this.keyVars.get(key);
    if (!target) return null;
    const needed = new Set<KeyVar>([target]);
    const chain: KeyDerivation[] = [];
    for (let i = this.builder.keyDerivations.length - 1; i >= 0; i--) {
      const d = this.builder.keyDerivations[i]!;
      if (!needed.has(d.out)) continue;
      chain.push(d);
      needed.add(d.input);
    }
    const keys = new Program(this.device ?? 'cpu', [], [], [...this.keyInputs], chain.reverse(), [], [], []);
    return (keyInputs) => keys.resolveKeys(keyInputs).get(target)!;
  }

  derived(kind: 'foldIn' | 'split', input: RandomKey, out: RandomKey, data: number, count?: number): void {
    const v = this.keyVars.get(input);
    if (!v) return;
    const o = this.builder.newKey();
    this.builder.keyDerivations.push(kind === 'foldIn' ? { kind, input: v, data, out: o } : { kind, input: v, count: count!, index: data, out: o });
    this.keyVars.set(out, o);
  }

  /** The program variable of a value used in the traced function. */
  varOf(t: Tensor, what: string): ProgramVar {
    if (t._trace === this) return t._payload as ProgramVar;
    if (t._trace) throw new Error(`internal: jit saw a tensor of another transformation (${t._trace.name})`);
    const arg = this.argumentTracer(t);
    if (arg) return arg._payload as ProgramVar;
    return this.assigned.get(t) ?? this.capture(t, what, false);
  }

  /** The input variable of concrete tensor `t`, captured on first use (by reference when asked). */
  private capture(t: Tensor, what: string, byReference: boolean): ProgramVar {
    const known = this.captureVars.get(t);
    if (known) return known;
    t._live(what);
    this.useDevice(t.device, `a captured ${t.dtype} ${fmtShape(t.shape)} tensor`);
    const v = this.builder.newVar(t.shape, t.dtype);
    let snapshot: Tensor | null = null;
    if (!byReference && t._id >= this.firstTracedId) {
      // Made during tracing (a host constant, say): the tensor may be disposed before the program
      // runs, so the program keeps a handle of its own (on the CPU an alias or a window of the
      // same storage, which stays allocated while the program holds it, or a dense copy of a
      // broadcast or transpose view).
      const backend = getBackend(t.device);
      const h = backend.execute('stopGradient', [t._handle!], {}, { shape: [...t.shape], dtype: t.dtype });
      snapshot = keep(Tensor._fromHandle(h, t.shape, t.dtype, backend));
    }
    this.captures.push({ tensor: t, snapshot });
    this.captureVars.set(t, v);
    this.inputs.push(v);
    this.inputSources.push({ kind: 'capture', index: this.captures.length - 1 });
    return v;
  }

  process<P extends Primitive>(prim: P, inputs: readonly Tensor[], params: PrimitiveParams[P], out: OutputInfo): Tensor {
    const device = deviceOf(prim, inputs, params);
    this.useDevice(device, `the ${prim} operation`);
    const vars = inputs.map((x) => this.varOf(x, prim));
    let key: KeyVar | undefined;
    if (prim === 'random') {
      const k = (params as PrimitiveParams['random']).key;
      key = this.keyVars.get(k);
      if (!key && isStreamKey(k)) {
        throw new Error(
          'jit: a random draw without a key inside a traced function would take one fixed key from the default stream at ' +
            'trace time and repeat the same numbers on every call; pass a key argument to the function and draw with { key } derived from it',
        );
      }
    }
    const v = this.builder.newVar(out.shape, out.dtype);
    this.builder.add(prim, vars, params, v, key);
    return Tensor._tracer(this, v.shape, out.dtype, device, v); // v.shape is frozen: shared, not copied
  }

  override assign(target: Tensor, value: Tensor): void {
    const v = this.varOf(value, 'assign');
    if (target._trace === this) {
      const old = target._payload as ProgramVar;
      const input = this.inputs.indexOf(old);
      if (input >= 0) this.updates.set(input, v);
      else {
        // A tracer that was itself assigned earlier keeps its input: find it through the updates.
        for (const [i, u] of this.updates) if (u === old) this.updates.set(i, v);
      }
      target._payload = v;
      return;
    }
    if (target._trace) throw new Error(`internal: jit cannot assign to a tensor of ${target._trace.name}`);
    const arg = this.argumentTracer(target);
    if (arg) {
      this.assign(arg, value);
      return;
    }
    const input = this.inputs.indexOf(this.capture(target, 'assign', true));
    // The target is state that outlives the call: read it by reference from now on.
    const capture = this.captures.find((c) => c.tensor === target);
    if (capture?.snapshot) {
      capture.snapshot.dispose();
      capture.snapshot = null;
    }
    this.updates.set(input, v);
    this.assigned.set(target, v);
  }

  children(): Tensor[] {
    return [];
  }

  primal(t: Tensor): Tensor {
    checkActive('jit', this);
    throw new Error(
      `jit: the values of a ${t.dtype} ${fmtShape(t.shape)} tensor are not known while its function is traced (tracing runs the ` +
        'function once on abstract values of the arguments\' shapes and dtypes); return the tensor from the function and read it ' +
        'after the call, or make the argument that decides this `static`',
    );
  }

  /** Ends tracing: the program whose outputs are `outputs` (tracers of this trace or concrete tensors). */
  finish(outputs: readonly Tensor[]): { program: Program; captures: readonly Capture[] } {
    // An output or update that is an input value gets its own copy: results never alias inputs.
    // Inputs are looked up when each output is: a tensor the function returns without using it
    // (a constant it made, one it closed over) becomes an input only as its output is read.
    const own = (v: ProgramVar): ProgramVar => {
      if (!this.inputs.some((x) => x.id === v.id)) return v;
      const c = this.builder.newVar(v.shape, v.dtype);
      this.builder.add('stopGradient', [v], {}, c);
      return c;
    };
    const outs = outputs.map((t, i) => own(this.varOf(t, `output ${i}`)));
    const updates: ProgramUpdate[] = [...this.updates].map(([input, value]) => ({ input, value: own(value) }));
    const program = new Program(
      this.device ?? 'cpu', this.inputs, this.inputSources, this.keyInputs, this.builder.keyDerivations,
      this.builder.equations as Equation[], outs, updates,
    );
    return { program: simplifyProgram(program), captures: this.captures };
  }
}

/** What tracing a function produced: the program and the tensors bound to its captured inputs. */
export interface TracedProgram {
  program: Program;
  /** Per captured input (in order): the tensor read by reference, or the program's snapshot. */
  captured: readonly Tensor[];
  /** Snapshots the program owns (dispose them with the program). */
  owned: readonly Tensor[];
  /**
   * Indices (into `tensorArgs`) of the arguments the function also closed over: the program reads
   * and updates those tensors through their argument input, so it serves only calls that pass
   * the same tensor there.
   */
  capturedArguments: readonly number[];
  /**
   * Random keys the function returned (`keys` of `fn`'s result): per key, a function of the call's
   * key inputs giving its value for that call (keys derived from key inputs are recomputed on the
   * host, as the program's own derivations are), or null for a constant key.
   */
  keyOutputs: readonly (((keyInputs: readonly RandomKey[]) => RandomKey) | null)[];
}

function isTensorList(outs: readonly Tensor[] | { tensors: readonly Tensor[] }): outs is readonly Tensor[] {
  return Array.isArray(outs);
}

/**
 * Traces `fn` into a program: `tensorArgs` become argument inputs (in order), `keyArgs` key
 * inputs; `fn` receives their tracers and traced keys and returns the output tensors (or
 * `{ tensors, keys }`: the output tensors and the keys it returns, see `keyOutputs`). Must be
 * called with no transformation active (jit inlines otherwise).
 */
export function traceProgram(
  fn: (tensors: readonly Tensor[], keys: readonly RandomKey[]) => readonly Tensor[] | { tensors: readonly Tensor[]; keys: readonly RandomKey[] },
  tensorArgs: readonly Tensor[],
  keyArgs: readonly RandomKey[],
): TracedProgram {
  if (traceDepth() > 0) throw new Error('internal: traceProgram called inside a transformation');
  const trace = pushTrace((level) => new ProgramTrace(level));
  let result: { program: Program; captures: readonly Capture[] };
  let keyOutputs: TracedProgram['keyOutputs'] = [];
  // Concrete tensors the function makes while traced (host constants, a flip's indices) are
  // temporaries of the trace: the program holds its own snapshot of those it reads. They are
  // disposed when the trace ends, unless kept (`keep` takes them out of the scope) or read by
  // reference as state the program updates.
  let created: Tensor[] = [];
  try {
    const tracers = tensorArgs.map((t, i) => trace.argument(t, i));
    const keys = keyArgs.map((k) => trace.keyArgument(k));
    [result, created] = collectCreated(
      () =>
        withKeyObserver(trace, () =>
          withDynamicTrace(trace, () => {
            const outs = fn(tracers, keys);
            if (isTensorList(outs)) return trace.finish(outs);
            keyOutputs = outs.keys.map((k) => trace.keyOutput(k));
            return trace.finish(outs.tensors);
          }),
        ),
      (made) => (created = made),
    );
  } catch (e) {
    popTrace(trace);
    for (const c of trace.captures) c.snapshot?.dispose();
    for (const t of created) if (t._trace === null) t.dispose();
    throw e;
  }
  popTrace(trace);
  const byReference = new Set(result.captures.flatMap((c) => (c.snapshot ? [] : [c.tensor])));
  for (const t of created) if (t._trace === null && !byReference.has(t)) t.dispose();
  const captured = result.captures.map((c) => c.snapshot ?? c.tensor);
  const owned = result.captures.flatMap((c) => (c.snapshot ? [c.snapshot] : []));
  return { program: result.program, captured, owned, keyOutputs, capturedArguments: trace.capturedArguments };
}
