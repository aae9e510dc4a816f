/**
 * Wappfy (managed gateway): instances under /api/instances, account webhooks under
 * /api/webhooks, header `X-Api-Key`, every body wrapped in `{"data": ...}`.
 *
 * The client is stateless: it reports what Wappfy says. In particular Wappfy reads
 * `disconnected` both after a disconnect and after a logout; only the controller, which
 * knows which one it asked for, can report LoggedOut (see states.ts).
 */
import { signedHintQuery } from "../event-hint.ts";
import { z } from "zod";
import { ProviderError, isProviderError, redactSecrets, shortenMessage } from "../errors.ts";
import { ownedLabel, ownerOfLabel } from "../owner-label.ts";
import { pngFromDataUrl } from "../qr.ts";
import { ProviderHttp, classifyByStatus, readErrorBody, type HttpRequest, type HttpResponse } from "../transport/http.ts";
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
 * The event names spec.webhook.events may hold for Wappfy: the twelve its webhook guide
 * documents ("Wappfy supports 12 webhook event types", docs.wappfy.io/guides/webhooks).
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
 * The Wappfy instance name of a WhatsAppInstance: `<namespace>.<name> [<uid>]`. Wappfy has
 * no metadata to record our uid, so the name carries it (owner-label.ts): it is how an
 * instance is found again when its id never reached status (a crash between create and
 * the status update), and the proof that the operator created it. `.` cannot occur in a
 * namespace, so the readable part alone already tells `a-b/c` from `a/b-c`; Wappfy
 * documents no rule on names beyond "required" (its examples hold spaces).
 */
export function wappfyInstanceName(ref: Pick<InstanceRef, "namespace" | "name" | "uid">): string {
  // The uid alone makes the name unique, so a long readable part may be cut: Wappfy
  // publishes no length limit, and this keeps names within 100 characters.
  return ownedLabel(`${ref.namespace}.${ref.name}`.slice(0, MAX_READABLE_NAME), ref.uid);
}

/** Characters of `<namespace>.<name>` kept in a Wappfy name (with a 36-character uid: 99 in all). */
const MAX_READABLE_NAME = 60;

const envelope = <S extends z.ZodType>(payload: S) => z.object({ data: payload });

const instanceSchema = z.object({ id: z.string().min(1), name: z.string(), status: z.string() });
type Instance = z.output<typeof instanceSchema>;
const statusSchema = z.object({ id: z.string().min(1), status: z.string(), phone_number: z.string().nullish() });
const qrSchema = z.object({ qr: z.string() });
const webhookSchema = z.object({
  id: z.string().min(1),
  url: z.string(),
  events: z.array(z.string()),
  instance_id: z.string().nullish(),
  /** Listed by Wappfy's API reference; when absent we cannot compare the key. */
  secret: z.string().nullish(),
  /** Listed by the API reference: where the operator marks the webhooks it wired. */
  description: z.string().nullish(),
  is_active: z.boolean().optional(),
});
type Webhook = z.output<typeof webhookSchema>;

/**
 * One page of a list, in every form Wappfy's docs show: the paginated
 * `data: {items, total, page, limit, totalPages}` of the response-format page, the bare
 * `data: [...]` of the instances page, and the unwrapped `[...]` of the API reference.
 */
function pageSchema<S extends z.ZodType>(item: S) {
  const paginated = z.object({ items: z.array(item), page: z.int().optional(), totalPages: z.int().optional() });
  return z.union([
    envelope(paginated).transform(({ data }) => ({ items: data.items, page: data.page ?? 1, totalPages: data.totalPages ?? 1 })),
    envelope(z.array(item)).transform(({ data }) => ({ items: data, page: 1, totalPages: 1 })),
    z.array(item).transform((items) => ({ items, page: 1, totalPages: 1 })),
  ]);
}

