/**
 * ProviderHttp under faults, against a loopback server that misbehaves on purpose:
 * 5xx, dropped connections, hangs, trickles, 429s and oversized answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_EGRESS_DENY } from "../../config.ts";
import { EgressGuard, type Resolver } from "./egress.ts";
import { isProviderError, type ProviderError } from "../errors.ts";
import { classifyByStatus, MAX_ANSWER_BYTES, ProviderHttp, READ_RETRIES, type HttpRequest } from "./http.ts";
import { InFlightLimit } from "./in-flight.ts";
import { ReadLatency } from "./latency.ts";
import { RateLimiter } from "./rate-limiter.ts";

type Behaviour = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let baseUrl: string;
/** What the server does with the n-th request (0-based); the last entry repeats. */
let script: Behaviour[] = [];
let received: { method: string; path: string }[] = [];
let concurrent = 0;
let mostConcurrent = 0;
const hanging = new Set<ServerResponse>();

const ok: Behaviour = (_req, res) => res.writeHead(200, { "Content-Type": "application/json" }).end('{"ok":true}');
const status =
  (code: number, headers: Record<string, string> = {}): Behaviour =>
  (_req, res) =>
    res.writeHead(code, { "Content-Type": "application/json", ...headers }).end('{"message":"failed"}');
const reset: Behaviour = (req) => req.socket.destroy();
const hang: Behaviour = (_req, res) => void hanging.add(res);
const trickle: Behaviour = (_req, res) => {
  res.writeHead(200, { "Content-Type": "application/json" });
  hanging.add(res);
  const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write(" ")), 20);
};
const body =
  (bytes: number, contentType: string, declareLength: boolean): Behaviour =>
  (_req, res) => {
    res.writeHead(200, { "Content-Type": contentType, ...(declareLength ? { "Content-Length": String(bytes) } : {}) });
    res.end(Buffer.alloc(bytes, 0x20));
  };

beforeAll(async () => {
  server = createServer((req, res) => {
    const behaviour = script[Math.min(received.length, script.length - 1)] ?? ok;
    received.push({ method: req.method ?? "", path: req.url ?? "" });
    concurrent += 1;
    mostConcurrent = Math.max(mostConcurrent, concurrent);
    res.on("close", () => (concurrent -= 1));
    req.resume();
    behaviour(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of hanging) res.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  for (const res of hanging) res.destroy();
  hanging.clear();
  script = [ok];
  received = [];
  concurrent = 0;
  mostConcurrent = 0;
});

function client(options: { timeoutMs?: number; inFlight?: InFlightLimit; mayWrite?: () => boolean; limiter?: RateLimiter; readLatency?: ReadLatency } = {}): ProviderHttp {
  return new ProviderHttp({
    type: "waha",
    baseUrl,
    timeoutMs: options.timeoutMs ?? 2000,
    limiter: options.limiter ?? new RateLimiter({ requestsPerSecond: 10_000, burst: 10_000 }),
    classify: (response) => classifyByStatus("waha", response, "failed"),
    ...(options.inFlight ? { inFlight: options.inFlight } : {}),
    ...(options.mayWrite ? { mayWrite: options.mayWrite } : {}),
    ...(options.readLatency ? { readLatency: options.readLatency } : {}),
  });
}

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!isProviderError(error)) throw new Error(`expected a ProviderError, got ${String(error)}`);
  return error;
}

const get: HttpRequest = { method: "GET", path: "/api/sessions/x" };
const post: HttpRequest = { method: "POST", path: "/api/sessions/x/start" };

