/**
 * A WhatsAppInstance on Meta's Cloud API, end to end: the real API server, the operator in
 * this process, and the Graph emulator on loopback. A Cloud API number is registered with
 * its two-step PIN instead of scanned; it can be deregistered (LoggedOut) but not stopped
 * or restarted, and register/deregister share a budget of 10 per 72 h (error 133016).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Operator } from "../../../src/operator.ts";
import { CloudApiEmulator, REGISTRATION_ATTEMPTS } from "../../emulators/cloud-api/emulator.ts";
import { condition, eventsFor, eventually, getInstance, instanceWhere, kubeClient, kubectl, kubectlOk } from "../../support/kube.ts";
import { apply, eventNamed, eventReasons, expectUnsupported, instanceManifest, patchInstance, readyIn, row, secretData, severalPasses, stageProvider } from "./support.ts";

const TOKEN = "EAAGintegrationtoken0123456789abcdef";
const PIN = "246810";
const WABA = "102290129340398";
const HOOK_WABA = "102290129340399";
/** One business number per test story, all PENDING (added in WhatsApp Manager, never registered). */
const NUMBERS = {
  link: { id: "106540352240001", display: "+1 555-555-0101" },
  coded: { id: "106540352240002", display: "+1 555-555-0102" },
  misnamed: { id: "106540352240003", display: "+1 555-555-0103" },
  hooked: { id: "106540352240004", display: "+1 555-555-0104" },
  blocked: { id: "106540352240005", display: "+1 555-555-0105" },
  neighbour: { id: "106540352240006", display: "+1 555-555-0106" },
  gone: { id: "106540352240007", display: "+1 555-555-0107" },
} as const;
/** Numbers of the second WABA, where the webhook stories run. */
const HOOK_NUMBERS: readonly string[] = ["hooked", "neighbour"];
const HOUR = 3_600_000;
const kube = kubeClient();
const graph = new CloudApiEmulator({
  token: TOKEN,
  numbers: Object.entries(NUMBERS).map(([name, number]) => ({
    id: number.id,
    wabaId: HOOK_NUMBERS.includes(name) ? HOOK_WABA : WABA,
    displayPhoneNumber: number.display,
    pin: PIN,
  })),
});
let namespace: string;
let operator: Operator;

beforeAll(async () => {
  const url = await graph.start();
  ({ namespace, operator } = await stageProvider({
    type: "cloud_api",
    name: "meta",
    prefix: "cloud-api",
    url,
    credentials: { secret: "graph-token", key: "token", value: TOKEN },
    secrets: { "wa-pin": { pin: PIN } },
  }));
});

afterAll(async () => {
  await operator?.stop();
  await graph.stop();
});

type NumberName = keyof typeof NUMBERS;

/** An instance for one of the numbers, with its WABA and the PIN Secret. */
function applyInstance(name: NumberName, spec = ""): Promise<string> {
  const waba = HOOK_NUMBERS.includes(name) ? HOOK_WABA : WABA;
  return apply(
    namespace,
    instanceManifest(name, "meta", `  cloudApi: {phoneNumberId: "${NUMBERS[name].id}", wabaId: "${waba}", pinSecretRef: {name: wa-pin, key: pin}}\n${spec}`),
  );
}

const digits = (name: NumberName) => NUMBERS[name].display.replace(/\D/g, "");
const registers = (name: NumberName) => graph.calls.filter((call) => call.method === "POST" && call.path.endsWith(`/${NUMBERS[name].id}/register`));
const deregisters = (name: NumberName) => graph.calls.filter((call) => call.method === "POST" && call.path.endsWith(`/${NUMBERS[name].id}/deregister`));
/** register and deregister spend the 72 h budget: nothing else may for a stalled instance. */
const registration = /^POST \/v\d+\.\d+\/\d+\/(register|deregister)$/;

