/**
 * Reconciles one WhatsAppInstance: observe the provider, plan (pure), execute, report.
 * It reads current state on every pass and never asks which event woke it.
 */
import type { Logger } from "pino";
import { instanceSpecSchema, type InstanceSpec, type InstanceStatus } from "../../api/instance.ts";
import { isConflict, isNotFound } from "../../kube/client.ts";
import { INSTANCES, SECRETS } from "../../kube/resources.ts";
import { MissingSecretError, readSecretValue } from "../../kube/secrets.ts";
import { ProviderError } from "../../providers/errors.ts";
import type { InstanceRef, ObservedSession, Phase } from "../../providers/types.ts";
import { applyVerdict, publishableStatus, STALLED_REASONS, type Verdict } from "../conditions.ts";
import { FINALIZER, type InstanceObject, type OperatorContext, type ReconcileResult } from "../context.ts";
import { ProviderResolutionError, providerKey, type ResolvedProvider } from "../provider/connections.ts";
import { mergePatch } from "../status-patch.ts";
import { MUTATING_STEPS, PAIRING_CODE_LIFETIME_MS, planInstance, type Plan, type PlannedEvent, type Step } from "./plan.ts";
import { ensureWebhookKey, qrSecretName, readQrSecret, webhookSecretName, writeQrSecret } from "./secrets.ts";

/** Observe-plan-execute rounds per pass: create → start → look, without waiting for a requeue. */
const MAX_ROUNDS = 4;

export async function reconcileInstance(ctx: OperatorContext, key: string): Promise<ReconcileResult> {
  const [namespace, name] = key.split("/") as [string, string];
  // Read fresh, not from the cache: status is this reconciler's memory (lastRestartAt, recovery).
  const instance = await ctx.kube.find<InstanceObject>(INSTANCES, namespace, name);
  if (!instance) return {};
  const parsed = instanceSpecSchema.safeParse(instance.spec);
  const log = ctx.log.child({ kind: "WhatsAppInstance", namespace, name });
  if (!parsed.success) {
    const message = `invalid spec: ${parsed.error.issues[0]?.message ?? "unreadable"}`;
    await report(ctx, instance, { ...(instance.status ?? {}) }, { ready: false, stalled: true, reason: "InvalidSpec", message });
    return {};
  }
  const spec = parsed.data;

  if (instance.metadata.deletionTimestamp) return finalize(ctx, instance, spec, log);
  if (!instance.metadata.finalizers?.includes(FINALIZER)) {
    // Before the first provider call, so a deletion can never skip the cleanup.
    await patchFinalizers(ctx, instance, [...(instance.metadata.finalizers ?? []), FINALIZER]);
    return { requeueAfterMs: 0 };
  }

  const status: InstanceStatus = structuredClone(instance.status ?? {});
  const events: PlannedEvent[] = [];
  let provider: ResolvedProvider | undefined;
  try {
    provider = await ctx.connections.resolve(providerRefOf(instance, spec));
    const childLog = log.child({ provider: provider.key });
    const ref = await buildRef(ctx, instance, spec, provider);
    const outcome = await converge(ctx, instance, spec, status, provider, ref, events, childLog);
    await report(ctx, instance, outcome.status, outcome.plan.verdict, events);
    return { requeueAfterMs: requeueDelay(ctx, outcome.plan, provider) };
  } catch (error) {
    const failure = describeFailure(error, provider?.type);
    if (!failure) throw error;
    log.info({ reason: failure.verdict.reason, message: failure.verdict.message }, "reconcile could not finish");
    if (failure.event) events.push(failure.event);
    if (failure.recovery) status.recovery = failure.recovery;
    await report(ctx, instance, status, failure.verdict, events);
    if (failure.retryAfterMs !== undefined) return { requeueAfterMs: failure.retryAfterMs };
    if (failure.verdict.stalled) return { requeueAfterMs: provider?.pollIntervalMs ?? ctx.config.pollInterval };
    return { backoff: true };
  }
}

interface Outcome {
  readonly status: InstanceStatus;
  readonly plan: Plan;
}

