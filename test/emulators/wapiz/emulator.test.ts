import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../shared/clock.ts";
import { decodeQrPng } from "../shared/qr-png.ts";
import { WapizEmulator, type WapizEmulatorOptions } from "./emulator.ts";

const TOKEN = "token-of-alice";
const OTHER_TOKEN = "token-of-bob";

interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly bytes: Buffer;
  // Tests read whatever the emulator sent; each assertion states the shape it expects.
  readonly body: any;
}

let clock: FakeClock;
let emulator: WapizEmulator;
let baseUrl: string;

async function setUp(options: WapizEmulatorOptions = {}): Promise<void> {
  await emulator?.stop();
  clock = new FakeClock();
  emulator = new WapizEmulator({ accounts: { [TOKEN]: "free", [OTHER_TOKEN]: "regular" }, clock, ...options });
  baseUrl = await emulator.start();
}

async function call(method: string, path: string, options: { token?: string | null; json?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? TOKEN : options.token;
  if (token !== null) headers["Cookie"] = `theme=dark; wa_token=${token}`;
  if (options.json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    ...(options.json === undefined ? {} : { body: JSON.stringify(options.json) }),
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  const contentType = response.headers.get("content-type") ?? "";
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString("utf8"));
  } catch {
    body = undefined;
  }
  return { status: response.status, contentType, bytes, body };
}

async function createDevice(label?: string, token = TOKEN): Promise<string> {
  const answer = await call("POST", "/api/devices", { token, json: label === undefined ? {} : { label } });
  expect(answer.status).toBe(201);
  return answer.body.id as string;
}

async function statusOf(id: string): Promise<unknown> {
  return (await call("GET", `/api/devices/${id}/status`)).body;
}

beforeEach(async () => {
  await setUp();
});

afterEach(async () => {
  await emulator.stop();
});

describe("devices", () => {
  it("creates a device with the documented shape and lists it", async () => {
    const created = await call("POST", "/api/devices", { json: { label: "Bot Marketing" } });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      userId: expect.any(String),
      deviceId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      label: "Bot Marketing",
      webhookUrl: null,
      createdAt: new Date(clock.now()).toISOString(),
    });
    expect((await call("GET", "/api/devices")).body).toEqual([created.body]);
  });

  it('labels a device "Device Baru" when no label is given', async () => {
    const id = await createDevice();
    expect(emulator.device(id)?.label).toBe("Device Baru");
  });

  it.each([
    ["no cookie", null],
    ["an unknown token", "nope"],
  ])("answers 401 Unauthorized with %s", async (_what, token) => {
    const answer = await call("GET", "/api/devices", { token });
    expect(answer.status).toBe(401);
    expect(answer.body).toEqual({ error: "Unauthorized" });
  });

  it("allows one device on the Free plan, then answers 403 with the plan message", async () => {
    await createDevice();
    const refused = await call("POST", "/api/devices", { json: { label: "second" } });
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ error: "Paket Free maksimal 1 device" });
    expect(emulator.devices()).toHaveLength(1);
  });

  it("allows three devices on the Regular plan", async () => {
    for (const label of ["a", "b", "c"]) await createDevice(label, OTHER_TOKEN);
    const refused = await call("POST", "/api/devices", { token: OTHER_TOKEN, json: {} });
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ error: "Paket Regular maksimal 3 device" });
  });

  it("frees a plan slot when a device is deleted", async () => {
    const id = await createDevice();
    expect((await call("DELETE", `/api/devices/${id}`)).body).toEqual({ ok: true });
    expect((await call("DELETE", `/api/devices/${id}`)).status).toBe(404);
    await createDevice();
  });

  it("answers 404 for an unknown device and for another account's device", async () => {
    const bobs = await createDevice("bob", OTHER_TOKEN);
    expect((await call("GET", "/api/devices/00000000-0000-0000-0000-000000000000/status")).status).toBe(404);
    const foreign = await call("DELETE", `/api/devices/${bobs}`);
    expect(foreign.status).toBe(404);
    expect(foreign.body).toEqual({ error: "Device tidak ditemukan" });
    expect(emulator.device(bobs)).toBeDefined();
    expect((await call("GET", "/api/devices")).body).toEqual([]);
  });
});

