/**
 * The built `wa-operator` as separate processes against the local control plane:
 * two replicas with leader election (the leader SIGKILLed), /metrics, and provider
 * lifecycle events moving an instance long before the next poll.
 */
import { createHmac } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildInfo } from "../../src/build-info.ts";
import { INSTANCES, LEASES, type KubeObject } from "../../src/kube/resources.ts";
import { wahaSessionName } from "../../src/providers/waha/client.ts";
import { WahaEmulator } from "../emulators/waha/emulator.ts";
import { WappfyEmulator } from "../emulators/wappfy/emulator.ts";
import { condition, createNamespace, eventually, installCrds, instanceWhere, kubeClient, kubectlOk } from "../support/kube.ts";
import { spawnOperator, type LogLine, type OperatorProcess } from "../support/process.ts";

const API_KEY = "process-test-key";
const kube = kubeClient();
const waha = new WahaEmulator({ apiKey: API_KEY, startDelayMs: 0 });
let wahaUrl: string;
const processes: OperatorProcess[] = [];

beforeAll(async () => {
  await installCrds();
  wahaUrl = await waha.start();
});

afterAll(async () => {
  for (const proc of processes) proc.kill("SIGKILL");
  await Promise.all(processes.map((proc) => proc.exited));
  await waha.stop();
});

async function setUp(prefix: string, providerExtra = ""): Promise<string> {
  const namespace = await createNamespace(prefix);
  await kubectlOk(["create", "secret", "generic", "waha-key", "-n", namespace, `--from-literal=api-key=${API_KEY}`]);
  await kubectlOk(["label", "secret", "waha-key", "-n", namespace, "wa-operator.io/credential=true"]);
  await applyProvider(namespace, providerExtra);
  return namespace;
}

function applyProvider(namespace: string, extra: string): Promise<string> {
  return kubectlOk(
    ["apply", "-n", namespace, "-f", "-"],
    `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: waha}
spec: {type: waha, url: "${wahaUrl}", credentialsSecretRef: {name: waha-key}${extra}}`,
  );
}

function applyInstance(namespace: string, name: string, state = "Connected"): Promise<string> {
  return kubectlOk(
    ["apply", "-n", namespace, "-f", "-"],
    `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: ${name}}
spec: {providerRef: {name: waha}, state: ${state}}`,
  );
}

async function start(namespace: string, args: string[] = []): Promise<OperatorProcess> {
  const proc = await spawnOperator(["--namespaces", namespace, "--operator-namespace", namespace, ...args]);
  processes.push(proc);
  return proc;
}

const reconciles = (proc: OperatorProcess) => proc.logs.filter((line) => line.msg === "reconciled");
const leadership = (proc: OperatorProcess) => proc.logs.find((line) => line.msg === "became the leader");
const at = (line: LogLine | undefined) => (line ? Date.parse(line.time) : Number.NaN);

