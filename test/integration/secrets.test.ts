/**
 * Which Secrets the operator reads and writes, end to end against the real API server:
 * a referenced Secret is used only when its owner labelled it wa-operator.io/credential,
 * and a Secret of the name the operator would give its own (<instance>-webhook,
 * <instance>-qr) that it did not make is left exactly as it was.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Operator } from "../../src/operator.ts";
import { SECRETS } from "../../src/kube/resources.ts";
import type { SecretObject } from "../../src/kube/secrets.ts";
import { wahaSessionName } from "../../src/providers/waha/client.ts";
import { WahaEmulator } from "../emulators/waha/emulator.ts";
import { condition, createNamespace, eventually, installCrds, instanceWhere, kubeClient, kubectl, kubectlOk } from "../support/kube.ts";
import { startOperator } from "../support/operator.ts";

const API_KEY = "secrets-test-api-key";
const TEAM_PASSWORD = "team-database-password-not-for-whatsapp";
const USER_HMAC = "users-own-hmac-key-0123456789abcdef0123456789";
const kube = kubeClient();
const waha = new WahaEmulator({ apiKey: API_KEY, startDelayMs: 0 });
let namespace: string;
let operator: Operator;

beforeAll(async () => {
  await installCrds();
  namespace = await createNamespace("secrets");
  const url = await waha.start();
  await kubectlOk(["create", "secret", "generic", "waha-key", "-n", namespace, `--from-literal=api-key=${API_KEY}`]);
  await kubectlOk(["label", "secret", "waha-key", "-n", namespace, "wa-operator.io/credential=true"]);
  await apply(`apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: waha}
spec: {type: waha, url: "${url}", credentialsSecretRef: {name: waha-key}}`);
  operator = await startOperator(namespace);
});

afterAll(async () => {
  await operator?.stop();
  await waha.stop();
});

function apply(manifest: string): Promise<string> {
  return kubectlOk(["apply", "-n", namespace, "-f", "-"], manifest);
}

function applyInstance(name: string, spec = ""): Promise<string> {
  return apply(`apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: ${name}}
spec:
  providerRef: {name: waha}
${spec}`);
}

/** The Secret as the API server has it: every byte a write would change, resourceVersion included. */
async function stored(name: string): Promise<string> {
  const secret = await kube.get<SecretObject>(SECRETS, namespace, name);
  const { metadata, data, type } = secret;
  return JSON.stringify({ metadata: { ...metadata, managedFields: undefined }, data, type });
}

const stalled = (reason: string) => (object: Parameters<typeof condition>[0]) => {
  const stalledCondition = condition(object, "Stalled");
  return stalledCondition?.status === "True" && stalledCondition.reason === reason;
};

describe("Secrets a spec references", () => {
  it("an unlabelled Secret is never sent to the provider: the instance is Stalled SecretNotLabelled until its owner labels it", async () => {
    await kubectlOk(["create", "secret", "generic", "team-db", "-n", namespace, `--from-literal=password=${TEAM_PASSWORD}`]);
    // wa-operator-edit lets a tenant write this spec; only the label, which needs write access to the Secret, lets it through.
    await applyInstance("exfil", `  webhook: {url: "http://127.0.0.1:9/hook", events: [message], secretRef: {name: team-db, key: password}}`);
    const object = await instanceWhere(kube, namespace, "exfil", "Stalled SecretNotLabelled", stalled("SecretNotLabelled"));
    expect(condition(object, "Stalled")?.message).toContain(`Secret ${namespace}/team-db is not labelled wa-operator.io/credential: "true"`);
    expect(waha.session(wahaSessionName(namespace, "exfil"))).toBeUndefined();
    expect(JSON.stringify(waha.calls)).not.toContain(TEAM_PASSWORD);
    await kubectlOk(["label", "secret", "team-db", "-n", namespace, "wa-operator.io/credential=true"]);
    await instanceWhere(kube, namespace, "exfil", "ScanQR once labelled", (labelled) => labelled.status?.phase === "ScanQR");
    expect(waha.session(wahaSessionName(namespace, "exfil"))?.config?.webhooks?.[0]?.hmac?.key).toBe(TEAM_PASSWORD);
  });

  it("a provider whose credentials Secret is unlabelled is Stalled SecretNotLabelled", async () => {
    await kubectlOk(["create", "secret", "generic", "plain-key", "-n", namespace, `--from-literal=api-key=${API_KEY}`]);
    await apply(`apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: unlabelled}
spec: {type: waha, url: "http://127.0.0.1:9", credentialsSecretRef: {name: plain-key}}`);
    await eventually("provider Stalled SecretNotLabelled", async () => {
      const provider = JSON.parse(await kubectlOk(["get", "wap", "unlabelled", "-n", namespace, "-o", "json"])) as { status?: { conditions?: { type: string; status: string; reason: string }[] } };
      const found = provider.status?.conditions?.find((entry) => entry.type === "Stalled");
      return found?.status === "True" && found.reason === "SecretNotLabelled" ? true : undefined;
    });
  });
});

