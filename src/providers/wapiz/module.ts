/** WAPIZ's devices API as a provider type (see module.ts). */
import type { ProviderModule } from "../module.ts";
import { createWapizClient, wapizCapabilities } from "./client.ts";

export const wapizModule: ProviderModule = {
  type: "wapiz",
  title: "WAPIZ's managed devices",
  adoptId: "WAPIZ device id",
  capabilities: wapizCapabilities,
  createClient: createWapizClient,
};
