// The CPU backend: plain TypeScript over typed arrays, float32 and float64 (and int32/bool).
// It is the reference every other backend is tested against, so it favours clarity: storage is
// contiguous row-major, movement ops copy, reductions accumulate in float64. One exception, for
// speed: expand (how every scalar and bias operand reaches a binary op) makes a broadcast view
// that elementwise kernels read through zero strides; any other consumer materialises it.

import type { Backend, BackendMemory } from '../backend.js';
import { type DType, type TypedArray, allocTyped, bytesPerElement, storedValue } from '../dtype.js';
import type { OutputInfo, Primitive, PrimitiveParams } from '../primitives.js';
import { indexOutOfRange, isBinary, isCompare, isUnary } from '../primitives.js';
import { fillRandom } from '../random.js';
import { type Shape, sizeOf, stridesOf } from '../shape.js';
import { matmulInto } from './cpuMatmul.js';

/** A CPU tensor's storage. */
export interface CpuHandle {
  /** Contiguous row-major values; null for a broadcast view until something needs it dense. */
  data: TypedArray | null;
  /** A broadcast view (from expand): element i₀…iₙ is base[Σ iₖ·strides[k]], 0 on stretched axes. */
  view: { base: TypedArray; strides: readonly number[] } | null;
  shape: readonly number[];
  dtype: DType;
  freed: boolean;
  /** Bytes this handle holds (a view holds none until materialised). */
  bytes: number;
}

/** An elementwise operand: its values and, for a view, its strides (null: dense, output-shaped). */
interface Operand {
  arr: TypedArray;
  strides: readonly number[] | null;
}

/**
 * Calls `row(outStart, offsets)` for each run of the last axis of `shape`, with each operand's
 * element offset at the run's start; within a run operand k advances by its last stride.
 */
function forEachRow(shape: readonly number[], strides: readonly (readonly number[])[], row: (outStart: number, offsets: readonly number[]) => void): void {
  const n = sizeOf(shape);
  if (n === 0) return;
  const rank = shape.length;
  const offsets = strides.map(() => 0);
  if (rank === 0) {
    row(0, offsets);
    return;
  }
  const inner = shape[rank - 1]!;
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < n; o += inner) {
    row(o, offsets);
    for (let k = rank - 2; k >= 0; k--) {
      idx[k]!++;
      for (let j = 0; j < offsets.length; j++) offsets[j]! += strides[j]![k]!;
      if (idx[k]! < shape[k]!) break;
      for (let j = 0; j < offsets.length; j++) offsets[j]! -= strides[j]![k]! * shape[k]!;
      idx[k] = 0;
    }
  }
}

/** out = f(a, b) elementwise; dense operands take a flat loop, views a strided one. */
function binaryInto(prim: string, f: (a: number, b: number) => number, a: Operand, b: Operand, out: TypedArray, shape: readonly number[]): void {
  const n = out.length;
  const x = a.arr;
  const y = b.arr;
  if (!a.strides && !b.strides) {
    // Monomorphic loops for the hottest ops; the table function otherwise.
    switch (prim) {
      case 'add': for (let i = 0; i < n; i++) out[i] = x[i]! + y[i]!; return;
      case 'sub': for (let i = 0; i < n; i++) out[i] = x[i]! - y[i]!; return;
      case 'mul': for (let i = 0; i < n; i++) out[i] = x[i]! * y[i]!; return;
      case 'div': for (let i = 0; i < n; i++) out[i] = x[i]! / y[i]!; return;
      default: for (let i = 0; i < n; i++) out[i] = f(x[i]!, y[i]!); return;
    }
  }
  const rank = shape.length;
  const dense = stridesOf(shape);
  const sa = a.strides ?? dense;
  const sb = b.strides ?? dense;
  const inner = rank === 0 ? 1 : shape[rank - 1]!;
  const ia = rank === 0 ? 0 : sa[rank - 1]!;
  const ib = rank === 0 ? 0 : sb[rank - 1]!;
  forEachRow(shape, [sa, sb], (o, [pa, pb]) => {
    for (let j = 0, p = pa!, q = pb!; j < inner; j++, p += ia, q += ib) out[o + j] = f(x[p]!, y[q]!);
  });
}

const UNARY: Record<string, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sin: Math.sin,
  cos: Math.cos,
  sqrt: Math.sqrt,
  reciprocal: (x) => 1 / x,
  tanh: Math.tanh,
  log1p: Math.log1p,
  expm1: Math.expm1,
  // σ(x) through e^(−|x|) ∈ (0, 1]: no overflow, and full relative accuracy for x ≪ 0.
  sigmoid: (x) => {
    const e = Math.exp(-Math.abs(x));
    return x >= 0 ? 1 / (1 + e) : e / (1 + e);
  },
};

