/** WhatsAppProvider and ClusterWhatsAppProvider: where and how to reach one gateway. */
import { z } from "zod";
import {
  conditions,
  duration,
  generation,
  httpUrl,
  labelSelectorOf,
  namespacedSecretKeySelector,
  observedGeneration,
  secretKeySelector,
  UNOBSERVED_STATUS,
} from "./common.ts";
import { PROVIDER_TYPES, registryFact } from "./provider-types.ts";

export const providerType = z.enum(PROVIDER_TYPES).meta({
  description:
    `Which gateway this is: ${registryFact("typesWithTitles")}. Cannot be changed after creation.`,
  "x-kubernetes-validations": [{ rule: "self == oldSelf", message: "type is immutable" }],
});

export const rateLimit = z
  .object({
    requestsPerSecond: z
      .number()
      .min(0.1)
      .max(10000)
      .default(10)
      .meta({
        description: "Sustained requests per second towards this provider, shared by all instances using it; at least 0.1.",
        // The API server compares a whole number with minimum truncated to an integer (0), so 0 would pass it.
        "x-kubernetes-validations": [{ rule: "self >= 0.1", message: "must be at least 0.1 (one request in 10 s)" }],
      }),
    burst: z.int().min(1).max(10000).default(20).describe("Requests that may be sent at once before the sustained rate applies."),
  })
  .describe("Client-side rate limit towards this provider.");

/** Faster polling than 5s spends a provider's budget on one idle instance; slower than a day shows nothing. */
export const POLL_INTERVAL_BOUNDS = { min: "5s", max: "24h" } as const;

const labelSelector = labelSelectorOf({ one: "the namespace", many: "namespaces" });

export type LabelSelector = z.output<typeof labelSelector>;

/** Which namespaces may use a ClusterWhatsAppProvider; absent means none. */
export const allowedNamespaces = z
  .object({
    from: z.enum(["All", "Selector"]).describe("All: every namespace. Selector: the namespaces whose labels match selector."),
    selector: labelSelector.optional(),
  })
  .meta({
    description:
      "Which namespaces' WhatsAppInstances may use this provider. Absent means none: an instance naming it is Stalled with reason ProviderNotAllowed. {from: All} lets every namespace in; {from: Selector, selector: {...}} the namespaces whose labels match.",
    "x-kubernetes-validations": [
      { rule: "self.from != 'Selector' || has(self.selector)", message: "from: Selector needs a selector", fieldPath: ".selector" },
      { rule: "self.from != 'All' || !has(self.selector)", message: "from: All takes no selector", fieldPath: ".selector" },
    ],
  });

export const ADOPTION_POLICIES = ["Allowed", "Disabled"] as const;
export type AdoptionPolicy = (typeof ADOPTION_POLICIES)[number];

/** The fields only the cluster kind has: who may use it, and whether existing sessions may be taken over. */
const clusterOnly = {
  allowedNamespaces: allowedNamespaces.optional(),
  adoption: z
    .enum(ADOPTION_POLICIES)
    .default("Disabled")
    .describe(
      "Whether a WhatsAppInstance may take over (spec.adopt) a session that already exists at this shared gateway. Disabled (the default): such an instance is Stalled with reason AdoptionDisabled, so no namespace can reach a session it did not create.",
    ),
} as const;

