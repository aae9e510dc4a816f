/** Whapi's device service as a provider type (see module.ts). */
import type { ProviderModule } from "../module.ts";
import { createWhapiClient, whapiCapabilities } from "./client.ts";

export const whapiModule: ProviderModule = {
  type: "whapi",
  title: "a self-hosted Whapi device service",
  capabilities: whapiCapabilities,
  createClient: createWhapiClient,
};