describe("the operator's Secret cache", () => {
  it("holds no Secret but its own and labelled ones, and no annotation but its own", async () => {
    await kubectlOk(["create", "secret", "generic", "unrelated", "-n", namespace, "--from-literal=token=unrelated-token"]);
    await apply(`apiVersion: v1
kind: Secret
metadata: {name: applied-key, labels: {wa-operator.io/credential: "true"}, annotations: {team.example/owner: billing}}
stringData: {api-key: applied-api-key}`);
    const cache = operator.context.caches.secrets;
    const applied = await eventually("the labelled Secret in the cache", () => cache.get(`${namespace}/applied-key`));
    // kubectl apply put the values into last-applied-configuration; the cache keeps no such copy.
    expect(applied.metadata.annotations).toBeUndefined();
    expect(JSON.stringify(applied)).not.toContain("applied-api-key");
    expect(cache.get(`${namespace}/unrelated`)).toBeUndefined();
    expect(cache.get(`${namespace}/waha-key`)).toBeDefined();
  });
});

describe("Secrets named as the operator's own", () => {
  it("a user's HMAC Secret named <instance>-webhook, referenced by webhook.secretRef, is left byte-for-byte unchanged", async () => {
    await kubectlOk(["create", "secret", "generic", "own-webhook", "-n", namespace, `--from-literal=hmac-key=${USER_HMAC}`]);
    await kubectlOk(["label", "secret", "own-webhook", "-n", namespace, "wa-operator.io/credential=true"]);
    const before = await stored("own-webhook");
    await applyInstance("own", `  webhook: {url: "http://127.0.0.1:9/hook", events: [message], secretRef: {name: own-webhook}}`);
    await instanceWhere(kube, namespace, "own", "ScanQR", (object) => object.status?.phase === "ScanQR");
    expect(waha.session(wahaSessionName(namespace, "own"))?.config?.webhooks?.[0]?.hmac?.key).toBe(USER_HMAC);
    // The webhook settles; then spec.webhook goes, which once made the operator delete <instance>-webhook.
    await apply(`apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: own}
spec:
  providerRef: {name: waha}`);
    await instanceWhere(kube, namespace, "own", "the webhook unwired", (object) => object.status?.webhook === undefined && object.metadata.generation === object.status?.observedGeneration);
    expect(await stored("own-webhook")).toBe(before);
  });

  it("an unlabelled Secret named <instance>-webhook stalls an instance that wants its own: SecretConflict, nothing written", async () => {
    await kubectlOk(["create", "secret", "generic", "taken-webhook", "-n", namespace, "--from-literal=hmac-key=someone-elses"]);
    const before = await stored("taken-webhook");
    await applyInstance("taken", `  webhook: {url: "http://127.0.0.1:9/hook", events: [message]}`);
    const object = await instanceWhere(kube, namespace, "taken", "Stalled SecretConflict", stalled("SecretConflict"));
    expect(condition(object, "Stalled")?.message).toContain(`Secret ${namespace}/taken-webhook exists and is not owned by WhatsAppInstance taken`);
    expect(await stored("taken-webhook")).toBe(before);
  });

  it("a pre-existing <instance>-qr the operator did not make is left unchanged: SecretConflict instead of a QR", async () => {
    await kubectlOk(["create", "secret", "generic", "early-qr", "-n", namespace, "--from-literal=qr.txt=not-ours"]);
    const before = await stored("early-qr");
    await applyInstance("early");
    await instanceWhere(kube, namespace, "early", "Stalled SecretConflict", stalled("SecretConflict"));
    expect(await stored("early-qr")).toBe(before);
    await kubectl(["delete", "wai", "early", "-n", namespace, "--wait=false"]);
  });
});