function providerSpec<Extra extends z.ZodRawShape>(credentials: z.ZodType, extra: Extra) {
  return z
    .object({
      ...extra,
      type: providerType,
      url: httpUrl(
        "Base URL of the gateway's HTTP API, e.g. http://waha.waha.svc:3000. Optional for cloud_api, which defaults to https://graph.facebook.com.",
      ).optional(),
      credentialsSecretRef: credentials.optional(),
      maxInstances: z
        .int()
        .min(0)
        .max(100000)
        .optional()
        .describe("Most WhatsAppInstances that may use this provider; beyond it an instance is Stalled with reason QuotaExceeded."),
      capacity: z
        .object({
          maxSessions: z
            .int()
            .min(1)
            .max(100000)
            .meta({
              description:
                "How many sessions this operator keeps on this gateway, counting instances that name it in providerRef and those placed here by a providerSelector. Where maxInstances is also set, the smaller bound holds.",
              "x-kubernetes-validations": [{ rule: "self >= 1 && self <= 100000", message: "must be between 1 and 100000" }],
            }),
        })
        .describe("How many sessions this gateway holds. Only providers with a capacity take part in providerSelector placement.")
        .optional(),
      maxConcurrentStarts: z
        .int()
        .min(1)
        .max(1000)
        .default(10)
        .meta({
          description:
            "Most sessions of this provider starting at once: a session holds a start slot from the operator's create, start or restart call until it shows a QR, works, fails or stops (or the stuck timeout passes). The others wait in phase Pending, Reconciling WaitingForStartSlot, in creation order. Defaults to 10.",
          "x-kubernetes-validations": [{ rule: "self >= 1 && self <= 1000", message: "must be between 1 and 1000" }],
        }),
      rateLimit: rateLimit.optional(),
      events: z
        .object({
          url: httpUrl(
            "Base URL under which this provider reaches the operator's event receiver, e.g. http://wa-operator.wa-operator-system.svc:8080. The operator signs up for the provider's lifecycle webhooks there (WAHA session.status, wappfy instance.*), so a scan shows in status within a second instead of at the next poll.",
          ),
        })
        .describe("Provider lifecycle webhooks to the operator; polling stays as the fallback. The HMAC key is kept in the Secret <name>-events.")
        .optional(),
      pollInterval: duration(
        "How often instance status is refreshed when no provider event arrives (faster while pairing). Defaults to 30s; at least 5s, at most 24h.",
        POLL_INTERVAL_BOUNDS,
      ).optional(),
      whapi: z
        .object({
          apiKeyInQuery: z
            .boolean()
            .default(false)
            .describe(
              "Also send apiKey as a query parameter (?apiKey=...) besides the form body. whapi's page documents only the body of a GET; turn this on where a proxy or server drops GET bodies. The key then appears in URLs, which proxies may log.",
            ),
        })
        .describe("Settings that only a whapi provider has.")
        .optional(),
    })
    .meta({
      description: "Where and how to reach one WhatsApp gateway.",
      "x-kubernetes-validations": [
        { rule: "self.type == 'cloud_api' || has(self.url)", message: "url is required for this provider type", fieldPath: ".url" },
        { rule: "self.type == 'whapi' || !has(self.whapi)", message: "whapi settings are only for type whapi", fieldPath: ".whapi" },
        {
          rule: "self.type == 'whapi' || has(self.credentialsSecretRef)",
          message: "credentialsSecretRef is required for this provider type (only whapi takes per-instance keys)",
          fieldPath: ".credentialsSecretRef",
        },
      ],
    });
}

/** What the credentials Secret may hold, for both provider kinds. */
const CREDENTIALS =
  "the API key or token under key. For wapiz it may hold the account's email and password under the keys email and password instead (or as well): the operator then logs in at WAPIZ's POST /api/auth/login for a token and logs in again when WAPIZ refuses an expired one.";

export const providerSpecSchema = providerSpec(
  secretKeySelector(`Secret holding ${CREDENTIALS} Optional for whapi, whose keys are per instance.`, "api-key"),
  {},
);
export const clusterProviderSpecSchema = providerSpec(
  namespacedSecretKeySelector(`Secret, with its namespace, holding ${CREDENTIALS} Optional for whapi.`, "api-key"),
  clusterOnly,
);

export const providerStatusSchema = z
  .object({
    observedGeneration,
    conditions: conditions.optional(),
    version: z.string().max(256).optional().describe("Engine or WhatsApp Web version the provider reports, where it reports one."),
    instances: z.int().min(0).max(1_000_000).optional().describe("How many WhatsAppInstances use this provider."),
    sessions: z
      .object({
        placed: z.int().min(0).max(1_000_000).describe("Instances placed on this provider (named in providerRef or placed by a selector)."),
        linked: z.int().min(0).max(1_000_000).describe("Of those, the ones Connected."),
        starting: z.int().min(0).max(1_000_000).describe("Of those, the ones holding a start slot: started by the operator and not yet seen showing a QR, working, failed or stopped."),
      })
      .describe("The sessions this operator keeps on the provider.")
      .optional(),
  })
  .describe("Observed state of the provider.")
  .default(UNOBSERVED_STATUS);

export type ProviderSpec = z.output<typeof providerSpecSchema>;
export type ClusterProviderSpec = z.output<typeof clusterProviderSpecSchema>;
export type ProviderStatus = z.output<typeof providerStatusSchema>;
