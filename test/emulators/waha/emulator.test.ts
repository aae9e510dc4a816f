/**
 * The WAHA emulator against waha.md (1.1-1.7) and the published 2026.7.1 OpenAPI spec,
 * over real HTTP on loopback. Time is a FakeClock unless a test is about real time.
 */
import path from "node:path";
import { createHash, createHmac } from "node:crypto";
import jsQRModule from "jsqr";
import { PNG } from "pngjs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { FakeClock } from "../shared/clock.ts";
import { matchTemplate } from "../shared/http.ts";
import { componentSchema, findOperation, loadSpec, responseSchema, schemaProblems } from "../shared/openapi.ts";
import { startReceiver, type Receiver } from "../shared/receiver.ts";
import {
  signWebhookBody,
  WahaEmulator,
  WahaEmulatorHookError,
  type WahaEmulatorOptions,
  type WahaStatus,
} from "./emulator.ts";

const KEY = "test-api-key";
// shared/ sits beside the repository (the steering repo's provider notes and specs).
const SPEC_FILE = path.resolve(import.meta.dirname, "..", "..", "..", "..", "shared", "providers", "waha-openapi.json");
const QR_RAW = /^2@[A-Za-z0-9+/]+={0,2},[A-Za-z0-9+/]+={0,2},[A-Za-z0-9+/]+={0,2},1$/;

interface Res {
  status: number;
  headers: Headers;
  bytes: Buffer;
  text: string;
  json: unknown;
}

interface CallOptions {
  /** null = send no key. */
  key?: string | null;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
}

let clock: FakeClock;
let waha: WahaEmulator;
let base: string;
const cleanups: (() => Promise<void>)[] = [];

async function boot(options: Partial<WahaEmulatorOptions> = {}): Promise<void> {
  await waha?.stop();
  clock = new FakeClock();
  waha = new WahaEmulator({ apiKey: KEY, clock, ...options });
  base = await waha.start();
}

beforeEach(() => boot());
afterEach(async () => {
  await waha.stop();
  for (const fn of cleanups.splice(0)) await fn();
});

async function call(method: string, path: string, opts: CallOptions = {}): Promise<Res> {
  const headers: Record<string, string> = { ...opts.headers };
  const key = opts.key === undefined ? KEY : opts.key;
  if (key !== null) headers["X-Api-Key"] = key;
  let body: string | undefined;
  if (opts.rawBody !== undefined || opts.body !== undefined) {
    headers["Content-Type"] ??= "application/json";
    body = opts.rawBody ?? JSON.stringify(opts.body);
  }
  const res = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = bytes.toString("utf8");
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, bytes, text, json };
}

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  cleanups.push(() => r.close());
  return r;
}

const create = (body: Record<string, unknown>) => call("POST", "/api/sessions", { body });
const status = async (name: string) => ((await call("GET", `/api/sessions/${name}`)).json as { status: WahaStatus }).status;

function decodeQr(png: Buffer): string | undefined {
  const image = PNG.sync.read(png);
  const pixels = new Uint8ClampedArray(image.data.buffer, image.data.byteOffset, image.data.length);
  return jsQRModule.default(pixels, image.width, image.height)?.data;
}

const notRunningMessage = (s: string) =>
  `We didn't find a session with name '${s}'.\nPlease start it first by using POST /api/sessions/${s}/start request`;

// ------------------------------------------------------------------------------------------

describe("auth and server endpoints", () => {
  it("requires the key on /api/* and /health, by header or ?x-api-key=, and leaves /ping open", async () => {
    for (const path of ["/api/sessions", "/health", "/api/server/version", "/api/nope"]) {
      const res = await call("GET", path, { key: null });
      expect(res.status, path).toBe(401);
      expect(res.json).toEqual({ message: "Unauthorized", statusCode: 401 });
    }
    expect((await call("GET", "/api/sessions", { key: "wrong" })).status).toBe(401);
    expect((await call("GET", `/api/sessions?x-api-key=${KEY}`, { key: null })).status).toBe(200);
    expect((await call("GET", "/health")).json).toMatchObject({ status: "ok" });
    const ping = await call("GET", "/ping", { key: null });
    expect([ping.status, ping.json]).toEqual([200, { message: "pong" }]);
  });

  it("accepts a sha512:<hex> WAHA_API_KEY", async () => {
    await boot({ apiKey: `sha512:${createHash("sha512").update("plain-key").digest("hex")}` });
    expect((await call("GET", "/api/sessions", { key: "plain-key" })).status).toBe(200);
    expect((await call("GET", "/api/sessions", { key: "other" })).status).toBe(401);
  });

  it("answers NestJS 404s for unknown routes", async () => {
    const res = await call("PATCH", "/api/sessions");
    expect(res.status).toBe(404);
    expect(res.json).toEqual({ message: "Cannot PATCH /api/sessions", error: "Not Found", statusCode: 404 });
  });

  it("reports version, engine and tier", async () => {
    await boot({ engine: "NOWEB", tier: "PLUS", version: "2026.7.1" });
    const res = await call("GET", "/api/server/version");
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ version: "2026.7.1", engine: "NOWEB", tier: "PLUS", platform: "linux/x64" });
    expect((res.json as { worker: { id: string } }).worker.id).toBeTypeOf("string");
  });
});

