/**
 * The HTTP side of the receiver on a loopback port: bodies are judged before they are
 * read, and /metrics is served only by the metrics server.
 */
import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { Metrics } from "../metrics.ts";
import { MAX_EVENT_BODY, ProviderEventReceiver } from "./provider-events.ts";
import { startServer } from "./server.ts";

const log = pino({ level: "silent" });
const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

function events(type: string | undefined, keyReads: string[] = []): ProviderEventReceiver {
  return new ProviderEventReceiver({
    log,
    instances: { get: () => undefined, list: () => [] },
    providerType: () => type,
    eventsKey: async (ref) => {
      keyReads.push(ref.name);
      return "events-key-0123456789abcdef0123456789abcdef";
    },
    poke: () => undefined,
  });
}

async function serve(options: { events?: ProviderEventReceiver; metrics?: Metrics }): Promise<string> {
  const server = await startServer({ address: "127.0.0.1:0", log, ready: () => true, ...options });
  servers.push(server);
  return server.url;
}

/** A POST that announces `announced` bytes and sends `sent` of them; resolves with the status (0 when the connection was dropped first). */
function post(url: string, headers: Record<string, string>, announced: number | undefined, sent: number): Promise<number> {
  return new Promise((resolve) => {
    const request = http.request(`${url}/provider-events/namespaced/ns/p`, { method: "POST", headers: { ...headers, ...(announced !== undefined ? { "content-length": String(announced) } : {}) } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    request.on("error", () => resolve(0));
    request.write(Buffer.alloc(sent, 0x20));
    if (announced === undefined || announced === sent) request.end();
  });
}

describe("the event receiver's HTTP side", () => {
  it("refuses a body announced over 64 KiB before reading it", async () => {
    const url = await serve({ events: events("waha") });
    expect(await post(url, { "x-webhook-hmac": "00" }, MAX_EVENT_BODY + 1, 10)).toBe(413);
  });

  it("answers a request for a provider it does not have, or an unsigned one, without waiting for the body or reading a key", async () => {
    const keyReads: string[] = [];
    const unknown = await serve({ events: events(undefined, keyReads) });
    // The body never completes: an answer proves the receiver did not wait for it.
    expect(await post(unknown, { "x-webhook-hmac": "00" }, 1000, 10)).toBe(404);
    const known = await serve({ events: events("waha", keyReads) });
    expect(await post(known, {}, 1000, 10)).toBe(401);
    expect(keyReads).toEqual([]);
  });

  it("cuts off a signed request whose body streams past 64 KiB without a Content-Length", async () => {
    const url = await serve({ events: events("waha") });
    const status = await post(url, { "x-webhook-hmac": "00", "transfer-encoding": "chunked" }, undefined, MAX_EVENT_BODY + 1024);
    expect([0, 413]).toContain(status);
  });

  it("serves /metrics only on the metrics server, and provider events only on the other", async () => {
    const metrics = new Metrics();
    const eventsUrl = await serve({ events: events("waha") });
    const metricsUrl = await serve({ metrics });
    expect((await fetch(`${eventsUrl}/metrics`)).status).toBe(404);
    expect((await fetch(`${metricsUrl}/metrics`)).status).toBe(200);
    expect((await fetch(`${metricsUrl}/provider-events/namespaced/ns/p`, { method: "POST", body: "{}" })).status).toBe(404);
    expect((await fetch(`${metricsUrl}/healthz`)).status).toBe(200);
  });
});