describe("linking", () => {
  it("starts a new device connected but not logged in, showing a PNG QR", async () => {
    const id = await createDevice();
    expect(await statusOf(id)).toEqual({ connected: true, loggedIn: false, status: "connected" });
    const qr = await call("GET", `/api/devices/${id}/qr`);
    expect(qr.contentType).toBe("image/png");
    expect(decodeQrPng(qr.bytes)).toBe(emulator.currentQr(id));
  });

  it("labels the QR image with the Content-Type it is told to (the page only says PNG)", async () => {
    await setUp({ qrContentType: "application/octet-stream" });
    const id = await createDevice();
    const answer = await call("GET", `/api/devices/${id}/qr`);
    expect(answer.contentType).toBe("application/octet-stream");
    expect(decodeQrPng(answer.bytes)).toBe(emulator.currentQr(id));
  });

  it("changes the QR every 20 s", async () => {
    const id = await createDevice();
    const first = decodeQrPng((await call("GET", `/api/devices/${id}/qr`)).bytes);
    clock.advance(19_999);
    expect(decodeQrPng((await call("GET", `/api/devices/${id}/qr`)).bytes)).toBe(first);
    clock.advance(1);
    const second = decodeQrPng((await call("GET", `/api/devices/${id}/qr`)).bytes);
    expect(second).not.toBe(first);
    expect(second).toBe(emulator.currentQr(id));
  });

  it("is logged in once scanned, and the QR endpoint then answers JSON", async () => {
    const id = await createDevice();
    emulator.scan(id);
    expect(await statusOf(id)).toEqual({ connected: true, loggedIn: true, status: "logged_in" });
    const qr = await call("GET", `/api/devices/${id}/qr`);
    expect(qr.contentType).toMatch(/^application\/json/);
    expect(qr.body).toMatchObject({ loggedIn: true });
  });

  it("logs straight back in when a disconnected device that kept its link is asked for its QR", async () => {
    const id = await createDevice();
    emulator.scan(id);
    emulator.disconnect(id);
    expect(await statusOf(id)).toEqual({ connected: false, loggedIn: false, status: "disconnected" });
    expect((await call("GET", `/api/devices/${id}/qr`)).body).toMatchObject({ loggedIn: true });
    expect(emulator.device(id)?.status).toBe("logged_in");
  });

  it("shows a fresh QR when an unlinked device is asked for its QR", async () => {
    const id = await createDevice();
    emulator.scan(id);
    emulator.unlink(id);
    expect(emulator.device(id)?.status).toBe("disconnected");
    const qr = await call("GET", `/api/devices/${id}/qr`);
    expect(qr.contentType).toBe("image/png");
    expect(emulator.device(id)?.status).toBe("connected");
  });

  it("refuses to scan a device that shows no QR", async () => {
    const id = await createDevice();
    emulator.scan(id);
    expect(() => emulator.scan(id)).toThrow(/shows no QR/);
  });
});

describe("webhook URL", () => {
  it("sets the URL and shows it in the device list", async () => {
    const id = await createDevice();
    const answer = await call("PATCH", `/api/devices/${id}/webhook`, { json: { webhookUrl: "https://hooks.example.com/wa" } });
    expect(answer.body).toEqual({ ok: true, webhookUrl: "https://hooks.example.com/wa" });
    expect((await call("GET", "/api/devices")).body[0].webhookUrl).toBe("https://hooks.example.com/wa");
  });

  it.each([
    ["null", null],
    ["an empty string", ""],
  ])("removes the URL when sent %s", async (_what, webhookUrl) => {
    const id = await createDevice();
    await call("PATCH", `/api/devices/${id}/webhook`, { json: { webhookUrl: "https://hooks.example.com/wa" } });
    expect((await call("PATCH", `/api/devices/${id}/webhook`, { json: { webhookUrl } })).body).toEqual({ ok: true, webhookUrl: null });
    expect(emulator.device(id)?.webhookUrl).toBeNull();
  });

  it.each([
    ["no webhookUrl field", {}],
    ["a number", { webhookUrl: 42 }],
    ["a URL that is not http(s)", { webhookUrl: "javascript:alert(1)" }],
  ])("answers 400 for %s", async (_what, json) => {
    const id = await createDevice();
    const answer = await call("PATCH", `/api/devices/${id}/webhook`, { json });
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ error: expect.any(String) });
    expect(emulator.device(id)?.webhookUrl).toBeNull();
  });
});

