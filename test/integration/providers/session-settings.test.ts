/**
 * spec.session round-trips on the WAHA, Evolution and Cloud API emulators: applied settings
 * reach the provider's config, a change made there behind the operator's back is repaired,
 * and a change of the spec restarts a WAHA session exactly once. One operator, one namespace,
 * three providers; the resync interval is short so Evolution and Graph, whose settings
 * have a read of their own, are looked at again within the test.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Operator } from "../../../src/operator.ts";
import { CloudApiEmulator } from "../../emulators/cloud-api/emulator.ts";
import { EvolutionEmulator } from "../../emulators/evolution/emulator.ts";
import { WahaEmulator } from "../../emulators/waha/emulator.ts";
import { condition, eventsFor, eventually, getInstance, kubeClient } from "../../support/kube.ts";
import { apply, createSecret, instanceManifest, patchInstance, phaseOf, providerIdOf, severalPasses, stageProvider } from "./support.ts";

const WAHA_KEY = "waha-session-settings-key";
const EVOLUTION_KEY = "evolution-session-settings-key";
const TOKEN = "EAAGsessionsettingstoken0123456789";
const NUMBER = { id: "106540352249001", waba: "102290129349001" };
const kube = kubeClient();
const waha = new WahaEmulator({ apiKey: WAHA_KEY, startDelayMs: 0 });
const evolution = new EvolutionEmulator({ globalKey: EVOLUTION_KEY });
const graph = new CloudApiEmulator({ token: TOKEN, numbers: [{ id: NUMBER.id, wabaId: NUMBER.waba, displayPhoneNumber: "+1 555-555-0901", pin: "135790", status: "CONNECTED" }] });
let namespace: string;
let operator: Operator;

const provider = (name: string, type: string, url: string, secret: string) =>
  apply(namespace, `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: ${name}}
spec: {type: ${type}, url: "${url}", credentialsSecretRef: {name: ${secret}, key: api-key}}`);

beforeAll(async () => {
  const wahaUrl = await waha.start();
  ({ namespace, operator } = await stageProvider({
    type: "waha",
    name: "waha",
    prefix: "session-settings",
    url: wahaUrl,
    credentials: { secret: "waha-key", value: WAHA_KEY },
    secrets: { "proxy-login": { username: "proxy-user", password: "proxy-pass-1" }, "evolution-key": { "api-key": EVOLUTION_KEY }, "graph-token": { "api-key": TOKEN }, "wa-pin": { pin: "135790" } },
    settings: { resync: "3s" },
  }));
  await provider("evolution", "evolution", await evolution.start(), "evolution-key");
  await provider("meta", "cloud_api", await graph.start(), "graph-token");
});

afterAll(async () => {
  await operator?.stop();
  await Promise.all([waha.stop(), evolution.stop(), graph.stop()]);
});

const wahaConfig = (id: string) => waha.sessions().find((session) => session.name === id)?.config;
const putsTo = (id: string) => waha.calls.filter((call) => call.method === "PUT" && call.path === `/api/sessions/${encodeURIComponent(id)}`).length;
const bootsOf = (id: string) => waha.sessions().find((session) => session.name === id)?.boots ?? 0;

describe("spec.session on WAHA", () => {
  let id: string;

  it("creates the session with the declared config: device, browser, proxy with its Secret's credentials, ignore, markOnline", async () => {
    await apply(
      namespace,
      instanceManifest(
        "desk",
        "waha",
        `  session:
    deviceName: Support desk
    browserName: Firefox
    proxy: {url: "http://proxy.example:3128", credentialsSecretRef: {name: proxy-login}}
    ignore: {groups: true, status: true}
    alwaysOnline: false`,
      ),
    );
    const scanning = await phaseOf(kube, namespace, "desk", "ScanQR");
    id = scanning.status?.providerInstanceId as string;
    waha.scan(id, "5511988887777");
    await phaseOf(kube, namespace, "desk", "Connected");
    expect(wahaConfig(id)).toMatchObject({
      client: { deviceName: "Support desk", browserName: "Firefox" },
      proxy: { server: "proxy.example:3128", username: "proxy-user", password: "proxy-pass-1" },
      ignore: { groups: true, status: true },
      noweb: { markOnline: false },
    });
    // Created with it: no PUT was needed, so nothing restarted.
    expect(putsTo(id)).toBe(0);
    // The proxy password reaches the provider and nothing a user reads.
    const seen = JSON.stringify([await getInstance(kube, namespace, "desk"), await eventsFor(kube, namespace, "desk")]);
    expect(seen).not.toContain("proxy-pass-1");
  });

  it("repairs a config changed behind the operator's back, and says the PUT restarts the session", async () => {
    waha.changeConfigBehindBack(id, (config) => ({ ...config, client: { deviceName: "Hijacked" } }));
    await eventually("device name repaired", async () => (wahaConfig(id)?.client?.["deviceName"] === "Support desk" ? true : undefined));
    const restarted = await eventually("a Restarted Event naming the setting", async () =>
      (await eventsFor(kube, namespace, "desk")).find((event) => event.reason === "Restarted" && event.message.includes("spec.session.deviceName")),
    );
    expect(restarted.type).toBe("Normal");
    expect(restarted.message).toContain("restarts the waha session");
  });

  it("applies a spec change with exactly one PUT, so the session restarts once", async () => {
    await phaseOf(kube, namespace, "desk", "Connected");
    await severalPasses();
    const puts = putsTo(id);
    const boots = bootsOf(id);
    await patchInstance(namespace, "desk", { spec: { session: { deviceName: "Front desk" } } });
    await eventually("new device name applied", async () => (wahaConfig(id)?.client?.["deviceName"] === "Front desk" ? true : undefined));
    await phaseOf(kube, namespace, "desk", "Connected");
    await severalPasses();
    expect(putsTo(id) - puts).toBe(1);
    expect(bootsOf(id) - boots).toBe(1);
    // The settings the change left alone are still there.
    expect(wahaConfig(id)).toMatchObject({ client: { browserName: "Firefox" }, ignore: { groups: true } });
  });

  it("refuses a setting WAHA cannot carry out, naming the field", async () => {
    await apply(namespace, instanceManifest("caller", "waha", "  session: {rejectCalls: {message: Busy}}"));
    const stalled = await eventually("Stalled InvalidSpec", async () => {
      const object = await getInstance(kube, namespace, "caller");
      const stalled = object ? condition(object, "Stalled") : undefined;
      return stalled?.status === "True" ? stalled : undefined;
    });
    expect(stalled).toMatchObject({ reason: "InvalidSpec", message: expect.stringContaining("spec.session.rejectCalls is not supported by waha") });
    expect(waha.sessions().some((session) => session.name.endsWith("caller"))).toBe(false);
  });
});

describe("spec.session on Evolution", () => {
  let id: string;

  it("sets the instance's settings and proxy", async () => {
    await apply(
      namespace,
      instanceManifest(
        "evo",
        "evolution",
        `  session:
    rejectCalls: {message: "Busy, please write"}
    ignore: {groups: true}
    alwaysOnline: true
    readReceipts: true
    proxy: {url: "socks5://proxy.example:1080", credentialsSecretRef: {name: proxy-login}}`,
      ),
    );
    id = await providerIdOf(kube, namespace, "evo");
    const settings = await eventually("settings applied", async () => {
      const current = evolution.sessionSettings(id);
      return current?.settings.rejectCall && current.proxy?.enabled ? current : undefined;
    });
    expect(settings.settings).toMatchObject({ rejectCall: true, msgCall: "Busy, please write", groupsIgnore: true, alwaysOnline: true, readMessages: true, readStatus: false });
    expect(settings.proxy).toEqual({ enabled: true, protocol: "socks5", host: "proxy.example", port: "1080", username: "proxy-user", password: "proxy-pass-1" });
  });

  it("repairs a setting changed in Evolution's manager at the next resync", async () => {
    evolution.changeSettingsBehindBack(id, { rejectCall: false, alwaysOnline: false });
    await eventually("settings repaired", async () => {
      const current = evolution.sessionSettings(id)?.settings;
      return current?.rejectCall === true && current.alwaysOnline === true ? true : undefined;
    });
    const configured = (await eventsFor(kube, namespace, "evo")).filter((event) => event.reason === "SessionConfigured");
    expect(configured.at(-1)?.message).toContain("spec.session.rejectCalls");
  });

  it("applies a spec change", async () => {
    await patchInstance(namespace, "evo", { spec: { session: { readReceipts: false } } });
    await eventually("readMessages off", async () => (evolution.sessionSettings(id)?.settings.readMessages === false ? true : undefined));
  });
});

describe("spec.session on the Cloud API", () => {
  it("sets the business profile, and repairs it when changed in WhatsApp Manager", async () => {
    await apply(
      namespace,
      instanceManifest(
        "shop",
        "meta",
        `  cloudApi: {phoneNumberId: "${NUMBER.id}", wabaId: "${NUMBER.waba}", pinSecretRef: {name: wa-pin, key: pin}}
  session:
    businessProfile: {about: "Open 9-5", websites: ["https://shop.example"], vertical: RETAIL, email: shop@example.com}`,
      ),
    );
    await eventually("profile applied", async () => (graph.number(NUMBER.id).profile["about"] === "Open 9-5" ? true : undefined));
    expect(graph.number(NUMBER.id).profile).toEqual({ about: "Open 9-5", websites: ["https://shop.example"], vertical: "RETAIL", email: "shop@example.com" });
    graph.number(NUMBER.id).profile = { ...graph.number(NUMBER.id).profile, about: "Closed for ever" };
    await eventually("profile repaired", async () => (graph.number(NUMBER.id).profile["about"] === "Open 9-5" ? true : undefined));
  });

  it("refuses a device name on the Cloud API", async () => {
    await patchInstance(namespace, "shop", { spec: { session: { deviceName: "Desk" } } });
    const instance = await eventually("Stalled", async () => {
      const object = await phaseOf(kube, namespace, "shop", "Connected");
      return condition(object, "Stalled")?.status === "True" ? object : undefined;
    });
    expect(condition(instance, "Stalled")?.message).toContain("spec.session.deviceName is not supported by cloud_api");
  });
});
