// Error messages: each misuse must fail with a message that names the operation, what was wrong
// and what was expected (DESIGN.md: `matmul: inner dimensions differ (3 vs 4) for shapes [2,3]
// and [4,5]`). Covers broadcasting, matmul shapes, dtype mismatches, disposed tensors, axes,
// reshape, ragged data, indexSelect, random keys, slice windows and a few argument checks.

import { describe, expect, it } from 'vitest';
import { jit } from '@scorch/autograd';
import {
  tile, add, mul,
  CpuBackend, type RandomKey, type Tensor, apply, greater, maximum, minimum, arange, argmax, broadcastTo, clamp, concat, elu, eye, flip, foldIn, full, indexSelect, linspace, logSoftmax, manualSeed, matmul, narrow, ones, pad, permute, rademacher, rand,
  primitiveDefinition, randn, randomKey, registerBackend, reshape, slice, softmax, splitKey, squeeze, stack, tensor, transpose, unsqueeze, variance, where, zeros, zerosLike, onesLike,
} from '@scorch/tensor';

describe('broadcasting', () => {
  it('names the op, both shapes and the first incompatible axis', () => {
    expect(() => ones([2, 3]).add(ones([4]))).toThrow(
      'add: shapes [2,3] and [4] cannot be broadcast together (axis -1 has sizes 3 and 4; each pair must be equal or contain a 1)',
    );
    expect(() => ones([5, 2, 3]).mul(ones([4, 1, 3]))).toThrow('mul: shapes [5,2,3] and [4,1,3] cannot be broadcast together (axis -3 has sizes 5 and 4;');
  });

  it('reports the shapes in the order the caller wrote them (greater is less with swapped operands)', () => {
    expect(() => ones([2, 3]).greater(ones([4]))).toThrow('greater: shapes [2,3] and [4] cannot be broadcast together');
    expect(() => ones([2, 3]).greaterEqual(ones([4]))).toThrow('greaterEqual: shapes [2,3] and [4] cannot be broadcast together');
  });

  it('where names the condition and value shapes', () => {
    expect(() => where(tensor([true, false, true]), ones([2]), 0)).toThrow('where: shapes [3] and [2] cannot be broadcast together');
  });

  it('broadcastTo names the source, the target and the axis that cannot stretch', () => {
    expect(() => broadcastTo(ones([1, 3]), [2, 1])).toThrow(
      'broadcastTo: cannot broadcast [1,3] to [2,1] (axis 1 has size 3 but the target has 1; only size-1 axes stretch)',
    );
    expect(() => broadcastTo(ones([3]), [2, 2])).toThrow('broadcastTo: cannot broadcast [3] to [2,2] (axis 0 has size 3 but the target has 2;');
    expect(() => broadcastTo(ones([2, 3]), [3])).toThrow('broadcastTo: cannot broadcast [2,3] to [3], which has lower rank');
  });
});

describe('matmul', () => {
  it('inner dimension mismatch', () => {
    expect(() => matmul(ones([2, 3]), ones([4, 5]))).toThrow('matmul: inner dimensions differ (3 vs 4) for shapes [2,3] and [4,5]');
    expect(() => ones([3]).matmul(ones([4]))).toThrow('matmul: inner dimensions differ (3 vs 4) for shapes [3] and [4]');
    expect(() => ones([2, 2, 3]).matmul(ones([2]))).toThrow('matmul: inner dimensions differ (3 vs 2) for shapes [2,2,3] and [2]');
  });

  it('batch dimensions that do not broadcast are named with the full shapes', () => {
    expect(() => ones([2, 2, 3]).matmul(ones([3, 3, 4]))).toThrow(
      'matmul (batch dimensions of [2,2,3] and [3,3,4]): shapes [2] and [3] cannot be broadcast together (axis -1 has sizes 2 and 3;',
    );
  });

  it('rank-0 operands and non-float dtypes', () => {
    expect(() => matmul(tensor(1), ones([2]))).toThrow('matmul: operands must have rank >= 1, got shapes [] and [2]');
    expect(() => matmul(ones([2, 2], { dtype: 'int32' }), ones([2, 2], { dtype: 'int32' }))).toThrow('matmul: expected float tensors, got int32');
  });
});

