/**
 * What a healthy kube-apiserver will not do on demand, against loopback servers standing in
 * for one: shed load (the retry rule), split a watch's lines anywhere, answer a watch with
 * 410 or garbage, cut it off; and TLS as a kubeconfig describes it (CA, client certificate,
 * tls-server-name). Everything else about KubeClient is exercised against the real API
 * server in test/integration.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { issue } from "../../hack/control-plane/pki.ts";
import { KubeClient, KubeError, type WatchEvent, type WatchQuery } from "./client.ts";
import { mergeKubeconfigs } from "./config.ts";
import { INSTANCES, type KubeObject } from "./resources.ts";

const servers: (http.Server | https.Server)[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A kubeconfig document with one context, for the cluster and user given. */
function document(cluster: Record<string, unknown>, user: Record<string, unknown> = { token: "t" }) {
  return {
    clusters: [{ name: "c", cluster }],
    users: [{ name: "u", user }],
    contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
    "current-context": "x",
  };
}

function clientOf(kubeconfig: unknown, file = "/test/kubeconfig", watchAnswerTimeoutMs?: number): KubeClient {
  return new KubeClient(mergeKubeconfigs([{ file, document: kubeconfig }]).select(), { ...(watchAnswerTimeoutMs ? { watchAnswerTimeoutMs } : {}) });
}

async function listen(server: http.Server | https.Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

/** A plain-HTTP stand-in API server, and a client of it (serverPath: a path prefix on the server's URL). */
async function apiServer(
  handler: Handler,
  options: { serverPath?: string; user?: Record<string, unknown>; file?: string; watchAnswerTimeoutMs?: number } = {},
): Promise<KubeClient> {
  const port = await listen(http.createServer(handler));
  return clientOf(document({ server: `http://127.0.0.1:${port}${options.serverPath ?? ""}` }, options.user), options.file, options.watchAnswerTimeoutMs);
}

async function answering(answers: number[], user?: Record<string, unknown>): Promise<{ client: KubeClient; requests: string[] }> {
  const requests: string[] = [];
  const client = await apiServer(
    (req, res) => {
      requests.push(`${req.method} ${req.url}`);
      const status = answers.shift() ?? 200;
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(status === 200 ? { metadata: { name: "a", namespace: "ns" } } : { kind: "Status", code: status, message: `answer ${status}` }));
    },
    user ? { user } : {},
  );
  return { client, requests };
}

describe("KubeClient retries", () => {
  it("retries a read through 503 and 429 answers", async () => {
    const { client, requests } = await answering([503, 429]);
    const object = await client.get(INSTANCES, "ns", "a");
    expect(object.metadata.name).toBe("a");
    expect(requests).toHaveLength(3);
  });

  it("honours a 429's Retry-After: a longer wait than a read may take is the answer, not a retry", async () => {
    const requests: string[] = [];
    const client = await apiServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      res.writeHead(429, { "Content-Type": "application/json", "Retry-After": "60" });
      res.end(JSON.stringify({ kind: "Status", code: 429, message: "too many requests, please try again later" }));
    });
    await expect(client.get(INSTANCES, "ns", "a")).rejects.toMatchObject({ status: 429, retryAfterMs: 60_000 });
    expect(requests).toHaveLength(1);
  });

  it("does not retry a read the server refused for good", async () => {
    const { client, requests } = await answering([404]);
    await expect(client.get(INSTANCES, "ns", "a")).rejects.toBeInstanceOf(KubeError);
    expect(requests).toHaveLength(1);
  });

  it("does not retry a read whose credentials could not be had", async () => {
    const { client, requests } = await answering([], { tokenFile: "/nonexistent/token" });
    await expect(client.get(INSTANCES, "ns", "a")).rejects.toThrow("cannot read the token file /nonexistent/token: ENOENT");
    expect(requests).toHaveLength(0);
  });

  it("does not retry writes", async () => {
    const { client, requests } = await answering([503]);
    await expect(client.patch(INSTANCES, "ns", "a", { metadata: {} })).rejects.toMatchObject({ status: 503 });
    expect(requests).toHaveLength(1);
  });
});