const BINARY: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: (a, b) => (a > b || Number.isNaN(a) ? a : b),
  pow: Math.pow,
  less: (a, b) => (a < b ? 1 : 0),
  lessEqual: (a, b) => (a <= b ? 1 : 0),
  equal: (a, b) => (a === b ? 1 : 0),
  notEqual: (a, b) => (a !== b ? 1 : 0),
};

/**
 * Copies a strided view of `src` into contiguous `dst`: element (i₀, …, iₙ) of the output reads
 * src[offset + Σ iₖ·strides[k]]. Expand (stride 0), permute and slice are all this one loop.
 */
export function stridedCopy(src: TypedArray, offset: number, strides: readonly number[], shape: readonly number[], dst: TypedArray): void {
  const n = sizeOf(shape);
  if (n === 0) return;
  const rank = shape.length;
  if (rank === 0) {
    dst[0] = src[offset]!;
    return;
  }
  const inner = shape[rank - 1]!;
  const innerStride = strides[rank - 1]!;
  const idx = new Array<number>(rank).fill(0);
  let srcPos = offset;
  for (let o = 0; o < n; o += inner) {
    for (let j = 0, p = srcPos; j < inner; j++, p += innerStride) dst[o + j] = src[p]!;
    // advance the outer counter (axes rank-2 .. 0)
    for (let k = rank - 2; k >= 0; k--) {
      idx[k]!++;
      srcPos += strides[k]!;
      if (idx[k]! < shape[k]!) break;
      srcPos -= strides[k]! * shape[k]!;
      idx[k] = 0;
    }
  }
}

function reduceInto(x: CpuHandle, axes: readonly number[], isMax: boolean, out: TypedArray): void {
  const shape = x.shape;
  const rank = shape.length;
  const outSize = out.length;
  // Output strides per input axis (0 on reduced axes).
  const keptShape = shape.filter((_, i) => !axes.includes(i));
  const keptStrides = stridesOf(keptShape);
  const outStrides: number[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) outStrides.push(axes.includes(i) ? 0 : keptStrides[k++]!);
  const acc = new Float64Array(outSize).fill(isMax ? -Infinity : 0);
  const src = x.data!;
  const n = src.length;
  if (n > 0) {
    const idx = new Array<number>(rank).fill(0);
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const v = src[i]!;
      if (isMax) {
        const a = acc[pos]!;
        if (v > a || Number.isNaN(v)) acc[pos] = v;
      } else {
        acc[pos] = acc[pos]! + v;
      }
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]!++;
        pos += outStrides[d]!;
        if (idx[d]! < shape[d]!) break;
        pos -= outStrides[d]! * shape[d]!;
        idx[d] = 0;
      }
    }
  }
  for (let i = 0; i < outSize; i++) out[i] = acc[i]!;
}

/** Outer/inner block decomposition around `axis` for concat, gather and scatter. */
function blocks(shape: Shape, axis: number): { outer: number; inner: number } {
  return { outer: sizeOf(shape.slice(0, axis)), inner: sizeOf(shape.slice(axis + 1)) };
}

export class CpuBackend implements Backend<CpuHandle> {
  readonly name: string;
  readonly dtypes: readonly DType[] = ['float32', 'float64', 'int32', 'bool'];
  private liveBuffers = 0;
  private liveBytes = 0;

  constructor(name = 'cpu') {
    this.name = name;
  }

  private wrap(data: TypedArray, shape: Shape, dtype: DType): CpuHandle {
    const bytes = data.length * bytesPerElement(dtype);
    this.liveBuffers++;
    this.liveBytes += bytes;
    return { data, view: null, shape: [...shape], dtype, freed: false, bytes };
  }

  /** The handle's values as a contiguous array, materialising (once) a broadcast view. */
  private dense(h: CpuHandle): TypedArray {
    if (h.data) return h.data;
    const view = h.view!;
    const data = allocTyped(h.dtype, sizeOf(h.shape));
    stridedCopy(view.base, 0, view.strides, h.shape, data);
    h.data = data;
    h.bytes = data.length * bytesPerElement(h.dtype);
    this.liveBytes += h.bytes;
    return data;
  }

  private operand(h: CpuHandle): Operand {
    return h.data || !h.view ? { arr: h.data!, strides: null } : { arr: h.view.base, strides: h.view.strides };
  }

