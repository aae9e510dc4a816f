/** WhatsAppInstance: one WhatsApp number, linked through one provider. */
import { z } from "zod";
import { PHASES, registryFact } from "./provider-types.ts";
import {
  conditions,
  generation,
  httpUrl,
  labelSelectorOf,
  objectName,
  observedGeneration,
  phoneDigits,
  secretKey,
  secretKeySelector,
  UNOBSERVED_STATUS,
  timestamp,
} from "./common.ts";
import { sessionSpecSchema } from "./session.ts";

export const DESIRED_STATES = ["Connected", "Disconnected", "LoggedOut"] as const;
export type DesiredState = (typeof DESIRED_STATES)[number];

export const PROVIDER_KINDS = ["WhatsAppProvider", "ClusterWhatsAppProvider"] as const;

/** What spec.adopt.id names, per type that adopts (each module's adoptId). */
const ADOPT_IDS = registryFact("adoptIds");
/** The types that always take over what they are given, and need no adopt. */
const NO_ADOPT = registryFact("typesWithoutAdopt");
/** The types without an event filter. */
const NO_EVENT_FILTER = registryFact("typesWithoutEventFilter");

export const instanceSpecSchema = z
  .object({
    providerRef: z
      .object({
        kind: z
          .enum(PROVIDER_KINDS)
          .default("WhatsAppProvider")
          .describe("WhatsAppProvider (same namespace) or ClusterWhatsAppProvider."),
        name: objectName("Name of the provider."),
      })
      .meta({
        description: "The provider this number is linked through. Cannot be changed after creation. Exactly one of providerRef and providerSelector is set.",
        "x-kubernetes-validations": [
          { rule: "self == oldSelf", message: "providerRef is immutable; create a new instance to move a number" },
        ],
      })
      .optional(),
    providerSelector: labelSelectorOf({ one: "a provider", many: "providers (WhatsAppProvider in this namespace, ClusterWhatsAppProvider that let this namespace in)" })
      .describe(
        "Instead of providerRef: let the operator place this number on one matching, Ready provider that has a capacity (spec.capacity.maxSessions) and free room, the one with the most free slots. The choice is recorded in status.providerRef and never changes afterwards: a linked session cannot move without a new QR. Changing the selector affects only an instance not placed yet.",
      )
      .optional(),
    session: sessionSpecSchema.optional(),
    displayName: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe("The provider-side name or label, where the provider has one."),
    state: z
      .enum(DESIRED_STATES)
      .default("Connected")
      .describe(
        "Desired state: Connected (linked and running), Disconnected (stopped, link kept) or LoggedOut (link removed).",
      ),
    restartRequestedAt: timestamp(
      "A new value restarts the session once, keeping the link; the value carried out is status.lastRestartAt.",
    ).optional(),
    pairing: z
      .object({
        method: z.enum(["QR", "Code"]).default("QR").describe("QR (scan a code) or Code (type a pairing code on the phone)."),
        phoneNumber: phoneDigits("The number to link with a pairing code, digits only with country code.").optional(),
      })
      .meta({
        description: "How the phone is linked.",
        "x-kubernetes-validations": [
          { rule: "self.method != 'Code' || has(self.phoneNumber)", message: "pairing.phoneNumber is required when method is Code", fieldPath: ".phoneNumber" },
        ],
      })
      .optional(),
    credentialsSecretRef: secretKeySelector(
      "Per-instance key (whapi: one apiKey per device); overrides the provider's credentials.",
      "api-key",
    ).optional(),
    cloudApi: z
      .object({
        phoneNumberId: z.string().max(32).regex(/^[0-9]+$/).describe("The business phone number id in Meta's Graph API."),
        wabaId: z.string().max(32).regex(/^[0-9]+$/).optional().describe("The WhatsApp Business Account id, needed for webhooks."),
        pinSecretRef: secretKeySelector("Secret holding the 6-digit two-step verification PIN used to register.", "pin"),
      })
      .describe("cloud_api only: the business phone number to register.")
      .optional(),
    wappfy: z
      .object({
        type: z.enum(["waha", "cloud_api"]).default("waha").describe("The Wappfy instance type."),
      })
      .describe("wappfy only: options of the Wappfy instance.")
      .optional(),
    webhook: z
      .object({
        url: httpUrl("Where the provider posts this number's events."),
        events: z
          .array(z.string().min(1).max(128).describe("An event name in the provider's own words."))
          .max(64)
          .default([])
          .describe(
            `The provider's own event names, e.g. session.status and message for WAHA ("*" there too). Omitted or empty means every lifecycle and message event the provider has. Providers without an event filter (${NO_EVENT_FILTER}) accept only an empty list.`,
          ),
        secretRef: z
          .object({
            name: objectName("Name of a Secret in the same namespace."),
            key: secretKey('Key holding the HMAC key. Defaults to "hmac-key".').default("hmac-key"),
          })
          .describe("A Secret with your own HMAC key; when absent the operator creates <name>-webhook.")
          .optional(),
      })
      .describe("Where the provider sends this number's events.")
      .optional(),
    adopt: z
      .object({
        id: z
          .string()
          .min(1)
          .max(128)
          // No slash, ?, # or space: the id goes into provider URL paths.
          .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]*$/)
          .describe(`The provider's id of the existing session or instance (${ADOPT_IDS}): letters, digits and . _ : @ -, at most 128.`),
      })
      .meta({
        description:
          `Take over a session that already exists at the provider (linked or not) instead of creating one: no new QR is needed. One that another resource owns is refused (Stalled SessionOwnedElsewhere). ${NO_ADOPT} always take over the number or device they are given and need no adopt.`,
        "x-kubernetes-validations": [{ rule: "self == oldSelf", message: "adopt is immutable; create a new instance to take over another session" }],
      })
      .optional(),
    deletionPolicy: z
      .enum(["Delete", "Orphan"])
      .default("Delete")
      .describe("Delete removes the provider-side session with the resource; Orphan leaves it."),
  })
  .meta({
    description: "Desired state of one WhatsApp number.",
    "x-kubernetes-validations": [
      { rule: "has(oldSelf.adopt) || !has(self.adopt)", message: "adopt can be set only when the instance is created" },
      { rule: "has(self.providerRef) != has(self.providerSelector)", message: "set exactly one of providerRef and providerSelector", fieldPath: ".providerRef" },
      { rule: "has(self.providerRef) == has(oldSelf.providerRef)", message: "an instance cannot switch between providerRef and providerSelector; create a new one", fieldPath: ".providerRef" },
    ],
  });

