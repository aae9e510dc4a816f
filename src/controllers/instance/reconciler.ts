/**
 * Reconciles one WhatsAppInstance, on the skeleton every controller here follows:
 * observe (caches + one provider read) → plan (pure) → execute (each step returns what it
 * did) → report (pure) → publish (one write, only when something differs). A pass never
 * asks which event woke it; a pass over an instance at rest writes nothing.
 */
import type { Logger } from "pino";
import type { InstanceSpec, InstanceStatus } from "../../api/instance.ts";
import { parseInstanceSpec } from "../../api/parse-once.ts";
import { isConflict, isNotFound } from "../../kube/client.ts";
import { INSTANCES, keyOf, type KubeObject } from "../../kube/resources.ts";
import { FINALIZER, type InstanceObject, type OperatorContext, type Pacing, type ReconcileResult } from "../context.ts";
import { lookStretch } from "../look-budget.ts";
import { describeFailure, type Failure } from "../failures.ts";
import { ProviderResolutionError, type ResolvedProvider } from "../provider/connections.ts";
import { lazyChild } from "../../logger.ts";
import { publish } from "../publish.ts";
import { executePlan, StepsFailed, type ExecuteContext, type StepFact } from "./execute.ts";
import { lookAt, observeLocal, observeSessionSettings, ownSecretStates, sessionSettingsReadDue, planInputOf, providerFields, providerRefOf, refWithStatus, type InstanceObservation } from "./observe.ts";
import { MUTATING_STEPS, ownershipOf, planInstance, type Plan } from "./plan.ts";
import { sessionClaim } from "./claims.ts";
import { PROVIDER_MODULES } from "../../providers/registry.ts";
import { reportInstance, type ReportInput, type Round } from "./report.ts";
import type { ObservedSession } from "../../providers/types.ts";
import { qrRefreshAt } from "./next-look.ts";
import { placeInstance } from "./placement.ts";
import { sawSession } from "./gateway-restart.ts";
import { freeStartSlot, wakeNextInLine } from "./start-slots.ts";

/** Observe-plan-execute rounds per pass: create → start → look, without waiting for a requeue. */
const MAX_ROUNDS = 4;

export { instancesUsing, providerRefOf } from "./observe.ts";

