// The profiler on WebGPU. On this suite's adapter (Mesa llvmpipe through OpenGL: no timestamp
// queries) kernels are replayed alone on snapshots after `fn`: each eager kernel is reported
// under its primitive with its WGSL kernel's label, each compiled kernel under its name, and
// profiling changes no value (replays write scratch buffers, never a tensor's). A child process
// pointed at SwiftShader's Vulkan driver (Chromium's, which scripts/setup.sh installs) checks
// the timestamp-query path.

import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { grad, jit } from '@scorch/autograd';
import { type KernelEvent, type Tensor, definePrimitive, exp, indexSelect, matmul, operationCost, profile, profilerSession, randn, randomKey, sum, tanh, tensor } from '@scorch/tensor';
import type { WebGPUHandle } from '@scorch/kernels';
import { countingCreatedBuffers, gpuDevice } from './helpers.js';
import { runFixture } from '../../../tests/fixtures/runFixture.js';

let gpu: WebGPUHandle;
let dev = 'webgpu';
beforeAll(async () => {
  gpu = await gpuDevice();
  dev = gpu.device;
});

const f = (x: Tensor, y: Tensor) => sum(exp(matmul(x, y).mul(0.01)), [1]);
/** Whether this adapter's kernels are replayed after fn (no timestamp queries: llvmpipe) rather than timed on the device. */
const replayed = () => !gpu.runtime.device.features.has('timestamp-query');

/** Runs `beside` again and again, as other work of the program would, until `during` settles; returns during's value. */
async function alongside<T>(beside: () => Promise<void>, during: () => Promise<T>): Promise<T> {
  let stop = false;
  const loop = (async () => {
    while (!stop) await beside();
  })();
  try {
    return await during();
  } finally {
    stop = true;
    await loop;
  }
}

