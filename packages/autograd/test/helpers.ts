// Shared by the autograd tests.

/** The message of the error `fn` throws (fails the test if it throws nothing). */
export function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error, but none was thrown');
}
