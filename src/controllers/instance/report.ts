/**
 * Report: the status, Events and next look that follow from what a pass observed,
 * planned and did. Pure — no clock, no I/O — so what a pass writes is a table test.
 */
import type { InstanceSpec, InstanceStatus } from "../../api/instance.ts";
import type { Phase, ObservedSession } from "../../providers/types.ts";
import { STALLED_REASONS, type Verdict } from "../conditions.ts";
import type { ReconcileResult } from "../context.ts";
import type { Failure } from "../failures.ts";
import type { StepFact } from "./execute.ts";
import { nextLookMs, routineLooksPerSecond, type LookInput, type LookSettings, type ShownCode, type ShownQr } from "./next-look.ts";
import { PAIRING_CODE_LIFETIME_MS, type Plan, type PlannedEvent } from "./plan.ts";
import { qrSecretName, webhookSecretName } from "./secrets.ts";

/** One observe → plan → execute round; `facts` has one entry per step carried out. */
export interface Round {
  readonly session: ObservedSession | null;
  readonly plan: Plan;
  readonly facts: readonly StepFact[];
}

export interface ReportInput {
  readonly name: string;
  /** metadata.uid: a session recorded as somebody else's is never written into our status. */
  readonly uid: string;
  readonly spec: InstanceSpec;
  /** The status the pass started from. */
  readonly status: InstanceStatus;
  readonly rounds: readonly Round[];
  /** Why the pass stopped early, if it did. */
  readonly failure?: Failure;
  readonly now: number;
  readonly look: LookSettings;
  /** Consecutive earlier passes that found the session starting. */
  readonly startingLooks: number;
  /** The code shown before this pass. */
  readonly qrShown: ShownQr | undefined;
}

export interface InstanceReport {
  readonly status: InstanceStatus;
  readonly verdict: Verdict;
  readonly events: readonly PlannedEvent[];
  readonly result: ReconcileResult;
  /** What the routine looks until the next change cost the provider, in calls per second (LookBudget). */
  readonly routinePerSecond: number;
  /** Memory for the next pass (Pacing): a fresh QR fetch, and the looks spent starting. */
  readonly qrFetched?: { readonly validForMs: number; readonly code?: ShownCode };
  readonly startingLooks: number;
}

export function reportInstance(input: ReportInput): InstanceReport {
  const status: InstanceStatus = structuredClone(input.status);
  const events: PlannedEvent[] = [];
  let qrFetched: InstanceReport["qrFetched"];
  for (const round of input.rounds) {
    const fetched = applyRound(status, round, input, events);
    if (fetched) qrFetched = fetched;
  }
  if (input.spec.webhook) {
    status.webhook = { secretName: input.spec.webhook.secretRef?.name ?? webhookSecretName(input.name), url: input.spec.webhook.url };
  } else if (!stillWired(input.rounds)) {
    // Kept until the provider no longer shows our wiring: it names what unwiring must remove.
    delete status.webhook;
  }
  const last = input.rounds.at(-1)?.plan;
  const failure = input.failure;
  if (failure) {
    if (failure.event) events.push(failure.event);
    if (failure.blockedUntil) status.recovery = { attempts: 0, notBefore: failure.blockedUntil };
    // The call failed with an answer: a requested restart is still owed.
    delete status.restartInFlight;
  }
  const startingLooks = !failure && last?.requeue === "starting" ? input.startingLooks + 1 : 0;
  const verdict = failure?.verdict ?? last?.verdict ?? { ready: false, stalled: false, reason: "Observing", message: "looking at the provider" };
  const shown = qrFetched ? { fetchedAt: input.now, validForMs: qrFetched.validForMs } : input.qrShown;
  const look: LookInput | undefined =
    !failure && last ? { requeue: last.requeue, now: input.now, startingLooks: input.startingLooks, ...(shown ? { qr: shown } : {}) } : undefined;
  return {
    status,
    verdict,
    events,
    result: resultOf(input, last, failure, look),
    routinePerSecond: look ? routineLooksPerSecond(look, input.look) : 0,
    ...(qrFetched ? { qrFetched } : {}),
    startingLooks,
  };
}

