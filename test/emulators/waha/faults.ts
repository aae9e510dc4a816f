/**
 * The WAHA emulator behind a FaultInjector: injected errors take WAHA's own error body
 * (NestJS HttpException, `{statusCode, message, error}`: waha.md 1.1), and each request is
 * noted with the session it concerns and that session's status when it arrived, so a
 * restart of a FAILED session (recovery) can be told from a requested one, and a create
 * names the session it made.
 */
import { STATUS_CODES } from "node:http";
import { FaultInjector, type FaultInjectorOptions } from "../shared/fault-injector.ts";
import type { WahaEmulator } from "./emulator.ts";

/** The session a WAHA API path names: /api/sessions/{session}[/...] or /api/{session}/auth/... (waha.md 1.2). */
export function sessionOfPath(path: string): string | undefined {
  const match = /^\/api\/sessions\/([^/]+)/.exec(path) ?? /^\/api\/([^/]+)\/auth\//.exec(path);
  if (!match || match[1] === "sessions" || match[1] === "server") return undefined;
  try {
    return decodeURIComponent(match[1] as string);
  } catch {
    return undefined;
  }
}

export function faultyWaha(waha: WahaEmulator, options: Omit<FaultInjectorOptions, "target" | "errorBody" | "note">): FaultInjector {
  return new FaultInjector({
    ...options,
    target: waha.url,
    errorBody: (status, message) => ({ statusCode: status, message, error: STATUS_CODES[status] ?? "Error" }),
    note: (method, path, body): Readonly<Record<string, string>> | undefined => {
      if (method === "POST" && path === "/api/sessions") {
        try {
          const name = (JSON.parse(body.toString("utf8")) as { name?: unknown }).name;
          return typeof name === "string" ? { session: name } : undefined;
        } catch {
          return undefined;
        }
      }
      const session = sessionOfPath(path);
      if (!session) return undefined;
      return { session, status: waha.statusOf(session) ?? "absent" };
    },
  });
}
