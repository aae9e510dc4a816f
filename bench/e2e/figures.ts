/**
 * The pure arithmetic of the end-to-end benchmark: reading kube-apiserver's request
 * counters from its /metrics text, telling which requests a client sent from their
 * method and path, differences and per-instance shares of those tallies, percentiles,
 * and the markdown table. No I/O here, so a unit test holds it (test/unit/bench-e2e.test.ts).
 */

/** One request kind as kube-apiserver counts it in apiserver_request_total. */
export interface RequestKind {
  /** GET, LIST, WATCH, POST, PUT, PATCH, APPLY, DELETE, DELETECOLLECTION, ... */
  readonly verb: string;
  /** API group; "" for the core group. */
  readonly group: string;
  readonly resource: string;
  readonly subresource: string;
  /** HTTP status code as text, e.g. "200", "404". */
  readonly code: string;
}

/** Request counts keyed by requestKey(kind). */
export type RequestTally = Map<string, number>;

/** Groups shown without a suffix: core, and the operator's own (its resource names are unique). */
const SHORT_GROUPS = new Set(["", "wa-operator.io"]);

/** "secrets", "whatsappinstances/status", "leases.coordination.k8s.io". */
export function resourceName(kind: Pick<RequestKind, "group" | "resource" | "subresource">): string {
  const base = SHORT_GROUPS.has(kind.group) ? kind.resource : `${kind.resource}.${kind.group}`;
  return kind.subresource ? `${base}/${kind.subresource}` : base;
}

export function requestKey(kind: RequestKind): string {
  return [kind.verb, kind.group, kind.resource, kind.subresource, kind.code].join("|");
}

export function parseRequestKey(key: string): RequestKind {
  const [verb = "", group = "", resource = "", subresource = "", code = ""] = key.split("|");
  return { verb, group, resource, subresource, code };
}

export function addTo(tally: RequestTally, kind: RequestKind, count = 1): void {
  const key = requestKey(kind);
  tally.set(key, (tally.get(key) ?? 0) + count);
}

