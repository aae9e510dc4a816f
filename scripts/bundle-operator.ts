/**
 * `npm run bundle`: the operator as the image runs it, into dist/operator/:
 *
 *   wa-operator.mjs        src/cli/operator.ts and every package it uses, in one ES module
 *   *.mjs                  what it imports only on demand (the OpenTelemetry SDK, when tracing is on)
 *   *.mjs.map              source maps back to src/ (the image sets --enable-source-maps)
 *
 *   node scripts/bundle-operator.ts [--out DIR]
 *
 * Why a bundle and not tsc's dist/: Node keeps every module it loads, and the packages
 * export far more than the operator uses (zod alone loads each of its ~50 message
 * locales, ~9 MB). Tree-shaken into one file, the operator starts at ~75 MB RSS instead
 * of ~89 MB and needs no node_modules beside it.
 */
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { build } from "rolldown";
import { minimumOfRange } from "../src/build-info.ts";

const REPO = path.join(import.meta.dirname, "..");
export const OPERATOR_BUNDLE = "wa-operator.mjs";

/** Writes the bundle into `out` (emptied first) and returns the path of its entry point. */
export async function bundleOperator(out = path.join(REPO, "dist", "operator")): Promise<string> {
  const packageJson = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string; engines: { node: string } };
  const minimumNode = minimumOfRange(packageJson.engines.node);
  rmSync(out, { recursive: true, force: true });
  await build({
    input: { [OPERATOR_BUNDLE.replace(/\.mjs$/, "")]: path.join(REPO, "src", "cli", "operator.ts") },
    platform: "node",
    cwd: REPO,
    logLevel: "warn",
    transform: {
      target: `node${minimumNode}`,
      // build-info.ts reads these instead of a package.json, which the image does not ship.
      define: { WA_BUNDLE_VERSION: JSON.stringify(packageJson.version), WA_BUNDLE_MINIMUM_NODE: JSON.stringify(minimumNode) },
    },
    write: true,
    // Unminified: a stack trace in a log line stays readable without the map.
    output: { dir: out, format: "esm", sourcemap: true, entryFileNames: "[name].mjs", chunkFileNames: "[name]-[hash].mjs" },
  });
  return path.join(out, OPERATOR_BUNDLE);
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: "string" } } });
  console.log(await bundleOperator(values.out ? path.resolve(values.out) : undefined));
}
