/**
 * What a failed pass means to the user, for both kinds: a verdict for the conditions, an
 * Event where a person should hear of it, and when to try again. Pure; `now` is given.
 */
import { KubeError } from "../kube/client.ts";
import { MissingSecretError, SecretConflictError } from "../kube/secrets.ts";
import { ProviderError } from "../providers/errors.ts";
import { STALLED_REASONS, type Verdict } from "./conditions.ts";
import type { PlannedEvent } from "./instance/plan.ts";
import { ProviderResolutionError } from "./provider/connections.ts";
import { SLOT_RETRY_MS, StartSlotTaken } from "./instance/start-slots.ts";

export interface Failure {
  readonly verdict: Verdict;
  readonly event?: PlannedEvent;
  /** Try again after exactly this long (Retry-After, a provider block); else the key's backoff applies. */
  readonly retryAfterMs?: number;
  /** A person must act first: look again only at the poll interval. */
  readonly waitForChange?: boolean;
  /** A provider block until a time (cloud_api 133016), kept in status.recovery. */
  readonly blockedUntil?: string;
  /** Our cache was behind (409 Conflict): look again at once, nothing to report. */
  readonly lookAgain?: boolean;
}

/** Maps an error to what the user sees; undefined for bugs, which the queue retries with backoff. */
export function describeFailure(error: unknown, who: string, now: number): Failure | undefined {
  if (error instanceof KubeError && error.status === 409) {
    return { verdict: { ready: false, stalled: false, reason: "Conflict", message: "the object changed meanwhile; looking again" }, lookAgain: true };
  }
  if (error instanceof StartSlotTaken) {
    return { verdict: { ready: false, stalled: false, reason: "WaitingForStartSlot", message: error.message }, retryAfterMs: SLOT_RETRY_MS };
  }
  if (error instanceof ProviderResolutionError) {
    const reason = error.reason === "InvalidSpec" ? "InvalidSpec" : STALLED_REASONS[error.reason];
    return { verdict: { ready: false, stalled: true, reason, message: error.message }, waitForChange: true };
  }
  if (error instanceof MissingSecretError) {
    return { verdict: { ready: false, stalled: true, reason: STALLED_REASONS[error.reason], message: error.message }, waitForChange: true };
  }
  if (error instanceof SecretConflictError) {
    return { verdict: { ready: false, stalled: true, reason: STALLED_REASONS.SecretConflict, message: error.message }, waitForChange: true };
  }
  if (!(error instanceof ProviderError)) return undefined;
  switch (error.kind) {
    case "InvalidCredentials":
      return { verdict: { ready: false, stalled: true, reason: STALLED_REASONS.InvalidCredentials, message: error.message }, waitForChange: true };
    case "Rejected":
      return {
        verdict: { ready: false, stalled: true, reason: STALLED_REASONS.ProviderRejected, message: error.message },
        event: { type: "Warning", reason: "ProviderError", message: error.message },
        waitForChange: true,
      };
    case "QuotaExceeded":
      return {
        verdict: { ready: false, stalled: true, reason: STALLED_REASONS.QuotaExceeded, message: error.message },
        event: { type: "Warning", reason: "QuotaExceeded", message: error.message },
        waitForChange: true,
      };
    case "Blocked": {
      const until = new Date(error.retryAt?.getTime() ?? now + 60 * 60_000).toISOString();
      return {
        verdict: { ready: false, stalled: true, reason: STALLED_REASONS.RegistrationBlocked, message: `${error.message}; no new attempt before ${until}` },
        event: { type: "Warning", reason: "ProviderError", message: `${who} blocks new attempts until ${until}` },
        retryAfterMs: Math.max(1000, Date.parse(until) - now),
        blockedUntil: until,
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
