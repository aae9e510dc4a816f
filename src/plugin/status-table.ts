/**
 * `kubectl whatsapp status`: the columns of `kubectl get wai` (NAME, PROVIDER, DESIRED,
 * PHASE, PHONE, READY, AGE) plus the Ready condition's message, laid out as kubectl
 * lays out tables. Pure: the clock comes in as `now`.
 */
import type { InstanceObject } from "../controllers/context.ts";

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
export function formatTable(rows: readonly (readonly string[])[]): string {
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

export function statusTable(instances: readonly InstanceObject[], options: { now: number; allNamespaces: boolean }): string {
  const header = ["NAME", "PROVIDER", "DESIRED", "PHASE", "PHONE", "READY", "AGE", "MESSAGE"];
  const rows = [...instances]
    .sort((a, b) => (a.metadata.namespace ?? "").localeCompare(b.metadata.namespace ?? "") || a.metadata.name.localeCompare(b.metadata.name))
    .map((instance) => {
      const spec = (instance.spec ?? {}) as { providerRef?: { name?: string }; state?: string };
      const ready = instance.status?.conditions?.find((condition) => condition.type === "Ready");
      const created = Date.parse(instance.metadata.creationTimestamp ?? "");
      const row = [
        instance.metadata.name,
        spec.providerRef?.name ?? "",
        spec.state ?? "Connected",
        instance.status?.phase ?? "",
        instance.status?.phoneNumber ?? "",
        ready?.status ?? "",
        Number.isFinite(created) ? humanAge(options.now - created) : "",
        ready?.message ?? "",
      ];
      return options.allNamespaces ? [instance.metadata.namespace ?? "", ...row] : row;
    });
  return formatTable([options.allNamespaces ? ["NAMESPACE", ...header] : header, ...rows]);
}