describe('profile on WebGPU', () => {
  it('reports eager kernels under their primitives, with the WGSL kernel, bytes and flops', async () => {
    const a = randn([128, 64], { key: randomKey(1), device: dev });
    const b = randn([64, 32], { key: randomKey(2), device: dev });
    const before = Array.from(await f(a, b).data());
    const d0 = gpu.runtime.stats.dispatches;
    const r = await profile(async () => Array.from(await f(a, b).data()));
    expect(r.value).toEqual(before);
    const dispatched = gpu.runtime.stats.dispatches - d0;
    expect(r.events).toHaveLength(dispatched);
    // The test device poisons every fresh output with NaN bits: those fills go under their own name.
    const own = r.events.filter((e) => e.name !== 'poison fill');
    expect(own.map((e) => e.name)).toEqual(['matmul', 'mul', 'exp', 'sum']);
    expect(r.events.filter((e) => e.name === 'poison fill').every((e) => e.kernel === 'fill' && e.bytes === undefined)).toBe(true);
    for (const e of r.events) {
      expect(e.device).toBe(dev);
      expect(e.timing).toBe(replayed() ? 'replay' : 'timestamps');
      expect(e.kernel).toMatch(/\w/);
      expect(e.duration).toBeGreaterThanOrEqual(0);
    }
    const mm = own[0]!;
    expect(mm.kernel).toMatch(/^matmul/);
    expect(mm.flops).toBe(2 * 128 * 32 * 64);
    expect(mm.bytes).toBe((128 * 64 + 64 * 32 + 128 * 32) * 4);
    // A 128×32×64 product does measurable work: its replay takes time.
    expect(mm.duration).toBeGreaterThan(0);
    expect(r.table()).toMatch(/^matmul \[matmul\S*\]\s+webgpu\s+1\s/m);
    // The trace events carry each run's WGSL kernel too (a row is a name and a kernel), and its
    // start and duration as they are, in microseconds.
    const trace = (JSON.parse(JSON.stringify(r.traceEvents())) as { traceEvents: { ph: string; name: string; ts: number; dur: number; args: { kernel?: string } }[] }).traceEvents;
    expect(trace.filter((e) => e.ph === 'X').map((e) => [e.name, e.args.kernel, e.ts, e.dur])).toEqual(r.events.map((e) => [e.name, e.kernel, e.start * 1000, e.duration * 1000]));
    a.dispose();
    b.dispose();
  });

  it('charges an eager operation that runs several kernels its bytes once (a long sum reduces in passes)', async () => {
    const n = 1 << 20;
    const x = randn([n], { key: randomKey(3), device: dev });
    await x.data();
    const r = await profile(async () => sum(x).data());
    const passes = r.events.filter((e) => e.name === 'sum');
    expect(passes.length).toBeGreaterThan(1);
    const bytes = operationCost('sum', [{ shape: [n], dtype: 'float32' }], { shape: [], dtype: 'float32' }).bytes;
    expect(passes.reduce((a, e) => a + (e.bytes ?? 0), 0)).toBe(bytes);
    expect(r.kernels.filter((k) => k.name === 'sum').reduce((a, k) => a + (k.bytes ?? 0), 0)).toBe(bytes);
    x.dispose();
  });

  it('lays replayed kernels out one after another on the trace: no two overlap', async () => {
    const a = randn([256, 256], { key: randomKey(5), device: dev });
    await a.data();
    const r = await profile(async () => sum(exp(matmul(matmul(a, a), a))).data());
    expect(r.events.length).toBeGreaterThan(2);
    for (let i = 1; i < r.events.length; i++) expect(r.events[i - 1]!.start + r.events[i - 1]!.duration).toBeLessThanOrEqual(r.events[i]!.start + 1e-9);
    a.dispose();
  });

  it('reports compiled kernels under the names lower() gives them, and the values do not change', async () => {
    const a = randn([128, 64], { key: randomKey(3), device: dev });
    const b = randn([64, 32], { key: randomKey(4), device: dev });
    const jf = jit(f);
    const plain = Array.from(await jf(a, b).data());
    const r = await profile(async () => Array.from(await jf(a, b).data()));
    expect(r.value).toEqual(plain);
    const names = jf.lower(a, b).kernels().map((k) => k.name);
    expect(r.events.map((e) => e.name).filter((n) => n !== 'poison fill')).toEqual(names);
    const mm = r.events.find((e) => e.flops !== undefined)!;
    expect(mm.flops).toBe(2 * 128 * 32 * 64);
    expect(Array.from(await jf(a, b).data())).toEqual(plain);
    a.dispose();
    b.dispose();
  });

  it('names the kernels of a compiled program uniquely: two products of one shape are two rows', async () => {
    const x = randn([64, 64], { key: randomKey(5), device: dev });
    const w = randn([64, 64], { key: randomKey(6), device: dev });
    const jf = jit((x: Tensor, w: Tensor) => matmul(tanh(matmul(x, w)), w).mul(2));
    jf(x, w).dispose();
    const names = jf.lower(x, w).kernels().map((k) => k.name);
    // Each product, then the elementwise kernel after it: the second pair took the first pair's labels.
    expect(names).toHaveLength(4);
    expect(new Set(names).size).toBe(4);
    expect(names[2]).toBe(`${names[0]}_2`);
    expect(names[3]).toBe(`${names[1]}_2`);
    const d0 = gpu.runtime.stats.dispatches;
    const r = await profile(async () => {
      const y = jf(x, w);
      await y.data();
      y.dispose();
    });
    const own = r.events.filter((e) => e.name !== 'poison fill');
    expect(own.map((e) => e.name)).toEqual(names);
    expect(r.events).toHaveLength(gpu.runtime.stats.dispatches - d0);
    for (const name of names) expect(r.kernels.find((k) => k.name === name)!.calls).toBe(1);
    x.dispose();
    w.dispose();
  });

  it('reports the dense copy a compiled program makes of a strided input as dense_input<i>, with its bytes', async () => {
    const x = randn([32, 16], { key: randomKey(7), device: dev });
    const xt = x.transpose([1, 0]); // a strided view: no kernel
    const jf = jit((t: Tensor) => exp(t).mul(2));
    jf(xt).dispose();
    const names = jf.lower(xt).kernels().map((k) => k.name);
    const d0 = gpu.runtime.stats.dispatches;
    const r = await profile(async () => {
      const y = jf(xt);
      await y.data();
      y.dispose();
    });
    expect(r.events).toHaveLength(gpu.runtime.stats.dispatches - d0);
    const own = r.events.filter((e) => e.name !== 'poison fill');
    expect(own.map((e) => e.name)).toEqual(['dense_input0', ...names]);
    // The copy reads the view's 512 elements and writes 512, 4 bytes each.
    expect(own[0]!.kernel).toMatch(/^copy/);
    expect(own[0]!.bytes).toBe((512 + 512) * 4);
    x.dispose();
  });

  it('replays accumulating kernels on scratch buffers: gradients through a gather are unchanged', async () => {
    const x = tensor([1, 2, 3, 4, 5, 6], { device: dev }).reshape([3, 2]);
    const g = grad((t: Tensor) => sum(indexSelect(t, 0, [2, 0, 2, 2]).mul(t.sum().add(1))));
    const expected = Array.from(await (g(x) as Tensor).data());
    const r = await profile(async () => Array.from(await (g(x) as Tensor).data()));
    expect(r.value).toEqual(expected);
    expect(r.events.some((e) => e.name === 'scatterAdd')).toBe(true);
    // The tensor read after the profile still holds the same values.
    expect(Array.from(await (g(x) as Tensor).data())).toEqual(expected);
  });

  it('ends with the session: later work is neither profiled nor slowed', async () => {
    const x = tensor([1, 2, 3], { device: dev });
    await profile(async () => exp(x).data());
    expect(profilerSession()).toBeNull();
    const s0 = gpu.runtime.stats.submits;
    const y = exp(exp(exp(x)));
    await y.data();
    // Three eager kernels, one batch, plus the read: two submits at most.
    expect(gpu.runtime.stats.submits - s0).toBeLessThanOrEqual(2);
  });

  it('ends when fn does, while other work goes on launching kernels beside it', async () => {
    const x = randn([64, 64], { key: randomKey(3), device: dev });
    await exp(x).data();
    let beside = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 30_000)));
    // Work of its own, launching and reading a kernel every millisecond or so.
    const r = await alongside(async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      const z = exp(x).add(1);
      await z.data();
      z.dispose();
      beside++;
    }, async () => {
      // The replays took in the kernels launched while they ran, and the profile never ended.
      return Promise.race([profile(async () => {
        const y = exp(x.mul(0.5));
        await y.data();
        y.dispose();
        return 'done';
      }), late]);
    });
    clearTimeout(timer);
    expect(r === 'late' ? 'the profile had not ended after 30 s' : r.value).toBe('done');
    expect(profilerSession()).toBeNull();
    expect(beside).toBeGreaterThan(0);
  }, 60_000);

  it('reports no kernel that work beside fn ran after fn returned, while its kernels were replayed', async () => {
    const x = randn([64, 64], { key: randomKey(3), device: dev });
    await exp(x).data();
    const c = tensor([1, 2, 3]);
    let beside = 0;
    let returnedAt = Infinity;
    let besideAtReturn = 0;
    // CPU work of its own beside the profile, a kernel every millisecond or so.
    const r = await alongside(async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      exp(c).add(1).dispose();
      beside++;
    }, () => profile(async () => {
      for (let i = 0; i < 8; i++) {
        const y = exp(x.mul(0.5)).add(i);
        await y.data();
        y.dispose();
      }
      returnedAt = performance.now();
      besideAtReturn = beside;
      return 'done';
    }));
    expect(r.value).toBe('done');
    // The work beside did go on while the session finished: replaying the kernels (llvmpipe has
    // no timestamp queries) takes tens of ms. With timestamp queries the session only reads
    // their results, which may end before a 1 ms timer fires.
    if (replayed()) expect(beside).toBeGreaterThan(besideAtReturn);
    // ...and none of it joined the profile.
    expect(r.events.filter((e) => e.device === 'cpu' && e.start >= returnedAt).map((e) => e.name)).toEqual([]);
    x.dispose();
    c.dispose();
  }, 60_000);

  it('a kernel launched beside the profile while it finishes, and read later, reads right', async () => {
    // Were it taken into the finishing session, its inputs would be snapshotted into buffers the
    // session destroys before the kernel's batch is submitted: the later read would fail.
    const x = tensor([0, 1, 2, 3], { device: dev });
    await exp(x).data();
    const results: number[][] = [];
    const errors: unknown[] = [];
    await alongside(async () => {
      const z = exp(x).add(1);
      await new Promise((resolve) => setTimeout(resolve, 3)); // the kernel waits in the open batch meanwhile
      try {
        results.push(Array.from(await z.data()));
      } catch (e) {
        errors.push(e);
      }
      z.dispose();
    }, async () => {
      for (let k = 0; k < 3; k++) {
        await profile(async () => {
          for (let i = 0; i < 6; i++) {
            const y = exp(x.mul(0.5)).add(i);
            await y.data();
            y.dispose();
          }
        });
      }
    });
    expect(errors.map(String)).toEqual([]);
    expect(results.length).toBeGreaterThan(0);
    // WGSL's exp is within 3 + 2|v| ulps of e^v and the add rounds once more (half an ulp of the
    // sum); an ulp of a float32 y is at most 2^-23·|y|: within (3.5 + 2|v|)·2^-23·(e^v + 1).
    for (const r of results) {
      r.forEach((got, v) => expect(Math.abs(got - (Math.exp(v) + 1))).toBeLessThanOrEqual((3.5 + 2 * v) * 2 ** -23 * (Math.exp(v) + 1)));
    }
    x.dispose();
  }, 60_000);

  it('times replayed kernels less the round trip of an empty submission (here made 40 ms longer)', async () => {
    const x = tensor([1, 2, 3, 4], { device: dev });
    await exp(x).data();
    const queue = gpu.runtime.device.queue;
    const done = queue.onSubmittedWorkDone;
    // Every round trip of the queue 40 ms longer, as a slow driver's or a remote device's.
    queue.onSubmittedWorkDone = async function () {
      await done.call(queue);
      await new Promise((r) => setTimeout(r, 40));
    };
    try {
      const r = await profile(async () => {
        const y = exp(x).add(1);
        await y.data();
        y.dispose();
      });
      // Replayed here (llvmpipe has no timestamp queries); timed by the GPU where it has them.
      const timing = replayed() ? 'replay' : 'timestamps';
      expect(r.events.length).toBeGreaterThan(0);
      expect(r.events.every((e) => e.timing === timing)).toBe(true);
      // The kernels are tiny: what is left once the 40 ms is taken off is far below it.
      for (const e of r.events) expect(e.duration, e.name).toBeLessThan(20);
    } finally {
      queue.onSubmittedWorkDone = done;
    }
    x.dispose();
  }, 60_000);

  it('a defined primitive whose WGSL does not compile, run by a synchronous fn: its own error, and the device goes on', async () => {
    const bad = definePrimitive({
      name: 'profiledBadWgsl', kind: 'elementwise', inputs: ['x'], cpu: (v) => v, wgsl: { expression: 'x + notAFunction(x)' }, jvp: () => null, vjp: () => [null],
    });
    const x = tensor([1, 2, 3], { device: dev });
    const expected = Array.from(await exp(x).data());
    // The replay ran before the compile check reported: a replay's failure about an invalid bind
    // group layout came out, and the named error fell on the next, unrelated operation.
    await expect(profile(() => {
      bad(x);
      return 0;
    })).rejects.toThrow(/custom primitive 'profiledBadWgsl': its WGSL does not compile/);
    expect(profilerSession()).toBeNull();
    expect(Array.from(await exp(x).data())).toEqual(expected);
  });

  it('a kernel whose batch failed, its error caught by fn, is neither replayed nor listed', async () => {
    // fn falls back to built-in ops when a custom kernel does not compile (its read rejects): the
    // replay of the never-run kernel failed on its invalid pipeline, and profile lost fn's value.
    const bad = definePrimitive({
      name: 'profiledCaughtBadWgsl', kind: 'elementwise', inputs: ['x'], cpu: (v) => v, wgsl: { expression: 'x + notAFunction(x)' }, jvp: () => null, vjp: () => [null],
    });
    const x = tensor([1, 2, 3], { device: dev });
    const expected = Array.from(await exp(x).data());
    const result = await profile(async () => {
      await expect(bad(x).data()).rejects.toThrow(/custom primitive 'profiledCaughtBadWgsl': its WGSL does not compile/);
      return Array.from(await exp(x).data());
    });
    expect(result.value).toEqual(expected);
    expect(result.events.filter((e) => !e.name.startsWith('poison')).map((e) => e.name)).toEqual(['exp']);
  });

  it('a profiled loop of many steps keeps one snapshot of each buffer, not one per step', async () => {
    if (!replayed()) return; // snapshots belong to the replay path (llvmpipe)
    // A jitted update step: w changes every step, so each step's kernels read new contents.
    const w = randn([64, 32], { key: randomKey(5), device: dev });
    const x = randn([128, 64], { key: randomKey(6), device: dev });
    const step = jit((wv: Tensor, xv: Tensor) => wv.sub(grad((v: Tensor) => f(xv, v).sum())(wv).mul(1e-3)));
    await step(w, x).data();
    // Twelve steps from w; `each` runs after every step. Returns the last step's values.
    const twelveSteps = async (each: () => void): Promise<number[]> => {
      let cur = w;
      for (let i = 0; i < 12; i++) {
        const next = step(cur, x);
        if (cur !== w) cur.dispose();
        cur = next;
        each();
      }
      const values = Array.from(await cur.data());
      cur.dispose();
      return values;
    };
    const snapshotsAfter: number[] = [];
    const r = await countingCreatedBuffers(
      gpu.runtime.device,
      (snapshots) => profile(() => twelveSteps(() => snapshotsAfter.push(snapshots()))),
      (d) => d.label === 'scorch profile snapshot',
    );
    expect(r.events.filter((e) => e.timing === 'replay').length).toBeGreaterThanOrEqual(12);
    // The first steps meet the pool's buffers; later ones make no new snapshot (each made a full set before).
    expect(snapshotsAfter[11]).toBe(snapshotsAfter[3]);
    // Profiling changed no value: the same 12 steps again, unprofiled.
    expect(await twelveSteps(() => {})).toEqual(r.value);
    w.dispose();
    x.dispose();
  });

  it('when fn throws, frees what it made for the session and stops profiling', async () => {
    const x = tensor([1, 2, 3], { device: dev });
    await exp(x).data();
    // Every buffer the device makes from here on, and whether it was destroyed.
    const device = gpu.runtime.device;
    const made: { label: string; destroyed: boolean }[] = [];
    const create = device.createBuffer.bind(device);
    device.createBuffer = (desc: GPUBufferDescriptor) => {
      const buffer = create(desc);
      const entry = { label: desc.label ?? '', destroyed: false };
      made.push(entry);
      const destroy = buffer.destroy.bind(buffer);
      buffer.destroy = () => {
        entry.destroyed = true;
        destroy();
      };
      return buffer;
    };
    try {
      for (const fn of [async () => { await exp(x).data(); throw new Error('boom'); }, () => { exp(exp(x)); throw new Error('sync boom'); }]) {
        await expect(profile(fn)).rejects.toThrow(/boom/);
        expect(profilerSession()).toBeNull();
        // Snapshots (no timestamp queries) or query resolution buffers (with them): none outlives the profile.
        const ours = made.filter((b) => b.label.startsWith('scorch profile'));
        if (replayed()) expect(ours.length).toBeGreaterThan(0);
        expect(ours.filter((b) => !b.destroyed)).toEqual([]);
        made.length = 0;
        // Later work is not profiled: it makes no snapshots.
        await exp(exp(x)).data();
        expect(made.filter((b) => b.label.startsWith('scorch profile'))).toEqual([]);
      }
    } finally {
      device.createBuffer = create;
    }
    // The next profile reports its own kernels only.
    const r = await profile(async () => exp(x).data());
    expect(r.events.filter((e) => e.name !== 'poison fill').map((e) => e.name)).toEqual(['exp']);
  });
});