describe("reads are retried inside the call", () => {
  it.each([
    ["a 503", status(503)],
    ["a 500", status(500)],
    ["a dropped connection", reset],
  ])("a GET that meets %s twice succeeds on the third attempt", async (_sentence, fault) => {
    script = [fault, fault, ok];
    const response = await client().send(get);
    expect(response.status).toBe(200);
    expect(received).toHaveLength(3);
  });

  it(`gives up after ${READ_RETRIES} retries with a retryable Unavailable`, async () => {
    script = [status(503)];
    const error = await failure(client().send(get));
    expect(error.kind).toBe("Unavailable");
    expect(received).toHaveLength(1 + READ_RETRIES);
  });

  it("never retries a 429: the limiter waits out Retry-After for every caller instead", async () => {
    script = [status(429, { "Retry-After": "1" }), ok];
    const limiter = new RateLimiter({ requestsPerSecond: 10_000, burst: 10_000 });
    const error = await failure(client({ limiter }).send(get));
    expect(error.kind).toBe("RateLimited");
    expect(received).toHaveLength(1);
  });

  it("never retries a 4xx", async () => {
    script = [status(400), ok];
    expect((await failure(client().send(get))).kind).toBe("Rejected");
    expect(received).toHaveLength(1);
  });

  it.each([
    ["a 503", status(503)],
    ["a dropped connection", reset],
  ])("never retries a write that meets %s: the next pass decides afresh", async (_sentence, fault) => {
    script = [fault, ok];
    expect((await failure(client().send(post))).kind).toBe("Unavailable");
    expect(received).toHaveLength(1);
  });

  it("retries a write the provider documents as idempotent like a read", async () => {
    script = [status(503), reset, ok];
    const response = await client().send({ ...post, idempotent: true });
    expect(response.status).toBe(200);
    expect(received).toHaveLength(3);
  });

  it("sends every retry through the rate limiter", async () => {
    script = [status(503), status(503), ok];
    const limiter = new RateLimiter({ requestsPerSecond: 10_000, burst: 10_000 });
    let acquired = 0;
    const acquire = limiter.acquire.bind(limiter);
    limiter.acquire = () => {
      acquired += 1;
      return acquire();
    };
    await client({ limiter }).send(get);
    expect(acquired).toBe(3);
  });
});

describe("every call ends", () => {
  it.each([
    ["hangs without a byte", hang],
    ["sends headers and then trickles forever", trickle],
  ])("a provider that %s gives a retryable Unavailable, not a hang", async (_sentence, fault) => {
    script = [fault];
    const error = await failure(client({ timeoutMs: 150 }).send(post));
    expect(error.kind).toBe("Unavailable");
    expect(error.message).toMatch(/150 ms/);
  });

  it("a hanging read is retried within twice the timeout, then gives up", async () => {
    script = [hang];
    const error = await failure(client({ timeoutMs: 150 }).send(get));
    expect(error.kind).toBe("Unavailable");
    expect(received.length).toBeGreaterThanOrEqual(1);
    expect(received.length).toBeLessThanOrEqual(1 + READ_RETRIES);
  });
});

describe("answers are bounded before parsing", () => {
  it.each([
    ["with its size declared", true],
    ["chunked, without a declared size", false],
  ])("a 2 MB JSON answer %s is Malformed with a short message", async (_sentence, declared) => {
    script = [body(2 * 1024 * 1024, "application/json", declared)];
    const error = await failure(client().json(get, (await import("zod")).z.unknown()));
    expect(error.kind).toBe("Malformed");
    expect(error.message).toContain("more than 1 MiB");
    expect(error.message.length).toBeLessThan(200);
    // Not retried: it would be as large again.
    expect(received).toHaveLength(1);
  });

  it("an answer of exactly the limit is read", async () => {
    script = [body(MAX_ANSWER_BYTES, "application/octet-stream", true)];
    expect((await client().send(get)).body.length).toBe(MAX_ANSWER_BYTES);
  });

  it("an image answer may be larger (a QR PNG), up to 4 MiB", async () => {
    script = [body(2 * 1024 * 1024, "image/png", true)];
    expect((await client().send(get)).body.length).toBe(2 * 1024 * 1024);
    script = [body(5 * 1024 * 1024, "image/png", true)];
    received = [];
    expect((await failure(client().send(get))).message).toContain("more than 4 MiB");
  });

  it("a request may set its own limit", async () => {
    script = [body(2048, "application/json", false)];
    expect((await failure(client().send({ ...get, maxBodyBytes: 1024 }))).kind).toBe("Malformed");
  });
});

describe("a read lost on the wire", () => {
  it("is sent again once it has waited far longer than the provider's recent answers, not after the whole timeout", async () => {
    const readLatency = new ReadLatency({ floorMs: 50 });
    for (let i = 0; i < 40; i++) readLatency.record(5);
    script = [hang, ok];
    // A minute's timeout: waiting it out would fail the test.
    const response = await client({ timeoutMs: 60_000, readLatency }).send(get);
    expect(response.status).toBe(200);
    expect(received).toHaveLength(2);
  });

  it("waits the full timeout on a write, whose answer may take as long as the provider needs", async () => {
    const readLatency = new ReadLatency({ floorMs: 50 });
    for (let i = 0; i < 40; i++) readLatency.record(5);
    script = [hang];
    expect((await failure(client({ timeoutMs: 300, readLatency }).send(post))).message).toContain("did not answer");
    expect(received).toHaveLength(1);
  });

  it("learns from answered reads only", async () => {
    const readLatency = new ReadLatency();
    script = [ok];
    const http = client({ readLatency });
    for (let i = 0; i < 32; i++) await http.send(post);
    expect(readLatency.firstTryMs(10_000)).toBe(10_000);
    for (let i = 0; i < 32; i++) await http.send(get);
    expect(readLatency.firstTryMs(10_000)).toBeLessThan(10_000);
  });
});

