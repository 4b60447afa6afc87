// @scorch/tensor: tensors, dtypes, shapes, the primitive set, the Backend interface, a
// counter-based RNG and the CPU reference backend (registered as device 'cpu').

import { registerBackend } from './backend.js';
import { CpuBackend } from './cpu/cpuBackend.js';

registerBackend(new CpuBackend('cpu'));

export * from './dtype.js';
export * from './shape.js';
export * from './primitives.js';
export * from './backend.js';
export * from './random.js';
export * from '@scorch/options';
export * from './program.js';
export { ProgramTrace, traceProgram } from './programTrace.js';
export type { TracedProgram } from './programTrace.js';
export * from './tree.js';
export { operationCost, profile, profilerSession, ProfileSession } from './profiler.js';
export { removeLeastRecentClass } from './sizeClasses.js';
export type { KernelEvent, KernelSummary, KernelTiming, OpCost, ProfileResult } from './profiler.js';
export * from './fusion.js';
export { KernelWriterBase } from './kernelWriter.js';
export type { AxisMap, KernelCoords, KernelLocation, KernelWriterContext, ReadAt } from './kernelWriter.js';
export * from './expression.js';
export * from './creation.js';
export * from './ops.js';
export * from './nn/index.js';
export { definePrimitive } from './customPrimitive.js';
export type { DefinedPrimitive } from './customPrimitive.js';
export { primitiveDefinition, findPrimitiveDefinition, definedPrimitives } from './primitiveRegistry.js';
export type {
  PrimitiveDefinition, ElementwiseDefinition, ShaderDefinition, ElementwiseWgsl, ShaderWgsl, KernelIO, HostTensor, ValueInfo,
  CustomJvp, CustomVjp, CustomBatch,
} from './primitiveRegistry.js';
export {
  Tensor, apply, tidy, keep, composite, collectCreated, releaseWith, adoptIntoScope, memory, releasePooledMemory, Trace, pushTrace, popTrace, traceDepth, withGradMode, isGradEnabled,
  installAmbientAutograd, setAccumulatedGrad, withDynamicTrace, currentDynamicTrace, tensorIdCounter, deviceOf, checkActive, checkTensor, MOVE_TO_DEVICE, refusePromise, refuseHiddenTracers, opaqueContainer, asOp, ownedScope,
} from './tensor.js';
export type { MemoryInfo, BackwardOptions, AmbientAutograd, NestedArray } from './tensor.js';
export { CpuBackend, stridedCopy } from './cpu/cpuBackend.js';
export type { CpuHandle } from './cpu/cpuBackend.js';
export { CPU_KERNEL_EQUATIONS_MAX } from './cpu/compile.js';
export { FAST_MATH_ULPS } from './cpu/wasm/mathF32x4Fast.js';
export { matmulInto, matmulBatchedInto, setCpuWasm, setCpuFastMath, setCpuThreads, shutdownCpuThreads, cpuKernelInfo } from './cpu/cpuMatmul.js';
export { hardwareThreads } from './cpu/wasm/threadPool.js';
export type { MatmulOptions, CpuKernelInfo } from './cpu/cpuMatmul.js';
export type { CpuHeapKind } from './cpu/wasm/heap.js';
