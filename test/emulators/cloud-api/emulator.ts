/**
 * A loopback emulator of the parts of Meta's Graph API that manage a WhatsApp business
 * phone number (shared/providers/cloud-api.md, checklist 2.5): `/vNN.0/` paths, Bearer
 * auth, numbers that are PENDING until registered, the two-step PIN, the 10-per-72-h
 * register/deregister budget, WABA `subscribed_apps`, the per-number callback override
 * (`webhook_configuration`), and Graph's error envelope.
 *
 * Guesses, labelled as such:
 * - After deregister a number's status is DISCONNECTED (Meta does not document it).
 * - Deregister attempts share the register budget (133016 names both).
 * - Every register/deregister request counts against the budget, failed ones included;
 *   the refused 11th does not, so the block lifts when the oldest attempt is 72 h old.
 * - Registering a number that has no PIN yet sets it (as Meta does for a first register).
 * - A missing Authorization header answers 401 code 104 (the OpenAPI's "missing_token"
 *   example, path /{Phone-Number-ID}); a wrong token 401 code 190.
 * - Errors use HTTP 400 unless said otherwise; the status for throttling codes is configurable.
 * - A per-number override on a WABA the app is not subscribed to is refused with code 100
 *   (the OpenAPI only says "Webhook subscription must exist before configuring callback
 *   URI overrides"; the code and text are ours).
 * - After an interrupted deregistration (interruptDeregistration) the number reads
 *   DISCONNECTED; register answers 133000 until a deregister completes it.
 *
 * Business profile (cloud-api-openapi-v23.0.yaml, path /{Version}/{Phone-Number-ID}/whatsapp_business_profile):
 * - GET answers WhatsAppBusinessProfileResponse `{data: [{business_profile: {messaging_product, about, ...}}]}`,
 *   with the fields `fields` names (all when absent); fields never set are left out (a guess: Meta's
 *   example shows every field filled).
 * - POST takes WhatsAppBusinessProfileUpdateRequest: messaging_product "whatsapp" required; about 1-139,
 *   address and description up to 256, email up to 128, websites at most 2 of up to 256 each, vertical from
 *   WhatsAppBusinessVertical. Only the fields named change (the "minimal_profile_update" example sends one).
 *   Answers `{success: true}`; a violation is code 100 (our guess at the text).
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { realClock, type Clock } from "../shared/clock.ts";
import { close, listen, readBody, Router, sendReply, type EmulatorRequest, type Reply } from "../shared/http.ts";

const PROFILE_FIELDS = ["about", "address", "description", "email", "websites", "vertical"] as const;
/** WhatsAppBusinessVertical (cloud-api-openapi-v23.0.yaml). */
const VERTICALS = new Set(["OTHER", "AUTO", "BEAUTY", "APPAREL", "EDU", "ENTERTAIN", "EVENT_PLAN", "FINANCE", "GROCERY", "GOVT", "HOTEL", "HEALTH", "NONPROFIT", "PROF_SERVICES", "RETAIL", "TRAVEL", "RESTAURANT", "ALCOHOL", "ONLINE_GAMBLING", "PHYSICAL_GAMBLING", "OTC_DRUGS"]);
/** The WhatsAppBusinessProfileUpdateRequest bounds of one field, or undefined when the value keeps them. */
function profileProblem(field: (typeof PROFILE_FIELDS)[number], value: unknown): string | undefined {
  if (field === "websites") {
    const ok = Array.isArray(value) && value.length <= 2 && value.every((site) => typeof site === "string" && site.length <= 256 && /^https?:\/\//.test(site));
    return ok ? undefined : "must be at most 2 URLs of up to 256 characters";
  }
  if (typeof value !== "string") return "must be a string";
  if (field === "vertical") return VERTICALS.has(value) ? undefined : "must be one of the business verticals";
  const max = { about: 139, address: 256, description: 256, email: 128 }[field];
  if (field === "about" && value.length === 0) return "must be at least 1 character";
  return value.length <= max ? undefined : `must be at most ${max} characters`;
}

/** The moving window and size of the register/deregister budget per number. */
export const REGISTRATION_WINDOW_MS = 72 * 60 * 60 * 1000;
export const REGISTRATION_ATTEMPTS = 10;

/** Statuses in which a number counts as registered (deregister is allowed). */
const REGISTERED = new Set(["CONNECTED", "FLAGGED", "RESTRICTED", "RATE_LIMITED"]);
const DEFAULT_FIELDS = ["id", "display_phone_number", "verified_name", "quality_rating"];

export interface NumberSeed {
  readonly id: string;
  readonly wabaId: string;
  /** Formatted, e.g. "+1 555-555-5555". */
  readonly displayPhoneNumber: string;
  readonly verifiedName?: string;
  /** Default PENDING (not registered). */
  readonly status?: string;
  readonly qualityRating?: string;
  readonly nameStatus?: string;
  readonly codeVerificationStatus?: string;
  /** The two-step PIN, when the number already has one. */
  readonly pin?: string;
  /**
   * false: Graph leaves `status` out even when asked for it. Meta's OpenAPI schema
   * PhoneNumberInfo (GET /{Phone-Number-ID}) does not declare the field. Default true.
   */
  readonly reportsStatus?: boolean;
  /**
   * The number also runs in the WhatsApp Business app (coexistence): deregister is refused
   * with code 100 (the OpenAPI's smb_account_error example; cloud-api.md 2.1). Default false.
   */
  readonly businessApp?: boolean;
}

export interface PhoneNumber {
  readonly id: string;
  readonly wabaId: string;
  readonly displayPhoneNumber: string;
  readonly verifiedName: string;
  status: string;
  qualityRating: string;
  nameStatus: string;
  codeVerificationStatus: string;
  pin: string | undefined;
  /** Times of register/deregister requests, oldest first. */
  attempts: number[];
  readonly reportsStatus: boolean;
  readonly businessApp: boolean;
  /** The number-level callback override (`webhook_configuration.override_callback_uri`), when set. */
  callback: Subscription | undefined;
  /** Deleted from the WABA: Graph answers code 803 for it. */
  deleted: boolean;
  /** A deregistration that did not finish: register answers 133000 until deregister runs again. */
  deregistrationIncomplete: boolean;
  /** The business profile's fields as set so far (whatsapp_business_profile). */
  profile: Record<string, string | string[]>;
}

export interface Subscription {
  readonly overrideCallbackUri?: string;
  /** Kept to answer the hub handshake; Graph never returns it. */
  readonly verifyToken?: string;
}

export interface ThrottleOptions {
  /** 4 (app), 80007 (WABA) or 130429 (throughput). */
  readonly code: 4 | 80007 | 130429;
  /** HTTP status; Graph mostly uses 400, copies of Meta's table say 429. */
  readonly status?: number;
  readonly retryAfterSeconds?: number;
  /** How many of the next requests are throttled. Default 1. */
  readonly times?: number;
}

export interface CloudApiEmulatorOptions {
  /** The only token accepted. */
  readonly token: string;
  readonly numbers?: readonly NumberSeed[];
  readonly clock?: Clock;
  /** Performs Meta's `hub.*` GET handshake against override_callback_uri on subscribe. Default false. */
  readonly verifyCallbacks?: boolean;
  /** The app's own callback URL (App Dashboard), shown as `webhook_configuration.application`. */
  readonly appCallbackUrl?: string;
  /**
   * How deregister answers for a number that is not registered: "subcode" = code 100 with
   * error_subcode 2207051 (the OpenAPI's phone_not_registered example), "plain" = code 100
   * without a subcode, "Phone number is not currently linked in Facebook Hosted System"
   * (its not_linked example; subcodes are deprecated for Cloud API since v16). Default "subcode".
   */
  readonly notRegisteredAnswer?: "subcode" | "plain";
}

export interface CallRecord {
  readonly method: string;
  /** Pathname only: a token in the query string is never recorded. */
  readonly path: string;
  readonly status: number;
}

export type Corruption = "not-json" | "wrong-shape";

const APP = { id: "1234567890123456", name: "wa-operator emulator app" };
const THROTTLE_MESSAGES: Record<ThrottleOptions["code"], string> = {
  4: "(#4) Application request limit reached",
  80007: "(#80007) There have been too many calls to this WhatsApp Business account.",
  130429: "(#130429) Rate limit hit",
};

export class CloudApiEmulator {
  readonly calls: CallRecord[] = [];
  readonly #token: string;
  readonly #clock: Clock;
  readonly #verifyCallbacks: boolean;
  readonly #appCallbackUrl: string | undefined;
  readonly #notRegisteredAnswer: "subcode" | "plain";
  readonly #numbers = new Map<string, PhoneNumber>();
  readonly #subscriptions = new Map<string, Subscription | undefined>();
  readonly #router = new Router();
  readonly #server: Server;
  #available = true;
  #corruption: Corruption | undefined;
  #throttle: (ThrottleOptions & { remaining: number }) | undefined;

  constructor(options: CloudApiEmulatorOptions) {
    this.#token = options.token;
    this.#clock = options.clock ?? realClock;
    this.#verifyCallbacks = options.verifyCallbacks ?? false;
    this.#appCallbackUrl = options.appCallbackUrl;
    this.#notRegisteredAnswer = options.notRegisteredAnswer ?? "subcode";
    for (const seed of options.numbers ?? []) this.addNumber(seed);
    this.#router
      .add("GET", "/me", (req) => ({ status: 200, body: pick({ id: APP.id, name: APP.name }, fieldsOf(req, ["id", "name"])) }))
      .add("GET", "/{id}", (req) => this.#readNumber(req))
      .add("POST", "/{id}", (req) => this.#updateNumber(req))
      .add("POST", "/{id}/register", (req) => this.#register(req))
      .add("GET", "/{id}/whatsapp_business_profile", (req) => this.#readProfile(req))
      .add("POST", "/{id}/whatsapp_business_profile", (req) => this.#updateProfile(req))
      .add("POST", "/{id}/deregister", (req) => this.#deregister(req))
      .add("GET", "/{waba}/subscribed_apps", (req) => this.#listSubscriptions(req))
      .add("POST", "/{waba}/subscribed_apps", (req) => this.#subscribe(req))
      .add("DELETE", "/{waba}/subscribed_apps", (req) => this.#unsubscribe(req));
    this.#server = createServer((req, res) => {
      void (async () => {
        const url = new URL(req.url ?? "/", "http://emulator");
        const request: EmulatorRequest = {
          method: req.method ?? "GET",
          path: url.pathname,
          query: url.searchParams,
          headers: req.headers,
          params: {},
          rawBody: await readBody(req),
        };
        const reply = await this.#answer(request);
        this.calls.push({ method: request.method, path: request.path, status: reply.status });
        sendReply(res, reply);
      })().catch((error: unknown) => {
        res.writeHead(500).end(String(error));
      });
    });
  }

  start(): Promise<string> {
    return listen(this.#server);
  }

  stop(): Promise<void> {
    return close(this.#server);
  }

  /** Adds a business phone number (and its WABA, with no app subscribed). */
  addNumber(seed: NumberSeed): void {
    this.#numbers.set(seed.id, {
      id: seed.id,
      wabaId: seed.wabaId,
      displayPhoneNumber: seed.displayPhoneNumber,
      verifiedName: seed.verifiedName ?? "Emulated Business",
      status: seed.status ?? "PENDING",
      qualityRating: seed.qualityRating ?? "NA",
      nameStatus: seed.nameStatus ?? "APPROVED",
      codeVerificationStatus: seed.codeVerificationStatus ?? "VERIFIED",
      pin: seed.pin,
      attempts: [],
      reportsStatus: seed.reportsStatus ?? true,
      businessApp: seed.businessApp ?? false,
      callback: undefined,
      deleted: false,
      deregistrationIncomplete: false,
      profile: {},
    });
    if (!this.#subscriptions.has(seed.wabaId)) this.#subscriptions.set(seed.wabaId, undefined);
  }

  /** The live record of a number, for assertions and for changes Meta makes on its own (quality, bans). */
  number(id: string): PhoneNumber {
    const number = this.#numbers.get(id);
    if (!number) throw new Error(`the emulator has no number ${id}`);
    return number;
  }

  /** The app's subscription to a WABA, or undefined when not subscribed. */
  subscription(wabaId: string): Subscription | undefined {
    return this.#subscriptions.get(wabaId);
  }

  /** The number was deleted from its WABA (WhatsApp Manager): every request about it answers code 803 from now on. */
  deleteNumber(id: string): void {
    this.number(id).deleted = true;
  }

  /** A deregistration that Meta did not finish: the number reads DISCONNECTED and register answers 133000. */
  interruptDeregistration(id: string): void {
    const number = this.number(id);
    number.status = "DISCONNECTED";
    number.deregistrationIncomplete = true;
  }

  /** Register/deregister requests of a number inside the moving 72 h window. */
  attemptsInWindow(id: string): number {
    return this.#recentAttempts(this.number(id)).length;
  }

  setAvailable(available: boolean): void {
    this.#available = available;
  }

  /** Throttles the next request(s) that pass authentication with a Graph rate-limit error. */
  throttle(options: ThrottleOptions): void {
    this.#throttle = { ...options, remaining: options.times ?? 1 };
  }

  /** Breaks the next answer (200 with a non-JSON body or an unexpected shape); the call is not carried out. */
  corruptNext(kind: Corruption): void {
    this.#corruption = kind;
  }

  async #answer(req: EmulatorRequest): Promise<Reply> {
    if (!this.#available) {
      return graphError(503, { message: "(#2) Service temporarily unavailable", code: 2, is_transient: true });
    }
    const corruption = this.#corruption;
    if (corruption !== undefined) {
      this.#corruption = undefined;
      return corruption === "not-json"
        ? { status: 200, raw: { contentType: "text/html", data: Buffer.from("<html>upstream error</html>") } }
        : { status: 200, body: { data: { unexpected: true } } };
    }
    const versioned = /^\/v\d+\.0(\/.*)$/.exec(req.path);
    if (!versioned?.[1]) {
      return graphError(400, { message: "Unknown path components: the emulator needs a /vNN.0/ prefix", code: 2500 });
    }
    const token = this.#tokenOf(req);
    if (token === undefined) {
      // The OpenAPI's missing_token example (401 answers of /{Phone-Number-ID}).
      return graphError(401, { message: "An access token is required to request this resource", code: 104 });
    }
    if (token !== this.#token) {
      return graphError(401, { message: "Invalid OAuth access token - Cannot parse access token", code: 190 });
    }
    const throttled = this.#throttled();
    if (throttled) return throttled;
    const path = versioned[1];
    const match = this.#router.match(req.method, path);
    if (!match.route) {
      return graphError(400, { message: `Unsupported ${req.method.toLowerCase()} request.`, code: 100, type: "GraphMethodException" });
    }
    return match.route.handler({ ...req, path, params: match.params });
  }

  #tokenOf(req: EmulatorRequest): string | undefined {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    return bearer ?? req.query.get("access_token") ?? undefined;
  }

  #throttled(): Reply | undefined {
    const throttle = this.#throttle;
    if (!throttle) return undefined;
    throttle.remaining -= 1;
    if (throttle.remaining <= 0) this.#throttle = undefined;
    const headers = throttle.retryAfterSeconds === undefined ? undefined : { "Retry-After": String(throttle.retryAfterSeconds) };
    return graphError(
      throttle.status ?? 400,
      { message: THROTTLE_MESSAGES[throttle.code], code: throttle.code, is_transient: true },
      headers,
    );
  }

  /** The number a request names, or Graph's answer when there is none to act on. */
  #numberOf(req: EmulatorRequest): PhoneNumber | Reply {
    const number = this.#numbers.get(req.params["id"] ?? "");
    if (!number) return unknownObject(req);
    // The OpenAPI's 404 examples for /{Phone-Number-ID} and its edges: "This phone number
    // has been deleted and is no longer accessible", code 803.
    if (number.deleted) {
      return graphError(404, { message: "This phone number has been deleted and is no longer accessible", code: 803, type: "GraphMethodException" });
    }
    return number;
  }

  #readNumber(req: EmulatorRequest): Reply {
    const number = this.#numberOf(req);
    if (!isNumber(number)) return number;
    const values: Record<string, unknown> = {
      id: number.id,
      display_phone_number: number.displayPhoneNumber,
      verified_name: number.verifiedName,
      quality_rating: number.qualityRating,
      code_verification_status: number.codeVerificationStatus,
      name_status: number.nameStatus,
      platform_type: REGISTERED.has(number.status) ? "CLOUD_API" : "NOT_APPLICABLE",
      throughput: { level: "STANDARD" },
      webhook_configuration: this.#webhookConfiguration(number),
    };
    const fields = fieldsOf(req, DEFAULT_FIELDS);
    if (number.reportsStatus) values["status"] = number.status;
    else if (fields.includes("status")) fields.splice(fields.indexOf("status"), 1);
    const unknown = fields.find((field) => !(field in values));
    if (unknown !== undefined) {
      return graphError(400, {
        message: `(#100) Tried accessing nonexisting field (${unknown}) on node type (WhatsAppBusinessPhoneNumber)`,
        code: 100,
      });
    }
    return { status: 200, body: pick(values, fields) };
  }

  /**
   * Where this number's webhooks go, as `GET /{id}?fields=webhook_configuration` shows it
   * (Meta's "Webhook overrides" page): the number's override, the WABA's, and the app's
   * callback, each only when set. Lookup runs in that order.
   */
  #webhookConfiguration(number: PhoneNumber): Record<string, string> {
    const waba = this.#subscriptions.get(number.wabaId)?.overrideCallbackUri;
    return {
      ...(number.callback?.overrideCallbackUri ? { phone_number: number.callback.overrideCallbackUri } : {}),
      ...(waba ? { whatsapp_business_account: waba } : {}),
      ...(this.#appCallbackUrl ? { application: this.#appCallbackUrl } : {}),
    };
  }

  #readProfile(req: EmulatorRequest): Reply {
    const number = this.#numberOf(req);
    if (!isNumber(number)) return number;
    const wanted = fieldsOf(req, ["messaging_product", ...PROFILE_FIELDS, "profile_picture_url"]);
    const profile: Record<string, unknown> = { messaging_product: "whatsapp", ...number.profile };
    return { status: 200, body: { data: [{ business_profile: pick(profile, wanted) }] } };
  }

  #updateProfile(req: EmulatorRequest): Reply {
    const number = this.#numberOf(req);
    if (!isNumber(number)) return number;
    const params = paramsOf(req);
    if (params === undefined) return invalidBody();
    if (params["messaging_product"] !== "whatsapp") return graphError(400, { message: "(#100) The parameter messaging_product is required.", code: 100 });
    const changes: Record<string, string | string[]> = {};
    for (const field of PROFILE_FIELDS) {
      const value = params[field];
      if (value === undefined) continue;
      const problem = profileProblem(field, value);
      if (problem) return graphError(400, { message: `(#100) Param ${field} ${problem}`, code: 100 });
      changes[field] = value as string | string[];
    }
    number.profile = { ...number.profile, ...changes };
    return { status: 200, body: { success: true } };
  }

  /**
   * `POST /{Phone-Number-ID}` (OpenAPI operation updatePhoneNumberStatus): `{pin}` sets or
   * changes the two-step PIN; `{webhook_configuration: {override_callback_uri, verify_token}}`
   * points this number's webhooks elsewhere, and an empty override_callback_uri removes that
   * (schema WebhookConfiguration: "can be empty string"). The app must be subscribed to the
   * WABA first (the operation's "Webhook subscription must exist" requirement).
   */
  async #updateNumber(req: EmulatorRequest): Promise<Reply> {
    const number = this.#numberOf(req);
    if (!isNumber(number)) return number;
    const params = paramsOf(req);
    if (params === undefined) return invalidBody();
    const pin = params["pin"];
    const webhook = params["webhook_configuration"];
    if (pin === undefined && webhook === undefined) return invalidBody();
    if (pin !== undefined && (typeof pin !== "string" || !/^\d{6}$/.test(pin))) return invalidPin();
    if (webhook !== undefined) {
      const refused = await this.#overrideCallback(number, webhook);
      if (refused) return refused;
    }
    if (typeof pin === "string") number.pin = pin;
    return success();
  }

  async #overrideCallback(number: PhoneNumber, webhook: unknown): Promise<Reply | undefined> {
    const config = typeof webhook === "string" ? parseJsonObject(webhook) : webhook;
    if (typeof config !== "object" || config === null) return invalidBody();
    const uri = (config as Record<string, unknown>)["override_callback_uri"];
    const token = (config as Record<string, unknown>)["verify_token"];
    if (typeof uri !== "string") {
      return graphError(400, { message: "(#100) The parameter webhook_configuration[override_callback_uri] is required", code: 100 });
    }
    if (uri === "") {
      number.callback = undefined;
      return undefined;
    }
    if (this.#subscriptions.get(number.wabaId) === undefined) {
      return graphError(400, { message: "(#100) The app is not subscribed to webhooks of the number's WhatsApp Business Account", code: 100 });
    }
    if (typeof token !== "string" || token === "") {
      return graphError(400, { message: "(#100) verify_token is required with override_callback_uri", code: 100 });
    }
    if (this.#verifyCallbacks) {
      const problem = await handshake(uri, token);
      if (problem !== undefined) {
        return graphError(400, { message: `(#2200) Callback verification failed with the following errors: ${problem}`, code: 2200 });
      }
    }
    number.callback = { overrideCallbackUri: uri, verifyToken: token };
    return undefined;
  }

  #register(req: EmulatorRequest): Reply {
    const number = this.#numberOf(req);
    if (!isNumber(number)) return number;
    const blocked = this.#spendAttempt(number);
    if (blocked) return blocked;
    if (number.deregistrationIncomplete) {
      // cloud-api.md 2.1 (register's notable errors) and 2.4: 133000, HTTP 500, "deregister again".
      return graphError(500, {
        message: "(#133000) Incomplete deregistration",
        code: 133000,
        error_data: { messaging_product: "whatsapp", details: "A previous deregistration was not completed. Deregister the number again before registering." },
      });
    }
    const params = paramsOf(req);
    if (params === undefined) return invalidBody();
    if (params["messaging_product"] !== "whatsapp") {
      return graphError(400, { message: "(#100) The parameter messaging_product is required.", code: 100 });
    }
    const pin = params["pin"];
    if (typeof pin !== "string" || !/^\d{6}$/.test(pin)) return invalidPin();
    if (number.pin !== undefined && number.pin !== pin) {
      return graphError(400, {
        message: "(#133005) Two step verification PIN Mismatch",
        code: 133005,
        error_data: { messaging_product: "whatsapp", details: "The PIN you entered does not match the two-step verification PIN." },
      });
    }
    number.pin = pin;
    if (!REGISTERED.has(number.status)) number.status = "CONNECTED";
    return success();
  }

  #deregister(req: EmulatorRequest): Reply {
    const number = this.#numberOf(req);
    if (!isNumber(number)) return number;
    const blocked = this.#spendAttempt(number);
    if (blocked) return blocked;
    if (number.businessApp) {
      return graphError(400, { message: "Deregister endpoint is not available for API solution for SMB businesses.", code: 100 });
    }
    if (number.deregistrationIncomplete) {
      number.deregistrationIncomplete = false;
      return success();
    }
    if (!REGISTERED.has(number.status)) {
      // The OpenAPI's two 400 examples of /{Phone-Number-ID}/deregister for this case.
      return this.#notRegisteredAnswer === "plain"
        ? graphError(400, { message: "Phone number is not currently linked in Facebook Hosted System", code: 100 })
        : graphError(400, { message: "Phone number not registered on the WhatsApp Business Platform.", code: 100, error_subcode: 2207051 });
    }
    number.status = "DISCONNECTED";
    return success();
  }

  /** Records one register/deregister request, or answers 133016 when the window is full. */
  #spendAttempt(number: PhoneNumber): Reply | undefined {
    number.attempts = this.#recentAttempts(number);
    if (number.attempts.length >= REGISTRATION_ATTEMPTS) {
      return graphError(400, {
        message: "(#133016) Account register deregister rate limit exceeded",
        code: 133016,
        error_data: {
          messaging_product: "whatsapp",
          details: "Registration and deregistration requests for this number exceeded the limit; try again in 72 hours.",
        },
      });
    }
    number.attempts.push(this.#clock.now());
    return undefined;
  }

  #recentAttempts(number: PhoneNumber): number[] {
    const since = this.#clock.now() - REGISTRATION_WINDOW_MS;
    return number.attempts.filter((at) => at > since);
  }

  #listSubscriptions(req: EmulatorRequest): Reply {
    const waba = req.params["waba"] ?? "";
    if (!this.#subscriptions.has(waba)) return unknownObject(req);
    const subscription = this.#subscriptions.get(waba);
    const app = { whatsapp_business_api_data: { ...APP, link: `https://www.facebook.com/games/?app_id=${APP.id}` } };
    const data =
      subscription === undefined
        ? []
        : [subscription.overrideCallbackUri === undefined ? app : { ...app, override_callback_uri: subscription.overrideCallbackUri }];
    return { status: 200, body: { data } };
  }

  async #subscribe(req: EmulatorRequest): Promise<Reply> {
    const waba = req.params["waba"] ?? "";
    if (!this.#subscriptions.has(waba)) return unknownObject(req);
    const params = paramsOf(req);
    if (params === undefined) return invalidBody();
    const uri = params["override_callback_uri"];
    const token = params["verify_token"];
    if (uri === undefined) {
      this.#subscriptions.set(waba, {});
      return success();
    }
    if (typeof uri !== "string" || typeof token !== "string" || token === "") {
      return graphError(400, { message: "(#100) verify_token is required with override_callback_uri", code: 100 });
    }
    if (this.#verifyCallbacks) {
      const problem = await handshake(uri, token);
      if (problem !== undefined) {
        return graphError(400, { message: `(#2200) Callback verification failed with the following errors: ${problem}`, code: 2200 });
      }
    }
    this.#subscriptions.set(waba, { overrideCallbackUri: uri, verifyToken: token });
    return success();
  }

  #unsubscribe(req: EmulatorRequest): Reply {
    const waba = req.params["waba"] ?? "";
    if (!this.#subscriptions.has(waba)) return unknownObject(req);
    this.#subscriptions.set(waba, undefined);
    return success();
  }
}

