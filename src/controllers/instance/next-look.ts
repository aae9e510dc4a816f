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
}

export interface LookInput {
  readonly requeue: Requeue;
  readonly now: number;
  /** When the QR code shown is due for a fresh one, while pairing by QR. */
  readonly qrRefreshAt?: number;
  /** Consecutive looks that found the session still starting (0 on the first). */
  readonly startingLooks: number;
}

/** The first look at a booting session comes after this, doubling up to the pairing poll. */
export const FIRST_STARTING_LOOK_MS = 1_000;

export function nextLookMs(input: LookInput, settings: LookSettings): number {
  const { requeue } = input;
  if (typeof requeue === "object") return Math.max(250, requeue.afterMs);
  switch (requeue) {
    case "poll":
      return settings.pollMs;
    case "acted":
      return Math.min(settings.pairingPollMs, FIRST_STARTING_LOOK_MS);
    case "starting":
      return Math.min(settings.pairingPollMs, FIRST_STARTING_LOOK_MS * 2 ** Math.min(input.startingLooks, 16));
    case "pairing": {
      // With provider events the scan is announced; polling stays only as the fallback.
      const scanCheck = settings.providerEvents ? settings.pollMs : settings.pairingPollMs;
      const refresh = input.qrRefreshAt === undefined ? Infinity : Math.max(0, input.qrRefreshAt - input.now);
      return Math.max(50, Math.min(scanCheck, refresh));
    }
  }
}

/**
 * When a code fetched at `fetchedAt` and documented to live `validForMs` is due for a fresh
 * one: after a quarter of its life, since the provider may have made it some time before we
 * fetched it; `maxAgeMs` caps that (a setting, 0 for no cap; tests use a short one).
 */
export function qrRefreshAt(fetchedAt: number, validForMs: number, maxAgeMs: number | undefined): number {
  return fetchedAt + Math.min(validForMs / 4, maxAgeMs || Infinity);
}
