/**
 * A WhatsAppInstance on Evolution API v2, end to end: the real API server, the operator in
 * this process (its log captured at debug level), and the Evolution emulator on loopback.
 * Evolution links by QR or pairing code, restarts and logs out, keeps one webhook per
 * instance, and cannot stop a session while keeping its link.
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSchema } from "../../../src/config.ts";
import { createLogger } from "../../../src/logger.ts";
import { Operator } from "../../../src/operator.ts";
import { EvolutionEmulator } from "../../emulators/evolution/emulator.ts";
import { condition, createNamespace, eventsFor, eventually, getInstance, installCrds, kubeClient, kubectlOk } from "../../support/kube.ts";
import { FAST_SETTINGS } from "../../support/operator.ts";
import { apply, createSecret, eventNamed, expectUnsupported, instanceManifest, patchInstance, phaseOf, readyIn, row, secretData, severalPasses, providerIdOf, qrSecretShows } from "./support.ts";

const KEY = "evolution-global-key-for-tests";
const PHONE = "5511999998888";
const kube = kubeClient();
// QR codes rotate every 3 s here (Evolution's 45 s), so the Secret is seen following them.
const evolution = new EvolutionEmulator({ globalKey: KEY, qrTimeoutMs: 3000 });
const logLines: string[] = [];
let namespace: string;
let operator: Operator;
let evolutionUrl: string;

beforeAll(async () => {
  const url = await evolution.start();
  evolutionUrl = url;
  await installCrds();
  namespace = await createNamespace("evolution");
  await createSecret(namespace, "evolution-key", { "api-key": KEY });
  await apply(
    namespace,
    `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: evolution}
spec: {type: evolution, url: "${url}", credentialsSecretRef: {name: evolution-key}}`,
  );
  const config = configSchema.parse({ ...FAST_SETTINGS, namespaces: namespace, logLevel: "debug" });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString("utf8"));
      done();
    },
  });
  operator = new Operator({ kube, config, log: createLogger("debug", sink) });
  await operator.start();
});

afterAll(async () => {
  await operator?.stop();
  await evolution.stop();
});

const applyInstance = (name: string, spec = "") => apply(namespace, instanceManifest(name, "evolution", spec));

/** The emulator's id for an instance, from its status. */
const idOf = (name: string): Promise<string> => providerIdOf(kube, namespace, name);

/** Waits until the QR Secret's PNG decodes to the code the emulator shows now. */
const qrMatchesEmulator = (name: string): Promise<string> => qrSecretShows(kube, namespace, name, (id) => evolution.currentQr(id));

describe("the Evolution provider", () => {
  it("is Ready, with the version Evolution answers at /", async () => {
    const provider = await eventually("provider Ready with a version", async () => {
      const object = JSON.parse(await kubectlOk(["get", "wap", "evolution", "-n", namespace, "-o", "json"])) as {
        status?: { version?: string; conditions?: { type: string; status: string }[] };
      };
      return object.status?.conditions?.find((entry) => entry.type === "Ready")?.status === "True" && object.status.version ? object : undefined;
    });
    expect(provider.status?.version).toBe("2.3.6");
  });
});

