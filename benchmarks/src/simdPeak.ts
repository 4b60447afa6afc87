// The machine's WebAssembly SIMD bound, measured: a loop of independent f32x4 multiply-then-add
// steps (or relaxed SIMD's fused multiply-add, where the engine has it) on registers only, no
// memory traffic, one thread. W1's GFLOP/s are read against it: an engine's matmul kernel can
// approach it but not pass it, whatever its blocking (benchmarks/NOTES.md).
//
// The module is written out byte by byte here so the suite measures the machine, not scorch's
// assembler.

import { spawnSync } from 'node:child_process';

/** V8's switch for relaxed SIMD where it is not on by default (Node 20). */
export const RELAXED_SIMD_FLAG = '--experimental-wasm-relaxed-simd';

/** Independent accumulators: more than the add latency × issue width, fewer than the 16 xmm registers. */
const ACCUMULATORS = 10;
/** Flops per step of the loop: each accumulator gets a·b added to it, four lanes, two flops each. */
const FLOPS_PER_STEP = ACCUMULATORS * 4 * 2;

function uleb(out: number[], value: number): void {
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
}

function section(out: number[], id: number, content: number[]): void {
  out.push(id);
  uleb(out, content.length);
  out.push(...content);
}

/**
 * `run(n: i32) → f32`: accumulators a_j = 0; n times a_j += x·y (x, y two f32x4 splats); returns
 * lane 0 of the sum of the a_j. With `fused`, each step is f32x4.relaxed_madd.
 */
export function peakModule(fused: boolean, x: number, y: number): Uint8Array<ArrayBuffer> {
  const SIMD = 0xfd;
  const simd = (code: number[], op: number) => { code.push(SIMD); uleb(code, op); };
  const f32 = (v: number) => Array.from(new Uint8Array(new Float32Array([v]).buffer));
  // Locals: 0 = n (param), 1…10 accumulators, 11 = x, 12 = y.
  const X = ACCUMULATORS + 1;
  const Y = ACCUMULATORS + 2;
  const code: number[] = [];
  code.push(0x43, ...f32(x)); simd(code, 0x13); code.push(0x21, X); // f32.const x; f32x4.splat; local.set
  code.push(0x43, ...f32(y)); simd(code, 0x13); code.push(0x21, Y);
  code.push(0x02, 0x40, 0x03, 0x40); // block, loop
  code.push(0x20, 0, 0x45, 0x0d, 1); // local.get n; i32.eqz; br_if 1
  for (let j = 1; j <= ACCUMULATORS; j++) {
    if (fused) {
      code.push(0x20, X, 0x20, Y, 0x20, j);
      simd(code, 0x105); // f32x4.relaxed_madd: x·y + a
    } else {
      code.push(0x20, j, 0x20, X, 0x20, Y);
      simd(code, 0xe6); // f32x4.mul
      simd(code, 0xe4); // f32x4.add
    }
    code.push(0x21, j);
  }
  code.push(0x20, 0, 0x41, 1, 0x6b, 0x21, 0); // n = n − 1
  code.push(0x0c, 0, 0x0b, 0x0b); // br 0; end loop; end block
  code.push(0x20, 1);
  for (let j = 2; j <= ACCUMULATORS; j++) { code.push(0x20, j); simd(code, 0xe4); }
  simd(code, 0x1f); code.push(0); // f32x4.extract_lane 0
  const body: number[] = [1, ACCUMULATORS + 2, 0x7b, ...code, 0x0b]; // one run of v128 locals
  const func: number[] = [];
  uleb(func, body.length);
  func.push(...body);

  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  section(out, 1, [1, 0x60, 1, 0x7f, 1, 0x7d]); // (i32) → f32
  section(out, 3, [1, 0]);
  section(out, 7, [1, 3, 0x72, 0x75, 0x6e, 0x00, 0]); // export "run"
  section(out, 10, [1, ...func]);
  return new Uint8Array(out);
}

/** What `run(n)` returns: lane 0 of the ten accumulators' sum, each a float32 recurrence. */
export function expectedPeakResult(x: number, y: number, n: number): number {
  const r = Math.fround;
  const p = r(r(x) * r(y));
  let a = 0;
  for (let i = 0; i < n; i++) a = r(a + p);
  let sum = a;
  for (let j = 1; j < ACCUMULATORS; j++) sum = r(sum + a);
  return sum;
}

