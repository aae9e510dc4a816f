/**
 * A loopback emulator of the whapi device service (shared/providers/whapi-device-service.source.txt):
 * every call is `GET /api/<call>` with `apiKey=<key>` in a form-urlencoded body, and every
 * answer is the envelope `{code, results}`. One API key is one device.
 *
 * Choices where the page says nothing (documented here so tests can rely on them):
 * - A missing or unknown key answers HTTP 200 with `{code: 401, results: {message}}`: the
 *   envelope carries the error, as the documented envelope suggests a PHP-style service does.
 * - An unknown call answers 404, another method 405, both with the envelope.
 * - serviceStart shows PAIRING for `pairingMs` (2 s), then SERVICE_SCAN; the QR payload
 *   changes every 20 s while scanning. getQR while no QR is shown answers 200 with
 *   `{message, state}` and no `qrString`.
 * - serviceStart on a connected device keeps it connected (the link is not dropped).
 * - `setAvailable(false)` answers 503 with the envelope `{code: 503}`.
 * - The word a device reports while it shows its QR: SERVICE_SCAN by default; the page's
 *   PAIRING may mean "waiting for the QR scan" too ("Mungkin sedang menunggu pemindaian QR
 *   code"), so `scanState: "PAIRING"` models a device that says PAIRING while its QR waits.
 * - Where apiKey is read: the form body, as documented. Whether the service also reads it
 *   from the query (as a PHP service reading $_REQUEST would) the page does not say:
 *   `acceptsQueryKey` turns that on. `dropGetBodies` models a proxy in front that drops
 *   the body of every GET.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import QRCode from "qrcode";
import { realClock, type Clock, type Timer } from "../shared/clock.ts";
import { close, listen, readBody, Router, sendReply, type EmulatorRequest, type Reply } from "../shared/http.ts";

/** How long one QR payload stays current while a device shows SERVICE_SCAN. */
export const WHAPI_QR_ROTATION_MS = 20_000;
/** How long serviceStart stays in PAIRING before the QR appears. */
export const WHAPI_PAIRING_MS = 2_000;

export type WhapiDeviceState = "SERVICE_OFF" | "PAIRING" | "SERVICE_SCAN" | "CONNECTED";

export interface WhapiEmulatorOptions {
  /** The valid device keys; each is one device, initially SERVICE_OFF. */
  readonly apiKeys: readonly string[];
  readonly clock?: Clock;
  readonly pairingMs?: number;
  /** What getWWebVersion reports. */
  readonly version?: readonly number[];
  /** The state word while the QR is shown: SERVICE_SCAN (default) or PAIRING. */
  readonly scanState?: "SERVICE_SCAN" | "PAIRING";
  /** Whether a key in the query is read when the body has none. Default false. */
  readonly acceptsQueryKey?: boolean;
  /** A proxy in front drops GET bodies, so only a key in the query arrives. Default false. */
  readonly dropGetBodies?: boolean;
}

export interface CallRecord {
  readonly method: string;
  /** Pathname only: the key travels in the body and is never recorded. */
  readonly path: string;
  readonly status: number;
}

/** How the next answer is broken, to exercise the client's Malformed handling. */
export type Corruption = "not-json" | "wrong-shape";

interface Device {
  readonly label: string;
  /** Per-device salt so QR payloads differ between devices and runs. */
  readonly salt: string;
  state: WhapiDeviceState;
  /** Whether the QR is on screen (the state word may be SERVICE_SCAN or PAIRING then). */
  scanning: boolean;
  scanSince: number;
  pairing: Timer | undefined;
}

type Call = (device: Device, apiKey: string) => Promise<unknown> | unknown;

export class WhapiEmulator {
  /** Every answered request, in order. */
  readonly calls: CallRecord[] = [];
  readonly #clock: Clock;
  readonly #pairingMs: number;
  readonly #version: readonly number[];
  readonly #scanState: "SERVICE_SCAN" | "PAIRING";
  readonly #dropGetBodies: boolean;
  readonly #acceptsQueryKey: boolean;
  readonly #devices = new Map<string, Device>();
  readonly #router = new Router();
  readonly #server: Server;
  #available = true;
  #corruption: Corruption | undefined;

