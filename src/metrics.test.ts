import { describe, expect, it } from "vitest";
import type { InstanceObject, ProviderObject } from "./api/objects.ts";
import { KubeError } from "./kube/client.ts";
import { defaultBuildLabels, isPanic, Metrics } from "./metrics.ts";
import { ProviderError } from "./providers/errors.ts";

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

  it("wa_operator_provider_sessions: placed, linked and starting per provider whose status counts sessions; none for the others", async () => {
    const pool: ProviderObject = { metadata: { name: "pool" }, spec: {}, status: { sessions: { placed: 12, linked: 9, starting: 2 } } };
    providers.splice(0, providers.length, { kind: "ClusterWhatsAppProvider", object: pool }, { kind: "WhatsAppProvider", object: provider("waha", "True", "support") });
    expect(await samples(metrics, "wa_operator_provider_sessions")).toEqual([
      '{kind="ClusterWhatsAppProvider",name="pool",state="linked"} 9',
      '{kind="ClusterWhatsAppProvider",name="pool",state="placed"} 12',
      '{kind="ClusterWhatsAppProvider",name="pool",state="starting"} 2',
    ]);
    providers.splice(0, 1);
    expect(await samples(metrics, "wa_operator_provider_sessions")).toEqual([]);
  });
});

describe("wa_operator_start_slot_wait_seconds", () => {
  it("counts each wait in its provider's series: a free slot in the 0 bucket, a 7 s wait above 5", async () => {
    const metrics = new Metrics();
    metrics.startSlotWait.observe({ kind: "WhatsAppProvider", namespace: "support", name: "waha" }, 0);
    metrics.startSlotWait.observe({ kind: "WhatsAppProvider", namespace: "support", name: "waha" }, 7);
    const lines = await samples(metrics, "wa_operator_start_slot_wait_seconds");
    expect(lines).toContain('_bucket{le="0",kind="WhatsAppProvider",namespace="support",name="waha"} 1');
    expect(lines).toContain('_bucket{le="5",kind="WhatsAppProvider",namespace="support",name="waha"} 1');
    expect(lines).toContain('_bucket{le="10",kind="WhatsAppProvider",namespace="support",name="waha"} 2');
    expect(lines).toContain('_sum{kind="WhatsAppProvider",namespace="support",name="waha"} 7');
  });
});

describe("client-go's and controller-runtime's metrics the operator feeds", () => {
  it("rest_client_requests_total counts API server requests by code, method and host; rest_client_request_duration_seconds times them by verb and host", async () => {
    const metrics = new Metrics();
    metrics.observeKubeRequest({ method: "GET", host: "127.0.0.1:6443", code: "200", seconds: 0.02 });
    metrics.observeKubeRequest({ method: "GET", host: "127.0.0.1:6443", code: "200", seconds: 0.03 });
    metrics.observeKubeRequest({ method: "PATCH", host: "127.0.0.1:6443", code: "<error>", seconds: 1 });
    expect(await samples(metrics, "rest_client_requests_total")).toEqual([
      '{code="200",method="GET",host="127.0.0.1:6443"} 2',
      '{code="<error>",method="PATCH",host="127.0.0.1:6443"} 1',
    ]);
    const durations = await samples(metrics, "rest_client_request_duration_seconds");
    expect(durations).toContain('_count{verb="GET",host="127.0.0.1:6443"} 2');
    expect(durations).toContain('_bucket{le="0.025",verb="GET",host="127.0.0.1:6443"} 1');
    expect(durations).toContain('_count{verb="PATCH",host="127.0.0.1:6443"} 1');
  });

  it("wa_operator_provider_request_duration_seconds times provider requests by type, method and code, beside the request counter", async () => {
    const metrics = new Metrics();
    metrics.observeProviderRequest("waha", "200", { method: "GET", seconds: 0.004 });
    metrics.observeProviderRequest("waha", "error", { method: "POST", seconds: 2 });
    metrics.observeProviderRequest("whapi", "200");
    expect(await samples(metrics, "wa_operator_provider_requests_total")).toEqual([
      '{provider="waha",code="200"} 1',
      '{provider="waha",code="error"} 1',
      '{provider="whapi",code="200"} 1',
    ]);
    const durations = await samples(metrics, "wa_operator_provider_request_duration_seconds");
    expect(durations).toContain('_bucket{le="0.005",provider="waha",method="GET",code="200"} 1');
    expect(durations).toContain('_count{provider="waha",method="POST",code="error"} 1');
    expect(durations.some((line) => line.includes('provider="whapi"'))).toBe(false);
  });

  it("a registered controller starts with zero panics, errors and active workers", async () => {
    const metrics = new Metrics();
    metrics.registerController("whatsappinstance", { processingSince: () => [] });
    expect(await samples(metrics, "controller_runtime_reconcile_panics_total")).toEqual(['{controller="whatsappinstance"} 0']);
    expect(await samples(metrics, "controller_runtime_reconcile_errors_total")).toEqual(['{controller="whatsappinstance"} 0']);
    expect(await samples(metrics, "controller_runtime_active_workers")).toEqual(['{controller="whatsappinstance"} 0']);
  });

  it("workqueue_unfinished_work_seconds sums, and workqueue_longest_running_processor_seconds takes the longest of, the keys in progress at the scrape", async () => {
    let now = 10_000;
    const metrics = new Metrics({ now: () => now });
    const since: number[] = [];
    metrics.registerController("whatsappinstance", { processingSince: () => since });
    expect(await samples(metrics, "workqueue_unfinished_work_seconds")).toEqual(['{name="whatsappinstance"} 0']);
    expect(await samples(metrics, "workqueue_longest_running_processor_seconds")).toEqual(['{name="whatsappinstance"} 0']);
    since.push(4_000, 7_000);
    expect(await samples(metrics, "workqueue_unfinished_work_seconds")).toEqual(['{name="whatsappinstance"} 9']);
    expect(await samples(metrics, "workqueue_longest_running_processor_seconds")).toEqual(['{name="whatsappinstance"} 6']);
    now = 11_000;
    expect(await samples(metrics, "workqueue_longest_running_processor_seconds")).toEqual(['{name="whatsappinstance"} 7']);
  });

  it("wa_operator_build_info is 1 with the version, revision and Node version as labels", async () => {
    const metrics = new Metrics({ build: { version: "1.2.3", revision: "abc1234" } });
    expect(await samples(metrics, "wa_operator_build_info")).toEqual([`{version="1.2.3",revision="abc1234",node_version="${process.version}"} 1`]);
  });

  it("the build's revision comes from WA_OPERATOR_REVISION, else is unknown", () => {
    expect(defaultBuildLabels({ WA_OPERATOR_REVISION: "deadbeef" }).revision).toBe("deadbeef");
    expect(defaultBuildLabels({}).revision).toBe("unknown");
  });

  it.each([
    ["a TypeError (reading a property of undefined)", new TypeError("x"), true],
    ["a RangeError", new RangeError("x"), true],
    ["a thrown string", "boom", true],
    ["a plain Error (a refused connection)", Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), false],
    ["a KubeError", new KubeError(500, "boom"), false],
    ["a ProviderError", new ProviderError("Unavailable", "down"), false],
  ])("%s counts as a panic: %s", (_sentence, error, panic) => {
    expect(isPanic(error)).toBe(panic);
  });
});