describe('profile on WebGPU: failures, rewritten buffers and wall time', () => {
  it('when fn throws, replays nothing: no scratch or uniform buffer is made for a replay', async () => {
    if (!replayed()) return; // replays belong to the path without timestamp queries (llvmpipe)
    const x = tensor([1, 2, 3], { device: dev });
    await exp(x).data();
    const made = await countingCreatedBuffers(gpu.runtime.device, async (created) => {
      await expect(profile(async () => {
        await exp(x).add(1).data(); // kernels that would be replayed, had fn returned
        throw new Error('fn failed');
      })).rejects.toThrow('fn failed');
      return created();
    }, (d) => d.label === 'scorch profile scratch' || d.label === 'scorch profile uniforms');
    expect(made).toBe(0);
    x.dispose();
  });

  it("when fn throws, its device work's error is left for the next operation to throw", async () => {
    const bad = definePrimitive({
      name: 'thrownPastBadWgsl', kind: 'elementwise', inputs: ['x'], cpu: (v) => v, wgsl: { expression: 'x + notAFunction(x)' }, jvp: () => null, vjp: () => [null],
    });
    const x = tensor([1, 2, 3], { device: dev });
    const expected = Array.from(await exp(x).data());
    await expect(profile(() => {
      bad(x);
      throw new Error('fn failed first');
    })).rejects.toThrow(/^fn failed first$/);
    // Not swallowed by the session's end: the next operation reports it...
    await expect((async () => exp(x).data())()).rejects.toThrow(/custom primitive 'thrownPastBadWgsl': its WGSL does not compile/);
    // ...once: the device goes on.
    expect(Array.from(await exp(x).data())).toEqual(expected);
    x.dispose();
  });

  it('names a kernel that ran outside any operation (the copy a strided read makes) by its own label', async () => {
    const x = randn([16, 8], { key: randomKey(11), device: dev });
    const xt = x.transpose([1, 0]); // a strided view: reading it copies it densely first
    await x.data();
    const r = await profile(async () => {
      const y = exp(x);
      const values = await xt.data();
      y.dispose();
      return values.length;
    });
    expect(r.value).toBe(128);
    const own = r.events.filter((e) => e.name !== 'poison fill');
    expect(own).toHaveLength(2);
    expect(own[0]).toMatchObject({ name: 'exp', bytes: 2 * 128 * 4 });
    // Not charged to the operation before it: its name is its WGSL kernel's label, its bytes unknown.
    expect(own[1]!.name).not.toBe('exp');
    expect(own[1]!.name).toBe(own[1]!.kernel);
    expect(own[1]!.bytes).toBeUndefined();
    x.dispose();
  });

  it("counts the device's work in wallMs: a synchronous fn's kernels run after it returns", async () => {
    const a = randn([512, 512], { key: randomKey(12), device: dev });
    const chain = () => matmul(matmul(matmul(a, a), a), a);
    await chain().data(); // compiles the kernels: fn below only records them
    let y: Tensor | undefined;
    const r = await profile(() => {
      y = chain(); // recorded only: the device runs it once fn returned
    });
    const kernels = r.events.reduce((s, e) => s + e.duration, 0);
    expect(kernels).toBeGreaterThan(0);
    // Each kernel ran (or was replayed and timed) inside the profile, so its time is in the wall time.
    expect(r.wallMs).toBeGreaterThanOrEqual(kernels);
    y!.dispose();
    a.dispose();
  });

  it('copies a buffer for replay again when a kernel rewrote it since its last copy', async () => {
    if (!replayed()) return; // snapshots belong to the replay path (llvmpipe)
    const x = randn([32, 32], { key: randomKey(13), device: dev });
    await x.data();
    const device = gpu.runtime.device;
    // Per source buffer: how many times it was copied into a snapshot.
    const copies = new Map<GPUBuffer, number>();
    const createEncoder = device.createCommandEncoder;
    device.createCommandEncoder = function (d?: GPUCommandEncoderDescriptor): GPUCommandEncoder {
      const encoder = createEncoder.call(this, d);
      const copy = encoder.copyBufferToBuffer.bind(encoder) as (...a: unknown[]) => void;
      encoder.copyBufferToBuffer = ((src: GPUBuffer, ...rest: unknown[]) => {
        if ((rest[1] as GPUBuffer).label === 'scorch profile snapshot') copies.set(src, (copies.get(src) ?? 0) + 1);
        copy(src, ...rest);
      }) as GPUCommandEncoder['copyBufferToBuffer'];
      return encoder;
    };
    const sources: GPUBuffer[] = [];
    try {
      await profile(async () => {
        // Three steps of the same sizes: each writes a fresh output a (the pool hands back the
        // buffer the step before released) and reads it.
        for (let i = 0; i < 3; i++) {
          const a = exp(x.mul(i + 1));
          const b = exp(a);
          await b.data();
          sources.push((a._live('test') as { storage: { buffer: GPUBuffer } }).storage.buffer);
          a.dispose();
          b.dispose();
        }
      });
    } finally {
      device.createCommandEncoder = createEncoder;
    }
    // The pool reused a's buffer across steps (the premise), and each step's exp(a) read what that
    // step wrote: a copy per step that read it.
    const reused = sources[2]!;
    const steps = sources.filter((b) => b === reused).length;
    expect(steps).toBeGreaterThan(1);
    expect(copies.get(reused)).toBe(steps);
    x.dispose();
  });

  it('a replay that fails names its kernel', async () => {
    if (!replayed()) return;
    const x = tensor([1, 2, 3], { device: dev });
    await exp(x).data();
    const device = gpu.runtime.device;
    const replayedKernels: string[] = [];
    const createBindGroup = device.createBindGroup;
    // Each replay's bind group comes with a validation error in the replay's error scope.
    device.createBindGroup = function (d: GPUBindGroupDescriptor): GPUBindGroup {
      if (d.label?.startsWith('replay ')) {
        replayedKernels.push(d.label.slice('replay '.length));
        device.createBuffer({ size: 4, usage: 0 });
      }
      return createBindGroup.call(this, d);
    };
    let error: unknown;
    try {
      await profile(async () => exp(x).data()).catch((e: unknown) => (error = e));
    } finally {
      device.createBindGroup = createBindGroup;
    }
    expect(replayedKernels.length).toBeGreaterThan(0);
    expect((error as Error).message).toContain(`profile: replaying kernel '${replayedKernels[0]}' failed: `);
    // The device goes on.
    expect(Array.from(await x.data())).toEqual([1, 2, 3]);
    x.dispose();
  });

  it('a kernel whose batch failed for another reason than its pipeline, the error caught by fn, is neither replayed nor listed', async () => {
    if (!replayed()) return;
    const x = tensor([1, 2, 3], { device: dev });
    const expected = Array.from(await exp(x).data());
    const r = await profile(async () => {
      const y = exp(x).add(1); // valid kernels, recorded into the open batch...
      gpu.runtime.device.createBuffer({ size: 4, usage: 0 }); // ...whose error scope catches this invalid call: the batch fails
      await expect(y.data()).rejects.toThrow(/GPUValidationError/);
      return Array.from(await exp(x).data());
    });
    expect(r.value).toEqual(expected);
    // The exp and add of the failed batch never ran.
    expect(r.events.filter((e) => e.name !== 'poison fill').map((e) => e.name)).toEqual(['exp']);
    x.dispose();
  });
});

