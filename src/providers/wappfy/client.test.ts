import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fakeTimeDeps } from "../../../test/emulators/shared/client-deps.ts";
import { FakeClock } from "../../../test/emulators/shared/clock.ts";
import { decodeQrPng } from "../../../test/emulators/shared/qr-png.ts";
import { signWappfyBody, WAPPFY_GUIDE_EVENTS, WappfyEmulator, type WappfyEmulatorOptions } from "../../../test/emulators/wappfy/emulator.ts";
import { ProviderError, type ProviderErrorKind } from "../errors.ts";
import type { InstanceRef, ProviderClient } from "../types.ts";
import { createWappfyClient, WAPPFY_WEBHOOK_EVENTS, wappfyCapabilities, wappfyInstanceName } from "./client.ts";

const KEY = "wappfy-key-of-support";
const OTHER_KEY = "wappfy-key-of-someone-else";
const ref: InstanceRef = { namespace: "support", name: "support-line", uid: "uid-1" };
const PHONE = "5511999998888";

let clock: FakeClock;
let emulator: WappfyEmulator;
let baseUrl: string;
let limiterWaits: number[];
let client: ProviderClient;

function clientWith(apiKey: string | undefined): ProviderClient {
  const fake = fakeTimeDeps(clock);
  limiterWaits = fake.limiterWaits;
  return createWappfyClient(
    { type: "wappfy", url: baseUrl, rateLimit: { requestsPerSecond: 1000, burst: 1000 }, timeoutMs: 5000, ...(apiKey ? { apiKey } : {}) },
    fake.deps,
  );
}

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

function expectKind(error: ProviderError, kind: ProviderErrorKind): void {
  expect({ kind: error.kind, message: error.message }).toMatchObject({ kind });
}

/** Creates the instance and lets it reach scan_qr. */
async function createdAndScanning(): Promise<string> {
  const { id } = await client.create(ref);
  await client.connect(ref, id);
  clock.advance(3000);
  return id;
}

async function connected(): Promise<string> {
  const id = await createdAndScanning();
  emulator.scan(id, PHONE);
  return id;
}

beforeEach(async () => {
  clock = new FakeClock();
  emulator = new WappfyEmulator({ apiKeys: [KEY, OTHER_KEY], clock, startDelayMs: 3000 });
  baseUrl = await emulator.start();
  client = clientWith(KEY);
});

afterEach(async () => {
  await emulator.stop();
});

