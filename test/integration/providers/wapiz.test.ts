/**
 * A WhatsAppInstance on WAPIZ, end to end: the real API server, the operator in this
 * process, and the WAPIZ emulator on loopback. WAPIZ links by QR and takes one webhook URL
 * per device; it cannot stop, restart or log a device out, and those specs must stall
 * without a call.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Operator } from "../../../src/operator.ts";
import { WapizEmulator } from "../../emulators/wapiz/emulator.ts";
import { condition, eventually, instanceWhere, kubeClient, kubectl, kubectlOk } from "../../support/kube.ts";
import {
  apply,
  createSecret,
  eventNamed,
  eventReasons,
  expectUnsupported,
  instanceManifest,
  patchInstance,
  phaseOf,
  readyIn,
  row,
  secretData,
  severalPasses,
  stageProvider,
  providerIdOf,
  qrSecretShows,
} from "./support.ts";

const TOKEN = "wapiz-test-token";
const USER = { email: "ops@example.com", password: "rahasia123" };
const kube = kubeClient();
// The Regular plan (3 devices): this file is about the lifecycle; plan limits are in quota.test.ts.
// Tokens from a login live 3 s, so a few passes see one expire (the static TOKEN never does).
const wapiz = new WapizEmulator({ accounts: { [TOKEN]: "regular" }, users: [{ ...USER, plan: "regular" }], tokenTtlMs: 3000 });
let namespace: string;
let operator: Operator;
let wapizUrl: string;

beforeAll(async () => {
  wapizUrl = await wapiz.start();
  ({ namespace, operator } = await stageProvider({ type: "wapiz", name: "wapiz", url: wapizUrl, credentials: { secret: "wapiz-token", key: "token", value: TOKEN } }));
});

afterAll(async () => {
  await operator?.stop();
  await wapiz.stop();
});

const applyInstance = (name: string, spec = "") => apply(namespace, instanceManifest(name, "wapiz", spec));

/** The emulator's id for an instance, from its status. */
const idOf = (name: string): Promise<string> => providerIdOf(kube, namespace, name);

/** Waits until the QR Secret's PNG decodes to the code the emulator shows now. */
const qrMatchesEmulator = (name: string): Promise<string> => qrSecretShows(kube, namespace, name, (id) => wapiz.currentQr(id));

/** Requests that would stop, restart, log out, (re)connect or change the device. */
const mutating = (id: string) => new RegExp(`^(POST|PATCH|DELETE) |^GET /api/devices/${id}/qr$`);

describe("linking a WAPIZ device", () => {
  it("apply → ScanQR: a device labelled with displayName, and a QR Secret whose PNG decodes to the device's current code", async () => {
    await applyInstance("link", "  displayName: Support Line");
    const instance = await phaseOf(kube, namespace, "link", "ScanQR");
    const id = instance.status?.providerInstanceId as string;
    expect(wapiz.device(id)).toMatchObject({ label: `Support Line [${instance.metadata.uid}]`, status: "connected", webhookUrl: null });
    expect(condition(instance, "Ready")).toMatchObject({ status: "False", reason: "WaitingForScan" });
    await qrMatchesEmulator("link");
    expect(wapiz.callsTo("POST", "/api/devices")).toHaveLength(1);
    // The code fetched in the pass that created the device is named by the Created Event.
    expect(await eventNamed(kube, namespace, "link", "Normal", "Created")).toContain("its QR code is in Secret link-qr");
  });

  it("scan → Connected and Ready, with no phone (WAPIZ reports none), the QR Secret emptied, and the kubectl get wai row", async () => {
    const wait = kubectl(["wait", "-n", namespace, "--for=condition=Ready", "wai/link", "--timeout=60s"]);
    wapiz.scan(await idOf("link"));
    expect((await wait).stdout).toContain("condition met");
    const instance = await readyIn(kube, namespace, "link", "Connected");
    expect(instance.status?.phoneNumber).toBeUndefined();
    await eventually("QR Secret emptied", async () => (Object.keys(await secretData(kube, namespace, "link-qr")).length === 0 ? true : undefined));
    expect(await row(namespace, "link")).toEqual(["link", "wapiz", "Connected", "Connected", "True", expect.any(String)]);
  });

  it("the phone removes the link: the operator notices and shows a new QR", async () => {
    const id = await idOf("link");
    wapiz.unlink(id);
    expect(await eventNamed(kube, namespace, "link", "Warning", "DriftDetected")).toContain("disconnected");
    await phaseOf(kube, namespace, "link", "ScanQR");
    await qrMatchesEmulator("link");
    wapiz.scan(id);
    await readyIn(kube, namespace, "link", "Connected");
  });
});

