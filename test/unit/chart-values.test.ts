/**
 * charts/wa-operator's values, schema and metadata agree with each other and with the
 * operator: every value is documented and in values.schema.json (and the other way round),
 * the root accepts `global` (the chart as a subchart), every operator setting has a value,
 * every alert can be turned off, Artifact Hub names every CRD. The rendering itself is
 * tested with the real helm in test/integration/helm.test.ts.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { type SchemaNode, valueRows } from "../../scripts/chart-readme.ts";
import { renderAllCrds } from "../../src/crds.ts";
import { usage } from "../../src/config.ts";

const CHART = path.resolve(import.meta.dirname, "..", "..", "charts", "wa-operator");
const valuesText = readFileSync(path.join(CHART, "values.yaml"), "utf8");
const values = parse(valuesText) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(path.join(CHART, "values.schema.json"), "utf8")) as SchemaNode & { additionalProperties: boolean };
const chart = parse(readFileSync(path.join(CHART, "Chart.yaml"), "utf8")) as { annotations: Record<string, string> };

/** The dotted paths the schema declares, down to values it does not describe further or that values.yaml leaves empty ({}). */
function schemaKeys(node: SchemaNode, at: unknown = values, prefix = ""): string[] {
  return Object.entries(node.properties ?? {}).flatMap(([name, child]) => {
    const key = prefix ? `${prefix}.${name}` : name;
    const value = (at as Record<string, unknown> | undefined)?.[name];
    const nonEmpty = typeof value === "object" && value !== null && Object.keys(value).length > 0;
    return child.properties && nonEmpty ? [key, ...schemaKeys(child, value, key)] : [key];
  });
}

describe("the chart's values", () => {
  const rows = valueRows(valuesText, schema);

  it("each has a description: the comment above it in values.yaml, or the schema's", () => {
    expect(rows.filter((row) => !row.description).map((row) => row.key)).toEqual([]);
  });

  it("values.yaml and values.schema.json declare the same keys", () => {
    const inValues = new Set(rows.map((row) => row.key));
    // Groups without a comment of their own have no row; their values do.
    const declared = schemaKeys(schema).filter((key) => !schemaKeys(schema).some((other) => other.startsWith(`${key}.`)) || inValues.has(key));
    expect([...inValues].filter((key) => !schemaKeys(schema).includes(key))).toEqual([]);
    expect(declared.filter((key) => !inValues.has(key))).toEqual([]);
  });

  it("the schema refuses unknown keys but accepts `global` with any key in it, as an umbrella chart passes it", () => {
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties?.["global"]).toMatchObject({ type: "object", additionalProperties: true });
  });

  it("every operator setting (`wa-operator --help`) is a value, or set by the chart itself", () => {
    const helpers = readFileSync(path.join(CHART, "templates", "_helpers.tpl"), "utf8");
    const settings = [...usage().matchAll(/\[([A-Z][A-Z_]+)\]$/gm)].map((match) => match[1] as string);
    expect(settings.length).toBeGreaterThan(15);
    const setByTheChart = ["POD_NAMESPACE", "HTTP_ADDRESS", "METRICS_ADDRESS"];
    for (const variable of settings) {
      if (setByTheChart.includes(variable)) continue;
      expect(helpers, `${variable} reaches the container`).toMatch(new RegExp(`"${variable}"|name: ${variable}\\b`));
      expect(rows.some((row) => row.description.includes(variable)), `a value documents ${variable}`).toBe(true);
    }
  });

  it("every alert's runbook_url anchor (runbook-<its name in lower case>) is an anchor of the README", () => {
    const readme = readFileSync(path.join(CHART, "..", "..", "README.md"), "utf8");
    const anchors = new Set([...readme.matchAll(/^<a id="([^"]+)"><\/a>$/gm)].map((match) => match[1]));
    const rules = parse(readFileSync(path.join(CHART, "files", "prometheus-rules.yaml"), "utf8")) as { groups: { rules: { alert?: string; annotations?: { runbook_url?: string } }[] }[] };
    for (const rule of rules.groups.flatMap((group) => group.rules)) {
      if (!rule.alert) continue;
      const anchor = rule.annotations?.runbook_url?.split("#")[1];
      expect(anchor, rule.alert).toBe(`runbook-${rule.alert.toLowerCase()}`);
      expect(anchors.has(anchor), `README anchor #${anchor}`).toBe(true);
    }
  });

  it("every alert of the PrometheusRule can be turned off on its own", () => {
    const rules = parse(readFileSync(path.join(CHART, "files", "prometheus-rules.yaml"), "utf8")) as { groups: { rules: { alert?: string }[] }[] };
    const alerts = rules.groups.flatMap((group) => group.rules.flatMap((rule) => (rule.alert ? [rule.alert] : [])));
    const metrics = values["metrics"] as { prometheusRule: { alerts: Record<string, { enabled: boolean }> } };
    expect(Object.keys(metrics.prometheusRule.alerts).sort()).toEqual([...alerts].sort());
    for (const alert of alerts) expect(metrics.prometheusRule.alerts[alert]).toEqual({ enabled: true });
  });
});

describe("Chart.yaml's Artifact Hub annotations", () => {
  it("list every CRD the chart installs, by kind, version and name", () => {
    const listed = parse(chart.annotations["artifacthub.io/crds"] as string) as { kind: string; version: string; name: string }[];
    const crds = [...renderAllCrds().values()].map((crd) => {
      const { names, versions, group } = crd["spec"] as { names: { kind: string; plural: string }; versions: { name: string }[]; group: string };
      return { kind: names.kind, version: versions[0]?.name, name: `${names.plural}.${group}` };
    });
    expect(listed.map(({ kind, version, name }) => ({ kind, version, name })).sort((a, b) => a.kind.localeCompare(b.kind))).toEqual(crds.sort((a, b) => a.kind.localeCompare(b.kind)));
  });

  it("are YAML where Artifact Hub expects it (images, links, crdsExamples)", () => {
    for (const key of ["artifacthub.io/images", "artifacthub.io/links", "artifacthub.io/crdsExamples"]) expect(Array.isArray(parse(chart.annotations[key] as string)), key).toBe(true);
  });

  it("the chart carries no crds/ directory: Helm would install it once and never upgrade it", () => {
    expect(readdirSync(CHART)).not.toContain("crds");
  });
});
