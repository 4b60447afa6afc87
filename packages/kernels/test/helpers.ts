// Shared test helpers: the GPU device (poisoned allocations, so an unwritten output element
// shows up as NaN), a seeded host random source, tensors built identically on the CPU reference
// and on the GPU (including strided views), and comparisons that report the first mismatch.

import { type DType, type Tensor, type TypedArray, allocTyped, sizeOf, tensor, tidy } from '@scorch/tensor';
import { type WebGPUHandle, MIN_WORKGROUPS, initWebGPU } from '@scorch/kernels';
import { mulberry32 } from '../../../tests/fixtures/mulberry32.js';
import { afterEach } from 'vitest';
import { type JittedFunction, jit } from '@scorch/autograd';

/**
 * `jit` whose functions are cleared when each test of the calling file ends (call it at the
 * file's top level: it registers the afterEach hook). A dropped jitted function would otherwise
 * free its programs' buffers when the garbage collector finalizes it (docs/jit.md), at a time the
 * collector picks: during a later test's await, under that test's memory() comparison ('memory
 * stays flat over 2,000 jitted training steps' saw 11 buffers fewer than before its loop).
 */
export function jitClearedAfterEachTest(): typeof jit {
  const made: JittedFunction<never[], unknown>[] = [];
  afterEach(() => {
    for (const jitted of made.splice(0)) jitted.clearCache();
  });
  return (f, opts) => {
    const jitted = jit(f, opts);
    made.push(jitted as unknown as JittedFunction<never[], unknown>);
    return jitted;
  };
}

/** The WebGPU device for tests. Fails (does not skip) when no adapter exists. */
/**
 * Runs `body` with `device.createBuffer` counting the buffers created whose descriptor `which`
 * accepts (every one by default); `created()` reads the count so far. createBuffer is restored
 * when body settles, thrown or not.
 */
export async function countingCreatedBuffers<T>(device: GPUDevice, body: (created: () => number) => T | Promise<T>, which: (d: GPUBufferDescriptor) => boolean = () => true): Promise<T> {
  const create = device.createBuffer;
  let count = 0;
  device.createBuffer = function (descriptor: GPUBufferDescriptor): GPUBuffer {
    if (which(descriptor)) count++;
    return create.call(this, descriptor);
  };
  try {
    return await body(() => count);
  } finally {
    device.createBuffer = create;
  }
}

export async function gpuDevice(): Promise<WebGPUHandle> {
  return initWebGPU({ poisonAllocations: true });
}

/**
 * The test device with the settings a hardware adapter gets, for the tests of the path a real
 * GPU takes: llvmpipe is detected as software (`softwareAdapter`: a compiled program's large
 * matmuls then keep no epilogue) and register-blocked matmuls shrink their blocks at another
 * workgroup count (`vec4MinWorkgroups`). Call it in a file's beforeAll and `restore()` in its
 * afterAll.
 */
export async function hardwarePathDevice(): Promise<{ gpu: WebGPUHandle; restore: () => void }> {
  const gpu = await gpuDevice();
  const backend = gpu.backend as unknown as { softwareAdapter: boolean; vec4MinWorkgroups: number };
  const saved = { softwareAdapter: backend.softwareAdapter, vec4MinWorkgroups: backend.vec4MinWorkgroups };
  backend.softwareAdapter = false;
  backend.vec4MinWorkgroups = MIN_WORKGROUPS;
  return { gpu, restore: () => Object.assign(backend, saved) };
}

