// What console.log and util.inspect print for a tensor in Node: its toString() line, then its
// values laid out as PyTorch prints them (one width per tensor, four decimals, exponents for large
// or tiny magnitudes, '...' past 1,000 elements); no values for disposed tensors or tracers.
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type Backend, type Tensor, arange, getBackend, listDevices, registerBackend, tensor, zeros } from '@scorch/tensor';
import { grad } from '@scorch/autograd';

describe('util.inspect of a tensor', () => {
  it('prints a tensor of many short axes, every entry shown (a spread of ~120k widths overflowed the stack)', () => {
    // Summarising hides nothing when no axis is longer than 6: torch prints all 279,936 entries.
    expect(inspect(zeros([6, 6, 6, 6, 6, 6, 6])).split('\n')).toHaveLength(55_982);
  });

  it('prints a float matrix with one width and four decimals', () => {
    expect(inspect(tensor([[1, 2.5], [3, -4]]))).toBe('Tensor(float32, [2,2], cpu)\n[[ 1.0000,  2.5000],\n [ 3.0000, -4.0000]]');
  });

  it('whole floats as "n.", int32 as integers, bools as words, a scalar and an empty tensor', () => {
    expect(inspect(arange(6).reshape([2, 3]))).toBe('Tensor(float32, [2,3], cpu)\n[[0., 1., 2.],\n [3., 4., 5.]]');
    expect(inspect(tensor([1, -20, 3], { dtype: 'int32' }))).toBe('Tensor(int32, [3], cpu)\n[  1, -20,   3]');
    expect(inspect(tensor([true, false]))).toBe('Tensor(bool, [2], cpu)\n[ true, false]');
    expect(inspect(tensor(3.5, { dtype: 'float64' }))).toBe('Tensor(float64, [], cpu)\n3.5000');
    expect(inspect(zeros([0, 3]))).toBe('Tensor(float32, [0,3], cpu)\n[]');
  });

  it('large or tiny magnitudes in exponent notation, specials by name', () => {
    expect(inspect(tensor([1e-6, 1, Number.NaN, -Infinity]))).toBe('Tensor(float32, [4], cpu)\n[1.0000e-06, 1.0000e+00,        nan,       -inf]');
    expect(inspect(tensor([2e9, 1]))).toBe('Tensor(float32, [2], cpu)\n[2.0000e+09, 1.0000e+00]');
    // A largest over 1,000 times the smallest nonzero: exponents, as PyTorch; at 1,000 still fixed.
    expect(inspect(tensor([0.5, 600]))).toBe('Tensor(float32, [2], cpu)\n[5.0000e-01, 6.0000e+02]');
    expect(inspect(tensor([0.5, 500]))).toBe('Tensor(float32, [2], cpu)\n[  0.5000, 500.0000]');
    expect(inspect(tensor([1.5e-30, 3e25]))).toBe('Tensor(float32, [2], cpu)\n[1.5000e-30, 3.0000e+25]');
    // Whole numbers by the same two rules (PyTorch's int mode): [1, 2000] printed '[   1., 2000.]'.
    expect(inspect(tensor([1, 2000]))).toBe('Tensor(float32, [2], cpu)\n[1.0000e+00, 2.0000e+03]');
    expect(inspect(tensor([0, 1, 1000]))).toBe('Tensor(float32, [3], cpu)\n[   0.,    1., 1000.]');
    // 1e8 itself is not over 1e8: whole, as PyTorch prints it; over it, exponents.
    expect(inspect(tensor([0, 1e8]))).toBe('Tensor(float32, [2], cpu)\n[        0., 100000000.]');
    expect(inspect(tensor([1e8, 1e8 + 8], { dtype: 'float64' }))).toBe('Tensor(float64, [2], cpu)\n[1.0000e+08, 1.0000e+08]');
    expect(inspect(tensor([100000000.5], { dtype: 'float64' }))).toBe('Tensor(float64, [1], cpu)\n[1.0000e+08]');
  });

  it('−0 keeps its sign in every notation, as PyTorch prints it', () => {
    // toFixed and toExponential write −0 as '0.0000': the sign was lost in two of the three notations.
    expect(inspect(tensor([-0, 1.5, Number.NaN, -Infinity], { dtype: 'float64' }))).toBe('Tensor(float64, [4], cpu)\n[-0.0000,  1.5000,     nan,    -inf]');
    expect(inspect(tensor([-0, 1e-5]))).toBe('Tensor(float32, [2], cpu)\n[-0.0000e+00,  1.0000e-05]');
    expect(inspect(tensor([-0, 2]))).toBe('Tensor(float32, [2], cpu)\n[-0.,  2.]');
    expect(inspect(tensor(-0))).toBe('Tensor(float32, [], cpu)\n-0.');
  });

  it('prints 1,000 elements in full and summarises 1,001, as PyTorch (numel over its threshold of 1,000)', () => {
    const full = inspect(arange(1000));
    expect(full).not.toContain('...');
    expect(full).toContain(' 500., ');
    expect(inspect(arange(1001))).toContain('...');
  });

  it('past 1,000 elements, each axis shows its first and last three entries; blocks of a 3-D tensor are apart', () => {
    // From 1000: within 1,000 times of each other, whole numbers as such (arange from 0 takes exponents).
    const text = inspect(arange(2 * 8 * 100).add(1000).reshape([2, 8, 100]));
    expect(text.split('\n')).toEqual([
      'Tensor(float32, [2,8,100], cpu)',
      '[[[1000., 1001., 1002., ..., 1097., 1098., 1099.],',
      '  [1100., 1101., 1102., ..., 1197., 1198., 1199.],',
      '  [1200., 1201., 1202., ..., 1297., 1298., 1299.],',
      '  ...,',
      '  [1500., 1501., 1502., ..., 1597., 1598., 1599.],',
      '  [1600., 1601., 1602., ..., 1697., 1698., 1699.],',
      '  [1700., 1701., 1702., ..., 1797., 1798., 1799.]],',
      '',
      ' [[1800., 1801., 1802., ..., 1897., 1898., 1899.],',
      '  [1900., 1901., 1902., ..., 1997., 1998., 1999.],',
      '  [2000., 2001., 2002., ..., 2097., 2098., 2099.],',
      '  ...,',
      '  [2300., 2301., 2302., ..., 2397., 2398., 2399.],',
      '  [2400., 2401., 2402., ..., 2497., 2498., 2499.],',
      '  [2500., 2501., 2502., ..., 2597., 2598., 2599.]]]',
    ]);
  });

  it('a view prints its own values (a transpose, a broadcast)', () => {
    const x = arange(6).reshape([2, 3]);
    expect(inspect(x.transpose())).toBe('Tensor(float32, [3,2], cpu)\n[[0., 3.],\n [1., 4.],\n [2., 5.]]');
    expect(inspect(tensor([1, 2]).expand([2, 2]))).toBe('Tensor(float32, [2,2], cpu)\n[[1., 2.],\n [1., 2.]]');
  });

  it('a disposed tensor, a tracer and a tensor on a device that reads asynchronously print no values', () => {
    const t = tensor([1, 2]);
    t.dispose();
    expect(inspect(t)).toBe('Tensor(float32, [2], cpu) (disposed)');
    let seen = '';
    grad((x: Tensor) => {
      seen = inspect(x);
      return x.sum();
    })(tensor([1, 2]));
    expect(seen).toBe('Tensor(float32, [2], cpu, traced by vjp)');
    // A backend without readSync (as WebGPU): the CPU's, less its synchronous read.
    const cpu = getBackend('cpu');
    const asyncOnly: Backend = Object.assign(Object.create(Object.getPrototypeOf(cpu) as object) as Backend, cpu, { name: 'asyncOnly', readSync: undefined });
    if (!listDevices().includes('asyncOnly')) registerBackend(asyncOnly);
    const onDevice = tensor([1, 2], { device: 'asyncOnly' });
    expect(inspect(onDevice)).toBe('Tensor(float32, [2], asyncOnly) (values on the device: await t.data() or t.toArray())');
  });

  it('past a million elements the values are not read', () => {
    expect(inspect(zeros([1001, 1000]))).toBe('Tensor(float32, [1001,1000], cpu) (1001000 elements; read them with t.data())');
  });
});

