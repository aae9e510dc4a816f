/**
 * Observe: everything a plan needs, read-only. Kubernetes state comes from the informer
 * caches (the instance, its Secrets, the provider and its credentials); the provider is
 * asked one thing, the session. Nothing here writes.
 */
import { instanceSpecSchema, type InstanceSpec, type InstanceStatus } from "../../api/instance.ts";
import { PROVIDER_MODULES } from "../../providers/registry.ts";
import type { InstanceRef, ObservedSession, ProviderInstanceFields } from "../../providers/types.ts";
import type { InstanceObject, OperatorContext } from "../context.ts";
import { ProviderResolutionError, type ResolvedProvider } from "../provider/connections.ts";
import { sessionClaim, type SessionClaim } from "./claims.ts";
import { instancesUsing, providerRefOf } from "./provider-ref.ts";
import { qrRefreshAt } from "./next-look.ts";
import type { PlanInput } from "./plan.ts";
import { startSlotsOf, startSlotView } from "./start-slots.ts";
import { qrSecretState, webhookSecretState, type QrSecretState, type WebhookSecretState } from "./secrets.ts";

export interface InstanceObservation {
  readonly provider: ResolvedProvider;
  /** What the provider client is told about the instance (credentials resolved). */
  readonly ref: InstanceRef;
  /** The provider's side, or null when it has none (or may not have one yet: quota). */
  readonly session: ObservedSession | null;
  readonly quota: { readonly allowed: boolean; readonly message: string };
  /** The existing session the spec names, and whether another instance holds the claim on it. */
  readonly claim: SessionClaim | undefined;
  readonly qrSecret: QrSecretState;
  readonly webhookSecret: WebhookSecretState;
}

/** The provider, credentials and Secrets of an instance; no provider call. */
export async function observeLocal(
  ctx: OperatorContext,
  instance: InstanceObject,
  spec: InstanceSpec,
  status: InstanceStatus,
): Promise<Omit<InstanceObservation, "session">> {
  const namespace = instance.metadata.namespace as string;
  const provider = await ctx.connections.resolve(providerRefOf(instance, spec), namespace);
  const apiKey = spec.credentialsSecretRef ? await ctx.secrets.value(namespace, spec.credentialsSecretRef.name, spec.credentialsSecretRef.key) : undefined;
  const own = await providerFields(ctx, namespace, spec, provider, false);
  const webhookSecret = webhookSecretState(ctx.caches.secrets, instance, spec.webhook);
  let webhook: InstanceRef["webhook"];
  if (spec.webhook) {
    const hmacKey = spec.webhook.secretRef
      ? await ctx.secrets.value(namespace, spec.webhook.secretRef.name, spec.webhook.secretRef.key)
      : webhookSecret.hmacKey;
    webhook = { url: spec.webhook.url, events: spec.webhook.events, hmacKey };
  }
  const ref: InstanceRef = {
    namespace,
    name: instance.metadata.name,
    uid: instance.metadata.uid as string,
    ...(spec.displayName ? { displayName: spec.displayName } : {}),
    ...(status.providerInstanceId || spec.adopt ? { providerInstanceId: status.providerInstanceId ?? spec.adopt?.id } : {}),
    ...(!status.providerInstanceId && spec.adopt ? { adopting: true } : {}),
    ...(apiKey !== undefined ? { apiKey } : {}),
    ...own,
    ...(spec.pairing?.method === "Code" && spec.pairing.phoneNumber ? { pairingPhoneNumber: spec.pairing.phoneNumber } : {}),
    ...(webhook ? { webhook } : {}),
    // What we wired last, so that unwiring removes only ours (cloud_api's per-number override).
    ...(status.webhook?.url ? { previousWebhookUrl: status.webhook.url } : {}),
    ...(provider.events ? { providerEvents: provider.events } : {}),
  };
  return {
    provider,
    ref,
    quota: quotaFor(ctx, instance, provider),
    claim: sessionClaim(ctx, instance, spec, provider),
    qrSecret: qrSecretState(ctx.caches.secrets, instance),
    webhookSecret,
  };
}

/** The provider module's own InstanceRef fields (its instanceOptions), with its Secrets read. */
export async function providerFields(
  ctx: OperatorContext,
  namespace: string,
  spec: InstanceSpec,
  provider: ResolvedProvider,
  cleanup: boolean,
): Promise<ProviderInstanceFields> {
  const options = PROVIDER_MODULES[provider.type].instanceOptions;
  if (!options) return {};
  const fields = await options(spec, { readSecret: (name, key) => ctx.secrets.value(namespace, name, key), cleanup });
  if ("invalid" in fields) throw new ProviderResolutionError("InvalidSpec", fields.invalid);
  return fields;
}

/**
 * observeLocal, then the one provider read: the session (none while waiting for a quota
 * slot). `known` is a session a step of this pass just answered with (create): no need to ask.
 */
