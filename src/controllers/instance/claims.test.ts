import { describe, expect, it } from "vitest";
import type { InstanceObject } from "../context.ts";
import { sessionClaim } from "./claims.ts";

const PROVIDER = { type: "waha" as const, settings: { type: "waha" as const, url: "http://127.0.0.1:3000", rateLimit: { requestsPerSecond: 10, burst: 20 }, timeoutMs: 1000 } };

function instance(namespace: string, uid: string, created: string, extra: { adopt?: string; recorded?: string } = {}): InstanceObject {
  return {
    apiVersion: "wa-operator.io/v1alpha1",
    kind: "WhatsAppInstance",
    metadata: { namespace, name: uid, uid, creationTimestamp: created },
    spec: { providerRef: { kind: "ClusterWhatsAppProvider", name: "shared" }, ...(extra.adopt ? { adopt: { id: extra.adopt } } : {}) },
    ...(extra.recorded ? { status: { providerInstanceId: extra.recorded } } : {}),
  } as InstanceObject;
}

function claimOf(subject: InstanceObject, all: InstanceObject[]) {
  const ctx = {
    caches: { instances: { list: () => all } },
    connections: { endpoint: () => `waha ${PROVIDER.settings.url}` },
  } as unknown as Parameters<typeof sessionClaim>[0];
  return sessionClaim(ctx, subject, subject.spec as Parameters<typeof sessionClaim>[2], PROVIDER);
}

describe("who holds a session's claim", () => {
  const SECOND = "2026-12-05T10:00:00Z";
  const LATER = "2026-12-05T10:00:05Z";

  it.each([
    // [case, subject, others, held elsewhere?]
    ["the only resource naming a session holds it", instance("a", "u1", SECOND, { adopt: "s" }), [], false],
    ["a later resource naming a recorded session is refused", instance("b", "u2", LATER, { adopt: "s" }), [instance("a", "u9", SECOND, { recorded: "s" })], true],
    ["the older of two namers holds it", instance("a", "u1", SECOND, { adopt: "s" }), [instance("b", "u2", LATER, { adopt: "s" })], false],
    ["the younger of two namers is refused", instance("b", "u2", LATER, { adopt: "s" }), [instance("a", "u1", SECOND, { adopt: "s" })], true],
    // Same second, and the newcomer's uid sorts first: the status record still decides.
    ["a same-second newcomer with a smaller uid does not take a recorded session", instance("b", "u0", SECOND, { adopt: "s" }), [instance("a", "u9", SECOND, { recorded: "s" })], true],
    ["the recorded holder keeps it against a same-second namer with a smaller uid", instance("a", "u9", SECOND, { recorded: "s", adopt: "s" }), [instance("b", "u0", SECOND, { adopt: "s" })], false],
    ["a resource naming another session is not in the contest", instance("b", "u2", LATER, { adopt: "t" }), [instance("a", "u1", SECOND, { adopt: "s" })], false],
  ] as const)("%s", (_, subject, others, refused) => {
    const claim = claimOf(subject, [subject, ...others]);
    expect(claim?.id).toBe((subject.spec as { adopt?: { id: string } }).adopt?.id);
    expect(claim?.heldElsewhere !== undefined).toBe(refused);
  });

  it("asks the cache's session index for the contenders instead of reading every instance", () => {
    const holder = instance("a", "u1", SECOND, { recorded: "s" });
    const subject = instance("b", "u2", LATER, { adopt: "s" });
    const asked: string[] = [];
    const ctx = {
      caches: {
        instances: {
          list: () => {
            throw new Error("scanned the whole cache");
          },
          byIndex: (index: string, value: string) => (asked.push(`${index}=${value}`), [holder, subject]),
        },
      },
      connections: { endpoint: () => `waha ${PROVIDER.settings.url}` },
    } as unknown as Parameters<typeof sessionClaim>[0];
    const claim = sessionClaim(ctx, subject, subject.spec as Parameters<typeof sessionClaim>[2], PROVIDER);
    expect(asked).toEqual(["session=s"]);
    expect(claim?.heldElsewhere).toContain("another namespace");
  });

  it("names another namespace's holder without its name", () => {
    const claim = claimOf(instance("b", "u2", LATER, { adopt: "s" }), [instance("a", "u1", SECOND, { recorded: "s" })]);
    expect(claim?.heldElsewhere).toContain("another namespace");
    expect(claim?.heldElsewhere).not.toContain("u1");
  });
});
