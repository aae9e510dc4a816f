import { describe, expect, it } from "vitest";
import { sessionReadDue } from "./observe.ts";

const MINUTE = 60_000;

describe("when a provider's session settings are read with a call of their own", () => {
  it.each([
    ["never read: read now", undefined, 3, 0, true],
    ["read for this generation a moment ago: not again", { generation: 3, at: 0 }, 3, MINUTE, false],
    ["the spec changed since: read now", { generation: 2, at: 0 }, 3, MINUTE, true],
    ["a resync interval passed: read now", { generation: 3, at: 0 }, 3, 10 * MINUTE, true],
  ] as const)("%s", (_, last, generation, now, due) => {
    expect(sessionReadDue(last, generation, now, 10 * MINUTE)).toBe(due);
  });
});
