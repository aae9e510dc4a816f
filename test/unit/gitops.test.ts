import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { renderAllCrds } from "../../src/crds.ts";
import { ARGOCD_CONFIG_MAP, ARGOCD_HEALTH_SCRIPT, renderArgoCdConfigMap } from "../../scripts/render-argocd.ts";

describe("GitOps health", () => {
  // Without it kstatus (Flux, kpt) calls an object Current before the operator looked.
  it.each([...renderAllCrds().entries()])("%s defaults status to {observedGeneration: -1}", (_file, crd) => {
    const spec = crd["spec"] as { versions: { schema: { openAPIV3Schema: { properties: { status: Record<string, unknown> } } } }[] };
    const status = spec.versions[0]!.schema.openAPIV3Schema.properties.status;
    expect(status["default"]).toEqual({ observedGeneration: -1 });
    // The default must validate against the schema, or the API server refuses the CRD.
    expect((status["properties"] as Record<string, { minimum?: number }>)["observedGeneration"]?.minimum).toBe(-1);
  });

  it("gitops/argocd/argocd-cm.yaml matches what `npm run gitops` writes from health.lua", () => {
    expect(readFileSync(ARGOCD_CONFIG_MAP, "utf8"), "run `npm run gitops` and commit the result").toBe(renderArgoCdConfigMap(readFileSync(ARGOCD_HEALTH_SCRIPT, "utf8")));
  });

  it("argocd-cm.yaml has a health check under Argo CD's key for every kind", () => {
    const configMap = parseYaml(readFileSync(ARGOCD_CONFIG_MAP, "utf8")) as { metadata: { name: string; namespace: string }; data: Record<string, string> };
    expect(configMap.metadata).toMatchObject({ name: "argocd-cm", namespace: "argocd" });
    const kinds = [...renderAllCrds().values()].map((crd) => (crd["spec"] as { group: string; names: { kind: string } }));
    expect(Object.keys(configMap.data).sort()).toEqual(kinds.map((spec) => `resource.customizations.health.${spec.group}_${spec.names.kind}`).sort());
  });
});
