/**
 * A WhatsAppInstance on Wappfy, end to end: the real API server, the operator in this
 * process, and the Wappfy emulator on loopback. Everything is asserted the way a user
 * sees it: status, conditions, `kubectl get wai`, Secrets and Events, plus the emulator's
 * own record of what it was asked to do.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Operator } from "../../../src/operator.ts";
import { wappfyInstanceName } from "../../../src/providers/wappfy/client.ts";
import { startReceiver, type Receiver } from "../../emulators/shared/receiver.ts";
import { signWappfyBody, WappfyEmulator } from "../../emulators/wappfy/emulator.ts";
import { condition, eventually, getInstance, instanceWhere, kubeClient, kubectl, kubectlOk } from "../../support/kube.ts";
import { apply, eventNamed, eventReasons, expectUnsupported, instanceManifest, patchInstance, phaseOf, readyIn, row, secretData, severalPasses, stageProvider, providerIdOf, qrSecretShows } from "./support.ts";

const API_KEY = "wappfy-test-key";
const PHONE = "5511999998888";
const kube = kubeClient();
// Real time: the instance boots at once, and codes rotate every 4 s so a test can watch one change.
const wappfy = new WappfyEmulator({ apiKeys: [API_KEY], startDelayMs: 0, qrRotationMs: 4000, maxQrCodes: 10_000, requestsPerMinute: 1_000_000 });
let namespace: string;
let url: string;
let operator: Operator;
let receiver: Receiver;

beforeAll(async () => {
  url = await wappfy.start();
  receiver = await startReceiver();
  ({ namespace, operator } = await stageProvider({ type: "wappfy", name: "wappfy", url, credentials: { secret: "wappfy-key", value: API_KEY } }));
});

afterAll(async () => {
  await operator?.stop();
  await wappfy.stop();
  await receiver?.close();
});

const applyInstance = (name: string, spec = "") => apply(namespace, instanceManifest(name, "wappfy", spec));
/** The emulator's id for an instance, from its status. */
const idOf = (name: string): Promise<string> => providerIdOf(kube, namespace, name);

/** Waits until the QR Secret's PNG decodes to the code the emulator shows now. */
const qrMatchesEmulator = (name: string): Promise<string> => qrSecretShows(kube, namespace, name, (id) => wappfy.currentQr(id));

async function connect(name: string): Promise<string> {
  await phaseOf(kube, namespace, name, "ScanQR");
  const id = await idOf(name);
  wappfy.scan(id, PHONE);
  await readyIn(kube, namespace, name, "Connected");
  return id;
}

describe("linking a number on Wappfy", () => {
  it("apply → ScanQR: a Wappfy instance named <namespace>.<name> [<uid>], and a QR Secret whose PNG decodes to the emulator's current code", async () => {
    await applyInstance("link", "  displayName: Support Line");
    const instance = await phaseOf(kube, namespace, "link", "ScanQR");
    const id = instance.status?.providerInstanceId as string;
    expect(id).toMatch(/^inst_/);
    expect(wappfy.instance(id)).toMatchObject({ name: wappfyInstanceName({ namespace, name: "link", uid: instance.metadata.uid as string }), type: "waha", status: "scan_qr" });
    expect(instance.status?.qr?.secretName).toBe("link-qr");
    expect(condition(instance, "Ready")).toMatchObject({ status: "False", reason: "WaitingForScan" });
    expect(condition(instance, "Reconciling")?.status).toBe("True");
    expect(condition(instance, "Stalled")?.status).toBe("False");
    await qrMatchesEmulator("link");
    // Wappfy gives only the image: there is no raw payload to put in qr.txt.
    expect((await secretData(kube, namespace, "link-qr"))["qr.txt"]).toBeUndefined();
    expect(await eventReasons(kube, namespace, "link")).toEqual(expect.arrayContaining(["Created", "Starting"]));
    // The code fetched in the pass that created the instance is named by the Created Event.
    expect(await eventNamed(kube, namespace, "link", "Normal", "Created")).toContain("its QR code is in Secret link-qr");
    expect(wappfy.callsTo("POST", "/api/instances")).toHaveLength(1);
    expect(wappfy.callsTo("POST", `/api/instances/${id}/connect`)).toHaveLength(1);
  });

  it("the QR Secret follows Wappfy as it replaces the code", async () => {
    const first = await qrMatchesEmulator("link");
    const second = await eventually("a new code", async () => {
      const code = await qrMatchesEmulator("link");
      return code !== first ? code : undefined;
    });
    expect(second).not.toBe(first);
  });

  it("scan → Connected with the phone number, Ready, the QR Secret emptied, and the kubectl get wai row", async () => {
    const wait = kubectl(["wait", "-n", namespace, "--for=condition=Ready", "wai/link", "--timeout=60s"]);
    wappfy.scan(await idOf("link"), PHONE);
    expect((await wait).stdout).toContain("condition met");
    const instance = await readyIn(kube, namespace, "link", "Connected");
    expect(instance.status?.phoneNumber).toBe(PHONE);
    expect(instance.status?.qr).toBeUndefined();
    expect(condition(instance, "Ready")?.message).toContain(PHONE);
    await eventually("QR Secret emptied", async () => (Object.keys(await secretData(kube, namespace, "link-qr")).length === 0 ? true : undefined));
    expect(await row(namespace, "link")).toEqual(["link", "wappfy", "Connected", "Connected", PHONE, "True", expect.any(String)]);
    expect(await eventNamed(kube, namespace, "link", "Normal", "Connected")).toContain(PHONE);
  });
});

