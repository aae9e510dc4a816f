/**
 * A tiny JSON-over-HTTP toolkit for provider emulators: a router whose path templates
 * use OpenAPI syntax (`/api/sessions/{session}`) so the served routes can be compared
 * with a published spec, plus helpers to read bodies, send replies, listen and close.
 * Plain node:http, no framework.
 */
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface EmulatorRequest {
  readonly method: string;
  /** Decoded pathname, without the query string. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** Path parameters from the matched template, URI-decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly rawBody: Buffer;
  /** The parsed body, when the emulator parsed it as JSON. */
  readonly json?: unknown;
}

export interface Reply {
  readonly status: number;
  /**
   * JSON body. `undefined` (or absent) sends an empty body with no Content-Type, the way
   * Express answers a handler that returned nothing.
   */
  readonly body?: unknown;
  /** Non-JSON body (e.g. image/png); takes precedence over `body`. */
  readonly raw?: { readonly contentType: string; readonly data: Buffer };
  readonly headers?: Readonly<Record<string, string>>;
}

export type Handler = (req: EmulatorRequest) => Reply | Promise<Reply>;

export interface Route {
  readonly method: string;
  /** OpenAPI-style template, e.g. `/api/{session}/auth/qr`. */
  readonly template: string;
  readonly handler: Handler;
}

export type RouteMatch =
  | { readonly route: Route; readonly params: Record<string, string> }
  | { readonly route: undefined; readonly params: undefined };

/**
 * Matches a concrete path against an OpenAPI-style template. Returns the decoded
 * parameters, or null. `{name}` matches exactly one non-empty segment.
 */
export function matchTemplate(template: string, path: string): Record<string, string> | null {
  const t = template.split("/");
  const p = path.split("/");
  if (t.length !== p.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < t.length; i++) {
    const ts = t[i] ?? "";
    const ps = p[i] ?? "";
    const name = /^\{([^}]+)\}$/.exec(ts)?.[1];
    if (name !== undefined) {
      if (ps === "") return null;
      try {
        params[name] = decodeURIComponent(ps);
      } catch {
        return null;
      }
    } else if (ts !== ps) {
      return null;
    }
  }
  return params;
}

export class Router {
  readonly #routes: Route[] = [];

  add(method: string, template: string, handler: Handler): this {
    this.#routes.push({ method: method.toUpperCase(), template, handler });
    return this;
  }

  /** First route whose method and template match; literal segments are tried before parameters. */
  match(method: string, path: string): RouteMatch {
    const candidates = this.#routes
      .filter((r) => r.method === method.toUpperCase())
      .sort((a, b) => literalScore(b.template) - literalScore(a.template));
    for (const route of candidates) {
      const params = matchTemplate(route.template, path);
      if (params) return { route, params };
    }
    return { route: undefined, params: undefined };
  }

  routes(): ReadonlyArray<{ readonly method: string; readonly template: string }> {
    return this.#routes.map(({ method, template }) => ({ method, template }));
  }
}

/** More literal segments = more specific (so `/api/sessions/{s}/me` never loses to a broader template). */
function literalScore(template: string): number {
  return template.split("/").filter((s) => s !== "" && !s.startsWith("{")).length;
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

export function sendReply(res: ServerResponse, reply: Reply): void {
  const headers: Record<string, string | number> = { ...reply.headers };
  let data: Buffer;
  if (reply.raw) {
    headers["Content-Type"] = reply.raw.contentType;
    data = reply.raw.data;
  } else if (reply.body === undefined) {
    data = Buffer.alloc(0);
  } else {
    headers["Content-Type"] = "application/json; charset=utf-8";
    data = Buffer.from(JSON.stringify(reply.body));
  }
  headers["Content-Length"] = data.length;
  res.writeHead(reply.status, headers);
  res.end(data);
}

/** Listens and returns the base URL, e.g. `http://127.0.0.1:39123`. */
export async function listen(server: Server, port = 0, host = "127.0.0.1"): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return `http://${host}:${address.port}`;
}

/** Closes the server and every open (including keep-alive) connection. */
export async function close(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

export interface PostResult {
  /** HTTP status, or undefined when the request failed before a response arrived. */
  readonly status?: number;
  readonly error?: string;
}

/**
 * POSTs exactly these bytes with exactly these headers (plus Host, Content-Length and
 * Connection: close), without a connection pool, so a receiver that goes away never
 * leaves sockets behind. Never rejects: failures come back as `{error}`.
 */
export async function postRaw(
  url: string,
  headers: Readonly<Record<string, string>>,
  body: Buffer,
  timeoutMs = 10_000,
): Promise<PostResult> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return { error: `invalid URL: ${url}` };
  }
  const lib = target.protocol === "https:" ? await import("node:https") : await import("node:http");
  return new Promise<PostResult>((resolve) => {
    const req = lib.request(
      target,
      {
        method: "POST",
        agent: false,
        headers: { ...headers, "Content-Length": body.length, Connection: "close" },
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0 }));
        res.on("error", (e) => resolve({ status: res.statusCode ?? 0, error: e.message }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on("error", (e) => resolve({ error: e.message }));
    req.end(body);
  });
}