describe("what WAPIZ cannot do", () => {
  it("state Disconnected: Stalled UnsupportedByProvider naming wapiz and disconnecting; the device is not touched", async () => {
    const id = await idOf("link");
    await patchInstance(namespace, "link", { spec: { state: "Disconnected" } });
    const stalled = await expectUnsupported({
      kube,
      namespace,
      name: "link",
      providerType: "wapiz",
      operation: "disconnecting",
      calls: () => wapiz.calls,
      forbidden: mutating(id),
    });
    expect(stalled.status?.phase).toBe("Connected");
    expect(wapiz.device(id)?.status).toBe("logged_in");
    expect(await row(namespace, "link")).toEqual(["link", "wapiz", "Disconnected", "Connected", "False", expect.any(String)]);

    await patchInstance(namespace, "link", { spec: { state: "Connected" } });
    await readyIn(kube, namespace, "link", "Connected");
  });

  it("state LoggedOut and restartRequestedAt: Stalled UnsupportedByProvider naming each, with no call", async () => {
    const id = await idOf("link");
    await patchInstance(namespace, "link", { spec: { state: "LoggedOut" } });
    await expectUnsupported({ kube, namespace, name: "link", providerType: "wapiz", operation: "logging out", calls: () => wapiz.calls, forbidden: mutating(id) });
    await patchInstance(namespace, "link", { spec: { state: "Connected", restartRequestedAt: "2026-11-21T10:00:00Z" } });
    await expectUnsupported({ kube, namespace, name: "link", providerType: "wapiz", operation: "restart", calls: () => wapiz.calls, forbidden: mutating(id) });
    expect(wapiz.device(id)?.status).toBe("logged_in");

    await patchInstance(namespace, "link", { spec: { restartRequestedAt: null } });
    await readyIn(kube, namespace, "link", "Connected");
  });

  it("webhook events (WAPIZ has one URL and no filter): Stalled UnsupportedByProvider, and no webhook PATCH", async () => {
    const since = wapiz.calls.length;
    await applyInstance("filtered", "  webhook: {url: https://hooks.example.com/wa, events: [message]}");
    await expectUnsupported({
      since,
      kube,
      namespace,
      name: "filtered",
      providerType: "wapiz",
      operation: "filtering webhook events (remove message)",
      calls: () => wapiz.calls,
      forbidden: /^(POST|PATCH|DELETE) /,
    });
    expect(wapiz.devices().filter((device) => device.label.startsWith(`${namespace}/filtered `))).toEqual([]);
    expect(wapiz.callsTo("PATCH", /\/webhook$/)).toHaveLength(0);
  });
});

