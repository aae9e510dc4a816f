/**
 * The instance planner: a pure function from what was observed to what to do next.
 * No clock, no I/O, no logger — `now` arrives as a number — so every rule is a table test.
 * The reconciler runs observe → plan → execute up to a few times per pass, then reports.
 */
import { backoffDelay } from "../../runtime/retry.ts";
import type { InstanceSpec, InstanceStatus } from "../../api/instance.ts";
import type { ProviderModule } from "../../providers/module.ts";
import { PROVIDER_MODULES } from "../../providers/registry.ts";
import { fieldsSet, type SessionField } from "../../providers/session-settings.ts";
import type { ObservedSession, Phase, ProviderCapabilities, ProviderType } from "../../providers/types.ts";
import { STALLED_REASONS, type Verdict } from "../conditions.ts";
import { admit, SLOT_RETRY_MS, waitingMessage, type StartSlotView } from "./start-slots.ts";

export type Step =
  /** `start`: the provider starts the session in the same call (capabilities.createStarts). */
  | { readonly kind: "create"; readonly start?: boolean }
  /** Record this resource as the owner of an adopted session, where the provider can store it (WAHA metadata). */
  | { readonly kind: "claim" }
  | { readonly kind: "connect" }
  | { readonly kind: "disconnect" }
  | { readonly kind: "logout" }
  | { readonly kind: "restart"; readonly why: "requested" | "recovery" }
  /** Keep the <name>-qr Secret equal to the provider's current code (a no-op when it already is). */
  | { readonly kind: "showQr" }
  | { readonly kind: "requestPairingCode" }
  | { readonly kind: "configureWebhook" }
  /** Set the provider's session settings to spec.session's (the fields named differ now). */
  | { readonly kind: "applySessionSettings"; readonly fields: readonly SessionField[] }
  /** Empty the <name>-qr Secret once linked. */
  | { readonly kind: "clearQr" }
  /** Create or update <name>-webhook (url, events, hmac-key) before the provider is wired with its key. */
  | { readonly kind: "writeWebhookSecret" }
  /** spec.webhook was removed: <name>-webhook goes too. */
  | { readonly kind: "deleteWebhookSecret" };

/** Steps that start a session, each of which needs a start slot (start-slots.ts). */
export const START_STEPS: ReadonlySet<Step["kind"]> = new Set(["create", "connect", "restart"]);

/** Steps that change the provider's state, after which the reconciler looks again. */
export const MUTATING_STEPS: ReadonlySet<Step["kind"]> = new Set(["create", "claim", "connect", "disconnect", "logout", "restart", "configureWebhook", "requestPairingCode", "applySessionSettings"]);

export interface PlannedEvent {
  readonly type: "Normal" | "Warning";
  readonly reason: string;
  readonly message: string;
}

/**
 * Why to look again, which the reporter turns into a delay (see next-look.ts): "acted"
 * after changing the provider, "starting" while a session boots, "pairing" while a code
 * waits for the phone, "poll" when settled, or a fixed delay.
 */
export type Requeue = "acted" | "starting" | "pairing" | "poll" | { readonly afterMs: number };

export interface Plan {
  readonly phase: Phase;
  readonly steps: readonly Step[];
  readonly verdict: Verdict;
  readonly requeue: Requeue;
  readonly events: readonly PlannedEvent[];
  /** Status fields the plan changes (undefined = leave as is; null = clear). */
  readonly recovery?: InstanceStatus["recovery"] | null;
  readonly lastRestartAt?: string;
  readonly providerState?: InstanceStatus["providerState"];
  /** The plan would start the session but waits for a start slot; execute keeps its place in line. */
  readonly waitingForStartSlot?: boolean;
}