describe("linking an Evolution instance", () => {
  it("apply → ScanQR: an instance named after the resource with its uid, and a QR Secret that follows the rotation", async () => {
    await applyInstance("link");
    const instance = await phaseOf(kube, namespace, "link", "ScanQR");
    const id = instance.status?.providerInstanceId as string;
    expect(id).toBe(`${namespace}.link [${instance.metadata.uid}]`);
    expect(condition(instance, "Ready")).toMatchObject({ status: "False", reason: "WaitingForScan" });
    const first = await qrMatchesEmulator("link");
    await eventually("a rotated code", async () => (evolution.currentQr(id) !== first ? true : undefined));
    expect(await qrMatchesEmulator("link")).not.toBe(first);
    expect(evolution.callsTo("POST", "/instance/create")).toHaveLength(1);
  });

  it("scan → Connected and Ready with the phone number, the QR Secret emptied", async () => {
    evolution.scan(await idOf("link"), PHONE);
    const instance = await readyIn(kube, namespace, "link", "Connected");
    expect(instance.status?.phoneNumber).toBe(PHONE);
    await eventually("QR Secret emptied", async () => (Object.keys(await secretData(kube, namespace, "link-qr")).length === 0 ? true : undefined));
    expect(await row(namespace, "link")).toEqual(["link", "evolution", "Connected", "Connected", PHONE, "True", expect.any(String)]);
  });

  it("pairing by code: the session starts with the number, and the QR Secret follows the code Evolution issues with each QR", async () => {
    await applyInstance("coded", `  pairing: {method: Code, phoneNumber: "${PHONE}"}`);
    const id = await idOf("coded");
    const shown = () =>
      eventually("the current pairing code in the Secret", async () => {
        const code = (await secretData(kube, namespace, "coded-qr"))["pairing-code"]?.toString();
        return code && code === evolution.currentPairingCode(id) ? code : undefined;
      });
    const first = await shown();
    expect(first).toMatch(/^[A-Z0-9]{8}$/);
    expect(evolution.instance(id)?.pairingNumber).toBe(PHONE);
    await eventually("a new code issued", async () => (evolution.currentPairingCode(id) !== first ? true : undefined));
    expect(await shown()).not.toBe(first);
  });
});

