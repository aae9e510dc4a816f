/**
 * Reconciles one WhatsAppInstance, on the skeleton every controller here follows:
 * observe (caches + one provider read) → plan (pure) → execute (each step returns what it
 * did) → report (pure) → publish (one write, only when something differs). A pass never
 * asks which event woke it; a pass over an instance at rest writes nothing.
 */
import type { Logger } from "pino";
import { instanceSpecSchema, type InstanceSpec, type InstanceStatus } from "../../api/instance.ts";
import { isConflict, isNotFound } from "../../kube/client.ts";
import { INSTANCES, type KubeObject } from "../../kube/resources.ts";
import { FINALIZER, type InstanceObject, type OperatorContext, type Pacing, type ReconcileResult } from "../context.ts";
import { lookStretch } from "../look-budget.ts";
import { describeFailure, type Failure } from "../failures.ts";
import { ProviderResolutionError, type ResolvedProvider } from "../provider/connections.ts";
import { publish } from "../publish.ts";
import { executePlan, StepsFailed, type ExecuteContext, type StepFact } from "./execute.ts";
import { observeInstance, observeLocal, planInputOf, providerFields, providerRefOf } from "./observe.ts";
import { MUTATING_STEPS, ownershipOf, planInstance, type Plan } from "./plan.ts";
import { sessionClaim } from "./claims.ts";
import { PROVIDER_MODULES } from "../../providers/registry.ts";
import { reportInstance, type Round } from "./report.ts";
import type { ObservedSession } from "../../providers/types.ts";
import { qrRefreshAt } from "./next-look.ts";
import { placeInstance } from "./placement.ts";

/** Observe-plan-execute rounds per pass: create → start → look, without waiting for a requeue. */
const MAX_ROUNDS = 4;

export { instancesUsing, providerRefOf } from "./observe.ts";

export async function reconcileInstance(ctx: OperatorContext, key: string): Promise<ReconcileResult> {
  let instance = ctx.caches.instances.get(key);
  if (!instance) {
    ctx.pacing.delete(key);
    ctx.lookBudget.forget(key);
    return {};
  }
  const log = ctx.log.child({ kind: "WhatsAppInstance", namespace: instance.metadata.namespace, name: instance.metadata.name });
  const parsed = instanceSpecSchema.safeParse(instance.spec);
  if (!parsed.success) {
    const message = `invalid spec: ${parsed.error.issues[0]?.message ?? "unreadable"}`;
    await publishInstance(ctx, instance, { ...(instance.status ?? {}) }, { ready: false, stalled: true, reason: "InvalidSpec", message }, []);
    return {};
  }
  const spec = parsed.data;
  if (instance.metadata.deletionTimestamp) return finalize(ctx, key, instance, spec, log);
  if (!instance.metadata.finalizers?.includes(FINALIZER)) {
    // Before the first provider call, so a deletion can never skip the cleanup.
    const written = await patchFinalizers(ctx, instance, [...(instance.metadata.finalizers ?? []), FINALIZER]);
    if (!written) return {};
    instance = written;
  }
  if (spec.providerSelector && !instance.status?.providerRef) {
    // A selector instance talks to no provider before it is placed on one.
    const placement = await placeInstance(ctx, instance, spec);
    if (!("instance" in placement)) {
      if (placement.verdict) {
        await publishInstance(ctx, instance, { ...(instance.status ?? {}), phase: "Pending" }, placement.verdict, []).catch((error: unknown) => {
          if (!isConflict(error)) throw error;
        });
      }
      return placement.result;
    }
    instance = placement.instance;
  }
  return runPass(ctx, key, instance, spec, log);
}

