/**
 * A token bucket shared by every instance that talks to one provider, so the
 * provider's rateLimit holds however many instances reconcile at once. Waiters are
 * served in arrival order.
 *
 * It is also the provider's one pause gate: a 429 (or a 503 with Retry-After) closes it
 * until the time the provider gave, bounded by maxPauseMs, and nothing is sent to the
 * provider while it is closed, whichever path the request comes from (health checks,
 * retries, QR fetches). A caller never waits longer than maxWaitMs for the gate or a
 * token: past that it fails at once with RateLimited and the time to come back, so a pass
 * never holds a worker through a provider's pause.
 */
import { clampDelay, systemClock, type Clock } from "../../runtime/retry.ts";
import { ProviderError } from "../errors.ts";

export type { Clock } from "../../runtime/retry.ts";
export { systemClock } from "../../runtime/retry.ts";

/**
 * Tokens come back at this share of requestsPerSecond. A provider counts requests as they
 * arrive, and requests sent a whole second apart can arrive a few milliseconds closer; the
 * margin keeps what it sees in any second within rate + burst.
 */
export const REFILL_SHARE = 0.98;

export interface RateLimit {
  readonly requestsPerSecond: number;
  readonly burst: number;
}

export interface RateLimiterOptions {
  readonly clock?: Clock;
  /**
   * Longest a caller waits for the gate or a token; a longer wait fails at once with
   * RateLimited carrying the time to come back. Default: no bound.
   */
  readonly maxWaitMs?: number;
  /** Longest pause a provider's Retry-After or X-RateLimit-Reset may impose (PROVIDER_MAX_PAUSE). Default: no ceiling. */
  readonly maxPauseMs?: number;
  /** Who is paused, for messages (the provider type). */
  readonly name?: string;
}

export class RateLimiter {
  private limit: RateLimit;
  private readonly clock: Clock;
  private readonly maxWaitMs: number;
  /** The ceiling on a provider-imposed pause. */
  readonly maxPauseMs: number;
  private readonly name: string;
  private tokens: number;
  private refilledAt: number;
  private pausedUntil = 0;
  /** Tail of the FIFO chain: each acquire waits for the previous one to get its token. */
  private queue: Promise<void> = Promise.resolve();
  private waiting = 0;

  /** `options` may be a bare Clock (tests that only move time). */
  constructor(limit: RateLimit, options: RateLimiterOptions | Clock = {}) {
    const settings: RateLimiterOptions = "now" in options ? { clock: options } : options;
    this.limit = normalise(limit);
    this.clock = settings.clock ?? systemClock;
    this.maxWaitMs = settings.maxWaitMs ?? Number.POSITIVE_INFINITY;
    this.maxPauseMs = settings.maxPauseMs ?? Number.POSITIVE_INFINITY;
    this.name = settings.name ?? "the provider";
    this.tokens = this.limit.burst;
    this.refilledAt = this.clock.now();
  }

  /** Changes the limit in place (a WhatsAppProvider edit), keeping waiters in line. */
  update(limit: RateLimit): void {
    const next = normalise(limit);
    if (next.requestsPerSecond === this.limit.requestsPerSecond && next.burst === this.limit.burst) return;
    this.refill();
    this.limit = next;
    this.tokens = Math.min(this.tokens, next.burst);
  }

  /** Requests waiting for a token right now. */
  get pending(): number {
    return this.waiting;
  }

  /**
   * Closes the gate for `ms` from now (Retry-After, X-RateLimit-Reset), at most maxPauseMs;
   * returns the pause taken. An earlier, longer pause stays.
   */
  pauseFor(ms: number): number {
    const bounded = this.boundPause(ms);
    this.pausedUntil = Math.max(this.pausedUntil, this.clock.now() + bounded);
    this.tokens = 0;
    return bounded;
  }

  /** A provider-chosen wait as this limiter honours it: within 0..maxPauseMs. */
  boundPause(ms: number): number {
    return Math.min(this.maxPauseMs, Math.max(0, Number.isNaN(ms) ? 0 : ms));
  }

  /** How long the gate stays closed from now; 0 when open. */
  get pauseRemainingMs(): number {
    return Math.max(0, this.pausedUntil - this.clock.now());
  }

  /**
   * Resolves once the gate is open, without taking a token: a caller waits out a short
   * pause here before it takes anything shared (an in-flight slot). A pause longer than
   * maxWaitMs fails at once with RateLimited.
   */
  async passGate(): Promise<void> {
    for (;;) {
      const remaining = this.pauseRemainingMs;
      if (remaining <= 0) return;
      if (remaining > this.maxWaitMs) throw this.paused(remaining);
      await this.clock.sleep(remaining);
    }
  }

  /**
   * Resolves when the caller may send one request; rejects with RateLimited when that is
   * further away than maxWaitMs (the gate closed for longer, or the bucket that far behind).
   */
  acquire(): Promise<void> {
    this.waiting += 1;
    const deadline = this.clock.now() + this.maxWaitMs;
    const turn = this.queue.then(() => this.takeToken(deadline));
    this.queue = turn.catch(() => undefined);
    return turn.finally(() => {
      this.waiting -= 1;
    });
  }

  /**
   * Waiters take their turn in arrival order and each sleeps no later than its own deadline,
   * so a waiter's turn comes before its deadline has long passed: it is checked then.
   */
  private async takeToken(deadline: number): Promise<void> {
    for (;;) {
      const now = this.clock.now();
      if (now < this.pausedUntil) {
        if (this.pausedUntil > deadline) throw this.paused(this.pausedUntil - now);
        await this.clock.sleep(this.pausedUntil - now);
        continue;
      }
      this.refill();
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      const missing = 1 - this.tokens;
      const wait = Math.ceil((missing / (this.limit.requestsPerSecond * REFILL_SHARE)) * 1000);
      if (now + wait > deadline) {
        throw new ProviderError("RateLimited", `${this.name}'s rateLimit (spec.rateLimit) has no request free for ${wait} ms; trying again then`, {
          retryAfterMs: wait,
        });
      }
      await this.clock.sleep(wait);
    }
  }

  private paused(remainingMs: number): ProviderError {
    const until = new Date(this.clock.now() + remainingMs).toISOString();
    return new ProviderError("RateLimited", `${this.name} asked for a pause until ${until}; nothing is sent to it before`, {
      retryAfterMs: clampDelay(remainingMs),
    });
  }

  private refill(): void {
    const now = this.clock.now();
    const from = Math.max(this.refilledAt, this.pausedUntil);
    if (now > from) {
      this.tokens = Math.min(this.limit.burst, this.tokens + ((now - from) / 1000) * this.limit.requestsPerSecond * REFILL_SHARE);
    }
    this.refilledAt = Math.max(now, this.refilledAt);
  }
}

function normalise(limit: RateLimit): RateLimit {
  return {
    requestsPerSecond: Math.max(0.001, limit.requestsPerSecond),
    burst: Math.max(1, Math.floor(limit.burst)),
  };
}
