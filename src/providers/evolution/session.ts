/**
 * spec.session for Evolution API v2: its instance settings (src/api/dto/settings.dto.ts:
 * rejectCall, msgCall, groupsIgnore, alwaysOnline, readMessages) and its proxy
 * (src/api/dto/proxy.dto.ts: enabled, host, port, protocol, username, password). Both have
 * their own find routes, so the settings are read with a call of their own, only when due.
 */
import { proxyParts, type SessionField, type SessionHook, type SessionSettings } from "../session-settings.ts";

/** The part of Evolution's settings that spec.session manages. */
export interface EvolutionSessionSettings {
  readonly settings?: {
    readonly rejectCall?: boolean;
    readonly msgCall?: string;
    readonly groupsIgnore?: boolean;
    readonly alwaysOnline?: boolean;
    readonly readMessages?: boolean;
  };
  readonly proxy?: {
    readonly enabled: boolean;
    readonly host: string;
    readonly port: string;
    readonly protocol: string;
    readonly username?: string;
    readonly password?: string;
  } | null;
}

export const evolutionSession: SessionHook<EvolutionSessionSettings> = {
  supports: ["proxy", "ignore.groups", "rejectCalls", "alwaysOnline", "readReceipts"],
  observedWith: "read",
  applyRestartsSession: false,
  desired(settings: SessionSettings): EvolutionSessionSettings {
    const values = {
      ...(settings.rejectCalls ? { rejectCall: settings.rejectCalls.enabled } : {}),
      ...(settings.rejectCalls?.message !== undefined ? { msgCall: settings.rejectCalls.message } : {}),
      ...(settings.ignore?.groups !== undefined ? { groupsIgnore: settings.ignore.groups } : {}),
      ...(settings.alwaysOnline !== undefined ? { alwaysOnline: settings.alwaysOnline } : {}),
      ...(settings.readReceipts !== undefined ? { readMessages: settings.readReceipts } : {}),
    };
    return {
      ...(Object.keys(values).length > 0 ? { settings: values } : {}),
      ...(settings.proxy ? { proxy: evolutionProxy(settings.proxy) } : {}),
    };
  },
  drift(observed: EvolutionSessionSettings, desired: EvolutionSessionSettings): readonly SessionField[] {
    const fields: SessionField[] = [];
    const now = observed.settings ?? {};
    const want = desired.settings ?? {};
    // Evolution stores false for a setting never set (Prisma defaults, schema.prisma Setting).
    const differs = (key: keyof NonNullable<EvolutionSessionSettings["settings"]>) => want[key] !== undefined && (now[key] ?? (key === "msgCall" ? "" : false)) !== want[key];
    if (desired.proxy && !sameProxy(observed.proxy, desired.proxy)) fields.push("proxy");
    if (differs("groupsIgnore")) fields.push("ignore.groups");
    if (differs("rejectCall") || differs("msgCall")) fields.push("rejectCalls");
    if (differs("alwaysOnline")) fields.push("alwaysOnline");
    if (differs("readMessages")) fields.push("readReceipts");
    return fields;
  },
};

function evolutionProxy(proxy: NonNullable<SessionSettings["proxy"]>): NonNullable<EvolutionSessionSettings["proxy"]> {
  const { protocol, host, port } = proxyParts(proxy.url);
  return {
    enabled: true,
    host,
    port,
    protocol,
    ...(proxy.username !== undefined ? { username: proxy.username } : {}),
    ...(proxy.password !== undefined ? { password: proxy.password } : {}),
  };
}

function sameProxy(observed: EvolutionSessionSettings["proxy"], desired: NonNullable<EvolutionSessionSettings["proxy"]>): boolean {
  if (!observed) return false;
  return (
    observed.enabled === desired.enabled &&
    observed.host === desired.host &&
    observed.port === desired.port &&
    observed.protocol === desired.protocol &&
    (observed.username ?? "") === (desired.username ?? "") &&
    (observed.password ?? "") === (desired.password ?? "")
  );
}
