/**
 * The operator's HTTP endpoints: /healthz (the process answers), /readyz (caches
 * synced), the providers' lifecycle webhooks, and /metrics (Prometheus). Metrics go on a
 * server of their own (METRICS_ADDRESS): they name every tenant's objects, while the
 * event receiver faces every gateway that sends events, so a NetworkPolicy can keep them
 * apart.
 */
import http from "node:http";
import type { Logger } from "pino";
import type { Metrics } from "../metrics.ts";
import { MAX_EVENT_BODY, ProviderEventReceiver } from "./provider-events.ts";

export interface ServerOptions {
  readonly address: string;
  readonly log: Logger;
  readonly ready: () => boolean;
  /** Serves /provider-events/... when given. */
  readonly events?: ProviderEventReceiver;
  /** Serves /metrics when given. */
  readonly metrics?: Metrics;
}

export async function startServer(options: ServerOptions): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    handle(options, req, res).catch((error: unknown) => {
      options.log.error({ err: (error as Error).message, path: req.url }, "http handler failed");
      if (!res.headersSent) res.writeHead(500).end("internal error");
    });
  });
  const { host, port } = parseAddress(options.address);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as { address: string; port: number };
  const url = `http://${bound.address.includes(":") ? `[${bound.address}]` : bound.address}:${bound.port}`;
  const paths = ["/healthz", "/readyz", ...(options.metrics ? ["/metrics"] : []), ...(options.events ? ["/provider-events"] : [])];
  options.log.info({ url }, `serving ${paths.join(", ")}`);
  return {
    url,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function handle(options: ServerOptions, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const path = (req.url ?? "/").split("?")[0];
  if (req.method === "GET" && path === "/healthz") return reply(res, 200, "ok");
  if (req.method === "GET" && path === "/readyz") return options.ready() ? reply(res, 200, "ok") : reply(res, 503, "caches not synced");
  if (options.metrics && req.method === "GET" && path === "/metrics") {
    const text = await options.metrics.registry.metrics();
    res.writeHead(200, { "Content-Type": options.metrics.registry.contentType }).end(text);
    return;
  }
  const ref = options.events ? ProviderEventReceiver.refOf(req.url ?? "") : undefined;
  if (options.events && req.method === "POST" && ref) {
    // Judged before a byte of the body is read: its announced size, then who sends it.
    if (Number(req.headers["content-length"] ?? 0) > MAX_EVENT_BODY) return refuseUnread(req, res, 413, "body too large");
    const admission = await options.events.admit(ref, req.headers);
    if ("refused" in admission) return refuseUnread(req, res, admission.refused.status, admission.refused.body);
    const body = await readBody(req, MAX_EVENT_BODY);
    if (!body) return reply(res, 413, "body too large");
    const answer = await options.events.handle(ref, req.headers, body, new URL(req.url ?? "/", "http://receiver").searchParams);
    return reply(res, answer.status, answer.body);
  }
  reply(res, 404, "not found");
}

function reply(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" }).end(`${text}\n`);
}

/** Answers without reading the body, and closes the connection so the unread body is not taken for the next request. */
function refuseUnread(req: http.IncomingMessage, res: http.ServerResponse, status: number, text: string): void {
  res.setHeader("Connection", "close");
  reply(res, status, text);
  req.resume();
}

/** The body, or undefined once it grows past `limit` (the connection is then dropped). */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.destroy();
        resolve(undefined);
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** ":8080" → all interfaces; "127.0.0.1:0" → loopback, any free port. */
export function parseAddress(address: string): { host: string | undefined; port: number } {
  const index = address.lastIndexOf(":");
  const host = index > 0 ? address.slice(0, index).replace(/^\[|\]$/g, "") : undefined;
  const port = Number(address.slice(index + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`"${address}" is not an address such as :8080 or 127.0.0.1:8080`);
  return { host, port };
}
