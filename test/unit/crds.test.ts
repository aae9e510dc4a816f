import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { renderAllCrds } from "../../src/crds.ts";
import { toYaml } from "../../src/api/yaml.ts";

const repo = path.resolve(import.meta.dirname, "..", "..");
const crdDir = path.join(repo, "crds");
// kustomize reads no file outside manifests/, so `npm run crds` writes a copy there (and the
// chart's templates/crd-*.yaml: test/unit/rendered-files.test.ts and test/integration/helm.test.ts).
const manifestCrdDir = path.join(repo, "manifests", "crds");

describe("crds/ is rendered from the zod schemas", () => {
  const rendered = renderAllCrds();

  it.each([crdDir, manifestCrdDir])("%s has exactly the rendered files", (dir) => {
    expect(readdirSync(dir).sort()).toEqual([...rendered.keys()].sort());
  });

  it.each([...rendered.entries()].flatMap(([file, crd]) => [crdDir, manifestCrdDir].map((dir) => [path.relative(repo, path.join(dir, file)), crd] as const)))(
    "%s matches what `npm run crds` writes",
    (file, crd) => {
      expect(readFileSync(path.join(repo, file), "utf8"), "run `npm run crds` and commit the result").toBe(toYaml(crd));
    },
  );

  it("manifests/kustomization.yaml installs every CRD", () => {
    const kustomization = parseYaml(readFileSync(path.join(repo, "manifests", "kustomization.yaml"), "utf8")) as { resources: string[] };
    for (const file of rendered.keys()) expect(kustomization.resources).toContain(`crds/${file}`);
  });

  it.each([...rendered.entries()])("%s describes every field", (_file, crd) => {
    const undescribed: string[] = [];
    const walk = (node: Record<string, unknown>, where: string) => {
      // metadata is Kubernetes' own; the API server forbids describing it in a CRD.
      if (where && where !== ".metadata" && typeof node["description"] !== "string") undescribed.push(where);
      for (const [name, child] of Object.entries((node["properties"] ?? {}) as Record<string, Record<string, unknown>>)) walk(child, `${where}.${name}`);
      if (node["items"]) walk(node["items"] as Record<string, unknown>, `${where}[]`);
    };
    const spec = crd["spec"] as { versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] };
    walk(spec.versions[0]!.schema.openAPIV3Schema, "");
    expect(undescribed).toEqual([]);
  });
});

describe("every value in the CRDs is bounded", () => {
  /** Fields a hostile or mistaken manifest could make huge, tiny or endless, with what bounds them. */
  function unbounded(crd: Record<string, unknown>): string[] {
    const found: string[] = [];
    const walk = (node: Record<string, unknown>, where: string) => {
      const type = node["type"];
      if (type === "string" && node["enum"] === undefined && node["maxLength"] === undefined) found.push(`${where}: string without maxLength`);
      // A generation is an int64 (metav1 convention): its format is its upper bound.
      const maximum = node["maximum"] ?? (node["format"] === "int64" ? "int64" : undefined);
      if ((type === "integer" || type === "number") && (node["minimum"] === undefined || maximum === undefined)) found.push(`${where}: ${String(type)} without minimum and maximum`);
      if (type === "array" && node["maxItems"] === undefined) found.push(`${where}: list without maxItems`);
      for (const [name, child] of Object.entries((node["properties"] ?? {}) as Record<string, Record<string, unknown>>)) walk(child, `${where}.${name}`);
      if (node["items"]) walk(node["items"] as Record<string, unknown>, `${where}[]`);
    };
    const spec = crd["spec"] as { versions: { schema: { openAPIV3Schema: { properties: Record<string, Record<string, unknown>> } } }[] };
    const root = spec.versions[0]!.schema.openAPIV3Schema.properties;
    walk(root["spec"]!, ".spec");
    walk(root["status"]!, ".status");
    return found;
  }

  it.each([...renderAllCrds().entries()])("%s: every string, number and list has bounds", (_file, crd) => {
    expect(unbounded(crd)).toEqual([]);
  });

  it.each([...renderAllCrds().entries()])("%s: every duration has a CEL minimum and maximum", (_file, crd) => {
    const durations: string[] = [];
    const walk = (node: Record<string, unknown>, where: string) => {
      const rules = (node["x-kubernetes-validations"] ?? []) as { rule: string }[];
      if (typeof node["pattern"] === "string" && (node["pattern"] as string).includes("ms|s|m|h")) {
        const bounded = rules.some((entry) => /duration\(self\) >= duration\('[^']+'\)/.test(entry.rule) && /duration\(self\) <= duration\('[^']+'\)/.test(entry.rule));
        durations.push(`${where}: ${bounded ? "bounded" : "unbounded"}`);
      }
      for (const [name, child] of Object.entries((node["properties"] ?? {}) as Record<string, Record<string, unknown>>)) walk(child, `${where}.${name}`);
    };
    const spec = crd["spec"] as { versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] };
    walk(spec.versions[0]!.schema.openAPIV3Schema, "");
    expect(durations.filter((entry) => entry.endsWith("unbounded"))).toEqual([]);
  });
});
