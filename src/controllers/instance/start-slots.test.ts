import { describe, expect, it } from "vitest";
import { admit, StartSlots, WAITER_TTL_MS, type StartSlotView } from "./start-slots.ts";

const NOW = 1_000_000;
const STUCK = 120_000;

function view(fields: Partial<StartSlotView> = {}): StartSlotView {
  return { max: 2, stuckTimeoutMs: STUCK, now: NOW, self: { key: "ns/me", createdAt: "2026-01-01T00:00:05Z", linked: false }, holders: [], waiters: [], ...fields };
}

const holder = (key: string, grantedAt = NOW - 1000) => ({ key, grantedAt });
const waiter = (key: string, createdAt: string, askedAt = NOW - 1000, linked = false) => ({ key, createdAt, askedAt, linked });

describe("admit", () => {
  it.each<[string, StartSlotView, boolean]>([
    ["a free slot with nobody waiting is granted", view(), true],
    ["every slot held: wait", view({ holders: [holder("ns/a"), holder("ns/b")] }), false],
    ["one who holds a slot keeps it", view({ holders: [holder("ns/a"), holder("ns/me")] }), true],
    ["a holder past the stuck timeout frees its slot", view({ holders: [holder("ns/a"), holder("ns/b", NOW - STUCK)] }), true],
    ["older waiters go first: one free slot, one older waiter", view({ holders: [holder("ns/a")], waiters: [waiter("ns/old", "2026-01-01T00:00:01Z")] }), false],
    ["older waiters go first: two free slots, one older waiter", view({ waiters: [waiter("ns/old", "2026-01-01T00:00:01Z")] }), true],
    ["a younger waiter does not hold this one back", view({ holders: [holder("ns/a")], waiters: [waiter("ns/young", "2026-01-01T00:00:09Z")] }), true],
    ["same creation second: the key decides", view({ holders: [holder("ns/a")], waiters: [waiter("ns/aa", "2026-01-01T00:00:05Z")] }), false],
    ["a linked waiter goes before an older unlinked one", view({ holders: [holder("ns/a")], waiters: [waiter("ns/young", "2026-01-01T00:00:09Z", NOW - 1000, true)] }), false],
    [
      "a linked session goes before older unlinked waiters",
      view({ self: { key: "ns/me", createdAt: "2026-01-01T00:00:05Z", linked: true }, holders: [holder("ns/a")], waiters: [waiter("ns/old", "2026-01-01T00:00:01Z")] }),
      true,
    ],
    ["a waiter that stopped asking no longer counts", view({ holders: [holder("ns/a")], waiters: [waiter("ns/old", "2026-01-01T00:00:01Z", NOW - WAITER_TTL_MS)] }), true],
  ])("%s", (_sentence, input, admitted) => {
    expect(admit(input).admitted).toBe(admitted);
  });

  it("says how many start and how many wait ahead", () => {
    expect(admit(view({ holders: [holder("ns/a"), holder("ns/b")], waiters: [waiter("ns/old", "2026-01-01T00:00:01Z")] }))).toEqual({ admitted: false, starting: 2, ahead: 1 });
  });
});

describe("StartSlots", () => {
  const limits = (now: number) => ({ max: 2, stuckTimeoutMs: STUCK, now });
  const self = (key: string, second: number, linked = false) => ({ key, createdAt: `2026-01-01T00:00:0${second}Z`, linked });

  it("hands slots out in creation order as they free, whoever asks first", () => {
    const slots = new StartSlots();
    const ask = (key: string, second: number, now = NOW) => slots.acquire(slots.view("p", self(key, second), limits(now)), "p");
    expect([ask("ns/a", 1), ask("ns/b", 2)]).toEqual([true, true]);
    // Full: d (younger) and c (older) wait in line.
    expect([ask("ns/d", 4), ask("ns/c", 3)]).toEqual([false, false]);
    slots.release("p", "ns/a");
    // d asks first after the release, but c is older.
    expect([ask("ns/d", 4), ask("ns/c", 3), ask("ns/d", 4)]).toEqual([false, true, false]);
    expect(slots.holds("p", "ns/c", NOW, STUCK)).toBe(true);
  });

  it("remembers that a waiting session was linked after its status lost the phone number", () => {
    const slots = new StartSlots();
    slots.acquire(slots.view("p", self("ns/a", 1), { ...limits(NOW), max: 1 }), "p");
    expect(slots.acquire(slots.view("p", self("ns/linked", 9, true), { ...limits(NOW), max: 1 }), "p")).toBe(false);
    expect(slots.acquire(slots.view("p", self("ns/new", 2), { ...limits(NOW), max: 1 }), "p")).toBe(false);
    slots.release("p", "ns/a");
    // Asked again with its phone number gone from the status: still first in line.
    expect(slots.acquire(slots.view("p", self("ns/new", 2), { ...limits(NOW), max: 1 }), "p")).toBe(false);
    expect(slots.acquire(slots.view("p", self("ns/linked", 9), { ...limits(NOW), max: 1 }), "p")).toBe(true);
  });

  it("starts the stuck timer when the slot is granted, not when it was asked for", () => {
    const slots = new StartSlots();
    const ask = (key: string, now: number) => slots.acquire(slots.view("p", self(key, 1), { max: 1, stuckTimeoutMs: STUCK, now }), "p");
    expect(ask("ns/a", NOW)).toBe(true);
    expect(ask("ns/b", NOW)).toBe(false);
    // a boots for longer than the stuck timeout: its slot ends, b gets one, timed from now.
    expect(ask("ns/b", NOW + STUCK)).toBe(true);
    expect(slots.holds("p", "ns/b", NOW + STUCK + STUCK - 1, STUCK)).toBe(true);
    // Asking again while holding keeps the first grant time.
    expect(ask("ns/b", NOW + STUCK + 1000)).toBe(true);
    expect(slots.holds("p", "ns/b", NOW + 2 * STUCK, STUCK)).toBe(false);
  });
});

