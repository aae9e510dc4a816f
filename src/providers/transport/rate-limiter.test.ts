import { describe, expect, it } from "vitest";
import { RateLimiter, REFILL_SHARE, type Clock } from "./rate-limiter.ts";

/** Virtual time: sleeping moves the clock. Valid because the limiter serves one waiter at a time. */
function virtualClock(): Clock & { time: number } {
  const clock = {
    time: 0,
    now: () => clock.time,
    sleep: async (ms: number) => {
      clock.time += ms;
    },
  };
  return clock;
}

function busiest(times: number[], windowMs: number): number {
  let most = 0;
  for (let start = 0, end = 0; start < times.length; start++) {
    while (end < times.length && (times[end] as number) < (times[start] as number) + windowMs) end++;
    most = Math.max(most, end - start);
  }
  return most;
}

describe("RateLimiter", () => {
  it.each([
    [50, 10, 500],
    [10, 20, 200],
    [1, 1, 20],
  ])("at %i/s with burst %i, %i requests stay below burst + rate in any second, with room for arrival jitter", async (rate, burst, count) => {
    const clock = virtualClock();
    const limiter = new RateLimiter({ requestsPerSecond: rate, burst }, clock);
    const times: number[] = [];
    await Promise.all(Array.from({ length: count }, () => limiter.acquire().then(() => times.push(clock.now()))));
    expect(times).toHaveLength(count);
    expect(busiest(times, 1000)).toBeLessThanOrEqual(burst + rate);
    // Sent a few milliseconds closer, the requests of the busiest second still fit.
    expect(busiest(times, 1020)).toBeLessThanOrEqual(burst + rate);
    // And it is not slower than the margin makes it.
    expect(clock.now()).toBeLessThanOrEqual(Math.ceil(((count - burst) / (rate * REFILL_SHARE)) * 1000) + count);
  });

  it("a pause (429 Retry-After) holds every waiter until it has passed", async () => {
    const clock = virtualClock();
    const limiter = new RateLimiter({ requestsPerSecond: 100, burst: 100 }, clock);
    limiter.pauseFor(2000);
    const times: number[] = [];
    await Promise.all(Array.from({ length: 5 }, () => limiter.acquire().then(() => times.push(clock.now()))));
    expect(Math.min(...times)).toBeGreaterThanOrEqual(2000);
  });

  it("serves waiters in the order they came", async () => {
    const limiter = new RateLimiter({ requestsPerSecond: 5, burst: 1 }, virtualClock());
    const order: number[] = [];
    await Promise.all(Array.from({ length: 10 }, (_, index) => limiter.acquire().then(() => order.push(index))));
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });
});

describe("RateLimiter bounds", () => {
  it("obeys a provider's pause only up to its ceiling", async () => {
    const clock = virtualClock();
    const limiter = new RateLimiter({ requestsPerSecond: 100, burst: 100 }, { clock, maxPauseMs: 60_000 });
    expect(limiter.pauseFor(1e13)).toBe(60_000);
    await limiter.acquire();
    // The bucket starts empty after a pause: the first token comes one refill later.
    expect(clock.now()).toBeGreaterThanOrEqual(60_000);
    expect(clock.now()).toBeLessThan(61_000);
  });

  it("refuses at once, with the time to come back, a pause longer than a caller may wait", async () => {
    const clock = virtualClock();
    const limiter = new RateLimiter({ requestsPerSecond: 100, burst: 100 }, { clock, maxWaitMs: 5000, name: "wappfy" });
    limiter.pauseFor(86_400_000);
    await expect(limiter.acquire()).rejects.toMatchObject({ kind: "RateLimited", retryAfterMs: 86_400_000 });
    await expect(limiter.passGate()).rejects.toMatchObject({ kind: "RateLimited", retryAfterMs: 86_400_000 });
    // Nothing slept: the caller's worker is free at once.
    expect(clock.now()).toBe(0);
  });

  it("gives a waiter whose token is further away than its deadline RateLimited instead of a long sleep", async () => {
    const clock = virtualClock();
    const limiter = new RateLimiter({ requestsPerSecond: 1, burst: 1 }, { clock, maxWaitMs: 2500 });
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => limiter.acquire()));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(["fulfilled", "fulfilled", "fulfilled", "rejected", "rejected", "rejected"]);
    expect(clock.now()).toBeLessThanOrEqual(2500);
  });
});
