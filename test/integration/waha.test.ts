/**
 * A WhatsAppInstance on WAHA, end to end: the real API server, the operator in this
 * process, and the WAHA emulator on loopback with a clock the tests move.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHmac } from "node:crypto";
import type { Operator } from "../../src/operator.ts";
import { wahaSessionName } from "../../src/providers/waha/client.ts";
import { SECRETS } from "../../src/kube/resources.ts";
import type { SecretObject } from "../../src/kube/secrets.ts";
import { FakeClock } from "../emulators/shared/clock.ts";
import { decodeQrPng } from "../emulators/shared/qr-png.ts";
import { startReceiver, type Receiver } from "../emulators/shared/receiver.ts";
import { WahaEmulator } from "../emulators/waha/emulator.ts";
import {
  condition,
  createNamespace,
  eventReasonsWith,
  eventsFor,
  eventually,
  getInstance,
  installCrds,
  instanceWhere,
  kubeClient,
  kubectl,
  kubectlOk,
} from "../support/kube.ts";
import { startOperator } from "../support/operator.ts";

const API_KEY = "waha-test-key";
const PHONE = "5511999998888";
const kube = kubeClient();
const clock = new FakeClock();
const waha = new WahaEmulator({ apiKey: API_KEY, clock, startDelayMs: 0, crashRestartDelayMs: null });
let namespace: string;
let operator: Operator;
let receiver: Receiver;

beforeAll(async () => {
  await installCrds();
  namespace = await createNamespace("waha");
  const url = await waha.start();
  receiver = await startReceiver();
  await kubectlOk(["create", "secret", "generic", "waha-key", "-n", namespace, `--from-literal=api-key=${API_KEY}`]);
  await kubectlOk(["label", "secret", "waha-key", "-n", namespace, "wa-operator.io/credential=true"]);
  await apply(`apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: waha}
spec: {type: waha, url: "${url}", credentialsSecretRef: {name: waha-key, key: api-key}}`);
  operator = await startOperator(namespace);
});

afterAll(async () => {
  // Cluster-scoped: other test files share this API server, and their operators see it.
  await kubectl(["delete", "cwap", "shared-waha", "--ignore-not-found", "--wait=false"]);
  await operator?.stop();
  await waha.stop();
  await receiver?.close();
});

function apply(manifest: string): Promise<string> {
  return kubectlOk(["apply", "-n", namespace, "-f", "-"], manifest);
}

function applyInstance(name: string, spec: string): Promise<string> {
  return apply(`apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: ${name}}
spec:
  providerRef: {name: waha}
${spec}`);
}

const session = (name: string) => wahaSessionName(namespace, name);

async function qrSecret(name: string): Promise<Record<string, Buffer>> {
  const secret = await kube.find<SecretObject>(SECRETS, namespace, `${name}-qr`);
  return Object.fromEntries(Object.entries(secret?.data ?? {}).map(([key, value]) => [key, Buffer.from(value, "base64")]));
}

/** Waits until the QR Secret's PNG decodes to the emulator's current code. */
async function qrMatchesEmulator(name: string): Promise<string> {
  return eventually(`${name}: QR Secret shows the current code`, async () => {
    const data = await qrSecret(name);
    const current = waha.currentQr(session(name));
    if (!data["qr.png"] || !current) return undefined;
    return decodeQrPng(data["qr.png"]) === current && data["qr.txt"]?.toString() === current ? current : undefined;
  });
}

async function connect(name: string): Promise<void> {
  await instanceWhere(kube, namespace, name, "ScanQR", (instance) => instance.status?.phase === "ScanQR");
  waha.scan(session(name), PHONE);
  await instanceWhere(kube, namespace, name, "Connected", (instance) => instance.status?.phase === "Connected");
}