describe("requests in flight per provider", () => {
  it("never exceed the bound; callers beyond it fail fast and retryably instead of holding a worker", async () => {
    script = [hang];
    const http = client({ timeoutMs: 200, inFlight: new InFlightLimit(2) });
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => failure(http.send(post))));
    expect(mostConcurrent).toBeLessThanOrEqual(2);
    expect(outcomes.every((error) => error.kind === "Unavailable")).toBe(true);
    expect(outcomes.some((error) => error.message.includes("2 requests unanswered"))).toBe(true);
  });

  it("does not mistake slot holders waiting out a Retry-After pause for a hung provider", async () => {
    const limiter = new RateLimiter({ requestsPerSecond: 10_000, burst: 10_000 });
    limiter.pauseFor(400);
    const http = client({ timeoutMs: 300, inFlight: new InFlightLimit(1), limiter });
    const answers = await Promise.all([http.send(get), http.send(get), http.send(get)]);
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200]);
  });

  it("spends one rate-limiter token per request sent, however many wait for a slot", async () => {
    script = [ok];
    // Six tokens and almost no refill: a waiter that took a token without sending would starve the last ones.
    const limiter = new RateLimiter({ requestsPerSecond: 0.001, burst: 6 });
    const http = client({ inFlight: new InFlightLimit(1), limiter });
    const answers = await Promise.all(Array.from({ length: 6 }, () => http.send(get)));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200, 200]);
  });

  it("hands slots on as requests finish", async () => {
    script = [ok];
    const limit = new InFlightLimit(2);
    const http = client({ inFlight: limit });
    const answers = await Promise.all(Array.from({ length: 10 }, () => http.send(get)));
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    expect(mostConcurrent).toBeLessThanOrEqual(2);
    expect(limit.inFlight).toBe(0);
  });
});

describe("the leadership check", () => {
  it("refuses a write while this replica is not surely the leader, without sending it", async () => {
    let leader = false;
    const http = client({ mayWrite: () => leader });
    const error = await failure(http.send(post));
    expect(error.kind).toBe("Unavailable");
    expect(error.message).toContain("not (or no longer surely) the leader");
    expect(received).toEqual([]);
    leader = true;
    expect((await http.send(post)).status).toBe(200);
  });

  it("lets reads through: they change nothing", async () => {
    expect((await client({ mayWrite: () => false }).send(get)).status).toBe(200);
  });

  it("is asked after the waits for the limiter and a slot, right before sending", async () => {
    let asked = 0;
    const limiter = new RateLimiter({ requestsPerSecond: 10_000, burst: 10_000 });
    const acquire = limiter.acquire.bind(limiter);
    let acquiredBeforeAsking = false;
    limiter.acquire = async () => {
      await acquire();
      acquiredBeforeAsking = asked === 0;
    };
    await client({
      limiter,
      mayWrite: () => {
        asked += 1;
        return true;
      },
    }).send(post);
    expect(acquiredBeforeAsking).toBe(true);
    expect(asked).toBe(1);
  });
});

