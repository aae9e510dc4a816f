/**
 * The generated files besides crds/ (test/unit/crds.test.ts has those): the chart's CRD
 * templates, the operator's RBAC from src/kube/permissions.ts, and the chart's copies of
 * manifests/monitoring/.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { permissionRows } from "../../src/kube/permissions.ts";
import { chartCrdFile, renderedFiles } from "../../scripts/rendered-files.ts";

const repo = path.resolve(import.meta.dirname, "..", "..");
const rendered = [...renderedFiles()].filter(([file]) => !file.split(path.sep).includes("crds"));

describe("files `npm run crds` renders besides the CRDs", () => {
  it.each(rendered)("%s matches what `npm run crds` writes", (file, text) => {
    expect(readFileSync(path.join(repo, file), "utf8"), "run `npm run crds` and commit the result").toBe(text);
  });

  it("the chart's templates/crd-*.yaml are one per CRD in crds/, and no other", () => {
    const templates = readdirSync(path.join(repo, "charts", "wa-operator", "templates")).filter((file) => file.startsWith("crd-"));
    const expected = readdirSync(path.join(repo, "crds")).map((file) => path.basename(chartCrdFile(file)));
    expect(templates.sort()).toEqual(expected.sort());
  });

  it("the RBAC in manifests/ and the chart's rules grant REQUIRED_PERMISSIONS, one rule per entry", () => {
    type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
    const rows = (rules: Rule[], scope: string) =>
      rules.flatMap((rule) => rule.apiGroups.flatMap((group) => rule.resources.flatMap((resource) => rule.verbs.map((verb) => `${scope} ${group} ${resource} ${verb}`))));
    const expected = permissionRows().map((row) => `${row.scope} ${row.apiGroup} ${row.resource} ${row.verb}`).sort();
    const files = renderedFiles();
    const manifest = (name: string) => parseAllDocuments(files.get(path.join("manifests", name)) as string).map((document) => document.toJSON() as { kind: string; rules?: Rule[] });
    const [clusterRole = [], secretsRole = []] = manifest("cluster-role.yaml").filter((object) => object.kind === "ClusterRole").map((object) => object.rules ?? []);
    const role = manifest("leader-election-role.yaml").find((object) => object.kind === "Role")?.rules ?? [];
    expect([...rows(clusterRole, "cluster"), ...rows(secretsRole, "watched-namespaces"), ...rows(role, "operator-namespace")].sort()).toEqual(expected);
    const chart = parse(files.get(path.join("charts", "wa-operator", "files", "operator-rbac.yaml")) as string) as { cluster: Rule[]; operatorNamespace: Rule[]; watchedNamespaces: Rule[] };
    expect([...rows(chart.cluster, "cluster"), ...rows(chart.watchedNamespaces, "watched-namespaces"), ...rows(chart.operatorNamespace, "operator-namespace")].sort()).toEqual(expected);
  });
});
