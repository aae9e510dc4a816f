/**
 * WAHA's sessions API (waha.md). One WAHA session per WhatsAppInstance, named from the
 * instance's namespace and name, with the instance's uid in the session metadata so a
 * session somebody else created under that name is never adopted.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { ProviderError, redactSecrets, shortenMessage } from "../errors.ts";
import { ProviderHttp, classifyByStatus, readErrorBody, type HttpResponse } from "../transport/http.ts";
import type { InstanceRef, ObservedSession, ProviderCapabilities, ProviderClient, ProviderFactory, QrCode } from "../types.ts";
import { withSessionSettings, type WahaSessionSettings } from "./session.ts";
import { isKnownWahaStatus, wahaPhase } from "./states.ts";

/** WAHA's event names (2026.7.1 spec), the ones spec.webhook.events may hold. */
export const WAHA_EVENTS = [
  "session.status",
  "message",
  "message.reaction",
  "message.any",
  "message.ack",
  "message.ack.group",
  "message.waiting",
  "message.revoked",
  "message.edited",
  "group.join",
  "group.leave",
  "group.v2.join",
  "group.v2.leave",
  "group.v2.update",
  "group.v2.participants",
  "presence.update",
  "poll.vote",
  "poll.vote.failed",
  "chat.archive",
  "call.received",
  "call.accepted",
  "call.rejected",
  "label.upsert",
  "label.deleted",
  "label.chat.added",
  "label.chat.deleted",
  "event.response",
  "event.response.failed",
  "engine.event",
  "state.change",
] as const;

/** "*" subscribes a webhook to every event (waha.md 1.6; WAHA's webhooks.core.ts getSuitableEvents). */
export const ALL_EVENTS = "*";

export const wahaCapabilities: ProviderCapabilities = {
  qr: true,
  pairingCode: true,
  disconnect: true,
  restart: true,
  logout: true,
  webhook: true,
  webhookEvents: [ALL_EVENTS, ...WAHA_EVENTS],
  webhookSigning: true,
  // PUT /api/sessions/{s} stops and starts a running session (waha.md 1.2).
  webhookRestartsSession: true,
  version: true,
  // POST /api/sessions {start: true} upserts and starts in one call (waha.md 1.2; WAHA's SessionsController.create).
  createStarts: true,
  // "already exists" is answered for a name in use; create then reads that session, its owner metadata included.
  createFindsExisting: true,
};

/** Metadata keys the operator writes into the session config. */
export const OWNER_UID_KEY = "wa-operator.io/uid";
export const OWNER_KEY = "wa-operator.io/instance";
/** The URLs of the webhook entries the operator wrote, space-separated: tells ours from the user's once a URL leaves the spec. */
export const WIRED_URLS_KEY = "wa-operator.io/webhooks";
/** A fingerprint of the wiring the operator last sent, so one change is sent (and the session restarted) once. */
export const WIRED_FINGERPRINT_KEY = "wa-operator.io/webhooks-sent";

/** WAHA (2024 source) caps session names at 54 characters. */
const MAX_SESSION_NAME = 54;

/**
 * `<namespace>__<name>`: "__" cannot occur in Kubernetes names, so distinct instances
 * never share a session. Names too long for WAHA keep a readable prefix and a hash.
 */
export function wahaSessionName(namespace: string, name: string): string {
  const full = `${namespace}__${name}`;
  if (full.length <= MAX_SESSION_NAME) return full;
  const hash = createHash("sha256").update(full).digest("hex").slice(0, 10);
  return `${full.slice(0, MAX_SESSION_NAME - hash.length - 1)}-${hash}`;
}

const webhookConfig = z
  .object({
    url: z.string(),
    events: z.array(z.string()).default([]),
    hmac: z.object({ key: z.string().nullish() }).nullish(),
  })
  .loose();

