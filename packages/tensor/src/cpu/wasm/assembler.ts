// A small assembler for the WebAssembly binary format: just enough of it (types, an imported
// memory with constant tables written into it, imported host functions, functions with locals, structured control flow, integer and float arithmetic, loads and
// stores, bulk memory, and the 128-bit SIMD instructions the CPU kernels use) for scorch to emit
// its kernels itself, at startup, from TypeScript. Shipping no .wasm file and needing no
// toolchain is what lets the package stay free of runtime dependencies and work unchanged in
// Node and in browsers.
//
// Instructions are appended to a function body in the order of the stack machine; the builder
// checks only what is cheap to check (block nesting, local indices). WebAssembly.validate is the
// real checker, and the tests run every module the package emits through it.

/** Value types (binary encodings). */
export const I32 = 0x7f;
export const I64 = 0x7e;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof I64 | typeof F32 | typeof F64 | typeof V128;

/** Appends `value` as unsigned LEB128 (the encoding of indices, sizes and memory offsets). */
export function writeU32(out: number[], value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`wasm: ${value} is not a u32`);
  let v = value;
  do {
    let byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
}

/** Appends `value` as signed LEB128 (the encoding of i32.const immediates). */
export function writeS32(out: number[], value: number): void {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) throw new RangeError(`wasm: ${value} is not an i32`);
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    // Done when the remaining bits are all copies of the sign bit of the byte just written.
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return;
    }
    out.push(byte | 0x80);
  }
}

function writeName(out: number[], name: string): void {
  const bytes = new TextEncoder().encode(name);
  writeU32(out, bytes.length);
  for (const b of bytes) out.push(b);
}

/** Records constant table `bytes` at `address` in `tables`: again is a no-op, other bytes there throw. */
function addTable(tables: Map<number, readonly number[]>, address: number, bytes: readonly number[]): void {
  const known = tables.get(address);
  if (known && (known.length !== bytes.length || known.some((b, i) => b !== bytes[i]))) throw new Error(`wasm: two different constant tables at address ${address}`);
  tables.set(address, bytes);
}

const SIMD = 0xfd;
const BULK = 0xfc;

/**
 * One function's body. Parameters are locals 0…params-1; `local(type)` adds more. Memory
 * instructions take a byte offset added to the address on the stack (folded by the engine into
 * the addressing mode, which is how the kernels address a whole register tile from one pointer).
 */
export class FunctionBody {
  readonly code: number[] = [];
  private readonly extraLocals: ValType[] = [];
  private depth = 0;
  /** Constant bytes the code reads at fixed addresses of the memory: the module's data segments. */
  readonly data = new Map<number, readonly number[]>();

  constructor(readonly params: readonly ValType[], readonly results: readonly ValType[]) {}

  /**
   * Declares that this code reads `bytes` at byte address `address` of the memory (a constant
   * table): the module writes them there when it is instantiated (an active data segment).
   * Declaring the same table again is a no-op; other bytes at the same address throw.
   */
  requireData(address: number, bytes: readonly number[]): this {
    addTable(this.data, address, bytes);
    return this;
  }

  /** A new local of `type`; its index. */
  local(type: ValType): number {
    this.extraLocals.push(type);
    return this.params.length + this.extraLocals.length - 1;
  }

  /** Runs `emit` on this body (for emitting helpers inside a chain of instructions). */
  emit(emit: (f: this) => unknown): this {
    emit(this);
    return this;
  }

  private op(...bytes: number[]): this {
    for (const b of bytes) this.code.push(b);
    return this;
  }

  private checkLocal(index: number): void {
    if (!(index >= 0 && index < this.params.length + this.extraLocals.length)) throw new RangeError(`wasm: no local ${index}`);
  }

  private mem(opcode: number[], alignLog2: number, offset: number): this {
    this.op(...opcode);
    writeU32(this.code, alignLog2);
    writeU32(this.code, offset);
    return this;
  }

  private simd(opcode: number): this {
    this.code.push(SIMD);
    writeU32(this.code, opcode);
    return this;
  }

