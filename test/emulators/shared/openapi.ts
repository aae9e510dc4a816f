/**
 * Just enough OpenAPI (3.0/3.1) to hold an emulator to a provider's published spec:
 * find operations by method + path template, pick a response schema, and list where a
 * JSON value breaks it. The checker covers `$ref`, `allOf`/`oneOf`/`anyOf`, `required`,
 * primitive `type` (3.1 type arrays included), `enum`, `nullable`, object properties and
 * array items; formats, patterns and lengths are out of scope.
 */
import { readFileSync } from "node:fs";

export interface Schema {
  readonly $ref?: string;
  readonly type?: string | readonly string[];
  readonly required?: readonly string[] | boolean;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly items?: Schema;
  readonly allOf?: readonly Schema[];
  readonly oneOf?: readonly Schema[];
  readonly anyOf?: readonly Schema[];
  readonly enum?: readonly unknown[];
  readonly nullable?: boolean;
}

export interface Operation {
  readonly responses?: Readonly<
    Record<string, { readonly content?: Readonly<Record<string, { readonly schema?: Schema }>> }>
  >;
  readonly security?: readonly unknown[];
}

export interface OpenApiSpec {
  readonly info: { readonly version: string };
  readonly paths: Readonly<Record<string, Readonly<Record<string, Operation>>>>;
  readonly components?: { readonly schemas?: Readonly<Record<string, Schema>> };
}

export function loadSpec(file: string): OpenApiSpec {
  return JSON.parse(readFileSync(file, "utf8")) as OpenApiSpec;
}

/** `/api/{session}/auth/qr` and `/api/{name}/auth/qr` are the same route. */
function shape(template: string): string {
  return template.replace(/\{[^}]+\}/g, "{}");
}

export function findOperation(spec: OpenApiSpec, method: string, template: string): Operation | undefined {
  const wanted = shape(template);
  for (const [path, ops] of Object.entries(spec.paths)) {
    if (shape(path) === wanted) return ops[method.toLowerCase()];
  }
  return undefined;
}

export function responseSchema(
  spec: OpenApiSpec,
  method: string,
  template: string,
  status: number,
  contentType = "application/json",
): Schema | undefined {
  return findOperation(spec, method, template)?.responses?.[String(status)]?.content?.[contentType]?.schema;
}

export function componentSchema(spec: OpenApiSpec, name: string): Schema {
  const schema = spec.components?.schemas?.[name];
  if (!schema) throw new Error(`spec has no components.schemas.${name}`);
  return schema;
}

function resolve(spec: OpenApiSpec, schema: Schema): Schema {
  let s = schema;
  for (let depth = 0; s.$ref; depth++) {
    if (depth > 32) throw new Error(`$ref loop at ${schema.$ref}`);
    const name = /^#\/components\/schemas\/(.+)$/.exec(s.$ref)?.[1];
    if (!name) throw new Error(`unsupported $ref ${s.$ref}`);
    s = componentSchema(spec, name);
  }
  return s;
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function matchesType(value: unknown, type: string): boolean {
  switch (type) {
    case "integer":
      return Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "object":
      return typeOf(value) === "object";
    default:
      return typeOf(value) === type;
  }
}

export interface CheckOptions {
  /**
   * Accept `null` for properties the schema does not list as required even without
   * `nullable` (NestJS Swagger seldom marks it, and servers send null there). Default true.
   */
  readonly nullForOptional?: boolean;
  /** Paths (`$.config.webhooks[0].events[0]`) to skip entirely: known spec quirks. */
  readonly skip?: (path: string) => boolean;
}

/** Every place where `value` breaks `schema`, as "path: problem"; empty when it conforms. */
export function schemaProblems(
  spec: OpenApiSpec,
  value: unknown,
  schema: Schema,
  options: CheckOptions = {},
  path = "$",
): string[] {
  if (options.skip?.(path)) return [];
  const s = resolve(spec, schema);
  const problems: string[] = [];
  for (const part of s.allOf ?? []) problems.push(...schemaProblems(spec, value, part, options, path));
  for (const [kind, list] of [["oneOf", s.oneOf], ["anyOf", s.anyOf]] as const) {
    if (list && !list.some((branch) => schemaProblems(spec, value, branch, options, path).length === 0)) {
      problems.push(`${path}: matches none of the ${kind} branches`);
    }
  }
  const types = s.type === undefined ? [] : typeof s.type === "string" ? [s.type] : [...s.type];
  if (value === null) {
    if (types.length > 0 && !s.nullable && !types.includes("null")) problems.push(`${path}: null is not allowed`);
    return problems;
  }
  if (s.enum) {
    if (!s.enum.includes(value)) problems.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(s.enum)}`);
    // Swagger generators sometimes declare `type: object` next to a string enum: the enum decides.
    else return problems;
  }
  if (types.length > 0 && !types.some((t) => matchesType(value, t))) {
    problems.push(`${path}: expected ${types.join("|")}, got ${typeOf(value)}`);
    return problems;
  }
  if (typeOf(value) === "object") {
    const obj = value as Record<string, unknown>;
    const required = Array.isArray(s.required) ? (s.required as readonly string[]) : [];
    for (const key of required) if (!(key in obj)) problems.push(`${path}: missing required property "${key}"`);
    for (const [key, propSchema] of Object.entries(s.properties ?? {})) {
      const v = obj[key];
      if (v === undefined) continue;
      if (v === null && (options.nullForOptional ?? true) && !required.includes(key)) continue;
      problems.push(...schemaProblems(spec, v, propSchema, options, `${path}.${key}`));
    }
  }
  if (Array.isArray(value) && s.items) {
    value.forEach((item, i) => problems.push(...schemaProblems(spec, item, s.items as Schema, options, `${path}[${i}]`)));
  }
  return problems;
}