export interface SimdPeak {
  /** GFLOP/s of f32x4 multiply then add, one thread. */
  mulAdd: number;
  /** GFLOP/s of f32x4.relaxed_madd, or null where the engine lacks relaxed SIMD. */
  fusedMultiplyAdd: number | null;
}

function runExport(bytes: Uint8Array<ArrayBuffer>): ((n: number) => number) | null {
  if (typeof WebAssembly !== 'object' || !WebAssembly.validate(bytes)) return null;
  return (new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as { run: (n: number) => number }).run;
}

/** The best of `rounds` timed calls of `steps` loop steps each, after a warm-up call. */
function best(run: (n: number) => number, steps: number, rounds: number): number {
  run(steps / 10);
  let gflops = 0;
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    run(steps);
    const s = (performance.now() - t) / 1000;
    gflops = Math.max(gflops, (steps * FLOPS_PER_STEP) / s / 1e9);
  }
  return Math.round(gflops * 10) / 10;
}

/**
 * The bound on this thread; about 0.3 s (best of 5 calls of ~30 ms per kind). Without relaxed SIMD
 * here (Node 20 by default), the fused figure comes from a child Node with its flag when
 * `childWithFlag`, else null.
 */
export function measureSimdPeak(steps = 10_000_000, rounds = 5, childWithFlag = false): SimdPeak | null {
  const mulAdd = runExport(peakModule(false, 1.0000001, 0.9999999));
  if (!mulAdd) return null;
  const fused = runExport(peakModule(true, 1.0000001, 0.9999999));
  const fusedMultiplyAdd = fused ? best(fused, steps, rounds) : childWithFlag ? fusedPeakInChild(steps, rounds) : null;
  return { mulAdd: best(mulAdd, steps, rounds), fusedMultiplyAdd };
}

/** The fused figure from a child Node with RELAXED_SIMD_FLAG, or null if that fails. */
function fusedPeakInChild(steps: number, rounds: number): number | null {
  const bytes = JSON.stringify(Array.from(peakModule(true, 1.0000001, 0.9999999)));
  const script = `const b = new Uint8Array(${bytes});
const run = new WebAssembly.Instance(new WebAssembly.Module(b)).exports.run;
run(${steps / 10});
let g = 0;
for (let i = 0; i < ${rounds}; i++) { const t = performance.now(); run(${steps}); g = Math.max(g, ${steps * FLOPS_PER_STEP} / ((performance.now() - t) / 1000) / 1e9); }
console.log(g);`;
  const child = spawnSync(process.execPath, [RELAXED_SIMD_FLAG, '-e', script], { encoding: 'utf8', timeout: 60_000 });
  const value = Number(child.stdout?.trim());
  return child.status === 0 && Number.isFinite(value) && value > 0 ? Math.round(value * 10) / 10 : null;
}

/**
 * The Node flags that give a worker relaxed SIMD: none where this Node has it by default (Node
 * 22+), the V8 flag where that flag turns it on (Node 20); throws where neither does.
 */
export function relaxedSimdNodeFlags(): string[] {
  if (WebAssembly.validate(peakModule(true, 1, 1))) return [];
  const bytes = JSON.stringify(Array.from(peakModule(true, 1, 1)));
  const child = spawnSync(process.execPath, [RELAXED_SIMD_FLAG, '-e', `process.exit(WebAssembly.validate(new Uint8Array(${bytes})) ? 0 : 3)`], { encoding: 'utf8', timeout: 60_000 });
  if (child.status !== 0) throw new Error(`relaxed SIMD: this Node (${process.version}) has it neither by default nor with ${RELAXED_SIMD_FLAG}: ${child.stderr.trim() || `exit ${child.status}`}`);
  return [RELAXED_SIMD_FLAG];
}

/** One line for the reports. */
export function simdPeakLine(peak: SimdPeak | null | undefined): string {
  if (!peak) return 'WebAssembly SIMD bound: not measured';
  const fused = peak.fusedMultiplyAdd === null ? '' : `, ${peak.fusedMultiplyAdd} with relaxed SIMD's fused multiply-add`;
  return `WebAssembly SIMD bound (one thread, f32x4 on registers only, benchmarks/src/simdPeak.ts): ${peak.mulAdd} GFLOP/s multiply then add${fused}`;
}