  // Control. `block`/`loop`/`if` open a construct with no result that `end` closes; branch
  // depths count outward from the innermost open construct (0), as in the text format.
  block(): this { this.depth++; return this.op(0x02, 0x40); }
  loop(): this { this.depth++; return this.op(0x03, 0x40); }
  if(): this { this.depth++; return this.op(0x04, 0x40); }
  else(): this { return this.op(0x05); }
  end(): this {
    if (this.depth === 0) throw new Error('wasm: end without an open block');
    this.depth--;
    return this.op(0x0b);
  }
  br(depth: number): this { this.op(0x0c); writeU32(this.code, depth); return this; }
  brIf(depth: number): this { this.op(0x0d); writeU32(this.code, depth); return this; }
  return(): this { return this.op(0x0f); }
  call(func: number): this { this.op(0x10); writeU32(this.code, func); return this; }
  drop(): this { return this.op(0x1a); }
  select(): this { return this.op(0x1b); }

  // Locals.
  get(index: number): this { this.checkLocal(index); this.op(0x20); writeU32(this.code, index); return this; }
  set(index: number): this { this.checkLocal(index); this.op(0x21); writeU32(this.code, index); return this; }
  tee(index: number): this { this.checkLocal(index); this.op(0x22); writeU32(this.code, index); return this; }

  // Scalar memory access (alignment hints are the natural ones).
  i32Load(offset = 0): this { return this.mem([0x28], 2, offset); }
  f32Load(offset = 0): this { return this.mem([0x2a], 2, offset); }
  f64Load(offset = 0): this { return this.mem([0x2b], 3, offset); }
  i32Store(offset = 0): this { return this.mem([0x36], 2, offset); }
  f32Store(offset = 0): this { return this.mem([0x38], 2, offset); }
  f64Store(offset = 0): this { return this.mem([0x39], 3, offset); }
  /** memory.copy (dest, src, bytes on the stack; overlapping ranges allowed). */
  memoryCopy(): this { this.op(BULK); writeU32(this.code, 10); return this.op(0x00, 0x00); }
  /** memory.fill (dest, byte value, bytes on the stack). */
  memoryFill(): this { this.op(BULK); writeU32(this.code, 11); return this.op(0x00); }

  // Constants.
  i32Const(value: number): this { this.op(0x41); writeS32(this.code, value); return this; }
  f32Const(value: number): this {
    const bytes = new Uint8Array(new Float32Array([value]).buffer);
    return this.op(0x43, ...bytes);
  }
  f64Const(value: number): this {
    const bytes = new Uint8Array(new Float64Array([value]).buffer);
    return this.op(0x44, ...bytes);
  }

  // i32 arithmetic and comparisons.
  i32Eqz(): this { return this.op(0x45); }
  i32Eq(): this { return this.op(0x46); }
  i32Ne(): this { return this.op(0x47); }
  i32LtS(): this { return this.op(0x48); }
  i32LtU(): this { return this.op(0x49); }
  i32GtS(): this { return this.op(0x4a); }
  i32GtU(): this { return this.op(0x4b); }
  i32LeS(): this { return this.op(0x4c); }
  i32GeS(): this { return this.op(0x4e); }
  i32GeU(): this { return this.op(0x4f); }
  i32Add(): this { return this.op(0x6a); }
  i32Sub(): this { return this.op(0x6b); }
  i32Mul(): this { return this.op(0x6c); }
  i32And(): this { return this.op(0x71); }
  i32Or(): this { return this.op(0x72); }
  i32Shl(): this { return this.op(0x74); }
  i32ShrU(): this { return this.op(0x76); }

  // Scalar float arithmetic.
  f32Add(): this { return this.op(0x92); }
  f32Mul(): this { return this.op(0x94); }
  f64Add(): this { return this.op(0xa0); }
  f64Mul(): this { return this.op(0xa2); }

