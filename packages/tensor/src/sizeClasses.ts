// Pools by size class (the CPU backend's typed arrays, the WebGPU runtime's buffers) keep free
// items per size and stamp each class with the tick of its last use; past their limit they drop
// the classes used least recently. This is the one scan both pools run to find them.

/**
 * Removes from `maps` and returns the size class used least recently (smallest `used`), other than
 * `keep`, as [size, class]; the empty classes it passes (`isEmpty`) are forgotten on the way.
 * Undefined when no other non-empty class is left. A scan of every class: pools run it only when
 * full.
 */
export function removeLeastRecentClass<C extends { readonly used: number }>(
  maps: readonly Map<number, C>[], keep: C, isEmpty: (cls: C) => boolean,
): [size: number, cls: C] | undefined {
  let oldest: C | undefined;
  let oldestMap: Map<number, C> | undefined;
  let oldestSize = 0;
  for (const map of maps) {
    for (const [size, cls] of map) {
      if (cls === keep) continue;
      if (isEmpty(cls)) {
        map.delete(size);
        continue;
      }
      if (oldest === undefined || cls.used < oldest.used) {
        oldest = cls;
        oldestMap = map;
        oldestSize = size;
      }
    }
  }
  if (oldest === undefined) return undefined;
  oldestMap!.delete(oldestSize);
  return [oldestSize, oldest];
}
