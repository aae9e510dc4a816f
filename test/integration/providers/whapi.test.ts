/**
 * A WhatsAppInstance on a whapi device service, end to end: the real API server, the
 * operator in this process, and the whapi emulator on loopback. whapi has one API key per
 * device, so every instance names its own key Secret; it has no restart, logout or webhook
 * API, and those specs must stall without a call.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Operator } from "../../../src/operator.ts";
import { deviceId } from "../../../src/providers/whapi/client.ts";
import { decodeQrPng } from "../../emulators/shared/qr-png.ts";
import { WhapiEmulator } from "../../emulators/whapi/emulator.ts";
import { condition, eventsFor, eventually, getInstance, instanceWhere, kubeClient, kubectl, kubectlOk } from "../../support/kube.ts";
import { apply, createSecret, eventNamed, eventReasons, expectUnsupported, instanceManifest, patchInstance, phaseOf, readyIn, row, secretData, stageProvider } from "./support.ts";

/** The provider's own key (a device of its own) serves the health check and the version. */
const PROVIDER_KEY = "whapi-provider-device-key";
const KEYS = { link: "whapi-key-of-link", hooked: "whapi-key-of-hooked", doomed: "whapi-key-of-doomed" } as const;
const kube = kubeClient();
const whapi = new WhapiEmulator({ apiKeys: [PROVIDER_KEY, ...Object.values(KEYS)], pairingMs: 0 });
/** A second service: its device says PAIRING while the QR waits, and a proxy in front drops GET bodies. */
const PAIRED_KEY = "whapi-key-of-paired";
const paired = new WhapiEmulator({ apiKeys: [PAIRED_KEY], pairingMs: 0, scanState: "PAIRING", acceptsQueryKey: true, dropGetBodies: true });
let namespace: string;
let operator: Operator;

beforeAll(async () => {
  const url = await whapi.start();
  const secrets: Record<string, Record<string, string>> = { "wrong-device-key": { "api-key": "not-a-whapi-device-key" } };
  for (const [name, key] of Object.entries(KEYS)) secrets[`${name}-device-key`] = { "api-key": key };
  ({ namespace, operator } = await stageProvider({ type: "whapi", name: "whapi", url, credentials: { secret: "whapi-provider-key", value: PROVIDER_KEY }, secrets }));
});

afterAll(async () => {
  await operator?.stop();
  await whapi.stop();
  await paired.stop();
});

/** An instance on the whapi provider with its own device key. */
const applyInstance = (name: string, keySecret: string, spec = "") =>
  apply(namespace, instanceManifest(name, "whapi", `  credentialsSecretRef: {name: ${keySecret}, key: api-key}\n${spec}`));

/** Waits until the QR Secret's PNG decodes to the code the device shows now. */
function qrMatchesEmulator(name: string, key: string): Promise<string> {
  return eventually(`${name}: QR Secret shows the current code`, async () => {
    const png = (await secretData(kube, namespace, `${name}-qr`))["qr.png"];
    const current = whapi.currentQr(key);
    return png && current && decodeQrPng(png) === current ? current : undefined;
  });
}

describe("linking a whapi device", () => {
  it("apply → ScanQR with the instance's own key: serviceStart, and a QR Secret whose PNG decodes to the device's current code", async () => {
    await applyInstance("link", "link-device-key");
    const instance = await phaseOf(kube, namespace, "link", "ScanQR");
    expect(instance.status?.providerInstanceId).toBe(deviceId(KEYS.link));
    expect(whapi.state(KEYS.link)).toBe("SERVICE_SCAN");
    expect(condition(instance, "Ready")).toMatchObject({ status: "False", reason: "WaitingForScan" });
    expect(condition(instance, "Reconciling")?.status).toBe("True");
    await qrMatchesEmulator("link", KEYS.link);
    expect(whapi.calls.filter((call) => call.path === "/api/serviceStart")).toHaveLength(1);
    expect(await eventReasons(kube, namespace, "link")).toEqual(expect.arrayContaining(["Starting", "QRUpdated"]));
    // getQR echoes the key: it must not reach the status or the Events.
    const everything = JSON.stringify([instance, await eventsFor(kube, namespace, "link")]);
    expect(everything).not.toContain(KEYS.link);
  });

  it("scan → Connected and Ready, with no phone (whapi reports none), the QR Secret emptied, and the kubectl get wai row", async () => {
    const wait = kubectl(["wait", "-n", namespace, "--for=condition=Ready", "wai/link", "--timeout=60s"]);
    whapi.scan(KEYS.link);
    expect((await wait).stdout).toContain("condition met");
    const instance = await readyIn(kube, namespace, "link", "Connected");
    expect(instance.status?.phoneNumber).toBeUndefined();
    expect(instance.status?.qr).toBeUndefined();
    await eventually("QR Secret emptied", async () => (Object.keys(await secretData(kube, namespace, "link-qr")).length === 0 ? true : undefined));
    expect(await row(namespace, "link")).toEqual(["link", "whapi", "Connected", "Connected", "True", expect.any(String)]);
    expect(await eventReasons(kube, namespace, "link")).toContain("Connected");
  });
});