async function runPass(ctx: OperatorContext, key: string, instance: InstanceObject, spec: InstanceSpec, log: Logger): Promise<ReconcileResult> {
  const pacing = ctx.pacing.get(key) ?? { startingLooks: 0 };
  const startStatus: InstanceStatus = instance.status ?? {};
  const rounds: Round[] = [];
  let failure: Failure | undefined;
  let run: ExecuteContext | undefined;
  let provider: ResolvedProvider | undefined;
  // Whether the last round planned from the session remembered in pacing rather than a fresh look.
  let trusted = false;
  try {
    let status = startStatus;
    const observeAndPlan = async (session: ObservedSession | undefined) => {
      const observation = await observeInstance(ctx, run?.instance ?? instance, spec, status, session, (resolved) => {
        provider = resolved;
      });
      return { observation, plan: planInstance(planInputOf(ctx, instance, spec, status, observation)) };
    };
    let known: ObservedSession | undefined = trustedSession(ctx, instance, spec, pacing);
    // Only the first round may plan from the remembered session; later ones look, or were answered.
    let trusting = known !== undefined;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      let { observation, plan } = await observeAndPlan(known);
      trusted = trusting;
      trusting = false;
      if (trusted && !onlyFetchesQr(plan)) {
        // The remembered session would lead somewhere else: look for real.
        trusted = false;
        ({ observation, plan } = await observeAndPlan(undefined));
      }
      run = { ctx, spec, observation, instance: run?.instance ?? instance };
      try {
        const facts = await executePlan(run, plan);
        if (trusted && facts.some((fact) => fact.kind === "qr" && fact.validForMs === undefined)) {
          // No code: the session stopped waiting for a scan since it was last seen. Look for real.
          known = undefined;
          continue;
        }
        rounds.push({ session: observation.session, plan, facts });
      } catch (error) {
        if (!(error instanceof StepsFailed)) throw error;
        rounds.push({ session: observation.session, plan, facts: error.facts });
        throw error.error;
      }
      if (!plan.steps.some((step) => MUTATING_STEPS.has(step.kind))) break;
      known = answeredSession(plan, rounds.at(-1)?.facts ?? []);
      // The next round plans from what this one did (a created session's id, say).
      status = reportInstance(reportInputOf(ctx, instance, spec, startStatus, rounds, undefined, pacing, provider)).status;
    }
  } catch (error) {
    failure = describeFailure(error, provider?.type ?? "provider", ctx.clock.now());
    if (!failure) throw error;
    if (!failure.lookAgain) log.info({ reason: failure.verdict.reason, message: failure.verdict.message }, "reconcile could not finish");
  }
  const report = reportInstance(reportInputOf(ctx, instance, spec, startStatus, rounds, failure, pacing, provider));
  if (provider) ctx.lookBudget.record(key, provider.key, report.routinePerSecond);
  const seen = seenAfter(rounds.at(-1), failure, trusted ? pacing.seen : undefined, ctx.clock.now());
  ctx.pacing.set(key, {
    startingLooks: report.startingLooks,
    ...(report.qrFetched ? { qr: { fetchedAt: ctx.clock.now(), validForMs: report.qrFetched.validForMs } } : pacing.qr ? { qr: pacing.qr } : {}),
    ...(seen ? { seen } : {}),
  });
  if (failure?.lookAgain) return report.result;
  try {
    await publishInstance(ctx, run?.instance ?? instance, report.status, report.verdict, report.events);
  } catch (error) {
    if (isConflict(error)) return { requeueAfterMs: 500 };
    throw error;
  }
  return report.result;
}

/** A remembered session is trusted this long at most: a pairing instance is looked at for real at least this often. */
const TRUST_SEEN_MS = 60_000;

/**
 * A pairing look that is due for a fresh code asks the provider only for the code:
 * fetchQr answers one only while the session waits for a scan (ProviderClient.fetchQr),
 * so the session a plain look found a moment ago still holds. Only while nothing else
 * can have changed: same generation, a recent look, a session that was pairing by QR.
 */
function trustedSession(ctx: OperatorContext, instance: InstanceObject, spec: InstanceSpec, pacing: Pacing): ObservedSession | undefined {
  const { seen, qr } = pacing;
  const now = ctx.clock.now();
  if (!seen || now - seen.at > TRUST_SEEN_MS || seen.session.phase !== "ScanQR") return undefined;
  if (spec.pairing?.method === "Code" || instance.status?.phase !== "ScanQR") return undefined;
  if (instance.status.observedGeneration !== instance.metadata.generation) return undefined;
  if (!qr || now < qrRefreshAt(qr.fetchedAt, qr.validForMs, ctx.config.qrRefreshInterval)) return undefined;
  return seen.session;
}

/**
 * The session the next pass may trust: what a plain look, with nothing changed after it,
 * found pairing. A pass that trusted the remembered one keeps it, and its age.
 */