describe("wappfy client lifecycle", () => {
  it("creates, connects, shows the QR, connects with the phone, and stops, restarts, logs out and deletes", async () => {
    expect(await client.observe(ref)).toBeNull();

    const created = await client.create(ref);
    expect(created).toMatchObject({ phase: "Pending", providerState: "created" });
    expect(emulator.instance(created.id)).toMatchObject({ name: "support.support-line [uid-1]", type: "waha" });
    const withId = { ...ref, providerInstanceId: created.id };

    await client.connect(withId, created.id);
    expect(await client.observe(withId)).toMatchObject({ id: created.id, phase: "Starting", providerState: "starting" });

    clock.advance(3000);
    expect(await client.observe(withId)).toMatchObject({ phase: "ScanQR", providerState: "scan_qr" });
    const qr = await client.fetchQr(withId, created.id);
    expect(qr?.validForMs).toBe(60_000);
    expect(qr?.text).toBeUndefined();
    expect(decodeQrPng(qr?.png ?? Buffer.alloc(0))).toBe(emulator.currentQr(created.id));

    emulator.scan(created.id, PHONE);
    expect(await client.observe(withId)).toEqual({
      id: created.id,
      phase: "Connected",
      providerState: "connected",
      phoneNumber: PHONE,
      webhookInSync: true,
    });
    expect(await client.fetchQr(withId, created.id)).toBeNull();

    await client.disconnect(withId, created.id);
    expect(await client.observe(withId)).toMatchObject({ phase: "Disconnected", phoneNumber: PHONE });

    await client.connect(withId, created.id);
    clock.advance(3000);
    expect(await client.observe(withId)).toMatchObject({ phase: "Connected", phoneNumber: PHONE });

    await client.restart(withId, created.id);
    expect(await client.observe(withId)).toMatchObject({ phase: "Starting" });
    clock.advance(3000);
    expect(await client.observe(withId)).toMatchObject({ phase: "Connected", phoneNumber: PHONE });

    await client.logout(withId, created.id);
    // Wappfy's word after a logout is "disconnected"; the controller tells LoggedOut apart.
    const loggedOut = await client.observe(withId);
    expect(loggedOut).toMatchObject({ phase: "Disconnected", providerState: "disconnected" });
    expect(loggedOut?.phoneNumber).toBeUndefined();
    expect(emulator.instance(created.id)?.phone).toBeUndefined();

    await client.remove(withId, created.id);
    expect(emulator.instance(created.id)).toBeUndefined();
    expect(await client.observe(withId)).toBeNull();
  });

  it("creates a cloud_api instance when the spec asks for one", async () => {
    const { id } = await client.create({ ...ref, wappfy: { type: "cloud_api" } });
    expect(emulator.instance(id)?.type).toBe("cloud_api");
  });

  it("finds an instance by its derived name when no id was recorded, so it is never created twice", async () => {
    await client.create({ ...ref, name: "other-line", uid: "uid-2" });
    const { id } = await client.create(ref);
    // A crash before status.providerInstanceId was written: the next pass knows no id.
    expect(await client.observe(ref)).toMatchObject({ id, phase: "Pending" });
    expect(emulator.callsTo("POST", "/api/instances")).toHaveLength(2);
  });

  it("does not find an instance of the same name in another account", async () => {
    const foreign = clientWith(OTHER_KEY);
    await foreign.create(ref);
    client = clientWith(KEY);
    expect(await client.observe(ref)).toBeNull();
  });

  it("reports no QR while the instance is not waiting for a scan", async () => {
    const { id } = await client.create(ref);
    expect(await client.fetchQr(ref, id)).toBeNull();
    expect(emulator.callsTo("GET", `/api/instances/${id}/qr`)).toEqual([]);
  });
});

/** Restarts the emulator with other options; the client follows it. */
async function restartEmulator(options: WappfyEmulatorOptions): Promise<void> {
  await emulator.stop();
  emulator = new WappfyEmulator({ apiKeys: [KEY, OTHER_KEY], clock, startDelayMs: 3000, ...options });
  baseUrl = await emulator.start();
  client = clientWith(KEY);
}

/** Creates an instance the way a person (or an older operator) would, by name, without the client. */
async function createByHand(name: string): Promise<string> {
  const response = await fetch(`${baseUrl}/api/instances`, {
    method: "POST",
    headers: { "X-Api-Key": KEY, "Content-Type": "application/json" },
    body: JSON.stringify({ name, type: "waha" }),
  });
  return ((await response.json()) as { data: { id: string } }).data.id;
}

describe("wappfy client: lists", () => {
  it("finds its instance by name on a later page of the paginated list", async () => {
    await restartEmulator({ pageSize: 2 });
    for (const name of ["a", "b", "c", "d"]) await createByHand(name);
    const { id } = await client.create(ref);
    expect(await client.observe(ref)).toMatchObject({ id });
    expect(emulator.callsTo("GET", "/api/instances").length).toBeGreaterThanOrEqual(3);
    expect(emulator.callsTo("POST", "/api/instances")).toHaveLength(5);
  });

  it("reads the bare data array of the instances page too", async () => {
    await restartEmulator({ listFormat: "bare" });
    const { id } = await client.create(ref);
    expect(await client.observe(ref)).toMatchObject({ id });
    await client.configureWebhook({ ...ref, webhook: { url: "http://127.0.0.1:9/wa", events: [] } }, id);
    expect(await client.observe({ ...ref, webhook: { url: "http://127.0.0.1:9/wa", events: [] } })).toMatchObject({ webhookInSync: true });
    await client.checkHealth();
  });

  it("a 409 PLAN_LIMIT_REACHED on create is QuotaExceeded, not a conflict", async () => {
    await restartEmulator({ maxInstances: 1 });
    await createByHand("taken");
    const error = await failure(client.create(ref));
    expectKind(error, "QuotaExceeded");
    expect(error).toMatchObject({ status: 409, code: "PLAN_LIMIT_REACHED" });
  });
});