describe("two replicas with leader election", () => {
  it("only the leader reconciles; after a SIGKILL the other takes over within the lease duration", async () => {
    const namespace = await setUp("ha");
    const [a, b] = [await start(namespace, ["--leader-election", "true"]), await start(namespace, ["--leader-election", "true"])];
    const leader = await eventually("a leader", async () => [a, b].find((proc) => leadership(proc)));
    const follower = leader === a ? b : a;
    await applyInstance(namespace, "ha-one");
    await instanceWhere(kube, namespace, "ha-one", "ScanQR", (object) => object.status?.phase === "ScanQR");
    expect(reconciles(leader).length).toBeGreaterThan(0);
    expect(reconciles(follower)).toEqual([]);
    // Both are ready: followers keep warm caches.
    for (const proc of [leader, follower]) expect((await fetch(`${proc.url}/readyz`)).status).toBe(200);

    const killedAt = Date.now();
    leader.kill("SIGKILL");
    await leader.exited;
    await kubectlOk(["patch", "wai", "ha-one", "-n", namespace, "--type=merge", "-p", '{"spec":{"state":"Disconnected"}}']);
    // Bounded by the 15 s lease duration plus the time to reconcile once.
    await instanceWhere(kube, namespace, "ha-one", "Disconnected by the new leader", (object) => object.status?.phase === "Disconnected", 25_000);
    const tookOver = at(leadership(follower));
    console.log(`takeover: the follower led ${((tookOver - killedAt) / 1000).toFixed(1)} s after the SIGKILL (lease 15 s)`);
    // The Lease runs out 15 s after the dead leader's last renewal, which came before the kill;
    // the follower then needs one Lease round trip (allowed 1 s on a busy 2-core machine).
    expect(tookOver - killedAt).toBeLessThanOrEqual(15_000 + 1000);
    // Never two at once: the follower reconciled nothing before it led, and the old leader nothing after it died.
    expect(reconciles(follower).every((line) => at(line) >= tookOver)).toBe(true);
    expect(reconciles(leader).every((line) => at(line) <= killedAt)).toBe(true);
    const lease = await kube.get<{ metadata: { name: string }; spec: { holderIdentity: string; leaseTransitions: number } }>(LEASES, namespace, "wa-operator-leader");
    expect(lease.spec.holderIdentity).toBe(leadership(follower)?.["identity"]);
  });

  it("a leader paused past its renew deadline makes no provider write when it wakes, and exits", async () => {
    const namespace = await setUp("paused");
    // A 6 s lease: renew deadline 4 s, retry period 0.8 s.
    const args = ["--leader-election", "true", "--lease-duration", "6s"];
    const [a, b] = [await start(namespace, args), await start(namespace, args)];
    const leader = await eventually("a leader", async () => [a, b].find((proc) => leadership(proc)));
    const follower = leader === a ? b : a;
    await applyInstance(namespace, "paused-one");
    await instanceWhere(kube, namespace, "paused-one", "ScanQR", (object) => object.status?.phase === "ScanQR");

    leader.kill("SIGSTOP");
    await eventually("the follower takes over", async () => leadership(follower), 20_000);
    // Freeze the new leader too, so every provider call from now on comes from the old one,
    // and give the old one something to write: its session stopped behind its back.
    follower.kill("SIGSTOP");
    const session = wahaSessionName(namespace, "paused-one");
    waha.stopBehindBack(session);
    const wokeAt = Date.now();
    leader.kill("SIGCONT");
    const code = await Promise.race([leader.exited, new Promise((resolve) => setTimeout(() => resolve("still running"), 3000))]);
    const writes = waha.calls.filter((call) => call.at >= wokeAt && call.method !== "GET" && call.path.includes(session));
    follower.kill("SIGCONT");
    expect(code).toBe(1);
    expect(leader.logs.some((line) => line.msg === "lost the leader lease")).toBe(true);
    expect(writes).toEqual([]);
    // The new leader carries on and starts the session again.
    await eventually("the session running again", async () => (waha.session(session)?.status === "SCAN_QR_CODE" ? true : undefined), 20_000);
  });

  it("on SIGTERM the leader finishes, releases the Lease and exits 0, and the other takes over at once", async () => {
    const namespace = await setUp("handover");
    const [a, b] = [await start(namespace, ["--leader-election", "true"]), await start(namespace, ["--leader-election", "true"])];
    const leader = await eventually("a leader", async () => [a, b].find((proc) => leadership(proc)));
    const follower = leader === a ? b : a;
    const stoppedAt = Date.now();
    leader.kill("SIGTERM");
    expect(await leader.exited).toBe(0);
    expect(leader.logs.some((line) => line.msg === "released the leader lease")).toBe(true);
    await eventually("the follower leads", async () => leadership(follower), 10_000);
    // A released Lease is taken well before it would have expired.
    expect(at(leadership(follower)) - stoppedAt).toBeLessThan(10_000);
    follower.kill("SIGTERM");
    expect(await follower.exited).toBe(0);
  });
});

