/**
 * A loopback emulator of Wappfy: the instance API of its "Managing Instances" page
 * (/work/shared/providers/wappfy-instances.source.txt), plus what its public docs describe
 * (summarised in /work/shared/providers/README.md): the response envelope and error codes of
 * the "Response Format" page (docs.wappfy.io/response-format), the account webhooks of the
 * webhook guide (docs.wappfy.io/guides/webhooks) and API reference, and the rate limits.
 *
 * Time: every state change is a timer on `clock` (../shared/clock.ts). With a FakeClock,
 * `clock.advance(ms)` fires them synchronously; webhook deliveries are async, so
 * `await emulator.settleDeliveries()` before looking at a receiver.
 *
 * From the docs:
 * - Every answer is `{success, data, meta: {requestId, timestamp}}`, every error
 *   `{success: false, error: {code, message, details}, meta}` (response-format page).
 * - Lists are paginated: `data: {items, total, page, limit, totalPages}`, with `page` and
 *   `limit` query parameters (response-format page, "Paginated responses"); the default
 *   limit is the 20 of its example. The instances page shows a bare `data: [...]` instead:
 *   `listFormat: "bare"` serves that form.
 * - 409 PLAN_LIMIT_REACHED when the plan's instance limit is reached (response-format page,
 *   "Common error codes"); the limit itself is not published, so `maxInstances` sets it.
 * - Webhooks take exactly the 12 event names of the guide ("Wappfy supports 12 webhook event
 *   types"); `events` is required. The API reference lists `description` and `headers` too.
 *
 * Choices where the docs are silent (tests rely on them):
 * - A missing or unknown key is 401 UNAUTHORIZED, an unknown route 404 NOT_FOUND, a body
 *   that is not a JSON object 422 VALIDATION_ERROR (the instances page says 422).
 * - Instances are per key: another key's instance is 404 INSTANCE_NOT_FOUND, as the page says.
 *   Names need not be unique and take at most 100 characters (Wappfy publishes no limit).
 *   `type` defaults to waha. Creation answers 201.
 * - Status machine: connect moves created/disconnected/failed to starting, then after
 *   `startDelayMs` to connected (link kept) or scan_qr. In scan_qr the QR changes every
 *   `qrRotationMs`; when the `maxQrCodes`-th code expires unscanned the instance is failed.
 * - 409 ALREADY_IN_STATE: connect while starting/scan_qr/connected, disconnect while
 *   created/disconnected, logout when nothing is linked and no session runs. restart never
 *   conflicts: it boots again from any status, keeping the link. logout unlinks and stops.
 * - GET qr outside scan_qr: 409 INSTANCE_NOT_SCANNING (the page only says "once status is scan_qr").
 * - Rate limit: a fixed 60 s window per key, counted after authentication. Every counted
 *   answer carries X-RateLimit-Limit/Remaining/Reset (Reset in epoch seconds); beyond the
 *   limit 429 RATE_LIMIT_EXCEEDED with Retry-After in seconds.
 * - Webhook deliveries are `{event, instance_id, data, timestamp}` with headers X-Wappfy-Event
 *   and, when the webhook has a secret, X-Wappfy-Signature = hex HMAC-SHA256 of the raw body
 *   keyed by the secret (the docs only say "an HMAC of the body using secret"). Only the
 *   documented instance events are emitted (instance.connected, instance.disconnected,
 *   instance.qr). Each event is POSTed once: retry_count is stored, retries are not modelled.
 * - Deleting an instance removes the webhooks scoped to it ("all messages, webhooks and
 *   configuration associated with this instance will be permanently deleted").
 */
import { createHash, createHmac, randomBytes } from "node:crypto";
import { z } from "zod";
import { realClock, type Clock, type Timer } from "../shared/clock.ts";
import { postRaw, Router, type EmulatorRequest, type Reply } from "../shared/http.ts";
import { jsonBody, LoopbackEmulator } from "../shared/loopback-emulator.ts";
import { renderQrPng } from "../shared/qr-png.ts";

export const WAPPFY_STATUSES = ["created", "starting", "scan_qr", "connected", "disconnected", "failed"] as const;
export type WappfyEmulatorStatus = (typeof WAPPFY_STATUSES)[number];

