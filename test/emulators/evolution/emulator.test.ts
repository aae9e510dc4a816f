import { createHmac } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../shared/clock.ts";
import { decodeQrPng } from "../shared/qr-png.ts";
import { startReceiver, type Receiver } from "../shared/receiver.ts";
import { EVOLUTION_QR_TIMEOUT_MS, EvolutionEmulator, webhookJwt, type EvolutionEmulatorOptions } from "./emulator.ts";

const KEY = "global-key";

let clock: FakeClock;
let emulator: EvolutionEmulator;
let baseUrl: string;
let receiver: Receiver | undefined;

interface Answer {
  readonly status: number;
  // Tests read whatever the emulator sent; each assertion states the shape it expects.
  readonly body: any;
}

async function setUp(options: EvolutionEmulatorOptions = {}): Promise<void> {
  await emulator?.stop();
  clock = new FakeClock();
  emulator = new EvolutionEmulator({ globalKey: KEY, clock, ...options });
  baseUrl = await emulator.start();
}

async function call(method: string, path: string, options: { key?: string | null; json?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  const key = options.key === undefined ? KEY : options.key;
  if (key !== null) headers["apikey"] = key;
  if (options.json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`${baseUrl}${path}`, { method, headers, ...(options.json === undefined ? {} : { body: JSON.stringify(options.json) }) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

async function create(name: string, extra: Record<string, unknown> = {}): Promise<Answer> {
  return call("POST", "/instance/create", { json: { instanceName: name, integration: "WHATSAPP-BAILEYS", qrcode: false, ...extra } });
}

const stateOf = async (name: string): Promise<string> => (await call("GET", `/instance/connectionState/${encodeURIComponent(name)}`)).body.instance.state;

beforeEach(async () => {
  await setUp();
});

afterEach(async () => {
  await emulator.stop();
  await receiver?.close();
  receiver = undefined;
});

describe("routes and guards", () => {
  it("answers its version at / without a key", async () => {
    const answer = await call("GET", "/", { key: null });
    expect(answer).toMatchObject({ status: 200, body: { status: 200, version: "2.3.6", whatsappWebVersion: expect.any(String) } });
  });

  it("refuses a missing or unknown key with 401, and checks an unknown instance (404) before the key", async () => {
    expect((await call("GET", "/instance/fetchInstances", { key: null })).status).toBe(401);
    expect((await call("POST", "/verify-creds", { key: "wrong" })).status).toBe(401);
    expect((await call("POST", "/verify-creds")).status).toBe(200);
    const unknown = await call("GET", "/instance/connectionState/nobody", { key: "wrong" });
    expect(unknown).toEqual({ status: 404, body: { status: 404, error: "Not Found", response: { message: ['The "nobody" instance does not exist'] } } });
  });

  it("lets an instance token act on its own instance only, and lists only that instance", async () => {
    const a = (await create("a")).body.hash as string;
    await create("b");
    expect((await call("GET", "/instance/connectionState/a", { key: a })).status).toBe(200);
    expect((await call("GET", "/instance/connectionState/b", { key: a })).status).toBe(401);
    expect((await call("POST", "/instance/create", { key: a, json: { instanceName: "c", integration: "WHATSAPP-BAILEYS" } })).status).toBe(401);
    const listed = await call("GET", "/instance/fetchInstances", { key: a });
    expect(listed.body.map((row: { name: string }) => row.name)).toEqual(["a"]);
  });
});

describe("instances", () => {
  it("creates a closed instance and answers its token as hash; fetchInstances returns every token", async () => {
    const created = await create("sales", { token: "MY-TOKEN" });
    expect(created).toMatchObject({ status: 201, body: { instance: { instanceName: "sales", status: "close" }, hash: "MY-TOKEN" } });
    const rows = (await call("GET", "/instance/fetchInstances")).body;
    expect(rows).toEqual([expect.objectContaining({ name: "sales", connectionStatus: "close", token: "MY-TOKEN", ownerJid: null })]);
    expect((await call("GET", "/instance/fetchInstances?instanceName=other")).status).toBe(404);
  });

  it("refuses a name in use (403) and an integration it does not know (400)", async () => {
    await create("sales");
    expect((await create("sales")).status).toBe(403);
    expect((await call("POST", "/instance/create", { json: { instanceName: "x" } })).body.response.message).toEqual(["Invalid integration"]);
  });

  it("drops the instance it was creating when the create body has a webhook without events", async () => {
    const answer = await create("sales", { webhook: { url: "http://127.0.0.1:1/hook" } });
    expect(answer.status).toBe(400);
    expect((await call("GET", "/instance/fetchInstances")).body).toEqual([]);
  });
});

describe("connection and QR", () => {
  it("answers connect with {count: 0} when the first QR is not there within its 2 s wait, then serves it", async () => {
    await setUp({ firstQrDelayMs: 3000 });
    await create("sales");
    expect((await call("GET", "/instance/connect/sales")).body).toEqual({ count: 0 });
    expect(await stateOf("sales")).toBe("connecting");
    clock.advance(3000);
    const qr = (await call("GET", "/instance/connect/sales")).body;
    expect(qr).toMatchObject({ count: 1, code: emulator.currentQr("sales"), base64: expect.stringMatching(/^data:image\/png;base64,/) });
    expect(decodeQrPng(Buffer.from(qr.base64.split(",")[1], "base64"))).toBe(qr.code);
  });

  it("rotates the QR every 45 s and closes the instance when the QR limit is reached", async () => {
    await setUp({ qrLimit: 3 });
    await create("sales");
    const first = (await call("GET", "/instance/connect/sales")).body.code;
    clock.advance(EVOLUTION_QR_TIMEOUT_MS);
    const second = (await call("GET", "/instance/connect/sales")).body;
    expect(second.count).toBe(2);
    expect(second.code).not.toBe(first);
    clock.advance(2 * EVOLUTION_QR_TIMEOUT_MS);
    expect(await stateOf("sales")).toBe("close");
    expect(emulator.instance("sales")?.qrCount).toBe(0);
  });

  it("gives a pairing code with each QR when connect named a number", async () => {
    await create("sales");
    const answer = (await call("GET", "/instance/connect/sales?number=5511999998888")).body;
    expect(answer.pairingCode).toMatch(/^[A-Z0-9]{8}$/);
    clock.advance(EVOLUTION_QR_TIMEOUT_MS);
    expect((await call("GET", "/instance/connect/sales")).body.pairingCode).not.toBe(answer.pairingCode);
  });

  it("opens on a scan with the owner's jid, keeps the link across a restart, and keeps ownerJid after a logout", async () => {
    await create("sales");
    await call("GET", "/instance/connect/sales");
    emulator.scan("sales", "5511999998888");
    expect(await stateOf("sales")).toBe("open");
    expect((await call("POST", "/instance/restart/sales")).status).toBe(200);
    expect(await stateOf("sales")).toBe("connecting");
    // The database still says open while the socket reconnects.
    expect((await call("GET", "/instance/fetchInstances?instanceName=sales")).body[0].connectionStatus).toBe("open");
    clock.advance(1000);
    expect(await stateOf("sales")).toBe("open");
    expect((await call("DELETE", "/instance/logout/sales")).body).toEqual({ status: "SUCCESS", error: false, response: { message: "Instance logged out" } });
    expect(await stateOf("sales")).toBe("close");
    expect((await call("GET", "/instance/fetchInstances?instanceName=sales")).body[0].ownerJid).toBe("5511999998888@s.whatsapp.net");
    // A new connect needs a new scan.
    await call("GET", "/instance/connect/sales");
    expect(emulator.currentQr("sales")).toBeDefined();
  });

  it("answers a failure as HTTP 200 with {error: true}: restart of a closed instance (2.0.6 and later)", async () => {
    await create("sales");
    const answer = await call("POST", "/instance/restart/sales");
    expect(answer).toEqual({ status: 200, body: { error: true, message: expect.stringContaining("is not connected") } });
  });

  it("differs by version: before 2.0.6 restart of a closed instance answers its state; before 2.2.1 delete refuses an open one", async () => {
    await setUp({ version: "2.0.5" });
    await create("sales");
    expect((await call("POST", "/instance/restart/sales")).body).toEqual({ instance: { instanceName: "sales", state: "close" } });
    await call("GET", "/instance/connect/sales");
    emulator.scan("sales", "5511999998888");
    expect((await call("DELETE", "/instance/delete/sales")).status).toBe(400);
  });

  it("refuses logout of a closed instance with 400, and delete logs an open one out first", async () => {
    await create("sales");
    expect((await call("DELETE", "/instance/logout/sales")).body.response.message).toEqual(['The "sales" instance is not connected']);
    await call("GET", "/instance/connect/sales");
    emulator.scan("sales", "5511999998888");
    expect((await call("DELETE", "/instance/delete/sales")).status).toBe(200);
    expect(emulator.instance("sales")).toBeUndefined();
  });
});

describe("webhooks", () => {
  it("keeps one webhook per instance: enabled with [] means every event, disabled stores none, unknown names are 400", async () => {
    await create("sales");
    const set = (webhook: unknown) => call("POST", "/webhook/set/sales", { json: { webhook } });
    expect((await call("GET", "/webhook/find/sales")).body).toBeNull();
    expect((await set({ enabled: true, url: "http://127.0.0.1:1/a", events: [] })).status).toBe(201);
    expect((await call("GET", "/webhook/find/sales")).body.events).toContain("CONNECTION_UPDATE");
    expect((await set({ enabled: true, url: "http://127.0.0.1:1/a", events: ["NOPE"] })).status).toBe(400);
    expect((await set({ enabled: true, url: "http://127.0.0.1:1/a" })).status).toBe(500);
    await set({ enabled: false, url: "http://127.0.0.1:1/a" });
    expect((await call("GET", "/webhook/find/sales")).body).toMatchObject({ enabled: false, events: [] });
  });

  it("posts the subscribed events unsigned, with the stored headers and the instance token, and turns jwt_key into a Bearer JWT", async () => {
    receiver = await startReceiver();
    const token = (await create("sales")).body.hash as string;
    const headers = { "x-custom": "yes", jwt_key: "the-key" };
    await call("POST", "/webhook/set/sales", { json: { webhook: { enabled: true, url: `${receiver.url}/hook`, events: ["CONNECTION_UPDATE"], headers } } });
    await call("GET", "/instance/connect/sales");
    const [delivery] = await receiver.waitFor(1);
    expect(delivery?.json).toMatchObject({ event: "connection.update", instance: "sales", data: { state: "connecting" }, apikey: token });
    expect(delivery?.headers["x-custom"]).toBe("yes");
    expect(delivery?.headers["jwt_key"]).toBeUndefined();
    const iat = Math.floor(clock.now() / 1000);
    expect(delivery?.headers["authorization"]).toBe(`Bearer ${webhookJwt("the-key", iat)}`);
    const [head, payload, signature] = webhookJwt("the-key", iat).split(".");
    expect(signature).toBe(createHmac("sha256", "the-key").update(`${head}.${payload}`).digest("base64url"));
  });
});
