/**
 * The routing hint a provider's webhook URL may carry (`?instance=ns/name`), made
 * verifiable: the URL also carries an HMAC of the hint under the provider's events key, so
 * the receiver can tell a hint the operator wrote from one somebody put into a replayed
 * delivery (the provider signs the body only, never the URL).
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const HINT_PARAM = "instance";
export const HINT_SIGNATURE_PARAM = "hint-sig";

function hintSignature(hmacKey: string, instanceKey: string): string {
  return createHmac("sha256", hmacKey).update(`wa-operator routing hint ${instanceKey}`).digest("hex");
}

/** The query string (without "?") naming the instance `namespace/name`, signed with the provider's events key. */
export function signedHintQuery(hmacKey: string, instanceKey: string): string {
  return `${HINT_PARAM}=${encodeURIComponent(instanceKey)}&${HINT_SIGNATURE_PARAM}=${hintSignature(hmacKey, instanceKey)}`;
}

/** The hint, when the query carries one with a valid signature; undefined otherwise (an unsigned hint is ignored). */
export function verifiedHint(hmacKey: string, query: URLSearchParams): string | undefined {
  const hint = query.get(HINT_PARAM);
  const given = query.get(HINT_SIGNATURE_PARAM);
  if (!hint || !given) return undefined;
  const expected = Buffer.from(hintSignature(hmacKey, hint));
  const actual = Buffer.from(given.toLowerCase());
  return actual.length === expected.length && timingSafeEqual(actual, expected) ? hint : undefined;
}
