import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../../test/emulators/shared/clock.ts";
import { decodeQrPng } from "../../../test/emulators/whapi/decode-qr.ts";
import { WHAPI_PAIRING_MS, WhapiEmulator } from "../../../test/emulators/whapi/emulator.ts";
import { ProviderError } from "../errors.ts";
import { RateLimiter } from "../transport/rate-limiter.ts";
import type { InstanceRef, ProviderClient, ProviderSettings } from "../types.ts";
import { createWhapiClient, deviceId, whapiCapabilities } from "./client.ts";

const KEY = "be670d0018987231588ff183a0e8d509";
const PROVIDER_KEY = "ffffeeeeddddccccbbbbaaaa99998888";
const ref: InstanceRef = { namespace: "support", name: "support-line", uid: "uid-1", apiKey: KEY };

describe("whapi client against the emulator", () => {
  let clock: FakeClock;
  let emulator: WhapiEmulator;
  let base: string;

  beforeEach(async () => {
    clock = new FakeClock();
    emulator = new WhapiEmulator({ apiKeys: [KEY, PROVIDER_KEY], clock });
    base = await emulator.start();
  });

  afterEach(async () => {
    await emulator.stop();
  });

  function client(overrides: Partial<ProviderSettings> = {}): ProviderClient {
    const settings: ProviderSettings = {
      type: "whapi",
      url: base,
      rateLimit: { requestsPerSecond: 1000, burst: 1000 },
      timeoutMs: 5000,
      ...overrides,
    };
    const limiter = new RateLimiter(settings.rateLimit, { now: () => clock.now(), sleep: async (ms) => clock.advance(ms) });
    return createWhapiClient(settings, { limiter, now: () => clock.now() });
  }

  /** Runs `action` and returns the ProviderError it threw (fails the test when it did not throw one). */
  async function failure(action: Promise<unknown>): Promise<ProviderError> {
    const error: unknown = await action.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  }

  it("declares what the device service page offers, and nothing more", () => {
    expect(whapiCapabilities).toEqual({
      qr: true,
      pairingCode: false,
      disconnect: true,
      restart: false,
      logout: false,
      webhook: false,
      webhookEvents: "none",
      webhookSigning: false,
      version: true,
    });
    expect(client().type).toBe("whapi");
  });

  it("links a device: start, QR, scan, connected, then off again", async () => {
    const whapi = client();
    const created = await whapi.create(ref);
    expect(created).toEqual({ id: deviceId(KEY), phase: "Disconnected", providerState: "SERVICE_OFF" });

    await whapi.connect(ref, created.id);
    expect((await whapi.observe(ref))?.phase).toBe("Starting");
    clock.advance(WHAPI_PAIRING_MS);
    expect(await whapi.observe(ref)).toMatchObject({ phase: "ScanQR", providerState: "SERVICE_SCAN" });

    const qr = await whapi.fetchQr(ref, created.id);
    expect(qr).not.toBeNull();
    expect(qr?.validForMs).toBe(20_000);
    expect(qr?.text).toBeUndefined();
    expect(decodeQrPng(qr?.png ?? Buffer.alloc(0))).toBe(emulator.currentQr(KEY));

    emulator.scan(KEY);
    const connected = await whapi.observe(ref);
    expect(connected).toEqual({ id: created.id, phase: "Connected", providerState: "CONNECTED" });
    expect(await whapi.fetchQr(ref, created.id)).toBeNull();

    await whapi.disconnect(ref, created.id);
    expect(await whapi.observe(ref)).toMatchObject({ phase: "Disconnected", providerState: "SERVICE_OFF" });
    expect(emulator.calls.map((c) => c.path)).toEqual([
      "/api/getState",
      "/api/serviceStart",
      // PAIRING: is a QR on screen yet? (not while booting)
      "/api/getState",
      "/api/getQR",
      "/api/getState",
      "/api/getQR",
      "/api/getState",
      "/api/getQR",
      "/api/serviceDestroy",
      "/api/getState",
    ]);
  });

  it("PAIRING with a QR on screen is ScanQR, and its QR is fetched", async () => {
    await emulator.stop();
    emulator = new WhapiEmulator({ apiKeys: [KEY], clock, scanState: "PAIRING" });
    base = await emulator.start();
    const whapi = client();
    await whapi.connect(ref, deviceId(KEY));
    // Booting: PAIRING without a QR yet is still Starting.
    expect(await whapi.observe(ref)).toMatchObject({ phase: "Starting", providerState: "PAIRING" });
    clock.advance(WHAPI_PAIRING_MS);
    expect(await whapi.observe(ref)).toMatchObject({ phase: "ScanQR", providerState: "PAIRING" });
    const qr = await whapi.fetchQr(ref, deviceId(KEY));
    expect(decodeQrPng(qr?.png ?? Buffer.alloc(0))).toBe(emulator.currentQr(KEY));
    emulator.scan(KEY);
    expect(await whapi.observe(ref)).toMatchObject({ phase: "Connected" });
  });

  it("sends apiKey in the query as well when the provider says so, for a path that drops GET bodies", async () => {
    await emulator.stop();
    emulator = new WhapiEmulator({ apiKeys: [KEY], clock, acceptsQueryKey: true, dropGetBodies: true });
    base = await emulator.start();
    expect((await failure(client().observe(ref))).kind).toBe("InvalidCredentials");
    expect(await client({ whapi: { apiKeyInQuery: true } }).observe(ref)).toMatchObject({ phase: "Disconnected" });
  });

  it("sends apiKey only in the body by default, as the page documents", async () => {
    await emulator.stop();
    emulator = new WhapiEmulator({ apiKeys: [KEY], clock, acceptsQueryKey: true });
    base = await emulator.start();
    await client().observe(ref);
    expect(await client({ whapi: { apiKeyInQuery: false } }).observe(ref)).toMatchObject({ phase: "Disconnected" });
  });

  it("names the device by a hash of its key, never the key itself", () => {
    const id = deviceId(KEY);
    expect(id).toMatch(/^whapi-[0-9a-f]{8}$/);
    expect(id).not.toContain(KEY.slice(0, 8));
    expect(deviceId(PROVIDER_KEY)).not.toBe(id);
    expect(deviceId(KEY)).toBe(id);
  });

  it("removes an instance by turning its service off, and does so again harmlessly", async () => {
    const whapi = client();
    await whapi.connect(ref, deviceId(KEY));
    await whapi.remove(ref, deviceId(KEY));
    await whapi.remove(ref, deviceId(KEY));
    expect(emulator.state(KEY)).toBe("SERVICE_OFF");
  });

  it("falls back to the provider-wide key when the instance has none", async () => {
    const whapi = client({ apiKey: PROVIDER_KEY });
    const { apiKey: _ignored, ...withoutKey } = ref;
    expect((await whapi.observe(withoutKey))?.id).toBe(deviceId(PROVIDER_KEY));
  });

  it("prefers the instance's key over the provider-wide one", async () => {
    const whapi = client({ apiKey: PROVIDER_KEY });
    expect((await whapi.observe(ref))?.id).toBe(deviceId(KEY));
  });

  it("rejects an instance without any key before calling the service", async () => {
    const { apiKey: _ignored, ...withoutKey } = ref;
    const error = await failure(client().observe(withoutKey));
    expect(error.kind).toBe("Rejected");
    expect(error.message).toMatch(/needs an apiKey/);
    expect(emulator.calls).toEqual([]);
  });

  it("maps an unknown key (code 401 inside HTTP 200) to InvalidCredentials without repeating the key", async () => {
    const wrong = "0000000000000000deadbeefdeadbeef";
    const error = await failure(client().observe({ ...ref, apiKey: wrong }));
    expect(error.kind).toBe("InvalidCredentials");
    expect(error.code).toBe("401");
    expect(error.message).not.toContain(wrong);
  });

  it("reports the WhatsApp Web version with the provider-wide key", async () => {
    expect(await client({ apiKey: PROVIDER_KEY }).checkHealth()).toEqual({ version: "2.2243.7" });
  });

  it("only checks reachability without a provider-wide key: a refused key still proves the service is up", async () => {
    expect(await client().checkHealth()).toEqual({});
    expect(emulator.calls).toEqual([{ method: "GET", path: "/api/getWWebVersion", status: 200 }]);
  });

  it("with per-device keys only, reports the version with a managed device's key", async () => {
    expect(await client().checkHealth({ instanceKey: KEY })).toEqual({ version: "2.2243.7" });
  });

  it("a managed device's key that is refused leaves the provider healthy, without a version", async () => {
    expect(await client().checkHealth({ instanceKey: "0000000000000000deadbeefdeadbeef" })).toEqual({});
  });

  it("prefers the provider-wide key to a device's", async () => {
    expect((await failure(client({ apiKey: "wrong" }).checkHealth({ instanceKey: KEY }))).kind).toBe("InvalidCredentials");
  });

  it("fails the health check when the provider-wide key is wrong", async () => {
    expect((await failure(client({ apiKey: "wrong" }).checkHealth())).kind).toBe("InvalidCredentials");
  });

  it.each([
    ["with a provider-wide key", PROVIDER_KEY],
    ["without one", undefined],
  ])("fails the health check %s when the service answers 503", async (_case, apiKey) => {
    emulator.setAvailable(false);
    const whapi = client(apiKey === undefined ? {} : { apiKey });
    expect((await failure(whapi.checkHealth())).kind).toBe("Unavailable");
  });

  it("maps a 503 envelope to Unavailable", async () => {
    emulator.setAvailable(false);
    const error = await failure(client().observe(ref));
    expect(error.kind).toBe("Unavailable");
    expect(error.status).toBe(503);
  });

  it("maps a dead service to Unavailable", async () => {
    await emulator.stop();
    expect((await failure(client().observe(ref))).kind).toBe("Unavailable");
  });

  it.each(["not-json", "wrong-shape"] as const)("maps a %s answer to Malformed", async (kind) => {
    emulator.corruptNext(kind);
    expect((await failure(client().observe(ref))).kind).toBe("Malformed");
  });

  it.each([
    ["restart", (c: ProviderClient) => c.restart(ref, "x")],
    ["logout", (c: ProviderClient) => c.logout(ref, "x")],
    ["requestPairingCode", (c: ProviderClient) => c.requestPairingCode(ref, "x", "5511999998888")],
    ["configureWebhook", (c: ProviderClient) => c.configureWebhook(ref, "x")],
  ])("refuses %s, which the service lacks, without a request", async (_name, action) => {
    expect((await failure(action(client()))).kind).toBe("Rejected");
    expect(emulator.calls).toEqual([]);
  });
});