describe("session management endpoints", () => {
  it("creates a stopped session and refuses a duplicate with 422", async () => {
    const res = await create({ name: "alpha", start: false, config: { metadata: { "k8s.uid": "u-1" } } });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ name: "alpha", status: "STOPPED", config: { metadata: { "k8s.uid": "u-1" } } });
    const dup = await create({ name: "alpha", start: false });
    expect(dup.status).toBe(422);
    expect(dup.json).toEqual({
      message: "Session 'alpha' already exists. Use PUT to update it.",
      error: "Unprocessable Entity",
      statusCode: 422,
    });
  });

  it("generates session_<32 hex> when the name is omitted and starts by default (2026 spec)", async () => {
    const res = await create({});
    expect(res.status).toBe(201);
    const body = res.json as { name: string; status: string };
    expect(body.name).toMatch(/^session_[0-9a-f]{32}$/);
    expect(body.status).toBe("STARTING");
    await boot({ createStartDefault: false });
    expect(((await create({ name: "x" })).json as { status: string }).status).toBe("STOPPED");
  });

  it("validates bodies like NestJS: 400 with messages, unknown properties dropped", async () => {
    expect((await create({ name: 5 })).json).toEqual({
      message: ["name must be a string"],
      error: "Bad Request",
      statusCode: 400,
    });
    const long = await create({ name: "n".repeat(55) });
    expect(long.status).toBe(400);
    expect(long.json).toMatchObject({ message: ["name must be shorter than or equal to 54 characters"] });
    expect((await create({ name: "n".repeat(54), start: false })).status).toBe(201);
    expect((await create({ name: "s", start: "yes" })).json).toMatchObject({ message: ["start must be a boolean value"] });

    const hooks = await create({
      name: "h",
      config: { webhooks: [{ url: "not a url", events: ["session.status", "nope"] }], metadata: { a: 1 } },
    });
    expect(hooks.status).toBe(400);
    const messages = (hooks.json as { message: string[] }).message;
    expect(messages).toContain("config.webhooks.0.url must be a URL address");
    expect(messages).toContain("config.metadata accepts string key-value pairs only");
    expect(messages.some((m) => m.startsWith("config.webhooks.0.each value in events must be one of"))).toBe(true);

    // A URL needs a protocol but no TLD; "*" is accepted.
    const ok = await create({
      name: "w",
      start: false,
      extra: true,
      config: { bogus: 1, webhooks: [{ url: "http://operator:8080/hook", events: ["*"], junk: 1 }] },
    });
    expect(ok.status).toBe(201);
    expect((ok.json as { config: unknown }).config).toEqual({ webhooks: [{ url: "http://operator:8080/hook", events: ["*"] }] });

    const broken = await call("POST", "/api/sessions", { rawBody: "{nope" });
    expect(broken.status).toBe(400);
    expect(broken.json).toMatchObject({ error: "Bad Request", statusCode: 400 });
    expect(typeof (broken.json as { message: unknown }).message).toBe("string");
  });

  it("lists only running sessions unless all=true", async () => {
    await create({ name: "on", start: true });
    await create({ name: "off", start: false });
    const names = async (q: string) => ((await call("GET", `/api/sessions${q}`)).json as { name: string }[]).map((s) => s.name);
    expect(await names("")).toEqual(["on"]);
    expect(await names("?all=false")).toEqual(["on"]);
    expect(await names("?all=true")).toEqual(["on", "off"]);
    expect((await call("GET", "/api/sessions?all=maybe")).status).toBe(400);
  });

  it("gets one session (also STOPPED) and 404s an unknown one", async () => {
    await create({ name: "s", start: false });
    const res = await call("GET", "/api/sessions/s");
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ name: "s", status: "STOPPED", me: null, timestamps: { activity: null }, engine: { engine: "WEBJS" } });
    const missing = await call("GET", "/api/sessions/ghost");
    expect([missing.status, missing.json]).toEqual([404, { message: "Session not found", error: "Not Found", statusCode: 404 }]);
  });

  it("404s every management action on an unknown session", async () => {
    for (const action of ["start", "stop", "restart", "logout"]) {
      const res = await call("POST", `/api/sessions/ghost/${action}`);
      expect([res.status, (res.json as { message: string }).message], action).toEqual([404, "Session not found"]);
    }
    expect((await call("PUT", "/api/sessions/ghost", { body: { config: {} } })).status).toBe(404);
  });

  it("PUT replaces the whole config; a running session goes through STOPPED and starts again", async () => {
    await create({ name: "s", start: true, config: { metadata: { a: "1" }, debug: true } });
    clock.advance(1000);
    const res = await call("PUT", "/api/sessions/s", { body: { name: "ignored", config: { metadata: { b: "2" } } } });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ name: "s", status: "STARTING", config: { metadata: { b: "2" } } });
    expect((res.json as { config: Record<string, unknown> }).config).not.toHaveProperty("debug");
    expect(waha.session("s")?.statuses.slice(-3).map((p) => p.status)).toEqual(["SCAN_QR_CODE", "STOPPED", "STARTING"]);
    expect(waha.session("s")?.boots).toBe(2);

    await create({ name: "t", start: false });
    const stopped = await call("PUT", "/api/sessions/t", { body: { config: { metadata: { c: "3" } } } });
    expect(stopped.json).toMatchObject({ status: "STOPPED", config: { metadata: { c: "3" } } });
    expect(waha.session("t")?.boots).toBe(0);
  });

  it("DELETE is idempotent, answers 200 with an empty body and also logs out", async () => {
    await create({ name: "s", start: true, config: {} });
    clock.advance(1000);
    waha.scan("s", "15550001111");
    const res = await call("DELETE", "/api/sessions/s");
    expect([res.status, res.text, res.headers.get("content-length")]).toEqual([200, "", "0"]);
    expect((await call("GET", "/api/sessions/s")).status).toBe(404);
    expect((await call("DELETE", "/api/sessions/s")).status).toBe(200);
    expect((await call("DELETE", "/api/sessions/never-existed")).status).toBe(200);
    // Re-created under the same name, it has no auth left.
    await create({ name: "s", start: true, config: {} });
    clock.advance(1000);
    expect(await status("s")).toBe("SCAN_QR_CODE");
  });
});

