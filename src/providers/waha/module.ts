/** WAHA as a provider type (see module.ts). */
import { adoptedSession, type ProviderModule } from "../module.ts";
import { createWahaClient, OWNER_KEY, wahaCapabilities } from "./client.ts";
import { wahaSession } from "./session.ts";

export const wahaModule: ProviderModule = {
  // Sessions we create carry our uid in their metadata; an adopted one gets it with claim().
  ownership: { proof: "recorded", adoptable: true, sessionNamed: adoptedSession },
  type: "waha",
  title: "self-hosted WAHA",
  adoptId: "WAHA session name",
  capabilities: wahaCapabilities,
  createClient: createWahaClient,
  session: wahaSession,
  lifecycleEvents: {
    // WAHA signs with X-Webhook-Hmac, HMAC-SHA512 of the body (waha.md, webhooks).
    authentication: { kind: "hmac", signatureHeaders: ["x-webhook-hmac"], algorithm: "sha512" },
    // Every event carries the session's metadata, where we recorded the instance, and the session name.
    instanceOf(event) {
      const metadata = event["metadata"] as Record<string, unknown> | undefined;
      const owner = metadata?.[OWNER_KEY];
      const session = event["session"];
      return {
        ...(typeof owner === "string" ? { instanceKey: owner } : {}),
        ...(typeof session === "string" ? { providerInstanceId: session } : {}),
      };
    },
    // The envelope's "id" (evt_<ULID>) and "timestamp" (Unix ms), inside the signed body (waha.md, webhooks).
    eventIdOf: (event) => (typeof event["id"] === "string" ? event["id"] : undefined),
    sentAtOf: (event) => (typeof event["timestamp"] === "number" ? event["timestamp"] : undefined),
  },
};
