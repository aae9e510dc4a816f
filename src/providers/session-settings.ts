/**
 * spec.session: what a session is configured with, in one provider-neutral shape. Each
 * provider module that honours some of it declares which fields (SessionHook.supports) and
 * maps them to its own config; the planner refuses a field its provider's module does not
 * declare, and compares what the provider holds with what the module wants.
 */

import { SESSION_FIELDS, type SessionField } from "../api/session.ts";

export { SESSION_FIELDS, type SessionField };

/** The business profile of a Cloud API number (Graph API whatsapp_business_profile). */
export interface BusinessProfile {
  readonly about?: string;
  readonly description?: string;
  readonly email?: string;
  readonly websites?: readonly string[];
  readonly vertical?: string;
  readonly address?: string;
}

/** spec.session with the proxy's credentials read from their Secret. Never logged (the proxy password). */
export interface SessionSettings {
  readonly deviceName?: string;
  readonly browserName?: string;
  readonly proxy?: { readonly url: string; readonly username?: string; readonly password?: string };
  readonly ignore?: { readonly groups?: boolean; readonly status?: boolean; readonly channels?: boolean };
  readonly rejectCalls?: { readonly enabled: boolean; readonly message?: string };
  readonly alwaysOnline?: boolean;
  readonly readReceipts?: boolean;
  readonly businessProfile?: BusinessProfile;
}

/** The fields a spec.session sets, in SESSION_FIELDS order. */
export function fieldsSet(settings: Pick<SessionSettings, "ignore"> & Readonly<Record<string, unknown>>): SessionField[] {
  return SESSION_FIELDS.filter((field) => {
    const [head, tail] = field.split(".") as [string, string | undefined];
    const value = settings[head];
    return tail === undefined ? value !== undefined : (value as Record<string, unknown> | undefined)?.[tail] !== undefined;
  });
}

/**
 * How one provider honours spec.session. `Config` is the provider's own shape of the
 * settings it manages (only those; whatever else the provider holds is not compared).
 */
export interface SessionHook<Config> {
  /** The spec.session fields this provider can carry out; any other is refused as InvalidSpec. */
  readonly supports: readonly SessionField[];
  /**
   * Where the provider's current settings come from: "session", the session look observe
   * makes anyway (ObservedSession.sessionConfig, no extra call); "read", a call of their own
   * (ProviderClient.readSessionConfig), made only when the spec changed or at the slow resync.
   */
  readonly observedWith: "session" | "read";
  /** Whether applying restarts a running session (WAHA's PUT): the planner says so in an Event. */
  readonly applyRestartsSession: boolean;
  /** The provider config for these settings (only the supported fields that are set). */
  desired(settings: SessionSettings): Config;
  /** The spec.session fields whose value at the provider differs from the desired one; [] when in sync. */
  drift(observed: Config, desired: Config): readonly SessionField[];
}

/** Deep equality of plain JSON values, ignoring key order. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, index) => sameValue(item, b[index]));
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(left), ...Object.keys(right)]);
  return [...keys].every((key) => sameValue(left[key], right[key]));
}

/** Splits a proxy URL ("http://proxy.example:3128") into its scheme, host and port. */
export function proxyParts(url: string): { readonly protocol: string; readonly host: string; readonly port: string } {
  const parsed = new URL(url);
  const protocol = parsed.protocol.replace(/:$/, "");
  const port = parsed.port || (protocol === "https" ? "443" : "80");
  return { protocol, host: parsed.hostname, port };
}