describe("registering a Cloud API number", () => {
  it("apply → registered with the PIN from pinSecretRef → Connected with the number's digits, Ready, and the kubectl get wai row", async () => {
    await applyInstance("link");
    const wait = await kubectl(["wait", "-n", namespace, "--for=condition=Ready", "wai/link", "--timeout=60s"]);
    expect(wait.stdout).toContain("condition met");
    const instance = await readyIn(kube, namespace, "link", "Connected");
    expect(instance.status?.phoneNumber).toBe(digits("link"));
    expect(instance.status?.providerInstanceId).toBe(NUMBERS.link.id);
    // Nothing to scan: no QR in status, no QR Secret.
    expect(instance.status?.qr).toBeUndefined();
    expect(await secretData(kube, namespace, "link-qr")).toEqual({});
    expect(graph.number(NUMBERS.link.id).status).toBe("CONNECTED");
    expect(registers("link")).toHaveLength(1);
    expect(await row(namespace, "link")).toEqual(["link", "meta", "Connected", "Connected", digits("link"), "True", expect.any(String)]);
    expect(await eventReasons(kube, namespace, "link")).toEqual(expect.arrayContaining(["Starting", "Connected"]));
    // The PIN and the token are secrets: not in the status, not in the Events.
    const everything = JSON.stringify([instance, await eventsFor(kube, namespace, "link")]);
    expect(everything).not.toContain(PIN);
    expect(everything).not.toContain(TOKEN);
  });

  it("LoggedOut deregisters: Ready as LoggedOut without a phone; Connected registers again", async () => {
    await patchInstance(namespace, "link", { spec: { state: "LoggedOut" } });
    const out = await readyIn(kube, namespace, "link", "LoggedOut");
    expect(out.status?.phoneNumber).toBeUndefined();
    expect(graph.number(NUMBERS.link.id).status).toBe("DISCONNECTED");
    expect(deregisters("link")).toHaveLength(1);
    expect(await row(namespace, "link")).toEqual(["link", "meta", "LoggedOut", "LoggedOut", "True", expect.any(String)]);

    await patchInstance(namespace, "link", { spec: { state: "Connected" } });
    const back = await readyIn(kube, namespace, "link", "Connected");
    expect(back.status?.phoneNumber).toBe(digits("link"));
    expect(registers("link")).toHaveLength(2);
    // Two register and one deregister so far: the budget counts every one.
    expect(graph.attemptsInWindow(NUMBERS.link.id)).toBe(3);
  });
});

describe("what the Cloud API cannot do", () => {
  it("pairing by code: Stalled UnsupportedByProvider naming cloud_api, and the number is never registered", async () => {
    const since = graph.calls.length;
    await applyInstance("coded", '  pairing: {method: Code, phoneNumber: "15555550102"}');
    await expectUnsupported({
      since,
      kube,
      namespace,
      name: "coded",
      providerType: "cloud_api",
      operation: "pairing by code",
      calls: () => graph.calls,
      forbidden: registration,
    });
    expect(graph.number(NUMBERS.coded.id).status).toBe("PENDING");
    expect(graph.attemptsInWindow(NUMBERS.coded.id)).toBe(0);
  });

  it("restartRequestedAt: Stalled UnsupportedByProvider naming restart, with no register or deregister; dropping it is Ready again", async () => {
    await patchInstance(namespace, "link", { spec: { restartRequestedAt: "2026-11-21T10:00:00Z" } });
    const stalled = await expectUnsupported({
      kube,
      namespace,
      name: "link",
      providerType: "cloud_api",
      operation: "restart",
      calls: () => graph.calls,
      forbidden: registration,
    });
    expect(stalled.status?.phase).toBe("Connected");
    expect(stalled.status?.lastRestartAt).toBeUndefined();
    await patchInstance(namespace, "link", { spec: { restartRequestedAt: null } });
    await readyIn(kube, namespace, "link", "Connected");
  });

  it("state Disconnected: Stalled UnsupportedByProvider naming disconnecting; the number stays registered", async () => {
    await patchInstance(namespace, "link", { spec: { state: "Disconnected" } });
    await expectUnsupported({
      kube,
      namespace,
      name: "link",
      providerType: "cloud_api",
      operation: "disconnecting",
      calls: () => graph.calls,
      forbidden: registration,
    });
    expect(graph.number(NUMBERS.link.id).status).toBe("CONNECTED");
    await patchInstance(namespace, "link", { spec: { state: "Connected" } });
    await readyIn(kube, namespace, "link", "Connected");
  });

  it("a webhook event list (fields are the app's setting, shared by every number): Stalled UnsupportedByProvider naming it, and no webhook call", async () => {
    const since = graph.calls.length;
    await applyInstance("misnamed", "  webhook: {url: https://hooks.example.com/meta, events: [messages]}");
    await expectUnsupported({
      since,
      kube,
      namespace,
      name: "misnamed",
      providerType: "cloud_api",
      operation: "filtering webhook events (remove messages)",
      calls: () => graph.calls,
      forbidden: /^(POST \/v\d+\.\d+\/\d+(\/(register|deregister|subscribed_apps))?|DELETE \/v\d+\.\d+\/\d+\/subscribed_apps)$/,
    });
    expect(graph.subscription(WABA)).toBeUndefined();
    expect(graph.number(NUMBERS.misnamed.id).callback).toBeUndefined();
  });
});