/** Runs observe → plan → execute until the plan has nothing more that changes the provider. */
async function converge(
  ctx: OperatorContext,
  instance: InstanceObject,
  spec: InstanceSpec,
  status: InstanceStatus,
  provider: ResolvedProvider,
  initialRef: InstanceRef,
  events: PlannedEvent[],
  log: Logger,
): Promise<Outcome> {
  let ref = initialRef;
  let plan: Plan | undefined;
  let session: ObservedSession | null = null;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const quota = quotaFor(ctx, instance, provider);
    // An instance waiting for a quota slot has nothing at the provider yet: it makes no call at all.
    session = quota.allowed || status.providerInstanceId ? await provider.client.observe(ref) : null;
    const qrSecret = await readQrSecret(ctx.kube, instance);
    plan = planInstance({
      now: ctx.clock.now(),
      name: instance.metadata.name,
      spec,
      status,
      uid: instance.metadata.uid as string,
      providerType: provider.type,
      capabilities: provider.client.capabilities,
      session,
      quota,
      ...(qrSecret.pairingCodeRequestedAt !== undefined ? { pairingCode: { requestedAt: qrSecret.pairingCodeRequestedAt } } : {}),
      qrSecretFilled: qrSecret.filled,
      failureBackoff: { baseMs: ctx.config.failureBackoff, maxMs: ctx.config.failureBackoffMax },
    });
    if (session) status.providerInstanceId = session.id;
    applyObservation(status, plan.phase, session);

    for (const step of plan.steps) {
      log.debug({ step: step.kind }, "executing");
      ref = await execute(ctx, instance, spec, status, provider, ref, session, step, qrSecret, events);
    }
    // What the plan records takes effect once its steps are done: a restart whose call
    // failed is still owed, and says nothing happened.
    events.push(...plan.events);
    if (plan.recovery !== undefined) {
      if (plan.recovery === null) delete status.recovery;
      else status.recovery = plan.recovery;
    }
    if (plan.lastRestartAt !== undefined) status.lastRestartAt = plan.lastRestartAt;
    if (!plan.steps.some((step) => MUTATING_STEPS.has(step.kind))) break;
  }
  return { status, plan: plan as Plan };
}

/** Carries out one step; returns the ref to use from now on (create gives it an id). */
async function execute(
  ctx: OperatorContext,
  instance: InstanceObject,
  spec: InstanceSpec,
  status: InstanceStatus,
  provider: ResolvedProvider,
  ref: InstanceRef,
  session: ObservedSession | null,
  step: Step,
  qrSecret: Awaited<ReturnType<typeof readQrSecret>>,
  events: PlannedEvent[],
): Promise<InstanceRef> {
  const client = provider.client;
  const id = session?.id ?? ref.providerInstanceId ?? "";
  const now = ctx.clock.now();
  switch (step.kind) {
    case "create": {
      const created = await client.create(ref);
      status.providerInstanceId = created.id;
      return { ...ref, providerInstanceId: created.id };
    }
    case "connect":
      await client.connect(ref, id);
      break;
    case "disconnect":
      await client.disconnect(ref, id);
      break;
    case "restart":
      await client.restart(ref, id);
      break;
    case "logout":
      await client.logout(ref, id);
      // Providers show a logged-out session as merely stopped; remember it ourselves.
      status.phase = "LoggedOut";
      delete status.phoneNumber;
      break;
    case "configureWebhook":
      await client.configureWebhook(ref, id);
      break;
    case "showQr": {
      const qr = await client.fetchQr(ref, id);
      if (!qr) break;
      const changed = await writeQrSecret(ctx.kube, instance, qrSecret.secret, { png: qr.png, ...(qr.text ? { text: qr.text } : {}) });
      if (changed || !status.qr) {
        status.qr = {
          secretName: qrSecretName(instance.metadata.name),
          updatedAt: iso(now),
          expiresAt: iso(now + qr.validForMs),
        };
      }
      if (changed) events.push({ type: "Normal", reason: "QRUpdated", message: `a new QR code is in Secret ${qrSecretName(instance.metadata.name)}` });
      break;
    }
    case "requestPairingCode": {
      const phoneNumber = spec.pairing?.phoneNumber as string;
      const code = await client.requestPairingCode(ref, id, phoneNumber);
      await writeQrSecret(ctx.kube, instance, qrSecret.secret, { pairingCode: code, pairingRequestedAt: iso(now) });
      status.qr = {
        secretName: qrSecretName(instance.metadata.name),
        updatedAt: iso(now),
        expiresAt: iso(now + PAIRING_CODE_LIFETIME_MS),
      };
      events.push({ type: "Normal", reason: "QRUpdated", message: `a new pairing code is in Secret ${qrSecretName(instance.metadata.name)}` });
      break;
    }
    case "clearQr":
      await writeQrSecret(ctx.kube, instance, qrSecret.secret, {});
      break;
  }
  return ref;
}

