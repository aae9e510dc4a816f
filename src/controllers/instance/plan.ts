/**
 * The instance planner: a pure function from what was observed to what to do next.
 * No clock, no I/O, no logger — `now` arrives as a number — so every rule is a table test.
 * The reconciler runs observe → plan → execute up to a few times per pass, then reports.
 */
import type { InstanceSpec, InstanceStatus } from "../../api/instance.ts";
import type { ObservedSession, Phase, ProviderCapabilities, ProviderType } from "../../providers/types.ts";
import { STALLED_REASONS, type Verdict } from "../conditions.ts";

export type Step =
  | { readonly kind: "create" }
  | { readonly kind: "connect" }
  | { readonly kind: "disconnect" }
  | { readonly kind: "logout" }
  | { readonly kind: "restart"; readonly why: "requested" | "recovery" }
  /** Keep the <name>-qr Secret equal to the provider's current code (a no-op when it already is). */
  | { readonly kind: "showQr" }
  | { readonly kind: "requestPairingCode" }
  | { readonly kind: "configureWebhook" }
  /** Empty the <name>-qr Secret once linked. */
  | { readonly kind: "clearQr" };

/** Steps that change the provider's state, after which the reconciler looks again. */
export const MUTATING_STEPS: ReadonlySet<Step["kind"]> = new Set(["create", "connect", "disconnect", "logout", "restart", "configureWebhook", "requestPairingCode"]);

export interface PlannedEvent {
  readonly type: "Normal" | "Warning";
  readonly reason: string;
  readonly message: string;
}

export interface Plan {
  readonly phase: Phase;
  readonly steps: readonly Step[];
  readonly verdict: Verdict;
  /** When to look again: "fast" while pairing or after acting, "poll" when settled, or a delay. */
  readonly requeue: "fast" | "poll" | { readonly afterMs: number };
  readonly events: readonly PlannedEvent[];
  /** Status fields the plan changes (undefined = leave as is; null = clear). */
  readonly recovery?: InstanceStatus["recovery"] | null;
  readonly lastRestartAt?: string;
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
  /** Whether this instance may hold a provider slot (maxInstances, oldest first). */
  readonly quota: { readonly allowed: boolean; readonly message: string };
  /** The pairing code in the QR Secret and when it was requested, if any. */
  readonly pairingCode?: { readonly requestedAt: number };
  /** Whether the QR Secret holds anything (a code or image) to empty once linked. */
  readonly qrSecretFilled: boolean;
  readonly failureBackoff: { readonly baseMs: number; readonly maxMs: number };
}

/** Pairing codes are short-lived on the phone; ask for a new one after this. */
export const PAIRING_CODE_LIFETIME_MS = 3 * 60_000;