/** Unescapes a Prometheus label value (\\, \", \n). */
function unescapeLabel(value: string): string {
  return value.replace(/\\(["\\n])/g, (_, c: string) => (c === "n" ? "\n" : c));
}

/** The samples of one metric in Prometheus text format: labels and value per line. */
export function parseMetric(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const samples: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (line[name.length] !== "{" && line[name.length] !== " ")) continue;
    const labels: Record<string, string> = {};
    let rest = line.slice(name.length);
    if (rest.startsWith("{")) {
      const close = closingBrace(rest);
      for (const match of rest.slice(1, close).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[match[1] as string] = unescapeLabel(match[2] as string);
      }
      rest = rest.slice(close + 1);
    }
    const value = Number(rest.trim().split(/\s+/)[0]);
    if (Number.isFinite(value)) samples.push({ labels, value });
  }
  return samples;
}

/** Index of the "}" that ends the label set, skipping braces inside quoted values. */
function closingBrace(text: string): number {
  let quoted = false;
  for (let i = 1; i < text.length; i++) {
    const c = text[i];
    if (c === "\\") i++;
    else if (c === '"') quoted = !quoted;
    else if (c === "}" && !quoted) return i;
  }
  return text.length;
}

/**
 * kube-apiserver's apiserver_request_total as a tally. Labels the benchmark does not
 * break down (version, scope, component, dry_run) are summed over.
 */
export function apiserverRequests(metricsText: string): RequestTally {
  const tally: RequestTally = new Map();
  for (const { labels, value } of parseMetric(metricsText, "apiserver_request_total")) {
    addTo(
      tally,
      { verb: labels.verb ?? "", group: labels.group ?? "", resource: labels.resource ?? "", subresource: labels.subresource ?? "", code: labels.code ?? "" },
      value,
    );
  }
  return tally;
}

/** after − before, dropping kinds that did not change. */
export function difference(after: RequestTally, before: RequestTally): RequestTally {
  const result: RequestTally = new Map();
  for (const key of new Set([...after.keys(), ...before.keys()])) {
    const delta = (after.get(key) ?? 0) - (before.get(key) ?? 0);
    if (delta !== 0) result.set(key, delta);
  }
  return result;
}

export function filterTally(tally: RequestTally, keep: (kind: RequestKind) => boolean): RequestTally {
  return new Map([...tally].filter(([key]) => keep(parseRequestKey(key))));
}

export function total(tally: RequestTally): number {
  let sum = 0;
  for (const count of tally.values()) sum += count;
  return sum;
}

/**
 * What a client request counts as in apiserver_request_total, from its method and path
 * (the same rules as the API server's request-info resolver, for the paths a client of
 * namespaced and cluster-scoped objects uses).
 */
export function requestKindOf(method: string, url: string, contentType = ""): Omit<RequestKind, "code"> {
  const { pathname, searchParams } = new URL(url, "https://api.invalid");
  const parts = pathname.split("/").filter(Boolean);
  let rest: string[];
  let group: string;
  if (parts[0] === "api") {
    group = "";
    rest = parts.slice(2);
  } else if (parts[0] === "apis") {
    group = parts[1] ?? "";
    rest = parts.slice(3);
  } else {
    return { verb: method.toUpperCase(), group: "", resource: "", subresource: "" };
  }
  if (rest[0] === "namespaces" && rest.length > 2) rest = rest.slice(2);
  const [resource = "", name, subresource = ""] = rest;
  const watch = ["1", "true"].includes(searchParams.get("watch") ?? "");
  let verb = method.toUpperCase();
  if (verb === "GET") verb = watch ? "WATCH" : name === undefined ? "LIST" : "GET";
  else if (verb === "DELETE" && name === undefined) verb = "DELETECOLLECTION";
  else if (verb === "PATCH" && contentType.startsWith("application/apply-patch")) verb = "APPLY";
  return { verb, group, resource: decodeURIComponent(resource), subresource };
}

const READ_VERBS = new Set(["GET", "LIST", "WATCH"]);

export function isWrite(verb: string): boolean {
  return !READ_VERBS.has(verb);
}

/** Per verb: how many, and how many of them were answered 404 (work spent on nothing). */
export function byVerb(tally: RequestTally): Map<string, { count: number; notFound: number }> {
  const result = new Map<string, { count: number; notFound: number }>();
  for (const [key, count] of tally) {
    const kind = parseRequestKey(key);
    const entry = result.get(kind.verb) ?? { count: 0, notFound: 0 };
    entry.count += count;
    if (kind.code === "404") entry.notFound += count;
    result.set(kind.verb, entry);
  }
  return result;
}

/** Per "VERB resource" (codes summed). */
export function byVerbAndResource(tally: RequestTally): Map<string, number> {
  const result = new Map<string, number>();
  for (const [key, count] of tally) {
    const kind = parseRequestKey(key);
    const label = `${kind.verb} ${resourceName(kind)}`;
    result.set(label, (result.get(label) ?? 0) + count);
  }
  return result;
}

const VERB_ORDER = ["GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"];

/** "19.5: GET 10.2 (5.0 404), POST 4.1, PATCH 2.0" — counts divided by `per`. */
export function describeByVerb(tally: RequestTally, per: number): string {
  const verbs = [...byVerb(tally)].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
  const parts = verbs.map(([verb, { count, notFound }]) => `${verb} ${fixed(count / per)}${notFound > 0 ? ` (${fixed(notFound / per)} 404)` : ""}`);
  return `${fixed(total(tally) / per)}${parts.length ? `: ${parts.join(", ")}` : ""}`;
}

/** "GET secrets 7.2, PATCH whatsappinstances/status 2.0, ..." — the largest first, counts divided by `per`. */
export function describeByResource(tally: RequestTally, per: number, limit = 8): string {
  const entries = [...byVerbAndResource(tally)].sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
  const shown = entries.slice(0, limit).map(([label, count]) => `${label} ${fixed(count / per)}`);
  if (entries.length > limit) shown.push(`… ${entries.length - limit} more`);
  return shown.join(", ") || "none";
}

function rank(verb: string): number {
  const index = VERB_ORDER.indexOf(verb);
  return index < 0 ? VERB_ORDER.length : index;
}

/** Nearest-rank percentile (p in 0..100) of unsorted values; NaN when there are none. */
/** The most events (millisecond times) in any one second from `from`: polls that come in waves show here. */
export function busiestSecond(times: readonly number[], from: number): number {
  const perSecond = new Map<number, number>();
  for (const time of times) {
    const second = Math.floor((time - from) / 1000);
    perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
  }
  return Math.max(0, ...perSecond.values());
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rankIndex = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rankIndex))] as number;
}

/** Counts of labels, the largest first: "GET /api/sessions/{session} 5.1, POST /api/sessions 1.0". */
export function describeCounts(counts: ReadonlyMap<string, number>, per: number, limit = 8): string {
  const entries = [...counts].sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
  let sum = 0;
  for (const [, count] of entries) sum += count;
  const shown = entries.slice(0, limit).map(([label, count]) => `${label} ${fixed(count / per)}`);
  if (entries.length > limit) shown.push(`… ${entries.length - limit} more`);
  return `${fixed(sum / per)}${shown.length ? `: ${shown.join(", ")}` : ""}`;
}

/** Up to three significant decimals where small, one where large: 0.004, 0.25, 19.5, 109. */
export function fixed(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  const abs = Math.abs(value);
  if (abs === 0) return "0";
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1).replace(/\.0$/, "");
  if (abs >= 1) return value.toFixed(2).replace(/\.?0+$/, "");
  return value.toPrecision(2).replace(/\.?0+$/, "");
}

/** A markdown table; `|` inside cells is escaped. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (text: string) => text.replace(/\|/g, "\\|");
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}
