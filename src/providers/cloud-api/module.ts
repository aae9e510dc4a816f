/** Meta's Cloud API as a provider type (see module.ts). */
import type { ProviderModule } from "../module.ts";
import { cloudApiCapabilities, cloudApiInstanceOptions, createCloudApiClient } from "./client.ts";

export const cloudApiModule: ProviderModule = {
  type: "cloud_api",
  title: "Meta's WhatsApp Business Cloud API",
  specFields: ["cloudApi"],
  capabilities: cloudApiCapabilities,
  defaultUrl: "https://graph.facebook.com",
  createClient: createCloudApiClient,
  instanceOptions: cloudApiInstanceOptions,
  referencedSecrets: (spec) => (spec.cloudApi ? [spec.cloudApi.pinSecretRef.name] : []),
};
