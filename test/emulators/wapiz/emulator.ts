/**
 * A loopback emulator of WAPIZ devices (/work/shared/providers/wapiz-devices.source.txt):
 * cookie `wa_token` auth, devices by UUID, a QR endpoint that answers a PNG until the
 * device is logged in, per-device webhook URL, plan limits.
 *
 * Model (the page describes the words, not the transitions):
 * - A new device is `connected` (connected to WhatsApp, not logged in) and shows a QR that
 *   changes every `qrRotationMs` (20 s, "kedaluwarsa sekitar 20 detik"), without end.
 * - `scan(id)` links it: `logged_in`; the QR endpoint then answers JSON `{loggedIn: true, message}`.
 * - `disconnect(id)` drops the connection, keeping the link; `unlink(id)` is the phone
 *   removing the linked device. Both read `disconnected`.
 * - Asking a disconnected device for its QR reconnects it, as the page's "poll this
 *   endpoint until logged_in" implies: with a link it logs straight back in (JSON),
 *   without one it shows a fresh QR (PNG).
 *
 * Choices where the page is silent (tests rely on them):
 * - Error bodies are `{error: "<message>"}` (the page shows only the messages): 401
 *   "Unauthorized"; 403 "Paket Free maksimal 1 device" (Lite/Regular name their plan);
 *   404 "Device tidak ditemukan" for unknown ids, another account's device or an unknown
 *   route; 400 for a PATCH body without a string-or-null `webhookUrl`, or a URL that is not http(s).
 * - An empty `webhookUrl` removes the webhook like null ("kirim null atau kosongkan").
 * - WAPIZ documents no rate limit and no outage answer: `respondNext` scripts a 429 for
 *   tests; `setAvailable(false)` answers 503 `{error: "Service Unavailable"}`.
 * - Incoming-message deliveries to the webhook URL are not modelled.
 * - The QR answer's Content-Type: the page only says "a PNG image"; `qrContentType` sets
 *   the header (default image/png), so a client can be held to the bytes, not the label.
 *
 * Accounts and login, from WAPIZ's authentication page (wapiz.mutasiku.co.id/docs/authentication,
 * not among the shared/providers pages): the token is a JWT kept in the HTTP-only cookie
 * `wa_token`, issued by `POST /api/auth/login {email, password}` → 200 `{ok, user}` with the
 * cookie set (400 "Email dan password wajib diisi", 401 "Email atau password salah");
 * `GET /api/auth/me` → the account with `subscription.plan {name, slug}` and its devices.
 * The page is silent on the token's lifetime and on what an expired token answers:
 * `tokenTtlMs` sets the lifetime (default 24 h), and an expired token answers 401
 * "Unauthorized" like any unknown one. `accounts` are tokens handed out earlier, one account
 * each, that do not expire; `users` log in.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { realClock, type Clock } from "../shared/clock.ts";
import { Router, type EmulatorRequest, type Reply } from "../shared/http.ts";
import { jsonBody, LoopbackEmulator } from "../shared/loopback-emulator.ts";
import { renderQrPng } from "../shared/qr-png.ts";

export type WapizPlan = "free" | "lite" | "regular";
export type WapizEmulatorStatus = "logged_in" | "connected" | "disconnected";

/** "Free / Lite: 1; Regular ke atas: 3". */
export const WAPIZ_DEVICE_LIMITS: Readonly<Record<WapizPlan, number>> = { free: 1, lite: 1, regular: 3 };

/** An account that logs in with email and password. */
export interface WapizUser {
  readonly email: string;
  readonly password: string;
  readonly plan: WapizPlan;
}

export interface WapizEmulatorOptions {
  /** Tokens handed out earlier (they never expire), each one account, with its plan. Default {"wapiz-test-token": "free"}. */
  readonly accounts?: Readonly<Record<string, WapizPlan>>;
  /** Accounts that log in at POST /api/auth/login. */
  readonly users?: readonly WapizUser[];
  /** Lifetime of a token issued by a login. Default 24 h (the page gives none). */
  readonly tokenTtlMs?: number;
  readonly clock?: Clock;
  /** How long one QR code lives. Default 20000. */
  readonly qrRotationMs?: number;
  /** The Content-Type of the QR image. Default image/png. */
  readonly qrContentType?: string;
}

