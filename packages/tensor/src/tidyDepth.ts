// How many `tidy` scopes are open now (tensor.ts counts them). Every tensor made inside one is
// disposed when it ends unless the scope returns it, so the arrays made meanwhile come back
// deterministically, not through the garbage collector: the CPU's heap may grow for them as it
// does for a compiled program's intermediates (cpu/wasm/heap.ts, HELD_ARRAY_GROWTH_LIMIT).

let depth = 0;

/** Whether a `tidy` scope is open. */
export function insideTidy(): boolean {
  return depth > 0;
}

/** Runs `fn` counted as inside a `tidy` scope (tensor.ts's `tidy` only). */
export function countedAsTidy<T>(fn: () => T): T {
  depth++;
  try {
    return fn();
  } finally {
    depth--;
  }
}