describe('dtype mismatches', () => {
  it('float32 with float64', () => {
    expect(() => ones([2]).add(ones([2], { dtype: 'float64' }))).toThrow(
      'add: dtype mismatch (float32 vs float64) for shapes [2] and [2]; cast one operand first',
    );
  });

  it('float32 with int32, also in matmul, where and concat', () => {
    expect(() => ones([2, 1]).sub(ones([3], { dtype: 'int32' }))).toThrow(
      'sub: dtype mismatch (float32 vs int32) for shapes [2,1] and [3]; cast one operand first',
    );
    expect(() => matmul(ones([2, 2]), ones([2, 2], { dtype: 'float64' }))).toThrow('matmul: dtype mismatch (float32 vs float64); cast one operand first');
    expect(() => where(tensor([true]), ones([1]), ones([1], { dtype: 'int32' }))).toThrow('where: dtype mismatch (float32 vs int32)');
    expect(() => concat([ones([1]), ones([1], { dtype: 'int32' })])).toThrow('concat: dtype mismatch (float32 vs int32); cast one operand first');
    // stack is built from concat, whose check named concat.
    expect(() => stack([ones([1]), ones([1], { dtype: 'int32' })])).toThrow('stack: dtype mismatch (float32 vs int32); cast one operand first');
  });

  it('stack and indexSelect name themselves for tensors on different devices (not concat and gather)', () => {
    registerBackend(new CpuBackend('cpu-other'));
    const other = ones([2], { device: 'cpu-other' });
    expect(() => stack([ones([2]), other])).toThrow("stack: tensors are on different devices ('cpu' and 'cpu-other'); move one first");
    expect(() => indexSelect(other, 0, tensor([1], { dtype: 'int32' }))).toThrow("indexSelect: the indices are on 'cpu' and x on 'cpu-other'; move the indices to x's device first");
  });

  it('binary ops built from others, and clamp\'s tensor bounds, are checked under the name called', () => {
    registerBackend(new CpuBackend('cpu-other'));
    const other = ones([2], { device: 'cpu-other' });
    // Were 'less: ... (\'cpu-other\' and \'cpu\')' (greater swaps its operands into less) and 'max: ...'.
    expect(() => greater(ones([2]), other)).toThrow("greater: tensors are on different devices ('cpu' and 'cpu-other')");
    expect(() => maximum(ones([2]), other)).toThrow(/^maximum: tensors are on different devices/);
    expect(() => minimum(ones([2]), other)).toThrow(/^minimum: tensors are on different devices/);
    // Were 'less: dtype mismatch ...', 'greater: ...', 'less: shapes [3] and [4] ...'.
    expect(() => clamp(ones([3]), tensor([0, 1, 2], { dtype: 'int32' }))).toThrow('clamp: min is int32 but x is float32; cast one first');
    expect(() => clamp(ones([3]), undefined, ones([3], { dtype: 'float64' }))).toThrow('clamp: max is float64 but x is float32; cast one first');
    expect(() => clamp(ones([3]), ones([4]))).toThrow(/^clamp: shapes \[3\] and \[4\] cannot be broadcast/);
    expect(() => clamp(ones([2]), undefined, other)).toThrow("clamp: max is on 'cpu-other' but x on 'cpu'");
    // Only min > max is refused: equal bounds give that value everywhere.
    expect(() => clamp(tensor([0]), 2, 1)).toThrow('clamp: min (2) is greater than max (1); expected min <= max');
    expect(Array.from(clamp(tensor([-2, 1, 3]), 1, 1).dataSync())).toEqual([1, 1, 1]);
    expect(Array.from(clamp(tensor([-2, 5], { dtype: 'int32' }), 0, 0).dataSync())).toEqual([0, 0]);
  });

  it('tensor() refuses a sparse array\'s hole; arange and linspace name options passed in a number\'s place', () => {
    // forEach skipped holes: [1, , 3] was '2 values do not fill shape [3]', and with a shape the
    // values after a hole shifted into place silently.
    const holed = [1, 2, 3, 4];
    delete holed[1];
    expect(() => tensor(holed, { shape: [3] })).toThrow('tensor: entry [1] is empty (a hole in a sparse array), expected a number or boolean');
    expect(() => tensor([[1, 2], holed.slice(0, 2)])).toThrow('tensor: entry [1,1] is empty (a hole in a sparse array), expected a number or boolean');
    // A hole in a shape or a size pair (every() skips holes): refused by the function called, not
    // by the primitive it calls ('full: ...') or a later pad ('widths ... NaN').
    const shape = [2, 1, 3];
    delete shape[1];
    expect(() => zeros(shape)).toThrow('zeros: shape must be an array of non-negative integers, got [2,undefined,3]');
    expect(() => ones([1, 1, 4, 4]).reshape(shape)).toThrow(/^reshape: invalid shape/);
    expect(() => apply('full', [], { value: 1, shape, dtype: 'float32', device: 'cpu' })).toThrow('full: shape must be non-negative integers, got [2,null,3]');
    // Were 'step must be a finite non-zero number, got [object Object]' and the like.
    expect(() => arange(0, 5, { dtype: 'int32' } as never)).toThrow('arange: got an options object as step; options are the 4th argument: arange(start, stop, step, { dtype, device })');
    expect(() => arange(5, { dtype: 'int32' } as never)).toThrow(/^arange: got an options object as stop;/);
    expect(() => linspace(0, 1, { dtype: 'float64' } as never)).toThrow(/^linspace: got an options object as num;/);
  });

  it('tile, flip and stack refuse a result too large under their own names, before copying anything', () => {
    // Were 'reshape: ...' (tile), 'gather: ...' (flip), and for stack a dense copy of each
    // broadcast input (8 GiB here) before concat's check.
    expect(() => tile(ones([2]), [2 ** 31])).toThrow(/^tile: shape \[4294967296\] has 4294967296 elements, more than a tensor can hold/);
    expect(() => flip(broadcastTo(ones([1, 1]), [2 ** 17, 2 ** 16]), 0)).toThrow(/^flip: shape \[131072,65536\] has 8589934592 elements/);
    const huge = broadcastTo(ones([1]), [2 ** 31]);
    expect(() => stack([huge, huge])).toThrow(/^stack: shape \[2,2147483648\] has 4294967296 elements/);
  });

  it('cast refuses an unknown dtype eagerly, under jit and at the primitive (jit reached the kernels with it)', () => {
    expect(() => ones([2]).cast('float16' as never)).toThrow('cast: unknown dtype "float16"; expected one of float32, float64, int32, bool');
    expect(() => jit((t: Tensor) => t.cast('int64' as never))(ones([2]))).toThrow('cast: unknown dtype "int64"');
    expect(() => apply('cast', [ones([2])], { dtype: 'float16' as never })).toThrow('cast: unknown dtype "float16"');
  });

  it('ops that need floats or numbers say which dtype they got', () => {
    expect(() => ones([2], { dtype: 'int32' }).exp()).toThrow('exp: expected a float tensor, got int32');
    expect(() => ones([2], { dtype: 'int32' }).div(2)).toThrow('div: expected float tensors, got int32');
    expect(() => ones([2], { dtype: 'bool' }).sum()).toThrow('sum: expected a numeric tensor, got bool; cast it first');
    expect(() => where(ones([2]), 1, ones([2]))).toThrow('where: condition must be a bool tensor, got float32');
    expect(() => randn([2], { dtype: 'int32' })).toThrow('randn: dtype must be float32 or float64, got int32');
  });

  it('ops built from others check the dtype under their own name, not the name of an op inside', () => {
    const ints = tensor([1, 2], { dtype: 'int32' });
    const bools = tensor([true, false]);
    // Were 'div: expected float tensors, got int32' (mean, variance), 'exp: ...' (logsumexp,
    // softplus), 'sigmoid: ...', 'expm1: ...', 'sqrt: ...' and, for gelu, a refusal of the number 0.5.
    for (const op of ['mean', 'variance', 'logsumexp', 'softplus', 'silu', 'elu', 'gelu', 'rsqrt'] as const) {
      expect(() => ints[op]()).toThrow(`${op}: expected a float tensor, got int32`);
      expect(() => bools[op]()).toThrow(`${op}: expected a float tensor, got bool`);
    }
    // Were 'reduceMax: ...' (max, the primitive's name) and 'neg: ...' (min, abs).
    for (const op of ['sum', 'max', 'min', 'abs'] as const) {
      expect(() => bools[op]()).toThrow(`${op}: expected a numeric tensor, got bool; cast it first`);
    }
    expect(() => bools.max(0, true)).toThrow('max: expected a numeric tensor, got bool; cast it first');
    // Were 'max: ...' (the primitive) and 'neg: ...'.
    expect(() => bools.maximum(bools)).toThrow('maximum: expected numeric tensors, got bool; cast them first');
    expect(() => bools.minimum(1)).toThrow('minimum: expected numeric tensors, got bool; cast them first');
    // relu and clamp are built from comparisons and `where`, which take bool, so a bool tensor went
    // through (relu returned it unchanged, clamp(b, 0, 1) too) where docs/conventions.md and
    // torch.relu refuse bool arithmetic.
    expect(() => bools.relu()).toThrow('relu: expected a numeric tensor, got bool; cast it first');
    expect(() => clamp(bools, 0, 1)).toThrow('clamp: expected a numeric tensor, got bool; cast it first');
    expect(() => clamp(bools, undefined, bools)).toThrow('clamp: expected a numeric tensor, got bool; cast it first');
    // Was 'mul: expected numeric tensors, got bool', square being x · x.
    expect(() => bools.square()).toThrow('square: expected a numeric tensor, got bool; cast it first');
  });

  it('unknown dtypes are rejected by name, before any storage is made', () => {
    expect(() => tensor([1], { dtype: 'float16' as never })).toThrow('tensor: unknown dtype "float16"; expected one of float32, float64, int32, bool');
    expect(() => zeros([1], { dtype: 'half' as never })).toThrow('zeros: unknown dtype "half"');
    expect(() => arange(3, undefined, 1, { dtype: 'uint8' as never })).toThrow('arange: unknown dtype "uint8"');
  });
});