export interface PlanInput {
  readonly now: number;
  readonly name: string;
  readonly spec: InstanceSpec;
  readonly status: InstanceStatus;
  readonly uid: string;
  readonly providerType: ProviderType;
  readonly capabilities: ProviderCapabilities;
  /** The provider's side, or null when it has none. */
  readonly session: ObservedSession | null;
  /** Whether this instance may hold a provider slot (maxInstances, shared fairly between namespaces). */
  readonly quota: { readonly allowed: boolean; readonly message: string };
  /** The existing session the spec names (adopt, a phone number, a device), and whether another instance holds its claim. */
  readonly claim?: { readonly id: string; readonly adopts: boolean; readonly heldElsewhere?: string } | undefined;
  /** Whether the provider lets an instance take over an existing session (a cluster provider's spec.adoption). */
  readonly adoption: "Allowed" | "Disabled";
  /** How the provider proves whose a session is (ProviderModule.ownership), and whether it can record a claim. */
  readonly ownership: { readonly proof: "recorded" | "claimed"; readonly adoptable: boolean; readonly canClaim: boolean };
  /** The pairing code in the QR Secret and when it was requested, if any. */
  readonly pairingCode?: { readonly requestedAt: number };
  /** Whether the QR Secret holds anything (a code or image) to empty once linked. */
  readonly qrSecretFilled: boolean;
  /**
   * When the code in the QR Secret is due for a fresh one (ms since the epoch); absent
   * when there is none. A code is fetched again only then, not on every look.
   */
  readonly qrRefreshAt?: number;
  /** <name>-webhook: "absent", "current" (holds the spec's url and events and a key) or "stale". */
  readonly webhookSecret: "absent" | "current" | "stale";
  readonly failureBackoff: { readonly baseMs: number; readonly maxMs: number };
  /**
   * spec.session in the provider's config shape (the module's session.desired) and, when this
   * pass saw it, the provider's own; the module's session.drift compares them.
   */
  readonly sessionSettings?: { readonly desired: unknown; readonly observed?: unknown };
  /** How long a session may stay STARTING before it is restarted once, then reported Failed (STUCK_TIMEOUT). */
  readonly stuckTimeoutMs: number;
  /** The provider's start slots as this instance sees them; absent: no limit. */
  readonly startSlot?: StartSlotView;
}

/** Pairing codes are short-lived on the phone; ask for a new one after this. */
export const PAIRING_CODE_LIFETIME_MS = 3 * 60_000;

export function planInstance(input: PlanInput): Plan {
  const plan = withProviderState(input, withStartSlot(input, planSession(input)));
  const secretSteps = webhookSecretSteps(input);
  return secretSteps.length === 0 ? plan : { ...plan, steps: [...secretSteps, ...plan.steps] };
}

/**
 * <name>-webhook follows spec.webhook whatever the session does: it is written before
 * any step that wires the provider with its key, and removed with the spec.
 */
function webhookSecretSteps(input: PlanInput): Step[] {
  const wanted = input.spec.webhook !== undefined && input.spec.webhook.secretRef === undefined;
  if (wanted && input.webhookSecret !== "current") return [{ kind: "writeWebhookSecret" }];
  if (!wanted && input.webhookSecret !== "absent") return [{ kind: "deleteWebhookSecret" }];
  return [];
}

/**
 * A plan that would start the session (create, start, restart: new instances, requested
 * restarts and recoveries alike) waits while the provider's start slots are taken. A
 * running session keeps its phase meanwhile; one that is not running is Pending.
 */
function withStartSlot(input: PlanInput, plan: Plan): Plan {
  if (!input.startSlot || !plan.steps.some((step) => START_STEPS.has(step.kind))) return plan;
  const admission = admit(input.startSlot);
  if (admission.admitted) return plan;
  const running = plan.phase === "Connected" || plan.phase === "ScanQR";
  return {
    phase: running ? plan.phase : "Pending",
    steps: [],
    verdict: progress("WaitingForStartSlot", waitingMessage(input.startSlot.max, input.providerType)),
    requeue: { afterMs: SLOT_RETRY_MS },
    events: [],
    waitingForStartSlot: true,
  };
}

/** The provider's state and since when, so a session can be found stuck in it (STARTING). */
function withProviderState(input: PlanInput, plan: Plan): Plan {
  const seen = input.status.providerState;
  const word = input.session?.providerState;
  if (plan.providerState !== undefined || word === undefined || seen?.state === word) return plan;
  return { ...plan, providerState: { state: word, since: new Date(input.now).toISOString() } };
}

