/**
 * Building blocks shared by the CRD schemas. Every field carries a description, since
 * the zod schemas are the single source of the CRDs and `kubectl explain` shows them.
 */
import { z } from "zod";
import { parseDuration } from "../config.ts";

export const GROUP = "wa-operator.io";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** A Kubernetes object name (RFC 1123 subdomain). */
export const objectName = (description: string) =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/)
    .describe(description);

/** A key inside a Secret's data. */
export const secretKey = (description: string) =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(/^[-._a-zA-Z0-9]+$/)
    .describe(description);

/**
 * The host part of an http(s) URL, as regular expressions on the whole string: CEL's
 * url(self).getHostname() returns a string of unbounded estimated size, which puts rules
 * built on it far over the API server's cost budget. userinfo is refused by its own rule,
 * so the host runs from "://" to the first ":", "/", "?" or "#" (or "]" for IPv6).
 */
const AT_HOST = "^(?i)https?://";
const HOST_END = "(:[0-9]*)?([/?#].*)?$";
const DOTTED_QUAD = "((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])[.]){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const METADATA_NAMES = ["metadata", "metadata[.]google[.]internal", "instance-data", "instance-data[.]ec2[.]internal"];

/**
 * What no URL the operator sends to may name, refused at apply time: the operator calls
 * these URLs (or wires a provider to call them) from inside the cluster, so a link-local
 * or cloud-metadata address would hand its network position to whoever writes the spec.
 * Loopback stays allowed (local runs and tests use it); names that resolve to such an
 * address are the connect-time check's business.
 */
const URL_RULES = [
  { rule: "isURL(self) && url(self).getScheme() in ['http', 'https']", message: "must be an http or https URL" },
  {
    rule: "!self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*@')",
    message: "must not carry a user or password (user:pass@host): credentials belong in a Secret",
  },
  {
    // WHATWG URL parsers (Node's) read 2852039166, 0xa9fea9fe or 0251.0376.0251.0376 as
    // 169.254.169.254: a host whose last label is a number must be a plain dotted quad.
    // An IPv6 literal that embeds IPv4 (::ffff:a.b.c.d, ::ffff:a9fe:a9fe) is refused alike.
    rule: `(!self.matches('${AT_HOST}([^/?#:\\\\[]*[.])?(0x[0-9a-f]*|[0-9]+)[.]?${HOST_END}') || self.matches('${AT_HOST}${DOTTED_QUAD}${HOST_END}')) && !self.matches('${AT_HOST}\\\\[([^\\\\]]*[.]|[0:]*:ffff:)')`,
    message: "the host must be a name or a plain IP address",
  },
  {
    rule: `!self.matches('${AT_HOST}(169[.]254[.][0-9.]*|\\\\[fe[89ab][0-9a-f]:[^\\\\]]*\\\\])${HOST_END}')`,
    message: "must not point at a link-local address (169.254.0.0/16, fe80::/10)",
  },
  {
    rule: `!self.matches('${AT_HOST}((${METADATA_NAMES.join("|")})[.]?|\\\\[fd00:0*ec2:[0:]*:?0*254\\\\])${HOST_END}')`,
    message: "must not point at a cloud metadata service",
  },
];

/** An http(s) URL; the pattern gives a plain message, the CEL rules a real parse and the hosts refused. */
export const httpUrl = (description: string) =>
  z
    .string()
    .min(1)
    .max(2048)
    .regex(/^https?:\/\/[^\s]+$/)
    .meta({ description, "x-kubernetes-validations": URL_RULES });

/**
 * A Go-style duration such as 30s, 2m or 1h30m, between `min` and `max` (also Go
 * durations). CEL checks the range at apply time; the refine repeats it for objects
 * stored before the bound existed.
 */
export const duration = (description: string, bounds: { readonly min: string; readonly max: string }) => {
  const message = `must be between ${bounds.min} and ${bounds.max}`;
  return z
    .string()
    .max(32)
    .regex(/^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/)
    .refine((value) => within(value, bounds), { message })
    .meta({
      description,
      "x-kubernetes-validations": [
        { rule: `duration(self) >= duration('${bounds.min}') && duration(self) <= duration('${bounds.max}')`, message },
      ],
    });
};