describe('disposed tensors', () => {
  it('every use names the operation and says the tensor was disposed', async () => {
    const x = ones([2]);
    x.dispose();
    expect(x.isDisposed).toBe(true);
    expect(() => x.add(1)).toThrow('add: first operand, a float32 [2] tensor, was disposed (by dispose() or tidy()) and cannot be used');
    expect(() => ones([2]).mul(x)).toThrow('mul: second operand, a float32 [2] tensor, was disposed');
    expect(() => x.sum()).toThrow('sum: argument, a float32 [2] tensor, was disposed');
    expect(() => x.dataSync()).toThrow('dataSync: tensor [2] float32 was disposed (by dispose() or tidy()) and cannot be used');
    await expect(x.data()).rejects.toThrow('data: tensor [2] float32 was disposed');
    expect(() => x.detach()).toThrow(/^detach: tensor \[2\] float32 was disposed/);
    // toArray and item name themselves, not data (which they read through).
    await expect(x.toArray()).rejects.toThrow('toArray: tensor [2] float32 was disposed (by dispose() or tidy()) and cannot be used');
    const s = ones([]);
    s.dispose();
    await expect(s.item()).rejects.toThrow('item: tensor [] float32 was disposed (by dispose() or tidy()) and cannot be used');
    x.dispose(); // idempotent
  });

  it('the error names the op the caller used, even when broadcasting would run first', () => {
    const x = ones([1]);
    x.dispose();
    expect(() => x.add(ones([3]))).toThrow('add: first operand, a float32 [1] tensor, was disposed');
  });
});

describe('axes', () => {
  const m = ones([2, 3]);

  it('out-of-range axes give the valid range', () => {
    expect(() => m.sum(5)).toThrow('sum: axis 5 is out of range for a tensor of rank 2 (expected an integer in [-2, 1])');
    expect(() => m.mean(-3)).toThrow('mean: axis -3 is out of range for a tensor of rank 2 (expected an integer in [-2, 1])');
    expect(() => m.max([0, 2])).toThrow('max: axis 2 is out of range for a tensor of rank 2');
    expect(() => concat([m, m], 2)).toThrow('concat: axis 2 is out of range for a tensor of rank 2');
    expect(() => concat([m, ones([1, 2, 3])])).toThrow('concat: ranks differ ([2,3], [1,2,3])');
    expect(() => tensor(1).sum(0)).toThrow('sum: axis 0 is out of range for a tensor of rank 0 (a scalar has no axes)');
    // An axis must be an integer, and null is not "all axes" (only undefined is).
    expect(() => m.sum(0.5)).toThrow(new RangeError('sum: axis 0.5 is out of range for a tensor of rank 2 (expected an integer in [-2, 1])'));
    expect(() => m.sum(null as never)).toThrow(new TypeError('sum: axes must be an axis or an array of axes, got null'));
  });

  it('reductions refuse a keepdims that is not a boolean (an options object would read as true)', () => {
    expect(() => m.sum(0, { keepdims: false } as never)).toThrow('sum: keepdims must be true or false, got an object; it is the third argument: sum(x, axes, true)');
    expect(() => m.max(0, 'no' as never)).toThrow('max: keepdims must be true or false, got "no"');
    expect(() => m.min(0, 1 as never)).toThrow('min: keepdims must be true or false, got 1');
    expect(() => m.mean(0, null as never)).toThrow('mean: keepdims must be true or false, got null');
    expect(() => m.logsumexp(0, {} as never)).toThrow('logsumexp: keepdims must be true or false, got an object');
  });

  it('an axis that is not a number is shown as given, not as the number it prints as', () => {
    // Interpolated, '1' and [0] printed as 1 and 0: 'axis 1 is out of range ... expected an integer in [-2, 1]'.
    expect(() => argmax(m, '1' as never)).toThrow('argmax: axis "1" is out of range for a tensor of rank 2 (expected an integer in [-2, 1])');
    expect(() => m.sum(['0'] as never)).toThrow('sum: axis "0" is out of range for a tensor of rank 2 (expected an integer in [-2, 1])');
    expect(() => unsqueeze(m, [0] as never)).toThrow('unsqueeze: axis [0] is out of range for inserting an axis into a tensor of rank 2 (expected an integer in [-3, 2])');
  });

  it('repeated axes are named', () => {
    expect(() => m.sum([0, -2])).toThrow('sum: axes [0,-2] name the same axis twice');
  });

  it('unsqueeze and stack report the rank of the tensor they were given', () => {
    expect(() => unsqueeze(ones([3]), 3)).toThrow('unsqueeze: axis 3 is out of range for inserting an axis into a tensor of rank 1 (expected an integer in [-2, 1])');
    expect(() => stack([ones([3]), ones([3])], -3)).toThrow('stack: axis -3 is out of range for inserting an axis into a tensor of rank 1 (expected an integer in [-2, 1])');
  });

  it('squeeze of an axis that is not size 1, permute with a bad permutation', () => {
    expect(() => squeeze(ones([1, 3]), 1)).toThrow('squeeze: axis 1 of [1,3] has size 3, not 1');
    expect(() => permute(m, [0, 0])).toThrow('permute: [0,0] is not a permutation of the 2 axes of [2,3]');
    // Too few axes, even as a prefix of the identity, as torch.permute refuses them.
    expect(() => permute(m, [0])).toThrow('permute: [0] is not a permutation of the 2 axes of [2,3]');
    expect(() => m.transpose([1])).toThrow('permute: [1] is not a permutation of the 2 axes of [2,3]');
  });

  it('an axis list, permutation or index list that is not an array says what it got', () => {
    // These failed as 'list.map is not a function', 'perm.map ...' and 'indices.forEach ...'.
    expect(() => m.sum('0' as never)).toThrow('sum: axes must be an axis or an array of axes, got "0"');
    expect(() => squeeze(ones([1, 3]), { axis: 0 } as never)).toThrow('squeeze: axes must be an axis or an array of axes, got {"axis":0}');
    expect(() => flip(m, '1' as never)).toThrow('flip: axes must be an axis or an array of axes, got "1"');
    expect(() => permute(m, 1 as never)).toThrow('permute: perm must be an array of axes (output axis i is input axis perm[i]), got 1');
    expect(() => transpose(m, 1 as never)).toThrow('transpose: perm must be an array of axes (output axis i is input axis perm[i]), got 1');
    expect(() => indexSelect(m, 0, 1 as never)).toThrow('indexSelect: indices must be an int32 tensor or an array of integers, got 1');
  });
});

