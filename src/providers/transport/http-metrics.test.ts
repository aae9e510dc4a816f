/**
 * What ProviderHttp tells its observer (the request counter and the duration histogram):
 * per attempt, the code or "error", the HTTP method and the time on the wire.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classifyByStatus, ProviderHttp } from "./http.ts";
import { RateLimiter } from "./rate-limiter.ts";

let server: Server;
let baseUrl: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    if (req.url === "/slow") setTimeout(() => res.writeHead(201).end("{}"), 50);
    else if (req.url === "/drop") req.socket.destroy();
    else res.writeHead(404).end("{}");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe("the response observer", () => {
  it("gets the status, the method and the seconds each attempt took, and \"error\" for an attempt without an answer", async () => {
    const seen: { provider: string; status: string; method?: string; seconds?: number }[] = [];
    const http = new ProviderHttp({
      type: "waha",
      baseUrl,
      timeoutMs: 2000,
      readRetries: 0,
      limiter: new RateLimiter({ requestsPerSecond: 1000, burst: 1000 }),
      classify: (response) => classifyByStatus("waha", response, "failed"),
      observe: (provider, status, request) => seen.push({ provider, status, ...request }),
    });
    await http.send({ method: "POST", path: "/slow" });
    await http.send({ method: "GET", path: "/missing" }).catch(() => undefined);
    await http.send({ method: "GET", path: "/drop" }).catch(() => undefined);
    expect(seen.map(({ provider, status, method }) => [provider, status, method])).toEqual([
      ["waha", "201", "POST"],
      ["waha", "404", "GET"],
      ["waha", "error", "GET"],
    ]);
    expect(seen[0]?.seconds).toBeGreaterThanOrEqual(0.04);
  });
});