describe("status machine", () => {
  it("STOPPED -> STARTING -> SCAN_QR_CODE after the start delay -> WORKING on scan", async () => {
    await create({ name: "s", start: false });
    const started = await call("POST", "/api/sessions/s/start");
    expect([started.status, (started.json as { status: string }).status]).toEqual([201, "STARTING"]);
    clock.advance(999);
    expect(await status("s")).toBe("STARTING");
    clock.advance(1);
    expect(await status("s")).toBe("SCAN_QR_CODE");
    waha.scan("s", "+1 (555) 123-4567", "Ops");
    expect(await status("s")).toBe("WORKING");
    expect((await call("GET", "/api/sessions/s")).json).toMatchObject({ me: { id: "15551234567@c.us", pushName: "Ops" } });
  });

  it("a zero start delay goes straight to SCAN_QR_CODE in the create response", async () => {
    await boot({ startDelayMs: 0 });
    expect(((await create({ name: "s", start: true })).json as { status: string }).status).toBe("SCAN_QR_CODE");
    expect(waha.session("s")?.statuses.map((p) => p.status)).toEqual(["STOPPED", "STARTING", "SCAN_QR_CODE"]);
  });

  it("start is idempotent; stop keeps auth so the next start goes STARTING -> WORKING", async () => {
    await create({ name: "s", start: true });
    clock.advance(1000);
    waha.scan("s", "15550001111");
    const again = await call("POST", "/api/sessions/s/start");
    expect([again.status, (again.json as { status: string }).status]).toEqual([201, "WORKING"]);

    const stopped = await call("POST", "/api/sessions/s/stop");
    expect([stopped.status, (stopped.json as { status: string }).status]).toEqual([201, "STOPPED"]);
    expect((await call("POST", "/api/sessions/s/stop")).status).toBe(201); // idempotent
    expect(waha.session("s")?.linked).toBe(true);

    expect(((await call("POST", "/api/sessions/s/start")).json as { status: string }).status).toBe("STARTING");
    clock.advance(1000);
    expect(await status("s")).toBe("WORKING");
  });

  it("start on a FAILED session is a no-op; restart recovers it", async () => {
    await create({ name: "s", start: true });
    clock.advance(1000);
    waha.scan("s", "15550001111");
    waha.crash("s", { autoRestart: false });
    expect(((await call("POST", "/api/sessions/s/start")).json as { status: string }).status).toBe("FAILED");
    const restarted = await call("POST", "/api/sessions/s/restart");
    expect([restarted.status, (restarted.json as { status: string }).status]).toEqual([201, "STARTING"]);
    clock.advance(1000);
    expect(await status("s")).toBe("WORKING");
  });

  it("restart stops then starts, also from STOPPED", async () => {
    await create({ name: "s", start: false });
    expect(((await call("POST", "/api/sessions/s/restart")).json as { status: string }).status).toBe("STARTING");
    clock.advance(1000);
    const statuses = () => waha.session("s")?.statuses.map((p) => p.status);
    await call("POST", "/api/sessions/s/restart");
    expect(statuses()?.slice(-3)).toEqual(["SCAN_QR_CODE", "STOPPED", "STARTING"]);
  });

  it("logout on a running session wipes auth and restarts into a fresh QR", async () => {
    await create({ name: "s", start: true });
    clock.advance(1000);
    waha.scan("s", "15550001111");
    const res = await call("POST", "/api/sessions/s/logout");
    expect([res.status, (res.json as { status: string }).status]).toEqual([201, "STARTING"]);
    expect(waha.session("s")?.statuses.slice(-3).map((p) => p.status)).toEqual(["WORKING", "STOPPED", "STARTING"]);
    clock.advance(1000);
    expect(await status("s")).toBe("SCAN_QR_CODE");
    expect(waha.session("s")?.linked).toBe(false);
  });

  it("logout on a stopped session only wipes auth", async () => {
    await create({ name: "s", start: true });
    clock.advance(1000);
    waha.scan("s", "15550001111");
    await call("POST", "/api/sessions/s/stop");
    const res = await call("POST", "/api/sessions/s/logout");
    expect((res.json as { status: string }).status).toBe("STOPPED");
    await call("POST", "/api/sessions/s/start");
    clock.advance(1000);
    expect(await status("s")).toBe("SCAN_QR_CODE");
  });

  it("rotates the QR at 60 s, then every 20 s, and fails after 6 codes", async () => {
    await create({ name: "s", start: true });
    clock.advance(1000);
    const seen: string[] = [];
    const qr = () => waha.currentQr("s");
    seen.push(qr() ?? "");
    expect(seen[0]).toMatch(QR_RAW);
    clock.advance(59_999);
    expect(qr()).toBe(seen[0]);
    clock.advance(1);
    for (let i = 2; i <= 6; i++) {
      const value = qr() ?? "";
      expect(value, `code ${i}`).toMatch(QR_RAW);
      expect(seen).not.toContain(value);
      expect(waha.session("s")?.qr?.index).toBe(i);
      seen.push(value);
      clock.advance(19_999);
      expect(qr()).toBe(value);
      clock.advance(1);
    }
    // 60 s + 5 x 20 s after the first code, nobody scanned: FAILED, no QR any more.
    expect(await status("s")).toBe("FAILED");
    expect(qr()).toBeNull();
    const history = waha.session("s")?.statuses ?? [];
    expect(history.filter((p) => p.status === "SCAN_QR_CODE")).toHaveLength(6);
    const scanAt = history.filter((p) => p.status === "SCAN_QR_CODE").map((p) => p.timestamp);
    expect(scanAt.slice(1).map((t, i) => t - (scanAt[i] ?? 0))).toEqual([60_000, 20_000, 20_000, 20_000, 20_000]);
    expect(() => waha.scan("s", "15550001111")).toThrow(WahaEmulatorHookError);
  });

  it("honours custom QR timings", async () => {
    await boot({ startDelayMs: 0, qr: { firstMs: 10, nextMs: 5, maxCodes: 2 } });
    await create({ name: "s", start: true });
    clock.advance(10);
    expect(waha.session("s")?.qr?.index).toBe(2);
    clock.advance(5);
    expect(await status("s")).toBe("FAILED");
  });
});

