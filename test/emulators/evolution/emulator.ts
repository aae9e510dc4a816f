/**
 * A loopback emulator of Evolution API v2 (WhatsApp-Baileys integration), modelled on its
 * source (github.com/EvolutionAPI/evolution-api, tag 2.3.6 unless a line says otherwise).
 * Paths below are files of that repository.
 *
 * Routes (src/api/routes/index.router.ts, src/api/routes/instance.router.ts,
 * src/api/integrations/event/webhook/webhook.router.ts):
 * - `GET /` (no guard): `{status: 200, message, version, clientName, manager, documentation, whatsappWebVersion}`.
 * - `POST /verify-creds` (authGuard only): `{status: 200, message: "Credentials are valid", facebookAppId, ...}`.
 * - `POST /instance/create` → 201; `GET /instance/connect/{name}[?number=]`, `GET /instance/connectionState/{name}`,
 *   `GET /instance/fetchInstances[?instanceName=]`, `POST /instance/restart/{name}`, `DELETE /instance/logout/{name}`,
 *   `DELETE /instance/delete/{name}` → 200; `POST /webhook/set/{name}` → 201, `GET /webhook/find/{name}` → 200.
 *
 * Guards, in the order index.router.ts applies them (`[instanceExistsGuard, instanceLoggedGuard, authGuard.apikey]`):
 * - An unknown instance in the path is 404 "The "x" instance does not exist" before the key is looked at
 *   (src/api/guards/instance.guard.ts); create with a name in use is 403 "This name "x" is already in use.".
 * - The `apikey` header (src/api/guards/auth.guard.ts): missing → 401; the global key passes everything;
 *   otherwise a route naming an instance passes with that instance's token, and fetchInstances passes with any
 *   instance's token (and lists only that instance: instance.controller.ts fetchInstances); anything else 401.
 * - Errors are `{status, error, response: {message}}` with the exception's status (src/main.ts error handler,
 *   src/exceptions/*.ts); message is an array of what was thrown (BadRequestException(...objectError)).
 *
 * Instances (src/api/controllers/instance.controller.ts):
 * - create needs `integration` "WHATSAPP-BAILEYS" (channel.controller.ts init returns null otherwise: 400
 *   "Invalid integration"). The token is the given `token`, else an upper-case UUID, answered as `hash`.
 *   A `webhook` in the create body with no `events` array makes eventManager.setInstance → webhook.set read
 *   `events.length` of undefined; the catch of createInstance deletes the instance again and answers 400 with
 *   the TypeError's text (event.manager.ts setInstance, webhook.controller.ts set, createInstance catch).
 * - connectToWhatsapp: unknown state → `{error: true, message}` with 200; open → connectionState; connecting →
 *   the current `qrCode` `{pairingCode, code, base64, count}` (no side effect, `number` ignored); close → starts
 *   Baileys with `number` and answers `qrCode` after `await delay(2000)`. Before the first QR of the instance
 *   that is `{count: 0}` (the constructor sets `instance.qrcode = {count: 0}`; undefined fields drop out of JSON).
 *   The 2 s wait is modelled without time: a QR the schedule issues within it is issued at once and answered.
 * - restart (2.0.6 and later, commit c6db03ff): close → `{error: true, message: "...is not connected"}` with 200;
 *   open/connecting → the socket ends and reconnects. Before 2.0.6 a closed instance answered connectionState.
 * - logout: close → 400 "The "x" instance is not connected" (every tag, v1.8 to 2.3.6); otherwise
 *   logoutInstance (the link is removed, state close) and `{status: "SUCCESS", error: false, response}`.
 * - delete: connecting/open are logged out first (2.2.1 and later, commit cfe6bd9a; before, an open instance was
 *   refused with 400 "... needs to be disconnected"), then removed (remove.instance → cleaningUp).
 * - fetchInstances: the Prisma rows (monitor.service.ts instanceInfo), every field, the `token` included;
 *   an unknown `instanceName` is 404 `Instance "x" not found`.
 * - cleaningUp after a logout sets connectionStatus close but keeps `ownerJid` (monitor.service.ts).
 * - The row's `connectionStatus` is the database's, not the socket's: close at create (monitor.service.ts
 *   saveInstance, Baileys), connecting when a QR is issued, open when the phone links, close on a close that does
 *   not reconnect (whatsapp.baileys.service.ts connectionUpdate). A restart of a linked session leaves it open.
 *
 * Connection and QR (src/api/integrations/channel/whatsapp/whatsapp.baileys.service.ts, connectionUpdate):
 * - Baileys is built with `qrTimeout: 45_000`: a new QR every 45 s while nobody scans. Each QR increments
 *   `qrcode.count`; the QR that would come when count already equals QRCODE_LIMIT (env.config.ts, default 30)
 *   is not issued: QRCODE_UPDATED "QR code limit reached", CONNECTION_UPDATE `refused`, then `no.connection`
 *   (monitor.service.ts) logs the socket out, resets the count to 0 and sets the state to close.
 * - With a phone number, each QR first waits `delay(1000)` and asks Baileys for a pairing code (8 characters).
 * - open: `ownerJid` = `<digits>@s.whatsapp.net`; the link survives restarts; logout removes it.
 *
 * Webhooks (webhook.controller.ts, webhook.schema.ts, event.controller.ts):
 * - One per instance (Prisma `Webhook.instanceId @unique`), set by upsert. Body `{webhook: {enabled, url, headers,
 *   byEvents, base64, events}}`; `enabled` and `url` required, `events` items from EventController.events.
 *   enabled false stores `events: []`; enabled with `[]` stores every event; enabled with no `events` throws the
 *   TypeError (500 from the error handler).
 * - A delivery is a POST of `{event, instance, data, destination, date_time, sender, server_url, apikey}` to the
 *   URL with the stored headers; `apikey` is the instance token (channel.service.ts sendDataWebhook, with
 *   AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES true, env.example). The event is sent when its upper-case name is
 *   in `events`. Nothing is signed; a `jwt_key` header is replaced by `Authorization: Bearer <HS256 JWT>` of
 *   `{iat, exp: iat + 600, app: "evolution", action: "webhook"}` (generateJwtToken, 2.3.0 and later).
 *   Retries are not modelled: each event is POSTed once.
 * Settings and proxy (src/api/routes/settings.router.ts, proxy.router.ts, both behind the same guards; 3454bec):
 * - create stores a settings row with every flag false and msgCall "" (instance.controller.ts createInstance,
 *   `settings: wa.LocalSettings`), so settings/find answers the row from the start.
 * - `POST /settings/set/{name}` → 201 `{settings: {instanceName, settings: body}}`; the body must carry all six flags
 *   rejectCall, groupsIgnore, alwaysOnline, readMessages, readStatus, syncFullHistory (settings.schema.ts required),
 *   else 400; the row is replaced by upsert (channel.service.ts setSettings).
 * - `GET /settings/find/{name}` → 200 the flags, or null without a row (settings.service.ts find).
 * - `POST /proxy/set/{name}` → 201 `{proxy: {instanceName, proxy: body}}`; enabled, host, port, protocol required
 *   (proxy.schema.ts); enabled false blanks the other fields (proxy.controller.ts createProxy). The real one then
 *   tests the proxy by fetching icanhazip.com through it (testProxy) and answers 400 "Invalid proxy" when it
 *   fails; the emulator has no network, so `failingProxyHosts` scripts that answer.
 * - `GET /proxy/find/{name}` → 200 the Prisma row, or null without one (proxy.service.ts find catches the NotFound).
 * Evolution has no rate limit of its own; `respondNext` scripts what a proxy in front of it would answer.
 */
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { realClock, type Clock, type Timer } from "../shared/clock.ts";
import { postRaw, Router, type EmulatorRequest, type Reply } from "../shared/http.ts";
import { jsonBody, LoopbackEmulator } from "../shared/loopback-emulator.ts";
import { renderQrPng } from "../shared/qr-png.ts";

