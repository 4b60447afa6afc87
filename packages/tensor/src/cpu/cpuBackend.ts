// The CPU backend: plain TypeScript over typed arrays, float32 and float64 (and int32/bool).
// It is the reference every other backend is tested against, so it favours clarity: storage is
// always contiguous row-major, movement ops copy, reductions accumulate in float64.

import type { Backend, BackendMemory } from '../backend.js';
import { type DType, type TypedArray, allocTyped, bytesPerElement, storedValue } from '../dtype.js';
import type { OutputInfo, Primitive, PrimitiveParams } from '../primitives.js';
import { isBinary, isCompare, isUnary } from '../primitives.js';
import { fillRandom } from '../random.js';
import { type Shape, sizeOf, stridesOf } from '../shape.js';
import { matmulInto } from './cpuMatmul.js';

/** A CPU tensor's storage. */
export interface CpuHandle {
  data: TypedArray;
  shape: readonly number[];
  dtype: DType;
  freed: boolean;
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
  const src = x.data;
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
    this.liveBuffers++;
    this.liveBytes += data.length * bytesPerElement(dtype);
    return { data, shape: [...shape], dtype, freed: false };
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
    return h.data.slice();
  }

  dispose(h: CpuHandle): void {
    if (h.freed) return;
    h.freed = true;
    this.liveBuffers--;
    this.liveBytes -= h.data.length * bytesPerElement(h.dtype);
  }

  memory(): BackendMemory {
    return { buffers: this.liveBuffers, bytes: this.liveBytes };
  }

  execute<P extends Primitive>(prim: P, inputs: readonly CpuHandle[], params: PrimitiveParams[P], info: OutputInfo): CpuHandle {
    const out = allocTyped(info.dtype, sizeOf(info.shape));
    this.compute(prim, inputs, params, info, out);
    return this.wrap(out, info.shape, info.dtype);
  }

  private compute<P extends Primitive>(prim: P, inputs: readonly CpuHandle[], params: PrimitiveParams[P], info: OutputInfo, out: TypedArray): void {
    const x = inputs[0]!;
    if (isUnary(prim)) {
      const f = UNARY[prim]!;
      const a = x.data;
      for (let i = 0; i < out.length; i++) out[i] = f(a[i]!);
      return;
    }
    if (isBinary(prim) || isCompare(prim)) {
      const f = BINARY[prim]!;
      const a = x.data;
      const b = inputs[1]!.data;
      if (prim === 'mul' && x.dtype === 'int32') {
        for (let i = 0; i < out.length; i++) out[i] = Math.imul(a[i]!, b[i]!);
        return;
      }
      for (let i = 0; i < out.length; i++) out[i] = f(a[i]!, b[i]!);
      return;
    }
    switch (prim) {
      case 'where': {
        const c = x.data;
        const a = inputs[1]!.data;
        const b = inputs[2]!.data;
        for (let i = 0; i < out.length; i++) out[i] = c[i] ? a[i]! : b[i]!;
        return;
      }
      case 'sum':
      case 'reduceMax':
        reduceInto(x, (params as PrimitiveParams['sum']).axes, prim === 'reduceMax', out);
        return;
      case 'reshape':
        out.set(x.data);
        return;
      case 'expand': {
        const strides = stridesOf(x.shape).map((s, i) => (x.shape[i] === 1 ? 0 : s));
        stridedCopy(x.data, 0, strides, info.shape, out);
        return;
      }
      case 'permute': {
        const { perm } = params as PrimitiveParams['permute'];
        const st = stridesOf(x.shape);
        stridedCopy(x.data, 0, perm.map((p) => st[p]!), info.shape, out);
        return;
      }
      case 'slice': {
        const { starts } = params as PrimitiveParams['slice'];
        const st = stridesOf(x.shape);
        const offset = starts.reduce((acc, s, i) => acc + s * st[i]!, 0);
        stridedCopy(x.data, offset, st, info.shape, out);
        return;
      }
      case 'pad': {
        const { before } = params as PrimitiveParams['pad'];
        const st = stridesOf(info.shape);
        const offset = before.reduce((acc, s, i) => acc + s * st[i]!, 0);
        // Scatter the input into the window: walk the input, write through the output strides.
        const n = x.data.length;
        if (n === 0) return;
        const rank = x.shape.length;
        const idx = new Array<number>(rank).fill(0);
        let pos = offset;
        for (let i = 0; i < n; i++) {
          out[pos] = x.data[i]!;
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
          for (let o = 0; o < outer; o++) out.set(t.data.subarray(o * w, (o + 1) * w), o * outRow + col);
          col += w;
        }
        return;
      }
      case 'gather': {
        const { axis } = params as PrimitiveParams['gather'];
        const idx = inputs[1]!.data;
        const { outer, inner } = blocks(x.shape, axis);
        const extent = x.shape[axis]!;
        for (let j = 0; j < idx.length; j++) {
          const r = idx[j]!;
          if (!(r >= 0 && r < extent)) throw new RangeError(`gather: index ${r} is out of range for axis ${axis} of extent ${extent} (expected 0 <= index < ${extent})`);
        }
        for (let o = 0; o < outer; o++) {
          for (let j = 0; j < idx.length; j++) {
            const from = (o * extent + idx[j]!) * inner;
            out.set(x.data.subarray(from, from + inner), (o * idx.length + j) * inner);
          }
        }
        return;
      }
      case 'scatterAdd': {
        const { axis, size } = params as PrimitiveParams['scatterAdd'];
        const idx = inputs[1]!.data;
        const { outer, inner } = blocks(x.shape, axis);
        for (let j = 0; j < idx.length; j++) {
          const r = idx[j]!;
          if (!(r >= 0 && r < size)) throw new RangeError(`scatterAdd: index ${r} is out of range for axis ${axis} of extent ${size} (expected 0 <= index < ${size})`);
        }
        for (let o = 0; o < outer; o++) {
          for (let j = 0; j < idx.length; j++) {
            const to = (o * size + idx[j]!) * inner;
            const from = (o * idx.length + j) * inner;
            for (let e = 0; e < inner; e++) out[to + e] = out[to + e]! + x.data[from + e]!;
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
          matmulInto(a.data as Float32Array | Float64Array, i * m * k, b.data as Float32Array | Float64Array, i * k * n, out as Float32Array | Float64Array, i * m * n, m, n, k);
        }
        return;
      }
      case 'cast': {
        // One conversion rule for the whole package (bool: nonzero; int32: truncate, saturate).
        const src = x.data;
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
