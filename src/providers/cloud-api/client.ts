/**
 * Meta's WhatsApp Business Cloud API through the Graph API (shared/providers/cloud-api.md).
 * The "instance" is a business phone number that already exists in a WABA; its id is
 * the provider id. There is no session, QR or pairing: "connected" means registered.
 *
 * Mapping to ProviderClient:
 * - observe = `GET /{id}?fields=…` (status → phase, see states.ts); create only observes,
 *   because numbers are added in WhatsApp Manager, not through this API;
 * - connect = `POST /{id}/register` with the two-step PIN; logout = `POST /{id}/deregister`;
 * - remove = deregister too (a number cannot be deleted here), skipped when the number is
 *   not registered so it does not spend one of the ten register/deregister requests per 72 h;
 * - webhook = this number's own callback override, `webhook_configuration.override_callback_uri`
 *   on `POST /{id}` (cloud-api.md 2.1), with the instance's webhook key as `verify_token` (Meta
 *   signs deliveries with the app secret, not our key). Meta honours an override only for an
 *   app subscribed to the number's WABA, so the app is subscribed there first, without an
 *   override, when no app is. The WABA-wide override is never touched: it would redirect every
 *   number of the account. Webhook fields are an app setting (App Dashboard): no event list;
 * - disconnect, restart, QR and pairing codes do not exist: false, and the methods throw Rejected.
 *
 * Graph errors are classified by `error.code`, never by HTTP status (Meta's guidance, 2.4).
 */
import { z } from "zod";
import { ProviderError, redactSecrets, shortenMessage, type ProviderErrorKind } from "../errors.ts";
import { classifyByStatus, ProviderHttp, readErrorBody, retryAfterMs, type HttpRequest, type HttpResponse } from "../transport/http.ts";
import type { RateLimiter } from "../transport/rate-limiter.ts";
import type {
  HealthReport,
  InstanceOptions,
  InstanceRef,
  ObservedSession,
  ProviderCapabilities,
  ProviderClient,
  ProviderDeps,
  ProviderFactory,
  ProviderSettings,
  QrCode,
} from "../types.ts";
import type { CloudApiSessionSettings } from "./session.ts";
import { cloudApiStatusMeaning } from "./states.ts";

export const GRAPH_BASE_URL = "https://graph.facebook.com";
/** Graph version used unless the provider URL names one (e.g. `https://graph.facebook.com/v26.0`). */
export const GRAPH_API_VERSION = "v25.0";

export const cloudApiCapabilities: ProviderCapabilities = {
  qr: false,
  pairingCode: false,
  disconnect: false,
  restart: false,
  logout: true,
  webhook: true,
  // Which fields are sent is the app's subscription (App Dashboard, cloud-api.md 2.1), shared by every number: not ours to filter.
  webhookEvents: "none",
  webhookSigning: false,
  version: false,
};

const HOUR_MS = 60 * 60 * 1000;
/** 133016: no register or deregister for this number for 72 h. */
export const REGISTRATION_BLOCK_MS = 72 * HOUR_MS;
/** Waits when Graph gives no Retry-After. Guesses where Meta names no figure (see classifyGraphError). */
const DEFAULT_WAIT_MS = {
  /** 4 (app calls) and 130429 (throughput): short, rolling limits. */
  throttled: 60_000,
  /** 133015 "wait a few minutes before registering again". */
  reregister: 5 * 60_000,
  /** 133009 PIN entered too fast: generous, since each retry spends a register attempt. */
  pinTooFast: 15 * 60_000,
  /** 133008 too many PIN guesses: Meta gives the time only in error_data.details. */
  pinGuesses: 12 * HOUR_MS,
} as const;

