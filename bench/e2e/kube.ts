/**
 * The benchmark's own small API client: a kubeconfig's client certificate over a
 * keep-alive agent, every request it sends counted the way kube-apiserver counts it, so
 * the benchmark can take its own requests out of the server's figures. Independent of
 * src/ on purpose: the benchmark measures the operator from outside, before and after
 * any rewrite of its client.
 */
import { readFileSync } from "node:fs";
import https from "node:https";
import { parse } from "yaml";
import { addTo, requestKindOf, type RequestTally } from "./figures.ts";

interface Kubeconfig {
  clusters: { name: string; cluster: { server: string; "certificate-authority-data": string } }[];
  users: { name: string; user: { "client-certificate-data"?: string; "client-key-data"?: string; token?: string } }[];
}

export class KubeApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "KubeApiError";
    this.status = status;
  }
}

export interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  readonly object: KubeItem;
}

/** The fields of an object the benchmark reads. */
export interface KubeItem {
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; generation?: number };
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
  data?: Record<string, string>;
  code?: number;
}

export class BenchKube {
  /** Every request this client sent, as kube-apiserver counts it. */
  readonly sent: RequestTally = new Map();
  readonly server: URL;
  readonly #tls: { ca: Buffer; cert?: Buffer; key?: Buffer };
  readonly #agent: https.Agent;
  /** The Authorization header of a bearer-token user (a ServiceAccount's); none for a client certificate. */
  readonly #auth: Record<string, string>;

  constructor(kubeconfigPath: string, options: { maxSockets?: number } = {}) {
    const config = parse(readFileSync(kubeconfigPath, "utf8")) as Kubeconfig;
    const cluster = config.clusters[0]?.cluster;
    const user = config.users[0]?.user;
    if (!cluster || !user) throw new Error(`${kubeconfigPath}: no cluster or user`);
    const b64 = (text: string) => Buffer.from(text, "base64");
    this.server = new URL(cluster.server);
    const cert = user["client-certificate-data"];
    const key = user["client-key-data"];
    this.#tls = { ca: b64(cluster["certificate-authority-data"]), ...(cert && key ? { cert: b64(cert), key: b64(key) } : {}) };
    this.#auth = user.token ? { Authorization: `Bearer ${user.token}` } : {};
    this.#agent = new https.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 32, ...this.#tls });
  }

  /** One request; resolves the parsed body, rejects with KubeApiError on a non-2xx answer. */
  async request<T = KubeItem>(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<T> {
    const { status, text } = await this.#send(method, path, body, contentType);
    if (status < 200 || status >= 300) throw new KubeApiError(status, `${method} ${path}: ${status} ${text.slice(0, 300)}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Whether the object exists (GET; 404 is an answer, not an error). */
  async exists(path: string): Promise<KubeItem | undefined> {
    try {
      return await this.request("GET", path);
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  /** Every item of a collection, 500 at a time, and the list's resourceVersion. */
  async list(path: string): Promise<{ items: KubeItem[]; resourceVersion: string }> {
    const items: KubeItem[] = [];
    let next = "";
    for (;;) {
      const page = await this.request<{ items: KubeItem[]; metadata: { resourceVersion: string; continue?: string } }>(
        "GET",
        `${path}?limit=500${next ? `&continue=${encodeURIComponent(next)}` : ""}`,
      );
      items.push(...page.items);
      if (!page.metadata.continue) return { items, resourceVersion: page.metadata.resourceVersion };
      next = page.metadata.continue;
    }
  }

  /**
   * Lists, then watches, a collection, handing every object to `onEvent` (the listed ones
   * as ADDED); re-lists when the watch ends or expires, until the returned stop is called.
   */
  informer(path: string, onEvent: (event: WatchEvent) => void, onError: (error: unknown) => void): { synced: Promise<void>; stop: () => void } {
    let stopped = false;
    let current: { destroy: () => void } | undefined;
    let markSynced: () => void = () => {};
    let failSync: (error: unknown) => void = () => {};
    const synced = new Promise<void>((resolve, reject) => {
      markSynced = resolve;
      failSync = reject;
    });
    const cycle = async (): Promise<void> => {
      while (!stopped) {
        const { items, resourceVersion } = await this.list(path);
        for (const object of items) onEvent({ type: "ADDED", object });
        markSynced();
        const watchPath = `${path}?watch=1&allowWatchBookmarks=true&timeoutSeconds=3600&resourceVersion=${resourceVersion}`;
        await new Promise<void>((ended) => {
          if (stopped) ended();
          else current = this.#watch(watchPath, onEvent, ended);
        });
        if (!stopped) await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };
    cycle().catch((error: unknown) => {
      failSync(error);
      if (!stopped) onError(error);
    });
    return {
      synced,
      stop: () => {
        stopped = true;
        current?.destroy();
      },
    };
  }

  /** The API server's /metrics text (a non-resource path: it never shows in resource figures). */
  async metrics(): Promise<string> {
    const { status, text } = await this.#send("GET", "/metrics");
    if (status !== 200) throw new Error(`GET /metrics: ${status}`);
    return text;
  }

  close(): void {
    this.#agent.destroy();
  }

  /** Streams watch events until the server ends the watch; `ended` is called once. */
  #watch(path: string, onEvent: (event: WatchEvent) => void, ended: () => void): { destroy: () => void } {
    const url = new URL(path, this.server);
    addTo(this.sent, { ...requestKindOf("GET", path), code: "200" });
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        ended();
      }
    };
    // Its own connection: a watch holds it for as long as it runs.
    const req = https.request(url, { method: "GET", ...this.#tls, agent: false, headers: { Accept: "application/json", ...this.#auth } }, (res) => {
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let newline: number;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (!line) continue;
          const event = JSON.parse(line) as WatchEvent;
          if (event.type === "ERROR") {
            req.destroy(); // 410 Gone and friends: the informer re-lists
          } else if (event.type !== "BOOKMARK") {
            onEvent(event);
          }
        }
      });
      res.on("end", finish);
      res.on("error", finish);
      res.on("close", finish);
    });
    req.on("error", finish);
    req.end();
    return { destroy: () => req.destroy() };
  }

  #send(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<{ status: number; text: string }> {
    const url = new URL(path, this.server);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { Accept: "application/json", ...this.#auth };
    if (payload) {
      headers["Content-Type"] = contentType;
      headers["Content-Length"] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method, headers, agent: this.#agent, timeout: 60_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          if (path !== "/metrics") addTo(this.sent, { ...requestKindOf(method, path, contentType), code: String(status) });
          resolve({ status, text: Buffer.concat(chunks).toString("utf8") });
        });
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on("error", reject);
      req.end(payload);
    });
  }
}
