// Creating tensors: `tensor` from nested arrays, flat arrays with a shape, typed arrays,
// booleans and scalars; the constant and range constructors (zeros, ones, full, arange,
// linspace, eye); the dtype/shape/device fields and the read-back paths (toArray, data, item,
// dataSync). Expected values are written out by hand.

import { describe, expect, it } from 'vitest';
import { type CpuBackend, type CpuHandle, arange, concat, eye, full, getBackend, linspace, matmul, memory, narrow, ones, rand, randn, storedValue, tensor, traceProgram, zeros } from '@scorch/tensor';

describe('tensor() from host data', () => {
  it('infers shape and float32 dtype from nested arrays', async () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    expect(x.shape).toEqual([2, 3]);
    expect(x.dtype).toBe('float32');
    expect(x.device).toBe('cpu');
    expect(x.rank).toBe(2);
    expect(x.size).toBe(6);
    expect(await x.toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(x.dataSync()).toEqual(new Float32Array([1, 2, 3, 4, 5, 6]));
  });

  it('stores float32 values rounded to float32', () => {
    expect(Array.from(tensor([0.1, 1 / 3]).dataSync())).toEqual([Math.fround(0.1), Math.fround(1 / 3)]);
    expect(Array.from(tensor([0.1, 1 / 3], { dtype: 'float64' }).dataSync())).toEqual([0.1, 1 / 3]);
  });

  it('reshapes a flat array with an explicit shape', async () => {
    const x = tensor([1, 2, 3, 4, 5, 6], { shape: [3, 1, 2] });
    expect(x.shape).toEqual([3, 1, 2]);
    expect(await x.toArray()).toEqual([[[1, 2]], [[3, 4]], [[5, 6]]]);
  });

  it('takes dtype from typed arrays and copies them', async () => {
    const src = new Int32Array([7, -8, 9]);
    const x = tensor(src);
    src[0] = 100; // the tensor holds its own copy
    expect(x.dtype).toBe('int32');
    expect(await x.toArray()).toEqual([7, -8, 9]);
    expect(tensor(new Float64Array([0.1])).dtype).toBe('float64');
    expect(tensor(new Float32Array([0.5])).dtype).toBe('float32');
    expect(tensor(new Uint8Array([1, 0])).dtype).toBe('bool');
    const shaped = tensor(new Float32Array([1, 2, 3, 4]), { shape: [2, 2] });
    expect(await shaped.toArray()).toEqual([[1, 2], [3, 4]]);
  });

  it('makes bool tensors from booleans, read back as booleans', async () => {
    const b = tensor([[true, false], [false, true]]);
    expect(b.dtype).toBe('bool');
    expect(await b.toArray()).toEqual([[true, false], [false, true]]);
    expect(Array.from(b.dataSync())).toEqual([1, 0, 0, 1]);
  });

  it('infers bool only when every value is a boolean, whichever comes first', async () => {
    // torch.tensor([True, 2]) is numeric ([1, 2]); a 2 must not be read as "nonzero".
    const a = tensor([true, 2]);
    expect(a.dtype).toBe('float32');
    expect(await a.toArray()).toEqual([1, 2]);
    const b = tensor([[false, true], [3, 0]]);
    expect(b.dtype).toBe('float32');
    expect(await b.toArray()).toEqual([[0, 1], [3, 0]]);
    expect(tensor([2, true]).dtype).toBe('float32');
    expect(tensor([[true], [false]]).dtype).toBe('bool');
    expect(tensor([]).dtype).toBe('float32');
  });

  it('converts numbers to int32 by truncation and to bool by "nonzero", as cast does', async () => {
    expect(await tensor([1.7, -1.7, 2.5, -0.5], { dtype: 'int32' }).toArray()).toEqual([1, -1, 2, 0]);
    // 256 and 0.5 are nonzero: a byte store would wrap 256 to 0 and truncate 0.5 to 0.
    expect(await tensor([0, 0.5, 2, 256, -1], { dtype: 'bool' }).toArray()).toEqual([false, true, true, true, true]);
    expect(await tensor(new Float32Array([0, 0.5, 256]), { dtype: 'bool' }).toArray()).toEqual([false, true, true]);
    expect(Array.from(tensor([true, false, true], { dtype: 'float32' }).dataSync())).toEqual([1, 0, 1]);
    // int32 saturates at both ends, NaN goes to 0, and no −0 is ever stored.
    expect(await tensor([-3e9, 3e9, -(2 ** 31)], { dtype: 'int32' }).toArray()).toEqual([-2147483648, 2147483647, -2147483648]);
    expect(Object.is(storedValue(Number.NaN, 'int32'), 0)).toBe(true);
    expect(Object.is(storedValue(-0.5, 'int32'), 0)).toBe(true);
  });

  it('refuses more values than the shape holds, not only fewer, and shows a bad shape as given', () => {
    expect(() => tensor([1, 2, 3], { shape: [2] })).toThrow(new Error('tensor: 3 values do not fill shape [2] (2 elements)'));
    expect(() => tensor(new Float32Array(3), { shape: [2] })).toThrow(new Error('tensor: 3 values do not fill shape [2] (2 elements)'));
    // JSON printed NaN and Infinity as null and a typed array as {"0":2}.
    expect(() => zeros([Number.NaN, 2])).toThrow(new TypeError('zeros: shape must be an array of non-negative integers, got [NaN,2]'));
    expect(() => tensor([1, 2], { shape: Int32Array.of(2) as never })).toThrow(new TypeError('tensor: shape must be an array of non-negative integers, got a Int32Array [2]'));
  });

  it('makes rank-0 tensors from scalars', async () => {
    const s = tensor(3.5);
    expect(s.shape).toEqual([]);
    expect(s.rank).toBe(0);
    expect(s.size).toBe(1);
    expect(await s.toArray()).toBe(3.5);
    expect(await s.item()).toBe(3.5);
    expect(await tensor(true).toArray()).toBe(true);
    expect(await tensor(-4, { dtype: 'int32' }).item()).toBe(-4);
  });

  it('reads back through data(), dataSync() and item()', async () => {
    const x = tensor([[2, 4]], { dtype: 'float64' });
    const d = await x.data();
    expect(d).toBeInstanceOf(Float64Array);
    expect(Array.from(d)).toEqual([2, 4]);
    // Reads are copies: writing to one does not change the tensor.
    d[0] = 99;
    expect(Array.from(x.dataSync())).toEqual([2, 4]);
    expect(await tensor([[[5]]]).item()).toBe(5);
  });

  it('handles empty data', () => {
    const e = tensor([]);
    expect(e.shape).toEqual([0]);
    expect(e.size).toBe(0);
    expect(e.dataSync().length).toBe(0);
  });
});

