// `jit`: trace a function once per signature into a program, compile it for its device, and
// replay it. Arguments and results are pytrees (arrays and plain objects) whose tensor leaves
// are the program's inputs and outputs; random keys (from randomKey/splitKey/foldIn) are key
// inputs, so a new key per call does not retrace; every other leaf (numbers, strings, objects)
// is a compile-time constant that is part of the cache key. Under another transformation (grad,
// jvp, or an outer jit) a jitted function runs its body inline, so every composition works.

import {
  type Backend, type CompiledProgram, type KernelInfo, type Program, type RandomKey, type TreeDef, Tensor, checkActive, checkOptions,
  flattenTree, getBackend, interpretProgram, isGradEnabled, isPlainObject, isRandomKey, objectId, traceDepth, traceProgram,
  treeDefKey, unflattenTree, refusePromise, refuseHiddenTracers, opaqueContainer, ownedScope, tensorIdCounter,
} from '@scorch/tensor';

export interface JitOptions {
  /**
   * Indices of arguments passed to the function as they are, never traced: compared by value
   * (numbers, strings, and arrays and plain objects by their contents) or identity (tensors,
   * class instances, functions) to pick the compiled program, and tensors inside them are read
   * when called like tensors the function closes over. Default none.
   */
  static?: readonly number[];
  /**
   * Arguments whose storage the call may reuse: an index, or the key of a plain-object argument
   * (`jit(step, { donate: ['params', 'state'] })` for `step({ params, state, batch })`). A donated
   * tensor the function does not `assign` is consumed (disposed) by the call, as JAX's
   * donate_argnums; one it assigns keeps its identity, its new value computed into a new buffer
   * (neither backend updates the donated buffer in place yet: docs/jit.md). Default none.
   */
  donate?: readonly (number | string)[];
  /**
   * Print every program this function compiles: each kernel with the equations it covers and its
   * source (WGSL on WebGPU). true prints with console.log; a function receives the text. Default false.
   */
  printKernels?: boolean | ((text: string) => void);
}

const JIT_OPTION_KEYS = ['static', 'donate', 'printKernels'] as const satisfies readonly (keyof JitOptions)[];

/** A jitted function: call it like the original; inspect what it runs with `lower`. */
export interface JittedFunction<A extends unknown[], R> {
  (...args: A): R;
  /** Traces and compiles for these arguments (without running): the program and its kernels. */
  lower(...args: A): LoweredProgram;
  /**
   * Compiled programs held (one per signature seen, and per way its arguments alias tensors the
   * function closes over), at most 64: beyond that the least recently used is freed. All are
   * freed when the jitted function is garbage collected.
   */
  readonly cacheSize: number;
  /** Times the function has been traced (a new signature, or after `clearCache`). */
  readonly traceCount: number;
  /** Frees every compiled program and the constants it holds. */
  clearCache(): void;
}

export interface LoweredProgram {
  readonly program: Program;
  /** The program as compiled for its device (what each call runs). */
  readonly compiled: CompiledProgram;
  /** The kernels one call launches, in order, with their source. */
  kernels(): readonly KernelInfo[];
  /** The program, then each kernel with the equations it covers and its source, as text. */
  describe(): string;
}

/** The text of `LoweredProgram.describe` (also what `printKernels` prints). */
function describeCompiled(compiled: CompiledProgram): string {
  const program = compiled.program;
  const lines = program.equationLines();
  const kernels = compiled.kernels();
  const parts = [`program (${program.equations.length} equations, ${kernels.length} kernels):`, program.toString(), ''];
  kernels.forEach((k, i) => {
    parts.push(`-- kernel ${i + 1}/${kernels.length}: ${k.name} (${k.equations.length} equations)`);
    for (const e of k.equations) parts.push(`   ${lines[e]}`);
    parts.push(k.source.trim(), '');
  });
  return parts.join('\n');
}

