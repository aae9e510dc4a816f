/**
 * Quotas, end to end: the provider resource's own maxInstances (the oldest instances hold
 * the slots; the rest wait, Stalled QuotaExceeded, without touching the provider) and a
 * provider's plan limit (WAPIZ Free: one device, read from /api/auth/me), both freed by deleting
 * an instance, after which the waiting one proceeds by itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Operator } from "../../../src/operator.ts";
import { wahaSessionName } from "../../../src/providers/waha/client.ts";
import { FakeClock } from "../../emulators/shared/clock.ts";
import { WahaEmulator } from "../../emulators/waha/emulator.ts";
import { WapizEmulator } from "../../emulators/wapiz/emulator.ts";
import { WappfyEmulator } from "../../emulators/wappfy/emulator.ts";
import { condition, createNamespace, installCrds, instanceWhere, kubeClient, kubectlOk } from "../../support/kube.ts";
import { startOperator } from "../../support/operator.ts";
import { apply, createSecret, eventNamed, instanceManifest, phaseOf, row, severalPasses } from "./support.ts";

const kube = kubeClient();
const waha = new WahaEmulator({ apiKey: "waha-quota-key", clock: new FakeClock(), startDelayMs: 0, crashRestartDelayMs: null });
const wapiz = new WapizEmulator({ accounts: { "wapiz-free-token": "free" } });
// A Wappfy plan with one instance: the docs publish the 409 PLAN_LIMIT_REACHED, not the numbers.
const wappfy = new WappfyEmulator({ apiKeys: ["wappfy-plan-key"], startDelayMs: 0, maxInstances: 1, requestsPerMinute: 1_000_000 });
let namespace: string;
let operator: Operator;

beforeAll(async () => {
  await installCrds();
  namespace = await createNamespace("quota");
  const [wahaUrl, wapizUrl, wappfyUrl] = await Promise.all([waha.start(), wapiz.start(), wappfy.start()]);
  await createSecret(namespace, "waha-key", { "api-key": "waha-quota-key" });
  await createSecret(namespace, "wapiz-token", { token: "wapiz-free-token" });
  await createSecret(namespace, "wappfy-key", { "api-key": "wappfy-plan-key" });
  await apply(
    namespace,
    `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: small}
spec: {type: waha, url: "${wahaUrl}", credentialsSecretRef: {name: waha-key, key: api-key}, maxInstances: 3}
---
apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: free-plan}
spec: {type: wapiz, url: "${wapizUrl}", credentialsSecretRef: {name: wapiz-token, key: token}}
---
apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: one-instance}
spec: {type: wappfy, url: "${wappfyUrl}", credentialsSecretRef: {name: wappfy-key}}`,
  );
  operator = await startOperator(namespace);
});

afterAll(async () => {
  await operator?.stop();
  await Promise.all([waha.stop(), wapiz.stop(), wappfy.stop()]);
});

/** Waits until the instance is Stalled with reason QuotaExceeded. */
const stalledOnQuota = (name: string) =>
  instanceWhere(kube, namespace, name, "Stalled QuotaExceeded", (object) => condition(object, "Stalled")?.status === "True" && condition(object, "Stalled")?.reason === "QuotaExceeded");
const session = (name: string) => wahaSessionName(namespace, name);
/** Every request that names the instance's WAHA session. */
const callsFor = (name: string) => waha.callsTo("*", new RegExp(`/${session(name)}(/|$)`));