describe('constant constructors', () => {
  it('zeros, ones and full fill every element with the dtype requested', async () => {
    expect(await zeros([2, 2]).toArray()).toEqual([[0, 0], [0, 0]]);
    const o = ones([3], { dtype: 'int32' });
    expect(o.dtype).toBe('int32');
    expect(await o.toArray()).toEqual([1, 1, 1]);
    const f = full([2, 1], 2.5, { dtype: 'float64' });
    expect(f.shape).toEqual([2, 1]);
    expect(f.dtype).toBe('float64');
    expect(await f.toArray()).toEqual([[2.5], [2.5]]);
    expect(await full([], 7).toArray()).toBe(7);
    expect(await ones([2], { dtype: 'bool' }).toArray()).toEqual([true, true]);
  });

  it('full names a null value as null, ones and zeros name themselves, and a bool takes one byte in memory()', () => {
    expect(() => full([2], null as never)).toThrow(new TypeError('full: value must be a number, got null'));
    expect(() => ones([2], { dtpye: 'int32' } as never)).toThrow("ones: unknown option 'dtpye' (did you mean 'dtype'?); valid options: dtype, device");
    const before = memory().bytes;
    const b = tensor([true, false, true]);
    expect(memory().bytes - before).toBe(3);
    b.dispose();
  });

  it('full converts its value as cast would', async () => {
    expect(await full([2], 0.5, { dtype: 'bool' }).toArray()).toEqual([true, true]);
    expect(await full([2], -2.9, { dtype: 'int32' }).toArray()).toEqual([-2, -2]);
    expect(Array.from(full([1], 0.1).dataSync())).toEqual([Math.fround(0.1)]);
  });
});

