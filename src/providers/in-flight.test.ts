import { describe, expect, it } from "vitest";
import { InFlightLimit } from "./in-flight.ts";

describe("InFlightLimit", () => {
  it("grants up to max slots at once", () => {
    const limit = new InFlightLimit(2);
    const first = limit.tryAcquire();
    expect(limit.tryAcquire()).toBeTypeOf("function");
    expect(limit.tryAcquire()).toBeUndefined();
    first?.();
    expect(limit.tryAcquire()).toBeTypeOf("function");
    expect(limit.inFlight).toBe(2);
  });

  it("wakes waiters when a slot comes free", async () => {
    const limit = new InFlightLimit(1);
    const held = limit.tryAcquire();
    const free = limit.whenFree(5000);
    held?.();
    expect(await free).toBe(true);
  });

  it("tells a waiter when no slot came free in time", async () => {
    const limit = new InFlightLimit(1);
    limit.tryAcquire();
    expect(await limit.whenFree(20)).toBe(false);
  });

  it("giving a slot back twice counts once", () => {
    const limit = new InFlightLimit(1);
    const release = limit.tryAcquire();
    release?.();
    release?.();
    expect(limit.inFlight).toBe(0);
    limit.tryAcquire();
    expect(limit.inFlight).toBe(1);
  });
});