describe("wappfy client: ownership", () => {
  it("names no two resources can share: a-b/c and a/b-c are different instances", async () => {
    const { id } = await client.create({ namespace: "a-b", name: "c", uid: "uid-a-b-c" });
    expect(emulator.instance(id)?.name).toBe(wappfyInstanceName({ namespace: "a-b", name: "c", uid: "uid-a-b-c" }));
    expect(await client.observe({ namespace: "a", name: "b-c", uid: "uid-a-bc" })).toBeNull();
    expect(await client.observe({ namespace: "a-b", name: "c", uid: "uid-a-b-c" })).toMatchObject({ id, ownerUid: "uid-a-b-c" });
  });

  it("keeps names of long namespaces and names within 100 characters, and still finds them", async () => {
    const long = { namespace: "n".repeat(63), name: "x".repeat(200), uid: "0b6f2a47-1d4e-4a53-9d0c-3c1f1e2a9b7d" };
    const { id } = await client.create(long);
    expect(emulator.instance(id)?.name.length).toBeLessThanOrEqual(100);
    expect(await client.observe(long)).toMatchObject({ id, ownerUid: long.uid });
  });

  it("a resource re-created under the same name does not find its predecessor's instance", async () => {
    await client.create(ref);
    expect(await client.observe({ ...ref, uid: "uid-of-the-new-one" })).toBeNull();
  });

  it("keeps following an instance named the old way when status.providerInstanceId names it", async () => {
    const id = await createByHand("support-support-line");
    const session = await client.observe({ ...ref, providerInstanceId: id });
    expect(session).toMatchObject({ id, phase: "Pending" });
    expect(session?.ownerUid).toBeUndefined();
  });

  it("never deletes an instance it cannot prove it created", async () => {
    const id = await createByHand("support-support-line");
    const error = await failure(client.remove({ ...ref, providerInstanceId: id }, id));
    expectKind(error, "Rejected");
    expect(error.message).toContain("deletionPolicy: Orphan");
    expect(emulator.instance(id)).toBeDefined();
    expect(emulator.callsTo("DELETE", `/api/instances/${id}`)).toEqual([]);
  });

  it("never deletes another resource's instance, even when status names it", async () => {
    const id = await createByHand(wappfyInstanceName({ ...ref, uid: "uid-somebody-else" }));
    expect(await client.observe(ref)).toBeNull();
    expectKind(await failure(client.remove({ ...ref, providerInstanceId: id }, id)), "Rejected");
    expect(emulator.instance(id)).toBeDefined();
  });
});

describe("wappfy client: 409 means already there", () => {
  it.each([
    ["connect while starting", async (id: string) => client.connect(ref, id), "connect"],
    ["disconnect while created", async (id: string) => client.disconnect(ref, id), "disconnect"],
    ["logout while nothing is linked", async (id: string) => client.logout(ref, id), "logout"],
  ])("treats %s as success", async (_what, act, action) => {
    const { id } = await client.create(ref);
    if (action === "connect") await client.connect(ref, id);
    await expect(act(id)).resolves.toBeUndefined();
    expect(emulator.callsTo("POST", `/api/instances/${id}/${action}`).at(-1)?.status).toBe(409);
  });
});