function seenAfter(last: Round | undefined, failure: Failure | undefined, trustedSeen: Pacing["seen"], now: number): Pacing["seen"] {
  if (failure || last?.session?.phase !== "ScanQR" || last.plan.steps.some((step) => MUTATING_STEPS.has(step.kind))) return undefined;
  return trustedSeen ?? { session: last.session, at: now };
}

function onlyFetchesQr(plan: Plan): boolean {
  return plan.steps.length === 1 && plan.steps[0]?.kind === "showQr";
}

/**
 * When the only change a round made answered with the session (create, and WAHA's start),
 * that answer is the next look: the provider need not be asked again.
 */
function answeredSession(plan: Plan, facts: readonly StepFact[]): ObservedSession | undefined {
  if (plan.steps.filter((step) => MUTATING_STEPS.has(step.kind)).length !== 1) return undefined;
  for (const fact of facts) {
    if (fact.kind === "created") return fact.session;
    if (fact.kind === "done" && MUTATING_STEPS.has(fact.step)) return fact.session;
  }
  return undefined;
}

function reportInputOf(
  ctx: OperatorContext,
  instance: InstanceObject,
  spec: InstanceSpec,
  status: InstanceStatus,
  rounds: readonly Round[],
  failure: Failure | undefined,
  pacing: Pacing,
  provider: ResolvedProvider | undefined,
) {
  const pollMs = provider?.pollIntervalMs ?? ctx.config.pollInterval;
  const stretch = provider ? lookStretch(ctx.lookBudget.demand(provider.key), provider.settings.rateLimit.requestsPerSecond) : 1;
  return {
    name: instance.metadata.name,
    uid: instance.metadata.uid as string,
    spec,
    status,
    rounds,
    ...(failure ? { failure } : {}),
    now: ctx.clock.now(),
    look: { pollMs, pairingPollMs: ctx.config.pairingPollInterval, providerEvents: provider?.events !== undefined, stretch, qrRefreshCap: ctx.config.qrRefreshInterval },
    startingLooks: pacing.startingLooks,
    qrShown: pacing.qr,
  };
}

function publishInstance(
  ctx: OperatorContext,
  instance: InstanceObject,
  status: InstanceStatus,
  verdict: Parameters<typeof publish>[0]["verdict"],
  events: Parameters<typeof publish>[0]["events"],
): Promise<InstanceStatus> {
  return publish({
    kube: ctx.kube,
    recorder: ctx.events,
    type: INSTANCES,
    object: instance,
    status,
    verdict,
    events,
    now: ctx.clock.now(),
    remember: (object: KubeObject) => ctx.caches.instances.remember(object as InstanceObject),
  }).then((next) => {
    ctx.observers?.instancePhase?.(`${instance.metadata.namespace}/${instance.metadata.name}`, next.phase);
    return next;
  });
}

/**
 * Deletion: remove the provider session (Delete) or give up our claim on it (Orphan), then
 * let the object go. A session the operator cannot prove is this resource's is never
 * deleted: it is left at the provider, and a Warning Event says so.
 */
async function finalize(ctx: OperatorContext, key: string, instance: InstanceObject, spec: InstanceSpec, log: Logger): Promise<ReconcileResult> {
  if (!instance.metadata.finalizers?.includes(FINALIZER)) return {};
  const pacing = ctx.pacing.get(key);
  if (pacing?.cleanedUp !== instance.metadata.uid) {
    try {
      await cleanUp(ctx, instance, spec);
      ctx.pacing.set(key, { ...(pacing ?? { startingLooks: 0 }), cleanedUp: instance.metadata.uid as string });
    } catch (error) {
      if (error instanceof ProviderResolutionError && error.reason === "ProviderNotAllowed") {
        // The boundary holds for deletions too: a provider that no longer lets this namespace in is not touched.
        ctx.events.record(instance, "Warning", "Orphaned", `left the session at the provider: ${error.message}`);
      } else if (!(error instanceof ProviderResolutionError && error.reason === "ProviderNotFound")) {
        // (A provider that no longer exists cannot hold a session we could delete.)
        const failure = describeFailure(error, "provider", ctx.clock.now());
        if (!failure) throw error;
        log.info({ message: failure.verdict.message }, "cleanup failed; will retry");
        await publishInstance(ctx, instance, { ...(instance.status ?? {}) }, { ...failure.verdict, message: `deleting: ${failure.verdict.message}` }, []);
        return failure.retryAfterMs !== undefined ? { requeueAfterMs: failure.retryAfterMs } : { backoff: true };
      }
    }
  }
  // The pacing (and its cleanedUp) is dropped when the instance leaves the cache. Until then
  // the cache can still show our finalizer: after a conflict, or because an object written
  // without finalizers is not cached (informer remember()) and its DELETED event is on its way.
  // A pass meanwhile takes the finalizer off again without removing the session again.
  await patchFinalizers(
    ctx,
    instance,
    (instance.metadata.finalizers ?? []).filter((finalizer) => finalizer !== FINALIZER),
  );
  return {};
}