/** Folds one round into the status; returns the QR fetched in it, if any. */
function applyRound(status: InstanceStatus, round: Round, input: ReportInput, events: PlannedEvent[]): InstanceReport["qrFetched"] {
  const { plan, session, facts } = round;
  // A session we could not prove ours is not recorded: a recorded id would rank this
  // instance first for the claim and, where the provider keeps no owner, count as proof.
  const unproven = plan.verdict.reason === STALLED_REASONS.SessionOwnedElsewhere;
  if (session && !unproven && (session.ownerUid === undefined || session.ownerUid === input.uid)) status.providerInstanceId = session.id;
  // Nor kept when an earlier round recorded it: a create answered "already exists" brings the squatter's session.
  if (session && unproven && status.providerInstanceId === session.id) delete status.providerInstanceId;
  applyObservation(status, plan.phase, session);
  let qrFetched: InstanceReport["qrFetched"];
  for (const fact of facts) {
    switch (fact.kind) {
      case "created":
        status.providerInstanceId = fact.session.id;
        break;
      case "qr":
        if (fact.validForMs === undefined) break;
        qrFetched = { validForMs: fact.validForMs, ...(fact.code ? { code: fact.code } : {}) };
        if (fact.written || !status.qr) status.qr = qrRecord(input, fact.validForMs);
        if (fact.written) tellCode(events, "QR code", qrSecretName(input.name));
        break;
      case "pairingCode":
        status.qr = qrRecord(input, PAIRING_CODE_LIFETIME_MS);
        tellCode(events, "pairing code", qrSecretName(input.name));
        break;
      case "done":
        if (fact.step === "logout") {
          // Providers show a logged-out session as merely stopped; remember it ourselves.
          status.phase = "LoggedOut";
          delete status.phoneNumber;
        }
        if (fact.step === "restart") delete status.restartInFlight;
        break;
    }
  }
  // What the plan records takes effect once all its steps are done: a restart whose call
  // failed is still owed, and says nothing happened.
  if (facts.length === plan.steps.length) {
    events.push(...plan.events);
    if (plan.providerState !== undefined) status.providerState = plan.providerState;
    if (plan.recovery === null) delete status.recovery;
    else if (plan.recovery !== undefined) status.recovery = plan.recovery;
    if (plan.lastRestartAt !== undefined) {
      status.lastRestartAt = plan.lastRestartAt;
      delete status.restartInFlight;
    }
  }
  return qrFetched;
}

/**
 * A new code's Event. The first code of a session created in this pass is told by the pass's
 * Created Event ("…; its QR code is in Secret x-qr"): one Event says both, at the cost of one
 * request, where a QRUpdated right behind it would cost a second. Every later code is QRUpdated.
 * (client-go's recorder folds only Events of one reason, so it would send two.)
 */
function tellCode(events: PlannedEvent[], what: "QR code" | "pairing code", secret: string): void {
  const index = events.findIndex((event) => event.reason === "Created");
  const created = events[index];
  // A Created Event already naming a code keeps it: a second code in the same pass is news of its own.
  if (created && !created.message.includes(CODE_IN_SECRET)) {
    events[index] = { ...created, message: `${created.message}; its ${what}${CODE_IN_SECRET}${secret}` };
    return;
  }
  events.push({ type: "Normal", reason: "QRUpdated", message: `a new ${what}${CODE_IN_SECRET}${secret}` });
}

const CODE_IN_SECRET = " is in Secret ";

/** Whether the provider still shows our webhook wiring after this pass (an unwiring that did not happen yet). */
function stillWired(rounds: readonly Round[]): boolean {
  const last = rounds.at(-1);
  if (!last) return true;
  const unwired = rounds.some((round) => round.facts.some((fact) => fact.kind === "done" && fact.step === "configureWebhook"));
  return !unwired && last.session?.webhookInSync === false;
}

/** Status fields that follow directly from the observation. */
function applyObservation(status: InstanceStatus, phase: Phase, session: ObservedSession | null): void {
  status.phase = phase;
  if (phase === "Connected" && session?.phoneNumber) status.phoneNumber = session.phoneNumber;
  if (phase === "LoggedOut" || phase === "Pending") delete status.phoneNumber;
  if (phase !== "ScanQR") delete status.qr;
}

function qrRecord(input: ReportInput, validForMs: number): NonNullable<InstanceStatus["qr"]> {
  return { secretName: qrSecretName(input.name), updatedAt: iso(input.now), expiresAt: iso(input.now + validForMs) };
}

function resultOf(input: ReportInput, last: Plan | undefined, failure: Failure | undefined, look: LookInput | undefined): ReconcileResult {
  if (failure) {
    if (failure.lookAgain) return { requeueAfterMs: 500 };
    if (failure.retryAfterMs !== undefined) return { requeueAfterMs: failure.retryAfterMs };
    if (failure.waitForChange) return { requeueAfterMs: input.look.pollMs };
    return { backoff: true };
  }
  if (!last || !look) return { requeueAfterMs: input.look.pollMs };
  // An instance on its way (just changed, or booting) is finished before new ones are begun.
  const inFlight = look.requeue === "acted" || look.requeue === "starting";
  return { requeueAfterMs: nextLookMs(look, input.look), ...(inFlight ? { inFlight } : {}) };
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
