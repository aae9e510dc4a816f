/**
 * WAHA's client against the WAHA emulator, for what the contract suite does not pin down:
 * how a webhook reaches WAHA (every event for an empty list), that a session is
 * reconfigured (which WAHA does by restarting it) only for a real change and without
 * losing what the operator does not manage, and how request-code's refusals read.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../../test/emulators/shared/clock.ts";
import { fakeTimeDeps } from "../../../test/emulators/shared/client-deps.ts";
import { startReceiver, type Receiver } from "../../../test/emulators/shared/receiver.ts";
import { WahaEmulator } from "../../../test/emulators/waha/emulator.ts";
import { ProviderError } from "../errors.ts";
import type { InstanceRef, ProviderClient, WebhookTarget } from "../types.ts";
import { createWahaClient, wahaCapabilities, wahaSessionName } from "./client.ts";

const KEY = "waha-client-test-key";
const PHONE = "5511999998888";
const HMAC = "b".repeat(64);
const RECEIVER_KEY = "c".repeat(64);

let clock: FakeClock;
let waha: WahaEmulator;
let url: string;
let receiver: Receiver;

beforeEach(async () => {
  clock = new FakeClock();
  waha = new WahaEmulator({ apiKey: KEY, clock, startDelayMs: 1000, crashRestartDelayMs: null });
  url = await waha.start();
  receiver = await startReceiver();
});

afterEach(async () => {
  await waha.stop();
  await waha.settle();
  await receiver.close();
});

function client(timeoutMs = 5000): ProviderClient {
  return createWahaClient(
    { type: "waha", url, apiKey: KEY, rateLimit: { requestsPerSecond: 1000, burst: 1000 }, timeoutMs },
    fakeTimeDeps(clock).deps,
  );
}

const base: InstanceRef = { namespace: "support", name: "line", uid: "uid-1" };
const name = wahaSessionName(base.namespace, base.name);

function hooked(target: Partial<WebhookTarget> = {}): InstanceRef {
  return { ...base, webhook: { url: `${receiver.url}/hook`, events: ["message"], hmacKey: HMAC, ...target } };
}

/** A linked, WORKING session made through the client, as the operator makes it. */
async function working(ref: InstanceRef): Promise<void> {
  const operator = client();
  const created = await operator.create(ref);
  await operator.connect(ref, created.id);
  clock.advance(1000);
  waha.scan(name, PHONE);
}

const boots = () => waha.session(name)?.boots ?? 0;
const puts = () => waha.callsTo("PUT", "/api/sessions/{session}").length;
const config = () => waha.session(name)?.config;

/** Replaces the session's config behind the operator's back, as a user in WAHA's dashboard would; the session restarts on its link. */
async function putConfig(body: unknown): Promise<void> {
  const response = await fetch(`${url}/api/sessions/${name}`, {
    method: "PUT",
    headers: { "X-Api-Key": KEY, "Content-Type": "application/json" },
    body: JSON.stringify({ config: body }),
  });
  expect(response.status).toBe(200);
  clock.advance(1000);
}

describe("the events WAHA is asked for", () => {
  it('an empty event list reaches WAHA as "*", so the webhook hears every event', async () => {
    const ref = hooked({ events: [] });
    await client().create(ref);
    expect(config()?.webhooks?.[0]?.events).toEqual(["*"]);
    // WAHA skips a webhook without events; with "*" the start's status changes arrive.
    await client().connect(ref, name);
    clock.advance(1000);
    await waha.settle();
    expect(receiver.received.map((request) => (request.json as { event: string }).event)).toContain("session.status");
  });

  it('"*" is an event name spec.webhook.events may hold for WAHA (the planner accepts what capabilities list)', () => {
    expect(wahaCapabilities.webhookEvents).toContain("*");
  });
});

