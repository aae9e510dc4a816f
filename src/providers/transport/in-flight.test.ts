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

  it("hands a freed slot to the longest waiter, one waiter per slot", async () => {
    const limit = new InFlightLimit(1);
    const held = limit.tryAcquire();
    const order: string[] = [];
    const first = limit.acquire(5000).then((release) => (order.push("first"), release));
    const second = limit.acquire(5000).then((release) => (order.push("second"), release));
    expect(limit.tryAcquire()).toBeUndefined(); // a newcomer does not jump the line
    held?.();
    const firstRelease = await first;
    expect(order).toEqual(["first"]);
    expect(limit.inFlight).toBe(1);
    firstRelease?.();
    await second;
    expect(order).toEqual(["first", "second"]);
    expect(limit.inFlight).toBe(1);
  });

  it("tells a waiter when no slot came free in time, and leaves the line", async () => {
    const limit = new InFlightLimit(1);
    const held = limit.tryAcquire();
    expect(await limit.acquire(20)).toBeUndefined();
    expect(limit.waiting).toBe(0);
    held?.();
    expect(limit.inFlight).toBe(0);
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
