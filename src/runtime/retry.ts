/**
 * Time and retries for every loop that talks to a server: one Clock, one backoff formula
 * (exponential, capped, jittered), one retry helper that honours the server's own wait
 * (Retry-After), and the clamp every timer a server can choose goes through.
 */

/** Where time comes from: read it, and wait for it to pass. Tests give a virtual one. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Resolves after `ms` (clamped to what a timer can hold). */
  sleep(ms: number): Promise<void>;
}

/**
 * The longest delay a Node timer holds: setTimeout turns a larger one into 1 ms, so a
 * server asking for a longer wait would get a spin instead.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay a timer can hold: 0 for negative or unreadable values, at most MAX_TIMER_MS. */
export function clampDelay(ms: number): number {
  if (!(ms > 0)) return 0;
  return Math.min(MAX_TIMER_MS, Math.ceil(ms));
}

/**
 * Wall-clock time. Sleeps keep the process alive, as any pending work does: a command-line
 * read waiting out a Retry-After must not end the process with nothing said. (Every wait
 * a provider can impose on a pass is bounded, so none holds a stopping operator for long.)
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, clampDelay(ms))),
};

export interface BackoffPolicy {
  /** The wait after the first failure. */
  readonly baseMs: number;
  /** No wait is longer (before jitter). */
  readonly maxMs: number;
  /**
   * Spread as a share of the wait (0.5: ±50 %), so many clients failing together do not all
   * come back in the same instant; 0 for an exact wait.
   */
  readonly jitter?: number;
}

/** The wait before try `attempt + 1` after `attempt + 1` failures: base × 2^attempt, capped, jittered. */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const raw = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt));
  const spread = policy.jitter ?? 0;
  return Math.round(spread === 0 ? raw : raw * (1 - spread + 2 * spread * random()));
}

export interface RetryOptions {
  /** Tries after the first. */
  readonly retries: number;
  readonly backoff: BackoffPolicy;
  /** Whether a failure is worth another try. */
  readonly shouldRetry: (error: unknown) => boolean;
  /** The server's own wait for a failure (Retry-After); it replaces a shorter backoff. */
  readonly retryAfterMs?: (error: unknown) => number | undefined;
  /** A wait longer than this is not taken: the failure is the answer (the caller comes back later). */
  readonly maxWaitMs?: number;
  /** The tries and waits together end within this long: a wait that would pass it is not taken. */
  readonly budgetMs?: number;
  readonly clock?: Clock;
  /** Ends the retries at once: the pending wait is cut and the signal's reason thrown. */
  readonly signal?: AbortSignal;
  readonly random?: () => number;
}

/**
 * Runs `operation` until it succeeds, a failure is not worth another try, the tries are
 * spent, or the next wait is too long; then throws the last failure. Each wait is the
 * backoff or the server's Retry-After, whichever is longer.
 */
export async function retry<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await operation(attempt);
    } catch (error) {
      if (attempt >= options.retries || !options.shouldRetry(error)) throw error;
      const wait = Math.max(backoffDelay(options.backoff, attempt, options.random), options.retryAfterMs?.(error) ?? 0);
      if (options.maxWaitMs !== undefined && wait > options.maxWaitMs) throw error;
      if (options.budgetMs !== undefined && clock.now() - started + wait >= options.budgetMs) throw error;
      await abortable(clock.sleep(wait), options.signal);
    }
  }
}

function abortable(wait: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return wait;
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    wait.then(
      () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Parses Retry-After (seconds or an HTTP date) into milliseconds from now.
 * Returns undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined || value.trim() === "") return undefined;
  const seconds = Number(value);
  // A number too large to hold ("1e400") is still a wait, the longest there is: the ceiling applies later.
  if (!Number.isNaN(seconds)) return Math.max(0, Math.round(seconds * 1000));
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
