import { createServer, type Server } from "node:http";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../shared/clock.ts";
import { close, listen } from "../shared/http.ts";
import { CloudApiEmulator, REGISTRATION_WINDOW_MS } from "./emulator.ts";

const TOKEN = "EAAGtesttoken0123456789";
const NUMBER = "106540352242922";
const WABA = "102290129340398";
const PIN = "123456";

interface GraphAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: Record<string, unknown>;
  readonly error: Record<string, unknown>;
}

describe("Cloud API emulator", () => {
  let clock: FakeClock;
  let emulator: CloudApiEmulator;
  let base: string;

  beforeEach(async () => {
    clock = new FakeClock();
    emulator = new CloudApiEmulator({
      token: TOKEN,
      clock,
      numbers: [{ id: NUMBER, wabaId: WABA, displayPhoneNumber: "+1 555-025-3483", verifiedName: "Support", qualityRating: "GREEN" }],
    });
    base = await emulator.start();
  });

  afterEach(async () => {
    await emulator.stop();
  });

  async function graph(
    method: string,
    path: string,
    options: { token?: string | null; json?: unknown; form?: Record<string, string> } = {},
  ): Promise<GraphAnswer> {
    const headers: Record<string, string> = {};
    const token = options.token === undefined ? TOKEN : options.token;
    if (token !== null) headers["Authorization"] = `Bearer ${token}`;
    let body: string | undefined;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    } else if (options.form !== undefined) {
      headers["Content-Type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(options.form).toString();
    }
    const response = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
    const text = await response.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // Left empty: the test looks at `text`.
    }
    return { status: response.status, headers: response.headers, text, body: parsed, error: (parsed["error"] ?? {}) as Record<string, unknown> };
  }

  const register = (pin = PIN): Promise<GraphAnswer> =>
    graph("POST", `/v25.0/${NUMBER}/register`, { json: { messaging_product: "whatsapp", pin } });
  const deregister = (): Promise<GraphAnswer> => graph("POST", `/v25.0/${NUMBER}/deregister`);

  it.each(["v23.0", "v25.0", "v26.0"])("serves any Graph version prefix (%s)", async (version) => {
    expect((await graph("GET", `/${version}/me`)).status).toBe(200);
  });

  it("refuses a path without a version prefix", async () => {
    const answer = await graph("GET", "/me");
    expect(answer.status).toBe(400);
    expect(answer.error["code"]).toBe(2500);
  });

  it.each([
    ["a wrong token", "not-the-token", 190],
    ["no token (the OpenAPI's missing_token example)", null, 104],
  ])("answers %s with 401 and Graph's error envelope, code %i", async (_case, token, code) => {
    const answer = await graph("GET", `/v25.0/${NUMBER}`, { token });
    expect(answer.status).toBe(401);
    expect(answer.body).toEqual({
      error: {
        message: expect.stringMatching(/access token/),
        type: "OAuthException",
        code,
        fbtrace_id: expect.any(String),
      },
    });
  });

  it("accepts the token as access_token in the query string, as Graph does", async () => {
    expect((await graph("GET", `/v25.0/me?access_token=${TOKEN}`, { token: null })).status).toBe(200);
  });

  it("answers /me with the caller's id, honouring fields", async () => {
    expect((await graph("GET", "/v25.0/me")).body).toEqual({ id: expect.any(String), name: expect.any(String) });
    expect(Object.keys((await graph("GET", "/v25.0/me?fields=id")).body)).toEqual(["id"]);
    expect(Object.keys((await graph("GET", "/v25.0/me?fields=name")).body)).toEqual(["name", "id"]);
  });

  it("returns the four default fields of a number without fields=", async () => {
    expect((await graph("GET", `/v25.0/${NUMBER}`)).body).toEqual({
      id: NUMBER,
      display_phone_number: "+1 555-025-3483",
      verified_name: "Support",
      quality_rating: "GREEN",
    });
  });

  it("returns exactly the requested fields plus the id, with a new number PENDING", async () => {
    const answer = await graph("GET", `/v25.0/${NUMBER}?fields=status,name_status,platform_type,code_verification_status`);
    expect(answer.body).toEqual({
      id: NUMBER,
      status: "PENDING",
      name_status: "APPROVED",
      platform_type: "NOT_APPLICABLE",
      code_verification_status: "VERIFIED",
    });
  });

  it("refuses a field the node does not have", async () => {
    const answer = await graph("GET", `/v25.0/${NUMBER}?fields=status,colour`);
    expect(answer.status).toBe(400);
    expect(answer.error["code"]).toBe(100);
    expect(answer.error["message"]).toMatch(/nonexisting field \(colour\)/);
  });

  it.each([
    ["GET", "/v25.0/999"],
    ["POST", "/v25.0/999/register"],
    ["GET", "/v25.0/999/subscribed_apps"],
  ])("answers %s %s for an unknown id with 400, code 100, subcode 33", async (method, path) => {
    const answer = await graph(method, path, method === "POST" ? { json: { messaging_product: "whatsapp", pin: PIN } } : {});
    expect(answer.status).toBe(400);
    expect(answer.error).toMatchObject({ code: 100, error_subcode: 33, type: "GraphMethodException" });
  });

  it("registers a pending number (CONNECTED) and deregisters it (DISCONNECTED)", async () => {
    expect((await register()).body).toEqual({ success: true });
    expect(emulator.number(NUMBER).status).toBe("CONNECTED");
    expect((await graph("GET", `/v25.0/${NUMBER}?fields=platform_type`)).body).toEqual({ platform_type: "CLOUD_API", id: NUMBER });
    expect((await deregister()).body).toEqual({ success: true });
    expect(emulator.number(NUMBER).status).toBe("DISCONNECTED");
  });

  it("answers a deregister of an unregistered number with code 100, subcode 2207051", async () => {
    const answer = await deregister();
    expect(answer.status).toBe(400);
    expect(answer.error).toMatchObject({ code: 100, error_subcode: 2207051 });
  });

  it("keeps the PIN of the first register and refuses another one with 133005", async () => {
    await register("111111");
    const answer = await register("222222");
    expect(answer.status).toBe(400);
    expect(answer.error["code"]).toBe(133005);
    expect(emulator.number(NUMBER).pin).toBe("111111");
  });

  it("sets the two-step PIN with POST /{id} {pin}, which register must then match", async () => {
    expect((await graph("POST", `/v25.0/${NUMBER}`, { form: { pin: "654321" } })).body).toEqual({ success: true });
    expect((await register(PIN)).error["code"]).toBe(133005);
    expect((await register("654321")).body).toEqual({ success: true });
  });

  it.each([
    ["a PIN that is not 6 digits", { messaging_product: "whatsapp", pin: "12345" }],
    ["no messaging_product", { pin: PIN }],
  ])("refuses a register with %s (code 100)", async (_case, json) => {
    const answer = await graph("POST", `/v25.0/${NUMBER}/register`, { json });
    expect(answer.error["code"]).toBe(100);
    expect(emulator.number(NUMBER).status).toBe("PENDING");
  });

  it("allows ten register/deregister requests per 72 h and answers the 11th with 133016", async () => {
    for (let i = 0; i < 5; i++) {
      expect((await register()).status).toBe(200);
      expect((await deregister()).status).toBe(200);
      clock.advance(60_000);
    }
    const blocked = await register();
    expect(blocked.status).toBe(400);
    expect(blocked.error["code"]).toBe(133016);
    expect(emulator.number(NUMBER).status).toBe("DISCONNECTED");
    expect(emulator.attemptsInWindow(NUMBER)).toBe(10);
  });

  it("counts the budget over a moving window: an attempt frees up 72 h after it was made", async () => {
    for (let i = 0; i < 10; i++) {
      await register();
      clock.advance(60_000);
    }
    expect((await register()).error["code"]).toBe(133016);
    // The first attempt was made 10 minutes ago; 1 ms before it is 72 h old, still blocked.
    clock.advance(REGISTRATION_WINDOW_MS - 10 * 60_000 - 1);
    expect((await register()).error["code"]).toBe(133016);
    clock.advance(1);
    expect((await register()).status).toBe(200);
  });

  it.each([
    [4, undefined, undefined],
    [80007, 429, 3600],
    [130429, 400, 30],
  ] as const)("throttles with code %s (HTTP %s, Retry-After %s)", async (code, status, retryAfterSeconds) => {
    emulator.throttle({ code, ...(status === undefined ? {} : { status }), ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) });
    const answer = await graph("GET", `/v25.0/${NUMBER}`);
    expect(answer.status).toBe(status ?? 400);
    expect(answer.error).toMatchObject({ code, type: "OAuthException", is_transient: true });
    expect(answer.headers.get("retry-after")).toBe(retryAfterSeconds === undefined ? null : String(retryAfterSeconds));
    expect((await graph("GET", `/v25.0/${NUMBER}`)).status).toBe(200);
  });

  it("throttles as many requests as asked", async () => {
    emulator.throttle({ code: 4, times: 2 });
    expect((await graph("GET", "/v25.0/me")).status).toBe(400);
    expect((await graph("GET", "/v25.0/me")).status).toBe(400);
    expect((await graph("GET", "/v25.0/me")).status).toBe(200);
  });

  describe("a number's own callback override (webhook_configuration)", () => {
    const override = (uri: string, token?: string) =>
      graph("POST", `/v25.0/${NUMBER}`, { json: { webhook_configuration: { override_callback_uri: uri, ...(token === undefined ? {} : { verify_token: token }) } } });
    const configuration = async () => (await graph("GET", `/v25.0/${NUMBER}?fields=webhook_configuration`)).body;

    it("is refused until the app is subscribed to the WABA, then shown per level and removed with an empty URI", async () => {
      expect((await override("https://hooks.example.com/one", "vt")).error["code"]).toBe(100);
      await graph("POST", `/v25.0/${WABA}/subscribed_apps`);
      expect((await override("https://hooks.example.com/one", "vt")).body).toEqual({ success: true });
      expect(await configuration()).toEqual({ id: NUMBER, webhook_configuration: { phone_number: "https://hooks.example.com/one" } });
      expect(emulator.number(NUMBER).callback).toEqual({ overrideCallbackUri: "https://hooks.example.com/one", verifyToken: "vt" });
      // The WABA's subscription is untouched: the override is this number's alone.
      expect(emulator.subscription(WABA)).toEqual({});
      expect((await override("")).body).toEqual({ success: true });
      expect(await configuration()).toEqual({ id: NUMBER, webhook_configuration: {} });
    });

    it("needs a verify token with a URI", async () => {
      await graph("POST", `/v25.0/${WABA}/subscribed_apps`);
      expect((await override("https://hooks.example.com/one")).error["code"]).toBe(100);
      expect(emulator.number(NUMBER).callback).toBeUndefined();
    });

    it("shows the WABA's override and the app's callback beside the number's", async () => {
      await emulator.stop();
      emulator = new CloudApiEmulator({ token: TOKEN, clock, appCallbackUrl: "https://app.example.com/wa", numbers: [{ id: NUMBER, wabaId: WABA, displayPhoneNumber: "+1 555" }] });
      base = await emulator.start();
      await graph("POST", `/v25.0/${WABA}/subscribed_apps`, { json: { override_callback_uri: "https://waba.example.com/wa", verify_token: "w" } });
      expect((await configuration())["webhook_configuration"]).toEqual({ whatsapp_business_account: "https://waba.example.com/wa", application: "https://app.example.com/wa" });
    });
  });

  it("answers code 803 (HTTP 404) for a number deleted from its WABA, on reads and actions", async () => {
    emulator.deleteNumber(NUMBER);
    for (const answer of [await graph("GET", `/v25.0/${NUMBER}?fields=status`), await deregister(), await register()]) {
      expect([answer.status, answer.error["code"]]).toEqual([404, 803]);
    }
  });

  it("leaves status out for a number that does not report it, even when asked", async () => {
    await emulator.stop();
    emulator = new CloudApiEmulator({ token: TOKEN, clock, numbers: [{ id: NUMBER, wabaId: WABA, displayPhoneNumber: "+1 555", reportsStatus: false }] });
    base = await emulator.start();
    expect((await graph("GET", `/v25.0/${NUMBER}?fields=status,quality_rating`)).body).toEqual({ id: NUMBER, quality_rating: "NA" });
  });

  it("answers register with 133000 after an interrupted deregistration, until deregister completes it", async () => {
    await register();
    emulator.interruptDeregistration(NUMBER);
    const refused = await register();
    expect([refused.status, refused.error["code"]]).toEqual([500, 133000]);
    expect((await deregister()).body).toEqual({ success: true });
    expect((await register()).body).toEqual({ success: true });
    expect(emulator.number(NUMBER).status).toBe("CONNECTED");
  });

  it("can answer a deregister of an unregistered number with plain code 100 ('not currently linked')", async () => {
    await emulator.stop();
    emulator = new CloudApiEmulator({ token: TOKEN, clock, notRegisteredAnswer: "plain", numbers: [{ id: NUMBER, wabaId: WABA, displayPhoneNumber: "+1 555" }] });
    base = await emulator.start();
    const answer = await deregister();
    expect(answer.error).toMatchObject({ code: 100, message: expect.stringContaining("not currently linked") });
    expect(answer.error).not.toHaveProperty("error_subcode");
  });

  describe("subscribed_apps", () => {
    it("lists no app until subscribed, then the app with its override callback", async () => {
      expect((await graph("GET", `/v25.0/${WABA}/subscribed_apps`)).body).toEqual({ data: [] });
      const subscribed = await graph("POST", `/v25.0/${WABA}/subscribed_apps`, {
        json: { override_callback_uri: "https://hooks.example.com/wa", verify_token: "vt" },
      });
      expect(subscribed.body).toEqual({ success: true });
      const listed = await graph("GET", `/v25.0/${WABA}/subscribed_apps`);
      expect(listed.body).toEqual({
        data: [
          {
            whatsapp_business_api_data: { id: expect.any(String), name: expect.any(String), link: expect.any(String) },
            override_callback_uri: "https://hooks.example.com/wa",
          },
        ],
      });
      expect(listed.text).not.toContain("vt");
      expect(emulator.subscription(WABA)).toEqual({ overrideCallbackUri: "https://hooks.example.com/wa", verifyToken: "vt" });
    });

    it("subscribes without an override when given no body", async () => {
      await graph("POST", `/v25.0/${WABA}/subscribed_apps`);
      const [app] = (await graph("GET", `/v25.0/${WABA}/subscribed_apps`)).body["data"] as Record<string, unknown>[];
      expect(app).not.toHaveProperty("override_callback_uri");
    });

    it("requires verify_token with override_callback_uri", async () => {
      const answer = await graph("POST", `/v25.0/${WABA}/subscribed_apps`, { json: { override_callback_uri: "https://x.example" } });
      expect(answer.error["code"]).toBe(100);
      expect(emulator.subscription(WABA)).toBeUndefined();
    });

    it("unsubscribes with DELETE", async () => {
      await graph("POST", `/v25.0/${WABA}/subscribed_apps`);
      expect((await graph("DELETE", `/v25.0/${WABA}/subscribed_apps`)).body).toEqual({ success: true });
      expect((await graph("GET", `/v25.0/${WABA}/subscribed_apps`)).body).toEqual({ data: [] });
    });
  });

  describe("callback verification, when enabled", () => {
    let receiver: Server;
    let callback: string;

    beforeEach(async () => {
      // A receiver that answers the hub handshake only for the token "right".
      receiver = createServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://receiver");
        const ok = url.searchParams.get("hub.mode") === "subscribe" && url.searchParams.get("hub.verify_token") === "right";
        res.writeHead(ok ? 200 : 403).end(ok ? (url.searchParams.get("hub.challenge") ?? "") : "forbidden");
      });
      callback = `${await listen(receiver)}/wa`;
      await emulator.stop();
      emulator = new CloudApiEmulator({ token: TOKEN, clock, verifyCallbacks: true, numbers: [{ id: NUMBER, wabaId: WABA, displayPhoneNumber: "+1 555" }] });
      base = await emulator.start();
    });

    afterEach(async () => {
      await close(receiver);
    });

    it("subscribes when the callback echoes hub.challenge for the verify token", async () => {
      const answer = await graph("POST", `/v25.0/${WABA}/subscribed_apps`, { json: { override_callback_uri: callback, verify_token: "right" } });
      expect(answer.body).toEqual({ success: true });
    });

    it("refuses with code 2200 when the callback rejects the verify token", async () => {
      const answer = await graph("POST", `/v25.0/${WABA}/subscribed_apps`, { json: { override_callback_uri: callback, verify_token: "wrong" } });
      expect(answer.error["code"]).toBe(2200);
      expect(emulator.subscription(WABA)).toBeUndefined();
    });
  });

  it("answers 503 with code 2 while unavailable", async () => {
    emulator.setAvailable(false);
    const answer = await graph("GET", "/v25.0/me");
    expect(answer.status).toBe(503);
    expect(answer.error).toMatchObject({ code: 2, is_transient: true });
  });

  it("breaks exactly the next answer when asked, without carrying out the call", async () => {
    emulator.corruptNext("not-json");
    const broken = await register();
    expect(broken.status).toBe(200);
    expect(broken.text).toMatch(/^<html>/);
    expect(emulator.number(NUMBER).status).toBe("PENDING");
    emulator.corruptNext("wrong-shape");
    expect((await graph("GET", "/v25.0/me")).body).toEqual({ data: { unexpected: true } });
    expect((await graph("GET", "/v25.0/me")).status).toBe(200);
  });

  it("logs method, path and status, never the query string", async () => {
    await graph("GET", `/v25.0/me?access_token=${TOKEN}`, { token: null });
    await graph("GET", "/v25.0/999");
    expect(emulator.calls).toEqual([
      { method: "GET", path: "/v25.0/me", status: 200 },
      { method: "GET", path: "/v25.0/999", status: 400 },
    ]);
  });
});