/** Status fields that follow directly from the observation. */
function applyObservation(status: InstanceStatus, phase: Phase, session: ObservedSession | null): void {
  status.phase = phase;
  if (phase === "Connected" && session?.phoneNumber) status.phoneNumber = session.phoneNumber;
  if (phase === "LoggedOut" || phase === "Pending") delete status.phoneNumber;
  if (phase !== "ScanQR") delete status.qr;
}

async function buildRef(ctx: OperatorContext, instance: InstanceObject, spec: InstanceSpec, provider: ResolvedProvider): Promise<InstanceRef> {
  const namespace = instance.metadata.namespace as string;
  const apiKey = spec.credentialsSecretRef
    ? await readSecretValue(ctx.kube, namespace, spec.credentialsSecretRef.name, spec.credentialsSecretRef.key)
    : undefined;
  let cloudApi: InstanceRef["cloudApi"];
  // spec.cloudApi on another provider type is the planner's InvalidSpec, not a missing PIN Secret.
  if (spec.cloudApi && provider.type === "cloud_api") {
    const pin = await readSecretValue(ctx.kube, namespace, spec.cloudApi.pinSecretRef.name, spec.cloudApi.pinSecretRef.key);
    cloudApi = { phoneNumberId: spec.cloudApi.phoneNumberId, ...(spec.cloudApi.wabaId ? { wabaId: spec.cloudApi.wabaId } : {}), pin };
  } else if (provider.type === "cloud_api") {
    throw new ProviderResolutionError("InvalidSpec", "spec.cloudApi (phoneNumberId and pinSecretRef) is required for a cloud_api provider");
  }
  let webhook: InstanceRef["webhook"];
  if (spec.webhook) {
    const hmacKey = await ensureWebhookKey(ctx.kube, instance, spec.webhook);
    webhook = { url: spec.webhook.url, events: spec.webhook.events, hmacKey };
  } else {
    await ctx.kube.delete(SECRETS, namespace, webhookSecretName(instance.metadata.name));
  }
  return {
    namespace,
    name: instance.metadata.name,
    uid: instance.metadata.uid as string,
    ...(spec.displayName ? { displayName: spec.displayName } : {}),
    ...(instance.status?.providerInstanceId ? { providerInstanceId: instance.status.providerInstanceId } : {}),
    ...(apiKey !== undefined ? { apiKey } : {}),
    ...(cloudApi ? { cloudApi } : {}),
    ...(spec.wappfy ? { wappfy: spec.wappfy } : {}),
    ...(webhook ? { webhook } : {}),
    ...(provider.events ? { providerEvents: provider.events } : {}),
  };
}

/**
 * maxInstances: the oldest instances (by creation, then name) hold the slots. An
 * instance that already has a provider session keeps its slot whatever its rank.
 */
function quotaFor(ctx: OperatorContext, instance: InstanceObject, provider: ResolvedProvider): { allowed: boolean; message: string } {
  const max = provider.maxInstances;
  if (max === undefined) return { allowed: true, message: "" };
  const users = instancesUsing(ctx, provider.key)
    .filter((other) => !other.metadata.deletionTimestamp)
    .sort(
      (a, b) =>
        (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? "") || a.metadata.name.localeCompare(b.metadata.name),
    );
  const rank = users.findIndex((other) => other.metadata.uid === instance.metadata.uid);
  const allowed = rank >= 0 && rank < max;
  return {
    allowed,
    message: allowed ? "" : `provider ${provider.object.metadata.name} allows ${max} instances and ${users.length} want one; this one waits for a free slot`,
  };
}

/** Instances (from the cache) whose providerRef resolves to the given provider key. */
export function instancesUsing(ctx: OperatorContext, key: string): InstanceObject[] {
  return ctx.caches.instances.list().filter((other) => {
    const parsed = instanceSpecSchema.safeParse(other.spec);
    return parsed.success && providerKey(providerRefOf(other, parsed.data)) === key;
  });
}