function planSession(input: PlanInput): Plan {
  const unsupported = checkSupport(input);
  if (unsupported) return unsupported;

  const { session } = input;
  const adopting = input.spec.adopt !== undefined && input.ownership.adoptable;
  const boundary = checkBoundary(input);
  if (boundary) return boundary;
  if (session === null && adopting && !input.status.providerInstanceId) {
    return blocked(
      "Pending",
      STALLED_REASONS.SessionNotFound,
      `${input.providerType} has no session ${input.spec.adopt?.id} to adopt; fix spec.adopt.id or remove adopt to create a new one`,
    );
  }
  if (session === null) return planCreate(input);
  const owner = ownershipOf(input, session);
  if (owner === "elsewhere") {
    return blocked(
      "Pending",
      STALLED_REASONS.SessionOwnedElsewhere,
      `${input.providerType} session ${session.id} belongs to another resource; delete it there or rename this instance`,
    );
  }
  if (owner === "unproven") {
    return blocked(
      "Pending",
      STALLED_REASONS.SessionOwnedElsewhere,
      `${input.providerType} session ${session.id} exists but was not created for this resource; to take it over, set spec.adopt.id on a new instance (where the provider allows adoption)`,
    );
  }
  const phase = derivePhase(session, input.status, input.spec.state);
  if (owner === "adopted" && input.ownership.canClaim) {
    // Our claim is written first, whatever the desired state: from then on the provider
    // itself says whose the session is, and no other resource can take it over.
    return {
      phase,
      steps: [{ kind: "claim" }],
      verdict: progress("Claiming", `recording this resource as the owner of the ${input.providerType} session ${session.id}`),
      requeue: "acted",
      events: adopting && !input.status.providerInstanceId ? [adoptedEvent(input, session)] : [],
    };
  }
  const plan = planDesired(input, session, phase);
  if (!adopting || input.status.providerInstanceId) return plan;
  // The first look at an adopted session: say so once, whatever comes next.
  return { ...plan, events: [adoptedEvent(input, session), ...plan.events] };
}

function adoptedEvent(input: PlanInput, session: ObservedSession): PlannedEvent {
  return { type: "Normal", reason: "Adopted", message: `took over the existing ${input.providerType} session ${session.id} (${session.providerState})` };
}

/**
 * The tenant boundary, before any provider call: a spec that takes over an existing session
 * needs a provider that allows adoption, and the one claim on that session.
 */
function checkBoundary(input: PlanInput): Plan | undefined {
  const { claim } = input;
  if (claim?.adopts && input.adoption === "Disabled") {
    return blocked(
      "Pending",
      STALLED_REASONS.AdoptionDisabled,
      `the provider does not allow taking over existing sessions (its spec.adoption is Disabled), and this instance names ${input.providerType} session ${claim.id}; an admin of the ClusterWhatsAppProvider may set spec.adoption: Allowed`,
    );
  }
  if (claim?.heldElsewhere) return blocked("Pending", STALLED_REASONS.SessionClaimed, claim.heldElsewhere);
  return undefined;
}

/**
 * Whose the observed session is. "ours": it carries our uid, or the provider keeps no owner
 * and we hold the claim on it (checkBoundary). "adopted": a provider that records owners
 * shows none, and this resource took the session over (spec.adopt) or has followed it
 * since before names carried the uid; the claim is what proves it. "unproven": no owner
 * on record and nothing of ours names it (a session squatting on our name). "elsewhere":
 * another resource's uid.
 */
export function ownershipOf(input: Pick<PlanInput, "uid" | "spec" | "status" | "ownership">, session: ObservedSession): "ours" | "adopted" | "unproven" | "elsewhere" {
  if (session.ownerUid !== undefined) return session.ownerUid === input.uid ? "ours" : "elsewhere";
  if (input.ownership.proof === "claimed") return "ours";
  if (input.spec.adopt !== undefined) return "adopted";
  // A recorded id proves nothing where the provider writes our uid on every session it
  // makes for us (WAHA): a create answered "already exists" finds a squatter's session.
  // Where it cannot (Wappfy, WAPIZ), the id is how instances named before names carried the uid are followed.
  return input.status.providerInstanceId !== undefined && !input.ownership.canClaim ? "adopted" : "unproven";
}

