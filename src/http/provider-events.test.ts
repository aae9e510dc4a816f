/**
 * The receiver's decisions without a server: which signature it accepts, which instance
 * an event is about, as each provider module says, and what it refuses to spend work on.
 */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { pino } from "pino";
import type { InstanceObject } from "../api/objects.ts";
import { signedHintQuery } from "../providers/event-hint.ts";
import { EVOLUTION_EVENTS_TOKEN_HEADER, evolutionEventsToken } from "../providers/evolution/events.ts";
import { ProviderEventReceiver, REPLAY_WINDOW_MS } from "./provider-events.ts";

const KEY = "events-key-0123456789abcdef0123456789abcdef";
const NOW = Date.parse("2026-12-01T10:00:00Z");
const ref = { kind: "WhatsAppProvider", namespace: "ns", name: "p" } as const;

/** `key` null: the provider has no events key. */
function receiver(type: string | undefined, instances: InstanceObject[], key: string | null = KEY) {
  const poked: string[] = [];
  const keyReads: string[] = [];
  let now = NOW;
  const subject = new ProviderEventReceiver({
    log: pino({ level: "silent" }),
    instances: { get: (id) => instances.find((item) => `${item.metadata.namespace}/${item.metadata.name}` === id), list: () => instances },
    providerType: () => type,
    eventsKey: async (provider) => {
      keyReads.push(provider.name);
      return key ?? undefined;
    },
    poke: (namespace, name) => void poked.push(`${namespace}/${name}`),
    now: () => now,
  });
  return { subject, poked, keyReads, advance: (ms: number) => (now += ms) };
}

const instance = (name: string, providerInstanceId?: string): InstanceObject => ({
  metadata: { name, namespace: "ns" },
  spec: { providerRef: { name: "p" } },
  ...(providerInstanceId ? { status: { providerInstanceId } } : {}),
});

const sign = (algorithm: "sha256" | "sha512", body: Buffer) => createHmac(algorithm, KEY).update(body).digest("hex");
const wahaEvent = (fields: Record<string, unknown> = {}) =>
  Buffer.from(JSON.stringify({ id: "evt_01", timestamp: NOW, event: "session.status", session: "ns__line", metadata: { "wa-operator.io/instance": "ns/line" }, ...fields }));

describe("provider events", () => {
  it.each(["x-wappfy-signature", "x-webhook-signature", "x-signature", "x-hub-signature-256"])(
    "accepts a Wappfy delivery signed in %s, a header Wappfy's docs leave open",
    async (header) => {
      const { subject, poked } = receiver("wappfy", [instance("line", "inst_1")]);
      const body = Buffer.from(JSON.stringify({ event: "instance.connected", instance_id: "inst_1" }));
      const answer = await subject.handle(ref, { [header]: `sha256=${sign("sha256", body)}` }, body);
      expect(answer.status).toBe(202);
      expect(poked).toEqual(["ns/line"]);
    },
  );

  it("finds a WAHA session's instance by the metadata recorded with it, and refuses a wrong signature", async () => {
    const { subject, poked } = receiver("waha", [instance("line")]);
    const body = wahaEvent();
    expect((await subject.handle(ref, { "x-webhook-hmac": sign("sha256", body) }, body)).status).toBe(401);
    expect((await subject.handle(ref, { "x-webhook-hmac": sign("sha512", body) }, body)).status).toBe(202);
    expect(poked).toEqual(["ns/line"]);
  });

  it("answers 404 for a provider type that sends no lifecycle events", async () => {
    const { subject } = receiver("wapiz", []);
    expect((await subject.handle(ref, {}, Buffer.from("{}"))).status).toBe(404);
  });
});

