import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fakeTimeDeps } from "../../../test/emulators/shared/client-deps.ts";
import { FakeClock } from "../../../test/emulators/shared/clock.ts";
import { EVOLUTION_QR_TIMEOUT_MS, EvolutionEmulator, type EvolutionEmulatorOptions } from "../../../test/emulators/evolution/emulator.ts";
import { redactor } from "../../redaction.ts";
import { ProviderError, type ProviderErrorKind } from "../errors.ts";
import type { InstanceRef, ProviderClient } from "../types.ts";
import { EVOLUTION_WEBHOOK_EVENTS, createEvolutionClient, evolutionInstanceName } from "./client.ts";
import { EVOLUTION_EVENTS_TOKEN_HEADER, evolutionEventsToken } from "./events.ts";

const KEY = "evolution-global-key-of-tests";
const PHONE = "5511999998888";
const ref: InstanceRef = { namespace: "support", name: "support-line", uid: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" };
const NAME = evolutionInstanceName(ref);

let clock: FakeClock;
let emulator: EvolutionEmulator;
let client: ProviderClient;
let baseUrl: string;

async function start(options: EvolutionEmulatorOptions = {}): Promise<void> {
  await emulator?.stop();
  emulator = new EvolutionEmulator({ globalKey: KEY, clock, ...options });
  baseUrl = await emulator.start();
  client = clientWith(KEY);
}

function clientWith(apiKey: string): ProviderClient {
  return createEvolutionClient({ type: "evolution", url: baseUrl, apiKey, rateLimit: { requestsPerSecond: 1000, burst: 1000 }, timeoutMs: 5000 }, fakeTimeDeps(clock).deps);
}

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

const kindOf = async (promise: Promise<unknown>): Promise<ProviderErrorKind> => (await failure(promise)).kind;
const withId = { ...ref, providerInstanceId: NAME };

async function linked(): Promise<void> {
  await client.create(ref);
  await client.connect(withId, NAME);
  emulator.scan(NAME, PHONE);
}

beforeEach(async () => {
  clock = new FakeClock();
  await start();
});

afterEach(async () => {
  await emulator.stop();
});

describe("instances and ownership", () => {
  it("names an instance <namespace>.<name> [<uid>] and finds it again by that name without a recorded id", async () => {
    const created = await client.create(ref);
    expect(created).toMatchObject({ id: "support.support-line [0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0]", phase: "Disconnected", ownerUid: ref.uid });
    expect(await client.observe(ref)).toMatchObject({ id: NAME, ownerUid: ref.uid, phase: "Disconnected" });
  });

  it("takes a lost create's 403 'name in use' for its own instance", async () => {
    await client.create(ref);
    expect((await client.create(ref)).id).toBe(NAME);
    expect(emulator.instances()).toHaveLength(1);
  });

  it("adopts an instance by its name and reports no owner, and never deletes it", async () => {
    emulator.seed("sales");
    const adopted = { ...ref, providerInstanceId: "sales" };
    const session = await client.observe(adopted);
    expect(session).toMatchObject({ id: "sales", phase: "Disconnected" });
    expect(session?.ownerUid).toBeUndefined();
    const refused = await failure(client.remove(adopted, "sales"));
    expect(refused.kind).toBe("Rejected");
    expect(refused.message).toContain("deletionPolicy: Orphan");
    expect(emulator.instance("sales")).toBeDefined();
  });

  it("reports another resource's uid in a name, so the planner refuses it", async () => {
    const other = { ...ref, uid: "ffffffff-0000-0000-0000-000000000000" };
    await client.create(other);
    expect((await client.observe({ ...ref, providerInstanceId: evolutionInstanceName(other) }))?.ownerUid).toBe(other.uid);
  });

  it("deletes its own linked instance, logging it out first (Evolution before 2.2.1 refuses to delete an open one)", async () => {
    await start({ version: "2.0.5" });
    await linked();
    await client.remove(withId, NAME);
    await client.remove(withId, NAME);
    expect(emulator.instance(NAME)).toBeUndefined();
    expect(await client.observe(ref)).toBeNull();
  });

  it("never lets an instance token out: not in what it returns, and hidden by the redactor once seen", async () => {
    await client.create(ref);
    const token = emulator.instance(NAME)?.token as string;
    const seen = JSON.stringify([await client.observe(ref), await client.create({ ...ref, uid: "another-uid-0000" })]);
    expect(seen).not.toContain(token);
    expect(redactor.redact(`evolution said ${token}`)).toBe("evolution said [redacted]");
  });
});

describe("errors that quote what Evolution knows", () => {
  it("never repeat an instance token or the global key, in an error status or a 200 {error: true}", async () => {
    await linked();
    const token = emulator.instance(NAME)?.token as string;
    const quoted = `instance ${NAME} (token ${token}, apikey ${KEY}) refused`;
    // Both shapes Evolution's refusals take (src/main.ts error handler; the 200 {error: true, message} of connect and restart).
    emulator.respondNext({ status: 400, body: { status: 400, error: "Bad Request", response: { message: [quoted] } } });
    const answered = await failure(client.observe(withId));
    emulator.respondNext({ status: 200, body: { instance: { instanceName: NAME, state: "open" } } });
    emulator.respondNext({ status: 200, body: { error: true, message: quoted } });
    const refused = await failure(client.restart(withId, NAME));
    for (const error of [answered, refused]) {
      expect(error.message).toContain("refused");
      expect(error.message).not.toContain(token);
      expect(error.message).not.toContain(KEY);
    }
  });
});

describe("health", () => {
  it("reports Evolution's version from / and checks the key with an authenticated look", async () => {
    expect(await client.checkHealth()).toEqual({ version: "2.3.6" });
    expect(await kindOf(clientWith("wrong-key").checkHealth())).toBe("InvalidCredentials");
  });

  it("refuses an instance's token as the provider key (creating instances needs the global key)", async () => {
    await client.create(ref);
    expect(await kindOf(clientWith(emulator.instance(NAME)?.token as string).checkHealth())).toBe("InvalidCredentials");
  });

  it("maps a proxy's 429 to RateLimited with its Retry-After", async () => {
    emulator.respondNext({ status: 429, headers: { "Retry-After": "7" }, body: { status: 429, error: "Too Many Requests", response: { message: "slow down" } } });
    const error = await failure(client.observe(ref));
    expect([error.kind, error.retryAfterMs]).toEqual(["RateLimited", 7000]);
  });
});

describe("linking", () => {
  it("shows no QR while connect answered {count: 0}, then the code Evolution issued", async () => {
    await start({ firstQrDelayMs: 3000 });
    await client.create(ref);
    await client.connect(withId, NAME);
    expect((await client.observe(ref))?.phase).toBe("Starting");
    expect(await client.fetchQr(withId, NAME)).toBeNull();
    clock.advance(3000);
    expect((await client.observe(ref))?.phase).toBe("ScanQR");
    const qr = await client.fetchQr(withId, NAME);
    // The raw payload, which the operator draws; Evolution's own image is used only when it sends no payload.
    expect(qr?.png).toBeUndefined();
    expect(qr?.text).toBe(emulator.currentQr(NAME));
    expect(qr?.validForMs).toBe(EVOLUTION_QR_TIMEOUT_MS);
  });

  it("follows the rotation, and reads the instance closed by Evolution's QR limit as Disconnected", async () => {
    await start({ qrLimit: 2 });
    await client.create(ref);
    await client.connect(withId, NAME);
    const first = (await client.fetchQr(withId, NAME))?.text;
    clock.advance(EVOLUTION_QR_TIMEOUT_MS);
    const second = (await client.fetchQr(withId, NAME))?.text;
    expect(second).not.toBe(first);
    clock.advance(EVOLUTION_QR_TIMEOUT_MS);
    expect((await client.observe(ref))?.phase).toBe("Disconnected");
    expect(await client.fetchQr(withId, NAME)).toBeNull();
  });

  it("reports Connected with the phone once linked, and no phone after a logout although Evolution keeps ownerJid", async () => {
    await linked();
    expect(await client.observe(ref)).toMatchObject({ phase: "Connected", phoneNumber: PHONE });
    expect(await client.fetchQr(withId, NAME)).toBeNull();
    await client.logout(withId, NAME);
    const out = await client.observe(ref);
    expect(out?.phase).toBe("Disconnected");
    expect(out?.phoneNumber).toBeUndefined();
    expect(emulator.instance(NAME)?.ownerJid).toBe(`${PHONE}@s.whatsapp.net`);
  });

  it("starts a session with the pairing number when spec.pairing asks for a code, and returns that code", async () => {
    await client.create(ref);
    const pairing = { ...withId, pairingPhoneNumber: PHONE };
    await client.connect(pairing, NAME);
    expect(emulator.instance(NAME)?.pairingNumber).toBe(PHONE);
    expect(await client.requestPairingCode(pairing, NAME, PHONE)).toMatch(/^[A-Z0-9]{8}$/);
  });

  it("says WrongState until Evolution issued the pairing code, then gives it", async () => {
    await start({ firstQrDelayMs: 3000 });
    await client.create(ref);
    expect(await kindOf(client.requestPairingCode(withId, NAME, PHONE))).toBe("WrongState");
    clock.advance(4000);
    expect(await client.requestPairingCode(withId, NAME, PHONE)).toMatch(/^[A-Z0-9]{8}$/);
  });

  it("restarts a session started for scanning with the number, so a pairing code comes", async () => {
    await client.create(ref);
    await client.connect(withId, NAME);
    expect(emulator.instance(NAME)?.pairingNumber).toBeUndefined();
    expect(await client.requestPairingCode(withId, NAME, PHONE)).toMatch(/^[A-Z0-9]{8}$/);
    expect(emulator.instance(NAME)?.pairingNumber).toBe(PHONE);
  });
});

describe("restart, logout and Evolution's 200 {error: true}", () => {
  it("restarts a linked session without a new scan", async () => {
    await linked();
    await client.restart(withId, NAME);
    expect((await client.observe(ref))?.phase).toBe("Starting");
    clock.advance(1000);
    expect(await client.observe(ref)).toMatchObject({ phase: "Connected", phoneNumber: PHONE });
    expect(emulator.callsTo("POST", /\/instance\/restart\//)).toHaveLength(1);
  });

  it("starts a closed instance instead of asking Evolution to restart it (which answers {error: true})", async () => {
    await client.create(ref);
    await client.restart(withId, NAME);
    expect(emulator.callsTo("POST", /\/instance\/restart\//)).toHaveLength(0);
    expect(emulator.instance(NAME)?.state).toBe("connecting");
  });

  it("takes a 200 {error: true} for WrongState, with Evolution's reason", async () => {
    await linked();
    emulator.respondNext({ status: 200, body: { instance: { instanceName: NAME, state: "open" } } });
    emulator.respondNext({ status: 200, body: { error: true, message: "Error: Connection Closed" } });
    const error = await failure(client.restart(withId, NAME));
    expect([error.kind, error.message]).toEqual(["WrongState", "evolution refused restart: Error: Connection Closed"]);
  });

  it("takes logout of a closed instance (Evolution's 400 'not connected') as done", async () => {
    await client.create(ref);
    await client.logout(withId, NAME);
    expect(emulator.callsTo("DELETE", /\/instance\/logout\//)[0]?.status).toBe(400);
  });

  it("refuses disconnect without a request: Evolution cannot stop a session and keep its link", async () => {
    await client.create(ref);
    const before = emulator.calls.length;
    expect(await kindOf(client.disconnect(withId, NAME))).toBe("Rejected");
    expect(emulator.calls.length).toBe(before);
  });
});

describe("webhooks", () => {
  const HOOK = "https://hooks.example.com/wa";

  it("sends every event by name when spec.webhook names none, never an enabled webhook without events, and never per-event URLs", async () => {
    await client.create(ref);
    const wanted = { ...withId, webhook: { url: HOOK, events: [] } };
    expect((await client.observe(wanted))?.webhookInSync).toBe(false);
    await client.configureWebhook(wanted, NAME);
    expect(emulator.instance(NAME)?.webhook).toMatchObject({ url: HOOK, enabled: true, events: [...EVOLUTION_WEBHOOK_EVENTS] });
    expect((await client.observe(wanted))?.webhookInSync).toBe(true);
    expect((await client.observe({ ...wanted, webhook: { url: HOOK, events: ["CONNECTION_UPDATE"] } }))?.webhookInSync).toBe(false);
  });

  it("wires the operator's receiver with the token header when no spec.webhook takes the one webhook", async () => {
    await client.create(ref);
    const events = { url: "http://operator:8080/provider-events/namespaced/support/evo", hmacKey: "ab".repeat(32) };
    const target = { ...withId, providerEvents: events };
    await client.configureWebhook(target, NAME);
    const stored = emulator.instance(NAME)?.webhook;
    expect(stored?.url).toBe(`${events.url}?instance=support%2Fsupport-line`);
    expect(stored?.events).toEqual(["CONNECTION_UPDATE", "QRCODE_UPDATED", "LOGOUT_INSTANCE"]);
    expect(stored?.headers?.[EVOLUTION_EVENTS_TOKEN_HEADER]).toBe(evolutionEventsToken(events.hmacKey));
    expect(JSON.stringify(stored)).not.toContain(events.hmacKey);
    expect((await client.observe(target))?.webhookInSync).toBe(true);
    // spec.webhook takes the one webhook over.
    expect((await client.observe({ ...target, webhook: { url: HOOK, events: [] } }))?.webhookInSync).toBe(false);
  });

  it("disables only a webhook it wired, and leaves somebody else's on an adopted instance alone", async () => {
    emulator.seed("sales");
    const adopted = { ...ref, providerInstanceId: "sales" };
    await fetch(`${baseUrl}/webhook/set/sales`, {
      method: "POST",
      headers: { apikey: KEY, "Content-Type": "application/json" },
      body: JSON.stringify({ webhook: { enabled: true, url: "https://theirs.example.com", events: ["MESSAGES_UPSERT"] } }),
    });
    expect((await client.observe(adopted))?.webhookInSync).toBe(true);
    await client.configureWebhook(adopted, "sales");
    expect(emulator.instance("sales")?.webhook?.enabled).toBe(true);
    await client.configureWebhook({ ...adopted, webhook: { url: HOOK, events: ["MESSAGES_UPSERT"] } }, "sales");
    const unwired = { ...adopted, previousWebhookUrl: HOOK };
    expect((await client.observe(unwired))?.webhookInSync).toBe(false);
    await client.configureWebhook(unwired, "sales");
    expect(emulator.instance("sales")?.webhook).toMatchObject({ url: HOOK, enabled: false, events: [] });
    expect((await client.observe(unwired))?.webhookInSync).toBe(true);
  });
});
