/**
 * `npm run crds`: writes every generated file (scripts/rendered-files.ts says which and
 * from what): the CRDs from the zod schemas in src/api into crds/, manifests/crds/ and the
 * chart's templates/crd-*.yaml; the operator's RBAC from src/kube/permissions.ts; the chart's
 * copies of manifests/monitoring/ and its README.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { renderedFiles } from "./rendered-files.ts";

const root = path.join(import.meta.dirname, "..");
for (const [file, text] of renderedFiles()) {
  mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
  writeFileSync(path.join(root, file), text);
  console.log(`wrote ${file}`);
}