/** EventController.events (src/api/integrations/event/event.controller.ts), the names webhook/set accepts. */
export const EVOLUTION_SOURCE_EVENTS = [
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

export type EvolutionState = "open" | "connecting" | "close";

export interface EvolutionEmulatorOptions {
  /** AUTHENTICATION_API_KEY. Default "evolution-global-key". */
  readonly globalKey?: string;
  readonly clock?: Clock;
  /** package.json version answered by `GET /`, and the behaviour of the version-dependent calls. Default "2.3.6". */
  readonly version?: string;
  /** From starting Baileys to its first QR. Default 500. */
  readonly firstQrDelayMs?: number;
  /** From starting Baileys with a link to open. Default 1000. */
  readonly reconnectDelayMs?: number;
  /** QRCODE_LIMIT. Default 30. */
  readonly qrLimit?: number;
  /** Baileys' qrTimeout; Evolution hard-codes 45000 (the default), shorter only to watch rotation in real time. */
  readonly qrTimeoutMs?: number;
  /** Proxy hosts whose test (proxy.controller.ts testProxy) fails: proxy/set answers 400 "Invalid proxy". */
  readonly failingProxyHosts?: readonly string[];
}

/** The settings row (channel.service.ts findSettings; wavoipToken left out). */
export interface EvolutionSettings {
  rejectCall: boolean;
  msgCall: string;
  groupsIgnore: boolean;
  alwaysOnline: boolean;
  readMessages: boolean;
  readStatus: boolean;
  syncFullHistory: boolean;
}

/** The Prisma Proxy row (proxy.dto.ts). */
export interface EvolutionProxy {
  enabled: boolean;
  host: string;
  port: string;
  protocol: string;
  username: string;
  password: string;
}

const SETTINGS_FLAGS = ["rejectCall", "groupsIgnore", "alwaysOnline", "readMessages", "readStatus", "syncFullHistory"] as const;

export interface EvolutionInstanceSnapshot {
  readonly name: string;
  readonly id: string;
  readonly token: string;
  readonly state: EvolutionState;
  readonly dbStatus: EvolutionState;
  readonly linkedPhone: string | undefined;
  readonly ownerJid: string | null;
  readonly qrCount: number;
  readonly pairingNumber: string | undefined;
  readonly webhook: EvolutionWebhookSnapshot | null;
}

export interface EvolutionWebhookSnapshot {
  readonly url: string;
  readonly enabled: boolean;
  readonly events: readonly string[];
  readonly headers: Readonly<Record<string, string>> | null;
}

export interface EvolutionDelivery {
  readonly url: string;
  readonly event: string;
  readonly instance: string;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
  status: number | undefined;
}

interface QrState {
  count: number;
  code?: string;
  pairingCode?: string | null;
}

interface Instance {
  readonly id: string;
  readonly name: string;
  readonly token: string;
  readonly createdAt: string;
  readonly salt: string;
  state: EvolutionState;
  /** Instance.connectionStatus in the database. */
  dbStatus: EvolutionState;
  /** Baileys' creds: the phone linked, until a logout. */
  linkedPhone: string | undefined;
  ownerJid: string | null;
  qrcode: QrState;
  phoneNumber: string | undefined;
  timer: Timer | undefined;
  webhook: { url: string; enabled: boolean; events: string[]; headers: Record<string, string> | null; byEvents: boolean; base64: boolean; updatedAt: string } | null;
  settings: EvolutionSettings;
  proxy: EvolutionProxy | null;
}

/** Baileys' qrTimeout as Evolution configures it (whatsapp.baileys.service.ts createClient). */
export const EVOLUTION_QR_TIMEOUT_MS = 45_000;
/** `await delay(2000)` in connectToWhatsapp for a closed instance. */
const CONNECT_WAIT_MS = 2000;
/** `await delay(1000)` before requestPairingCode in connectionUpdate. */
const PAIRING_DELAY_MS = 1000;

export class EvolutionEmulator extends LoopbackEmulator {
  readonly deliveries: EvolutionDelivery[] = [];
  readonly clock: Clock;
  readonly version: string;
  readonly #globalKey: string;
  readonly #firstQrDelayMs: number;
  readonly #reconnectDelayMs: number;
  readonly #qrLimit: number;
  readonly #qrTimeoutMs: number;
  readonly #instances = new Map<string, Instance>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #router = new Router();
  readonly #failingProxyHosts: ReadonlySet<string>;

  constructor(options: EvolutionEmulatorOptions = {}) {
    super();
    this.clock = options.clock ?? realClock;
    this.version = options.version ?? "2.3.6";
    this.#globalKey = options.globalKey ?? "evolution-global-key";
    this.#firstQrDelayMs = options.firstQrDelayMs ?? 500;
    this.#reconnectDelayMs = options.reconnectDelayMs ?? 1000;
    this.#qrLimit = options.qrLimit ?? 30;
    this.#qrTimeoutMs = options.qrTimeoutMs ?? EVOLUTION_QR_TIMEOUT_MS;
    this.#failingProxyHosts = new Set(options.failingProxyHosts ?? []);
    this.#router
      .add("POST", "/instance/create", (req) => this.#create(req))
      .add("GET", "/instance/fetchInstances", (req) => this.#fetchInstances(req))
      .add("GET", "/instance/connect/{name}", (req) => this.#named(req, (i) => this.#connect(i, req.query.get("number") ?? undefined)))
      .add("GET", "/instance/connectionState/{name}", (req) => this.#named(req, (i) => ok(connectionState(i))))
      .add("POST", "/instance/restart/{name}", (req) => this.#named(req, (i) => this.#restart(i)))
      .add("DELETE", "/instance/logout/{name}", (req) => this.#named(req, (i) => this.#logout(i)))
      .add("DELETE", "/instance/delete/{name}", (req) => this.#named(req, (i) => this.#delete(i)))
      .add("POST", "/webhook/set/{name}", (req) => this.#named(req, (i) => this.#setWebhook(i, req)))
      .add("GET", "/webhook/find/{name}", (req) => this.#named(req, (i) => ok(i.webhook ? webhookRow(i) : null)))
      .add("POST", "/settings/set/{name}", (req) => this.#named(req, (i) => this.#setSettings(i, req)))
      .add("GET", "/settings/find/{name}", (req) => this.#named(req, (i) => ok({ ...i.settings })))
      .add("POST", "/proxy/set/{name}", (req) => this.#named(req, (i) => this.#setProxy(i, req)))
      .add("GET", "/proxy/find/{name}", (req) => this.#named(req, (i) => ok(i.proxy ? { ...i.proxy } : null)));
  }

  override async stop(): Promise<void> {
    for (const instance of this.#instances.values()) instance.timer?.cancel();
    await this.settleDeliveries();
    await super.stop();
  }

  async settleDeliveries(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  instance(name: string): EvolutionInstanceSnapshot | undefined {
    const i = this.#instances.get(name);
    if (!i) return undefined;
    const webhook = i.webhook ? { url: i.webhook.url, enabled: i.webhook.enabled, events: i.webhook.events, headers: i.webhook.headers } : null;
    return {
      name: i.name,
      id: i.id,
      token: i.token,
      state: i.state,
      dbStatus: i.dbStatus,
      linkedPhone: i.linkedPhone,
      ownerJid: i.ownerJid,
      qrCount: i.qrcode.count,
      pairingNumber: i.phoneNumber,
      webhook,
    };
  }

  instances(): EvolutionInstanceSnapshot[] {
    return [...this.#instances.keys()].flatMap((name) => this.instance(name) ?? []);
  }

  /** The instance's settings row and proxy row, as settings/find and proxy/find answer them. */
  sessionSettings(name: string): { readonly settings: EvolutionSettings; readonly proxy: EvolutionProxy | null } | undefined {
    const i = this.#instances.get(name);
    return i ? { settings: { ...i.settings }, proxy: i.proxy ? { ...i.proxy } : null } : undefined;
  }

  /** Somebody changes the settings in Evolution's manager: not in `calls`. */
  changeSettingsBehindBack(name: string, change: Partial<EvolutionSettings>): void {
    const i = this.#hooked(name);
    i.settings = { ...i.settings, ...change };
  }

  /** Creates an instance outside the operator, as a person in Evolution's manager would. */
  seed(name: string, token = randomUUID().toUpperCase()): EvolutionInstanceSnapshot {
    this.#add(name, token);
    return this.instance(name) as EvolutionInstanceSnapshot;
  }

  /** The payload of the QR the instance shows now, or undefined when it shows none. */
  currentQr(name: string): string | undefined {
    const i = this.#instances.get(name);
    return i?.state === "connecting" && i.linkedPhone === undefined ? i.qrcode.code : undefined;
  }

  /** The pairing code issued with the current QR, when the session was started with a number. */
  currentPairingCode(name: string): string | undefined {
    return this.currentQr(name) === undefined ? undefined : (this.#instances.get(name)?.qrcode.pairingCode ?? undefined);
  }

  /** The phone scans the current QR (or types the pairing code): linked, open. */
  scan(name: string, phone: string): void {
    const i = this.#hooked(name);
    if (this.currentQr(name) === undefined) throw new Error(`instance ${name} shows no QR (state ${i.state})`);
    i.linkedPhone = phone;
    this.#open(i);
  }

  /** The phone removes the linked device: Baileys closes with loggedOut and does not reconnect. */
  unlinkFromPhone(name: string): void {
    const i = this.#hooked(name);
    this.#loggedOut(i);
  }

  protected unavailableReply(): Reply {
    // A stopped Evolution behind a proxy; Evolution itself is simply not there.
    return { status: 503, body: { status: 503, error: "Service Unavailable", response: { message: ["Service Unavailable"] } } };
  }

  protected async handle(req: EmulatorRequest): Promise<Reply> {
    if (req.method === "GET" && req.path === "/") return ok(this.#welcome());
    if (req.method === "POST" && req.path === "/verify-creds") {
      if (apikeyOf(req) !== this.#globalKey && !this.#isInstanceToken(apikeyOf(req))) return unauthorized();
      return ok({ status: 200, message: "Credentials are valid", facebookAppId: null, facebookConfigId: null, facebookUserToken: null });
    }
    const match = this.#router.match(req.method, req.path);
    if (!match.route) return fail(404, "Not Found", [`Cannot ${req.method} ${req.path}`]);
    const params = match.params;
    const name = params["name"];
    // instanceExistsGuard before authGuard (index.router.ts guards).
    if (name !== undefined && !this.#instances.has(name)) return fail(404, "Not Found", [`The "${name}" instance does not exist`]);
    if (req.path === "/instance/create") {
      const wanted = (jsonBody(req) as { instanceName?: unknown } | undefined)?.instanceName;
      if (typeof wanted === "string" && this.#instances.has(wanted)) return fail(403, "Forbidden", [`This name "${wanted}" is already in use.`]);
    }
    const key = apikeyOf(req);
    if (!key) return unauthorized();
    if (key !== this.#globalKey) {
      const allowed =
        (name !== undefined && this.#instances.get(name)?.token === key) || (req.path === "/instance/fetchInstances" && this.#isInstanceToken(key));
      if (!allowed) return unauthorized();
    }
    return match.route.handler({ ...req, params });
  }

  #welcome(): Record<string, unknown> {
    return {
      status: 200,
      message: "Welcome to the Evolution API, it is working!",
      version: this.version,
      clientName: "evolution_exchange",
      manager: "http://localhost/manager",
      documentation: "https://doc.evolution-api.com",
      whatsappWebVersion: "2.3000.1025190524",
    };
  }

  #isInstanceToken(key: string | undefined): boolean {
    return key !== undefined && [...this.#instances.values()].some((i) => i.token === key);
  }

  #create(req: EmulatorRequest): Reply {
    const body = jsonBody(req) as Record<string, unknown> | undefined;
    const name = body?.["instanceName"];
    if (typeof name !== "string" || name.length === 0) return fail(400, "Bad Request", ['The "instanceName" cannot be empty']);
    if (body?.["integration"] !== "WHATSAPP-BAILEYS") return fail(400, "Bad Request", ["Invalid integration"]);
    const token = typeof body["token"] === "string" && body["token"] ? body["token"] : randomUUID().toUpperCase();
    const instance = this.#add(name, token);
    // `rejectCall: instanceData.rejectCall === true`, `msgCall: instanceData.msgCall || ''`, ... (createInstance).
    for (const flag of SETTINGS_FLAGS) instance.settings[flag] = body[flag] === true;
    instance.settings.msgCall = typeof body["msgCall"] === "string" ? body["msgCall"] : "";
    const webhook = body["webhook"] as { url?: string; events?: unknown; headers?: Record<string, string> } | undefined;
    if (webhook) {
      if (!Array.isArray(webhook.events)) {
        this.#instances.delete(name);
        return fail(400, "Bad Request", ["Cannot read properties of undefined (reading 'length')"]);
      }
      this.#storeWebhook(instance, { enabled: true, url: webhook.url ?? "", events: webhook.events as string[], headers: webhook.headers ?? null });
    }
    return ok(
      {
        instance: { instanceName: name, instanceId: instance.id, integration: "WHATSAPP-BAILEYS", webhookWaBusiness: null, accessTokenWaBusiness: "", status: instance.state },
        hash: token,
        webhook: { webhookUrl: webhook?.url, webhookHeaders: webhook?.headers },
        websocket: {},
        rabbitmq: {},
        nats: {},
        sqs: {},
        settings: { rejectCall: false, msgCall: "", groupsIgnore: false, alwaysOnline: false, readMessages: false, readStatus: false, syncFullHistory: false, wavoipToken: "" },
      },
      201,
    );
  }

  #add(name: string, token: string): Instance {
    const instance: Instance = {
      id: randomUUID(),
      name,
      token,
      createdAt: new Date(this.clock.now()).toISOString(),
      salt: randomBytes(8).toString("hex"),
      state: "close",
      dbStatus: "close",
      linkedPhone: undefined,
      ownerJid: null,
      qrcode: { count: 0 },
      phoneNumber: undefined,
      timer: undefined,
      webhook: null,
      settings: { rejectCall: false, msgCall: "", groupsIgnore: false, alwaysOnline: false, readMessages: false, readStatus: false, syncFullHistory: false },
      proxy: null,
    };
    this.#instances.set(name, instance);
    return instance;
  }

  #fetchInstances(req: EmulatorRequest): Reply {
    const key = apikeyOf(req);
    const wanted = req.query.get("instanceName");
    let rows = [...this.#instances.values()];
    if (key !== this.#globalKey) {
      rows = rows.filter((i) => i.token === key && (!wanted || i.name === wanted));
      if (rows.length === 0) return unauthorized();
    } else if (wanted) {
      if (!this.#instances.has(wanted)) return fail(404, "Not Found", [`Instance "${wanted}" not found`]);
      rows = rows.filter((i) => i.name === wanted);
    }
    return ok(rows.map((i) => this.#row(i)));
  }

  #row(i: Instance): Record<string, unknown> {
    return {
      id: i.id,
      name: i.name,
      connectionStatus: i.dbStatus,
      ownerJid: i.ownerJid,
      profileName: i.ownerJid ? "Support" : null,
      profilePicUrl: null,
      integration: "WHATSAPP-BAILEYS",
      number: null,
      businessId: null,
      token: i.token,
      clientName: "evolution_exchange",
      disconnectionReasonCode: null,
      disconnectionObject: null,
      disconnectionAt: null,
      createdAt: i.createdAt,
      updatedAt: i.createdAt,
      Chatwoot: null,
      Proxy: null,
      Rabbitmq: null,
      Nats: null,
      Sqs: null,
      Websocket: null,
      Setting: { id: `set_${i.id}`, rejectCall: false, msgCall: "", groupsIgnore: false, alwaysOnline: false, readMessages: false, readStatus: false, syncFullHistory: false },
      _count: { Message: 0, Contact: 0, Chat: 0 },
    };
  }

  async #connect(i: Instance, number: string | undefined): Promise<Reply> {
    if (i.state === "open") return ok(connectionState(i));
    if (i.state === "connecting") return ok(await qrCodeView(i));
    this.#startBaileys(i, number);
    return ok(await qrCodeView(i));
  }

  async #restart(i: Instance): Promise<Reply> {
    if (i.state === "close") {
      if (versionBefore(this.version, "2.0.6")) return ok(connectionState(i));
      return ok({ error: true, message: `BadRequestException: The "${i.name}" instance is not connected` });
    }
    // client.end(new Error('restart')): not a loggedOut code, so Baileys reconnects with the same number.
    this.#startBaileys(i, i.phoneNumber);
    return ok(i.state === "open" ? connectionState(i) : await qrCodeView(i));
  }

  #logout(i: Instance): Reply {
    if (i.state === "close") return fail(400, "Bad Request", [`The "${i.name}" instance is not connected`]);
    this.#loggedOut(i);
    return ok({ status: "SUCCESS", error: false, response: { message: "Instance logged out" } });
  }

  #delete(i: Instance): Reply {
    if (i.state === "open" && versionBefore(this.version, "2.2.1")) {
      return fail(400, "Bad Request", [`The "${i.name}" instance needs to be disconnected`]);
    }
    if (i.state !== "close") this.#loggedOut(i);
    this.#emit(i, "INSTANCE_DELETE", "instance.delete", { instanceName: i.name, instanceId: i.id });
    this.#emit(i, "REMOVE_INSTANCE", "remove.instance", null);
    i.timer?.cancel();
    this.#instances.delete(i.name);
    return ok({ status: "SUCCESS", error: false, response: { message: "Instance deleted" } });
  }

  #setWebhook(i: Instance, req: EmulatorRequest): Reply {
    const body = jsonBody(req) as { webhook?: Record<string, unknown> } | undefined;
    const webhook = body?.webhook;
    if (!webhook || typeof webhook !== "object") return fail(400, "Bad Request", ['instance requires property "webhook"']);
    if (typeof webhook["enabled"] !== "boolean") return fail(400, "Bad Request", ['webhook requires property "enabled"']);
    if (typeof webhook["url"] !== "string" || webhook["url"] === "") return fail(400, "Bad Request", ['The "url" cannot be empty']);
    const events = webhook["events"];
    if (events !== undefined) {
      if (!Array.isArray(events)) return fail(400, "Bad Request", ["webhook.events is not of a type(s) array"]);
      const unknown = events.find((e) => !(EVOLUTION_SOURCE_EVENTS as readonly unknown[]).includes(e));
      if (unknown !== undefined) return fail(400, "Bad Request", [`webhook.events[0] is not one of enum values: ${EVOLUTION_SOURCE_EVENTS.join(",")}`]);
    }
    let stored: string[];
    if (!webhook["enabled"]) stored = [];
    else if (!Array.isArray(events)) return fail(500, "Internal Server Error", "Cannot read properties of undefined (reading 'length')");
    else stored = events.length === 0 ? [...EVOLUTION_SOURCE_EVENTS] : (events as string[]);
    const headers = webhook["headers"] && typeof webhook["headers"] === "object" ? (webhook["headers"] as Record<string, string>) : null;
    this.#storeWebhook(i, { enabled: webhook["enabled"], url: webhook["url"], events: stored, headers });
    return ok(webhookRow(i), 201);
  }

  #setSettings(i: Instance, req: EmulatorRequest): Reply {
    const body = jsonBody(req) as Record<string, unknown> | undefined;
    if (!body || typeof body !== "object") return fail(400, "Bad Request", ["instance is not of a type(s) object"]);
    const missing = SETTINGS_FLAGS.find((flag) => typeof body[flag] !== "boolean");
    if (missing) return fail(400, "Bad Request", [`instance requires property "${missing}"`]);
    if (body["msgCall"] !== undefined && typeof body["msgCall"] !== "string") return fail(400, "Bad Request", ["instance.msgCall is not of a type(s) string"]);
    const flags = Object.fromEntries(SETTINGS_FLAGS.map((flag) => [flag, body[flag] as boolean])) as Omit<EvolutionSettings, "msgCall">;
    // upsert with data.msgCall: an absent one is stored as it was given (undefined leaves Prisma's value).
    i.settings = { ...i.settings, ...flags, ...(typeof body["msgCall"] === "string" ? { msgCall: body["msgCall"] } : {}) };
    return ok({ settings: { instanceName: i.name, instanceId: i.id, settings: body } }, 201);
  }

  #setProxy(i: Instance, req: EmulatorRequest): Reply {
    const body = jsonBody(req) as Record<string, unknown> | undefined;
    if (!body || typeof body !== "object") return fail(400, "Bad Request", ["instance is not of a type(s) object"]);
    if (typeof body["enabled"] !== "boolean") return fail(400, "Bad Request", ['instance requires property "enabled"']);
    for (const field of ["host", "port", "protocol"] as const) {
      if (typeof body[field] !== "string") return fail(400, "Bad Request", [`instance requires property "${field}"`]);
    }
    const text = (key: string) => (typeof body[key] === "string" ? (body[key] as string) : "");
    const proxy: EvolutionProxy = body["enabled"]
      ? { enabled: true, host: text("host"), port: text("port"), protocol: text("protocol"), username: text("username"), password: text("password") }
      : { enabled: false, host: "", port: "", protocol: "", username: "", password: "" };
    if (proxy.host && this.#failingProxyHosts.has(proxy.host)) return fail(400, "Bad Request", ["Invalid proxy"]);
    i.proxy = proxy;
    return ok({ proxy: { instanceName: i.name, instanceId: i.id, proxy: body } }, 201);
  }

  #storeWebhook(i: Instance, webhook: { enabled: boolean; url: string; events: string[]; headers: Record<string, string> | null }): void {
    i.webhook = { ...webhook, byEvents: false, base64: false, updatedAt: new Date(this.clock.now()).toISOString() };
  }

  /** createClient: connecting; a link reconnects to open, none shows QR codes. */
  #startBaileys(i: Instance, number: string | undefined): void {
    i.timer?.cancel();
    i.phoneNumber = number;
    this.#setState(i, "connecting");
    if (i.linkedPhone !== undefined) {
      i.timer = this.clock.schedule(this.#reconnectDelayMs, () => this.#open(i));
      return;
    }
    const firstQrAfter = this.#firstQrDelayMs + (number ? PAIRING_DELAY_MS : 0);
    if (firstQrAfter <= CONNECT_WAIT_MS) this.#nextQr(i);
    else i.timer = this.clock.schedule(firstQrAfter, () => this.#nextQr(i));
  }

  #nextQr(i: Instance): void {
    i.timer = undefined;
    if (i.qrcode.count === this.#qrLimit) {
      this.#emit(i, "QRCODE_UPDATED", "qrcode.updated", { message: "QR code limit reached, please login again", statusCode: 500 });
      this.#emit(i, "CONNECTION_UPDATE", "connection.update", { instance: i.name, state: "refused", statusReason: 428 });
      // no.connection: logout, count back to 0, state close.
      i.qrcode = { count: 0 };
      i.state = "close";
      i.dbStatus = "close";
      return;
    }
    i.qrcode.count += 1;
    const code = `2@${createHmac("sha256", i.salt).update(String(i.qrcode.count)).digest("base64url").slice(0, 40)},evolution-emulator,${i.qrcode.count}`;
    i.qrcode.pairingCode = i.phoneNumber ? pairingCodeFor(i.salt, i.qrcode.count) : null;
    i.qrcode.code = code;
    i.dbStatus = "connecting";
    this.#emit(i, "QRCODE_UPDATED", "qrcode.updated", { qrcode: { instance: i.name, pairingCode: i.qrcode.pairingCode, code } });
    i.timer = this.clock.schedule(this.#qrTimeoutMs, () => this.#nextQr(i));
  }

  #open(i: Instance): void {
    i.timer?.cancel();
    i.timer = undefined;
    i.ownerJid = `${i.linkedPhone}@s.whatsapp.net`;
    i.dbStatus = "open";
    this.#setState(i, "open");
  }

  /** logoutInstance / a loggedOut close: no reconnect, creds removed, state close (ownerJid kept). */
  #loggedOut(i: Instance): void {
    i.timer?.cancel();
    i.timer = undefined;
    i.linkedPhone = undefined;
    i.dbStatus = "close";
    this.#setState(i, "close");
    this.#emit(i, "LOGOUT_INSTANCE", "logout.instance", null);
  }

  #setState(i: Instance, state: EvolutionState): void {
    if (i.state === state) return;
    i.state = state;
    this.#emit(i, "CONNECTION_UPDATE", "connection.update", { instance: i.name, state, statusReason: 200 });
  }

  #emit(i: Instance, upper: string, event: string, data: unknown): void {
    const webhook = i.webhook;
    if (!webhook?.enabled || !webhook.events.includes(upper) || !/^https?:\/\//.test(webhook.url)) return;
    const body = JSON.stringify({
      event,
      instance: i.name,
      data,
      destination: webhook.url,
      date_time: new Date(this.clock.now()).toISOString(),
      sender: i.ownerJid,
      server_url: "http://localhost:8080",
      apikey: i.token,
    });
    const headers: Record<string, string> = { ...(webhook.headers ?? {}), "Content-Type": "application/json" };
    if ("jwt_key" in headers) {
      headers["Authorization"] = `Bearer ${webhookJwt(headers["jwt_key"] as string, Math.floor(this.clock.now() / 1000))}`;
      delete headers["jwt_key"];
    }
    const delivery: EvolutionDelivery = { url: webhook.url, event, instance: i.name, body, headers, status: undefined };
    this.deliveries.push(delivery);
    const sent = postRaw(webhook.url, headers, Buffer.from(body)).then((result) => {
      delivery.status = result.status;
      this.#inFlight.delete(sent);
    });
    this.#inFlight.add(sent);
  }

  #named(req: EmulatorRequest, action: (i: Instance) => Reply | Promise<Reply>): Reply | Promise<Reply> {
    return action(this.#instances.get(req.params["name"] ?? "") as Instance);
  }

  #hooked(name: string): Instance {
    const i = this.#instances.get(name);
    if (!i) throw new Error(`the emulator has no instance ${name}`);
    return i;
  }
}

/** The JWT generateJwtToken signs with a webhook's `jwt_key` (HS256). */
export function webhookJwt(key: string, iat: number): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part({ iat, exp: iat + 600, app: "evolution", action: "webhook" })}`;
  return `${unsigned}.${createHmac("sha256", key).update(unsigned).digest("base64url")}`;
}

function pairingCodeFor(salt: string, count: number): string {
  const alphabet = "ABCDEFGHJKLMNPQRSTVWXYZ0123456789";
  const bytes = createHmac("sha256", salt).update(`pair:${count}`).digest();
  return Array.from(bytes.subarray(0, 8), (byte) => alphabet[byte % alphabet.length]).join("");
}

/** `{instance: {instanceName, state}}` (instance.controller.ts connectionState). */
function connectionState(i: Instance): Record<string, unknown> {
  return { instance: { instanceName: i.name, state: i.state } };
}

/** The `qrCode` getter: undefined fields drop out of the JSON answer, leaving `{count: 0}` before the first QR. */
async function qrCodeView(i: Instance): Promise<Record<string, unknown>> {
  const { count, code, pairingCode } = i.qrcode;
  // qrcode.toDataURL(qr) fills base64 beside code.
  const base64 = code === undefined ? undefined : `data:image/png;base64,${(await renderQrPng(code)).toString("base64")}`;
  return JSON.parse(JSON.stringify({ pairingCode, code, base64, count })) as Record<string, unknown>;
}

function webhookRow(i: Instance): Record<string, unknown> {
  const w = i.webhook;
  if (!w) return {};
  return {
    id: `wh_${i.id}`,
    url: w.url,
    headers: w.headers,
    enabled: w.enabled,
    events: w.events,
    webhookByEvents: w.byEvents,
    webhookBase64: w.base64,
    createdAt: w.updatedAt,
    updatedAt: w.updatedAt,
    instanceId: i.id,
  };
}

function versionBefore(version: string, than: string): boolean {
  const a = version.split(/[.-]/).map((part) => Number.parseInt(part, 10) || 0);
  const b = than.split(".").map((part) => Number.parseInt(part, 10));
  for (let k = 0; k < 3; k++) if ((a[k] ?? 0) !== (b[k] ?? 0)) return (a[k] ?? 0) < (b[k] ?? 0);
  return false;
}

function apikeyOf(req: EmulatorRequest): string | undefined {
  const value = req.headers["apikey"];
  return (Array.isArray(value) ? value[0] : value) || undefined;
}

function ok(body: unknown, status = 200): Reply {
  return { status, body };
}

function fail(status: number, error: string, message: unknown): Reply {
  return { status, body: { status, error, response: { message } } };
}

function unauthorized(): Reply {
  return fail(401, "Unauthorized", "Unauthorized");
}
