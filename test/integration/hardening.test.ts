/**
 * Hostile and broken provider answers, end to end against the real API server: a WAHA
 * (emulator) error body that echoes a credential, a 2 MB answer, a QR payload no QR code
 * can hold, and a spec field meant for another provider type. What a user can read —
 * status, Events, the operator's log — must stay free of every credential and short.
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSchema } from "../../src/config.ts";
import { MAX_EVENT_MESSAGE_BYTES } from "../../src/kube/events.ts";
import { createLogger } from "../../src/logger.ts";
import { Operator } from "../../src/operator.ts";
import { wahaSessionName } from "../../src/providers/waha/client.ts";
import { WahaEmulator } from "../emulators/waha/emulator.ts";
import { condition, createNamespace, eventsFor, eventually, getInstance, installCrds, instanceWhere, kubeClient, kubectlOk } from "../support/kube.ts";
import { FAST_SETTINGS } from "../support/operator.ts";

const API_KEY = "hardening-api-key-0123456789";
const HMAC_KEY = "user-hmac-key-abcdefghijklmnopqrstuvwxyz";
const kube = kubeClient();
const waha = new WahaEmulator({ apiKey: API_KEY, startDelayMs: 0 });
const logLines: string[] = [];
let namespace: string;
let operator: Operator;

beforeAll(async () => {
  await installCrds();
  namespace = await createNamespace("hardening");
  const url = await waha.start();
  await kubectlOk(["create", "secret", "generic", "waha-key", "-n", namespace, `--from-literal=api-key=${API_KEY}`]);
  await kubectlOk(["label", "secret", "waha-key", "-n", namespace, "wa-operator.io/credential=true"]);
  await kubectlOk(["create", "secret", "generic", "my-hmac", "-n", namespace, `--from-literal=hmac-key=${HMAC_KEY}`]);
  await kubectlOk(["label", "secret", "my-hmac", "-n", namespace, "wa-operator.io/credential=true"]);
  await apply(`apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: waha}
spec: {type: waha, url: "${url}", credentialsSecretRef: {name: waha-key}}`);
  // The operator in this process, logging at debug level into memory so every line can be read.
  const config = configSchema.parse({ ...FAST_SETTINGS, namespaces: namespace, logLevel: "debug" });
  const capture = new Writable({ write: (chunk, _encoding, done) => (logLines.push(String(chunk)), done()) });
  operator = new Operator({ kube, config, log: createLogger(config.logLevel, capture) });
  await operator.start();
});

afterAll(async () => {
  await operator?.stop();
  await waha.stop();
});

function apply(manifest: string): Promise<string> {
  return kubectlOk(["apply", "-n", namespace, "-f", "-"], manifest);
}

function applyInstance(name: string, spec = ""): Promise<string> {
  return apply(`apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: ${name}}
spec:
  providerRef: {name: waha}
${spec}`);
}

/** Every status, every Event and every log line a user or an operator could read. */
async function everythingReadable(): Promise<{ statuses: string; events: string; logs: string }> {
  const instances = JSON.parse(await kubectlOk(["get", "wai,wap", "-n", namespace, "-o", "json"])) as { items: { status?: unknown }[] };
  const events = await kubectlOk(["get", "events", "-n", namespace, "-o", "json"]);
  return { statuses: JSON.stringify(instances.items.map((item) => item.status)), events, logs: logLines.join("") };
}