/** One compiled signature. */
interface Entry {
  compiled: CompiledProgram;
  /**
   * The backend it was compiled for. A device lost and opened again (initWebGPU) registers a new
   * backend under the same name: the entry's program belongs to the lost one and is built anew.
   */
  backend: Backend;
  captured: readonly Tensor[];
  owned: readonly Tensor[];
  /**
   * The captured tensors read by reference (not snapshots): a call that passes one of them as an
   * argument needs a program that reads it through that argument, so this one does not serve it.
   */
  byReference: readonly Tensor[];
  /** `byReference` as a set. */
  byReferenceSet: ReadonlySet<Tensor>;
  /**
   * The argument tensors the function also closed over, by their index in the call's distinct
   * tensors: the program reads the closed-over tensor through the argument, so it serves only
   * calls that pass that same tensor there.
   */
  closedArguments: readonly { index: number; tensor: Tensor }[];
  outDef: TreeDef;
  /** Per output leaf: the output index, or -1 for a static leaf (returned as traced). */
  outSlots: readonly number[];
  staticOutLeaves: readonly unknown[];
  /**
   * Per output leaf: for a random key derived from a key argument, its value for a call's keys
   * (recomputed every call, as eager mode would return it); undefined otherwise.
   */
  keyOutLeaves: readonly (((keys: readonly RandomKey[]) => RandomKey) | undefined)[];
  /**
   * Per program input: whether a call consumes it (`donate`). It follows from the signature (the
   * argument count and each argument's structure and keys), so it is worked out on the entry's
   * first call and reused.
   */
  donated?: readonly boolean[];
}

/** At this many cached signatures a jitted function warns once that something changes every call. */
const RETRACE_WARNING = 32;
/** Signatures kept per function; the least recently used is freed beyond. */
const CACHE_LIMIT = 64;

/** Frees a compiled signature: its program (temps, buffers) and the constants it owns. */
function freeEntry(entry: Entry): void {
  entry.compiled.dispose();
  for (const t of entry.owned) t.dispose();
}

/**
 * Frees the compiled programs of a jitted function once the function itself is garbage (a
 * closure jitted anew inside a loop, a notebook cell run again). Without it they were never
 * disposed: the garbage collector took the arrays, but the backend still counted their temps as
 * live (memory() grew by each dropped function's temps), and on WebGPU their buffers never went
 * back to the pool. The held value is the function's cache, which does not reference the
 * function, so registering does not keep the function alive.
 */
const unreachableJits = new FinalizationRegistry<Map<string, Entry[]>>((cache) => {
  for (const variants of cache.values()) for (const e of variants) freeEntry(e);
  cache.clear();
});

/**
 * The jitted function of each lowered program: a LoweredProgram holds its function, so the
 * program it hands out (`compiled`, which a caller may run) is not freed while it is held.
 */
const loweredOwners = new WeakMap<LoweredProgram, object>();

/**
 * A static value's part of the signature: numbers, strings, booleans by value; arrays, typed
 * arrays and plain objects by their contents (a new `{ scale: 2 }` literal each call is the same
 * program, and one changed in place between calls is a new one); anything else (a tensor, a class
 * instance, a function) by identity.
 */
function staticKey(value: unknown, open = new Set<object>()): string {
  if (value === undefined) return 'u';
  if (typeof value === 'number') return Object.is(value, -0) ? 'n-0' : `n${value}`;
  if (typeof value === 'string') return `s${JSON.stringify(value)}`;
  if (typeof value === 'boolean' || value === null || typeof value === 'bigint') return `v${String(value)}`;
  if ((Array.isArray(value) || isPlainObject(value)) && !open.has(value)) {
    // A container inside itself is named by identity where it recurs.
    open.add(value);
    const key = Array.isArray(value)
      ? `[${value.map((v) => staticKey(v, open)).join(',')}]`
      : `{${Object.keys(value).map((k) => `${JSON.stringify(k)}:${staticKey((value as Record<string, unknown>)[k], open)}`).join(',')}}`;
    open.delete(value);
    return key;
  }
  // By contents, as an array: one refilled in place between calls is a new value. −0 apart from
  // 0, as a static number is (String(−0) is "0": a Float32Array [−0] replayed [0]'s program).
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const element = (v: number | bigint) => (Object.is(v, -0) ? '-0' : String(v));
    return `b${value.constructor.name}[${Array.from(value as unknown as ArrayLike<number | bigint>, element).join(',')}]`;
  }
  if (typeof value === 'object' || typeof value === 'function') return `o${objectId(value)}`;
  return `?${String(value)}`;
}

