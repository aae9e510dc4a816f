/** WAPIZ's devices API as a provider type (see module.ts). */
import type { ProviderModule } from "../module.ts";
import { createWapizClient, wapizCapabilities } from "./client.ts";

export const wapizModule: ProviderModule = {
  type: "wapiz",
  capabilities: wapizCapabilities,
  createClient: createWapizClient,
};
