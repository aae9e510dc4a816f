/**
 * spec.session through each client that honours it, against its emulator: what the module
 * wants is applied, read back equal (no drift), and a change made at the provider is drift
 * until it is applied again. The module's hook is the only judge of equality.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROVIDER_MODULES } from "../../src/providers/registry.ts";
import type { SessionSettings } from "../../src/providers/session-settings.ts";
import type { InstanceRef, ObservedSession, ProviderClient, ProviderType } from "../../src/providers/types.ts";
import { CloudApiEmulator } from "../emulators/cloud-api/emulator.ts";
import { EvolutionEmulator } from "../emulators/evolution/emulator.ts";
import { WahaEmulator } from "../emulators/waha/emulator.ts";
import { contractLimiter } from "./provider-contract.ts";

const LIMIT = { requestsPerSecond: 10_000, burst: 10_000 };
const REF = { namespace: "contract", name: "desk", uid: "uid-session-1" } as const;
const PROXY = { url: "http://proxy.example:3128", username: "user", password: "secret-pass" };

function clientOf(type: ProviderType, url: string, apiKey: string): ProviderClient {
  return PROVIDER_MODULES[type].createClient({ type, url, apiKey, rateLimit: LIMIT, timeoutMs: 5000 }, { limiter: contractLimiter() });
}

/** The module's desired config on a ref, as observe hands it to the client. */
function withSettings(type: ProviderType, ref: InstanceRef, settings: SessionSettings): InstanceRef {
  return { ...ref, sessionConfig: PROVIDER_MODULES[type].session?.desired(settings) };
}

/** What the provider holds now: from the session look, or the client's own read. */
async function observedConfig(type: ProviderType, client: ProviderClient, ref: InstanceRef, id: string): Promise<unknown> {
  if (PROVIDER_MODULES[type].session?.observedWith === "read") return client.readSessionConfig?.(ref, id);
  return ((await client.observe(ref)) as ObservedSession).sessionConfig;
}

async function drift(type: ProviderType, client: ProviderClient, ref: InstanceRef, id: string): Promise<readonly string[]> {
  const hook = PROVIDER_MODULES[type].session;
  if (!hook) throw new Error(`${type} has no session hook`);
  return hook.drift(await observedConfig(type, client, ref, id), ref.sessionConfig);
}

describe("WAHA session settings round-trip", () => {
  const waha = new WahaEmulator({ apiKey: "waha-session-key", startDelayMs: 0 });
  let client: ProviderClient;
  beforeAll(async () => {
    client = clientOf("waha", await waha.start(), "waha-session-key");
  });
  afterAll(() => waha.stop());

  it("creates a session with its settings, then repairs a change with one PUT", async () => {
    const ref = withSettings("waha", REF, { deviceName: "Desk", proxy: PROXY, ignore: { groups: true }, alwaysOnline: false });
    const session = await client.create(ref);
    expect(await drift("waha", client, ref, session.id)).toEqual([]);
    waha.changeConfigBehindBack(session.id, (config) => ({ ...config, ignore: { groups: false }, proxy: null }));
    expect(await drift("waha", client, ref, session.id)).toEqual(["proxy", "ignore.groups"]);
    const puts = waha.callsTo("PUT", /^\/api\/sessions\//).length;
    await client.applySessionConfig?.(ref, session.id);
    expect(waha.callsTo("PUT", /^\/api\/sessions\//).length - puts).toBe(1);
    expect(await drift("waha", client, ref, session.id)).toEqual([]);
    // Our ownership record and whatever else the config held survive the write.
    expect(waha.sessions().find((s) => s.name === session.id)?.config?.metadata?.["wa-operator.io/uid"]).toBe(REF.uid);
  });
});

describe("Evolution session settings round-trip", () => {
  const evolution = new EvolutionEmulator({ globalKey: "evolution-session-key" });
  let client: ProviderClient;
  beforeAll(async () => {
    client = clientOf("evolution", await evolution.start(), "evolution-session-key");
  });
  afterAll(() => evolution.stop());

  it("applies settings and proxy, keeps the flags spec.session leaves unset, and repairs a change", async () => {
    const ref = withSettings("evolution", REF, { rejectCalls: { enabled: true, message: "Busy" }, readReceipts: true, proxy: PROXY });
    const session = await client.create(ref);
    evolution.changeSettingsBehindBack(session.id, { syncFullHistory: true });
    expect(await drift("evolution", client, ref, session.id)).toEqual(["proxy", "rejectCalls", "readReceipts"]);
    await client.applySessionConfig?.(ref, session.id);
    expect(await drift("evolution", client, ref, session.id)).toEqual([]);
    expect(evolution.sessionSettings(session.id)?.settings).toMatchObject({ rejectCall: true, msgCall: "Busy", readMessages: true, syncFullHistory: true });
    evolution.changeSettingsBehindBack(session.id, { msgCall: "Call me" });
    expect(await drift("evolution", client, ref, session.id)).toEqual(["rejectCalls"]);
  });

  it("reports a proxy Evolution cannot reach as refused", async () => {
    const failing = new EvolutionEmulator({ globalKey: "evolution-session-key", failingProxyHosts: ["proxy.example"] });
    const other = clientOf("evolution", await failing.start(), "evolution-session-key");
    try {
      const ref = withSettings("evolution", REF, { proxy: PROXY });
      const session = await other.create(ref);
      await expect(other.applySessionConfig?.(ref, session.id)).rejects.toMatchObject({ message: expect.stringContaining("Invalid proxy") });
    } finally {
      await failing.stop();
    }
  });
});

describe("Cloud API business profile round-trip", () => {
  const NUMBER = "106540352249101";
  const graph = new CloudApiEmulator({ token: "graph-session-token", numbers: [{ id: NUMBER, wabaId: "102290129349101", displayPhoneNumber: "+1 555-555-0911", status: "CONNECTED" }] });
  let client: ProviderClient;
  beforeAll(async () => {
    client = clientOf("cloud_api", await graph.start(), "graph-session-token");
  });
  afterAll(() => graph.stop());

  it("sets only the fields spec.session names, and finds a change made in WhatsApp Manager", async () => {
    graph.number(NUMBER).profile = { address: "1 Main St" };
    const ref = withSettings("cloud_api", { ...REF, cloudApi: { phoneNumberId: NUMBER } }, { businessProfile: { about: "Open 9-5", websites: ["https://shop.example"], vertical: "RETAIL" } });
    expect(await drift("cloud_api", client, ref, NUMBER)).toEqual(["businessProfile"]);
    await client.applySessionConfig?.(ref, NUMBER);
    expect(await drift("cloud_api", client, ref, NUMBER)).toEqual([]);
    expect(graph.number(NUMBER).profile).toEqual({ address: "1 Main St", about: "Open 9-5", websites: ["https://shop.example"], vertical: "RETAIL" });
    graph.number(NUMBER).profile = { ...graph.number(NUMBER).profile, vertical: "OTHER" };
    expect(await drift("cloud_api", client, ref, NUMBER)).toEqual(["businessProfile"]);
  });
});