// The cases below against what PyTorch 2 prints for the same values (torch.set_printoptions' defaults):
//   torch.tensor([1e-4, 0.05], dtype=torch.float64) -> tensor([0.0001, 0.0500], dtype=torch.float64)
//   torch.tensor([-2000., 1.])                      -> tensor([-2.0000e+03,  1.0000e+00])
//   torch.tensor([1., float('nan'), 2.])            -> tensor([1., nan, 2.])
//   torch.zeros(2, 0)                               -> tensor([], size=(2, 0))
//   x = torch.arange(1000., 2002.); x[500] = 0.5    -> tensor([1000., 1001., 1002.,  ..., 1999., 2000., 2001.])
// (the notation is chosen over the shown values only; scorch writes ', ..., ' where torch pads).
describe('util.inspect of a tensor: notation at its thresholds', () => {
  it('a smallest nonzero of exactly 1e-4 stays in fixed notation (only below 1e-4 takes exponents)', () => {
    expect(inspect(tensor([1e-4, 0.05], { dtype: 'float64' }))).toBe('Tensor(float64, [2], cpu)\n[0.0001, 0.0500]');
  });

  it('the largest magnitude is taken with its sign: a large negative entry takes exponents', () => {
    expect(inspect(tensor([-2000, 1]))).toBe('Tensor(float32, [2], cpu)\n[-2.0000e+03,  1.0000e+00]');
  });

  it('NaN among whole numbers leaves them whole', () => {
    expect(inspect(tensor([1, Number.NaN, 2]))).toBe('Tensor(float32, [3], cpu)\n[ 1., nan,  2.]');
  });

  it('the notation of a summarised tensor depends on the shown values only', () => {
    const values = Float32Array.from({ length: 1002 }, (_, i) => 1000 + i);
    values[500] = 0.5; // hidden behind '...': neither fractional nor 2000 times smaller than shown
    expect(inspect(tensor(values))).toBe('Tensor(float32, [1002], cpu)\n[1000., 1001., 1002., ..., 1999., 2000., 2001.]');
  });

  it('an empty tensor of any shape prints as [] (its shape is in the header)', () => {
    expect(inspect(zeros([2, 0]))).toBe('Tensor(float32, [2,0], cpu)\n[]');
    expect(inspect(zeros([2, 0, 3]))).toBe('Tensor(float32, [2,0,3], cpu)\n[]');
  });

  it("a summarised vector is padded to its shown entries' width only ('...' takes no entry's place)", () => {
    expect(inspect(zeros([1001]))).toBe('Tensor(float32, [1001], cpu)\n[0., 0., 0., ..., 0., 0., 0.]');
    expect(inspect(zeros([1001], { dtype: 'int32' }))).toBe('Tensor(int32, [1001], cpu)\n[0, 0, 0, ..., 0, 0, 0]');
  });
});
