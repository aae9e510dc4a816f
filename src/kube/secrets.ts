/** Secret values: decoding, and the error that names what is missing. */
import { redactor } from "../redaction.ts";
import type { KubeObject } from "./resources.ts";

export interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

/**
 * The label a user puts on a Secret to let the operator read it. Without it the operator
 * never uses a Secret's values, so naming a Secret in a spec (which `wa-operator-edit`
 * allows) does not grant reading it: only someone who may write the Secret can consent.
 */
export const CREDENTIAL_LABEL = "wa-operator.io/credential";
/** The label on every Secret the operator creates; the informer and the admission policy select on it. */
export const MANAGED_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = { [MANAGED_LABEL]: "wa-operator" } as const;

/** Whether a user allowed the operator to read this Secret. */
export function isCredential(secret: KubeObject): boolean {
  return secret.metadata.labels?.[CREDENTIAL_LABEL] === "true";
}

/** A referenced Secret the operator may not use; `reason` is the Stalled reason it maps to. */
export class MissingSecretError extends Error {
  readonly secret: string;
  readonly reason: "SecretNotFound" | "SecretNotLabelled" = "SecretNotFound";
  constructor(namespace: string, name: string, key?: string) {
    super(key ? `Secret ${namespace}/${name} has no key "${key}"` : `Secret ${namespace}/${name} does not exist`);
    this.name = "MissingSecretError";
    this.secret = `${namespace}/${name}`;
  }
}

/** A referenced Secret exists but its owner has not labelled it for the operator: its values stay unread. */
export class UnlabelledSecretError extends MissingSecretError {
  override readonly reason = "SecretNotLabelled";
  constructor(namespace: string, name: string) {
    super(namespace, name);
    this.name = "UnlabelledSecretError";
    this.message = `Secret ${namespace}/${name} is not labelled ${CREDENTIAL_LABEL}: "true"; the operator reads only Secrets so labelled (kubectl label secret -n ${namespace} ${name} ${CREDENTIAL_LABEL}=true)`;
  }
}

/** A Secret the operator would write or delete carries no controller reference to the object it belongs to: it is left alone. */
export class SecretConflictError extends Error {
  readonly secret: string;
  constructor(namespace: string, name: string, owner: string) {
    super(`Secret ${namespace}/${name} exists and is not owned by ${owner}; the operator leaves it alone (delete or rename it, and the operator creates its own)`);
    this.name = "SecretConflictError";
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