/**
 * Refuses a traced argument's leaf the signature would key by identity while its contents change
 * unseen: a typed array (a batch buffer refilled in place replayed the first call's values, made
 * a constant of the program) and a class instance, Map or Set holding tensors (a tensor replaced
 * in it was never read again). JAX makes the first an input and refuses the second.
 */
function refuseOpaqueLeaf(what: string, leaf: unknown): void {
  if (ArrayBuffer.isView(leaf) && !(leaf instanceof DataView)) {
    throw new TypeError(`${what} is a ${leaf.constructor.name}: pass its values as a tensor (tensor(array)), an input of the program, or list the argument in static (then compared by its contents)`);
  }
  const held = opaqueContainer(leaf);
  if (!held?.values.some((v) => v instanceof Tensor)) return;
  throw new TypeError(`${what} is ${held.kind} holding tensors, which jit cannot see as inputs (a tensor replaced in it would not be seen); pass them in arrays and plain objects (a pytree), e.g. { w: model.w }`);
}

/**
 * Compiles `f`: the first call with a given signature (argument structure, tensor shapes, dtypes
 * and devices, static values) traces `f` into a program and compiles it for the device (fused
 * kernels on WebGPU); later calls with that signature run the compiled program without running
 * `f`'s JavaScript, touching the host once per call.
 *
 * The function must be pure apart from `assign`: an `assign` to an argument or to a tensor it
 * closes over is applied on every call. Values cannot be read inside it (there are none while
 * it is traced); random numbers must use keys derived from a key argument.
 *
 * While gradients are recorded (not under `noGrad`), a call that an argument or closed-over
 * tensor of the ambient graph (`requiresGrad`) reaches runs `f` eagerly, so `backward()` works
 * through it; under `noGrad`, or with detached tensors, it runs the compiled program.
 */
