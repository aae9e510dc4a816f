import { describe, expect, it } from "vitest";
import { applyVerdict, setCondition } from "./conditions.ts";

const t0 = "2026-11-21T10:00:00Z";
const t1 = "2026-11-21T10:05:00Z";

describe("setCondition", () => {
  it("keeps lastTransitionTime when the status stays the same", () => {
    const first = setCondition([], { type: "Ready", status: "False", reason: "Starting", message: "a" }, 1, t0);
    const second = setCondition(first, { type: "Ready", status: "False", reason: "ScanQR", message: "b" }, 2, t1);
    expect(second).toEqual([{ type: "Ready", status: "False", reason: "ScanQR", message: "b", lastTransitionTime: t0, observedGeneration: 2 }]);
  });

  it("moves lastTransitionTime when the status changes", () => {
    const first = setCondition([], { type: "Ready", status: "False", reason: "Starting", message: "a" }, 1, t0);
    const second = setCondition(first, { type: "Ready", status: "True", reason: "Connected", message: "b" }, 1, t1);
    expect(second[0]?.lastTransitionTime).toBe(t1);
  });

  it("gives the same list for the same facts, so nothing is re-patched", () => {
    const verdict = { ready: false, stalled: false, reason: "ScanQR", message: "scan it" };
    const once = applyVerdict([], verdict, 3, t0);
    expect(applyVerdict(once, verdict, 3, t1)).toEqual(once);
  });
});

describe("applyVerdict", () => {
  it.each([
    ["ready means neither reconciling nor stalled", { ready: true, stalled: false }, ["True", "False", "False"]],
    ["work in progress is reconciling", { ready: false, stalled: false }, ["False", "True", "False"]],
    ["needing a person is stalled, not reconciling", { ready: false, stalled: true }, ["False", "False", "True"]],
  ])("%s", (_sentence, flags, expected) => {
    const list = applyVerdict([], { ...flags, reason: "R", message: "m" }, 1, t0);
    expect(list.map((condition) => condition.status)).toEqual(expected);
    expect(list.map((condition) => condition.type)).toEqual(["Ready", "Reconciling", "Stalled"]);
  });
});
