/** The README's metrics table is what the registry holds (node scripts/metrics-table.ts writes it). */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { metricsTable, withMetricsTable } from "../../scripts/metrics-table.ts";

const readme = readFileSync(path.resolve(import.meta.dirname, "..", "..", "README.md"), "utf8");

describe("the README's metrics table", () => {
  it("matches the prom-client registry", async () => {
    expect(readme, "run `node scripts/metrics-table.ts` and commit README.md").toBe(await withMetricsTable(readme));
  });

  it("names every metric the issue asked for, with its labels", async () => {
    const table = await metricsTable();
    for (const row of [
      "| `rest_client_requests_total` | counter | `code`, `method`, `host` |",
      "| `rest_client_request_duration_seconds` | histogram | `verb`, `host` |",
      "| `wa_operator_provider_request_duration_seconds` | histogram | `provider`, `method`, `code` |",
      "| `controller_runtime_reconcile_panics_total` | counter | `controller` |",
      "| `controller_runtime_active_workers` | gauge | `controller` |",
      "| `workqueue_unfinished_work_seconds` | gauge | `name` |",
      "| `workqueue_longest_running_processor_seconds` | gauge | `name` |",
      "| `wa_operator_build_info` | gauge | `version`, `revision`, `node_version` |",
    ]) {
      expect(table).toContain(row);
    }
  });
});

describe("the README's runbooks", () => {
  it("have a section with a stable anchor (runbook-<alert in lower case>) for every alert of the PrometheusRule", async () => {
    const { parse } = await import("yaml");
    const rule = parse(readFileSync(path.resolve(import.meta.dirname, "..", "..", "manifests", "monitoring", "prometheus-rule.yaml"), "utf8")) as {
      spec: { groups: { rules: { alert?: string }[] }[] };
    };
    const alerts = rule.spec.groups.flatMap((group) => group.rules.flatMap((entry) => (entry.alert ? [entry.alert] : [])));
    expect(alerts.length).toBeGreaterThan(0);
    for (const alert of alerts) expect(readme).toContain(`<a id="runbook-${alert.toLowerCase()}"></a>\n#### ${alert}\n`);
  });

  it("are where each alert's runbook_url in manifests/monitoring/ points, and each section once", async () => {
    const { parse } = await import("yaml");
    const rule = parse(readFileSync(path.resolve(import.meta.dirname, "..", "..", "manifests", "monitoring", "prometheus-rule.yaml"), "utf8")) as {
      spec: { groups: { rules: { alert?: string; annotations?: { runbook_url?: string } }[] }[] };
    };
    const alerting = rule.spec.groups.flatMap((group) => group.rules.filter((entry) => entry.alert));
    for (const { alert = "", annotations } of alerting) {
      expect(annotations?.runbook_url, alert).toBe(`https://github.com/wa-operator/wa-operator/blob/main/README.md#runbook-${alert.toLowerCase()}`);
      // One section per alert: a second heading of the same name would get GitHub's anchor instead.
      expect(readme.split("\n").filter((line) => line === `#### ${alert}`), alert).toHaveLength(1);
    }
  });
});