export async function reconcileInstance(ctx: OperatorContext, key: string): Promise<ReconcileResult> {
  let instance = ctx.caches.instances.get(key);
  // Whatever this pass finds, it looks itself; a pass that ends at rest hands it back to the list.
  ctx.sessionLists?.unwatch(key);
  if (!instance) {
    ctx.pacing.delete(key);
    ctx.lookBudget.forget(key);
    return {};
  }
  const log = lazyChild(ctx.log, { kind: "WhatsAppInstance", namespace: instance.metadata.namespace, name: instance.metadata.name });
  const parsed = parseInstanceSpec(instance.spec);
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

/**
 * One pass: observe → plan → execute (carryOut, which returns the record of it all), then
 * report that record, remember what the next pass needs, and publish it in one write.
 */
async function runPass(ctx: OperatorContext, key: string, instance: InstanceObject, spec: InstanceSpec, log: Logger): Promise<ReconcileResult> {
  const pacing = ctx.pacing.get(key) ?? { startingLooks: 0 };
  const pass = await carryOut(ctx, instance, spec, pacing);
  const resting = restsOnList(pass);
  const report = reportInstance(reportInputOf(ctx, pass, spec, pacing));
  remember(ctx, key, pass, resting ? { ...report, routinePerSecond: 0 } : report, pacing);
  logRecoveryRestarts(pass.rounds, log);
  if (pass.failure && !pass.failure.lookAgain) log.info({ reason: pass.failure.verdict.reason, message: pass.failure.verdict.message }, "reconcile could not finish");
  if (pass.failure?.lookAgain) return report.result;
  try {
    await publishInstance(ctx, pass.instance, report.status, report.verdict, report.events);
  } catch (error) {
    if (isConflict(error)) return { requeueAfterMs: 500 };
    throw error;
  }
  if (!resting) return report.result;
  ctx.sessionLists?.watch(resting.provider, pollMsOf(ctx, resting.provider), key, resting.session);
  return {};
}

/**
 * A pass that found the session as it should be and has nothing to do until it changes
 * (the next look is the routine poll) rests on its provider's session list, where the
 * provider can list them: the list wakes it when its session changes.
 */
function restsOnList(pass: PassRecord): { readonly provider: ResolvedProvider; readonly session: { readonly id: string; readonly fingerprint: string } } | undefined {
  const last = pass.rounds.at(-1);
  const fingerprint = last?.session?.fingerprint;
  if (pass.failure || !pass.provider?.client.listSessions || !last?.session || fingerprint === undefined) return undefined;
  // Steps on our side (emptying the QR Secret once linked) leave the session as the look found it.
  if (changedProvider(last) || last.plan.requeue !== "poll") return undefined;
  return { provider: pass.provider, session: { id: last.session.id, fingerprint } };
}

/** A restart the operator decided on by itself (a stuck or failed session) is news: said at info level, as its Event says it. */
function logRecoveryRestarts(rounds: readonly Round[], log: Logger): void {
  for (const round of rounds) {
    const recovery = round.plan.steps.some((step) => step.kind === "restart" && step.why === "recovery");
    if (recovery && round.facts.some((fact) => fact.kind === "done" && fact.step === "restart")) log.info({ reason: round.plan.verdict.reason, message: round.plan.verdict.message }, "restarted the session");
  }
}

/** The record of one pass: what it started from, each round's session, plan and facts, and why it stopped early. */
interface PassRecord {
  /** The instance as last written (a restart's intent is written mid-pass). */
  readonly instance: InstanceObject;
  readonly startStatus: InstanceStatus;
  readonly provider: ResolvedProvider | undefined;
  readonly rounds: readonly Round[];
  readonly failure: Failure | undefined;
  /** Whether the pass planned from the session remembered in pacing rather than a fresh look. */
  readonly trusted: boolean;
}

/**
 * Observe (the caches once, the provider once), plan, execute; while a round changes the
 * provider, the next one plans from its answer (a created session) or a fresh look, a few
 * rounds at most: create → QR in one pass, without waiting for a requeue.
 */
async function carryOut(ctx: OperatorContext, instance: InstanceObject, spec: InstanceSpec, pacing: Pacing): Promise<PassRecord> {
  const startStatus: InstanceStatus = instance.status ?? {};
  const rounds: Round[] = [];
  let pass: Pass | undefined;
  let trusted = false;
  try {
    pass = { ctx, spec, pacing, startStatus, local: await observeLocal(ctx, instance, spec, startStatus), run: { instance } };
    const remembered = await trustedRound(pass, trustedSession(ctx, instance, spec, pacing));
    trusted = remembered !== undefined;
    rounds.push(remembered ?? (await playRound(pass, rounds, await lookAt(pass.local, spec, startStatus), "looked")));
    for (let last = rounds[0] as Round; changedProvider(last) && rounds.length < MAX_ROUNDS; last = rounds.at(-1) as Round) {
      const answered = answeredSession(last.plan, last.facts);
      const next = answered ?? (await lookAt(pass.local, spec, statusAfter(pass, rounds)));
      rounds.push(await playRound(pass, rounds, next, answered ? "answered" : "looked"));
    }
  } catch (error) {
    if (error instanceof RoundFailed) rounds.push(error.round);
    const cause = error instanceof RoundFailed ? error.error : error;
    const failure = describeFailure(cause, pass?.local.provider.type ?? "provider", ctx.clock.now());
    if (!failure) throw cause;
    return { instance: pass?.run.instance ?? instance, startStatus, provider: pass?.local.provider, rounds, failure, trusted };
  }
  return { instance: pass.run.instance, startStatus, provider: pass.local.provider, rounds, failure: undefined, trusted };
}

/** What every round of a pass shares: the caches' side observed once, and the instance as last written. */
interface Pass {
  readonly ctx: OperatorContext;
  readonly spec: InstanceSpec;
  readonly pacing: Pacing;
  readonly startStatus: InstanceStatus;
  readonly local: Omit<InstanceObservation, "session">;
  readonly run: { instance: InstanceObject };
}

/** A round whose steps failed part-way: what it did is still reported. */
class RoundFailed extends Error {
  readonly round: Round;
  readonly error: unknown;
  constructor(round: Round, error: unknown) {
    super(error instanceof Error ? error.message : String(error));
    this.round = round;
    this.error = error;
  }
}

/**
 * Where a round's session came from: a look at the provider, or a step's answer or the
 * pacing's memory. Only a look is worth a read of the session's settings: the reconciler
 * may throw a remembered plan away to look for real.
 */
type SessionSource = "looked" | "answered" | "remembered";

/** Plans from `session` with the status the rounds so far lead to, and carries the plan out. */
async function playRound(pass: Pass, rounds: readonly Round[], session: ObservedSession | null, source: SessionSource): Promise<Round> {
  return executeRound(pass, session, await planRound(pass, rounds, session, source));
}

async function planRound(pass: Pass, rounds: readonly Round[], session: ObservedSession | null, source: SessionSource): Promise<{ observation: InstanceObservation; plan: Plan }> {
  const status = statusAfter(pass, rounds);
  // The instance's own Secrets are read again after a round: its steps may have written them (cache reads, no request).
  const secrets = rounds.length === 0 ? {} : ownSecretStates(pass.ctx, pass.run.instance, pass.spec);
  const local = { ...pass.local, ...secrets, ref: refWithStatus(pass.local.ref, status) };
  // Seen out of its start (a QR, working, failed or stopped): its start slot is free again.
  if (session && session.phase !== "Starting") freeStartSlot(pass.ctx, local.provider.key, keyOf(pass.run.instance));
  if (session) await sawSession(pass.ctx, local.provider, keyOf(pass.run.instance), session, status, pass.spec.state);
  const sessionSettings = await observeSessionSettings(pass.ctx, pass.run.instance, local, session, source !== "looked");
  const observation: InstanceObservation = { ...local, session, ...(sessionSettings ? { sessionSettings } : {}) };
  return { observation, plan: planInstance(planInputOf(pass.ctx, pass.run.instance, pass.spec, status, observation)) };
}

async function executeRound(pass: Pass, session: ObservedSession | null, { observation, plan }: Awaited<ReturnType<typeof planRound>>): Promise<Round> {
  const run: ExecuteContext = { ctx: pass.ctx, spec: pass.spec, observation, instance: pass.run.instance, shownCode: pass.pacing.qr?.code };
  try {
    return { session, plan, facts: await executePlan(run, plan) };
  } catch (error) {
    if (!(error instanceof StepsFailed)) throw error;
    throw new RoundFailed({ session, plan, facts: error.facts }, error.error);
  } finally {
    // A step may have written the instance (a restart's intent): later rounds and the publish start from that.
    pass.run.instance = run.instance;
  }
}

/**
 * A pairing look due for a fresh code, planned from the remembered session: only when that
 * plan only fetches the code, and the code came (no code: the session stopped waiting for
 * a scan since it was seen, so the pass looks for real).
 */
async function trustedRound(pass: Pass, remembered: ObservedSession | undefined): Promise<Round | undefined> {
  // Settings due for a read are read from a real look: a remembered session would put them off for ever.
  if (!remembered || sessionSettingsReadDue(pass.ctx, pass.run.instance, pass.local)) return undefined;
  const planned = await planRound(pass, [], remembered, "remembered");
  if (!onlyFetchesQr(planned.plan)) return undefined;
  const round = await executeRound(pass, remembered, planned);
  return round.facts.some((fact) => fact.kind === "qr" && fact.validForMs === undefined) ? undefined : round;
}

function changedProvider(round: Round): boolean {
  return round.plan.steps.some((step) => MUTATING_STEPS.has(step.kind));
}

/** The status the rounds so far lead to: the next round plans from what the last one did (a created session's id). */
function statusAfter(pass: Pass, rounds: readonly Round[]): InstanceStatus {
  if (rounds.length === 0) return pass.startStatus;
  const record: PassRecord = { instance: pass.run.instance, startStatus: pass.startStatus, provider: pass.local.provider, rounds, failure: undefined, trusted: false };
  return reportInstance(reportInputOf(pass.ctx, record, pass.spec, pass.pacing)).status;
}

/** What the pass leaves the next one (Pacing) and the provider's look budget. */
function remember(ctx: OperatorContext, key: string, pass: PassRecord, report: ReturnType<typeof reportInstance>, pacing: Pacing): void {
  if (pass.provider) ctx.lookBudget.record(key, pass.provider.key, report.routinePerSecond);
  const seen = seenAfter(pass.rounds.at(-1), pass.failure, pass.trusted ? pacing.seen : undefined, ctx.clock.now());
  ctx.pacing.set(key, {
    startingLooks: report.startingLooks,
    ...(report.qrFetched ? { qr: { fetchedAt: ctx.clock.now(), ...report.qrFetched } } : pacing.qr ? { qr: pacing.qr } : {}),
    ...(seen ? { seen } : {}),
    // Written by observe and execute during the pass (observe.ts sessionReadDue).
    ...(ctx.pacing.get(key)?.sessionRead ? { sessionRead: ctx.pacing.get(key)?.sessionRead } : {}),
  });
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

/** The provider's pollInterval, or the operator's: how often an instance at rest is looked at (or listed). */
function pollMsOf(ctx: OperatorContext, provider: ResolvedProvider | undefined): number {
  return provider?.pollIntervalMs ?? ctx.config.pollInterval;
}

function reportInputOf(ctx: OperatorContext, pass: PassRecord, spec: InstanceSpec, pacing: Pacing): ReportInput {
  const { provider } = pass;
  const pollMs = pollMsOf(ctx, provider);
  const stretch = provider ? lookStretch(ctx.lookBudget.demand(provider.key), provider.settings.rateLimit.requestsPerSecond) : 1;
  return {
    name: pass.instance.metadata.name,
    uid: pass.instance.metadata.uid as string,
    spec,
    status: pass.startStatus,
    rounds: pass.rounds,
    ...(pass.failure ? { failure: pass.failure } : {}),
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
  // A slot it held (deleted while starting) goes to the next in line now, not at the stuck timeout.
  for (const provider of ctx.startSlots.forget(keyOf(instance))) wakeNextInLine(ctx, provider);
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
