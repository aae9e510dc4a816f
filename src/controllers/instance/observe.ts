/**
 * Observe: everything a plan needs, read-only. Kubernetes state comes from the informer
 * caches (the instance, its Secrets, the provider and its credentials); the provider is
 * asked one thing, the session. Nothing here writes.
 */
import { instanceSpecSchema, type InstanceSpec, type InstanceStatus } from "../../api/instance.ts";
import { PROVIDER_MODULES } from "../../providers/registry.ts";
import type { InstanceRef, ObservedSession, ProviderInstanceFields } from "../../providers/types.ts";
import type { SessionSettings } from "../../providers/session-settings.ts";
import type { InstanceObject, OperatorContext, Pacing } from "../context.ts";
import { ProviderResolutionError, type ResolvedProvider } from "../provider/connections.ts";
import { sessionClaim, type SessionClaim } from "./claims.ts";
import { instancesUsing } from "./indexes.ts";
import { providerRefOf } from "./provider-ref.ts";
import { qrRefreshAt } from "./next-look.ts";
import type { PlanInput } from "./plan.ts";
import { startSlotView } from "./start-slots.ts";
import { qrSecretState, webhookSecretState, type QrSecretState, type WebhookSecretState } from "./secrets.ts";

export interface Quota {
  readonly allowed: boolean;
  readonly message: string;
}

export interface InstanceObservation {
  readonly provider: ResolvedProvider;
  /** What the provider client is told about the instance (credentials resolved). */
  readonly ref: InstanceRef;
  /** The provider's side, or null when it has none (or may not have one yet: quota). */
  readonly session: ObservedSession | null;
  /**
   * Whether the instance may hold a provider slot; asked only when it has no session, since
   * it ranks every instance of the provider (computed once per pass at most).
   */
  readonly quota: () => Quota;
  /** The existing session the spec names, and whether another instance holds the claim on it. */
  readonly claim: SessionClaim | undefined;
  readonly qrSecret: QrSecretState;
  readonly webhookSecret: WebhookSecretState;
  /** spec.session in the provider's shape, and the provider's own when this pass saw it (PlanInput.sessionSettings). */
  readonly sessionSettings?: { readonly desired: unknown; readonly observed?: unknown };
}

/** The provider, credentials and Secrets of an instance; no provider call. */
export async function observeLocal(
  ctx: OperatorContext,
  instance: InstanceObject,
  spec: InstanceSpec,
  status: InstanceStatus,
): Promise<Omit<InstanceObservation, "session" | "sessionSettings">> {
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
  const sessionSettings = spec.session ? await sessionSettingsOf(ctx, namespace, spec.session) : undefined;
  const sessionConfig = sessionSettings ? desiredSessionConfig(provider.type, sessionSettings) : undefined;
  const sessionSecrets = [sessionSettings?.proxy?.password].filter((value): value is string => value !== undefined && value !== "");
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
    ...(sessionConfig !== undefined ? { sessionConfig } : {}),
    ...(sessionSecrets.length > 0 ? { sessionSecrets } : {}),
    // What we wired last, so that unwiring removes only ours (cloud_api's per-number override).
    ...(status.webhook?.url ? { previousWebhookUrl: status.webhook.url } : {}),
    ...(provider.events ? { providerEvents: provider.events } : {}),
  };
  return {
    provider,
    ref,
    quota: once(() => quotaFor(ctx, instance, provider)),
    claim: sessionClaim(ctx, instance, spec, provider),
    qrSecret: qrSecretState(ctx.caches.secrets, instance),
    webhookSecret,
  };
}

