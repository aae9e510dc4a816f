/**
 * Evolution API v2 (self-hosted, WhatsApp-Baileys integration): instances under /instance,
 * one webhook per instance under /webhook, header `apikey` (the global key: creating
 * instances needs it; an instance's own token only reaches that instance).
 *
 * What its source does that shapes this client (test/emulators/evolution/emulator.ts
 * cites each file):
 * - The instance name is the id in every path; the operator's names carry the resource's
 *   uid, `<namespace>.<name> [<uid>]` (owner-label.ts), the only place Evolution keeps
 *   something of ours: an instance whose name does not carry our uid is never deleted.
 * - Failures of connect and restart come back as HTTP 200 `{error: true, message}`.
 * - connect answers `{count: 0}` until Baileys issued a first QR; QR codes rotate every
 *   45 s and after QRCODE_LIMIT of them the instance closes (read as Disconnected: the
 *   planner starts a new round).
 * - fetchInstances answers every instance's token: the schema drops it, and it is handed
 *   to the process-wide redactor so that no echo of it reaches a log, status or Event.
 * - logout of a closed instance is refused (400) in every version; restart of a closed one
 *   is `{error: true}` from 2.0.6 (an answer without effect before); delete of an open one
 *   is refused before 2.2.1. The client asks for the state first and never depends on them.
 */
import { z } from "zod";
import { OPERATOR_SCOPE, redactor } from "../../redaction.ts";
import { ProviderError, isProviderError, redactSecrets, shortenMessage } from "../errors.ts";
import { ProviderHttp, classifyByStatus, readErrorBody, type HttpRequest, type HttpResponse } from "../transport/http.ts";
import { ownedLabel, ownerOfLabel } from "../owner-label.ts";
import { pngFromDataUrl } from "../qr.ts";
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
} from "../types.ts";
import { EVOLUTION_EVENTS_TOKEN_HEADER, EVOLUTION_LIFECYCLE_EVENTS, evolutionEventsToken } from "./events.ts";
import type { EvolutionSessionSettings } from "./session.ts";
import { evolutionState } from "./states.ts";

/** The event names webhook/set accepts: EventController.events (event.controller.ts), validated by webhook.schema.ts. */
export const EVOLUTION_WEBHOOK_EVENTS = [
  "APPLICATION_STARTUP",
  "QRCODE_UPDATED",
  "MESSAGES_SET",
  "MESSAGES_UPSERT",
  "MESSAGES_EDITED",
  "MESSAGES_UPDATE",
  "MESSAGES_DELETE",
  "SEND_MESSAGE",
  "SEND_MESSAGE_UPDATE",
  "CONTACTS_SET",
  "CONTACTS_UPSERT",
  "CONTACTS_UPDATE",
  "PRESENCE_UPDATE",
  "CHATS_SET",
  "CHATS_UPSERT",
  "CHATS_UPDATE",
  "CHATS_DELETE",
  "GROUPS_UPSERT",
  "GROUP_UPDATE",
  "GROUP_PARTICIPANTS_UPDATE",
  "CONNECTION_UPDATE",
  "LABELS_EDIT",
  "LABELS_ASSOCIATION",
  "CALL",
  "TYPEBOT_START",
  "TYPEBOT_CHANGE_STATUS",
  "REMOVE_INSTANCE",
  "LOGOUT_INSTANCE",
  "INSTANCE_CREATE",
  "INSTANCE_DELETE",
  "STATUS_INSTANCE",
] as const;

/**
 * Everything but stopping a session while keeping its link: Evolution has no such call
 * (logout unlinks, restart reconnects at once, and a closed Baileys socket with its link
 * reconnects on its own). Deliveries are not signed.
 */
export const evolutionCapabilities: ProviderCapabilities = {
  qr: true,
  pairingCode: true,
  // A new code comes with every QR (whatsapp.baileys.service.ts connectionUpdate).
  pairingCodeValidForMs: 45_000,
  disconnect: false,
  restart: true,
  logout: true,
  webhook: true,
  webhookEvents: EVOLUTION_WEBHOOK_EVENTS,
  webhookSigning: false,
  version: true,
};

