// Memory management: dispose() frees storage; tidy() disposes intermediates and keeps what the
// function returns (also inside arrays and plain objects), moving it to the enclosing scope;
// keep() exempts a tensor; tidy() rejects async functions and cleans up when the function
// throws; assign() updates in place and frees the old storage; a 1 000-step update loop leaves
// memory() flat; a backend replaced under its name (a device lost and reopened) stops counting. Counts are compared as deltas, since other tests in this file allocate too.

import { describe, expect, it } from 'vitest';
import { CpuBackend, type Tensor, arange, broadcastTo, concat, getBackend, indexSelect, keep, memory, ones, pad, permute, randn, randomKey, registerBackend, releasePooledMemory, tensor, tidy, zeros } from '@scorch/tensor';
import { insideTidy } from '../src/tidyDepth.js';

describe('dispose', () => {
  it('frees the tensor and its bytes', () => {
    const before = memory();
    const x = zeros([10, 10]); // 100 float32 = 400 bytes
    const y = ones([5], { dtype: 'float64' }); // 40 bytes
    expect(memory().tensors - before.tensors).toBe(2);
    expect(memory().bytes - before.bytes).toBe(440);
    expect(memory().buffers - before.buffers).toBe(2);
    // A bool element is one byte (a Uint8Array), an int32 one four.
    const b = tensor([true, false, true, true, false, true, false, true]);
    const i = tensor([1, 2], { dtype: 'int32' });
    expect(memory().bytes - before.bytes).toBe(440 + 8 + 8);
    b.dispose();
    i.dispose();
    x.dispose();
    expect(memory().tensors - before.tensors).toBe(1);
    expect(memory().bytes - before.bytes).toBe(40);
    y.dispose();
    y.dispose(); // idempotent: counts must not go down twice
    expect(memory()).toEqual(before);
  });

  it('an op result owns its storage: disposing it leaves the inputs alone', async () => {
    const x = tensor([1, 2]);
    const before = memory();
    const y = x.mul(tensor([3, 4]));
    y.dispose();
    expect(memory().tensors - before.tensors).toBe(1); // only the [3,4] operand is left
    expect(await x.toArray()).toEqual([1, 2]);
  });
  it('a reshape on the CPU is an alias of its input\'s array: no bytes, read by every kind of kernel, alive after its source', () => {
    const before = memory();
    const x = arange(24); // 96 bytes, 0 … 23
    const r = x.reshape([2, 3, 4]);
    const rr = r.reshape([6, 4]); // an alias of an alias reads the same array
    const frozen = rr.detach(); // stopGradient is an alias too
    expect(memory().bytes - before.bytes, 'the aliases hold no bytes').toBe(96);
    const values = Array.from({ length: 24 }, (_, i) => i);
    x.dispose();
    expect(memory().bytes - before.bytes, 'x\'s array stays while aliases read it').toBe(96);
    tidy(() => {
      expect(Array.from(r.dataSync())).toEqual(values);
      expect(Array.from(rr.add(1).dataSync())).toEqual(values.map((v) => v + 1)); // elementwise
      expect(Array.from(rr.sum(1).dataSync())).toEqual([6, 22, 38, 54, 70, 86]); // a reduction
      expect(Array.from(frozen.matmul(ones([4, 1])).dataSync())).toEqual([6, 22, 38, 54, 70, 86]); // a matmul
      expect(Array.from(permute(r, [2, 0, 1]).dataSync())).toEqual(values.map((_, i) => (i % 6) * 4 + Math.floor(i / 6))); // a copy
      expect(Array.from(broadcastTo(rr.reshape([1, 24]), [2, 24]).dataSync())).toEqual([...values, ...values]); // expand of an alias
    });
    tidy(() => {
      // A transpose of an alias is a view of the same array too; a matmul reads it in place.
      const t = permute(rr, [1, 0]);
      expect(memory().bytes - before.bytes, 'the transpose of an alias holds no bytes').toBe(96);
      expect(Array.from(t.matmul(ones([6, 1])).dataSync())).toEqual([60, 66, 72, 78]);
      expect(Array.from(t.dataSync())).toEqual(values.map((_, i) => (i % 6) * 4 + Math.floor(i / 6)));
    });
    // A reshape of a broadcast view is a copy of its values.
    tidy(() => {
      const b = broadcastTo(tensor([1, 2], { dtype: 'int32' }), [3, 2]).reshape([6]);
      expect(Array.from(b.dataSync())).toEqual([1, 2, 1, 2, 1, 2]);
    });
    for (const t of [r, rr, frozen]) t.dispose();
    expect(memory()).toEqual(before);
  });

  it('a disposed tensor that a view still reads keeps its bytes counted until the view lets it go (CPU)', () => {
    const before = memory();
    const x = zeros([1, 32, 16]); // 2048 bytes
    const wide = broadcastTo(x, [4, 32, 16]); // a view: no bytes of its own
    const y = zeros([8, 16]); // 512 bytes
    const swapped = permute(y, [1, 0]); // a transpose view
    expect(memory().bytes - before.bytes).toBe(2048 + 512);
    // buffers counts arrays (storage), as WebGPU counts its buffers: the views hold none.
    expect(memory().buffers - before.buffers).toBe(2);
    x.dispose();
    y.dispose();
    expect(memory().bytes - before.bytes, 'the views still read x and y').toBe(2048 + 512);
    expect(memory().buffers - before.buffers).toBe(2);
    wide.dispose();
    expect(memory().bytes - before.bytes, 'x released with its last view').toBe(512);
    expect(memory().buffers - before.buffers).toBe(1);
    tidy(() => void swapped.add(0)); // materialises the view: it holds its own copy and lets y go
    expect(memory().bytes - before.bytes).toBe(512);
    expect(memory().buffers - before.buffers).toBe(1);
    swapped.dispose();
    expect(memory()).toEqual(before);
  });
});