describe("what Evolution cannot do, and what it can", () => {
  it("state Disconnected: Stalled UnsupportedByProvider naming evolution, and the link is not touched", async () => {
    const id = await idOf("link");
    await patchInstance(namespace, "link", { spec: { state: "Disconnected" } });
    await expectUnsupported({
      kube,
      namespace,
      name: "link",
      providerType: "evolution",
      operation: "disconnecting",
      calls: () => evolution.calls,
      forbidden: /^(POST|DELETE) /,
    });
    expect(evolution.instance(id)).toMatchObject({ state: "open", linkedPhone: PHONE });
    await patchInstance(namespace, "link", { spec: { state: "Connected" } });
    await readyIn(kube, namespace, "link", "Connected");
  });

  it("restartRequestedAt restarts the session exactly once, keeping the link", async () => {
    await patchInstance(namespace, "link", { spec: { restartRequestedAt: "2026-11-21T10:00:00Z" } });
    await eventually("lastRestartAt", async () => ((await getInstance(kube, namespace, "link"))?.status?.lastRestartAt ? true : undefined));
    await readyIn(kube, namespace, "link", "Connected");
    await severalPasses();
    expect(evolution.callsTo("POST", /^\/instance\/restart\//)).toHaveLength(1);
    expect(evolution.instance(await idOf("link"))?.linkedPhone).toBe(PHONE);
  });

  it("the phone removes the link: DriftDetected, a new QR, and a new scan links again", async () => {
    const id = await idOf("link");
    evolution.unlinkFromPhone(id);
    expect(await eventNamed(kube, namespace, "link", "Warning", "DriftDetected")).toContain("close");
    await phaseOf(kube, namespace, "link", "ScanQR");
    await qrMatchesEmulator("link");
    evolution.scan(id, PHONE);
    await readyIn(kube, namespace, "link", "Connected");
  });

  it("LoggedOut unlinks: no phone, Ready as LoggedOut", async () => {
    await patchInstance(namespace, "link", { spec: { state: "LoggedOut" } });
    const out = await readyIn(kube, namespace, "link", "LoggedOut");
    expect(out.status?.phoneNumber).toBeUndefined();
    expect(evolution.instance(await idOf("link"))).toMatchObject({ state: "close", linkedPhone: undefined });
  });
});

describe("the Evolution webhook", () => {
  it("is set with a non-empty event list, Evolution's own names; an empty spec list sends every event by name", async () => {
    await applyInstance("hooked", "  webhook: {url: https://hooks.example.com/wa, events: [CONNECTION_UPDATE, MESSAGES_UPSERT]}");
    const id = await idOf("hooked");
    await eventually("the webhook at Evolution", async () => (evolution.instance(id)?.webhook?.enabled ? true : undefined));
    expect(evolution.instance(id)?.webhook).toMatchObject({ url: "https://hooks.example.com/wa", events: ["CONNECTION_UPDATE", "MESSAGES_UPSERT"] });
    await patchInstance(namespace, "hooked", { spec: { webhook: { events: [] } } });
    await eventually("every event", async () => ((evolution.instance(id)?.webhook?.events.length ?? 0) > 2 ? true : undefined));
    expect(evolution.instance(id)?.webhook?.events).toContain("QRCODE_UPDATED");
  });

  it("a webhook changed in Evolution's manager is set back to the spec's", async () => {
    const id = await idOf("hooked");
    const elsewhere = { enabled: true, url: "https://elsewhere.example.com/hook", byEvents: false, base64: false, events: ["MESSAGES_UPSERT"] };
    // What the manager sends: POST /webhook/set/{name} with the global key (webhook.router.ts).
    const response = await fetch(`${evolutionUrl}/webhook/set/${encodeURIComponent(id)}`, {
      method: "POST",
      headers: { apikey: KEY, "content-type": "application/json" },
      body: JSON.stringify({ webhook: elsewhere }),
    });
    expect(response.status).toBe(201);
    expect(evolution.instance(id)?.webhook?.url).toBe(elsewhere.url);
    await eventually("the spec's webhook again", async () => (evolution.instance(id)?.webhook?.url === "https://hooks.example.com/wa" ? true : undefined));
    expect(evolution.instance(id)?.webhook?.events).toContain("QRCODE_UPDATED");
  });

  it("an event name Evolution does not have: Stalled UnsupportedByProvider naming it", async () => {
    const since = evolution.calls.length;
    await applyInstance("misnamed", "  webhook: {url: https://hooks.example.com/wa, events: [session.status]}");
    await expectUnsupported({
      since,
      kube,
      namespace,
      name: "misnamed",
      providerType: "evolution",
      operation: "the webhook events session.status",
      calls: () => evolution.calls,
      forbidden: /^(POST|DELETE) /,
    });
  });
});

describe("deleting on Evolution", () => {
  it("deletionPolicy Delete removes the instance, with a Deleted Event", async () => {
    const id = await idOf("link");
    await kubectlOk(["delete", "wai", "link", "-n", namespace, "--wait=true", "--timeout=60s"]);
    expect(evolution.instance(id)).toBeUndefined();
    expect(evolution.callsTo("DELETE", /^\/instance\/delete\//)).toHaveLength(1);
  });

  it("never shows an instance token in a log line, a status or an Event, even when an error body quotes it", async () => {
    const tokens = evolution.instances().map((instance) => instance.token);
    expect(tokens.length).toBeGreaterThan(0);
    // A proxy before Evolution (or Evolution itself) quoting every token in a 400 (a 5xx
    // read would be retried unseen): the shape of Evolution's errors (src/main.ts error
    // handler), scripted with respondNext.
    const quoted = `refused, quoting ${tokens.join(" ")}`;
    for (let i = 0; i < 3; i++) evolution.respondNext({ status: 400, body: { status: 400, error: "Bad Request", response: { message: [quoted] } } });
    await eventually("the quoting error in a log line", async () => (logLines.some((line) => line.includes("refused, quoting [redacted]")) ? true : undefined));
    await severalPasses();
    const statuses = await Promise.all(["coded", "hooked", "misnamed"].map((name) => getInstance(kube, namespace, name)));
    const events = await Promise.all(["link", "coded", "hooked"].map((name) => eventsFor(kube, namespace, name)));
    const seen = JSON.stringify([statuses, events]) + logLines.join("");
    expect(logLines.length).toBeGreaterThan(0);
    for (const token of tokens) expect(seen).not.toContain(token);
  });
});
