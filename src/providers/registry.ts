/**
 * Every provider type's module: the one line a provider adds outside its folder. The
 * provider types (the CRD's enum, ProviderType) are this object's keys, so a type cannot
 * exist without its module. No registration by import side effect.
 */
import { cloudApiModule } from "./cloud-api/module.ts";
import { evolutionModule } from "./evolution/module.ts";
import type { ProviderModule } from "./module.ts";
import { wahaModule } from "./waha/module.ts";
import { wapizModule } from "./wapiz/module.ts";
import { wappfyModule } from "./wappfy/module.ts";
import { whapiModule } from "./whapi/module.ts";

export const PROVIDER_MODULES = {
  waha: wahaModule,
  cloud_api: cloudApiModule,
  wappfy: wappfyModule,
  whapi: whapiModule,
  wapiz: wapizModule,
  evolution: evolutionModule,
} as const satisfies Readonly<Record<string, ProviderModule>>;

/** The provider types, in the registry's order (the CRD's spec.type enum). */
export type ProviderType = keyof typeof PROVIDER_MODULES;
export const PROVIDER_TYPES = Object.keys(PROVIDER_MODULES) as [ProviderType, ...ProviderType[]];
