/**
 * `npm run bundle`: the operator as the image runs it, into dist/operator/:
 *
 *   wa-operator.cjs        src/cli/operator.ts and every package it uses, in one file
 *   *.cjs                  what it loads only on demand (the OpenTelemetry SDK, when tracing is on)
 *   *.cjs.map              source maps back to src/ (the image sets --enable-source-maps)
 *
 *   node scripts/bundle-operator.ts [--out DIR]
 *
 * Why a bundle and not tsc's dist/: Node keeps every module it loads, and the packages
 * export far more than the operator uses (zod alone loads each of its ~50 message
 * locales, ~9 MB). Tree-shaken into one file, the operator starts at ~72 MB RSS instead
 * of ~89 MB and needs no node_modules beside it.
 *
 * CommonJS, because an ES module's `import ... from "node:http"` makes Node build the
 * module's whole namespace, and with it load undici (for http's WebSocket export), which
 * the operator never uses: ~3 MB. ASCII only and without doc comments, so that V8 holds
 * the source in one byte a character (the maps keep the comments).
 */
import { rmSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { build } from "rolldown";
import { buildInfo } from "../src/build-info.ts";

const REPO = path.join(import.meta.dirname, "..");
const ENTRY = "wa-operator";
export const OPERATOR_BUNDLE = `${ENTRY}.cjs`;

/** Writes the bundle into `out` (emptied first) and returns the path of its entry point. */
export async function bundleOperator(out = path.join(REPO, "dist", "operator")): Promise<string> {
  // From src/, build-info.ts reads package.json: its version and engines.node.
  const { version, minimumNode } = buildInfo();
  rmSync(out, { recursive: true, force: true });
  await build({
    input: { [ENTRY]: path.join(REPO, "src", "cli", "operator.ts") },
    platform: "node",
    cwd: REPO,
    logLevel: "warn",
    transform: {
      target: `node${minimumNode}`,
      // build-info.ts reads these instead of a package.json, which the image does not ship.
      define: { WA_BUNDLE_VERSION: JSON.stringify(version), WA_BUNDLE_MINIMUM_NODE: JSON.stringify(minimumNode) },
    },
    write: true,
    // Unminified: a stack trace in a log line stays readable without the map.
    output: {
      dir: out,
      format: "cjs",
      charset: "ascii",
      comments: { legal: true, annotation: false, jsdoc: false },
      sourcemap: true,
      entryFileNames: "[name].cjs",
      chunkFileNames: "[name]-[hash].cjs",
    },
  });
  return path.join(out, OPERATOR_BUNDLE);
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: "string" } } });
  console.log(await bundleOperator(values.out ? path.resolve(values.out) : undefined));
}
