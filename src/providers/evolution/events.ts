/**
 * How Evolution's deliveries to the operator's own receiver are authenticated. Evolution
 * signs nothing (webhook.controller.ts posts the body as is), but it sends the headers
 * stored with the webhook (`webhook.headers`). The operator stores one header there: a
 * token derived from the provider's events HMAC key, never the key itself, so whoever
 * reads the webhook back from Evolution (`GET /webhook/find`) learns a value that only
 * lets them make the operator look at an instance sooner.
 */
import { createHmac } from "node:crypto";

/** The header Evolution sends with every delivery of a webhook the operator wired. */
export const EVOLUTION_EVENTS_TOKEN_HEADER = "x-wa-operator-token";

/** The token for a provider's events key (hex HMAC-SHA256 of a fixed label). */
export function evolutionEventsToken(eventsKey: string): string {
  return createHmac("sha256", eventsKey).update("wa-operator evolution provider events").digest("hex");
}

/**
 * The events the operator's receiver subscribes to: the socket's state, each new QR code,
 * and a logout (Evolution's own names, event.controller.ts).
 */
export const EVOLUTION_LIFECYCLE_EVENTS = ["CONNECTION_UPDATE", "QRCODE_UPDATED", "LOGOUT_INSTANCE"] as const;