describe("linking a number", () => {
  it("apply → ScanQR with a QR Secret whose PNG decodes to the emulator's current code", async () => {
    await applyInstance("link", "  displayName: Support Line");
    const instance = await instanceWhere(kube, namespace, "link", "ScanQR", (object) => object.status?.phase === "ScanQR");
    expect(instance.status?.qr?.secretName).toBe("link-qr");
    expect(instance.status?.providerInstanceId).toBe(session("link"));
    expect(condition(instance, "Ready")).toMatchObject({ status: "False", reason: "WaitingForScan" });
    expect(condition(instance, "Reconciling")).toMatchObject({ status: "True" });
    expect(instance.metadata.finalizers).toContain("wa-operator.io/finalizer");
    await qrMatchesEmulator("link");
    // The session carries our uid, so the operator never adopts a stranger's session.
    expect(waha.session(session("link"))?.config?.metadata?.["wa-operator.io/uid"]).toBe(instance.metadata.uid);
  });

  it("rotation refreshes the QR Secret as WAHA replaces the code", async () => {
    const first = await qrMatchesEmulator("link");
    clock.advance(60_001);
    expect(waha.currentQr(session("link"))).not.toBe(first);
    const second = await qrMatchesEmulator("link");
    clock.advance(20_001);
    const third = await qrMatchesEmulator("link");
    expect(new Set([first, second, third]).size).toBe(3);
    // Events are recorded after the Secret and status are written, so they may trail a moment.
    // The first code was told by the Created Event; the two that replaced it are one QRUpdated, counted twice.
    await eventually("two QRUpdated events, folded into one", async () => {
      const events = await eventsFor(kube, namespace, "link");
      return (events.find((event) => event.reason === "QRUpdated")?.count ?? 0) >= 2 ? true : undefined;
    });
    const created = (await eventsFor(kube, namespace, "link")).find((event) => event.reason === "Created");
    expect(created?.message).toBe("created and started the waha session; its QR code is in Secret link-qr");
  });

  it("scan → Connected with the phone number, Ready for kubectl wait, and the QR Secret emptied", async () => {
    const wait = kubectl(["wait", "-n", namespace, "--for=condition=Ready", "wai/link", "--timeout=60s"]);
    waha.scan(session("link"), PHONE);
    const result = await wait;
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("condition met");
    const instance = await getInstance(kube, namespace, "link");
    expect(instance?.status?.phase).toBe("Connected");
    expect(instance?.status?.phoneNumber).toBe(PHONE);
    expect(instance?.status?.qr).toBeUndefined();
    expect(instance?.status?.observedGeneration).toBe(instance?.metadata.generation);
    await eventually("QR Secret emptied", async () => (Object.keys(await qrSecret("link")).length === 0 ? true : undefined));
    const row = await kubectlOk(["get", "wai", "-n", namespace, "link", "--no-headers"]);
    expect(row).toMatch(new RegExp(`^link\\s+waha\\s+Connected\\s+Connected\\s+${PHONE}\\s+True\\s+`));
    const reasons = await eventReasonsWith(kube, namespace, "link", ["Connected"]);
    expect(reasons).toEqual(expect.arrayContaining(["Created", "QRUpdated", "Connected"]));
    // Created and started in one call (POST /api/sessions with start: true): no start call, no Starting Event.
    expect(reasons).not.toContain("Starting");
    expect(waha.callsTo("POST", new RegExp(`/api/sessions/${session("link")}/start$`))).toHaveLength(0);
  });

  it("pairing by code puts WAHA's code in the QR Secret and links when entered", async () => {
    await applyInstance("paired", `  pairing: {method: Code, phoneNumber: "${PHONE}"}`);
    const code = await eventually("pairing code in the Secret", async () => (await qrSecret("paired"))["pairing-code"]?.toString());
    expect(code).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}$/);
    expect(waha.callsTo("POST", /\/auth\/request-code$/)).toHaveLength(1);
    const instance = await instanceWhere(kube, namespace, "paired", "waiting for the code", (object) => condition(object, "Ready")?.reason === "WaitingForPairingCode");
    expect(condition(instance, "Ready")?.message).toContain("paired-qr");
    expect(JSON.stringify(instance.status)).not.toContain(code);
    waha.enterPairingCode(session("paired"));
    await instanceWhere(kube, namespace, "paired", "Connected", (object) => object.status?.phase === "Connected");
  });
});

