/**
 * Writes crds/*.yaml from the zod schemas in src/api (their single source), and the same
 * files into manifests/crds/, because kustomize reads no file outside its kustomization's
 * directory (manifests/kustomization.yaml cannot list ../crds/*.yaml).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { renderAllCrds } from "../src/api/crds.ts";
import { toYaml } from "../src/api/yaml.ts";

const root = path.join(import.meta.dirname, "..");
for (const dir of ["crds", path.join("manifests", "crds")]) {
  mkdirSync(path.join(root, dir), { recursive: true });
  for (const [file, crd] of renderAllCrds()) {
    writeFileSync(path.join(root, dir, file), toYaml(crd));
    console.log(`wrote ${dir}/${file}`);
  }
}