describe("desired states on Wappfy", () => {
  it("Disconnected disconnects and keeps the link; Connected connects again without a new QR", async () => {
    const id = await idOf("link");
    await patchInstance(namespace, "link", { spec: { state: "Disconnected" } });
    const stopped = await readyIn(kube, namespace, "link", "Disconnected");
    expect(stopped.status?.phoneNumber).toBe(PHONE);
    expect(wappfy.instance(id)).toMatchObject({ status: "disconnected", phone: PHONE });
    expect(wappfy.callsTo("POST", `/api/instances/${id}/disconnect`)).toHaveLength(1);
    expect(await row(namespace, "link")).toEqual(["link", "wappfy", "Disconnected", "Disconnected", PHONE, "True", expect.any(String)]);
    expect(await eventNamed(kube, namespace, "link", "Normal", "Disconnected")).toContain("link is kept");

    const qrUpdates = (await eventReasons(kube, namespace, "link")).filter((reason) => reason === "QRUpdated").length;
    await patchInstance(namespace, "link", { spec: { state: "Connected" } });
    await readyIn(kube, namespace, "link", "Connected");
    expect(wappfy.instance(id)).toMatchObject({ status: "connected", phone: PHONE });
    expect(wappfy.callsTo("POST", `/api/instances/${id}/connect`)).toHaveLength(2);
    expect((await eventReasons(kube, namespace, "link")).filter((reason) => reason === "QRUpdated").length).toBe(qrUpdates);
  });

  it("restartRequestedAt restarts the instance exactly once, keeping the link", async () => {
    const id = await idOf("link");
    await patchInstance(namespace, "link", { spec: { restartRequestedAt: "2026-11-21T10:00:00Z" } });
    await instanceWhere(kube, namespace, "link", "lastRestartAt recorded", (object) => object.status?.lastRestartAt === "2026-11-21T10:00:00Z");
    const back = await readyIn(kube, namespace, "link", "Connected");
    expect(back.status?.phoneNumber).toBe(PHONE);
    await severalPasses();
    expect(wappfy.callsTo("POST", `/api/instances/${id}/restart`)).toHaveLength(1);
    expect(await eventNamed(kube, namespace, "link", "Normal", "Restarted")).toContain("2026-11-21T10:00:00Z");
  });

  it("LoggedOut logs out: no phone, Ready as LoggedOut; Connected again shows a new QR", async () => {
    await applyInstance("leaving");
    const id = await connect("leaving");
    await patchInstance(namespace, "leaving", { spec: { state: "LoggedOut" } });
    const out = await readyIn(kube, namespace, "leaving", "LoggedOut");
    expect(out.status?.phoneNumber).toBeUndefined();
    expect(wappfy.instance(id)).toMatchObject({ status: "disconnected", phone: undefined });
    expect(wappfy.callsTo("POST", `/api/instances/${id}/logout`)).toHaveLength(1);
    expect(await row(namespace, "leaving")).toEqual(["leaving", "wappfy", "LoggedOut", "LoggedOut", "True", expect.any(String)]);
    expect(await eventReasons(kube, namespace, "leaving")).toContain("LoggedOut");
    // Several passes later it is still logged out: Wappfy's "disconnected" is not mistaken for a stop.
    await severalPasses();
    expect((await getInstance(kube, namespace, "leaving"))?.status?.phase).toBe("LoggedOut");

    await patchInstance(namespace, "leaving", { spec: { state: "Connected" } });
    await phaseOf(kube, namespace, "leaving", "ScanQR");
    await qrMatchesEmulator("leaving");
  });
});