/** Baileys' qrTimeout as Evolution sets it (whatsapp.baileys.service.ts): each QR lives 45 s. */
const QR_VALID_FOR_MS = 45_000;

/** Instance.name is VarChar(255); the uid alone makes a name unique, so a long readable part is cut. */
const MAX_READABLE_NAME = 200;

/**
 * The Evolution instance name of a WhatsAppInstance: `<namespace>.<name> [<uid>]`. `.`
 * cannot occur in a namespace, so the readable part alone tells `a-b/c` from `a/b-c`.
 */
export function evolutionInstanceName(ref: Pick<InstanceRef, "namespace" | "name" | "uid">): string {
  return ownedLabel(`${ref.namespace}.${ref.name}`.slice(0, MAX_READABLE_NAME), ref.uid);
}

/** A name no instance is meant to have: the health check's authenticated look. */
const HEALTH_PROBE_NAME = "wa-operator-health-probe";

const welcomeSchema = z.object({ version: z.string().min(1).max(64) });
/** A fetchInstances row: the token is read only to be redacted, never kept. */
const rowSchema = z.object({
  name: z.string().min(1),
  connectionStatus: z.string().nullish(),
  ownerJid: z.string().nullish(),
  token: z.string().nullish(),
});
type Row = Omit<z.output<typeof rowSchema>, "token">;
const stateSchema = z.object({ instance: z.object({ instanceName: z.string(), state: z.string().nullish() }) });
/** connect answers a QR (`{pairingCode, code, base64, count}`), the state (open), or `{error: true, message}`. */
const connectSchema = z.object({
  error: z.boolean().optional(),
  message: z.string().optional(),
  pairingCode: z.string().nullish(),
  code: z.string().nullish(),
  base64: z.string().nullish(),
  count: z.number().optional(),
});
type ConnectAnswer = z.output<typeof connectSchema>;
/** restart, logout and delete: an answer that may be a 200 `{error: true, message}`. */
const actionSchema = z.union([z.null(), z.looseObject({ error: z.boolean().optional(), message: z.string().optional() })]);
const createSchema = z.object({
  instance: z.object({ instanceName: z.string(), status: z.string().nullish() }),
  hash: z.string().nullish(),
});
const webhookSchema = z.union([
  z.null(),
  z.object({
    url: z.string(),
    enabled: z.boolean().nullish(),
    events: z.array(z.string()).nullish(),
    headers: z.record(z.string(), z.unknown()).nullish(),
    webhookByEvents: z.boolean().nullish(),
  }),
]);
type Webhook = NonNullable<z.output<typeof webhookSchema>>;
/** settings/find: the row's flags, or null before any were set (settings.service.ts find). */
const settingsSchema = z.union([
  z.null(),
  z.looseObject({
    rejectCall: z.boolean().nullish(),
    msgCall: z.string().max(1024).nullish(),
    groupsIgnore: z.boolean().nullish(),
    alwaysOnline: z.boolean().nullish(),
    readMessages: z.boolean().nullish(),
    readStatus: z.boolean().nullish(),
    syncFullHistory: z.boolean().nullish(),
  }),
]);
/** proxy/find: the Prisma Proxy row, or null when there is none (proxy.service.ts find). */
const proxySchema = z.union([
  z.null(),
  z.looseObject({
    enabled: z.boolean().nullish(),
    host: z.string().max(512).nullish(),
    port: z.string().max(16).nullish(),
    protocol: z.string().max(16).nullish(),
    username: z.string().max(1024).nullish(),
    password: z.string().max(1024).nullish(),
  }),
]);
/** Errors: `{status, error, response: {message}}` (main.ts), message a string or a list. */
const errorBodySchema = z.object({ response: z.object({ message: z.union([z.string(), z.array(z.unknown())]) }) });

/** One webhook the instance should have, with the headers that mark it (our receiver's token). */
interface Target {
  readonly url: string;
  readonly events: readonly string[];
  readonly headers: Readonly<Record<string, string>>;
}