describe("wappfy client errors", () => {
  it("maps 401 to InvalidCredentials without repeating the key", async () => {
    const error = await failure(clientWith("wrong-key").checkHealth());
    expectKind(error, "InvalidCredentials");
    expect(error.status).toBe(401);
    expect(error.message).not.toContain("wrong-key");
  });

  it("redacts the key when the provider echoes it in an error message", async () => {
    emulator.respondNext({ status: 401, body: { error: { code: "UNAUTHORIZED", message: `key ${KEY} is revoked` } } });
    const error = await failure(client.checkHealth());
    expect(error.message).not.toContain(KEY);
    expect(error.message).toContain("[redacted]");
  });

  it("refuses to call without a key", async () => {
    const error = await failure(clientWith(undefined).checkHealth());
    expectKind(error, "InvalidCredentials");
    expect(emulator.calls).toEqual([]);
  });

  it("maps 404 to NotFound for an action on an unknown instance", async () => {
    const error = await failure(client.connect(ref, "inst_gone"));
    expectKind(error, "NotFound");
    expect(error.status).toBe(404);
  });

  it("observes a recorded id that no longer exists as no session, and deletes it idempotently", async () => {
    const gone = { ...ref, providerInstanceId: "inst_gone" };
    expect(await client.observe(gone)).toBeNull();
    await expect(client.remove(gone, "inst_gone")).resolves.toBeUndefined();
    // Not in the list: nothing to delete, so no DELETE is sent.
    expect(emulator.callsTo("DELETE", "/api/instances/inst_gone")).toEqual([]);
  });

  it("maps 422 to Rejected with Wappfy's reason", async () => {
    const { id } = await client.create(ref);
    const error = await failure(client.configureWebhook({ ...ref, webhook: { url: "https://hooks.example.com/wa", events: ["instance.failed"] } }, id));
    expectKind(error, "Rejected");
    expect(error.status).toBe(422);
    expect(error.message).toContain("unknown event");
  });

  it("maps 429 to RateLimited and pauses the limiter for the Retry-After", async () => {
    await emulator.stop();
    emulator = new WappfyEmulator({ apiKeys: [KEY], clock, requestsPerMinute: 2 });
    baseUrl = await emulator.start();
    client = clientWith(KEY);
    // Another replica of the operator spends the key's budget for this minute.
    for (let i = 0; i < 2; i++) await fetch(`${baseUrl}/api/instances`, { headers: { "X-Api-Key": KEY } });
    clock.advance(15_000);

    const error = await failure(client.checkHealth());
    expectKind(error, "RateLimited");
    expect(error).toMatchObject({ status: 429, code: "RATE_LIMIT_EXCEEDED", retryAfterMs: 45_000 });

    await client.checkHealth();
    expect(limiterWaits[0]).toBe(45_000);
    expect(emulator.calls.map((call) => call.status)).toEqual([200, 200, 429, 200]);
  });

  it("reads the wait from X-RateLimit-Reset on the injected clock when a 429 has no Retry-After", async () => {
    const resetAt = Math.ceil((clock.now() + 30_000) / 1000);
    emulator.respondNext({
      status: 429,
      body: { error: { code: "RATE_LIMIT_EXCEEDED", message: "Rate limit exceeded" } },
      headers: { "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": String(resetAt) },
    });
    const error = await failure(client.checkHealth());
    expect(error).toMatchObject({ kind: "RateLimited", retryAfterMs: 30_000 });
    await client.checkHealth();
    expect(limiterWaits[0]).toBe(30_000);
  });

  it("maps 503 to Unavailable", async () => {
    emulator.setAvailable(false);
    expectKind(await failure(client.observe(ref)), "Unavailable");
  });

  it.each([
    ["a body that is not JSON", "not-json"],
    ["JSON in an unexpected shape", "wrong-shape"],
  ] as const)("maps %s to Malformed", async (_what, kind) => {
    emulator.corruptNext(kind);
    expectKind(await failure(client.checkHealth()), "Malformed");
  });

  it("maps a QR that is not a PNG data URL to Malformed, without quoting it", async () => {
    emulator.respondNext({ status: 200, body: { data: { id: "inst_x", status: "scan_qr", phone_number: null } } });
    emulator.respondNext({ status: 200, body: { data: { qr: "data:image/jpeg;base64,SECRETPAYLOAD" } } });
    const error = await failure(client.fetchQr(ref, "inst_x"));
    expectKind(error, "Malformed");
    expect(error.message).not.toContain("SECRETPAYLOAD");
  });

  it("turns a QR refused after status said scan_qr into WrongState", async () => {
    const id = await createdAndScanning();
    emulator.respondNext({ status: 200, body: { data: { id, status: "scan_qr", phone_number: null } } });
    emulator.respondNext({ status: 409, body: { error: { code: "INSTANCE_NOT_SCANNING", message: "No QR code" } } });
    expectKind(await failure(client.fetchQr(ref, id)), "WrongState");
  });

  it("cannot link with a pairing code", async () => {
    const error = await failure(client.requestPairingCode(ref, "inst_x", PHONE));
    expect(error).toMatchObject({ kind: "Rejected", message: "wappfy cannot link with a pairing code" });
    expect(emulator.calls).toEqual([]);
  });
});