describe("desired states", () => {
  it("Disconnected stops the session and keeps the link; Connected resumes without a new QR", async () => {
    await kubectlOk(["patch", "wai", "link", "-n", namespace, "--type=merge", "-p", '{"spec":{"state":"Disconnected"}}']);
    const stopped = await instanceWhere(kube, namespace, "link", "Disconnected and Ready", (object) => object.status?.phase === "Disconnected" && condition(object, "Ready")?.status === "True");
    expect(stopped.status?.phoneNumber).toBe(PHONE);
    expect(waha.session(session("link"))?.status).toBe("STOPPED");
    await kubectlOk(["patch", "wai", "link", "-n", namespace, "--type=merge", "-p", '{"spec":{"state":"Connected"}}']);
    await instanceWhere(kube, namespace, "link", "Connected again", (object) => object.status?.phase === "Connected" && condition(object, "Ready")?.status === "True");
    const reasons = await eventReasonsWith(kube, namespace, "link", ["Disconnected"]);
    expect(reasons).toContain("Disconnected");
  });

  it("LoggedOut logs out and leaves the session stopped", async () => {
    await applyInstance("leaving", "");
    await connect("leaving");
    await kubectlOk(["patch", "wai", "leaving", "-n", namespace, "--type=merge", "-p", '{"spec":{"state":"LoggedOut"}}']);
    const out = await instanceWhere(kube, namespace, "leaving", "LoggedOut and Ready", (object) => object.status?.phase === "LoggedOut" && condition(object, "Ready")?.status === "True");
    expect(out.status?.phoneNumber).toBeUndefined();
    const state = waha.session(session("leaving"));
    expect(state?.status).toBe("STOPPED");
    expect(state?.me ?? null).toBeNull();
    expect(waha.callsTo("POST", new RegExp(`${session("leaving")}/logout$`))).toHaveLength(1);
  });

  it("restarts exactly once per restartRequestedAt value and records it", async () => {
    const restarts = () => waha.callsTo("POST", new RegExp(`${session("link")}/restart$`)).length;
    const before = restarts();
    await kubectlOk(["patch", "wai", "link", "-n", namespace, "--type=merge", "-p", '{"spec":{"restartRequestedAt":"2026-11-21T10:00:00Z"}}']);
    await instanceWhere(kube, namespace, "link", "lastRestartAt recorded", (object) => object.status?.lastRestartAt === "2026-11-21T10:00:00Z");
    await instanceWhere(kube, namespace, "link", "Connected after the restart", (object) => object.status?.phase === "Connected");
    // Several more passes (poll 1 s) must not restart again.
    await operator.instanceQueue.whenIdle();
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(restarts()).toBe(before + 1);
    await kubectlOk(["patch", "wai", "link", "-n", namespace, "--type=merge", "-p", '{"spec":{"restartRequestedAt":"2026-11-21T11:00:00Z"}}']);
    await instanceWhere(kube, namespace, "link", "second restart recorded", (object) => object.status?.lastRestartAt === "2026-11-21T11:00:00Z");
    expect(restarts()).toBe(before + 2);
    expect(await eventReasonsWith(kube, namespace, "link", ["Restarted"])).toContain("Restarted");
  });
});

describe("a restart whose call fails", () => {
  it("is still owed: carried out on a later pass, once, and only then recorded", async () => {
    const restarts = () => waha.callsTo("POST", new RegExp(`${session("link")}/restart$`));
    const before = restarts().length;
    waha.failNext("POST", new RegExp(`${session("link")}/restart$`));
    await kubectlOk(["patch", "wai", "link", "-n", namespace, "--type=merge", "-p", '{"spec":{"restartRequestedAt":"2026-11-21T12:00:00Z"}}']);
    await instanceWhere(kube, namespace, "link", "lastRestartAt recorded", (object) => object.status?.lastRestartAt === "2026-11-21T12:00:00Z");
    const calls = restarts().slice(before);
    expect(calls.map((call) => call.status)).toEqual([503, 201]);
  });
});

