/**
 * spec.session for WAHA: the fields of its session config (waha.md 1.3; waha-openapi.json
 * SessionConfig): client {deviceName, browserName}, proxy {server, username, password},
 * ignore {groups, status, channels} and noweb.markOnline. The session GET returns the config,
 * so observe sees it at no extra cost; a PUT replaces it and restarts a running session.
 */
import { proxyParts, sameValue, type SessionField, type SessionHook, type SessionSettings } from "../session-settings.ts";

/** The part of WAHA's SessionConfig that spec.session manages. */
export interface WahaSessionSettings {
  readonly client?: { readonly deviceName?: string; readonly browserName?: string };
  readonly proxy?: { readonly server: string; readonly username?: string; readonly password?: string } | null;
  readonly ignore?: { readonly groups?: boolean; readonly status?: boolean; readonly channels?: boolean } | null;
  readonly noweb?: { readonly markOnline?: boolean } | null;
}

type Observed = Readonly<Record<string, unknown>> & WahaSessionSettings;

const IGNORED = ["groups", "status", "channels"] as const;

export const wahaSession: SessionHook<WahaSessionSettings> = {
  supports: ["deviceName", "browserName", "proxy", "ignore.groups", "ignore.status", "ignore.channels", "alwaysOnline"],
  observedWith: "session",
  applyRestartsSession: true,
  desired(settings: SessionSettings): WahaSessionSettings {
    const client = {
      ...(settings.deviceName !== undefined ? { deviceName: settings.deviceName } : {}),
      ...(settings.browserName !== undefined ? { browserName: settings.browserName } : {}),
    };
    const ignore = Object.fromEntries(IGNORED.flatMap((kind) => (settings.ignore?.[kind] !== undefined ? [[kind, settings.ignore[kind]]] : [])));
    return {
      ...(Object.keys(client).length > 0 ? { client } : {}),
      ...(settings.proxy ? { proxy: wahaProxy(settings.proxy) } : {}),
      ...(Object.keys(ignore).length > 0 ? { ignore } : {}),
      ...(settings.alwaysOnline !== undefined ? { noweb: { markOnline: settings.alwaysOnline } } : {}),
    };
  },
  drift(observed: Observed, desired: WahaSessionSettings): readonly SessionField[] {
    const fields: SessionField[] = [];
    if (desired.client?.deviceName !== undefined && observed.client?.deviceName !== desired.client.deviceName) fields.push("deviceName");
    if (desired.client?.browserName !== undefined && observed.client?.browserName !== desired.client.browserName) fields.push("browserName");
    if (desired.proxy && !sameValue(withoutEmpty(observed.proxy), withoutEmpty(desired.proxy))) fields.push("proxy");
    for (const kind of IGNORED) {
      const wanted = desired.ignore?.[kind];
      // An unset ignore flag is WAHA's default: nothing ignored.
      if (wanted !== undefined && (observed.ignore?.[kind] ?? false) !== wanted) fields.push(`ignore.${kind}`);
    }
    const online = desired.noweb?.markOnline;
    // NowebConfig.markOnline defaults to true (sessions.dto.ts).
    if (online !== undefined && (observed.noweb?.markOnline ?? true) !== online) fields.push("alwaysOnline");
    return fields;
  },
};

/** WAHA takes the proxy as "host:port" (ProxyConfig.server), credentials beside it. */
function wahaProxy(proxy: NonNullable<SessionSettings["proxy"]>): NonNullable<WahaSessionSettings["proxy"]> {
  const { host, port } = proxyParts(proxy.url);
  return {
    server: `${host}:${port}`,
    ...(proxy.username !== undefined ? { username: proxy.username } : {}),
    ...(proxy.password !== undefined ? { password: proxy.password } : {}),
  };
}

function withoutEmpty(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined && item !== null && item !== ""));
}

/**
 * The session config with spec.session's fields as wanted and everything else kept: client,
 * ignore and noweb are merged field by field, the proxy replaced.
 */
export function withSessionSettings<C extends Readonly<Record<string, unknown>>>(config: C, desired: WahaSessionSettings | undefined): C {
  if (!desired) return config;
  const merge = (key: "client" | "ignore" | "noweb") =>
    desired[key] ? { [key]: { ...((config[key] as object | null | undefined) ?? {}), ...desired[key] } } : {};
  return { ...config, ...merge("client"), ...merge("ignore"), ...merge("noweb"), ...(desired.proxy ? { proxy: desired.proxy } : {}) };
}
