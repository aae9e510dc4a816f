import { describe, expect, it } from "vitest";
import { GatewayRestarts, RECOVERY_MAX_MS, STOPPED_AT_ONCE, STOPPED_WINDOW_MS } from "./restart-recovery.ts";

const NOW = 1_000_000;

describe("noticing that a gateway restarted", () => {
  it("a new start time or version says so; the first answer only sets the mark", () => {
    const restarts = new GatewayRestarts();
    expect(restarts.sawServer("p", { version: "2026.7.1", startedAt: 1 })).toBeUndefined();
    expect(restarts.sawServer("p", { version: "2026.7.1", startedAt: 1 })).toBeUndefined();
    expect(restarts.sawServer("p", { version: "2026.7.1", startedAt: 2 })).toContain("new start time");
    expect(restarts.sawServer("p", { version: "2026.8.1", startedAt: 2 })).toContain("version changed from 2026.7.1 to 2026.8.1");
    // A provider that reports neither never looks restarted.
    expect(restarts.sawServer("q", {})).toBeUndefined();
    expect(restarts.sawServer("q", {})).toBeUndefined();
  });

  it(`${STOPPED_AT_ONCE} sessions of one provider found stopped within the window say so; fewer, or spread wider, do not`, () => {
    const restarts = new GatewayRestarts();
    expect(restarts.sawStopped("p", "ns/a", NOW)).toBeUndefined();
    expect(restarts.sawStopped("p", "ns/b", NOW + STOPPED_WINDOW_MS)).toBeUndefined();
    // ns/a was seen too long ago; the same session twice counts once.
    expect(restarts.sawStopped("p", "ns/b", NOW + STOPPED_WINDOW_MS + 1)).toBeUndefined();
    expect(restarts.sawStopped("q", "ns/c", NOW + STOPPED_WINDOW_MS + 1)).toBeUndefined();
    expect(restarts.sawStopped("p", "ns/c", NOW + STOPPED_WINDOW_MS + 2)).toBeUndefined();
    expect(restarts.sawStopped("p", "ns/d", NOW + STOPPED_WINDOW_MS + 3)).toContain("found stopped");
  });
});

describe("telling a recovery's story", () => {
  it("one Event per wave of maxConcurrentStarts starts (a shorter one when nobody else waits), and one when nothing starts or waits any more", () => {
    const restarts = new GatewayRestarts();
    expect(restarts.begin("p", 2, NOW)).toBe(true);
    expect(restarts.begin("p", 2, NOW + 1)).toBe(false);
    expect(restarts.granted("p", "ns/a", true, { starting: 1, waiting: 4 })).toBeUndefined();
    expect(restarts.granted("p", "ns/b", true, { starting: 2, waiting: 3 })?.message).toBe(
      "restart recovery, wave 1: started 2 sessions (2 linked, 0 to link anew); 2 started so far, 3 waiting",
    );
    expect(restarts.settled("p", "ns/a", true, { starting: 1, waiting: 3 }, NOW + 1000)).toBeUndefined();
    expect(restarts.granted("p", "ns/c", true, { starting: 2, waiting: 2 })).toBeUndefined();
    expect(restarts.granted("p", "ns/d", false, { starting: 3, waiting: 1 })?.message).toContain("wave 2: started 2 sessions (1 linked, 1 to link anew)");
    expect(restarts.granted("p", "ns/e", false, { starting: 3, waiting: 0 })?.message).toContain("wave 3: started 1 session (0 linked, 1 to link anew); 5 started so far, 0 waiting");
    for (const [key, connected] of [["ns/b", true], ["ns/c", true], ["ns/d", false]] as const) {
      expect(restarts.settled("p", key, connected, { starting: 1, waiting: 0 }, NOW + 2000)).toBeUndefined();
    }
    const done = restarts.settled("p", "ns/e", false, { starting: 0, waiting: 0 }, NOW + 9500);
    expect(done).toEqual({
      type: "Normal",
      reason: "Recovered",
      message: "restart recovery done in 9.5 s: 5 sessions started in 3 waves of at most 2; 3 back Connected, 2 otherwise (waiting for a QR, failed or stopped)",
    });
    expect(restarts.recovering("p")).toBe(false);
  });

  it("a recovery in which nothing needed a start ends without a word; one left open too long gives way to the next", () => {
    const restarts = new GatewayRestarts();
    restarts.begin("p", 2, NOW);
    expect(restarts.settled("p", "ns/a", true, { starting: 0, waiting: 0 }, NOW + 1000)).toBeUndefined();
    expect(restarts.recovering("p")).toBe(true);
    expect(restarts.settled("p", "ns/a", true, { starting: 0, waiting: 0 }, NOW + STOPPED_WINDOW_MS)).toBeUndefined();
    expect(restarts.recovering("p")).toBe(false);
    restarts.begin("q", 2, NOW);
    restarts.granted("q", "ns/a", true, { starting: 1, waiting: 1 });
    expect(restarts.begin("q", 2, NOW + RECOVERY_MAX_MS)).toBe(true);
  });
});