describe("what Wappfy cannot do", () => {
  it("pairing by code: Stalled UnsupportedByProvider naming wappfy, and nothing is created at Wappfy", async () => {
    const since = wappfy.calls.length;
    await applyInstance("coded", `  pairing: {method: Code, phoneNumber: "${PHONE}"}`);
    await expectUnsupported({
      since,
      kube,
      namespace,
      name: "coded",
      providerType: "wappfy",
      operation: "pairing by code",
      calls: () => wappfy.calls,
      // Nothing at Wappfy is created, started or wired for it (the other instances only poll).
      forbidden: /^(POST|PUT|PATCH|DELETE) /,
    });
    expect(wappfy.instances().filter((instance) => instance.name.startsWith(`${namespace}.coded `))).toEqual([]);
    expect(await row(namespace, "coded")).toEqual(["coded", "wappfy", "Connected", "Pending", "False", expect.any(String)]);

    // Asking for a QR instead is all it takes.
    await patchInstance(namespace, "coded", { spec: { pairing: { method: "QR" } } });
    await phaseOf(kube, namespace, "coded", "ScanQR");
    await qrMatchesEmulator("coded");
  });

  it("a webhook event name Wappfy does not have: Stalled UnsupportedByProvider naming it, and no webhook call", async () => {
    const since = wappfy.calls.length;
    await applyInstance("misnamed", `  webhook: {url: "${receiver.url}/hook", events: [message.received, session.status]}`);
    await expectUnsupported({
      since,
      kube,
      namespace,
      name: "misnamed",
      providerType: "wappfy",
      operation: "the webhook events session.status",
      calls: () => wappfy.calls,
      // Nothing at Wappfy is created, started or wired for it (the other instances only poll).
      forbidden: /^(POST|PUT|PATCH|DELETE) /,
    });
    expect(wappfy.instances().filter((instance) => instance.name.startsWith(`${namespace}.misnamed `))).toEqual([]);
    expect(wappfy.callsTo("POST", "/api/webhooks")).toHaveLength(0);
  });
});

describe("webhooks on Wappfy", () => {
  it("an account webhook scoped to our instance_id, with the HMAC key from <name>-webhook; its deliveries verify", async () => {
    const events = ["instance.qr", "instance.connected", "instance.disconnected", "message.received"];
    await applyInstance("hooked", `  webhook: {url: "${receiver.url}/hook", events: [${events.join(", ")}]}`);
    const data = await eventually("hooked-webhook Secret", async () => {
      const found = await secretData(kube, namespace, "hooked-webhook");
      return found["hmac-key"] ? Object.fromEntries(Object.entries(found).map(([key, value]) => [key, value.toString()])) : undefined;
    });
    expect(data).toEqual({ url: `${receiver.url}/hook`, events: events.join(","), "hmac-key": expect.stringMatching(/^[0-9a-f]{64}$/) });
    const instance = await phaseOf(kube, namespace, "hooked", "ScanQR");
    const id = instance.status?.providerInstanceId as string;
    expect(instance.status?.webhook).toEqual({ secretName: "hooked-webhook", url: `${receiver.url}/hook` });
    const webhook = await eventually("our account webhook", async () => wappfy.webhooks().find((candidate) => candidate.instanceId === id));
    expect(webhook).toMatchObject({ url: `${receiver.url}/hook`, events, instanceId: id, secret: data["hmac-key"] });

    // The phone links: Wappfy tells the receiver, signed with the key from the Secret.
    wappfy.scan(id, PHONE);
    await readyIn(kube, namespace, "hooked", "Connected");
    await wappfy.settleDeliveries();
    const delivery = await eventually("a signed instance.connected delivery", async () =>
      receiver.received.find((request) => request.headers["x-wappfy-event"] === "instance.connected"),
    );
    expect(delivery.headers["x-wappfy-signature"]).toBe(signWappfyBody(delivery.rawBody, data["hmac-key"] as string));
    expect(delivery.json).toMatchObject({ event: "instance.connected", instance_id: id });
    // One webhook of ours, never re-created on later passes; the key shows nowhere but the Secret.
    await severalPasses();
    expect(wappfy.webhooks().filter((candidate) => candidate.instanceId === id)).toHaveLength(1);
    expect(wappfy.callsTo("POST", "/api/webhooks")).toHaveLength(1);
    const everything = JSON.stringify([await getInstance(kube, namespace, "hooked"), await eventReasons(kube, namespace, "hooked")]);
    expect(everything).not.toContain(data["hmac-key"]);
  });
});

