/**
 * The tenant boundary on shared Wappfy, WAPIZ, Cloud API, whapi and Evolution gateways, as an attacker
 * with `edit` in one namespace would try it (the WAHA case is tenant-boundary.test.ts). Each
 * gateway sits behind one ClusterWhatsAppProvider that lets every namespace in and allows
 * adoption, the most a cluster admin can open it up. A victim's instance holds a session and
 * is Connected, so from then on it only reads its status; a second namespace then names the
 * victim's session (spec.adopt.id, the same phoneNumberId, the provider-wide whapi device)
 * asking for everything that would hurt it: LoggedOut, a restart, a webhook of its own, and
 * finally a delete. What is asserted is what each gateway saw (no such request) and what
 * each user sees.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Operator } from "../../src/operator.ts";
import type { InstanceObject } from "../../src/controllers/context.ts";
import { CloudApiEmulator } from "../emulators/cloud-api/emulator.ts";
import { EvolutionEmulator } from "../emulators/evolution/emulator.ts";
import { WapizEmulator } from "../emulators/wapiz/emulator.ts";
import { WappfyEmulator } from "../emulators/wappfy/emulator.ts";
import { WhapiEmulator } from "../emulators/whapi/emulator.ts";
import { condition, createNamespace, installCrds, instanceWhere, kubeClient, kubectl, kubectlOk } from "../support/kube.ts";
import { startOperator } from "../support/operator.ts";
import { apply, createSecret, instanceManifest, phaseOf, readyIn, severalPasses } from "./providers/support.ts";

const kube = kubeClient();
const WAPPFY_KEY = "wappfy-tenant-key-0123456789";
const WAPIZ_TOKEN = "wapiz-tenant-token-0123456789";
const GRAPH_TOKEN = "EAAGtenanttoken0123456789abcdef";
const WHAPI_KEY = "whapi-tenant-device-key-0123456789";
const EVOLUTION_KEY = "evolution-tenant-global-key-0123456789";
const PIN = "135792";
const WABA = "102290129340500";
const NUMBER = { id: "106540352240501", display: "+1 555-555-0501" };
const wappfy = new WappfyEmulator({ apiKeys: [WAPPFY_KEY], startDelayMs: 0, maxQrCodes: 10_000, requestsPerMinute: 1_000_000 });
const wapiz = new WapizEmulator({ accounts: { [WAPIZ_TOKEN]: "regular" } });
const graph = new CloudApiEmulator({ token: GRAPH_TOKEN, numbers: [{ id: NUMBER.id, wabaId: WABA, displayPhoneNumber: NUMBER.display, pin: PIN }] });
const whapi = new WhapiEmulator({ apiKeys: [WHAPI_KEY], pairingMs: 0 });
const evolution = new EvolutionEmulator({ globalKey: EVOLUTION_KEY });
let victim: string;
let attacker: string;
let suffix: string;
let operator: Operator;

interface Gateway {
  readonly type: string;
  readonly calls: () => readonly { readonly method: string; readonly path: string }[];
  /** What would change the victim's session or hand its QR out: none of it may reach the gateway once the victim is steady. */
  readonly harmful: RegExp;
}