describe("wappfy client webhooks", () => {
  const url = "http://127.0.0.1:9/wa";
  const hmacKey = "a".repeat(64);

  it("declares the Wappfy event names and signing", () => {
    expect(wappfyCapabilities.webhookEvents).toEqual(WAPPFY_WEBHOOK_EVENTS);
    expect(wappfyCapabilities).toMatchObject({ webhook: true, webhookSigning: true, pairingCode: false });
  });

  it("accepts exactly the 12 event names of Wappfy's webhook guide, no more", () => {
    expect([...WAPPFY_WEBHOOK_EVENTS].sort()).toEqual([...WAPPFY_GUIDE_EVENTS].sort());
    expect(new Set(WAPPFY_WEBHOOK_EVENTS).size).toBe(12);
  });

  it("wires a signed webhook scoped to the instance and then reports it in sync", async () => {
    const id = await createdAndScanning();
    const wanted = { ...ref, providerInstanceId: id, webhook: { url, events: ["instance.connected"], hmacKey } };
    expect(await client.observe(wanted)).toMatchObject({ webhookInSync: false });

    await client.configureWebhook(wanted, id);
    expect(emulator.webhooks()).toEqual([
      { id: expect.any(String), url, events: ["instance.connected"], instanceId: id, secret: hmacKey, description: "wa-operator support/support-line [uid-1]" },
    ]);
    expect(await client.observe(wanted)).toMatchObject({ webhookInSync: true });

    emulator.scan(id, PHONE);
    await emulator.settleDeliveries();
    const delivery = emulator.deliveries.find((d) => d.event === "instance.connected");
    expect(delivery?.headers["X-Wappfy-Signature"]).toBe(signWappfyBody(delivery?.body ?? "", hmacKey));
  });

  it.each([
    ["the events change", { url, events: ["instance.qr"], hmacKey }],
    ["the URL changes", { url: "http://127.0.0.1:9/other", events: ["instance.connected"], hmacKey }],
    ["the HMAC key is rotated", { url, events: ["instance.connected"], hmacKey: "b".repeat(64) }],
  ])("replaces our webhook when %s", async (_what, webhook) => {
    const { id } = await client.create(ref);
    await client.configureWebhook({ ...ref, webhook: { url, events: ["instance.connected"], hmacKey } }, id);
    const changed = { ...ref, providerInstanceId: id, webhook };
    expect(await client.observe(changed)).toMatchObject({ webhookInSync: false });

    await client.configureWebhook(changed, id);
    expect(emulator.webhooks()).toEqual([expect.objectContaining({ url: webhook.url, events: webhook.events, secret: webhook.hmacKey })]);
    expect(await client.observe(changed)).toMatchObject({ webhookInSync: true });
  });

  it("an empty events list subscribes to every event Wappfy documents (its events field is required)", async () => {
    const { id } = await client.create(ref);
    await client.configureWebhook({ ...ref, webhook: { url, events: [] } }, id);
    expect([...(emulator.webhooks()[0]?.events ?? [])].sort()).toEqual([...WAPPFY_GUIDE_EVENTS].sort());
    expect(emulator.webhooks()[0]?.secret).toBeNull();
    expect(await client.observe({ ...ref, providerInstanceId: id, webhook: { url, events: [] } })).toMatchObject({ webhookInSync: true });
  });

  it("leaves an unchanged webhook alone", async () => {
    const { id } = await client.create(ref);
    const wanted = { ...ref, webhook: { url, events: ["instance.qr", "instance.connected"], hmacKey } };
    await client.configureWebhook(wanted, id);
    await client.configureWebhook({ ...wanted, webhook: { ...wanted.webhook, events: ["instance.connected", "instance.qr"] } }, id);
    expect(emulator.callsTo("POST", "/api/webhooks")).toHaveLength(1);
    expect(emulator.callsTo("DELETE", /^\/api\/webhooks\//)).toEqual([]);
  });

  it("removes only our instance's webhooks when the spec drops its webhook", async () => {
    const { id } = await client.create(ref);
    const otherRef = { ...ref, name: "other-line", uid: "uid-2" };
    const other = await client.create(otherRef);
    await client.configureWebhook({ ...ref, webhook: { url, events: ["message.received"] } }, id);
    await client.configureWebhook({ ...otherRef, webhook: { url, events: ["message.received"] } }, other.id);

    await client.configureWebhook(ref, id);
    expect(emulator.webhooks().map((webhook) => webhook.instanceId)).toEqual([other.id]);
  });

  it("with spec.webhook removed, our webhook still there is out of sync, and in sync once configureWebhook took it away", async () => {
    const { id } = await client.create(ref);
    const withId = { ...ref, providerInstanceId: id };
    await client.configureWebhook({ ...withId, webhook: { url, events: ["message.received"], hmacKey } }, id);
    expect(await client.observe(withId)).toMatchObject({ webhookInSync: false });

    await client.configureWebhook(withId, id);
    expect(emulator.webhooks()).toEqual([]);
    expect((await client.observe(withId))?.webhookInSync).not.toBe(false);
  });

  it("configureWebhook without a webhook removes only ours: a webhook somebody else scoped to the instance stays", async () => {
    const { id } = await client.create(ref);
    const withId = { ...ref, providerInstanceId: id };
    await client.configureWebhook({ ...withId, webhook: { url, events: ["message.received"] } }, id);
    // Added in Wappfy's dashboard by a person, for the same instance.
    await fetch(`${baseUrl}/api/webhooks`, {
      method: "POST",
      headers: { "X-Api-Key": KEY, "Content-Type": "application/json" },
      body: JSON.stringify({ url: "https://crm.example.com/in", events: ["message.received"], instance_id: id, description: "CRM" }),
    });

    await client.configureWebhook(withId, id);
    expect(emulator.webhooks().map((webhook) => webhook.url)).toEqual(["https://crm.example.com/in"]);
    expect((await client.observe(withId))?.webhookInSync).not.toBe(false);
    await client.configureWebhook({ ...withId, webhook: { url, events: ["message.received"] } }, id);
    expect(emulator.webhooks().map((webhook) => webhook.url)).toEqual(["https://crm.example.com/in", url]);
    expect(await client.observe({ ...withId, webhook: { url, events: ["message.received"] } })).toMatchObject({ webhookInSync: true });
  });
});