describe("KubeClient requests", () => {
  it("keeps the path prefix of the server's URL (a cluster behind a proxy)", async () => {
    const urls: string[] = [];
    const client = await apiServer(
      (req, res) => {
        urls.push(req.url ?? "");
        res.end(JSON.stringify({ metadata: { name: "a" } }));
      },
      { serverPath: "/k8s/clusters/c-1/" },
    );
    await client.get(INSTANCES, "ns", "a");
    expect(urls).toEqual(["/k8s/clusters/c-1/apis/wa-operator.io/v1alpha1/namespaces/ns/whatsappinstances/a"]);
  });

  it("after a 401, reads the token file again at once (a rotated token) instead of a minute later", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "kube-client-token-"));
    try {
      writeFileSync(path.join(dir, "token"), "old");
      const seen: string[] = [];
      const client = await apiServer(
        (req, res) => {
          seen.push(req.headers.authorization ?? "");
          res.writeHead(req.headers.authorization === "Bearer new" ? 200 : 401);
          res.end(JSON.stringify(req.headers.authorization === "Bearer new" ? { metadata: { name: "a" } } : { kind: "Status", code: 401, message: "Unauthorized" }));
        },
        { user: { tokenFile: "token" }, file: path.join(dir, "kubeconfig") },
      );
      await expect(client.get(INSTANCES, "ns", "a")).rejects.toMatchObject({ status: 401 });
      writeFileSync(path.join(dir, "token"), "new");
      expect((await client.get(INSTANCES, "ns", "a")).metadata.name).toBe("a");
      expect(seen).toEqual(["Bearer old", "Bearer new"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("KubeClient.watch", () => {
  /** Watches ns's instances, collecting events and counting calls of done. */
  function watching(client: KubeClient, query: WatchQuery = {}) {
    const events: WatchEvent<KubeObject>[] = [];
    const doneCalls: unknown[] = [];
    let resolveEnded!: (error: unknown) => void;
    const ended = new Promise<unknown>((resolve) => (resolveEnded = resolve));
    const controller = client.watch<KubeObject>(
      INSTANCES,
      "ns",
      query,
      (event) => events.push(event),
      (error) => {
        doneCalls.push(error);
        resolveEnded(error);
      },
    );
    return { events, doneCalls, ended, controller };
  }

  /** A watch answer (200, chunked) written in the pieces given, a few ms apart. */
  function streaming(pieces: (string | Buffer)[], requests: http.IncomingMessage[] = []): Handler {
    return (req, res) => {
      requests.push(req);
      res.writeHead(200, { "Content-Type": "application/json" });
      void (async () => {
        for (const piece of pieces) {
          res.write(piece);
          await sleep(5);
        }
        res.end();
      })();
    };
  }

  const line = (type: string, object: unknown) => `${JSON.stringify({ type, object })}\n`;

  it("asks with watch=1 and the query; reads events however the lines are split, the last without a newline", async () => {
    const added = Buffer.from(line("ADDED", { metadata: { name: "café", resourceVersion: "6" } }));
    const inside = added.indexOf("é") + 1; // between the two bytes of é
    const gone = { kind: "Status", apiVersion: "v1", code: 410, reason: "Expired", message: "too old resource version" };
    const requests: http.IncomingMessage[] = [];
    const client = await apiServer(
      streaming(
        [
          added.subarray(0, 5),
          added.subarray(5, inside),
          added.subarray(inside),
          line("BOOKMARK", { metadata: { resourceVersion: "7" } }) + line("MODIFIED", { metadata: { name: "b", resourceVersion: "8" } }).slice(0, 20),
          line("MODIFIED", { metadata: { name: "b", resourceVersion: "8" } }).slice(20) + "\n\n",
          line("ERROR", gone),
          JSON.stringify({ type: "DELETED", object: { metadata: { name: "b", resourceVersion: "9" } } }),
        ],
        requests,
      ),
    );
    const { events, doneCalls, ended } = watching(client, { resourceVersion: "5", allowWatchBookmarks: true, timeoutSeconds: 30, fieldSelector: "metadata.name=café" });
    expect(await ended).toBeUndefined();
    const url = new URL(requests[0]?.url ?? "", "http://x");
    expect(url.pathname).toBe("/apis/wa-operator.io/v1alpha1/namespaces/ns/whatsappinstances");
    expect(Object.fromEntries(url.searchParams)).toEqual({ resourceVersion: "5", allowWatchBookmarks: "true", timeoutSeconds: "30", fieldSelector: "metadata.name=café", watch: "1" });
    expect(requests[0]?.headers.authorization).toBe("Bearer t");
    const typeMeta = { apiVersion: "wa-operator.io/v1alpha1", kind: "WhatsAppInstance" };
    expect(events).toEqual([
      { type: "ADDED", object: { ...typeMeta, metadata: { name: "café", resourceVersion: "6" } } },
      { type: "BOOKMARK", object: { ...typeMeta, metadata: { resourceVersion: "7" } } },
      { type: "MODIFIED", object: { ...typeMeta, metadata: { name: "b", resourceVersion: "8" } } },
      { type: "ERROR", object: gone },
      { type: "DELETED", object: { ...typeMeta, metadata: { name: "b", resourceVersion: "9" } } },
    ]);
    await sleep(20);
    expect(doneCalls).toEqual([undefined]);
  });

  it("a refused watch ends with a KubeError carrying the status (410 Gone: the informer relists)", async () => {
    const client = await apiServer((_req, res) => {
      res.writeHead(410, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ kind: "Status", code: 410, reason: "Expired", message: "too old resource version: 5 (9)" }));
    });
    const { events, doneCalls, ended } = watching(client, { resourceVersion: "5" });
    const error = await ended;
    expect(error).toBeInstanceOf(KubeError);
    expect(error).toMatchObject({ status: 410, reason: "Expired", message: "too old resource version: 5 (9)" });
    expect(events).toEqual([]);
    expect(doneCalls).toHaveLength(1);
  });

  it("aborting ends it quietly, once, and closes the connection", async () => {
    let closed!: () => void;
    const connectionClosed = new Promise<void>((resolve) => (closed = resolve));
    const client = await apiServer((req, res) => {
      res.writeHead(200);
      res.write(line("ADDED", { metadata: { name: "a" } }));
      req.socket.on("close", closed);
    });
    const { events, doneCalls, ended, controller } = watching(client);
    while (events.length === 0) await sleep(5);
    controller.abort();
    controller.abort();
    expect(await ended).toBeUndefined();
    await connectionClosed;
    expect(doneCalls).toEqual([undefined]);
  });

  it("a line that is not JSON ends it with an error, and the connection", async () => {
    let closed!: () => void;
    const connectionClosed = new Promise<void>((resolve) => (closed = resolve));
    const client = await apiServer((req, res) => {
      res.writeHead(200);
      res.write(`${line("ADDED", { metadata: { name: "a" } })}<html>proxy error</html>\n`);
      req.socket.on("close", closed);
    });
    const { events, doneCalls, ended } = watching(client);
    expect(String(await ended)).toBe("Error: the watch of /apis/wa-operator.io/v1alpha1/namespaces/ns/whatsappinstances sent a line that is not JSON");
    await connectionClosed;
    expect(events.map((event) => event.object.metadata.name)).toEqual(["a"]);
    expect(doneCalls).toHaveLength(1);
  });

  it("a connection cut mid-line ends it with an error, once", async () => {
    const client = await apiServer((req, res) => {
      res.writeHead(200);
      res.write(line("ADDED", { metadata: { name: "a" } }).slice(0, 10));
      setTimeout(() => req.socket.destroy(), 20);
    });
    const { events, doneCalls, ended } = watching(client);
    expect(await ended).toBeInstanceOf(Error);
    await sleep(20);
    expect(events).toEqual([]);
    expect(doneCalls).toHaveLength(1);
  });

  it("a server that never answers: an error after the answer timeout, not a hang", async () => {
    const client = await apiServer(() => undefined, { watchAnswerTimeoutMs: 50 });
    const { ended, doneCalls } = watching(client);
    expect(String(await ended)).toBe("Error: the watch of /apis/wa-operator.io/v1alpha1/namespaces/ns/whatsappinstances got no answer in 50 ms");
    await sleep(20);
    expect(doneCalls).toHaveLength(1);
  });

  it("watches hold connections of their own: requests still go through with more watches open than the request pool has sockets", async () => {
    const client = await apiServer((req, res) => {
      if (new URL(req.url ?? "", "http://x").searchParams.get("watch") === "1") {
        res.writeHead(200);
        res.write(line("BOOKMARK", { metadata: { resourceVersion: "1" } }));
        return;
      }
      res.end(JSON.stringify({ metadata: { name: "a" } }));
    });
    const watches = Array.from({ length: 40 }, () => watching(client));
    while (watches.some((watch) => watch.events.length === 0)) await sleep(5);
    expect((await client.get(INSTANCES, "ns", "a")).metadata.name).toBe("a");
    for (const watch of watches) watch.controller.abort();
  });
});

describe("KubeClient over TLS, as the kubeconfig says", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "kube-client-tls-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const ca = issue({ subject: { commonName: "test-ca" }, isCA: true });
  // Named for a DNS name only: reached at 127.0.0.1, it verifies only with tls-server-name.
  const serving = issue({ subject: { commonName: "api" }, issuer: ca, usages: ["server"], dnsNames: ["kubernetes.test"] });
  const clientCert = issue({ subject: { commonName: "alice", organizations: ["team"] }, issuer: ca, usages: ["client"] });
  const b64 = (text: string) => Buffer.from(text).toString("base64");

  /** A server that requires a client certificate of the CA, and answers with its common name. */
  async function tlsServer(): Promise<number> {
    return listen(
      https.createServer({ key: serving.key, cert: serving.cert, ca: [ca.cert], requestCert: true, rejectUnauthorized: true }, (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        res.end(JSON.stringify({ metadata: { name: peer.subject.CN } }));
      }),
    );
  }

  it("verifies the server with the CA and tls-server-name, and presents the client certificate (files relative to the kubeconfig)", async () => {
    const port = await tlsServer();
    writeFileSync(path.join(dir, "ca.crt"), ca.cert);
    writeFileSync(path.join(dir, "client.crt"), clientCert.cert);
    writeFileSync(path.join(dir, "client.key"), clientCert.key);
    const client = clientOf(
      document(
        { server: `https://127.0.0.1:${port}`, "certificate-authority": "ca.crt", "tls-server-name": "kubernetes.test" },
        { "client-certificate": "client.crt", "client-key": "client.key" },
      ),
      path.join(dir, "kubeconfig"),
    );
    expect((await client.get(INSTANCES, "ns", "x")).metadata.name).toBe("alice");
  });

  it("refuses a server whose certificate does not name the host it is reached at, unless told tls-server-name or insecure-skip-tls-verify", async () => {
    const port = await tlsServer();
    const user = { "client-certificate-data": b64(clientCert.cert), "client-key-data": b64(clientCert.key) };
    const strict = clientOf(document({ server: `https://127.0.0.1:${port}`, "certificate-authority-data": b64(ca.cert) }, user));
    await expect(strict.get(INSTANCES, "ns", "x")).rejects.toMatchObject({ code: "ERR_TLS_CERT_ALTNAME_INVALID" });
    const insecure = clientOf(document({ server: `https://127.0.0.1:${port}`, "insecure-skip-tls-verify": true }, user));
    expect((await insecure.get(INSTANCES, "ns", "x")).metadata.name).toBe("alice");
  });
});