describe("me, QR and pairing endpoints", () => {
  it("me: MeInfo when linked, empty 200 when running unlinked, 404 when stopped or missing", async () => {
    await create({ name: "s", start: true });
    clock.advance(1000);
    const unlinked = await call("GET", "/api/sessions/s/me");
    expect([unlinked.status, unlinked.text]).toEqual([200, ""]);
    waha.scan("s", "15550001111", "Ops");
    expect((await call("GET", "/api/sessions/s/me")).json).toEqual({ id: "15550001111@c.us", pushName: "Ops" });
    await call("POST", "/api/sessions/s/stop");
    for (const name of ["s", "ghost"]) {
      const res = await call("GET", `/api/sessions/${name}/me`);
      expect([res.status, res.json]).toEqual([404, { message: notRunningMessage(name), error: "Not Found", statusCode: 404 }]);
    }
  });

  it("serves the QR as PNG by default, base64 JSON on Accept: application/json, {value} with format=raw", async () => {
    await create({ name: "s", start: true });
    clock.advance(1000);
    const current = waha.currentQr("s");
    expect(current).toMatch(QR_RAW);

    const png = await call("GET", "/api/s/auth/qr");
    expect(png.status).toBe(200);
    expect(png.headers.get("content-type")).toBe("image/png");
    expect(png.bytes.subarray(1, 4).toString("latin1")).toBe("PNG");
    expect(decodeQr(png.bytes)).toBe(current);

    const json = await call("GET", "/api/s/auth/qr?format=image", { headers: { Accept: "application/json" } });
    const body = json.json as { mimetype: string; data: string };
    expect(body.mimetype).toBe("image/png");
    expect(decodeQr(Buffer.from(body.data, "base64"))).toBe(current);

    expect((await call("GET", "/api/s/auth/qr?format=raw")).json).toEqual({ value: current });
    expect((await call("GET", "/api/s/auth/qr?format=svg")).status).toBe(400);

    // After a rotation the image shows the new code.
    clock.advance(60_000);
    const next = waha.currentQr("s");
    expect(next).not.toBe(current);
    expect(decodeQr((await call("GET", "/api/s/auth/qr")).bytes)).toBe(next);
  });

  it("QR: 422 object body when not SCAN_QR_CODE, 404 when stopped or missing", async () => {
    await create({ name: "s", start: true });
    const starting = await call("GET", "/api/s/auth/qr");
    expect(starting.status).toBe(422);
    expect(starting.json).toEqual({
      error: "Session status is not as expected. Try again later or restart the session",
      session: "s",
      status: "STARTING",
      expected: ["SCAN_QR_CODE"],
    });
    clock.advance(1000);
    waha.scan("s", "15550001111");
    expect(((await call("GET", "/api/s/auth/qr?format=raw")).json as { status: string }).status).toBe("WORKING");
    await call("POST", "/api/sessions/s/stop");
    const stopped = await call("GET", "/api/s/auth/qr");
    expect([stopped.status, (stopped.json as { message: string }).message]).toEqual([404, notRunningMessage("s")]);
    expect((await call("GET", "/api/ghost/auth/qr")).status).toBe(404);
  });

  it("request-code returns ABCD-EFGH and entering it links the requested number", async () => {
    await create({ name: "s", start: true });
    clock.advance(1000);
    const res = await call("POST", "/api/s/auth/request-code", { body: { phoneNumber: "12132132130" } });
    expect(res.status).toBe(201);
    const { code } = res.json as { code: string };
    expect(code).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}$/);
    expect(waha.session("s")?.pairingCode).toBe(code);
    waha.enterPairingCode("s");
    expect((await call("GET", "/api/sessions/s/me")).json).toMatchObject({ id: "12132132130@c.us" });
  });

  it("request-code while STARTING waits for the first QR (NOWEB's requestCode), then answers", async () => {
    await create({ name: "s", start: true });
    const pending = call("POST", "/api/s/auth/request-code", { body: { phoneNumber: "12132132130" } });
    await vi.waitFor(() => expect(waha.calls.length).toBe(1));
    clock.advance(1000);
    const res = await pending;
    expect([res.status, waha.session("s")?.status]).toEqual([201, "SCAN_QR_CODE"]);
  });

  it("request-code during a start that never shows a QR never answers", async () => {
    waha.hangStarts("s");
    await create({ name: "s", start: true });
    const controller = new AbortController();
    const pending = fetch(`${base}/api/s/auth/request-code`, {
      method: "POST",
      headers: { "X-Api-Key": KEY, "Content-Type": "application/json" },
      body: JSON.stringify({ phoneNumber: "12132132130" }),
      signal: controller.signal,
    });
    clock.advance(10 * 60_000);
    const outcome = await Promise.race([pending.then(() => "answered"), new Promise((resolve) => setTimeout(() => resolve("still waiting"), 200))]);
    expect(outcome).toBe("still waiting");
    controller.abort();
    await pending.catch(() => undefined);
  });

  it("request-code: 400 without phoneNumber, a plain 422 outside SCAN_QR_CODE, 404 when stopped; NOWEB refuses method", async () => {
    await create({ name: "s", start: true });
    clock.advance(1000);
    const bad = await call("POST", "/api/s/auth/request-code", { body: {} });
    expect([bad.status, (bad.json as { message: string[] }).message]).toEqual([400, ["phoneNumber must be a string"]]);
    expect(() => waha.enterPairingCode("s")).toThrow(/no code was requested/);
    waha.scan("s", "15550001111");
    const working = await call("POST", "/api/s/auth/request-code", { body: { phoneNumber: "12132132130" } });
    expect([working.status, working.json]).toEqual([
      422,
      { statusCode: 422, message: "Can request code only in SCAN_QR_CODE status. The current status is WORKING", error: "Unprocessable Entity" },
    ]);
    await call("POST", "/api/sessions/s/stop");
    expect((await call("POST", "/api/s/auth/request-code", { body: { phoneNumber: "1" } })).status).toBe(404);

    await boot({ engine: "NOWEB" });
    await create({ name: "n", start: true });
    clock.advance(1000);
    const withMethod = await call("POST", "/api/n/auth/request-code", { body: { phoneNumber: "12132132130", method: "sms" } });
    expect(withMethod.status).toBe(422);
    expect((await call("POST", "/api/n/auth/request-code", { body: { phoneNumber: "12132132130" } })).status).toBe(201);
  });

  it("with statusWaitMs, QR waits for SCAN_QR_CODE on the clock", async () => {
    await boot({ statusWaitMs: 5000 });
    await create({ name: "s", start: true });
    const pending = call("GET", "/api/s/auth/qr?format=raw");
    await vi.waitFor(() => expect(clock.pendingTimers()).toBe(2)); // start delay + the request's wait
    clock.advance(1000);
    const res = await pending;
    expect([res.status, res.json]).toEqual([200, { value: waha.currentQr("s") }]);
  });
});