/** The provider side of a deletion: remove what is provably ours, release our claim on what is orphaned. */
async function cleanUp(ctx: OperatorContext, instance: InstanceObject, spec: InstanceSpec): Promise<void> {
  const namespace = instance.metadata.namespace as string;
  const status = instance.status ?? {};
  const local = await observeLocal(ctx, instance, spec, status).catch(async (error: unknown) => {
    // Cleanup needs only what identifies the session: a missing webhook or PIN Secret must not block it.
    if (error instanceof ProviderResolutionError) throw error;
    const provider = await ctx.connections.resolve(providerRefOf(instance, spec), namespace);
    const apiKey = spec.credentialsSecretRef
      ? await ctx.secrets.value(namespace, spec.credentialsSecretRef.name, spec.credentialsSecretRef.key).catch(() => undefined)
      : undefined;
    const own = await providerFields(ctx, namespace, spec, provider, true);
    const ref = { ...cleanupRef(instance, spec), ...own, ...(apiKey !== undefined ? { apiKey } : {}) };
    return { provider, ref, claim: sessionClaim(ctx, instance, spec, provider) };
  });
  const { provider } = local;
  // A delete is irreversible: the client reports the session's owner whatever that costs (a list on Wappfy).
  const session = await provider.client.observe({ ...local.ref, adopting: true });
  if (!session) return;
  const module = PROVIDER_MODULES[provider.type];
  const owner = ownershipOf({ uid: instance.metadata.uid as string, spec, status, ownership: { ...module.ownership, canClaim: provider.client.claim !== undefined } }, session);
  const claimHeld = !local.claim?.heldElsewhere && !(local.claim?.adopts && provider.adoption === "Disabled");
  if (spec.deletionPolicy === "Orphan") {
    // Our uid left on the session would refuse every later adopter for ever.
    if (session.ownerUid === instance.metadata.uid && provider.client.release) {
      await provider.client.release(local.ref, session.id);
      ctx.events.record(instance, "Normal", "Released", `left the ${provider.type} session ${session.id} at the provider and removed this resource's claim on it, so it can be adopted again`);
    }
    return;
  }
  if (owner === "ours" && claimHeld) {
    await provider.client.remove(local.ref, session.id);
    ctx.events.record(instance, "Normal", "Deleted", `deleted the ${provider.type} session ${session.id}`);
    return;
  }
  const why =
    owner === "elsewhere" ? "it belongs to another resource" : !claimHeld ? "another resource holds the claim on it" : "it does not carry this resource's uid, so nothing proves it is this resource's";
  ctx.events.record(instance, "Warning", "Orphaned", `left the ${provider.type} session ${session.id} at the provider: ${why}; delete it there if it should go`);
}

function cleanupRef(instance: InstanceObject, spec: InstanceSpec) {
  return {
    namespace: instance.metadata.namespace as string,
    name: instance.metadata.name,
    uid: instance.metadata.uid as string,
    ...(instance.status?.providerInstanceId ? { providerInstanceId: instance.status.providerInstanceId } : {}),
    ...(spec.displayName ? { displayName: spec.displayName } : {}),
  };
}

/** Returns the object as written, or undefined when it changed meanwhile or is gone (the watch brings us back). */
async function patchFinalizers(ctx: OperatorContext, instance: InstanceObject, finalizers: string[]): Promise<InstanceObject | undefined> {
  try {
    const written = await ctx.kube.patch<InstanceObject>(INSTANCES, instance.metadata.namespace, instance.metadata.name, {
      metadata: { finalizers, resourceVersion: instance.metadata.resourceVersion },
    });
    ctx.caches.instances.remember(written);
    return written;
  } catch (error) {
    if (!isConflict(error) && !isNotFound(error)) throw error;
    return undefined;
  }
}
