/**
 * A clock the emulators read time from and schedule their state changes on.
 *
 * Emulators never call Date.now() or setTimeout() directly: with `realClock` they run
 * on their own in real time (manual runs), with a `FakeClock` a test moves time with
 * `advance(ms)` and every timer that falls due fires synchronously, in order, with
 * `now()` equal to its due time, so the resulting state (and webhooks) is exact.
 */

export interface Timer {
  /** Stops the timer from firing; harmless when it already fired or was cancelled. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `fn` once, `delayMs` from now (0 = on the next tick for real time). */
  schedule(delayMs: number, fn: () => void): Timer;
}

/** Wall-clock time. Timers are unref'd so a forgotten emulator never keeps a process alive. */
export const realClock: Clock = {
  now: () => Date.now(),
  schedule(delayMs, fn) {
    const handle = setTimeout(fn, Math.max(0, delayMs));
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};

interface PendingTimer {
  readonly due: number;
  /** Insertion order, so timers due at the same instant fire in the order scheduled. */
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/** 2026-07-15T12:00:00Z: a fixed, recognisable default start so tests are reproducible. */
export const FAKE_CLOCK_DEFAULT_START = Date.UTC(2026, 6, 15, 12, 0, 0);

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: PendingTimer[] = [];

  constructor(startMs: number = FAKE_CLOCK_DEFAULT_START) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  schedule(delayMs: number, fn: () => void): Timer {
    const timer: PendingTimer = { due: this.#now + Math.max(0, delayMs), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /**
   * Moves time forward by `ms`, firing every timer due on the way (including timers
   * scheduled by those timers). If a timer throws, the remaining ones still run and
   * the first error is rethrown at the end.
   */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`FakeClock.advance: ms must be >= 0, got ${ms}`);
    const target = this.#now + ms;
    let firstError: unknown;
    let failed = false;
    for (let next = this.#nextDue(target); next; next = this.#nextDue(target)) {
      this.#timers.splice(this.#timers.indexOf(next), 1);
      this.#now = next.due;
      try {
        next.fn();
      } catch (error) {
        if (!failed) firstError = error;
        failed = true;
      }
    }
    this.#now = target;
    if (failed) throw firstError;
  }

  /** Number of timers still waiting to fire. */
  pendingTimers(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /** When the next timer fires, or undefined when none is pending. */
  nextTimerAt(): number | undefined {
    return this.#nextDue(Number.POSITIVE_INFINITY)?.due;
  }

  #nextDue(limit: number): PendingTimer | undefined {
    this.#timers = this.#timers.filter((t) => !t.cancelled);
    let best: PendingTimer | undefined;
    for (const t of this.#timers) {
      if (t.due > limit) continue;
      if (!best || t.due < best.due || (t.due === best.due && t.seq < best.seq)) best = t;
    }
    return best;
  }
}
