/**
 * Request-body validation the way WAHA's NestJS ValidationPipe does it (whitelist on,
 * strict mode off): unknown properties are silently dropped, `null`/absent optional
 * fields skip validation, and every failure becomes one class-validator message,
 * prefixed with its parent path ("config.webhooks.0.url must be a URL address").
 * The caller turns a non-empty list into `400 {message: [...], error: "Bad Request"}`.
 */

/** Event names a webhook may subscribe to (enum of the 2026.7.1 spec) plus "*" for all. */
export const WAHA_EVENTS = [
  "session.status",
  "message",
  "message.reaction",
  "message.any",
  "message.ack",
  "message.ack.group",
  "message.waiting",
  "message.revoked",
  "message.edited",
  "state.change",
  "group.join",
  "group.leave",
  "group.v2.join",
  "group.v2.leave",
  "group.v2.update",
  "group.v2.participants",
  "presence.update",
  "poll.vote",
  "poll.vote.failed",
  "chat.archive",
  "call.received",
  "call.accepted",
  "call.rejected",
  "label.upsert",
  "label.deleted",
  "label.chat.added",
  "label.chat.deleted",
  "event.response",
  "event.response.failed",
  "engine.event",
] as const;

const RETRY_POLICIES = ["linear", "exponential", "constant"] as const;

/** WAHA's limit: 64 (MongoDB db name) minus the "waha_noweb" prefix. */
export const SESSION_NAME_MAX_LENGTH = 54;

export interface WahaWebhookConfig {
  url: string;
  events: string[];
  hmac?: { key?: string | null } | null;
  retries?: { delaySeconds?: number | null; attempts?: number | null; policy?: string | null } | null;
  customHeaders?: { name: string; value: string }[] | null;
}

export interface WahaSessionConfig {
  metadata?: Record<string, string> | null;
  webhooks?: WahaWebhookConfig[] | null;
  proxy?: { server: string; username?: string | null; password?: string | null } | null;
  debug?: boolean | null;
  /** Engine/client tuning the emulator stores and echoes but does not interpret. */
  ignore?: Record<string, unknown> | null;
  client?: Record<string, unknown> | null;
  noweb?: Record<string, unknown> | null;
  gows?: Record<string, unknown> | null;
  webjs?: Record<string, unknown> | null;
}

export interface CreateRequest {
  name?: string | null;
  start?: boolean | null;
  config?: WahaSessionConfig | null;
  apps?: unknown[] | null;
}

export interface UpdateRequest {
  config?: WahaSessionConfig | null;
  apps?: unknown[] | null;
}

export interface RequestCodeRequest {
  phoneNumber: string;
  method?: string | null;
}

export type Validated<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly messages: string[] };

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** class-validator's IsOptional: null and undefined both skip the other checks. */
function absent(v: unknown): v is null | undefined {
  return v === undefined || v === null;
}

function result<T>(value: T, messages: string[]): Validated<T> {
  return messages.length > 0 ? { ok: false, messages } : { ok: true, value };
}

/** validator.js isURL({require_protocol: true, require_tld: false}), close enough: http(s)/ftp with a host. */
function isUrl(v: unknown): boolean {
  if (typeof v !== "string") return false;
  try {
    const u = new URL(v);
    return ["http:", "https:", "ftp:"].includes(u.protocol) && u.hostname !== "" && /^[a-z]+:\/\//i.test(v);
  } catch {
    return false;
  }
}

function nestedObject(prefix: string, prop: string, v: unknown, messages: string[]): v is Obj {
  if (isObject(v)) return true;
  messages.push(`${prefix}nested property ${prop} must be either object or array`);
  return false;
}

function optionalArray(prefix: string, prop: string, v: unknown, messages: string[]): unknown[] | null | undefined {
  if (absent(v)) return v;
  if (Array.isArray(v)) return v;
  messages.push(`${prefix}${prop} must be an array`);
  return undefined;
}

export function parseCreateRequest(body: unknown): Validated<CreateRequest> {
  const messages: string[] = [];
  if (!isObject(body)) return result({}, messages);
  const out: CreateRequest = {};
  for (const [key, v] of Object.entries(body)) {
    switch (key) {
      case "name":
        if (absent(v)) out.name = v;
        else if (typeof v !== "string") messages.push("name must be a string");
        else if (v.length > SESSION_NAME_MAX_LENGTH)
          messages.push(`name must be shorter than or equal to ${SESSION_NAME_MAX_LENGTH} characters`);
        else out.name = v;
        break;
      case "start":
        if (absent(v) || typeof v === "boolean") out.start = v;
        else messages.push("start must be a boolean value");
        break;
      case "config": {
        const config = parseConfig(v, messages);
        if (config !== undefined) out.config = config;
        break;
      }
      case "apps": {
        const apps = optionalArray("", "apps", v, messages);
        if (apps !== undefined) out.apps = apps;
        break;
      }
      // anything else: dropped by the whitelist
    }
  }
  return result(out, messages);
}

export function parseUpdateRequest(body: unknown): Validated<UpdateRequest> {
  const messages: string[] = [];
  if (!isObject(body)) return result({}, messages);
  const out: UpdateRequest = {};
  for (const [key, v] of Object.entries(body)) {
    if (key === "config") {
      const config = parseConfig(v, messages);
      if (config !== undefined) out.config = config;
    } else if (key === "apps") {
      const apps = optionalArray("", "apps", v, messages);
      if (apps !== undefined) out.apps = apps;
    }
  }
  return result(out, messages);
}

