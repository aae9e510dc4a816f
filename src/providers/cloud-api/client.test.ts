import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CloudApiEmulator, type CloudApiEmulatorOptions } from "../../../test/emulators/cloud-api/emulator.ts";
import { FakeClock } from "../../../test/emulators/shared/clock.ts";
import { ProviderError } from "../errors.ts";
import { RateLimiter } from "../transport/rate-limiter.ts";
import type { InstanceRef, ProviderClient, ProviderSettings } from "../types.ts";
import { instanceSpecSchema } from "../../api/instance.ts";
import {
  classifyGraphError,
  cloudApiCapabilities,
  cloudApiInstanceOptions,
  createCloudApiClient,
  GRAPH_API_VERSION,
  graphBaseUrl,
  REGISTRATION_BLOCK_MS,
  type GraphError,
} from "./client.ts";

const TOKEN = "EAAGtesttoken0123456789abcdef";
const NUMBER = "106540352242922";
const WABA = "102290129340398";
const PIN = "246810";
const HMAC = "a".repeat(64);
const HOUR = 3_600_000;

const ref: InstanceRef = {
  namespace: "support",
  name: "support-line",
  uid: "uid-1",
  cloudApi: { phoneNumberId: NUMBER, wabaId: WABA, pin: PIN },
};
const withWebhook = (url: string): InstanceRef => ({ ...ref, webhook: { url, events: ["messages"], hmacKey: HMAC } });

