/**
 * The tenant boundary on a shared gateway, as an attacker with `edit` in one namespace
 * would try it: one ClusterWhatsAppProvider in front of one WAHA emulator, a victim's
 * namespace it lets in, and a second namespace that tries to reach the victim's session.
 * What is asserted is what the provider saw (no call that changes the victim's session)
 * and what each user sees in status.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Operator } from "../../src/operator.ts";
import { wahaSessionName } from "../../src/providers/waha/client.ts";
import { FakeClock } from "../emulators/shared/clock.ts";
import { WahaEmulator } from "../emulators/waha/emulator.ts";
import { condition, createNamespace, eventsFor, eventually, installCrds, instanceWhere, kubeClient, kubectl, kubectlOk } from "../support/kube.ts";
import { startOperator } from "../support/operator.ts";
import { apply, createSecret, instanceManifest } from "./providers/support.ts";

const API_KEY = "waha-tenant-test-key-0123";
const kube = kubeClient();
const waha = new WahaEmulator({ apiKey: API_KEY, clock: new FakeClock(), startDelayMs: 0, crashRestartDelayMs: null });
// A tenant's own gateway whose key is the word every Connected status carries.
const poisoned = new WahaEmulator({ apiKey: "Connected", clock: new FakeClock(), startDelayMs: 0, crashRestartDelayMs: null });
let victim: string;
let attacker: string;
let provider: string;
let operator: Operator;
let wahaUrl: string;

beforeAll(async () => {
  await installCrds();
  const keys = await createNamespace("tenant-keys");
  victim = await createNamespace("tenant-victim");
  attacker = await createNamespace("tenant-attacker");
  provider = `shared-${victim}`;
  await kubectlOk(["label", "namespace", victim, "team=blue"]);
  const url = await waha.start();
  wahaUrl = url;
  await createSecret(keys, "waha-key", { "api-key": API_KEY });
  await kubectlOk(
    ["apply", "-f", "-"],
    `apiVersion: wa-operator.io/v1alpha1
kind: ClusterWhatsAppProvider
metadata: {name: ${provider}}
spec:
  type: waha
  url: "${url}"
  credentialsSecretRef: {name: waha-key, namespace: ${keys}, key: api-key}
  allowedNamespaces: {from: Selector, selector: {matchLabels: {team: blue}}}`,
  );
  operator = await startOperator(`${victim},${attacker}`);
});

afterAll(async () => {
  // Cluster-scoped: other test files share this API server.
  await kubectl(["delete", "cwap", provider, "--ignore-not-found", "--wait=false"]);
  await operator?.stop();
  await waha.stop();
  await poisoned.stop();
});

function applyInstance(namespace: string, name: string, spec = ""): Promise<string> {
  return apply(namespace, instanceManifest(name, { kind: "ClusterWhatsAppProvider", name: provider }, spec));
}

/** The calls to a session other than reads, from `since` (an index into the emulator's log). */
function changesTo(session: string, since: number): string[] {
  return waha.calls
    .slice(since)
    .filter((call) => call.method !== "GET" && (call.path.includes(`/sessions/${session}`) || call.path.includes(`/api/${session}/`)))
    .map((call) => `${call.method} ${call.path}`);
}

const stalledWith = (reason: string) => (object: Parameters<typeof condition>[0]) => condition(object, "Stalled")?.status === "True" && condition(object, "Stalled")?.reason === reason;

