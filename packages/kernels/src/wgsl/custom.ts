// WGSL of primitives defined with `definePrimitive` (@scorch/tensor's primitiveRegistry.ts).
// An elementwise definition becomes a function `cp_<name>` over f32 arguments, called wherever
// the op is computed: its own eager kernel, or any fused kernel of a compiled program, exactly
// where a built-in op's expression would go. Each function is preceded by a marker comment, so a
// compile error at some line of a kernel can be traced back to the definition it came from.
// A shader definition supplies its whole module; it is launched with its inputs and output bound
// dense (element 0 at offset 0), no uniform block.

import { type KernelIO, type PrimitiveDefinition, type ShaderDefinition, primitiveDefinition } from '@scorch/tensor';
import { type KernelSpec, MAX_WORKGROUPS_PER_DIM, grid1d } from './common.js';

/** The WGSL function an elementwise definition becomes. */
function customFunctionName(name: string): string {
  return `cp_${name}`;
}

/** A call of the defined elementwise primitive `name` on WGSL argument expressions. */
export function customCall(name: string, args: readonly string[]): string {
  return `${customFunctionName(name)}(${args.join(', ')})`;
}

/** The marker comment before a definition's code in a kernel (see `definitionAtLine`). */
const marker = (name: string) => `// custom primitive '${name}'`;

function elementwiseSource(def: PrimitiveDefinition & { kind: 'elementwise' }): string {
  const params = def.inputs.map((n) => `${n}: f32`).join(', ');
  return `${marker(def.name)}\n${def.wgsl.functions ? `${def.wgsl.functions.trim()}\n` : ''}fn ${customFunctionName(def.name)}(${params}) -> f32 {\n  return ${def.wgsl.expression};\n}\n// end of custom primitive '${def.name}'`;
}

/** The functions of every defined elementwise primitive `code` calls (their helpers included). */
export function customPrelude(code: string): string {
  const names = new Set<string>();
  for (const m of code.matchAll(/\bcp_([A-Za-z][A-Za-z0-9_]*)\(/g)) names.add(m[1]!);
  const out: string[] = [];
  for (const name of names) {
    const def = primitiveDefinition(name);
    if (def.kind !== 'elementwise') throw new Error(`internal: '${name}' is not an elementwise primitive`);
    out.push(elementwiseSource(def));
  }
  return out.join('\n');
}

/**
 * The defined primitive whose code holds line `line` (1-based) of a kernel's `code`, by the
 * marker comments, and the line's number within that code (its `functions` then the generated
 * `cp_<name>` wrapper, or its shader); null for a line of generated code.
 */
export function definitionAtLine(code: string, line: number): { name: string; line: number } | null {
  const lines = code.split('\n');
  for (let i = Math.min(line, lines.length) - 1; i >= 0; i--) {
    const m = /^\/\/ (end of )?custom primitive '([^']+)'/.exec(lines[i]!);
    if (m) return m[1] || i === line - 1 ? null : { name: m[2]!, line: line - 1 - i };
  }
  return null;
}

/**
 * The shader definition whose kernel `code` is (its marker is the kernel's first line), or null
 * for any other kernel.
 */
export function shaderDefinitionOf(code: string): ShaderDefinition | null {
  const m = /^\/\/ custom primitive '([^']+)'\n/.exec(code);
  if (!m) return null;
  const def = primitiveDefinition(m[1]!);
  return def.kind === 'shader' ? def : null;
}

/** The bindings a shader definition's kernel must declare, in words (for its errors). */
export function shaderContract(def: ShaderDefinition): string {
  const n = def.inputs.length;
  const inputs = def.inputs.map((name, k) => `@binding(${k}) var<storage, read> ${name}: array<T>`).join(', ');
  return `entry point 'main'; group 0 with ${inputs} and the output at @binding(${n}) as var<storage, read_write> …: array<T> (T is f32, i32, or u32 for bool)`;
}