function within(value: string, bounds: { readonly min: string; readonly max: string }): boolean {
  try {
    const ms = parseDuration(value);
    return ms >= parseDuration(bounds.min) && ms <= parseDuration(bounds.max);
  } catch {
    // The pattern reports an unreadable duration.
    return true;
  }
}

/** An RFC 3339 timestamp. */
export const timestamp = (description: string) => z.iso.datetime({ offset: true }).max(64).describe(description);

/** metadata.generation as seen by a controller: an int64, so bounded by its format. */
export const generation = (description: string) => z.int().min(0).meta({ description, format: "int64" });

/** Phone numbers are digits only, country code first, as WhatsApp uses them. */
export const phoneDigits = (description: string) =>
  z
    .string()
    .max(15)
    .regex(/^[0-9]{6,15}$/)
    .describe(description);

export const secretKeySelector = (description: string, defaultKey: string) =>
  z
    .object({
      name: objectName("Name of the Secret, in the same namespace."),
      key: secretKey(`Key inside the Secret. Defaults to "${defaultKey}".`).default(defaultKey),
    })
    .describe(description);

export const namespacedSecretKeySelector = (description: string, defaultKey: string) =>
  z
    .object({
      name: objectName("Name of the Secret."),
      namespace: objectName("Namespace of the Secret (cluster-scoped providers have none of their own)."),
      key: secretKey(`Key inside the Secret. Defaults to "${defaultKey}".`).default(defaultKey),
    })
    .describe(description);

/** A label selector, as metav1.LabelSelector, over the objects named (the namespace / namespaces, a provider / providers). */
export const labelSelectorOf = (subject: { readonly one: string; readonly many: string }) =>
  z
    .object({
      matchLabels: z.record(z.string().max(63), z.string().max(63)).optional().describe(`Labels ${subject.one} must carry, each with this value.`),
      matchExpressions: z
        .array(
          z
            .object({
              key: z.string().min(1).max(317).describe("The label key."),
              operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]).describe("How the key's value is matched: In, NotIn, Exists or DoesNotExist."),
              values: z.array(z.string().max(63).describe("A label value.")).max(64).optional().describe("The values for In and NotIn; empty for Exists and DoesNotExist."),
            })
            .describe("One requirement: a key, an operator and values."),
        )
        .max(16)
        .optional()
        .describe(`Requirements on ${possessive(subject.one)} labels; all must hold.`),
    })
    .describe(`A label selector over ${subject.many} (matchLabels and matchExpressions, all of which must hold).`);

function possessive(noun: string): string {
  return noun.endsWith("s") ? `${noun}'` : `${noun}'s`;
}

/** metav1.Condition, as kstatus, Flux and Argo CD read it. */
export const condition = z
  .object({
    type: z.string().min(1).max(316).describe("Type of condition in CamelCase: Ready, Reconciling or Stalled."),
    status: z.enum(["True", "False", "Unknown"]).describe("Status of the condition: True, False or Unknown."),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .describe("A CamelCase word for why the condition is in its state, for machines."),
    message: z.string().max(32768).describe("A human readable explanation of the condition."),
    lastTransitionTime: timestamp("When the condition last changed status."),
    observedGeneration: generation("The metadata.generation the condition was set for.").optional(),
  })
  .describe("A condition in metav1.Condition shape.");

export const conditions = z
  .array(condition)
  .max(16)
  .meta({
    description: "Current state in kstatus-compatible conditions: Ready, Reconciling and Stalled.",
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
  });

export type Condition = z.infer<typeof condition>;

/**
 * status.observedGeneration before the operator first looked. Each CRD defaults `status`
 * to `{observedGeneration: -1}` (as Flux's CRDs do) so that kstatus, which only compares
 * generations when the field exists, never calls a just-applied object Current.
 */
const NOT_OBSERVED = -1;

export const observedGeneration = z
  .int()
  .min(NOT_OBSERVED)
  .meta({ description: "The metadata.generation last acted on; -1 until the operator has looked at this object.", format: "int64" })
  .optional();

/** The default `status` of every kind: not observed yet. */
export const UNOBSERVED_STATUS = { observedGeneration: NOT_OBSERVED } as const;