describe("the Cloud API webhook", () => {
  const overrides = (name: NumberName) => graph.calls.filter((call) => call.method === "POST" && call.path.endsWith(`/${NUMBERS[name].id}`));
  const subscribes = () => graph.calls.filter((call) => call.method === "POST" && call.path.endsWith(`/${HOOK_WABA}/subscribed_apps`));

  it("points only this number at spec.webhook.url (its own callback override, verify_token = the hmac-key of <name>-webhook); the WABA gets the app's subscription, without an override", async () => {
    await applyInstance("hooked", "  webhook: {url: https://hooks.example.com/meta}");
    const instance = await readyIn(kube, namespace, "hooked", "Connected");
    const key = (await secretData(kube, namespace, "hooked-webhook"))["hmac-key"]?.toString();
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(graph.number(NUMBERS.hooked.id).callback).toEqual({ overrideCallbackUri: "https://hooks.example.com/meta", verifyToken: key });
    expect(graph.subscription(HOOK_WABA)).toEqual({});
    expect(instance.status?.webhook).toEqual({ secretName: "hooked-webhook", url: "https://hooks.example.com/meta" });
    await severalPasses();
    expect(overrides("hooked")).toHaveLength(1);
    expect(subscribes()).toHaveLength(1);
    expect(JSON.stringify([await getInstance(kube, namespace, "hooked"), await eventsFor(kube, namespace, "hooked")])).not.toContain(key);
  });

  it("a second number of the same WABA keeps its own URL, and neither is rewired on later passes", async () => {
    await applyInstance("neighbour", "  webhook: {url: https://hooks.example.com/sales}");
    await readyIn(kube, namespace, "neighbour", "Connected");
    expect(graph.number(NUMBERS.neighbour.id).callback?.overrideCallbackUri).toBe("https://hooks.example.com/sales");
    await severalPasses();
    expect(graph.number(NUMBERS.hooked.id).callback?.overrideCallbackUri).toBe("https://hooks.example.com/meta");
    expect([overrides("hooked").length, overrides("neighbour").length, subscribes().length]).toEqual([1, 1, 1]);
  });

  it("removing spec.webhook removes this number's override only; the WABA subscription and the neighbour stay", async () => {
    await patchInstance(namespace, "hooked", { spec: { webhook: null } });
    await eventually("the number's override removed", async () => (graph.number(NUMBERS.hooked.id).callback === undefined ? true : undefined));
    const instance = await readyIn(kube, namespace, "hooked", "Connected");
    expect(instance.status?.webhook).toBeUndefined();
    expect(graph.subscription(HOOK_WABA)).toEqual({});
    expect(graph.number(NUMBERS.neighbour.id).callback?.overrideCallbackUri).toBe("https://hooks.example.com/sales");
    expect(graph.calls.some((call) => call.method === "DELETE")).toBe(false);
  });
});

