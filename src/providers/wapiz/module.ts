/** WAPIZ's devices API as a provider type (see module.ts). */
import { adoptedSession, type ProviderModule } from "../module.ts";
import { createWapizClient, wapizCapabilities } from "./client.ts";

export const wapizModule: ProviderModule = {
  // Devices we create carry our uid in their label (owner-label.ts); WAPIZ cannot relabel, so an adopted one is proven by its claim.
  ownership: { proof: "recorded", adoptable: true, sessionNamed: adoptedSession },
  type: "wapiz",
  title: "WAPIZ's managed devices",
  adoptId: "WAPIZ device id",
  capabilities: wapizCapabilities,
  createClient: createWapizClient,
};
