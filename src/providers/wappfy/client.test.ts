import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fakeTimeDeps } from "../../../test/emulators/shared/client-deps.ts";
import { FakeClock } from "../../../test/emulators/shared/clock.ts";
import { decodeQrPng } from "../../../test/emulators/shared/qr-png.ts";
import { signWappfyBody, WAPPFY_ACCEPTED_EVENTS, WAPPFY_GUIDE_EVENTS, WappfyEmulator } from "../../../test/emulators/wappfy/emulator.ts";
import { ProviderError, type ProviderErrorKind } from "../errors.ts";
import type { InstanceRef, ProviderClient } from "../types.ts";
import { createWappfyClient, WAPPFY_WEBHOOK_EVENTS, wappfyCapabilities } from "./client.ts";

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
    expect(emulator.instance(created.id)).toMatchObject({ name: "support-support-line", type: "waha" });
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
      webhookInSync: undefined,
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
    await client.create({ ...ref, name: "other-line" });
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
    expect(emulator.callsTo("DELETE", "/api/instances/inst_gone")).toEqual([{ method: "DELETE", path: "/api/instances/inst_gone", status: 404 }]);
  });

  it("maps 422 to Rejected with Wappfy's reason", async () => {
    const { id } = await client.create(ref);
    const error = await failure(client.configureWebhook({ ...ref, webhook: { url: "https://hooks.example.com/wa", events: ["session.status"] } }, id));
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

  it("accepts every event name of Wappfy's webhook guide, and the emulator takes each declared name", () => {
    expect(WAPPFY_WEBHOOK_EVENTS).toEqual(expect.arrayContaining([...WAPPFY_GUIDE_EVENTS]));
    expect(WAPPFY_ACCEPTED_EVENTS).toEqual(expect.arrayContaining([...WAPPFY_WEBHOOK_EVENTS]));
    expect(new Set(WAPPFY_WEBHOOK_EVENTS).size).toBe(WAPPFY_WEBHOOK_EVENTS.length);
  });

  it("wires a signed webhook scoped to the instance and then reports it in sync", async () => {
    const id = await createdAndScanning();
    const wanted = { ...ref, providerInstanceId: id, webhook: { url, events: ["instance.connected"], hmacKey } };
    expect(await client.observe(wanted)).toMatchObject({ webhookInSync: false });

    await client.configureWebhook(wanted, id);
    expect(emulator.webhooks()).toEqual([{ id: expect.any(String), url, events: ["instance.connected"], instanceId: id, secret: hmacKey }]);
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

  it("subscribes to every declared event when the spec lists none", async () => {
    const { id } = await client.create(ref);
    await client.configureWebhook({ ...ref, webhook: { url, events: [] } }, id);
    expect(emulator.webhooks()[0]?.events).toEqual(WAPPFY_WEBHOOK_EVENTS);
    expect(emulator.webhooks()[0]?.secret).toBeNull();
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
    const other = await client.create({ ...ref, name: "other-line" });
    await client.configureWebhook({ ...ref, webhook: { url, events: ["message"] } }, id);
    await client.configureWebhook({ ...ref, webhook: { url, events: ["message"] } }, other.id);

    await client.configureWebhook(ref, id);
    expect(emulator.webhooks().map((webhook) => webhook.instanceId)).toEqual([other.id]);
  });
});