function planDesired(input: PlanInput, session: ObservedSession, phase: Phase): Plan {
  switch (input.spec.state) {
    case "Connected":
      return planConnected(input, session, phase);
    case "Disconnected":
      return planDisconnected(input, session, phase);
    case "LoggedOut":
      return planLoggedOut(input, phase);
  }
}

/**
 * Our phase for what the provider shows. Providers report a logged-out session as
 * merely stopped, so LoggedOut is remembered from our own status; a session that was
 * created but never started reads as the stopped state that was asked for, or as
 * Pending while Connected is wanted (WAHA shows a session created with start:false
 * as STOPPED: not a session somebody stopped).
 */
export function derivePhase(session: ObservedSession, status: InstanceStatus, desired: InstanceSpec["state"]): Phase {
  const idle = session.phase === "Disconnected" || session.phase === "Pending";
  if (idle && status.phase === "LoggedOut") return "LoggedOut";
  if (session.phase === "Pending" && desired !== "Connected") return desired;
  const neverSeenRunning = status.phase === undefined || status.phase === "Pending";
  if (session.phase === "Disconnected" && desired === "Connected" && neverSeenRunning) return "Pending";
  return session.phase;
}

/**
 * The first spec field meant for another provider type, if any: each module names the
 * sections only it reads (specFields). Pure; the reconciler reads no Secret of such a field.
 */
export function foreignField(spec: InstanceSpec, providerType: ProviderType): { readonly field: string; readonly type: ProviderType } | undefined {
  for (const module of Object.values(PROVIDER_MODULES) as ProviderModule[]) {
    const field = module.type === providerType ? undefined : module.specFields?.find((name) => spec[name] !== undefined);
    if (field) return { field, type: module.type };
  }
  return undefined;
}

/** The first spec.session field the provider type's module does not declare (ProviderModule.session.supports). */
export function unsupportedSessionField(spec: InstanceSpec, providerType: ProviderType): SessionField | undefined {
  if (!spec.session) return undefined;
  const supports: readonly SessionField[] = PROVIDER_MODULES[providerType].session?.supports ?? [];
  return fieldsSet(spec.session).find((field) => !supports.includes(field));
}

/** Specs the provider cannot carry out at all: Stalled before any call. */
function checkSupport(input: PlanInput): Plan | undefined {
  const { spec, capabilities, providerType } = input;
  const phase = input.status.phase ?? "Pending";
  const foreign = foreignField(spec, providerType);
  if (foreign) {
    const message = `spec.${foreign.field} applies to ${foreign.type} providers only, and this instance's provider is ${providerType}; remove spec.${foreign.field}`;
    return blocked(phase, "InvalidSpec", message, [{ type: "Warning", reason: "InvalidSpec", message }]);
  }
  const unsupportedSetting = unsupportedSessionField(spec, providerType);
  if (unsupportedSetting) {
    const message = `spec.session.${unsupportedSetting} is not supported by ${providerType}; remove it or use a provider that honours it`;
    return blocked(phase, "InvalidSpec", message, [{ type: "Warning", reason: "InvalidSpec", message }]);
  }
  const cannot = (operation: string) =>
    blocked(phase, STALLED_REASONS.UnsupportedByProvider, `provider type ${providerType} does not support ${operation}`, [
      { type: "Warning", reason: "InvalidSpec", message: `provider type ${providerType} does not support ${operation}` },
    ]);
  if (spec.state === "Connected" && spec.pairing?.method === "Code" && !capabilities.pairingCode) return cannot("pairing by code");
  if (spec.webhook) {
    if (!capabilities.webhook) return cannot("webhooks");
    const allowed = capabilities.webhookEvents;
    if (allowed === "none") {
      if (spec.webhook.events.length > 0) return cannot(`filtering webhook events (remove ${spec.webhook.events.join(", ")})`);
    } else {
      const unknown = spec.webhook.events.filter((event) => !allowed.includes(event));
      if (unknown.length > 0) return cannot(`the webhook events ${unknown.join(", ")}`);
    }
  }
  return undefined;
}

