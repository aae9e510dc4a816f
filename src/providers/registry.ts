/**
 * Every provider type's factory. A Record over ProviderType, so adding a type to the
 * CRD without an implementation fails to compile. No registration by import side effect.
 */
import { cloudApiInstanceOptions, createCloudApiClient } from "./cloud-api/client.ts";
import { createWahaClient } from "./waha/client.ts";
import { createWapizClient } from "./wapiz/client.ts";
import { createWappfyClient } from "./wappfy/client.ts";
import { createWhapiClient } from "./whapi/client.ts";
import type { InstanceOptions, ProviderFactory, ProviderType } from "./types.ts";

export const PROVIDER_FACTORIES: Readonly<Record<ProviderType, ProviderFactory>> = {
  waha: createWahaClient,
  cloud_api: createCloudApiClient,
  wappfy: createWappfyClient,
  whapi: createWhapiClient,
  wapiz: createWapizClient,
};

/** Base URLs used when spec.url is left out (only cloud_api has a public default). */
export const DEFAULT_PROVIDER_URLS: Readonly<Partial<Record<ProviderType, string>>> = {
  cloud_api: "https://graph.facebook.com",
};

/** Provider-specific InstanceRef fields (types.ts InstanceOptions), for the types that have any. */
export const PROVIDER_INSTANCE_OPTIONS: Readonly<Partial<Record<ProviderType, InstanceOptions>>> = {
  cloud_api: cloudApiInstanceOptions,
};
