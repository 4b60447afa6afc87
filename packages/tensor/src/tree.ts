// Pytrees: nested arrays and plain objects whose leaves are tensors (or anything else). `jit`
// flattens its arguments and results with these, so a params record or a list of tensors is one
// argument, and rebuilds results of the same structure.

import { Tensor } from './tensor.js';

/** The structure of a pytree: where its leaves sit. */
export type TreeDef =
  | { readonly kind: 'leaf' }
  | { readonly kind: 'array'; readonly children: readonly TreeDef[] }
  | { readonly kind: 'object'; readonly keys: readonly string[]; readonly children: readonly TreeDef[] };

const LEAF: TreeDef = { kind: 'leaf' };

/** Plain objects are containers; class instances (tensors included), functions and primitives are leaves. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Tensor) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * The leaves of `tree` in order (depth first; object keys in insertion order) and its structure.
 * `isLeaf` may stop the descent early (e.g. at random keys, which are arrays).
 */
export function flattenTree(tree: unknown, isLeaf: (value: unknown) => boolean = () => false): { leaves: unknown[]; def: TreeDef } {
  const leaves: unknown[] = [];
  const walk = (value: unknown): TreeDef => {
    if (isLeaf(value)) {
      leaves.push(value);
      return LEAF;
    }
    if (Array.isArray(value)) return { kind: 'array', children: value.map(walk) };
    if (isPlainObject(value)) {
      const keys = Object.keys(value);
      return { kind: 'object', keys, children: keys.map((k) => walk(value[k])) };
    }
    leaves.push(value);
    return LEAF;
  };
  const def = walk(tree);
  return { leaves, def };
}

/** Rebuilds a tree of structure `def` from `leaves` (in flattenTree's order). */
export function unflattenTree(def: TreeDef, leaves: readonly unknown[]): unknown {
  let next = 0;
  const build = (d: TreeDef): unknown => {
    if (d.kind === 'leaf') return leaves[next++];
    if (d.kind === 'array') return d.children.map(build);
    // fromEntries defines each key as an own property: an assignment of '__proto__' set the prototype.
    return Object.fromEntries(d.keys.map((k, i) => [k, build(d.children[i]!)]));
  };
  const tree = build(def);
  if (next !== leaves.length) throw new Error(`internal: unflattenTree used ${next} of ${leaves.length} leaves`);
  return tree;
}

/** A compact text of a tree's structure, for cache keys and messages. */
export function treeDefKey(def: TreeDef): string {
  if (def.kind === 'leaf') return '*';
  if (def.kind === 'array') return `[${def.children.map(treeDefKey).join(',')}]`;
  return `{${def.keys.map((k, i) => `${JSON.stringify(k)}:${treeDefKey(def.children[i]!)}`).join(',')}}`;
}

const objectIds = new WeakMap<object, number>();
let nextObjectId = 0;

/** A number naming an object for as long as it lives (for cache keys that compare by identity). */
export function objectId(value: object): number {
  let id = objectIds.get(value);
  if (id === undefined) objectIds.set(value, (id = nextObjectId++));
  return id;
}