  /** expand as a view: stretched axes get stride 0 (composing with an input that is a view). */
  private expandView(x: CpuHandle, shape: readonly number[], dtype: DType): CpuHandle {
    const src = this.operand(x);
    const inStrides = src.strides ?? stridesOf(x.shape);
    const strides = shape.map((d, i) => (x.shape[i] === 1 && d !== 1 ? 0 : inStrides[i]!));
    this.liveBuffers++;
    return { data: null, view: { base: src.arr, strides }, shape: [...shape], dtype, freed: false, bytes: 0 };
  }

  upload(data: TypedArray, shape: Shape, dtype: DType): CpuHandle {
    const copy = allocTyped(dtype, data.length);
    copy.set(data);
    return this.wrap(copy, shape, dtype);
  }

  full(shape: Shape, value: number, dtype: DType): CpuHandle {
    const data = allocTyped(dtype, sizeOf(shape));
    if (value !== 0) data.fill(value);
    return this.wrap(data, shape, dtype);
  }

  async read(h: CpuHandle): Promise<TypedArray> {
    return this.readSync(h);
  }

  readSync(h: CpuHandle): TypedArray {
    if (h.freed) throw new Error('cpu: read of a freed buffer');
    return this.dense(h).slice();
  }

  dispose(h: CpuHandle): void {
    if (h.freed) return;
    h.freed = true;
    this.liveBuffers--;
    this.liveBytes -= h.bytes;
  }

  memory(): BackendMemory {
    return { buffers: this.liveBuffers, bytes: this.liveBytes };
  }

  execute<P extends Primitive>(prim: P, inputs: readonly CpuHandle[], params: PrimitiveParams[P], info: OutputInfo): CpuHandle {
    if (prim === 'expand') return this.expandView(inputs[0]!, info.shape, info.dtype);
    if (prim === 'full') return this.full(info.shape, (params as PrimitiveParams['full']).value, info.dtype);
    const out = allocTyped(info.dtype, sizeOf(info.shape));
    this.compute(prim, inputs, params, info, out);
    return this.wrap(out, info.shape, info.dtype);
  }

