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

export interface WapizEmulatorOptions {
  /** Valid wa_token values and each account's plan. Default {"wapiz-test-token": "free"}. */
  readonly accounts?: Readonly<Record<string, WapizPlan>>;
  readonly clock?: Clock;
  /** How long one QR code lives. Default 20000. */
  readonly qrRotationMs?: number;
}

export interface WapizDeviceSnapshot {
  readonly id: string;
  readonly label: string;
  readonly webhookUrl: string | null;
  readonly status: WapizEmulatorStatus;
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
  readonly #accounts: ReadonlyMap<string, WapizPlan>;
  readonly #qrRotationMs: number;
  readonly #devices = new Map<string, Device>();
  readonly #router = new Router();

  constructor(options: WapizEmulatorOptions = {}) {
    super();
    this.clock = options.clock ?? realClock;
    this.#accounts = new Map(Object.entries(options.accounts ?? { "wapiz-test-token": "free" }));
    this.#qrRotationMs = options.qrRotationMs ?? 20_000;
    this.#router
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
    const token = tokenOf(req);
    if (token === undefined || !this.#accounts.has(token)) return failure(401, "Unauthorized");
    const match = this.#router.match(req.method, req.path);
    return match.route ? match.route.handler({ ...req, params: match.params }) : failure(404, "Not Found");
  }

  #list(req: EmulatorRequest): Reply {
    return { status: 200, body: this.#own(req).map(deviceView) };
  }

  #create(req: EmulatorRequest): Reply {
    const owner = tokenOf(req) ?? "";
    const plan = this.#accounts.get(owner) ?? "free";
    const limit = WAPIZ_DEVICE_LIMITS[plan];
    if (this.#own(req).length >= limit) return failure(403, `Paket ${capitalise(plan)} maksimal ${limit} device`);
    const body = jsonBody(req);
    const label = isRecord(body) && typeof body["label"] === "string" && body["label"].trim() !== "" ? body["label"] : "Device Baru";
    const device: Device = {
      id: randomUUID(),
      owner,
      userId: `user-${createHash("sha256").update(owner).digest("hex").slice(0, 12)}`,
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
    if (!device || device.owner !== tokenOf(req)) return failure(404, "Device tidak ditemukan");
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
    return { status: 200, raw: { contentType: "image/png", data: await renderQrPng(payload) } };
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
    const owner = tokenOf(req);
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
