/**
 * The thin HTTP layer under every provider client: rate limiting, timeouts, and the
 * translation of transport failures and malformed answers into ProviderError.
 * Built on node:http because whapi sends a body with GET, which fetch refuses.
 */
import http from "node:http";
import https from "node:https";
import type { z } from "zod";
import { ProviderError, parseRetryAfter } from "./errors.ts";
import type { RateLimiter } from "./rate-limiter.ts";
import type { ProviderDeps, ProviderSettings, ProviderType } from "./types.ts";

export interface HttpRequest {
  readonly method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Path under the base URL, starting with "/". */
  readonly path: string;
  readonly query?: Readonly<Record<string, string | undefined>>;
  readonly headers?: Readonly<Record<string, string>>;
  /** JSON body, or form fields sent as application/x-www-form-urlencoded. */
  readonly json?: unknown;
  readonly form?: Readonly<Record<string, string>>;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Turns a non-2xx answer into the provider's error, or undefined to accept it. */
export type ErrorClassifier = (response: HttpResponse) => ProviderError | undefined;

/** Called once per answered request (metrics); `status` is the HTTP code or "error". */
export type ResponseObserver = (provider: ProviderType, status: string) => void;

export interface ProviderHttpOptions {
  readonly type: ProviderType;
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly limiter: RateLimiter;
  readonly classify: ErrorClassifier;
  readonly observe?: ResponseObserver;
  readonly now?: () => number;
}

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 32 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 32 }),
};

export class ProviderHttp {
  private readonly options: ProviderHttpOptions;
  private readonly base: URL;

  constructor(options: ProviderHttpOptions) {
    this.options = options;
    this.base = new URL(options.baseUrl.endsWith("/") ? options.baseUrl : `${options.baseUrl}/`);
  }

  /** The usual wiring for a provider client: its settings, the shared deps, its own classifier. */
  static forProvider(settings: ProviderSettings, deps: ProviderDeps, classify: ErrorClassifier, baseUrl: string = settings.url): ProviderHttp {
    return new ProviderHttp({
      type: settings.type,
      baseUrl,
      timeoutMs: settings.timeoutMs,
      limiter: deps.limiter,
      classify,
      ...(deps.observe ? { observe: deps.observe } : {}),
      ...(deps.now ? { now: deps.now } : {}),
    });
  }

  /** Sends one request; throws ProviderError for transport failures and for answers the classifier rejects. */
  async send(request: HttpRequest): Promise<HttpResponse> {
    await this.options.limiter.acquire();
    let response: HttpResponse;
    try {
      response = await this.transmit(request);
    } catch (error) {
      this.options.observe?.(this.options.type, "error");
      throw new ProviderError("Unavailable", `${this.options.type} at ${this.base.origin} did not answer: ${describe(error)}`, {
        cause: error,
      });
    }
    this.options.observe?.(this.options.type, String(response.status));
    this.honourRateHeaders(response);
    if (response.status >= 200 && response.status < 300) return response;
    const classified = this.options.classify(response);
    if (classified) throw classified;
    return response;
  }

  /** Sends and parses a JSON answer with a zod schema. An empty body parses as null. */
  async json<S extends z.ZodType>(request: HttpRequest, schema: S): Promise<z.output<S>> {
    const response = await this.send({ ...request, headers: { Accept: "application/json", ...request.headers } });
    return parseJson(this.options.type, `${request.method} ${request.path}`, response.body, schema);
  }

  /** A 429 or an exhausted X-RateLimit window pauses every caller of this provider. */
  private honourRateHeaders(response: HttpResponse): void {
    const now = this.options.now?.() ?? Date.now();
    if (response.status === 429) {
      const after = parseRetryAfter(header(response, "retry-after"), now) ?? resetDelay(response, now) ?? 1000;
      this.options.limiter.pauseFor(after);
      return;
    }
    if (header(response, "x-ratelimit-remaining") === "0") {
      const after = resetDelay(response, now);
      if (after !== undefined) this.options.limiter.pauseFor(after);
    }
  }