  // 128-bit SIMD.
  v128Load(offset = 0): this { return this.simd(0x00).memarg(4, offset); }
  v128Store(offset = 0): this { return this.simd(0x0b).memarg(4, offset); }
  /** Loads one f32 (or i32) and replicates it into all four lanes. */
  v128Load32Splat(offset = 0): this { return this.simd(0x09).memarg(2, offset); }
  /** Stores lane `lane` (0–3) of a v128 as 32 bits. */
  v128Store32Lane(offset: number, lane: number): this {
    if (!(Number.isInteger(lane) && lane >= 0 && lane < 4)) throw new RangeError('wasm: v128.store32_lane takes a lane below 4');
    return this.simd(0x5a).memarg(2, offset).op(lane);
  }
  /** Loads one f64 (or i64) and replicates it into both lanes. */
  v128Load64Splat(offset = 0): this { return this.simd(0x0a).memarg(3, offset); }
  v128Const(bytes: readonly number[] = new Array<number>(16).fill(0)): this {
    if (bytes.length !== 16) throw new RangeError('wasm: v128.const takes 16 bytes');
    this.simd(0x0c);
    return this.op(...bytes);
  }
  f32x4Splat(): this { return this.simd(0x13); }
  f64x2Splat(): this { return this.simd(0x14); }
  f32x4ExtractLane(lane: number): this { return this.simd(0x1f).op(lane); }
  f64x2ExtractLane(lane: number): this { return this.simd(0x21).op(lane); }
  f64x2ReplaceLane(lane: number): this { return this.simd(0x22).op(lane); }
  f32x4Add(): this { return this.simd(0xe4); }
  f32x4Mul(): this { return this.simd(0xe6); }
  f64x2Add(): this { return this.simd(0xf0); }
  f64x2Mul(): this { return this.simd(0xf2); }
  /** Relaxed SIMD: a·b + c per lane, fused or not (the engine's choice; fused where the CPU has FMA). */
  f32x4RelaxedMadd(): this { return this.simd(0x105); }
  f64x2RelaxedMadd(): this { return this.simd(0x107); }