describe("reconfiguring a session, which WAHA does by restarting it", () => {
  it("a webhook already in place is not sent again: no PUT, no restart", async () => {
    const ref = hooked();
    await working(ref);
    expect((await client().observe(ref))?.webhookInSync).toBe(true);
    const [putsBefore, bootsBefore] = [puts(), boots()];
    await client().configureWebhook(ref, name);
    expect([puts(), boots()]).toEqual([putsBefore, bootsBefore]);
  });

  it("a changed event list restarts the running session once and keeps what the operator does not manage", async () => {
    const ref = hooked();
    await working(ref);
    const ours = config()?.webhooks?.[0];
    await putConfig({
      ...config(),
      metadata: { ...config()?.metadata, team: "support" },
      webhooks: [
        { ...ours, retries: { policy: "linear", delaySeconds: 2, attempts: 3 }, customHeaders: [{ name: "X-Team", value: "support" }] },
        { url: "https://crm.example.com/wa", events: ["message.any"] },
      ],
    });
    const changed = { ...ref, webhook: { ...(ref.webhook as WebhookTarget), events: ["message", "message.ack"] } };
    expect((await client().observe(changed))?.webhookInSync).toBe(false);
    const [putsBefore, bootsBefore] = [puts(), boots()];

    await client().configureWebhook(changed, name);
    expect([puts(), boots()]).toEqual([putsBefore + 1, bootsBefore + 1]);
    expect(config()?.metadata).toMatchObject({ team: "support" });
    expect(config()?.webhooks).toEqual(
      expect.arrayContaining([
        {
          url: `${receiver.url}/hook`,
          events: ["message", "message.ack"],
          hmac: { key: HMAC },
          retries: { policy: "linear", delaySeconds: 2, attempts: 3 },
          customHeaders: [{ name: "X-Team", value: "support" }],
        },
        { url: "https://crm.example.com/wa", events: ["message.any"] },
      ]),
    );
    expect(config()?.webhooks).toHaveLength(2);
    // The session came back on its own link: no new scan.
    clock.advance(1000);
    expect((await client().observe(changed))?.phase).toBe("Connected");
    expect((await client().observe(changed))?.webhookInSync).toBe(true);
  });

  it("one change is carried out once, even when WAHA later shows our entry differently", async () => {
    const ref = hooked();
    await working(ref);
    const ours = config()?.webhooks?.[0];
    // WAHA (or a person) rewrites the entry we sent; asking again would restart the session for nothing.
    await putConfig({ ...config(), webhooks: [{ ...ours, events: ["message", "message.any"] }] });
    expect((await client().observe(ref))?.webhookInSync).toBe(true);
  });

  it("a new URL replaces the operator's old entry and leaves the others", async () => {
    const ref = hooked();
    await working(ref);
    await putConfig({ ...config(), webhooks: [...(config()?.webhooks ?? []), { url: "https://crm.example.com/wa", events: ["message"] }] });
    const moved = hooked({ url: `${receiver.url}/moved` });
    expect((await client().observe(moved))?.webhookInSync).toBe(false);
    await client().configureWebhook(moved, name);
    expect(config()?.webhooks?.map((hook) => hook.url).sort()).toEqual([`${receiver.url}/moved`, "https://crm.example.com/wa"]);
  });

  it("without spec.webhook, the operator's entry is out of sync and removed; the others and the event receiver stay", async () => {
    const receiverUrl = `${receiver.url}/operator`;
    const ref = { ...hooked(), providerEvents: { url: receiverUrl, hmacKey: RECEIVER_KEY } };
    await working(ref);
    await putConfig({ ...config(), webhooks: [...(config()?.webhooks ?? []), { url: "https://crm.example.com/wa", events: ["message"] }] });
    const { webhook: _dropped, ...unhooked } = ref;
    expect((await client().observe(unhooked))?.webhookInSync).toBe(false);
    await client().configureWebhook(unhooked, name);
    expect(config()?.webhooks?.map((hook) => hook.url).sort()).toEqual([receiverUrl, "https://crm.example.com/wa"]);
    expect((await client().observe(unhooked))?.webhookInSync).toBe(true);
  });

  it("a session with nothing of ours and nothing wanted is in sync", async () => {
    await working(base);
    expect((await client().observe(base))?.webhookInSync).toBe(true);
  });
});

describe("request-code", () => {
  it("a plain 422 from request-code outside SCAN_QR_CODE is a look-again (WrongState), not a rejection", async () => {
    await working(base);
    const error = await client().requestPairingCode(base, name, PHONE).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).kind).toBe("WrongState");
  });

  it("a request-code WAHA never answers (a start that hangs) ends in a timeout: Unavailable, retried later", async () => {
    waha.hangStarts(name);
    const created = await client().create(base);
    await client().connect(base, created.id);
    const error = await client(300).requestPairingCode(base, name, PHONE).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).kind).toBe("Unavailable");
  });
});

describe("writes WAHA documents as idempotent", () => {
  it("create and start that meet a 503 are sent again in the same call; restart is not", async () => {
    const operator = client();
    waha.failNext("POST", /^\/api\/sessions$/);
    const created = await operator.create(base);
    waha.failNext("POST", /\/start$/);
    await operator.connect(base, created.id);
    const tries = (suffix: RegExp) => waha.calls.filter((call) => call.method === "POST" && suffix.test(call.path)).length;
    expect(tries(/^\/api\/sessions$/)).toBe(2);
    expect(tries(/\/start$/)).toBe(2);

    waha.failNext("POST", /\/restart$/);
    await expect(operator.restart(base, created.id)).rejects.toMatchObject({ kind: "Unavailable" });
    expect(tries(/\/restart$/)).toBe(1);
  });
});

describe("the session list (GET /api/sessions?all=true)", () => {
  it("shows each session with the fingerprint a look of it has, STOPPED ones included; a change at the gateway changes it", async () => {
    const operator = client();
    await working(base);
    const other: InstanceRef = { namespace: "support", name: "stopped", uid: "uid-2" };
    const made = await operator.create(other);
    const looked = await operator.observe(base);
    const listed = await operator.listSessions?.();
    expect(looked?.fingerprint).toBeDefined();
    expect(listed?.get(name)).toBe(looked?.fingerprint);
    // A session never started is STOPPED: listed only because the client asks for all of them.
    expect(waha.session(made.id)?.status).toBe("STOPPED");
    expect(listed?.get(made.id)).toBe((await operator.observe(other))?.fingerprint);
    // Logged out on the phone: the list no longer shows the session as the look saw it.
    waha.unlinkFromPhone(name);
    expect((await operator.listSessions?.())?.get(name)).not.toBe(looked?.fingerprint);
  });
});
