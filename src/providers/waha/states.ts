/** WAHA session statuses in our phases (API.md's table). */
import type { Phase } from "../types.ts";

export const WAHA_STATUS_PHASES: Readonly<Record<string, Phase>> = {
  STOPPED: "Disconnected",
  STARTING: "Starting",
  SCAN_QR_CODE: "ScanQR",
  // GOWS passkey steps are still "waiting for the phone".
  PASSKEY_REQUIRED: "ScanQR",
  PASSKEY_CONFIRMATION_REQUIRED: "ScanQR",
  WORKING: "Connected",
  FAILED: "Failed",
};

/** Unknown statuses read as Starting: the session exists and is doing something we cannot name. */
export function wahaPhase(status: string): Phase {
  return isKnownWahaStatus(status) ? (WAHA_STATUS_PHASES[status] as Phase) : "Starting";
}

/** Whether WAHA's status is one the table names. */
export function isKnownWahaStatus(status: string): boolean {
  return Object.hasOwn(WAHA_STATUS_PHASES, status);
}
