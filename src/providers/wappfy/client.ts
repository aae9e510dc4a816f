/**
 * Wappfy (managed gateway): instances under /api/instances, account webhooks under
 * /api/webhooks, header `X-Api-Key`, every body wrapped in `{"data": ...}`.
 *
 * The client is stateless: it reports what Wappfy says. In particular Wappfy reads
 * `disconnected` both after a disconnect and after a logout; only the controller, which
 * knows which one it asked for, can report LoggedOut (see states.ts).
 */
import { z } from "zod";
import { ProviderError, isProviderError, redactSecrets, shortenMessage } from "../errors.ts";
import { pngFromDataUrl } from "../qr.ts";
import { ProviderHttp, classifyByStatus, readErrorBody, type HttpRequest, type HttpResponse } from "../http.ts";
import type {
  HealthReport,
  InstanceRef,
  ObservedSession,
  ProviderCapabilities,
  ProviderClient,
  ProviderDeps,
  ProviderFactory,
  ProviderSettings,
  QrCode,
  WebhookTarget,
} from "../types.ts";
import { wappfyState } from "./states.ts";

/**
 * The event names spec.webhook.events may hold for Wappfy: the twelve of Wappfy's webhook
 * guide, then the lifecycle and message names its API also delivers.
 */
export const WAPPFY_WEBHOOK_EVENTS = [
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
  "instance.failed",
  "instance.created",
  "instance.deleted",
  "message",
  "message.any",
  "message.ack",
] as const;

/** Everything but pairing codes and a version report; webhooks are signed with the key we give. */
export const wappfyCapabilities: ProviderCapabilities = {
  qr: true,
  pairingCode: false,
  disconnect: true,
  restart: true,
  logout: true,
  webhook: true,
  webhookEvents: WAPPFY_WEBHOOK_EVENTS,
  webhookSigning: true,
  version: false,
};

/** "The QR code expires after approximately 60 seconds" (Wappfy's instances page). */
const QR_VALID_FOR_MS = 60_000;

/**
 * The Wappfy instance name of a WhatsAppInstance. Wappfy has no metadata to record our
 * uid, so this name is how an instance is found again when its id was never written to
 * status (a crash between create and the status update): it must be deterministic.
 */
export function wappfyInstanceName(ref: Pick<InstanceRef, "namespace" | "name">): string {
  return `${ref.namespace}-${ref.name}`;
}

const envelope = <S extends z.ZodType>(payload: S) => z.object({ data: payload });

const instanceSchema = z.object({ id: z.string().min(1), name: z.string(), status: z.string() });
const statusSchema = z.object({ id: z.string().min(1), status: z.string(), phone_number: z.string().nullish() });
const qrSchema = z.object({ qr: z.string() });
const webhookSchema = z.object({
  id: z.string().min(1),
  url: z.string(),
  events: z.array(z.string()),
  instance_id: z.string().nullish(),
  /** Listed by Wappfy's API reference; when absent we cannot compare the key. */
  secret: z.string().nullish(),
  is_active: z.boolean().optional(),
});
type Webhook = z.output<typeof webhookSchema>;
/** The guide wraps the list in `data`, the API reference shows a bare array: accept both. */
const webhookListSchema = z.union([envelope(z.array(webhookSchema)), z.array(webhookSchema).transform((data) => ({ data }))]);
/** Action answers are not documented beyond connect; an empty body is fine too. */
const actionSchema = z.union([z.null(), z.object({ data: z.unknown() })]);
const errorBodySchema = z.object({
  error: z.object({ code: z.string().optional(), message: z.string().optional() }),
});

type LifecycleAction = "connect" | "disconnect" | "restart" | "logout";

class WappfyClient implements ProviderClient {
  readonly type = "wappfy" as const;
  readonly capabilities = wappfyCapabilities;
  readonly #http: ProviderHttp;
  readonly #apiKey: string | undefined;
  readonly #now: () => number;

  constructor(settings: ProviderSettings, deps: ProviderDeps) {
    this.#apiKey = settings.apiKey;
    this.#now = deps.now ?? Date.now;
    this.#http = ProviderHttp.forProvider(settings, deps, (response) => this.#classify(response));
  }

  async checkHealth(): Promise<HealthReport> {
    await this.#json({ method: "GET", path: "/api/instances" }, envelope(z.array(instanceSchema)));
    return {};
  }

