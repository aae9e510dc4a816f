/**
 * ProviderDeps for a client under test against an emulator on a FakeClock: the client, its
 * rate limiter and the emulator share one time line. A limiter wait moves the clock
 * instead of sleeping and is recorded, so a test can assert that a 429 paused the
 * limiter for exactly the Retry-After it carried, without timing anything.
 */
import { RateLimiter, type RateLimit } from "../../../src/providers/transport/rate-limiter.ts";
import type { ProviderDeps } from "../../../src/providers/types.ts";
import type { FakeClock } from "./clock.ts";

export interface FakeTimeDeps {
  readonly deps: ProviderDeps;
  /** Every wait the limiter asked for, in milliseconds, in order. */
  readonly limiterWaits: number[];
}

/** A generous default limit, so only the provider's own answers make the limiter wait. */
export function fakeTimeDeps(clock: FakeClock, limit: RateLimit = { requestsPerSecond: 1000, burst: 1000 }): FakeTimeDeps {
  const limiterWaits: number[] = [];
  const limiter = new RateLimiter(limit, {
    now: () => clock.now(),
    sleep: (ms) => {
      limiterWaits.push(ms);
      clock.advance(ms);
      return Promise.resolve();
    },
  });
  return { deps: { limiter, now: () => clock.now() }, limiterWaits };
}