export function jit<A extends unknown[], R>(f: (...args: A) => R, opts: JitOptions = {}): JittedFunction<A, R> {
  if (typeof f !== 'function') throw new TypeError(`jit: expected a function, got ${f === null ? 'null' : typeof f}`);
  checkOptions('jit', opts, JIT_OPTION_KEYS);
  if (opts.printKernels !== undefined && typeof opts.printKernels !== 'boolean' && typeof opts.printKernels !== 'function') {
    throw new TypeError(`jit: printKernels must be a boolean or a function (text) => void, got ${typeof opts.printKernels}`);
  }
  // Lists, not one index or key: a number is not iterable, and a string iterates as its characters.
  if (opts.static !== undefined && !Array.isArray(opts.static)) throw new TypeError(`jit: static must be an array of argument indices (e.g. [1]), got ${JSON.stringify(opts.static) ?? typeof opts.static}`);
  if (opts.donate !== undefined && !Array.isArray(opts.donate)) throw new TypeError(`jit: donate must be an array of argument indices or keys (e.g. [0] or ['params']), got ${JSON.stringify(opts.donate) ?? typeof opts.donate}`);
  const staticArgs = new Set(opts.static ?? []);
  for (const i of staticArgs) if (!Number.isInteger(i) || i < 0) throw new RangeError(`jit: static must list argument indices (non-negative integers), got ${JSON.stringify(opts.static)}`);
  const donate = opts.donate ?? [];
  for (const d of donate) {
    if (!(typeof d === 'string' || (Number.isInteger(d) && d >= 0))) throw new TypeError(`jit: donate lists argument indices or argument keys, got ${JSON.stringify(d)}`);
    // A static argument is a value of the signature, not an input the program could consume: the
    // donation was dropped without a word.
    if (typeof d === 'number' && staticArgs.has(d)) throw new Error(`jit: argument ${d} is listed in both static and donate; a static argument is part of the signature and is never consumed, so it cannot be donated`);
  }
  /**
   * Per signature: its compiled programs, most recently used first. One signature has more than
   * one when calls differ in which closed-over tensors they also pass as arguments.
   */
  const cache = new Map<string, Entry[]>();
  let entryCount = 0;
  let traces = 0;
  let warned = false;

  /** Splits the arguments into tensor leaves, key leaves and the signature. */
  const analyse = (args: A) => {
    // A static index past the arguments is a mistake (JAX refuses it too): left alone, the
    // argument meant would be traced, or a number become a constant of the program silently.
    for (const i of staticArgs) if (i >= args.length) throw new RangeError(`jit: static names argument ${i}, but the function was called with ${args.length}`);
    const traced = args.map((a, i) => (staticArgs.has(i) ? undefined : a));
    const { leaves, def } = flattenTree(traced, isRandomKey);
    // One program input per distinct tensor: a tensor passed twice (or inside two arguments) is one
    // tracer, so an `assign` to it is seen through both, as in eager mode. Which leaves repeat
    // which is part of the signature.
    const tensors: Tensor[] = [];
    const tensorIndex = new Map<Tensor, number>();
    /** Per tensor leaf: its index in `tensors`. */
    const leafTensors: number[] = [];
    const keys: RandomKey[] = [];
    const parts: string[] = [treeDefKey(def)];
    // Which argument each leaf came from, for messages.
    const argOfLeaf = leafArguments(def);
    leaves.forEach((leaf, i) => {
      if (leaf instanceof Tensor) {
        if (leaf._trace) {
          // A tracer of an active transformation makes the call run under it (never here); an
          // inactive one leaked out of a transformation that has returned.
          checkActive(`jit argument ${argOfLeaf[i]}`, leaf._trace);
          throw new Error('internal: a traced tensor reached a top-level jit call');
        }
        leaf._live(`jit argument ${argOfLeaf[i]}`);
        const seen = tensorIndex.get(leaf);
        if (seen !== undefined) {
          leafTensors.push(seen);
          parts.push(`A${seen}`);
          return;
        }
        tensorIndex.set(leaf, tensors.length);
        leafTensors.push(tensors.length);
        tensors.push(leaf);
        parts.push(`T${leaf.dtype}[${leaf.shape.join(',')}]@${leaf.device}`);
      } else if (isRandomKey(leaf)) {
        keys.push(leaf);
        parts.push('K');
      } else {
        refuseOpaqueLeaf(`jit argument ${argOfLeaf[i]}`, leaf);
        parts.push(staticKey(leaf));
      }
    });
    args.forEach((a, i) => {
      if (staticArgs.has(i)) parts.push(`S${i}:${staticKey(a)}`);
    });
    parts.push(`n${args.length}`);
    return { leaves, def, tensors, tensorIndex, leafTensors, keys, signature: parts.join('|') };
  };

  const trace = (args: A, a: ReturnType<typeof analyse>) => {
    let outDef: TreeDef | null = null;
    let outSlots: number[] = [];
    let staticOutLeaves: unknown[] = [];
    let keyLeaves: number[] = [];
    const traced = traceProgram(
      (tracers, keys) => {
        let t = 0;
        let k = 0;
        const leaves = a.leaves.map((leaf) => (leaf instanceof Tensor ? tracers[a.leafTensors[t++]!]! : isRandomKey(leaf) ? keys[k++]! : leaf));
        const rebuilt = unflattenTree(a.def, leaves) as unknown[];
        const callArgs = args.map((arg, i) => (staticArgs.has(i) ? arg : rebuilt[i])) as A;
        const result = f(...callArgs);
        refusePromise(result, 'jit: the function returned a Promise; a jitted function must be synchronous (read values after the call)');
        const out = flattenTree(result, isRandomKey);
        refuseHiddenTracers('jit', 'output', out.leaves);
        outDef = out.def;
        const outputs: Tensor[] = [];
        outSlots = out.leaves.map((leaf) => (leaf instanceof Tensor ? outputs.push(leaf) - 1 : -1));
        staticOutLeaves = out.leaves.map((leaf) => (leaf instanceof Tensor ? undefined : leaf));
        // Returned keys go to the trace, which tells those derived from key arguments (new on
        // every call) from constant ones.
        keyLeaves = out.leaves.flatMap((leaf, i) => (isRandomKey(leaf) ? [i] : []));
        return { tensors: outputs, keys: keyLeaves.map((i) => out.leaves[i] as RandomKey) };
      },
      a.tensors,
      a.keys,
    );
    traces++;
    const keyOutLeaves: (((keys: readonly RandomKey[]) => RandomKey) | undefined)[] = outSlots.map(() => undefined);
    keyLeaves.forEach((leaf, i) => (keyOutLeaves[leaf] = traced.keyOutputs[i] ?? undefined));
    return { traced, outDef: outDef!, outSlots, staticOutLeaves, keyOutLeaves };
  };

  const build = (args: A, a: ReturnType<typeof analyse>): Entry => {
    const { traced, outDef, outSlots, staticOutLeaves, keyOutLeaves } = trace(args, a);
    const backend = getBackend(traced.program.device);
    let compiled: CompiledProgram;
    try {
      compiled = backend.compile ? backend.compile(traced.program) : interpretProgram(backend, traced.program);
    } catch (e) {
      for (const t of traced.owned) t.dispose();
      throw e;
    }
    if (opts.printKernels) {
      const text = describeCompiled(compiled);
      if (typeof opts.printKernels === 'function') opts.printKernels(text);
      else console.log(text);
    }
    const owned = new Set(traced.owned);
    const byReference = traced.captured.filter((t) => !owned.has(t));
    return {
      compiled, backend, captured: traced.captured, owned: traced.owned, byReference, byReferenceSet: new Set(byReference),
      closedArguments: traced.capturedArguments.map((index) => ({ index, tensor: a.tensors[index]! })),
      outDef, outSlots, staticOutLeaves, keyOutLeaves,
    };
  };

  /**
   * Whether `entry` serves a call: the arguments it read closed-over tensors through are those
   * tensors again, and no tensor it reads by reference is passed as an argument (which the
   * function would then see through both, as one tensor). Tracing decides which tensors are
   * closed over, so this is checked per call rather than being part of the signature.
   */
  const serves = (entry: Entry, a: ReturnType<typeof analyse>): boolean => {
    for (let i = 0; i < entry.closedArguments.length; i++) {
      const c = entry.closedArguments[i]!;
      if (a.tensors[c.index] !== c.tensor) return false;
    }
    // Whichever of the two is shorter is walked, the other looked up.
    if (a.tensors.length <= entry.byReference.length) {
      for (let i = 0; i < a.tensors.length; i++) if (entry.byReferenceSet.has(a.tensors[i]!)) return false;
    } else {
      for (let i = 0; i < entry.byReference.length; i++) if (a.tensorIndex.has(entry.byReference[i]!)) return false;
    }
    return true;
  };

  const entryFor = (args: A, a: ReturnType<typeof analyse>): Entry => {
    const variants = cache.get(a.signature);
    if (variants) {
      for (let i = 0; i < variants.length; i++) {
        const entry = variants[i]!;
        if (getBackend(entry.compiled.program.device) !== entry.backend) {
          // Compiled for a device since replaced: freed, and the call traced anew below.
          variants.splice(i--, 1);
          entryCount--;
          freeEntry(entry);
          continue;
        }
        if (!serves(entry, a)) continue;
        if (i > 0) {
          variants.splice(i, 1);
          variants.unshift(entry);
        }
        cache.delete(a.signature); // re-insert: most recently used last
        cache.set(a.signature, variants);
        return entry;
      }
    }
    const entry = build(args, a);
    if (!serves(entry, a)) throw new Error('internal: jit traced a program that does not serve its own call');
    if (variants) {
      variants.unshift(entry);
      cache.delete(a.signature);
      cache.set(a.signature, variants);
    } else {
      cache.set(a.signature, [entry]);
    }
    entryCount++;
    if (entryCount > CACHE_LIMIT) {
      const [oldest, olds] = cache.entries().next().value as [string, Entry[]];
      freeEntry(olds.pop()!);
      if (olds.length === 0) cache.delete(oldest);
      entryCount--;
    }
    if (entryCount >= RETRACE_WARNING && !warned) {
      warned = true;
      const name = f.name || 'a function';
      const keys = [...cache.keys()];
      const shapes = keys.length >= 2 ? tensorTypeChange(keys[keys.length - 2]!, a.signature) : null;
      console.warn(
        shapes
          ? `jit: ${name} has been traced for ${entryCount} different signatures; a tensor argument's shape, dtype or device changes ` +
              `between calls (${shapes}), and each new one is traced and compiled anew. Pad inputs to a few sizes (batch buckets) to reuse programs.`
          : `jit: ${name} has been traced for ${entryCount} different signatures; a non-tensor argument ` +
              '(a number, a string, an object) is a compile-time constant, so one that changes every call retraces every call. Pass it as a tensor.',
      );
    }
    return entry;
  };

  const byKey = new Set(donate.filter((d): d is string => typeof d === 'string'));
  const byIndex = new Set(donate.filter((d): d is number => typeof d === 'number'));

  const donatedArgs = (args: A): Set<number> => {
    const out = new Set<number>();
    for (const d of donate) {
      if (typeof d === 'number') {
        if (d >= args.length) throw new RangeError(`jit: donate names argument ${d}, but the function was called with ${args.length}`);
        out.add(d);
        continue;
      }
      // Static arguments are no owners: they are not donated (donatedLeaves skips them), and one
      // sharing the key's name (a config { params: 2 }) made the donation ambiguous or dropped it.
      const owners = args.flatMap((a, i) => (!staticArgs.has(i) && isPlainObject(a) && Object.hasOwn(a, d) ? [i] : []));
      if (owners.length !== 1) {
        throw new Error(`jit: donate names '${d}', which ${owners.length === 0 ? 'no' : 'more than one'} plain-object argument has as a key`);
      }
      out.add(owners[0]!);
    }
    return out;
  };

  /**
   * f run eagerly in place of its program, leaving only its results as the compiled call does
   * (run bare, every intermediate stayed alive with no handle to free it: 11 tensors a step of a
   * requiresGrad loop), and refusing a result the trace refuses: a Map, Set or class instance
   * holding tensors f made, which the scope cannot see and would free under the caller.
   */
  const eager = (args: A): R => {
    const start = tensorIdCounter();
    const result = ownedScope(() => f(...args));
    refuseHiddenTracers('jit', 'output', flattenTree(result, isRandomKey).leaves, (t) => t._id >= start);
    return result;
  };

  const run = (args: A): R => {
    const a = analyse(args);
    // A compiled program's results are outside the ambient graph (`requiresGrad`/`backward()`),
    // so while it records, a call that an input of the graph reaches runs eagerly, as the function
    // itself would. Which tensors the function closes over is known once it has been traced.
    const recording = isGradEnabled();
    if (recording && inAmbientGraph(a.tensors)) return eager(args);
    const entry = entryFor(args, a);
    if (recording && inAmbientGraph(entry.byReference)) return eager(args);
    const program = entry.compiled.program;
    const inputs: Tensor[] = program.inputSources.map((src) => {
      if (src.kind === 'argument') return a.tensors[src.index]!;
      const t = entry.captured[src.index]!;
      t._live('jit (a tensor the function closes over)');
      return t;
    });
    const backend = getBackend(program.device);
    const donated = (entry.donated ??= donatedInputs(program, args, a.leafTensors));
    const handles = entry.compiled.run(inputs.map((t) => t._handle!), a.keys, donated);
    const outputs = handles.slice(0, program.outputs.length).map((h, i) => {
      const v = program.outputs[i]!;
      return Tensor._fromHandle(h, v.shape, v.dtype, backend);
    });
    const updatedInputs = new Set<number>();
    program.updates.forEach((u, i) => {
      inputs[u.input]!._replaceHandle(handles[program.outputs.length + i]!);
      updatedInputs.add(u.input);
    });
    program.inputSources.forEach((src, i) => {
      if (donated[i] && !updatedInputs.has(i)) {
        inputs[i]!._disposedBy = 'donated to a call of a jitted function, which consumed it: jit(f, { donate })';
        inputs[i]!.dispose();
      }
    });
    const leaves = entry.outSlots.map((slot, i) => (slot >= 0 ? outputs[slot] : entry.keyOutLeaves[i]?.(a.keys) ?? entry.staticOutLeaves[i]));
    return unflattenTree(entry.outDef, leaves) as R;
  };

  /**
   * Per program input: whether it is donated. A string donation donates only that key's subtree of
   * its argument; a tensor passed more than once is donated where any of its leaves is.
   */
  const donatedInputs = (program: Program, args: A, leafTensors: readonly number[]): boolean[] => {
    if (donate.length === 0) return program.inputSources.map(() => false);
    const donatedTensor: boolean[] = [];
    donatedLeaves(args, staticArgs, donatedArgs(args), byKey, byIndex).forEach((d, leaf) => {
      const t = leafTensors[leaf]!;
      donatedTensor[t] = donatedTensor[t] === true || d;
    });
    return program.inputSources.map((src) => src.kind === 'argument' && donatedTensor[src.index] === true);
  };

  const jitted = ((...args: A): R => {
    // Under grad, jvp or an outer jit the body runs inline: the enclosing transformation sees
    // (and, for an outer jit, compiles) every operation.
    if (traceDepth() > 0) return f(...args);
    return run(args);
  }) as JittedFunction<A, R>;
  Object.defineProperties(jitted, {
    lower: {
      value: (...args: A): LoweredProgram => {
        if (traceDepth() > 0) throw new Error('jit: lower() needs concrete arguments; call it outside grad, jvp and jit');
        const entry = entryFor(args, analyse(args));
        const lowered: LoweredProgram = { program: entry.compiled.program, compiled: entry.compiled, kernels: () => entry.compiled.kernels(), describe: () => describeCompiled(entry.compiled) };
        loweredOwners.set(lowered, jitted);
        return lowered;
      },
    },
    traceOnly: {
      value: (...args: A): Program => {
        if (traceDepth() > 0) throw new Error('makeProgram: needs concrete arguments; call it outside grad, jvp and jit');
        const { traced } = trace(args, analyse(args));
        for (const t of traced.owned) t.dispose();
        return traced.program;
      },
    },
    cacheSize: { get: () => entryCount },
    traceCount: { get: () => traces },
    clearCache: {
      value: () => {
        for (const variants of cache.values()) for (const e of variants) freeEntry(e);
        cache.clear();
        entryCount = 0;
      },
    },
  });
  unreachableJits.register(jitted, cache);
  return jitted;
}

