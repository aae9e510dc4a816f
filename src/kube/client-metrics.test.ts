/**
 * What KubeClient tells its request observer (client-go's rest_client metrics): the
 * method, the API server's host:port, the code ("<error>" without an answer) and the time.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient } from "./client.ts";
import { mergeKubeconfigs } from "./config.ts";
import { INSTANCES } from "./resources.ts";

let server: http.Server;
let port: number;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    res.setHeader("Content-Type", "application/json");
    if (req.method === "PATCH") return void req.socket.destroy();
    if (req.url?.includes("/missing")) return void res.writeHead(404).end('{"kind":"Status","reason":"NotFound"}');
    res.end('{"metadata":{"name":"found"}}');
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe("KubeClient's request observer", () => {
  it("is told of each request: method, host, code or <error>, and seconds", async () => {
    const seen: { method: string; host: string; code: string; seconds: number }[] = [];
    const document = {
      clusters: [{ name: "c", cluster: { server: `http://127.0.0.1:${port}` } }],
      users: [{ name: "u", user: { token: "t" } }],
      contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
      "current-context": "x",
    };
    const kube = new KubeClient(mergeKubeconfigs([{ file: "/test/kubeconfig", document }]).select(), { observe: (request) => seen.push(request) });
    await kube.get(INSTANCES, "support", "found");
    expect(await kube.find(INSTANCES, "support", "missing")).toBeUndefined();
    await expect(kube.patch(INSTANCES, "support", "found", {})).rejects.toThrow();
    expect(seen.map(({ method, host, code }) => [method, host, code])).toEqual([
      ["GET", `127.0.0.1:${port}`, "200"],
      ["GET", `127.0.0.1:${port}`, "404"],
      ["PATCH", `127.0.0.1:${port}`, "<error>"],
    ]);
    for (const { seconds } of seen) expect(seconds).toBeGreaterThanOrEqual(0);
  });
});
