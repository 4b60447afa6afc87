// What the worker fixtures (fixtures/worker*Child.ts, run in child processes) share: a way to
// stand in for Node's Worker as the library loads it, and a product whose every sum is exact in
// float32, to compare the bits of a threaded run with one thread's. No static import of the
// library: a fixture replaces the Worker before the library is first loaded.

export type WorkerClass = new (source: string, options: unknown) => object;

/** From now on the library's `node:worker_threads` (process.getBuiltinModule) has `wrap(Worker)` as its Worker. */
export function replaceWorker(wrap: (Worker: WorkerClass) => WorkerClass): void {
  const proc = process as unknown as { getBuiltinModule(id: string): unknown };
  const real = proc.getBuiltinModule('node:worker_threads') as { Worker: WorkerClass };
  const Worker = wrap(real.Worker);
  const getBuiltinModule = proc.getBuiltinModule.bind(process);
  proc.getBuiltinModule = (id: string) => (id === 'node:worker_threads' ? { ...real, Worker } : getBuiltinModule(id));
}

/**
 * A 200×150 · 150×100 product of small integers (every sum exact in float32), split across
 * threads from any size on (setWasmThreadMinWorkForTesting(1)): `product()` computes it on the
 * current setting, `same(c)` says whether c has the bits of one thread's (computed here first).
 */
export async function exactProduct(): Promise<{ product: () => Float32Array; same: (c: Float32Array) => boolean }> {
  const { matmulInto, setCpuThreads } = await import('@scorch/tensor');
  const { setWasmThreadMinWorkForTesting } = await import('../src/cpu/wasm/wasmMatmul.js');
  setWasmThreadMinWorkForTesting(1);
  const [m, k, n] = [200, 150, 100];
  const a = Float32Array.from({ length: m * k }, (_, i) => (i % 7) - 3);
  const b = Float32Array.from({ length: k * n }, (_, i) => (i % 5) - 2);
  const product = () => {
    const c = new Float32Array(m * n).fill(NaN);
    matmulInto(a, 0, b, 0, c, 0, m, n, k);
    return c;
  };
  setCpuThreads(1);
  const one = product();
  return { product, same: (c) => c.every((v, i) => v === one[i]) };
}
