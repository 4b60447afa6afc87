// The machine's WebAssembly SIMD bound, measured: a loop of independent f32x4 multiply-then-add
// steps (or relaxed SIMD's fused multiply-add, where the engine has it), one thread, each step
// reading its ten multiplicands from memory that stays in L1 (as a matmul kernel reads its
// operands). W1's GFLOP/s are read against it: an engine's matmul kernel can approach it but not
// pass it, whatever its blocking (benchmarks/NOTES.md).
//
// The multiplicands are loaded, not kept in registers: with loop-invariant operands V8 computes
// the product once before the loop (x·y is the same every step) and the loop runs adds only,
// which counted as multiply-adds doubled the figure (seen in its disassembly,
// `node --no-liftoff --no-wasm-lazy-compilation --print-wasm-code`).
//
// The module is written out byte by byte: benchmarks/ uses only scorch's public API, and a bound
// that scorch's kernel is read against should not share scorch's code generator.

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

/** Accumulator j's multiplicand (1 ≤ j ≤ 10): x scaled so that no two are equal. */
function multiplicand(x: number, j: number): number {
  return Math.fround(x * (1 + j / 64));
}

/**
 * `run(n: i32) → f32`: accumulators a_j = 0; n times a_j += m_j·y, m_j loaded from memory each
 * step (the module's data: four lanes of multiplicand(x, j) at byte 16·(j − 1), then y), y a splat;
 * returns lane 0 of the sum of the a_j. With `fused`, each step is f32x4.relaxed_madd.
 */
