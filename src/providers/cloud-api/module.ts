/** Meta's Cloud API as a provider type (see module.ts). */
import type { ProviderModule } from "../module.ts";
import { cloudApiSession } from "./session.ts";
import { cloudApiCapabilities, cloudApiInstanceOptions, createCloudApiClient } from "./client.ts";

export const cloudApiModule: ProviderModule = {
  type: "cloud_api",
  title: "Meta's WhatsApp Business Cloud API",
  specFields: ["cloudApi"],
  capabilities: cloudApiCapabilities,
  defaultUrl: "https://graph.facebook.com",
  createClient: createCloudApiClient,
  session: cloudApiSession,
  instanceOptions: cloudApiInstanceOptions,
  referencedSecrets: (spec) => (spec.cloudApi ? [spec.cloudApi.pinSecretRef.name] : []),
  // Meta keeps nothing of ours on a phone number: the one claim on the number is the proof,
  // and naming a number reached with the provider's token takes it over.
  ownership: {
    proof: "claimed",
    adoptable: false,
    sessionNamed: (spec) => (spec.cloudApi ? { id: spec.cloudApi.phoneNumberId, adopts: true } : undefined),
  },
};
