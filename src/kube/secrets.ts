/** Reading Secret values and writing the Secrets the operator owns. */
import { redactor } from "../redaction.ts";
import type { KubeClient } from "./client.ts";
import { isNotFound } from "./client.ts";
import { SECRETS, type KubeObject, type OwnerReference } from "./resources.ts";

export interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

export class MissingSecretError extends Error {
  readonly secret: string;
  constructor(namespace: string, name: string, key?: string) {
    super(key ? `Secret ${namespace}/${name} has no key "${key}"` : `Secret ${namespace}/${name} does not exist`);
    this.name = "MissingSecretError";
    this.secret = `${namespace}/${name}`;
  }
}

/** One value of a Secret, decoded and trimmed. Throws MissingSecretError when absent. */
export async function readSecretValue(kube: KubeClient, namespace: string, name: string, key: string): Promise<string> {
  const secret = await kube.find<SecretObject>(SECRETS, namespace, name);
  if (!secret) throw new MissingSecretError(namespace, name);
  const value = secretValue(secret, key);
  if (value === undefined) throw new MissingSecretError(namespace, name, key);
  return value;
}

/**
 * A credential from a Secret's data, decoded and trimmed, or undefined when absent. Every
 * credential the operator reads passes here, so the process-wide redactor learns it
 * before any text that could carry it leaves the process.
 */
export function secretValue(secret: SecretObject | undefined, key: string): string | undefined {
  const encoded = secret?.data?.[key];
  if (encoded === undefined) return undefined;
  const value = Buffer.from(encoded, "base64").toString("utf8").trim();
  redactor.remember(value);
  return value;
}

export function decodeSecretData(secret: SecretObject | undefined): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(secret?.data ?? {}).map(([key, value]) => [key, Buffer.from(value, "base64")]));
}

/**
 * Makes an operator-owned Secret hold exactly `data` (plus the given annotations),
 * creating it with an owner reference so it is garbage-collected with its owner.
 * Writes nothing when it already matches. Returns whether it wrote.
 */
export async function ensureOwnedSecret(
  kube: KubeClient,
  options: {
    namespace: string;
    name: string;
    owner: OwnerReference;
    data: Record<string, Buffer>;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    current?: SecretObject | undefined;
  },
): Promise<boolean> {
  const current = options.current ?? (await kube.find<SecretObject>(SECRETS, options.namespace, options.name));
  const encoded = Object.fromEntries(Object.entries(options.data).map(([key, value]) => [key, value.toString("base64")]));
  if (!current) {
    await kube.create(SECRETS, options.namespace, {
      apiVersion: "v1",
      kind: "Secret",
      type: "Opaque",
      metadata: {
        name: options.name,
        namespace: options.namespace,
        labels: options.labels,
        annotations: options.annotations,
        ownerReferences: [options.owner],
      },
      data: encoded,
    });
    return true;
  }
  const sameData = sameRecord(current.data ?? {}, encoded);
  const sameAnnotations = Object.entries(options.annotations ?? {}).every(([key, value]) => current.metadata.annotations?.[key] === value);
  if (sameData && sameAnnotations) return false;
  await kube.replace(SECRETS, options.namespace, options.name, {
    ...current,
    metadata: {
      ...current.metadata,
      annotations: { ...current.metadata.annotations, ...options.annotations },
    },
    data: encoded,
  });
  return true;
}

export async function deleteSecret(kube: KubeClient, namespace: string, name: string): Promise<void> {
  try {
    await kube.delete(SECRETS, namespace, name);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}