const sessionConfig = z
  .object({
    metadata: z.record(z.string(), z.string()).nullish(),
    webhooks: z.array(webhookConfig).nullish(),
    // What spec.session manages (session.ts); read so that drift is found from the session look.
    client: z.object({ deviceName: z.string().max(256).nullish(), browserName: z.string().max(256).nullish() }).loose().nullish(),
    proxy: z.object({ server: z.string().max(1024), username: z.string().max(1024).nullish(), password: z.string().max(1024).nullish() }).loose().nullish(),
    ignore: z.object({ groups: z.boolean().nullish(), status: z.boolean().nullish(), channels: z.boolean().nullish() }).loose().nullish(),
    noweb: z.object({ markOnline: z.boolean().nullish() }).loose().nullish(),
  })
  .loose();

const sessionInfo = z.object({
  name: z.string(),
  status: z.string(),
  config: sessionConfig.nullish(),
  me: z.object({ id: z.string(), pushName: z.string().nullish() }).loose().nullish(),
});

const meInfo = z.object({ id: z.string(), pushName: z.string().nullish() }).loose().nullable();
const versionInfo = z.object({ version: z.string(), engine: z.string().nullish(), tier: z.string().nullish() }).loose();
/** GET /api/server/status (waha-openapi.json ServerStatusResponse): startTimestamp in ms. */
const serverStatus = z.object({ startTimestamp: z.number().int().positive() }).loose();
const rawQr = z.object({ value: z.string().min(1) });
const pairingCode = z.object({ code: z.string().min(1) });

type SessionInfo = z.infer<typeof sessionInfo>;
type SessionConfig = z.infer<typeof sessionConfig>;

/** A list of every session is bigger than one answer: about 1 KiB a session, 10,000 sessions and room to spare. */
const MAX_LIST_BYTES = 32 * 1024 * 1024;

/**
 * What a look reads of a session (its state, owner, wiring, settings and phone), digested with
 * its keys sorted, so a list item and a single GET of the same session agree.
 */