  constructor(options: WhapiEmulatorOptions) {
    this.#clock = options.clock ?? realClock;
    this.#pairingMs = options.pairingMs ?? WHAPI_PAIRING_MS;
    this.#version = options.version ?? [2, 2243, 7];
    this.#scanState = options.scanState ?? "SERVICE_SCAN";
    this.#dropGetBodies = options.dropGetBodies ?? false;
    this.#acceptsQueryKey = options.acceptsQueryKey ?? false;
    options.apiKeys.forEach((key, index) => {
      this.#devices.set(key, {
        label: `device-${index + 1}`,
        salt: randomBytes(8).toString("hex"),
        state: "SERVICE_OFF",
        scanning: false,
        scanSince: 0,
        pairing: undefined,
      });
    });
    const calls: Record<string, Call> = {
      serviceStart: (device) => this.#serviceStart(device),
      serviceDestroy: (device) => {
        this.#turnOff(device);
        return { message: "Whatsapp API service successfully turned off." };
      },
      getQR: (device, apiKey) => this.#getQr(device, apiKey),
      getState: (device) => ({ state: device.state }),
      getWWebVersion: () => ({ version: this.#version }),
    };
    for (const [name, call] of Object.entries(calls)) {
      this.#router.add("GET", `/api/${name}`, (req) => this.#authenticated(req, call));
    }
    this.#server = createServer((req, res) => {
      void (async () => {
        const rawBody = await readBody(req);
        const url = new URL(req.url ?? "/", "http://emulator");
        const reply = await this.#answer({
          method: req.method ?? "GET",
          path: url.pathname,
          query: url.searchParams,
          headers: req.headers,
          params: {},
          rawBody: this.#dropGetBodies && req.method === "GET" ? Buffer.alloc(0) : rawBody,
        });
        this.calls.push({ method: req.method ?? "GET", path: url.pathname, status: reply.status });
        sendReply(res, reply);
      })().catch((error: unknown) => {
        res.writeHead(500).end(String(error));
      });
    });
  }

  /** Listens on 127.0.0.1 with a free port; returns the base URL. */
  start(): Promise<string> {
    return listen(this.#server);
  }

  stop(): Promise<void> {
    for (const device of this.#devices.values()) device.pairing?.cancel();
    return close(this.#server);
  }

  /** false: every request answers 503 until set back to true. */
  setAvailable(available: boolean): void {
    this.#available = available;
  }

  /** Breaks the next answer (200 with a non-JSON body or an unexpected shape); the call itself is not carried out. */
  corruptNext(kind: Corruption): void {
    this.#corruption = kind;
  }

  /** The device's state, as getState would report it. */
  state(apiKey: string): WhapiDeviceState {
    return this.#device(apiKey).state;
  }

  /** The payload of the QR the device shows right now, or undefined when it shows none. */
  currentQr(apiKey: string): string | undefined {
    const device = this.#device(apiKey);
    if (!device.scanning) return undefined;
    const rotation = Math.floor((this.#clock.now() - device.scanSince) / WHAPI_QR_ROTATION_MS);
    const ref = createHash("sha256").update(`${device.salt}:${rotation}`).digest("base64url").slice(0, 32);
    return `2@${ref},${device.label},${rotation}`;
  }

  /** The phone scans the QR: the device becomes CONNECTED. */
  scan(apiKey: string): void {
    const device = this.#device(apiKey);
    if (!device.scanning) throw new Error(`${device.label} shows no QR (state ${device.state})`);
    device.scanning = false;
    device.state = "CONNECTED";
  }

  /** The phone removes the linked device (or the service dies): SERVICE_OFF. */
  unlink(apiKey: string): void {
    this.#turnOff(this.#device(apiKey));
  }

  async #answer(req: EmulatorRequest): Promise<Reply> {
    if (!this.#available) return envelope(503, { message: "Service Unavailable" }, 503);
    const corruption = this.#corruption;
    if (corruption !== undefined) {
      this.#corruption = undefined;
      return corruption === "not-json"
        ? { status: 200, raw: { contentType: "text/html", data: Buffer.from("<html>Bad Gateway</html>") } }
        : { status: 200, body: { status: "ok", data: [] } };
    }
    const match = this.#router.match(req.method, req.path);
    if (match.route) return match.route.handler({ ...req, params: match.params });
    if (this.#router.match("GET", req.path).route) return envelope(405, { message: "Method not allowed" }, 405);
    return envelope(404, { message: "Not found" }, 404);
  }

  /** Resolves the device from the apiKey (form body, else query); an unknown key is an error inside a 200 envelope. */
  async #authenticated(req: EmulatorRequest, call: Call): Promise<Reply> {
    const isForm = (req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded");
    const fromBody = isForm ? new URLSearchParams(req.rawBody.toString("utf8")).get("apiKey") : null;
    const apiKey = fromBody ?? (this.#acceptsQueryKey ? req.query.get("apiKey") : null);
    const device = apiKey === null ? undefined : this.#devices.get(apiKey);
    if (apiKey === null || device === undefined) {
      return envelope(401, { message: "Invalid API key, please check your apiKey" });
    }
    return envelope(200, await call(device, apiKey));
  }

  #serviceStart(device: Device): unknown {
    if (device.state === "CONNECTED") return { message: `API for device ${device.label} is already connected` };
    if (device.state === "SERVICE_OFF") {
      device.state = "PAIRING";
      device.pairing = this.#clock.schedule(this.#pairingMs, () => {
        device.pairing = undefined;
        device.state = this.#scanState;
        device.scanning = true;
        device.scanSince = this.#clock.now();
      });
    }
    return { message: `API for device ${device.label} Already activated, please scan the qr code to connect the device` };
  }

  async #getQr(device: Device, apiKey: string): Promise<unknown> {
    const payload = this.currentQr(apiKey);
    if (payload === undefined) {
      return { message: `No QR code while the device is ${device.state}`, state: device.state };
    }
    return {
      // The documented answer echoes the key; the client must never repeat it.
      apiKey,
      message: "Put the result get QR object into the src of the image tag.",
      qrString: await QRCode.toDataURL(payload, { margin: 2, scale: 4 }),
      state: device.state,
    };
  }

  #turnOff(device: Device): void {
    device.pairing?.cancel();
    device.pairing = undefined;
    device.scanning = false;
    device.state = "SERVICE_OFF";
  }

  #device(apiKey: string): Device {
    const device = this.#devices.get(apiKey);
    if (!device) throw new Error("the emulator has no device with that key");
    return device;
  }
}

function envelope(code: number, results: unknown, httpStatus = 200): Reply {
  return { status: httpStatus, body: { code, results } };
}
