/**
 * whapi: a self-hosted device service where one API key is one WhatsApp device
 * (shared/providers/whapi-device-service.source.txt). Every call is `GET /api/<call>`
 * with `apiKey` in a form-urlencoded body (and, where the provider asks for it because a
 * proxy drops GET bodies, in the query too); answers are `{code, results}`, and a code
 * other than 200 is an error even inside an HTTP 200.
 *
 * Mapping to ProviderClient (what the page offers, nothing invented):
 * - the device always exists, so observe never returns null and create only observes;
 * - connect = serviceStart, disconnect = serviceDestroy (SERVICE_OFF);
 * - remove = serviceDestroy too: the device and its key belong to the licence and cannot
 *   be deleted through the API, so deleting the instance turns its service off;
 * - no restart, logout, pairing code or webhook API: those capabilities are false and
 *   the methods throw Rejected instead of pretending.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { ProviderError, redactSecrets, shortenMessage } from "../errors.ts";
import { classifyByStatus, ProviderHttp, readErrorBody, type HttpResponse } from "../transport/http.ts";
import { pngFromDataUrl } from "../qr.ts";
import type {
  HealthOptions,
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
import { whapiPhase } from "./states.ts";

export const whapiCapabilities: ProviderCapabilities = {
  qr: true,
  pairingCode: false,
  disconnect: true,
  restart: false,
  logout: false,
  // The product's public docs name webhook types, but the service page has no API to configure them.
  webhook: false,
  webhookEvents: "none",
  webhookSigning: false,
  version: true,
};

/** The page gives no lifetime; the QR rotates about every 20 s on the device. */
export const WHAPI_QR_VALID_MS = 20_000;

// Some PHP services send numbers as strings; accept both for the envelope code.
const code = z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]);
const envelopeSchema = z.object({ code, results: z.unknown() });
const messageSchema = z.object({ message: z.string().optional() }).loose();
const stateSchema = z.object({ state: z.string() });
const qrSchema = z.object({ qrString: z.string().optional(), state: z.string().optional() });
const versionSchema = z.object({
  version: z.union([z.array(z.number().int().nonnegative()).min(1), z.string().min(1)]),
});


export const createWhapiClient: ProviderFactory = (settings, deps) => new WhapiClient(settings, deps);

class WhapiClient implements ProviderClient {
  readonly type = "whapi" as const;
  readonly capabilities = whapiCapabilities;
  readonly #settings: ProviderSettings;
  readonly #http: ProviderHttp;

  constructor(settings: ProviderSettings, deps: ProviderDeps) {
    this.#settings = settings;
    this.#http = ProviderHttp.forProvider(settings, deps, () => undefined); // the envelope, and non-2xx answers, are classified in #call
  }

  /**
   * getWWebVersion with the provider-wide key. Without one (keys are per device), with a
   * managed device's key when the caller has one, else without a key: an envelope refusing
   * that key still proves the service is up and speaks whapi, so only transport errors and
   * foreign answers fail, and the version is shown whenever a device's key is at hand.
   */
  async checkHealth(options: HealthOptions = {}): Promise<HealthReport> {
    const key = this.#settings.apiKey;
    if (key === undefined) {
      try {
        return { version: await this.#version(options.instanceKey) };
      } catch (error) {
        if (error instanceof ProviderError && error.kind === "InvalidCredentials") return {};
        throw error;
      }
    }
    return { version: await this.#version(key) };
  }

  /**
   * PAIRING is "linking in progress: waiting for the scan or finishing authentication";
   * the QR tells which. With one on screen it is ScanQR, so the QR is fetched and shown.
   */
  async observe(ref: InstanceRef): Promise<ObservedSession> {
    const key = this.#key(ref);
    const { state } = await this.#call("getState", key, stateSchema);
    const phase = whapiPhase(state);
    const waitingForScan = state.trim().toUpperCase() === "PAIRING" && (await this.#qrString(key)) !== undefined;
    return { id: deviceId(key), phase: waitingForScan ? "ScanQR" : phase, providerState: state };
  }

  /** The device exists as soon as its key does; creating it means reading its state. */
  create(ref: InstanceRef): Promise<ObservedSession> {
    return this.observe(ref);
  }

  async connect(ref: InstanceRef): Promise<void> {
    await this.#call("serviceStart", this.#key(ref), messageSchema);
  }

  async disconnect(ref: InstanceRef): Promise<void> {
    await this.#call("serviceDestroy", this.#key(ref), messageSchema);
  }

  restart(): Promise<void> {
    return unsupported("restart (the device service has no restart call)");
  }

  logout(): Promise<void> {
    return unsupported("logout (serviceDestroy only turns the service off)");
  }

  /** Turns the service off: the device itself belongs to the licence and cannot be deleted. */
  async remove(ref: InstanceRef): Promise<void> {
    await this.#call("serviceDestroy", this.#key(ref), messageSchema);
  }

  async fetchQr(ref: InstanceRef): Promise<QrCode | null> {
    const qrString = await this.#qrString(this.#key(ref));
    return qrString === undefined ? null : { png: pngFromDataUrl("whapi", qrString), validForMs: WHAPI_QR_VALID_MS };
  }

  /** The QR on screen, or undefined when the device shows none. */
  async #qrString(key: string): Promise<string | undefined> {
    const { qrString } = await this.#call("getQR", key, qrSchema);
    return qrString === undefined || qrString === "" ? undefined : qrString;
  }

  requestPairingCode(): Promise<string> {
    return unsupported("pairing codes");
  }

  configureWebhook(): Promise<void> {
    return unsupported("webhook configuration");
  }

  async #version(key: string | undefined): Promise<string> {
    const { version } = await this.#call("getWWebVersion", key, versionSchema);
    return typeof version === "string" ? version : version.join(".");
  }

  /** The instance's own key, else the provider-wide one. */
  #key(ref: InstanceRef): string {
    const key = ref.apiKey ?? this.#settings.apiKey;
    if (key === undefined || key === "") {
      throw new ProviderError(
        "Rejected",
        "whapi needs an apiKey for each device: set spec.credentialsSecretRef on the instance (or on its provider)",
      );
    }
    return key;
  }

