import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fakeTimeDeps } from "../../../test/emulators/shared/client-deps.ts";
import { FakeClock } from "../../../test/emulators/shared/clock.ts";
import { decodeQrPng } from "../../../test/emulators/shared/qr-png.ts";
import { WapizEmulator, type WapizEmulatorOptions, type WapizPlan } from "../../../test/emulators/wapiz/emulator.ts";
import { ProviderError, type ProviderErrorKind } from "../errors.ts";
import type { InstanceRef, ProviderClient } from "../types.ts";
import { createWapizClient, wapizCapabilities, wapizDeviceLabel } from "./client.ts";

const TOKEN = "wapiz-token-of-support";
const ref: InstanceRef = { namespace: "support", name: "support-line", uid: "uid-1" };
const HOOK = "https://hooks.example.com/wa";

let clock: FakeClock;
let emulator: WapizEmulator;
let baseUrl: string;
let limiterWaits: number[];
let client: ProviderClient;

async function startEmulator(plan: WapizPlan, options: WapizEmulatorOptions = {}): Promise<void> {
  await emulator?.stop();
  emulator = new WapizEmulator({ accounts: { [TOKEN]: plan }, clock, ...options });
  baseUrl = await emulator.start();
  client = clientWith(TOKEN);
}

function clientWith(token: string | undefined, login?: { email: string; password: string }): ProviderClient {
  const fake = fakeTimeDeps(clock);
  limiterWaits = fake.limiterWaits;
  return createWapizClient(
    {
      type: "wapiz",
      url: baseUrl,
      rateLimit: { requestsPerSecond: 1000, burst: 1000 },
      timeoutMs: 5000,
      ...(token ? { apiKey: token } : {}),
      ...(login ? { login } : {}),
    },
    fake.deps,
  );
}