/** Returns the ProviderError an action threw; fails the test when it threw nothing (or something else). */
async function failure(action: Promise<unknown>): Promise<ProviderError> {
  const error: unknown = await action.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

describe("graphBaseUrl", () => {
  it.each([
    ["an empty URL", "", `https://graph.facebook.com/${GRAPH_API_VERSION}`],
    ["the Graph host", "https://graph.facebook.com", `https://graph.facebook.com/${GRAPH_API_VERSION}`],
    ["a trailing slash", "http://127.0.0.1:9/", `http://127.0.0.1:9/${GRAPH_API_VERSION}`],
    ["its own version", "https://graph.facebook.com/v26.0", "https://graph.facebook.com/v26.0"],
    ["its own version and a slash", "https://graph.facebook.com/v23.0/", "https://graph.facebook.com/v23.0"],
  ])("builds the versioned base from %s", (_case, url, expected) => {
    expect(graphBaseUrl(url)).toBe(expected);
  });
});

describe("classifyGraphError", () => {
  const now = Date.UTC(2026, 6, 15, 12, 20, 0);
  const error = (code: number, extra: Partial<GraphError> = {}): GraphError => ({ message: `(#${code}) something`, code, ...extra });

  it.each([
    ["an expired token (190)", error(190), "InvalidCredentials"],
    ["a missing token (104)", error(104), "InvalidCredentials"],
    ["a number or WABA deleted or not found (803)", error(803), "NotFound"],
    ["an incomplete deregistration (133000), which another deregister fixes", error(133000), "WrongState"],
    ["an auth failure (0)", error(0), "InvalidCredentials"],
    ["an unknown object (100/33)", error(100, { error_subcode: 33 }), "NotFound"],
    ["a number that is not registered (100/2207051)", error(100, { error_subcode: 2207051 }), "Conflict"],
    ["a number that is not registered (133010)", error(133010), "Conflict"],
    ["an invalid parameter (100)", error(100), "Rejected"],
    ["a wrong PIN (133005)", error(133005), "Rejected"],
    ["a missing permission (10)", error(10), "Rejected"],
    ["an unknown error (1)", error(1), "Unavailable"],
    ["a temporary problem (2)", error(2), "Unavailable"],
    ["the registration server being down (133004)", error(133004), "Unavailable"],
    ["an undocumented code flagged transient", error(987654, { is_transient: true }), "Unavailable"],
    ["an undocumented code", error(987654), "Rejected"],
  ])("maps %s to %s", (_case, graphError, kind) => {
    expect(classifyGraphError(graphError, { now }).kind).toBe(kind);
  });

  it.each([
    ["an app rate limit (4)", 4, 60_000],
    ["a throughput limit (130429)", 130429, 60_000],
    ["a WABA rate limit (80007), until the next hour", 80007, 40 * 60_000],
    ["a register too soon (133015)", 133015, 5 * 60_000],
    ["a PIN entered too fast (133009)", 133009, 15 * 60_000],
  ])("waits after %s when Graph gives no Retry-After", (_case, code, waitMs) => {
    const classified = classifyGraphError(error(code), { now });
    expect(classified.kind).toBe("RateLimited");
    expect(classified.retryAfterMs).toBe(waitMs);
  });

  it("prefers Retry-After to its own waits", () => {
    expect(classifyGraphError(error(80007), { now, retryAfterMs: 5000 }).retryAfterMs).toBe(5000);
  });

  it.each([
    ["the register/deregister budget (133016)", 133016, 72 * HOUR],
    ["too many PIN guesses (133008)", 133008, 12 * HOUR],
  ])("blocks after %s until a fixed time, named in the message", (_case, code, forMs) => {
    const classified = classifyGraphError(error(code), { now });
    expect(classified.kind).toBe("Blocked");
    expect(classified.retryAt?.getTime()).toBe(now + forMs);
    expect(classified.message).toContain(new Date(now + forMs).toISOString());
  });

  it("keeps the code (with the subcode where Graph gives one), the HTTP status and Meta's details", () => {
    expect(classifyGraphError(error(100, { error_subcode: 33 }), { now }).code).toBe("100/33");
    const classified = classifyGraphError(error(133016, { error_data: { details: "try again later" } }), { now, status: 400 });
    expect(classified.code).toBe("133016");
    expect(classified.status).toBe(400);
    expect(classified.message).toContain("try again later");
  });
});

describe("cloudApiInstanceOptions: the instance fields the Cloud API module fills from spec", () => {
  const spec = instanceSpecSchema.parse({
    providerRef: { name: "meta" },
    cloudApi: { phoneNumberId: NUMBER, wabaId: WABA, pinSecretRef: { name: "wa-pin" } },
  });
  const reads: string[] = [];
  const readSecret = async (name: string, key: string) => {
    reads.push(`${name}/${key}`);
    return PIN;
  };

  it("reads the PIN from pinSecretRef for a normal pass", async () => {
    reads.length = 0;
    expect(await cloudApiInstanceOptions(spec, { readSecret, cleanup: false })).toEqual({ cloudApi: { phoneNumberId: NUMBER, wabaId: WABA, pin: PIN } });
    expect(reads).toEqual(["wa-pin/pin"]);
  });

  it("reads no Secret when deleting: a PIN Secret already gone must not block it", async () => {
    reads.length = 0;
    expect(await cloudApiInstanceOptions(spec, { readSecret, cleanup: true })).toEqual({ cloudApi: { phoneNumberId: NUMBER, wabaId: WABA } });
    expect(reads).toEqual([]);
  });

  it("names what is missing when spec.cloudApi is absent", async () => {
    const bare = instanceSpecSchema.parse({ providerRef: { name: "meta" } });
    expect(await cloudApiInstanceOptions(bare, { readSecret, cleanup: false })).toEqual({ invalid: expect.stringContaining("spec.cloudApi") });
    expect(await cloudApiInstanceOptions(bare, { readSecret, cleanup: true })).toEqual({});
  });
});

describe("Cloud API client against the emulator", () => {
  let clock: FakeClock;
  let emulator: CloudApiEmulator;
  let base: string;

  const seed = { id: NUMBER, wabaId: WABA, displayPhoneNumber: "+1 555-025-3483", verifiedName: "Support", qualityRating: "GREEN" };

  async function boot(options: Partial<CloudApiEmulatorOptions> = {}): Promise<void> {
    await emulator?.stop();
    emulator = new CloudApiEmulator({ token: TOKEN, clock, numbers: [seed], ...options });
    base = await emulator.start();
  }

  beforeEach(async () => {
    clock = new FakeClock();
    await boot();
  });

  afterEach(async () => {
    await emulator.stop();
  });

  function client(overrides: Partial<ProviderSettings> = {}): ProviderClient {
    const settings: ProviderSettings = {
      type: "cloud_api",
      url: base,
      apiKey: TOKEN,
      rateLimit: { requestsPerSecond: 1000, burst: 1000 },
      timeoutMs: 5000,
      ...overrides,
    };
    // The limiter waits on the fake clock, so a pause shows up as time passing, instantly.
    const limiter = new RateLimiter(settings.rateLimit, { now: () => clock.now(), sleep: async (ms) => clock.advance(ms) });
    return createCloudApiClient(settings, { limiter, now: () => clock.now() });
  }

  const paths = (): string[] => emulator.calls.map((c) => `${c.method} ${c.path}`);

  it("declares registration, logout and per-number webhooks, and nothing session-like", () => {
    expect(cloudApiCapabilities).toMatchObject({
      qr: false,
      pairingCode: false,
      disconnect: false,
      restart: false,
      logout: true,
      webhook: true,
      webhookSigning: false,
      version: false,
    });
    expect(client().type).toBe("cloud_api");
  });

  it("declares no event filter (webhook fields are an app setting): an event list is Stalled as unsupported, naming it", () => {
    // The planner stalls a spec whose events a "none" provider cannot filter (plan.test.ts, "what the provider cannot do").
    expect(cloudApiCapabilities.webhookEvents).toBe("none");
  });

  it("takes a number from PENDING through register to Connected, and back out with deregister", async () => {
    const cloud = client();
    const created = await cloud.create(ref);
    expect(created).toMatchObject({ id: NUMBER, phase: "Pending", providerState: "PENDING", message: expect.stringMatching(/not registered/) });
    expect(created.phoneNumber).toBeUndefined();

    await cloud.connect(ref, created.id);
    expect(await cloud.observe(ref)).toEqual({
      id: NUMBER,
      phase: "Connected",
      providerState: "CONNECTED",
      phoneNumber: "15550253483",
      webhookInSync: true,
      details: { qualityRating: "GREEN", displayPhoneNumber: "+1 555-025-3483", verifiedName: "Support", nameStatus: "APPROVED" },
    });

    await cloud.logout(ref, created.id);
    expect(await cloud.observe(ref)).toMatchObject({ phase: "LoggedOut", providerState: "DISCONNECTED" });
    expect(paths()).toEqual([
      `GET /${GRAPH_API_VERSION}/${NUMBER}`,
      `POST /${GRAPH_API_VERSION}/${NUMBER}/register`,
      `GET /${GRAPH_API_VERSION}/${NUMBER}`,
      `POST /${GRAPH_API_VERSION}/${NUMBER}/deregister`,
      `GET /${GRAPH_API_VERSION}/${NUMBER}`,
    ]);
  });

  it("uses the Graph version named in the provider URL", async () => {
    await client({ url: `${base}/v26.0` }).observe(ref);
    expect(paths()).toEqual([`GET /v26.0/${NUMBER}`]);
  });

  it("keeps a flagged number Connected and says why", async () => {
    emulator.number(NUMBER).status = "FLAGGED";
    expect(await client().observe(ref)).toMatchObject({ phase: "Connected", providerState: "FLAGGED", message: expect.stringMatching(/low quality/) });
  });

  it("keeps an unknown status word, waits, and flags it unknown so the planner looks again at the poll interval", async () => {
    emulator.number(NUMBER).status = "WARMING_UP";
    expect(await client().observe(ref)).toMatchObject({ phase: "Starting", providerState: "WARMING_UP", unknownState: true });
  });

  it("a number Graph reports without a status (PhoneNumberInfo declares none) is observed as an unknown state, not a failed pass", async () => {
    await boot({ numbers: [{ ...seed, reportsStatus: false }] });
    expect(await client().observe(ref)).toMatchObject({ phase: "Starting", providerState: "UNKNOWN", unknownState: true });
  });

  it("a number deleted from its WABA (803) is gone: observe finds nothing and remove is done", async () => {
    emulator.deleteNumber(NUMBER);
    expect(await client().observe(ref)).toBeNull();
    await client().remove(ref, NUMBER);
    expect(emulator.attemptsInWindow(NUMBER)).toBe(0);
  });

  it("register refused with 133000 (incomplete deregistration) deregisters again, and the next register succeeds", async () => {
    const cloud = client();
    await cloud.connect(ref, NUMBER);
    emulator.interruptDeregistration(NUMBER);
    expect((await failure(cloud.connect(ref, NUMBER))).kind).toBe("WrongState");
    expect(emulator.number(NUMBER).deregistrationIncomplete).toBe(false);
    await cloud.connect(ref, NUMBER);
    expect(emulator.number(NUMBER).status).toBe("CONNECTED");
  });

  it("a deregister answered with plain code 100 ('not currently linked') is already done", async () => {
    await boot({ notRegisteredAnswer: "plain" });
    await client().logout(ref, NUMBER);
    expect(emulator.calls.at(-2)).toMatchObject({ method: "POST", path: `/${GRAPH_API_VERSION}/${NUMBER}/deregister`, status: 400 });
  });

  it("a plain code 100 on deregister of a number that still reads registered (a Business app number) is a refusal, not done", async () => {
    await boot({ notRegisteredAnswer: "plain", numbers: [{ ...seed, businessApp: true }] });
    const cloud = client();
    await cloud.connect(ref, NUMBER);
    const error = await failure(cloud.logout(ref, NUMBER));
    expect(error.kind).toBe("Rejected");
    expect(error.message).toMatch(/SMB/);
  });

  it("treats logout of a number that is not registered (100/2207051) as done", async () => {
    await client().logout(ref, NUMBER);
    expect(emulator.calls.at(-1)?.status).toBe(400);
  });

  it("removes a registered number by deregistering it", async () => {
    const cloud = client();
    await cloud.connect(ref, NUMBER);
    await cloud.remove(ref, NUMBER);
    expect(emulator.number(NUMBER).status).toBe("DISCONNECTED");
  });

  it("removes a number that is not registered without spending a register/deregister attempt", async () => {
    await client().remove(ref, NUMBER);
    expect(paths()).toEqual([`GET /${GRAPH_API_VERSION}/${NUMBER}`]);
    expect(emulator.attemptsInWindow(NUMBER)).toBe(0);
  });

  it("treats removing an unknown number as done", async () => {
    await client().remove(ref, "999");
    expect(paths()).toEqual([`GET /${GRAPH_API_VERSION}/999`]);
  });

  it("observes an unknown number as absent and refuses to create it", async () => {
    const unknown: InstanceRef = { ...ref, cloudApi: { phoneNumberId: "999", wabaId: WABA, pin: PIN } };
    expect(await client().observe(unknown)).toBeNull();
    const error = await failure(client().create(unknown));
    expect(error.kind).toBe("Rejected");
    expect(error.message).toBe("phone number 999 not found in WABA or not accessible");
  });

  describe("webhook", () => {
    const url = "https://hooks.example.com/wa";
    const OTHER = "106540352242923";
    const posts = (path: string) => emulator.calls.filter((call) => call.method === "POST" && call.path === `/${GRAPH_API_VERSION}/${path}`);

    it("points only this number at the URL (webhook_configuration on POST /{phone-number-id}), with the key as verify token, never a WABA-wide override", async () => {
      const cloud = client();
      expect((await cloud.observe(withWebhook(url)))?.webhookInSync).toBe(false);
      await cloud.configureWebhook(withWebhook(url), NUMBER);
      expect(emulator.number(NUMBER).callback).toEqual({ overrideCallbackUri: url, verifyToken: HMAC });
      // Meta sends a number's override only once the app is subscribed to the WABA: subscribed, without an override.
      expect(emulator.subscription(WABA)).toEqual({});
      expect((await cloud.observe(withWebhook(url)))?.webhookInSync).toBe(true);
      expect((await cloud.observe(withWebhook("https://elsewhere.example.com/wa")))?.webhookInSync).toBe(false);
    });

    it("two numbers of one WABA keep their own URLs", async () => {
      emulator.addNumber({ id: OTHER, wabaId: WABA, displayPhoneNumber: "+1 555-025-3484" });
      const second: InstanceRef = { ...ref, name: "sales-line", cloudApi: { phoneNumberId: OTHER, wabaId: WABA, pin: PIN }, webhook: { url: `${url}/sales`, events: [], hmacKey: HMAC } };
      const cloud = client();
      await cloud.configureWebhook(withWebhook(url), NUMBER);
      await cloud.configureWebhook(second, OTHER);
      expect((await cloud.observe(withWebhook(url)))?.webhookInSync).toBe(true);
      expect((await cloud.observe(second))?.webhookInSync).toBe(true);
      expect(emulator.number(NUMBER).callback?.overrideCallbackUri).toBe(url);
    });

    it("subscribes the app to the WABA only when no app is; an existing subscription and its WABA override are left alone", async () => {
      const subscribe = await fetch(`${base}/${GRAPH_API_VERSION}/${WABA}/subscribed_apps`, {
        method: "POST",
        headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
        body: JSON.stringify({ override_callback_uri: "https://crm.example.com/wa", verify_token: "theirs" }),
      });
      expect(subscribe.status).toBe(200);
      await client().configureWebhook(withWebhook(url), NUMBER);
      expect(posts(`${WABA}/subscribed_apps`)).toHaveLength(1);
      expect(emulator.subscription(WABA)).toEqual({ overrideCallbackUri: "https://crm.example.com/wa", verifyToken: "theirs" });
      expect(emulator.number(NUMBER).callback?.overrideCallbackUri).toBe(url);
    });

    it("unwiring removes only this number's override, never the app's subscription to the WABA", async () => {
      const cloud = client();
      await cloud.configureWebhook(withWebhook(url), NUMBER);
      await cloud.configureWebhook({ ...ref, previousWebhookUrl: url }, NUMBER);
      expect(emulator.number(NUMBER).callback).toBeUndefined();
      expect(emulator.subscription(WABA)).toEqual({});
      expect(emulator.calls.some((call) => call.method === "DELETE")).toBe(false);
    });

    it("once spec.webhook is gone, the override the operator set is out of sync; one it did not set is left alone", async () => {
      const cloud = client();
      await cloud.configureWebhook(withWebhook(url), NUMBER);
      expect((await cloud.observe({ ...ref, previousWebhookUrl: url }))?.webhookInSync).toBe(false);
      expect((await cloud.observe(ref))?.webhookInSync).toBe(true);
      expect((await cloud.observe({ ...ref, previousWebhookUrl: "https://old.example.com/wa" }))?.webhookInSync).toBe(true);
      await cloud.configureWebhook({ ...ref, previousWebhookUrl: "https://old.example.com/wa" }, NUMBER);
      expect(emulator.number(NUMBER).callback?.overrideCallbackUri).toBe(url);
    });

    it("reads the wiring in the same request as the number's state", async () => {
      expect(await client().observe(ref)).toMatchObject({ webhookInSync: true });
      expect(paths()).toEqual([`GET /${GRAPH_API_VERSION}/${NUMBER}`]);
    });

    it("needs the WABA id to subscribe the app there, and has nothing to remove without an override", async () => {
      const noWaba: InstanceRef = { ...withWebhook(url), cloudApi: { phoneNumberId: NUMBER, pin: PIN } };
      expect((await failure(client().configureWebhook(noWaba, NUMBER))).message).toMatch(/wabaId is needed/);
      const { webhook: _ignored, ...noWebhook } = noWaba;
      await client().configureWebhook({ ...noWebhook, previousWebhookUrl: url }, NUMBER);
      expect(emulator.calls.map((call) => call.method)).toEqual(["GET"]);
    });

    it("needs a key to use as verify token", async () => {
      const noKey: InstanceRef = { ...ref, webhook: { url, events: [] } };
      expect((await failure(client().configureWebhook(noKey, NUMBER))).kind).toBe("Rejected");
      expect(emulator.calls).toEqual([]);
    });
  });

  describe("errors", () => {
    it("maps a bad token to InvalidCredentials, in the health check and elsewhere, without the token", async () => {
      const wrong = "EAAGwrongtoken9876543210";
      const health = await failure(client({ apiKey: wrong }).checkHealth());
      expect(health.kind).toBe("InvalidCredentials");
      expect(health.code).toBe("190");
      expect(health.message).not.toContain(wrong);
      expect((await failure(client({ apiKey: wrong }).observe(ref))).kind).toBe("InvalidCredentials");
    });

    it("passes the health check with a good token", async () => {
      expect(await client().checkHealth()).toEqual({});
      expect(paths()).toEqual([`GET /${GRAPH_API_VERSION}/me`]);
    });

    it("refuses to call Graph without a token", async () => {
      const error = await failure(client({ apiKey: undefined }).checkHealth());
      expect(error.kind).toBe("Rejected");
      expect(emulator.calls).toEqual([]);
    });

    it.each([
      ["code 4 over HTTP 400", { code: 4 } as const, 60_000],
      ["code 4 over HTTP 429 with Retry-After", { code: 4, status: 429, retryAfterSeconds: 30 } as const, 30_000],
      ["code 130429 with Retry-After", { code: 130429, retryAfterSeconds: 12 } as const, 12_000],
      ["code 80007, until the hour is over", { code: 80007 } as const, HOUR],
    ])("maps throttling with %s to RateLimited", async (_case, throttle, waitMs) => {
      emulator.throttle(throttle);
      const error = await failure(client().observe(ref));
      expect(error.kind).toBe("RateLimited");
      expect(error.code).toBe(String(throttle.code));
      expect(error.retryAfterMs).toBe(waitMs);
    });

    it("holds every call through the provider after an app-wide limit (code 4)", async () => {
      emulator.throttle({ code: 4, retryAfterSeconds: 30 });
      const cloud = client();
      await failure(cloud.observe(ref));
      const before = clock.now();
      await cloud.observe(ref);
      expect(clock.now() - before).toBeGreaterThanOrEqual(30_000);
    });

    it("maps a wrong PIN (133005) to Rejected without naming the PIN", async () => {
      emulator.number(NUMBER).pin = "999999";
      const error = await failure(client().connect(ref, NUMBER));
      expect(error.kind).toBe("Rejected");
      expect(error.code).toBe("133005");
      expect(error.message).not.toContain(PIN);
    });

    it("refuses to register without a PIN, or with one that is not 6 digits, before spending an attempt", async () => {
      const noPin: InstanceRef = { ...ref, cloudApi: { phoneNumberId: NUMBER, wabaId: WABA } };
      expect((await failure(client().connect(noPin, NUMBER))).message).toMatch(/pinSecretRef is needed/);
      const shortPin: InstanceRef = { ...ref, cloudApi: { phoneNumberId: NUMBER, wabaId: WABA, pin: "1234" } };
      expect((await failure(client().connect(shortPin, NUMBER))).kind).toBe("Rejected");
      expect(emulator.calls).toEqual([]);
    });

    it("maps the 11th register/deregister in 72 h (133016) to Blocked until 72 h from now", async () => {
      const cloud = client();
      for (let i = 0; i < 5; i++) {
        await cloud.connect(ref, NUMBER);
        await cloud.logout(ref, NUMBER);
      }
      const error = await failure(cloud.connect(ref, NUMBER));
      expect(error.kind).toBe("Blocked");
      expect(error.retryAt?.getTime()).toBe(clock.now() + REGISTRATION_BLOCK_MS);
      expect(error.message).toContain(new Date(clock.now() + REGISTRATION_BLOCK_MS).toISOString());
    });

    it("refuses ids that are not digits without calling Graph", async () => {
      const odd: InstanceRef = { ...ref, cloudApi: { phoneNumberId: "../me", pin: PIN } };
      expect((await failure(client().observe(odd))).kind).toBe("Rejected");
      expect(emulator.calls).toEqual([]);
    });

    it.each(["not-json", "wrong-shape"] as const)("maps a %s answer to Malformed", async (kind) => {
      emulator.corruptNext(kind);
      expect((await failure(client().observe(ref))).kind).toBe("Malformed");
    });

    it("maps an unavailable Graph (503, code 2) to Unavailable", async () => {
      emulator.setAvailable(false);
      expect((await failure(client().checkHealth())).kind).toBe("Unavailable");
    });

    it.each([
      ["disconnect", (c: ProviderClient) => c.disconnect(ref, NUMBER)],
      ["restart", (c: ProviderClient) => c.restart(ref, NUMBER)],
      ["fetchQr", (c: ProviderClient) => c.fetchQr(ref, NUMBER)],
      ["requestPairingCode", (c: ProviderClient) => c.requestPairingCode(ref, NUMBER, "15550253483")],
    ])("refuses %s, which Cloud API lacks, without a request", async (_name, action) => {
      expect((await failure(action(client()))).kind).toBe("Rejected");
      expect(emulator.calls).toEqual([]);
    });
  });
});
