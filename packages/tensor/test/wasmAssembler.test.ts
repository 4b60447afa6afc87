// The WebAssembly assembler the CPU kernels are emitted with: its LEB128 encodings against
// values worked out by hand from the spec, and small modules that must validate and compute
// known values (control flow, locals, scalar and SIMD arithmetic, splat loads, bulk memory), so
// an encoding slip shows here rather than as a wrong matrix product.

import { describe, expect, it } from 'vitest';
import { F32, F64, I32, ModuleBuilder, V128, writeS32, writeU32 } from '../src/cpu/wasm/assembler.js';
import { wasmRelaxedSimdSupported, wasmSimdSupported } from '../src/cpu/wasm/features.js';
import { matmulModule } from '../src/cpu/wasm/matmulModule.js';

const u32 = (v: number) => {
  const out: number[] = [];
  writeU32(out, v);
  return out;
};
const s32 = (v: number) => {
  const out: number[] = [];
  writeS32(out, v);
  return out;
};

describe('LEB128', () => {
  it('unsigned', () => {
    expect(u32(0)).toEqual([0x00]);
    expect(u32(127)).toEqual([0x7f]);
    expect(u32(128)).toEqual([0x80, 0x01]);
    expect(u32(624485)).toEqual([0xe5, 0x8e, 0x26]); // the example in the LEB128 literature
    expect(u32(0xffffffff)).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(() => u32(-1)).toThrow(RangeError);
    expect(() => u32(2 ** 32)).toThrow(RangeError);
    expect(() => u32(1.5)).toThrow(RangeError);
  });

  it('signed', () => {
    expect(s32(0)).toEqual([0x00]);
    expect(s32(-1)).toEqual([0x7f]);
    expect(s32(63)).toEqual([0x3f]);
    expect(s32(64)).toEqual([0xc0, 0x00]); // bit 6 set would read as negative: one more byte
    expect(s32(-64)).toEqual([0x40]);
    expect(s32(-65)).toEqual([0xbf, 0x7f]);
    expect(s32(-123456)).toEqual([0xc0, 0xbb, 0x78]);
    expect(s32(2 ** 31 - 1)).toEqual([0xff, 0xff, 0xff, 0xff, 0x07]);
    expect(s32(-(2 ** 31))).toEqual([0x80, 0x80, 0x80, 0x80, 0x78]);
    expect(() => s32(2 ** 31)).toThrow(RangeError);
  });
});

/** Instantiates `m` with a fresh one-page memory; returns the exports and the memory. */
function instantiate(m: ModuleBuilder): { ex: Record<string, (...args: number[]) => number>; memory: WebAssembly.Memory } {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 4 });
  const bytes = m.encode();
  expect(WebAssembly.validate(bytes)).toBe(true);
  const ex = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as Record<string, (...args: number[]) => number>;
  return { ex, memory };
}