describe("what the receiver refuses to spend work on", () => {
  it("reads no key for a provider it does not have, nor for a request without a signature", async () => {
    const unknown = receiver(undefined, []);
    expect(await unknown.subject.admit(ref, { "x-webhook-hmac": "00" })).toEqual({ refused: { status: 404, body: "unknown provider" } });
    expect(unknown.keyReads).toEqual([]);
    const unsigned = receiver("waha", []);
    expect(await unsigned.subject.admit(ref, {})).toEqual({ refused: { status: 401, body: "missing signature" } });
    expect(unsigned.keyReads).toEqual([]);
  });

  it("remembers that a provider has no key: a stream of forged requests reads it once per window", async () => {
    const { subject, keyReads, advance } = receiver("waha", [], null);
    for (let i = 0; i < 50; i++) expect("refused" in (await subject.admit(ref, { "x-webhook-hmac": "ab".repeat(64) }))).toBe(true);
    expect(keyReads).toEqual(["p"]);
    advance(10_001);
    await subject.admit(ref, { "x-webhook-hmac": "ab".repeat(64) });
    expect(keyReads).toEqual(["p", "p"]);
  });

  it("refuses a signed WAHA event sent longer ago than the replay window", async () => {
    const { subject, poked } = receiver("waha", [instance("line")]);
    const old = wahaEvent({ id: "evt_old", timestamp: NOW - REPLAY_WINDOW_MS - 1 });
    expect(await subject.handle(ref, { "x-webhook-hmac": sign("sha512", old) }, old)).toEqual({ status: 400, body: "event outside the replay window" });
    const fresh = wahaEvent({ id: "evt_fresh", timestamp: NOW - 1000 });
    expect((await subject.handle(ref, { "x-webhook-hmac": sign("sha512", fresh) }, fresh)).status).toBe(202);
    expect(poked).toEqual(["ns/line"]);
  });

  it("acts once on an event delivered twice (WAHA retries and duplicates carry the same envelope id)", async () => {
    const { subject, poked } = receiver("waha", [instance("line")]);
    const body = wahaEvent({ id: "evt_dup" });
    const headers = { "x-webhook-hmac": sign("sha512", body) };
    expect(await subject.handle(ref, headers, body)).toEqual({ status: 202, body: "accepted" });
    expect(await subject.handle(ref, headers, body)).toEqual({ status: 202, body: "already seen" });
    expect(poked).toEqual(["ns/line"]);
  });

  it("forgets the oldest event ids once it holds 4096, so memory stays bounded", async () => {
    const { subject, poked } = receiver("waha", [instance("line")]);
    const deliver = async (id: string) => {
      const body = wahaEvent({ id });
      return (await subject.handle(ref, { "x-webhook-hmac": sign("sha512", body) }, body)).body;
    };
    for (let i = 0; i <= 4096; i++) await deliver(`evt_${i}`);
    expect(await deliver("evt_4096")).toBe("already seen");
    expect(await deliver("evt_0")).toBe("accepted");
    expect(poked.length).toBe(4098);
  });

  it("follows a ?instance= routing hint only when the operator signed it; an altered one is ignored", async () => {
    const { subject, poked } = receiver("wappfy", [instance("line", "inst_1"), instance("other", "inst_2")]);
    const body = Buffer.from(JSON.stringify({ event: "instance.connected", instance_id: "inst_1" }));
    const headers = { "x-wappfy-signature": sign("sha256", body) };
    await subject.handle(ref, headers, body, new URLSearchParams("instance=ns%2Fother"));
    const forged = new URLSearchParams(signedHintQuery(KEY, "ns/line"));
    forged.set("instance", "ns/other");
    await subject.handle(ref, headers, body, forged);
    expect(poked).toEqual(["ns/line", "ns/line"]);
    await subject.handle(ref, headers, body, new URLSearchParams(signedHintQuery(KEY, "ns/other")));
    expect(poked).toEqual(["ns/line", "ns/line", "ns/other"]);
  });
});

describe("provider events authenticated by a token header (Evolution)", () => {
  const body = Buffer.from(JSON.stringify({ event: "connection.update", instance: "ns.line [uid-1]", apikey: "INSTANCE-TOKEN" }));

  it("accepts a delivery carrying the token derived from the provider's events key, and finds the instance by its name", async () => {
    const { subject, poked } = receiver("evolution", [instance("line", "ns.line [uid-1]")]);
    const answer = await subject.handle(ref, { [EVOLUTION_EVENTS_TOKEN_HEADER]: evolutionEventsToken(KEY) }, body);
    expect(answer.status).toBe(202);
    expect(poked).toEqual(["ns/line"]);
  });

  it("refuses a delivery without the token, or with the events key itself in its place", async () => {
    const { subject, poked } = receiver("evolution", [instance("line", "ns.line [uid-1]")]);
    expect((await subject.handle(ref, {}, body)).status).toBe(401);
    expect((await subject.handle(ref, { [EVOLUTION_EVENTS_TOKEN_HEADER]: KEY }, body)).status).toBe(401);
    // An HMAC of the body is not what this provider presents.
    expect((await subject.handle(ref, { [EVOLUTION_EVENTS_TOKEN_HEADER]: sign("sha256", body) }, body)).status).toBe(401);
    expect(poked).toEqual([]);
  });
});