describe("the 72 h registration budget (error 133016)", () => {
  it("a number whose budget is spent: Stalled RegistrationBlocked until an ISO time in status.recovery.notBefore, and no register call after the refused one", async () => {
    // Ten register/deregister requests in the last 72 h, made elsewhere (WhatsApp Manager, another tool).
    graph.number(NUMBERS.blocked.id).attempts = Array.from({ length: REGISTRATION_ATTEMPTS }, (_, index) => Date.now() - (index + 1) * 60_000);
    const applied = Date.now();
    await applyInstance("blocked");
    const blocked = await instanceWhere(
      kube,
      namespace,
      "blocked",
      "Stalled RegistrationBlocked",
      (object) => condition(object, "Stalled")?.status === "True" && condition(object, "Stalled")?.reason === "RegistrationBlocked",
    );
    const notBefore = blocked.status?.recovery?.notBefore as string;
    expect(notBefore).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    expect(Date.parse(notBefore)).toBeGreaterThanOrEqual(applied + 72 * HOUR - 60_000);
    expect(Date.parse(notBefore)).toBeLessThanOrEqual(Date.now() + 72 * HOUR);
    expect(condition(blocked, "Stalled")?.message).toContain(notBefore);
    expect(condition(blocked, "Ready")).toMatchObject({ status: "False", reason: "RegistrationBlocked" });
    expect(blocked.status?.phase).toBe("Pending");
    expect(await eventNamed(kube, namespace, "blocked", "Warning", "ProviderError")).toContain(notBefore);
    expect(registers("blocked")).toHaveLength(1);

    // Reconcile passes go on (each status write and the 1 s poll bring it back); none registers.
    const looksBefore = graph.calls.filter((call) => call.method === "GET" && call.path.endsWith(`/${NUMBERS.blocked.id}`)).length;
    await operator.instanceQueue.whenIdle();
    await severalPasses(3000);
    const still = await getInstance(kube, namespace, "blocked");
    expect(condition(still as NonNullable<typeof still>, "Stalled")).toMatchObject({ status: "True", reason: "RegistrationBlocked", message: expect.stringContaining(notBefore) });
    expect(still?.status?.recovery?.notBefore).toBe(notBefore);
    expect(registers("blocked")).toHaveLength(1);
    expect(graph.attemptsInWindow(NUMBERS.blocked.id)).toBe(REGISTRATION_ATTEMPTS);
    expect(graph.number(NUMBERS.blocked.id).status).toBe("PENDING");
    // It kept looking at the number, it just never registered.
    await kubectlOk(["annotate", "wai", "blocked", "-n", namespace, "example.com/poke=1"]);
    await eventually("another look at the number", async () =>
      graph.calls.filter((call) => call.method === "GET" && call.path.endsWith(`/${NUMBERS.blocked.id}`)).length > looksBefore ? true : undefined,
    );
    await severalPasses(1000);
    expect(registers("blocked")).toHaveLength(1);
  });
});

describe("deleting on the Cloud API", () => {
  it("deletionPolicy Delete deregisters a registered number", async () => {
    const before = deregisters("link").length;
    await kubectlOk(["delete", "wai", "link", "-n", namespace, "--wait=true", "--timeout=60s"]);
    expect(graph.number(NUMBERS.link.id).status).toBe("DISCONNECTED");
    expect(deregisters("link")).toHaveLength(before + 1);
    expect(await eventNamed(kube, namespace, "link", "Normal", "Deleted")).toContain(NUMBERS.link.id);
  });

  it("a number deleted from its WABA (Graph code 803) is gone: deleting the instance finishes", async () => {
    await applyInstance("gone");
    await readyIn(kube, namespace, "gone", "Connected");
    graph.deleteNumber(NUMBERS.gone.id);
    await kubectlOk(["delete", "wai", "gone", "-n", namespace, "--wait=true", "--timeout=60s"]);
    expect(deregisters("gone")).toHaveLength(0);
  });

  it("a number that was never registered is left alone: no deregister spends the budget", async () => {
    await kubectlOk(["delete", "wai", "coded", "-n", namespace, "--wait=true", "--timeout=60s"]);
    expect(deregisters("coded")).toHaveLength(0);
    expect(graph.attemptsInWindow(NUMBERS.coded.id)).toBe(0);
  });
});

describe("the Cloud API provider", () => {
  it("is Ready with the token accepted, and reports no version (Graph has none)", async () => {
    const provider = await eventually("provider Ready", async () => {
      const object = JSON.parse(await kubectlOk(["get", "wap", "meta", "-n", namespace, "-o", "json"])) as {
        status?: { version?: string; instances?: number; conditions?: { type: string; status: string }[] };
      };
      // misnamed, hooked, neighbour and blocked are left (link, coded and gone were deleted).
      return object.status?.conditions?.find((entry) => entry.type === "Ready")?.status === "True" && object.status.instances === 4 ? object : undefined;
    });
    expect(provider.status?.version).toBeUndefined();
  });
});
