/**
 * WAPIZ (managed "unofficial WhatsApp API"): devices under /api/devices, authenticated by
 * the cookie `wa_token`. A device is linked by polling its QR endpoint; WAPIZ has no call
 * to stop, restart or log out a device, no pairing code, and one webhook URL per device
 * for incoming messages, without event filter or signature.
 */
import { z } from "zod";
import { ProviderError, isProviderError, redactSecrets, shortenMessage } from "../errors.ts";
import { isPng } from "../qr.ts";
import { ProviderHttp, classifyByStatus, header, parseJson, readErrorBody, type HttpRequest, type HttpResponse } from "../http.ts";
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
import { wapizState } from "./states.ts";

/** QR linking and one unsigned webhook URL; nothing else WAPIZ could be asked to do exists. */
export const wapizCapabilities: ProviderCapabilities = {
  qr: true,
  pairingCode: false,
  disconnect: false,
  restart: false,
  logout: false,
  webhook: true,
  webhookEvents: "none",
  webhookSigning: false,
  version: false,
};

/** "QR code kedaluwarsa sekitar 20 detik": a QR expires after about 20 seconds. */
const QR_VALID_FOR_MS = 20_000;

/**
 * The label a device gets when spec.displayName is unset. WAPIZ stores nothing else of
 * ours, so the label is how a device is found again when its id never reached status.
 */
export function wapizDeviceLabel(ref: Pick<InstanceRef, "namespace" | "name" | "displayName">): string {
  return ref.displayName ?? `${ref.namespace}/${ref.name}`;
}

const deviceSchema = z.object({
  id: z.string().min(1),
  label: z.string().nullish(),
  webhookUrl: z.string().nullish(),
});
type Device = z.output<typeof deviceSchema>;
const statusSchema = z.object({ status: z.string(), connected: z.boolean().optional(), loggedIn: z.boolean().optional() });
const okSchema = z.object({ ok: z.literal(true) });
const webhookReplySchema = z.object({ ok: z.literal(true), webhookUrl: z.string().nullish() });
/** Once logged in, the QR endpoint answers JSON; its fields are not documented, only that it is an object. */
const loggedInQrSchema = z.looseObject({});
/** WAPIZ's page shows only the messages; both field names are seen on APIs of its kind. */
const errorBodySchema = z.object({ error: z.string().optional(), message: z.string().optional() });


class WapizClient implements ProviderClient {
  readonly type = "wapiz" as const;
  readonly capabilities = wapizCapabilities;
  readonly #http: ProviderHttp;
  readonly #token: string | undefined;
  readonly #now: () => number;

  constructor(settings: ProviderSettings, deps: ProviderDeps) {
    this.#token = settings.apiKey;
    this.#now = deps.now ?? Date.now;
    this.#http = ProviderHttp.forProvider(settings, deps, (response) => this.#classify(response));
  }

  async checkHealth(): Promise<HealthReport> {
    await this.#listDevices();
    return {};
  }

  async observe(ref: InstanceRef): Promise<ObservedSession | null> {
    const devices = await this.#listDevices();
    const device = ref.providerInstanceId
      ? devices.find((candidate) => candidate.id === ref.providerInstanceId)
      : devices.find((candidate) => candidate.label === wapizDeviceLabel(ref));
    if (!device) return null;
    try {
      return await this.#session(ref, device);
    } catch (error) {
      // Deleted between the two calls.
      if (isProviderError(error, "NotFound")) return null;
      throw error;
    }
  }

  async create(ref: InstanceRef): Promise<ObservedSession> {
    let device: Device;
    try {
      device = await this.#json({ method: "POST", path: "/api/devices", json: { label: wapizDeviceLabel(ref) } }, deviceSchema);
    } catch (error) {
      // On this call 403 is the plan's device limit ("Paket Free maksimal 1 device").
      if (isProviderError(error, "Rejected") && error.status === 403) {
        throw new ProviderError("QuotaExceeded", `wapiz refused a new device: the account's plan allows no more devices (${error.message})`, {
          status: 403,
          cause: error,
        });
      }
      throw error;
    }
    return this.#session(ref, device);
  }

