import { describe, expect, it } from "vitest";
import { nextLookMs, qrLatestAt, qrRefreshAt, routineLooksPerSecond, slotOf, type LookInput, type LookSettings } from "./next-look.ts";

const NOW = 1_000_000;
const settings: LookSettings = { pollMs: 30_000, pairingPollMs: 2_000, providerEvents: false };
const look = (overrides: Partial<LookInput>): LookInput => ({ requeue: "poll", now: NOW, startingLooks: 0, ...overrides });

describe("when to look again", () => {
  it.each<[string, LookInput, LookSettings, number]>([
    ["a settled instance waits the poll interval", look({}), settings, 30_000],
    ["a fixed delay is kept", look({ requeue: { afterMs: 60_000 } }), settings, 60_000],
    ["a fixed delay is never under 250 ms", look({ requeue: { afterMs: 0 } }), settings, 250],
    ["after acting, a second look within a second", look({ requeue: "acted" }), settings, 1_000],
    ["a booting session is looked at after 1 s", look({ requeue: "starting" }), settings, 1_000],
    ["then 2 s", look({ requeue: "starting", startingLooks: 1 }), settings, 2_000],
    ["and never less often than the pairing poll", look({ requeue: "starting", startingLooks: 5 }), settings, 2_000],
    ["a pairing session is asked about the scan every pairing poll", look({ requeue: "pairing", qr: { fetchedAt: NOW, validForMs: 20_000 } }), settings, 2_000],
    ["or sooner when its code is due", look({ requeue: "pairing", qr: { fetchedAt: NOW - 4_300, validForMs: 20_000 } }), settings, 700],
    [
      "with provider events, only when the code is due",
      look({ requeue: "pairing", qr: { fetchedAt: NOW, validForMs: 60_000 } }),
      { ...settings, providerEvents: true },
      15_000,
    ],
    ["with provider events and a pairing code, at the poll interval", look({ requeue: "pairing" }), { ...settings, providerEvents: true }, 30_000],
    ["spread 4×, a settled instance waits four poll intervals", look({}), { ...settings, stretch: 4 }, 120_000],
    ["spread 4×, a pairing session is asked every 8 s", look({ requeue: "pairing", qr: { fetchedAt: NOW, validForMs: 240_000 } }), { ...settings, stretch: 4 }, 8_000],
    [
      "but its code is replaced by half its life whatever the spread",
      // Fetched 4 s ago, a 20 s code: due in 1 s, replaced in 6 s at the latest.
      look({ requeue: "pairing", qr: { fetchedAt: NOW - 4_000, validForMs: 20_000 } }),
      { ...settings, stretch: 10 },
      6_000,
    ],
    ["a follow-up look after acting is never spread", look({ requeue: "acted" }), { ...settings, stretch: 10 }, 1_000],
    // NOW is 1,000,000 ms: 10 s into a 30 s interval.
    ["a settled instance waits for its slot of the interval", look({ slot: 0.5 }), settings, 5_000],
    ["on its slot, one whole interval", look({ slot: 1 / 3 }), settings, 30_000],
    ["a look 200 ms late is not carried on: the next slot is 200 ms nearer", look({ slot: 0.98 / 3 }), settings, 29_800],
    ["a slot less than a tenth of the interval away is skipped", look({ slot: 11 / 30 }), settings, 31_000],
    ["spread 4×, the slot is of four poll intervals", look({ slot: 0.5 }), { ...settings, stretch: 4 }, 20_000],
    ["a slot is only for settled looks", look({ requeue: "starting", slot: 0.5 }), settings, 1_000],
  ])("%s", (_name, input, lookSettings, expected) => {
    expect(nextLookMs(input, lookSettings)).toBe(expected);
  });

  it.each<[string, LookInput, LookSettings, number]>([
    ["a settled instance costs one call a poll interval", look({}), settings, 1 / 30],
    ["a pairing one a call every pairing poll", look({ requeue: "pairing", qr: { fetchedAt: NOW, validForMs: 20_000 } }), settings, 0.5],
    ["with provider events, one every code refresh", look({ requeue: "pairing", qr: { fetchedAt: NOW, validForMs: 20_000 } }), { ...settings, providerEvents: true }, 0.2],
    ["a follow-up is no routine", look({ requeue: "acted" }), settings, 0],
  ])("routine cost: %s", (_name, input, lookSettings, expected) => {
    expect(routineLooksPerSecond(input, lookSettings)).toBeCloseTo(expected, 9);
  });

  it("gives uids slots spread evenly over the interval, the same for the same uid", () => {
    const slots = Array.from({ length: 2_000 }, (_, i) => slotOf(`3f0c${i.toString(16).padStart(4, "0")}-5d1e-4b7a-9c2e-8a41d2f06b${(i * 7) % 100}`));
    expect(slots.every((slot) => slot >= 0 && slot < 1)).toBe(true);
    const tenths = Array.from({ length: 10 }, (_, tenth) => slots.filter((slot) => Math.floor(slot * 10) === tenth).length);
    expect(Math.min(...tenths)).toBeGreaterThan(150);
    expect(Math.max(...tenths)).toBeLessThan(250);
    expect(slotOf("uid-line")).toBe(slotOf("uid-line"));
  });

  it("refreshes a code after a quarter of its documented life, or the cap", () => {
    expect(qrRefreshAt(NOW, 20_000, undefined)).toBe(NOW + 5_000);
    expect(qrRefreshAt(NOW, 60_000, undefined)).toBe(NOW + 15_000);
    expect(qrRefreshAt(NOW, 20_000, 200)).toBe(NOW + 200);
    expect(qrLatestAt(NOW, 20_000, undefined)).toBe(NOW + 10_000);
  });
});
