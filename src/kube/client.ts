/**
 * The operator's door to the API server: a few generic verbs, and watches, over plain
 * node:https with the cluster and credentials of a KubeConfig (config.ts). Generic because
 * the operator handles its own CRDs, Secrets, Events and Leases alike, and one error type
 * (KubeError) is easier to reason about than each generated API's.
 */
import https from "node:https";
import http from "node:http";
import { parseRetryAfter, retry } from "../runtime/retry.ts";
import { KubeConfigError, type KubeConfig } from "./config.ts";
import { LineSplitter } from "./lines.ts";
import { serverAgents } from "./proxy.ts";
import { collectionPath, objectPath, type KubeObject, type ResourceType } from "./resources.ts";

export class KubeError extends Error {
  readonly status: number;
  readonly reason: string | undefined;
  readonly body: unknown;
  /** The server's Retry-After (429 under API Priority and Fairness, some 503s), in ms. */
  readonly retryAfterMs: number | undefined;

  constructor(status: number, message: string, reason?: string, body?: unknown, retryAfterMs?: number) {
    super(message);
    this.name = "KubeError";
    this.status = status;
    this.reason = reason;
    this.body = body;
    this.retryAfterMs = retryAfterMs;
  }
}

export function isNotFound(error: unknown): boolean {
  return error instanceof KubeError && error.status === 404;
}

export function isConflict(error: unknown): boolean {
  return error instanceof KubeError && error.status === 409;
}

export interface ObjectList<T> {
  readonly items: T[];
  readonly resourceVersion: string;
}

export type PatchType = "merge" | "json" | "apply";

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  apply: "application/apply-patch+yaml",
};

export interface WatchEvent<T> {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  readonly object: T;
}

/** What a watch asks for besides watch=1; see the API's list/watch query parameters. */
export interface WatchQuery {
  readonly resourceVersion?: string | undefined;
  readonly allowWatchBookmarks?: boolean | undefined;
  /** The API server ends the watch (cleanly) after this long. */
  readonly timeoutSeconds?: number | undefined;
  readonly fieldSelector?: string | undefined;
  readonly labelSelector?: string | undefined;
}

export const FIELD_MANAGER = "wa-operator";

/** One request to the API server, for client-go's rest_client metrics. */
export type KubeRequestObserver = (request: { readonly method: string; readonly host: string; readonly code: string; readonly seconds: number }) => void;
/** A read is not retried after a longer Retry-After: the caller's own backoff takes over. */
export const KUBE_MAX_RETRY_WAIT_MS = 10_000;

/** Per-call options: a signal ends the call (and its retries) at once, e.g. at a renew deadline. */
export interface CallOptions {
  readonly signal?: AbortSignal;
}

export class KubeClient {
  readonly config: KubeConfig;
  /** The server's URL without a trailing slash: API paths go after it, keeping any path prefix it has. */
  private readonly server: string;
  /**
   * One pool of kept-alive connections for every request: a new TLS connection (its
   * SecureContext and handshake) costs more CPU than the request it carries.
   */
  private readonly agent: https.Agent;
  private readonly plainAgent: http.Agent;
  /**
   * Watches hold a connection each for minutes: a pool of their own, unbounded, so that
   * they never queue requests (or other watches) behind them. Kept alive, so a watch the
   * server ended (timeoutSeconds) starts again on the same connection.
   */
  private readonly watchAgent: https.Agent;
  private readonly plainWatchAgent: http.Agent;

  /** How long a watch waits for the API server's answer (its status line) before it fails. */
  private readonly watchAnswerTimeoutMs: number;

  /** Told of every request (not watches) once it is answered or failed: metrics. */
  private readonly observe: KubeRequestObserver | undefined;

  constructor(config: KubeConfig, options: { watchAnswerTimeoutMs?: number; observe?: KubeRequestObserver } = {}) {
    this.config = config;
    this.server = config.cluster.server.replace(/\/+$/, "");
    this.watchAnswerTimeoutMs = options.watchAnswerTimeoutMs ?? 30_000;
    this.observe = options.observe;
    // Through the kubeconfig's proxy-url, when it sets one.
    ({ https: this.agent, http: this.plainAgent } = serverAgents(config.cluster.proxyUrl, { keepAlive: true, maxSockets: 32 }));
    ({ https: this.watchAgent, http: this.plainWatchAgent } = serverAgents(config.cluster.proxyUrl, { keepAlive: true }));
  }

  /** Reports the answer's code (client-go's "<error>" when there was none) and how long it took. */
  private async observed<T extends { status: number }>(method: string, url: URL, answer: Promise<T>): Promise<T> {
    if (!this.observe) return answer;
    const started = performance.now();
    const report = (code: string) => this.observe?.({ method, host: url.host, code, seconds: (performance.now() - started) / 1000 });
    try {
      const result = await answer;
      report(String(result.status));
      return result;
    } catch (error) {
      report("<error>");
      throw error;
    }
  }

