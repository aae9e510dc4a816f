/** Secret values: decoding, and the error that names what is missing. */
import type { KubeObject } from "./resources.ts";

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

/**
 * One value of a Secret, decoded and trimmed. Every credential the operator holds passes
 * through here. Throws MissingSecretError when the Secret or the key is absent.
 */
export function secretValue(secret: SecretObject | undefined, namespace: string, name: string, key: string): string {
  if (!secret) throw new MissingSecretError(namespace, name);
  const encoded = secret.data?.[key];
  if (encoded === undefined) throw new MissingSecretError(namespace, name, key);
  return Buffer.from(encoded, "base64").toString("utf8").trim();
}

export function decodeSecretData(secret: SecretObject | undefined): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(secret?.data ?? {}).map(([key, value]) => [key, Buffer.from(value, "base64")]));
}