describe("keeping it true", () => {
  it("a session stopped behind the operator's back is started again, with an Event", async () => {
    waha.stopBehindBack(session("link"));
    await eventually("DriftDetected event", async () =>
      (await eventsFor(kube, namespace, "link")).some((event) => event.reason === "DriftDetected" && event.message.includes("STOPPED")) ? true : undefined,
    );
    await instanceWhere(kube, namespace, "link", "Connected again", (object) => object.status?.phase === "Connected");
    expect(waha.session(session("link"))?.status).toBe("WORKING");
  });

  it("a session deleted behind the operator's back is created again, with an Event", async () => {
    waha.deleteBehindBack(session("leaving"));
    await kubectlOk(["patch", "wai", "leaving", "-n", namespace, "--type=merge", "-p", '{"spec":{"state":"Connected"}}']);
    await eventually("DriftDetected event", async () =>
      (await eventsFor(kube, namespace, "leaving")).some((event) => event.reason === "DriftDetected" && event.message.includes("deleted")) ? true : undefined,
    );
    await instanceWhere(kube, namespace, "leaving", "ScanQR on the new session", (object) => object.status?.phase === "ScanQR");
    expect(waha.session(session("leaving"))).toBeDefined();
  });

  it("FAILED while Connected is wanted: phase Failed with the backoff in the message, then a restart", async () => {
    await applyInstance("fragile", "");
    await connect("fragile");
    waha.unlinkFromPhone(session("fragile"));
    const failed = await instanceWhere(kube, namespace, "fragile", "Failed", (object) => object.status?.phase === "Failed");
    expect(condition(failed, "Ready")?.message).toMatch(/failed \(FAILED\).*restart/);
    expect(failed.status?.recovery?.notBefore).toBeDefined();
    // The base backoff is 1 s in tests (1 min in production), doubling up to the max.
    await instanceWhere(kube, namespace, "fragile", "restarted to ScanQR", (object) => object.status?.phase === "ScanQR");
    expect(waha.callsTo("POST", new RegExp(`${session("fragile")}/restart$`)).length).toBe(1);
    const reasons = await eventReasonsWith(kube, namespace, "fragile", ["Restarted"]);
    expect(reasons).toEqual(expect.arrayContaining(["ProviderError", "Restarted"]));
  });

  it("an expired QR series (FAILED after 6 codes) is restarted with growing waits", async () => {
    await applyInstance("unscanned", "");
    await instanceWhere(kube, namespace, "unscanned", "ScanQR", (object) => object.status?.phase === "ScanQR");
    clock.advance(60_000 + 5 * 20_000 + 1);
    expect(waha.session(session("unscanned"))?.status).toBe("FAILED");
    await instanceWhere(kube, namespace, "unscanned", "Failed", (object) => object.status?.phase === "Failed");
    await instanceWhere(kube, namespace, "unscanned", "restarted", (object) => object.status?.phase === "ScanQR" && object.status?.recovery?.attempts === 1);
    clock.advance(60_000 + 5 * 20_000 + 1);
    const again = await instanceWhere(kube, namespace, "unscanned", "Failed a second time", (object) => object.status?.phase === "Failed" && object.status?.recovery?.notBefore !== undefined);
    expect(condition(again, "Ready")?.message).toContain("restarting in 2s (attempt 2)");
  });
});