export interface WapizDeviceSnapshot {
  readonly id: string;
  readonly label: string;
  readonly webhookUrl: string | null;
  readonly status: WapizEmulatorStatus;
}

interface Account {
  readonly id: string;
  readonly email: string;
  password: string | undefined;
  readonly plan: WapizPlan;
}

interface Session {
  readonly account: Account;
  /** Epoch ms after which the token answers 401; undefined for tokens that never expire. */
  readonly expiresAt: number | undefined;
}

interface Device {
  readonly id: string;
  readonly owner: string;
  readonly userId: string;
  readonly deviceId: string;
  readonly label: string;
  readonly createdAt: string;
  /** Makes QR payloads differ between devices and runs. */
  readonly salt: string;
  webhookUrl: string | null;
  connected: boolean;
  /** Whether a phone has linked this device (WhatsApp keeps the link across disconnects). */
  linked: boolean;
  /** When the current series of QR codes began. */
  qrSince: number;
}

export class WapizEmulator extends LoopbackEmulator {
  readonly clock: Clock;
  readonly #accounts = new Map<string, Account>();
  /** Every valid token and the session it opens. */
  readonly #sessions = new Map<string, Session>();
  readonly #tokenTtlMs: number;
  readonly #qrRotationMs: number;
  readonly #qrContentType: string;
  readonly #devices = new Map<string, Device>();
  readonly #router = new Router();

