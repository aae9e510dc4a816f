/**
 * Reconciles a WhatsAppProvider or ClusterWhatsAppProvider: Ready when the gateway
 * answers and the credentials work; status.version and status.instances.
 */
import { isNotFound } from "../../kube/client.ts";
import { CLUSTER_PROVIDERS, PROVIDERS, SECRETS, type ResourceType } from "../../kube/resources.ts";
import { deleteSecret, ensureOwnedSecret, MissingSecretError, type SecretObject } from "../../kube/secrets.ts";
import { randomBytes } from "node:crypto";
import type { ProviderStatus } from "../../api/provider.ts";
import { ProviderError } from "../../providers/errors.ts";
import { applyVerdict, publishableStatus, STALLED_REASONS, type Verdict } from "../conditions.ts";
import type { OperatorContext, ProviderObject, ReconcileResult } from "../context.ts";
import { instancesUsing } from "../instance/reconciler.ts";
import { mergePatch } from "../status-patch.ts";
import {
  CLUSTER_PROVIDER_KIND,
  EVENTS_HMAC_KEY,
  eventsSecretName,
  eventsSecretNamespace,
  PROVIDER_KIND,
  ProviderResolutionError,
  providerKey,
  type ProviderRefKey,
} from "./connections.ts";

export async function reconcileProvider(ctx: OperatorContext, kind: string, key: string): Promise<ReconcileResult> {
  const type: ResourceType = kind === CLUSTER_PROVIDER_KIND ? CLUSTER_PROVIDERS : PROVIDERS;
  const [namespace, name] = kind === CLUSTER_PROVIDER_KIND ? [undefined, key] : (key.split("/") as [string, string]);
  const object = await ctx.kube.find<ProviderObject>(type, namespace, name);
  const ref: ProviderRefKey = { kind: kind === CLUSTER_PROVIDER_KIND ? CLUSTER_PROVIDER_KIND : PROVIDER_KIND, namespace, name };
  if (!object || object.metadata.deletionTimestamp) {
    ctx.connections.forget(providerKey(ref));
    return {};
  }
  const log = ctx.log.child({ kind, namespace, name });
  const status: ProviderStatus = { ...(object.status ?? {}) };
  status.instances = instancesUsing(ctx, providerKey(ref)).length;
  let verdict: Verdict;
  let result: ReconcileResult;
  try {
    await ensureEventsSecret(ctx, ref, object);
    const provider = await ctx.connections.resolve(ref);
    const health = await provider.client.checkHealth();
    if (health.version) status.version = health.version;
    verdict = { ready: true, stalled: false, reason: "Available", message: `${provider.type} at ${provider.settings.url} answers and accepts the credentials` };
    result = { requeueAfterMs: ctx.config.providerCheckInterval };
  } catch (error) {
    const failure = providerFailure(error);
    if (!failure) throw error;
    log.info({ reason: failure.verdict.reason, message: failure.verdict.message }, "provider not ready");
    verdict = failure.verdict;
    result = failure.result;
  }
  const generation = object.metadata.generation ?? 0;
  const next: ProviderStatus = {
    ...status,
    observedGeneration: generation,
    conditions: applyVerdict(status.conditions, verdict, generation, new Date(ctx.clock.now()).toISOString().replace(/\.\d{3}Z$/, "Z")),
  };
  const patch = mergePatch(object.status ?? {}, publishableStatus(next));
  if (patch !== undefined) {
    try {
      await ctx.kube.patch(type, namespace, name, { status: patch }, "merge", "status");
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    const wasReady = object.status?.conditions?.find((condition) => condition.type === "Ready")?.status;
    const isReady = verdict.ready ? "True" : "False";
    if (wasReady !== isReady) {
      await ctx.events.record(object, verdict.ready ? "Normal" : "Warning", verdict.ready ? "Available" : "ProviderError", verdict.message);
    }
  }
  return result;
}

/** spec.events: a random HMAC key per provider, in <name>-events, owned by the provider. */
async function ensureEventsSecret(ctx: OperatorContext, ref: ProviderRefKey, object: ProviderObject): Promise<void> {
  const namespace = eventsSecretNamespace(ref, ctx.config.operatorNamespace);
  const name = eventsSecretName(object.metadata.name);
  const wanted = Boolean((object.spec as { events?: { url?: string } } | undefined)?.events?.url);
  if (!wanted) {
    await deleteSecret(ctx.kube, namespace, name);
    return;
  }
  const current = await ctx.kube.find<SecretObject>(SECRETS, namespace, name);
  if (current?.data?.[EVENTS_HMAC_KEY]) return;
  await ensureOwnedSecret(ctx.kube, {
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
    labels: { "app.kubernetes.io/managed-by": "wa-operator" },
    current,
  });
}

function providerFailure(error: unknown): { verdict: Verdict; result: ReconcileResult } | undefined {
  const stalled = (reason: string, message: string) => ({ verdict: { ready: false, stalled: true, reason, message }, result: { requeueAfterMs: 60_000 } });
  if (error instanceof ProviderResolutionError) return stalled(error.reason, error.message);
  if (error instanceof MissingSecretError) return stalled(STALLED_REASONS.SecretNotFound, error.message);
  if (!(error instanceof ProviderError)) return undefined;
  if (error.kind === "InvalidCredentials") return stalled(STALLED_REASONS.InvalidCredentials, error.message);
  if (error.kind === "Rejected") return stalled(STALLED_REASONS.ProviderRejected, error.message);
  const retry = error.kind === "RateLimited" && error.retryAfterMs !== undefined ? { requeueAfterMs: error.retryAfterMs } : { backoff: true };
  return { verdict: { ready: false, stalled: false, reason: error.kind === "RateLimited" ? "RateLimited" : "ProviderUnavailable", message: error.message }, result: retry };
}