export const instanceStatusSchema = z
  .object({
    phase: z.enum(PHASES).optional().describe("Observed phase: Pending, Starting, ScanQR, Connected, Disconnected, LoggedOut or Failed."),
    observedGeneration,
    conditions: conditions.optional(),
    providerRef: z
      .object({
        kind: z.enum(PROVIDER_KINDS).describe("WhatsAppProvider or ClusterWhatsAppProvider."),
        name: objectName("Name of the provider."),
      })
      .meta({
        description: "Where a providerSelector placed this number. Decided once: it never changes afterwards.",
        "x-kubernetes-validations": [{ rule: "self == oldSelf", message: "status.providerRef is decided once and never moves" }],
      })
      .optional(),
    providerInstanceId: z.string().max(256).optional().describe("The provider's id or session name for this number."),
    phoneNumber: z.string().max(32).optional().describe("The linked phone number, digits only, once connected."),
    qr: z
      .object({
        secretName: z.string().max(253).describe("Secret holding qr.png, qr.txt and pairing-code."),
        updatedAt: timestamp("When the code in the Secret was fetched."),
        expiresAt: timestamp("When the provider will replace the code.").optional(),
      })
      .describe("The current QR code, only while phase is ScanQR.")
      .optional(),
    webhook: z
      .object({
        secretName: z.string().max(253).describe("Secret holding url, events and hmac-key."),
        url: z.string().max(2048).describe("The URL the provider posts to."),
      })
      .describe("The webhook in force.")
      .optional(),
    lastRestartAt: z.string().max(64).optional().describe("The restartRequestedAt value last carried out."),
    restartInFlight: z
      .string()
      .max(64)
      .optional()
      .describe(
        "The restartRequestedAt value whose restart call is under way. Recorded before the call, so a restart interrupted by a crash is not repeated (at most once).",
      ),
    providerState: z
      .object({
        state: z.string().max(64).describe("The provider's own word for the session's state, e.g. STARTING."),
        since: timestamp("When the operator first saw that state, or last restarted the session in it."),
      })
      .describe("The provider's state and since when; a session STARTING for longer than the operator's stuck timeout is restarted once, then Failed.")
      .optional(),
    recovery: z
      .object({
        attempts: z.int().min(0).max(2_147_483_647).describe("Consecutive failed starts or provider blocks; sets the next wait (1 min doubling to 30 min)."),
        notBefore: timestamp("No new attempt is made before this time.").optional(),
      })
      .describe("Backoff after a failure that the operator retries on its own.")
      .optional(),
  })
  .meta({
    description: "Observed state of the number.",
    "x-kubernetes-validations": [{ rule: "!has(oldSelf.providerRef) || has(self.providerRef)", message: "status.providerRef is decided once and never removed" }],
  })
  .default(UNOBSERVED_STATUS);

export type InstanceSpec = z.output<typeof instanceSpecSchema>;
export type InstanceStatus = z.output<typeof instanceStatusSchema>;
