/** Whapi's device service as a provider type (see module.ts). */
import type { ProviderModule } from "../module.ts";
import { createWhapiClient, whapiCapabilities } from "./client.ts";

export const whapiModule: ProviderModule = {
  // A device is reached with a key: the instance's own (bringing the key is the proof), or,
  // without one, the provider's, whose one device any instance could otherwise drive.
  ownership: {
    proof: "claimed",
    adoptable: false,
    sessionNamed: (spec, namespace) =>
      spec.credentialsSecretRef
        ? { id: `key ${namespace}/${spec.credentialsSecretRef.name}/${spec.credentialsSecretRef.key}`, adopts: false }
        : { id: "the provider's own device", adopts: true },
  },
  type: "whapi",
  title: "a self-hosted Whapi device service",
  capabilities: whapiCapabilities,
  createClient: createWhapiClient,
};
