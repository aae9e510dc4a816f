/**
 * `kubectl whatsapp providers`: both provider kinds in one table (kind, name, type, Ready,
 * the version the provider reports, how full it is, its linked and starting sessions, its
 * rate limit), or the same facts
 * as JSON or YAML. Pure: the clock comes in as `now`.
 */
import type { ProviderObject } from "../api/objects.ts";
import { formatTable, humanAge, itemsDocument } from "./status-table.ts";

/** One provider as `providers` shows it; also an item of `providers -o json|yaml`. */
export interface ProviderSummary {
  readonly kind: string;
  /** Empty for a ClusterWhatsAppProvider. */
  readonly namespace: string;
  readonly name: string;
  readonly type: string;
  readonly ready?: string | undefined;
  readonly reason?: string | undefined;
  readonly message?: string | undefined;
  readonly version?: string | undefined;
  /** Sessions placed here, where the status counts them; else the instances using it. */
  readonly used?: number | undefined;
  /** capacity.maxSessions beside placed sessions, maxInstances beside instances; absent: no limit. */
  readonly limit?: number | undefined;
  /** Of the sessions placed here, how many are linked and how many hold a start slot (status.sessions). */
  readonly linked?: number | undefined;
  readonly starting?: number | undefined;
  readonly rateLimit?: { readonly requestsPerSecond: number; readonly burst: number } | undefined;
  readonly creationTimestamp?: string | undefined;
}

/** The operator's defaults when spec.rateLimit is absent (controllers/provider/connections.ts). */
const DEFAULT_RATE_LIMIT = { requestsPerSecond: 10, burst: 20 } as const;

interface ProviderFields {
  readonly spec?: {
    readonly type?: string;
    readonly maxInstances?: number;
    readonly capacity?: { readonly maxSessions?: number };
    readonly rateLimit?: { readonly requestsPerSecond?: number; readonly burst?: number };
  };
  readonly status?: { readonly version?: string; readonly instances?: number; readonly sessions?: { readonly placed?: number; readonly linked?: number; readonly starting?: number } };
}

/** The summaries, cluster-scoped kind first, then by namespace and name. */
export function summarizeProviders(providers: readonly { readonly kind: string; readonly object: ProviderObject }[]): ProviderSummary[] {
  return [...providers]
    .sort(
      (a, b) =>
        a.kind.localeCompare(b.kind) ||
        (a.object.metadata.namespace ?? "").localeCompare(b.object.metadata.namespace ?? "") ||
        a.object.metadata.name.localeCompare(b.object.metadata.name),
    )
    .map(({ kind, object }) => {
      const { spec, status } = object as unknown as ProviderFields;
      const ready = object.status?.conditions?.find((condition) => condition.type === "Ready");
      const placed = status?.sessions?.placed;
      return {
        kind,
        namespace: object.metadata.namespace ?? "",
        name: object.metadata.name,
        type: spec?.type ?? "",
        ready: ready?.status,
        reason: ready?.reason,
        message: ready?.message,
        version: status?.version,
        used: placed ?? status?.instances,
        limit: placed !== undefined ? spec?.capacity?.maxSessions : spec?.maxInstances,
        linked: status?.sessions?.linked,
        starting: status?.sessions?.starting,
        rateLimit: {
          requestsPerSecond: spec?.rateLimit?.requestsPerSecond ?? DEFAULT_RATE_LIMIT.requestsPerSecond,
          burst: spec?.rateLimit?.burst ?? DEFAULT_RATE_LIMIT.burst,
        },
        creationTimestamp: object.metadata.creationTimestamp,
      };
    });
}

/** "3/10", "3" without a limit, "" before the operator counted. */
function usage(summary: ProviderSummary): string {
  if (summary.used === undefined) return summary.limit === undefined ? "" : `?/${summary.limit}`;
  return summary.limit === undefined ? String(summary.used) : `${summary.used}/${summary.limit}`;
}

export function providersTable(providers: readonly { readonly kind: string; readonly object: ProviderObject }[], options: { now: number }): string {
  const header = ["KIND", "NAMESPACE", "NAME", "TYPE", "READY", "VERSION", "USED", "LINKED", "STARTING", "RATE", "AGE", "MESSAGE"];
  const rows = summarizeProviders(providers).map((summary) => {
    const created = Date.parse(summary.creationTimestamp ?? "");
    return [
      summary.kind,
      summary.namespace || "-",
      summary.name,
      summary.type,
      summary.ready ?? "",
      summary.version ?? "",
      usage(summary),
      summary.linked === undefined ? "" : String(summary.linked),
      summary.starting === undefined ? "" : String(summary.starting),
      summary.rateLimit ? `${summary.rateLimit.requestsPerSecond}/s burst ${summary.rateLimit.burst}` : "",
      Number.isFinite(created) ? humanAge(options.now - created) : "",
      summary.message ?? "",
    ];
  });
  return formatTable([header, ...rows]);
}

/** `providers -o json|yaml`: {"items": [summary...]}, as `status -o` prints. */
export function providersDocument(providers: readonly { readonly kind: string; readonly object: ProviderObject }[], format: "json" | "yaml"): string {
  return itemsDocument(summarizeProviders(providers), format);
}
