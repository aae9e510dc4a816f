import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fakeTimeDeps } from "../../../test/emulators/shared/client-deps.ts";
import { FakeClock } from "../../../test/emulators/shared/clock.ts";
import { decodeQrPng } from "../../../test/emulators/shared/qr-png.ts";
import { WapizEmulator, type WapizPlan } from "../../../test/emulators/wapiz/emulator.ts";
import { ProviderError, type ProviderErrorKind } from "../errors.ts";
import type { InstanceRef, ProviderClient } from "../types.ts";
import { createWapizClient, wapizCapabilities } from "./client.ts";

const TOKEN = "wapiz-token-of-support";
const ref: InstanceRef = { namespace: "support", name: "support-line", uid: "uid-1" };
const HOOK = "https://hooks.example.com/wa";

let clock: FakeClock;
let emulator: WapizEmulator;
let baseUrl: string;
let limiterWaits: number[];
let client: ProviderClient;

async function startEmulator(plan: WapizPlan): Promise<void> {
  await emulator?.stop();
  emulator = new WapizEmulator({ accounts: { [TOKEN]: plan }, clock });
  baseUrl = await emulator.start();
  client = clientWith(TOKEN);
}

function clientWith(token: string | undefined): ProviderClient {
  const fake = fakeTimeDeps(clock);
  limiterWaits = fake.limiterWaits;
  return createWapizClient(
    { type: "wapiz", url: baseUrl, rateLimit: { requestsPerSecond: 1000, burst: 1000 }, timeoutMs: 5000, ...(token ? { apiKey: token } : {}) },
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

beforeEach(async () => {
  clock = new FakeClock();
  await startEmulator("regular");
});

afterEach(async () => {
  await emulator.stop();
});

describe("wapiz client lifecycle", () => {
  it("creates a device, shows its QR, is connected once scanned, and deletes it", async () => {
    expect(await client.observe(ref)).toBeNull();

    const created = await client.create(ref);
    expect(created).toEqual({ id: expect.any(String), phase: "ScanQR", providerState: "connected", webhookInSync: undefined });
    expect(emulator.device(created.id)?.label).toBe("support/support-line");
    const withId = { ...ref, providerInstanceId: created.id };

    const qr = await client.fetchQr(withId, created.id);
    expect(qr?.validForMs).toBe(20_000);
    expect(qr?.text).toBeUndefined();
    expect(decodeQrPng(qr?.png ?? Buffer.alloc(0))).toBe(emulator.currentQr(created.id));

    emulator.scan(created.id);
    const linked = await client.observe(withId);
    expect(linked).toEqual({ id: created.id, phase: "Connected", providerState: "logged_in", webhookInSync: undefined });
    expect(await client.fetchQr(withId, created.id)).toBeNull();

    await client.remove(withId, created.id);
    expect(emulator.device(created.id)).toBeUndefined();
    expect(await client.observe(withId)).toBeNull();
    await expect(client.remove(withId, created.id)).resolves.toBeUndefined();
    expect(emulator.callsTo("DELETE", `/api/devices/${created.id}`).map((call) => call.status)).toEqual([200, 404]);
  });

  it("labels the device with spec.displayName when it is set", async () => {
    const { id } = await client.create({ ...ref, displayName: "Support Line" });
    expect(emulator.device(id)?.label).toBe("Support Line");
  });

  it("finds a device by its label when no id was recorded, so it is never created twice", async () => {
    await client.create({ ...ref, name: "other-line" });
    const { id } = await client.create(ref);
    expect(await client.observe(ref)).toMatchObject({ id, phase: "ScanQR" });
    expect(emulator.callsTo("POST", "/api/devices")).toHaveLength(2);
  });

  it("follows the recorded id, whatever the label", async () => {
    const { id } = await client.create(ref);
    expect(await client.observe({ ...ref, displayName: "Renamed", providerInstanceId: id })).toMatchObject({ id });
    expect(await client.observe({ ...ref, providerInstanceId: "00000000-0000-0000-0000-000000000000" })).toBeNull();
  });

  it("connects a device that lost its connection by asking for its QR, keeping the link", async () => {
    const { id } = await client.create(ref);
    emulator.scan(id);
    emulator.disconnect(id);
    const withId = { ...ref, providerInstanceId: id };
    expect(await client.observe(withId)).toMatchObject({ phase: "Disconnected", providerState: "disconnected" });

    await client.connect(withId, id);
    expect(await client.observe(withId)).toMatchObject({ phase: "Connected" });
    expect(emulator.callsTo("GET", `/api/devices/${id}/qr`)).toHaveLength(1);
  });

  it("connects an unlinked device back to showing a QR", async () => {
    const { id } = await client.create(ref);
    emulator.scan(id);
    emulator.unlink(id);
    await client.connect(ref, id);
    expect(await client.observe({ ...ref, providerInstanceId: id })).toMatchObject({ phase: "ScanQR" });
  });
});

describe("wapiz client capabilities", () => {
  it("declares what WAPIZ can do", () => {
    expect(wapizCapabilities).toEqual({
      qr: true,
      pairingCode: false,
      disconnect: false,
      restart: false,
      logout: false,
      webhook: true,
      webhookEvents: "none",
      webhookSigning: false,
      version: false,
    });
  });

  it.each([
    ["disconnect", () => client.disconnect(ref, "id"), "wapiz cannot disconnect a device"],
    ["restart", () => client.restart(ref, "id"), "wapiz cannot restart a device"],
    ["logout", () => client.logout(ref, "id"), "wapiz cannot log a device out"],
    ["requestPairingCode", () => client.requestPairingCode(ref, "id", "5511999998888"), "wapiz cannot link with a pairing code"],
  ])("never pretends to %s", async (_operation, act, message) => {
    const error = await failure(act());
    expect(error).toMatchObject({ kind: "Rejected", message });
    expect(emulator.calls).toEqual([]);
  });
});

describe("wapiz client webhook", () => {
  it("sets the device's webhook URL and then reports it in sync", async () => {
    const { id } = await client.create(ref);
    const wanted = { ...ref, providerInstanceId: id, webhook: { url: HOOK, events: [] } };
    expect(await client.observe(wanted)).toMatchObject({ webhookInSync: false });

    await client.configureWebhook(wanted, id);
    expect(emulator.device(id)?.webhookUrl).toBe(HOOK);
    expect(await client.observe(wanted)).toMatchObject({ webhookInSync: true });
    expect(await client.observe({ ...wanted, webhook: { url: `${HOOK}/v2`, events: [] } })).toMatchObject({ webhookInSync: false });
  });

  it("removes the webhook URL when the spec drops it", async () => {
    const { id } = await client.create(ref);
    await client.configureWebhook({ ...ref, webhook: { url: HOOK, events: [] } }, id);
    await client.configureWebhook(ref, id);
    expect(emulator.device(id)?.webhookUrl).toBeNull();
  });
});

describe("wapiz client errors", () => {
  it("maps 401 to InvalidCredentials without repeating the token", async () => {
    const error = await failure(clientWith("wrong-token").checkHealth());
    expectKind(error, "InvalidCredentials");
    expect(error.status).toBe(401);
    expect(error.message).not.toContain("wrong-token");
  });

  it("refuses to call without a token", async () => {
    expectKind(await failure(clientWith(undefined).observe(ref)), "InvalidCredentials");
    expect(emulator.calls).toEqual([]);
  });

  it("maps the plan's device limit (403) to QuotaExceeded", async () => {
    await startEmulator("free");
    await client.create({ ...ref, name: "first" });
    const error = await failure(client.create(ref));
    expectKind(error, "QuotaExceeded");
    expect(error.status).toBe(403);
    expect(error.message).toContain("Paket Free maksimal 1 device");
    expect(emulator.devices()).toHaveLength(1);
  });

  it("maps 404 to NotFound for the webhook of an unknown device", async () => {
    const error = await failure(client.configureWebhook({ ...ref, webhook: { url: HOOK, events: [] } }, "00000000-0000-0000-0000-000000000000"));
    expectKind(error, "NotFound");
  });

  it("maps a 429 to RateLimited and pauses the limiter for the Retry-After", async () => {
    emulator.respondNext({ status: 429, body: { error: "Too Many Requests" }, headers: { "Retry-After": "7" } });
    const error = await failure(client.checkHealth());
    expectKind(error, "RateLimited");
    expect(error.retryAfterMs).toBe(7000);

    await client.checkHealth();
    expect(limiterWaits[0]).toBe(7000);
    expect(emulator.calls.map((call) => call.status)).toEqual([429, 200]);
  });

  it("maps 503 to Unavailable", async () => {
    emulator.setAvailable(false);
    expectKind(await failure(client.checkHealth()), "Unavailable");
  });

  it.each([
    ["a body that is not JSON", "not-json"],
    ["JSON in an unexpected shape", "wrong-shape"],
  ] as const)("maps %s to Malformed", async (_what, kind) => {
    emulator.corruptNext(kind);
    expectKind(await failure(client.observe(ref)), "Malformed");
  });

  it("maps a QR answer labelled image/png that is no PNG to Malformed", async () => {
    emulator.respondNext({ status: 200, raw: { contentType: "image/png", data: Buffer.from("<html>login</html>") } });
    expectKind(await failure(client.fetchQr(ref, "any")), "Malformed");
  });

  it("maps a QR answer that is neither PNG nor JSON to Malformed", async () => {
    emulator.respondNext({ status: 200, raw: { contentType: "text/html", data: Buffer.from("<html>login</html>") } });
    expectKind(await failure(client.fetchQr(ref, "any")), "Malformed");
  });
});