/**
 * Where two signatures differ first, when it is a tensor's type (its dtype, shape and device:
 * 'float32[3,2]@cpu then float32[5,2]@cpu'); null when they differ elsewhere first (a
 * non-tensor value, the arguments' structure) or cannot be compared part by part.
 */
function tensorTypeChange(before: string, now: string): string | null {
  const was = before.split('|');
  const is = now.split('|');
  if (was.length !== is.length) return null;
  for (let i = 0; i < is.length; i++) {
    if (was[i] === is[i]) continue;
    return was[i]!.startsWith('T') && is[i]!.startsWith('T') ? `${was[i]!.slice(1)} then ${is[i]!.slice(1)}` : null;
  }
  return null;
}

/** Whether any of `tensors` is in the ambient graph: requires grad, or was computed from one that does. */
function inAmbientGraph(tensors: readonly Tensor[]): boolean {
  for (let i = 0; i < tensors.length; i++) if (tensors[i]!._node !== null) return true;
  return false;
}

/** For each leaf of the arguments' tree (`def`, an array of one subtree per argument): the index of the argument it came from. */
function leafArguments(def: TreeDef): number[] {
  const out: number[] = [];
  const count = (d: TreeDef): number => (d.kind === 'leaf' ? 1 : d.children.reduce((n, c) => n + count(c), 0));
  if (def.kind !== 'array') throw new Error('internal: jit arguments flatten to an array');
  def.children.forEach((child, i) => {
    for (let k = count(child); k > 0; k--) out.push(i);
  });
  return out;
}