describe('reshape', () => {
  const x = ones([2, 3]);

  it('element counts that differ', () => {
    expect(() => x.reshape([4])).toThrow('reshape: cannot reshape [2,3] (6 elements) to [4] (4 elements)');
  });

  it('a −1 that cannot be inferred, and more than one −1', () => {
    expect(() => x.reshape([4, -1])).toThrow('reshape: cannot infer the -1 in [4,-1]: 6 elements of [2,3] are not a multiple of 4');
    expect(() => zeros([3, 0]).reshape([0, -1])).toThrow('reshape: cannot infer the -1 in [0,-1]: the other extents multiply to 0, so any extent would fit; give it explicitly');
    expect(() => softmax(tensor(1), 0)).toThrow('softmax: axis 0 is out of range for a tensor of rank 0 (a scalar has no axes)');
    expect(() => logSoftmax(x, 2)).toThrow('logSoftmax: axis 2 is out of range for a tensor of rank 2 (expected an integer in [-2, 1])');
    // An int32 input named exp or logsumexp, the ops they are built from.
    expect(() => softmax(tensor([1, 2], { dtype: 'int32' }))).toThrow('softmax: expected a float tensor, got int32');
    expect(() => logSoftmax(zeros([2, 0], { dtype: 'int32' }))).toThrow('logSoftmax: expected a float tensor, got int32');
    expect(() => x.reshape([-1, -1])).toThrow('reshape: at most one -1 is allowed, got [-1,-1]');
  });

  it('invalid entries', () => {
    expect(() => x.reshape([-2, -3])).toThrow('reshape: invalid shape [-2,-3]; expected non-negative integers and at most one -1');
    expect(() => x.reshape([1.5, 4])).toThrow('reshape: invalid shape [1.5,4]; expected non-negative integers and at most one -1');
  });
});

describe('tensor() data', () => {
  it('ragged nested data names the entry and the length expected', () => {
    expect(() => tensor([[1, 2], [3]])).toThrow('tensor: nested data is ragged: entry [1] has 1 element, expected 2 (inferred shape [2,2] from the first entries)');
    expect(() => tensor([[1, 2], 3] as never)).toThrow('tensor: nested data is ragged: entry [1] is a number, expected an array of 2 elements');
    expect(() => tensor([1, [2]] as never)).toThrow('tensor: nested data is ragged: entry [1] is an array, expected a number');
    expect(() => tensor([[[1], [2]], [[3], [4, 5]]])).toThrow('tensor: nested data is ragged: entry [1,1] has 2 elements, expected 1');
  });

  it('non-numeric entries and a shape the data does not fill', () => {
    expect(() => tensor([1, 'a'] as never)).toThrow('tensor: entry [1] is a string, expected a number or boolean');
    // 'a undefined' and 'a object' before, a tensor included.
    expect(() => tensor(undefined as never)).toThrow('tensor: entry [] is undefined, expected a number or boolean');
    expect(() => tensor([tensor(1), tensor(2)] as never)).toThrow(
      "tensor: entry [0] is a tensor (float32 [] on cpu) (stack or concat tensors; read a tensor's values with await t.data()), expected a number or boolean",
    );
    expect(() => tensor([[1, 2], new Float32Array([3, 4])] as never)).toThrow(
      'tensor: nested data is ragged: entry [1] is a Float32Array (nest plain arrays, or give one flat typed array with { shape }), expected an array of 2 elements',
    );
    expect(() => tensor([{}] as never)).toThrow('tensor: entry [0] is an object, expected a number or boolean');
    // Bytes read as bool collapsed to 0 and 1 silently (TF.js reads them as int32, torch as uint8).
    expect(() => tensor(new Uint8Array([0, 2, 255]))).toThrow(
      "tensor: a Uint8Array is read as bool (0 or 1), but it holds 2 at 1; pass { dtype: 'int32' } or { dtype: 'float32' } to keep its values, or { dtype: 'bool' } to read nonzero as true",
    );
    expect(Array.from(tensor(new Uint8Array([0, 2, 255]), { dtype: 'int32' }).dataSync())).toEqual([0, 2, 255]);
    expect(tensor(new Uint8Array([0, 1, 1])).dtype).toBe('bool');
    // zerosLike and onesLike read .shape of anything: 'Cannot read properties of undefined'.
    expect(() => zerosLike(undefined as never)).toThrow(/^zerosLike: argument must be a Tensor, got undefined/);
    expect(() => onesLike(3 as never)).toThrow(/^onesLike: argument must be a Tensor, got number/);
    expect(() => tensor([1, 2, 3, 4, 5], { shape: [2, 3] })).toThrow('tensor: 5 values do not fill shape [2,3] (6 elements)');
    expect(() => zeros([2, -1])).toThrow('zeros: shape must be an array of non-negative integers, got [2,-1]');
  });

  it('typed arrays other than the four storage types are rejected by name', () => {
    expect(() => tensor(new Int16Array([1]) as never)).toThrow(
      'tensor: unsupported typed array Int16Array; expected Float32Array, Float64Array, Int32Array or Uint8Array (bool)',
    );
  });
});

