/**
 * Every provider type's module. A Record over ProviderType, so adding a type to the CRD
 * without a module fails to compile. No registration by import side effect.
 */
import { cloudApiModule } from "./cloud-api/module.ts";
import { evolutionModule } from "./evolution/module.ts";
import type { ProviderModule } from "./module.ts";
import type { ProviderType } from "./types.ts";
import { wahaModule } from "./waha/module.ts";
import { wapizModule } from "./wapiz/module.ts";
import { wappfyModule } from "./wappfy/module.ts";
import { whapiModule } from "./whapi/module.ts";

export const PROVIDER_MODULES: Readonly<Record<ProviderType, ProviderModule>> = {
  waha: wahaModule,
  cloud_api: cloudApiModule,
  wappfy: wappfyModule,
  whapi: whapiModule,
  wapiz: wapizModule,
  evolution: evolutionModule,
};