  // Bitwise, lane-shuffling and conversion instructions (the elementwise kernels and their math).
  v128Not(): this { return this.simd(0x4d); }
  v128And(): this { return this.simd(0x4e); }
  /** a & ~b. */
  v128AndNot(): this { return this.simd(0x4f); }
  v128Or(): this { return this.simd(0x50); }
  v128Xor(): this { return this.simd(0x51); }
  /** (ifTrue, ifFalse, mask) → per bit, mask ? ifTrue : ifFalse. */
  v128Bitselect(): this { return this.simd(0x52); }
  v128AnyTrue(): this { return this.simd(0x53); }
  /** Lanes of two vectors picked by byte: 16 indices, 0–15 from the first, 16–31 from the second. */
  i8x16Shuffle(lanes: readonly number[]): this {
    if (lanes.length !== 16 || lanes.some((l) => !(Number.isInteger(l) && l >= 0 && l < 32))) throw new RangeError('wasm: i8x16.shuffle takes 16 lane indices below 32');
    this.simd(0x0d);
    return this.op(...lanes);
  }
  /** Eight i16 lanes of a then b, each saturated to a signed byte: sixteen i8 lanes. */
  i8x16NarrowI16x8S(): this { return this.simd(0x65); }
  /** Four i32 lanes of a then b, each saturated to a signed i16: eight i16 lanes. */
  i16x8NarrowI32x4S(): this { return this.simd(0x85); }
  i32x4Splat(): this { return this.simd(0x11); }
  i64x2Splat(): this { return this.simd(0x12); }
  /** i32 lane `lane` (0–3) of a v128. */
  i32x4ExtractLane(lane: number): this { return this.simd(0x1b).op(lane); }
  /** (address) → one f64 (or i64) loaded into lane 0, lane 1 zero. */
  v128Load64Zero(offset = 0): this { return this.simd(0x5d).memarg(3, offset); }
  /** (address, vector) → the vector with lane `lane` (0–1) replaced by the f64 (or i64) loaded. */
  v128Load64Lane(offset: number, lane: number): this {
    if (lane !== 0 && lane !== 1) throw new RangeError('wasm: v128.load64_lane takes lane 0 or 1');
    return this.simd(0x57).memarg(3, offset).op(lane);
  }
  i32x4Eq(): this { return this.simd(0x37); }
  i32x4Ne(): this { return this.simd(0x38); }
  f32x4Eq(): this { return this.simd(0x41); }
  f32x4Ne(): this { return this.simd(0x42); }
  f32x4Lt(): this { return this.simd(0x43); }
  f32x4Gt(): this { return this.simd(0x44); }
  f32x4Le(): this { return this.simd(0x45); }
  f32x4Ge(): this { return this.simd(0x46); }
  f64x2Eq(): this { return this.simd(0x47); }
  f64x2Ne(): this { return this.simd(0x48); }
  f64x2Lt(): this { return this.simd(0x49); }
  f64x2Gt(): this { return this.simd(0x4a); }
  f64x2Le(): this { return this.simd(0x4b); }
  f64x2Ge(): this { return this.simd(0x4c); }
  /** The two f64 lanes rounded to f32 in lanes 0–1; lanes 2–3 zero. */
  f32x4DemoteF64x2Zero(): this { return this.simd(0x5e); }
  /** f32 lanes 0–1 as two f64 lanes (exact). */
  f64x2PromoteLowF32x4(): this { return this.simd(0x5f); }
  f64x2Ceil(): this { return this.simd(0x74); }
  f64x2Floor(): this { return this.simd(0x75); }
  f64x2Trunc(): this { return this.simd(0x7a); }
  f64x2Nearest(): this { return this.simd(0x94); }
  /** 1 if every i32 lane of the v128 is nonzero, else 0 (an i32). */
  i32x4AllTrue(): this { return this.simd(0xa3); }
  i32x4Shl(): this { return this.simd(0xab); }
  i32x4ShrS(): this { return this.simd(0xac); }
  i32x4ShrU(): this { return this.simd(0xad); }
  i32x4Add(): this { return this.simd(0xae); }
  i32x4Mul(): this { return this.simd(0xb5); }
  i32x4Sub(): this { return this.simd(0xb1); }
  i64x2ExtendLowI32x4S(): this { return this.simd(0xc7); }
  i64x2Shl(): this { return this.simd(0xcb); }
  i64x2ShrS(): this { return this.simd(0xcc); }
  i64x2ShrU(): this { return this.simd(0xcd); }
  i64x2Add(): this { return this.simd(0xce); }
  i64x2ExtmulLowI32x4U(): this { return this.simd(0xde); }
  i64x2ExtmulHighI32x4U(): this { return this.simd(0xdf); }
  i64x2Sub(): this { return this.simd(0xd1); }
  f32x4Abs(): this { return this.simd(0xe0); }
  f32x4Neg(): this { return this.simd(0xe1); }
  f32x4Sqrt(): this { return this.simd(0xe3); }
  f32x4Sub(): this { return this.simd(0xe5); }
  f32x4Div(): this { return this.simd(0xe7); }
  /** Per lane b < a ? b : a (one instruction where IEEE min, with its NaN and signed-zero rules, takes several). */
  f32x4Pmin(): this { return this.simd(0xea); }
  /** Per lane a < b ? b : a. */
  f32x4Pmax(): this { return this.simd(0xeb); }
  f64x2Abs(): this { return this.simd(0xec); }
  f64x2Neg(): this { return this.simd(0xed); }
  f64x2Sqrt(): this { return this.simd(0xef); }
  f64x2Sub(): this { return this.simd(0xf1); }
  f64x2Div(): this { return this.simd(0xf3); }
  i32x4TruncSatF32x4S(): this { return this.simd(0xf8); }
  f32x4ConvertI32x4S(): this { return this.simd(0xfa); }
  /** The two f64 lanes truncated and saturated to i32 in lanes 0–1; lanes 2–3 zero. */
  i32x4TruncSatF64x2SZero(): this { return this.simd(0xfc); }
  /** i32 lanes 0–1 as two f64 lanes. */
  f64x2ConvertLowI32x4S(): this { return this.simd(0xfe); }

  private memarg(alignLog2: number, offset: number): this {
    writeU32(this.code, alignLog2);
    writeU32(this.code, offset);
    return this;
  }

