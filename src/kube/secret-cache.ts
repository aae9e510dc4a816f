/**
 * Secrets as the operator sees them: an informer cache that keeps only what a pass needs
 * (the values of the few Secrets the operator reads, a digest of the rest), a reader for
 * referenced values that asks the API server only when the cached version moved on, and
 * writes of owned Secrets that happen only when the content differs.
 */
import { createHash } from "node:crypto";
import { isConflict, type KubeClient } from "./client.ts";
import { isNewer, SECRETS, type KubeObject, type OwnerReference } from "./resources.ts";
import { isCredential, requiredSecretValue, SecretConflictError, UnlabelledSecretError, type SecretObject } from "./secrets.ts";

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

/** Annotations the cache keeps: ours only (`kubectl.kubernetes.io/last-applied-configuration` holds the values again). */
const OUR_ANNOTATIONS = "wa-operator.io/";

/**
 * The informer's transform: values stay only where `keepData` says the operator reads
 * them from the cache; everything else becomes a digest, so the operator holds their
 * metadata only. Annotations other than ours are dropped on the way in.
 */
export function slimSecret(keepData: (secret: SecretObject) => boolean): (object: SecretObject) => SlimSecret {
  return (input) => {
    const object = withOurAnnotations(input);
    const digest = dataDigest(object.data);
    const filled = Object.values(object.data ?? {}).some((value) => value.length > 0);
    if (keepData(object)) return { ...object, dataDigest: digest, filled };
    const { data: _values, ...rest } = object;
    return { ...rest, dataDigest: digest, filled };
  };
}

function withOurAnnotations<T extends KubeObject>(object: T): T {
  const annotations = object.metadata.annotations;
  if (!annotations) return object;
  const kept = Object.entries(annotations).filter(([key]) => key.startsWith(OUR_ANNOTATIONS));
  if (kept.length === Object.keys(annotations).length) return object;
  const { annotations: _dropped, ...metadata } = object.metadata;
  return { ...object, metadata: kept.length > 0 ? { ...metadata, annotations: Object.fromEntries(kept) } : metadata };
}

/** Whether `secret` carries the controller reference of the object with this uid (so the operator made it for that object). */
export function isOwnedBy(secret: KubeObject, ownerUid: string | undefined): boolean {
  return ownerUid !== undefined && (secret.metadata.ownerReferences ?? []).some((reference) => reference.controller === true && reference.uid === ownerUid);
}

/**
 * Values of Secrets: those a spec references (credentials, PINs, a user's HMAC key), which
 * must carry the credential label, and the operator's own. The cache holds only labelled
 * and owned Secrets, so a referenced one it lacks is looked up once to tell "absent" from
 * "not labelled". A value is fetched once per version of its Secret.
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

  /**
   * A Secret a spec references, with its data; undefined when it does not exist, and
   * UnlabelledSecretError when its owner has not labelled it for the operator. Every
   * referenced Secret is read here, so every path (providers, instances, modules) inherits
   * the check.
   */
  async secret(namespace: string, name: string): Promise<SecretObject | undefined> {
    // Judged on the cached metadata first, so an unlabelled Secret's values are never fetched.
    const cached = this.cache.covers(namespace) ? this.cache.get(`${namespace}/${name}`) : undefined;
    if (cached && !isCredential(cached)) throw new UnlabelledSecretError(namespace, name);
    const found = (await this.read(namespace, name)) ?? (this.cache.covers(namespace) ? await this.kube.find<SecretObject>(SECRETS, namespace, name) : undefined);
    // An unlabelled Secret's values are dropped here, never decoded.
    if (found && !isCredential(found)) throw new UnlabelledSecretError(namespace, name);
    return found;
  }

  /** One of the operator's own Secrets, made for the object with `ownerUid`; undefined when absent or someone else's. */
  async owned(namespace: string, name: string, ownerUid: string | undefined): Promise<SecretObject | undefined> {
    const found = await this.read(namespace, name);
    return found && isOwnedBy(found, ownerUid) ? found : undefined;
  }

  /** From the cache (a GET when a new version has values the cache does not keep); undefined when the cache lacks it. */
  private async read(namespace: string, name: string): Promise<SecretObject | undefined> {
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
 * conflict (KubeError 409) means "look again". A Secret of that name without our
 * controller reference to `desired.owner` is never written: SecretConflictError. Returns
 * whether it wrote.
 */
export async function ensureOwnedSecret(kube: KubeClient, cache: SecretCache, desired: OwnedSecret): Promise<boolean> {
  const encoded = Object.fromEntries(Object.entries(desired.data).map(([key, value]) => [key, value.toString("base64")]));
  const current = cache.get(`${desired.namespace}/${desired.name}`);
  const owner = `${desired.owner.kind} ${desired.owner.name}`;
  if (current && !isOwnedBy(current, desired.owner.uid)) throw new SecretConflictError(desired.namespace, desired.name, owner);
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
    : await kube.create<SecretObject>(SECRETS, desired.namespace, body).catch((error: unknown) => alreadyThere(kube, desired, owner, error));
  cache.remember(written);
  return true;
}

/**
 * A create answered 409 AlreadyExists: either the cache has not seen our Secret yet (the
 * 409 stands, and the pass looks again) or a Secret the cache does not select (a user's,
 * unlabelled) has the name: SecretConflictError.
 */
async function alreadyThere(kube: KubeClient, desired: OwnedSecret, owner: string, error: unknown): Promise<never> {
  if (!isConflict(error)) throw error;
  const existing = await kube.find<SecretObject>(SECRETS, desired.namespace, desired.name);
  if (existing && !isOwnedBy(existing, desired.owner.uid)) throw new SecretConflictError(desired.namespace, desired.name, owner);
  throw error;
}

/** Deletes the Secret the cache has under this name when it is ours (made for `ownerUid`); anyone else's is left alone. */
export async function deleteOwnedSecret(kube: KubeClient, cache: SecretCache, namespace: string, name: string, ownerUid: string | undefined): Promise<boolean> {
  const current = cache.get(`${namespace}/${name}`);
  if (!current || !isOwnedBy(current, ownerUid)) return false;
  await kube.delete(SECRETS, namespace, name, current.metadata.uid ? { uid: current.metadata.uid } : undefined);
  cache.forget(namespace, `${namespace}/${name}`);
  return true;
}
