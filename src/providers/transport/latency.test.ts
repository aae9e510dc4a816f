import { describe, expect, it } from "vitest";
import { MIN_FIRST_TRY_MS, ReadLatency } from "./latency.ts";

describe("the deadline of a read's first try", () => {
  it("is the full timeout until enough answers were seen", () => {
    const latency = new ReadLatency();
    for (let i = 0; i < 31; i++) latency.record(5);
    expect(latency.firstTryMs(10_000)).toBe(10_000);
    latency.record(5);
    expect(latency.firstTryMs(10_000)).toBe(MIN_FIRST_TRY_MS);
  });

  it("is five times the 99th percentile of recent answers, within the floor and the timeout", () => {
    const latency = new ReadLatency();
    for (let i = 0; i < 127; i++) latency.record(100);
    latency.record(30_000); // one outlier in 128 is past the 99th percentile
    expect(latency.firstTryMs(10_000)).toBe(MIN_FIRST_TRY_MS);
    for (let i = 0; i < 128; i++) latency.record(600);
    expect(latency.firstTryMs(10_000)).toBe(3_000);
    for (let i = 0; i < 128; i++) latency.record(4_000);
    expect(latency.firstTryMs(10_000)).toBe(10_000);
  });

  it("follows the provider as it slows down: older answers are forgotten", () => {
    const latency = new ReadLatency({ floorMs: 10 });
    for (let i = 0; i < 128; i++) latency.record(2);
    expect(latency.firstTryMs(10_000)).toBe(10);
    for (let i = 0; i < 128; i++) latency.record(50);
    expect(latency.firstTryMs(10_000)).toBe(250);
  });
});
