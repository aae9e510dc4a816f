import { describe, expect, it } from "vitest";
import {
  busiestWindow,
  duplicateSessions,
  isMutating,
  mostSessionsAtOnce,
  requestedRestarts,
  retryAfterViolations,
  secretHits,
  sessionsCreatedTwice,
  spread,
  writerOverlaps,
  type Call,
} from "../chaos/figures.ts";

const call = (at: number, replica: string | undefined, method = "GET", extra: Partial<Call> = {}): Call => ({
  at,
  method,
  path: "/api/sessions/ns__a",
  replica,
  forwarded: true,
  upstreamStatus: 200,
  status: 200,
  ...extra,
});

describe("busiestWindow", () => {
  it.each([
    { times: [], count: 0 },
    { times: [5], count: 1 },
    { times: [0, 999, 1000], count: 2 },
    { times: [0, 100, 200, 1150, 1190, 1199, 1200], count: 4 },
    { times: [3000, 1000, 1500, 2999, 2100], count: 3 },
  ])("counts $count in the busiest second of $times", ({ times, count }) => {
    expect(busiestWindow(times).count).toBe(count);
  });
});

describe("retryAfterViolations", () => {
  const limited = call(1000, "r1", "GET", { status: 429, doneAt: 1001, retryUntil: 4000 });

  it("counts a request the same client sent after the grace and before Retry-After ran out", () => {
    const result = retryAfterViolations([limited, call(1200, "r1"), call(2500, "r1"), call(4001, "r1")], 500);
    expect(result.rateLimited).toBe(1);
    expect(result.violations.map((entry) => entry.at)).toEqual([2500]);
  });

  it("does not blame another client, nor a request already on its way", () => {
    expect(retryAfterViolations([limited, call(1400, "r1"), call(2000, "r2")], 500).violations).toEqual([]);
  });

  it("counts a request that was itself answered 429 inside an earlier window", () => {
    const again = call(3000, "r1", "POST", { status: 429, doneAt: 3001, retryUntil: 5000 });
    expect(retryAfterViolations([limited, again], 500).violations).toEqual([again]);
  });
});

describe("writerOverlaps", () => {
  it("finds no window when each replica's writes end before the next one's begin, reads aside", () => {
    const calls = [call(0, "r1", "POST"), call(100, "r1", "PUT"), call(150, "r2", "GET"), call(200, "r2", "POST"), call(300, "r3", "DELETE"), call(310, "r2", "GET")];
    expect(writerOverlaps(calls)).toEqual([]);
  });

  it("finds the window where a paused leader wrote again after its successor began", () => {
    const calls = [call(0, "r1", "POST"), call(1000, "r2", "POST"), call(1500, "r2", "POST"), call(1600, "r1", "POST"), call(2000, "r2", "POST")];
    expect(writerOverlaps(calls)).toEqual([{ replicas: ["r1", "r2"], from: 1000, to: 1600, calls: 3 }]);
  });

  it("ignores requests it could not attribute", () => {
    expect(writerOverlaps([call(0, "r1", "POST"), call(50, undefined, "POST"), call(100, "r1", "POST")])).toEqual([]);
  });

  it("takes HEAD and GET as reads and everything else as writes", () => {
    expect(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"].map((method) => isMutating({ method }))).toEqual([false, false, true, true, true, true]);
  });
});

describe("requestedRestarts", () => {
  const restart = (session: string, status: string, extra: Partial<Call> = {}): Call =>
    call(0, "r1", "POST", { path: `/api/sessions/${session}/restart`, note: { session, status }, ...extra });

  it("counts restarts the provider carried out, per session, leaving out recoveries of a FAILED session", () => {
    const result = requestedRestarts([
      restart("ns__a", "SCAN_QR_CODE"),
      restart("ns__b", "WORKING"),
      restart("ns__b", "STARTING"),
      restart("ns__c", "FAILED"),
      restart("ns__c", "WORKING"),
      restart("ns__d", "WORKING", { forwarded: false, upstreamStatus: undefined, status: 503 }),
      restart("ns__e", "WORKING", { upstreamStatus: 404 }),
    ]);
    expect(result).toEqual({ carriedOut: 4, repeated: [{ session: "ns__b", times: 2 }] });
  });

  it("counts a restart whose answer was lost (a hang) as carried out", () => {
    expect(requestedRestarts([restart("ns__a", "WORKING", { status: 0 }), restart("ns__a", "STARTING")]).repeated).toEqual([{ session: "ns__a", times: 2 }]);
  });
});

describe("sessions", () => {
  it("sessionsCreatedTwice names a session the provider created again", () => {
    const create = (session: string, upstreamStatus: number) => call(0, "r1", "POST", { path: "/api/sessions", note: { session }, upstreamStatus });
    expect(sessionsCreatedTwice([create("ns__a", 201), create("ns__b", 201), create("ns__a", 422), create("ns__b", 201)])).toEqual([{ session: "ns__b", times: 2 }]);
  });

  it("duplicateSessions groups sessions by the instance they name as owner", () => {
    expect(
      duplicateSessions([
        { name: "ns__a", owner: "ns/a" },
        { name: "ns__a-2", owner: "ns/a" },
        { name: "ns__b", owner: "ns/b" },
        { name: "other", owner: undefined },
      ]),
    ).toEqual([{ owner: "ns/a", sessions: ["ns__a", "ns__a-2"] }]);
  });
});

describe("secretHits", () => {
  it("counts every occurrence of each credential in each text, naming where but never the value", () => {
    const hits = secretHits(
      [
        { where: "log r1", text: "key=sekrit-0123456789 and again sekrit-0123456789" },
        { where: "Events", text: "nothing here" },
      ],
      [
        { kind: "provider API key", value: "sekrit-0123456789" },
        { kind: "PIN", value: "123456" },
      ],
    );
    expect(hits).toEqual([{ kind: "provider API key", where: "log r1", count: 2 }]);
    expect(JSON.stringify(hits)).not.toContain("sekrit");
  });
});

describe("spread", () => {
  it("gives the median, the 95th percentile by nearest rank and the maximum", () => {
    expect(spread(Array.from({ length: 20 }, (_, index) => 20 - index))).toEqual({ count: 20, p50: 10, p95: 19, max: 20 });
    expect(spread([])).toEqual({ count: 0, p50: undefined, p95: undefined, max: undefined });
  });
});

describe("mostSessionsAtOnce", () => {
  const create = (at: number, doneAt: number, upstreamStatus = 201): Call => ({ at, doneAt, method: "POST", path: "/api/sessions", replica: "r1", forwarded: true, upstreamStatus, status: upstreamStatus });
  const remove = (at: number, name: string): Call => ({ at, method: "DELETE", path: `/api/sessions/${name}`, replica: "r1", forwarded: true, upstreamStatus: 200, status: 200 });

  it("counts a session from its create's answer until its delete arrives", () => {
    expect(mostSessionsAtOnce([create(0, 5), create(1, 6), remove(7, "a"), create(8, 9)])).toBe(2);
    expect(mostSessionsAtOnce([create(0, 5), create(1, 6), remove(5.5, "a"), create(5.6, 9)])).toBe(2);
    expect(mostSessionsAtOnce([create(0, 5), create(1, 6), create(6.5, 7), remove(8, "a")])).toBe(3);
  });

  it("leaves out creates that failed and calls that never reached the gateway", () => {
    expect(mostSessionsAtOnce([create(0, 5), create(1, 6, 422), { ...create(2, 3), forwarded: false }])).toBe(1);
  });
});