/** Per tensor leaf (in order): whether it is donated (a donated argument, or a donated key's subtree). */
function donatedLeaves(args: readonly unknown[], staticArgs: ReadonlySet<number>, argIndices: ReadonlySet<number>, byKey: ReadonlySet<string>, numeric: ReadonlySet<number>): boolean[] {
  const out: boolean[] = [];
  args.forEach((a, i) => {
    if (staticArgs.has(i)) return;
    const mark = (tree: unknown, on: boolean) => {
      for (const leaf of flattenTree(tree, isRandomKey).leaves) if (leaf instanceof Tensor) out.push(on);
    };
    if (numeric.has(i) || !argIndices.has(i) || !isPlainObject(a)) {
      mark(a, numeric.has(i));
      return;
    }
    for (const key of Object.keys(a)) mark(a[key], byKey.has(key));
  });
  return out;
}

/**
 * The program `f` traces to for these arguments (as JAX's make_jaxpr): its inputs, equations
 * and outputs, printable with `toString()`. Nothing is compiled or run.
 */
export function makeProgram<A extends unknown[]>(f: (...args: A) => unknown, opts: Pick<JitOptions, 'static'> = {}): (...args: A) => Program {
  checkOptions('makeProgram', opts, ['static']);
  const j = jit(f, opts) as JittedFunction<A, unknown> & { traceOnly(...args: A): Program };
  return (...args: A) => j.traceOnly(...args);
}
