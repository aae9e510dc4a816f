/**
 * Reconciles a WhatsAppProvider or ClusterWhatsAppProvider on the same skeleton as
 * instances: observe (the cached object and credentials, one health call) → execute (the
 * events Secret) → report (pure) → publish; no write comes before the observation. Ready when the gateway answers and the credentials work;
 * status.version and status.instances.
 */
import { randomBytes } from "node:crypto";
import type { ProviderStatus } from "../../api/provider.ts";
import { isConflict } from "../../kube/client.ts";
import { CLUSTER_PROVIDERS, PROVIDERS, type KubeObject } from "../../kube/resources.ts";
import { deleteOwnedSecret, ensureOwnedSecret } from "../../kube/secret-cache.ts";
import type { Verdict } from "../conditions.ts";
import { parseInstanceSpec } from "../../api/parse-once.ts";
import { MANAGED_BY, MissingSecretError } from "../../kube/secrets.ts";
import type { HealthOptions } from "../../providers/types.ts";
import type { InstanceObject, OperatorContext, ProviderObject, ReconcileResult } from "../context.ts";
import { describeFailure, type Failure } from "../failures.ts";
import { instancesUsing } from "../instance/observe.ts";
import { beginRecovery } from "../instance/gateway-restart.ts";
import type { PlannedEvent } from "../instance/plan.ts";
import { publish } from "../publish.ts";
import {
  CLUSTER_PROVIDER_KIND,
  type ResolvedProvider,
  EVENTS_HMAC_KEY,
  eventsSecretName,
  eventsSecretNamespace,
  PROVIDER_KIND,
  providerKey,
  type ProviderRefKey,
} from "./connections.ts";

/** How often a provider that is not Ready (a person must act) is looked at again. */
const STALLED_RECHECK_MS = 60_000;

export async function reconcileProvider(ctx: OperatorContext, kind: string, key: string): Promise<ReconcileResult> {
  const cluster = kind === CLUSTER_PROVIDER_KIND;
  const cache = cluster ? ctx.caches.clusterProviders : ctx.caches.providers;
  const object = cache.get(key);
  const [namespace, name] = cluster ? [undefined, key] : (key.split("/") as [string, string]);
  const ref: ProviderRefKey = { kind: cluster ? CLUSTER_PROVIDER_KIND : PROVIDER_KIND, namespace, name };
  if (!object || object.metadata.deletionTimestamp) {
    ctx.connections.forget(providerKey(ref));
    return {};
  }
  // Observe: the cached object and its credentials, and one health call.
  let health: { version?: string; type: string; url: string } | undefined;
  let failure: Failure | undefined;
  try {
    const provider = await ctx.connections.resolve(ref);
    const report = await provider.client.checkHealth(await healthOptions(ctx, provider));
    health = { type: provider.type, url: provider.settings.url, ...(report.version ? { version: report.version } : {}) };
    // A new start time or version: the gateway restarted, and its sessions come back through the start slots.
    const restarted = ctx.gatewayRestarts.sawServer(provider.key, report);
    if (restarted) beginRecovery(ctx, provider, restarted);
  } catch (error) {
    failure = describeFailure(error, "provider", ctx.clock.now());
    if (!failure) throw error;
    ctx.log.info({ kind, namespace, name, reason: failure.verdict.reason, message: failure.verdict.message }, "provider not ready");
  }
  // Execute: the events Secret spec.events asks for, written only when missing or no longer wanted.
  await ensureEventsSecret(ctx, ref, object);
  // Report: status and the Event of a Ready transition, written only when they differ.
  const users = instancesUsing(ctx, providerKey(ref));
  const capacity = (object.spec as { capacity?: { maxSessions?: number } } | undefined)?.capacity;
  const report = reportProvider({
    status: object.status ?? {},
    instances: users.length,
    ...(capacity ? { sessions: sessionCounts(users, (instance) => startingOn(ctx, providerKey(ref), instance)) } : {}),
    health,
    failure,
    checkMs: ctx.config.providerCheckInterval,
  });
  try {
    await publish({
      kube: ctx.kube,
      recorder: ctx.events,
      type: cluster ? CLUSTER_PROVIDERS : PROVIDERS,
      object,
      status: report.status,
      verdict: report.verdict,
      events: report.events,
      now: ctx.clock.now(),
      remember: (written: KubeObject) => cache.remember(written as ProviderObject),
    });
  } catch (error) {
    // Our view was behind: look again with the new version.
    if (isConflict(error)) return { requeueAfterMs: 500 };
    throw error;
  }
  return report.result;
}

export interface ProviderReportInput {
  readonly status: ProviderStatus;
  readonly instances: number;
  /** Where the provider has a capacity: its sessions by state (status.sessions). */
  readonly sessions?: NonNullable<ProviderStatus["sessions"]>;
  readonly health: { readonly version?: string; readonly type: string; readonly url: string } | undefined;
  readonly failure: Failure | undefined;
  readonly checkMs: number;
}

