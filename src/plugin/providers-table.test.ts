import { describe, expect, it } from "vitest";
import type { ProviderObject } from "../api/objects.ts";
import { providersDocument, providersTable, summarizeProviders } from "./providers-table.ts";

const now = Date.parse("2026-11-21T10:00:00Z");
const ready = (status: "True" | "False", message: string) => ({ type: "Ready", status, reason: status === "True" ? "Ready" : "ProviderUnavailable", message, lastTransitionTime: "2026-11-21T09:00:00Z" });
const provider = (name: string, namespace: string | undefined, spec: Record<string, unknown>, status?: Record<string, unknown>): ProviderObject =>
  ({ metadata: { name, ...(namespace ? { namespace } : {}), creationTimestamp: "2026-11-21T09:00:00Z" }, spec, ...(status ? { status } : {}) }) as ProviderObject;

const providers = [
  { kind: "WhatsAppProvider", object: provider("waha", "support", { type: "waha", maxInstances: 5, rateLimit: { requestsPerSecond: 5, burst: 8 } }, { version: "2025.3.1", instances: 2, conditions: [ready("True", "reachable")] }) },
  { kind: "WhatsAppProvider", object: provider("down", "support", { type: "whapi" }, { conditions: [ready("False", "connection refused")] }) },
  { kind: "ClusterWhatsAppProvider", object: provider("pool", undefined, { type: "wappfy", capacity: { maxSessions: 200 } }, { sessions: { placed: 12, linked: 10, starting: 1 }, instances: 12 }) },
];

describe("providers", () => {
  it("shows both kinds, cluster-scoped first: type, Ready, version, use against its limit, linked and starting sessions, rate limit (defaults when unset), age, message", () => {
    expect(providersTable(providers, { now }).split("\n")).toEqual([
      "KIND                      NAMESPACE   NAME   TYPE     READY   VERSION    USED     LINKED   STARTING   RATE            AGE   MESSAGE",
      "ClusterWhatsAppProvider   -           pool   wappfy                      12/200   10       1          10/s burst 20   60m",
      "WhatsAppProvider          support     down   whapi    False                                           10/s burst 20   60m   connection refused",
      "WhatsAppProvider          support     waha   waha     True    2025.3.1   2/5                          5/s burst 8     60m   reachable",
    ]);
  });

  it("counts placed sessions against capacity.maxSessions where the status has them, else instances against maxInstances", () => {
    const [pool, down, waha] = summarizeProviders(providers);
    expect([pool?.used, pool?.limit]).toEqual([12, 200]);
    expect([waha?.used, waha?.limit]).toEqual([2, 5]);
    expect([down?.used, down?.limit]).toEqual([undefined, undefined]);
    expect([pool?.linked, pool?.starting, waha?.linked]).toEqual([10, 1, undefined]);
  });

  it("-o json prints the same facts as {items: [...]}", () => {
    const document = JSON.parse(providersDocument(providers, "json")) as { items: { name: string; kind: string; ready?: string; rateLimit: unknown }[] };
    expect(document.items.map((item) => [item.kind, item.name, item.ready])).toEqual([
      ["ClusterWhatsAppProvider", "pool", undefined],
      ["WhatsAppProvider", "down", "False"],
      ["WhatsAppProvider", "waha", "True"],
    ]);
    expect(document.items[2]?.rateLimit).toEqual({ requestsPerSecond: 5, burst: 8 });
  });
});
