/**
 * Renders the CustomResourceDefinitions from the zod schemas, which are their single
 * source. `npm run crds` writes them to crds/; a test fails when the files drift.
 */
import { z } from "zod";
import type { ProviderModule } from "./providers/module.ts";
import { PROVIDER_MODULES } from "./providers/registry.ts";
import { GROUP, VERSION } from "./api/common.ts";
import { instanceSpecSchema, instanceStatusSchema } from "./api/instance.ts";
import { clusterProviderSpecSchema, providerSpecSchema, providerStatusSchema } from "./api/provider.ts";
import { honouredByFact, SESSION_FIELDS, type SessionField } from "./api/session.ts";

type JsonSchema = { [key: string]: unknown };

interface PrinterColumn {
  readonly name: string;
  readonly type: "string" | "integer" | "date";
  readonly jsonPath: string;
  readonly description: string;
  readonly priority?: number;
}

interface KindDefinition {
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly scope: "Namespaced" | "Cluster";
  readonly description: string;
  readonly spec: z.ZodType;
  readonly status: z.ZodType;
  readonly columns: readonly PrinterColumn[];
}

const readyColumn: PrinterColumn = {
  name: "Ready",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: "Whether the Ready condition is True.",
};
const ageColumn: PrinterColumn = {
  name: "Age",
  type: "date",
  jsonPath: ".metadata.creationTimestamp",
  description: "Time since creation.",
};
const messageColumn: PrinterColumn = {
  name: "Message",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].message',
  description: "The Ready condition's message.",
  priority: 1,
};

const providerColumns: readonly PrinterColumn[] = [
  { name: "Type", type: "string", jsonPath: ".spec.type", description: "The gateway type." },
  { name: "URL", type: "string", jsonPath: ".spec.url", description: "The gateway's base URL." },
  readyColumn,
  { name: "Instances", type: "integer", jsonPath: ".status.instances", description: "WhatsAppInstances using it." },
  { name: "Capacity", type: "integer", jsonPath: ".spec.capacity.maxSessions", description: "Most sessions kept there (capacity.maxSessions).", priority: 1 },
  { name: "Linked", type: "integer", jsonPath: ".status.sessions.linked", description: "Sessions there that are Connected.", priority: 1 },
  { name: "Starting", type: "integer", jsonPath: ".status.sessions.starting", description: "Sessions there holding a start slot.", priority: 1 },
  ageColumn,
  { name: "Version", type: "string", jsonPath: ".status.version", description: "Reported version.", priority: 1 },
  messageColumn,
];

export const KINDS: readonly KindDefinition[] = [
  {
    kind: "WhatsAppProvider",
    plural: "whatsappproviders",
    singular: "whatsappprovider",
    shortNames: ["wap"],
    scope: "Namespaced",
    description: "WhatsAppProvider says where and how to reach one WhatsApp gateway for instances in its namespace.",
    spec: providerSpecSchema,
    status: providerStatusSchema,
    columns: providerColumns,
  },
  {
    kind: "ClusterWhatsAppProvider",
    plural: "clusterwhatsappproviders",
    singular: "clusterwhatsappprovider",
    shortNames: ["cwap"],
    scope: "Cluster",
    description: "ClusterWhatsAppProvider says where and how to reach one WhatsApp gateway for instances in any namespace.",
    spec: clusterProviderSpecSchema,
    status: providerStatusSchema,
    columns: providerColumns,
  },
  {
    kind: "WhatsAppInstance",
    plural: "whatsappinstances",
    singular: "whatsappinstance",
    shortNames: ["wai"],
    scope: "Namespaced",
    description: "WhatsAppInstance is one WhatsApp number, linked and kept in its desired state through one provider.",
    spec: instanceSpecSchema,
    status: instanceStatusSchema,
    columns: [
      { name: "Provider", type: "string", jsonPath: ".spec.providerRef.name", description: "The provider it is linked through." },
      { name: "Placed", type: "string", jsonPath: ".status.providerRef.name", description: "Where its providerSelector placed it.", priority: 1 },
      { name: "Desired", type: "string", jsonPath: ".spec.state", description: "The desired state." },
      { name: "Phase", type: "string", jsonPath: ".status.phase", description: "The observed phase." },
      { name: "Phone", type: "string", jsonPath: ".status.phoneNumber", description: "The linked phone number." },
      readyColumn,
      ageColumn,
      messageColumn,
    ],
  },
];

