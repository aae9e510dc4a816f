/**
 * Evolution API instance states in our phases (API.md's table).
 *
 * Evolution reports two words: the socket's live state (`GET /instance/connectionState`:
 * open, connecting, close) and the database's `connectionStatus` of the instance row
 * (`fetchInstances`), which moves to connecting only when a QR code is issued and stays
 * open while a linked session reconnects. Together they tell a session showing a QR code
 * from one that is booting or reconnecting with its link, which the live word alone cannot.
 */
import type { Phase } from "../types.ts";

/** The live states Evolution's connectionState answers (Baileys' WAConnectionState). */
export const EVOLUTION_STATES = ["open", "connecting", "close"] as const;

export interface EvolutionState {
  readonly phase: Phase;
  /** The live word as Evolution sent it, for status messages. */
  readonly providerState: string;
  readonly unknownState?: true;
}

/**
 * Maps (live state, database status) to our phase. Never throws. A live state missing
 * (an instance in the database that this Evolution has not loaded) or unknown reads as
 * Starting, flagged unknown so the planner never calls it stuck.
 */
export function evolutionState(live: string | null | undefined, stored: string | null | undefined): EvolutionState {
  const providerState = live ?? "unknown";
  switch (live) {
    case "open":
      return { phase: "Connected", providerState };
    case "close":
      return { phase: "Disconnected", providerState };
    case "connecting":
      // A QR issued moved the row to connecting; before it (booting) or while a linked session reconnects it is close or open.
      return { phase: stored === "connecting" ? "ScanQR" : "Starting", providerState };
    default:
      return { phase: "Starting", providerState, unknownState: true };
  }
}