  /** The encoded body: local declarations (runs of one type), code, final end. */
  encode(): number[] {
    if (this.depth !== 0) throw new Error(`wasm: ${this.depth} block(s) left open`);
    const runs: [number, ValType][] = [];
    for (const t of this.extraLocals) {
      const last = runs[runs.length - 1];
      if (last && last[1] === t) last[0]++;
      else runs.push([1, t]);
    }
    const body: number[] = [];
    writeU32(body, runs.length);
    for (const [count, type] of runs) {
      writeU32(body, count);
      body.push(type);
    }
    for (const b of this.code) body.push(b);
    body.push(0x0b);
    const out: number[] = [];
    writeU32(out, body.length);
    for (const b of body) out.push(b);
    return out;
  }
}

export interface MemoryImport {
  module: string;
  name: string;
  /** Initial size in 64 KiB pages. */
  initial: number;
  /** Maximum in pages (required when shared). */
  maximum?: number;
  shared?: boolean;
}

/** A module under construction: one imported memory, imported functions, functions, exports. */
export class ModuleBuilder {
  private readonly types: string[] = [];
  private readonly typeBytes: number[][] = [];
  private readonly imports: { module: string; name: string; type: number }[] = [];
  private readonly functions: { type: number; body: FunctionBody; name?: string }[] = [];
  private memory: MemoryImport | null = null;

  /**
   * Declares a host function the module imports (`module`.`name`) and returns its function
   * index, for `call`. Imported functions come first in the index space, so every import is
   * declared before the first `func`.
   */
  importFunction(module: string, name: string, params: readonly ValType[], results: readonly ValType[]): number {
    if (this.functions.length > 0) throw new Error('wasm: functions are imported before any is defined');
    this.imports.push({ module, name, type: this.typeIndex(params, results) });
    return this.imports.length - 1;
  }

  importMemory(memory: MemoryImport): this {
    if (memory.shared && memory.maximum === undefined) throw new Error('wasm: a shared memory needs a maximum');
    this.memory = memory;
    return this;
  }

  private typeIndex(params: readonly ValType[], results: readonly ValType[]): number {
    const key = `${params.join(',')}>${results.join(',')}`;
    let index = this.types.indexOf(key);
    if (index < 0) {
      index = this.types.length;
      this.types.push(key);
      const bytes = [0x60];
      writeU32(bytes, params.length);
      bytes.push(...params);
      writeU32(bytes, results.length);
      bytes.push(...results);
      this.typeBytes.push(bytes);
    }
    return index;
  }

  /**
   * Adds a function (exported under `name` when given) and returns its index; `build` fills the
   * body, receiving the parameters' local indices.
   */
  func<const P extends readonly ValType[]>(
    name: string | undefined, params: P, results: readonly ValType[], build: (f: FunctionBody, args: { [K in keyof P]: number }) => void,
  ): number {
    const body = new FunctionBody(params, results);
    build(body, params.map((_, i) => i) as { [K in keyof P]: number });
    const index = this.imports.length + this.functions.length;
    this.functions.push(name === undefined ? { type: this.typeIndex(params, results), body } : { type: this.typeIndex(params, results), body, name });
    return index;
  }

  encode(): Uint8Array<ArrayBuffer> {
    const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const section = (id: number, content: number[]) => {
      out.push(id);
      writeU32(out, content.length);
      for (const b of content) out.push(b);
    };
    const vec = (items: number[][]) => {
      const c: number[] = [];
      writeU32(c, items.length);
      for (const item of items) for (const b of item) c.push(b);
      return c;
    };
    section(1, vec(this.typeBytes));
    const imports = this.imports.map((i) => {
      const entry: number[] = [];
      writeName(entry, i.module);
      writeName(entry, i.name);
      entry.push(0x00);
      writeU32(entry, i.type);
      return entry;
    });
    if (this.memory) {
      const m = this.memory;
      const entry: number[] = [];
      writeName(entry, m.module);
      writeName(entry, m.name);
      entry.push(0x02);
      entry.push(m.maximum === undefined ? 0x00 : m.shared ? 0x03 : 0x01);
      writeU32(entry, m.initial);
      if (m.maximum !== undefined) writeU32(entry, m.maximum);
      imports.push(entry);
    }
    if (imports.length > 0) section(2, vec(imports));
    section(3, vec(this.functions.map((f) => {
      const b: number[] = [];
      writeU32(b, f.type);
      return b;
    })));
    const exports = this.functions.flatMap((f, i) => {
      if (f.name === undefined) return [];
      const b: number[] = [];
      writeName(b, f.name);
      b.push(0x00);
      writeU32(b, this.imports.length + i);
      return [b];
    });
    section(7, vec(exports));
    section(10, vec(this.functions.map((f) => f.body.encode())));
    // The constant tables the functions read (requireData), each once: active segments of memory 0.
    const data = new Map<number, readonly number[]>();
    for (const { body } of this.functions) for (const [address, bytes] of body.data) addTable(data, address, bytes);
    if (data.size > 0) {
      if (!this.memory) throw new Error('wasm: constant tables need a memory');
      section(11, vec([...data].map(([address, bytes]) => {
        const segment = [0x00, 0x41];
        writeS32(segment, address);
        segment.push(0x0b);
        writeU32(segment, bytes.length);
        for (const b of bytes) segment.push(b);
        return segment;
      })));
    }
    return new Uint8Array(out);
  }
}