describe("removing the webhook on Wappfy", () => {
  it("removing spec.webhook deletes our account webhook, once; a person's webhook on the instance stays", async () => {
    const id = await idOf("hooked");
    // Added in Wappfy's dashboard by a person, for the same instance.
    await fetch(`${url}/api/webhooks`, {
      method: "POST",
      headers: { "X-Api-Key": API_KEY, "Content-Type": "application/json" },
      body: JSON.stringify({ url: `${receiver.url}/crm`, events: ["message.received"], instance_id: id }),
    });
    await patchInstance(namespace, "hooked", { spec: { webhook: null } });
    await eventually("our webhook gone", async () =>
      wappfy.webhooks().some((webhook) => webhook.instanceId === id && webhook.url === `${receiver.url}/hook`) ? undefined : true,
    );
    await instanceWhere(kube, namespace, "hooked", "status without a webhook", (object) => object.status?.webhook === undefined);
    await severalPasses();
    expect(wappfy.webhooks().filter((webhook) => webhook.instanceId === id).map((webhook) => webhook.url)).toEqual([`${receiver.url}/crm`]);
    expect(wappfy.callsTo("DELETE", /^\/api\/webhooks\//)).toHaveLength(1);
    expect(condition((await readyIn(kube, namespace, "hooked", "Connected")), "Stalled")?.status).toBe("False");
  });
});

describe("deleting on Wappfy", () => {
  it("deletionPolicy Delete deletes the Wappfy instance and its webhooks, with a Deleted Event", async () => {
    const id = await idOf("hooked");
    await kubectlOk(["delete", "wai", "hooked", "-n", namespace, "--wait=true", "--timeout=60s"]);
    expect(wappfy.instance(id)).toBeUndefined();
    expect(wappfy.webhooks().filter((webhook) => webhook.instanceId === id)).toEqual([]);
    expect(wappfy.callsTo("DELETE", `/api/instances/${id}`)).toHaveLength(1);
    expect(await eventReasons(kube, namespace, "hooked")).toContain("Deleted");
  });

  it("deletionPolicy Orphan leaves the Wappfy instance", async () => {
    await applyInstance("kept", "  deletionPolicy: Orphan");
    const id = (await phaseOf(kube, namespace, "kept", "ScanQR")).status?.providerInstanceId as string;
    await kubectlOk(["delete", "wai", "kept", "-n", namespace, "--wait=true", "--timeout=60s"]);
    expect(wappfy.instance(id)).toBeDefined();
    expect(wappfy.callsTo("DELETE", `/api/instances/${id}`)).toHaveLength(0);
  });
});

describe("the Wappfy provider", () => {
  it("is Ready, reports no version (Wappfy has none), and counts its instances", async () => {
    const text = await eventually("provider Ready", async () => {
      const out = await kubectlOk(["get", "wap", "wappfy", "-n", namespace, "-o", "json"]);
      const object = JSON.parse(out) as { status?: { version?: string; instances?: number; conditions?: { type: string; status: string }[] } };
      return object.status?.conditions?.find((entry) => entry.type === "Ready")?.status === "True" && object.status.instances === 4 ? object : undefined;
    });
    expect(text.status?.version).toBeUndefined();
    const providerRow = (await kubectlOk(["get", "wap", "wappfy", "-n", namespace, "--no-headers"])).trim().split(/\s+/);
    expect(providerRow.slice(0, 5)).toEqual(["wappfy", "wappfy", url, "True", "4"]);
  });
});