/** Seed of this run: fresh each run, printed with every failure so a run can be repeated. */
export const RUN_SEED = Number(process.env.SCORCH_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: a small seeded generator for host-side test data, in [0, 1). */
export const hostRandom = mulberry32;

export function hashSeed(...parts: (string | number | boolean)[]): number {
  let h = 2166136261 ^ RUN_SEED;
  for (const ch of parts.join('|')) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return h >>> 0;
}

export type ValueKind =
  | 'normal' | 'wide' | 'positive' | 'angles' | 'expDomain' | 'expm1Domain' | 'log1pDomain' | 'powBase' | 'powExponent'
  | 'int' | 'bool' | 'unit' | 'halves' | 'nearOne' | 'logNearOne' | { indices: number };

const SPECIALS = [0, -0, Infinity, -Infinity, NaN, 1e-30, -1e-30, 1e30, -1e30, 1, -1, 0.5];

/** Host values of a given kind (float32-representable). */
export function values(kind: ValueKind, n: number, rnd: () => number): number[] {
  const normal = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let v: number;
    if (typeof kind === 'object') v = Math.floor(rnd() * kind.indices);
    else {
      switch (kind) {
        case 'normal': v = 3 * normal(); break;
        case 'wide': v = rnd() < 0.1 ? SPECIALS[Math.floor(rnd() * SPECIALS.length)]! : normal() * 10 ** (rnd() * 12 - 6); break;
        case 'positive': v = rnd() < 0.05 ? [0, Infinity, 1e-30][Math.floor(rnd() * 3)]! : Math.exp(rnd() * 40 - 20); break;
        case 'angles': v = (rnd() < 0.2 ? Math.exp(rnd() * 88) : 40 * rnd()) * (rnd() < 0.5 ? -1 : 1); break;
        case 'expDomain': v = rnd() * 200 - 105; break;
        case 'expm1Domain': v = rnd() < 0.3 ? normal() * 1e-4 : (rnd() * 2 - 1) * 30; break;
        case 'log1pDomain': v = rnd() < 0.3 ? normal() * 1e-4 : rnd() < 0.5 ? rnd() * 2 - 1 : Math.exp(rnd() * 20); break;
        case 'powBase': v = rnd() < 0.2 ? -Math.floor(rnd() * 5) : Math.exp(rnd() * 6 - 3); break;
        case 'powExponent': v = rnd() < 0.3 ? Math.floor(rnd() * 7) - 3 : rnd() * 8 - 4; break;
        case 'int': v = Math.floor(rnd() * 101) - 50; break;
        case 'bool': v = rnd() < 0.5 ? 1 : 0; break;
        case 'unit': v = rnd(); break;
        // Multiples of ½ (round's ties) and, one in ten, the wide specials.
        case 'halves': v = rnd() < 0.1 ? SPECIALS[Math.floor(rnd() * SPECIALS.length)]! : (Math.floor(rnd() * 81) - 40) / 2; break;
        // ±[0.5, 1.5) with one in twenty exactly 0: short running products see zeros (a line hits
        // one about every 20 elements, so every product after that is ±0; even without zeros,
        // E[ln|x|] ≈ −0.045 would underflow float32 by about 2,300 elements). For long scans see
        // logNearOne.
        case 'nearOne': v = rnd() < 0.05 ? 0 : (0.5 + rnd()) * (rnd() < 0.5 ? -1 : 1); break;
        // ±e^U(−0.01, 0.01), never 0: ln|y_k| is a walk of steps ≤ 0.01 in size and mean 0 (spread
        // ≈ 0.0058·√k: ≈ 0.8 at k = 20,000), so running products over tens of thousands of
        // elements stay near 1 and every output is compared as a value, not as ±0.
        case 'logNearOne': v = Math.exp((rnd() - 0.5) * 0.02) * (rnd() < 0.5 ? -1 : 1); break;
      }
    }
    out.push(Math.fround(v));
  }
  return out;
}

/** Host data uniform in [lo, lo + width) (default [−2, 2)), rounded to float32. */
export function uniformData(n: number, rnd: () => number, lo = -2, width = 4): Float32Array {
  return Float32Array.from({ length: n }, () => Math.fround(lo + rnd() * width));
}

/** The same N(0, 1) float32 data (from `seed`) as a CPU tensor and as one on the device `gpu`. */
export function normalPair(shape: readonly number[], seed: number, gpu: string): { cpu: Tensor; gpu: Tensor } {
  const data = Float32Array.from(values('normal', sizeOf(shape), hostRandom(seed)));
  return { cpu: tensor(data, { shape }), gpu: tensor(data, { shape, device: gpu }) };
}

/** How an input is presented to the kernel: as a fresh buffer or as a view that needs strides. */
export type ViewKind = 'contiguous' | 'permuted' | 'sliced' | 'broadcast';

export interface InputSpec {
  shape: readonly number[];
  dtype: DType;
  values: ValueKind;
  view?: ViewKind;
}

/** The same input on the CPU reference and on the GPU, built through the same view operations. */
export function makeInput(spec: InputSpec, gpu: string, rnd: () => number): { cpu: Tensor; gpu: Tensor } {
  const view = spec.view ?? 'contiguous';
  const rank = spec.shape.length;
  let baseShape: number[];
  if (view === 'permuted') baseShape = [...spec.shape].reverse();
  else if (view === 'sliced') baseShape = spec.shape.map((d) => d + 2);
  else if (view === 'broadcast') baseShape = spec.shape.map((d, i) => (i % 2 === 0 ? 1 : d));
  else baseShape = [...spec.shape];
  const n = sizeOf(baseShape);
  const data = allocTyped(spec.dtype, n) as TypedArray;
  values(spec.values, n, rnd).forEach((v, i) => (data[i] = v));
  const build = (device: string): Tensor => {
    const base = tensor(data, { shape: baseShape, dtype: spec.dtype, device });
    if (view === 'permuted') return base.permute(Array.from({ length: rank }, (_, i) => rank - 1 - i));
    if (view === 'sliced') return base.slice(spec.shape.map(() => 1), spec.shape);
    if (view === 'broadcast') return base.expand(spec.shape);
    return base;
  };
  return { cpu: build('cpu'), gpu: build(gpu) };
}