describe('indexSelect', () => {
  const x = arange(12).reshape([3, 4]);

  it('an out-of-range index names its position, the axis and the valid range', () => {
    expect(() => indexSelect(x, 0, [0, 3])).toThrow('indexSelect: index 3 at position 1 is out of range for axis 0 of [3,4] (expected 0 <= index < 3)');
    expect(() => indexSelect(x, 1, [-1])).toThrow('indexSelect: index -1 at position 0 is out of range for axis 1 of [3,4] (expected 0 <= index < 4)');
    expect(() => indexSelect(x, 0, tensor([5], { dtype: 'int32' }))).toThrow('gather: index 5 is out of range for axis 0 of extent 3 (expected 0 <= index < 3)');
  });

  it('indices of the wrong type', () => {
    expect(() => indexSelect(x, 0, [0.5])).toThrow('indexSelect: indices must be integers, got 0.5 at position 0');
    expect(() => indexSelect(x, 0, tensor([0]))).toThrow('indexSelect: indices must be a 1-D int32 tensor, got float32 [1]');
  });

  it('disposed indices are named under indexSelect, not the gather it is built on', () => {
    const idx = tensor([1], { dtype: 'int32' });
    idx.dispose();
    expect(() => indexSelect(x, 0, idx)).toThrow(new Error('indexSelect: indices, a int32 [1] tensor, was disposed (by dispose() or tidy()) and cannot be used'));
  });
});

describe('random keys', () => {
  it('a malformed key says what a key is', () => {
    const expected = 'a key is two unsigned 32-bit integers [k0, k1] (from randomKey or splitKey), got';
    expect(() => rand([2], { key: [1] as unknown as RandomKey })).toThrow(`rand: ${expected} [1]`);
    expect(() => randn([2], { key: [1, -1] })).toThrow(`randn: ${expected} [1,-1]`);
    expect(() => splitKey([0.5, 0])).toThrow(`splitKey: ${expected} [0.5,0]`);
    expect(() => foldIn([2 ** 32, 0], 1)).toThrow(`foldIn: ${expected} [4294967296,0]`);
    // Words that JSON cannot show: a bigint (a 64-bit habit) and NaN (which JSON prints as null).
    expect(() => rand([2], { key: [1n, 2n] as unknown as RandomKey })).toThrow(`rand: ${expected} [1n,2n]`);
    expect(() => splitKey([Number.NaN, 0])).toThrow(`splitKey: ${expected} [NaN,0]`);
    expect(() => foldIn(7n as unknown as RandomKey, 1)).toThrow(`foldIn: ${expected} 7n`);
  });

  it('splitKey refuses more keys than its 32-bit counter gives, before building any', () => {
    // Key i is Philox of counter [i, 0, 0, 1]: past 2³² − 1 the counter wraps and keys repeat
    // (and 2⁴⁰ keys ran out of memory building the array first).
    expect(() => splitKey(randomKey(1), 2 ** 40)).toThrow('splitKey: n must be at most 4294967295 (key i uses a 32-bit counter; past it keys would repeat), got 1099511627776');
    expect(() => splitKey(randomKey(1), 2 ** 32)).toThrow('splitKey: n must be at most 4294967295');
  });

  it('a tensor or typed array passed as a key is named, not dumped as JSON', () => {
    // A JAX habit: the key as an array value. JSON showed a tensor's internals (its handle and
    // flags) and a typed array as {"0":1,"1":2}.
    const expected = 'a key is two unsigned 32-bit integers [k0, k1] (from randomKey or splitKey), got';
    const k = tensor([1, 2], { dtype: 'int32' });
    expect(() => rand([2], { key: k as unknown as RandomKey })).toThrow(`rand: ${expected} a tensor (int32 [2] on cpu)`);
    expect(() => foldIn(new Uint32Array([1, 2]) as unknown as RandomKey, 3)).toThrow(`foldIn: ${expected} a Uint32Array [1,2]`);
    expect(() => splitKey(new BigUint64Array([5n]) as unknown as RandomKey)).toThrow(`splitKey: ${expected} a BigUint64Array [5n]`);
  });

  it('a key with holes is refused, not read as words of 0', () => {
    // Array.prototype.every skips holes, so new Array(2) passed as a key, and its missing words
    // became 0 on WebGPU (undefined >>> 0) but NaN round keys on the CPU: two different streams.
    const expected = 'a key is two unsigned 32-bit integers [k0, k1] (from randomKey or splitKey), got';
    expect(() => rand([4], { key: new Array(2) as unknown as RandomKey })).toThrow(`rand: ${expected} [undefined,undefined]`);
    expect(() => foldIn([, 5] as unknown as RandomKey, 1)).toThrow(`foldIn: ${expected} [undefined,5]`);
    expect(() => splitKey([5, ,] as unknown as RandomKey)).toThrow(`splitKey: ${expected} [5,undefined]`);
  });

  it('a null key is an error, not the default stream', () => {
    // Only an absent (undefined) key means the default stream; null is refused, as for every option.
    const expected = 'key is null, which is not a value for it (an option left out, or undefined, takes its default)';
    expect(() => rand([2], { key: null as unknown as RandomKey })).toThrow(`rand: ${expected}`);
    expect(() => randn([2], { key: null as unknown as RandomKey })).toThrow(`randn: ${expected}`);
    expect(() => rademacher([2], { key: null as unknown as RandomKey })).toThrow(`rademacher: ${expected}`);
  });

  it('bad seeds, split counts and fold-in data', () => {
    expect(() => randomKey(-1)).toThrow('randomKey: seed must be a non-negative safe integer, got -1');
    expect(() => randomKey(1.5)).toThrow('randomKey: seed must be a non-negative safe integer, got 1.5');
    expect(() => splitKey(randomKey(0), 0)).toThrow('splitKey: n must be a positive integer, got 0');
    expect(() => foldIn(randomKey(0), 1.5)).toThrow('foldIn: data must be a non-negative safe integer, got 1.5');
  });

  it('manualSeed names itself, and a seed, count or datum of the wrong type is shown as given', () => {
    // manualSeed's errors named randomKey, which the caller never called; and the bad value was
    // interpolated raw, so the string '5' read as the valid 5 and the bigint 3n as 3.
    expect(() => manualSeed(-1)).toThrow('manualSeed: seed must be a non-negative safe integer, got -1');
    expect(() => manualSeed('7' as unknown as number)).toThrow('manualSeed: seed must be a non-negative safe integer, got "7"');
    expect(() => randomKey('5' as unknown as number)).toThrow('randomKey: seed must be a non-negative safe integer, got "5"');
    expect(() => splitKey(randomKey(0), '2' as unknown as number)).toThrow('splitKey: n must be a positive integer, got "2"');
    expect(() => foldIn(randomKey(0), 3n as unknown as number)).toThrow('foldIn: data must be a non-negative safe integer, got 3n');
  });
});