export function providerRefOf(instance: InstanceObject, spec: InstanceSpec): { kind: string; namespace: string | undefined; name: string } {
  return {
    kind: spec.providerRef.kind,
    namespace: spec.providerRef.kind === "ClusterWhatsAppProvider" ? undefined : instance.metadata.namespace,
    name: spec.providerRef.name,
  };
}

/** Deletion: remove the provider session unless Orphan, then let the object go. */
async function finalize(ctx: OperatorContext, instance: InstanceObject, spec: InstanceSpec, log: Logger): Promise<ReconcileResult> {
  if (!instance.metadata.finalizers?.includes(FINALIZER)) return {};
  if (spec.deletionPolicy === "Delete") {
    try {
      const provider = await ctx.connections.resolve(providerRefOf(instance, spec));
      const ref = await refForCleanup(ctx, instance, spec, provider);
      const session = await provider.client.observe(ref);
      if (session && (session.ownerUid === undefined || session.ownerUid === instance.metadata.uid)) {
        await provider.client.remove(ref, session.id);
        await ctx.events.record(instance, "Normal", "Deleted", `deleted the ${provider.type} session ${session.id}`);
      }
    } catch (error) {
      // A provider that no longer exists cannot hold a session we could delete.
      if (!(error instanceof ProviderResolutionError && error.reason === "ProviderNotFound")) {
        const failure = describeFailure(error, undefined);
        if (!failure) throw error;
        log.info({ message: failure.verdict.message }, "cleanup failed; will retry");
        await report(ctx, instance, { ...(instance.status ?? {}) }, { ...failure.verdict, message: `deleting: ${failure.verdict.message}` });
        return failure.retryAfterMs !== undefined ? { requeueAfterMs: failure.retryAfterMs } : { backoff: true };
      }
    }
  }
  await patchFinalizers(
    ctx,
    instance,
    (instance.metadata.finalizers ?? []).filter((finalizer) => finalizer !== FINALIZER),
  );
  return {};
}

/** Cleanup needs only what identifies the session; a missing webhook Secret must not block it. */
async function refForCleanup(ctx: OperatorContext, instance: InstanceObject, spec: InstanceSpec, provider: ResolvedProvider): Promise<InstanceRef> {
  const namespace = instance.metadata.namespace as string;
  const apiKey = spec.credentialsSecretRef
    ? await readSecretValue(ctx.kube, namespace, spec.credentialsSecretRef.name, spec.credentialsSecretRef.key).catch(() => undefined)
    : undefined;
  return {
    namespace,
    name: instance.metadata.name,
    uid: instance.metadata.uid as string,
    ...(instance.status?.providerInstanceId ? { providerInstanceId: instance.status.providerInstanceId } : {}),
    ...(apiKey !== undefined ? { apiKey } : {}),
    ...(spec.cloudApi && provider.type === "cloud_api" ? { cloudApi: { phoneNumberId: spec.cloudApi.phoneNumberId, ...(spec.cloudApi.wabaId ? { wabaId: spec.cloudApi.wabaId } : {}) } } : {}),
    ...(spec.displayName ? { displayName: spec.displayName } : {}),
  };
}

async function patchFinalizers(ctx: OperatorContext, instance: InstanceObject, finalizers: string[]): Promise<void> {
  try {
    await ctx.kube.patch(INSTANCES, instance.metadata.namespace, instance.metadata.name, {
      metadata: { finalizers, resourceVersion: instance.metadata.resourceVersion },
    });
  } catch (error) {
    // 409: somebody changed it meanwhile; the watch brings us back with the new version.
    if (!isConflict(error) && !isNotFound(error)) throw error;
  }
}