// ---------------------------------------------------------------------------------------------
// Shuffles the modules share (matmulModule.ts, mathF32x4.ts, randomModule.ts).

/** i8x16.shuffle's bytes for four 32-bit lanes (0–3 of the first vector, 4–7 of the second). */
export const lanes32 = (l: readonly number[]): number[] => l.flatMap((x) => [4 * x, 4 * x + 1, 4 * x + 2, 4 * x + 3]);
/**
 * Rows 0, 1 of a 4 × 4 block interleaved (low and high halves), then pairs of those joined: its
 * transpose. JOIN_LOW and JOIN_HIGH are also the low and the high double of each of two f64x2
 * vectors.
 */
export const INTERLEAVE_LOW = lanes32([0, 4, 1, 5]);
export const INTERLEAVE_HIGH = lanes32([2, 6, 3, 7]);
export const JOIN_LOW = lanes32([0, 1, 4, 5]);
export const JOIN_HIGH = lanes32([2, 3, 6, 7]);
/** Lanes 2, 3 of a vector moved to lanes 0, 1 (the shuffle that promotes a vector's high half). */
export const HIGH_HALF = lanes32([2, 3, 2, 3]);
/** The low 32-bit words of the two f64 lanes of each of two vectors, in lane order. */
export const LOW_WORDS = lanes32([0, 2, 4, 6]);

/**
 * The first half of transposing the 4 × 4 block of f32 vectors r[0…3] (rows): rows 0, 1 and rows
 * 2, 3 interleaved into t[0…3] (four shuffles). transposedColumn then makes each column.
 */
export function interleaveRows(f: FunctionBody, r: readonly number[], t: readonly number[]): void {
  f.get(r[0]!).get(r[1]!).i8x16Shuffle(INTERLEAVE_LOW).set(t[0]!);
  f.get(r[0]!).get(r[1]!).i8x16Shuffle(INTERLEAVE_HIGH).set(t[1]!);
  f.get(r[2]!).get(r[3]!).i8x16Shuffle(INTERLEAVE_LOW).set(t[2]!);
  f.get(r[2]!).get(r[3]!).i8x16Shuffle(INTERLEAVE_HIGH).set(t[3]!);
}

/** Column c (0…3) of the block whose rows interleaveRows put in t, left on the stack (one shuffle). */
export function transposedColumn(f: FunctionBody, t: readonly number[], c: number): void {
  f.get(t[c >> 1]!).get(t[(c >> 1) + 2]!).i8x16Shuffle(c & 1 ? JOIN_HIGH : JOIN_LOW);
}

/**
 * The 4 × 4 block of f32 vectors r[0…3] (rows) transposed by eight shuffles through t[0…3], its
 * columns stored as 4 vectors at dst + offset, + stride, + 2·stride, + 3·stride.
 */
export function storeTransposed(f: FunctionBody, r: readonly number[], t: readonly number[], dst: number, offset: number, stride: number): void {
  interleaveRows(f, r, t);
  for (let c = 0; c < 4; c++) {
    f.get(dst);
    transposedColumn(f, t, c);
    f.v128Store(offset + c * stride);
  }
}
