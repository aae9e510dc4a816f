import { createServer, type IncomingHttpHeaders } from "node:http";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../shared/clock.ts";
import { close, listen, readBody } from "../shared/http.ts";
import { decodeQrPng } from "../shared/qr-png.ts";
import { signWappfyBody, WAPPFY_GUIDE_EVENTS, WappfyEmulator, type WappfyEmulatorOptions } from "./emulator.ts";

const KEY = "key-of-alice";
const OTHER_KEY = "key-of-bob";

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  // Tests read whatever the emulator sent; each assertion states the shape it expects.
  readonly body: any;
}

let clock: FakeClock;
let emulator: WappfyEmulator;
let baseUrl: string;

async function setUp(options: WappfyEmulatorOptions = {}): Promise<void> {
  await emulator?.stop();
  clock = new FakeClock();
  emulator = new WappfyEmulator({ apiKeys: [KEY, OTHER_KEY], clock, startDelayMs: 3000, ...options });
  baseUrl = await emulator.start();
}

async function call(method: string, path: string, options: { key?: string | null; json?: unknown; raw?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  const key = options.key === undefined ? KEY : options.key;
  if (key !== null) headers["X-Api-Key"] = key;
  let body: string | undefined;
  if (options.json !== undefined || options.raw !== undefined) {
    headers["Content-Type"] = "application/json";
    body = options.raw ?? JSON.stringify(options.json);
  }
  const response = await fetch(`${baseUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // kept as text
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

async function createInstance(name = "support-line", key = KEY): Promise<string> {
  const answer = await call("POST", "/api/instances", { key, json: { name, type: "waha" } });
  expect(answer.status).toBe(201);
  return answer.body.data.id as string;
}

async function statusOf(id: string): Promise<string> {
  return (await call("GET", `/api/instances/${id}/status`)).body.data.status as string;
}

/** Connects and lets the boot finish, so the instance shows its first QR. */
async function toScanQr(id: string): Promise<void> {
  expect((await call("POST", `/api/instances/${id}/connect`)).status).toBe(200);
  clock.advance(3000);
}

async function qrPayload(id: string): Promise<string | undefined> {
  const answer = await call("GET", `/api/instances/${id}/qr`);
  expect(answer.status).toBe(200);
  const dataUrl = answer.body.data.qr as string;
  expect(dataUrl.startsWith("data:image/png;base64,")).toBe(true);
  return decodeQrPng(Buffer.from(dataUrl.slice("data:image/png;base64,".length), "base64"));
}

beforeEach(async () => {
  await setUp();
});

afterEach(async () => {
  await emulator.stop();
});

describe("instances", () => {
  it("creates an instance in status created, wrapped in data, and lists it", async () => {
    const created = await call("POST", "/api/instances", { json: { name: "My WhatsApp", type: "waha" } });
    expect(created.status).toBe(201);
    expect(created.body.data).toMatchObject({ name: "My WhatsApp", type: "waha", status: "created" });
    expect(created.body.data.id).toMatch(/^inst_/);
    expect(created.body.data.created_at).toBe(new Date(clock.now()).toISOString());

    const listed = await call("GET", "/api/instances");
    expect(listed.body).toEqual({
      success: true,
      data: { items: [{ id: created.body.data.id, name: "My WhatsApp", type: "waha", status: "created" }], total: 1, page: 1, limit: 20, totalPages: 1 },
      meta: { requestId: expect.stringMatching(/^req_/), timestamp: expect.any(String) },
    });
  });

  it("pages lists by the page and limit query parameters (response-format page)", async () => {
    for (const name of ["a", "b", "c"]) await createInstance(name);
    const second = await call("GET", "/api/instances?page=2&limit=2");
    expect(second.body.data).toMatchObject({ total: 3, page: 2, limit: 2, totalPages: 2 });
    expect(second.body.data.items.map((item: { name: string }) => item.name)).toEqual(["c"]);
  });

  it("serves the bare data array of the instances page when asked to", async () => {
    await setUp({ listFormat: "bare" });
    await createInstance("a");
    expect((await call("GET", "/api/instances")).body.data).toEqual([expect.objectContaining({ name: "a" })]);
  });

  it("answers 409 PLAN_LIMIT_REACHED once the plan's instances are used (response-format page)", async () => {
    await setUp({ maxInstances: 1 });
    await createInstance("a");
    const refused = await call("POST", "/api/instances", { json: { name: "b" } });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("PLAN_LIMIT_REACHED");
    expect(await createInstance("c", OTHER_KEY)).toMatch(/^inst_/);
  });

  it("defaults the type to waha", async () => {
    const created = await call("POST", "/api/instances", { json: { name: "x" } });
    expect(created.body.data.type).toBe("waha");
  });

  it.each([
    ["a missing name", { type: "waha" }],
    ["an empty name", { name: "  ", type: "waha" }],
    ["an unknown type", { name: "x", type: "telegram" }],
    ["a body that is not an object", ["x"]],
  ])("answers 422 VALIDATION_ERROR for %s", async (_what, json) => {
    const answer = await call("POST", "/api/instances", { json });
    expect(answer.status).toBe(422);
    expect(answer.body.error.code).toBe("VALIDATION_ERROR");
    expect(emulator.instances()).toEqual([]);
  });

  it("answers 422 for a body that is not JSON", async () => {
    expect((await call("POST", "/api/instances", { raw: "{name:" })).status).toBe(422);
  });

  it.each([
    ["no key", null],
    ["an unknown key", "not-a-key"],
  ])("answers 401 UNAUTHORIZED with %s", async (_what, key) => {
    const answer = await call("GET", "/api/instances", { key });
    expect(answer.status).toBe(401);
    expect(answer.body).toMatchObject({ success: false, error: { code: "UNAUTHORIZED", message: expect.any(String), details: {} } });
  });

  it("answers 404 for an unknown instance and for another account's instance", async () => {
    const bobs = await createInstance("bob", OTHER_KEY);
    expect((await call("GET", "/api/instances/inst_nope/status")).status).toBe(404);
    const foreign = await call("POST", `/api/instances/${bobs}/connect`);
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe("INSTANCE_NOT_FOUND");
    expect(emulator.instance(bobs)?.status).toBe("created");
    expect((await call("GET", "/api/instances")).body.data.items).toEqual([]);
  });

  it("deletes an instance, after which it is unknown", async () => {
    const id = await createInstance();
    expect((await call("DELETE", `/api/instances/${id}`)).body.data).toEqual({ id, deleted: true });
    expect((await call("GET", `/api/instances/${id}/status`)).status).toBe(404);
    expect((await call("DELETE", `/api/instances/${id}`)).status).toBe(404);
  });
});

describe("status machine", () => {
  it("goes created, starting, then scan_qr once the start delay has passed", async () => {
    const id = await createInstance();
    const connected = await call("POST", `/api/instances/${id}/connect`);
    expect(connected.body.data).toEqual({ id, status: "starting", phone_number: null });
    clock.advance(2999);
    expect(await statusOf(id)).toBe("starting");
    clock.advance(1);
    expect(await statusOf(id)).toBe("scan_qr");
  });

  it("serves the current QR as a PNG data URL and changes it every 60 s", async () => {
    const id = await createInstance();
    await toScanQr(id);
    const first = await qrPayload(id);
    expect(first).toBe(emulator.currentQr(id));
    clock.advance(60_000);
    const second = await qrPayload(id);
    expect(second).toBe(emulator.currentQr(id));
    expect(second).not.toBe(first);
  });

  it("fails the instance when the sixth code expires unscanned", async () => {
    const id = await createInstance();
    await toScanQr(id);
    clock.advance(5 * 60_000);
    expect(emulator.instance(id)).toMatchObject({ status: "scan_qr", qrCodesShown: 6 });
    clock.advance(60_000);
    expect(await statusOf(id)).toBe("failed");
    expect((await call("POST", `/api/instances/${id}/connect`)).status).toBe(200);
  });

  it("answers 409 INSTANCE_NOT_SCANNING for the QR outside scan_qr", async () => {
    const id = await createInstance();
    const answer = await call("GET", `/api/instances/${id}/qr`);
    expect(answer.status).toBe(409);
    expect(answer.body.error.code).toBe("INSTANCE_NOT_SCANNING");
  });

  it("connects with the phone number once the QR is scanned", async () => {
    const id = await createInstance();
    await toScanQr(id);
    emulator.scan(id, "5511999998888");
    expect((await call("GET", `/api/instances/${id}/status`)).body.data).toEqual({ id, status: "connected", phone_number: "5511999998888" });
  });

  it.each([
    ["starting", 0],
    ["scan_qr", 3000],
  ])("answers 409 ALREADY_IN_STATE to connect while %s", async (status, wait) => {
    const id = await createInstance();
    await call("POST", `/api/instances/${id}/connect`);
    clock.advance(wait);
    expect(await statusOf(id)).toBe(status);
    const again = await call("POST", `/api/instances/${id}/connect`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("ALREADY_IN_STATE");
  });

  it("answers 409 to connect while connected, and to disconnect while created or disconnected", async () => {
    const id = await createInstance();
    expect((await call("POST", `/api/instances/${id}/disconnect`)).status).toBe(409);
    await toScanQr(id);
    emulator.scan(id, "5511999998888");
    expect((await call("POST", `/api/instances/${id}/connect`)).status).toBe(409);
    expect((await call("POST", `/api/instances/${id}/disconnect`)).status).toBe(200);
    expect((await call("POST", `/api/instances/${id}/disconnect`)).status).toBe(409);
  });

  it("keeps the link across disconnect: connecting again needs no QR", async () => {
    const id = await createInstance();
    await toScanQr(id);
    emulator.scan(id, "5511999998888");
    await call("POST", `/api/instances/${id}/disconnect`);
    expect(await statusOf(id)).toBe("disconnected");
    await toScanQr(id);
    expect(emulator.instance(id)).toMatchObject({ status: "connected", phone: "5511999998888" });
  });

  it("keeps the link across restart", async () => {
    const id = await createInstance();
    await toScanQr(id);
    emulator.scan(id, "5511999998888");
    expect((await call("POST", `/api/instances/${id}/restart`)).body.data.status).toBe("starting");
    clock.advance(3000);
    expect(await statusOf(id)).toBe("connected");
  });

  it("unlinks on logout: the next connect needs a new QR, and a second logout conflicts", async () => {
    const id = await createInstance();
    await toScanQr(id);
    emulator.scan(id, "5511999998888");
    const loggedOut = await call("POST", `/api/instances/${id}/logout`);
    expect(loggedOut.body.data).toEqual({ id, status: "disconnected", phone_number: null });
    expect((await call("POST", `/api/instances/${id}/logout`)).status).toBe(409);
    await toScanQr(id);
    expect(await statusOf(id)).toBe("scan_qr");
  });

  it("drops a connection on request, keeping the link", async () => {
    const id = await createInstance();
    await toScanQr(id);
    emulator.scan(id, "5511999998888");
    emulator.dropConnection(id);
    expect(emulator.instance(id)).toMatchObject({ status: "disconnected", phone: "5511999998888" });
  });

  it("refuses to scan an instance that shows no QR", async () => {
    const id = await createInstance();
    expect(() => emulator.scan(id, "1")).toThrow(/shows no QR/);
  });
});

describe("rate limit", () => {
  it("counts requests per key and minute, then answers 429 RATE_LIMIT_EXCEEDED with Retry-After", async () => {
    await setUp({ requestsPerMinute: 3 });
    const resetAt = String(Math.ceil((clock.now() + 60_000) / 1000));
    const remaining: (string | null)[] = [];
    for (let i = 0; i < 3; i++) {
      const answer = await call("GET", "/api/instances");
      expect(answer.status).toBe(200);
      expect(answer.headers.get("x-ratelimit-limit")).toBe("3");
      expect(answer.headers.get("x-ratelimit-reset")).toBe(resetAt);
      remaining.push(answer.headers.get("x-ratelimit-remaining"));
    }
    expect(remaining).toEqual(["2", "1", "0"]);

    clock.advance(15_000);
    const limited = await call("GET", "/api/instances");
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe("RATE_LIMIT_EXCEEDED");
    expect(limited.headers.get("retry-after")).toBe("45");
    expect(limited.headers.get("x-ratelimit-remaining")).toBe("0");

    expect((await call("GET", "/api/instances", { key: OTHER_KEY })).status).toBe(200);
    clock.advance(45_000);
    expect((await call("GET", "/api/instances")).status).toBe(200);
  });
});

describe("account webhooks", () => {
  interface Received {
    readonly headers: IncomingHttpHeaders;
    readonly body: string;
  }
  let received: Received[];
  let receiverUrl: string;
  const receiver = createServer((req, res) => {
    void readBody(req).then((body) => {
      received.push({ headers: req.headers, body: body.toString("utf8") });
      res.writeHead(204).end();
    });
  });

  beforeEach(async () => {
    received = [];
    if (!receiver.listening) receiverUrl = `${await listen(receiver)}/hooks`;
  });

  afterEach(async () => {
    await emulator.stop();
    await close(receiver);
  });

  it("creates, lists (with the secret) and deletes a webhook", async () => {
    const id = await createInstance();
    const created = await call("POST", "/api/webhooks", {
      json: { url: receiverUrl, events: ["instance.connected"], instance_id: id, secret: "s3cret" },
    });
    expect(created.status).toBe(201);
    expect(created.body.data).toMatchObject({ url: receiverUrl, events: ["instance.connected"], instance_id: id, is_active: true, retry_count: 3 });
    expect(created.body.data).not.toHaveProperty("secret");

    const listed = await call("GET", "/api/webhooks");
    expect(listed.body.data.items).toEqual([expect.objectContaining({ id: created.body.data.id, secret: "s3cret", instance_id: id, description: null })]);
    expect((await call("GET", "/api/webhooks", { key: OTHER_KEY })).body.data.items).toEqual([]);

    expect((await call("DELETE", `/api/webhooks/${created.body.data.id}`)).status).toBe(200);
    expect((await call("DELETE", `/api/webhooks/${created.body.data.id}`)).status).toBe(404);
    expect(emulator.webhooks()).toEqual([]);
  });

  it.each([
    ["an unknown event", { url: "https://example.com/h", events: ["session.status"] }],
    ["an event the guide does not list", { url: "https://example.com/h", events: ["instance.failed"] }],
    ["no events", { url: "https://example.com/h", events: [] }],
    ["a URL that is not http(s)", { url: "ftp://example.com/h", events: ["message.received"] }],
    ["a retry_count above 5", { url: "https://example.com/h", events: ["message.received"], retry_count: 6 }],
  ])("answers 422 for %s", async (_what, json) => {
    const answer = await call("POST", "/api/webhooks", { json });
    expect(answer.status).toBe(422);
    expect(answer.body.error.code).toBe("VALIDATION_ERROR");
  });

  it("answers 404 for a webhook scoped to another account's instance", async () => {
    const bobs = await createInstance("bob", OTHER_KEY);
    const answer = await call("POST", "/api/webhooks", { json: { url: receiverUrl, events: ["message.received"], instance_id: bobs } });
    expect(answer.status).toBe(404);
  });

  it("delivers the subscribed instance events, signed with hex HMAC-SHA256 of the raw body", async () => {
    const id = await createInstance();
    await call("POST", "/api/webhooks", {
      json: { url: receiverUrl, events: ["instance.qr", "instance.connected"], instance_id: id, secret: "s3cret" },
    });
    await toScanQr(id);
    emulator.scan(id, "5511999998888");
    await call("POST", `/api/instances/${id}/disconnect`);
    await emulator.settleDeliveries();

    expect(received.map((r) => JSON.parse(r.body).event)).toEqual(["instance.qr", "instance.connected"]);
    const connected = received[1];
    expect(JSON.parse(connected?.body ?? "")).toMatchObject({ event: "instance.connected", instance_id: id, data: { phone_number: "5511999998888" } });
    expect(connected?.headers["x-wappfy-event"]).toBe("instance.connected");
    expect(connected?.headers["x-wappfy-signature"]).toBe(signWappfyBody(connected?.body ?? "", "s3cret"));
    expect(emulator.deliveries.map((d) => d.status)).toEqual([204, 204]);
  });

  it("sends no signature without a secret, and scopes by instance (null = all)", async () => {
    const first = await createInstance("first");
    const second = await createInstance("second");
    await call("POST", "/api/webhooks", { json: { url: receiverUrl, events: ["instance.qr"], instance_id: null } });
    await call("POST", "/api/webhooks", { json: { url: `${receiverUrl}/first`, events: ["instance.qr"], instance_id: first } });
    await toScanQr(second);
    await emulator.settleDeliveries();
    expect(received).toHaveLength(1);
    expect(received[0]?.headers["x-wappfy-signature"]).toBeUndefined();
    expect(JSON.parse(received[0]?.body ?? "").instance_id).toBe(second);
  });

  it("accepts every event name of the guide, and drops an instance's webhooks with it", async () => {
    await call("POST", "/api/webhooks", { json: { url: receiverUrl, events: [...WAPPFY_GUIDE_EVENTS] } });
    const id = await createInstance();
    await call("POST", "/api/webhooks", { json: { url: receiverUrl, events: ["message.received"], instance_id: id, description: "mine" } });
    expect(emulator.webhooks().map((w) => w.description)).toEqual([null, "mine"]);
    await call("DELETE", `/api/instances/${id}`);
    expect(emulator.webhooks().map((w) => w.instanceId)).toEqual([null]);
  });
});

describe("test hooks", () => {
  it("answers 503 while unavailable, and normally again afterwards", async () => {
    emulator.setAvailable(false);
    const down = await call("GET", "/api/instances");
    expect(down.status).toBe(503);
    expect(down.body.error.code).toBe("SERVICE_UNAVAILABLE");
    emulator.setAvailable(true);
    expect((await call("GET", "/api/instances")).status).toBe(200);
  });

  it("breaks the next answer without carrying the request out", async () => {
    emulator.corruptNext("not-json");
    const broken = await call("POST", "/api/instances", { json: { name: "x" } });
    expect(broken.status).toBe(200);
    expect(typeof broken.body).toBe("string");
    expect(emulator.instances()).toEqual([]);
    emulator.corruptNext("wrong-shape");
    expect((await call("GET", "/api/instances")).body).toEqual({ unexpected: true });
  });

  it("records every answered call with method, path and status, never the key", async () => {
    const id = await createInstance();
    await call("GET", "/api/instances/inst_nope/status");
    await call("GET", "/api/instances", { key: "wrong" });
    expect(emulator.calls).toEqual([
      { method: "POST", path: "/api/instances", status: 201 },
      { method: "GET", path: "/api/instances/inst_nope/status", status: 404 },
      { method: "GET", path: "/api/instances", status: 401 },
    ]);
    expect(JSON.stringify(emulator.calls)).not.toContain(KEY);
    expect(emulator.callsTo("POST", /^\/api\/instances$/)).toHaveLength(1);
    expect(id).toMatch(/^inst_/);
  });
});