  async observe(ref: InstanceRef): Promise<ObservedSession | null> {
    const id = ref.providerInstanceId ?? (await this.#findIdByName(wappfyInstanceName(ref)));
    if (id === undefined) return null;
    let status: z.output<typeof statusSchema>;
    try {
      status = (await this.#json({ method: "GET", path: instancePath(id, "status") }, envelope(statusSchema))).data;
    } catch (error) {
      if (isProviderError(error, "NotFound")) return null;
      throw error;
    }
    const phoneNumber = digitsOnly(status.phone_number);
    return {
      id: status.id,
      ...wappfyState(status.status),
      ...(phoneNumber ? { phoneNumber } : {}),
      webhookInSync: await this.#webhookInSync(ref, status.id),
    };
  }

  async create(ref: InstanceRef): Promise<ObservedSession> {
    const body = { name: wappfyInstanceName(ref), type: ref.wappfy?.type ?? "waha" };
    const { data } = await this.#json({ method: "POST", path: "/api/instances", json: body }, envelope(instanceSchema));
    // A new instance has no webhook yet.
    return { id: data.id, ...wappfyState(data.status), webhookInSync: webhookTargets(ref).length > 0 ? false : undefined };
  }

  connect(_ref: InstanceRef, id: string): Promise<void> {
    return this.#lifecycle(id, "connect");
  }

  disconnect(_ref: InstanceRef, id: string): Promise<void> {
    return this.#lifecycle(id, "disconnect");
  }

  restart(_ref: InstanceRef, id: string): Promise<void> {
    return this.#lifecycle(id, "restart");
  }

  logout(_ref: InstanceRef, id: string): Promise<void> {
    return this.#lifecycle(id, "logout");
  }

  async remove(_ref: InstanceRef, id: string): Promise<void> {
    try {
      await this.#json({ method: "DELETE", path: instancePath(id) }, actionSchema);
    } catch (error) {
      if (isProviderError(error, "NotFound")) return;
      throw error;
    }
  }

  async fetchQr(_ref: InstanceRef, id: string): Promise<QrCode | null> {
    // Wappfy serves a QR only in scan_qr; asking first keeps "no QR now" apart from errors.
    const { data: status } = await this.#json({ method: "GET", path: instancePath(id, "status") }, envelope(statusSchema));
    if (wappfyState(status.status).phase !== "ScanQR") return null;
    let qr: string;
    try {
      qr = (await this.#json({ method: "GET", path: instancePath(id, "qr") }, envelope(qrSchema))).data.qr;
    } catch (error) {
      if (isProviderError(error) && STATE_REFUSALS.has(error.status ?? 0)) {
        throw new ProviderError("WrongState", "wappfy stopped offering a QR code between two calls; look again", {
          cause: error,
          ...(error.status === undefined ? {} : { status: error.status }),
        });
      }
      throw error;
    }
    return { png: pngFromDataUrl("wappfy", qr), validForMs: QR_VALID_FOR_MS };
  }

  requestPairingCode(): Promise<string> {
    return Promise.reject(new ProviderError("Rejected", "wappfy cannot link with a pairing code"));
  }

  /**
   * Our wiring is every account webhook scoped to this instance: the instance is ours, so
   * its webhooks are too. The new webhook is created before stale ones are deleted, so a
   * change never leaves a gap (a receiver may see one event twice instead).
   */
  async configureWebhook(ref: InstanceRef, id: string): Promise<void> {
    const ours = (await this.#listWebhooks()).filter((webhook) => webhook.instance_id === id);
    const keep = new Set<Webhook>();
    for (const target of webhookTargets(ref)) {
      const existing = ours.find((webhook) => webhookMatches(webhook, target));
      if (existing) {
        keep.add(existing);
        continue;
      }
      const body = { url: target.url, events: effectiveEvents(target), instance_id: id, ...(target.hmacKey ? { secret: target.hmacKey } : {}) };
      await this.#json({ method: "POST", path: "/api/webhooks", json: body }, envelope(webhookSchema));
    }
    for (const stale of ours.filter((webhook) => !keep.has(webhook))) {
      try {
        await this.#json({ method: "DELETE", path: `/api/webhooks/${encodeURIComponent(stale.id)}` }, actionSchema);
      } catch (error) {
        if (!isProviderError(error, "NotFound")) throw error;
      }
    }
  }

  async #lifecycle(id: string, action: LifecycleAction): Promise<void> {
    try {
      await this.#json({ method: "POST", path: instancePath(id, action) }, actionSchema);
    } catch (error) {
      // 409: "already in the requested state", which is what we asked for.
      if (isProviderError(error, "Conflict")) return;
      throw error;
    }
  }

  /** When several instances carry the name (made by hand), the first listed is taken. */
  async #findIdByName(name: string): Promise<string | undefined> {
    const { data } = await this.#json({ method: "GET", path: "/api/instances" }, envelope(z.array(instanceSchema)));
    return data.find((instance) => instance.name === name)?.id;
  }

  async #listWebhooks(): Promise<Webhook[]> {
    return (await this.#json({ method: "GET", path: "/api/webhooks" }, webhookListSchema)).data;
  }

  /** In sync means our webhooks are exactly the wanted ones: the user's and the operator's receiver. */
  async #webhookInSync(ref: InstanceRef, id: string): Promise<boolean | undefined> {
    const targets = webhookTargets(ref);
    if (targets.length === 0) return undefined;
    const ours = (await this.#listWebhooks()).filter((webhook) => webhook.instance_id === id);
    return ours.length === targets.length && targets.every((target) => ours.some((webhook) => webhookMatches(webhook, target)));
  }

  #json<S extends z.ZodType>(request: HttpRequest, schema: S): Promise<z.output<S>> {
    if (!this.#apiKey) {
      return Promise.reject(new ProviderError("InvalidCredentials", "wappfy needs an API key: set credentialsSecretRef on the provider"));
    }
    return this.#http.json({ ...request, headers: { "X-Api-Key": this.#apiKey } }, schema);
  }

  /** Wappfy errors read `{"error": {"code", "message"}}`; the kind comes from the status alone. */
  #classify(response: HttpResponse): ProviderError {
    const body = errorBodySchema.safeParse(readErrorBody(response));
    const code = body.success ? body.data.error.code : undefined;
    const detail = body.success ? body.data.error.message : undefined;
    // Provider text goes into conditions: never let it echo our key.
    const message = detail ? shortenMessage(redactSecrets(detail, [this.#apiKey])) : (STATUS_MEANINGS[response.status] ?? "request failed");
    return classifyByStatus("wappfy", response, message, { now: this.#now(), ...(code ? { code } : {}) });
  }
}

/** What Wappfy's page says each error status means, for answers without a message. */
const STATUS_MEANINGS: Readonly<Record<number, string>> = {
  401: "the API key was refused",
  404: "instance not found or not owned by this API key",
  409: "already in the requested state",
  422: "invalid request body",
  429: "rate limit exceeded",
};

/** How a provider may refuse a QR once the instance left scan_qr: not a fault, just too late. */
const STATE_REFUSALS: ReadonlySet<number> = new Set([400, 409, 422]);

function instancePath(id: string, action?: string): string {
  const base = `/api/instances/${encodeURIComponent(id)}`;
  return action ? `${base}/${action}` : base;
}

function digitsOnly(phone: string | null | undefined): string | undefined {
  const digits = phone?.replace(/\D/g, "");
  return digits ? digits : undefined;
}

/** The lifecycle events the operator's own receiver listens to. */
const LIFECYCLE_EVENTS = ["instance.connected", "instance.disconnected", "instance.qr"];

/** Webhooks this instance should have: spec.webhook and, when the provider asks for it, the operator's receiver. */
function webhookTargets(ref: InstanceRef): WebhookTarget[] {
  const targets: WebhookTarget[] = ref.webhook ? [ref.webhook] : [];
  if (ref.providerEvents) {
    // The instance rides in the URL: an event can arrive before our status records Wappfy's id.
    const url = `${ref.providerEvents.url}?instance=${encodeURIComponent(`${ref.namespace}/${ref.name}`)}`;
    targets.push({ url, events: LIFECYCLE_EVENTS, hmacKey: ref.providerEvents.hmacKey });
  }
  return targets;
}

/** Wappfy requires at least one event; an empty list in the spec means "everything we know". */
function effectiveEvents(target: WebhookTarget): readonly string[] {
  return target.events.length > 0 ? target.events : WAPPFY_WEBHOOK_EVENTS;
}

function webhookMatches(webhook: Webhook, target: WebhookTarget): boolean {
  if (webhook.url !== target.url || webhook.is_active === false) return false;
  const wanted = new Set(effectiveEvents(target));
  const actual = new Set(webhook.events);
  if (wanted.size !== actual.size || [...wanted].some((event) => !actual.has(event))) return false;
  // A listing without the secret cannot show a stale key; one with it must carry ours.
  return webhook.secret === undefined || (webhook.secret ?? undefined) === target.hmacKey;
}

/** A stateless client for one Wappfy account (settings.apiKey is its X-Api-Key). */
export const createWappfyClient: ProviderFactory = (settings, deps) => new WappfyClient(settings, deps);
