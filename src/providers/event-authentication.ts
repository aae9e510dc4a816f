/**
 * Checks a provider's delivery to the operator's receiver the way its module says it
 * authenticates (module.ts, EventAuthentication): an HMAC of the body, or a token header.
 * Comparisons take constant time.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { EventAuthentication } from "./module.ts";

/** What the delivery presents: its signature or token, or undefined when it carries none. */
export function presentedCredential(authentication: EventAuthentication, headers: IncomingHttpHeaders): string | undefined {
  if (authentication.kind === "token") return headerValue(headers, authentication.header);
  return authentication.signatureHeaders.map((name) => headerValue(headers, name)?.replace(/^sha(256|512)=/, "")).find((value) => value !== undefined);
}

/** Whether `presented` (from presentedCredential) proves the delivery, given the provider's events key. */
export function credentialMatches(authentication: EventAuthentication, presented: string, body: Buffer, eventsKey: string): boolean {
  const expected =
    authentication.kind === "token" ? authentication.tokenFor(eventsKey) : createHmac(authentication.algorithm, eventsKey).update(body).digest("hex");
  return sameText(authentication.kind === "hmac" ? presented.toLowerCase() : presented, expected);
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  return text?.trim() || undefined;
}

function sameText(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