export function peakModule(fused: boolean, x: number, y: number): Uint8Array<ArrayBuffer> {
  const SIMD = 0xfd;
  const simd = (code: number[], op: number) => { code.push(SIMD); uleb(code, op); };
  const f32 = (v: number) => Array.from(new Uint8Array(new Float32Array([v]).buffer));
  // Locals: 0 = n (param), 1…10 accumulators, 11 = y.
  const Y = ACCUMULATORS + 1;
  const load = (code: number[], j: number) => { code.push(0x41, 0); simd(code, 0x00); code.push(4); uleb(code, 16 * (j - 1)); }; // i32.const 0; v128.load offset
  const code: number[] = [];
  // y from memory, once: a constant splat would be rebuilt inside the loop by V8 (three instructions a step).
  code.push(0x41, 0); simd(code, 0x09); code.push(2); uleb(code, 16 * ACCUMULATORS); code.push(0x21, Y); // v128.load32_splat; local.set
  code.push(0x02, 0x40, 0x03, 0x40); // block, loop
  code.push(0x20, 0, 0x45, 0x0d, 1); // local.get n; i32.eqz; br_if 1
  for (let j = 1; j <= ACCUMULATORS; j++) {
    if (fused) {
      load(code, j);
      code.push(0x20, Y, 0x20, j);
      simd(code, 0x105); // f32x4.relaxed_madd: m_j·y + a_j
    } else {
      code.push(0x20, j);
      load(code, j);
      code.push(0x20, Y);
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
  const body: number[] = [1, ACCUMULATORS + 1, 0x7b, ...code, 0x0b]; // one run of v128 locals
  const func: number[] = [];
  uleb(func, body.length);
  func.push(...body);
  const data: number[] = [];
  for (let j = 1; j <= ACCUMULATORS; j++) for (let lane = 0; lane < 4; lane++) data.push(...f32(multiplicand(x, j)));
  data.push(...f32(y));

  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  section(out, 1, [1, 0x60, 1, 0x7f, 1, 0x7d]); // (i32) → f32
  section(out, 3, [1, 0]);
  section(out, 5, [1, 0x00, 1]); // one memory of one page
  section(out, 7, [1, 3, 0x72, 0x75, 0x6e, 0x00, 0]); // export "run"
  section(out, 10, [1, ...func]);
  const segment = [0x00, 0x41, 0x00, 0x0b]; // active, memory 0, at i32.const 0
  uleb(segment, data.length);
  section(out, 11, [1, ...segment, ...data]);
  return new Uint8Array(out);
}

/** What `run(n)` returns: lane 0 of the ten accumulators' sum, each a float32 recurrence. */
export function expectedPeakResult(x: number, y: number, n: number): number {
  const r = Math.fround;
  let sum = 0;
  for (let j = 1; j <= ACCUMULATORS; j++) {
    const p = r(multiplicand(x, j) * r(y));
    let a = 0;
    for (let i = 0; i < n; i++) a = r(a + p);
    sum = j === 1 ? a : r(sum + a);
  }
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

/**
 * GFLOP/s: the best of `rounds` timed calls of `steps` loop steps each, after a warm-up call.
 * Self-contained (no free names but globals), so a child Node runs the same code from its text.
 */
function best(run: (n: number) => number, steps: number, rounds: number, flopsPerStep: number): number {
  run(Math.ceil(steps / 10));
  let gflops = 0;
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    run(steps);
    const s = (performance.now() - t) / 1000;
    gflops = Math.max(gflops, (steps * flopsPerStep) / s / 1e9);
  }
  return Math.round(gflops * 10) / 10;
}

/**
 * Runs `script` in a child Node with `flags`, the module `bytes` given to it as `bytes`; the
 * child's last line of output, or null if it failed.
 */
export function inChildNode(flags: readonly string[], bytes: Uint8Array, script: string): { output: string | null; error: string } {
  const text = `const bytes = new Uint8Array(${JSON.stringify(Array.from(bytes))});\n${script}`;
  const child = spawnSync(process.execPath, [...flags, '-e', text], { encoding: 'utf8', timeout: 60_000 });
  const lines = (child.stdout ?? '').trim().split('\n');
  return { output: child.status === 0 ? lines[lines.length - 1]! : null, error: (child.stderr ?? '').trim() || `exit ${child.status}` };
}

export interface SimdPeakOptions {
  /** Loop steps per timed call (10^7: ~30 ms a call on the development machine). */
  steps?: number;
  /** Timed calls per kind; the best counts. */
  rounds?: number;
  /**
   * Where this Node lacks relaxed SIMD: flags for a child Node that has it, to measure the fused
   * figure there (null: report it as null).
   */
  fusedChildFlags?: readonly string[] | null;
}

/** The bound on this thread; about 0.3 s with the defaults. */
export function measureSimdPeak(opts: SimdPeakOptions = {}): SimdPeak | null {
  const { steps = 10_000_000, rounds = 5, fusedChildFlags = null } = opts;
  const x = 1.0000001;
  const y = 0.9999999;
  const mulAdd = runExport(peakModule(false, x, y));
  if (!mulAdd) return null;
  const fusedBytes = peakModule(true, x, y);
  const fused = runExport(fusedBytes);
  let fusedMultiplyAdd: number | null = null;
  if (fused) fusedMultiplyAdd = best(fused, steps, rounds, FLOPS_PER_STEP);
  else if (fusedChildFlags) {
    const script = `const run = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.run;\nconsole.log((${best.toString()})(run, ${steps}, ${rounds}, ${FLOPS_PER_STEP}));`;
    const child = inChildNode(fusedChildFlags, fusedBytes, script);
    const value = Number(child.output);
    if (child.output !== null && Number.isFinite(value) && value > 0) fusedMultiplyAdd = value;
    else console.warn(`WebAssembly SIMD bound: the fused multiply-add figure is not measured: a child Node with ${fusedChildFlags.join(' ') || 'no flags'} gave ${child.output === null ? child.error : JSON.stringify(child.output)}`);
  }
  return { mulAdd: best(mulAdd, steps, rounds, FLOPS_PER_STEP), fusedMultiplyAdd };
}

/**
 * Whether WebAssembly in this process has relaxed SIMD: it validates the fused peak module (`bytes`,
 * built here unless the caller has them), whose loop is f32x4.relaxed_madd. Each Node engine's
 * worker reports it in its hello (worker.ts).
 */
export function hasRelaxedSimd(bytes: Uint8Array<ArrayBuffer> = peakModule(true, 1, 1)): boolean {
  return typeof WebAssembly === 'object' && WebAssembly.validate(bytes);
}

/**
 * The Node flags that give a worker relaxed SIMD: none where this Node has it by default (Node
 * 22+), the V8 flag where that flag turns it on (Node 20); throws where neither does.
 */
export function relaxedSimdNodeFlags(): string[] {
  const bytes = peakModule(true, 1, 1);
  if (hasRelaxedSimd(bytes)) return [];
  const child = inChildNode([RELAXED_SIMD_FLAG], bytes, 'console.log(WebAssembly.validate(bytes));');
  if (child.output !== 'true') throw new Error(`relaxed SIMD: this Node (${process.version}) has it neither by default nor with ${RELAXED_SIMD_FLAG}: ${child.output ?? child.error}`);
  return [RELAXED_SIMD_FLAG];
}

/** One line for the reports. */
export function simdPeakLine(peak: SimdPeak | null | undefined): string {
  if (!peak) return 'WebAssembly SIMD bound: not measured';
  const fused = peak.fusedMultiplyAdd === null ? '' : `, ${peak.fusedMultiplyAdd} with relaxed SIMD's fused multiply-add`;
  return `WebAssembly SIMD bound (one thread, f32x4 with operands in L1, benchmarks/src/simdPeak.ts): ${peak.mulAdd} GFLOP/s multiply then add${fused}`;
}