export function parseRequestCodeRequest(body: unknown): Validated<RequestCodeRequest> {
  const messages: string[] = [];
  const b = isObject(body) ? body : {};
  if (typeof b["phoneNumber"] !== "string") messages.push("phoneNumber must be a string");
  const method = b["method"];
  if (!absent(method) && typeof method !== "string") messages.push("method must be a string");
  const out: RequestCodeRequest = { phoneNumber: String(b["phoneNumber"] ?? "") };
  if (typeof method === "string") out.method = method;
  return result(out, messages);
}

/** Returns undefined when the value must not be stored (invalid), null/the object otherwise. */
function parseConfig(v: unknown, messages: string[]): WahaSessionConfig | null | undefined {
  if (absent(v)) return v;
  if (!nestedObject("", "config", v, messages)) return undefined;
  const p = "config.";
  const out: WahaSessionConfig = {};
  for (const [key, value] of Object.entries(v)) {
    switch (key) {
      case "metadata":
        if (absent(value)) out.metadata = value;
        else if (isObject(value) && Object.values(value).every((x) => typeof x === "string"))
          out.metadata = { ...(value as Record<string, string>) };
        else messages.push(`${p}metadata accepts string key-value pairs only`);
        break;
      case "webhooks": {
        const list = optionalArray(p, "webhooks", value, messages);
        if (list === null) out.webhooks = null;
        else if (list) {
          const hooks: WahaWebhookConfig[] = [];
          list.forEach((item, i) => {
            const hook = parseWebhook(item, `${p}webhooks.${i}.`, String(i), messages);
            if (hook) hooks.push(hook);
          });
          out.webhooks = hooks;
        }
        break;
      }
      case "proxy":
        if (absent(value)) out.proxy = value;
        else if (nestedObject(p, "proxy", value, messages)) {
          const proxy: NonNullable<WahaSessionConfig["proxy"]> = { server: "" };
          if (typeof value["server"] === "string") proxy.server = value["server"];
          else messages.push(`${p}proxy.server must be a string`);
          for (const k of ["username", "password"] as const) {
            const x = value[k];
            if (absent(x)) {
              if (k in value) proxy[k] = x;
            } else if (typeof x === "string") proxy[k] = x;
            else messages.push(`${p}proxy.${k} must be a string`);
          }
          out.proxy = proxy;
        }
        break;
      case "debug":
        if (absent(value) || typeof value === "boolean") out.debug = value;
        else messages.push(`${p}debug must be a boolean value`);
        break;
      case "ignore":
      case "client":
      case "noweb":
      case "gows":
      case "webjs":
        // Stored and echoed as given: the emulator has no engine to tune.
        if (absent(value)) out[key] = value;
        else if (nestedObject(p, key, value, messages)) out[key] = structuredClone(value);
        break;
    }
  }
  return out;
}

function parseWebhook(v: unknown, p: string, index: string, messages: string[]): WahaWebhookConfig | undefined {
  if (!isObject(v)) {
    messages.push(`config.webhooks.nested property ${index} must be either object or array`);
    return undefined;
  }
  const out: WahaWebhookConfig = { url: "", events: [] };
  if (isUrl(v["url"])) out.url = v["url"] as string;
  else messages.push(`${p}url must be a URL address`);
  const events = v["events"];
  if (!Array.isArray(events)) {
    messages.push(`${p}events must be an array`);
  } else if (!events.every((e) => e === "*" || (WAHA_EVENTS as readonly unknown[]).includes(e))) {
    messages.push(`${p}each value in events must be one of the following values: ${WAHA_EVENTS.join(", ")}`);
  } else {
    out.events = [...(events as string[])];
  }
  for (const [key, value] of Object.entries(v)) {
    switch (key) {
      case "hmac":
        if (absent(value)) out.hmac = value;
        else if (nestedObject(p, "hmac", value, messages)) {
          const key = value["key"];
          if (absent(key)) out.hmac = "key" in value ? { key } : {};
          else if (typeof key === "string") out.hmac = { key };
          else messages.push(`${p}hmac.key must be a string`);
        }
        break;
      case "retries":
        if (absent(value)) out.retries = value;
        else if (nestedObject(p, "retries", value, messages)) {
          const retries: NonNullable<WahaWebhookConfig["retries"]> = {};
          for (const [rk, rv] of Object.entries(value)) {
            if (rk === "delaySeconds" || rk === "attempts") {
              if (absent(rv) || (typeof rv === "number" && Number.isFinite(rv))) retries[rk] = rv;
              else messages.push(`${p}retries.${rk} must be a number conforming to the specified constraints`);
            } else if (rk === "policy") {
              if (absent(rv) || (RETRY_POLICIES as readonly unknown[]).includes(rv)) retries.policy = rv as string | null;
              else messages.push(`${p}retries.policy must be one of the following values: ${RETRY_POLICIES.join(", ")}`);
            }
          }
          out.retries = retries;
        }
        break;
      case "customHeaders": {
        const list = optionalArray(p, "customHeaders", value, messages);
        if (list === null) out.customHeaders = null;
        else if (list) {
          const headers: { name: string; value: string }[] = [];
          list.forEach((h, i) => {
            if (!isObject(h)) {
              messages.push(`${p}customHeaders.nested property ${i} must be either object or array`);
              return;
            }
            const ok = typeof h["name"] === "string" && typeof h["value"] === "string";
            if (typeof h["name"] !== "string") messages.push(`${p}customHeaders.${i}.name must be a string`);
            if (typeof h["value"] !== "string") messages.push(`${p}customHeaders.${i}.value must be a string`);
            if (ok) headers.push({ name: h["name"] as string, value: h["value"] as string });
          });
          out.customHeaders = headers;
        }
        break;
      }
    }
  }
  return out;
}
