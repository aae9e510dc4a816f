/**
 * The machine's Node 20, for tests of what users with an older Node see: the first
 * `node` of major version 20 on PATH (as `which -a node` lists them), or in /usr/bin or
 * /usr/local/bin. Undefined when there is none; tests then skip and say why.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";

export interface OldNode {
  /** The node executable. */
  readonly path: string;
  /** Its directory, to put first on PATH. */
  readonly dir: string;
  /** As `node --version` prints it, e.g. v20.20.2. */
  readonly version: string;
}

export function findNode20(): OldNode | undefined {
  const candidates = [...(process.env["PATH"] ?? "").split(path.delimiter), "/usr/bin", "/usr/local/bin"]
    .filter(Boolean)
    .map((dir) => path.join(dir, "node"));
  for (const candidate of new Set(candidates)) {
    if (!existsSync(candidate)) continue;
    try {
      const version = execFileSync(candidate, ["--version"], { encoding: "utf8" }).trim();
      if (/^v20\./.test(version)) return { path: candidate, dir: path.dirname(candidate), version };
    } catch {
      // not runnable: try the next
    }
  }
  return undefined;
}
