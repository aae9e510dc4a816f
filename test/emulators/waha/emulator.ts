/**
 * A faithful WAHA (WhatsApp HTTP API, 2026.7.1) emulator for tests: the session
 * management, pairing and server endpoints of /work/shared/providers/waha.md (1.1-1.7),
 * the session status machine with QR rotation driven by an injectable clock, and
 * `session.status` webhooks signed like WAHA signs them.
 *
 * Time: every state change is a timer on `clock` (see ../shared/clock.ts). With a
 * FakeClock, `clock.advance(ms)` fires them synchronously and emits the webhooks
 * (deliveries are async: `await emulator.settle()` before looking at receivers).
 *
 * Not emulated: messaging, apps, passkeys (the statuses exist in the type only),
 * webhook retries (the config is stored and echoed, each event is POSTed once),
 * the deprecated POST /api/sessions/{start,stop,logout}, WebSocket events.
 */
import { createHash, createHmac, randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import QRCode from "qrcode";

import { realClock, type Clock, type Timer } from "../shared/clock.ts";
import { close, listen, postRaw, readBody, Router, sendReply, matchTemplate } from "../shared/http.ts";
import type { EmulatorRequest, Reply } from "../shared/http.ts";
import {
  parseCreateRequest,
  parseRequestCodeRequest,
  parseUpdateRequest,
  type WahaSessionConfig,
  type WahaWebhookConfig,
} from "./validation.ts";

export type { WahaSessionConfig, WahaWebhookConfig } from "./validation.ts";
export { WAHA_EVENTS } from "./validation.ts";

export const WAHA_STATUSES = [
  "STOPPED",
  "STARTING",
  "SCAN_QR_CODE",
  "PASSKEY_REQUIRED",
  "PASSKEY_CONFIRMATION_REQUIRED",
  "WORKING",
  "FAILED",
] as const;
export type WahaStatus = (typeof WAHA_STATUSES)[number];
export type WahaEngine = "WEBJS" | "NOWEB" | "GOWS" | "WPP";
export type WahaTier = "CORE" | "PLUS";

export interface WahaEmulatorOptions {
  /** Plain key, or `sha512:<hex of sha512(key)>` like WAHA_API_KEY. */
  readonly apiKey: string;
  readonly clock?: Clock;
  /** WHATSAPP_DEFAULT_ENGINE. Default WEBJS. */
  readonly engine?: WahaEngine;
  /** Reported by /api/server/version, User-Agent and webhook `environment`. Default 2026.7.1. */
  readonly version?: string;
  /** `environment.tier`. Default CORE (since 2026.6.1 the Core image has every Plus feature). */
  readonly tier?: WahaTier;
  readonly workerId?: string;
  /** Clock time spent in STARTING before SCAN_QR_CODE / WORKING. Default 1000; 0 = immediate. */
  readonly startDelayMs?: number;
  /** QR series: first code valid `firstMs` (60 s), the next ones `nextMs` (20 s), `maxCodes` (6) then FAILED. */
  readonly qr?: { readonly firstMs?: number; readonly nextMs?: number; readonly maxCodes?: number };
  /**
   * How long the QR endpoint waits for SCAN_QR_CODE before answering 422 (WAHA polls
   * for ~5-10 s). Default 0: answer at once, so tests never stall.
   */
  readonly statusWaitMs?: number;
  /**
   * Browser engines (WEBJS, WPP) restart themselves after a crash: FAILED -> STARTING
   * after this much clock time. Default 2000; null disables. NOWEB/GOWS stay FAILED.
   */
  readonly crashRestartDelayMs?: number | null;
  /** Default of `start` in POST /api/sessions when omitted. 2026 spec: true (2024 source: false). */
  readonly createStartDefault?: boolean;
  /** Emulate the pre-2026.6.1 Core image: any session other than "default" gets 422. */
  readonly onlyDefaultSession?: boolean;
  /** WHATSAPP_HOOK_* global webhooks: sent for every session, never shown in `config`. */
  readonly globalWebhooks?: readonly WahaWebhookConfig[];
}

export interface MeInfo {
  readonly id: string;
  readonly pushName: string;
}

export interface StatusPoint {
  readonly status: WahaStatus;
  readonly timestamp: number;
}

export interface WahaCall {
  readonly method: string;
  /** Pathname without the query string. */
  readonly path: string;
  readonly query: string;
  /** 0 when the socket was destroyed (setAvailable(false, "reset")). */
  readonly status: number;
  readonly at: number;
}

export interface WahaDelivery {
  /** X-Webhook-Request-Id. */
  readonly requestId: string;
  readonly url: string;
  readonly event: string;
  readonly session: string;
  /** The session status the event reports. */
  readonly sessionStatus: WahaStatus;
  /** The exact bytes POSTed (what the HMAC covers). */
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly at: number;
  /** Filled in when the POST finishes: the receiver's status, or the network error. */
  responseStatus?: number;
  error?: string;
  done: boolean;
}

export interface WahaSessionSnapshot {
  readonly name: string;
  readonly status: WahaStatus;
  readonly statuses: readonly StatusPoint[];
  readonly config: WahaSessionConfig | null | undefined;
  readonly apps: unknown[] | null | undefined;
  /** Auth data stored (survives stop, wiped by logout/unlink/delete). */
  readonly linked: boolean;
  readonly me: MeInfo | null;
  readonly qr: { readonly value: string; readonly index: number; readonly expiresAt: number } | null;
  readonly pairingCode: string | null;
  /** How many times the session was started (create with start, start, restart, PUT or logout of a running one, crash recovery). */
  readonly boots: number;
}

interface QrState {
  value: string;
  /** 1-based position in the series. */
  index: number;
  expiresAt: number;
  png?: Buffer;
}

interface SessionState {
  readonly name: string;
  config: WahaSessionConfig | null | undefined;
  apps: unknown[] | null | undefined;
  status: WahaStatus;
  history: StatusPoint[];
  auth: { phoneNumber: string; pushName: string } | null;
  qr: QrState | null;
  /** Key material of the current QR series: stays fixed while only the ref rotates. */
  qrKeys: string;
  pairing: { phoneNumber: string; code: string } | null;
  timer: Timer | null;
  activity: number | null;
  boots: number;
}

const STATUS_NOT_AS_EXPECTED = "Session status is not as expected. Try again later or restart the session";
const DEFAULT_PUSH_NAME = "WAHA Emulator";

/** Lower-case hex HMAC-SHA512 of the raw body: WAHA's X-Webhook-Hmac. */
export function signWebhookBody(body: string | Buffer, key: string): string {
  return createHmac("sha512", key).update(body).digest("hex");
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A ULID (https://github.com/ulid/spec): 48-bit ms time + 80 random bits, Crockford base32. */
export function ulid(timeMs: number): string {
  let time = "";
  let t = Math.max(0, Math.floor(timeMs));
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(16);
  let rand = "";
  for (let i = 0; i < 16; i++) rand += CROCKFORD[(bytes[i] ?? 0) % 32];
  return time + rand;
}

function nestError(status: number, message: string | string[], error: string): Reply {
  // NestJS HttpException body, in Nest's own key order.
  return { status, body: { message, error, statusCode: status } };
}

const notFoundSession = (): Reply => nestError(404, "Session not found", "Not Found");
const notRunning = (name: string): Reply =>
  nestError(
    404,
    `We didn't find a session with name '${name}'.\nPlease start it first by using POST /api/sessions/${name}/start request`,
    "Not Found",
  );
const badRequest = (messages: string[]): Reply => nestError(400, messages, "Bad Request");

/** Thrown by test hooks called in a state where the real-world action is impossible. */
export class WahaEmulatorHookError extends Error {
  override name = "WahaEmulatorHookError";
}

export class WahaEmulator {
  readonly clock: Clock;
  readonly engine: WahaEngine;
  readonly version: string;
  readonly tier: WahaTier;
  readonly workerId: string;

  /** Every API request (not /__emulator hooks), in arrival order. */
  readonly calls: WahaCall[] = [];
  /** Every webhook POST, in emission order. */
  readonly deliveries: WahaDelivery[] = [];

  readonly #apiKey: string;
  readonly #opts: Required<Pick<WahaEmulatorOptions, "startDelayMs" | "statusWaitMs" | "createStartDefault" | "onlyDefaultSession">> & {
    qrFirstMs: number;
    qrNextMs: number;
    qrMax: number;
    crashRestartDelayMs: number | null;
    globalWebhooks: readonly WahaWebhookConfig[];
  };
  readonly #sessions = new Map<string, SessionState>();
  /** Starts left that hang in STARTING, by session name (see hangStarts). */
  readonly #hungStarts = new Map<string, number>();
  readonly #router = new Router();
  readonly #hooks = new Router();
  readonly #statusListeners = new Set<() => void>();
  readonly #inFlight = new Set<Promise<void>>();
  /** Per-URL delivery chains, so one receiver sees events in emission order. */
  readonly #chains = new Map<string, Promise<void>>();
  #startedAt: number;
  /** How long a start boots (options.startDelayMs; restartServer may change it). */
  #startDelayMs: number;
  #server: Server | undefined;
  #baseUrl: string | undefined;
  #unavailable: "503" | "reset" | null = null;
  #failures: { method: string; path: RegExp; reply: Reply | undefined }[] = [];

  constructor(options: WahaEmulatorOptions) {
    if (!options.apiKey) throw new Error("WahaEmulator: apiKey is required");
    this.#apiKey = options.apiKey;
    this.clock = options.clock ?? realClock;
    this.engine = options.engine ?? "WEBJS";
    this.version = options.version ?? "2026.7.1";
    this.tier = options.tier ?? "CORE";
    this.workerId = options.workerId ?? "waha-emulator";
    const browser = this.engine === "WEBJS" || this.engine === "WPP";
    this.#opts = {
      startDelayMs: options.startDelayMs ?? 1000,
      statusWaitMs: options.statusWaitMs ?? 0,
      createStartDefault: options.createStartDefault ?? true,
      onlyDefaultSession: options.onlyDefaultSession ?? false,
      qrFirstMs: options.qr?.firstMs ?? 60_000,
      qrNextMs: options.qr?.nextMs ?? 20_000,
      qrMax: options.qr?.maxCodes ?? 6,
      crashRestartDelayMs: browser ? (options.crashRestartDelayMs === undefined ? 2000 : options.crashRestartDelayMs) : null,
      globalWebhooks: options.globalWebhooks ?? [],
    };
    this.#startedAt = this.clock.now();
    this.#startDelayMs = this.#opts.startDelayMs;
    this.#registerRoutes();
    this.#registerHooks();
  }

  // ---------------------------------------------------------------- lifecycle

  /** Listens on 127.0.0.1 (port 0 = any free port) and returns the base URL. */
  async start(port = 0): Promise<string> {
    if (this.#baseUrl) return this.#baseUrl;
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        // An emulator bug must be loud, but still answer like Nest's 500.
        if (!res.headersSent) sendReply(res, nestError(500, String(error), "Internal Server Error"));
      });
    });
    this.#server = server;
    this.#baseUrl = await listen(server, port);
    return this.#baseUrl;
  }

  /** Stops listening and cancels every pending timer (in-flight webhooks are left to finish). */
  async stop(): Promise<void> {
    for (const s of this.#sessions.values()) this.#cancelTimer(s);
    const server = this.#server;
    this.#server = undefined;
    this.#baseUrl = undefined;
    if (server) await close(server);
  }

  get url(): string {
    if (!this.#baseUrl) throw new Error("WahaEmulator: not started");
    return this.#baseUrl;
  }

  /** Resolves when every webhook POST emitted so far has finished (succeeded or failed). */
  async settle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Served API routes (OpenAPI templates), for spec-conformance checks. */
  routes(): ReadonlyArray<{ readonly method: string; readonly template: string }> {
    return this.#router.routes();
  }

  // ---------------------------------------------------------------- test hooks

  /**
   * Makes the HTTP API unavailable (the /__emulator hooks keep working). Default mode
   * "503": every request answers 503 `{message:"Service Unavailable",...}` like a proxy in
   * front of a dead WAHA; "reset": the socket is destroyed without a response. The
   * session machine and webhooks keep running: this is an API outage, not a crash.
   */
  setAvailable(available: boolean, mode: "503" | "reset" = "503"): void {
    this.#unavailable = available ? null : mode;
  }

  /**
   * Answers the next request matching method and path with 503 (or with `reply`), once,
   * without carrying it out. Fault injection, not WAHA behaviour: `reply` stands for what a
   * broken or hostile gateway in front of WAHA might send (an error body echoing the
   * API key, a 2 MB body, a QR value no QR code can hold), as issue 11 observed.
   */
  failNext(method: string, path: RegExp, reply?: Reply): void {
    this.#failures.push({ method: method.toUpperCase(), path, reply });
  }

  /** Forgets failures queued with failNext that no request has met yet. */
  clearFailures(): void {
    this.#failures.length = 0;
  }

  /** Links the session as if the phone scanned the current QR. Only while SCAN_QR_CODE. */
  scan(session: string, phoneNumber: string, pushName = DEFAULT_PUSH_NAME): void {
    const s = this.#mustGet(session);
    if (s.status !== "SCAN_QR_CODE") throw new WahaEmulatorHookError(`scan: session '${session}' is ${s.status}, not SCAN_QR_CODE`);
    const digits = phoneNumber.replace(/\D/g, "");
    if (digits.length < 7 || digits.length > 15) throw new WahaEmulatorHookError(`scan: '${phoneNumber}' is not a phone number`);
    this.#link(s, digits, pushName);
  }

  /** Completes the pairing-code flow: the user typed the code from request-code on the phone. */
  enterPairingCode(session: string, pushName = DEFAULT_PUSH_NAME): void {
    const s = this.#mustGet(session);
    if (s.status !== "SCAN_QR_CODE") throw new WahaEmulatorHookError(`enterPairingCode: session '${session}' is ${s.status}`);
    if (!s.pairing) throw new WahaEmulatorHookError(`enterPairingCode: no code was requested for '${session}'`);
    this.#link(s, s.pairing.phoneNumber, pushName);
  }

  /** The device was removed in WhatsApp -> Linked devices: WORKING -> FAILED, auth wiped. */
  unlinkFromPhone(session: string): void {
    const s = this.#mustGet(session);
    if (s.status !== "WORKING") throw new WahaEmulatorHookError(`unlinkFromPhone: session '${session}' is ${s.status}, not WORKING`);
    s.auth = null;
    this.#setStatus(s, "FAILED");
  }

  /**
   * Engine crash: any running status -> FAILED (auth kept). Browser engines then restart
   * by themselves (FAILED -> STARTING -> ...) unless `autoRestart` is false.
   */
  crash(session: string, options: { autoRestart?: boolean } = {}): void {
    const s = this.#mustGet(session);
    if (s.status === "STOPPED") throw new WahaEmulatorHookError(`crash: session '${session}' is STOPPED`);
    this.#cancelTimer(s);
    s.qr = null;
    this.#setStatus(s, "FAILED");
    const delay = this.#opts.crashRestartDelayMs;
    const restart = options.autoRestart ?? delay !== null;
    if (restart) this.#after(s, delay ?? 2000, () => this.#boot(s));
  }

  /**
   * The next `starts` starts of session `name` (which need not exist yet) never leave
   * STARTING: no QR, no WORKING. Real sessions do this: WAHA issue #1043 (all engines,
   * "stuck on STARTING"; restart, logout or delete do not help) and #2243 (NOWEB, stuck
   * indefinitely in STARTING without a QR). A stop ends a hung start as usual.
   */
  hangStarts(name: string, starts = Number.POSITIVE_INFINITY): void {
    this.#hungStarts.set(name, starts);
  }

  /** NOWEB-style transient socket drop: WORKING -> STARTING -> WORKING (after the start delay). */
  flap(session: string): void {
    const s = this.#mustGet(session);
    if (s.status !== "WORKING") throw new WahaEmulatorHookError(`flap: session '${session}' is ${s.status}, not WORKING`);
    this.#boot(s);
  }

  /** Somebody else deleted the session (dashboard, another client): same effects as DELETE, not in `calls`. */
  deleteBehindBack(session: string): void {
    this.#delete(session);
  }

  /**
   * Somebody else edits the stored config (the dashboard's session editor saves through the
   * same PUT, so a running session restarts as with PUT), not in `calls`.
   */
  changeConfigBehindBack(session: string, change: (config: WahaSessionConfig) => WahaSessionConfig): void {
    const s = this.#mustGet(session);
    const wasRunning = s.status !== "STOPPED";
    this.#stopSession(s);
    s.config = change(structuredClone(s.config ?? {}));
    if (wasRunning) this.#boot(s);
  }

  /**
   * The WAHA server restarted (container recreated, node lost, POST /api/server/stop, which
   * "in Docker acts as a restart": waha.md 1.4). Sessions survive in its storage with their
   * auth, but none is running: every one is STOPPED, silently (the process that would have
   * sent session.status was gone), and /api/server/status reports a new startTimestamp.
   * That is what a server shows without WHATSAPP_RESTART_ALL_SESSIONS ("start all STOPPED
   * sessions after container restarts. By default ... False") and without its worker
   * restoring its own sessions (WAHA_WORKER_RESTART_SESSIONS=False, or a Core image before
   * 2026.6.1, where that was a Plus feature): devlikeapro/waha-docs, the environment
   * variables page (Sessions), and waha.md 1.2 "Auto-start", 1.5 STOPPED "after server
   * restart without autostart". `startDelayMs` sets how long each start boots from now on:
   * seconds rather than milliseconds model a gateway bringing many sessions back (WAHA
   * issue #2012, 90 sessions in 20 minutes; the docs suggest WAHA_AUTO_START_DELAY_SECONDS=5
   * for WEBJS "if you have many sessions").
   */
  restartServer(options: { readonly startDelayMs?: number } = {}): void {
    const now = this.clock.now();
    for (const s of this.#sessions.values()) {
      this.#cancelTimer(s);
      s.qr = null;
      s.pairing = null;
      if (s.status === "STOPPED") continue;
      s.status = "STOPPED";
      s.activity = null;
      s.history.push({ status: "STOPPED", timestamp: now });
    }
    this.#startedAt = now;
    if (options.startDelayMs !== undefined) this.#startDelayMs = options.startDelayMs;
    for (const listener of [...this.#statusListeners]) listener();
  }

  /** Somebody else stopped the session: same effects as POST .../stop, not in `calls`. */
  stopBehindBack(session: string): void {
    this.#stopSession(this.#mustGet(session));
  }

  sessions(): WahaSessionSnapshot[] {
    return [...this.#sessions.values()].map((s) => ({
      name: s.name,
      status: s.status,
      statuses: s.history.map((p) => ({ ...p })),
      config: s.config == null ? s.config : structuredClone(s.config),
      apps: s.apps == null ? s.apps : structuredClone(s.apps),
      linked: s.auth !== null,
      me: this.#me(s),
      qr: s.qr ? { value: s.qr.value, index: s.qr.index, expiresAt: s.qr.expiresAt } : null,
      pairingCode: s.pairing?.code ?? null,
      boots: s.boots,
    }));
  }

  session(name: string): WahaSessionSnapshot | undefined {
    return this.sessions().find((s) => s.name === name);
  }

  /** The session's status without a snapshot of every session (cheap enough to ask per request). */
  statusOf(name: string): WahaStatus | undefined {
    return this.#sessions.get(name)?.status;
  }

  /** The raw QR value (`2@...`) WAHA would serve now, or null when not SCAN_QR_CODE. */
  currentQr(session: string): string | null {
    const s = this.#sessions.get(session);
    return s?.status === "SCAN_QR_CODE" && s.qr ? s.qr.value : null;
  }

  /**
   * Calls matching a method ("*" = any) and a path: a RegExp, an OpenAPI template
   * (`/api/sessions/{session}/start`) or an exact path.
   */
  callsTo(method: string, pathPattern: string | RegExp): WahaCall[] {
    const m = method.toUpperCase();
    return this.calls.filter(
      (c) =>
        (m === "*" || c.method === m) &&
        (typeof pathPattern === "string"
          ? pathPattern.includes("{")
            ? matchTemplate(pathPattern, c.path) !== null
            : c.path === pathPattern
          : pathPattern.test(c.path)),
    );
  }

  // ---------------------------------------------------------------- status machine

  #mustGet(name: string): SessionState {
    const s = this.#sessions.get(name);
    if (!s) throw new WahaEmulatorHookError(`no session named '${name}'`);
    return s;
  }

  #setStatus(s: SessionState, status: WahaStatus): void {
    const now = this.clock.now();
    s.status = status;
    s.history.push({ status, timestamp: now });
    if (s.history.length > 50) s.history.splice(0, s.history.length - 50);
    s.activity = status === "STOPPED" ? null : now;
    this.#emitStatus(s);
    for (const listener of [...this.#statusListeners]) listener();
  }

  #cancelTimer(s: SessionState): void {
    s.timer?.cancel();
    s.timer = null;
  }

  /** One pending transition per session: scheduling replaces the previous one. */
  #after(s: SessionState, delayMs: number, fn: () => void): void {
    this.#cancelTimer(s);
    const timer = this.clock.schedule(delayMs, () => {
      if (s.timer !== timer) return;
      s.timer = null;
      fn();
    });
    s.timer = timer;
  }

  /** -> STARTING, then (after the start delay) WORKING with stored auth, else a fresh QR series. */
  #boot(s: SessionState): void {
    this.#cancelTimer(s);
    s.qr = null;
    s.pairing = null;
    s.boots += 1;
    this.#setStatus(s, "STARTING");
    const hung = this.#hungStarts.get(s.name) ?? 0;
    if (hung > 0) {
      this.#hungStarts.set(s.name, hung - 1);
      return;
    }
    const ready = () => (s.auth ? this.#setStatus(s, "WORKING") : this.#beginQrSeries(s));
    if (this.#startDelayMs <= 0) ready();
    else this.#after(s, this.#startDelayMs, ready);
  }

  #beginQrSeries(s: SessionState): void {
    s.qrKeys = `${b64(32)},${b64(32)}`;
    this.#showQr(s, 1);
  }

  /** SCAN_QR_CODE with code number `index`; WAHA re-emits the status for every new code. */
  #showQr(s: SessionState, index: number): void {
    const validFor = index === 1 ? this.#opts.qrFirstMs : this.#opts.qrNextMs;
    s.qr = { value: `2@${b64(48)},${s.qrKeys},1`, index, expiresAt: this.clock.now() + validFor };
    this.#setStatus(s, "SCAN_QR_CODE");
    this.#after(s, validFor, () => {
      if (index >= this.#opts.qrMax) {
        // Nobody scanned the whole series: WAHA gives up, a restart is needed.
        s.qr = null;
        s.pairing = null;
        this.#setStatus(s, "FAILED");
      } else {
        this.#showQr(s, index + 1);
      }
    });
  }

  #link(s: SessionState, phoneNumber: string, pushName: string): void {
    this.#cancelTimer(s);
    s.qr = null;
    s.pairing = null;
    s.auth = { phoneNumber, pushName };
    this.#setStatus(s, "WORKING");
  }

  /** Stop keeps auth and config; emits STOPPED only when something was running. */
  #stopSession(s: SessionState): void {
    this.#cancelTimer(s);
    s.qr = null;
    s.pairing = null;
    if (s.status !== "STOPPED") this.#setStatus(s, "STOPPED");
  }

  #delete(name: string): void {
    const s = this.#sessions.get(name);
    if (!s) return;
    this.#stopSession(s);
    s.auth = null;
    this.#sessions.delete(name);
  }

  #me(s: SessionState): MeInfo | null {
    return s.auth ? { id: `${s.auth.phoneNumber}@c.us`, pushName: s.auth.pushName } : null;
  }

  /** Resolves true once `s` is in one of `expected`, false after `waitMs` of clock time (Infinity: never). */
  async #waitForStatus(s: SessionState, expected: readonly WahaStatus[], waitMs: number): Promise<boolean> {
    if (expected.includes(s.status)) return true;
    if (waitMs <= 0) return false;
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        this.#statusListeners.delete(listener);
        timer?.cancel();
        resolve(ok);
      };
      const listener = () => {
        if (expected.includes(s.status)) done(true);
      };
      const timer = Number.isFinite(waitMs) ? this.clock.schedule(waitMs, () => done(expected.includes(s.status))) : undefined;
      this.#statusListeners.add(listener);
    });
  }

  // ---------------------------------------------------------------- webhooks

  #environment(): Record<string, unknown> {
    const browser = this.engine === "WEBJS" || this.engine === "WPP" ? "/usr/bin/google-chrome-stable" : null;
    return {
      version: this.version,
      engine: this.engine,
      tier: this.tier,
      browser,
      platform: "linux/x64",
      worker: { id: this.workerId },
    };
  }

  #emitStatus(s: SessionState): void {
    const hooks = [...(s.config?.webhooks ?? []), ...this.#opts.globalWebhooks].filter(
      (h) => h.url && (h.events.includes("session.status") || h.events.includes("*")),
    );
    if (hooks.length === 0) return;
    const now = this.clock.now();
    const envelope = {
      id: `evt_${ulid(now).toLowerCase()}`,
      timestamp: now,
      event: "session.status",
      session: s.name,
      metadata: s.config?.metadata ?? undefined,
      me: this.#me(s),
      payload: { name: s.name, status: s.status, statuses: s.history.slice(-3).map((p) => ({ ...p })), data: null },
      engine: this.engine,
      environment: this.#environment(),
    };
    const body = JSON.stringify(envelope);
    for (const hook of hooks) this.#deliver(hook, s, body);
  }

  #deliver(hook: WahaWebhookConfig, s: SessionState, body: string): void {
    const now = this.clock.now();
    const headers: Record<string, string> = {
      Accept: "application/json, text/plain, */*",
      "Content-Type": "application/json",
      "User-Agent": `WAHA/${this.version}`,
      "X-Webhook-Request-Id": ulid(now),
      "X-Webhook-Timestamp": String(now),
    };
    const key = hook.hmac?.key;
    if (key) {
      headers["X-Webhook-Hmac"] = signWebhookBody(body, key);
      headers["X-Webhook-Hmac-Algorithm"] = "sha512";
    }
    for (const h of hook.customHeaders ?? []) headers[h.name] = h.value;
    const delivery: WahaDelivery = {
      requestId: headers["X-Webhook-Request-Id"] ?? "",
      url: hook.url,
      event: "session.status",
      session: s.name,
      sessionStatus: s.status,
      body,
      headers,
      at: now,
      done: false,
    };
    this.deliveries.push(delivery);
    // Fire and forget, but chained per URL so a receiver sees events in order.
    const previous = this.#chains.get(hook.url) ?? Promise.resolve();
    const sent = previous.then(async () => {
      const result = await postRaw(hook.url, headers, Buffer.from(body));
      if (result.status !== undefined) delivery.responseStatus = result.status;
      if (result.error !== undefined) delivery.error = result.error;
      delivery.done = true;
    });
    this.#chains.set(hook.url, sent);
    this.#inFlight.add(sent);
    void sent.finally(() => {
      this.#inFlight.delete(sent);
      if (this.#chains.get(hook.url) === sent) this.#chains.delete(hook.url);
    });
  }

  // ---------------------------------------------------------------- HTTP

  #authorized(req: IncomingMessage, query: URLSearchParams): boolean {
    const header = req.headers["x-api-key"];
    const given = (Array.isArray(header) ? header[0] : header) ?? query.get("x-api-key") ?? "";
    if (!given) return false;
    if (this.#apiKey.startsWith("sha512:")) {
      return createHash("sha512").update(given).digest("hex") === this.#apiKey.slice("sha512:".length).toLowerCase();
    }
    return given === this.#apiKey;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://emulator");
    const method = (req.method ?? "GET").toUpperCase();
    const path = url.pathname;
    const rawBody = await readBody(req);

    if (path.startsWith("/__emulator/")) {
      sendReply(res, await this.#dispatch(this.#hooks, method, path, url.searchParams, req, rawBody, true));
      return;
    }

    const record = (status: number) =>
      this.calls.push({ method, path, query: url.search, status, at: this.clock.now() });

    if (this.#unavailable === "reset") {
      record(0);
      req.socket.destroy();
      return;
    }
    const failure = this.#failures.findIndex((entry) => entry.method === method && entry.path.test(path));
    const injected = failure >= 0 ? this.#failures.splice(failure, 1)[0]?.reply : undefined;
    if (this.#unavailable === "503" || failure >= 0) {
      const reply = injected ?? nestError(503, "Service Unavailable", "Service Unavailable");
      record(reply.status);
      sendReply(res, reply);
      return;
    }

    let reply: Reply;
    // The API-key middleware covers /api/* and /health (also for unknown /api paths); /ping is open.
    if ((path === "/api" || path.startsWith("/api/") || path === "/health") && !this.#authorized(req, url.searchParams)) {
      reply = { status: 401, body: { message: "Unauthorized", statusCode: 401 } };
    } else {
      reply = await this.#dispatch(this.#router, method, path, url.searchParams, req, rawBody);
    }
    record(reply.status);
    sendReply(res, reply);
  }

  async #dispatch(
    router: Router,
    method: string,
    path: string,
    query: URLSearchParams,
    req: IncomingMessage,
    rawBody: Buffer,
    anyContentType = false,
  ): Promise<Reply> {
    const match = router.match(method, path);
    if (!match.route) return nestError(404, `Cannot ${method} ${path}`, "Not Found");
    let parsed: unknown;
    // Like Express' json parser, only JSON content types are parsed; others leave the body empty.
    const type = req.headers["content-type"] ?? "";
    if (rawBody.length > 0 && (anyContentType || type.includes("json"))) {
      try {
        parsed = JSON.parse(rawBody.toString("utf8"));
      } catch (error) {
        // body-parser's error surfaces as a plain-string 400.
        return nestError(400, error instanceof Error ? error.message : "Invalid JSON", "Bad Request");
      }
    }
    const request: EmulatorRequest = {
      method,
      path,
      query,
      headers: req.headers,
      params: match.params,
      rawBody,
      json: parsed,
    };
    try {
      return await match.route.handler(request);
    } catch (error) {
      if (error instanceof WahaEmulatorHookError) return { status: 409, body: { message: error.message, statusCode: 409 } };
      throw error;
    }
  }

  /** Old Core image: only "default" exists. */
  #onlyDefault(name: string): Reply | undefined {
    if (!this.#opts.onlyDefaultSession || name === "default") return undefined;
    const encoded = Buffer.from(name, "utf8").toString("base64");
    return nestError(
      422,
      `WAHA Core support only 'default' session. You tried to access '${name}' session (base64: ${encoded}). ` +
        "If you want to run more then one WhatsApp account - please get WAHA PLUS version. " +
        "Check this out: https://waha.devlike.pro/docs/how-to/waha-plus/",
      "Unprocessable Entity",
    );
  }

  /** SessionInfo; `detailed` adds `engine` like single-session GET and the management responses. */
  #info(s: SessionState, detailed: boolean, expandApps: boolean): Record<string, unknown> {
    const running = s.status !== "STOPPED";
    const info: Record<string, unknown> = {
      name: s.name,
      status: s.status,
      config: s.config == null ? s.config : structuredClone(s.config),
      me: running ? this.#me(s) : null,
      assignedWorker: this.workerId,
      presence: null,
      timestamps: { activity: running ? s.activity : null },
    };
    if (expandApps) info["apps"] = s.apps ?? null;
    if (detailed) info["engine"] = { engine: this.engine };
    return info;
  }

  #registerRoutes(): void {
    const r = this.#router;
    type Req = EmulatorRequest;
    const expandApps = (q: URLSearchParams) => q.getAll("expand").some((v) => v.split(",").includes("apps"));
    const session = (req: Req) => req.params["session"] ?? "";
    /** Management endpoints: 404 "Session not found" when missing. */
    const managed = (req: Req, fn: (s: SessionState) => void): Reply => {
      const name = session(req);
      const denied = this.#onlyDefault(name);
      if (denied) return denied;
      const s = this.#sessions.get(name);
      if (!s) return notFoundSession();
      fn(s);
      return { status: 201, body: this.#info(s, true, false) };
    };
    /** Endpoints that need a running session object: 404 "please start it first" otherwise. */
    const running = (req: Req): SessionState | Reply => {
      const name = session(req);
      const denied = this.#onlyDefault(name);
      if (denied) return denied;
      const s = this.#sessions.get(name);
      return s && s.status !== "STOPPED" ? s : notRunning(name);
    };
    const wrongStatus = (s: SessionState, expected: WahaStatus[]): Reply => ({
      status: 422,
      body: { error: STATUS_NOT_AS_EXPECTED, session: s.name, status: s.status, expected },
    });

    r.add("GET", "/ping", () => ({ status: 200, body: { message: "pong" } }));

    r.add("GET", "/health", () => {
      const up = { "media.files.space": { status: "up" }, "sessions.files.space": { status: "up" } };
      return { status: 200, body: { status: "ok", info: up, error: {}, details: up } };
    });

    const version = (): Reply => ({ status: 200, body: this.#environment() });
    r.add("GET", "/api/server/version", version);
    r.add("GET", "/api/version", version); // deprecated alias

    r.add("GET", "/api/server/status", () => ({
      status: 200,
      body: { startTimestamp: this.#startedAt, uptime: this.clock.now() - this.#startedAt, worker: { id: this.workerId } },
    }));

    // waha-openapi.json GET /api/sessions: an array of SessionInfo, the schema a single GET
    // /api/sessions/{session} answers too; "all": "Return all sessions, including those that are in
    // the STOPPED state", so without it STOPPED ones are left out.
    r.add("GET", "/api/sessions", (req) => {
      const all = req.query.get("all");
      const allValue = all === null ? false : parseBooleanString(all);
      if (allValue === undefined) return badRequest(["all must be a boolean value"]);
      const list = [...this.#sessions.values()]
        .filter((s) => allValue || s.status !== "STOPPED")
        .map((s) => this.#info(s, false, expandApps(req.query)));
      return { status: 200, body: list };
    });

    r.add("POST", "/api/sessions", (req: Req) => {
      const parsed = parseCreateRequest(req.json);
      if (!parsed.ok) return badRequest(parsed.messages);
      const name = parsed.value.name || `session_${randomUUID().replace(/-/g, "")}`;
      const denied = this.#onlyDefault(name);
      if (denied) return denied;
      if (this.#sessions.has(name)) {
        return nestError(422, `Session '${name}' already exists. Use PUT to update it.`, "Unprocessable Entity");
      }
      const s: SessionState = {
        name,
        config: parsed.value.config,
        apps: parsed.value.apps,
        status: "STOPPED",
        history: [{ status: "STOPPED", timestamp: this.clock.now() }],
        auth: null,
        qr: null,
        qrKeys: "",
        pairing: null,
        timer: null,
        activity: null,
        boots: 0,
      };
      this.#sessions.set(name, s);
      // Create and start in one call: WAHA's SessionsController.create() (src/api/sessions.controller.ts,
      // 2024.10.8 @55fc6a4) upserts the session, then assign()s and start()s it when `start` is true, and
      // answers getSessionInfo(name): STARTING, or later once the engine is up (waha.md 1.2, POST /api/sessions).
      if (parsed.value.start ?? this.#opts.createStartDefault) this.#boot(s);
      return { status: 201, body: this.#info(s, true, false) };
    });

    r.add("GET", "/api/sessions/{session}", (req) => {
      const name = session(req);
      const denied = this.#onlyDefault(name);
      if (denied) return denied;
      const s = this.#sessions.get(name);
      return s ? { status: 200, body: this.#info(s, true, expandApps(req.query)) } : notFoundSession();
    });

    r.add("PUT", "/api/sessions/{session}", (req: Req) => {
      const name = session(req);
      const denied = this.#onlyDefault(name);
      if (denied) return denied;
      const parsed = parseUpdateRequest(req.json);
      if (!parsed.ok) return badRequest(parsed.messages);
      const s = this.#sessions.get(name);
      if (!s) return notFoundSession();
      // The whole config is replaced, and a running session is stopped and started again
      // (STOPPED -> STARTING -> ...): WAHA's SessionsController.update() calls
      // manager.stop(name, true), upsert(name, config) and, if it was running, start(name)
      // (devlikeapro/waha src/api/sessions.controller.ts, 2024.10.8 @55fc6a4; waha.md 1.2).
      const wasRunning = s.status !== "STOPPED";
      this.#stopSession(s);
      s.config = parsed.value.config;
      if ("apps" in parsed.value) s.apps = parsed.value.apps;
      if (wasRunning) this.#boot(s);
      return { status: 200, body: this.#info(s, true, false) };
    });

    r.add("DELETE", "/api/sessions/{session}", (req) => {
      const name = session(req);
      const denied = this.#onlyDefault(name);
      if (denied) return denied;
      this.#delete(name); // idempotent: unknown names are fine
      return { status: 200 };
    });

    r.add("POST", "/api/sessions/{session}/start", (req) =>
      managed(req, (s) => {
        if (s.status === "STOPPED") this.#boot(s); // already running (even FAILED): no-op
      }),
    );
    r.add("POST", "/api/sessions/{session}/stop", (req) => managed(req, (s) => this.#stopSession(s)));
    r.add("POST", "/api/sessions/{session}/restart", (req) =>
      managed(req, (s) => {
        this.#stopSession(s);
        this.#boot(s);
      }),
    );
    r.add("POST", "/api/sessions/{session}/logout", (req) =>
      managed(req, (s) => {
        const wasRunning = s.status !== "STOPPED";
        this.#stopSession(s);
        s.auth = null;
        if (wasRunning) this.#boot(s);
      }),
    );

    r.add("GET", "/api/sessions/{session}/me", (req) => {
      const s = running(req);
      if (!("name" in s)) return s;
      const me = this.#me(s);
      return me ? { status: 200, body: me } : { status: 200 }; // unlinked: empty body
    });

    r.add("GET", "/api/{session}/auth/qr", async (req) => {
      const s = running(req);
      if (!("name" in s)) return s;
      const format = req.query.get("format") ?? "image";
      if (format !== "image" && format !== "raw") {
        return badRequest(["format must be one of the following values: image, raw"]);
      }
      if (!(await this.#waitForStatus(s, ["SCAN_QR_CODE"], this.#opts.statusWaitMs)) || !s.qr) {
        return wrongStatus(s, ["SCAN_QR_CODE"]);
      }
      const qr = s.qr;
      if (format === "raw") return { status: 200, body: { value: qr.value } };
      qr.png ??= await QRCode.toBuffer(qr.value, { type: "png", errorCorrectionLevel: "L", margin: 4, scale: 6 });
      const accept = String(req.headers["accept"] ?? "");
      if (accept.includes("application/json")) {
        return { status: 200, body: { mimetype: "image/png", data: qr.png.toString("base64") } };
      }
      return { status: 200, raw: { contentType: "image/png", data: qr.png } };
    });

    r.add("POST", "/api/{session}/auth/request-code", async (req: Req) => {
      const s = running(req);
      if (!("name" in s)) return s;
      const parsed = parseRequestCodeRequest(req.json);
      if (!parsed.ok) return badRequest(parsed.messages);
      if (this.engine === "NOWEB" && parsed.value.method) {
        return nestError(422, "NOWEB engine supports only web pairing: leave 'method' empty", "Unprocessable Entity");
      }
      // WAHA's NOWEB requestCode() (src/core/engines/noweb/session.noweb.core.ts, 2024.10.8
      // @55fc6a4): while STARTING it waits, without a time limit, for the engine's first QR
      // (sock.waitForConnectionUpdate(update => !!update.qr)), so a start that never shows
      // one never answers; outside SCAN_QR_CODE it throws a plain UnprocessableEntityException
      // string, not the {expected} object of the QR endpoint. WEBJS has no such check in that
      // source (whatsapp-web.js decides); the emulator answers every engine the NOWEB way.
      // (A stop or crash ends the wait: the engine's socket closes; WORKING does not.)
      if (s.status === "STARTING") await this.#waitForStatus(s, ["SCAN_QR_CODE", "STOPPED", "FAILED"], Number.POSITIVE_INFINITY);
      if (s.status !== "SCAN_QR_CODE") {
        return nestError(422, `Can request code only in SCAN_QR_CODE status. The current status is ${s.status}`, "Unprocessable Entity");
      }
      const code = pairingCode();
      s.pairing = { phoneNumber: parsed.value.phoneNumber.replace(/\D/g, ""), code };
      return { status: 201, body: { code } };
    });
  }

  /** Unauthenticated helpers for manual runs (curl); tests call the methods directly. */
  #registerHooks(): void {
    const h = this.#hooks;
    type Req = EmulatorRequest;
    const ok = (body: unknown = { ok: true }): Reply => ({ status: 200, body });
    const field = (req: Req, key: string): unknown =>
      typeof req.json === "object" && req.json !== null ? (req.json as Record<string, unknown>)[key] : undefined;
    const name = (req: Req) => req.params["session"] ?? "";

    h.add("GET", "/__emulator/sessions", () => ok(this.sessions()));
    h.add("GET", "/__emulator/calls", () => ok(this.calls));
    h.add("GET", "/__emulator/deliveries", () => ok(this.deliveries));
    h.add("GET", "/__emulator/sessions/{session}/qr", (req) => ok({ value: this.currentQr(name(req)) }));
    h.add("POST", "/__emulator/sessions/{session}/scan", (req: Req) => {
      const phone = field(req, "phoneNumber");
      const pushName = field(req, "pushName");
      this.scan(name(req), typeof phone === "string" ? phone : "", typeof pushName === "string" ? pushName : undefined);
      return ok();
    });
    h.add("POST", "/__emulator/sessions/{session}/pair", (req) => (this.enterPairingCode(name(req)), ok()));
    h.add("POST", "/__emulator/sessions/{session}/unlink", (req) => (this.unlinkFromPhone(name(req)), ok()));
    h.add("POST", "/__emulator/sessions/{session}/crash", (req) => (this.crash(name(req)), ok()));
    h.add("POST", "/__emulator/sessions/{session}/flap", (req) => (this.flap(name(req)), ok()));
    h.add("POST", "/__emulator/sessions/{session}/delete", (req) => (this.deleteBehindBack(name(req)), ok()));
    h.add("POST", "/__emulator/sessions/{session}/stop", (req) => (this.stopBehindBack(name(req)), ok()));
    h.add("POST", "/__emulator/available", (req: Req) => {
      const mode = field(req, "mode") === "reset" ? "reset" : "503";
      this.setAvailable(field(req, "available") !== false, mode);
      return ok();
    });
    h.add("POST", "/__emulator/clock/advance", (req: Req) => {
      const ms = Number(field(req, "ms"));
      const clock = this.clock as Clock & { advance?: (ms: number) => void };
      if (typeof clock.advance !== "function") throw new WahaEmulatorHookError("the emulator runs on a real clock");
      if (!(ms >= 0)) throw new WahaEmulatorHookError("ms must be a number >= 0");
      clock.advance(ms);
      return ok({ now: this.clock.now() });
    });
  }
}

/** WAHA's BooleanString transform followed by IsBoolean. */
function parseBooleanString(v: string): boolean | undefined {
  if (["true", "True", "1"].includes(v)) return true;
  if (["false", "False", "0"].includes(v)) return false;
  return undefined;
}

function b64(bytes: number): string {
  return randomBytes(bytes).toString("base64");
}

/** "ABCD-EFGH": WhatsApp pairing codes use digits and upper-case letters without look-alikes. */
function pairingCode(): string {
  const alphabet = "123456789ABCDEFGHJKLMNPQRSTVWXYZ";
  const bytes = randomBytes(8);
  let code = "";
  for (let i = 0; i < 8; i++) code += alphabet[(bytes[i] ?? 0) % alphabet.length];
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}