/** Creates a device the way a person (or an older operator) would, with a label of their own. */
async function createByHand(label: string): Promise<string> {
  const response = await fetch(`${baseUrl}/api/devices`, {
    method: "POST",
    headers: { Cookie: `wa_token=${TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ label }),
  });
  return ((await response.json()) as { id: string }).id;
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
    expect(created).toEqual({ id: expect.any(String), phase: "ScanQR", providerState: "connected", ownerUid: "uid-1", webhookInSync: true });
    expect(emulator.device(created.id)?.label).toBe("support/support-line [uid-1]");
    const withId = { ...ref, providerInstanceId: created.id };

    const qr = await client.fetchQr(withId, created.id);
    expect(qr?.validForMs).toBe(20_000);
    expect(qr?.text).toBeUndefined();
    expect(decodeQrPng(qr?.png ?? Buffer.alloc(0))).toBe(emulator.currentQr(created.id));

    emulator.scan(created.id);
    const linked = await client.observe(withId);
    expect(linked).toEqual({ id: created.id, phase: "Connected", providerState: "logged_in", ownerUid: "uid-1", webhookInSync: true });
    expect(await client.fetchQr(withId, created.id)).toBeNull();

    await client.remove(withId, created.id);
    expect(emulator.device(created.id)).toBeUndefined();
    expect(await client.observe(withId)).toBeNull();
    await expect(client.remove(withId, created.id)).resolves.toBeUndefined();
    // The second remove finds nothing listed, so it sends no DELETE.
    expect(emulator.callsTo("DELETE", `/api/devices/${created.id}`).map((call) => call.status)).toEqual([200]);
  });

  it("labels the device with spec.displayName when it is set, and the uid", async () => {
    const { id } = await client.create({ ...ref, displayName: "Support Line" });
    expect(emulator.device(id)?.label).toBe("Support Line [uid-1]");
  });

  it("finds a device by its label when no id was recorded, so it is never created twice", async () => {
    await client.create({ ...ref, name: "other-line", uid: "uid-2" });
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

describe("wapiz client: ownership", () => {
  it("a user-chosen label two resources share does not make one find the other's device", async () => {
    const { id } = await client.create({ ...ref, displayName: "Sales" });
    expect(await client.observe({ namespace: "other", name: "line", uid: "uid-other", displayName: "Sales" })).toBeNull();
    expect(await client.observe({ ...ref, displayName: "Sales" })).toMatchObject({ id, ownerUid: "uid-1" });
  });

  it("a device labelled by hand like the old default is not taken for ours", async () => {
    await createByHand("support/support-line");
    expect(await client.observe(ref)).toBeNull();
  });

  it("keeps following an old-scheme device when status.providerInstanceId names it", async () => {
    const id = await createByHand("support/support-line");
    const session = await client.observe({ ...ref, providerInstanceId: id });
    expect(session).toMatchObject({ id, phase: "ScanQR" });
    expect(session?.ownerUid).toBeUndefined();
  });

  it("never deletes a device it cannot prove it created", async () => {
    const id = await createByHand("support/support-line");
    const error = await failure(client.remove({ ...ref, providerInstanceId: id }, id));
    expectKind(error, "Rejected");
    expect(error.message).toContain("deletionPolicy: Orphan");
    expect(emulator.device(id)).toBeDefined();
    expect(emulator.callsTo("DELETE", `/api/devices/${id}`)).toEqual([]);
  });

  it("a device whose label names another resource's uid is reported as that resource's", async () => {
    const id = await createByHand(wapizDeviceLabel({ ...ref, uid: "uid-somebody-else" }));
    expect(await client.observe({ ...ref, providerInstanceId: id })).toMatchObject({ id, ownerUid: "uid-somebody-else" });
    expectKind(await failure(client.remove({ ...ref, providerInstanceId: id }, id)), "Rejected");
  });
});

describe("wapiz client: login (credentials Secret with email and password)", () => {
  const USER = { email: "ops@example.com", password: "rahasia123" };

  beforeEach(async () => {
    await startEmulator("regular", { users: [{ ...USER, plan: "regular" }], tokenTtlMs: 60 * 60_000 });
    client = clientWith(undefined, USER);
  });

  it("logs in for a token, uses it, and logs in again once it has expired", async () => {
    const { id } = await client.create(ref);
    expect(emulator.logins).toEqual([{ email: USER.email, status: 200 }]);
    await client.observe({ ...ref, providerInstanceId: id });
    expect(emulator.logins).toHaveLength(1);

    clock.advance(60 * 60_000);
    expect(await client.observe({ ...ref, providerInstanceId: id })).toMatchObject({ id });
    expect(emulator.logins).toHaveLength(2);
    // The expired token was refused once; the same request went through with the new one.
    expect(emulator.calls.filter((call) => call.status === 401)).toEqual([{ method: "GET", path: "/api/devices", status: 401 }]);
  });

  it("a static token that expired is renewed by a login when the Secret also holds the account", async () => {
    client = clientWith("an-expired-token", USER);
    await client.checkHealth();
    expect(emulator.logins).toHaveLength(1);
  });

  it("a refused login is InvalidCredentials, after exactly one attempt, without the password in the message", async () => {
    const { id } = await client.create(ref);
    emulator.setPassword(USER.email, "changed-by-a-person");
    clock.advance(60 * 60_000);
    const error = await failure(client.observe({ ...ref, providerInstanceId: id }));
    expectKind(error, "InvalidCredentials");
    expect(error.message).toContain("Email atau password salah");
    expect(error.message).not.toContain(USER.password);
    expect(emulator.logins.map((login) => login.status)).toEqual([200, 401]);
  });

  it("a 401 right after a fresh login is not retried again: one login per 401, no loop", async () => {
    // Tokens that are dead on arrival: every request is refused, whatever the login.
    await startEmulator("regular", { users: [{ ...USER, plan: "regular" }], tokenTtlMs: 0 });
    client = clientWith(undefined, USER);
    expectKind(await failure(client.checkHealth()), "InvalidCredentials");
    // The first login fetched a token; its 401 paid for one more login; that token's 401 ends it.
    expect(emulator.logins).toHaveLength(2);
    expect(emulator.callsTo("GET", "/api/devices").map((call) => call.status)).toEqual([401, 401]);
  });

  it("requests that meet the same expired token share one login", async () => {
    await client.create(ref);
    await client.create({ ...ref, name: "second", uid: "uid-2" });
    clock.advance(60 * 60_000);
    await Promise.all([client.checkHealth(), client.observe(ref), client.observe({ ...ref, name: "second", uid: "uid-2" })]);
    expect(emulator.logins).toHaveLength(2);
  });

  it("reads the plan from GET /api/auth/me and refuses a device the plan has no room for, without trying", async () => {
    await startEmulator("regular", { users: [{ ...USER, plan: "lite" }] });
    client = clientWith(undefined, USER);
    await client.create(ref);
    const error = await failure(client.create({ ...ref, name: "second", uid: "uid-2" }));
    expectKind(error, "QuotaExceeded");
    expect(error.message).toBe("wapiz plan Lite allows 1 device and the account has 1; delete one or upgrade the plan");
    expect(emulator.callsTo("POST", "/api/devices")).toHaveLength(1);
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

  it("with spec.webhook removed, the device's URL still set is out of sync, and in sync once cleared", async () => {
    const { id } = await client.create(ref);
    const withId = { ...ref, providerInstanceId: id };
    await client.configureWebhook({ ...withId, webhook: { url: HOOK, events: [] } }, id);
    expect(await client.observe(withId)).toMatchObject({ webhookInSync: false });
    await client.configureWebhook(withId, id);
    expect(await client.observe(withId)).toMatchObject({ webhookInSync: true });
  });
});

describe("wapiz client errors", () => {
  it("never repeats the token or the login password, even when the error body echoes them back", async () => {
    const USER = { email: "ops@example.com", password: "rahasia-sekali-123" };
    // A gateway that quotes what it was sent in its refusal (the shape WAPIZ's errors take: {error}).
    const echo = createServer((req, res) => {
      const cookie = req.headers.cookie ?? "";
      res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: `bad request with ${cookie} (password ${USER.password})` }));
    });
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
    try {
      baseUrl = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
      const error = await failure(clientWith(TOKEN, USER).observe(ref));
      expect(error.message).toContain("bad request");
      expect(error.message).not.toContain(TOKEN);
      expect(error.message).not.toContain(USER.password);
    } finally {
      echo.close();
    }
  });

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

  it("maps the plan's device limit (403) to QuotaExceeded where the plan is not read first", async () => {
    await startEmulator("free");
    await client.create({ ...ref, name: "first" });
    // Another operator, or a person, took the slot between our look at /api/auth/me and the POST.
    emulator.respondNext({ status: 200, body: { subscription: { plan: { name: "Free", slug: "free" } }, devices: [] } });
    const error = await failure(client.create(ref));
    expectKind(error, "QuotaExceeded");
    expect(error.status).toBe(403);
    expect(error.message).toContain("Paket Free maksimal 1 device");
  });

  it("creates the device all the same when /api/auth/me is not there to read the plan from", async () => {
    emulator.respondNext({ status: 404, body: { error: "Not Found" } });
    const { id } = await client.create(ref);
    expect(emulator.device(id)).toBeDefined();
  });

  it("refuses a device the plan read from /api/auth/me has no room for (static token)", async () => {
    await startEmulator("free");
    await client.create({ ...ref, name: "first" });
    const error = await failure(client.create(ref));
    expectKind(error, "QuotaExceeded");
    expect(error.message).toContain("wapiz plan Free allows 1 device and the account has 1");
    expect(emulator.devices()).toHaveLength(1);
    expect(emulator.callsTo("POST", "/api/devices")).toHaveLength(1);
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

  it("takes the QR by the PNG signature, whatever the Content-Type says", async () => {
    await startEmulator("regular", { qrContentType: "application/octet-stream" });
    const { id } = await client.create(ref);
    const qr = await client.fetchQr(ref, id);
    expect(decodeQrPng(qr?.png ?? Buffer.alloc(0))).toBe(emulator.currentQr(id));
    emulator.scan(id);
    expect(await client.fetchQr(ref, id)).toBeNull();
  });

  it("maps a QR answer that is neither PNG nor JSON to Malformed", async () => {
    emulator.respondNext({ status: 200, raw: { contentType: "text/html", data: Buffer.from("<html>login</html>") } });
    expectKind(await failure(client.fetchQr(ref, "any")), "Malformed");
  });
});