describe('modules', () => {
  it('a loop with locals and branches: 1 + 2 + … + n', () => {
    const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', initial: 1, maximum: 4 });
    m.func('triangle', [I32], [I32], (f, [n]) => {
      const i = f.local(I32);
      const sum = f.local(I32);
      f.block().loop();
      f.get(i).get(n).i32GeS().brIf(1);
      f.get(i).i32Const(1).i32Add().tee(i).get(sum).i32Add().set(sum);
      f.br(0).end().end();
      f.get(sum);
    });
    const { ex } = instantiate(m);
    expect(ex.triangle!(0)).toBe(0);
    expect(ex.triangle!(100)).toBe(5050);
    expect(ex.triangle!(65535)).toBe((65535 * 65536) / 2);
  });

  it('calls, select, if/else and negative constants', () => {
    const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', initial: 1, maximum: 4 });
    const min = m.func(undefined, [I32, I32], [I32], (f, [x, y]) => {
      f.get(x).get(y).get(x).get(y).i32LtS().select();
    });
    m.func('clamp', [I32], [I32], (f, [x]) => {
      // x < 0 ? -1000 : min(x, 70000)
      const out = f.local(I32);
      f.get(x).i32Const(0).i32LtS().if().i32Const(-1000).set(out).else().get(x).i32Const(70000).call(min).set(out).end();
      f.get(out);
    });
    const { ex } = instantiate(m);
    expect(ex.clamp!(-5)).toBe(-1000);
    expect(ex.clamp!(12345)).toBe(12345);
    expect(ex.clamp!(123456)).toBe(70000);
  });

  it.skipIf(!wasmSimdSupported())('SIMD: f32x4 and f64x2 arithmetic, splat loads, offsets, lanes', () => {
    const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', initial: 1, maximum: 4 });
    // out[0:4] = x[0:4] * splat(s) + y[0:4] (f32, at byte offsets folded into the instructions)
    m.func('axpy4', [I32], [], (f, [base]) => {
      f.get(base);
      f.get(base).v128Load(0);
      f.get(base).v128Load32Splat(48);
      f.f32x4Mul();
      f.get(base).v128Load(16);
      f.f32x4Add();
      f.v128Store(32);
    });
    // The same in f64x2; returns lane 1 of the result.
    m.func('axpy2', [I32], [F64], (f, [base]) => {
      const r = f.local(V128);
      f.get(base).v128Load(0).get(base).v128Load64Splat(48).f64x2Mul().get(base).v128Load(16).f64x2Add().set(r);
      f.get(base).get(r).v128Store(32);
      f.get(r).f64x2ExtractLane(1);
    });
    m.func('lane2', [I32], [F32], (f, [base]) => {
      f.get(base).v128Load(32).f32x4ExtractLane(2);
    });
    m.func('splats', [], [F32], (f) => {
      f.f32Const(1.5).f32x4Splat().v128Const([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x40, 0, 0, 0, 0]).f32x4Add().f32x4ExtractLane(2);
    });
    const { ex, memory } = instantiate(m);
    const f32 = new Float32Array(memory.buffer, 1024, 13);
    f32.set([1, 2, 3, 4, 10, 20, 30, 40]);
    f32[12] = 0.5;
    ex.axpy4!(1024);
    expect(Array.from(f32.subarray(8, 12))).toEqual([10.5, 21, 31.5, 42]);
    expect(ex.lane2!(1024)).toBe(31.5);
    const f64 = new Float64Array(memory.buffer, 2048, 7);
    f64.set([1.25, -2, 100, 200]);
    f64[6] = 3;
    expect(ex.axpy2!(2048)).toBe(194);
    expect(Array.from(f64.subarray(4, 6))).toEqual([103.75, 194]);
    // 0x40200000 is 2.5 in float32: lane 2 = 1.5 + 2.5.
    expect(ex.splats!()).toBe(4);
  });

  it('bulk memory: copy (overlapping) and fill', () => {
    const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', initial: 1, maximum: 4 });
    m.func('copy', [I32, I32, I32], [], (f, [to, from, bytes]) => {
      f.get(to).get(from).get(bytes).memoryCopy();
    });
    m.func('fill', [I32, I32, I32], [], (f, [to, value, bytes]) => {
      f.get(to).get(value).get(bytes).memoryFill();
    });
    const { ex, memory } = instantiate(m);
    const u8 = new Uint8Array(memory.buffer);
    u8.set([1, 2, 3, 4, 5, 6], 100);
    ex.copy!(98, 100, 6); // downwards, overlapping
    expect(Array.from(u8.subarray(98, 104))).toEqual([1, 2, 3, 4, 5, 6]);
    ex.fill!(200, 7, 5);
    expect(Array.from(u8.subarray(199, 206))).toEqual([0, 7, 7, 7, 7, 7, 0]);
  });

  it('refuses unbalanced blocks, unknown locals and a shared memory without a maximum', () => {
    const m = new ModuleBuilder();
    expect(() => m.func('f', [], [], (f) => void f.end())).toThrow(/end without an open block/);
    const open = new ModuleBuilder();
    open.func('g', [], [], (f) => void f.block());
    expect(() => open.encode()).toThrow(/left open/);
    expect(() => new ModuleBuilder().func('h', [I32], [], (f) => void f.get(1))).toThrow(/no local 1/);
    expect(() => new ModuleBuilder().importMemory({ module: 'env', name: 'memory', initial: 1, shared: true })).toThrow(/maximum/);
  });

  it.skipIf(!wasmSimdSupported())('the matmul modules validate; the fused one exactly where relaxed SIMD exists', () => {
    const shape = { mr: 5, nv: 2, unroll: 4, mc: 120, kc: 256 };
    for (const sharedMemory of [false, true]) {
      const plain = matmulModule({ fma: false, shapes: { f32: shape, f64: shape }, sharedMemory, maximumPages: 16384 });
      expect(WebAssembly.validate(plain)).toBe(true);
      const fused = matmulModule({ fma: true, shapes: { f32: { ...shape, mr: 6, mc: 120 }, f64: { ...shape, mr: 6, mc: 120 } }, sharedMemory, maximumPages: 16384 });
      expect(WebAssembly.validate(fused)).toBe(wasmRelaxedSimdSupported());
    }
    expect(() => matmulModule({ fma: false, shapes: { f32: { ...shape, mc: 121 }, f64: shape }, sharedMemory: false, maximumPages: 16 })).toThrow(/multiple of mr/);
  });
});