/** Pure: status, verdict, the Event of a Ready transition, and when to check again. */
export function reportProvider(input: ProviderReportInput): { status: ProviderStatus; verdict: Verdict; events: PlannedEvent[]; result: ReconcileResult } {
  const status: ProviderStatus = { ...input.status, instances: input.instances };
  if (input.sessions) status.sessions = input.sessions;
  else delete status.sessions;
  if (input.health?.version) status.version = input.health.version;
  const verdict: Verdict = input.failure?.verdict ??
    (input.health
      ? { ready: true, stalled: false, reason: "Available", message: `${input.health.type} at ${withoutUserinfo(input.health.url)} answers and accepts the credentials` }
      : { ready: false, stalled: false, reason: "Unknown", message: "not checked yet" });
  const wasReady = input.status.conditions?.find((condition) => condition.type === "Ready")?.status;
  const isReady = verdict.ready ? "True" : "False";
  const events: PlannedEvent[] =
    wasReady === isReady ? [] : [{ type: verdict.ready ? "Normal" : "Warning", reason: verdict.ready ? "Available" : "ProviderError", message: verdict.message }];
  const failure = input.failure;
  const result: ReconcileResult = !failure
    ? { requeueAfterMs: input.checkMs }
    : failure.retryAfterMs !== undefined
      ? { requeueAfterMs: failure.retryAfterMs }
      : failure.verdict.stalled || failure.lookAgain
        ? { requeueAfterMs: failure.lookAgain ? 500 : STALLED_RECHECK_MS }
        : { backoff: true };
  return { status, verdict, events, result };
}

/** status.sessions: the instances kept on a provider (deletions not counted), how many are linked, how many starting. */
export function sessionCounts(users: readonly InstanceObject[], starting: (instance: InstanceObject) => boolean): NonNullable<ProviderStatus["sessions"]> {
  const kept = users.filter((instance) => !instance.metadata.deletionTimestamp);
  return {
    placed: kept.length,
    linked: kept.filter((instance) => instance.status?.phase === "Connected").length,
    starting: kept.filter(starting).length,
  };
}

function startingOn(ctx: OperatorContext, provider: string, instance: InstanceObject): boolean {
  return ctx.startSlots.holds(provider, `${instance.metadata.namespace}/${instance.metadata.name}`, ctx.clock.now(), ctx.config.stuckTimeout);
}

/**
 * The URL as a user may see it: a provider stored before the CRD refused user:pass@host
 * still carries it, and a condition message or Event is no place for a password.
 */
export function withoutUserinfo(url: string): string {
  const parsed = URL.parse(url);
  if (!parsed || (!parsed.username && !parsed.password)) return url;
  parsed.username = "";
  parsed.password = "";
  return url.endsWith("/") ? parsed.href : parsed.href.replace(/\/$/, "");
}

/**
 * A provider without credentials of its own (whapi: one key per device) reads its version
 * with a managed instance's key: the first instance, by namespace and name, whose key Secret
 * is there. Without one, the provider is only checked for reachability.
 */
async function healthOptions(ctx: OperatorContext, provider: ResolvedProvider): Promise<HealthOptions> {
  if (provider.settings.apiKey !== undefined || provider.settings.login !== undefined) return {};
  const users = instancesUsing(ctx, provider.key)
    .filter((instance) => !instance.metadata.deletionTimestamp)
    .sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
  for (const instance of users) {
    const secret = parseInstanceSpec(instance.spec).data?.credentialsSecretRef;
    if (!secret) continue;
    try {
      return { instanceKey: await ctx.secrets.value(instance.metadata.namespace as string, secret.name, secret.key) };
    } catch (error) {
      if (!(error instanceof MissingSecretError)) throw error;
    }
  }
  return {};
}

/** spec.events: a random HMAC key per provider, in <name>-events, owned by the provider. */
async function ensureEventsSecret(ctx: OperatorContext, ref: ProviderRefKey, object: ProviderObject): Promise<void> {
  const namespace = eventsSecretNamespace(ref, ctx.config.operatorNamespace);
  const name = eventsSecretName(object.metadata.name);
  const wanted = Boolean((object.spec as { events?: { url?: string } } | undefined)?.events?.url);
  if (!wanted) {
    await deleteOwnedSecret(ctx.kube, ctx.caches.secrets, namespace, name, object.metadata.uid);
    return;
  }
  const current = await ctx.secrets.owned(namespace, name, object.metadata.uid);
  if (current?.data?.[EVENTS_HMAC_KEY]) return;
  await ensureOwnedSecret(ctx.kube, ctx.caches.secrets, {
    namespace,
    name,
    owner: {
      apiVersion: object.apiVersion as string,
      kind: object.kind as string,
      name: object.metadata.name,
      uid: object.metadata.uid as string,
      controller: true,
      blockOwnerDeletion: true,
    },
    data: { [EVENTS_HMAC_KEY]: Buffer.from(randomBytes(32).toString("hex")) },
    labels: MANAGED_BY,
  });
}
