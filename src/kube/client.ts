/**
 * The operator's door to the API server: a few generic verbs over @kubernetes/client-node's
 * configuration, authentication and Watch. Generic because the operator handles its own
 * CRDs, Secrets, Events and Leases alike, and one error type (KubeError) is easier to
 * reason about than each generated API's.
 */
import { type KubeConfig, Watch } from "@kubernetes/client-node";
import https from "node:https";
import http from "node:http";
import pRetry from "p-retry";
import { collectionPath, objectPath, type KubeObject, type ResourceType } from "./resources.ts";

export class KubeError extends Error {
  readonly status: number;
  readonly reason: string | undefined;
  readonly body: unknown;

  constructor(status: number, message: string, reason?: string, body?: unknown) {
    super(message);
    this.name = "KubeError";
    this.status = status;
    this.reason = reason;
    this.body = body;
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

export const FIELD_MANAGER = "wa-operator";

/** Per-call options: a signal ends the call (and its retries) at once, e.g. at a renew deadline. */
export interface CallOptions {
  readonly signal?: AbortSignal;
}

export class KubeClient {
  readonly config: KubeConfig;
  private readonly server: URL;
  private readonly watcher: Watch;

  constructor(config: KubeConfig) {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error("the kubeconfig names no current cluster");
    this.config = config;
    this.server = new URL(cluster.server);
    this.watcher = new Watch(config);
  }

  async list<T extends KubeObject>(type: ResourceType, namespace?: string, labelSelector?: string): Promise<ObjectList<T>> {
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion = "";
    do {
      const page = await this.request<{ items: T[]; metadata: { resourceVersion: string; continue?: string } }>(
        "GET",
        collectionPath(type, namespace),
        { query: { limit: "500", continue: continueToken, labelSelector } },
      );
      for (const item of page.items) items.push(withTypeMeta(item, type));
      resourceVersion = page.metadata.resourceVersion;
      continueToken = page.metadata.continue || undefined;
    } while (continueToken);
    return { items, resourceVersion };
  }

  /**
   * Watches from resourceVersion. `done` is called once when the watch ends, with the
   * error if it failed. Returns the controller that aborts it.
   */
  watch<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    resourceVersion: string,
    onEvent: (event: WatchEvent<T>) => void,
    done: (error: unknown) => void,
  ): Promise<AbortController> {
    return this.watcher.watch(
      collectionPath(type, namespace),
      { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 240 + Math.floor(Math.random() * 120) },
      (phase: string, object: T) => onEvent({ type: phase as WatchEvent<T>["type"], object: phase === "ERROR" ? object : withTypeMeta(object, type) }),
      done,
    );
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
   * (an API server restarting or shedding load); writes are not, since the caller's next
   * pass decides afresh whether a write is still wanted.
   */
  private request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    if (method !== "GET") return this.send<T>(method, path, options);
    return pRetry(() => this.send<T>(method, path, options), {
      retries: 3,
      minTimeout: 200,
      maxTimeout: 2000,
      ...(options.signal ? { signal: options.signal } : {}),
      shouldRetry: ({ error }) => !(error instanceof KubeError) || error.status === 429 || error.status >= 500,
    });
  }

  private async send<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(path, this.server);
    for (const [key, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(key, value);
    const requestOptions: https.RequestOptions = { method, headers: { Accept: "application/json" } };
    await this.config.applyToHTTPSOptions(requestOptions);
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers = requestOptions.headers as Record<string, string>;
    if (payload) {
      headers["Content-Type"] = options.contentType ?? "application/json";
      headers["Content-Length"] = String(payload.length);
    }
    const send = url.protocol === "https:" ? https.request : http.request;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = send(url, { ...requestOptions, timeout: 30_000, ...(options.signal ? { signal: options.signal } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on("error", reject);
      req.end(payload);
    });
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (status < 200 || status >= 300) {
      const statusBody = parsed as { message?: string; reason?: string } | undefined;
      throw new KubeError(status, statusBody?.message ?? `${method} ${path} answered ${status}`, statusBody?.reason, parsed);
    }
    return parsed as T;
  }
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