describe("no credential ever leaks", () => {
  it("a WAHA error body echoing the API key reaches no status, Event or log line", async () => {
    // Rejected on every try while the test looks (a Stalled instance is looked at again each
    // poll interval, 1 s here: a single rejection can be over before a loaded machine sees it).
    for (let i = 0; i < 60; i++) waha.failNext("POST", /^\/api\/sessions$/, { status: 400, body: { statusCode: 400, message: `invalid request for key ${API_KEY}` } });
    await applyInstance("echo");
    const stalled = await instanceWhere(kube, namespace, "echo", "Stalled by the rejection", (object) => condition(object, "Stalled")?.reason === "ProviderRejected");
    expect(condition(stalled, "Ready")?.message).toBe("waha answered 400: invalid request for key [redacted]");
    await eventually("the Warning Event", async () =>
      (await eventsFor(kube, namespace, "echo")).some((event) => event.message.includes("invalid request for key [redacted]")) ? true : undefined,
    );
    const { statuses, events, logs } = await everythingReadable();
    for (const text of [statuses, events, logs]) expect(text).not.toContain(API_KEY);
    expect(logs).toContain("invalid request for key [redacted]");
    waha.clearFailures();
  });

  it("a credential the WAHA client does not know it holds (the webhook HMAC key) is hidden as well", async () => {
    // On every try while the test looks: a create by name is retried like a read, and the
    // echo instance of the test before may still be creating its session, meeting one too.
    for (let i = 0; i < 60; i++) waha.failNext("POST", /^\/api\/sessions$/, { status: 500, body: { statusCode: 500, message: `cannot sign with ${HMAC_KEY}` } });
    await applyInstance("hooked", `  webhook: {url: "http://127.0.0.1:9/hook", events: [message], secretRef: {name: my-hmac}}`);
    await eventually("the Warning Event", async () =>
      (await eventsFor(kube, namespace, "hooked")).some((event) => event.message === "waha answered 500: cannot sign with [redacted]") ? true : undefined,
    );
    waha.clearFailures();
    // The next pass succeeds: the session carries the key, and still nothing readable does.
    await instanceWhere(kube, namespace, "hooked", "ScanQR", (object) => object.status?.phase === "ScanQR");
    expect(waha.session(wahaSessionName(namespace, "hooked"))?.config?.webhooks?.[0]?.hmac?.key).toBe(HMAC_KEY);
    const { statuses, events, logs } = await everythingReadable();
    for (const text of [statuses, events, logs]) {
      expect(text).not.toContain(HMAC_KEY);
      expect(text).not.toContain(API_KEY);
    }
  });
});

describe("hostile answers become short conditions", () => {
  it("a 2 MB answer is a short Malformed condition and Event, and no long log line", async () => {
    await applyInstance("bloated");
    await instanceWhere(kube, namespace, "bloated", "ScanQR", (object) => object.status?.phase === "ScanQR");
    const session = wahaSessionName(namespace, "bloated");
    const huge = Buffer.alloc(2 * 1024 * 1024, "x");
    // Whichever read a look makes: the session, or the code alone when one is due.
    const reads = new RegExp(`^/api/(sessions/${session}|${session}/auth/qr)$`);
    for (let i = 0; i < 20; i++) waha.failNext("GET", reads, { status: 500, raw: { contentType: "application/json", data: huge } });
    const instance = await instanceWhere(kube, namespace, "bloated", "Malformed", (object) => condition(object, "Ready")?.reason === "ProviderMalformedAnswer");
    expect(condition(instance, "Ready")?.message).toContain("more than 1 MiB");
    expect(condition(instance, "Ready")?.message.length).toBeLessThan(300);
    const event = await eventually("the Warning Event", async () => (await eventsFor(kube, namespace, "bloated")).find((each) => each.message.includes("more than 1 MiB")));
    expect(Buffer.byteLength(event.message)).toBeLessThanOrEqual(MAX_EVENT_MESSAGE_BYTES);
    expect(Math.max(...logLines.map((line) => line.length))).toBeLessThan(16 * 1024);
  });

  it("a QR payload no QR code can hold is a Malformed condition and Event, not an unclassified failure", async () => {
    await applyInstance("unprintable");
    await instanceWhere(kube, namespace, "unprintable", "ScanQR", (object) => object.status?.phase === "ScanQR");
    const session = wahaSessionName(namespace, "unprintable");
    for (let i = 0; i < 20; i++) waha.failNext("GET", new RegExp(`^/api/${session}/auth/qr$`), { status: 200, body: { value: "x".repeat(5000) } });
    const event = await eventually("the Warning Event", async () =>
      (await eventsFor(kube, namespace, "unprintable")).find((each) => each.message.includes("which no QR code can hold")),
    );
    expect(event.type).toBe("Warning");
    const failed = logLines.filter((line) => line.includes('"reconcile failed"') && line.includes("unprintable"));
    expect(failed).toEqual([]);
  });
});

describe("a field meant for another provider type", () => {
  it("is Stalled InvalidSpec naming it, not a missing PIN Secret", async () => {
    await applyInstance("misplaced", `  cloudApi: {phoneNumberId: "123", pinSecretRef: {name: no-such-pin}}`);
    const instance = await instanceWhere(kube, namespace, "misplaced", "Stalled", (object) => condition(object, "Stalled")?.status === "True");
    expect(condition(instance, "Stalled")).toMatchObject({ reason: "InvalidSpec", message: expect.stringContaining("spec.cloudApi") });
    expect(condition(instance, "Stalled")?.message).not.toContain("no-such-pin");
    expect(waha.session(wahaSessionName(namespace, "misplaced"))).toBeUndefined();
    expect((await getInstance(kube, namespace, "misplaced"))?.status?.providerInstanceId).toBeUndefined();
  });
});
