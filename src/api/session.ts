/**
 * WhatsAppInstance spec.session: declared session settings. Each description names the
 * provider types whose module honours the field (ProviderModule.session.supports, filled in
 * when the CRDs render), so `kubectl explain` answers "does my provider do this?" from the
 * same source the planner uses.
 */
import { z } from "zod";
import { objectName, secretKey } from "./common.ts";
import { registryFact } from "./provider-types.ts";

/** The fields of spec.session, as the messages, the modules' support lists and the tables name them. */
export const SESSION_FIELDS = [
  "deviceName",
  "browserName",
  "proxy",
  "ignore.groups",
  "ignore.status",
  "ignore.channels",
  "rejectCalls",
  "alwaysOnline",
  "readReceipts",
  "businessProfile",
] as const;
export type SessionField = (typeof SESSION_FIELDS)[number];

/** The registry fact (filled in by src/crds.ts) naming the provider types that honour a field. */
export const honouredByFact = (field: SessionField): string => `honouredBy_${field.replace(".", "_")}`;

const described = (text: string, field: SessionField) => `${text} ${registryFact(honouredByFact(field))}`;

/** Graph API WhatsAppBusinessVertical (cloud-api-openapi-v23.0.yaml). */
export const BUSINESS_VERTICALS = [
  "OTHER", "AUTO", "BEAUTY", "APPAREL", "EDU", "ENTERTAIN", "EVENT_PLAN", "FINANCE", "GROCERY", "GOVT", "HOTEL",
  "HEALTH", "NONPROFIT", "PROF_SERVICES", "RETAIL", "TRAVEL", "RESTAURANT", "ALCOHOL", "ONLINE_GAMBLING", "PHYSICAL_GAMBLING", "OTC_DRUGS",
] as const;

const clientName = (description: string) =>
  z
    .string()
    .min(1)
    .max(64)
    // Shown on the phone's Linked devices list: printable text only.
    .regex(/^[^\x00-\x1f\x7f]+$/)
    .describe(description);

export const sessionSpecSchema = z
  .object({
    deviceName: clientName(described("The device name the phone shows under Linked devices (WAHA's client.deviceName). Applies at the next link.", "deviceName")).optional(),
    browserName: clientName(described("The browser name the phone shows under Linked devices (WAHA's client.browserName).", "browserName")).optional(),
    proxy: z
      .object({
        url: z
          .string()
          .min(1)
          .max(512)
          .regex(/^(https?|socks[45]):\/\/[A-Za-z0-9.-]+:[0-9]{1,5}\/?$/)
          .describe("The proxy as scheme://host:port (http, https, socks4 or socks5); no credentials in the URL."),
        credentialsSecretRef: z
          .object({
            name: objectName("A Secret in the instance's namespace, labelled wa-operator.io/credential: \"true\"."),
            usernameKey: secretKey('Key holding the user name. Defaults to "username".').default("username"),
            passwordKey: secretKey('Key holding the password. Defaults to "password".').default("password"),
          })
          .describe("The proxy's user name and password, when it needs them.")
          .optional(),
      })
      .describe(described("The proxy the provider connects this session to WhatsApp through.", "proxy"))
      .optional(),
    ignore: z
      .object({
        groups: z.boolean().optional().describe(described("Drop the events of group chats.", "ignore.groups")),
        status: z.boolean().optional().describe(described("Drop the events of status updates (stories).", "ignore.status")),
        channels: z.boolean().optional().describe(described("Drop the events of channels (newsletters).", "ignore.channels")),
      })
      .describe("Chat types whose events the provider drops. An unset field is left as the provider has it.")
      .optional(),
    rejectCalls: z
      .object({
        enabled: z.boolean().default(true).describe("Reject incoming calls (false: let them ring)."),
        message: z.string().min(1).max(512).optional().describe("A text message sent to the caller after a rejected call."),
      })
      .describe(described("Reject incoming voice and video calls, optionally answering with a message.", "rejectCalls"))
      .optional(),
    alwaysOnline: z.boolean().optional().describe(described("Show the number as online all the time (WAHA: NOWEB's markOnline).", "alwaysOnline")),
    readReceipts: z.boolean().optional().describe(described("Mark incoming messages as read as they arrive (Evolution's readMessages).", "readReceipts")),
    businessProfile: z
      .object({
        about: z.string().min(1).max(139).optional().describe("The About text."),
        description: z.string().min(1).max(256).optional().describe("The business description."),
        email: z.string().min(3).max(128).regex(/^[^@\s]+@[^@\s]+$/).optional().describe("The contact email address."),
        // Shown on the profile, never fetched by the operator: a plain http(s) pattern is enough.
        websites: z
          .array(z.string().min(1).max(256).regex(/^https?:\/\/[^\s]+$/).describe("A website of the business (http or https)."))
          .max(2)
          .optional()
          .describe("Up to two websites."),
        vertical: z.enum(BUSINESS_VERTICALS).optional().describe("The business category, in the Graph API's words (RETAIL, RESTAURANT, ...)."),
        address: z.string().min(1).max(256).optional().describe("The business address."),
      })
      .describe(described("The WhatsApp Business profile of the number. An unset field is left as it is.", "businessProfile"))
      .optional(),
  })
  .describe(
    "Declared session settings, kept in place by the operator: a change at the provider is found and repaired. Where applying restarts the session (WAHA), an Event says so, once per change.",
  );

export type SessionSpec = z.output<typeof sessionSpecSchema>;