export async function observeInstance(
  ctx: OperatorContext,
  instance: InstanceObject,
  spec: InstanceSpec,
  status: InstanceStatus,
  known?: ObservedSession,
  onProvider?: (provider: ResolvedProvider) => void,
): Promise<InstanceObservation> {
  const local = await observeLocal(ctx, instance, spec, status);
  onProvider?.(local.provider);
  // An instance waiting for a quota slot has nothing at the provider yet: it makes no call at all;
  // nor does one the tenant boundary refuses (the planner says why): it does not even read the session.
  const refused = local.claim?.heldElsewhere !== undefined || (local.claim?.adopts === true && local.provider.adoption === "Disabled");
  const session = refused ? null : (known ?? (local.quota.allowed || status.providerInstanceId ? await local.provider.client.observe(local.ref) : null));
  // Seen out of its start (a QR, working, failed or stopped): its start slot is free again.
  if (session && session.phase !== "Starting") startSlotsOf(ctx).release(local.provider.key, `${instance.metadata.namespace}/${instance.metadata.name}`);
  return { ...local, session };
}

/** The planner's input: the observation, the status so far, and the clock. */
export function planInputOf(
  ctx: OperatorContext,
  instance: InstanceObject,
  spec: InstanceSpec,
  status: InstanceStatus,
  observation: InstanceObservation,
): PlanInput {
  const pacing = ctx.pacing.get(`${instance.metadata.namespace}/${instance.metadata.name}`);
  const refreshAt = pacing?.qr ? qrRefreshAt(pacing.qr.fetchedAt, pacing.qr.validForMs, ctx.config.qrRefreshInterval) : undefined;
  return {
    now: ctx.clock.now(),
    name: instance.metadata.name,
    spec,
    status,
    uid: instance.metadata.uid as string,
    providerType: observation.provider.type,
    capabilities: observation.provider.client.capabilities,
    session: observation.session,
    quota: observation.quota,
    claim: observation.claim,
    adoption: observation.provider.adoption,
    ownership: {
      proof: PROVIDER_MODULES[observation.provider.type].ownership.proof,
      adoptable: PROVIDER_MODULES[observation.provider.type].ownership.adoptable,
      canClaim: observation.provider.client.claim !== undefined,
    },
    ...(observation.qrSecret.pairingCodeRequestedAt !== undefined ? { pairingCode: { requestedAt: observation.qrSecret.pairingCodeRequestedAt } } : {}),
    qrSecretFilled: observation.qrSecret.filled,
    ...(refreshAt !== undefined ? { qrRefreshAt: refreshAt } : {}),
    webhookSecret: observation.webhookSecret.state,
    failureBackoff: { baseMs: ctx.config.failureBackoff, maxMs: ctx.config.failureBackoffMax },
    stuckTimeoutMs: ctx.config.stuckTimeout,
    startSlot: startSlotView(ctx, instance, observation.provider),
  };
}

/**
 * maxInstances, shared fairly between namespaces: instances that already have a provider
 * session hold their slots; the free ones go round the namespaces, each namespace's oldest
 * waiting instance first (by creation, then name), so one tenant creating a hundred
 * instances cannot take every slot of a shared provider. Only instances of namespaces the
 * provider lets in count.
 */
function quotaFor(ctx: OperatorContext, instance: InstanceObject, provider: ResolvedProvider): { allowed: boolean; message: string } {
  const max = provider.maxInstances;
  if (max === undefined) return { allowed: true, message: "" };
  const byAge = (a: InstanceObject, b: InstanceObject) =>
    (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? "") || a.metadata.name.localeCompare(b.metadata.name);
  const candidates = instancesUsing(ctx, provider.key)
    .filter((other) => !other.metadata.deletionTimestamp && ctx.connections.allows(provider.ref, other.metadata.namespace as string))
    .sort(byAge);
  const turn = new Map<InstanceObject, number>();
  const perNamespace = new Map<string, number>();
  for (const other of candidates) {
    const namespace = other.metadata.namespace as string;
    const index = perNamespace.get(namespace) ?? 0;
    perNamespace.set(namespace, index + 1);
    turn.set(other, index);
  }
  const holds = (other: InstanceObject) => (other.status?.providerInstanceId ? 0 : 1);
  const users = candidates.sort((a, b) => holds(a) - holds(b) || (turn.get(a) ?? 0) - (turn.get(b) ?? 0) || byAge(a, b));
  const rank = users.findIndex((other) => other.metadata.uid === instance.metadata.uid);
  const allowed = rank >= 0 && rank < max;
  return {
    allowed,
    message: allowed ? "" : `provider ${provider.object.metadata.name} allows ${max} instances and ${users.length} want one; this one waits for a free slot`,
  };
}

export { instancesUsing, providerRefOf } from "./provider-ref.ts";
