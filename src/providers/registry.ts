/**
 * Every provider type's module: one line per type of src/api/provider-types.ts (the CRD's
 * enum). The compiler holds the two lists together both ways: a type without its module, or
 * a module under a key that is no type, does not build (registry.test checks each module's type is its key). No registration by import side effect.
 */
import { PROVIDER_TYPES, type ProviderType } from "../api/provider-types.ts";
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
} as const satisfies Readonly<Record<ProviderType, ProviderModule>>;

export { PROVIDER_TYPES, type ProviderType };
