import { describe, expect, it } from "vitest";
import { backoffDelay, clampDelay, MAX_TIMER_MS, parseRetryAfter, retry, type Clock } from "./retry.ts";

/** Virtual time: sleeping moves the clock and is recorded. */
function virtualClock(): Clock & { time: number; slept: number[] } {
  const clock = {
    time: 0,
    slept: [] as number[],
    now: () => clock.time,
    sleep: async (ms: number) => {
      clock.slept.push(ms);
      clock.time += ms;
    },
  };
  return clock;
}

class Refused extends Error {
  readonly retryAfterMs: number | undefined;
  constructor(retryAfterMs?: number) {
    super("refused");
    this.retryAfterMs = retryAfterMs;
  }
}

/** An operation that fails with the given errors in turn, then succeeds. */
function failing(errors: Error[]): { run: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    run: async () => {
      const error = errors[calls++];
      if (error) throw error;
      return "done";
    },
    calls: () => calls,
  };
}

const honouring = { shouldRetry: () => true, retryAfterMs: (error: unknown) => (error instanceof Refused ? error.retryAfterMs : undefined) };

describe("backoffDelay", () => {
  it("doubles from the base up to the cap", () => {
    const policy = { baseMs: 100, maxMs: 1000 };
    expect([0, 1, 2, 3, 4, 5].map((attempt) => backoffDelay(policy, attempt))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it("spreads each wait by the jitter share around it", () => {
    const policy = { baseMs: 1000, maxMs: 10_000, jitter: 0.5 };
    expect(backoffDelay(policy, 0, () => 0)).toBe(500);
    expect(backoffDelay(policy, 0, () => 0.5)).toBe(1000);
    expect(backoffDelay(policy, 0, () => 0.999_999)).toBe(1500);
  });
});

describe("clampDelay", () => {
  it("keeps a delay a timer can hold, so a provider's huge wait never becomes a 1 ms spin", () => {
    expect(clampDelay(1e13)).toBe(MAX_TIMER_MS);
    expect(clampDelay(Number.POSITIVE_INFINITY)).toBe(MAX_TIMER_MS);
    expect(clampDelay(-5)).toBe(0);
    expect(clampDelay(Number.NaN)).toBe(0);
    expect(clampDelay(1500)).toBe(1500);
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds, an HTTP date, and a number too large to hold as the longest wait", () => {
    expect(parseRetryAfter("3", 0)).toBe(3000);
    expect(parseRetryAfter("1e10", 0)).toBe(1e13);
    expect(parseRetryAfter("1e400", 0)).toBe(Number.POSITIVE_INFINITY);
    expect(parseRetryAfter("Thu, 01 Jan 1970 00:00:10 GMT", 4000)).toBe(6000);
    expect(parseRetryAfter("soon", 0)).toBeUndefined();
  });
});

describe("retry", () => {
  it("waits the backoff between tries and returns the first success", async () => {
    const clock = virtualClock();
    const operation = failing([new Refused(), new Refused()]);
    await expect(retry(operation.run, { retries: 3, backoff: { baseMs: 200, maxMs: 2000 }, clock, ...honouring })).resolves.toBe("done");
    expect(operation.calls()).toBe(3);
    expect(clock.slept).toEqual([200, 400]);
  });

  it("waits the server's Retry-After when it is longer than the backoff", async () => {
    const clock = virtualClock();
    const operation = failing([new Refused(3000), new Refused(100)]);
    await retry(operation.run, { retries: 3, backoff: { baseMs: 200, maxMs: 2000 }, clock, ...honouring });
    expect(clock.slept).toEqual([3000, 400]);
  });

  it("gives the failure back instead of waiting longer than maxWaitMs", async () => {
    const clock = virtualClock();
    const operation = failing([new Refused(60_000)]);
    await expect(retry(operation.run, { retries: 3, backoff: { baseMs: 200, maxMs: 2000 }, maxWaitMs: 10_000, clock, ...honouring })).rejects.toBeInstanceOf(Refused);
    expect(operation.calls()).toBe(1);
    expect(clock.slept).toEqual([]);
  });

  it("stops when a failure is not worth another try, or the tries are spent", async () => {
    const clock = virtualClock();
    const once = failing([new Refused(), new Refused()]);
    await expect(retry(once.run, { retries: 3, backoff: { baseMs: 1, maxMs: 1 }, clock, shouldRetry: () => false })).rejects.toBeInstanceOf(Refused);
    expect(once.calls()).toBe(1);
    const spent = failing([new Refused(), new Refused(), new Refused()]);
    await expect(retry(spent.run, { retries: 1, backoff: { baseMs: 1, maxMs: 1 }, clock, ...honouring })).rejects.toBeInstanceOf(Refused);
    expect(spent.calls()).toBe(2);
  });

  it("does not start a wait that would end past the budget", async () => {
    const clock = virtualClock();
    const operation = failing([new Refused(), new Refused()]);
    await expect(retry(operation.run, { retries: 5, backoff: { baseMs: 600, maxMs: 5000 }, budgetMs: 1000, clock, ...honouring })).rejects.toBeInstanceOf(Refused);
    expect(operation.calls()).toBe(2);
    expect(clock.slept).toEqual([600]);
  });

  it("ends a pending wait when its signal aborts", async () => {
    const controller = new AbortController();
    const never: Clock = { now: () => 0, sleep: () => new Promise(() => undefined) };
    const pending = retry(failing([new Refused()]).run, { retries: 1, backoff: { baseMs: 1, maxMs: 1 }, clock: never, signal: controller.signal, ...honouring });
    controller.abort(new Error("renew deadline"));
    await expect(pending).rejects.toThrow("renew deadline");
  });
});