interface GraphErrorBody {
  readonly message: string;
  readonly code: number;
  readonly type?: string;
  readonly error_subcode?: number;
  readonly error_data?: { readonly messaging_product: string; readonly details: string };
  readonly is_transient?: boolean;
}

/** Graph's error envelope (cloud-api.md 2.4). */
function graphError(status: number, error: GraphErrorBody, headers?: Record<string, string>): Reply {
  const body = { error: { type: "OAuthException", ...error, fbtrace_id: randomBytes(8).toString("base64url") } };
  return headers === undefined ? { status, body } : { status, body, headers };
}

function unknownObject(req: EmulatorRequest): Reply {
  const id = req.params["id"] ?? req.params["waba"] ?? "";
  return graphError(400, {
    message:
      `Unsupported ${req.method.toLowerCase()} request. Object with ID '${id}' does not exist, cannot be loaded due to ` +
      "missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
    code: 100,
    error_subcode: 33,
    type: "GraphMethodException",
  });
}

function isNumber(value: PhoneNumber | Reply): value is PhoneNumber {
  return "wabaId" in value;
}

function parseJsonObject(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function invalidPin(): Reply {
  return graphError(400, { message: "(#100) Invalid PIN format. PIN must be exactly 6 digits", code: 100 });
}

function invalidBody(): Reply {
  return graphError(400, { message: "(#100) Invalid request body", code: 100 });
}

function success(): Reply {
  return { status: 200, body: { success: true } };
}

/** Graph takes parameters as JSON, as a form, or in the query string. Undefined for a body it cannot read. */
function paramsOf(req: EmulatorRequest): Record<string, unknown> | undefined {
  const params: Record<string, unknown> = Object.fromEntries(req.query);
  const type = req.headers["content-type"] ?? "";
  const text = req.rawBody.toString("utf8");
  if (text.trim() === "") return params;
  if (type.startsWith("application/json")) {
    try {
      const json: unknown = JSON.parse(text);
      return typeof json === "object" && json !== null && !Array.isArray(json) ? { ...params, ...json } : undefined;
    } catch {
      return undefined;
    }
  }
  if (type.startsWith("application/x-www-form-urlencoded")) return { ...params, ...Object.fromEntries(new URLSearchParams(text)) };
  return undefined;
}

function fieldsOf(req: EmulatorRequest, defaults: readonly string[]): string[] {
  const fields = req.query.get("fields");
  return fields === null ? [...defaults] : fields.split(",").map((f) => f.trim()).filter((f) => f !== "");
}

/** The requested fields; Graph adds the node's `id` to every node read, requested or not. */
function pick(values: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const wanted = fields.includes("id") ? fields : [...fields, "id"];
  return Object.fromEntries(wanted.filter((f) => f in values).map((f) => [f, values[f]]));
}

/** Meta's verification GET: the callback must echo hub.challenge for our verify token. */
async function handshake(uri: string, verifyToken: string): Promise<string | undefined> {
  const challenge = String(Math.floor(Math.random() * 1e9));
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return "the callback URL is not valid";
  }
  url.searchParams.set("hub.mode", "subscribe");
  url.searchParams.set("hub.challenge", challenge);
  url.searchParams.set("hub.verify_token", verifyToken);
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const body = await response.text();
    if (response.status !== 200) return `the callback answered HTTP ${response.status}`;
    return body.trim() === challenge ? undefined : "the callback did not echo hub.challenge";
  } catch (error) {
    return `the callback could not be reached (${error instanceof Error ? error.message : String(error)})`;
  }
}