function planCreate(input: PlanInput): Plan {
  if (!input.quota.allowed) {
    return blocked("Pending", STALLED_REASONS.QuotaExceeded, input.quota.message, [
      { type: "Warning", reason: "QuotaExceeded", message: input.quota.message },
    ]);
  }
  const events: PlannedEvent[] = [];
  if (input.status.providerInstanceId) {
    events.push({
      type: "Warning",
      reason: "DriftDetected",
      message: `${input.providerType} session ${input.status.providerInstanceId} was deleted outside the operator; creating it again`,
    });
  }
  // Where the provider can, a session wanted Connected is created running: one call, not create then start.
  const start = input.capabilities.createStarts === true && input.spec.state === "Connected";
  const doing = start ? `creating and starting the ${input.providerType} session` : `creating the ${input.providerType} session`;
  // Sent only once the create is done (report.ts), so it says what happened.
  events.push({ type: "Normal", reason: "Created", message: start ? `created and started the ${input.providerType} session` : `created the ${input.providerType} session` });
  return {
    phase: "Pending",
    steps: [start ? { kind: "create", start } : { kind: "create" }],
    verdict: progress("Creating", doing),
    requeue: "acted",
    events,
    // A restart asked for before the session existed has nothing to restart.
    ...(pendingRestart(input) ? { lastRestartAt: input.spec.restartRequestedAt } : {}),
  };
}

function planConnected(input: PlanInput, session: ObservedSession, phase: Phase): Plan {
  const { capabilities, providerType, status } = input;
  const restartAt = pendingRestart(input);
  if (restartAt && status.restartInFlight === restartAt) {
    // A pass that started this restart ended before it could record the outcome (the
    // operator crashed or lost its lease): at most once, so it counts as carried out.
    return {
      phase,
      steps: [],
      verdict: progress("Restarting", `a restart for ${restartAt} was started by an earlier pass; not repeating it`),
      requeue: "acted",
      events: [{ type: "Normal", reason: "Restarted", message: `the restart for restartRequestedAt ${restartAt} was begun before the operator stopped; it is not repeated` }],
      lastRestartAt: restartAt,
    };
  }
  if (restartAt) {
    if (!capabilities.restart) return unsupported(input, phase, "restart");
    return {
      phase,
      steps: [{ kind: "restart", why: "requested" }],
      verdict: progress("Restarting", `restarting the session as requested at ${restartAt}`),
      requeue: "acted",
      events: [{ type: "Normal", reason: "Restarted", message: `restarted the session (restartRequestedAt ${restartAt})` }],
      lastRestartAt: restartAt,
    };
  }

  switch (phase) {
    case "Pending":
    case "Disconnected":
    case "LoggedOut": {
      const notBefore = notBeforeMs(status);
      if (notBefore !== undefined && input.now < notBefore) {
        const when = new Date(notBefore).toISOString();
        return {
          ...blocked(phase, STALLED_REASONS.RegistrationBlocked, `${providerType} blocks new attempts until ${when}; the operator will try again then`),
          requeue: { afterMs: notBefore - input.now },
        };
      }
      const events: PlannedEvent[] = [];
      if (status.phase === "Connected" || status.phase === "ScanQR") {
        events.push({
          type: "Warning",
          reason: "DriftDetected",
          message: `found the ${providerType} session ${session.providerState} although Connected is wanted; starting it`,
        });
      }
      events.push({ type: "Normal", reason: "Starting", message: `starting the ${providerType} session` });
      // Settings go first: applied to a stopped session, they restart nothing.
      const steps: Step[] = [...sessionSteps(input, session), ...webhookSteps(input, session), { kind: "connect" }];
      events.push(...sessionEvents(input, session, false));
      return { phase, steps, verdict: progress("Starting", `starting the ${providerType} session`), requeue: "acted", events };
    }
    case "Starting":
      return planStarting(input, session, phase);
    case "ScanQR": {
      const pairing = planPairing(input, phase);
      if (pairing.verdict.stalled) return pairing;
      return {
        ...pairing,
        steps: [...sessionSteps(input, session), ...webhookSteps(input, session), ...pairing.steps],
        events: [...pairing.events, ...runningChangeEvents(input, session)],
      };
    }
    case "Connected": {
      const steps: Step[] = [...sessionSteps(input, session), ...webhookSteps(input, session)];
      if (input.qrSecretFilled) steps.push({ kind: "clearQr" });
      const number = session.phoneNumber ? ` as +${session.phoneNumber}` : "";
      const events: PlannedEvent[] = [
        ...(status.phase === "Connected" ? [] : [{ type: "Normal" as const, reason: "Connected", message: `linked${number}` }]),
        ...runningChangeEvents(input, session),
      ];
      return {
        phase,
        steps,
        verdict: { ready: true, stalled: false, reason: "Connected", message: `linked${number}` },
        requeue: steps.some((step) => MUTATING_STEPS.has(step.kind)) ? "acted" : "poll",
        events,
        ...(status.recovery ? { recovery: null } : {}),
      };
    }
    case "Failed":
      return planRecovery(input, session, phase);
  }
}