describe("metrics", () => {
  it("/metrics is Prometheus text with controller-runtime's names and the operator's own", async () => {
    const namespace = await setUp("metrics");
    const proc = await start(namespace);
    await applyInstance(namespace, "measured");
    await instanceWhere(kube, namespace, "measured", "ScanQR", (object) => object.status?.phase === "ScanQR");
    const response = await fetch(`${proc.metricsUrl}/metrics`);
    expect(response.headers.get("content-type")).toContain("text/plain");
    const samples = parsePrometheus(await response.text());
    const value = (name: string, labels: Record<string, string> = {}) =>
      samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, v]) => sample.labels[key] === v)).reduce((sum, sample) => sum + sample.value, 0);
    expect(value("controller_runtime_reconcile_total", { controller: "whatsappinstance" })).toBeGreaterThan(0);
    expect(value("controller_runtime_reconcile_time_seconds_count", { controller: "whatsappinstance" })).toBeGreaterThan(0);
    expect(samples.some((sample) => sample.name === "workqueue_depth" && sample.labels["name"] === "whatsappinstance")).toBe(true);
    expect(value("workqueue_adds_total", { name: "whatsappinstance" })).toBeGreaterThan(0);
    expect(value("workqueue_queue_duration_seconds_count", { name: "whatsappinstance" })).toBeGreaterThan(0);
    expect(value("workqueue_work_duration_seconds_count", { name: "whatsappinstance" })).toBeGreaterThan(0);
    expect(samples.some((sample) => sample.name === "wa_operator_events_pending")).toBe(true);
    expect(value("controller_runtime_max_concurrent_reconciles", { controller: "whatsappinstance" })).toBe(32);
    expect(value("wa_operator_provider_requests_total", { provider: "waha", code: "200" })).toBeGreaterThan(0);
    expect(value("wa_operator_provider_requests_total", { provider: "waha", code: "201" })).toBeGreaterThan(0);
    expect(value("wa_operator_instances", { phase: "ScanQR" })).toBe(1);
    expect(value("process_resident_memory_bytes")).toBeGreaterThan(0);
    // client-go's API client metrics, controller-runtime's pass and queue gauges, and the build.
    const has = (name: string, labels: Record<string, string> = {}) =>
      samples.some((sample) => sample.name === name && Object.entries(labels).every(([key, v]) => sample.labels[key] === v));
    expect(value("rest_client_requests_total", { code: "200", method: "GET" })).toBeGreaterThan(0);
    expect(value("rest_client_requests_total", { method: "PATCH" })).toBeGreaterThan(0);
    expect(value("rest_client_request_duration_seconds_count", { verb: "GET" })).toBeGreaterThan(0);
    expect(samples.find((sample) => sample.name === "rest_client_requests_total")?.labels["host"]).toMatch(/^(127\.0\.0\.1|\[::1\]|localhost):\d+$/);
    expect(value("wa_operator_provider_request_duration_seconds_count", { provider: "waha", method: "GET" })).toBeGreaterThan(0);
    expect(value("wa_operator_provider_request_duration_seconds_count", { provider: "waha", method: "POST" })).toBeGreaterThan(0);
    for (const controller of ["whatsappinstance", "whatsappprovider"]) {
      expect(has("controller_runtime_reconcile_panics_total", { controller })).toBe(true);
      expect(has("controller_runtime_active_workers", { controller })).toBe(true);
      expect(has("workqueue_unfinished_work_seconds", { name: controller })).toBe(true);
      expect(has("workqueue_longest_running_processor_seconds", { name: controller })).toBe(true);
    }
    expect(value("controller_runtime_reconcile_panics_total")).toBe(0);
    const build = samples.find((sample) => sample.name === "wa_operator_build_info");
    expect(build?.value).toBe(1);
    expect(build?.labels).toMatchObject({ version: buildInfo().version, node_version: expect.stringMatching(/^v\d+\./) });
    expect((await fetch(`${proc.url}/healthz`)).status).toBe(200);
    // Every pass's lines carry its reconcileID.
    expect(reconciles(proc).length).toBeGreaterThan(0);
    for (const line of reconciles(proc)) expect(line["reconcileID"]).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("tracing", () => {
  it("with OTEL_EXPORTER_OTLP_ENDPOINT, a pass is exported to the OTLP receiver as a span holding its provider calls' spans", async () => {
    // A loopback OTLP/HTTP receiver (JSON), standing in for a collector.
    const spans: { traceId: string; spanId: string; parentSpanId?: string; name: string; attributes: { key: string; value: { stringValue?: string } }[] }[] = [];
    const receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { resourceSpans: { scopeSpans: { spans: typeof spans }[] }[] };
        for (const resource of body.resourceSpans) for (const scope of resource.scopeSpans) spans.push(...scope.spans);
        res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    try {
      const namespace = await setUp("traced");
      const proc = await spawnOperator(["--namespaces", namespace, "--operator-namespace", namespace], {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`,
        OTEL_BSP_SCHEDULE_DELAY: "200",
      });
      processes.push(proc);
      await applyInstance(namespace, "traced-one");
      await instanceWhere(kube, namespace, "traced-one", "ScanQR", (object) => object.status?.phase === "ScanQR");
      const attribute = (span: (typeof spans)[number], key: string) => span.attributes.find((entry) => entry.key === key)?.value.stringValue;
      const pass = await eventually("a pass of traced-one that called the provider", async () =>
        spans.find(
          (span) =>
            span.name === "reconcile" &&
            attribute(span, "key") === `${namespace}/traced-one` &&
            spans.some((child) => child.name.startsWith("provider ") && child.parentSpanId === span.spanId),
        ),
      );
      expect(attribute(pass, "controller")).toBe("whatsappinstance");
      const calls = spans.filter((span) => span.parentSpanId === pass.spanId);
      for (const call of calls) expect(call.traceId).toBe(pass.traceId);
      expect(calls.map((call) => attribute(call, "wa_operator.provider.type"))).toContain("waha");
      // The reconcileID of the span is the one of the pass's log lines.
      expect(proc.logs.some((line) => line["reconcileID"] === attribute(pass, "reconcileID"))).toBe(true);
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    } finally {
      receiver.closeAllConnections();
      await new Promise((resolve) => receiver.close(resolve));
    }
  });
});

describe("provider events", () => {
  it("a scan reaches status through WAHA's session.status webhook long before the next poll", async () => {
    const namespace = await createNamespace("events");
    await kubectlOk(["create", "secret", "generic", "waha-key", "-n", namespace, `--from-literal=api-key=${API_KEY}`]);
    await kubectlOk(["label", "secret", "waha-key", "-n", namespace, "wa-operator.io/credential=true"]);
    // Polls so slow that only an event can explain a prompt Connected.
    const proc = await start(namespace, ["--poll-interval", "5m", "--pairing-poll-interval", "5m", "--provider-check-interval", "5m"]);
    await applyProvider(namespace, `, events: {url: "${proc.url}"}`);
    await eventually("the events Secret", async () => (await kube.find({ group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true }, namespace, "waha-events")) ?? undefined);
    await applyInstance(namespace, "evented");
    await instanceWhere(kube, namespace, "evented", "ScanQR", (object) => object.status?.phase === "ScanQR");
    const hooks = waha.session(wahaSessionName(namespace, "evented"))?.config?.webhooks ?? [];
    expect(hooks.map((hook) => hook.url)).toContain(`${proc.url}/provider-events/namespaced/${namespace}/waha`);

    waha.scan(wahaSessionName(namespace, "evented"), "5511988887777");
    const connected = await instanceWhere(kube, namespace, "evented", "Connected via the event", (object) => object.status?.phase === "Connected", 10_000);
    expect(connected.status?.phoneNumber).toBe("5511988887777");
    expect(condition(connected, "Ready")?.status).toBe("True");
    const metrics = await (await fetch(`${proc.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/wa_operator_provider_events_total\{provider="waha",result="accepted"\} [1-9]/);
  });

  it("a wappfy instance.connected event, signed with the provider's key, moves the instance at once", async () => {
    const wappfy = new WappfyEmulator({ apiKeys: ["wappfy-key"], startDelayMs: 0 });
    const url = await wappfy.start();
    try {
      const namespace = await createNamespace("wappfy-events");
      await kubectlOk(["create", "secret", "generic", "wappfy-key", "-n", namespace, "--from-literal=api-key=wappfy-key"]);
      await kubectlOk(["label", "secret", "wappfy-key", "-n", namespace, "wa-operator.io/credential=true"]);
      const proc = await start(namespace, ["--poll-interval", "5m", "--pairing-poll-interval", "5m", "--provider-check-interval", "5m"]);
      await kubectlOk(
        ["apply", "-n", namespace, "-f", "-"],
        `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: wappfy}
spec: {type: wappfy, url: "${url}", credentialsSecretRef: {name: wappfy-key}, events: {url: "${proc.url}"}}`,
      );
      await eventually("the events Secret", async () => (await kube.find({ group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true }, namespace, "wappfy-events")) ?? undefined);
      await kubectlOk(
        ["apply", "-n", namespace, "-f", "-"],
        `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: managed}
spec: {providerRef: {name: wappfy}}`,
      );
      const scanning = await instanceWhere(kube, namespace, "managed", "ScanQR", (object) => object.status?.phase === "ScanQR");
      wappfy.scan(scanning.status?.providerInstanceId as string, "5511966665555");
      const connected = await instanceWhere(kube, namespace, "managed", "Connected via instance.connected", (object) => object.status?.phase === "Connected", 10_000);
      expect(connected.status?.phoneNumber).toBe("5511966665555");
      const metrics = await (await fetch(`${proc.metricsUrl}/metrics`)).text();
      expect(metrics).toMatch(/wa_operator_provider_events_total\{provider="wappfy",result="accepted"\} [1-9]/);
    } finally {
      await wappfy.stop();
    }
  });

  it("an event received by a follower replica is counted and queued there, and turns into no API write", async () => {
    const namespace = await createNamespace("relay");
    await kubectlOk(["create", "secret", "generic", "waha-key", "-n", namespace, `--from-literal=api-key=${API_KEY}`]);
    await kubectlOk(["label", "secret", "waha-key", "-n", namespace, "wa-operator.io/credential=true"]);
    const slow = ["--leader-election", "true", "--poll-interval", "5m", "--pairing-poll-interval", "5m", "--provider-check-interval", "5m"];
    const [a, b] = [await start(namespace, slow), await start(namespace, slow)];
    const leader = await eventually("a leader", async () => [a, b].find((proc) => leadership(proc)));
    const follower = leader === a ? b : a;
    await applyProvider(namespace, `, events: {url: "${follower.url}"}`);
    await eventually("the events Secret", async () => (await kube.find({ group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true }, namespace, "waha-events")) ?? undefined);
    await applyInstance(namespace, "relayed");
    await instanceWhere(kube, namespace, "relayed", "ScanQR", (object) => object.status?.phase === "ScanQR");
    waha.scan(wahaSessionName(namespace, "relayed"), "5511977776666");
    await eventually("the follower accepted the event", async () => {
      const metrics = await (await fetch(`${follower.metricsUrl}/metrics`)).text();
      return /wa_operator_provider_events_total\{provider="waha",result="accepted"\} [1-9]/.test(metrics) ? true : undefined;
    });
    expect(reconciles(follower)).toEqual([]);
    // No annotation handed the event to the leader (the old relay): the leader sees the scan at its next poll.
    const after = await kube.get<KubeObject>(INSTANCES, namespace, "relayed");
    expect(after.metadata.annotations ?? {}).not.toHaveProperty("wa-operator.io/provider-event-at");
  });

  it("refuses unsigned and wrongly signed events, and counts them", async () => {
    const namespace = await setUp("forged");
    const proc = await start(namespace);
    await applyProvider(namespace, `, events: {url: "${proc.url}"}`);
    await eventually("the events Secret", async () => (await kube.find({ group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true }, namespace, "waha-events")) ?? undefined);
    const target = `${proc.url}/provider-events/namespaced/${namespace}/waha`;
    const body = JSON.stringify({ event: "session.status", session: "x", metadata: { "wa-operator.io/instance": `${namespace}/x` }, payload: { status: "WORKING" } });
    const unsigned = await fetch(target, { method: "POST", headers: { "Content-Type": "application/json" }, body });
    expect(unsigned.status).toBe(401);
    const forged = await fetch(target, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Webhook-Hmac": createHmac("sha512", "not-the-key").update(body).digest("hex") },
      body,
    });
    expect(forged.status).toBe(401);
    const metrics = await (await fetch(`${proc.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/wa_operator_provider_events_total\{provider="waha",result="unsigned"\} 1/);
    expect(metrics).toMatch(/wa_operator_provider_events_total\{provider="waha",result="bad_signature"\} 1/);
  });
});

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** Reads Prometheus text exposition: `name{a="b"} value` lines, comments skipped. */
function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) throw new Error(`not Prometheus text: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] as string] = pair[2] as string;
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

describe("logs", () => {
  it("are JSON and never carry an API key, an HMAC key or a QR payload", async () => {
    const namespace = await setUp("quiet", "");
    const proc = await start(namespace);
    await applyProvider(namespace, `, events: {url: "${proc.url}"}`);
    await kubectlOk(
      ["apply", "-n", namespace, "-f", "-"],
      `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: secretive}
spec: {providerRef: {name: waha}, webhook: {url: "http://127.0.0.1:9/hook", events: [message]}}`,
    );
    await instanceWhere(kube, namespace, "secretive", "ScanQR", (object) => object.status?.phase === "ScanQR");
    const secret = (name: string, key: string) =>
      kubectlOk(["get", "secret", name, "-n", namespace, "-o", `jsonpath={.data.${key.replace(".", "\\.")}}`]).then((value) => Buffer.from(value, "base64").toString());
    const secrets = [API_KEY, await secret("secretive-webhook", "hmac-key"), await secret("secretive-qr", "qr.txt"), await secret("waha-events", "hmac-key")];
    expect(secrets.every((value) => value.length > 8)).toBe(true);
    const everything = processes.flatMap((each) => each.logs).map((line) => JSON.stringify(line)).join("\n");
    expect(processes.flatMap((each) => each.logs).filter((line) => line.level === "raw")).toEqual([]);
    for (const value of secrets) expect(everything).not.toContain(value);
  });
});