describe("test hooks", () => {
  async function working(name = "s"): Promise<void> {
    await create({ name, start: true });
    clock.advance(1000);
    waha.scan(name, "15550001111");
  }

  it("hangStarts: the next starts of a session stay STARTING (WAHA issues #1043, #2243); later ones boot", async () => {
    waha.hangStarts("s", 1);
    await create({ name: "s", start: true });
    clock.advance(10 * 60_000);
    expect(await status("s")).toBe("STARTING");
    await call("POST", "/api/sessions/s/restart");
    clock.advance(1000);
    expect([await status("s"), waha.session("s")?.boots]).toEqual(["SCAN_QR_CODE", 2]);

    waha.hangStarts("t");
    await create({ name: "t", start: true });
    await call("POST", "/api/sessions/t/restart");
    clock.advance(10 * 60_000);
    expect(await status("t")).toBe("STARTING");
    await call("POST", "/api/sessions/t/stop");
    expect(await status("t")).toBe("STOPPED");
  });

  it("restartServer: every session STOPPED at once with its auth kept, a new startTimestamp, no webhook; starts boot for the new delay", async () => {
    const r = await receiver();
    await working("a");
    await create({ name: "b", start: true, config: { webhooks: [{ url: r.url, events: ["session.status"] }] } });
    clock.advance(1000);
    await waha.settle();
    const before = (await call("GET", "/api/server/status")).json as { startTimestamp: number };
    const delivered = r.received.length;
    clock.advance(5000);
    const restartedAt = clock.now();
    waha.restartServer({ startDelayMs: 3000 });
    expect([await status("a"), await status("b")]).toEqual(["STOPPED", "STOPPED"]);
    expect(((await call("GET", "/api/sessions")).json as unknown[]).length).toBe(0);
    expect(((await call("GET", "/api/server/status")).json as { startTimestamp: number }).startTimestamp).toBe(restartedAt);
    expect(restartedAt).toBeGreaterThan(before.startTimestamp);
    await waha.settle();
    expect(r.received.length).toBe(delivered);
    await call("POST", "/api/sessions/a/start");
    clock.advance(2999);
    expect(await status("a")).toBe("STARTING");
    clock.advance(1);
    // Linked before the restart: back WORKING without a QR.
    expect(await status("a")).toBe("WORKING");
  });

  it("unlinkFromPhone: WORKING -> FAILED with auth wiped", async () => {
    await working();
    waha.unlinkFromPhone("s");
    expect(await status("s")).toBe("FAILED");
    expect((await call("GET", "/api/sessions/s/me")).text).toBe("");
    await call("POST", "/api/sessions/s/restart");
    clock.advance(1000);
    expect(await status("s")).toBe("SCAN_QR_CODE");
    expect(() => waha.unlinkFromPhone("s")).toThrow(WahaEmulatorHookError);
  });

  it("crash: browser engines restart themselves, NOWEB stays FAILED", async () => {
    await working();
    waha.crash("s");
    expect(await status("s")).toBe("FAILED");
    clock.advance(2000);
    expect(await status("s")).toBe("STARTING");
    clock.advance(1000);
    expect(await status("s")).toBe("WORKING"); // auth survived the crash

    await boot({ engine: "NOWEB" });
    await working("n");
    waha.crash("n");
    clock.advance(60_000);
    expect(await status("n")).toBe("FAILED");
  });

  it("flap: WORKING -> STARTING -> WORKING", async () => {
    await working();
    waha.flap("s");
    expect(await status("s")).toBe("STARTING");
    clock.advance(1000);
    expect(waha.session("s")?.statuses.slice(-3).map((p) => p.status)).toEqual(["WORKING", "STARTING", "WORKING"]);
  });

  it("stopBehindBack / deleteBehindBack change state without showing up in calls", async () => {
    await working();
    const before = waha.calls.length;
    waha.stopBehindBack("s");
    expect(waha.session("s")?.status).toBe("STOPPED");
    waha.deleteBehindBack("s");
    expect(waha.sessions()).toEqual([]);
    expect(waha.calls.length).toBe(before);
    expect((await call("GET", "/api/sessions/s")).status).toBe(404);
  });

  it("setAvailable(false) answers 503 everywhere (or resets sockets) until switched back", async () => {
    waha.setAvailable(false);
    for (const path of ["/ping", "/api/sessions", "/health"]) {
      const res = await call("GET", path);
      expect([res.status, res.json]).toEqual([503, { message: "Service Unavailable", error: "Service Unavailable", statusCode: 503 }]);
    }
    waha.setAvailable(false, "reset");
    await expect(call("GET", "/api/sessions")).rejects.toThrow();
    waha.setAvailable(true);
    expect((await call("GET", "/api/sessions")).status).toBe(200);
    expect(waha.callsTo("GET", "/api/sessions").map((c) => c.status)).toEqual([503, 0, 200]);
  });

  it("records calls and matches them by exact path, template or RegExp", async () => {
    await create({ name: "a", start: false });
    await call("POST", "/api/sessions/a/start");
    await call("POST", "/api/sessions/ghost/start");
    await call("GET", "/api/sessions?all=true");
    expect(waha.callsTo("POST", "/api/sessions/{session}/start").map((c) => [c.path, c.status])).toEqual([
      ["/api/sessions/a/start", 201],
      ["/api/sessions/ghost/start", 404],
    ]);
    expect(waha.callsTo("GET", "/api/sessions")[0]).toMatchObject({ query: "?all=true", status: 200, at: clock.now() });
    expect(waha.callsTo("*", /^\/api\/sessions/)).toHaveLength(4);
  });

  it("drives everything over /__emulator for manual runs", async () => {
    await create({ name: "s", start: true });
    const post = (path: string, body?: unknown) =>
      fetch(`${base}/__emulator${path}`, { method: "POST", ...(body ? { body: JSON.stringify(body) } : {}) });
    expect((await post("/clock/advance", { ms: 1000 })).status).toBe(200);
    const qr = (await (await fetch(`${base}/__emulator/sessions/s/qr`)).json()) as { value: string };
    expect(qr.value).toBe(waha.currentQr("s"));
    expect((await post("/sessions/s/scan", { phoneNumber: "15550001111" })).status).toBe(200);
    expect(await status("s")).toBe("WORKING");
    const refused = await post("/sessions/s/scan", { phoneNumber: "15550001111" });
    expect(refused.status).toBe(409);
    await post("/available", { available: false });
    expect((await call("GET", "/ping")).status).toBe(503);
    await post("/available", { available: true });
    expect((await call("GET", "/ping")).status).toBe(200);
  });
});

