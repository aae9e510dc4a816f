/** Whapi's device service as a provider type (see module.ts). */
import type { ProviderModule } from "../module.ts";
import { createWhapiClient, whapiCapabilities } from "./client.ts";

export const whapiModule: ProviderModule = {
  type: "whapi",
  capabilities: whapiCapabilities,
  createClient: createWhapiClient,
};