/**
 * The workgroup size a shader's `main` declares: each dimension an integer literal (`64`, `64u`)
 * or the name of a module-scope `const` or `override` initialised by one (`const WG = 64u;`).
 * null where the code has no @workgroup_size (WGSL then refuses it); a string saying which
 * dimension cannot be read where it is anything else (an expression), so that the size is
 * checked against the definition's or the shader refused, never launched unchecked: a shader
 * declaring fewer invocations than the definition says leaves outputs unwritten.
 */
function declaredWorkgroupSize(code: string): number[] | string | null {
  const m = /@workgroup_size\s*\(([^)]*)\)/.exec(code);
  if (!m) return null;
  const parts = m[1]!.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const literal = (s: string): number | null => (/^\d+[ui]?$/.test(s) ? Number(s.replace(/[ui]$/, '')) : null);
  const values: number[] = [];
  for (const part of parts) {
    let value = literal(part);
    if (value === null && /^[A-Za-z_]\w*$/.test(part)) {
      const declaration = new RegExp(`(?:^|[^\\w.])(?:const|override)\\s+${part}\\s*(?::\\s*[iu]32\\s*)?=\\s*(\\d+[ui]?)\\s*;`).exec(code);
      value = declaration ? literal(declaration[1]!) : null;
    }
    if (value === null) return `@workgroup_size(${m[1]!.trim()}): '${part}' is neither an integer literal nor a module-scope const or override initialised by one`;
    values.push(value);
  }
  while (values.length < 3) values.push(1);
  return values;
}

/** The launch of a shader definition for one call: its code (marked), workgroup size and grid. */
export function customShaderKernel(def: ShaderDefinition, io: KernelIO): KernelSpec {
  const source = typeof def.wgsl.code === 'function' ? def.wgsl.code(io) : def.wgsl.code;
  if (typeof source !== 'string') throw new Error(`${def.name}: wgsl.code must give WGSL source text, got ${typeof source}`);
  const declared = declaredWorkgroupSize(source);
  const ws = def.wgsl.workgroupSize;
  if (typeof declared === 'string') {
    throw new Error(`${def.name}: the shader's workgroup size cannot be checked against the definition's workgroupSize [${ws.join(', ')}]: ${declared}; write each dimension as an integer or such a constant`);
  }
  if (declared && declared.some((d, i) => d !== ws[i])) {
    throw new Error(`${def.name}: the shader declares @workgroup_size(${declared.join(', ')}) but the definition says workgroupSize [${ws.join(', ')}]`);
  }
  const size = io.output.shape.reduce((a, b) => a * b, 1);
  const groups = Math.ceil(size / ws[0]);
  if (!def.wgsl.dispatch && groups > MAX_WORKGROUPS_PER_DIM) {
    // Folding the launch into y (as scorch's own kernels do) would leave every element past the
    // x range to a shader that, as documented, indexes its output by global_invocation_id.x.
    throw new Error(
      `${def.name}: the default dispatch is one invocation per output element along x, at most ${MAX_WORKGROUPS_PER_DIM} workgroups of ${ws[0]} (${MAX_WORKGROUPS_PER_DIM * ws[0]} elements), but the output has ${size}; give wgsl.dispatch a launch in x and y (and index with @builtin(num_workgroups)), or a larger workgroupSize`,
    );
  }
  const dispatch = def.wgsl.dispatch ? def.wgsl.dispatch(io) : size === 0 ? ([0, 0, 0] as const) : grid1d(groups);
  if (!Array.isArray(dispatch) || dispatch.length !== 3 || dispatch.some((d) => !Number.isInteger(d) || d < 0 || d > 65535)) {
    throw new Error(`${def.name}: wgsl.dispatch must give three integer workgroup counts in [0, 65535], got ${JSON.stringify(dispatch)}`);
  }
  return {
    label: `custom_${def.name}`,
    code: `${marker(def.name)}\n${source}`,
    workgroupSize: [ws[0], ws[1], ws[2]],
    dispatch: [dispatch[0]!, dispatch[1]!, dispatch[2]!],
    uniforms: new Uint32Array(0),
  };
}
