/**
 * Typed provider failures. Clients translate HTTP answers into these kinds, and the
 * planner decides from the kind alone (retry, back off, or stall) — never from text.
 */

export const PROVIDER_ERROR_KINDS = [
  /** 401 or equivalent: the key is wrong. Needs a person. */
  "InvalidCredentials",
  /** The provider has no such instance/session. */
  "NotFound",
  /** Already in the requested state, or already exists. Usually success for us. */
  "Conflict",
  /** The provider refused the request as invalid or forbidden. Needs a person. */
  "Rejected",
  /** A plan or quota limit was hit. Waits for a free slot. */
  "QuotaExceeded",
  /** Too many requests; retryAfterMs says when to try again. */
  "RateLimited",
  /** 5xx, timeout or connection failure. Retried with backoff. */
  "Unavailable",
  /** The answer did not have the documented shape. Retried with backoff. */
  "Malformed",
  /** The provider blocks this operation until retryAt (cloud_api 133016). */
  "Blocked",
  /** The session is not in the state the call needs (WAHA 422). Look again soon. */
  "WrongState",
] as const;
export type ProviderErrorKind = (typeof PROVIDER_ERROR_KINDS)[number];

export interface ProviderErrorOptions {
  /** HTTP status, when there was an answer. */
  readonly status?: number;
  /** The provider's own error code (cloud_api error.code, wappfy RATE_LIMIT_EXCEEDED). */
  readonly code?: string;
  readonly retryAfterMs?: number;
  readonly retryAt?: Date;
  readonly cause?: unknown;
}

/** A failure talking to a provider. The message is secret-free and fit for a condition. */
export class ProviderError extends Error {
  readonly kind: ProviderErrorKind;
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly retryAt: Date | undefined;

  constructor(kind: ProviderErrorKind, message: string, options: ProviderErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ProviderError";
    this.kind = kind;
    this.status = options.status;
    this.code = options.code;
    this.retryAfterMs = options.retryAfterMs;
    this.retryAt = options.retryAt;
  }
}

export function isProviderError(error: unknown, kind?: ProviderErrorKind): error is ProviderError {
  return error instanceof ProviderError && (kind === undefined || error.kind === kind);
}

/** Retry-After (seconds or an HTTP date) in milliseconds from now; one reader for every client. */
export { parseRetryAfter } from "../runtime/retry.ts";

/** Removes the given secrets from provider text before it reaches a condition or an Event (see redaction.ts). */
export { redactSecrets } from "../redaction.ts";

/** Provider text is kept short: a condition message is read at a glance. */
export function shortenMessage(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
