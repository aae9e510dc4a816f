/**
 * The receiver's decisions without a server: which signature it accepts, and which
 * instance an event is about, as each provider module says.
 */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { pino } from "pino";
import type { InstanceObject } from "../controllers/context.ts";
import type { KubeClient } from "../kube/client.ts";
import { EVOLUTION_EVENTS_TOKEN_HEADER, evolutionEventsToken } from "../providers/evolution/events.ts";
import { ProviderEventReceiver } from "./provider-events.ts";

const KEY = "events-key-0123456789abcdef0123456789abcdef";
const ref = { kind: "WhatsAppProvider", namespace: "ns", name: "p" } as const;

function receiver(type: string, instances: InstanceObject[]) {
  const poked: string[] = [];
  const kube = { find: async () => ({ metadata: { name: "p-events" }, data: { "hmac-key": Buffer.from(KEY).toString("base64") } }) } as unknown as KubeClient;
  const subject = new ProviderEventReceiver({
    kube,
    log: pino({ level: "silent" }),
    operatorNamespace: "ops",
    instances: { get: (key) => instances.find((item) => `${item.metadata.namespace}/${item.metadata.name}` === key), list: () => instances },
    providerType: () => type,
    poke: async (namespace, name) => {
      poked.push(`${namespace}/${name}`);
    },
  });
  return { subject, poked };
}

const instance = (name: string, providerInstanceId?: string): InstanceObject => ({
  metadata: { name, namespace: "ns" },
  spec: { providerRef: { name: "p" } },
  ...(providerInstanceId ? { status: { providerInstanceId } } : {}),
});

const sign = (algorithm: "sha256" | "sha512", body: Buffer) => createHmac(algorithm, KEY).update(body).digest("hex");

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
    const body = Buffer.from(JSON.stringify({ event: "session.status", session: "ns__line", metadata: { "wa-operator.io/instance": "ns/line" } }));
    expect((await subject.handle(ref, { "x-webhook-hmac": sign("sha256", body) }, body)).status).toBe(401);
    expect((await subject.handle(ref, { "x-webhook-hmac": sign("sha512", body) }, body)).status).toBe(202);
    expect(poked).toEqual(["ns/line"]);
  });

  it("answers 404 for a provider type that sends no lifecycle events", async () => {
    const { subject } = receiver("wapiz", []);
    expect((await subject.handle(ref, {}, Buffer.from("{}"))).status).toBe(404);
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