describe('slice and pad', () => {
  const x = ones([3, 4]);

  it('a window that does not fit names the axis, the request and the extent', () => {
    expect(() => slice(x, [2, 0], [2, 4])).toThrow('slice: begin 2 with size 2 on axis 0 selects [2, 4), which does not fit extent 3 of [3,4]');
    expect(() => slice(x, [-4])).toThrow('slice: begin -4 with size -1 on axis 0 selects [-1, 3), which does not fit extent 3 of [3,4]');
    expect(() => slice(x, [0, 5])).toThrow('slice: begin 5 with size -1 on axis 1 selects [5, 4), which does not fit extent 4 of [3,4]');
  });

  it('sizes below −1 are rejected rather than read as "to the end"', () => {
    expect(() => slice(x, [0], [-2])).toThrow('slice: size -2 on axis 0 is invalid; expected a non-negative extent or -1 (to the end)');
    expect(() => slice(x, [0.5], [1])).toThrow('slice: begin 0.5 on axis 0 is invalid; expected an integer (negative counts from the end)');
    expect(() => slice(x, [Number.NaN], [1])).toThrow('slice: begin NaN on axis 0 is invalid; expected an integer (negative counts from the end)');
  });

  it('begin/size lists that do not match the rank', () => {
    expect(() => slice(x, [0, 0, 0])).toThrow('slice: begin [0,0,0] has 3 entries, more than the rank 2 of [3,4]');
    // It said 'do not match rank 2', though both lengths fit the rank: their difference is the fault.
    expect(() => slice(x, [0], [1, 1])).toThrow('slice: begin [0] and size [1,1] differ in length; give one size per entry of begin');
    expect(() => slice(x, [0, 0], [1])).toThrow('slice: begin [0,0] and size [1] differ in length; give one size per entry of begin');
  });

  it('begin and size must be arrays: a number was read as an empty list and x came back whole', () => {
    expect(() => slice(x, 1 as unknown as number[])).toThrow('slice: begin must be an array of integers (one per leading axis), got 1');
    expect(() => slice(x, 1 as unknown as number[], 1 as unknown as number[])).toThrow('slice: begin must be an array of integers (one per leading axis), got 1');
    expect(() => slice(x, [1], 2 as unknown as number[])).toThrow('slice: size must be an array of integers (one per entry of begin), got 2');
  });

  it('narrow takes a count, not slice\'s −1 for "to the end", and names itself', async () => {
    expect(() => narrow(x, 1, 1, -1)).toThrow('narrow: length -1 from start 1 does not fit axis 1 of [3,4] (expected an integer in [0, 3])');
    expect(() => narrow(x, 1, -1, 2)).toThrow('narrow: length 2 from start -1 does not fit axis 1 of [3,4] (expected an integer in [0, 1])');
    expect(() => narrow(x, 0, 1, 1.5)).toThrow('narrow: length 1.5 from start 1 does not fit axis 0 of [3,4] (expected an integer in [0, 2])');
    expect(() => narrow(x, 0, 4, 0)).toThrow('narrow: start 4 is out of range for axis 0 of [3,4] (expected an integer in [-3, 3]; negative counts from the end)');
    expect(() => narrow(x, 0, -4, 1)).toThrow('narrow: start -4 is out of range for axis 0 of [3,4] (expected an integer in [-3, 3]; negative counts from the end)');
    // The bounds themselves, as torch.narrow: a start at the end takes nothing, −extent is the first entry.
    expect(narrow(x, 0, 3, 0).shape).toEqual([0, 4]);
    expect(await narrow(arange(0, 12).reshape([3, 4]), 1, -4, 2).toArray()).toEqual([[0, 1], [4, 5], [8, 9]]);
  });

  it('pad widths: count and sign', () => {
    expect(() => pad(x, [[1, 1]])).toThrow('pad: expected 2 [before, after] pairs for [3,4], got 1');
    expect(() => pad(x, [[0, 0], [-1, 0]])).toThrow('pad: widths must be non-negative integers, got before [0,-1] and after [0,0]');
  });

  it('pad widths that are not pairs, or NaN, are shown as given', () => {
    // These said 'expected 2 [before, after] pairs ..., got undefined' and showed NaN and a missing entry as null.
    expect(() => pad(x, 2 as never)).toThrow('pad: widths must be an array of [before, after] pairs, one per axis, got 2');
    expect(() => pad(x, [[0, 0], [1]] as never)).toThrow('pad: widths[1] is [1]; expected a [before, after] pair for axis 1');
    expect(() => pad(x, [[0, 0], 1] as never)).toThrow('pad: widths[1] is 1; expected a [before, after] pair for axis 1');
    expect(() => pad(x, [[Number.NaN, 0], [0, 0]])).toThrow('pad: widths must be non-negative integers, got before [NaN,0] and after [0,0]');
  });
});

