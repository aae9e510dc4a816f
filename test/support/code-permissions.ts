/**
 * Derives from the source which Kubernetes API permissions the operator's code uses, so
 * a test can hold src/kube/permissions.ts (and through it the RBAC in manifests/) to
 * what the code really does.
 *
 * It reads the code the way a reviewer would, with rules that match how this codebase
 * talks to the API server (always through KubeClient and the resource constants of
 * src/kube/resources.ts):
 * - `<x>.list|watch|get|find|create|patch|replace|delete(CONSTANT, ...)` is a call on that
 *   resource: list → list, watch → watch, get/find → get, create → create,
 *   patch → patch (with a "status" argument: <plural>/status), replace → update,
 *   delete → delete;
 * - on a receiver named `...kube`, a first argument that is a local variable resolves
 *   to the constants its declaration names (`const type = a ? X : Y`);
 * - the Informer's own list/watch of `this.options.type` applies to every type an
 *   Informer is built with (`new Informer({ type: X })`, or through a local helper
 *   whose `type` parameter it passes on);
 * - an owner reference with `blockOwnerDeletion: true` needs update on the owner's
 *   `finalizers` (OwnerReferencesPermissionEnforcement); the owner is the constant in
 *   `kind: X.kind`, or, where the kind is taken from the object, the reviewed entry
 *   of DYNAMIC_OWNERS below.
 * Anything it cannot resolve (a KubeClient call with an unknown resource, a generated
 * API client, a stale DYNAMIC_OWNERS entry) is reported as unresolved, so the test fails
 * rather than miss a call.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import * as resources from "../../src/kube/resources.ts";
import type { ResourceType } from "../../src/kube/resources.ts";
import type { Verb } from "../../src/kube/permissions.ts";

export interface CodePermission {
  readonly apiGroup: string;
  readonly resource: string;
  readonly verb: Verb;
  /** file:line of every call that needs it. */
  readonly sites: string[];
}

export interface CodeScan {
  readonly permissions: CodePermission[];
  readonly unresolved: string[];
  readonly files: string[];
}

const METHOD_VERBS: Record<string, Verb> = {
  list: "list",
  watch: "watch",
  get: "get",
  find: "get",
  create: "create",
  patch: "patch",
  replace: "update",
  delete: "delete",
};

/**
 * Owner references whose kind comes from the object rather than a constant, reviewed by
 * hand: file → the resource constants the owner can be. A stale entry is an error.
 */
export const DYNAMIC_OWNERS: Readonly<Record<string, readonly string[]>> = {
  // ensureEventsSecret: the owner is the WhatsAppProvider or ClusterWhatsAppProvider
  // being reconciled (`object`, read with `type` = PROVIDERS or CLUSTER_PROVIDERS).
  "src/controllers/provider/reconciler.ts": ["PROVIDERS", "CLUSTER_PROVIDERS"],
};

/**
 * Calls whose resource is a parameter, reviewed by hand: file → the resource constants
 * its callers pass. publish() writes the status of whichever kind it is given: the
 * instance reconciler passes INSTANCES, the provider reconciler PROVIDERS or CLUSTER_PROVIDERS.
 */
export const DYNAMIC_RESOURCES: Readonly<Record<string, readonly string[]>> = {
  "src/controllers/publish.ts": ["INSTANCES", "PROVIDERS", "CLUSTER_PROVIDERS"],
};

/** Generated API clients or raw requests would bypass KubeClient and these rules. */
const BYPASSES = /\b(makeApiClient|KubernetesObjectApi|CoreV1Api|CustomObjectsApi|CoordinationV1Api|AppsV1Api|EventsV1Api|new\s+Watch\s*\()/;

const RESOURCE_CONSTANTS: ReadonlyMap<string, ResourceType> = new Map(
  Object.entries(resources).filter((entry): entry is [string, ResourceType] => {
    const value = entry[1] as Partial<ResourceType> | undefined;
    return typeof value === "object" && value !== null && typeof value.plural === "string" && typeof value.group === "string";
  }),
);

/** Source with comments blanked out (strings kept), so line numbers stay right. */
export function stripComments(source: string): string {
  let out = "";
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end < 0 ? source.length : end + 2;
      out += source.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < source.length && source[j] !== c) j += source[j] === "\\" ? 2 : 1;
      out += source.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The top-level, comma-separated arguments of the call whose "(" is at `open`. */
export function callArguments(source: string, open: number): string[] {
  const args: string[] = [];
  let depth = 0;
  let current = "";
  for (let i = open; i < source.length; i++) {
    const c = source[i] as string;
    if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < source.length && source[j] !== c) j += source[j] === "\\" ? 2 : 1;
      current += source.slice(i, j + 1);
      i = j;
      continue;
    }
    if ("([{".includes(c)) {
      depth++;
      if (depth === 1) continue;
    } else if (")]}".includes(c)) {
      depth--;
      if (depth === 0) {
        if (current.trim()) args.push(current.trim());
        return args;
      }
    } else if (c === "," && depth === 1) {
      args.push(current.trim());
      current = "";
      continue;
    }
    current += c;
  }
  return args;
}

const lineOf = (source: string, index: number) => source.slice(0, index).split("\n").length;

function sourceFiles(dir: string, exclude: (relative: string) => boolean, root: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    const relative = path.relative(root, full).split(path.sep).join("/");
    if (statSync(full).isDirectory()) files.push(...sourceFiles(full, exclude, root));
    else if (entry.endsWith(".ts") && !entry.endsWith(".test.ts") && !exclude(relative)) files.push(relative);
  }
  return files.sort();
}