describe("session.status webhooks", () => {
  it("POSTs the documented envelope with WAHA's headers and an HMAC-SHA512 of the raw body", async () => {
    const hook = await receiver();
    const other = await receiver();
    await create({
      name: "s",
      start: true,
      config: {
        metadata: { "k8s.uid": "u-1" },
        webhooks: [
          {
            url: `${hook.url}/waha`,
            events: ["message", "session.status"],
            hmac: { key: "hook-secret" },
            retries: { policy: "constant", delaySeconds: 2, attempts: 3 },
            customHeaders: [{ name: "X-Tenant", value: "t-1" }],
          },
          { url: `${other.url}/ignored`, events: ["message"] },
        ],
      },
    });
    const t0 = clock.now();
    clock.advance(1000);
    waha.scan("s", "15550001111", "Ops");
    await waha.settle();

    const got = await hook.waitFor(3);
    expect(other.received).toEqual([]);
    expect(got.map((r) => (r.json as { payload: { status: string } }).payload.status)).toEqual(["STARTING", "SCAN_QR_CODE", "WORKING"]);

    const last = got[2];
    if (!last) throw new Error("no WORKING delivery");
    expect(last.method).toBe("POST");
    expect(last.url).toBe("/waha");
    expect(last.headers["content-type"]).toBe("application/json");
    expect(last.headers["user-agent"]).toBe("WAHA/2026.7.1");
    expect(last.headers["x-webhook-request-id"]).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(last.headers["x-webhook-timestamp"]).toBe(String(t0 + 1000));
    expect(last.headers["x-webhook-hmac-algorithm"]).toBe("sha512");
    expect(last.headers["x-webhook-hmac"]).toBe(createHmac("sha512", "hook-secret").update(last.rawBody).digest("hex"));
    expect(last.headers["x-tenant"]).toBe("t-1");

    const envelope = last.json as Record<string, unknown>;
    expect(Object.keys(envelope)).toEqual(["id", "timestamp", "event", "session", "metadata", "me", "payload", "engine", "environment"]);
    expect(envelope["id"]).toMatch(/^evt_[0-9a-hjkmnp-tv-z]{26}$/);
    expect(envelope).toMatchObject({
      timestamp: t0 + 1000,
      event: "session.status",
      session: "s",
      metadata: { "k8s.uid": "u-1" },
      me: { id: "15550001111@c.us", pushName: "Ops" },
      payload: {
        name: "s",
        status: "WORKING",
        statuses: [
          { status: "STARTING", timestamp: t0 },
          { status: "SCAN_QR_CODE", timestamp: t0 + 1000 },
          { status: "WORKING", timestamp: t0 + 1000 },
        ],
        data: null,
      },
      engine: "WEBJS",
      environment: { version: "2026.7.1", engine: "WEBJS", tier: "CORE" },
    });
    expect((got[0]?.json as { me: unknown }).me).toBeNull();
    const ids = got.map((r) => (r.json as { id: string }).id);
    expect(new Set(ids).size).toBe(3);
    expect(waha.deliveries.every((d) => d.done && d.responseStatus === 200)).toBe(true);
  });

  it("re-emits SCAN_QR_CODE on every rotation and FAILED when the series ends", async () => {
    const hook = await receiver();
    await create({ name: "s", start: true, config: { webhooks: [{ url: hook.url, events: ["session.status"] }] } });
    clock.advance(1000 + 60_000 + 5 * 20_000);
    await waha.settle();
    const statuses = hook.received.map((r) => (r.json as { payload: { status: string } }).payload.status);
    expect(statuses).toEqual(["STARTING", ...Array<string>(6).fill("SCAN_QR_CODE"), "FAILED"]);
    expect(hook.received.every((r) => r.headers["x-webhook-hmac"] === undefined)).toBe(true);
  });

  it("sends to '*' subscribers and global webhooks; PUT moves later events to the new config", async () => {
    const star = await receiver();
    const global = await receiver();
    const next = await receiver();
    await boot({ globalWebhooks: [{ url: global.url, events: ["session.status"] }] });
    await create({ name: "s", start: true, config: { webhooks: [{ url: star.url, events: ["*"] }] } });
    expect(((await call("GET", "/api/sessions/s")).json as { config: unknown }).config).toEqual({
      webhooks: [{ url: star.url, events: ["*"] }],
    });
    await call("PUT", "/api/sessions/s", { body: { config: { webhooks: [{ url: next.url, events: ["session.status"] }] } } });
    await waha.settle();
    const seen = (r: Receiver) => r.received.map((x) => (x.json as { payload: { status: string } }).payload.status);
    expect(seen(star)).toEqual(["STARTING", "STOPPED"]);
    expect(seen(next)).toEqual(["STARTING"]);
    expect(seen(global)).toEqual(["STARTING", "STOPPED", "STARTING"]);
  });

  it("ignores unreachable receivers and records the failure", async () => {
    const gone = await receiver();
    const url = gone.url;
    await gone.close();
    await create({ name: "s", start: true, config: { webhooks: [{ url, events: ["session.status"] }] } });
    await waha.settle();
    expect(waha.deliveries).toHaveLength(1);
    expect(waha.deliveries[0]).toMatchObject({ url, sessionStatus: "STARTING", done: true });
    expect(waha.deliveries[0]?.error).toBeTruthy();
    expect(await status("s")).toBe("STARTING");
  });

  it("signs exactly like the docs' worked example", () => {
    const body = '{"event":"message","session":"default","engine":"WEBJS"}';
    const documented =
      "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89";
    expect(signWebhookBody(body, "my-secret-key")).toBe(documented);
    expect(createHmac("sha512", "my-secret-key").update(Buffer.from(body)).digest("hex")).toBe(documented);
  });
});