/** Writes status when it changed, then the Events planned on the way. */
async function report(ctx: OperatorContext, instance: InstanceObject, status: InstanceStatus, verdict: Verdict, events: PlannedEvent[] = []): Promise<void> {
  const generation = instance.metadata.generation ?? 0;
  const next: InstanceStatus = {
    ...status,
    observedGeneration: generation,
    conditions: applyVerdict(status.conditions, verdict, generation, new Date(ctx.clock.now()).toISOString().replace(/\.\d{3}Z$/, "Z")),
  };
  const spec = instanceSpecSchema.safeParse(instance.spec);
  if (spec.success && spec.data.webhook) {
    next.webhook = { secretName: spec.data.webhook.secretRef?.name ?? webhookSecretName(instance.metadata.name), url: spec.data.webhook.url };
  } else {
    delete next.webhook;
  }
  // Events first: whoever sees the new status finds the Events that explain it already there.
  for (const event of events) await ctx.events.record(instance, event.type, event.reason, event.message);
  const patch = mergePatch(instance.status ?? {}, publishableStatus(next));
  if (patch !== undefined) {
    try {
      await ctx.kube.patch(INSTANCES, instance.metadata.namespace, instance.metadata.name, { status: patch }, "merge", "status");
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  ctx.observers?.instancePhase?.(`${instance.metadata.namespace}/${instance.metadata.name}`, next.phase);
}

interface Failure {
  readonly verdict: Verdict;
  readonly event?: PlannedEvent;
  readonly retryAfterMs?: number;
  readonly recovery?: InstanceStatus["recovery"];
}

/** Maps a failure to what the user sees; undefined for bugs, which the queue retries with backoff. */
function describeFailure(error: unknown, providerType: string | undefined): Failure | undefined {
  if (error instanceof ProviderResolutionError) {
    const reason = error.reason === "ProviderNotFound" ? STALLED_REASONS.ProviderNotFound : error.reason === "SecretNotFound" ? STALLED_REASONS.SecretNotFound : "InvalidSpec";
    return { verdict: { ready: false, stalled: true, reason, message: error.message } };
  }
  if (error instanceof MissingSecretError) {
    return { verdict: { ready: false, stalled: true, reason: STALLED_REASONS.SecretNotFound, message: error.message } };
  }
  if (!(error instanceof ProviderError)) return undefined;
  const who = providerType ?? "provider";
  switch (error.kind) {
    case "InvalidCredentials":
      return { verdict: { ready: false, stalled: true, reason: STALLED_REASONS.InvalidCredentials, message: error.message } };
    case "Rejected":
      return {
        verdict: { ready: false, stalled: true, reason: STALLED_REASONS.ProviderRejected, message: error.message },
        event: { type: "Warning", reason: "ProviderError", message: error.message },
      };
    case "QuotaExceeded":
      return {
        verdict: { ready: false, stalled: true, reason: STALLED_REASONS.QuotaExceeded, message: error.message },
        event: { type: "Warning", reason: "QuotaExceeded", message: error.message },
      };
    case "Blocked": {
      const until = error.retryAt ?? new Date(Date.now() + 60 * 60_000);
      return {
        verdict: {
          ready: false,
          stalled: true,
          reason: STALLED_REASONS.RegistrationBlocked,
          message: `${error.message}; no new attempt before ${until.toISOString()}`,
        },
        event: { type: "Warning", reason: "ProviderError", message: `${who} blocks new attempts until ${until.toISOString()}` },
        retryAfterMs: Math.max(1000, until.getTime() - Date.now()),
        recovery: { attempts: 0, notBefore: until.toISOString() },
      };
    }
    case "RateLimited":
      return {
        verdict: { ready: false, stalled: false, reason: "RateLimited", message: error.message },
        event: { type: "Warning", reason: "RateLimited", message: `${who} is rate limiting; waiting before the next call` },
        retryAfterMs: Math.max(500, error.retryAfterMs ?? 5000),
      };
    case "Unavailable":
    case "Malformed":
    case "WrongState":
    // The session changed between our look and our call: look again.
    case "NotFound":
    case "Conflict":
      return {
        verdict: { ready: false, stalled: false, reason: error.kind === "Malformed" ? "ProviderMalformedAnswer" : "ProviderUnavailable", message: error.message },
        event: { type: "Warning", reason: "ProviderError", message: error.message },
      };
  }
}

function requeueDelay(ctx: OperatorContext, plan: Plan, provider: ResolvedProvider): number {
  if (plan.requeue === "fast") return ctx.config.pairingPollInterval;
  if (plan.requeue === "poll") return provider.pollIntervalMs ?? ctx.config.pollInterval;
  return Math.max(250, plan.requeue.afterMs);
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