describe('primitive params given to apply', () => {
  // The ops normalise axes and shapes before they call apply, but apply is public: a bad axis or
  // shape was not caught, and some gave a result (concat on axis −1 gave zeros, a sum over a
  // missing axis gave x back, a permutation with 1.5 in it a tensor of shape [,2]).
  const x = tensor([[1, 2, 3], [4, 5, 6]]);
  const idx = tensor([1, 0], { dtype: 'int32' });

  it('axes out of range or not integers are refused by every primitive that takes one', () => {
    expect(() => apply('concat', [x, x], { axis: -1 })).toThrow('concat: axis -1 is out of range for [2,3]');
    expect(() => apply('sum', [x], { axes: [2] })).toThrow('sum: axis 2 is out of range for [2,3]');
    expect(() => apply('reduceMax', [x], { axes: [0, -1] })).toThrow('reduceMax: axis -1 is out of range for [2,3]');
    expect(() => apply('gather', [x, idx], { axis: 2 })).toThrow('gather: axis 2 is out of range for [2,3]');
    expect(() => apply('gather', [x, idx], { axis: 0.5 })).toThrow('gather: axis 0.5 is out of range for [2,3]');
    expect(() => apply('scatterAdd', [x, tensor([0, 1, 0], { dtype: 'int32' })], { axis: 2, size: 3 })).toThrow('scatterAdd: axis 2 is out of range for [2,3]');
    expect(() => apply('permute', [x], { perm: [1.5, 0] })).toThrow('permute: [1.5,0] is not a permutation of the 2 axes of [2,3]');
    // An axis that is not a number is shown as given (as the ops' normalizeAxis shows it): the
    // string '1' printed as 1, 'axis 1 is out of range for [2,3]', contradicting itself.
    expect(() => apply('sum', [x], { axes: ['1'] as never })).toThrow(new Error('sum: axis "1" is out of range for [2,3]'));
    expect(() => apply('gather', [x, idx], { axis: [0] as never })).toThrow(new Error('gather: axis [0] is out of range for [2,3]'));
    // As the ops refuse them: a repeated axis was taken as one, and a truthy reverse reversed.
    expect(() => apply('sum', [x], { axes: [0, 0] })).toThrow(new Error('sum: axes [0,0] name the same axis twice'));
    expect(() => apply('cumsum', [x], { axis: 1, reverse: 'yes' as never })).toThrow(new Error('cumsum: reverse must be true or false, got "yes"'));
    expect(() => apply('cumsum', [x], { axis: '0' as never, reverse: false })).toThrow(new Error('cumsum: axis "0" is out of range for [2,3]'));
  });

  it('shape rules the ops meet before apply: expand keeps the rank, arg-reductions refuse an empty axis, matmul batches match, scatterAdd has an index per update', () => {
    // Each was unchecked at the primitive: expand [2] → [2,3] and matmul of batches [2] and [3]
    // gave a result, argmax over an empty axis and scatterAdd with too few indices read out of range.
    expect(() => apply('expand', [ones([2])], { shape: [2, 3] })).toThrow('expand: cannot expand [2] to [2,3] (only size-1 axes stretch)');
    expect(() => apply('argmax', [zeros([0, 3])], { axis: 0 })).toThrow('argmax: cannot reduce the empty axis 0 of [0,3]');
    expect(() => apply('argmin', [zeros([2, 0])], { axis: 1 })).toThrow('argmin: cannot reduce the empty axis 1 of [2,0]');
    expect(() => apply('matmul', [ones([2, 2, 3]), ones([3, 3, 4])], {})).toThrow('matmul: batch dimensions differ for [2,2,3] and [3,3,4]');
    expect(() => apply('scatterAdd', [ones([3]), tensor([0, 1], { dtype: 'int32' })], { axis: 0, size: 4 })).toThrow('scatterAdd: indices must be 1-D int32 of length 3, got int32 [2]');
  });

  it('shapes, sizes and windows that are not non-negative integers', () => {
    expect(() => apply('reshape', [x], { shape: [-1, -6] })).toThrow('reshape: shape must be non-negative integers, got [-1,-6]');
    expect(() => apply('expand', [tensor([1])], { shape: [-3] })).toThrow('expand: shape must be non-negative integers, got [-3]');
    expect(() => apply('full', [], { value: 1, shape: [2.5], dtype: 'float32', device: 'cpu' })).toThrow('full: shape must be non-negative integers, got [2.5]');
    expect(() => apply('scatterAdd', [x, tensor([0, 1, 0], { dtype: 'int32' })], { axis: 1, size: -1 })).toThrow('scatterAdd: size must be a non-negative integer, got -1');
    // A sum, refused for bool as sum is (the CPU returned a bool holding 4).
    expect(() => apply('scatterAdd', [tensor([true, true]), tensor([0, 0], { dtype: 'int32' })], { axis: 0, size: 1 })).toThrow('scatterAdd: expected numeric updates, got bool; cast them first');
    expect(() => apply('slice', [x], { starts: [0, 0.5], ends: [2, 2] })).toThrow('slice: window [0.5, 2) on axis 1 does not fit extent 3');
  });

  it('inputs that are not an array of tensors, and params left out', () => {
    // params left out failed as "Cannot destructure property 'axes' of 'params' as it is
    // undefined" (sum) or were taken (exp); a non-tensor input as 'expected a float tensor, got
    // undefined', naming neither the input nor what it was.
    expect(() => apply('sum', [x], undefined as never)).toThrow(new TypeError("sum: params must be an object (the primitive's parameters; {} for none), got undefined"));
    expect(() => apply('exp', [x], undefined as never)).toThrow(new TypeError("exp: params must be an object (the primitive's parameters; {} for none), got undefined"));
    expect(() => apply('exp', x as never, {})).toThrow(new TypeError('exp: inputs must be an array of tensors, got a tensor (float32 [2,3] on cpu)'));
    expect(() => apply('exp', [[1, 2]] as never, {})).toThrow(new TypeError('exp: input 0 must be a Tensor, got [1,2]'));
    expect(() => apply('add', [x, 2] as never, {})).toThrow(new TypeError('add: input 1 must be a Tensor, got 2'));
    expect(Array.from(apply('exp', [tensor([0])], {}).dataSync())).toEqual([1]);
  });

  it("random's distribution and key, and full's value", () => {
    // Unchecked: 'cauchy' drew normal numbers (the kernels test for 'uniform' only), the string
    // 'abc' as a key drew numbers from its characters, a missing key failed reading key[0], and
    // full filled the tensor with NaN for the value 'x'.
    const random = { shape: [4], dtype: 'float64', device: 'cpu', key: randomKey(0), distribution: 'normal' } as const;
    expect(() => apply('random', [], { ...random, distribution: 'cauchy' as never })).toThrow(new Error("random: distribution must be 'uniform' or 'normal', got \"cauchy\""));
    expect(() => apply('random', [], { ...random, key: 'abc' as never })).toThrow(new Error('random: key must be a random key, two 32-bit words (from randomKey, splitKey or foldIn), got "abc"'));
    expect(() => apply('random', [], { ...random, key: undefined as never })).toThrow(new Error('random: key must be a random key, two 32-bit words (from randomKey, splitKey or foldIn), got undefined'));
    expect(() => apply('random', [], { ...random, key: [1, -1] as never })).toThrow(/^random: key must be a random key/);
    expect(() => apply('full', [], { value: 'x' as never, shape: [2], dtype: 'float32', device: 'cpu' })).toThrow(new Error('full: value must be a number, got "x"'));
    // Well-formed params still draw: the same key gives randn's numbers.
    const drawn = apply('random', [], random);
    expect(Array.from(drawn.dataSync())).toEqual(Array.from(randn([4], { key: randomKey(0), dtype: 'float64' }).dataSync()));
  });
});

describe('other argument checks', () => {
  it('item of a tensor with more than one element', async () => {
    await expect(ones([2]).item()).rejects.toThrow('item: expected a tensor with one element, got shape [2]');
  });

  it('concat and stack of mismatched shapes', () => {
    expect(() => concat([ones([2, 3]), ones([2, 4])], 0)).toThrow('concat: shapes [2,3], [2,4] differ off axis 0');
    expect(() => stack([ones([2]), ones([3])])).toThrow('stack: shapes differ ([2], [3])');
  });

  it('non-tensor arguments', () => {
    expect(() => ones([2]).add('x' as never)).toThrow('add: second operand must be a Tensor, got string');
    expect(() => tensor(1).add(null as never)).toThrow('add: second operand must be a Tensor, got null');
  });

  it('unknown devices list the registered ones', () => {
    expect(() => ones([1], { device: 'tpu' })).toThrow("unknown device 'tpu'; registered devices: cpu");
    // Under the creating function's name (getBackend names none).
    expect(() => tensor([1], { device: 'tpu' })).toThrow(/^tensor: unknown device 'tpu'; registered devices: cpu/);
    expect(() => eye(2, { device: 'tpu' })).toThrow(/^eye: unknown device 'tpu'/);
  });
});

