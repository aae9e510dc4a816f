/**
 * `kubectl whatsapp status`: the columns of `kubectl get wai` (NAME, PROVIDER, DESIRED,
 * PHASE, PHONE, READY, AGE) plus the Ready condition's message, laid out as kubectl
 * lays out tables, or the same facts as JSON or YAML. Pure: the clock comes in as `now`.
 */
import { stringify } from "yaml";
import type { InstanceObject } from "../api/objects.ts";
import { terminalSafe } from "./terminal-text.ts";

/** kubectl's age format (apimachinery's HumanDuration): 45s, 3m20s, 5h, 2d3h, 1y20d. */
export function humanAge(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) return hours % 24 === 0 ? `${days}d` : `${days}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${years}y` : `${years}y${days % 365}d`;
  return `${years}y`;
}

/** Columns separated by three spaces, each as wide as its widest cell (kubectl's tabwriter). */
export function formatTable(unsafe: readonly (readonly string[])[]): string {
  // Cells carry provider text (messages, phone numbers): nothing in them may drive the terminal.
  const rows = unsafe.map((row) => row.map(terminalSafe));
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, column) => (widths[column] = Math.max(widths[column] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd((widths[column] ?? 0) + 3)))
        .join("")
        .trimEnd(),
    )
    .join("\n");
}

/** One instance as status shows it; also an item of `status -o json|yaml`. */
export interface InstanceSummary {
  readonly namespace: string;
  readonly name: string;
  readonly provider: string;
  /** spec.state, Connected when unset. */
  readonly desired: string;
  readonly phase?: string | undefined;
  readonly phoneNumber?: string | undefined;
  /** The Ready condition's status (True, False, Unknown), absent before the operator looked. */
  readonly ready?: string | undefined;
  readonly reason?: string | undefined;
  readonly message?: string | undefined;
  readonly creationTimestamp?: string | undefined;
}

/** The summaries of instances, by namespace then name. */
export function summarize(instances: readonly InstanceObject[]): InstanceSummary[] {
  return [...instances]
    .sort((a, b) => (a.metadata.namespace ?? "").localeCompare(b.metadata.namespace ?? "") || a.metadata.name.localeCompare(b.metadata.name))
    .map((instance) => {
      const spec = (instance.spec ?? {}) as { providerRef?: { name?: string }; state?: string };
      // A providerSelector instance shows where it was placed.
      const placedOn = instance.status?.providerRef?.name;
      const ready = instance.status?.conditions?.find((condition) => condition.type === "Ready");
      return {
        namespace: instance.metadata.namespace ?? "",
        name: instance.metadata.name,
        provider: spec.providerRef?.name ?? placedOn ?? "",
        desired: spec.state ?? "Connected",
        phase: instance.status?.phase,
        phoneNumber: instance.status?.phoneNumber,
        ready: ready?.status,
        reason: ready?.reason,
        message: ready?.message,
        creationTimestamp: instance.metadata.creationTimestamp,
      };
    });
}

export function statusTable(instances: readonly InstanceObject[], options: { now: number; allNamespaces: boolean }): string {
  const header = ["NAME", "PROVIDER", "DESIRED", "PHASE", "PHONE", "READY", "AGE", "MESSAGE"];
  const rows = summarize(instances).map((summary) => {
    const created = Date.parse(summary.creationTimestamp ?? "");
    const row = [
      summary.name,
      summary.provider,
      summary.desired,
      summary.phase ?? "",
      summary.phoneNumber ?? "",
      summary.ready ?? "",
      Number.isFinite(created) ? humanAge(options.now - created) : "",
      summary.message ?? "",
    ];
    return options.allNamespaces ? [summary.namespace, ...row] : row;
  });
  return formatTable([options.allNamespaces ? ["NAMESPACE", ...header] : header, ...rows]);
}

/**
 * `status -o json|yaml`: {"items": [summary...]}, always a list (also for one NAME or
 * none), so a script reads every answer the same way. JSON indented as kubectl's.
 */
export function statusDocument(instances: readonly InstanceObject[], format: "json" | "yaml"): string {
  return itemsDocument(summarize(instances), format);
}

/** {"items": [...]} in JSON (indented as kubectl's) or YAML: every -o json|yaml of the plugin. */
export function itemsDocument(items: readonly unknown[], format: "json" | "yaml"): string {
  const document = { items };
  return format === "json" ? `${JSON.stringify(document, null, 4)}\n` : stringify(document, { lineWidth: 0 });
}
