import { describe, expect, it } from "vitest";
import { mergePatch } from "./status-patch.ts";

describe("mergePatch", () => {
  it.each([
    ["equal statuses need no patch", { phase: "ScanQR", qr: { secretName: "a" } }, { phase: "ScanQR", qr: { secretName: "a" } }, undefined],
    ["a changed field is set", { phase: "ScanQR" }, { phase: "Connected" }, { phase: "Connected" }],
    ["a removed field becomes null", { phase: "ScanQR", qr: { secretName: "a" } }, { phase: "Connected" }, { phase: "Connected", qr: null }],
    ["a removed nested field becomes null", { qr: { secretName: "a", expiresAt: "x" } }, { qr: { secretName: "a" } }, { qr: { expiresAt: null } }],
    ["arrays are replaced whole", { conditions: [{ type: "Ready" }] }, { conditions: [{ type: "Ready" }, { type: "Stalled" }] }, { conditions: [{ type: "Ready" }, { type: "Stalled" }] }],
  ])("%s", (_sentence, before, after, expected) => {
    expect(mergePatch(before, after)).toEqual(expected);
  });
});