function fingerprintOf(session: SessionInfo): string {
  return createHash("sha256").update(canonicalJson({ name: session.name, status: session.status, config: session.config ?? null, me: session.me?.id ?? null })).digest("base64url");
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** WAHA's documented QR lifetimes: 60 s for the first code, 20 s for each next one. */
const QR_VALID_MS = 20_000;

export const createWahaClient: ProviderFactory = (settings, deps) => {
  const api = ProviderHttp.forProvider(settings, deps, (response) => classifyWaha(response, settings.apiKey));
  const auth = { "X-Api-Key": settings.apiKey ?? "" };
  const sessionPath = (id: string) => `/api/sessions/${encodeURIComponent(id)}`;

  const getSession = async (id: string): Promise<SessionInfo | null> => {
    try {
      return await api.json({ method: "GET", path: sessionPath(id), headers: auth }, sessionInfo);
    } catch (error) {
      if (error instanceof ProviderError && error.kind === "NotFound") return null;
      throw error;
    }
  };


  const toObserved = async (ref: InstanceRef, session: SessionInfo): Promise<ObservedSession> => {
    const phase = wahaPhase(session.status);
    let phoneNumber: string | undefined;
    if (phase === "Connected") {
      const me = session.me ?? (await api.json({ method: "GET", path: `${sessionPath(session.name)}/me`, headers: auth }, meInfo));
      phoneNumber = me ? digitsOf(me.id) : undefined;
    }
    const ownerUid = session.config?.metadata?.[OWNER_UID_KEY];
    return {
      id: session.name,
      phase,
      providerState: session.status,
      ...(phoneNumber ? { phoneNumber } : {}),
      ...(ownerUid ? { ownerUid } : {}),
      webhookInSync: configInSync(session.config, ref),
      sessionConfig: session.config ?? {},
      ...(isKnownWahaStatus(session.status) ? {} : { unknownState: true }),
      fingerprint: fingerprintOf(session),
    };
  };

  const client: ProviderClient = {
    type: "waha",
    capabilities: wahaCapabilities,

    async checkHealth() {
      const info = await api.json({ method: "GET", path: "/api/server/version", headers: auth }, versionInfo);
      const version = info.engine ? `${info.version} (${info.engine})` : info.version;
      // The start time says when the server restarted (its sessions then show STOPPED); a
      // server that cannot tell is still healthy, since the version call proved the key.
      const status = await api.json({ method: "GET", path: "/api/server/status", headers: auth }, serverStatus).catch(() => undefined);
      return status ? { version, startedAt: status.startTimestamp } : { version };
    },

    async observe(ref) {
      const session = await getSession(ref.providerInstanceId ?? wahaSessionName(ref.namespace, ref.name));
      return session ? toObserved(ref, session) : null;
    },

    async listSessions() {
      // all=true: STOPPED sessions too (waha-openapi.json GET /api/sessions, "all"); each item is the
      // SessionInfo a single GET returns, without `engine` (which the fingerprint leaves out).
      const sessions = await api.json({ method: "GET", path: "/api/sessions", query: { all: "true" }, headers: auth, maxBodyBytes: MAX_LIST_BYTES }, z.array(sessionInfo));
      return new Map(sessions.map((session) => [session.name, fingerprintOf(session)]));
    },

    async create(ref, options) {
      const name = wahaSessionName(ref.namespace, ref.name);
      try {
        // WAHA answers with the session it made (SessionDTO, waha-openapi.json POST /api/sessions 201).
        const made = await api.json(
          // Safe to send again: a session made by the first try makes the second answer "already exists", handled below.
          { method: "POST", path: "/api/sessions", headers: auth, idempotent: true, json: { name, start: options?.start === true, config: configWith(ref, undefined) } },
          sessionInfo,
        );
        return toObserved(ref, made);
      } catch (error) {
        // A crash between create and the status write leaves our session behind, or somebody else's
        // squats on the name: the read below brings its owner metadata, and the planner decides whose it is.
        if (!(error instanceof ProviderError && error.kind === "Conflict")) throw error;
      }
      const created = await getSession(name);
      if (!created) throw new ProviderError("Unavailable", `waha did not show session ${name} right after creating it`);
      return toObserved(ref, created);
    },

    async connect(ref, id) {
      // The answer is the session as it now is (SessionDTO, POST /api/sessions/{session}/start 201): no need to look again.
      // "Idempotent operation" (waha-openapi.json, POST /api/sessions/{session}/start), so it is retried like a read.
      const started = await api.json({ method: "POST", path: `${sessionPath(id)}/start`, headers: auth, idempotent: true }, sessionInfo);
      return toObserved(ref, started);
    },

    async disconnect(_ref, id) {
      // Stop and delete are "Idempotent operation"s too (waha-openapi.json); restart and logout are not.
      await api.send({ method: "POST", path: `${sessionPath(id)}/stop`, headers: auth, idempotent: true });
    },

    async restart(_ref, id) {
      await api.send({ method: "POST", path: `${sessionPath(id)}/restart`, headers: auth });
    },

    async logout(_ref, id) {
      // WAHA restarts a running session after logout to show a fresh QR; LoggedOut means stopped.
      await api.send({ method: "POST", path: `${sessionPath(id)}/logout`, headers: auth });
      await api.send({ method: "POST", path: `${sessionPath(id)}/stop`, headers: auth });
    },

    async remove(_ref, id) {
      await api.send({ method: "DELETE", path: sessionPath(id), headers: auth, idempotent: true });
    },

    async fetchQr(_ref, id): Promise<QrCode | null> {
      let qr: z.infer<typeof rawQr>;
      try {
        qr = await api.json({ method: "GET", path: `/api/${encodeURIComponent(id)}/auth/qr`, query: { format: "raw" }, headers: auth }, rawQr);
      } catch (error) {
        if (error instanceof ProviderError && (error.kind === "WrongState" || error.kind === "NotFound")) return null;
        throw error;
      }
      return { text: qr.value, validForMs: QR_VALID_MS };
    },

    async requestPairingCode(_ref, id, phoneNumber) {
      const answer = await api.json(
        { method: "POST", path: `/api/${encodeURIComponent(id)}/auth/request-code`, headers: auth, json: { phoneNumber } },
        pairingCode,
      );
      return answer.code;
    },

    async configureWebhook(ref, id) {
      const session = await ownSession(ref, id);
      // WAHA applies a PUT by restarting a running session: only a real change is sent.
      if (configInSync(session.config, ref)) return;
      // PUT replaces the whole config, so everything else in it is carried over.
      await api.json({ method: "PUT", path: sessionPath(id), headers: auth, json: { config: configWith(ref, session.config) } }, sessionInfo);
    },

    // One PUT: the whole config, spec.session's fields as wanted (configWith); WAHA restarts a running session with it.
    async applySessionConfig(ref, id) {
      const session = await ownSession(ref, id);
      await api.json({ method: "PUT", path: sessionPath(id), headers: auth, json: { config: configWith(ref, session.config) } }, sessionInfo);
    },

    // Writing the config records our uid in the session's metadata (configWith).
    claim(ref, id) {
      return client.configureWebhook(ref, id);
    },

    async release(ref, id) {
      const session = await getSession(id);
      if (session?.config?.metadata?.[OWNER_UID_KEY] !== ref.uid) return;
      const { [OWNER_UID_KEY]: _uid, [OWNER_KEY]: _instance, ...metadata } = session.config.metadata;
      await api.json({ method: "PUT", path: sessionPath(id), headers: auth, json: { config: { ...session.config, metadata } } }, sessionInfo);
    },
  };

  /** The session, read right before a config write: one whose metadata names another owner is never written. */
  const ownSession = async (ref: InstanceRef, id: string): Promise<SessionInfo> => {
    const session = await getSession(id);
    if (!session) throw new ProviderError("NotFound", `waha has no session ${id}`);
    const owner = session.config?.metadata?.[OWNER_UID_KEY];
    if (owner !== undefined && owner !== ref.uid) throw new ProviderError("Rejected", `waha session ${id} belongs to another resource; not changing it`);
    return session;
  };
  return client;
};

type WebhookEntry = z.infer<typeof webhookConfig>;

/** The webhook entries the operator manages in a session, and what identifies that wiring. */
interface Wiring {
  readonly entries: readonly WebhookEntry[];
  readonly fingerprint: string;
}

/** What the operator's own receiver listens to: status changes, QR rotations included. */
const LIFECYCLE_EVENTS = ["session.status"];

/**
 * The entries the operator wants: the user's spec.webhook and its own event receiver. An
 * empty event list means every event (the API contract); WAHA skips a webhook without
 * events (webhooks.core.ts configureSingleWebhook), so it is sent as "*".
 */
function desiredWiring(ref: InstanceRef): Wiring {
  const receiver = ref.providerEvents ? { url: ref.providerEvents.url, events: LIFECYCLE_EVENTS, hmacKey: ref.providerEvents.hmacKey } : undefined;
  const entries = [ref.webhook, receiver]
    .filter((target) => target !== undefined)
    .map((target) => ({
      url: target.url,
      events: target.events.length === 0 ? [ALL_EVENTS] : [...target.events],
      ...(target.hmacKey ? { hmac: { key: target.hmacKey } } : {}),
    }));
  // Keys enter only as a hash: the fingerprint sits in metadata, which WAHA echoes in every event.
  const canonical = entries.map((entry) => [entry.url, [...entry.events].sort(), entry.hmac?.key ?? ""]);
  return { entries, fingerprint: createHash("sha256").update(JSON.stringify(canonical)).digest("hex").slice(0, 16) };
}

/** URLs of the entries the operator wrote into this config before. */
function wiredUrls(config: SessionConfig | null | undefined): string[] {
  return (config?.metadata?.[WIRED_URLS_KEY] ?? "").split(" ").filter((url) => url !== "");
}

/**
 * Whether the session's config is as we want it: our uid on record and our webhooks wired.
 * A session without our uid (adopted, spec.adopt) is not ours on record yet: writing the
 * config records it in WAHA's metadata, so no other resource can take it over.
 */
function configInSync(config: SessionConfig | null | undefined, ref: InstanceRef): boolean {
  return config?.metadata?.[OWNER_UID_KEY] === ref.uid && wiringInSync(config, desiredWiring(ref));
}

/**
 * Whether the session carries the wanted wiring: each wanted entry is there (by URL) as
 * wanted, or exactly this wiring was sent before (sending it again would only restart the
 * session), and no entry the operator wrote for a URL it no longer wants is left.
 * Entries the operator did not write are not its business.
 */
function wiringInSync(config: SessionConfig | null | undefined, wanted: Wiring): boolean {
  const current = config?.webhooks ?? [];
  const wantedUrls = new Set(wanted.entries.map((entry) => entry.url));
  const stale = wiredUrls(config).some((url) => !wantedUrls.has(url) && current.some((entry) => entry.url === url));
  if (stale) return false;
  const present = wanted.entries.every((entry) => current.some((existing) => existing.url === entry.url));
  if (!present) return false;
  if (config?.metadata?.[WIRED_FINGERPRINT_KEY] === wanted.fingerprint) return true;
  return wanted.entries.every((entry) =>
    current.some(
      (existing) =>
        existing.url === entry.url && sameSet(existing.events, entry.events) && (existing.hmac?.key ?? undefined) === (entry.hmac?.key ?? undefined),
    ),
  );
}

/**
 * The session config with the operator's entries and metadata as wanted and everything
 * else kept: other webhooks, and what a user added to ours (retries, customHeaders).
 */
function configWith(ref: InstanceRef, current: SessionConfig | null | undefined): SessionConfig {
  const wanted = desiredWiring(ref);
  const ours = new Set([...wiredUrls(current), ...wanted.entries.map((entry) => entry.url)]);
  const existing = current?.webhooks ?? [];
  const entries = wanted.entries.map((entry) => {
    const { hmac: _replaced, ...kept } = existing.find((hook) => hook.url === entry.url) ?? { url: entry.url, events: [] };
    return { ...kept, ...entry };
  });
  const { [WIRED_URLS_KEY]: _urls, [WIRED_FINGERPRINT_KEY]: _fingerprint, ...metadata } = current?.metadata ?? {};
  // spec.session's fields ride along with every config write, so no write undoes them.
  return withSessionSettings({
    ...current,
    metadata: {
      ...metadata,
      [OWNER_UID_KEY]: ref.uid,
      [OWNER_KEY]: `${ref.namespace}/${ref.name}`,
      ...(entries.length > 0 ? { [WIRED_URLS_KEY]: entries.map((entry) => entry.url).join(" "), [WIRED_FINGERPRINT_KEY]: wanted.fingerprint } : {}),
    },
    webhooks: [...entries, ...existing.filter((hook) => !ours.has(hook.url))],
  }, ref.sessionConfig as WahaSessionSettings | undefined);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a);
  return left.size === new Set(b).size && b.every((item) => left.has(item));
}

