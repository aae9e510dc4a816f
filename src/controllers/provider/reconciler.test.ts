import { describe, expect, it } from "vitest";
import type { InstanceObject } from "../context.ts";
import { smallerBound } from "./connections.ts";
import { reportProvider, sessionCounts } from "./reconciler.ts";

function instance(name: string, phase?: string, deleting = false): InstanceObject {
  return {
    metadata: { name, namespace: "ns", uid: name, ...(deleting ? { deletionTimestamp: "2026-01-01T00:00:00Z" } : {}) },
    spec: {},
    ...(phase ? { status: { phase } } : {}),
  } as InstanceObject;
}

const health = { type: "waha", url: "http://127.0.0.1:3000" };

describe("provider capacity", () => {
  it.each([
    [undefined, undefined, undefined],
    [10, undefined, 10],
    [undefined, 40, 40],
    [10, 40, 10],
    [50, 40, 40],
  ])("maxInstances %s and maxSessions %s bound a provider at %s", (maxInstances, maxSessions, bound) => {
    expect(smallerBound(maxInstances, maxSessions)).toBe(bound);
  });

  it("counts the sessions kept on a provider by state, leaving out instances being deleted", () => {
    const users = [instance("a", "Connected"), instance("b", "ScanQR"), instance("c", "Starting"), instance("d", "Connected", true), instance("e")];
    expect(sessionCounts(users, (user) => user.status?.phase === "Starting")).toEqual({ placed: 4, linked: 1, starting: 1 });
  });

  it("writes status.sessions only for a provider with a capacity, and leaves the rest of the status as it was", () => {
    const status = { observedGeneration: 1, instances: 3, version: "2025.1" };
    const sessions = { placed: 3, linked: 1, starting: 2 };
    expect(reportProvider({ status, instances: 3, sessions, health, failure: undefined, checkMs: 60_000 }).status).toEqual({ ...status, sessions });
    expect(reportProvider({ status: { ...status, sessions }, instances: 3, health, failure: undefined, checkMs: 60_000 }).status).toEqual(status);
  });
});
