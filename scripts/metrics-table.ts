/**
 * Writes the README's table of /metrics from the operator's prom-client registry, between
 * the markers below, so the table and the code cannot drift (test/unit/metrics-table.test.ts
 * fails when they do). Node's default process_* and nodejs_* metrics get one row.
 *
 *   node scripts/metrics-table.ts
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Metrics } from "../src/metrics.ts";

export const TABLE_START = "<!-- metrics-table:start (node scripts/metrics-table.ts writes this table) -->";
export const TABLE_END = "<!-- metrics-table:end -->";

const README = path.resolve(import.meta.dirname, "..", "README.md");

function isNodeDefault(name: string): boolean {
  return name.startsWith("process_") || name.startsWith("nodejs_");
}

/** The Markdown table of every metric the operator registers: name, type, labels, help. */
export async function metricsTable(): Promise<string> {
  const registry = new Metrics({ build: { version: "", revision: "" } }).registry;
  const described = await registry.getMetricsAsJSON();
  const labels = new Map(registry.getMetricsAsArray().map((metric) => [metric.name, (metric as unknown as { labelNames?: readonly string[] }).labelNames ?? []]));
  const rows = described
    .filter((metric) => !isNodeDefault(metric.name))
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((metric) => {
      const names = (labels.get(metric.name) ?? []).map((label) => `\`${label}\``).join(", ");
      return `| \`${metric.name}\` | ${metric.type} | ${names} | ${metric.help.replaceAll("|", "\\|")} |`;
    });
  return [
    "| Metric | Type | Labels | Meaning |",
    "|---|---|---|---|",
    ...rows,
    `| \`process_*\`, \`nodejs_*\` | | | prom-client's default metrics of the Node process (CPU, memory, event loop lag, GC, handles). |`,
  ].join("\n");
}

/** The README with its table replaced; throws when the markers are missing. */
export async function withMetricsTable(readme: string): Promise<string> {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start === -1 || end < start) throw new Error(`README.md lacks the markers ${TABLE_START} … ${TABLE_END}`);
  return `${readme.slice(0, start + TABLE_START.length)}\n${await metricsTable()}\n${readme.slice(end)}`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  writeFileSync(README, await withMetricsTable(readFileSync(README, "utf8")));
}
