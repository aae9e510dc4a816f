/**
 * Cloud API phone-number `status` values in our phases, per API.md. Meta's sources
 * disagree on the enum (cloud-api.md 2.2), so this is an open table: unknown words
 * get a safe phase and keep their spelling in providerState. Pure: never throws.
 */
import type { Phase } from "../types.ts";

export interface StatusMeaning {
  readonly phase: Phase;
  /** Why the phase is what it is, when the word alone would mislead (shown as the session message). */
  readonly note?: string;
  /** A word the table does not know (or none at all). */
  readonly unknown?: true;
}

/** Every status seen in Meta's spec schemas and help pages, with our reading of it. */
export const CLOUD_API_STATUS_PHASES = {
  CONNECTED: { phase: "Connected" },
  /** Spec schema WhatsAppPhoneNumberStatus uses LINKED beside PENDING/UNLINKED: registered. */
  LINKED: { phase: "Connected" },
  // Still registered and able to answer, but worth telling the user about.
  FLAGGED: { phase: "Connected", note: "the number is flagged for low quality; its messaging limit may drop" },
  RESTRICTED: { phase: "Connected", note: "the number reached its messaging limit; it can still reply to customers" },
  RATE_LIMITED: { phase: "Connected", note: "the number is rate limited by WhatsApp" },
  PENDING: { phase: "Pending", note: "the number is not registered on Cloud API yet" },
  UNVERIFIED: {
    phase: "Pending",
    note: "the number's ownership is not verified; request_code and verify_code are needed before registering",
  },
  // Not (or no longer) registered: a new register call is needed.
  DISCONNECTED: { phase: "LoggedOut", note: "the number is not registered on Cloud API (deregistered)" },
  UNLINKED: { phase: "LoggedOut", note: "the number is not registered on Cloud API (unlinked)" },
  OFFLINE: { phase: "LoggedOut", note: "the number is offline on Cloud API; registering it again brings it back" },
  // Needs a person: nothing we can call fixes these.
  BANNED: { phase: "Failed", note: "the number is banned by WhatsApp" },
  DELETED: { phase: "Failed", note: "the number was deleted from the WhatsApp Business Account" },
  MIGRATED: { phase: "Failed", note: "the number was migrated to another WhatsApp Business Account or platform" },
} as const satisfies Readonly<Record<string, StatusMeaning>>;

export type CloudApiStatus = keyof typeof CLOUD_API_STATUS_PHASES;

/**
 * Meaning of a `status` word. Unknown words (including Meta's own `UNKNOWN`) and a missing
 * status (Meta's PhoneNumberInfo schema does not declare the field) map to Starting: the
 * controller then waits and looks again instead of calling register, which would spend one
 * of the ten attempts per 72 h on a guess.
 */
export function cloudApiStatusMeaning(status: string | undefined): StatusMeaning {
  const word = (status ?? "").trim().toUpperCase();
  if (Object.hasOwn(CLOUD_API_STATUS_PHASES, word)) return CLOUD_API_STATUS_PHASES[word as CloudApiStatus];
  const shown = word === "" ? "no status" : `status ${JSON.stringify((status ?? "").trim().slice(0, 40))}`;
  return { phase: "Starting", note: `Cloud API reported ${shown}, which the operator does not know; waiting`, unknown: true };
}
