/**
 * The thin HTTP layer under every provider client: rate limiting, a bound on requests
 * in flight, timeouts, retries of reads, size limits on answers, the leadership check
 * before writes, and the translation of transport failures and malformed answers into
 * ProviderError. Built on node:http because whapi sends a body with GET, which fetch refuses.
 */
import http from "node:http";
import https from "node:https";
import type { z } from "zod";
import { DEFAULT_EGRESS_DENY } from "../../config.ts";
import { EgressDenied, EgressGuard } from "./egress.ts";
import { ProviderError, parseRetryAfter } from "../errors.ts";
import type { InFlightLimit } from "./in-flight.ts";
import type { ReadLatency } from "./latency.ts";
import { retry } from "../../runtime/retry.ts";
import type { RateLimiter } from "./rate-limiter.ts";
import { injectTraceContext } from "../../tracing.ts";
import type { ProviderDeps, ProviderSettings, ProviderType, ResponseObserver } from "../types.ts";

export interface HttpRequest {
  readonly method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Path under the base URL, starting with "/". */
  readonly path: string;
  readonly query?: Readonly<Record<string, string | undefined>>;
  readonly headers?: Readonly<Record<string, string>>;
  /** JSON body, or form fields sent as application/x-www-form-urlencoded. */
  readonly json?: unknown;
  readonly form?: Readonly<Record<string, string>>;
  /**
   * The provider documents a write as idempotent (or it is safe to repeat, e.g. a create by
   * name that answers "already exists"): it is retried like a read.
   */
  readonly idempotent?: boolean;
  /** Largest answer accepted; default MAX_ANSWER_BYTES, or MAX_IMAGE_ANSWER_BYTES for an image. */
  readonly maxBodyBytes?: number;
}

/** Answers are read up to this size before anything parses them; larger ones are Malformed. */
export const MAX_ANSWER_BYTES = 1024 * 1024;
/** An image answer (a QR PNG) may be larger. */
export const MAX_IMAGE_ANSWER_BYTES = 4 * 1024 * 1024;

/** Reads (GET) and idempotent writes that failed with a 5xx, a dropped connection or a timeout are sent again this often. */
export const READ_RETRIES = 2;
/** First retry after about this long (jittered ±50 %), doubling; the budget of twice the timeout bounds the rest. */
const RETRY_BACKOFF = { baseMs: 200, maxMs: 60_000, jitter: 0.5 } as const;

/** A 5xx answer, thrown inside the retry loop so the loop can try again; unwrapped after it. */
class FailedAnswer extends Error {
  readonly response: HttpResponse;
  constructor(response: HttpResponse) {
    super(`answered ${response.status}`);
    this.response = response;
  }
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Turns a non-2xx answer into the provider's error, or undefined to accept it. */
export type ErrorClassifier = (response: HttpResponse) => ProviderError | undefined;

/**
 * Called once per answered request (metrics); `status` is the HTTP code or "error", and
 * `request` the HTTP method and the seconds it took on the wire.
 */
export type { ResponseObserver } from "../types.ts";

export interface ProviderHttpOptions {
  readonly type: ProviderType;
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly limiter: RateLimiter;
  readonly classify: ErrorClassifier;
  readonly observe?: ResponseObserver;
  readonly now?: () => number;
  /** Bounds the requests on the wire to this provider; a request waits for a slot at most timeoutMs. */
  readonly inFlight?: InFlightLimit;
  /** The provider's recent read latencies: a read's first try is cut short when it waits far longer. */
  readonly readLatency?: ReadLatency;
  /** Asked right before a request that is not a GET is sent; false refuses it (leader election). */
  readonly mayWrite?: () => boolean;
  /** How often a failed read is sent again; default READ_RETRIES. */
  readonly readRetries?: number;
  /** Refuses connections to denied addresses (EGRESS_DENY_CIDRS); default: the default deny-list. */
  readonly egress?: EgressGuard;
}

/** The answer was larger than the request allows; never retried, it would be as large again. */
class AnswerTooLarge extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`answer larger than ${limit} bytes`);
    this.limit = limit;
  }
}