describe("accounts and login (WAPIZ's authentication page)", () => {
  const USER = { email: "ops@example.com", password: "rahasia123", plan: "regular" } as const;

  async function login(body: unknown): Promise<{ status: number; cookie: string | null; body: any }> {
    const response = await fetch(`${baseUrl}/api/auth/login`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    return { status: response.status, cookie: response.headers.get("set-cookie"), body: await response.json() };
  }

  const tokenIn = (cookie: string | null) => /(?:^|;\s*)wa_token=([^;]+)/.exec(cookie ?? "")?.[1] as string;

  beforeEach(async () => {
    await setUp({ users: [USER], tokenTtlMs: 60 * 60_000 });
  });

  it("logs in with email and password: {ok, user} and a JWT in the HTTP-only wa_token cookie", async () => {
    const answer = await login({ email: USER.email, password: USER.password });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ ok: true, user: { id: expect.any(String), name: "ops", email: USER.email, role: "USER" } });
    expect(answer.cookie).toMatch(/^wa_token=[\w-]+\.[\w-]+\.[\w-]+; Path=\/; HttpOnly/);
    expect((await call("GET", "/api/devices", { token: tokenIn(answer.cookie) })).status).toBe(200);
    expect(emulator.logins).toEqual([{ email: USER.email, status: 200 }]);
  });

  it.each([
    ["a wrong password", { email: USER.email, password: "salah" }, 401, "Email atau password salah"],
    ["an unknown email", { email: "nobody@example.com", password: "x" }, 401, "Email atau password salah"],
    ["no password", { email: USER.email }, 400, "Email dan password wajib diisi"],
  ])("refuses %s with the page's message", async (_what, body, status, message) => {
    const answer = await login(body);
    expect({ status: answer.status, body: answer.body, cookie: answer.cookie }).toEqual({ status, body: { error: message }, cookie: null });
  });

  it("a token stops working once its lifetime is over; a new login gives one that works, for the same devices", async () => {
    const first = tokenIn((await login({ email: USER.email, password: USER.password })).cookie);
    const id = await createDevice("x", first);
    clock.advance(60 * 60_000);
    expect((await call("GET", "/api/devices", { token: first })).status).toBe(401);
    const second = tokenIn((await login({ email: USER.email, password: USER.password })).cookie);
    expect((await call("GET", "/api/devices", { token: second })).body.map((device: { id: string }) => device.id)).toEqual([id]);
  });

  it("a changed password refuses the old one", async () => {
    emulator.setPassword(USER.email, "baru-12345");
    expect((await login({ email: USER.email, password: USER.password })).status).toBe(401);
    expect((await login({ email: USER.email, password: "baru-12345" })).status).toBe(200);
  });

  it("GET /api/auth/me: the account, its plan and its devices", async () => {
    const token = tokenIn((await login({ email: USER.email, password: USER.password })).cookie);
    const id = await createDevice("x", token);
    const me = await call("GET", "/api/auth/me", { token });
    expect(me.body).toMatchObject({
      email: USER.email,
      subscription: { status: "ACTIVE", plan: { name: "Regular", slug: "regular" } },
      devices: [expect.objectContaining({ id })],
    });
    expect((await call("GET", "/api/auth/me", { token: "expired" })).status).toBe(401);
  });
});

describe("test hooks", () => {
  it("answers 503 while unavailable, and normally again afterwards", async () => {
    emulator.setAvailable(false);
    expect((await call("GET", "/api/devices")).status).toBe(503);
    emulator.setAvailable(true);
    expect((await call("GET", "/api/devices")).status).toBe(200);
  });

  it("answers a scripted reply once, without carrying the request out", async () => {
    emulator.respondNext({ status: 429, body: { error: "Too Many Requests" }, headers: { "Retry-After": "7" } });
    expect((await call("POST", "/api/devices", { json: {} })).status).toBe(429);
    expect(emulator.devices()).toEqual([]);
    expect((await call("GET", "/api/devices")).status).toBe(200);
  });

  it("breaks the next answer", async () => {
    emulator.corruptNext("not-json");
    const broken = await call("GET", "/api/devices");
    expect(broken.status).toBe(200);
    expect(broken.body).toBeUndefined();
  });

  it("records every answered call with method, path and status, never the token", async () => {
    const id = await createDevice();
    await call("GET", `/api/devices/${id}/status`, { token: "wrong" });
    expect(emulator.calls).toEqual([
      { method: "POST", path: "/api/devices", status: 201 },
      { method: "GET", path: `/api/devices/${id}/status`, status: 401 },
    ]);
    expect(JSON.stringify(emulator.calls)).not.toContain(TOKEN);
  });
});