/** Constants named in `const|let <name> ... = <expression>;` of this file. */
function constantsOfVariable(source: string, name: string): string[] {
  const declaration = new RegExp(`\\b(?:const|let)\\s+${name}\\b[^=;]*=([^;]+);`).exec(source);
  return declaration ? [...(declaration[1] as string).matchAll(/\b[A-Z][A-Z_]+\b/g)].map((match) => match[0]).filter((word) => RESOURCE_CONSTANTS.has(word)) : [];
}

export function scanCodePermissions(options: { root: string; exclude: (relative: string) => boolean }): CodeScan {
  const files = sourceFiles(path.join(options.root, "src"), options.exclude, options.root);
  const found = new Map<string, CodePermission>();
  const unresolved: string[] = [];
  const add = (type: ResourceType, resource: string, verb: Verb, site: string) => {
    const key = `${type.group}|${resource}|${verb}`;
    const entry = found.get(key) ?? { apiGroup: type.group, resource, verb, sites: [] };
    entry.sites.push(site);
    found.set(key, entry);
  };
  const sources = new Map(files.map((file) => [file, stripComments(readFileSync(path.join(options.root, file), "utf8"))]));

  // Every type an Informer is built with, directly or through a helper's `type` parameter.
  const informerTypes = new Set<string>();
  for (const [file, source] of sources) {
    for (const match of source.matchAll(/new\s+Informer\b[^(]*\(\s*\{/g)) {
      const args = callArguments(source, (match.index ?? 0) + match[0].length - 2)[0] ?? "";
      const direct = /\btype\s*:\s*([A-Z][A-Z_]+)\b/.exec(args)?.[1];
      if (direct && RESOURCE_CONSTANTS.has(direct)) {
        informerTypes.add(direct);
        continue;
      }
      if (/(^|[{,\s])type\s*(,|}|$)/.test(args)) {
        const helper = /\bconst\s+(\w+)\s*=\s*(?:<[^>]*>\s*)?\(\s*type\s*:\s*ResourceType/.exec(source)?.[1];
        const calls = helper ? [...source.matchAll(new RegExp(`\\b${helper}\\s*(?:<[^>]*>)?\\s*\\(\\s*([A-Z][A-Z_]+)\\b`, "g"))] : [];
        if (calls.length === 0) unresolved.push(`${file}:${lineOf(source, match.index ?? 0)}: an Informer built with a type the scan cannot follow`);
        for (const call of calls) informerTypes.add(call[1] as string);
        continue;
      }
      unresolved.push(`${file}:${lineOf(source, match.index ?? 0)}: an Informer built with a type the scan cannot follow`);
    }
  }

  for (const [file, source] of sources) {
    if (file !== "src/kube/client.ts" && BYPASSES.test(source)) {
      unresolved.push(`${file}: talks to the API server without KubeClient (${BYPASSES.exec(source)?.[1]})`);
    }
    for (const match of source.matchAll(/([\w.]*)\s*\.\s*(list|watch|get|find|create|patch|replace|delete)\s*(?:<(?:[^<>()]|<[^<>()]*>)*>)?\s*\(/g)) {
      const receiver = match[1] as string;
      const method = match[2] as string;
      const open = (match.index ?? 0) + match[0].length - 1;
      const args = callArguments(source, open);
      const first = args[0] ?? "";
      const site = `${file}:${lineOf(source, match.index ?? 0)}`;
      const onKube = /(^|\.)kube$/.test(receiver);
      let types: string[];
      if (RESOURCE_CONSTANTS.has(first)) {
        types = [first];
      } else if (!onKube) {
        continue; // a Map, a cache, a queue: not the API server
      } else if (first === "this.options.type" && /\bclass\s+Informer\b/.test(source)) {
        types = [...informerTypes];
      } else if (/^\w+$/.test(first) && constantsOfVariable(source, first).length > 0) {
        types = constantsOfVariable(source, first);
      } else if (DYNAMIC_RESOURCES[file]) {
        types = [...(DYNAMIC_RESOURCES[file] as readonly string[])];
      } else {
        unresolved.push(`${site}: ${receiver}.${method}(${first}, ...) on a resource the scan cannot resolve`);
        continue;
      }
      const verb = METHOD_VERBS[method] as Verb;
      const status = method === "patch" && args.slice(1).some((arg) => arg === '"status"');
      for (const name of types) {
        const type = RESOURCE_CONSTANTS.get(name) as ResourceType;
        add(type, status ? `${type.plural}/status` : type.plural, verb, site);
      }
    }
    for (const match of source.matchAll(/blockOwnerDeletion\s*:\s*true/g)) {
      const site = `${file}:${lineOf(source, match.index ?? 0)}`;
      const named = [...source.matchAll(/\bkind\s*:\s*([A-Z][A-Z_]+)\.kind\b/g)].map((kind) => kind[1] as string).filter((name) => RESOURCE_CONSTANTS.has(name));
      const owners = named.length > 0 ? named : (DYNAMIC_OWNERS[file] ?? []);
      if (owners.length === 0) unresolved.push(`${site}: an owner reference with blockOwnerDeletion whose owner kind the scan cannot tell (add it to DYNAMIC_OWNERS)`);
      for (const name of owners) {
        const type = RESOURCE_CONSTANTS.get(name) as ResourceType;
        add(type, `${type.plural}/finalizers`, "update", site);
      }
    }
  }
  for (const file of Object.keys(DYNAMIC_OWNERS)) {
    const source = sources.get(file);
    if (!source || !/blockOwnerDeletion\s*:\s*true/.test(source) || /\bkind\s*:\s*[A-Z][A-Z_]+\.kind\b/.test(source)) {
      unresolved.push(`${file}: DYNAMIC_OWNERS names it, but it no longer builds an owner reference of a dynamic kind there`);
    }
  }
  return { permissions: [...found.values()], unresolved, files };
}