  async list<T extends KubeObject>(type: ResourceType, namespace?: string, labelSelector?: string, fieldSelector?: string): Promise<ObjectList<T>> {
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion = "";
    do {
      const page = await this.request<{ items: T[]; metadata: { resourceVersion: string; continue?: string } }>(
        "GET",
        collectionPath(type, namespace),
        { query: { limit: "500", continue: continueToken, labelSelector, fieldSelector } },
      );
      for (const item of page.items) items.push(withTypeMeta(item, type));
      resourceVersion = page.metadata.resourceVersion;
      continueToken = page.metadata.continue || undefined;
    } while (continueToken);
    return { items, resourceVersion };
  }

  /**
   * Watches a collection: onEvent gets each event as the API server sends it (ERROR events
   * too: a Status, e.g. 410 Gone). `done` is called exactly once: with undefined when the
   * server ended the watch or the caller aborted it, else with the error (a KubeError for
   * a non-2xx answer). Returns the controller that aborts it.
   */
  watch<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    query: WatchQuery,
    onEvent: (event: WatchEvent<T>) => void,
    done: (error: unknown) => void,
  ): AbortController {
    const path = collectionPath(type, namespace);
    const controller = new AbortController();
    let request: http.ClientRequest | undefined;
    let answerTimer: NodeJS.Timeout | undefined;
    let finished = false;
    /** keepConnection: the answer ended cleanly, so its connection goes back to the pool. */
    const finish = (error?: unknown, keepConnection = false) => {
      if (finished) return;
      finished = true;
      clearTimeout(answerTimer);
      controller.signal.removeEventListener("abort", onAbort);
      if (!keepConnection) request?.destroy();
      done(error);
    };
    const onAbort = () => finish();
    controller.signal.addEventListener("abort", onAbort);
    const deliver = (lines: string[]) => {
      for (const line of lines) {
        if (finished) return;
        let event: { type?: unknown; object?: unknown };
        try {
          event = JSON.parse(line) as typeof event;
        } catch {
          throw new Error(`the watch of ${path} sent a line that is not JSON`);
        }
        if (typeof event?.type !== "string" || typeof event.object !== "object" || event.object === null) {
          throw new Error(`the watch of ${path} sent something other than an event`);
        }
        const object = event.object as T;
        onEvent({ type: event.type as WatchEvent<T>["type"], object: event.type === "ERROR" ? object : withTypeMeta(object, type) });
      }
    };
    const open = (options: https.RequestOptions) => {
      if (finished) return;
      const url = this.url(path, { ...stringValues(query), watch: "1" });
      const secure = url.protocol === "https:";
      request = (secure ? https.request : http.request)(url, { ...options, agent: secure ? this.watchAgent : this.plainWatchAgent }, (res) => {
        clearTimeout(answerTimer);
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          readText(res).then((text) => finish(this.refusal("GET", path, status, text)), finish);
          return;
        }
        const lines = new LineSplitter();
        const guarded = (work: () => void) => {
          try {
            work();
          } catch (error) {
            finish(error);
          }
        };
        res.on("data", (chunk: Buffer) => guarded(() => deliver(lines.push(chunk))));
        res.on("end", () =>
          guarded(() => {
            deliver(lines.end());
            finish(undefined, true);
          }),
        );
        res.on("error", finish);
        res.on("close", () => finish(res.complete ? undefined : new Error(`the watch of ${path} was cut off`)));
      });
      request.on("error", finish);
      answerTimer = setTimeout(() => finish(new Error(`the watch of ${path} got no answer in ${this.watchAnswerTimeoutMs} ms`)), this.watchAnswerTimeoutMs);
      request.end();
    };
    this.requestOptions("GET").then(open).catch(finish);
    return controller;
  }

  async get<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string, call: CallOptions = {}): Promise<T> {
    return withTypeMeta(await this.request<T>("GET", objectPath(type, namespace, name), { ...call }), type);
  }

  /** Returns undefined for a missing object instead of throwing. */
  async find<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string, call: CallOptions = {}): Promise<T | undefined> {
    try {
      return await this.get<T>(type, namespace, name, call);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async create<T extends KubeObject>(type: ResourceType, namespace: string | undefined, body: unknown, call: CallOptions = {}): Promise<T> {
    return this.request<T>("POST", collectionPath(type, namespace), { body, query: { fieldManager: FIELD_MANAGER }, ...call });
  }

  async patch<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    body: unknown,
    patchType: PatchType = "merge",
    subresource?: "status",
  ): Promise<T> {
    const path = objectPath(type, namespace, name) + (subresource ? `/${subresource}` : "");
    return this.request<T>("PATCH", path, {
      body,
      contentType: PATCH_CONTENT_TYPES[patchType],
      query: { fieldManager: FIELD_MANAGER, ...(patchType === "apply" ? { force: "true" } : {}) },
    });
  }

  async replace<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string, body: unknown, call: CallOptions = {}): Promise<T> {
    return this.request<T>("PUT", objectPath(type, namespace, name), { body, query: { fieldManager: FIELD_MANAGER }, ...call });
  }

  /** Deletes; a missing object is success. */
  async delete(type: ResourceType, namespace: string | undefined, name: string, preconditions?: { uid?: string; resourceVersion?: string }): Promise<void> {
    try {
      await this.request("DELETE", objectPath(type, namespace, name), preconditions ? { body: { preconditions } } : {});
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /**
   * One API request. Reads are retried a few times on a dropped connection, 429 or 5xx
   * (an API server restarting or shedding load), after the server's Retry-After when it
   * sends one (kube-apiserver does with a 429 under API Priority and Fairness); writes are
   * not, since the caller's next pass decides afresh whether a write is still wanted. Nor is
   * a request whose credentials could not be had (a failed exec plugin, an unreadable token
   * file): kubectl gives up too. A Retry-After longer than KUBE_MAX_RETRY_WAIT_MS is the answer.
   */
  private request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    if (method !== "GET") return this.send<T>(method, path, options);
    return retry(() => this.send<T>(method, path, options), {
      retries: 3,
      backoff: { baseMs: 200, maxMs: 2000 },
      maxWaitMs: KUBE_MAX_RETRY_WAIT_MS,
      ...(options.signal ? { signal: options.signal } : {}),
      shouldRetry: (error) => (error instanceof KubeError ? error.status === 429 || error.status >= 500 : !(error instanceof KubeConfigError)),
      retryAfterMs: (error) => (error instanceof KubeError ? error.retryAfterMs : undefined),
    });
  }

  private async send<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = this.url(path, options.query ?? {});
    const requestOptions = await this.requestOptions(method);
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers = requestOptions.headers as Record<string, string>;
    if (payload) {
      headers["Content-Type"] = options.contentType ?? "application/json";
      headers["Content-Length"] = String(payload.length);
    }
    const send = url.protocol === "https:" ? https.request : http.request;
    const answer = new Promise<{ status: number; text: string; retryAfter: string | undefined }>((resolve, reject) => {
      const agent = url.protocol === "https:" ? this.agent : this.plainAgent;
      const req = send(url, { ...requestOptions, agent, timeout: 30_000, ...(options.signal ? { signal: options.signal } : {}) }, (res) => {
        readText(res).then((text) => resolve({ status: res.statusCode ?? 0, text, retryAfter: res.headers["retry-after"] }), reject);
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on("error", reject);
      req.end(payload);
    });
    const { status, text, retryAfter } = await this.observed(method, url, answer);
    if (status < 200 || status >= 300) throw this.refusal(method, path, status, text, parseRetryAfter(retryAfter, Date.now()));
    return parseBody(text) as T;
  }

  /** The URL of an API path: after the server's URL (and its path prefix, if any), with the query's set values. */
  private url(path: string, query: Record<string, string | undefined>): URL {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, value);
    return url;
  }

  /** Method, Accept and Authorization headers, and the TLS options, for one request. */
  private async requestOptions(method: string): Promise<https.RequestOptions> {
    const auth = await this.config.auth();
    const headers: http.OutgoingHttpHeaders = { Accept: "application/json" };
    if (auth.authorization) headers["Authorization"] = auth.authorization;
    Object.assign(headers, auth.impersonation);
    return { method, headers, ca: auth.ca, cert: auth.cert, key: auth.key, servername: auth.servername, rejectUnauthorized: auth.rejectUnauthorized };
  }

  /** The KubeError for a non-2xx answer; after a 401 the credentials are read (or the exec plugin run) afresh. */
  private refusal(method: string, path: string, status: number, text: string, retryAfterMs?: number): KubeError {
    if (status === 401) this.config.rejected();
    const parsed = parseBody(text);
    const statusBody = parsed as { message?: string; reason?: string } | undefined;
    return new KubeError(status, statusBody?.message ?? `${method} ${path} answered ${status}`, statusBody?.reason, parsed, retryAfterMs);
  }
}

function readText(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (chunk: Buffer) => chunks.push(chunk));
    res.on("error", reject);
    res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

/** JSON, else the text as is (a proxy's HTML error page); undefined for an empty body. */
function parseBody(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text;
  }
}

function stringValues(query: WatchQuery): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(query).map(([key, value]) => [key, value === undefined ? undefined : String(value)]));
}

interface RequestOptions extends CallOptions {
  readonly body?: unknown;
  readonly contentType?: string;
  readonly query?: Record<string, string | undefined>;
}

function withTypeMeta<T extends KubeObject>(object: T, type: ResourceType): T {
  if (object.kind && object.apiVersion) return object;
  return { ...object, apiVersion: type.group === "" ? type.version : `${type.group}/${type.version}`, kind: type.kind };
}
