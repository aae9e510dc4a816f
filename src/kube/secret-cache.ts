/**
 * Secrets as the operator sees them: an informer cache that keeps only what a pass needs
 * (the values of the few Secrets the operator reads, a digest of the rest), a reader for
 * referenced values that asks the API server only when the cached version moved on, and
 * writes of owned Secrets that happen only when the content differs.
 */
import { createHash } from "node:crypto";
import type { KubeClient } from "./client.ts";
import { isNewer, SECRETS, type OwnerReference } from "./resources.ts";
import { requiredSecretValue, type SecretObject } from "./secrets.ts";

/** What the cache keeps in place of `data` for Secrets whose values it does not hold. */
export interface SlimSecret extends SecretObject {
  /** Short sha256 of the data: equal digests mean equal content. */
  readonly dataDigest?: string;
  /** Whether any value is non-empty (a filled QR Secret is emptied once linked). */
  readonly filled?: boolean;
}

/** The view of the Secrets informer a pass reads from. */
export interface SecretCache {
  get(key: string): SlimSecret | undefined;
  remember(object: SlimSecret): void;
  forget(namespace: string | undefined, key: string): void;
  covers(namespace: string | undefined): boolean;
}

export function dataDigest(data: Readonly<Record<string, string>> | undefined): string {
  const entries = Object.entries(data ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash("sha256").update(JSON.stringify(entries)).digest("hex").slice(0, 16);
}

/**
 * The informer's transform: values stay only where `keepData` says the operator reads
 * them from the cache; everything else becomes a digest, so a cluster full of Secrets
 * costs the operator their metadata only.
 */
export function slimSecret(keepData: (secret: SecretObject) => boolean): (object: SecretObject) => SlimSecret {
  return (object) => {
    const digest = dataDigest(object.data);
    const filled = Object.values(object.data ?? {}).some((value) => value.length > 0);
    if (keepData(object)) return { ...object, dataDigest: digest, filled };
    const { data: _values, ...rest } = object;
    return { ...rest, dataDigest: digest, filled };
  };
}

/**
 * Values of referenced Secrets (credentials, PINs, a user's HMAC key). A Secret the cache
 * does not have, in a namespace the cache watches, does not exist: no request is made.
 * A value is fetched once per version of its Secret.
 */
export class SecretReader {
  private readonly kube: KubeClient;
  private readonly cache: SecretCache;
  private readonly fetched = new Map<string, SecretObject>();

  constructor(options: { kube: KubeClient; cache: SecretCache }) {
    this.kube = options.kube;
    this.cache = options.cache;
  }

  /** One value, decoded and trimmed; MissingSecretError when the Secret or key is absent. */
  async value(namespace: string, name: string, key: string): Promise<string> {
    return requiredSecretValue(await this.secret(namespace, name), namespace, name, key);
  }

  /** The Secret with its data, or undefined when it does not exist. */
  async secret(namespace: string, name: string): Promise<SecretObject | undefined> {
    const id = `${namespace}/${name}`;
    if (!this.cache.covers(namespace)) return this.kube.find<SecretObject>(SECRETS, namespace, name);
    const cached = this.cache.get(id);
    if (!cached) {
      this.fetched.delete(id);
      return undefined;
    }
    if (cached.data) return cached;
    const known = this.fetched.get(id);
    if (known && !isNewer(cached, known)) return known;
    const fresh = await this.kube.find<SecretObject>(SECRETS, namespace, name);
    if (fresh) this.fetched.set(id, fresh);
    else this.fetched.delete(id);
    return fresh;
  }

  /** Drops what is held of a Secret that was deleted. */
  drop(namespace: string, name: string): void {
    this.fetched.delete(`${namespace}/${name}`);
  }
}

/** An owned Secret as it should be. */
export interface OwnedSecret {
  readonly namespace: string;
  readonly name: string;
  readonly owner: OwnerReference;
  readonly data: Readonly<Record<string, Buffer>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * Makes an owned Secret hold exactly `desired.data` (and its annotations), judged from the
 * cache: nothing is written when the digest and annotations already match, a missing one
 * is created without a GET first, and a replace carries the cached resourceVersion, so a
 * conflict (KubeError 409) means "look again". Returns whether it wrote.
 */
export async function ensureOwnedSecret(kube: KubeClient, cache: SecretCache, desired: OwnedSecret): Promise<boolean> {
  const encoded = Object.fromEntries(Object.entries(desired.data).map(([key, value]) => [key, value.toString("base64")]));
  const current = cache.get(`${desired.namespace}/${desired.name}`);
  const sameAnnotations = Object.entries(desired.annotations ?? {}).every(([key, value]) => (current?.metadata.annotations?.[key] ?? "") === value);
  if (current && current.dataDigest === dataDigest(encoded) && sameAnnotations) return false;
  const body = {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: {
      name: desired.name,
      namespace: desired.namespace,
      labels: { ...current?.metadata.labels, ...desired.labels },
      annotations: { ...current?.metadata.annotations, ...desired.annotations },
      ownerReferences: current?.metadata.ownerReferences ?? [desired.owner],
      ...(current ? { resourceVersion: current.metadata.resourceVersion } : {}),
    },
    data: encoded,
  };
  const written = current
    ? await kube.replace<SecretObject>(SECRETS, desired.namespace, desired.name, body)
    : // A 409 AlreadyExists means the cache has not seen it yet: the pass looks again.
      await kube.create<SecretObject>(SECRETS, desired.namespace, body);
  cache.remember(written);
  return true;
}

/** Deletes an owned Secret the cache says exists; nothing at all when it does not. */
export async function deleteOwnedSecret(kube: KubeClient, cache: SecretCache, namespace: string, name: string): Promise<boolean> {
  const current = cache.get(`${namespace}/${name}`);
  if (!current) return false;
  await kube.delete(SECRETS, namespace, name, current.metadata.uid ? { uid: current.metadata.uid } : undefined);
  cache.forget(namespace, `${namespace}/${name}`);
  return true;
}