describe("real clock", () => {
  it("starts, rotates and fails on its own in real time", async () => {
    await waha.stop();
    waha = new WahaEmulator({ apiKey: KEY, startDelayMs: 20, qr: { firstMs: 150, nextMs: 100, maxCodes: 2 } });
    base = await waha.start();
    await create({ name: "s", start: true });
    await vi.waitFor(async () => expect(await status("s")).toBe("SCAN_QR_CODE"), { timeout: 2000, interval: 10 });
    const first = waha.currentQr("s");
    await vi.waitFor(() => expect(waha.session("s")?.qr?.index).toBe(2), { timeout: 2000, interval: 10 });
    expect(waha.currentQr("s")).not.toBe(first);
    await vi.waitFor(async () => expect(await status("s")).toBe("FAILED"), { timeout: 2000, interval: 10 });
  });

  it("waits for SCAN_QR_CODE in real time when statusWaitMs is set", async () => {
    await waha.stop();
    waha = new WahaEmulator({ apiKey: KEY, startDelayMs: 100, statusWaitMs: 2000 });
    base = await waha.start();
    await create({ name: "s", start: true });
    const res = await call("GET", "/api/s/auth/qr?format=raw");
    expect(res.status).toBe(200);
    expect((res.json as { value: string }).value).toMatch(QR_RAW);
  });
});

describe("old Core image (onlyDefaultSession)", () => {
  it("answers 422 for any session other than 'default'", async () => {
    await boot({ onlyDefaultSession: true });
    const res = await create({ name: "other", start: false });
    expect(res.status).toBe(422);
    expect((res.json as { message: string }).message).toMatch(/^WAHA Core support only 'default' session\. You tried to access 'other' session/);
    expect((await call("GET", "/api/sessions/other")).status).toBe(422);
    expect((await create({ name: "default", start: false })).status).toBe(201);
  });
});

