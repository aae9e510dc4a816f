/** Writes crds/*.yaml from the zod schemas in src/api (their single source). */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { renderAllCrds } from "../src/api/crds.ts";
import { toYaml } from "../src/api/yaml.ts";

const dir = path.join(import.meta.dirname, "..", "crds");
mkdirSync(dir, { recursive: true });
for (const [file, crd] of renderAllCrds()) {
  writeFileSync(path.join(dir, file), toYaml(crd));
  console.log(`wrote crds/${file}`);
}