  constructor(options: WapizEmulatorOptions = {}) {
    super();
    this.clock = options.clock ?? realClock;
    for (const [token, plan] of Object.entries<WapizPlan>(options.accounts ?? { "wapiz-test-token": "free" })) {
      const account = this.#addAccount(`${token}@tokens.invalid`, undefined, plan);
      this.#sessions.set(token, { account, expiresAt: undefined });
    }
    for (const user of options.users ?? []) this.#addAccount(user.email, user.password, user.plan);
    this.#tokenTtlMs = options.tokenTtlMs ?? 24 * 60 * 60_000;
    this.#qrRotationMs = options.qrRotationMs ?? 20_000;
    this.#qrContentType = options.qrContentType ?? "image/png";
    this.#router
      .add("GET", "/api/auth/me", (req) => this.#me(req))
      .add("GET", "/api/devices", (req) => this.#list(req))
      .add("POST", "/api/devices", (req) => this.#create(req))
      .add("DELETE", "/api/devices/{id}", (req) => this.#withDevice(req, (d) => this.#delete(d)))
      .add("GET", "/api/devices/{id}/qr", (req) => this.#withDevice(req, (d) => this.#qr(d)))
      .add("GET", "/api/devices/{id}/status", (req) => this.#withDevice(req, (d) => ({ status: 200, body: statusView(d) })))
      .add("PATCH", "/api/devices/{id}/webhook", (req) => this.#withDevice(req, (d) => this.#setWebhook(req, d)));
  }

  /** The device as the emulator holds it, or undefined when there is none. */
  device(id: string): WapizDeviceSnapshot | undefined {
    const device = this.#devices.get(id);
    return device && { id, label: device.label, webhookUrl: device.webhookUrl, status: statusOf(device) };
  }

  /** Every device, in creation order. */
  devices(): WapizDeviceSnapshot[] {
    return [...this.#devices.keys()].flatMap((id) => this.device(id) ?? []);
  }

  /** The payload of the QR the device shows right now, or undefined when it shows none. */
  currentQr(id: string): string | undefined {
    const device = this.#devices.get(id);
    if (!device || statusOf(device) !== "connected") return undefined;
    const rotation = Math.floor((this.clock.now() - device.qrSince) / this.#qrRotationMs);
    const ref = createHash("sha256").update(`${device.salt}:${rotation}`).digest("base64url").slice(0, 32);
    return `2@${ref},wapiz-emulator,${rotation}`;
  }

  /** Every login the emulator answered, in order (the email only; never the password). */
  readonly logins: { readonly email: string; readonly status: number }[] = [];

  /** The account's password changes (a person reset it): its next login with the old one fails. */
  setPassword(email: string, password: string): void {
    const account = [...this.#accounts.values()].find((candidate) => candidate.email === email);
    if (!account) throw new Error(`the emulator has no account ${email}`);
    account.password = password;
  }

  /** The phone scans the current QR: `logged_in`. */
  scan(id: string): void {
    const device = this.#hooked(id);
    if (statusOf(device) !== "connected") throw new Error(`device ${id} shows no QR (status ${statusOf(device)})`);
    device.linked = true;
  }

  /** The connection drops; the link stays, so the next QR request logs straight back in. */
  disconnect(id: string): void {
    this.#hooked(id).connected = false;
  }

  /** The phone removes the linked device: disconnected, and a new QR is needed. */
  unlink(id: string): void {
    const device = this.#hooked(id);
    device.connected = false;
    device.linked = false;
  }

  protected unavailableReply(): Reply {
    return failure(503, "Service Unavailable");
  }

  protected async handle(req: EmulatorRequest): Promise<Reply> {
    if (req.method === "POST" && req.path === "/api/auth/login") return this.#login(req);
    if (this.#accountOf(req) === undefined) return failure(401, "Unauthorized");
    const match = this.#router.match(req.method, req.path);
    return match.route ? match.route.handler({ ...req, params: match.params }) : failure(404, "Not Found");
  }

  #addAccount(email: string, password: string | undefined, plan: WapizPlan): Account {
    const account: Account = { id: randomUUID(), email, password, plan };
    this.#accounts.set(account.id, account);
    return account;
  }

  /** The account behind the request's wa_token, while the token is valid. */
  #accountOf(req: EmulatorRequest): Account | undefined {
    const token = tokenOf(req);
    const session = token === undefined ? undefined : this.#sessions.get(token);
    if (!session || (session.expiresAt !== undefined && this.clock.now() >= session.expiresAt)) return undefined;
    return session.account;
  }

  /** A new JWT in the wa_token cookie for the right email and password. */
  #login(req: EmulatorRequest): Reply {
    const body = jsonBody(req);
    const email = isRecord(body) && typeof body["email"] === "string" ? body["email"] : "";
    const password = isRecord(body) && typeof body["password"] === "string" ? body["password"] : "";
    const answer = (reply: Reply): Reply => {
      this.logins.push({ email, status: reply.status });
      return reply;
    };
    if (email === "" || password === "") return answer(failure(400, "Email dan password wajib diisi"));
    const account = [...this.#accounts.values()].find((candidate) => candidate.email === email);
    if (!account || account.password === undefined || account.password !== password) return answer(failure(401, "Email atau password salah"));
    const issuedAt = this.clock.now();
    const expiresAt = issuedAt + this.#tokenTtlMs;
    const token = jwt({ sub: account.id, iat: Math.floor(issuedAt / 1000), exp: Math.floor(expiresAt / 1000) });
    this.#sessions.set(token, { account, expiresAt });
    return answer({
      status: 200,
      body: { ok: true, user: { id: account.id, name: account.email.split("@")[0], email: account.email, role: "USER" } },
      headers: { "Set-Cookie": `wa_token=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${Math.floor(this.#tokenTtlMs / 1000)}` },
    });
  }

  #me(req: EmulatorRequest): Reply {
    const account = this.#accountOf(req) as Account;
    const plan = { name: capitalise(account.plan), slug: account.plan };
    return {
      status: 200,
      body: {
        id: account.id,
        name: account.email.split("@")[0],
        email: account.email,
        role: "USER",
        createdAt: new Date(0).toISOString(),
        subscription: { status: "ACTIVE", expiresAt: "2034-01-01T00:00:00.000Z", plan },
        devices: this.#own(req).map(deviceView),
      },
    };
  }

  #list(req: EmulatorRequest): Reply {
    return { status: 200, body: this.#own(req).map(deviceView) };
  }

  #create(req: EmulatorRequest): Reply {
    const account = this.#accountOf(req) as Account;
    const owner = account.id;
    const limit = WAPIZ_DEVICE_LIMITS[account.plan];
    if (this.#own(req).length >= limit) return failure(403, `Paket ${capitalise(account.plan)} maksimal ${limit} device`);
    const body = jsonBody(req);
    const label = isRecord(body) && typeof body["label"] === "string" && body["label"].trim() !== "" ? body["label"] : "Device Baru";
    const device: Device = {
      id: randomUUID(),
      owner,
      userId: owner,
      deviceId: randomUUID(),
      label,
      createdAt: new Date(this.clock.now()).toISOString(),
      salt: randomBytes(8).toString("hex"),
      webhookUrl: null,
      connected: true,
      linked: false,
      qrSince: this.clock.now(),
    };
    this.#devices.set(device.id, device);
    return { status: 201, body: deviceView(device) };
  }

  #withDevice(req: EmulatorRequest, action: (device: Device) => Reply | Promise<Reply>): Reply | Promise<Reply> {
    const device = this.#devices.get(req.params["id"] ?? "");
    if (!device || device.owner !== this.#accountOf(req)?.id) return failure(404, "Device tidak ditemukan");
    return action(device);
  }

  #delete(device: Device): Reply {
    this.#devices.delete(device.id);
    return { status: 200, body: { ok: true } };
  }

  async #qr(device: Device): Promise<Reply> {
    if (!device.connected) {
      device.connected = true;
      device.qrSince = this.clock.now();
    }
    const payload = this.currentQr(device.id);
    if (payload === undefined) return { status: 200, body: { loggedIn: true, message: "Device sudah login" } };
    return { status: 200, raw: { contentType: this.#qrContentType, data: await renderQrPng(payload) } };
  }

  #setWebhook(req: EmulatorRequest, device: Device): Reply {
    const body = jsonBody(req);
    if (!isRecord(body) || !("webhookUrl" in body)) return failure(400, "webhookUrl wajib diisi");
    const value = body["webhookUrl"];
    if (value !== null && typeof value !== "string") return failure(400, "webhookUrl harus berupa string atau null");
    const webhookUrl = value === null || value.trim() === "" ? null : value;
    if (webhookUrl !== null && !isHttpUrl(webhookUrl)) return failure(400, "URL webhook tidak valid");
    device.webhookUrl = webhookUrl;
    return { status: 200, body: { ok: true, webhookUrl } };
  }

  #own(req: EmulatorRequest): Device[] {
    const owner = this.#accountOf(req)?.id;
    return [...this.#devices.values()].filter((device) => device.owner === owner);
  }

  #hooked(id: string): Device {
    const device = this.#devices.get(id);
    if (!device) throw new Error(`the emulator has no device ${id}`);
    return device;
  }
}

function statusOf(device: Device): WapizEmulatorStatus {
  if (!device.connected) return "disconnected";
  return device.linked ? "logged_in" : "connected";
}

function statusView(device: Device): Record<string, unknown> {
  const status = statusOf(device);
  return { connected: device.connected, loggedIn: status === "logged_in", status };
}

function deviceView(device: Device): Record<string, unknown> {
  const { id, userId, deviceId, label, webhookUrl, createdAt } = device;
  return { id, userId, deviceId, label, webhookUrl, createdAt };
}

/** The `wa_token` cookie, the way a browser session sends it. */
function tokenOf(req: EmulatorRequest): string | undefined {
  const cookie = req.headers.cookie ?? "";
  for (const part of cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === "wa_token") return value.join("=");
  }
  return undefined;
}

/** A JWT-shaped token: the page says WAPIZ's token is a JWT; nothing reads its signature here. */
function jwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}.${randomBytes(16).toString("base64url")}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

function capitalise(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function failure(status: number, message: string): Reply {
  return { status, body: { error: message } };
}