/**
 * A session left STARTING for longer than stuckTimeoutMs is a known failure of real gateways
 * (WAHA issues #1043, #2243): it is restarted once; still STARTING a stuckTimeoutMs after
 * that, it is Failed and recovered like a FAILED session, with the same backoff. Each restart
 * starts the clock again. An unknown state is never called stuck, and looks again at the
 * poll interval rather than every 2 s (cloud_api: Meta's 200 calls/hour budget per WABA).
 */
function planStarting(input: PlanInput, session: ObservedSession, phase: Phase): Plan {
  const { providerType, now } = input;
  const waiting: Plan = {
    phase,
    steps: [],
    verdict: progress("Starting", `the ${providerType} session is starting`),
    requeue: session.unknownState ? "poll" : "starting",
    events: [],
  };
  if (session.unknownState || !input.capabilities.restart) return waiting;
  const seen = input.status.providerState;
  // The stuck timer runs from when the session got its start slot, if that came later than the state.
  const granted = input.startSlot?.holders.find((holder) => holder.key === input.startSlot?.self.key)?.grantedAt ?? 0;
  const since = Math.max(seen?.state === session.providerState ? Date.parse(seen.since) : now, granted);
  if (now - since < input.stuckTimeoutMs) return waiting;
  const stuck = `stuck in ${session.providerState} for more than ${human(input.stuckTimeoutMs)}`;
  const restartedNow = { state: session.providerState, since: new Date(now).toISOString() };
  if (input.status.recovery === undefined) {
    return {
      phase,
      steps: [{ kind: "restart", why: "recovery" }],
      verdict: progress("Restarting", `the ${providerType} session was ${stuck}; restarting it once`),
      requeue: "acted",
      events: [{ type: "Normal", reason: "Restarted", message: `restarted the ${providerType} session, ${stuck}; if it stays stuck it is reported Failed` }],
      recovery: { attempts: 0 },
      providerState: restartedNow,
    };
  }
  const recovering = planRecovery(input, { ...session, message: stuck }, "Failed");
  return recovering.steps.length > 0 ? { ...recovering, providerState: restartedNow } : recovering;
}

/**
 * The webhook is wired before the phone links, not only once connected: the events of
 * linking (Wappfy's instance.qr and instance.connected) are what a receiver waits for.
 */
function webhookSteps(input: PlanInput, session: ObservedSession): Step[] {
  // Providers report webhookInSync only where they can wire webhooks at all.
  return input.capabilities.webhook && session.webhookInSync === false ? [{ kind: "configureWebhook" }] : [];
}

/**
 * Where rewiring restarts a running session (WAHA), the user hears it: one Event per
 * change, since the rewired session reports in sync afterwards.
 */
function rewiringEvents(input: PlanInput, session: ObservedSession): PlannedEvent[] {
  if (!input.capabilities.webhookRestartsSession || webhookSteps(input, session).length === 0) return [];
  return [{ type: "Normal", reason: "Restarted", message: `reconfiguring the webhook restarts the ${input.providerType} session; the link is kept` }];
}