describe("StartSlots after a gateway restart", () => {
  const limits = (now: number) => ({ max: 1, stuckTimeoutMs: STUCK, now });
  const self = (key: string, second: number, linked = false) => ({ key, createdAt: `2026-01-01T00:00:0${second}Z`, linked });

  it("sessions put in line before they ask go linked first, whoever asks first; one that wants no start leaves the line", () => {
    const slots = new StartSlots();
    slots.enqueue("p", [self("ns/old", 1), self("ns/linked", 5, true), self("ns/running", 2, true)], NOW);
    // The unlinked one asks first, but the linked ones are in line already.
    expect(slots.acquire(slots.view("p", self("ns/old", 1), limits(NOW)), "p")).toBe(false);
    // ns/running was found running: it leaves the line, and ns/linked is first.
    slots.withdraw("p", "ns/running");
    expect(slots.acquire(slots.view("p", self("ns/linked", 5), limits(NOW)), "p")).toBe(true);
    expect(slots.load("p", NOW, STUCK)).toEqual({ starting: 1, waiting: 1 });
    slots.release("p", "ns/linked");
    expect(slots.waitingSince("p", "ns/old")).toBe(NOW);
    expect(slots.acquire(slots.view("p", self("ns/old", 1), limits(NOW + 5000)), "p")).toBe(true);
    expect(slots.load("p", NOW + 5000, STUCK)).toEqual({ starting: 1, waiting: 0 });
  });
  it("names the waiters a freed slot admits, in line order, so they can be woken at once", () => {
    const slots = new StartSlots();
    const ask = (key: string, second: number, linked = false) => slots.acquire(slots.view("p", self(key, second, linked), { ...limits(NOW), max: 2 }), "p");
    expect([ask("ns/a", 1), ask("ns/b", 2), ask("ns/d", 4), ask("ns/c", 3), ask("ns/linked", 9, true)]).toEqual([true, true, false, false, false]);
    expect(slots.nextInLine("p", NOW, STUCK)).toEqual([]);
    expect(slots.release("p", "ns/a")).toBe(true);
    expect(slots.release("p", "ns/a")).toBe(false);
    expect(slots.nextInLine("p", NOW, STUCK)).toEqual(["ns/linked"]);
    slots.release("p", "ns/b");
    expect(slots.nextInLine("p", NOW, STUCK)).toEqual(["ns/linked", "ns/c"]);
    // A waiter that stopped asking is not woken.
    expect(slots.nextInLine("p", NOW + WAITER_TTL_MS, STUCK)).toEqual([]);
  });

  it("forgets a deleted instance: its slot is free and it leaves the line", () => {
    const slots = new StartSlots();
    const ask = (key: string, second: number) => slots.acquire(slots.view("p", self(key, second), { ...limits(NOW), max: 1 }), "p");
    expect([ask("ns/a", 1), ask("ns/b", 2), ask("ns/c", 3)]).toEqual([true, false, false]);
    expect(slots.forget("ns/a")).toEqual(["p"]);
    expect(slots.forget("ns/b")).toEqual([]);
    expect(slots.holds("p", "ns/a", NOW, STUCK)).toBe(false);
    expect(slots.nextInLine("p", NOW, STUCK)).toEqual(["ns/c"]);
    expect(ask("ns/c", 3)).toBe(true);
  });
});
