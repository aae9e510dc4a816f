/**
 * KubeClient through a kubeconfig's proxy-url: a loopback HTTP CONNECT proxy (plain, and
 * one reached over TLS) that records what it tunnelled, in front of loopback API servers
 * standing in for the real one (https with a CA, client certificate and impersonation, and
 * plain http). Watches go through it as well as requests.
 */
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { issue } from "../../hack/control-plane/pki.ts";
import { KubeClient } from "./client.ts";
import { mergeKubeconfigs } from "./config.ts";
import { INSTANCES } from "./resources.ts";

const servers: (http.Server | https.Server)[] = [];
afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

async function listen(server: http.Server | https.Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

const b64 = (text: string) => Buffer.from(text).toString("base64");
const ca = issue({ subject: { commonName: "proxy-test-ca" }, isCA: true });
const serving = issue({ subject: { commonName: "api" }, issuer: ca, usages: ["server"], dnsNames: ["kubernetes.test"], ipAddresses: ["127.0.0.1"] });
const proxyServing = issue({ subject: { commonName: "proxy" }, issuer: ca, usages: ["server"], ipAddresses: ["127.0.0.1"] });

/** A CONNECT proxy: tunnels to loopback only, and records each target and its Proxy-Authorization. */
function connectProxy(server: http.Server | https.Server): { tunnels: { target: string; authorization: string | undefined }[] } {
  const tunnels: { target: string; authorization: string | undefined }[] = [];
  server.on("connect", (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const target = req.url ?? "";
    tunnels.push({ target, authorization: req.headers["proxy-authorization"] });
    const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
    if (host !== "127.0.0.1") {
      client.end("HTTP/1.1 403 Forbidden\r\n\r\n");
      return;
    }
    const upstream = net.connect(port, host, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  return { tunnels };
}

/** Answers every GET with the Impersonate-User it was sent (as the object's name); watches get one event. */
function apiHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.setHeader("Content-Type", "application/json");
  const name = String(req.headers["impersonate-user"] ?? "nobody");
  if (req.url?.includes("watch=1")) {
    res.end(`${JSON.stringify({ type: "ADDED", object: { metadata: { name } } })}\n`);
    return;
  }
  res.end(JSON.stringify({ metadata: { name } }));
}

function client(cluster: Record<string, unknown>, user: Record<string, unknown> = { token: "t" }): KubeClient {
  const document = { clusters: [{ name: "c", cluster }], users: [{ name: "u", user }], contexts: [{ name: "x", context: { cluster: "c", user: "u" } }], "current-context": "x" };
  return new KubeClient(mergeKubeconfigs([{ file: "/test/kubeconfig", document }]).select());
}

describe("proxy-url", () => {
  it("tunnels https requests and watches through an http proxy, with TLS to the API server inside and the impersonation headers", async () => {
    const api = await listen(https.createServer({ key: serving.key, cert: serving.cert }, apiHandler));
    const proxyServer = http.createServer((_req, res) => res.writeHead(405).end());
    const proxy = connectProxy(proxyServer);
    const proxyPort = await listen(proxyServer);
    const kube = client(
      { server: `https://127.0.0.1:${api}`, "certificate-authority-data": b64(ca.cert), "proxy-url": `http://alice:s%40cret@127.0.0.1:${proxyPort}` },
      { token: "t", as: "jane" },
    );
    expect((await kube.get(INSTANCES, "ns", "x")).metadata.name).toBe("jane");
    const events: string[] = [];
    await new Promise<void>((resolve, reject) => kube.watch(INSTANCES, "ns", {}, (event) => events.push(event.object.metadata.name), (error) => (error ? reject(error as Error) : resolve())));
    expect(events).toEqual(["jane"]);
    expect(proxy.tunnels.length).toBeGreaterThanOrEqual(2);
    for (const tunnel of proxy.tunnels) expect(tunnel).toEqual({ target: `127.0.0.1:${api}`, authorization: `Basic ${b64("alice:s@cret")}` });
  });

  it("reaches an https proxy over TLS, verified with the kubeconfig's CA as client-go verifies it", async () => {
    const api = await listen(https.createServer({ key: serving.key, cert: serving.cert }, apiHandler));
    const proxyServer = https.createServer({ key: proxyServing.key, cert: proxyServing.cert });
    const proxy = connectProxy(proxyServer);
    const proxyPort = await listen(proxyServer);
    const kube = client({ server: `https://127.0.0.1:${api}`, "certificate-authority-data": b64(ca.cert), "proxy-url": `https://127.0.0.1:${proxyPort}` });
    expect((await kube.get(INSTANCES, "ns", "x")).metadata.name).toBe("nobody");
    expect(proxy.tunnels).toEqual([{ target: `127.0.0.1:${api}`, authorization: undefined }]);
  });

  it("tunnels a plain-http API server through an http proxy too", async () => {
    const api = await listen(http.createServer(apiHandler));
    const proxyServer = http.createServer();
    const proxy = connectProxy(proxyServer);
    const proxyPort = await listen(proxyServer);
    const kube = client({ server: `http://127.0.0.1:${api}`, "proxy-url": `http://127.0.0.1:${proxyPort}` });
    expect((await kube.get(INSTANCES, "ns", "x")).metadata.name).toBe("nobody");
    expect(proxy.tunnels.map((tunnel) => tunnel.target)).toEqual([`127.0.0.1:${api}`]);
  });

  it("a proxy that refuses the tunnel fails the request with the proxy's answer, never with the credentials", async () => {
    const proxyServer = http.createServer();
    connectProxy(proxyServer);
    const proxyPort = await listen(proxyServer);
    // 127.0.0.2: a target the test proxy refuses (no traffic leaves loopback).
    const kube = client({ server: "https://127.0.0.2:6443", "insecure-skip-tls-verify": true, "proxy-url": `http://alice:s3cret@127.0.0.1:${proxyPort}` });
    const error = (await kube.get(INSTANCES, "ns", "x").then(
      () => undefined,
      (caught: unknown) => caught,
    )) as Error;
    expect(error.message).toBe(`the proxy 127.0.0.1:${proxyPort} refused to tunnel to 127.0.0.2:6443: 403 Forbidden`);
    expect(error.message).not.toContain("s3cret");
  });
});