describe('profile with timestamp queries (SwiftShader)', () => {
  const icd = '/usr/lib/chromium/vk_swiftshader_icd.json';
  // scripts/setup.sh installs Chromium (for the playground's browser test), which ships it.
  const available = existsSync(icd);
  it.runIf(available || process.env.CI)('times each kernel on the device', () => {
    expect(available, `${icd} is missing: run scripts/setup.sh (it installs Debian's chromium, which ships SwiftShader)`).toBe(true);
    const out = runFixture<{
      info: { backend: string }; timestampQuery: boolean; eager: KernelEvent[]; compiled: KernelEvent[]; names: string[];
      plain: number[]; eagerValue: number[]; compiledValue: number[]; slicesDiffering: number[]; sliceEvents: number;
      chainEvents: KernelEvent[]; caught: { value: boolean; names: string[] };
    }>(new URL('./fixtures/profileKernels.ts', import.meta.url), {
      env: { ...process.env, VK_ICD_FILENAMES: icd, LD_LIBRARY_PATH: [dirname(icd), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') },
      timeoutMs: 240_000,
    });
    expect(out.info.backend).toBe('vulkan');
    expect(out.timestampQuery).toBe(true);
    expect(out.eager.map((e) => e.name)).toEqual(['matmul', 'mul', 'exp', 'sum']);
    expect(out.compiled.map((e) => e.name)).toEqual(out.names);
    for (const e of [...out.eager, ...out.compiled]) {
      expect(e.timing).toBe('timestamps');
      expect(e.duration).toBeGreaterThan(0);
    }
    // Dawn's default rounding of timestamps to 2^16 ns is off: durations have the device's resolution.
    expect([...out.eager, ...out.compiled].some((e) => Math.round(e.duration * 1e6) % 65536 !== 0)).toBe(true);
    expect(out.compiledValue).toEqual(out.plain);
    expect(out.eagerValue).toHaveLength(64);
    // 300 kernels in batches of up to 1,000: profiling changed none of their values (the kernels
    // after the 128th of a batch overwrote earlier ones' uniform words: 256 and 257 differed).
    expect(out.sliceEvents).toBeGreaterThanOrEqual(300);
    expect(out.slicesDiffering).toEqual([]);
    // 300 kernels of a chain in three batches, laid out as they ran: each batch was placed from its
    // own submission, so the device's later batches overlapped earlier ones (out of program order).
    const chain = [...out.chainEvents].sort((p, q) => p.start - q.start);
    expect(chain.map((e) => e.name)).toEqual(Array.from({ length: 100 }, () => ['matmul', 'mul', 'tanh']).flat());
    chain.slice(1).forEach((e, i) => expect(e.start).toBeGreaterThanOrEqual(chain[i]!.start + chain[i]!.duration - 1e-6));
    // A kernel that never ran (its batch failed; fn caught the error) is not listed.
    expect(out.caught.value).toBe(true);
    expect(out.caught.names).toEqual(['exp']);
  }, 300_000);

  it.runIf(available || process.env.CI)('frees its query sets and read-back buffers, reports a synchronous fn, and times a compiled call of 140 kernels', () => {
    expect(available, `${icd} is missing: run scripts/setup.sh (it installs Debian's chromium, which ships SwiftShader)`).toBe(true);
    const out = runFixture<{
      timestampQuery: boolean; readNames: string[]; syncNames: string[]; lateNames: string[]; kinds: string[]; leftAlive: string[];
      compiledCount: number; compiledTimings: string[]; compiledError: string;
    }>(new URL('./fixtures/profileResources.ts', import.meta.url), {
      env: { ...process.env, VK_ICD_FILENAMES: icd, LD_LIBRARY_PATH: [dirname(icd), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') },
      timeoutMs: 240_000,
    });
    expect(out.timestampQuery).toBe(true);
    expect(out.readNames).toEqual(['matmul', 'exp']);
    // A synchronous fn's timestamps are read after it returned: the session waits for them.
    expect(out.syncNames).toEqual(['matmul', 'exp']);
    // ...as are timestamps whose read-back arrives 50 ms after the device finished.
    expect(out.lateNames).toEqual(['matmul', 'exp']);
    // Each batch's query set and its resolve and read buffers were made, and none outlived its profile.
    expect(out.kinds).toEqual(['query set scorch profile', 'scorch profile read', 'scorch profile resolve']);
    expect(out.leftAlive).toEqual([]);
    // 140 products in one compiled call: the query set (128 kernels) is submitted when full.
    expect(out.compiledError).toBe('');
    expect([out.compiledCount, out.compiledTimings]).toEqual([140, ['timestamps']]);
  }, 300_000);
});