const NUMBER_FIELDS = "status,display_phone_number,verified_name,quality_rating,code_verification_status,name_status,platform_type,webhook_configuration";
const numberSchema = z
  .object({
    // Graph adds the id to every node read. Meta's PhoneNumberInfo does not declare status: it may be missing.
    id: z.string(),
    status: z.string().optional(),
    display_phone_number: z.string().optional(),
    verified_name: z.string().optional(),
    quality_rating: z.string().optional(),
    code_verification_status: z.string().optional(),
    name_status: z.string().optional(),
    platform_type: z.string().optional(),
    // Where this number's webhooks go, per level (Meta's "Webhook overrides" page).
    webhook_configuration: z.object({ phone_number: z.string().optional() }).loose().optional(),
  })
  .loose();
const successSchema = z.object({ success: z.boolean() }).loose();
const meSchema = z.object({ id: z.string() }).loose();
const subscribedAppsSchema = z.object({ data: z.array(z.object({}).loose()) });
const PROFILE_KEYS = new Set(["about", "address", "description", "email", "websites", "vertical"]);
const profileSchema = z.looseObject({
  about: z.string().max(1024).nullish(),
  address: z.string().max(1024).nullish(),
  description: z.string().max(1024).nullish(),
  email: z.string().max(512).nullish(),
  websites: z.array(z.string().max(1024)).max(8).nullish(),
  vertical: z.string().max(64).nullish(),
});
const businessProfileResponseSchema = z.object({
  data: z.array(profileSchema.extend({ business_profile: profileSchema.nullish() })).max(4),
});

const graphErrorSchema = z.object({
  error: z
    .object({
      message: z.string().default(""),
      type: z.string().optional(),
      code: z.number().int(),
      error_subcode: z.number().int().optional(),
      error_data: z.object({ details: z.string().optional() }).loose().optional(),
      is_transient: z.boolean().optional(),
      fbtrace_id: z.string().optional(),
    })
    .loose(),
});

export type GraphError = z.output<typeof graphErrorSchema>["error"];

/** The provider URL with a Graph version: kept when it ends in `/vNN.N`, else GRAPH_API_VERSION is appended. */
export function graphBaseUrl(url: string): string {
  const base = (url.trim() === "" ? GRAPH_BASE_URL : url.trim()).replace(/\/+$/, "");
  return /\/v\d+\.\d+$/.test(base) ? base : `${base}/${GRAPH_API_VERSION}`;
}

export const createCloudApiClient: ProviderFactory = (settings, deps) => new CloudApiClient(settings, deps);

/**
 * spec.cloudApi as the client needs it: the number, its WABA, and the two-step PIN read from
 * pinSecretRef. Deleting needs only the number: a PIN Secret already gone must not block it.
 */
export const cloudApiInstanceOptions: InstanceOptions = async (spec, { readSecret, cleanup }) => {
  const number = spec.cloudApi;
  if (number === undefined) return cleanup ? {} : { invalid: "spec.cloudApi (phoneNumberId and pinSecretRef) is required for a cloud_api provider" };
  const pin = cleanup ? undefined : await readSecret(number.pinSecretRef.name, number.pinSecretRef.key);
  return {
    cloudApi: { phoneNumberId: number.phoneNumberId, ...(number.wabaId ? { wabaId: number.wabaId } : {}), ...(pin === undefined ? {} : { pin }) },
  };
};

class CloudApiClient implements ProviderClient {
  readonly type = "cloud_api" as const;
  readonly capabilities = cloudApiCapabilities;
  readonly #settings: ProviderSettings;
  readonly #http: ProviderHttp;

  constructor(settings: ProviderSettings, deps: ProviderDeps) {
    this.#settings = settings;
    const now = deps.now ?? Date.now;
    this.#http = ProviderHttp.forProvider(settings, deps, (response) => classifyGraphResponse(response, now(), deps.limiter), graphBaseUrl(settings.url));
  }

  /**
   * Graph has no unauthenticated ping and reports no version, so the check is the cheapest
   * authenticated read: `GET /me?fields=id` (works for user and system-user tokens).
   */
  async checkHealth(): Promise<HealthReport> {
    await this.#request("checking the access token", { method: "GET", path: "/me", query: { fields: "id" } }, meSchema);
    return {};
  }

