// A tensor's values as text, for Node's console.log / util.inspect (Tensor's inspect hook).
// Laid out as PyTorch prints tensors: nested brackets, one row per line, every entry of one width;
// past SUMMARY_THRESHOLD elements each axis shows its first and last EDGE_ITEMS entries around
// '...' (torch.set_printoptions' defaults: threshold 1000, edgeitems 3).

import type { DType, TypedArray } from './dtype.js';

/** Past this many elements the values are summarised (PyTorch's default threshold). */
export const SUMMARY_THRESHOLD = 1000;
/** Entries shown at each end of a summarised axis (PyTorch's default edgeitems). */
export const EDGE_ITEMS = 3;

/** The indices of an axis of `n` entries to show ('...' as -1 where entries are left out). */
function shown(n: number, summarise: boolean): number[] {
  if (!summarise || n <= 2 * EDGE_ITEMS) return Array.from({ length: n }, (_, i) => i);
  return [...Array.from({ length: EDGE_ITEMS }, (_, i) => i), -1, ...Array.from({ length: EDGE_ITEMS }, (_, i) => n - EDGE_ITEMS + i)];
}

/**
 * How the shown float values are written, chosen over all of them (as PyTorch does): whole numbers
 * as such ("3."), moderate magnitudes with four decimals, others in exponent notation (a largest
 * magnitude over 1e8 or over 1,000 times the smallest nonzero one, whole numbers too, or a nonzero
 * one under 1e-4 among numbers not all whole), with an exponent of two digits at least ("1.0000e-06").
 */
function floatWriter(values: readonly number[]): (x: number) => string {
  const finite = values.filter((x) => Number.isFinite(x));
  const special = (x: number) => (Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf');
  const max = finite.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const min = finite.reduce((m, x) => (x === 0 ? m : Math.min(m, Math.abs(x))), Infinity);
  // toFixed and toExponential drop the sign of −0 ('0.0000'): it is written back, as PyTorch shows it.
  const sign = (x: number) => (Object.is(x, -0) ? '-' : '');
  // PyTorch's _Formatter: a largest over 1e8, or over 1,000 times the smallest nonzero, takes
  // exponents whole numbers or not ([1, 2000] too); a smallest nonzero under 1e-4 only when not whole.
  const wide = max > 1e8 || (min !== Infinity && max / min > 1000);
  if (finite.every((x) => Number.isInteger(x)) && !wide) return (x) => (Number.isFinite(x) ? `${sign(x)}${x.toFixed(0)}.` : special(x));
  if (!wide && (min === Infinity || min >= 1e-4)) return (x) => (Number.isFinite(x) ? sign(x) + x.toFixed(4) : special(x));
  return (x) => (Number.isFinite(x) ? sign(x) + x.toExponential(4).replace(/e([+-])(\d)$/, 'e$10$2') : special(x));
}

/**
 * `data` (row-major, of `shape` and `dtype`) as nested brackets, one innermost row per line.
 * `indent` is prefixed to every line but the first.
 */
export function formatValues(data: TypedArray, shape: readonly number[], dtype: DType, indent = ''): string {
  const size = data.length;
  const summarise = size > SUMMARY_THRESHOLD;
  const strides = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
  // The flat indices shown, in order.
  const indices: number[] = [];
  const collect = (d: number, base: number): void => {
    if (d === shape.length) {
      indices.push(base);
      return;
    }
    for (const i of shown(shape[d]!, summarise)) if (i >= 0) collect(d + 1, base + i * strides[d]!);
  };
  if (size > 0) collect(0, 0);
  const values = indices.map((i) => data[i]!);
  const write = dtype === 'bool' ? (x: number) => (x ? 'true' : 'false') : dtype === 'int32' ? (x: number) => `${x}` : floatWriter(values);
  const texts = new Map<number, string>(indices.map((i, k) => [i, write(values[k]!)]));
  // A loop, not Math.max(...spread): a tensor of many short axes shows every entry unsummarised,
  // and ~120k arguments overflowed the stack ([6]*7 threw where torch prints it).
  let width = 0;
  for (const t of texts.values()) if (t.length > width) width = t.length;
  const pad = (t: string) => t.padStart(width);
  if (shape.length === 0) return texts.get(0) ?? '';
  // Each level: entries joined by ', ' (innermost) or ',\n' plus blank lines between blocks.
  const level = (d: number, base: number, prefix: string): string => {
    if (size === 0) return '[]';
    const items = shown(shape[d]!, summarise);
    if (d === shape.length - 1) return `[${items.map((i) => (i < 0 ? '...' : pad(texts.get(base + i)!))).join(', ')}]`;
    const inner = prefix + ' ';
    const sep = `,${'\n'.repeat(shape.length - 1 - d)}${inner}`;
    return `[${items.map((i) => (i < 0 ? '...' : level(d + 1, base + i * strides[d]!, inner))).join(sep)}]`;
  };
  return level(0, 0, indent);
}
