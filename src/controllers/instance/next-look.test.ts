import { describe, expect, it } from "vitest";
import { nextLookMs, qrLatestAt, qrRefreshAt, routineLooksPerSecond, type LookInput, type LookSettings } from "./next-look.ts";

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
    // The provider says when the session is up (session.status): the looks are only the fallback.
    ["with provider events, a booting session waits for its event, looked at every pairing poll", look({ requeue: "starting" }), { ...settings, providerEvents: true }, 2_000],
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

  it("refreshes a code after a quarter of its documented life, or the cap", () => {
    expect(qrRefreshAt(NOW, 20_000, undefined)).toBe(NOW + 5_000);
    expect(qrRefreshAt(NOW, 60_000, undefined)).toBe(NOW + 15_000);
    expect(qrRefreshAt(NOW, 20_000, 200)).toBe(NOW + 200);
    expect(qrLatestAt(NOW, 20_000, undefined)).toBe(NOW + 10_000);
  });
});