/** The twelve event names of Wappfy's webhook guide ("Wappfy supports 12 webhook event types"). */
export const WAPPFY_GUIDE_EVENTS = [
  "message.received",
  "message.sent",
  "message.delivered",
  "message.read",
  "message.failed",
  "message.reaction",
  "instance.connected",
  "instance.disconnected",
  "instance.qr",
  "group.joined",
  "group.left",
  "contact.created",
] as const;

export interface WappfyEmulatorOptions {
  /** Valid X-Api-Key values; each is one account. Default ["wappfy-test-key"]. */
  readonly apiKeys?: readonly string[];
  readonly clock?: Clock;
  /** Time in `starting` before scan_qr or connected. Default 3000 (the page's example sleeps 3 s). */
  readonly startDelayMs?: number;
  /** How long one QR code lives. Default 60000 ("expires after approximately 60 seconds"). */
  readonly qrRotationMs?: number;
  /** Unscanned codes before the instance fails. Default 6. */
  readonly maxQrCodes?: number;
  /** Requests per key per minute. Default 100 (the docs' limit). */
  readonly requestsPerMinute?: number;
  /** The plan's instance limit per key; beyond it create answers 409 PLAN_LIMIT_REACHED. Default: none. */
  readonly maxInstances?: number;
  /** "paginated" (the response-format page, default) or "bare" (`data: [...]`, the instances page). */
  readonly listFormat?: "paginated" | "bare";
  /** Items per page when the request names no limit. Default 20 (the response-format example). */
  readonly pageSize?: number;
}

export interface WappfyInstanceSnapshot {
  readonly id: string;
  readonly name: string;
  readonly type: string;
  readonly status: WappfyEmulatorStatus;
  /** The linked phone, or undefined when nothing is linked. */
  readonly phone: string | undefined;
  /** How many QR codes the current scan_qr period has shown. */
  readonly qrCodesShown: number;
}

export interface WappfyWebhookSnapshot {
  readonly id: string;
  readonly url: string;
  readonly events: readonly string[];
  readonly instanceId: string | null;
  readonly secret: string | null;
  readonly description: string | null;
}

export interface WappfyDelivery {
  readonly webhookId: string;
  readonly url: string;
  readonly event: string;
  readonly instanceId: string;
  /** The exact bytes POSTed, to check signatures against. */
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The receiver's HTTP status once answered; undefined while in flight or when it failed. */
  status: number | undefined;
}

interface Instance {
  readonly id: string;
  readonly owner: string;
  readonly name: string;
  readonly type: string;
  readonly createdAt: string;
  /** Makes QR payloads differ between instances and runs. */
  readonly salt: string;
  status: WappfyEmulatorStatus;
  phone: string | undefined;
  qrCodesShown: number;
  timer: Timer | undefined;
}

interface Webhook {
  readonly id: string;
  readonly owner: string;
  readonly url: string;
  readonly events: readonly string[];
  readonly instanceId: string | null;
  readonly secret: string | null;
  readonly description: string | null;
  readonly retryCount: number;
  readonly timeoutMs: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly createdAt: string;
}

const RATE_WINDOW_MS = 60_000;

const createInstanceBody = z.object({
  name: z.string({ error: "name is required" }).trim().min(1, { error: "name is required" }).max(100),
  type: z.enum(["waha", "cloud_api"], { error: "type must be waha or cloud_api" }).default("waha"),
});

const createWebhookBody = z.object({
  url: z.url({ protocol: /^https?$/, error: "url must be an http(s) URL" }),
  events: z
    .array(z.string().refine((event) => (WAPPFY_GUIDE_EVENTS as readonly string[]).includes(event), { error: "unknown event" }))
    .min(1, { error: "events must name at least one event" }),
  instance_id: z.string().nullish(),
  secret: z.string().min(1).nullish(),
  description: z.string().max(500).nullish(),
  retry_count: z.int().min(0).max(5).default(3),
  timeout_ms: z.int().min(1000).max(30_000).default(5000),
  headers: z.record(z.string(), z.string()).default({}),
});