describe('arange', () => {
  it('converts int32 and bool ranges as tensor() does (saturating, nonzero), not by a wrapping store', async () => {
    // int32 saturates to 2^31 - 1 (docs/conventions.md); a plain Int32Array store wraps 3e9 to -1294967296.
    expect(await arange(3e9, 3e9 + 2, 1, { dtype: 'int32' }).toArray()).toEqual([2147483647, 2147483647]);
    // bool is "nonzero"; a Uint8Array store wraps 256 to 0.
    expect(await arange(255, 258, 1, { dtype: 'bool' }).toArray()).toEqual([true, true, true]);
    expect(await arange(-2.5, 0, 1, { dtype: 'int32' }).toArray()).toEqual([-2, -1, 0]);
    expect(await linspace(0, 3e9, 2, { dtype: 'int32' }).toArray()).toEqual([0, 2147483647]);
    expect(await linspace(0, 512, 3, { dtype: 'bool' }).toArray()).toEqual([false, true, true]);
  });

  it('one argument counts from 0 to n−1', async () => {
    const r = arange(5);
    expect(r.dtype).toBe('float32');
    expect(await r.toArray()).toEqual([0, 1, 2, 3, 4]);
  });

  it('two arguments give [start, stop)', async () => {
    expect(await arange(2, 6).toArray()).toEqual([2, 3, 4, 5]);
    expect(await arange(3, 3).toArray()).toEqual([]);
    expect(await arange(5, 2).toArray()).toEqual([]);
  });

  it('three arguments step, including fractional and negative steps', async () => {
    expect(await arange(0, 2, 0.5).toArray()).toEqual([0, 0.5, 1, 1.5]);
    expect(await arange(1, 8, 3).toArray()).toEqual([1, 4, 7]);
    expect(await arange(5, 0, -1).toArray()).toEqual([5, 4, 3, 2, 1]);
    expect(await arange(0, -2, -0.5).toArray()).toEqual([0, -0.5, -1, -1.5]);
    const ints = arange(0, 10, 4, { dtype: 'int32' });
    expect(ints.dtype).toBe('int32');
    expect(await ints.toArray()).toEqual([0, 4, 8]);
  });

  it('rejects a zero, infinite or NaN step (Infinity gave an empty tensor), showing a step that is no number as given', () => {
    expect(() => arange(0, 1, 0)).toThrow(/arange: step must be a finite non-zero number, got 0/);
    expect(() => arange(0, 1, Infinity)).toThrow(new RangeError('arange: step must be a finite non-zero number, got Infinity'));
    expect(() => arange(0, 1, Number.NaN)).toThrow(new RangeError('arange: step must be a finite non-zero number, got NaN'));
    // Printed raw, '2' read "got 2": the message contradicted itself.
    expect(() => arange(0, 5, '2' as never)).toThrow(new RangeError('arange: step must be a finite non-zero number, got "2"'));
  });

  it('into int32 truncates start and step first, as torch.arange: whole steps apart where the range crosses 0', async () => {
    // Each value truncated on its own repeated 0: [-1, 0, 0, 1] and [0, 0, 1, 2].
    expect(await arange(-1.5, 2, 1, { dtype: 'int32' }).toArray()).toEqual([-1, 0, 1, 2]);
    expect(await arange(-0.5, 3, 1, { dtype: 'int32' }).toArray()).toEqual([0, 1, 2, 3]);
    expect(await arange(1.5, -2, -1, { dtype: 'int32' }).toArray()).toEqual([1, 0, -1, -2]);
    expect(() => arange(0, 2, 0.5, { dtype: 'int32' })).toThrow('arange: step 0.5 truncates to 0 in int32 (as torch.arange); use a whole step, or a float dtype');
    expect(await arange(0, 0, 0.5, { dtype: 'int32' }).toArray()).toEqual([]);
  });

  it('refuses a missing stop by name (it failed inside tensor with a shape [null])', () => {
    expect(() => arange(undefined as never)).toThrow(/^arange: stop must be a finite number, got undefined$/);
    expect(() => (arange as () => unknown)()).toThrow(/^arange: stop must be a finite number, got undefined$/);
  });
});