  private compute<P extends Primitive>(prim: P, inputs: readonly CpuHandle[], params: PrimitiveParams[P], info: OutputInfo, out: TypedArray): void {
    const x = inputs[0]!;
    if (isUnary(prim)) {
      const f = UNARY[prim]!;
      const a = this.dense(x);
      for (let i = 0; i < out.length; i++) out[i] = f(a[i]!);
      return;
    }
    if (isBinary(prim) || isCompare(prim)) {
      if (prim === 'mul' && x.dtype === 'int32') {
        const a = this.dense(x);
        const b = this.dense(inputs[1]!);
        for (let i = 0; i < out.length; i++) out[i] = Math.imul(a[i]!, b[i]!);
        return;
      }
      binaryInto(prim, BINARY[prim]!, this.operand(x), this.operand(inputs[1]!), out, info.shape);
      return;
    }
    // Past elementwise ops every kernel reads dense storage: materialise any broadcast view.
    if (prim !== 'where') for (const h of inputs) this.dense(h);
    switch (prim) {
      case 'where': {
        const [c, a, b] = inputs.map((h) => this.operand(h)) as [Operand, Operand, Operand];
        if (!c.strides && !a.strides && !b.strides) {
          for (let i = 0; i < out.length; i++) out[i] = c.arr[i] ? a.arr[i]! : b.arr[i]!;
          return;
        }
        const dense = stridesOf(info.shape);
        const st = [c.strides ?? dense, a.strides ?? dense, b.strides ?? dense];
        const last = info.shape.length - 1;
        const inner = last < 0 ? 1 : info.shape[last]!;
        const [ic, ia, ib] = st.map((s) => (last < 0 ? 0 : s[last]!)) as [number, number, number];
        forEachRow(info.shape, st, (o, [pc, pa, pb]) => {
          for (let j = 0, r = pc!, p = pa!, q = pb!; j < inner; j++, r += ic, p += ia, q += ib) out[o + j] = c.arr[r] ? a.arr[p]! : b.arr[q]!;
        });
        return;
      }
      case 'sum':
      case 'reduceMax':
        reduceInto(x, (params as PrimitiveParams['sum']).axes, prim === 'reduceMax', out);
        return;
      case 'reshape':
      case 'stopGradient':
        out.set(x.data!);
        return;
      case 'expand': {
        const strides = stridesOf(x.shape).map((s, i) => (x.shape[i] === 1 ? 0 : s));
        stridedCopy(x.data!, 0, strides, info.shape, out);
        return;
      }
      case 'permute': {
        const { perm } = params as PrimitiveParams['permute'];
        const st = stridesOf(x.shape);
        stridedCopy(x.data!, 0, perm.map((p) => st[p]!), info.shape, out);
        return;
      }
      case 'slice': {
        const { starts } = params as PrimitiveParams['slice'];
        const st = stridesOf(x.shape);
        const offset = starts.reduce((acc, s, i) => acc + s * st[i]!, 0);
        stridedCopy(x.data!, offset, st, info.shape, out);
        return;
      }
      case 'pad': {
        const { before } = params as PrimitiveParams['pad'];
        const st = stridesOf(info.shape);
        const offset = before.reduce((acc, s, i) => acc + s * st[i]!, 0);
        // Scatter the input into the window: walk the input, write through the output strides.
        const n = x.data!.length;
        if (n === 0) return;
        const rank = x.shape.length;
        const idx = new Array<number>(rank).fill(0);
        let pos = offset;
        for (let i = 0; i < n; i++) {
          out[pos] = x.data![i]!;
          for (let d = rank - 1; d >= 0; d--) {
            idx[d]!++;
            pos += st[d]!;
            if (idx[d]! < x.shape[d]!) break;
            pos -= st[d]! * x.shape[d]!;
            idx[d] = 0;
          }
        }
        return;
      }
      case 'concat': {
        const { axis } = params as PrimitiveParams['concat'];
        const { outer, inner } = blocks(info.shape, axis);
        const outRow = info.shape[axis]! * inner;
        let col = 0;
        for (const t of inputs) {
          const w = t.shape[axis]! * inner;
          for (let o = 0; o < outer; o++) out.set(t.data!.subarray(o * w, (o + 1) * w), o * outRow + col);
          col += w;
        }
        return;
      }
      case 'gather': {
        const { axis } = params as PrimitiveParams['gather'];
        const idx = inputs[1]!.data!;
        const { outer, inner } = blocks(x.shape, axis);
        const extent = x.shape[axis]!;
        for (let j = 0; j < idx.length; j++) {
          const r = idx[j]!;
          if (!(r >= 0 && r < extent)) throw indexOutOfRange('gather', r, axis, extent);
        }
        for (let o = 0; o < outer; o++) {
          for (let j = 0; j < idx.length; j++) {
            const from = (o * extent + idx[j]!) * inner;
            out.set(x.data!.subarray(from, from + inner), (o * idx.length + j) * inner);
          }
        }
        return;
      }
      case 'scatterAdd': {
        const { axis, size } = params as PrimitiveParams['scatterAdd'];
        const idx = inputs[1]!.data!;
        const { outer, inner } = blocks(x.shape, axis);
        for (let j = 0; j < idx.length; j++) {
          const r = idx[j]!;
          if (!(r >= 0 && r < size)) throw indexOutOfRange('scatterAdd', r, axis, size);
        }
        for (let o = 0; o < outer; o++) {
          for (let j = 0; j < idx.length; j++) {
            const to = (o * size + idx[j]!) * inner;
            const from = (o * idx.length + j) * inner;
            for (let e = 0; e < inner; e++) out[to + e] = out[to + e]! + x.data![from + e]!;
          }
        }
        return;
      }
      case 'matmul': {
        const a = x;
        const b = inputs[1]!;
        const r = a.shape.length;
        const m = a.shape[r - 2]!;
        const k = a.shape[r - 1]!;
        const n = b.shape[r - 1]!;
        const batch = sizeOf(a.shape.slice(0, -2));
        for (let i = 0; i < batch; i++) {
          matmulInto(a.data! as Float32Array | Float64Array, i * m * k, b.data! as Float32Array | Float64Array, i * k * n, out as Float32Array | Float64Array, i * m * n, m, n, k);
        }
        return;
      }
      case 'cast': {
        // One conversion rule for the whole package (bool: nonzero; int32: truncate, saturate).
        const src = x.data!;
        for (let i = 0; i < out.length; i++) out[i] = storedValue(src[i]!, info.dtype);
        return;
      }
      case 'random': {
        const p = params as PrimitiveParams['random'];
        fillRandom(out as Float32Array | Float64Array, p.key, p.distribution);
        return;
      }
    }
    throw new Error(`cpu: no implementation for primitive '${prim}'`);
  }
}
