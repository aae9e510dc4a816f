/**
 * The Secrets an instance owns: <name>-qr (qr.png, qr.txt, pairing-code) and
 * <name>-webhook (url, events, hmac-key). Both carry an owner reference to the
 * instance, so the garbage collector removes them with it. Read from the cache; written
 * only when their content differs.
 */
import { randomBytes } from "node:crypto";
import type { InstanceSpec } from "../../api/instance.ts";
import type { KubeClient } from "../../kube/client.ts";
import { apiVersionOf, INSTANCES, type OwnerReference } from "../../kube/resources.ts";
import { deleteOwnedSecret, ensureOwnedSecret, isOwnedBy, type SecretCache, type SlimSecret } from "../../kube/secret-cache.ts";
import { decodeSecretData, MANAGED_BY, type SecretObject } from "../../kube/secrets.ts";
import type { InstanceObject } from "../context.ts";

export const QR_KEYS = { png: "qr.png", text: "qr.txt", pairingCode: "pairing-code" } as const;
export const WEBHOOK_KEYS = { url: "url", events: "events", hmacKey: "hmac-key" } as const;
export const PAIRING_REQUESTED_AT = "wa-operator.io/pairing-code-requested-at";

export const qrSecretName = (instance: string) => `${instance}-qr`;
export const webhookSecretName = (instance: string) => `${instance}-webhook`;

/** Which of our Secrets the cache keeps values of: webhook keys are read on every pass that wires a provider. */
export function isWebhookSecret(secret: SecretObject): boolean {
  return (secret.metadata.ownerReferences ?? []).some(
    (owner) => owner.kind === INSTANCES.kind && secret.metadata.name === webhookSecretName(owner.name),
  );
}

export function ownerReferenceTo(instance: InstanceObject): OwnerReference {
  return {
    apiVersion: apiVersionOf(INSTANCES),
    kind: INSTANCES.kind,
    name: instance.metadata.name,
    uid: instance.metadata.uid as string,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** What a pass needs to know of <name>-qr, from the cache. */
export interface QrSecretState {
  readonly filled: boolean;
  readonly pairingCodeRequestedAt: number | undefined;
}

/** One of the instance's own Secrets from the cache; a Secret of that name made by anyone else counts as absent. */
function ownSecret(cache: SecretCache, instance: InstanceObject, name: string): SlimSecret | undefined {
  const secret = cache.get(`${instance.metadata.namespace}/${name}`);
  return secret && isOwnedBy(secret, instance.metadata.uid) ? secret : undefined;
}

export function qrSecretState(cache: SecretCache, instance: InstanceObject): QrSecretState {
  const secret = ownSecret(cache, instance, qrSecretName(instance.metadata.name));
  const requestedAt = secret?.metadata.annotations?.[PAIRING_REQUESTED_AT];
  return {
    filled: secret?.filled ?? false,
    pairingCodeRequestedAt: requestedAt && secret?.filled ? Date.parse(requestedAt) : undefined,
  };
}

/** The digest of the instance's own QR Secret as the cache has it (undefined when it has none). */
export function qrSecretDigest(cache: SecretCache, instance: InstanceObject): string | undefined {
  return ownSecret(cache, instance, qrSecretName(instance.metadata.name))?.dataDigest;
}

/** Writes the QR Secret; returns whether its content changed. */
export function writeQrSecret(
  kube: KubeClient,
  cache: SecretCache,
  instance: InstanceObject,
  content: { png?: Buffer; text?: string; pairingCode?: string; pairingRequestedAt?: string },
): Promise<boolean> {
  const data: Record<string, Buffer> = {};
  if (content.png) data[QR_KEYS.png] = content.png;
  if (content.text) data[QR_KEYS.text] = Buffer.from(content.text);
  if (content.pairingCode) data[QR_KEYS.pairingCode] = Buffer.from(content.pairingCode);
  return ensureOwnedSecret(kube, cache, {
    namespace: instance.metadata.namespace as string,
    name: qrSecretName(instance.metadata.name),
    owner: ownerReferenceTo(instance),
    data,
    labels: MANAGED_BY,
    annotations: { [PAIRING_REQUESTED_AT]: content.pairingRequestedAt ?? "" },
  });
}

/** <name>-webhook as the cache has it: whether it matches spec.webhook, and the key it holds. */
export interface WebhookSecretState {
  readonly state: "absent" | "current" | "stale";
  /** The key to wire the provider with: the one kept, or a new random one to be written ("" without spec.webhook). */
  readonly hmacKey: string;
}

export function webhookSecretState(cache: SecretCache, instance: InstanceObject, webhook: InstanceSpec["webhook"]): WebhookSecretState {
  const current = ownSecret(cache, instance, webhookSecretName(instance.metadata.name));
  const data = decodeSecretData(current);
  const kept = data[WEBHOOK_KEYS.hmacKey]?.toString("utf8");
  // A new key is drawn only for a webhook to wire: an instance without one pays nothing per pass.
  const hmacKey = kept && kept.length >= 64 ? kept : webhook ? randomBytes(32).toString("hex") : "";
  if (!current) return { state: "absent", hmacKey };
  const matches =
    webhook !== undefined &&
    hmacKey === kept &&
    data[WEBHOOK_KEYS.url]?.toString("utf8") === webhook.url &&
    data[WEBHOOK_KEYS.events]?.toString("utf8") === webhook.events.join(",");
  return { state: matches ? "current" : "stale", hmacKey };
}

export function writeWebhookSecret(
  kube: KubeClient,
  cache: SecretCache,
  instance: InstanceObject,
  webhook: NonNullable<InstanceSpec["webhook"]>,
  hmacKey: string,
): Promise<boolean> {
  return ensureOwnedSecret(kube, cache, {
    namespace: instance.metadata.namespace as string,
    name: webhookSecretName(instance.metadata.name),
    owner: ownerReferenceTo(instance),
    data: {
      [WEBHOOK_KEYS.url]: Buffer.from(webhook.url),
      [WEBHOOK_KEYS.events]: Buffer.from(webhook.events.join(",")),
      [WEBHOOK_KEYS.hmacKey]: Buffer.from(hmacKey),
    },
    labels: MANAGED_BY,
  });
}

export function deleteWebhookSecret(kube: KubeClient, cache: SecretCache, instance: InstanceObject): Promise<boolean> {
  return deleteOwnedSecret(kube, cache, instance.metadata.namespace as string, webhookSecretName(instance.metadata.name), instance.metadata.uid);
}