/** "5511999998888@c.us" → "5511999998888". */
function digitsOf(whatsappId: string): string | undefined {
  const digits = whatsappId.split("@")[0]?.replace(/\D/g, "");
  return digits ? digits : undefined;
}

/** WAHA's 422s mean different things; its body tells which. Body text is redacted and kept short. */
function classifyWaha(response: HttpResponse, apiKey: string | undefined): ProviderError {
  const body = readErrorBody(response) as { message?: unknown; error?: unknown; status?: unknown; expected?: unknown } | undefined;
  const clean = (text: string) => shortenMessage(redactSecrets(text, [apiKey]));
  const message = clean(typeof body?.message === "string" ? body.message : Array.isArray(body?.message) ? body.message.join("; ") : "");
  if (response.status === 422) {
    if (body?.expected !== undefined) {
      return new ProviderError("WrongState", clean(`waha: session is ${String(body.status)}, expected ${String(body.expected)}`), { status: 422 });
    }
    if (/already exists/i.test(message)) return new ProviderError("Conflict", `waha: ${message}`, { status: 422 });
    // request-code outside SCAN_QR_CODE answers a plain message, not the {expected} object
    // (NOWEB requestCode, waha.md 1.2): the session moved on, so look again.
    if (/only in SCAN_QR_CODE status/i.test(message)) return new ProviderError("WrongState", `waha: ${message}`, { status: 422 });
    if (/only 'default' session/i.test(message)) {
      return new ProviderError("Rejected", "waha: this WAHA Core image allows only the 'default' session; upgrade to 2026.6.1 or later", {
        status: 422,
      });
    }
  }
  const error = typeof body?.error === "string" ? clean(body.error) : "request failed";
  return classifyByStatus("waha", response, message || error);
}
