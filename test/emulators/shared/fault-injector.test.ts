import { createServer, request, type Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { WahaEmulator } from "../waha/emulator.ts";
import { faultyWaha, sessionOfPath } from "../waha/faults.ts";
import { FaultInjector, type FaultInjectorOptions } from "./fault-injector.ts";
import { close, listen, readBody } from "./http.ts";

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** One request on a fresh connection; rejects when the socket dies without an answer. */
function send(url: string, method: string, path: string, options: { headers?: Record<string, string>; body?: string; timeoutMs?: number } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), { method, headers: options.headers, agent: false, timeout: options.timeoutMs ?? 5000 }, (res) => {
      void readBody(res).then((body) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }), reject);
    });
    req.on("timeout", () => req.destroy(new Error("client timeout")));
    req.on("error", reject);
    req.end(options.body);
  });
}

/** A provider stand-in that counts what reaches it. */
class Upstream {
  readonly seen: string[] = [];
  readonly #server: Server = createServer((req, res) => {
    void readBody(req).then(() => {
      this.seen.push(`${req.method} ${req.url}`);
      const body = JSON.stringify({ name: "default", status: "WORKING", config: { metadata: { padding: "x".repeat(40) } } });
      res.writeHead(201, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) }).end(body);
    });
  });
  url = "";
  async start(): Promise<string> {
    this.url = await listen(this.#server);
    return this.url;
  }
  stop(): Promise<void> {
    return close(this.#server);
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setUp(options: Omit<FaultInjectorOptions, "target">): Promise<{ upstream: Upstream; front: FaultInjector; url: string }> {
  const upstream = new Upstream();
  await upstream.start();
  const front = new FaultInjector({ ...options, target: upstream.url });
  const url = await front.start();
  cleanups.push(() => upstream.stop(), () => front.stop());
  return { upstream, front, url };
}

describe("FaultInjector", () => {
  it("without faults forwards every request and records it with the client that sent it", async () => {
    const { upstream, front, url } = await setUp({ identify: async () => "r7" });
    const answer = await send(url, "POST", "/api/sessions/default/start?x=1", { body: "{}" });
    expect(answer.status).toBe(201);
    expect(JSON.parse(answer.body.toString())).toMatchObject({ name: "default" });
    expect(upstream.seen).toEqual(["POST /api/sessions/default/start?x=1"]);
    expect(front.records).toMatchObject([{ seq: 0, method: "POST", path: "/api/sessions/default/start", replica: "r7", fault: "none", forwarded: true, upstreamStatus: 201, status: 201 }]);
  });

  it("answers a server error without reaching the provider, echoing the key when asked to", async () => {
    const { upstream, front, url } = await setUp({ serverErrors: 1, echoHeader: "x-api-key" });
    const answer = await send(url, "GET", "/api/sessions", { headers: { "X-Api-Key": "the-key-0123456789" } });
    expect([500, 502, 503]).toContain(answer.status);
    expect(answer.body.toString()).toContain("for key the-key-0123456789");
    expect(upstream.seen).toEqual([]);
    expect(front.records[0]).toMatchObject({ fault: "server-error", forwarded: false, status: answer.status });
  });

  it("carries out a hung request but never answers it: the socket is dropped after hangMs", async () => {
    const { upstream, front, url } = await setUp({ hangs: 1, hangMs: 300 });
    await expect(send(url, "POST", "/api/sessions", { body: "{}" })).rejects.toThrow();
    expect(upstream.seen).toEqual(["POST /api/sessions"]);
    expect(front.records[0]).toMatchObject({ fault: "hang", forwarded: true, upstreamStatus: 201, status: 0 });
  });

  it("cuts a carried-out answer in half (malformed), and answers 2 MiB of error (oversized)", async () => {
    const malformed = await setUp({ malformed: 1 });
    const cut = await send(malformed.url, "GET", "/api/sessions/default");
    expect(cut.status).toBe(201);
    expect(() => JSON.parse(cut.body.toString())).toThrow();
    expect(malformed.upstream.seen).toHaveLength(1);

    const oversized = await setUp({ oversized: 1 });
    const huge = await send(oversized.url, "GET", "/api/sessions/default");
    expect(huge.status).toBe(500);
    expect(huge.body.length).toBeGreaterThan(2 * 1024 * 1024);
    expect(oversized.upstream.seen).toEqual([]);
  });

  it("answers 429 inside a burst with a Retry-After that runs to the burst's end, and forwards outside it", async () => {
    let now = 1_000_000;
    const { front, url, upstream } = await setUp({ rateLimitBursts: { everyMs: 10_000, lengthMs: 2500 }, now: () => now });
    now += 9000;
    expect((await send(url, "GET", "/a")).status).toBe(201);
    now += 1500; // 500 ms into the burst: 2000 ms left, so Retry-After 2
    const limited = await send(url, "GET", "/b");
    expect(limited.status).toBe(429);
    expect(limited.headers["retry-after"]).toBe("2");
    expect(front.records[1]).toMatchObject({ fault: "rate-limited", forwarded: false, retryUntil: now + 2000 });
    now += 1900; // 100 ms left: still at least a second
    expect((await send(url, "GET", "/c")).headers["retry-after"]).toBe("1");
    now += 200;
    expect((await send(url, "GET", "/d")).status).toBe(201);
    expect(upstream.seen).toEqual(["GET /a", "GET /d"]);
    expect(front.burstEndAt(1_000_000 + 20_000 + 100)).toBe(1_000_000 + 22_500);
  });

  it("answers every request 429 with the Retry-After it was given while paused, and nothing reaches the provider", async () => {
    const now = 1_000_000;
    const { front, url, upstream } = await setUp({ paused: { retryAfter: "1e10" }, now: () => now });
    const limited = await send(url, "GET", "/a");
    expect(limited.status).toBe(429);
    expect(limited.headers["retry-after"]).toBe("1e10");
    expect(front.records[0]).toMatchObject({ fault: "rate-limited", forwarded: false, retryUntil: now + 1e13 });
    front.configure({});
    expect((await send(url, "GET", "/b")).status).toBe(201);
    expect(upstream.seen).toEqual(["GET /b"]);
  });

  it("picks faults by share from a seeded sequence: the same seed, the same faults", async () => {
    const faults = { serverErrors: 0.3, malformed: 0.1, seed: 42 } as const;
    const first = await setUp(faults);
    const second = await setUp(faults);
    for (let i = 0; i < 200; i++) {
      await send(first.url, "GET", `/x${i}`);
      await send(second.url, "GET", `/x${i}`);
    }
    const kinds = (front: FaultInjector) => front.records.map((record) => record.fault);
    expect(kinds(first.front)).toEqual(kinds(second.front));
    const errors = kinds(first.front).filter((kind) => kind === "server-error").length;
    expect(errors).toBeGreaterThan(30);
    expect(errors).toBeLessThan(90);
    expect(kinds(first.front)).toContain("malformed");
  });

  it("configure() changes the faults from the next request on", async () => {
    const { front, url } = await setUp({ serverErrors: 1 });
    expect((await send(url, "GET", "/a")).status).toBeGreaterThanOrEqual(500);
    front.configure({});
    expect((await send(url, "GET", "/b")).status).toBe(201);
  });
});

describe("faultyWaha", () => {
  it("notes the session each request concerns and its status, and gives injected errors WAHA's body (waha.md 1.1)", async () => {
    const waha = new WahaEmulator({ apiKey: "waha-key-0123456789", startDelayMs: 0 });
    await waha.start();
    const front = faultyWaha(waha, {});
    const url = await front.start();
    cleanups.push(() => waha.stop(), () => front.stop());
    const headers = { "X-Api-Key": "waha-key-0123456789", "Content-Type": "application/json" };
    expect((await send(url, "POST", "/api/sessions", { headers, body: JSON.stringify({ name: "ns__a", start: true }) })).status).toBe(201);
    await send(url, "POST", "/api/sessions/ns__a/restart", { headers });
    expect(front.records.map((record) => record.note)).toEqual([{ session: "ns__a" }, { session: "ns__a", status: "SCAN_QR_CODE" }]);

    front.configure({ serverErrors: 1 });
    const failed = await send(url, "GET", "/api/sessions/ns__a", { headers });
    expect(JSON.parse(failed.body.toString())).toMatchObject({ statusCode: failed.status, message: "upstream request failed", error: expect.any(String) });
  });

  it.each([
    ["/api/sessions/ns__a", "ns__a"],
    ["/api/sessions/ns__a/start", "ns__a"],
    ["/api/ns__a/auth/qr", "ns__a"],
    ["/api/sessions", undefined],
    ["/api/server/version", undefined],
  ])("sessionOfPath(%s) is %s", (path, session) => {
    expect(sessionOfPath(path)).toBe(session);
  });
});