export function planInstance(input: PlanInput): Plan {
  const unsupported = checkSupport(input);
  if (unsupported) return unsupported;

  const { session } = input;
  if (session === null) return planCreate(input);
  if (session.ownerUid !== undefined && session.ownerUid !== input.uid) {
    return blocked(
      "Pending",
      STALLED_REASONS.SessionOwnedElsewhere,
      `${input.providerType} session ${session.id} belongs to another resource; delete it there or rename this instance`,
    );
  }
  const phase = derivePhase(session, input.status, input.spec.state);
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

/** Spec sections that belong to one provider type; on an instance of another they would be ignored. */
const TYPE_SPECIFIC_FIELDS = [
  { field: "cloudApi", type: "cloud_api" },
  { field: "wappfy", type: "wappfy" },
] as const satisfies readonly { field: keyof InstanceSpec; type: ProviderType }[];

/** The first spec field meant for another provider type, if any (pure; the reconciler reads no Secret of such a field). */
export function foreignField(spec: InstanceSpec, providerType: ProviderType): { readonly field: string; readonly type: ProviderType } | undefined {
  return TYPE_SPECIFIC_FIELDS.find((entry) => spec[entry.field] !== undefined && entry.type !== providerType);
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
  events.push({ type: "Normal", reason: "Created", message: `creating the ${input.providerType} session` });
  return {
    phase: "Pending",
    steps: [{ kind: "create" }],
    verdict: progress("Creating", `creating the ${input.providerType} session`),
    requeue: "fast",
    events,
    // A restart asked for before the session existed has nothing to restart.
    ...(pendingRestart(input) ? { lastRestartAt: input.spec.restartRequestedAt } : {}),
  };
}

function planConnected(input: PlanInput, session: ObservedSession, phase: Phase): Plan {
  const { capabilities, providerType, status } = input;
  const restartAt = pendingRestart(input);
  if (restartAt) {
    if (!capabilities.restart) return unsupported(input, phase, "restart");
    return {
      phase,
      steps: [{ kind: "restart", why: "requested" }],
      verdict: progress("Restarting", `restarting the session as requested at ${restartAt}`),
      requeue: "fast",
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
      const steps: Step[] = [...webhookSteps(input, session), { kind: "connect" }];
      return { phase, steps, verdict: progress("Starting", `starting the ${providerType} session`), requeue: "fast", events };
    }
    case "Starting":
      return { phase, steps: [], verdict: progress("Starting", `the ${providerType} session is starting`), requeue: "fast", events: [] };
    case "ScanQR": {
      const pairing = planPairing(input, phase);
      return pairing.verdict.stalled ? pairing : { ...pairing, steps: [...webhookSteps(input, session), ...pairing.steps] };
    }
    case "Connected": {
      const steps: Step[] = [];
      // Providers report webhookInSync only where they can wire webhooks at all.
      if (capabilities.webhook && session.webhookInSync === false) steps.push({ kind: "configureWebhook" });
      if (input.qrSecretFilled) steps.push({ kind: "clearQr" });
      const number = session.phoneNumber ? ` as +${session.phoneNumber}` : "";
      const events: PlannedEvent[] =
        status.phase === "Connected" ? [] : [{ type: "Normal", reason: "Connected", message: `linked${number}` }];
      return {
        phase,
        steps,
        verdict: { ready: true, stalled: false, reason: "Connected", message: `linked${number}` },
        requeue: steps.length > 0 ? "fast" : "poll",
        events,
        ...(status.recovery ? { recovery: null } : {}),
      };
    }
    case "Failed":
      return planRecovery(input, session, phase);
  }
}

/**
 * The webhook is wired before the phone links, not only once connected: the events of
 * linking (Wappfy's instance.qr and instance.connected) are what a receiver waits for.
 */
function webhookSteps(input: PlanInput, session: ObservedSession): Step[] {
  return input.capabilities.webhook && session.webhookInSync === false ? [{ kind: "configureWebhook" }] : [];
}

function planPairing(input: PlanInput, phase: Phase): Plan {
  const secretName = `${input.name}-qr`;
  if (input.spec.pairing?.method === "Code") {
    const fresh = input.pairingCode && input.now - input.pairingCode.requestedAt < PAIRING_CODE_LIFETIME_MS;
    return {
      phase,
      steps: fresh ? [] : [{ kind: "requestPairingCode" }],
      verdict: progress(
        "WaitingForPairingCode",
        `enter the pairing code from Secret ${secretName} (key pairing-code) on the phone: WhatsApp > Linked devices > Link with phone number`,
      ),
      requeue: "fast",
      events: [],
    };
  }
  if (!input.capabilities.qr) return unsupported(input, phase, "linking by QR code");
  return {
    phase,
    steps: [{ kind: "showQr" }],
    verdict: progress("WaitingForScan", `scan the QR code in Secret ${secretName} (kubectl whatsapp qr ${input.name})`),
    requeue: "fast",
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
    requeue: "fast",
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
    requeue: "fast",
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
    requeue: "fast",
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
  return Math.min(settings.maxMs, settings.baseMs * 2 ** attempts);
}

function human(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}
