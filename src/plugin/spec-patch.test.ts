import { describe, expect, it } from "vitest";
import { rfc3339Seconds } from "./spec-patch.ts";

describe("rfc3339Seconds", () => {
  it.each([
    [Date.parse("2026-11-21T10:00:00.999Z"), "2026-11-21T10:00:00Z"],
    [Date.parse("2026-11-21T10:00:01Z"), "2026-11-21T10:00:01Z"],
  ])("%d is %s (whole seconds, as the CRD stores it)", (ms, text) => {
    expect(rfc3339Seconds(ms)).toBe(text);
  });
});
