/** WAHA as a provider type (see module.ts). */
import type { ProviderModule } from "../module.ts";
import { createWahaClient, OWNER_KEY, wahaCapabilities } from "./client.ts";

export const wahaModule: ProviderModule = {
  type: "waha",
  title: "self-hosted WAHA",
  adoptId: "WAHA session name",
  capabilities: wahaCapabilities,
  createClient: createWahaClient,
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
  },
};
