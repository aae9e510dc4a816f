import { describe, expect, it } from "vitest";
import type { InstanceObject } from "../context.ts";
import { smallerBound } from "./connections.ts";
import { reportProvider, sessionCounts, withoutUserinfo } from "./reconciler.ts";

describe("the provider URL a user sees", () => {
  it("drops user:pass@ from the Available message and its Event", () => {
    const report = reportProvider({
      status: {},
      instances: 0,
      health: { type: "waha", url: "http://admin:s3cr3t-pa55@127.0.0.1:3000/base" },
      failure: undefined,
      checkMs: 60_000,
    });
    expect(report.verdict.message).toBe("waha at http://127.0.0.1:3000/base answers and accepts the credentials");
    expect(JSON.stringify(report.events)).not.toContain("s3cr3t-pa55");
    expect(JSON.stringify(report.events)).not.toContain("admin");
  });

  it("leaves a URL without userinfo exactly as written", () => {
    expect(withoutUserinfo("http://127.0.0.1:3000")).toBe("http://127.0.0.1:3000");
    expect(withoutUserinfo("https://user@127.0.0.1/")).toBe("https://127.0.0.1/");
    expect(withoutUserinfo("not a url")).toBe("not a url");
  });
});

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