class EvolutionClient implements ProviderClient {
  readonly type = "evolution" as const;
  readonly capabilities = evolutionCapabilities;
  readonly #http: ProviderHttp;
  readonly #apiKey: string | undefined;
  readonly #now: () => number;

  constructor(settings: ProviderSettings, deps: ProviderDeps) {
    this.#apiKey = settings.apiKey;
    this.#now = deps.now ?? Date.now;
    this.#http = ProviderHttp.forProvider(settings, deps, (response) => this.#classify(response));
  }

  /** `GET /` for the version (no key needed there), then one authenticated look that names no real instance. */
  async checkHealth(): Promise<HealthReport> {
    const { version } = await this.#json({ method: "GET", path: "/" }, welcomeSchema);
    try {
      await this.#json({ method: "GET", path: "/instance/fetchInstances", query: { instanceName: HEALTH_PROBE_NAME } }, z.array(rowSchema));
    } catch (error) {
      // 404: the key was taken and the probe name is free, which is all this asks.
      if (!isProviderError(error, "NotFound")) throw error;
    }
    return { version };
  }

  async observe(ref: InstanceRef): Promise<ObservedSession | null> {
    // With a recorded (or adopted) name the instance is followed whatever it is called; without one, the name we give.
    const name = ref.providerInstanceId ?? evolutionInstanceName(ref);
    const row = await this.#row(name);
    if (!row) return null;
    let live: string | null | undefined;
    try {
      live = (await this.#json({ method: "GET", path: instancePath("connectionState", name) }, stateSchema)).instance.state;
    } catch (error) {
      // Deleted between the two calls.
      if (isProviderError(error, "NotFound")) return null;
      throw error;
    }
    const state = evolutionState(live, row.connectionStatus);
    // ownerJid outlives a logout (cleaningUp keeps it): a number is reported only while linked.
    const phoneNumber = state.phase === "Connected" ? digitsOf(row.ownerJid) : undefined;
    const ownerUid = ownerOfLabel(row.name);
    return {
      id: row.name,
      ...state,
      ...(phoneNumber ? { phoneNumber } : {}),
      ...(ownerUid ? { ownerUid } : {}),
      webhookInSync: await this.#webhookInSync(ref, row.name),
    };
  }

  /**
   * Creates a closed instance (no QR yet, no webhook in the body: a webhook without events
   * there makes Evolution drop the instance it was creating). A 403 "name in use" is our
   * own earlier create whose answer was lost, when the name carries our uid.
   */
  async create(ref: InstanceRef): Promise<ObservedSession> {
    const name = evolutionInstanceName(ref);
    const body = { instanceName: name, integration: "WHATSAPP-BAILEYS", qrcode: false };
    try {
      const created = await this.#json({ method: "POST", path: "/instance/create", json: body }, createSchema);
      redactor.remember(created.hash ?? undefined);
      return {
        id: created.instance.instanceName,
        ...evolutionState(created.instance.status ?? "close", "close"),
        ownerUid: ref.uid,
        webhookInSync: targetOf(ref) === undefined,
      };
    } catch (error) {
      if (!isProviderError(error) || error.status !== 403) throw error;
      const existing = await this.observe({ ...ref, providerInstanceId: name });
      if (existing?.ownerUid === ref.uid) return existing;
      throw error;
    }
  }

  /** Starts Baileys; with a pairing number, Evolution asks WhatsApp for a code with every QR. */
  async connect(ref: InstanceRef, id: string): Promise<void> {
    await this.#connect(id, ref.pairingPhoneNumber);
  }

  disconnect(): Promise<void> {
    return Promise.reject(new ProviderError("Rejected", "evolution cannot stop a session and keep its link"));
  }

  /** A closed instance is started instead: Evolution refuses to restart it, and starting it is what a restart means there. */
  async restart(ref: InstanceRef, id: string): Promise<void> {
    if ((await this.#liveState(id)) === "close") {
      await this.#connect(id, ref.pairingPhoneNumber);
      return;
    }
    this.#refusal("restart", await this.#json({ method: "POST", path: instancePath("restart", id) }, actionSchema));
  }

  /** Evolution refuses to log out a closed instance (400 "is not connected"): nothing runs there, which is what was asked. */
  async logout(_ref: InstanceRef, id: string): Promise<void> {
    try {
      this.#refusal("logout", await this.#json({ method: "DELETE", path: instancePath("logout", id) }, actionSchema));
    } catch (error) {
      if (isProviderError(error) && error.status === 400 && (await this.#liveState(id)) === "close") return;
      throw error;
    }
  }

  /**
   * Deletes only an instance whose name carries this resource's uid; an adopted one, or
   * one named by hand, could be somebody else's. A running instance is logged out first,
   * which every version accepts (before 2.2.1 delete refused an open one).
   */
  async remove(ref: InstanceRef, id: string): Promise<void> {
    const row = await this.#row(id);
    if (!row) return;
    if (ownerOfLabel(row.name) !== ref.uid) {
      throw new ProviderError(
        "Rejected",
        `evolution instance "${shortenMessage(row.name)}" was not created for this resource (its name does not carry uid ${ref.uid}), so the operator will not delete it: delete it in Evolution, or set spec.deletionPolicy: Orphan to leave it`,
      );
    }
    if ((await this.#liveState(id)) !== "close") await this.logout(ref, id);
    try {
      this.#refusal("delete", await this.#json({ method: "DELETE", path: instancePath("delete", id) }, actionSchema));
    } catch (error) {
      if (isProviderError(error, "NotFound")) return;
      throw error;
    }
  }

  /**
   * The QR shown now, as its raw payload (the operator draws it), or null when the instance shows none.
   * Only a socket connecting with a QR issued (the row says connecting) has one: the
   * answer of connect keeps the last code also after a scan.
   */
  async fetchQr(_ref: InstanceRef, id: string): Promise<QrCode | null> {
    const row = await this.#row(id);
    if (!row || row.connectionStatus !== "connecting" || (await this.#liveState(id)) !== "connecting") return null;
    const answer = await this.#connect(id, undefined);
    if (answer.code) return { text: answer.code, validForMs: QR_VALID_FOR_MS };
    if (answer.base64) return { png: pngFromDataUrl("evolution", answer.base64), validForMs: QR_VALID_FOR_MS };
    return null;
  }

  /**
   * A code comes with the QR of a session started with the number (connect?number=). A
   * session that shows QR codes without one was started for scanning: it is logged out (it
   * links nothing) and started again with the number. Until Baileys issued the code,
   * WrongState says "look again".
   */
  async requestPairingCode(ref: InstanceRef, id: string, phoneNumber: string): Promise<string> {
    const live = await this.#liveState(id);
    if (live === "open") throw new ProviderError("WrongState", `evolution instance ${id} is already linked`);
    let answer = await this.#connect(id, live === "close" ? phoneNumber : undefined);
    if (!answer.pairingCode && live === "connecting" && answer.code) {
      await this.logout(ref, id);
      answer = await this.#connect(id, phoneNumber);
    }
    if (answer.pairingCode) return answer.pairingCode;
    throw new ProviderError("WrongState", `evolution has not issued a pairing code for ${id} yet; looking again`);
  }

  /**
   * Evolution keeps one webhook per instance. spec.webhook takes it; without one the
   * operator's receiver does, when the provider asks for events; with neither, a webhook
   * the operator wired (its URL in status, or our token header) is disabled, and anybody
   * else's is left alone.
   */
  async configureWebhook(ref: InstanceRef, id: string): Promise<void> {
    const target = targetOf(ref);
    if (target) {
      const webhook = { enabled: true, url: target.url, events: target.events, headers: target.headers, byEvents: false, base64: false };
      await this.#json({ method: "POST", path: instancePath("webhook/set", id), json: { webhook } }, z.unknown());
      return;
    }
    const current = await this.#webhook(id);
    if (!current || current.enabled === false || !isOurs(ref, current)) return;
    const webhook = { enabled: false, url: current.url, events: [], headers: {}, byEvents: false, base64: false };
    await this.#json({ method: "POST", path: instancePath("webhook/set", id), json: { webhook } }, z.unknown());
  }

  /** settings/find, and proxy/find when a proxy is wanted (session.ts). */
  async readSessionConfig(ref: InstanceRef, id: string): Promise<EvolutionSessionSettings> {
    const settings = await this.#json({ method: "GET", path: `/settings/find/${encodeURIComponent(id)}` }, settingsSchema);
    const wantsProxy = (ref.sessionConfig as EvolutionSessionSettings | undefined)?.proxy !== undefined;
    const proxy = wantsProxy ? await this.#json({ method: "GET", path: `/proxy/find/${encodeURIComponent(id)}` }, proxySchema) : undefined;
    return { ...(settings ? { settings: withoutNulls(settings) } : {}), ...(proxy ? { proxy: withoutNulls(proxy) as EvolutionSessionSettings["proxy"] } : {}) };
  }

  /**
   * settings/set needs every flag (settings.schema.ts requires all six): those spec.session
   * leaves unset keep the values Evolution has. The proxy goes to proxy/set.
   */
  async applySessionConfig(ref: InstanceRef, id: string): Promise<void> {
    const desired = (ref.sessionConfig ?? {}) as EvolutionSessionSettings;
    if (desired.settings) {
      const current = (await this.#json({ method: "GET", path: `/settings/find/${encodeURIComponent(id)}` }, settingsSchema)) ?? {};
      const flags = { rejectCall: false, groupsIgnore: false, alwaysOnline: false, readMessages: false, readStatus: false, syncFullHistory: false };
      const body = { ...flags, ...withoutNulls(current), ...desired.settings };
      this.#refusal("settings/set", await this.#json({ method: "POST", path: `/settings/set/${encodeURIComponent(id)}`, json: body }, actionSchema));
    }
    if (desired.proxy) {
      this.#refusal("proxy/set", await this.#json({ method: "POST", path: `/proxy/set/${encodeURIComponent(id)}`, json: desired.proxy }, actionSchema));
    }
  }

  async #webhookInSync(ref: InstanceRef, id: string): Promise<boolean> {
    const target = targetOf(ref);
    const current = await this.#webhook(id);
    if (!target) return !current || current.enabled === false || !isOurs(ref, current);
    if (!current || current.enabled === false || current.url !== target.url || current.webhookByEvents === true) return false;
    const actual = new Set(current.events ?? []);
    if (actual.size !== target.events.length || target.events.some((event) => !actual.has(event))) return false;
    return Object.entries(target.headers).every(([name, value]) => current.headers?.[name] === value);
  }

  async #webhook(id: string): Promise<Webhook | null> {
    return this.#json({ method: "GET", path: instancePath("webhook/find", id) }, webhookSchema);
  }

  /** The instance's row, or null when Evolution has none of that name. */
  async #row(name: string): Promise<Row | null> {
    let rows: z.output<typeof rowSchema>[];
    try {
      rows = await this.#json({ method: "GET", path: "/instance/fetchInstances", query: { instanceName: name } }, z.array(rowSchema).max(16));
    } catch (error) {
      if (isProviderError(error, "NotFound")) return null;
      throw error;
    }
    // Every row carries the instance's token: remembered as a secret, then dropped.
    redactor.remember(...rows.map((row) => row.token ?? undefined));
    const row = rows.find((candidate) => candidate.name === name);
    if (!row) return null;
    const { token: _token, ...kept } = row;
    return kept;
  }

  async #liveState(id: string): Promise<string | null | undefined> {
    return (await this.#json({ method: "GET", path: instancePath("connectionState", id) }, stateSchema)).instance.state;
  }

  async #connect(id: string, number: string | undefined): Promise<ConnectAnswer> {
    const query = number ? { number } : undefined;
    const answer = await this.#json({ method: "GET", path: instancePath("connect", id), ...(query ? { query } : {}) }, connectSchema);
    if (answer.error === true) throw this.#answeredError("connect", answer.message);
    return answer;
  }

  /** Evolution answers some failures as HTTP 200 `{error: true, message}`. */
  #refusal(what: string, answer: z.output<typeof actionSchema>): void {
    if (answer?.error === true) throw this.#answeredError(what, answer.message);
  }

  /** A 200 `{error: true}`: the instance was not in the state the call needs (or not loaded); look again. */
  #answeredError(what: string, message: string | undefined): ProviderError {
    const detail = message ? this.#clean(message) : "no reason given";
    return new ProviderError("WrongState", `evolution refused ${what}: ${detail}`, { status: 200 });
  }

  /**
   * Provider text goes into conditions: never let it echo our key, nor an instance token
   * (create's hash, fetchInstances' rows) that Evolution, or a proxy before it, quotes back.
   */
  #clean(text: string): string {
    return shortenMessage(redactor.redact(redactSecrets(text, [this.#apiKey]), OPERATOR_SCOPE));
  }

  #json<S extends z.ZodType>(request: HttpRequest, schema: S): Promise<z.output<S>> {
    if (!this.#apiKey) {
      return Promise.reject(new ProviderError("InvalidCredentials", "evolution needs its global API key: set credentialsSecretRef on the provider"));
    }
    return this.#http.json({ ...request, headers: { ...request.headers, apikey: this.#apiKey } }, schema);
  }

  /** Errors read `{status, error, response: {message}}`; the kind comes from the status. */
  #classify(response: HttpResponse): ProviderError {
    const body = errorBodySchema.safeParse(readErrorBody(response));
    const raw = body.success ? body.data.response.message : undefined;
    const detail = raw === undefined ? undefined : Array.isArray(raw) ? raw.map((part) => (typeof part === "string" ? part : JSON.stringify(part))).join("; ") : raw;
    const message = detail ? this.#clean(detail) : "request failed";
    return classifyByStatus("evolution", response, message, { now: this.#now() });
  }
}

/** The known flags without nulls (and nothing else of the row: ids, the wavoip token). */
function withoutNulls(row: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const known = ["rejectCall", "msgCall", "groupsIgnore", "alwaysOnline", "readMessages", "readStatus", "syncFullHistory", "enabled", "host", "port", "protocol", "username", "password"];
  return Object.fromEntries(Object.entries(row).filter(([key, value]) => known.includes(key) && value !== null && value !== undefined));
}

function instancePath(action: string, name: string): string {
  const base = action.startsWith("webhook/") ? "" : "/instance";
  return `${base}/${action}/${encodeURIComponent(name)}`;
}

function digitsOf(jid: string | null | undefined): string | undefined {
  const digits = jid?.split("@")[0]?.split(":")[0]?.replace(/\D/g, "");
  return digits ? digits : undefined;
}

/**
 * The one webhook this instance should have: spec.webhook (Evolution cannot sign it, so no
 * key goes with it), else the operator's receiver with the token header, else none. An empty
 * spec list means every event, sent as the full list: an enabled webhook without events
 * makes Evolution fail.
 */
function targetOf(ref: InstanceRef): Target | undefined {
  if (ref.webhook) {
    const events = ref.webhook.events.length > 0 ? ref.webhook.events : EVOLUTION_WEBHOOK_EVENTS;
    return { url: ref.webhook.url, events, headers: {} };
  }
  if (ref.providerEvents) {
    const token = evolutionEventsToken(ref.providerEvents.hmacKey);
    redactor.remember(token);
    // The instance rides in the URL too: an event can come before status records the name.
    const url = `${ref.providerEvents.url}?instance=${encodeURIComponent(`${ref.namespace}/${ref.name}`)}`;
    return { url, events: EVOLUTION_LIFECYCLE_EVENTS, headers: { [EVOLUTION_EVENTS_TOKEN_HEADER]: token } };
  }
  return undefined;
}

/** A webhook the operator wired: the URL status recorded, or one carrying our receiver's token header. */
function isOurs(ref: InstanceRef, webhook: Webhook): boolean {
  return webhook.url === ref.previousWebhookUrl || webhook.headers?.[EVOLUTION_EVENTS_TOKEN_HEADER] !== undefined;
}

/** A stateless client for one Evolution API server (settings.apiKey is its global key). */
export const createEvolutionClient: ProviderFactory = (settings, deps) => new EvolutionClient(settings, deps);
