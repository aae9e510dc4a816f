/**
 * kstatus-compatible conditions (Ready, Reconciling, Stalled). One helper sets a
 * condition, keeping lastTransitionTime when the status did not change, so a status
 * computed twice from the same facts is byte-for-byte the same and is not re-patched.
 */
import type { Condition } from "../api/common.ts";
import { redactor } from "../redaction.ts";

export const CONDITION_TYPES = { Ready: "Ready", Reconciling: "Reconciling", Stalled: "Stalled" } as const;

/** Why an object is Stalled: each needs a change from a person. */
export const STALLED_REASONS = {
  ProviderNotFound: "ProviderNotFound",
  InvalidCredentials: "InvalidCredentials",
  QuotaExceeded: "QuotaExceeded",
  UnsupportedByProvider: "UnsupportedByProvider",
  ProviderRejected: "ProviderRejected",
  SecretNotFound: "SecretNotFound",
  SessionOwnedElsewhere: "SessionOwnedElsewhere",
  RegistrationBlocked: "RegistrationBlocked",
  SessionNotFound: "SessionNotFound",
  /** A ClusterWhatsAppProvider whose allowedNamespaces does not let the instance's namespace in. */
  ProviderNotAllowed: "ProviderNotAllowed",
  /** spec.adopt on a ClusterWhatsAppProvider whose adoption is Disabled. */
  AdoptionDisabled: "AdoptionDisabled",
  /** Another WhatsAppInstance already claims the same provider session, phone number or device. */
  SessionClaimed: "SessionClaimed",
  SecretNotLabelled: "SecretNotLabelled",
  SecretConflict: "SecretConflict",
} as const;
export type StalledReason = (typeof STALLED_REASONS)[keyof typeof STALLED_REASONS];

export interface ConditionInput {
  readonly type: string;
  readonly status: "True" | "False" | "Unknown";
  readonly reason: string;
  readonly message: string;
}

/** Returns the list with `input` set, for `generation`, at `now` only if its status changed. */
export function setCondition(existing: readonly Condition[] | undefined, input: ConditionInput, generation: number, now: string): Condition[] {
  const list = [...(existing ?? [])];
  const index = list.findIndex((condition) => condition.type === input.type);
  const previous = index >= 0 ? list[index] : undefined;
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message: truncate(input.message),
    lastTransitionTime: previous && previous.status === input.status ? previous.lastTransitionTime : now,
    observedGeneration: generation,
  };
  if (index >= 0) list[index] = next;
  else list.push(next);
  return list;
}

/** The three kstatus conditions in one go, from one verdict. */
export interface Verdict {
  /** Ready: the desired state is reached. */
  readonly ready: boolean;
  /** Stalled: a person must act; otherwise, when not ready, the operator is still working. */
  readonly stalled: boolean;
  readonly reason: string;
  readonly message: string;
}

export function applyVerdict(existing: readonly Condition[] | undefined, verdict: Verdict, generation: number, now: string): Condition[] {
  let list = setCondition(
    existing,
    { type: CONDITION_TYPES.Ready, status: verdict.ready ? "True" : "False", reason: verdict.reason, message: verdict.message },
    generation,
    now,
  );
  const reconciling = !verdict.ready && !verdict.stalled;
  list = setCondition(
    list,
    {
      type: CONDITION_TYPES.Reconciling,
      status: reconciling ? "True" : "False",
      reason: reconciling ? verdict.reason : verdict.ready ? "Succeeded" : "Stalled",
      message: reconciling ? verdict.message : verdict.ready ? "Desired state reached" : "Waiting for a change from a person",
    },
    generation,
    now,
  );
  return setCondition(
    list,
    {
      type: CONDITION_TYPES.Stalled,
      status: verdict.stalled ? "True" : "False",
      reason: verdict.stalled ? verdict.reason : "NotStalled",
      message: verdict.stalled ? verdict.message : "",
    },
    generation,
    now,
  );
}

/**
 * A status as it may be written: its free text (condition messages, which carry provider
 * text) through the redactor, with the credentials of the object's own namespace and the
 * operator's. Enums, names and timestamps are never rewritten: a value a tenant stored in
 * a Secret must not be able to turn a phase into something the CRD refuses.
 */
export function publishableStatus<T extends { conditions?: readonly Condition[] | undefined }>(status: T, namespace: string | undefined): T {
  if (!status.conditions?.length) return status;
  const conditions = status.conditions.map((condition) => ({ ...condition, message: redactor.redact(condition.message, namespace) }));
  return { ...status, conditions };
}

function truncate(message: string): string {
  return message.length > 2000 ? `${message.slice(0, 1997)}...` : message;
}
