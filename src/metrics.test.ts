import { describe, expect, it } from "vitest";
import type { InstanceObject, ProviderObject } from "./controllers/context.ts";
import { Metrics } from "./metrics.ts";

const condition = (type: string, status: "True" | "False", reason: string, lastTransitionTime = "2026-01-01T00:00:00Z") => ({
  type,
  status,
  reason,
  message: "",
  lastTransitionTime,
  observedGeneration: 1,
});

const instance = (name: string, status: InstanceObject["status"], creationTimestamp = "2026-01-01T00:00:00Z"): InstanceObject => ({
  metadata: { name, namespace: "support", creationTimestamp },
  spec: {},
  ...(status ? { status } : {}),
});

const provider = (name: string, ready: "True" | "False" | undefined, namespace?: string): ProviderObject => ({
  metadata: { name, ...(namespace ? { namespace } : {}) },
  spec: {},
  ...(ready ? { status: { conditions: [condition("Ready", ready, ready === "True" ? "Ready" : "ProviderUnavailable")] } } : {}),
});

/** The samples of one metric as "labels value" lines, as a scrape shows them. */
async function samples(metrics: Metrics, name: string): Promise<string[]> {
  const text = await metrics.registry.getSingleMetricAsString(name);
  return text
    .split("\n")
    .filter((line) => line.startsWith(name))
    .map((line) => line.slice(name.length))
    .sort();
}

describe("the per-object gauges, read from the caches at each scrape", () => {
  const instances: InstanceObject[] = [];
  const providers: { kind: string; object: ProviderObject }[] = [];
  const metrics = new Metrics();
  metrics.readStatusFrom({ instances: () => instances, providers: () => providers });

  it("have no series before anything is cached", async () => {
    expect(await samples(metrics, "wa_operator_instance_stalled")).toEqual([]);
    expect(await samples(metrics, "wa_operator_provider_ready")).toEqual([]);
  });

  it("wa_operator_instance_stalled: one series per Stalled instance, with its reason, gone once it is no longer Stalled", async () => {
    instances.splice(
      0,
      instances.length,
      instance("a", { phase: "Pending", conditions: [condition("Ready", "False", "ProviderNotFound"), condition("Stalled", "True", "ProviderNotFound")] }),
      instance("b", { phase: "ScanQR", conditions: [condition("Ready", "False", "ScanQR"), condition("Stalled", "False", "ScanQR")] }),
      instance("c", undefined),
    );
    expect(await samples(metrics, "wa_operator_instance_stalled")).toEqual(['{namespace="support",name="a",reason="ProviderNotFound"} 1']);
    instances.splice(0, 1, instance("a", { phase: "Connected", conditions: [condition("Ready", "True", "Connected"), condition("Stalled", "False", "Connected")] }));
    expect(await samples(metrics, "wa_operator_instance_stalled")).toEqual([]);
  });

  it("wa_operator_instance_scan_waiting_since_timestamp_seconds: for ScanQR instances, when Ready last went False (else creation)", async () => {
    instances.splice(
      0,
      instances.length,
      instance("waiting", { phase: "ScanQR", conditions: [condition("Ready", "False", "ScanQR", "2026-01-01T00:10:00Z")] }),
      instance("new", { phase: "ScanQR" }, "2026-01-01T00:20:00Z"),
      instance("linked", { phase: "Connected", conditions: [condition("Ready", "True", "Connected", "2026-01-01T00:30:00Z")] }),
    );
    expect(await samples(metrics, "wa_operator_instance_scan_waiting_since_timestamp_seconds")).toEqual([
      `{namespace="support",name="new"} ${Date.parse("2026-01-01T00:20:00Z") / 1000}`,
      `{namespace="support",name="waiting"} ${Date.parse("2026-01-01T00:10:00Z") / 1000}`,
    ]);
  });

  it("wa_operator_provider_ready: 1 for Ready providers, 0 for the rest (not yet looked at included), both kinds (no namespace label for the cluster kind)", async () => {
    providers.splice(
      0,
      providers.length,
      { kind: "WhatsAppProvider", object: provider("waha", "True", "support") },
      { kind: "WhatsAppProvider", object: provider("down", "False", "support") },
      { kind: "ClusterWhatsAppProvider", object: provider("shared", undefined) },
    );
    expect(await samples(metrics, "wa_operator_provider_ready")).toEqual([
      '{kind="ClusterWhatsAppProvider",name="shared"} 0',
      '{kind="WhatsAppProvider",namespace="support",name="down"} 0',
      '{kind="WhatsAppProvider",namespace="support",name="waha"} 1',
    ]);
  });
});
