/** Secret values: decoding, and the error that names what is missing. */
import { redactor } from "../redaction.ts";
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

/** One value of a Secret, decoded and trimmed. Throws MissingSecretError when the Secret or the key is absent. */
export function requiredSecretValue(secret: SecretObject | undefined, namespace: string, name: string, key: string): string {
  if (!secret) throw new MissingSecretError(namespace, name);
  const value = secretValue(secret, key);
  if (value === undefined) throw new MissingSecretError(namespace, name, key);
  return value;
}

/**
 * A credential from a Secret's data, decoded and trimmed, or undefined when absent. Every
 * credential the operator reads passes here, so the process-wide redactor learns it
 * before any text that could carry it leaves the process: in the scope of the namespace
 * whose objects it serves (the Secret's own by default; the operator's, hidden everywhere,
 * for what a cluster-scoped provider uses on behalf of every namespace).
 */
export function secretValue(secret: SecretObject | undefined, key: string, scope: string | undefined = secret?.metadata.namespace): string | undefined {
  const encoded = secret?.data?.[key];
  if (encoded === undefined) return undefined;
  const value = Buffer.from(encoded, "base64").toString("utf8").trim();
  redactor.in(scope).remember(value);
  return value;
}

export function decodeSecretData(secret: SecretObject | undefined): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(secret?.data ?? {}).map(([key, value]) => [key, Buffer.from(value, "base64")]));
}
