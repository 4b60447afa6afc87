// The index-error record: how gather and scatterAdd kernels report an index outside [0, extent)
// that only the device knows (computed on the device, or uploaded without a host copy). Each
// device has one small record buffer; the first bad index claims it, the runtime copies it out
// with the next read (same submit, same map) and clears it, and the read throws the CPU
// backend's error. Both sides of the protocol, the WGSL writer and the host reader, live here.

import { indexOutOfRange } from '@scorch/tensor';

/** Words: [0] claimed (0 = no error), [1] primitive code, [2] the index (i32 bits), [3] axis, [4] extent. */
export const INDEX_ERROR_RECORD_BYTES = 20;

const PRIMITIVE_CODES = { gather: 1, scatterAdd: 2 } as const;
export type IndexCheckedPrimitive = keyof typeof PRIMITIVE_CODES;

/**
 * The record's binding and `report_bad_index`. Exactly one invocation fills the record: the
 * first one whose atomicMax sees it unclaimed (of the earliest kernel with a bad index since
 * the record was last read). No loop: on llvmpipe every loop iteration, even one all lanes
 * skip, counts against the 65,535 an invocation may run (see SCATTER_ADD_SPAN).
 */
export function indexErrorDeclaration(binding: number): string {
  return `struct IndexErrorRecord { claimed: atomic<u32>, code: u32, bad_index: i32, on_axis: u32, of_extent: u32 }
@group(0) @binding(${binding}) var<storage, read_write> index_error: IndexErrorRecord;
fn report_bad_index(code: u32, bad_index: i32, on_axis: u32, of_extent: u32) {
  if (atomicMax(&index_error.claimed, 1u) == 0u) {
    index_error.code = code;
    index_error.bad_index = bad_index;
    index_error.on_axis = on_axis;
    index_error.of_extent = of_extent;
  }
}
`;
}

/** WGSL statement reporting `index` (an i32 expression) as out of range for `axis` of `extent` (a u32 expression). */
export function reportBadIndex(prim: IndexCheckedPrimitive, index: string, axis: number, extent: string): string {
  return `report_bad_index(${PRIMITIVE_CODES[prim]}u, ${index}, ${axis}u, ${extent});`;
}

/** The error a record holds, or null when it holds none. */
export function indexErrorOf(record: Uint32Array): RangeError | null {
  if (record[0] === 0) return null;
  const code = record[1]!;
  const prim = (Object.keys(PRIMITIVE_CODES) as IndexCheckedPrimitive[]).find((p) => PRIMITIVE_CODES[p] === code);
  if (!prim) return new RangeError(`webgpu: the index-error record holds an unknown primitive code ${code} (a corrupted record)`);
  return indexOutOfRange(prim, record[2]! | 0, record[3]!, record[4]!);
}