describe("desired states on whapi", () => {
  it("Disconnected turns the service off (serviceDestroy) and is Ready; Connected starts it again", async () => {
    await patchInstance(namespace, "link", { spec: { state: "Disconnected" } });
    await readyIn(kube, namespace, "link", "Disconnected");
    expect(whapi.state(KEYS.link)).toBe("SERVICE_OFF");
    expect(whapi.calls.filter((call) => call.path === "/api/serviceDestroy")).toHaveLength(1);
    expect(await row(namespace, "link")).toEqual(["link", "whapi", "Disconnected", "Disconnected", "True", expect.any(String)]);

    await patchInstance(namespace, "link", { spec: { state: "Connected" } });
    // The emulator's device service shows a new code after SERVICE_OFF ("off, stopped or logged out").
    await phaseOf(kube, namespace, "link", "ScanQR");
    await qrMatchesEmulator("link", KEYS.link);
    whapi.scan(KEYS.link);
    await readyIn(kube, namespace, "link", "Connected");
    expect(whapi.calls.filter((call) => call.path === "/api/serviceStart")).toHaveLength(2);
  });

  it("LoggedOut: Stalled UnsupportedByProvider naming whapi and logging out, the device left running, no call for it", async () => {
    await patchInstance(namespace, "link", { spec: { state: "LoggedOut" } });
    const stalled = await expectUnsupported({
      kube,
      namespace,
      name: "link",
      providerType: "whapi",
      operation: "logging out",
      calls: () => whapi.calls,
      forbidden: /^GET \/api\/(serviceDestroy|serviceStart)$/,
    });
    expect(stalled.status?.phase).toBe("Connected");
    expect(whapi.state(KEYS.link)).toBe("CONNECTED");
    expect(await row(namespace, "link")).toEqual(["link", "whapi", "LoggedOut", "Connected", "False", expect.any(String)]);

    await patchInstance(namespace, "link", { spec: { state: "Connected" } });
    await readyIn(kube, namespace, "link", "Connected");
  });

  it("restartRequestedAt: Stalled UnsupportedByProvider naming whapi and restart, with no call; dropping it is Ready again", async () => {
    await patchInstance(namespace, "link", { spec: { restartRequestedAt: "2026-11-21T10:00:00Z" } });
    const stalled = await expectUnsupported({
      kube,
      namespace,
      name: "link",
      providerType: "whapi",
      operation: "restart",
      calls: () => whapi.calls,
      forbidden: /^GET \/api\/(serviceDestroy|serviceStart)$/,
    });
    expect(stalled.status?.lastRestartAt).toBeUndefined();
    expect(whapi.state(KEYS.link)).toBe("CONNECTED");

    await patchInstance(namespace, "link", { spec: { restartRequestedAt: null } });
    await readyIn(kube, namespace, "link", "Connected");
  });

  it("a webhook (whapi has no API for one): Stalled UnsupportedByProvider, and the device is never started", async () => {
    const since = whapi.calls.length;
    await applyInstance("hooked", "hooked-device-key", "  webhook: {url: https://hooks.example.com/wa, events: [message]}");
    await expectUnsupported({
      since,
      kube,
      namespace,
      name: "hooked",
      providerType: "whapi",
      operation: "webhooks",
      calls: () => whapi.calls,
      forbidden: /^GET \/api\/(serviceDestroy|serviceStart)$/,
    });
    expect(whapi.state(KEYS.hooked)).toBe("SERVICE_OFF");
  });

  it("a device key whapi refuses: Stalled InvalidCredentials, and the key shows nowhere", async () => {
    await applyInstance("refused", "wrong-device-key");
    const instance = await instanceWhere(kube, namespace, "refused", "Stalled InvalidCredentials", (object) => condition(object, "Stalled")?.reason === "InvalidCredentials");
    expect(condition(instance, "Stalled")?.message).toContain("401");
    expect(JSON.stringify([instance, await eventsFor(kube, namespace, "refused")])).not.toContain("not-a-whapi-device-key");
  });
});

