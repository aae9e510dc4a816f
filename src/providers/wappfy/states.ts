/**
 * Wappfy's instance status words, mapped to our phases (API.md, phase table).
 *
 * Wappfy has no word for "logged out": after a logout its status reads `disconnected`,
 * exactly as after a plain disconnect. The mapping stays a pure function of the word, so
 * it reports Disconnected; the controller, which knows it asked for a logout, is the one
 * that can tell LoggedOut apart.
 */
import type { Phase } from "../types.ts";

/** Each documented Wappfy status word and its phase. */
export const WAPPFY_STATUS_PHASES = {
  created: "Pending",
  starting: "Starting",
  scan_qr: "ScanQR",
  connected: "Connected",
  disconnected: "Disconnected",
  failed: "Failed",
} as const satisfies Readonly<Record<string, Phase>>;

export type WappfyStatus = keyof typeof WAPPFY_STATUS_PHASES;

/**
 * A word Wappfy may add later is most likely another in-between state; Starting makes the
 * controller look again soon, where Failed would make it restart a healthy session.
 */
export const WAPPFY_UNKNOWN_STATUS_PHASE: Phase = "Starting";

export interface WappfyState {
  readonly phase: Phase;
  /** The word exactly as Wappfy sent it, for status messages. */
  readonly providerState: string;
}

/** Maps a Wappfy status word to our phase. Never throws; case and surrounding blanks are ignored. */
export function wappfyState(status: string): WappfyState {
  const word = status.trim().toLowerCase();
  const phase = Object.hasOwn(WAPPFY_STATUS_PHASES, word)
    ? WAPPFY_STATUS_PHASES[word as WappfyStatus]
    : WAPPFY_UNKNOWN_STATUS_PHASE;
  return { phase, providerState: status };
}