/** Used when a client is given no guard of its own: the default deny-list still holds. */
const defaultEgress = new EgressGuard({ deny: DEFAULT_EGRESS_DENY });

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
      ...(deps.inFlight ? { inFlight: deps.inFlight } : {}),
      ...(deps.readLatency ? { readLatency: deps.readLatency } : {}),
      ...(deps.mayWrite ? { mayWrite: deps.mayWrite } : {}),
      ...(deps.egress ? { egress: deps.egress } : {}),
    });
  }

  /**
   * Sends one request; throws ProviderError for transport failures and for answers the
   * classifier rejects. A read (GET) or an idempotent write that meets a 5xx, a dropped connection or a timeout is
   * sent again up to READ_RETRIES times after a jittered pause, each time through the rate
   * limiter; a 429 never is (the limiter's gate holds every caller until Retry-After). Every
   * attempt ends within timeoutMs, and the attempts with their pauses within twice that; a
   * read's first try ends sooner when the provider's recent answers say it is lost (ReadLatency).
   */
  async send(request: HttpRequest): Promise<HttpResponse> {
    const retries = request.method === "GET" || request.idempotent ? (this.options.readRetries ?? READ_RETRIES) : 0;
    const budgetMs = 2 * this.options.timeoutMs;
    const started = Date.now();
    let response: HttpResponse;
    try {
      response = await retry(
        async (attempt) => {
          const deadline = attempt === 0 && request.method === "GET" && this.options.readLatency ? this.options.readLatency.firstTryMs(this.options.timeoutMs) : this.options.timeoutMs;
          const outcome = await this.attempt(request, Math.min(deadline, Math.max(1, budgetMs - (Date.now() - started))));
          if (outcome.error) throw outcome.error;
          if (outcome.response.status >= 500) throw new FailedAnswer(outcome.response);
          return outcome.response;
        },
        {
          retries,
          backoff: RETRY_BACKOFF,
          budgetMs,
          shouldRetry: (error) => error instanceof FailedAnswer || (error instanceof ProviderError && error.kind === "Unavailable" && error.status === undefined),
        },
      );
    } catch (error) {
      if (!(error instanceof FailedAnswer)) throw error;
      response = error.response;
    }
    if (response.status >= 200 && response.status < 300) return response;
    const classified = this.options.classify(response);
    if (classified) throw this.boundedWait(classified);
    return response;
  }

  /** A RateLimited error asks to come back no later than the limiter's ceiling on pauses. */
  private boundedWait(error: ProviderError): ProviderError {
    if (error.kind !== "RateLimited" || error.retryAfterMs === undefined) return error;
    const bounded = this.options.limiter.boundPause(error.retryAfterMs);
    if (bounded === error.retryAfterMs) return error;
    return new ProviderError(error.kind, error.message, {
      ...(error.status === undefined ? {} : { status: error.status }),
      ...(error.code === undefined ? {} : { code: error.code }),
      retryAfterMs: bounded,
      ...(error.retryAt === undefined ? {} : { retryAt: error.retryAt }),
    });
  }

  /** One request through the limiter and the in-flight bound: an answer, or the transport failure as a ProviderError. */
  private async attempt(request: HttpRequest, timeoutMs: number): Promise<{ response: HttpResponse; error?: undefined } | { error: ProviderError }> {
    // A provider's pause is waited out (or refused) before a slot is taken, so waiting for
    // it holds nothing another request could use.
    await this.options.limiter.passGate();
    const release = await this.sendSlot();
    let answered = false;
    try {
      if (request.method !== "GET" && this.options.mayWrite && !this.options.mayWrite()) {
        throw new ProviderError("Unavailable", `not sent to ${this.options.type}: this replica is not (or no longer surely) the leader`);
      }
      let response: HttpResponse;
      const sentAt = Date.now();
      const timed = () => ({ method: request.method, seconds: (Date.now() - sentAt) / 1000 });
      try {
        response = await this.transmit(request, timeoutMs);
      } catch (error) {
        if (error instanceof EgressDenied) {
          // Nothing left this process: a person must fix the URL (or the deny-list).
          return { error: new ProviderError("Rejected", `${this.options.type} at ${this.base.origin}: ${error.message}`) };
        }
        this.options.observe?.(this.options.type, "error", timed());
        if (error instanceof AnswerTooLarge) {
          return { error: new ProviderError("Malformed", `${this.options.type} answered ${request.method} ${request.path} with more than ${mebibytes(error.limit)}`) };
        }
        return {
          error: new ProviderError("Unavailable", `${this.options.type} at ${this.base.origin} did not answer: ${describe(error)}`, { cause: error }),
        };
      }
      answered = true;
      if (request.method === "GET") this.options.readLatency?.record(Date.now() - sentAt);
      this.options.observe?.(this.options.type, String(response.status), timed());
      this.honourRateHeaders(response);
      return { response };
    } finally {
      release(answered);
    }
  }

  /**
   * An in-flight slot, then a rate-limiter token, so the request goes on the wire the
   * moment it is counted (the limiter's guarantee holds) and one token buys one request.
   * A whole timeout without a slot, without an answer to anyone and without a slot holder
   * waiting for the limiter means the provider is not answering: a retryable Unavailable.
   * Slot holders waiting out a Retry-After pause are a slow provider, not a hung one.
   */
  private async sendSlot(): Promise<(answered?: boolean) => void> {
    const limit = this.options.inFlight;
    let release: (answered?: boolean) => void = () => undefined;
    if (limit) {
      const since = Date.now();
      for (;;) {
        const slot = await limit.acquire(this.options.timeoutMs);
        if (slot) {
          release = slot;
          break;
        }
        if (this.options.limiter.pending === 0 && limit.lastAnswerAt < since) {
          throw new ProviderError(
            "Unavailable",
            `${this.options.type} at ${this.base.origin} has ${limit.max} requests unanswered for ${this.options.timeoutMs} ms; not sending more`,
          );
        }
      }
    }
    try {
      await this.options.limiter.acquire();
    } catch (error) {
      release();
      throw error;
    }
    return release;
  }

  /** Sends and parses a JSON answer with a zod schema. An empty body parses as null. */
  async json<S extends z.ZodType>(request: HttpRequest, schema: S): Promise<z.output<S>> {
    const response = await this.send({ ...request, headers: { Accept: "application/json", ...request.headers } });
    return parseJson(this.options.type, `${request.method} ${request.path}`, response.body, schema);
  }

  /**
   * A 429, a 503 with Retry-After or an exhausted X-RateLimit window closes the provider's
   * gate for every caller (up to the limiter's ceiling).
   */
  private honourRateHeaders(response: HttpResponse): void {
    const now = this.options.now?.() ?? Date.now();
    if (response.status === 429) {
      const after = parseRetryAfter(header(response, "retry-after"), now) ?? resetDelay(response, now) ?? 1000;
      this.options.limiter.pauseFor(after);
      return;
    }
    if (response.status === 503) {
      const after = parseRetryAfter(header(response, "retry-after"), now);
      if (after !== undefined) this.options.limiter.pauseFor(after);
      return;
    }
    if (header(response, "x-ratelimit-remaining") === "0") {
      const after = resetDelay(response, now);
      if (after !== undefined) this.options.limiter.pauseFor(after);
    }
  }

  private transmit(request: HttpRequest, timeoutMs: number): Promise<HttpResponse> {
    const url = new URL(request.path.replace(/^\//, ""), this.base);
    for (const [key, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, value);
    }
    const headers: Record<string, string> = { ...request.headers };
    injectTraceContext(headers);
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
    const egress = this.options.egress ?? defaultEgress;
    return new Promise<HttpResponse>((resolve, reject) => {
      // A literal address is connected to without a lookup: checked here, names in the agent's lookup.
      egress.checkLiteral(url);
      let settled = false;
      const done = () => {
        settled = true;
        clearTimeout(deadline);
      };
      // Settles the promise first, then tears the connection down without a further error event.
      const fail = (error: Error) => {
        if (settled) return;
        done();
        reject(error);
        req.destroy();
      };
      const req = send(url, { method: request.method, headers, agent: isHttps ? egress.agents.https : egress.agents.http, timeout: timeoutMs }, (res) => {
        const limit = request.maxBodyBytes ?? (isImage(res.headers["content-type"]) ? MAX_IMAGE_ANSWER_BYTES : MAX_ANSWER_BYTES);
        // A declared size over the limit is refused before a byte of the body is read.
        if (Number(res.headers["content-length"]) > limit) {
          fail(new AnswerTooLarge(limit));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) fail(new AnswerTooLarge(limit));
          else chunks.push(chunk);
        });
        res.on("error", fail);
        res.on("end", () => {
          if (settled) return;
          done();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
      });
      // The socket timeout catches silence; this one a trickle that never ends.
      const deadline = setTimeout(() => fail(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
      req.on("timeout", () => fail(new Error(`timed out after ${timeoutMs} ms`)));
      req.on("error", fail);
      req.end(payload);
    });
  }
}

function isImage(contentType: string | undefined): boolean {
  return contentType?.toLowerCase().startsWith("image/") ?? false;
}

function mebibytes(bytes: number): string {
  return `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MiB`;
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
