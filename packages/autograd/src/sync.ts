// Transformations run their function synchronously: an async function's work after its first
// `await` would run after the transformation ended (its tracers inactive, its scope closed).

/**
 * Throws a TypeError with `message` when `value` is a Promise (the function was async). The
 * abandoned Promise is given a handler first: its remaining work fails once it runs (a tracer
 * used after its transformation returned), and that rejection must not surface as an unhandled
 * rejection, which ends a Node process, after the caller has already caught this error.
 */
export function refusePromise(value: unknown, message: string): void {
  if (!(value instanceof Promise)) return;
  value.catch(() => undefined);
  throw new TypeError(message);
}