  async observe(ref: InstanceRef): Promise<ObservedSession | null> {
    const number = await this.#readNumber(phoneNumberIdOf(ref));
    if (number === null) return null;
    const status = number.status?.trim() ?? "";
    const meaning = cloudApiStatusMeaning(status);
    const details = definedOnly({
      qualityRating: number.quality_rating,
      displayPhoneNumber: number.display_phone_number,
      verifiedName: number.verified_name,
      nameStatus: number.name_status,
    });
    const digits = number.display_phone_number?.replace(/\D/g, "");
    return {
      id: number.id,
      phase: meaning.phase,
      providerState: status === "" ? "UNKNOWN" : status,
      // API.md shows the phone number once connected; displayPhoneNumber is in details before that.
      ...(meaning.phase === "Connected" && digits ? { phoneNumber: digits } : {}),
      webhookInSync: overrideInSync(ref, number.webhook_configuration?.phone_number),
      ...(meaning.note === undefined ? {} : { message: meaning.note }),
      ...(meaning.unknown ? { unknownState: true } : {}),
      ...(Object.keys(details).length > 0 ? { details } : {}),
    };
  }

  /** Numbers are added in WhatsApp Manager; "creating" one only confirms it is there and ours to see. */
  async create(ref: InstanceRef): Promise<ObservedSession> {
    const observed = await this.observe(ref);
    if (observed === null) {
      throw new ProviderError("Rejected", `phone number ${phoneNumberIdOf(ref)} not found in WABA or not accessible`);
    }
    return observed;
  }