describe("webhooks", () => {
  it("creates <name>-webhook with a random HMAC key, configures the session with it, and the key stays secret", async () => {
    await applyInstance("hooked", `  webhook: {url: "${receiver.url}/hook", events: [session.status, message]}`);
    const secret = await eventually("webhook Secret", () => kube.find<SecretObject>(SECRETS, namespace, "hooked-webhook"));
    const data = Object.fromEntries(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, "base64").toString()]));
    expect(data["url"]).toBe(`${receiver.url}/hook`);
    expect(data["events"]).toBe("session.status,message");
    expect(data["hmac-key"]).toMatch(/^[0-9a-f]{64}$/);
    const instance = await instanceWhere(kube, namespace, "hooked", "ScanQR", (object) => object.status?.phase === "ScanQR");
    const hook = waha.session(session("hooked"))?.config?.webhooks?.[0];
    expect(hook).toMatchObject({ url: `${receiver.url}/hook`, events: ["session.status", "message"], hmac: { key: data["hmac-key"] } });
    expect(instance.status?.webhook).toEqual({ secretName: "hooked-webhook", url: `${receiver.url}/hook` });
    expect(secret.metadata.ownerReferences?.[0]).toMatchObject({ kind: "WhatsAppInstance", name: "hooked", uid: instance.metadata.uid, controller: true });

    // WAHA signs what it sends with the key, so a receiver mounting the Secret can verify it.
    await waha.settle();
    const delivery = await eventually("a signed session.status delivery", async () => receiver.received.find((request) => request.headers["x-webhook-hmac"]));
    expect(delivery.headers["x-webhook-hmac"]).toBe(createHmac("sha512", data["hmac-key"] as string).update(delivery.rawBody).digest("hex"));

    const everything = JSON.stringify([instance.status, await eventsFor(kube, namespace, "hooked")]);
    expect(everything).not.toContain(data["hmac-key"]);
    expect(everything).not.toContain(API_KEY);
  });

  it("editing spec.webhook of a linked instance restarts its WAHA session once, says so, and keeps a webhook added in WAHA", async () => {
    await applyInstance("rewired", `  webhook: {url: "${receiver.url}/rewired", events: [message]}`);
    await connect("rewired");
    // Somebody adds a webhook of their own in WAHA (its dashboard does a PUT, which restarts the session on its link).
    const config = waha.session(session("rewired"))?.config;
    const added = await fetch(`${waha.url}/api/sessions/${session("rewired")}`, {
      method: "PUT",
      headers: { "X-Api-Key": API_KEY, "Content-Type": "application/json" },
      body: JSON.stringify({ config: { ...config, webhooks: [...(config?.webhooks ?? []), { url: "https://crm.example.com/wa", events: ["message.any"] }] } }),
    });
    expect(added.status).toBe(200);
    // A few passes (poll 1 s): the other webhook is not the operator's, so nothing is rewired.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const boots = waha.session(session("rewired"))?.boots ?? 0;

    await kubectlOk(["patch", "wai", "rewired", "-n", namespace, "--type=merge", "-p", '{"spec":{"webhook":{"events":["message","message.ack"]}}}']);
    await eventually("the new events in WAHA", async () =>
      waha.session(session("rewired"))?.config?.webhooks?.some((hook) => hook.url === `${receiver.url}/rewired` && hook.events.includes("message.ack")) ? true : undefined,
    );
    await instanceWhere(kube, namespace, "rewired", "Connected again", (object) => object.status?.phase === "Connected" && condition(object, "Ready")?.status === "True");
    const restarted = await eventually("the Restarted Event", async () =>
      (await eventsFor(kube, namespace, "rewired")).find((event) => event.reason === "Restarted")?.message,
    );
    expect(restarted).toContain("reconfiguring the webhook restarts the waha session");
    // Several more passes: nothing more to change, so no more restarts.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(waha.session(session("rewired"))?.boots).toBe(boots + 1);
    expect(waha.session(session("rewired"))?.config?.webhooks?.map((hook) => hook.url)).toContain("https://crm.example.com/wa");
  });

  it("the webhook Secret is garbage-collected with the instance", async () => {
    await kubectlOk(["delete", "wai", "hooked", "-n", namespace, "--wait=true", "--timeout=60s"]);
    // The garbage collector learns about new CRDs by rediscovery every 30 s, hence the longer bound.
    await eventually("webhook Secret gone", async () => ((await kube.find(SECRETS, namespace, "hooked-webhook")) ? undefined : true), 90_000);
    await eventually("QR Secret gone", async () => ((await kube.find(SECRETS, namespace, "hooked-qr")) ? undefined : true), 90_000);
  });
});

describe("deletion", () => {
  it("deletionPolicy Delete removes the WAHA session", async () => {
    await applyInstance("doomed", "");
    await instanceWhere(kube, namespace, "doomed", "ScanQR", (object) => object.status?.phase === "ScanQR");
    await kubectlOk(["delete", "wai", "doomed", "-n", namespace, "--wait=true", "--timeout=60s"]);
    expect(waha.session(session("doomed"))).toBeUndefined();
    expect(waha.callsTo("DELETE", new RegExp(`/api/sessions/${session("doomed")}$`))).toHaveLength(1);
  });

  it("deletionPolicy Orphan leaves the WAHA session", async () => {
    await applyInstance("kept", "  deletionPolicy: Orphan");
    await instanceWhere(kube, namespace, "kept", "ScanQR", (object) => object.status?.phase === "ScanQR");
    await kubectlOk(["delete", "wai", "kept", "-n", namespace, "--wait=true", "--timeout=60s"]);
    expect(waha.session(session("kept"))).toBeDefined();
    expect(waha.callsTo("DELETE", new RegExp(`/api/sessions/${session("kept")}$`))).toHaveLength(0);
  });
});

