/** Bounded waiting, without vitest, so plain scripts (bench/chaos.ts) share it with the tests. */

/**
 * Polls until `probe` returns a value (not undefined), or fails after `timeoutMs` with
 * the last value seen. A bound on waiting for the system, not a timing assertion.
 */
export async function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000, everyMs = 150): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `; last error: ${last instanceof Error ? last.message : String(last)}` : ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
