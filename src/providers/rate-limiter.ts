/**
 * A token bucket shared by every instance that talks to one provider, so the
 * provider's rateLimit holds however many instances reconcile at once. Waiters are
 * served in arrival order. A 429 pauses the whole bucket until Retry-After has passed.
 */

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

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref?.()),
};

export class RateLimiter {
  private limit: RateLimit;
  private readonly clock: Clock;
  private tokens: number;
  private refilledAt: number;
  private pausedUntil = 0;
  /** Tail of the FIFO chain: each acquire waits for the previous one to get its token. */
  private queue: Promise<void> = Promise.resolve();
  private waiting = 0;

  constructor(limit: RateLimit, clock: Clock = systemClock) {
    this.limit = normalise(limit);
    this.clock = clock;
    this.tokens = this.limit.burst;
    this.refilledAt = clock.now();
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

  /** Stops handing out tokens until `ms` from now (Retry-After, X-RateLimit-Reset). */
  pauseFor(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.clock.now() + ms);
    this.tokens = 0;
  }

  /** Resolves when the caller may send one request. */
  acquire(): Promise<void> {
    this.waiting += 1;
    const turn = this.queue.then(() => this.takeToken());
    this.queue = turn.catch(() => undefined);
    return turn.finally(() => {
      this.waiting -= 1;
    });
  }

  private async takeToken(): Promise<void> {
    for (;;) {
      const now = this.clock.now();
      if (now < this.pausedUntil) {
        await this.clock.sleep(this.pausedUntil - now);
        continue;
      }
      this.refill();
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      const missing = 1 - this.tokens;
      await this.clock.sleep(Math.ceil((missing / (this.limit.requestsPerSecond * REFILL_SHARE)) * 1000));
    }
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
