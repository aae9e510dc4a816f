/**
 * WAPIZ device status words, mapped to our phases (API.md, phase table).
 *
 * WAPIZ has no "starting", "failed" or "logged out" word: a device whose phone removed the
 * link simply reads `disconnected`, like one that lost its connection.
 */
import type { Phase } from "../types.ts";

/** Each documented WAPIZ status word and its phase. */
export const WAPIZ_STATUS_PHASES = {
  logged_in: "Connected",
  /** Connected to WhatsApp but not logged in: it shows a QR and waits for the phone. */
  connected: "ScanQR",
  disconnected: "Disconnected",
} as const satisfies Readonly<Record<string, Phase>>;

export type WapizStatus = keyof typeof WAPIZ_STATUS_PHASES;

/** The body of `GET /api/devices/{id}/status`: a word plus the two flags it summarises. */
export interface WapizStatusReport {
  readonly status: string;
  readonly connected?: boolean;
  readonly loggedIn?: boolean;
}

export interface WapizState {
  readonly phase: Phase;
  /** The word exactly as WAPIZ sent it, for status messages. */
  readonly providerState: string;
}

/**
 * Maps a WAPIZ status to our phase. Never throws. A word we do not know falls back to
 * the two flags that come with it, which say the same thing in booleans; without them it
 * is Disconnected, the state from which the controller asks for a QR again.
 */
export function wapizState(report: WapizStatusReport): WapizState {
  const word = report.status.trim().toLowerCase();
  if (Object.hasOwn(WAPIZ_STATUS_PHASES, word)) {
    return { phase: WAPIZ_STATUS_PHASES[word as WapizStatus], providerState: report.status };
  }
  return { phase: phaseFromFlags(report), providerState: report.status };
}

function phaseFromFlags(report: WapizStatusReport): Phase {
  if (report.loggedIn === true) return "Connected";
  if (report.connected === true) return "ScanQR";
  return "Disconnected";
}
