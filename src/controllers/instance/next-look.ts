/**
 * When to look at an instance again, from why the plan wants another look. Pure: the
 * cost of an instance at rest is decided here, and table-tested in next-look.test.ts.
 */
import type { Requeue } from "./plan.ts";

export interface LookSettings {
  /** The provider's pollInterval (or the operator's): a settled instance. */
  readonly pollMs: number;
  /** How often a session waiting for the phone is asked whether it linked, without provider events. */
  readonly pairingPollMs: number;
  /** Whether the provider sends lifecycle events to the operator (spec.events): then a scan arrives as an event. */
  readonly providerEvents: boolean;
  /**
   * How far routine looks are spread (1 when absent): above 1 when the looks of every instance
   * of the provider would take more than their share of its rate limit (look-budget.ts).
   */
  readonly stretch?: number;
  /** Caps how old a shown code may get before it is due (QR_REFRESH_INTERVAL; 0 or absent: no cap). */
  readonly qrRefreshCap?: number;
}

/** A code shown in the QR Secret: when it was fetched and how long the provider said it lives. */
export interface ShownQr {
  readonly fetchedAt: number;
  readonly validForMs: number;
}

/** The code in the QR Secret, by its payload, and the digest of the Secret that shows it (secret-cache.ts). */
export interface ShownCode {
  readonly text: string;
  readonly secretDigest: string;
}

export interface LookInput {
  readonly requeue: Requeue;
  readonly now: number;
  /** The code shown, while pairing by QR. */
  readonly qr?: ShownQr;
  /** Consecutive looks that found the session still starting (0 on the first). */
  readonly startingLooks: number;
}

/** The first look at a booting session comes after this, doubling up to the pairing poll. */
export const FIRST_STARTING_LOOK_MS = 1_000;

export function nextLookMs(input: LookInput, settings: LookSettings): number {
  const { requeue } = input;
  if (typeof requeue === "object") return Math.max(250, requeue.afterMs);
  if (requeue === "acted") return Math.min(settings.pairingPollMs, FIRST_STARTING_LOOK_MS);
  const usual = usualLookMs(input, settings);
  const spread = usual * Math.max(1, settings.stretch ?? 1);
  if (requeue !== "pairing" || !input.qr) return spread;
  return Math.min(spread, Math.max(usual, qrLatestAt(input.qr.fetchedAt, input.qr.validForMs, settings.qrRefreshCap) - input.now));
}

/**
 * What the instance's routine looks cost the provider while it stays as it is, in calls per
 * second at their usual intervals: one call a look (a pairing look due for a code asks only
 * for the code). 0 for a look that is a follow-up, not a routine.
 */
export function routineLooksPerSecond(input: LookInput, settings: LookSettings): number {
  const { requeue } = input;
  if (typeof requeue === "object" || requeue === "acted") return 0;
  if (requeue === "pairing") {
    const scanCheck = pairingScanCheckMs(settings);
    const refreshPeriod = input.qr ? qrRefreshPeriodMs(input.qr.validForMs, settings.qrRefreshCap) : Infinity;
    return 1000 / Math.max(50, Math.min(scanCheck, refreshPeriod));
  }
  return 1000 / usualLookMs(input, settings);
}

/** A routine look's interval before any spreading. */
function usualLookMs(input: LookInput, settings: LookSettings): number {
  switch (input.requeue) {
    case "starting":
      // With provider events the session's own status event says when it is up (it wakes the
      // instance at once); without, the first look comes when a session usually is, then less often.
      if (settings.providerEvents) return settings.pairingPollMs;
      return Math.min(settings.pairingPollMs, FIRST_STARTING_LOOK_MS * 2 ** Math.min(input.startingLooks, 16));
    case "pairing": {
      const { qr } = input;
      const refresh = qr ? Math.max(0, qrRefreshAt(qr.fetchedAt, qr.validForMs, settings.qrRefreshCap) - input.now) : Infinity;
      return Math.max(50, Math.min(pairingScanCheckMs(settings), refresh));
    }
    default:
      return settings.pollMs;
  }
}

/** With provider events the scan is announced; polling stays only as the fallback. */
function pairingScanCheckMs(settings: LookSettings): number {
  return settings.providerEvents ? settings.pollMs : settings.pairingPollMs;
}

/**
 * When a code fetched at `fetchedAt` and documented to live `validForMs` is due for a fresh
 * one: after a quarter of its life, since the provider may have made it some time before we
 * fetched it; `maxAgeMs` caps that (a setting, 0 for no cap; tests use a short one).
 */
export function qrRefreshAt(fetchedAt: number, validForMs: number, maxAgeMs: number | undefined): number {
  return fetchedAt + qrRefreshPeriodMs(validForMs, maxAgeMs);
}

export function qrRefreshPeriodMs(validForMs: number, maxAgeMs: number | undefined): number {
  return Math.min(validForMs / 4, maxAgeMs || Infinity);
}

/** The latest a code fetched at `fetchedAt` is replaced, however far looks are spread: by half its life. */
export function qrLatestAt(fetchedAt: number, validForMs: number, maxAgeMs: number | undefined): number {
  return fetchedAt + Math.max(qrRefreshPeriodMs(validForMs, maxAgeMs), validForMs / 2);
}