/** The CRD object for one kind. */
export function renderCrd(definition: KindDefinition): JsonSchema {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${definition.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      names: {
        kind: definition.kind,
        listKind: `${definition.kind}List`,
        plural: definition.plural,
        singular: definition.singular,
        shortNames: [...definition.shortNames],
        categories: ["whatsapp"],
      },
      scope: definition.scope,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: definition.columns.map((column) => ({ ...column })),
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: definition.description,
              required: ["spec"],
              properties: {
                apiVersion: {
                  type: "string",
                  description: "APIVersion defines the versioned schema of this representation of an object.",
                },
                kind: { type: "string", description: "Kind is a string value representing the REST resource this object represents." },
                metadata: { type: "object" },
                spec: toStructural(definition.spec),
                status: toStructural(definition.status),
              },
            },
          },
        },
      ],
    },
  };
}

/** Every CRD, keyed by the file name it is written to. */
export function renderAllCrds(): Map<string, JsonSchema> {
  return new Map(KINDS.map((definition) => [`${GROUP}_${definition.plural}.yaml`, fillRegistryFacts(renderCrd(definition)) as JsonSchema]));
}

const MODULES = Object.values(PROVIDER_MODULES) as ProviderModule[];

/**
 * The facts about the registered providers that the API's descriptions name
 * (registryFact in provider-types.ts). Here, not in src/api's schemas, so the API layer
 * never imports the providers.
 */
const REGISTRY_FACTS: Readonly<Record<string, () => string>> = {
  typesWithTitles: () => MODULES.map((module) => `${module.type} (${module.title})`).join(", "),
  adoptIds: () => MODULES.flatMap((module) => (module.adoptId ? [module.adoptId] : [])).join(", "),
  typesWithoutAdopt: () => MODULES.filter((module) => !module.adoptId).map((module) => module.type).join(" and "),
  typesWithoutEventFilter: () => MODULES.filter((module) => module.capabilities.webhookEvents === "none").map((module) => module.type).join(", "),
  // spec.session: which types' modules honour each field (ProviderModule.session.supports).
  ...Object.fromEntries(SESSION_FIELDS.map((field) => [honouredByFact(field), () => honouredBy(field)])),
};

/** "Honoured by waha, evolution; …" for a spec.session field's description. */
function honouredBy(field: SessionField): string {
  const types = MODULES.filter((module) => module.session?.supports.includes(field)).map((module) => module.type);
  return types.length > 0 ? `Honoured by ${types.join(", ")}; any other provider refuses it (Stalled InvalidSpec).` : "No provider honours it yet.";
}

function fillRegistryFacts(node: unknown): unknown {
  if (typeof node === "string") {
    return node.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
      const fact = REGISTRY_FACTS[name];
      if (!fact) throw new Error(`a description names {{${name}}}, which is no registry fact`);
      return fact();
    });
  }
  if (Array.isArray(node)) return node.map(fillRegistryFacts);
  if (isObject(node)) return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, fillRegistryFacts(value)]));
  return node;
}

const SAFE_INTEGER = Number.MAX_SAFE_INTEGER;

/**
 * zod's OpenAPI 3.0 output, trimmed to what a structural CRD schema allows and wants:
 * no safe-integer bounds, no regex where a format already validates.
 */
export function toStructural(schema: z.ZodType): JsonSchema {
  return clean(z.toJSONSchema(schema, { io: "input", target: "openapi-3.0" }) as JsonSchema);
}

function clean(node: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "$schema" || key === "id") continue;
    if ((key === "maximum" && value === SAFE_INTEGER) || (key === "minimum" && value === -SAFE_INTEGER)) continue;
    if (key === "pattern" && node["format"] === "date-time") continue;
    if (key === "additionalProperties" && value === false) continue;
    if (key === "properties" && isObject(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, child]) => [name, clean(child as JsonSchema)]));
    } else if ((key === "items" || key === "additionalProperties") && isObject(value)) {
      out[key] = clean(value);
    } else {
      out[key] = value;
    }
  }
  return out;
}

function isObject(value: unknown): value is JsonSchema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