describe("deleting on whapi", () => {
  it("deletionPolicy Delete turns the device's service off (the device belongs to the licence and stays)", async () => {
    await applyInstance("doomed", "doomed-device-key");
    await phaseOf(kube, namespace, "doomed", "ScanQR");
    const destroys = whapi.calls.filter((call) => call.path === "/api/serviceDestroy").length;
    await kubectlOk(["delete", "wai", "doomed", "-n", namespace, "--wait=true", "--timeout=60s"]);
    expect(whapi.state(KEYS.doomed)).toBe("SERVICE_OFF");
    expect(whapi.calls.filter((call) => call.path === "/api/serviceDestroy").length).toBe(destroys + 1);
    expect(await getInstance(kube, namespace, "doomed")).toBeUndefined();
    expect(await eventNamed(kube, namespace, "doomed", "Normal", "Deleted")).toContain(deviceId(KEYS.doomed));
  });
});

describe("the whapi provider", () => {
  it("is Ready with the WhatsApp Web version from getWWebVersion, and counts its instances", async () => {
    const provider = await eventually("provider Ready with a version", async () => {
      const object = JSON.parse(await kubectlOk(["get", "wap", "whapi", "-n", namespace, "-o", "json"])) as {
        status?: { version?: string; instances?: number; conditions?: { type: string; status: string }[] };
      };
      return object.status?.conditions?.find((entry) => entry.type === "Ready")?.status === "True" && object.status.instances === 3 ? object : undefined;
    });
    expect(provider.status?.version).toBe("2.2243.7");
  });
});

describe("a whapi provider with no key of its own, behind a proxy that drops GET bodies", () => {
  beforeAll(async () => {
    const url = await paired.start();
    await createSecret(namespace, "paired-device-key", { "api-key": PAIRED_KEY });
    await apply(
      namespace,
      `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: whapi-keyless}
spec: {type: whapi, url: "${url}", whapi: {apiKeyInQuery: true}}`,
    );
    await apply(namespace, instanceManifest("paired", "whapi-keyless", "  credentialsSecretRef: {name: paired-device-key, key: api-key}\n"));
  });

  it("the key goes in the query too (spec.whapi.apiKeyInQuery), and PAIRING with its QR on screen shows that QR", async () => {
    const instance = await phaseOf(kube, namespace, "paired", "ScanQR");
    expect(paired.state(PAIRED_KEY)).toBe("PAIRING");
    expect(condition(instance, "Ready")).toMatchObject({ status: "False", reason: "WaitingForScan" });
    await eventually("paired: QR Secret shows the current code", async () => {
      const png = (await secretData(kube, namespace, "paired-qr"))["qr.png"];
      const current = paired.currentQr(PAIRED_KEY);
      return png && current && decodeQrPng(png) === current ? current : undefined;
    });
    paired.scan(PAIRED_KEY);
    await readyIn(kube, namespace, "paired", "Connected");
    expect(JSON.stringify([await getInstance(kube, namespace, "paired"), await eventsFor(kube, namespace, "paired")])).not.toContain(PAIRED_KEY);
  });

  it("the provider shows the WhatsApp Web version, read with its managed device's key", async () => {
    const provider = await eventually("keyless provider Ready with a version", async () => {
      const object = JSON.parse(await kubectlOk(["get", "wap", "whapi-keyless", "-n", namespace, "-o", "json"])) as {
        status?: { version?: string; conditions?: { type: string; status: string }[] };
      };
      return object.status?.conditions?.find((entry) => entry.type === "Ready")?.status === "True" && object.status.version ? object : undefined;
    });
    expect(provider.status?.version).toBe("2.2243.7");
  });
});
