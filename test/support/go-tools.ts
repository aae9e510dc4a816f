/**
 * The Go-built helpers of hack/go-tools/ (helm, actionlint, promrules, the Prometheus
 * Operator's CRDs): hack/go-tools/build.sh prints each one's cache directory, building it first if
 * needed (`make test` builds them before the tests, so here it only looks them up).
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { REPO } from "./kube.ts";

const run = promisify(execFile);

export type GoTool = "helm" | "actionlint" | "promrules" | "prometheus-operator-crds";

const built = new Map<GoTool, Promise<string>>();

/** The directory holding the tool (or, for prometheus-operator-crds, the CRD files). */
export function goTool(name: GoTool): Promise<string> {
  let dir = built.get(name);
  if (!dir) {
    dir = run(path.join(REPO, "hack", "go-tools", "build.sh"), [name], { maxBuffer: 16 * 1024 * 1024 }).then(({ stdout }) => stdout.trim().split("\n").at(-1) as string);
    built.set(name, dir);
  }
  return dir;
}

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a built tool; never throws on a non-zero exit. */
export async function runGoTool(name: Exclude<GoTool, "prometheus-operator-crds">, args: readonly string[], options: { input?: string; env?: Record<string, string>; cwd?: string } = {}): Promise<ToolResult> {
  const file = path.join(await goTool(name), name);
  try {
    const child = run(file, [...args], { cwd: options.cwd ?? REPO, env: { ...process.env, ...options.env }, maxBuffer: 64 * 1024 * 1024 });
    if (options.input !== undefined) child.child.stdin?.end(options.input);
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === "number" ? failed.code : 1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}