describe('linspace', () => {
  it('includes both ends and spaces evenly', async () => {
    expect(await linspace(0, 1, 5).toArray()).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(await linspace(2, -2, 3, { dtype: 'float64' }).toArray()).toEqual([2, 0, -2]);
    expect(await linspace(3, 9, 1).toArray()).toEqual([3]);
    expect(await linspace(0, 1, 0).toArray()).toEqual([]);
  });

  it('refuses a count that is negative or no integer by name, showing it as given', () => {
    expect(() => linspace(0, 1, -1)).toThrow(new RangeError('linspace: num must be a non-negative integer, got -1'));
    expect(() => linspace(0, 1, '3' as never)).toThrow(new RangeError('linspace: num must be a non-negative integer, got "3"'));
  });

  it('ends exactly at stop even when the step is inexact', () => {
    const x = linspace(0, 1, 11, { dtype: 'float64' }).dataSync();
    expect(x[10]).toBe(1);
    expect(x[3]).toBe(0 + 3 * (1 / 10));
  });
});

describe('eye', () => {
  it('square identity', async () => {
    expect(await eye(3).toArray()).toEqual([[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
  });

  it('rectangular identity in both orientations', async () => {
    expect(await eye(2, 4).toArray()).toEqual([[1, 0, 0, 0], [0, 1, 0, 0]]);
    expect(await eye(3, 2, { dtype: 'int32' }).toArray()).toEqual([[1, 0], [0, 1], [0, 0]]);
    // More rows than one past the columns: i·m + i for i >= m lands inside the array (row 3, column 0 of eye(5, 2)).
    expect(await eye(5, 2).toArray()).toEqual([[1, 0], [0, 1], [0, 0], [0, 0], [0, 0]]);
  });

  it('refuses a negative m by name, and takes a null m as none', () => {
    expect(() => eye(2, -1)).toThrow(new RangeError('eye: sizes must be non-negative integers, got 2, -1'));
    const i2 = eye(2, null as never);
    expect(i2.shape).toEqual([2, 2]);
    expect(Array.from(i2.dataSync())).toEqual([1, 0, 0, 1]);
  });

  it('eye(n, opts) is the square identity with those options (the options were read as m)', () => {
    const i2 = eye(2, { dtype: 'int32' });
    expect([i2.dtype, i2.shape]).toEqual(['int32', [2, 2]]);
    expect(Array.from(i2.dataSync())).toEqual([1, 0, 0, 1]);
    expect(() => eye(2, '3' as never)).toThrow('eye: sizes must be non-negative integers, got 2, "3"');
  });
});

describe('huge shapes', () => {
  it('are refused by name before anything is allocated', () => {
    // 10^12 elements: the engine's own error ("Array buffer allocation failed", "Invalid typed
    // array length") named neither the op nor the shape.
    const msg = 'has 1000000000000 elements, more than a tensor can hold (at most 4294967295 = 2^32 - 1)';
    expect(() => zeros([1e6, 1e6])).toThrow(`zeros: shape [1000000,1000000] ${msg}`);
    expect(() => full([1e6, 1e6], 2, { dtype: 'float64' })).toThrow(`full: shape [1000000,1000000] ${msg}`);
    expect(() => randn([1e6, 1e6])).toThrow(`randn: shape [1000000,1000000] ${msg}`);
    expect(() => rand([1e12])).toThrow(`rand: shape [1000000000000] ${msg}`);
    expect(() => arange(1e12)).toThrow(`arange: shape [1000000000000] ${msg}`);
    expect(() => linspace(0, 1, 1e12)).toThrow(`linspace: shape [1000000000000] ${msg}`);
    expect(() => eye(1e6)).toThrow(`eye: shape [1000000,1000000] ${msg}`);
    expect(() => tensor([1], { shape: [1e6, 1e6] })).toThrow(`tensor: shape [1000000,1000000] ${msg}`);
    // 2^32 − 1 elements is the largest shape allowed: tensor() checks the limit before the value count.
    expect(() => tensor([1], { shape: [2 ** 32 - 1] })).toThrow(new Error('tensor: 1 values do not fill shape [4294967295] (4294967295 elements)'));
    expect(() => tensor([1], { shape: [2 ** 32] })).toThrow(/^tensor: shape \[4294967296\] has 4294967296 elements, more than a tensor can hold/);
  });

  it('results and dense copies of views past the limit are refused by the CPU backend, naming the op', () => {
    // Small operands whose result (or whose expanded view, once copied) has 2^33 elements: the
    // engine's 'Array buffer allocation failed' named neither the op nor the shape. An expand is
    // a view and holds no elements, so it is allowed; an op that must copy it is refused.
    const msg = 'shape [65536,131072] has 8589934592 elements, more than a tensor can hold (at most 4294967295 = 2^32 - 1)';
    const col = zeros([2 ** 16, 1]);
    const row = zeros([1, 2 ** 17]);
    const big = col.expand([2 ** 16, 2 ** 17]);
    const half = ones([1]).expand([2 ** 31]);
    const before = memory().bytes;
    expect(() => col.add(row)).toThrow(`add: ${msg}`);
    expect(() => matmul(col, row)).toThrow(`matmul: ${msg}`);
    // A slice copies its operand densely; a reduction reads the view through its strides instead.
    expect(() => narrow(big, 0, 0, 1)).toThrow(`slice (copying its broadcast view operand densely): ${msg}`);
    expect(() => big.dataSync()).toThrow(`read (copying its broadcast view operand densely): ${msg}`);
    expect(() => concat([half, half, half])).toThrow('concat: shape [6442450944] has 6442450944 elements, more than a tensor can hold');
    // A compiled program's result.
    const cpu = getBackend('cpu') as CpuBackend;
    const traced = traceProgram(([a, b]) => [a!.add(b!).exp()], [col, row], []);
    const compiled = cpu.compile(traced.program);
    const hs = [col, row].map((t) => t._live('test') as CpuHandle);
    expect(() => compiled.run(hs, [], [false, false])).toThrow('jit: an array of 8589934592 float32 elements is more than a tensor can hold (at most 4294967295 = 2^32 - 1)');
    compiled.dispose();
    // Nothing was allocated for the refused results.
    expect(memory().bytes).toBe(before);
    for (const t of [half, big, col, row]) t.dispose();
  });
});

describe('typed arrays of other kinds', () => {
  it('convert with an explicit dtype; BigInt arrays and DataViews are refused by name', async () => {
    expect(await tensor(new Int16Array([-1, 2]) as never, { dtype: 'float32' }).toArray()).toEqual([-1, 2]);
    const msg = 'convert it to a Float64Array or Int32Array (or an array of numbers) first';
    expect(() => tensor(new BigInt64Array([1n]) as never, { dtype: 'float32' })).toThrow(`tensor: unsupported BigInt64Array; ${msg}`);
    expect(() => tensor(new BigUint64Array([1n]) as never)).toThrow(`tensor: unsupported BigUint64Array; ${msg}`);
    expect(() => tensor(new DataView(new ArrayBuffer(4)) as never, { dtype: 'int32' })).toThrow(`tensor: unsupported DataView; ${msg}`);
  });
});