/** The instance's own QR and webhook Secrets as the cache now holds them. */
export function ownSecretStates(ctx: OperatorContext, instance: InstanceObject, spec: InstanceSpec): Pick<InstanceObservation, "qrSecret" | "webhookSecret"> {
  return { qrSecret: qrSecretState(ctx.caches.secrets, instance), webhookSecret: webhookSecretState(ctx.caches.secrets, instance, spec.webhook) };
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
 * The one provider read of a pass: the session, with the instance's session id as the
 * pass knows it (`status`). No call for an instance waiting for a quota slot (nothing at
 * the provider yet), for one the tenant boundary refuses (the planner says why), or for one
 * that never had a session where the create is its own idempotency check: that provider's
 * "already exists" answer brings the session and its owner (createFindsExisting), so a
 * session squatting on our name is still refused.
 */
export async function lookAt(local: Omit<InstanceObservation, "session">, spec: InstanceSpec, status: InstanceStatus): Promise<ObservedSession | null> {
  const refused = local.claim?.heldElsewhere !== undefined || (local.claim?.adopts === true && local.provider.adoption === "Disabled");
  if (refused) return null;
  if (!status.providerInstanceId) {
    if (!local.quota().allowed) return null;
    const neverHadSession = spec.adopt === undefined && local.claim === undefined && local.provider.client.capabilities.createFindsExisting === true;
    if (neverHadSession) return null;
  }
  return local.provider.client.observe(refWithStatus(local.ref, status));
}

/** The ref once a round of this pass recorded the session's id (a create): no longer adopting, the id known. */
export function refWithStatus(ref: InstanceRef, status: InstanceStatus): InstanceRef {
  if (!status.providerInstanceId || ref.providerInstanceId === status.providerInstanceId) return ref;
  const { adopting: _adopting, ...rest } = ref;
  return { ...rest, providerInstanceId: status.providerInstanceId };
}

/** spec.session with the proxy's credentials read from their Secret (which must carry the credential label). */
async function sessionSettingsOf(ctx: OperatorContext, namespace: string, session: NonNullable<InstanceSpec["session"]>): Promise<SessionSettings> {
  const { proxy, ...rest } = session;
  if (!proxy) return rest;
  const secret = proxy.credentialsSecretRef;
  if (!secret) return { ...rest, proxy: { url: proxy.url } };
  const username = await ctx.secrets.value(namespace, secret.name, secret.usernameKey);
  const password = await ctx.secrets.value(namespace, secret.name, secret.passwordKey);
  return { ...rest, proxy: { url: proxy.url, username, password } };
}

/** The provider config the type's module wants for these settings; undefined where the module honours none. */
function desiredSessionConfig(type: ResolvedProvider["type"], settings: SessionSettings): unknown {
  return PROVIDER_MODULES[type].session?.desired(settings);
}

/**
 * The provider's side of spec.session: from the session look where it carries it (WAHA),
 * else with a read of its own, made only when due (sessionSettingsReadDue): the cost at
 * rest stays the session look.
 */
export async function observeSessionSettings(
  ctx: OperatorContext,
  instance: InstanceObject,
  local: Omit<InstanceObservation, "session" | "sessionSettings">,
  session: ObservedSession | null,
  remembered: boolean,
): Promise<InstanceObservation["sessionSettings"]> {
  const desired = local.ref.sessionConfig;
  const hook = PROVIDER_MODULES[local.provider.type].session;
  if (desired === undefined || !hook || session === null) return undefined;
  if (hook.observedWith === "session") return session.sessionConfig === undefined ? { desired } : { desired, observed: session.sessionConfig };
  const read = local.provider.client.readSessionConfig;
  if (remembered || !read || !sessionSettingsReadDue(ctx, instance, local)) return { desired };
  const observed = await read(local.ref, session.id);
  const key = `${instance.metadata.namespace}/${instance.metadata.name}`;
  ctx.pacing.set(key, { ...(ctx.pacing.get(key) ?? { startingLooks: 0 }), sessionRead: { generation: instance.metadata.generation ?? 0, at: ctx.clock.now() } });
  return { desired, observed };
}

/** Whether this pass owes the provider's session settings a read of their own (a provider whose session look does not carry them). */
export function sessionSettingsReadDue(ctx: OperatorContext, instance: InstanceObject, local: Pick<InstanceObservation, "ref" | "provider">): boolean {
  const hook = PROVIDER_MODULES[local.provider.type].session;
  if (local.ref.sessionConfig === undefined || !hook || hook.observedWith === "session" || !local.provider.client.readSessionConfig) return false;
  const pacing = ctx.pacing.get(`${instance.metadata.namespace}/${instance.metadata.name}`);
  return sessionReadDue(pacing?.sessionRead, instance.metadata.generation ?? 0, ctx.clock.now(), ctx.config.resync);
}

/** Whether a provider's session settings are due for a read of their own: never read, a new generation, or a resync interval since. */
export function sessionReadDue(last: Pacing["sessionRead"], generation: number, now: number, everyMs: number): boolean {
  return last === undefined || last.generation !== generation || now - last.at >= everyMs;
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
    // Only a plan without a session asks for a slot (planCreate).
    quota: observation.session === null ? observation.quota() : { allowed: true, message: "" },
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
    ...(observation.sessionSettings ? { sessionSettings: observation.sessionSettings } : {}),
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
function quotaFor(ctx: OperatorContext, instance: InstanceObject, provider: ResolvedProvider): Quota {
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

export { instancesUsing } from "./indexes.ts";
export { providerRefOf } from "./provider-ref.ts";

function once<T>(compute: () => T): () => T {
  let value: { readonly is: T } | undefined;
  return () => (value ??= { is: compute() }).is;
}