describe("adopting a session that already exists", () => {
  /** A session made outside the operator, as a team moving to it has them (POST /api/sessions, waha-openapi.json). */
  async function legacySession(name: string): Promise<void> {
    const response = await fetch(`${waha.url}/api/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": API_KEY },
      body: JSON.stringify({ name, start: true }),
    });
    expect(response.status).toBeLessThan(300);
  }

  it("takes over a linked session without a new QR, and says so in an Event", async () => {
    await legacySession("legacy");
    await eventually("legacy session waits for a scan", async () => (waha.session("legacy")?.status === "SCAN_QR_CODE" ? true : undefined));
    waha.scan("legacy", PHONE);
    await applyInstance("moved", "  adopt: {id: legacy}");
    const moved = await instanceWhere(kube, namespace, "moved", "Connected", (object) => object.status?.phase === "Connected");
    expect(moved.status?.providerInstanceId).toBe("legacy");
    expect(moved.status?.phoneNumber).toBe(PHONE);
    await eventReasonsWith(kube, namespace, "moved", ["Adopted"]);
    const events = await eventsFor(kube, namespace, "moved");
    expect(events.map((event) => event.reason)).toContain("Adopted");
    expect(events.map((event) => event.reason)).not.toContain("QRUpdated");
    expect(waha.session(session("moved"))).toBeUndefined();
    // Ownership is recorded where WAHA keeps it, the session's metadata; the link survives the config write.
    await eventually("ownership recorded in WAHA's metadata", async () =>
      waha.session("legacy")?.config?.metadata?.["wa-operator.io/uid"] === moved.metadata.uid ? true : undefined,
    );
    await instanceWhere(kube, namespace, "moved", "Connected after recording", (object) => object.status?.phase === "Connected" && condition(object, "Ready")?.status === "True");
    expect(waha.session("legacy")?.status).toBe("WORKING");
  });

  it("a session left by an Orphan delete loses our uid, so a new instance can adopt it", async () => {
    await applyInstance("handed", "  deletionPolicy: Orphan");
    const old = await instanceWhere(kube, namespace, "handed", "ScanQR", (object) => object.status?.phase === "ScanQR");
    const uidOn = () => waha.session(session("handed"))?.config?.metadata?.["wa-operator.io/uid"];
    expect(uidOn()).toBe(old.metadata.uid);
    await kubectlOk(["delete", "wai", "handed", "-n", namespace, "--wait=true", "--timeout=60s"]);
    expect(waha.session(session("handed"))).toBeDefined();
    expect(uidOn()).toBeUndefined();
    await applyInstance("heir", `  adopt: {id: "${session("handed")}"}`);
    const heir = await instanceWhere(kube, namespace, "heir", "ScanQR on the handed-over session", (object) => object.status?.phase === "ScanQR");
    expect(heir.status?.providerInstanceId).toBe(session("handed"));
    expect(condition(heir, "Stalled")?.status).not.toBe("True");
    await eventually("the heir's uid on the session", async () => (uidOn() === heir.metadata.uid ? true : undefined));
  });

  it("refuses a session another resource owns, and creates nothing for one that does not exist", async () => {
    await applyInstance("thief", `  adopt: {id: "${session("link")}"}`);
    // "link" holds the claim on its session (older, recorded): refused before any provider call.
    const thief = await instanceWhere(kube, namespace, "thief", "SessionClaimed", (object) => condition(object, "Stalled")?.reason === "SessionClaimed");
    expect(condition(thief, "Ready")?.status).toBe("False");
    expect(thief.status?.providerInstanceId).toBeUndefined();
    await applyInstance("ghost", "  adopt: {id: no-such-session}");
    const ghost = await instanceWhere(kube, namespace, "ghost", "SessionNotFound", (object) => condition(object, "Stalled")?.reason === "SessionNotFound");
    expect(condition(ghost, "Stalled")?.message).toContain("no-such-session");
    expect(waha.session(session("ghost"))).toBeUndefined();
    await kubectlOk(["delete", "wai", "thief", "ghost", "-n", namespace, "--wait=true", "--timeout=60s"]);
    expect(waha.session(session("link"))).toBeDefined();
  });
});

describe("the provider", () => {
  it("is Ready with WAHA's version and counts its instances", async () => {
    const out = await eventually("provider Ready", async () => {
      const text = await kubectlOk(["get", "wap", "waha", "-n", namespace, "-o", "json"]);
      const object = JSON.parse(text) as { status?: { version?: string; instances?: number; conditions?: { type: string; status: string }[] } };
      return object.status?.conditions?.find((entry) => entry.type === "Ready")?.status === "True" ? object : undefined;
    });
    expect(out.status?.version).toBe("2026.7.1 (WEBJS)");
    expect(out.status?.instances).toBeGreaterThanOrEqual(3);
  });

  it("down then back: instances report the outage and recover", async () => {
    waha.setAvailable(false);
    const down = await instanceWhere(kube, namespace, "link", "ProviderUnavailable", (object) => condition(object, "Ready")?.reason === "ProviderUnavailable");
    expect(condition(down, "Ready")?.message).toContain("503");
    expect(condition(down, "Stalled")?.status).toBe("False");
    waha.setAvailable(true);
    await instanceWhere(kube, namespace, "link", "Ready again", (object) => condition(object, "Ready")?.status === "True");
  });

  it("a bad key stalls the provider and its instances with InvalidCredentials; rotating the Secret back recovers", async () => {
    await kubectlOk(["create", "secret", "generic", "waha-key", "-n", namespace, "--from-literal=api-key=wrong", "--dry-run=client", "-o", "yaml"]).then((yaml) =>
      kubectlOk(["apply", "-n", namespace, "-f", "-"], yaml),
    );
    await eventually("provider InvalidCredentials", async () => {
      const object = JSON.parse(await kubectlOk(["get", "wap", "waha", "-n", namespace, "-o", "json"])) as { status?: { conditions?: { type: string; status: string; reason: string }[] } };
      const stalled = object.status?.conditions?.find((entry) => entry.type === "Stalled");
      return stalled?.status === "True" && stalled.reason === "InvalidCredentials" ? true : undefined;
    });
    await instanceWhere(kube, namespace, "link", "Stalled InvalidCredentials", (object) => condition(object, "Stalled")?.reason === "InvalidCredentials" && condition(object, "Stalled")?.status === "True");
    await kubectlOk(["create", "secret", "generic", "waha-key", "-n", namespace, `--from-literal=api-key=${API_KEY}`, "--dry-run=client", "-o", "yaml"]).then((yaml) =>
      kubectlOk(["apply", "-n", namespace, "-f", "-"], yaml),
    );
    await instanceWhere(kube, namespace, "link", "Ready after the rotation", (object) => condition(object, "Ready")?.status === "True");
  });

  it("an instance whose provider does not exist is Stalled with ProviderNotFound", async () => {
    await apply(`apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: orphaned}
spec: {providerRef: {name: nowhere}}`);
    const instance = await instanceWhere(kube, namespace, "orphaned", "Stalled", (object) => condition(object, "Stalled")?.status === "True");
    expect(condition(instance, "Stalled")).toMatchObject({ reason: "ProviderNotFound", message: expect.stringContaining("nowhere") });
  });
});

describe("a ClusterWhatsAppProvider", () => {
  it("serves instances in any namespace, with its key Secret in another namespace", async () => {
    const keys = await createNamespace("shared-keys");
    await kubectlOk(["create", "secret", "generic", "waha-key", "-n", keys, `--from-literal=api-key=${API_KEY}`]);
    await kubectlOk(["label", "secret", "waha-key", "-n", keys, "wa-operator.io/credential=true"]);
    await kubectlOk(
      ["apply", "-f", "-"],
      `apiVersion: wa-operator.io/v1alpha1
kind: ClusterWhatsAppProvider
metadata: {name: shared-waha}
spec: {type: waha, url: "${waha.url}", credentialsSecretRef: {name: waha-key, namespace: ${keys}, key: api-key}, allowedNamespaces: {from: All}}`,
    );
    await apply(`apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: shared}
spec: {providerRef: {kind: ClusterWhatsAppProvider, name: shared-waha}}`);
    await instanceWhere(kube, namespace, "shared", "ScanQR", (object) => object.status?.phase === "ScanQR");
    await qrMatchesEmulator("shared");
    // The count is taken a second after the instance appears (one recount for a burst), so it is awaited too.
    const provider = await eventually("cluster provider Ready, counting the instance", async () => {
      const object = JSON.parse(await kubectlOk(["get", "cwap", "shared-waha", "-o", "json"])) as { status?: { instances?: number; conditions?: { type: string; status: string }[] } };
      return object.status?.conditions?.find((entry) => entry.type === "Ready")?.status === "True" && object.status.instances === 1 ? object : undefined;
    });
    expect(provider.status?.instances).toBe(1);
    const row = await kubectlOk(["get", "cwap", "shared-waha", "--no-headers"]);
    expect(row).toMatch(/^shared-waha\s+waha\s+http:\/\/127\.0\.0\.1:\d+\s+True\s+1\s+/);
  });
});
