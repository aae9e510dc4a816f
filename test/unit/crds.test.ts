import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { renderAllCrds } from "../../src/api/crds.ts";
import { toYaml } from "../../src/api/yaml.ts";

const crdDir = path.resolve(import.meta.dirname, "..", "..", "crds");

describe("crds/ is rendered from the zod schemas", () => {
  const rendered = renderAllCrds();

  it("has exactly the rendered files", () => {
    expect(readdirSync(crdDir).sort()).toEqual([...rendered.keys()].sort());
  });

  it.each([...rendered.entries()])("%s matches what `npm run crds` writes", (file, crd) => {
    expect(readFileSync(path.join(crdDir, file), "utf8"), "run `npm run crds` and commit the result").toBe(toYaml(crd));
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