  /**
   * One call: sends the key in the form body (and the query, where spec.whapi asks for it),
   * unwraps the envelope, parses `results`. `what` names the path only, never the query.
   */
  async #call<S extends z.ZodType>(name: string, key: string | undefined, schema: S): Promise<z.output<S>> {
    const what = `GET /api/${name}`;
    const inQuery = key !== undefined && this.#settings.whapi?.apiKeyInQuery === true;
    const response = await this.#http.send({
      method: "GET",
      path: `/api/${name}`,
      headers: { Accept: "application/json" },
      form: key === undefined ? {} : { apiKey: key },
      ...(inQuery ? { query: { apiKey: key } } : {}),
    });
    if (response.status < 200 || response.status >= 300) throw classify(response, what, key);
    const body = parseEnvelope(response, what);
    if (body.code !== 200) throw envelopeError(response, body.code, messageOf(body.results), what, key);
    const results = schema.safeParse(body.results);
    if (!results.success) {
      const issue = results.error.issues[0];
      const where = issue && issue.path.length > 0 ? ` at results.${issue.path.join(".")}` : "";
      throw new ProviderError("Malformed", `whapi answered ${what} in an unexpected shape${where}`);
    }
    return results.data;
  }
}

/**
 * A stable, non-secret id for the device behind a key. Only 32 bits of a hash leave
 * the process, which says nothing useful about the key.
 */
export function deviceId(apiKey: string): string {
  return `whapi-${createHash("sha256").update(apiKey).digest("hex").slice(0, 8)}`;
}

function parseEnvelope(response: HttpResponse, what: string): z.output<typeof envelopeSchema> {
  let value: unknown;
  try {
    value = JSON.parse(response.body.toString("utf8"));
  } catch {
    throw new ProviderError("Malformed", `whapi answered ${what} with something that is not JSON`, { status: response.status });
  }
  const parsed = envelopeSchema.safeParse(value);
  if (!parsed.success) {
    throw new ProviderError("Malformed", `whapi answered ${what} without the {code, results} envelope`, {
      status: response.status,
    });
  }
  return parsed.data;
}

/** A non-2xx answer: use the envelope's code and message when there is one. */
function classify(response: HttpResponse, what: string, key: string | undefined): ProviderError {
  const body = envelopeSchema.safeParse(readErrorBody(response));
  if (body.success) return envelopeError(response, body.data.code, messageOf(body.data.results), what, key);
  return classifyByStatus("whapi", response, `${what} failed`);
}

/** The envelope's code read like an HTTP status; a message about the key means the key is wrong. */
function envelopeError(
  response: HttpResponse,
  code: number,
  message: string | undefined,
  what: string,
  key: string | undefined,
): ProviderError {
  const text = `whapi answered ${what} with code ${code}: ${shortenMessage(redactSecrets(message ?? "no message", [key]))}`;
  const options = { status: response.status, code: String(code) };
  if (code === 401 || code === 403 || /api\s*-?key|unauthori[sz]ed|invalid (token|key)/i.test(message ?? "")) {
    return new ProviderError("InvalidCredentials", text, options);
  }
  // Reuse the shared status mapping (404, 409, 429 with Retry-After, 5xx) for the envelope code.
  const mapped = classifyByStatus("whapi", { ...response, status: code }, "");
  return new ProviderError(mapped.kind, text, { ...options, ...(mapped.retryAfterMs === undefined ? {} : { retryAfterMs: mapped.retryAfterMs }) });
}

function messageOf(results: unknown): string | undefined {
  const parsed = messageSchema.safeParse(results);
  return parsed.success ? parsed.data.message : undefined;
}


function unsupported(what: string): Promise<never> {
  return Promise.reject(new ProviderError("Rejected", `whapi does not support ${what}`));
}
