/**
 * whapi's device states (getState `results.state`) in our phases, per API.md.
 * Pure: no I/O, never throws.
 */
import type { Phase } from "../types.ts";

/** The four states the device-service page documents, and what each means for us. */
export const WHAPI_STATE_PHASES = {
  /** Linked and ready to send and receive. */
  CONNECTED: "Connected",
  /**
   * Linking in progress: waiting for the scan or finishing authentication. The word alone
   * cannot tell which, so it reads Starting; the client calls it ScanQR when a QR is on screen.
   */
  PAIRING: "Starting",
  /** Showing a QR (or code) to link the phone. */
  SERVICE_SCAN: "ScanQR",
  /** Service off: stopped, turned off with serviceDestroy, or logged out. */
  SERVICE_OFF: "Disconnected",
} as const satisfies Readonly<Record<string, Phase>>;

export type WhapiState = keyof typeof WHAPI_STATE_PHASES;

/**
 * Phase for a whapi state word. The lookup ignores case and surrounding blanks;
 * a word the page does not document maps to Starting, so the controller waits and
 * looks again rather than acting on a guess (the caller keeps the word as providerState).
 */
export function whapiPhase(state: string): Phase {
  const word = state.trim().toUpperCase();
  return Object.hasOwn(WHAPI_STATE_PHASES, word) ? WHAPI_STATE_PHASES[word as WhapiState] : "Starting";
}