describe("the WAPIZ webhook", () => {
  it("the URL is PATCHed onto the device (no events, no signing), and a new URL replaces it", async () => {
    await kubectlOk(["delete", "wai", "filtered", "-n", namespace, "--wait=true", "--timeout=60s"]);
    await applyInstance("hooked", "  webhook: {url: https://hooks.example.com/wa}");
    const instance = await phaseOf(kube, namespace, "hooked", "ScanQR");
    const id = instance.status?.providerInstanceId as string;
    await eventually("the webhook URL on the device", async () => (wapiz.device(id)?.webhookUrl === "https://hooks.example.com/wa" ? true : undefined));
    expect(wapiz.callsTo("PATCH", `/api/devices/${id}/webhook`)).toHaveLength(1);
    expect(instance.status?.webhook).toEqual({ secretName: "hooked-webhook", url: "https://hooks.example.com/wa" });
    expect(Object.keys(await secretData(kube, namespace, "hooked-webhook")).sort()).toEqual(["events", "hmac-key", "url"]);

    await patchInstance(namespace, "hooked", { spec: { webhook: { url: "https://hooks.example.com/other" } } });
    await eventually("the new URL on the device", async () => (wapiz.device(id)?.webhookUrl === "https://hooks.example.com/other" ? true : undefined));
    await instanceWhere(kube, namespace, "hooked", "status shows the new URL", (object) => object.status?.webhook?.url === "https://hooks.example.com/other");
    expect(wapiz.callsTo("PATCH", `/api/devices/${id}/webhook`)).toHaveLength(2);
  });
});

describe("removing the WAPIZ webhook", () => {
  it("removing spec.webhook clears the device's webhook URL, once", async () => {
    const id = await idOf("hooked");
    const patches = wapiz.callsTo("PATCH", `/api/devices/${id}/webhook`).length;
    await patchInstance(namespace, "hooked", { spec: { webhook: null } });
    await eventually("no webhook URL on the device", async () => (wapiz.device(id)?.webhookUrl === null ? true : undefined));
    await instanceWhere(kube, namespace, "hooked", "status without a webhook", (object) => object.status?.webhook === undefined);
    await severalPasses();
    expect(wapiz.callsTo("PATCH", `/api/devices/${id}/webhook`)).toHaveLength(patches + 1);
  });
});

describe("deleting on WAPIZ", () => {
  it("deletionPolicy Delete deletes the device, with a Deleted Event", async () => {
    const id = await idOf("hooked");
    await kubectlOk(["delete", "wai", "hooked", "-n", namespace, "--wait=true", "--timeout=60s"]);
    expect(wapiz.device(id)).toBeUndefined();
    expect(wapiz.callsTo("DELETE", `/api/devices/${id}`)).toHaveLength(1);
    expect(await eventNamed(kube, namespace, "hooked", "Normal", "Deleted")).toContain(id);
  });
});

describe("a WAPIZ account login instead of a token", () => {
  it("with email and password in the Secret the operator logs in, and logs in again when the token expires", async () => {
    await createSecret(namespace, "wapiz-account", USER);
    await apply(
      namespace,
      `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: wapiz-login}
spec: {type: wapiz, url: "${wapizUrl}", credentialsSecretRef: {name: wapiz-account}}`,
    );
    await apply(namespace, instanceManifest("by-login", "wapiz-login"));
    const instance = await phaseOf(kube, namespace, "by-login", "ScanQR");
    expect(wapiz.device(instance.status?.providerInstanceId as string)).toBeDefined();
    // The 3 s token runs out while the operator keeps polling: it logs in again by itself.
    await eventually("a second login", async () => (wapiz.logins.filter((login) => login.status === 200).length >= 2 ? true : undefined));
    wapiz.scan(instance.status?.providerInstanceId as string);
    const ready = await readyIn(kube, namespace, "by-login", "Connected");
    expect(condition(ready, "Stalled")?.status).toBe("False");
    expect(wapiz.logins.every((login) => login.email === USER.email && login.status === 200)).toBe(true);
    expect(JSON.stringify([ready, await eventReasons(kube, namespace, "by-login")])).not.toContain(USER.password);
  });
});

describe("the WAPIZ provider", () => {
  it("is Ready, with no version (WAPIZ reports none), and counts its instances", async () => {
    const provider = await eventually("provider Ready", async () => {
      const object = JSON.parse(await kubectlOk(["get", "wap", "wapiz", "-n", namespace, "-o", "json"])) as {
        status?: { version?: string; instances?: number; conditions?: { type: string; status: string }[] };
      };
      return object.status?.conditions?.find((entry) => entry.type === "Ready")?.status === "True" && object.status.instances === 1 ? object : undefined;
    });
    expect(provider.status?.version).toBeUndefined();
  });
});
