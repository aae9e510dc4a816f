/** Evolution API v2 as a provider type (see module.ts). */
import { adoptedSession, type ProviderModule } from "../module.ts";
import { createEvolutionClient, evolutionCapabilities } from "./client.ts";
import { evolutionSession } from "./session.ts";
import { EVOLUTION_EVENTS_TOKEN_HEADER, evolutionEventsToken } from "./events.ts";

export const evolutionModule: ProviderModule = {
  type: "evolution",
  title: "self-hosted Evolution API v2",
  adoptId: "Evolution instance name",
  // Instances we create carry our uid in their name (owner-label.ts); Evolution cannot rename, so an adopted one is proven by its claim.
  ownership: { proof: "recorded", adoptable: true, sessionNamed: adoptedSession },
  capabilities: evolutionCapabilities,
  createClient: createEvolutionClient,
  session: evolutionSession,
  lifecycleEvents: {
    // Evolution signs nothing; it sends the headers stored with the webhook, where the client put our token (events.ts).
    authentication: { kind: "token", header: EVOLUTION_EVENTS_TOKEN_HEADER, tokenFor: evolutionEventsToken },
    // Every delivery names its instance (webhook.controller.ts: `instance: instanceName`).
    instanceOf(event) {
      const name = event["instance"];
      return typeof name === "string" ? { providerInstanceId: name } : {};
    },
  },
};
