/**
 * WAPIZ (managed "unofficial WhatsApp API"): devices under /api/devices, authenticated by
 * the cookie `wa_token` (a token in the Secret, or one from logging in: token.ts). A device
 * is linked by polling its QR endpoint; WAPIZ has no call to stop, restart or log out a
 * device, no pairing code, and one webhook URL per device for incoming messages, without
 * event filter or signature.
 */
import { z } from "zod";
import { ProviderError, isProviderError, redactSecrets, shortenMessage } from "../errors.ts";
import { ownedLabel, ownerOfLabel } from "../owner-label.ts";
import { isPng } from "../qr.ts";
import { ProviderHttp, classifyByStatus, parseJson, readErrorBody, type HttpRequest, type HttpResponse } from "../transport/http.ts";
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
import { WapizToken } from "./token.ts";

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
 * A device's label: spec.displayName (else `<namespace>/<name>`) and the instance's uid,
 * `Support Line [<uid>]` (owner-label.ts). WAPIZ stores nothing else of ours, and a label is
 * chosen by people, so only the uid in it tells our device apart: it is how a device is
 * found again when its id never reached status, and the proof that the operator created it.
 */
export function wapizDeviceLabel(ref: Pick<InstanceRef, "namespace" | "name" | "displayName" | "uid">): string {
  return ownedLabel(ref.displayName ?? `${ref.namespace}/${ref.name}`, ref.uid);
}

/**
 * Devices per plan: "Free / Lite: 1; Regular ke atas: 3" (the devices page). Plans above
 * Regular are not named, so only these three are read from /api/auth/me.
 */
const DEVICE_LIMITS: Readonly<Record<string, number>> = { free: 1, lite: 1, regular: 3 };

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
/** `GET /api/auth/me` (the authentication page): the account's plan and its devices. */
const meSchema = z.object({
  subscription: z.object({ plan: z.object({ name: z.string().optional(), slug: z.string() }) }).nullish(),
  devices: z.array(z.unknown()).optional(),
});


class WapizClient implements ProviderClient {
  readonly type = "wapiz" as const;
  readonly capabilities = wapizCapabilities;
  readonly #http: ProviderHttp;
  readonly #token: WapizToken;
  readonly #now: () => number;

  constructor(settings: ProviderSettings, deps: ProviderDeps) {
    this.#now = deps.now ?? Date.now;
    this.#http = ProviderHttp.forProvider(settings, deps, (response) => this.#classify(response));
    this.#token = new WapizToken(settings, (login) =>
      this.#http.send({ method: "POST", path: "/api/auth/login", json: { email: login.email, password: login.password } }),
    );
  }

  async checkHealth(): Promise<HealthReport> {
    await this.#listDevices();
    return {};
  }

  async observe(ref: InstanceRef): Promise<ObservedSession | null> {
    const devices = await this.#listDevices();
    // With a recorded id the device is followed whatever its label (also one labelled
    // before labels carried the uid); without one, only a label carrying our uid is ours.
    const device = ref.providerInstanceId
      ? devices.find((candidate) => candidate.id === ref.providerInstanceId)
      : devices.find((candidate) => ownerOfLabel(candidate.label) === ref.uid);
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
    await this.#checkPlanRoom();
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

  /**
   * Deletes only a device whose label carries this resource's uid: one labelled by hand, by
   * another resource, or by an operator before labels carried the uid could be somebody
   * else's, and deleting it disconnects their WhatsApp. That refusal names the two ways out.
   */
  async remove(ref: InstanceRef, id: string): Promise<void> {
    const device = (await this.#listDevices()).find((candidate) => candidate.id === id);
    if (device === undefined) return;
    if (ownerOfLabel(device.label) !== ref.uid) {
      throw new ProviderError(
        "Rejected",
        `wapiz device ${id} ("${shortenMessage(device.label ?? "")}") was not created for this resource (its label does not carry uid ${ref.uid}), so the operator will not delete it: delete it in WAPIZ, or set spec.deletionPolicy: Orphan to leave it`,
      );
    }
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
    const ownerUid = ownerOfLabel(device.label);
    return {
      id: device.id,
      ...wapizState(status),
      // The documented status carries no phone number, so none is reported.
      ...(ownerUid ? { ownerUid } : {}),
      // The device is ours, so its one URL is ours to manage: with no spec.webhook it must be empty.
      webhookInSync: (device.webhookUrl || null) === (ref.webhook?.url ?? null),
    };
  }

  /**
   * A PNG while the device waits for a scan, JSON once it is logged in (then null). The
   * page says "a PNG image" and nothing of the Content-Type, so the bytes decide.
   */
  async #qr(id: string): Promise<QrCode | null> {
    const response = await this.#send({ method: "GET", path: devicePath(id, "qr"), headers: { Accept: "image/png, application/json" } });
    if (isPng(response.body)) return { png: response.body, validForMs: QR_VALID_FOR_MS };
    parseJson("wapiz", "GET qr", response.body, loggedInQrSchema);
    return null;
  }

  /**
   * Reads the plan from /api/auth/me and refuses a device it has no room for, so a full plan
   * is a QuotaExceeded with the plan's numbers rather than a write WAPIZ refuses. An account
   * without a known plan is left to WAPIZ's own 403.
   */
  async #checkPlanRoom(): Promise<void> {
    let me: z.output<typeof meSchema>;
    try {
      me = await this.#json({ method: "GET", path: "/api/auth/me" }, meSchema);
    } catch (error) {
      // A WAPIZ without the account page, or with another shape of it: WAPIZ's 403 still tells.
      if (isProviderError(error, "NotFound") || isProviderError(error, "Malformed")) return;
      throw error;
    }
    const plan = me.subscription?.plan;
    const limit = plan ? DEVICE_LIMITS[plan.slug.toLowerCase()] : undefined;
    const used = me.devices?.length;
    if (limit === undefined || used === undefined || used < limit) return;
    const name = plan?.name ?? plan?.slug;
    throw new ProviderError(
      "QuotaExceeded",
      `wapiz plan ${name} allows ${limit} device${limit === 1 ? "" : "s"} and the account has ${used}; delete one or upgrade the plan`,
    );
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

  /** Sends with the token; a 401 is answered by one renewal and one retry, where a login is configured. */
  async #withToken<T>(request: HttpRequest, run: (authed: HttpRequest) => Promise<T>): Promise<T> {
    const withCookie = (token: string): HttpRequest => ({ ...request, headers: { ...request.headers, Cookie: `wa_token=${token}` } });
    const token = await this.#token.current();
    try {
      return await run(withCookie(token));
    } catch (error) {
      if (!this.#token.renewable || !isProviderError(error, "InvalidCredentials") || error.status !== 401) throw error;
      return run(withCookie(await this.#token.replace(token)));
    }
  }

  /** WAPIZ errors read `{"error": "..."}`; the kind comes from the status alone. */
  #classify(response: HttpResponse): ProviderError {
    const body = errorBodySchema.safeParse(readErrorBody(response));
    const detail = body.success ? (body.data.error ?? body.data.message) : undefined;
    // Provider text goes into conditions: never let it echo our token or password.
    const message = detail ? shortenMessage(redactSecrets(detail, this.#token.secrets())) : "request failed";
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

/**
 * A client for one WAPIZ account: settings.apiKey is a wa_token, settings.login the account's
 * email and password; its only state is the current token.
 */
export const createWapizClient: ProviderFactory = (settings, deps) => new WapizClient(settings, deps);
