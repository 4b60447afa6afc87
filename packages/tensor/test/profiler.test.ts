// The profiler on the CPU: every kernel run is reported once, named by its primitive, with the
// bytes it moves and a product's flops (a call the backend answered with a view ran none); the
// summary, the table and the trace-event JSON agree with the events; misuse is a clear error.
import { describe, expect, it } from 'vitest';
import {
  type CpuBackend, type CpuHandle, type KernelEvent, type Program, add, broadcastTo, cumsum, definePrimitive, exp, interpretProgram, matmul, operationCost, permute, profile, profilerSession, randn,
  randomKey, reshape, sum, tanh, tensor, traceProgram,
} from '../src/index.js';
import { getBackend } from '../src/backend.js';

/** A kernel event as a backend reports it, host-timed on the CPU unless given otherwise. */
const event = (e: Partial<KernelEvent> & { name: string; start: number; duration: number }): KernelEvent => ({ device: 'cpu', timing: 'host', ...e });

/** The profile of exactly these events, reported as backends report theirs: known times, bytes and flops. */
const profileOf = (events: KernelEvent[]) => profile(() => {
  for (const e of events) profilerSession()!.record(e);
});

describe('profile on the CPU', () => {
  it('reports each kernel with its bytes and a matmul its flops', async () => {
    const a = randn([8, 16], { key: randomKey(1), dtype: 'float64' });
    const b = randn([16, 4], { key: randomKey(2), dtype: 'float64' });
    const r = await profile(() => {
      const c = matmul(a, b);
      const d = exp(c);
      const e = add(d, c);
      return sum(e).item();
    });
    expect(Number.isFinite(r.value)).toBe(true);
    expect(r.events.map((e) => e.name)).toEqual(['matmul', 'exp', 'add', 'sum']);
    for (const e of r.events) {
      expect(e.device).toBe('cpu');
      expect(e.timing).toBe('host');
      expect(e.duration).toBeGreaterThanOrEqual(0);
    }
    const mm = r.events[0]!;
    // 8×16 and 16×4 read, 8×4 written, 8 bytes each; 2·m·n·k flops.
    expect(mm.bytes).toBe((8 * 16 + 16 * 4 + 8 * 4) * 8);
    expect(mm.flops).toBe(2 * 8 * 4 * 16);
    expect(r.events[2]!.bytes).toBe(3 * 32 * 8);
    expect(r.kernels.map((k) => k.name).sort()).toEqual(['add', 'exp', 'matmul', 'sum']);
    const total = r.kernels.reduce((s, k) => s + k.totalMs, 0);
    expect(total).toBeCloseTo(r.events.reduce((s, e) => s + e.duration, 0), 9);
    expect(r.kernels.find((k) => k.name === 'matmul')!.gflops).toBeCloseTo(mm.flops! / (mm.duration * 1e6), 6);
    expect(r.wallMs).toBeGreaterThanOrEqual(total);
    const table = r.table().split('\n');
    expect(table[0]).toMatch(/^kernel\s+device\s+calls\s+total ms\s+mean ms\s+%\s+MB moved\s+GFLOP\/s$/);
    expect(table).toHaveLength(2 + 4 + 1);
    expect(table.at(-1)).toMatch(/^4 kernel runs, .* ms in kernels, .* ms wall; timing: host$/);
    a.dispose();
    b.dispose();
  });

  it('counts repeated kernels under one row and sorts rows by total time', async () => {
    const x = tensor([1, 2, 3, 4]);
    const r = await profile(() => {
      let y = x;
      for (let i = 0; i < 5; i++) y = add(y, x);
      return y.toArray();
    });
    expect(r.value).toEqual([6, 12, 18, 24]);
    const row = r.kernels.find((k) => k.name === 'add')!;
    expect(row.calls).toBe(5);
    expect(row.meanMs).toBeCloseTo(row.totalMs / 5, 12);
    for (let i = 1; i < r.kernels.length; i++) expect(r.kernels[i - 1]!.totalMs).toBeGreaterThanOrEqual(r.kernels[i]!.totalMs);
  });

  it('sorts rows by total time, the most first, whatever order the kernels ran in', async () => {
    const r = await profileOf([event({ name: 'small', start: 0, duration: 1 }), event({ name: 'big', start: 2, duration: 5 }), event({ name: 'mid', start: 8, duration: 3 })]);
    expect(r.kernels.map((k) => k.name)).toEqual(['big', 'mid', 'small']);
  });

  it('sums bytes and flops over all calls of a kernel: its MB moved and GFLOP/s', async () => {
    const r = await profileOf([
      event({ name: 'matmul', start: 0, duration: 1, bytes: 1e6, flops: 2e6 }),
      event({ name: 'matmul', start: 1, duration: 1, bytes: 3e6, flops: 6e6 }),
    ]);
    const row = r.kernels[0]!;
    expect([row.calls, row.bytes]).toEqual([2, 4e6]);
    expect(row.gflops).toBeCloseTo(8e6 / (2 * 1e6), 12); // 8 MFLOP in 2 ms: 4 GFLOP/s
    // kernel, device, calls, total ms, mean ms, %, MB moved, GFLOP/s
    expect(r.table().split('\n')[2]!.trim().split(/\s+/)).toEqual(['matmul', 'cpu', '2', '2.000', '1.000', '100.0', '4.00', '4.00']);
  });

  it("gives each kernel's % of the kernels' total time (not of the wall time), and counts runs, not rows, in the footer", async () => {
    const r = await profileOf([event({ name: 'a', start: 0, duration: 3 }), event({ name: 'a', start: 3, duration: 3 }), event({ name: 'b', start: 6, duration: 2 })]);
    const rows = r.table().split('\n');
    expect(rows[2]).toMatch(/^a\s+cpu\s+2\s+6\.000\s+3\.000\s+75\.0\s*$/);
    expect(rows[3]).toMatch(/^b\s+cpu\s+1\s+2\.000\s+2\.000\s+25\.0\s*$/);
    expect(rows.at(-1)).toMatch(/^3 kernel runs, 8\.000 ms in kernels, /);
  });

  it('keeps kernels of one name apart per device and per generated kernel, each device on its own trace thread', async () => {
    const r = await profileOf([
      event({ name: 'exp', kernel: 'unary_exp_f32', device: 'webgpu', start: 0, duration: 4, timing: 'replay' }),
      event({ name: 'exp', kernel: 'unary_exp_strided_f32', device: 'webgpu', start: 4, duration: 2, timing: 'replay' }),
      event({ name: 'exp', device: 'cpu', start: 6, duration: 1 }),
      event({ name: 'exp', device: 'wasm', start: 7, duration: 0.5 }),
    ]);
    expect(r.kernels.map((k) => [k.name, k.kernel, k.device, k.calls])).toEqual([
      ['exp', 'unary_exp_f32', 'webgpu', 1], ['exp', 'unary_exp_strided_f32', 'webgpu', 1], ['exp', undefined, 'cpu', 1], ['exp', undefined, 'wasm', 1],
    ]);
    const rows = r.table().split('\n');
    expect(rows[2]).toMatch(/^exp \[unary_exp_f32\]\s+webgpu\s/);
    expect(rows[3]).toMatch(/^exp \[unary_exp_strided_f32\]\s+webgpu\s/);
    const trace = r.traceEvents().traceEvents as { ph: string; tid: number; args?: { name?: string } }[];
    expect(trace.filter((e) => e.ph === 'M').map((e) => [e.tid, e.args!.name])).toEqual([[1, 'webgpu'], [2, 'cpu'], [3, 'wasm']]);
    expect(trace.filter((e) => e.ph === 'X').map((e) => e.tid)).toEqual([1, 1, 2, 3]);
  });

  it('lists events and trace events in the order the kernels started, however late they were reported', async () => {
    // GPU kernels are reported once their times are known, after host-timed kernels that started later.
    const r = await profileOf([event({ name: 'late', start: 10, duration: 1 }), event({ name: 'early', start: 1, duration: 1 })]);
    expect(r.events.map((e) => e.name)).toEqual(['early', 'late']);
    const trace = r.traceEvents().traceEvents as { ph: string; name: string }[];
    expect(trace.filter((e) => e.ph === 'X').map((e) => e.name)).toEqual(['early', 'late']);
  });

  it('writes trace events Perfetto opens: metadata, then one complete event per kernel in microseconds', async () => {
    const x = tensor([1, 2, 3]);
    const r = await profile(() => exp(x).toArray());
    const trace = JSON.parse(JSON.stringify(r.traceEvents())) as { traceEvents: Record<string, unknown>[]; displayTimeUnit: string };
    expect(trace.displayTimeUnit).toBe('ms');
    expect(trace.traceEvents[0]).toMatchObject({ ph: 'M', name: 'thread_name', args: { name: 'cpu' } });
    const complete = trace.traceEvents.filter((e) => e.ph === 'X');
    expect(complete).toHaveLength(r.events.length);
    expect(complete[0]).toMatchObject({ name: 'exp', cat: 'kernel', pid: 1, tid: 1 });
    expect(complete[0]!.ts).toBe(r.events[0]!.start * 1000);
  });

  it('gives each trace event its kernel run\'s start and duration, unrounded: the rows\' totals, and no overlaps', async () => {
    const x = tensor([1, 2, 3]);
    // Many short kernels, back to back: a few microseconds each, less than one apart.
    const r = await profile(() => {
      let y = x;
      for (let i = 0; i < 40; i++) y = i % 2 ? exp(y.mul(0.01)) : add(y, x);
      return y.toArray();
    });
    const trace = JSON.parse(JSON.stringify(r.traceEvents())) as { traceEvents: { ph: string; name: string; ts: number; dur: number; pid: number; tid: number; args: Record<string, unknown> }[] };
    const complete = trace.traceEvents.filter((e) => e.ph === 'X');
    expect(complete).toHaveLength(r.events.length);
    complete.forEach((e, i) => {
      const k = r.events[i]!;
      expect([e.name, e.pid, e.tid, e.ts, e.dur]).toEqual([k.name, 1, 1, k.start * 1000, k.duration * 1000]);
      expect(e.args).toEqual({ bytes: k.bytes, timing: 'host' });
    });
    // Per name, the events' durations add up to the row's total (the same doubles in the same
    // order, scaled by 1000: equal to a few ulps, 1e-9 relative).
    for (const row of r.kernels) {
      const us = complete.filter((e) => e.name === row.name).reduce((a, e) => a + e.dur, 0);
      expect(Math.abs(us - row.totalMs * 1000)).toBeLessThanOrEqual(1e-9 * row.totalMs * 1000);
    }
    // Kernels on one thread ran one after another; so do their events, to 1e-6 µs: ten ulps of a
    // ts below 1e9 µs (a process younger than a quarter hour), a thousandth of a nanosecond.
    for (let i = 1; i < complete.length; i++) expect(complete[i - 1]!.ts + complete[i - 1]!.dur).toBeLessThanOrEqual(complete[i]!.ts + 1e-6);
  });

  it('profiles a program run op by op, and nothing when no profile runs', async () => {
    const x = tensor([0.5, 1.5]);
    const traced = traceProgram((t) => [exp(add(t[0]!, t[0]!))], [x], []);
    const program: Program = traced.program;
    const compiled = interpretProgram(getBackend('cpu'), program);
    const r = await profile(() => {
      const [h] = compiled.run([x._live('test') as never], [], [false]);
      getBackend('cpu').dispose(h!);
    });
    expect(r.events.map((e) => e.name)).toEqual(['add', 'exp']);
    expect(profilerSession()).toBeNull();
  });

  it('rejects a non-function and nested profiles, and ends the session when fn throws', async () => {
    await expect(profile(42 as never)).rejects.toThrow(/profile: expected a function, got number/);
    await expect((profile as (...args: unknown[]) => Promise<unknown>)(() => 1, { timing: 'host' })).rejects.toThrow(/^profile: takes one argument, the function to profile \(it has no options\), got 2$/);
    await expect(profile(async () => profile(() => 1))).rejects.toThrow(/a profile is already running; profiles do not nest/);
    await expect(profile(() => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(profilerSession()).toBeNull();
  });

  it('is process-wide: an async fn\'s profile reports the kernels other loops run at its awaits (docs/extending.md)', async () => {
    const x = tensor([1, 2]);
    const yieldToOthers = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
    const other = (async () => {
      await Promise.resolve();
      tanh(x).dispose(); // runs while the profiled function waits
    })();
    const [r] = await Promise.all([
      profile(async () => {
        exp(x).dispose();
        await yieldToOthers();
      }),
      other,
    ]);
    expect(r.events.map((e) => e.name)).toEqual(['exp', 'tanh']);
  });

  it('names the kernels of a compiled program uniquely: two of one shape are two rows', async () => {
    const cpu = getBackend('cpu') as CpuBackend;
    const x = randn([16, 16], { key: randomKey(4) });
    const w = randn([16, 16], { key: randomKey(5) });
    // Two products of the same sizes, each with a one-op epilogue; two scans of the same size.
    const traced = traceProgram(([x, w]) => [matmul(tanh(matmul(x!, w!)), w!).mul(2), cumsum(tanh(cumsum(x!, 1)), 1)], [x, w], []);
    const compiled = cpu.compile(traced.program);
    const kernels = compiled.kernels();
    expect(kernels.map((k) => k.name)).toEqual(['fused_matmul_16x16x16_epilogue1', 'fused_matmul_16x16x16_epilogue1_2', 'cumsum_256', 'cumsum_256_2']);
    expect(kernels.map((k) => k.equations)).toEqual([[0, 1], [2, 3, 4], [5], [6, 7]]);
    const handles = [x._live('test') as CpuHandle, w._live('test') as CpuHandle];
    const r = await profile(() => {
      for (const h of compiled.run(handles, [], [false, false])) cpu.dispose(h);
    });
    expect(r.events.map((e) => e.name)).toEqual(kernels.map((k) => k.name));
    // One row per kernel, each run once: the second product's time is not added to the first's.
    expect(r.kernels.map((k) => [k.name, k.calls]).sort()).toEqual(kernels.map((k) => [k.name, 1]).sort());
    // The same program compiled again gets the same names.
    const again = cpu.compile(traced.program);
    expect(again.kernels().map((k) => k.name)).toEqual(kernels.map((k) => k.name));
    for (const c of [compiled, again]) c.dispose();
    for (const t of [x, w, ...traced.owned]) t.dispose();
  });

  it('reports the dense copy a compiled program makes of an input that is a view', async () => {
    const cpu = getBackend('cpu') as CpuBackend;
    const x = randn([8, 6], { key: randomKey(6) });
    const row = randn([1, 6], { key: randomKey(7) });
    const traced = traceProgram(([a, b]) => [exp(a!).mul(b!)], [x, x], []);
    const compiled = cpu.compile(traced.program);
    const transposed = permute(randn([6, 8], { key: randomKey(8) }), [1, 0]); // a transpose view
    const broadcast = broadcastTo(row, [8, 6]); // a broadcast view
    expect((transposed._live('test') as CpuHandle).view?.kind).toBe('transpose');
    expect((broadcast._live('test') as CpuHandle).view?.kind).toBe('broadcast');
    const handles = [transposed._live('test') as CpuHandle, broadcast._live('test') as CpuHandle];
    const names = compiled.kernels().map((k) => k.name);
    const run = () => profile(() => {
      for (const h of compiled.run(handles, [], [false, false])) cpu.dispose(h);
    });
    const r = await run();
    // Each view copied densely before the kernels, host-timed: the transpose reads and writes its
    // 48 elements, the broadcast reads its 6 distinct ones and writes 48 (4 bytes each).
    expect(r.events.map((e) => e.name)).toEqual(['dense_input0', 'dense_input1', ...names]);
    expect(r.events.slice(0, 2).map((e) => e.bytes)).toEqual([(48 + 48) * 4, (6 + 48) * 4]);
    // The handles keep their copies: a second call copies nothing.
    expect((await run()).events.map((e) => e.name)).toEqual(names);
    compiled.dispose();
    for (const t of [x, row, transposed, broadcast, ...traced.owned]) t.dispose();
  });

  it('charges views no bytes', () => {
    expect(operationCost('expand', [{ shape: [1, 3], dtype: 'float32' }], { shape: [4, 3], dtype: 'float32' }).bytes).toBe(0);
    expect(operationCost('reshape', [{ shape: [2, 3], dtype: 'float32' }], { shape: [6], dtype: 'float32' }).bytes).toBe(48);
  });

  it('lists no call the CPU answered with a view, and charges the same primitive its bytes where it copied', async () => {
    const x = randn([3, 4, 5], { key: randomKey(3) });
    const n = tensor([[1, 2, 3]]);
    const xi = tensor(Array.from({ length: 60 }, (_, i) => i), { shape: [3, 4, 5], dtype: 'int32' });
    const r = await profile(() => [
      permute(x, [0, 2, 1]), // the last two axes of a dense float32 array swapped: a transpose view
      permute(x, [1, 0, 2]), // any other permute is copied
      permute(xi, [0, 2, 1]), // so is a transpose of int32 values
      broadcastTo(n, [4, 3]), // expand: a broadcast view
      reshape(x, [12, 5]), // a reshape of a dense array: an alias
    ]);
    const [transposed, copied, copiedInt, broadcast, reshaped] = r.value;
    expect((transposed!._live('test') as CpuHandle).view?.kind).toBe('transpose');
    expect((copied!._live('test') as CpuHandle).view).toBeNull();
    expect((copiedInt!._live('test') as CpuHandle).view).toBeNull();
    expect((broadcast!._live('test') as CpuHandle).view?.kind).toBe('broadcast');
    expect((reshaped!._live('test') as CpuHandle).view?.kind).toBe('alias');
    // The views ran no kernel: only the two copies are listed, each reading its 60 elements and
    // writing 60, 4 bytes each.
    expect(r.events.map((e) => e.name)).toEqual(['permute', 'permute']);
    expect(r.events.map((e) => e.bytes)).toEqual([2 * 60 * 4, 2 * 60 * 4]);
    expect(r.kernels.map((k) => [k.name, k.calls])).toEqual([['permute', 2]]);
    // The model gives what a permute moves where it copies; only the backend knows it made a view.
    expect(operationCost('permute', [{ shape: [3, 4, 5], dtype: 'float32' }], { shape: [3, 5, 4], dtype: 'float32' }).bytes).toBe(2 * 60 * 4);
    for (const t of [x, n, xi, ...r.value]) t.dispose();
  });
});

describe('profile: summary, table and trace events at their edges', () => {
  it('gives a row no bytes when one of its calls moved an unknown amount', async () => {
    const r = await profileOf([event({ name: 'k', start: 0, duration: 1, bytes: 100 }), event({ name: 'k', start: 1, duration: 1 })]);
    expect(r.kernels[0]!.bytes).toBeUndefined();
    // kernel, device, calls, total ms, mean ms, %: the MB moved and GFLOP/s cells are empty.
    expect(r.table().split('\n')[2]!.trim().split(/\s+/)).toEqual(['k', 'cpu', '2', '2.000', '1.000', '100.0']);
  });

  it("counts a kernel's flops over all its calls, those that report none included", async () => {
    // An operation's flops are charged to its first kernel only: later calls report none.
    const r = await profileOf([event({ name: 'matmul', start: 0, duration: 1, flops: 4e6 }), event({ name: 'matmul', start: 1, duration: 1 })]);
    expect(r.kernels[0]!.gflops).toBeCloseTo(4e6 / (2 * 1e6), 12); // 4 MFLOP in 2 ms: 2 GFLOP/s
  });

  it('gives no GFLOP/s and a 0.0 % share to kernels that took no measurable time', async () => {
    // A replayed kernel's time less the empty round trip can come out as 0.
    const r = await profileOf([event({ name: 'matmul', device: 'webgpu', timing: 'replay', start: 0, duration: 0, bytes: 1e6, flops: 2e6 })]);
    expect(r.kernels[0]!.gflops).toBeUndefined();
    expect(r.table().split('\n')[2]!.trim().split(/\s+/)).toEqual(['matmul', 'webgpu', '1', '0.000', '0.000', '0.0', '1.00']);
  });

  it("writes a kernel's label beside its name only where they differ", async () => {
    // A compiled WebGPU kernel is named by its label: one name, no brackets.
    const r = await profileOf([event({ name: 'fused_exp_mul', kernel: 'fused_exp_mul', device: 'webgpu', timing: 'replay', start: 0, duration: 1 })]);
    expect(r.table().split('\n')[2]).toMatch(/^fused_exp_mul\s+webgpu\s/);
  });

  it("names every timing in the footer, and the wall time is fn's", async () => {
    const r = await profileOf([
      event({ name: 'exp', device: 'webgpu', timing: 'replay', start: 0, duration: 50 }),
      event({ name: 'add', start: 50, duration: 20 }),
    ]);
    // The events' 70 ms are made up: recording them took far less wall time.
    expect(r.wallMs).toBeLessThan(70);
    expect(r.table().split('\n').at(-1)).toBe(`2 kernel runs, 70.000 ms in kernels, ${r.wallMs.toFixed(1)} ms wall; timing: replay, host`);
  });

  it("says 'none' for the timing of a profile that ran no kernel", async () => {
    const r = await profile(() => 1);
    expect(r.value).toBe(1);
    expect(r.kernels).toEqual([]);
    expect(r.table().split('\n').at(-1)).toBe(`0 kernel runs, 0.000 ms in kernels, ${r.wallMs.toFixed(1)} ms wall; timing: none`);
  });

  it("gives each trace event its kernel label, bytes, flops and timing as arguments", async () => {
    const r = await profileOf([event({ name: 'matmul', kernel: 'matmul_tiled', device: 'webgpu', timing: 'replay', start: 2, duration: 0.25, bytes: 4096, flops: 8192 })]);
    const complete = (r.traceEvents().traceEvents as { ph: string; ts: number; dur: number; args: object }[]).filter((e) => e.ph === 'X');
    expect(complete).toEqual([expect.objectContaining({ ts: 2000, dur: 250, args: { kernel: 'matmul_tiled', bytes: 4096, flops: 8192, timing: 'replay' } })]);
  });

  it('names a defined primitive run on the CPU by its own name, not as "custom"', async () => {
    const halve = definePrimitive({
      name: 'profiledHalve', kind: 'elementwise', inputs: ['x'], cpu: (x) => x / 2, wgsl: { expression: 'x / 2.0' }, jvp: () => null, vjp: () => [null],
    });
    const x = tensor([2, 4, 6]);
    const r = await profile(() => halve(x).toArray());
    expect(r.value).toEqual([1, 2, 3]);
    // Reads 3 float32 and writes 3.
    expect(r.events.map((e) => [e.name, e.bytes])).toEqual([['profiledHalve', 6 * 4]]);
    x.dispose();
  });
});