  /**
   * WAPIZ has no start call: asking a device for its QR is what makes it connect (and,
   * when it still holds a link, log in again). The answer itself is not needed here.
   */
  async connect(_ref: InstanceRef, id: string): Promise<void> {
    await this.#qr(id);
  }

  disconnect(): Promise<void> {
    return unsupported("disconnect a device");
  }

  restart(): Promise<void> {
    return unsupported("restart a device");
  }

  logout(): Promise<void> {
    return unsupported("log a device out");
  }

  requestPairingCode(): Promise<string> {
    return unsupported("link with a pairing code");
  }

  async remove(_ref: InstanceRef, id: string): Promise<void> {
    try {
      await this.#json({ method: "DELETE", path: devicePath(id) }, okSchema);
    } catch (error) {
      if (isProviderError(error, "NotFound")) return;
      throw error;
    }
  }

  fetchQr(_ref: InstanceRef, id: string): Promise<QrCode | null> {
    return this.#qr(id);
  }

  /** One URL per device; null removes it. Events and signing do not exist on WAPIZ. */
  async configureWebhook(ref: InstanceRef, id: string): Promise<void> {
    const webhookUrl = ref.webhook?.url ?? null;
    await this.#json({ method: "PATCH", path: devicePath(id, "webhook"), json: { webhookUrl } }, webhookReplySchema);
  }

  async #session(ref: InstanceRef, device: Device): Promise<ObservedSession> {
    const status = await this.#json({ method: "GET", path: devicePath(device.id, "status") }, statusSchema);
    return {
      id: device.id,
      ...wapizState(status),
      // The documented status carries no phone number, so none is reported.
      webhookInSync: ref.webhook ? (device.webhookUrl ?? null) === ref.webhook.url : undefined,
    };
  }

  /** A PNG while the device waits for a scan, JSON once it is logged in (then null). */
  async #qr(id: string): Promise<QrCode | null> {
    const response = await this.#send({ method: "GET", path: devicePath(id, "qr"), headers: { Accept: "image/png, application/json" } });
    const contentType = header(response, "content-type") ?? "";
    if (contentType.startsWith("image/png")) {
      if (!isPng(response.body)) {
        throw new ProviderError("Malformed", "wapiz answered GET qr with image/png bytes that are not a PNG");
      }
      return { png: response.body, validForMs: QR_VALID_FOR_MS };
    }
    parseJson("wapiz", "GET qr", response.body, loggedInQrSchema);
    return null;
  }

  async #listDevices(): Promise<Device[]> {
    return this.#json({ method: "GET", path: "/api/devices" }, z.array(deviceSchema));
  }

  #json<S extends z.ZodType>(request: HttpRequest, schema: S): Promise<z.output<S>> {
    return this.#withToken(request, (authed) => this.#http.json(authed, schema));
  }

  #send(request: HttpRequest): Promise<HttpResponse> {
    return this.#withToken(request, (authed) => this.#http.send(authed));
  }

  #withToken<T>(request: HttpRequest, run: (authed: HttpRequest) => Promise<T>): Promise<T> {
    if (!this.#token) {
      return Promise.reject(new ProviderError("InvalidCredentials", "wapiz needs a token: set credentialsSecretRef on the provider"));
    }
    return run({ ...request, headers: { ...request.headers, Cookie: `wa_token=${this.#token}` } });
  }

  /** WAPIZ errors read `{"error": "..."}`; the kind comes from the status alone. */
  #classify(response: HttpResponse): ProviderError {
    const body = errorBodySchema.safeParse(readErrorBody(response));
    const detail = body.success ? (body.data.error ?? body.data.message) : undefined;
    // Provider text goes into conditions: never let it echo our token.
    const message = detail ? shortenMessage(redactSecrets(detail, [this.#token])) : "request failed";
    return classifyByStatus("wapiz", response, message, { now: this.#now() });
  }
}

function devicePath(id: string, action?: string): string {
  const base = `/api/devices/${encodeURIComponent(id)}`;
  return action ? `${base}/${action}` : base;
}

function unsupported(operation: string): Promise<never> {
  return Promise.reject(new ProviderError("Rejected", `wapiz cannot ${operation}`));
}

/** A stateless client for one WAPIZ account (settings.apiKey is its wa_token). */
export const createWapizClient: ProviderFactory = (settings, deps) => new WapizClient(settings, deps);