export class WappfyEmulator extends LoopbackEmulator {
  /** Every webhook POSTed, in the order sent. */
  readonly deliveries: WappfyDelivery[] = [];
  readonly clock: Clock;
  readonly #keys: ReadonlySet<string>;
  readonly #startDelayMs: number;
  readonly #qrRotationMs: number;
  readonly #maxQrCodes: number;
  readonly #requestsPerMinute: number;
  readonly #maxInstances: number;
  readonly #listFormat: "paginated" | "bare";
  readonly #pageSize: number;
  readonly #instances = new Map<string, Instance>();
  readonly #webhooks = new Map<string, Webhook>();
  readonly #windows = new Map<string, { start: number; count: number }>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #router = new Router();

  constructor(options: WappfyEmulatorOptions = {}) {
    super();
    this.clock = options.clock ?? realClock;
    this.#keys = new Set(options.apiKeys ?? ["wappfy-test-key"]);
    this.#startDelayMs = options.startDelayMs ?? 3000;
    this.#qrRotationMs = options.qrRotationMs ?? 60_000;
    this.#maxQrCodes = options.maxQrCodes ?? 6;
    this.#requestsPerMinute = options.requestsPerMinute ?? 100;
    this.#maxInstances = options.maxInstances ?? Number.POSITIVE_INFINITY;
    this.#listFormat = options.listFormat ?? "paginated";
    this.#pageSize = options.pageSize ?? 20;
    this.#router
      .add("GET", "/api/instances", (req) => this.#listInstances(req))
      .add("POST", "/api/instances", (req) => this.#createInstance(req))
      .add("GET", "/api/instances/{id}/status", (req) => this.#withInstance(req, (i) => ok(statusView(i))))
      .add("GET", "/api/instances/{id}/qr", (req) => this.#withInstance(req, (i) => this.#qr(i)))
      .add("POST", "/api/instances/{id}/connect", (req) => this.#withInstance(req, (i) => this.#connect(i)))
      .add("POST", "/api/instances/{id}/disconnect", (req) => this.#withInstance(req, (i) => this.#disconnect(i)))
      .add("POST", "/api/instances/{id}/restart", (req) => this.#withInstance(req, (i) => this.#restart(i)))
      .add("POST", "/api/instances/{id}/logout", (req) => this.#withInstance(req, (i) => this.#logout(i)))
      .add("DELETE", "/api/instances/{id}", (req) => this.#withInstance(req, (i) => this.#deleteInstance(i)))
      .add("GET", "/api/webhooks", (req) => this.#listWebhooks(req))
      .add("POST", "/api/webhooks", (req) => this.#createWebhook(req))
      .add("DELETE", "/api/webhooks/{id}", (req) => this.#deleteWebhook(req));
  }

  override async stop(): Promise<void> {
    for (const instance of this.#instances.values()) instance.timer?.cancel();
    await this.settleDeliveries();
    await super.stop();
  }

  /** Resolves once every webhook POSTed so far has been answered (or failed). */
  async settleDeliveries(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  /** The instance as the emulator holds it, or undefined when there is none. */
  instance(id: string): WappfyInstanceSnapshot | undefined {
    const instance = this.#instances.get(id);
    if (!instance) return undefined;
    const { name, type, status, phone, qrCodesShown } = instance;
    return { id, name, type, status, phone, qrCodesShown };
  }

  /** Every instance, in creation order. */
  instances(): WappfyInstanceSnapshot[] {
    return [...this.#instances.keys()].flatMap((id) => this.instance(id) ?? []);
  }

  /** Every account webhook of every key, in creation order (secrets included: it is a test double). */
  webhooks(): WappfyWebhookSnapshot[] {
    return [...this.#webhooks.values()].map(({ id, url, events, instanceId, secret, description }) => ({ id, url, events, instanceId, secret, description }));
  }

  /** The payload of the QR the instance shows right now, or undefined outside scan_qr. */
  currentQr(id: string): string | undefined {
    const instance = this.#instances.get(id);
    if (instance?.status !== "scan_qr") return undefined;
    const ref = createHash("sha256").update(`${instance.salt}:${instance.qrCodesShown}`).digest("base64url").slice(0, 32);
    return `2@${ref},wappfy-emulator,${instance.qrCodesShown}`;
  }

  /** The phone scans the current QR: the instance is linked to `phone` and connected. */
  scan(id: string, phone: string): void {
    const instance = this.#hooked(id);
    if (instance.status !== "scan_qr") throw new Error(`instance ${id} shows no QR (status ${instance.status})`);
    instance.phone = phone;
    this.#become(instance, "connected");
  }

  /** The session drops on its own (network, phone off): disconnected, link kept. */
  dropConnection(id: string): void {
    const instance = this.#hooked(id);
    if (instance.status !== "connected") throw new Error(`instance ${id} is not connected (status ${instance.status})`);
    this.#become(instance, "disconnected");
  }

  protected unavailableReply(): Reply {
    return fail(503, "SERVICE_UNAVAILABLE", "Service temporarily unavailable");
  }

  protected async handle(req: EmulatorRequest): Promise<Reply> {
    const key = apiKeyOf(req);
    if (key === undefined || !this.#keys.has(key)) return fail(401, "UNAUTHORIZED", "Invalid or missing API key");
    const window = this.#count(key);
    const rateHeaders = {
      "X-RateLimit-Limit": String(this.#requestsPerMinute),
      "X-RateLimit-Remaining": String(Math.max(0, this.#requestsPerMinute - window.count)),
      "X-RateLimit-Reset": String(Math.ceil((window.start + RATE_WINDOW_MS) / 1000)),
    };
    if (window.count > this.#requestsPerMinute) {
      const retryAfterS = Math.max(1, Math.ceil((window.start + RATE_WINDOW_MS - this.clock.now()) / 1000));
      const reply = fail(429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded, try again later");
      return { ...reply, headers: { ...rateHeaders, "Retry-After": String(retryAfterS) } };
    }
    const match = this.#router.match(req.method, req.path);
    const reply = match.route ? await match.route.handler({ ...req, params: match.params }) : fail(404, "NOT_FOUND", "Route not found");
    return { ...reply, headers: { ...reply.headers, ...rateHeaders } };
  }

  /** Fixed one-minute windows per key, on the emulator's clock. */
  #count(key: string): { start: number; count: number } {
    const now = this.clock.now();
    let window = this.#windows.get(key);
    if (!window || now >= window.start + RATE_WINDOW_MS) {
      window = { start: now, count: 0 };
      this.#windows.set(key, window);
    }
    window.count += 1;
    return window;
  }

  #listInstances(req: EmulatorRequest): Reply {
    const own = [...this.#instances.values()].filter((instance) => instance.owner === apiKeyOf(req));
    return this.#list(req, own.map(({ id, name, type, status }) => ({ id, name, type, status })));
  }

  #createInstance(req: EmulatorRequest): Reply {
    const body = createInstanceBody.safeParse(jsonBody(req));
    if (!body.success) return validationError(body.error);
    const owner = apiKeyOf(req) ?? "";
    if ([...this.#instances.values()].filter((instance) => instance.owner === owner).length >= this.#maxInstances) {
      return fail(409, "PLAN_LIMIT_REACHED", `Your plan allows ${this.#maxInstances} instances`);
    }
    const instance: Instance = {
      id: `inst_${randomBytes(6).toString("hex")}`,
      owner,
      name: body.data.name,
      type: body.data.type,
      createdAt: new Date(this.clock.now()).toISOString(),
      salt: randomBytes(8).toString("hex"),
      status: "created",
      phone: undefined,
      qrCodesShown: 0,
      timer: undefined,
    };
    this.#instances.set(instance.id, instance);
    const { id, name, type, status, createdAt } = instance;
    return ok({ id, name, type, status, created_at: createdAt }, 201);
  }

  #withInstance(req: EmulatorRequest, action: (instance: Instance) => Reply | Promise<Reply>): Reply | Promise<Reply> {
    const instance = this.#instances.get(req.params["id"] ?? "");
    if (!instance || instance.owner !== apiKeyOf(req)) return fail(404, "INSTANCE_NOT_FOUND", "Instance not found");
    return action(instance);
  }

  async #qr(instance: Instance): Promise<Reply> {
    const payload = this.currentQr(instance.id);
    if (payload === undefined) return fail(409, "INSTANCE_NOT_SCANNING", `No QR code while the instance is ${instance.status}`);
    const png = await renderQrPng(payload);
    return ok({ qr: `data:image/png;base64,${png.toString("base64")}` });
  }

  #connect(instance: Instance): Reply {
    if (instance.status === "starting" || instance.status === "scan_qr" || instance.status === "connected") {
      return alreadyIn(instance);
    }
    this.#boot(instance);
    return ok(statusView(instance));
  }

  #disconnect(instance: Instance): Reply {
    if (instance.status === "created" || instance.status === "disconnected") return alreadyIn(instance);
    this.#become(instance, "disconnected");
    return ok(statusView(instance));
  }

  #restart(instance: Instance): Reply {
    this.#boot(instance);
    return ok(statusView(instance));
  }

  #logout(instance: Instance): Reply {
    const sessionRuns = instance.status === "starting" || instance.status === "scan_qr" || instance.status === "connected";
    if (instance.phone === undefined && !sessionRuns) return alreadyIn(instance);
    instance.phone = undefined;
    if (instance.status === "disconnected") return ok(statusView(instance));
    this.#become(instance, "disconnected");
    return ok(statusView(instance));
  }

  #deleteInstance(instance: Instance): Reply {
    instance.timer?.cancel();
    this.#instances.delete(instance.id);
    for (const webhook of [...this.#webhooks.values()]) {
      if (webhook.instanceId === instance.id) this.#webhooks.delete(webhook.id);
    }
    return ok({ id: instance.id, deleted: true });
  }

  #listWebhooks(req: EmulatorRequest): Reply {
    const own = [...this.#webhooks.values()].filter((webhook) => webhook.owner === apiKeyOf(req));
    return this.#list(req, own.map((webhook) => ({ ...webhookView(webhook), secret: webhook.secret, headers: webhook.headers })));
  }

  #createWebhook(req: EmulatorRequest): Reply {
    const body = createWebhookBody.safeParse(jsonBody(req));
    if (!body.success) return validationError(body.error);
    const owner = apiKeyOf(req) ?? "";
    const instanceId = body.data.instance_id ?? null;
    if (instanceId !== null && this.#instances.get(instanceId)?.owner !== owner) {
      return fail(404, "INSTANCE_NOT_FOUND", "Instance not found");
    }
    const webhook: Webhook = {
      id: `wh_${randomBytes(6).toString("hex")}`,
      owner,
      url: body.data.url,
      events: body.data.events,
      instanceId,
      secret: body.data.secret ?? null,
      description: body.data.description ?? null,
      retryCount: body.data.retry_count,
      timeoutMs: body.data.timeout_ms,
      headers: body.data.headers,
      createdAt: new Date(this.clock.now()).toISOString(),
    };
    this.#webhooks.set(webhook.id, webhook);
    return ok(webhookView(webhook), 201);
  }

  #deleteWebhook(req: EmulatorRequest): Reply {
    const webhook = this.#webhooks.get(req.params["id"] ?? "");
    if (!webhook || webhook.owner !== apiKeyOf(req)) return fail(404, "WEBHOOK_NOT_FOUND", "Webhook not found");
    this.#webhooks.delete(webhook.id);
    return ok({ id: webhook.id, deleted: true });
  }

  /** One page of a list, in the form the emulator serves (`page` from 1, `limit` up to 100). */
  #list(req: EmulatorRequest, items: readonly unknown[]): Reply {
    if (this.#listFormat === "bare") return ok(items);
    const page = positiveInt(req.query.get("page")) ?? 1;
    const limit = Math.min(100, positiveInt(req.query.get("limit")) ?? this.#pageSize);
    const totalPages = Math.max(1, Math.ceil(items.length / limit));
    return ok({ items: items.slice((page - 1) * limit, page * limit), total: items.length, page, limit, totalPages });
  }

  /** starting, then connected when a link exists, scan_qr otherwise. */
  #boot(instance: Instance): void {
    this.#become(instance, "starting");
    instance.timer = this.clock.schedule(this.#startDelayMs, () => {
      instance.timer = undefined;
      if (instance.phone !== undefined) {
        this.#become(instance, "connected");
        return;
      }
      this.#become(instance, "scan_qr");
      this.#showNextQr(instance);
    });
  }

  #showNextQr(instance: Instance): void {
    instance.qrCodesShown += 1;
    this.#emit(instance, "instance.qr");
    instance.timer = this.clock.schedule(this.#qrRotationMs, () => {
      instance.timer = undefined;
      if (instance.qrCodesShown >= this.#maxQrCodes) this.#become(instance, "failed");
      else this.#showNextQr(instance);
    });
  }

  /** Every status change goes through here: it stops pending timers and emits the event. */
  #become(instance: Instance, status: WappfyEmulatorStatus): void {
    instance.timer?.cancel();
    instance.timer = undefined;
    instance.status = status;
    instance.qrCodesShown = 0;
    const event = STATUS_EVENTS[status];
    if (event) this.#emit(instance, event);
  }

  #emit(instance: Instance, event: string): void {
    for (const webhook of this.#webhooks.values()) {
      const scoped = webhook.instanceId === null || webhook.instanceId === instance.id;
      if (webhook.owner === instance.owner && scoped && webhook.events.includes(event)) this.#deliver(webhook, event, instance);
    }
  }

  #deliver(webhook: Webhook, event: string, instance: Instance): void {
    const body = JSON.stringify({
      event,
      instance_id: instance.id,
      data: { id: instance.id, name: instance.name, status: instance.status, phone_number: instance.phone ?? null },
      timestamp: new Date(this.clock.now()).toISOString(),
    });
    const headers: Record<string, string> = { ...webhook.headers, "Content-Type": "application/json", "X-Wappfy-Event": event };
    if (webhook.secret !== null) headers["X-Wappfy-Signature"] = signWappfyBody(body, webhook.secret);
    const delivery: WappfyDelivery = { webhookId: webhook.id, url: webhook.url, event, instanceId: instance.id, body, headers, status: undefined };
    this.deliveries.push(delivery);
    const sent = postRaw(webhook.url, headers, Buffer.from(body), webhook.timeoutMs).then((result) => {
      delivery.status = result.status;
      this.#inFlight.delete(sent);
    });
    this.#inFlight.add(sent);
  }

  #hooked(id: string): Instance {
    const instance = this.#instances.get(id);
    if (!instance) throw new Error(`the emulator has no instance ${id}`);
    return instance;
  }
}

/** X-Wappfy-Signature: hex HMAC-SHA256 of the raw body, keyed by the webhook's secret. */
export function signWappfyBody(body: string | Buffer, secret: string): string {
  return createHmac("sha256", secret).update(body).digest("hex");
}

/** The documented events a status change emits; scan_qr emits instance.qr per code instead. */
const STATUS_EVENTS: Readonly<Partial<Record<WappfyEmulatorStatus, string>>> = {
  connected: "instance.connected",
  disconnected: "instance.disconnected",
};

function apiKeyOf(req: EmulatorRequest): string | undefined {
  const value = req.headers["x-api-key"];
  return Array.isArray(value) ? value[0] : value;
}

function statusView(instance: Instance): Record<string, unknown> {
  return { id: instance.id, status: instance.status, phone_number: instance.phone ?? null };
}

function webhookView(webhook: Webhook): Record<string, unknown> {
  return {
    id: webhook.id,
    url: webhook.url,
    events: webhook.events,
    instance_id: webhook.instanceId,
    description: webhook.description,
    is_active: true,
    retry_count: webhook.retryCount,
    timeout_ms: webhook.timeoutMs,
    created_at: webhook.createdAt,
    updated_at: webhook.createdAt,
  };
}

function ok(data: unknown, status = 200): Reply {
  return { status, body: { success: true, data, meta: meta() } };
}

function fail(status: number, code: string, message: string): Reply {
  return { status, body: { success: false, error: { code, message, details: {} }, meta: meta() } };
}

/** The response-format page's `meta`; the timestamp is wall time, which no test reads. */
function meta(): Record<string, string> {
  return { requestId: `req_${randomBytes(6).toString("hex")}`, timestamp: new Date().toISOString() };
}

function positiveInt(value: string | null): number | undefined {
  const parsed = Number(value);
  return value !== null && Number.isInteger(parsed) && parsed >= 1 ? parsed : undefined;
}

function alreadyIn(instance: Instance): Reply {
  return fail(409, "ALREADY_IN_STATE", `Instance is already ${instance.status}`);
}

function validationError(error: z.ZodError): Reply {
  const issue = error.issues[0];
  const field = issue && issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
  return fail(422, "VALIDATION_ERROR", `${field}${issue?.message ?? "invalid body"}`);
}