  private transmit(request: HttpRequest): Promise<HttpResponse> {
    const url = new URL(request.path.replace(/^\//, ""), this.base);
    for (const [key, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, value);
    }
    const headers: Record<string, string> = { ...request.headers };
    let payload: Buffer | undefined;
    if (request.json !== undefined) {
      payload = Buffer.from(JSON.stringify(request.json));
      headers["Content-Type"] = "application/json";
    } else if (request.form !== undefined) {
      payload = Buffer.from(new URLSearchParams(request.form as Record<string, string>).toString());
      headers["Content-Type"] = "application/x-www-form-urlencoded";
    }
    if (payload) headers["Content-Length"] = String(payload.length);
    const isHttps = url.protocol === "https:";
    const send = isHttps ? https.request : http.request;
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = send(
        url,
        { method: request.method, headers, agent: isHttps ? agents.https : agents.http, timeout: this.options.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", reject);
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        },
      );
      req.on("timeout", () => req.destroy(new Error(`timed out after ${this.options.timeoutMs} ms`)));
      req.on("error", reject);
      req.end(payload);
    });
  }
}

/** Parses bytes as JSON and checks them with a schema; failures become Malformed. */
export function parseJson<S extends z.ZodType>(provider: ProviderType, what: string, body: Buffer, schema: S): z.output<S> {
  let value: unknown = null;
  const text = body.toString("utf8").trim();
  if (text !== "") {
    try {
      value = JSON.parse(text);
    } catch {
      throw new ProviderError("Malformed", `${provider} answered ${what} with something that is not JSON`);
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join(".")}` : "";
    throw new ProviderError("Malformed", `${provider} answered ${what} in an unexpected shape${where}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}

/** Reads a JSON error body leniently, for classifiers. */
export function readErrorBody(response: HttpResponse): unknown {
  try {
    return JSON.parse(response.body.toString("utf8"));
  } catch {
    return undefined;
  }
}

export function header(response: HttpResponse, name: string): string | undefined {
  const value = response.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads Retry-After for classifiers building a RateLimited error. */
export function retryAfterMs(response: HttpResponse, now = Date.now()): number | undefined {
  return parseRetryAfter(header(response, "retry-after"), now) ?? resetDelay(response, now);
}

/** X-RateLimit-Reset is either epoch seconds or seconds from now; both are seen in the wild. */
function resetDelay(response: HttpResponse, now: number): number | undefined {
  const raw = header(response, "x-ratelimit-reset");
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) return undefined;
  return value > 1_000_000_000 ? Math.max(0, value * 1000 - now) : Math.max(0, value * 1000);
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code ? `${code} ${error.message}` : error.message;
  }
  return String(error);
}

/**
 * The default mapping of HTTP statuses to error kinds; providers refine it. `now` is the
 * client's clock (Retry-After as a date), `code` the provider's own error code.
 */
export function classifyByStatus(
  provider: ProviderType,
  response: HttpResponse,
  message: string,
  options: { readonly now?: number; readonly code?: string } = {},
): ProviderError {
  const status = response.status;
  const text = `${provider} answered ${status}: ${message}`;
  const base = { status, ...(options.code ? { code: options.code } : {}) };
  if (status === 401) return new ProviderError("InvalidCredentials", text, base);
  if (status === 404) return new ProviderError("NotFound", text, base);
  if (status === 409) return new ProviderError("Conflict", text, base);
  if (status === 429) {
    const after = retryAfterMs(response, options.now);
    return new ProviderError("RateLimited", text, { ...base, ...(after === undefined ? {} : { retryAfterMs: after }) });
  }
  if (status >= 500) return new ProviderError("Unavailable", text, base);
  return new ProviderError("Rejected", text, base);
}