describe('memory() over backends', () => {
  it('counts the backends registered now, not one replaced under the same name', () => {
    const first = new CpuBackend('replaceable');
    registerBackend(first);
    const before = memory();
    const old = zeros([10], { device: 'replaceable' }); // 40 bytes on the first backend
    expect(memory().bytes - before.bytes).toBe(40);
    registerBackend(new CpuBackend('replaceable')); // as initWebGPU does after a device loss
    expect(memory().buffers).toBe(before.buffers);
    expect(memory().bytes).toBe(before.bytes);
    const fresh = zeros([3], { device: 'replaceable' });
    expect(memory().bytes - before.bytes).toBe(12);
    fresh.dispose();
    expect(memory()).toEqual({ ...before, tensors: before.tensors + 1 });
    // dispose() goes to the backend registered under the tensor's device name; the CPU backend
    // cannot tell another instance's handles from its own (WebGPU's can), so hand `old` back to
    // the backend that made it.
    registerBackend(first);
    old.dispose();
    expect(memory()).toEqual(before);
  });
});

describe('tidy', () => {
  it('says what it expected when given no function, and keep when given no tensor', () => {
    const x = tensor([1, 2]);
    expect(() => tidy(x as unknown as () => Tensor)).toThrow(/^tidy: expected a function to run .*, got a tensor \(float32 \[2\] on cpu\)$/);
    expect(() => tidy(null as unknown as () => Tensor)).toThrow(TypeError);
    expect(() => tidy(null as unknown as () => Tensor)).toThrow(/tidy: expected a function to run .*, got null/);
    expect(() => keep(3 as unknown as Tensor)).toThrow(/keep: expected a Tensor, got 3/);
    expect(() => keep([x] as unknown as Tensor)).toThrow(/keep: expected a Tensor, got/);
    expect(keep(x)).toBe(x);
    x.dispose();
  });

  it('disposes intermediates and keeps the returned tensor', async () => {
    const x = tensor([1, 2, 3]);
    const before = memory();
    let intermediate: Tensor | undefined;
    const y = tidy(() => {
      intermediate = x.mul(2);
      return intermediate.add(1).exp().log();
    });
    expect(intermediate!.isDisposed).toBe(true);
    expect(x.isDisposed).toBe(false); // created outside: not tidy's to dispose
    expect(memory().tensors - before.tensors).toBe(1);
    expect(memory().bytes - before.bytes).toBe(12);
    expect(await y.toArray()).toEqual([3, 5, 7]);
  });

  it('keeps tensors returned inside arrays and plain objects', () => {
    const before = memory();
    const out = tidy(() => {
      const a = ones([2]);
      const b = a.add(1);
      const c = b.mul(3);
      a.mul(10); // dropped
      return { pair: [a, c], nested: { b }, label: 'not a tensor' };
    });
    expect(out.pair.every((t) => !t.isDisposed)).toBe(true);
    expect(out.nested.b.isDisposed).toBe(false);
    expect(Array.from(out.pair[1]!.dataSync())).toEqual([6, 6]);
    // a, b and c live; a·10 and the scalar constants are gone.
    expect(memory().tensors - before.tensors).toBe(3);
  });

  it('keeps the tensors of a result that refers to itself (a cycle) or shares a part, once each', () => {
    const before = memory();
    type Node = { t: Tensor; self?: Node; list: unknown[] };
    const out = tidy(() => {
      const shared = { u: ones([3]).add(1) };
      const node: Node = { t: ones([2]).mul(2), list: [shared, shared] };
      node.self = node; // a cycle through a plain object
      node.list.push(node.list); // and through an array
      ones([4]).mul(3); // dropped
      return node;
    });
    expect(out.self).toBe(out);
    expect(Array.from(out.t.dataSync())).toEqual([2, 2]);
    const shared = out.list[0] as { u: Tensor };
    expect(Array.from(shared.u.dataSync())).toEqual([2, 2, 2]);
    // t and u live; the ones, the scalars and ones([4])·3 are gone.
    expect(memory().tensors - before.tensors).toBe(2);
    out.t.dispose();
    shared.u.dispose();
    expect(memory()).toEqual(before);
  });

  it('nested tidy hands kept tensors to the parent scope, which disposes them unless returned', () => {
    const before = memory();
    let inner: Tensor | undefined;
    let survivor: Tensor | undefined;
    const result = tidy(() => {
      inner = tidy(() => ones([3]).add(1));
      expect(inner.isDisposed).toBe(false); // kept by the inner scope
      survivor = tidy(() => ones([2]).mul(5));
      return survivor;
    });
    expect(inner!.isDisposed).toBe(true); // the outer scope did not return it
    expect(survivor!.isDisposed).toBe(false);
    expect(result).toBe(survivor);
    expect(memory().tensors - before.tensors).toBe(1);
  });

  it('keep() exempts a tensor from every enclosing scope', () => {
    const before = memory();
    let kept: Tensor | undefined;
    tidy(() => {
      tidy(() => {
        kept = keep(ones([4]).add(1));
      });
      expect(kept!.isDisposed).toBe(false);
    });
    expect(kept!.isDisposed).toBe(false);
    expect(memory().tensors - before.tensors).toBe(1);
    kept!.dispose();
    expect(memory()).toEqual(before);
    // Made in the outer scope and kept inside an inner one: the outer scope spares it too.
    let outer: Tensor | undefined;
    tidy(() => {
      outer = ones([3]).add(1);
      tidy(() => {
        keep(outer!);
      });
    });
    expect(outer!.isDisposed).toBe(false);
    expect(Array.from(outer!.dataSync())).toEqual([2, 2, 2]);
    outer!.dispose();
    expect(memory()).toEqual(before);
  });

  it('returning a tensor created outside the scope leaves it as it was', () => {
    const x = ones([2]);
    expect(tidy(() => x)).toBe(x);
    expect(x.isDisposed).toBe(false);
  });

  it('rejects an async function and leaks nothing', () => {
    const before = memory();
    expect(() =>
      tidy(async () => {
        ones([2]).add(1); // created synchronously, before tidy sees the Promise
        return ones([1]);
      }),
    ).toThrow('tidy: the function returned a Promise; tidy scopes are synchronous (await outside, or dispose by hand)');
    expect(memory()).toEqual(before);
  });

  it('disposes the scope when the function throws', () => {
    const before = memory();
    expect(() =>
      tidy(() => {
        ones([3]).mul(2);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(memory()).toEqual(before);
  });

  it('a thrown error inside a nested tidy cleans up both levels when it propagates', () => {
    const before = memory();
    expect(() =>
      tidy(() => {
        ones([2]);
        tidy(() => {
          ones([2]);
          throw new Error('inner');
        });
      }),
    ).toThrow('inner');
    expect(memory()).toEqual(before);
  });
});

describe('ops that leave their input unchanged', () => {
  // A reshape to its own shape, a whole slice, a cast to its own dtype, ...: each returns a tensor
  // of its own (a view of the input's storage), as any op does. They returned the input itself,
  // so disposing the "result" disposed the input, and disposing the input the result.
  const matrix = () => tensor([[1, 2, 3], [4, 5, 6]]);
  const CASES: [string, () => Tensor, (x: Tensor) => Tensor][] = [
    ['reshape to its shape', matrix, (x) => x.reshape([2, 3])],
    ['reshape by -1 to its shape', matrix, (x) => x.reshape([2, -1])],
    ['a whole slice', matrix, (x) => x.slice([0, 0])],
    ['split into one piece', matrix, (x) => x.split(1, 0)[0]!],
    ['the identity permutation', matrix, (x) => permute(x, [0, 1])],
    ['transpose of a vector', () => tensor([1, 2, 3]), (x) => x.transpose()],
    ['expand to its shape', matrix, (x) => x.expand([2, 3])],
    ['broadcastTo its shape', matrix, (x) => broadcastTo(x, [2, 3])],
    ['pad by zero widths', matrix, (x) => pad(x, [[0, 0], [0, 0]])],
    ['cast to its dtype', matrix, (x) => x.cast('float32')],
    ['sum over no axes', matrix, (x) => x.sum([])],
    ['sum of a scalar', () => tensor(5), (x) => x.sum()],
    ['concat of one tensor', matrix, (x) => concat([x], 1)],
  ];
  for (const [name, make, op] of CASES) {
    it(`${name}: a tensor of its own, which outlives the input and whose disposal leaves the input`, () => {
      const before = memory();
      const x = make();
      const xValues = Array.from(x.dataSync());
      const y = op(x);
      const values = Array.from(y.dataSync());
      expect(values).toEqual(xValues);
      expect(y).not.toBe(x);
      y.dispose();
      expect(x.isDisposed).toBe(false);
      expect(Array.from(x.dataSync())).toEqual(xValues);
      const z = op(x);
      x.dispose();
      expect(Array.from(z.dataSync())).toEqual(values);
      z.dispose();
      expect(memory()).toEqual(before);
    });
  }

  it('inside tidy, only what the function returns is kept', () => {
    const x = tensor([1, 2, 3]);
    const before = memory();
    const y = tidy(() => x.reshape([3]).mul(2).reshape([3]));
    expect(memory().tensors - before.tensors).toBe(1);
    expect(Array.from(y.dataSync())).toEqual([2, 4, 6]);
    y.dispose();
    x.dispose();
  });

  it('keeps the tensors of a returned object of null prototype, as of any plain object', () => {
    // Object.create(null) is a plain object to jit and the transformations (tree.ts): tidy freed
    // the tensors it held.
    const before = memory();
    const out = tidy(() => {
      const o = Object.create(null) as { y: Tensor; z: { w: Tensor } };
      o.y = ones([3]).mul(2);
      o.z = Object.assign(Object.create(null) as { w: Tensor }, { w: ones([2]).add(1) });
      return o;
    });
    expect(memory().tensors - before.tensors).toBe(2);
    expect(Array.from(out.y.dataSync())).toEqual([2, 2, 2]);
    expect(Array.from(out.z.w.dataSync())).toEqual([2, 2]);
    out.y.dispose();
    out.z.w.dispose();
    expect(memory()).toEqual(before);
  });
});

describe('assign', () => {
  it('overwrites values in place, keeps identity and frees the old storage', async () => {
    const w = tensor([1, 2, 3]);
    const v = tensor([4, 5, 6]);
    const before = memory();
    const same = w.assign(v);
    expect(same).toBe(w);
    expect(await w.toArray()).toEqual([4, 5, 6]);
    // Same number of tensors; w's old array (12 bytes) was released, and on the CPU w reads v's
    // array (values never change in place, so nothing is copied): one buffer fewer.
    expect(memory()).toEqual({ ...before, buffers: before.buffers - 1, bytes: before.bytes - 12 });
    // Disposing v does not affect w, which keeps the array (and its bytes) alive.
    v.dispose();
    expect(await w.toArray()).toEqual([4, 5, 6]);
    expect(memory()).toEqual({ tensors: before.tensors - 1, buffers: before.buffers - 1, bytes: before.bytes - 12 });
    w.dispose();
    expect(memory()).toEqual({ tensors: before.tensors - 2, buffers: before.buffers - 2, bytes: before.bytes - 24 });
  });

  it('rejects a value of another shape or dtype', () => {
    const w = zeros([2, 2]);
    expect(() => w.assign(zeros([4]))).toThrow('assign: expected a float32 [2,2] value, got float32 [4]');
    expect(() => w.assign(zeros([2, 2], { dtype: 'float64' }))).toThrow('assign: expected a float32 [2,2] value, got float64 [2,2]');
  });

  it('assigning to a disposed tensor fails without allocating', () => {
    const w = zeros([3]);
    const v = ones([3]);
    w.dispose();
    const before = memory();
    expect(() => w.assign(v)).toThrow('assign: tensor [3] float32 was disposed (by dispose() or tidy()) and cannot be used');
    expect(memory()).toEqual(before);
  });
});

describe('long loops', () => {
  it('1 000 update steps, each in a tidy, leave memory() flat', () => {
    const w = randn([16, 8], { key: randomKey(1) });
    const x = randn([4, 16], { key: randomKey(2) });
    const start = memory();
    let afterFirst = start;
    for (let step = 0; step < 1000; step++) {
      tidy(() => {
        // A gradient-descent-shaped step: forward, a gradient-like product, an in-place update.
        const y = x.matmul(w).tanh();
        const g = x.transpose().matmul(y.mul(y.square().neg().add(1))).div(4);
        w.assign(w.sub(g.mul(0.01)));
      });
      if (step === 0) afterFirst = memory();
    }
    expect(afterFirst).toEqual(start);
    expect(memory()).toEqual(start);
    expect(w.dataSync().every(Number.isFinite)).toBe(true);
  });

  it('a 1 000-step loop inside one tidy frees everything at the end', () => {
    const before = memory();
    const last = tidy(() => {
      let acc = zeros([8]);
      for (let step = 0; step < 1000; step++) acc = acc.add(1).mul(0.5);
      return acc;
    });
    expect(memory().tensors - before.tensors).toBe(1);
    // acc_{k+1} = (acc_k + 1)/2 converges to 1; after 1000 steps it is 1 in float32.
    expect(Array.from(last.dataSync())).toEqual(new Array(8).fill(1));
  });
});

describe('dispose, tidy and releasePooledMemory at their edges', () => {
  it('dispose() frees the tensor\'s grad with it', () => {
    const before = memory();
    const w = ones([3]);
    w.grad = ones([3]);
    expect(memory().tensors - before.tensors).toBe(2);
    w.dispose();
    expect(w.grad).toBe(null);
    expect(memory()).toEqual(before);
  });

  it('releasePooledMemory frees and counts the free arrays of every registered backend, not only the last', () => {
    const other = new CpuBackend('secondCpu');
    registerBackend(other);
    const cpu = getBackend('cpu') as CpuBackend;
    releasePooledMemory();
    zeros([10]).exp().dispose();
    zeros([20], { device: 'secondCpu' }).exp().dispose();
    const cpuFree = cpu.memoryStats().freeBytes;
    const otherFree = other.memoryStats().freeBytes;
    expect(cpuFree).toBeGreaterThanOrEqual(40);
    expect(otherFree).toBeGreaterThanOrEqual(80);
    expect(releasePooledMemory()).toBe(cpuFree + otherFree);
    expect(cpu.memoryStats().freeBytes + other.memoryStats().freeBytes).toBe(0);
  });

  it('a tidy whose function throws closes its count: arrays made afterwards are no longer asked for as held (insideTidy() is false)', () => {
    expect(() => tidy(() => {
      ones([2]).add(1);
      throw new Error('boom');
    })).toThrow('boom');
    expect(insideTidy()).toBe(false);
    tidy(() => expect(insideTidy()).toBe(true));
    expect(insideTidy()).toBe(false);
  });

  it('an op that fails after taking its output array gives the array back to the pool', () => {
    const cpu = getBackend('cpu') as CpuBackend;
    const x = ones([7, 13]);
    const idx = tensor([1, 9, 2, 0, 3], { dtype: 'int32' });
    const before = memory();
    expect(() => indexSelect(x, 0, idx)).toThrow('gather: index 9 is out of range for axis 0 of extent 7');
    expect(memory()).toEqual(before);
    // The [5, 13] output (65 float32) went back: the next array of that class is a reuse.
    const made = cpu.memoryStats().allocations;
    const again = cpu.allocate('float32', 65);
    expect(cpu.memoryStats().allocations).toBe(made);
    cpu.pool.give(again);
    x.dispose();
    idx.dispose();
  });
});