  async connect(ref: InstanceRef, id: string): Promise<void> {
    const pin = ref.cloudApi?.pin;
    if (pin === undefined || pin === "") {
      throw new ProviderError("Rejected", "registering needs the two-step PIN: a pinSecretRef is needed in spec.cloudApi");
    }
    // Checked here because a malformed PIN would still spend one of the ten attempts per 72 h.
    if (!/^\d{6}$/.test(pin)) throw new ProviderError("Rejected", "the two-step PIN from pinSecretRef must be exactly 6 digits");
    let answer: { success: boolean };
    try {
      answer = await this.#request(
        `registering phone number ${id}`,
        { method: "POST", path: `/${numericId(id, "phone number id")}/register`, json: { messaging_product: "whatsapp", pin } },
        successSchema,
        [pin],
      );
    } catch (error) {
      // 133000: an earlier deregistration did not finish; Meta's remedy is to deregister again (cloud-api.md 2.4).
      if (!(error instanceof ProviderError && error.code === "133000")) throw error;
      await this.#deregister(id);
      throw new ProviderError("WrongState", `phone number ${id}: an earlier deregistration was incomplete (133000); deregistered it again, registering on the next look`, {
        code: "133000",
      });
    }
    requireSuccess(answer, `registering phone number ${id}`);
  }

  async logout(_ref: InstanceRef, id: string): Promise<void> {
    await this.#deregister(id);
  }

  /** Deregisters a registered number; anything else (pending, deregistered, banned, gone) is already removed for us. */
  async remove(_ref: InstanceRef, id: string): Promise<void> {
    const number = await this.#readNumber(numericId(id, "phone number id"));
    if (number === null) return;
    const { phase } = cloudApiStatusMeaning(number.status);
    if (phase === "Pending" || phase === "LoggedOut" || phase === "Failed") return;
    try {
      await this.#deregister(id);
    } catch (error) {
      if (error instanceof ProviderError && error.kind === "NotFound") return;
      throw error;
    }
  }

  /**
   * Points this number's webhooks at ref.webhook.url (its own override), or, with no
   * webhook wanted, removes the number's override where it is the one the operator set
   * (ref.previousWebhookUrl). The WABA's subscription stays either way: other numbers and
   * other tools rely on it.
   */
  async configureWebhook(ref: InstanceRef, id: string): Promise<void> {
    const webhook = ref.webhook;
    const number = numericId(id, "phone number id");
    if (webhook === undefined) {
      const current = await this.#readNumber(number);
      if (current === null || overrideInSync(ref, current.webhook_configuration?.phone_number)) return;
      await this.#overrideCallback(number, { override_callback_uri: "" }, []);
      return;
    }
    const token = webhook.hmacKey;
    if (token === undefined || token === "") {
      throw new ProviderError("Rejected", "Cloud API needs a verify token for the callback: the instance's webhook key is missing");
    }
    await this.#subscribeAppToWaba(ref);
    await this.#overrideCallback(number, { override_callback_uri: webhook.url, verify_token: token }, [token]);
  }

  disconnect(): Promise<void> {
    return unsupported("disconnecting while keeping the registration");
  }

  restart(): Promise<void> {
    return unsupported("restarting (there is no session)");
  }

  fetchQr(): Promise<QrCode | null> {
    return unsupported("QR codes (numbers are registered with a PIN)");
  }

  requestPairingCode(): Promise<string> {
    return unsupported("pairing codes (numbers are registered with a PIN)");
  }

  /** The number's fields, or null when Graph does not know the id (or the token cannot see it). */
  async #readNumber(id: string): Promise<z.output<typeof numberSchema> | null> {
    try {
      return await this.#request(
        `reading phone number ${id}`,
        { method: "GET", path: `/${id}`, query: { fields: NUMBER_FIELDS } },
        numberSchema,
      );
    } catch (error) {
      if (error instanceof ProviderError && error.kind === "NotFound") return null;
      throw error;
    }
  }

  /** Deregister, where "not registered" already is the wanted outcome. */
  async #deregister(id: string): Promise<void> {
    try {
      const answer = await this.#request(
        `deregistering phone number ${id}`,
        { method: "POST", path: `/${numericId(id, "phone number id")}/deregister` },
        successSchema,
      );
      requireSuccess(answer, `deregistering phone number ${id}`);
    } catch (error) {
      if (error instanceof ProviderError && error.kind === "Conflict") return;
      // Plain 100 is how current Graph says "not currently linked" (the OpenAPI's deregister
      // examples; subcodes are deprecated since v16), and also how it refuses numbers of the
      // Business app. Only a number that no longer reads registered is done.
      if (error instanceof ProviderError && error.code === "100") {
        const number = await this.#readNumber(numericId(id, "phone number id"));
        if (number === null || cloudApiStatusMeaning(number.status).phase !== "Connected") return;
      }
      throw error;
    }
  }

  /**
   * Meta sends a number's override only for an app subscribed to its WABA (the override page's
   * requirement). Subscribing without a body is done only where no app is subscribed at all:
   * on a WABA with a subscription it would drop that subscription's WABA-wide override.
   */
  async #subscribeAppToWaba(ref: InstanceRef): Promise<void> {
    const waba = ref.cloudApi?.wabaId;
    if (waba === undefined || waba === "") {
      throw new ProviderError("Rejected", "a number's webhook needs the app subscribed to its WhatsApp Business Account: spec.cloudApi.wabaId is needed");
    }
    const path = `/${numericId(waba, "WABA id")}/subscribed_apps`;
    const { data } = await this.#request(`reading the apps subscribed to WABA ${waba}`, { method: "GET", path }, subscribedAppsSchema);
    if (data.length > 0) return;
    requireSuccess(await this.#request(`subscribing the app to WABA ${waba}`, { method: "POST", path }, successSchema), `subscribing to WABA ${waba}`);
  }

  async #overrideCallback(number: string, configuration: Readonly<Record<string, string>>, secrets: readonly string[]): Promise<void> {
    const what = configuration["override_callback_uri"] === "" ? `removing the callback override of phone number ${number}` : `pointing phone number ${number} at the webhook`;
    const answer = await this.#request(what, { method: "POST", path: `/${number}`, json: { webhook_configuration: configuration } }, successSchema, secrets);
    requireSuccess(answer, what);
  }

  /** The number's business profile (cloud-api-openapi-v23.0.yaml WhatsAppBusinessProfileResponse). */
  async readSessionConfig(_ref: InstanceRef, id: string): Promise<CloudApiSessionSettings> {
    const answer = await this.#request(
      `reading the business profile of ${id}`,
      { method: "GET", path: `/${numericId(id, "phone number id")}/whatsapp_business_profile`, query: { fields: "about,address,description,email,websites,vertical" } },
      businessProfileResponseSchema,
    );
    const entry = answer.data[0];
    // v23 nests the profile in business_profile; earlier versions answered its fields directly.
    const profile = entry?.business_profile ?? entry ?? {};
    const fields = Object.fromEntries(Object.entries(profile).filter(([key, value]) => PROFILE_KEYS.has(key) && value !== null && value !== undefined));
    return { businessProfile: fields };
  }

  /** A POST names only the fields spec.session sets; the others stay as they are. */
  async applySessionConfig(ref: InstanceRef, id: string): Promise<void> {
    const profile = (ref.sessionConfig as CloudApiSessionSettings | undefined)?.businessProfile;
    if (!profile) return;
    const what = `updating the business profile of ${id}`;
    const answer = await this.#request(
      what,
      { method: "POST", path: `/${numericId(id, "phone number id")}/whatsapp_business_profile`, json: { messaging_product: "whatsapp", ...profile } },
      successSchema,
    );
    requireSuccess(answer, what);
  }

  /**
   * One authenticated Graph call. Errors get `what` as context, with the token and any
   * `secrets` (PIN, verify token) scrubbed, in case Graph echoes them.
   */
  async #request<S extends z.ZodType>(
    what: string,
    request: HttpRequest,
    schema: S,
    secrets: readonly string[] = [],
  ): Promise<z.output<S>> {
    const token = this.#settings.apiKey;
    if (token === undefined || token === "") {
      throw new ProviderError("Rejected", "Cloud API needs an access token: set spec.credentialsSecretRef on the provider");
    }
    try {
      return await this.#http.json({ ...request, headers: { ...request.headers, Authorization: `Bearer ${token}` } }, schema);
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error;
      const message = redactSecrets(`${what}: ${error.message}`, [token, ...secrets]);
      throw new ProviderError(error.kind, message, {
        ...(error.status === undefined ? {} : { status: error.status }),
        ...(error.code === undefined ? {} : { code: error.code }),
        ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
        ...(error.retryAt === undefined ? {} : { retryAt: error.retryAt }),
        cause: error,
      });
    }
  }
}

