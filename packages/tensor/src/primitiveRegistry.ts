// The registry of primitives defined outside the built-in set (`definePrimitive`). Every defined
// primitive runs as the one built-in primitive 'custom' whose params name it: each typed rule
// table (jvp, vjp, batching, backends) has one 'custom' entry that dispatches to the definition
// found here. Params stay plain data (a name), so programs print, compare and cache as before.
// This module holds only the types and the map, so that inference (primitives.ts) can read it
// without importing tensors.

import type { DType, TypedArray } from './dtype.js';
import type { Shape } from './shape.js';
import type { Tensor } from './tensor.js';

/** What shape and dtype inference sees of an input (a tracer and a concrete tensor alike). */
export interface ValueInfo {
  readonly shape: Shape;
  readonly dtype: DType;
}

/** A dense row-major host array with its shape and dtype: what a CPU implementation reads and writes. */
export interface HostTensor {
  readonly data: TypedArray;
  readonly shape: Shape;
  readonly dtype: DType;
}

/** The shapes and dtypes of one call: what a shader's code and launch size may depend on. */
export interface KernelIO {
  readonly inputs: readonly ValueInfo[];
  readonly output: ValueInfo;
}

/**
 * An elementwise WebGPU kernel: a WGSL expression of type f32 over f32 arguments named by the
 * definition's `inputs`. The jit fuser inlines it like a built-in op (it becomes a WGSL function
 * `cp_<name>` in whatever fused kernel computes it).
 */
export interface ElementwiseWgsl {
  readonly expression: string;
  /** Helper WGSL (module-scope functions or constants) the expression calls. Their names should start with the primitive's name. */
  readonly functions?: string;
}

/**
 * A full WGSL compute shader. Bindings (group 0): input k at `@binding(k)` as
 * `var<storage, read> …: array<T>`, the output at `@binding(inputs.length)` as
 * `var<storage, read_write> …: array<T>`, all dense row-major from element 0 (T = f32, i32, or
 * u32 for bool). No uniform block: sizes are baked into the code (`code` may be a function of the
 * call's shapes; pipelines are cached by source). Entry point `main`.
 */
export interface ShaderWgsl {
  readonly code: string | ((io: KernelIO) => string);
  /** The workgroup size `main` declares with `@workgroup_size(...)` (checked against the code). */
  readonly workgroupSize: readonly [number, number, number];
  /** Workgroups to launch. Default: one invocation per output element along x, ⌈size / workgroupSize[0]⌉ groups. */
  readonly dispatch?: (io: KernelIO) => readonly [number, number, number];
}

/** Forward rule: the output tangent from the input tangents (null = zero), or null when it is zero. Written with tensor ops. */
export type CustomJvp = (primals: readonly Tensor[], tangents: readonly (Tensor | null)[], out: Tensor) => Tensor | null;
/** Reverse rule: one cotangent per input (null = zero) from the output cotangent. Written with tensor ops. */
export type CustomVjp = (ct: Tensor, primals: readonly Tensor[], out: Tensor) => readonly (Tensor | null)[];
/** Batching rule: the batched output and its batch axis (null: unbatched) from inputs at their batch axes (null: unbatched). */
export type CustomBatch = (values: readonly Tensor[], bdims: readonly (number | null)[], size: number) => [Tensor, number | null];

interface DefinitionBase {
  /** Unique name: letters, digits and '_', starting with a letter; not a built-in primitive's name. */
  readonly name: string;
  /** Names of the inputs (their count is the arity; elementwise kernels use them as WGSL argument names). */
  readonly inputs: readonly string[];
  readonly jvp: CustomJvp;
  readonly vjp: CustomVjp;
  readonly batch?: CustomBatch;
}

/** A primitive computed element by element: same shape and float dtype in and out. */
export interface ElementwiseDefinition extends DefinitionBase {
  readonly kind: 'elementwise';
  /** The value at one element, from the inputs' values there (computed in doubles; stored rounded to the dtype). */
  readonly cpu: (...args: number[]) => number;
  readonly wgsl: ElementwiseWgsl;
}

/** A primitive with its own output shape and a compute shader of its own. */
export interface ShaderDefinition extends DefinitionBase {
  readonly kind: 'shader';
  /** Output shape and dtype (throw an Error saying what was wrong for bad inputs). */
  readonly infer: (inputs: readonly ValueInfo[]) => ValueInfo;
  /** Fills `output.data` (every element) from the dense inputs, which it must not write (on the CPU an input's array may be shared with other tensors). */
  readonly cpu: (inputs: readonly HostTensor[], output: HostTensor) => void;
  readonly wgsl: ShaderWgsl;
}

export type PrimitiveDefinition = ElementwiseDefinition | ShaderDefinition;

const definitions = new Map<string, PrimitiveDefinition>();

/** Adds a checked definition (definePrimitive does the checking). */
export function registerDefinition(def: PrimitiveDefinition): void {
  definitions.set(def.name, def);
}

/** The definition registered under `name`, or undefined. */
export function findPrimitiveDefinition(name: string): PrimitiveDefinition | undefined {
  return definitions.get(name);
}

/** The definition registered under `name` (an error names the defined ones when there is none). */
export function primitiveDefinition(name: string): PrimitiveDefinition {
  const d = definitions.get(name);
  if (!d) throw new Error(`custom: no primitive named '${name}' is defined (defined: ${[...definitions.keys()].join(', ') || 'none'})`);
  return d;
}

/** Names of the defined primitives, in definition order. */
export function definedPrimitives(): string[] {
  return [...definitions.keys()];
}