/** A bound on pages followed, so a server that keeps adding pages cannot hold a pass forever. */
const MAX_PAGES = 100;
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
    await this.#json({ method: "GET", path: "/api/instances" }, pageSchema(instanceSchema));
    return {};
  }

  async observe(ref: InstanceRef): Promise<ObservedSession | null> {
    // With a recorded id the instance is followed whatever its name (also one named before
    // names carried the uid); without one, only a name carrying our uid is ours. An id named
    // by spec.adopt is not ours on record yet: its name says whose it is, at the cost of a list.
    const found =
      ref.providerInstanceId === undefined
        ? await this.#findOwned(ref.uid)
        : ref.adopting
          ? await this.#findById(ref.providerInstanceId)
          : undefined;
    if (ref.adopting && found === undefined) return null;
    const id = ref.providerInstanceId ?? found?.id;
    if (id === undefined) return null;
    let status: z.output<typeof statusSchema>;
    try {
      status = (await this.#json({ method: "GET", path: instancePath(id, "status") }, envelope(statusSchema))).data;
    } catch (error) {
      if (isProviderError(error, "NotFound")) return null;
      throw error;
    }
    const phoneNumber = digitsOnly(status.phone_number);
    // Found by name, the name proves the owner; with a recorded id (proven when it was
    // recorded), reading the name back would cost a list per pass, and remove checks it too.
    const ownerUid = ownerOfLabel(found?.name);
    return {
      id: status.id,
      ...wappfyState(status.status),
      ...(phoneNumber ? { phoneNumber } : {}),
      ...(ownerUid ? { ownerUid } : {}),
      webhookInSync: await this.#webhookInSync(ref, status.id),
    };
  }

  async create(ref: InstanceRef): Promise<ObservedSession> {
    const body = { name: wappfyInstanceName(ref), type: ref.wappfy?.type ?? "waha" };
    const { data } = await this.#json({ method: "POST", path: "/api/instances", json: body }, envelope(instanceSchema));
    // A new instance has no webhook yet.
    return { id: data.id, ...wappfyState(data.status), ownerUid: ref.uid, webhookInSync: webhookTargets(ref).length === 0 };
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

  /**
   * Deletes only an instance whose name carries this resource's uid: one named by hand, by
   * another resource, or by an operator before names carried the uid could be somebody
   * else's, and a delete is irreversible. That refusal names the two ways out.
   */
  async remove(ref: InstanceRef, id: string): Promise<void> {
    const instance = await this.#findById(id);
    if (instance === undefined) return;
    if (ownerOfLabel(instance.name) !== ref.uid) {
      throw new ProviderError(
        "Rejected",
        `wappfy instance ${id} ("${shortenMessage(instance.name)}") was not created for this resource (its name does not carry uid ${ref.uid}), so the operator will not delete it: delete it in Wappfy, or set spec.deletionPolicy: Orphan to leave it`,
      );
    }
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
   * Brings our webhooks (see #ours) to exactly the wanted ones, and leaves every other
   * webhook alone. The new webhook is created before stale ones are deleted, so a change
   * never leaves a gap (a receiver may see one event twice instead).
   */
  async configureWebhook(ref: InstanceRef, id: string): Promise<void> {
    const targets = webhookTargets(ref);
    const ours = this.#ours(await this.#listWebhooks(), ref, id, targets);
    const keep = new Set<Webhook>();
    for (const target of targets) {
      const existing = ours.find((webhook) => webhookMatches(webhook, target));
      if (existing) {
        keep.add(existing);
        continue;
      }
      const body = {
        url: target.url,
        events: effectiveEvents(target),
        instance_id: id,
        description: webhookMarker(ref),
        ...(target.hmacKey ? { secret: target.hmacKey } : {}),
      };
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

  /** The instance whose name carries this uid; the uid is unique, so there is at most one of ours. */
  async #findOwned(uid: string): Promise<Instance | undefined> {
    return (await this.#listAll("/api/instances", instanceSchema)).find((instance) => ownerOfLabel(instance.name) === uid);
  }

  async #findById(id: string): Promise<Instance | undefined> {
    return (await this.#listAll("/api/instances", instanceSchema)).find((instance) => instance.id === id);
  }

  async #listWebhooks(): Promise<Webhook[]> {
    return this.#listAll("/api/webhooks", webhookSchema);
  }

  /** Every item of a list, following `page` while the answer is paginated. */
  async #listAll<S extends z.ZodType>(path: string, item: S): Promise<z.output<S>[]> {
    const items: z.output<S>[] = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const query = page === 1 ? {} : { page: String(page) };
      const answer = await this.#json({ method: "GET", path, query }, pageSchema(item));
      items.push(...answer.items);
      if (answer.items.length === 0 || answer.page >= answer.totalPages) break;
    }
    return items;
  }

  /**
   * The webhooks this operator wired for the instance: scoped to it and marked with our
   * description. One without a description whose URL is a wanted one is taken as ours too:
   * wired before webhooks were marked, or by a Wappfy that drops descriptions. A person's
   * webhook on the instance, or any account-wide one, is never ours.
   */
  #ours(webhooks: readonly Webhook[], ref: InstanceRef, id: string, targets: readonly WebhookTarget[]): Webhook[] {
    const marker = webhookMarker(ref);
    return webhooks.filter(
      (webhook) =>
        webhook.instance_id === id && (webhook.description === marker || (!webhook.description && targets.some((target) => target.url === webhook.url))),
    );
  }

  /**
   * In sync means our webhooks are exactly the wanted ones (the user's and the operator's
   * receiver): none wanted and one of ours still there is out of sync, so it gets removed.
   */
  async #webhookInSync(ref: InstanceRef, id: string): Promise<boolean> {
    const targets = webhookTargets(ref);
    const ours = this.#ours(await this.#listWebhooks(), ref, id, targets);
    return ours.length === targets.length && targets.every((target) => ours.some((webhook) => webhookMatches(webhook, target)));
  }

  #json<S extends z.ZodType>(request: HttpRequest, schema: S): Promise<z.output<S>> {
    if (!this.#apiKey) {
      return Promise.reject(new ProviderError("InvalidCredentials", "wappfy needs an API key: set credentialsSecretRef on the provider"));
    }
    return this.#http.json({ ...request, headers: { "X-Api-Key": this.#apiKey } }, schema);
  }

  /**
   * Wappfy errors read `{"error": {"code", "message"}}`; the kind comes from the status,
   * except 409 PLAN_LIMIT_REACHED, which the response-format page lists as the plan's
   * instance limit: a quota to wait on, not "already in the requested state".
   */
  #classify(response: HttpResponse): ProviderError {
    const body = errorBodySchema.safeParse(readErrorBody(response));
    const code = body.success ? body.data.error.code : undefined;
    const detail = body.success ? body.data.error.message : undefined;
    // Provider text goes into conditions: never let it echo our key.
    const message = detail ? shortenMessage(redactSecrets(detail, [this.#apiKey])) : (STATUS_MEANINGS[response.status] ?? "request failed");
    const classified = classifyByStatus("wappfy", response, message, { now: this.#now(), ...(code ? { code } : {}) });
    if (code !== PLAN_LIMIT_REACHED) return classified;
    return new ProviderError("QuotaExceeded", `${classified.message} (the Wappfy plan's instance limit)`, { status: response.status, code });
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

/** The response-format page's code for "Instance limit for your plan" (a 409). */
const PLAN_LIMIT_REACHED = "PLAN_LIMIT_REACHED";

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
    // The instance rides in the URL, signed (Wappfy signs only the body): an event can arrive before our status records Wappfy's id.
    const url = `${ref.providerEvents.url}?${signedHintQuery(ref.providerEvents.hmacKey, `${ref.namespace}/${ref.name}`)}`;
    targets.push({ url, events: LIFECYCLE_EVENTS, hmacKey: ref.providerEvents.hmacKey });
  }
  return targets;
}

/** The description our webhooks carry, so they are told apart from anybody else's on the instance. */
function webhookMarker(ref: InstanceRef): string {
  return ownedLabel(`wa-operator ${ref.namespace}/${ref.name}`, ref.uid);
}

/**
 * `events` is required by Wappfy's guide; an empty list in the spec means every event
 * Wappfy documents (the shared meaning of an empty spec.webhook.events).
 */
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