/** Smallest positive normal float32: WGSL lets implementations flush subnormal results to zero. */
export const FLUSH_FLOOR = 2 ** -126;

const ulpWord = new Float32Array(1);
const ulpBits = new Uint32Array(ulpWord.buffer);
/** 2^(e − 150) for each float32 exponent field e: the ulp of the normal numbers with that field. */
const ULP_OF_EXPONENT = Float64Array.from({ length: 256 }, (_, e) => (e === 0 ? 2 ** -149 : e === 255 ? Infinity : 2 ** (e - 150)));

/**
 * One unit in the last place of the float32 nearest to v: 2^(⌊log2 |v|⌋ − 23), read from the
 * float32's exponent field (its bits hold ⌊log2 |v|⌋ + 127 for a normal number); 2^−149 below
 * 2^−126; ∞ for ±∞ and NaN. Called per element over tens of millions of results: Math.log2 made
 * it the largest cost of some tests.
 */
export function ulp(v: number): number {
  ulpWord[0] = v;
  return ULP_OF_EXPONENT[(ulpBits[0]! >>> 23) & 0xff]!;
}

/** Allowed |gpu − cpu| at element i (given the reference value there). */
export type ElementTolerance = (i: number, reference: number) => number;

/**
 * Compares element by element: NaN matches NaN, infinities match only themselves, and finite
 * values must agree within the tolerance. Returns a description of the first mismatch, or null.
 */
export function firstMismatch(reference: ArrayLike<number>, actual: ArrayLike<number>, tol: ElementTolerance): string | null {
  if (reference.length !== actual.length) return `lengths differ: ${reference.length} vs ${actual.length}`;
  for (let i = 0; i < reference.length; i++) {
    const r = reference[i]!;
    const a = actual[i]!;
    if (Number.isNaN(r) || Number.isNaN(a)) {
      if (Number.isNaN(r) && Number.isNaN(a)) continue;
      return `element ${i}: expected ${r}, got ${a}`;
    }
    if (!Number.isFinite(r) || !Number.isFinite(a)) {
      if (r === a) continue;
      return `element ${i}: expected ${r}, got ${a}`;
    }
    const allowed = tol(i, r);
    if (!(Math.abs(a - r) <= allowed)) return `element ${i}: expected ${r}, got ${a} (|diff| ${Math.abs(a - r)} > allowed ${allowed})`;
  }
  return null;
}

export const exact: ElementTolerance = () => 0;
/**
 * `fraction` of (`unit` + the reference's largest finite magnitude), at every element: for programs
 * whose sums run in other orders. An element off by its own size is caught where that size is
 * over fraction·(unit + largest): every element of about the largest's size once largest ≫
 * fraction·unit (with fraction 1e-3, unit 1: a 10% error at the largest element fails for
 * largest > 0.0102, a wrong sign or a zero for largest > 0.0011).
 *
 * `unit` is the scale the values would have without a known constant factor c: the gradient of a
 * loss c·L is c times L's gradient (exactly in real arithmetic; one rounding per element in
 * float32), so comparing it by the rule for L's gradient, fraction·(1 + largest/c) after dividing
 * both by c, is this rule with unit = c. It is smaller than fraction·(1 + largest) for c < 1.
 */
export const ofLargest = (reference: ArrayLike<number>, fraction: number, unit = 1): ElementTolerance => {
  let largest = 0;
  for (let i = 0; i < reference.length; i++) if (Number.isFinite(reference[i]!)) largest = Math.max(largest, Math.abs(reference[i]!));
  const allowed = fraction * (unit + largest);
  return () => allowed;
};
/** n ULP of the reference, with the subnormal-flush floor. */
export const ulps = (n: number): ElementTolerance => (_i, r) => n * ulp(r) + FLUSH_FLOOR;

/** int32 indices computed on `device` (truncating casts of float values): no host copy exists. */
export function computedIndices(values: number[], device: string): Tensor {
  return tidy(() => tensor(values, { device }).mul(1).cast('int32'));
}