/** The spec.session fields the provider holds otherwise, as the module's drift finds them; [] when in sync or not seen. */
export function sessionDrift(input: Pick<PlanInput, "providerType" | "sessionSettings">): readonly SessionField[] {
  const hook = PROVIDER_MODULES[input.providerType].session;
  const settings = input.sessionSettings;
  if (!hook || settings?.observed === undefined) return [];
  return hook.drift(settings.observed, settings.desired);
}

function sessionSteps(input: PlanInput, _session: ObservedSession): Step[] {
  const fields = sessionDrift(input);
  return fields.length > 0 ? [{ kind: "applySessionSettings", fields }] : [];
}

/**
 * What applying spec.session does, said once per change (afterwards the provider reports
 * the settings in sync). Where it restarts a running session (WAHA's PUT), that is said;
 * and a webhook rewired by the same write is the same restart.
 */
function sessionEvents(input: PlanInput, session: ObservedSession, running: boolean): PlannedEvent[] {
  const fields = sessionDrift(input);
  if (fields.length === 0) return [];
  const names = fields.map((field) => `spec.session.${field}`).join(", ");
  const restarts = running && PROVIDER_MODULES[input.providerType].session?.applyRestartsSession === true;
  if (restarts) {
    return [{ type: "Normal", reason: "Restarted", message: `applying ${names} restarts the ${input.providerType} session ${session.id}; the link is kept` }];
  }
  return [{ type: "Normal", reason: "SessionConfigured", message: `applied ${names} to the ${input.providerType} session ${session.id}` }];
}

/** Events of the config changes made to a running session: spec.session's, else the webhook's rewiring. */
function runningChangeEvents(input: PlanInput, session: ObservedSession): PlannedEvent[] {
  const settings = sessionEvents(input, session, true);
  const restarts = settings.some((event) => event.reason === "Restarted");
  return [...settings, ...(restarts ? [] : rewiringEvents(input, session))];
}

function planPairing(input: PlanInput, phase: Phase): Plan {
  const secretName = `${input.name}-qr`;
  if (input.spec.pairing?.method === "Code") {
    const validFor = input.capabilities.pairingCodeValidForMs;
    const fresh = input.pairingCode && input.now - input.pairingCode.requestedAt < (validFor ? validFor / 4 : PAIRING_CODE_LIFETIME_MS);
    return {
      phase,
      steps: fresh ? [] : [{ kind: "requestPairingCode" }],
      verdict: progress(
        "WaitingForPairingCode",
        `enter the pairing code from Secret ${secretName} (key pairing-code) on the phone: WhatsApp > Linked devices > Link with phone number`,
      ),
      requeue: "pairing",
      events: [],
    };
  }
  if (!input.capabilities.qr) return unsupported(input, phase, "linking by QR code");
  // The code already shown is good until its refresh time; a look in between only asks
  // whether the phone has linked.
  const due = !input.qrSecretFilled || input.qrRefreshAt === undefined || input.now >= input.qrRefreshAt;
  return {
    phase,
    steps: due ? [{ kind: "showQr" }] : [],
    verdict: progress("WaitingForScan", `scan the QR code in Secret ${secretName} (kubectl whatsapp qr ${input.name})`),
    requeue: "pairing",
    events: [],
  };
}