/** A non-2xx answer: Graph's envelope when there is one, else the plain HTTP status. */
function classifyGraphResponse(response: HttpResponse, now: number, limiter: RateLimiter): ProviderError {
  const parsed = graphErrorSchema.safeParse(readErrorBody(response));
  if (!parsed.success) return classifyByStatus("cloud_api", response, "no Graph error in the answer");
  const error = classifyGraphError(parsed.data.error, { status: response.status, now, retryAfterMs: retryAfterMs(response, now) });
  // Code 4 limits the whole app: every call through this provider waits, not only this one.
  if (parsed.data.error.code === 4 && error.retryAfterMs !== undefined) limiter.pauseFor(error.retryAfterMs);
  return error;
}

export interface GraphErrorContext {
  readonly status?: number;
  /** Epoch ms, for retryAt and the hourly window. */
  readonly now: number;
  /** From Retry-After / X-RateLimit-Reset, when present. */
  readonly retryAfterMs?: number | undefined;
}

/**
 * Graph error → our error kind, by `error.code` (and subcode). Where Meta names no wait,
 * the waits in DEFAULT_WAIT_MS are our choice; 133016 blocks register and deregister for
 * 72 h from now, which retryAt carries so the controller does not try earlier.
 */
export function classifyGraphError(error: GraphError, context: GraphErrorContext): ProviderError {
  const { code, error_subcode: subcode } = error;
  const detail = error.error_data?.details;
  const text = `Graph error ${code}${subcode === undefined ? "" : `/${subcode}`}: ${shortenMessage(error.message || "no message")}${
    detail ? ` (${shortenMessage(detail)})` : ""
  }`;
  const base = { ...(context.status === undefined ? {} : { status: context.status }), code: subcode === undefined ? String(code) : `${code}/${subcode}` };
  const make = (kind: ProviderErrorKind, message = text): ProviderError => new ProviderError(kind, message, base);
  const wait = (fallbackMs: number, message = text): ProviderError =>
    new ProviderError("RateLimited", message, { ...base, retryAfterMs: context.retryAfterMs ?? fallbackMs });
  const block = (forMs: number, what: string): ProviderError => {
    const retryAt = new Date(context.now + forMs);
    return new ProviderError("Blocked", `${text}; ${what} until ${retryAt.toISOString()}`, { ...base, retryAt });
  };

  switch (code) {
    case 0:
    case 190:
      return make("InvalidCredentials", `${text}; the access token is invalid or expired`);
    case 104:
      return make("InvalidCredentials", `${text}; no access token reached Graph`);
    case 803:
      // The OpenAPI's 404 examples: phone number not found or deleted, WABA not found.
      return make("NotFound", `${text}; the number or its WhatsApp Business Account is gone`);
    case 133000:
      return make("WrongState", `${text}; an earlier deregistration did not finish`);
    case 4:
    case 130429:
      return wait(DEFAULT_WAIT_MS.throttled);
    case 80007:
      // The WABA's budget is per hour: wait for the next window.
      return wait(HOUR_MS - (context.now % HOUR_MS));
    case 133015:
      return wait(DEFAULT_WAIT_MS.reregister);
    case 133009:
      return wait(DEFAULT_WAIT_MS.pinTooFast);
    case 133008:
      return block(DEFAULT_WAIT_MS.pinGuesses, "too many PIN guesses; no register attempt");
    case 133016:
      return block(REGISTRATION_BLOCK_MS, "the number is blocked from register and deregister");
    case 133005:
      return make("Rejected", `${text}; the PIN in pinSecretRef is not the number's two-step PIN`);
    case 133010:
      return make("Conflict", `${text}; the number is not registered`);
    case 1:
    case 2:
    case 133004:
      return make("Unavailable");
    case 100:
      if (subcode === 33) return make("NotFound", `${text}; the id does not exist or the token cannot see it`);
      if (subcode === 2207051) return make("Conflict", `${text}; the number is not registered`);
      return make("Rejected");
    default:
      // Graph flags passing trouble explicitly; honour it rather than stalling.
      return make(error.is_transient === true ? "Unavailable" : "Rejected");
  }
}