describe("maxInstances on the provider", () => {
  it("with maxInstances 3, three of four instances proceed; the newest is Stalled QuotaExceeded and makes no provider call", async () => {
    await apply(namespace, ["first", "second", "third"].map((name) => instanceManifest(name, "small")).join("---\n"));
    for (const name of ["first", "second", "third"]) await phaseOf(kube, namespace, name, "ScanQR");
    // creationTimestamp has one-second precision: the fourth must be younger than all three.
    await severalPasses(1100);
    await apply(namespace, instanceManifest("fourth", "small"));

    const stalled = await stalledOnQuota("fourth");
    expect(condition(stalled, "Stalled")?.message).toBe("provider small allows 3 instances and 4 want one; this one waits for a free slot");
    expect(condition(stalled, "Ready")).toMatchObject({ status: "False", reason: "QuotaExceeded" });
    expect(condition(stalled, "Reconciling")?.status).toBe("False");
    expect(stalled.status?.phase).toBe("Pending");
    expect(stalled.status?.providerInstanceId).toBeUndefined();
    expect(await row(namespace, "fourth")).toEqual(["fourth", "small", "Connected", "Pending", "False", expect.any(String)]);
    expect(await eventNamed(kube, namespace, "fourth", "Warning", "QuotaExceeded")).toContain("allows 3 instances");

    // Several passes later: still not one request about it, and the three keep their slots.
    await severalPasses();
    expect(callsFor("fourth")).toEqual([]);
    expect(waha.session(session("fourth"))).toBeUndefined();
    for (const name of ["first", "second", "third"]) expect(waha.session(session(name))?.status).toBe("SCAN_QR_CODE");
  });

  it("deleting one of the three frees its slot: the fourth proceeds by itself", async () => {
    await kubectlOk(["delete", "wai", "first", "-n", namespace, "--wait=true", "--timeout=60s"]);
    const started = await phaseOf(kube, namespace, "fourth", "ScanQR");
    expect(condition(started, "Stalled")?.status).toBe("False");
    expect(started.status?.providerInstanceId).toBe(session("fourth"));
    expect(waha.session(session("fourth"))?.status).toBe("SCAN_QR_CODE");
    expect(waha.session(session("first"))).toBeUndefined();
  });
});

describe("a plan limit at the provider (WAPIZ Free: one device)", () => {
  it("the second instance is Stalled QuotaExceeded from WAPIZ's plan, without a refused write, and proceeds by itself once the first is deleted", async () => {
    await apply(namespace, instanceManifest("free-one", "free-plan"));
    const first = await phaseOf(kube, namespace, "free-one", "ScanQR");
    await apply(namespace, instanceManifest("free-two", "free-plan"));

    const stalled = await stalledOnQuota("free-two");
    expect(condition(stalled, "Stalled")?.message).toBe("wapiz plan Free allows 1 device and the account has 1; delete one or upgrade the plan");
    expect(condition(stalled, "Ready")).toMatchObject({ status: "False", reason: "QuotaExceeded" });
    expect(await eventNamed(kube, namespace, "free-two", "Warning", "QuotaExceeded")).toContain("wapiz plan Free allows 1 device");
    expect(wapiz.devices()).toHaveLength(1);
    expect(wapiz.callsTo("POST", "/api/devices").filter((call) => call.status === 403)).toEqual([]);

    await kubectlOk(["delete", "wai", "free-one", "-n", namespace, "--wait=true", "--timeout=60s"]);
    expect(wapiz.device(first.status?.providerInstanceId as string)).toBeUndefined();
    const second = await phaseOf(kube, namespace, "free-two", "ScanQR");
    expect(condition(second, "Stalled")?.status).toBe("False");
    expect(wapiz.devices()).toEqual([expect.objectContaining({ id: second.status?.providerInstanceId, label: `${namespace}/free-two [${second.metadata.uid}]` })]);
  });
});

describe("a plan limit at the provider (Wappfy: 409 PLAN_LIMIT_REACHED)", () => {
  it("the second instance is Stalled QuotaExceeded, not retried as a conflict, and proceeds once the first is deleted", async () => {
    await apply(namespace, instanceManifest("plan-one", "one-instance"));
    await phaseOf(kube, namespace, "plan-one", "ScanQR");
    await apply(namespace, instanceManifest("plan-two", "one-instance"));

    const stalled = await stalledOnQuota("plan-two");
    expect(condition(stalled, "Stalled")?.message).toContain("the Wappfy plan's instance limit");
    expect(await eventNamed(kube, namespace, "plan-two", "Warning", "QuotaExceeded")).toContain("409");
    expect(wappfy.instances()).toHaveLength(1);

    await kubectlOk(["delete", "wai", "plan-one", "-n", namespace, "--wait=true", "--timeout=60s"]);
    const second = await phaseOf(kube, namespace, "plan-two", "ScanQR");
    expect(wappfy.instances()).toEqual([expect.objectContaining({ id: second.status?.providerInstanceId })]);
  });
});