/** FAILED while Connected is wanted: wait 1 min, 2, 4 … up to 30 min between restarts. */
function planRecovery(input: PlanInput, session: ObservedSession, phase: Phase): Plan {
  const attempts = input.status.recovery?.attempts ?? 0;
  const notBefore = notBeforeMs(input.status);
  const why = session.message ? `: ${session.message}` : "";
  if (notBefore === undefined) {
    const wait = backoff(input.failureBackoff, attempts);
    const at = input.now + wait;
    return {
      phase,
      steps: [],
      verdict: progress("Failed", `the ${input.providerType} session failed (${session.providerState}${why}); restarting in ${human(wait)} (attempt ${attempts + 1})`),
      requeue: { afterMs: wait },
      events: [
        { type: "Warning", reason: "ProviderError", message: `the ${input.providerType} session failed (${session.providerState}); restarting in ${human(wait)}` },
      ],
      recovery: { attempts, notBefore: new Date(at).toISOString() },
    };
  }
  if (input.now < notBefore) {
    return {
      phase,
      steps: [],
      verdict: progress(
        "Failed",
        `the ${input.providerType} session failed (${session.providerState}${why}); restarting at ${new Date(notBefore).toISOString()} (attempt ${attempts + 1})`,
      ),
      requeue: { afterMs: notBefore - input.now },
      events: [],
    };
  }
  const step: Step = input.capabilities.restart ? { kind: "restart", why: "recovery" } : { kind: "connect" };
  return {
    phase,
    steps: [step],
    verdict: progress("Restarting", `restarting the failed session (attempt ${attempts + 1})`),
    requeue: "acted",
    events: [{ type: "Normal", reason: "Restarted", message: `restarted the failed session (attempt ${attempts + 1})` }],
    recovery: { attempts: attempts + 1 },
  };
}

function planDisconnected(input: PlanInput, session: ObservedSession, phase: Phase): Plan {
  if (phase === "Disconnected") return settled(input, phase, "Disconnected", "stopped; the link is kept");
  if (phase === "LoggedOut") {
    return blocked(phase, "LoggedOut", "the link was removed; set state: Connected and link the phone again");
  }
  if (!input.capabilities.disconnect) return unsupported(input, phase, "disconnecting (stopping while keeping the link)");
  return {
    phase,
    steps: [{ kind: "disconnect" }],
    verdict: progress("Disconnecting", `stopping the ${input.providerType} session (was ${session.providerState})`),
    requeue: "acted",
    events: [{ type: "Normal", reason: "Disconnected", message: `stopped the ${input.providerType} session; the link is kept` }],
  };
}

function planLoggedOut(input: PlanInput, phase: Phase): Plan {
  if (phase === "LoggedOut") return settled(input, phase, "LoggedOut", "logged out; a new link is needed to connect");
  if (!input.capabilities.logout) return unsupported(input, phase, "logging out");
  return {
    phase,
    steps: [{ kind: "logout" }],
    verdict: progress("LoggingOut", `logging the ${input.providerType} session out`),
    requeue: "acted",
    events: [{ type: "Normal", reason: "LoggedOut", message: `logged the ${input.providerType} session out; the link is removed` }],
  };
}

function settled(input: PlanInput, phase: Phase, reason: string, message: string): Plan {
  return {
    phase,
    steps: input.qrSecretFilled ? [{ kind: "clearQr" }] : [],
    verdict: { ready: true, stalled: false, reason, message },
    requeue: "poll",
    events: [],
    ...(input.status.recovery ? { recovery: null } : {}),
  };
}

function unsupported(input: PlanInput, phase: Phase, operation: string): Plan {
  const message = `provider type ${input.providerType} does not support ${operation}`;
  return blocked(phase, STALLED_REASONS.UnsupportedByProvider, message, [{ type: "Warning", reason: "InvalidSpec", message }]);
}

function blocked(phase: Phase, reason: string, message: string, events: PlannedEvent[] = []): Plan {
  return { phase, steps: [], verdict: { ready: false, stalled: true, reason, message }, requeue: "poll", events };
}

function progress(reason: string, message: string): Verdict {
  return { ready: false, stalled: false, reason, message };
}

/** The restartRequestedAt value not yet carried out, if any. */
function pendingRestart(input: PlanInput): string | undefined {
  const wanted = input.spec.restartRequestedAt;
  return wanted !== undefined && wanted !== input.status.lastRestartAt ? wanted : undefined;
}

function notBeforeMs(status: InstanceStatus): number | undefined {
  const value = status.recovery?.notBefore;
  return value === undefined ? undefined : Date.parse(value);
}

export function backoff(settings: PlanInput["failureBackoff"], attempts: number): number {
  return backoffDelay({ baseMs: settings.baseMs, maxMs: settings.maxMs }, attempts);
}

function human(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}
