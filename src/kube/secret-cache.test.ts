/**
 * Which Secrets the operator may read and write: referenced ones only with the
 * credential label, its own only with its controller reference, nobody else's ever.
 */
import { describe, expect, it } from "vitest";
import { KubeError, type KubeClient } from "./client.ts";
import { keyOf, type OwnerReference } from "./resources.ts";
import { deleteOwnedSecret, ensureOwnedSecret, SecretReader, slimSecret, type SecretCache, type SlimSecret } from "./secret-cache.ts";
import { SecretConflictError, UnlabelledSecretError, type SecretObject } from "./secrets.ts";

const owner: OwnerReference = { apiVersion: "wa-operator.io/v1alpha1", kind: "WhatsAppInstance", name: "line", uid: "uid-line", controller: true, blockOwnerDeletion: true };
const value = (text: string) => Buffer.from(text).toString("base64");

function memoryCache(objects: SecretObject[] = []): SecretCache & { store: Map<string, SlimSecret> } {
  const store = new Map<string, SlimSecret>(objects.map((object) => [keyOf(object), object]));
  return {
    store,
    get: (key) => store.get(key),
    remember: (object) => void store.set(keyOf(object), object),
    forget: (_namespace, key) => void store.delete(key),
    covers: () => true,
  };
}

/** The API server's side: what it holds, and every request it was sent. */
function fakeKube(server: SecretObject[] = []) {
  const requests: string[] = [];
  const kube = {
    find: async (_type: unknown, namespace: string, name: string) => {
      requests.push(`GET ${name}`);
      return server.find((object) => object.metadata.namespace === namespace && object.metadata.name === name);
    },
    create: async (_type: unknown, _namespace: string, body: SecretObject) => {
      requests.push(`POST ${body.metadata.name}`);
      if (server.some((object) => object.metadata.name === body.metadata.name)) throw new KubeError(409, "already exists", "AlreadyExists");
      return { ...body, metadata: { ...body.metadata, uid: "uid-new", resourceVersion: "2" } };
    },
    replace: async (_type: unknown, _namespace: string, name: string, body: SecretObject) => {
      requests.push(`PUT ${name}`);
      return body;
    },
    delete: async (_type: unknown, _namespace: string, name: string) => void requests.push(`DELETE ${name}`),
  } as unknown as KubeClient;
  return { kube, requests };
}

const secret = (name: string, extra: Partial<SecretObject["metadata"]> = {}, data: Record<string, string> = { "api-key": value("k3y-value") }): SecretObject => ({
  metadata: { name, namespace: "ns", resourceVersion: "1", ...extra },
  data,
});
const labelled = { labels: { "wa-operator.io/credential": "true" } };

describe("referenced Secrets", () => {
  it("reads a Secret labelled wa-operator.io/credential=true", async () => {
    const { kube } = fakeKube();
    const reader = new SecretReader({ kube, cache: memoryCache([secret("key", labelled)]) });
    expect(await reader.value("ns", "key", "api-key")).toBe("k3y-value");
  });

  it("refuses a cached Secret without the label, naming the label and the Secret", async () => {
    const { kube } = fakeKube();
    const reader = new SecretReader({ kube, cache: memoryCache([secret("key", { labels: { "app.kubernetes.io/managed-by": "wa-operator" } })]) });
    const error = await reader.value("ns", "key", "api-key").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnlabelledSecretError);
    expect((error as Error).message).toContain('Secret ns/key is not labelled wa-operator.io/credential: "true"');
  });

  it("tells an unlabelled Secret the cache does not select from a missing one", async () => {
    const { kube } = fakeKube([secret("unlabelled")]);
    const reader = new SecretReader({ kube, cache: memoryCache() });
    await expect(reader.secret("ns", "unlabelled")).rejects.toBeInstanceOf(UnlabelledSecretError);
    expect(await reader.secret("ns", "absent")).toBeUndefined();
  });

  it("does not take an owned Secret of another object, or a labelled user Secret, for its own", async () => {
    const { kube } = fakeKube();
    const reader = new SecretReader({ kube, cache: memoryCache([secret("p-events", { ownerReferences: [{ ...owner, uid: "uid-other" }] }), secret("q-events", labelled)]) });
    expect(await reader.owned("ns", "p-events", "uid-line")).toBeUndefined();
    expect(await reader.owned("ns", "q-events", "uid-line")).toBeUndefined();
    expect(await reader.owned("ns", "p-events", "uid-other")).toBeDefined();
  });
});

describe("owned Secrets", () => {
  const desired = { namespace: "ns", name: "line-webhook", owner, data: { "hmac-key": Buffer.from("ours") } };

  it("refuses to overwrite a cached Secret of the same name that it did not make for this owner", async () => {
    const { kube, requests } = fakeKube();
    const cache = memoryCache([secret("line-webhook", labelled)]);
    await expect(ensureOwnedSecret(kube, cache, desired)).rejects.toBeInstanceOf(SecretConflictError);
    const stale = memoryCache([secret("line-webhook", { ownerReferences: [{ ...owner, uid: "uid-deleted-line" }] })]);
    await expect(ensureOwnedSecret(kube, stale, desired)).rejects.toBeInstanceOf(SecretConflictError);
    expect(requests).toEqual([]);
  });

  it("reports a conflict when the create meets an unlabelled Secret the cache does not hold", async () => {
    const { kube, requests } = fakeKube([secret("line-webhook")]);
    const error = await ensureOwnedSecret(kube, memoryCache(), desired).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SecretConflictError);
    expect((error as Error).message).toContain("Secret ns/line-webhook exists and is not owned by WhatsAppInstance line");
    expect(requests).toEqual(["POST line-webhook", "GET line-webhook"]);
  });

  it("keeps the 409 (look again) when the Secret the create met is its own, not seen by the cache yet", async () => {
    const { kube } = fakeKube([secret("line-webhook", { ownerReferences: [owner] })]);
    const error = await ensureOwnedSecret(kube, memoryCache(), desired).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KubeError);
  });

  it("updates its own Secret and deletes only its own", async () => {
    const { kube, requests } = fakeKube();
    const cache = memoryCache([secret("line-webhook", { ownerReferences: [owner] }), secret("line-qr", labelled)]);
    expect(await ensureOwnedSecret(kube, cache, desired)).toBe(true);
    expect(await deleteOwnedSecret(kube, cache, "ns", "line-qr", "uid-line")).toBe(false);
    expect(await deleteOwnedSecret(kube, cache, "ns", "line-webhook", "uid-line")).toBe(true);
    expect(requests).toEqual(["PUT line-webhook", "DELETE line-webhook"]);
  });
});

describe("the Secrets cache", () => {
  it("keeps no annotation but ours, so last-applied-configuration never holds a value in memory", () => {
    const shaped = slimSecret(() => true)(
      secret("key", {
        annotations: { "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"api-key":"secret"}}', "wa-operator.io/pairing-code-requested-at": "2026-12-01T10:00:00Z" },
      }),
    );
    expect(shaped.metadata.annotations).toEqual({ "wa-operator.io/pairing-code-requested-at": "2026-12-01T10:00:00Z" });
    expect(slimSecret(() => false)(secret("key", { annotations: { note: "x" } })).metadata.annotations).toBeUndefined();
  });
});
