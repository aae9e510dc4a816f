/**
 * The Secrets an instance owns: <name>-qr (qr.png, qr.txt, pairing-code) and
 * <name>-webhook (url, events, hmac-key). Both carry an owner reference to the
 * instance, so the garbage collector removes them with it.
 */
import { randomBytes } from "node:crypto";
import type { KubeClient } from "../../kube/client.ts";
import { SECRETS, apiVersionOf, INSTANCES, type OwnerReference } from "../../kube/resources.ts";
import { decodeSecretData, ensureOwnedSecret, readSecretValue, type SecretObject } from "../../kube/secrets.ts";
import type { InstanceSpec } from "../../api/instance.ts";
import type { InstanceObject } from "../context.ts";

export const QR_KEYS = { png: "qr.png", text: "qr.txt", pairingCode: "pairing-code" } as const;
export const WEBHOOK_KEYS = { url: "url", events: "events", hmacKey: "hmac-key" } as const;
export const PAIRING_REQUESTED_AT = "wa-operator.io/pairing-code-requested-at";
const MANAGED_BY = { "app.kubernetes.io/managed-by": "wa-operator" };

export const qrSecretName = (instance: string) => `${instance}-qr`;
export const webhookSecretName = (instance: string) => `${instance}-webhook`;

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

export interface QrSecretState {
  readonly secret: SecretObject | undefined;
  readonly text: string | undefined;
  readonly png: Buffer | undefined;
  readonly pairingCodeRequestedAt: number | undefined;
  readonly filled: boolean;
}

export async function readQrSecret(kube: KubeClient, instance: InstanceObject): Promise<QrSecretState> {
  const secret = await kube.find<SecretObject>(SECRETS, instance.metadata.namespace, qrSecretName(instance.metadata.name));
  const data = decodeSecretData(secret);
  const requestedAt = secret?.metadata.annotations?.[PAIRING_REQUESTED_AT];
  return {
    secret,
    text: data[QR_KEYS.text]?.toString("utf8"),
    png: data[QR_KEYS.png],
    pairingCodeRequestedAt: requestedAt && data[QR_KEYS.pairingCode] ? Date.parse(requestedAt) : undefined,
    filled: Object.values(data).some((value) => value.length > 0),
  };
}

/** Writes the QR Secret; returns whether its content changed. */
export function writeQrSecret(
  kube: KubeClient,
  instance: InstanceObject,
  current: SecretObject | undefined,
  content: { png?: Buffer; text?: string; pairingCode?: string; pairingRequestedAt?: string },
): Promise<boolean> {
  const data: Record<string, Buffer> = {};
  if (content.png) data[QR_KEYS.png] = content.png;
  if (content.text) data[QR_KEYS.text] = Buffer.from(content.text);
  if (content.pairingCode) data[QR_KEYS.pairingCode] = Buffer.from(content.pairingCode);
  return ensureOwnedSecret(kube, {
    namespace: instance.metadata.namespace as string,
    name: qrSecretName(instance.metadata.name),
    owner: ownerReferenceTo(instance),
    data,
    labels: MANAGED_BY,
    annotations: { [PAIRING_REQUESTED_AT]: content.pairingRequestedAt ?? "" },
    current,
  });
}

/**
 * The HMAC key for spec.webhook: from the user's secretRef, or from <name>-webhook,
 * which is created (with a new random 32-byte key) or updated to the spec's url and
 * events, keeping its key.
 */
export async function ensureWebhookKey(kube: KubeClient, instance: InstanceObject, webhook: NonNullable<InstanceSpec["webhook"]>): Promise<string> {
  const namespace = instance.metadata.namespace as string;
  if (webhook.secretRef) return readSecretValue(kube, namespace, webhook.secretRef.name, webhook.secretRef.key);
  const name = webhookSecretName(instance.metadata.name);
  const current = await kube.find<SecretObject>(SECRETS, namespace, name);
  const existingKey = decodeSecretData(current)[WEBHOOK_KEYS.hmacKey]?.toString("utf8");
  const hmacKey = existingKey && existingKey.length >= 64 ? existingKey : randomBytes(32).toString("hex");
  await ensureOwnedSecret(kube, {
    namespace,
    name,
    owner: ownerReferenceTo(instance),
    data: {
      [WEBHOOK_KEYS.url]: Buffer.from(webhook.url),
      [WEBHOOK_KEYS.events]: Buffer.from(webhook.events.join(",")),
      [WEBHOOK_KEYS.hmacKey]: Buffer.from(hmacKey),
    },
    labels: MANAGED_BY,
    current,
  });
  return hmacKey;
}