/**
 * Whether the number's own override is as wanted: the webhook's URL when one is wanted;
 * otherwise nothing the operator set may be left (an override it did not set is not its business).
 */
function overrideInSync(ref: InstanceRef, override: string | undefined): boolean {
  const current = override === "" ? undefined : override;
  if (ref.webhook !== undefined) return current === ref.webhook.url;
  return current === undefined || current !== ref.previousWebhookUrl;
}

function phoneNumberIdOf(ref: InstanceRef): string {
  const id = ref.cloudApi?.phoneNumberId;
  if (id === undefined || id === "") throw new ProviderError("Rejected", "spec.cloudApi.phoneNumberId is needed for a cloud_api instance");
  return numericId(id, "phone number id");
}

/** Graph ids are digits; checking keeps anything else out of the request path. */
function numericId(id: string, what: string): string {
  if (!/^\d+$/.test(id)) throw new ProviderError("Rejected", `the ${what} must be digits, got ${JSON.stringify(id.slice(0, 40))}`);
  return id;
}

function requireSuccess(answer: { success: boolean }, what: string): void {
  if (!answer.success) throw new ProviderError("Rejected", `${what}: Graph answered success: false`);
}

function definedOnly(values: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

function unsupported(what: string): Promise<never> {
  return Promise.reject(new ProviderError("Rejected", `Cloud API does not support ${what}`));
}