describe("a ClusterWhatsAppProvider shared between tenants", () => {
  it("refuses a namespace its allowedNamespaces does not let in, naming the field, before any provider call", async () => {
    const before = waha.calls.length;
    await applyInstance(attacker, "outsider");
    const instance = await instanceWhere(kube, attacker, "outsider", "Stalled ProviderNotAllowed", stalledWith("ProviderNotAllowed"));
    expect(condition(instance, "Stalled")?.message).toContain("allowedNamespaces");
    expect(waha.calls.slice(before).filter((call) => call.path.includes(wahaSessionName(attacker, "outsider")))).toEqual([]);
    expect(waha.session(wahaSessionName(attacker, "outsider"))).toBeUndefined();
  });

  it("serves the namespace it lets in", async () => {
    await applyInstance(victim, "line");
    await instanceWhere(kube, victim, "line", "ScanQR", (object) => object.status?.phase === "ScanQR");
  });

  it("a second namespace cannot log out, restart, fetch the QR of, rewire or delete the first's session", async () => {
    const session = wahaSessionName(victim, "line");
    await kubectlOk(["label", "namespace", attacker, "team=blue"]);
    const since = waha.calls.length;
    // Adoption is Disabled by default on a cluster provider.
    await applyInstance(attacker, "thief", `  adopt: {id: "${session}"}\n  state: LoggedOut\n  webhook: {url: "http://127.0.0.1:9/steal"}`);
    const refused = await instanceWhere(kube, attacker, "thief", "Stalled AdoptionDisabled", stalledWith("AdoptionDisabled"));
    expect(refused.status?.qr).toBeUndefined();
    // With adoption allowed, the session is still the victim's: its claim is older.
    await kubectlOk(["patch", "cwap", provider, "--type=merge", "-p", JSON.stringify({ spec: { adoption: "Allowed" } })]);
    const claimed = await instanceWhere(kube, attacker, "thief", "Stalled SessionClaimed", stalledWith("SessionClaimed"));
    expect(condition(claimed, "Stalled")?.message).toContain("another namespace");
    // The refused instance is deleted: the victim's session stays.
    await kubectlOk(["delete", "wai", "thief", "-n", attacker, "--wait=true", "--timeout=60s"]);
    expect(changesTo(session, since)).toEqual([]);
    expect(waha.session(session)?.status).toBe("SCAN_QR_CODE");
    const victimNow = await instanceWhere(kube, victim, "line", "still ScanQR", (object) => object.status?.phase === "ScanQR");
    expect(condition(victimNow, "Stalled")?.status).not.toBe("True");
  });
});

describe("a session squatting on the name we would compute", () => {
  it("an instance whose WAHA session name is already taken by a session without our uid is Stalled SessionOwnedElsewhere, and deleting it leaves the session with an Orphaned Warning", async () => {
    const session = wahaSessionName(victim, "squatted");
    // Somebody with the gateway's key created the session first, without our metadata.
    const created = await fetch(`${wahaUrl}/api/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": API_KEY },
      body: JSON.stringify({ name: session, start: false }),
    });
    expect(created.status).toBeLessThan(300);
    const since = waha.calls.length;
    await applyInstance(victim, "squatted");
    const stalled = await instanceWhere(kube, victim, "squatted", "Stalled SessionOwnedElsewhere", stalledWith("SessionOwnedElsewhere"));
    expect(condition(stalled, "Stalled")?.message).toContain(session);
    expect(stalled.status?.providerInstanceId).toBeUndefined();
    await kubectlOk(["delete", "wai", "squatted", "-n", victim, "--wait=true", "--timeout=60s"]);
    expect(waha.session(session)).toBeDefined();
    expect(changesTo(session, since)).toEqual([]);
    const orphaned = await eventually("Orphaned Warning", async () =>
      (await eventsFor(kube, victim, "squatted")).find((event) => event.type === "Warning" && event.reason === "Orphaned"),
    );
    expect(orphaned.message).toContain(session);
  });
});

describe("a tenant Secret whose value is a word of every status", () => {
  it("a credential valued Connected in one namespace leaves another namespace's Connected instance, its status and its Events as they are", async () => {
    const poisonedUrl = await poisoned.start();
    await createSecret(attacker, "own-key", { "api-key": "Connected" });
    await kubectlOk(
      ["apply", "-n", attacker, "-f", "-"],
      `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: own}
spec: {type: waha, url: "${poisonedUrl}", credentialsSecretRef: {name: own-key, key: api-key}}`,
    );
    await kubectlOk(
      ["apply", "-n", attacker, "-f", "-"],
      `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: poison}
spec:
  providerRef: {name: own}`,
    );
    // The key was read and used: the tenant's own gateway shows a QR.
    await instanceWhere(kube, attacker, "poison", "ScanQR", (object) => object.status?.phase === "ScanQR");
    waha.scan(wahaSessionName(victim, "line"), "31612345678");
    const connected = await instanceWhere(
      kube,
      victim,
      "line",
      "Connected and Ready",
      (object) => object.status?.phase === "Connected" && condition(object, "Ready")?.status === "True",
    );
    expect(connected.status?.phoneNumber).toBe("31612345678");
    expect(JSON.stringify(connected.status)).not.toContain("[redacted]");
    const events = await eventually("a Connected Event", async () => {
      const found = await eventsFor(kube, victim, "line");
      return found.some((event) => event.reason === "Connected") ? found : undefined;
    });
    expect(JSON.stringify(events)).not.toContain("[redacted]");
    expect(events.find((event) => event.reason === "Connected")?.message).toContain("31612345678");
    // The tenant's own instance connects too: its phase is the enum value, not a redaction.
    poisoned.scan(wahaSessionName(attacker, "poison"), "31687654321");
    await instanceWhere(kube, attacker, "poison", "Connected", (object) => object.status?.phase === "Connected");
  });
});