describe("the provider's pause gate", () => {
  const paused = (options: { maxPauseMs?: number; maxWaitMs?: number } = {}) =>
    new RateLimiter({ requestsPerSecond: 10_000, burst: 10_000 }, { maxWaitMs: options.maxWaitMs ?? 1000, ...(options.maxPauseMs ? { maxPauseMs: options.maxPauseMs } : {}) });

  it.each([
    ["a 429 with Retry-After: 1e10", status(429, { "Retry-After": "1e10" })],
    ["a 429 with Retry-After: 86400", status(429, { "Retry-After": "86400" })],
    ["a 503 with Retry-After: 86400", status(503, { "Retry-After": "86400" })],
  ])("after %s nothing more is sent: every later request fails at once with RateLimited and when to come back", async (_sentence, answer) => {
    script = [answer, ok];
    const http = client({ limiter: paused({ maxPauseMs: 15 * 60_000 }) });
    await failure(http.send(post));
    const later = await Promise.all([failure(http.send(get)), failure(http.send(post)), failure(http.send({ ...get, path: "/api/sessions/x/auth/qr" }))]);
    expect(received).toHaveLength(1);
    for (const error of later) {
      expect(error.kind).toBe("RateLimited");
      // Obeyed up to the ceiling: back within PROVIDER_MAX_PAUSE, not in a day or 317 years.
      expect(error.retryAfterMs).toBeGreaterThan(14 * 60_000);
      expect(error.retryAfterMs).toBeLessThanOrEqual(15 * 60_000);
    }
  });

  it("bounds the 429's own wait by the ceiling, so the instance is looked at again within it", async () => {
    script = [status(429, { "Retry-After": "1e10" })];
    const error = await failure(client({ limiter: paused({ maxPauseMs: 60_000 }) }).send(get));
    expect(error.kind).toBe("RateLimited");
    expect(error.retryAfterMs).toBe(60_000);
  });

  it("stops a read's retries when a 503 closes the gate for longer than a pass may wait", async () => {
    script = [status(503, { "Retry-After": "30" }), ok];
    const error = await failure(client({ limiter: paused() }).send(get));
    expect(error.kind).toBe("RateLimited");
    expect(received).toHaveLength(1);
  });

  it("waits out a pause shorter than the in-pass bound and then sends", async () => {
    const limiter = paused({ maxWaitMs: 2000 });
    limiter.pauseFor(50);
    expect((await client({ limiter }).send(get)).status).toBe(200);
    expect(received).toHaveLength(1);
  });

  it("holds no in-flight slot while waiting out a pause", async () => {
    const limiter = paused({ maxWaitMs: 5000 });
    limiter.pauseFor(300);
    const inFlight = new InFlightLimit(1);
    const waiting = client({ limiter, inFlight }).send(get);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(inFlight.inFlight).toBe(0);
    expect((await waiting).status).toBe(200);
  });
});

/**
 * The connect-time deny-list. Only loopback is ever connected to: 127.0.0.2 stands in for a
 * metadata address by being put on the deny-list; the default list is checked without traffic.
 */
describe("the connect-time deny-list", () => {
  let guarded: Server;
  let port: number;
  let connections = 0;
  let requests = 0;

  beforeAll(async () => {
    guarded = createServer((_req, res) => {
      requests += 1;
      res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
    });
    guarded.on("connection", () => (connections += 1));
    await new Promise<void>((resolve) => guarded.listen(0, "127.0.0.2", resolve));
    port = (guarded.address() as AddressInfo).port;
  });

  afterAll(async () => {
    guarded.closeAllConnections();
    await new Promise((resolve) => guarded.close(resolve));
  });

  beforeEach(() => {
    connections = 0;
    requests = 0;
  });

  /** A name only this test knows, resolving to the guarded server's loopback address. */
  const table: Resolver = (hostname, callback) =>
    hostname === "gateway.example.test" ? callback(null, [{ address: "127.0.0.2", family: 4 }]) : callback(Object.assign(new Error("not found"), { code: "ENOTFOUND" }), []);

  const clientAt = (url: string, deny: readonly string[]): ProviderHttp =>
    new ProviderHttp({
      type: "waha",
      baseUrl: url,
      timeoutMs: 2000,
      limiter: new RateLimiter({ requestsPerSecond: 1000, burst: 1000 }),
      classify: (response) => classifyByStatus("waha", response, "failed"),
      egress: new EgressGuard({ deny, resolve: table }),
    });

  it.each([
    ["the address itself", () => `http://127.0.0.2:${port}`],
    ["a name that resolves to it", () => `http://gateway.example.test:${port}`],
  ])("refuses %s with a clear error, and nothing reaches the server behind it", async (_sentence, url) => {
    const error = await failure(clientAt(url(), ["127.0.0.2/32"]).send({ method: "GET", path: "/api/sessions" }));
    expect(error.kind).toBe("Rejected");
    expect(error.message).toContain("127.0.0.2");
    expect(error.message).toContain("127.0.0.2/32");
    expect(error.message).toContain("EGRESS_DENY_CIDRS");
    expect(connections).toBe(0);
    expect(requests).toBe(0);
  });

  it("lets the same requests through when the address is not denied (the server was there to reach)", async () => {
    for (const url of [`http://127.0.0.2:${port}`, `http://gateway.example.test:${port}`]) {
      expect((await clientAt(url, ["169.254.0.0/16"]).send({ method: "GET", path: "/api/sessions" })).status).toBe(200);
    }
    expect(requests).toBe(2);
  });

  it("denies link-local and cloud metadata addresses by default and allows loopback", () => {
    const guard = new EgressGuard({ deny: DEFAULT_EGRESS_DENY });
    for (const address of ["169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254", "100.100.100.200"]) {
      expect(guard.deniedRange(address), address).toBeDefined();
    }
    for (const address of ["127.0.0.1", "127.0.0.2", "::1", "10.0.0.5", "fd00:ec2::253"]) {
      expect(guard.deniedRange(address), address).toBeUndefined();
    }
  });
});