describe('options of creation functions and variance', () => {
  it('creation functions reject unknown option keys instead of using the defaults', () => {
    expect(() => tensor([1, 2], { dtpye: 'float64' } as never)).toThrow(
      "tensor: unknown option 'dtpye' (did you mean 'dtype'?); valid options: dtype, device, shape",
    );
    expect(() => zeros([2], { dtpye: 'float64' } as never)).toThrow("zeros: unknown option 'dtpye' (did you mean 'dtype'?); valid options: dtype, device");
    expect(() => full([2], 1, { devise: 'cpu' } as never)).toThrow("full: unknown option 'devise' (did you mean 'device'?)");
    // '3' and true were converted by the cast rule, to 3 and 1, without a word.
    expect(() => full([2], '3' as never)).toThrow('full: value must be a number, got string');
    expect(() => full([2], true as never)).toThrow('full: value must be a number, got boolean');
    expect(() => arange(3, undefined, 1, { dtpye: 'int32' } as never)).toThrow("arange: unknown option 'dtpye' (did you mean 'dtype'?); valid options: dtype, device");
    expect(() => linspace(0, 1, 3, { shape: [3] } as never)).toThrow("linspace: unknown option 'shape'; valid options: dtype, device");
    expect(() => eye(2, 2, { dtpye: 'int32' } as never)).toThrow("eye: unknown option 'dtpye' (did you mean 'dtype'?)");
  });

  it('random draws reject a misspelt key rather than falling back to the default stream', () => {
    expect(() => randn([2], { seed: 3 } as never)).toThrow("randn: unknown option 'seed'; valid options: dtype, device, key");
    expect(() => rand([2], { Key: randomKey(1) } as never)).toThrow("rand: unknown option 'Key' (did you mean 'key'?); valid options: dtype, device, key");
    expect(() => rademacher([2], { keys: randomKey(1) } as never)).toThrow("rademacher: unknown option 'keys' (did you mean 'key'?)");
  });

  it('arange and linspace need finite bounds', () => {
    expect(() => arange(0, Number.NaN)).toThrow('arange: stop must be a finite number, got NaN');
    expect(() => arange(0, Infinity)).toThrow('arange: stop must be a finite number, got Infinity');
    expect(() => arange(Number.NaN)).toThrow('arange: stop must be a finite number, got NaN');
    expect(() => arange(Number.NaN, 3)).toThrow('arange: start must be a finite number, got NaN');
    expect(() => linspace(0, Number.NaN, 3)).toThrow('linspace: stop must be a finite number, got NaN');
    expect(() => linspace(-Infinity, 0, 3)).toThrow('linspace: start must be a finite number, got -Infinity');
  });

  it('variance checks its options: known keys, a boolean keepdims, a correction >= 0', () => {
    const x = ones([2, 3]);
    expect(() => variance(x, 0, { ddof: 1 } as never)).toThrow("variance: unknown option 'ddof'; valid options: keepdims, correction");
    expect(() => variance(x, 0, { correction: Number.NaN })).toThrow('variance: correction must be a finite number >= 0, got NaN');
    expect(() => variance(x, 0, { correction: -1 })).toThrow('variance: correction must be a finite number >= 0, got -1');
    expect(() => x.variance(0, { keepdims: 'yes' as never })).toThrow('variance: keepdims must be true or false, got "yes"');
  });
});

describe('shapes and scalars of movement ops and activations', () => {
  it('broadcastTo and reshape say what a shape must be', () => {
    expect(() => broadcastTo(ones([1]), [-1])).toThrow('broadcastTo: shape must be an array of non-negative integers, got [-1]');
    expect(() => broadcastTo(ones([1]), [1.5])).toThrow('broadcastTo: shape must be an array of non-negative integers, got [1.5]');
    expect(() => reshape(ones([2, 3]), 6 as never)).toThrow('reshape: expected the new shape as an array of integers, got 6');
  });

  it('elu needs a finite alpha', () => {
    expect(() => elu(ones([2]), Number.NaN)).toThrow('elu: alpha must be a finite number, got NaN');
  });
});

describe('arguments that are not what they should be, refused before any internal read', () => {
  it('a binary op beside a number names the operand that is not a tensor', () => {
    // The number was made a constant from the other operand's dtype and device first: a raw
    // "cannot read properties of undefined", or "unknown device 'undefined'" for a plain array.
    expect(() => add(undefined as never, 2)).toThrow(/^add: first operand must be a Tensor, got undefined$/);
    expect(() => add(2, null as never)).toThrow(/^add: second operand must be a Tensor, got null$/);
    expect(() => mul([1, 2] as never, 2)).toThrow(/^mul: first operand must be a Tensor, got object$/);
    expect(() => where(tensor([true]), undefined as never, 0)).toThrow(/^where: .* must be a Tensor, got undefined$/);
    expect(Array.from(add(2, tensor([1])).dataSync())).toEqual([3]);
  });

  it('tensor() refuses a shape that is not an array, whatever its truthiness', () => {
    // shape: 4 failed as "opts.shape is not iterable"; shape: 0 or '' was taken for no shape.
    for (const shape of [4, 2.5, {}, 0, '']) {
      expect(() => tensor([1, 2, 3, 4], { shape: shape as never })).toThrow(/^tensor: shape must be an array of non-negative integers, got /);
      expect(() => tensor(new Float32Array(4), { shape: shape as never })).toThrow(/^tensor: shape must be an array of non-negative integers, got /);
    }
  });

  it('linspace refuses a missing start or stop instead of returning NaN', () => {
    expect(() => linspace(undefined as never, 1, 5)).toThrow(/^linspace: start must be a finite number, got undefined$/);
    expect(() => linspace(0, undefined as never, 5)).toThrow(/^linspace: stop must be a finite number, got undefined$/);
  });
});

describe('the registry of defined primitives, before any is defined', () => {
  it('an unknown name is an error saying none is defined (this file defines none)', () => {
    expect(() => primitiveDefinition('missing')).toThrow("custom: no primitive named 'missing' is defined (defined: none)");
  });
});