const GATEWAYS = {
  wappfy: { type: "wappfy", calls: () => wappfy.calls, harmful: /^(POST|PUT|PATCH|DELETE) |^GET \/api\/instances\/[^/]+\/qr$/ },
  wapiz: { type: "wapiz", calls: () => wapiz.calls, harmful: /^(POST|PUT|PATCH|DELETE) |^GET \/api\/devices\/[^/]+\/qr$/ },
  cloud: { type: "cloud_api", calls: () => graph.calls, harmful: /^(POST|PUT|PATCH|DELETE) / },
  whapi: { type: "whapi", calls: () => whapi.calls, harmful: /^(POST|PUT|PATCH|DELETE) |^GET \/api\/(serviceStart|serviceDestroy|getQR)$/ },
  // connect starts Baileys and answers the QR (instance.controller.ts connectToWhatsapp).
  evolution: { type: "evolution", calls: () => evolution.calls, harmful: /^(POST|PUT|PATCH|DELETE) |^GET \/instance\/connect\// },
} as const satisfies Record<string, Gateway>;
type GatewayName = keyof typeof GATEWAYS;

const providerName = (gateway: GatewayName): string => `shared-${gateway}-${suffix}`;

beforeAll(async () => {
  await installCrds();
  const keys = await createNamespace("tenants-keys");
  victim = await createNamespace("tenants-victim");
  attacker = await createNamespace("tenants-attacker");
  suffix = victim.slice(victim.lastIndexOf("-") + 1);
  const urls = { wappfy: await wappfy.start(), wapiz: await wapiz.start(), cloud: await graph.start(), whapi: await whapi.start(), evolution: await evolution.start() };
  const credentials = { wappfy: WAPPFY_KEY, wapiz: WAPIZ_TOKEN, cloud: GRAPH_TOKEN, whapi: WHAPI_KEY, evolution: EVOLUTION_KEY };
  for (const namespace of [victim, attacker]) await createSecret(namespace, "wa-pin", { pin: PIN });
  for (const gateway of Object.keys(GATEWAYS) as GatewayName[]) {
    await createSecret(keys, `${gateway}-key`, { "api-key": credentials[gateway] });
    await kubectlOk(
      ["apply", "-f", "-"],
      `apiVersion: wa-operator.io/v1alpha1
kind: ClusterWhatsAppProvider
metadata: {name: ${providerName(gateway)}}
spec:
  type: ${GATEWAYS[gateway].type}
  url: "${urls[gateway]}"
  credentialsSecretRef: {name: ${gateway}-key, namespace: ${keys}, key: api-key}
  allowedNamespaces: {from: All}
  adoption: Allowed`,
    );
  }
  operator = await startOperator(`${victim},${attacker}`);
});

afterAll(async () => {
  // Cluster-scoped: other test files share this API server.
  for (const gateway of Object.keys(GATEWAYS) as GatewayName[]) await kubectl(["delete", "cwap", providerName(gateway), "--ignore-not-found", "--wait=false"]);
  await operator?.stop();
  await Promise.all([wappfy.stop(), wapiz.stop(), graph.stop(), whapi.stop(), evolution.stop()]);
});

function applyInstance(namespace: string, name: string, gateway: GatewayName, spec = ""): Promise<string> {
  return apply(namespace, instanceManifest(name, { kind: "ClusterWhatsAppProvider", name: providerName(gateway) }, spec));
}

/** Everything the attack asks for, besides naming the session. */
const HOSTILE = `  state: LoggedOut\n  restartRequestedAt: "2026-12-01T00:00:00Z"\n  webhook: {url: "http://127.0.0.1:9/steal"}\n`;
const CLOUD_SPEC = `  cloudApi: {phoneNumberId: "${NUMBER.id}", wabaId: "${WABA}", pinSecretRef: {name: wa-pin, key: pin}}\n`;

const stalledWith = (reason: string) => (object: InstanceObject) =>
  condition(object, "Stalled")?.status === "True" && condition(object, "Stalled")?.reason === reason && object.status?.observedGeneration === object.metadata.generation;

/**
 * Runs the attack on a victim already Connected: the attacker's instance is refused
 * (Stalled SessionClaimed, naming no victim), is deleted, and over all of it the gateway
 * saw nothing harmful; the victim stays Connected and not Stalled.
 */
async function attack(gateway: GatewayName, victimName: string, attackerSpec: string, hostile = HOSTILE): Promise<void> {
  const { calls, harmful } = GATEWAYS[gateway];
  const since = calls().length;
  const thief = `thief-${gateway}`;
  await applyInstance(attacker, thief, gateway, attackerSpec + hostile);
  const refused = await instanceWhere(kube, attacker, thief, "Stalled SessionClaimed", stalledWith("SessionClaimed"));
  expect(condition(refused, "Stalled")?.message).toContain("another namespace");
  expect(condition(refused, "Stalled")?.message).not.toContain(victim);
  expect(refused.status?.qr).toBeUndefined();
  expect(refused.status?.providerInstanceId).toBeUndefined();
  await severalPasses();
  await kubectlOk(["delete", "wai", thief, "-n", attacker, "--wait=true", "--timeout=60s"]);
  await severalPasses();
  const seen = calls()
    .slice(since)
    .map((call) => `${call.method} ${call.path}`);
  expect(seen.filter((call) => harmful.test(call))).toEqual([]);
  const after = await readyIn(kube, victim, victimName, "Connected");
  expect(condition(after, "Stalled")?.status).not.toBe("True");
}

describe("a second namespace on a shared provider cannot touch the first's session", () => {
  it("Wappfy: naming the victim's instance id in spec.adopt.id gets SessionClaimed, and Wappfy sees no logout, restart, QR fetch, webhook or delete", async () => {
    await applyInstance(victim, "line", "wappfy");
    const scanning = await phaseOf(kube, victim, "line", "ScanQR");
    const id = scanning.status?.providerInstanceId as string;
    wappfy.scan(id, "5511999990501");
    await readyIn(kube, victim, "line", "Connected");
    await severalPasses();
    await attack("wappfy", "line", `  adopt: {id: "${id}"}\n`);
    expect(wappfy.instance(id)).toMatchObject({ status: "connected", phone: "5511999990501" });
    expect(wappfy.webhooks()).toEqual([]);
  });

  it("WAPIZ: naming the victim's device id in spec.adopt.id gets SessionClaimed, and WAPIZ sees no logout, QR fetch, webhook or delete", async () => {
    await applyInstance(victim, "device", "wapiz");
    const scanning = await phaseOf(kube, victim, "device", "ScanQR");
    const id = scanning.status?.providerInstanceId as string;
    wapiz.scan(id);
    await readyIn(kube, victim, "device", "Connected");
    await severalPasses();
    await attack("wapiz", "device", `  adopt: {id: "${id}"}\n`);
  });

  it("Cloud API: naming the victim's phoneNumberId gets SessionClaimed, and Graph sees no deregister, register or webhook subscription", async () => {
    await applyInstance(victim, "number", "cloud", CLOUD_SPEC);
    await readyIn(kube, victim, "number", "Connected");
    await severalPasses();
    await attack("cloud", "number", CLOUD_SPEC);
    expect(graph.number(NUMBER.id).status).toBe("CONNECTED");
  });

  it("whapi: an instance without its own key, on the provider-wide device the victim drives, gets SessionClaimed, and whapi sees no serviceDestroy, serviceStart or QR fetch", async () => {
    await applyInstance(victim, "handset", "whapi");
    await phaseOf(kube, victim, "handset", "ScanQR");
    whapi.scan(WHAPI_KEY);
    await readyIn(kube, victim, "handset", "Connected");
    await severalPasses();
    // whapi has no webhook per device nor restart (Stalled UnsupportedByProvider): the attack asks for what it can.
    await attack("whapi", "handset", "", "  state: LoggedOut\n");
    expect(whapi.state(WHAPI_KEY)).not.toBe("SERVICE_OFF");
  });

  it("Evolution: naming the instance the victim adopted in spec.adopt.id gets SessionClaimed, and Evolution sees no logout, restart, connect, webhook or delete", async () => {
    // An instance made in Evolution's manager, adopted by the victim (one the operator made is named
    // "<namespace>.<name> [<uid>]", which spec.adopt.id's pattern does not even accept).
    const id = evolution.seed("front-desk").name;
    await applyInstance(victim, "gateway", "evolution", `  adopt: {id: "${id}"}\n`);
    await phaseOf(kube, victim, "gateway", "ScanQR");
    evolution.scan(id, "5511999990601");
    await readyIn(kube, victim, "gateway", "Connected");
    await severalPasses();
    await attack("evolution", "gateway", `  adopt: {id: "${id}"}\n`);
    expect(evolution.instance(id)).toMatchObject({ state: "open", linkedPhone: "5511999990601" });
    expect(evolution.instance(id)?.webhook?.url).not.toBe("http://127.0.0.1:9/steal");
  });
});