describe("conformance with the published OpenAPI spec (2026.7.1)", () => {
  const spec = loadSpec(SPEC_FILE);
  // Known gaps between the spec and what WAHA sends (NestJS Swagger generation quirks).
  const skip = (path: string) =>
    /\.webhooks\[\d+\]\.events\[\d+\]$/.test(path) || // declared `type: object`, WAHA's own examples send strings
    /^\$(\[\d+\])?\.presence$/.test(path); // declared object, WAHA sends null (or a presence string)

  it("serves only operations the spec declares, with the spec's auth requirement", async () => {
    expect(spec.info.version).toBe("2026.7.1");
    for (const { method, template } of waha.routes()) {
      const op = findOperation(spec, method, template);
      expect(op, `${method} ${template}`).toBeDefined();
      const path = template.replace(/\{[^}]+\}/g, "default");
      const res = await call(method, path, { key: null });
      const open = op?.security === undefined || op.security.length === 0;
      expect(res.status === 401, `${method} ${template} without a key`).toBe(!open);
    }
  });

  it("answers with status codes and JSON bodies the spec's response schemas accept", async () => {
    const hook = await receiver();
    const bodies: { method: string; template: string; status: number; body: unknown }[] = [];
    const record = async (method: string, path: string, opts: CallOptions = {}) => {
      const res = await call(method, path, opts);
      const template = waha.routes().find((r) => r.method === method && matchTemplate(r.template, path.split("?")[0] ?? ""))?.template;
      if (!template) throw new Error(`no route for ${method} ${path}`);
      bodies.push({ method, template, status: res.status, body: res.json });
      return res;
    };

    await record("GET", "/ping");
    await record("GET", "/health");
    await record("GET", "/api/server/version");
    await record("GET", "/api/version");
    await record("GET", "/api/server/status");
    await record("POST", "/api/sessions", {
      body: {
        name: "s",
        start: true,
        config: {
          metadata: { a: "b" },
          proxy: { server: "localhost:3128" },
          webhooks: [
            {
              url: hook.url,
              events: ["session.status"],
              hmac: { key: "k" },
              retries: { policy: "linear", delaySeconds: 1, attempts: 2 },
              customHeaders: [{ name: "X-A", value: "b" }],
            },
          ],
        },
      },
    });
    await record("GET", "/api/sessions/s/me"); // running, unlinked: empty body
    clock.advance(1000);
    await record("GET", "/api/s/auth/qr", { headers: { Accept: "application/json" } });
    await record("GET", "/api/s/auth/qr?format=raw");
    await record("POST", "/api/s/auth/request-code", { body: { phoneNumber: "12132132130" } });
    waha.scan("s", "15550001111");
    await record("GET", "/api/sessions?all=true&expand=apps");
    await record("GET", "/api/sessions/s");
    await record("GET", "/api/sessions/s/me");
    await record("PUT", "/api/sessions/s", {
      body: { config: { metadata: { c: "d" }, webhooks: [{ url: hook.url, events: ["session.status"] }] } },
    });
    for (const action of ["stop", "start", "restart", "logout"]) await record("POST", `/api/sessions/s/${action}`);
    await record("DELETE", "/api/sessions/s");

    const png = await call("GET", "/api/x/auth/qr"); // not running: checked for its 404 only
    expect(png.status).toBe(404);

    for (const { method, template, status: code, body } of bodies) {
      const label = `${method} ${template} -> ${code}`;
      const op = findOperation(spec, method, template);
      expect(op?.responses?.[String(code)], `${label}: status not declared`).toBeDefined();
      const schema = responseSchema(spec, method, template, code);
      if (!schema || body === undefined) continue;
      expect(schemaProblems(spec, body, schema, { skip }), label).toEqual([]);
    }
    // Each schema-bearing response kind was really exercised.
    const checked = bodies.filter((b) => b.body !== undefined && responseSchema(spec, b.method, b.template, b.status));
    expect(new Set(checked.map((b) => `${b.method} ${b.template}`)).size).toBeGreaterThanOrEqual(12);

    // The QR JSON forms match their named schemas specifically, not just the oneOf.
    const qrBodies = bodies.filter((b) => b.template === "/api/{session}/auth/qr").map((b) => b.body);
    expect(schemaProblems(spec, qrBodies[0], componentSchema(spec, "Base64File"))).toEqual([]);
    expect(schemaProblems(spec, qrBodies[1], componentSchema(spec, "QRCodeValue"))).toEqual([]);
    const me = bodies.filter((b) => b.template === "/api/sessions/{session}/me").map((b) => b.body);
    expect(me[0]).toBeUndefined();
    expect(schemaProblems(spec, me[1], componentSchema(spec, "MeInfo"))).toEqual([]);

    // Webhook envelopes match the spec's `webhooks.session.status` body schema.
    await waha.settle();
    expect(hook.received.length).toBeGreaterThan(5);
    for (const r of hook.received) {
      expect(schemaProblems(spec, r.json, componentSchema(spec, "WAHAWebhookSessionStatus"))).toEqual([]);
    }
  });

  it("the checker itself catches missing required properties and wrong types", () => {
    const dto = componentSchema(spec, "SessionDTO");
    expect(schemaProblems(spec, { name: "s" }, dto)).toEqual(['$: missing required property "status"']);
    expect(schemaProblems(spec, { name: 1, status: "NOPE" }, dto)).toEqual([
      "$.name: expected string, got number",
      '$.status: "NOPE" is not one of ["STOPPED","STARTING","SCAN_QR_CODE","PASSKEY_REQUIRED","PASSKEY_CONFIRMATION_REQUIRED","WORKING","FAILED"]',
    ]);
    expect(schemaProblems(spec, { name: "s", status: "WORKING", config: { webhooks: [{ url: "x" }] } }, dto)).toEqual([
      '$.config.webhooks[0]: missing required property "events"',
    ]);
  });
});
