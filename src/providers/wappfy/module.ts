/** Wappfy as a provider type (see module.ts). */
import { adoptedSession, type ProviderModule } from "../module.ts";
import { createWappfyClient, wappfyCapabilities } from "./client.ts";

/**
 * Wappfy's public docs say deliveries carry an HMAC-SHA256 of the body made with the
 * webhook's secret, but not which header holds it: the names seen in its examples and
 * the common conventions are all accepted (README, "Provider events").
 */
export const WAPPFY_SIGNATURE_HEADERS = ["x-wappfy-signature", "x-webhook-signature", "x-signature", "x-hub-signature-256"] as const;

export const wappfyModule: ProviderModule = {
  // Instances we create carry our uid in their name (owner-label.ts); Wappfy cannot rename, so an adopted one is proven by its claim.
  ownership: { proof: "recorded", adoptable: true, sessionNamed: adoptedSession },
  type: "wappfy",
  title: "Wappfy's managed gateway",
  adoptId: "Wappfy instance id",
  specFields: ["wappfy"],
  capabilities: wappfyCapabilities,
  createClient: createWappfyClient,
  instanceOptions: (spec) => Promise.resolve(spec.wappfy ? { wappfy: spec.wappfy } : {}),
  lifecycleEvents: {
    authentication: { kind: "hmac", signatureHeaders: WAPPFY_SIGNATURE_HEADERS, algorithm: "sha256" },
    // The receiver URL also names the instance (?instance=ns/name): an event may come before status records the id.
    instanceOf(event) {
      const id = event["instance_id"];
      return typeof id === "string" ? { providerInstanceId: id } : {};
    },
  },
};
