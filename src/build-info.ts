/**
 * What this build is (the package version) and the oldest Node it runs on, and the check
 * every executable makes before it loads anything else: code or a dependency that needs a
 * newer Node fails while loading with a stack trace, not a sentence.
 *
 * Imports Node built-ins only, so that the check itself runs on an old Node.
 */
import { readFileSync } from "node:fs";

// The kubectl-whatsapp bundle ships without package.json, and its Node floor is that of
// what it bundles, not the package's engines: scripts/plugin-dist.ts writes both in.
declare const WA_BUNDLE_VERSION: string | undefined;
declare const WA_BUNDLE_MINIMUM_NODE: string | undefined;

export interface BuildInfo {
  /** The package version, e.g. "0.1.0". */
  readonly version: string;
  /** The oldest Node this build runs on, as x.y.z. */
  readonly minimumNode: string;
}

/** The bundler's constants, else package.json beside src/ or dist/ (its engines.node). */
export function buildInfo(): BuildInfo {
  if (typeof WA_BUNDLE_VERSION === "string" && typeof WA_BUNDLE_MINIMUM_NODE === "string") {
    return { version: WA_BUNDLE_VERSION, minimumNode: WA_BUNDLE_MINIMUM_NODE };
  }
  const packageJson = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string; engines: { node: string } };
  return { version: packageJson.version, minimumNode: minimumOfRange(packageJson.engines.node) };
}

/** The x.y.z a ">=x[.y[.z]]" range starts at; the only form package.json's engines uses. */
export function minimumOfRange(range: string): string {
  const match = /^>=\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range.trim());
  if (!match) throw new Error(`engines.node must read ">=x.y.z", not "${range}"`);
  return `${match[1]}.${match[2] ?? 0}.${match[3] ?? 0}`;
}

/** Whether version x.y.z (a leading v allowed) is at least minimum x.y.z. */
export function isAtLeast(version: string, minimum: string): boolean {
  const parse = (text: string) => text.replace(/^v/, "").split(/[.-]/, 3).map((part) => Number.parseInt(part, 10) || 0);
  const have = parse(version);
  const need = parse(minimum);
  for (let index = 0; index < 3; index++) {
    const difference = (have[index] ?? 0) - (need[index] ?? 0);
    if (difference !== 0) return difference > 0;
  }
  return true;
}

/** The one line that says this Node is too old for program, or undefined when it is not. */
export function unsupportedNodeLine(options: { program: string; running: string; minimum: string; execPath: string }): string | undefined {
  if (isAtLeast(options.running, options.minimum)) return undefined;
  return `${options.program} needs Node.js ${options.minimum} or newer, but ${options.execPath} is ${options.running.replace(/^v?/, "v")}; install a newer Node.js (https://nodejs.org) or put one first on PATH`;
}

/**
 * True when this Node can run program; otherwise writes the one line to stderr, sets
 * the exit code to 1 and returns false, so the caller loads nothing more.
 */
export function nodeCanRun(program: string): boolean {
  const line = unsupportedNodeLine({ program, running: process.versions.node, minimum: buildInfo().minimumNode, execPath: process.execPath });
  if (line === undefined) return true;
  process.stderr.write(`${line}\n`);
  process.exitCode = 1;
  return false;
}
