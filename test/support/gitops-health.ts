/**
 * How Flux/kpt (kstatus) and Argo CD (its Lua health checks) judge objects, by running
 * hack/gitops-health: kstatus's own status.Compute and gopher-lua set up as Argo CD does.
 * The binary comes from WA_GITOPS_HEALTH_BIN (the Makefile's `test` sets it), else from
 * hack/gitops-health/build.sh (built on first use, cached afterwards).
 */
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { promisify } from "node:util";
import { REPO } from "./kube.ts";

const run = promisify(execFile);

export interface Health {
  readonly status: string;
  readonly message: string;
}

export interface GitOpsVerdict {
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
  /** kstatus: InProgress, Current, Failed, Terminating, … */
  readonly kstatus: Health;
  /** What Argo CD shows: Healthy, Progressing, Degraded, … (its deletion rule applied). */
  readonly argocd: Health;
  /** The Lua check's own answer. */
  readonly argocdScript: Health & { readonly deletionMessage?: string };
}

let binary: Promise<string> | undefined;

export function gitopsHealthBinary(): Promise<string> {
  binary ??= (async () => {
    if (process.env.WA_GITOPS_HEALTH_BIN) return path.resolve(process.env.WA_GITOPS_HEALTH_BIN);
    const { stdout } = await run("bash", [path.join(REPO, "hack", "gitops-health", "build.sh")], { cwd: REPO });
    const last = stdout.trim().split("\n").pop();
    if (!last) throw new Error("hack/gitops-health/build.sh printed no path");
    return last;
  })();
  return binary;
}

/** Judges one object or a List (`kubectl get -o json`) with the checks in `argocdConfigMap`. */
export async function judgeHealth(objects: string, argocdConfigMap: string): Promise<GitOpsVerdict[]> {
  const child = spawn(await gitopsHealthBinary(), ["--argocd-cm", argocdConfigMap], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  child.stdin.end(objects);
  // "close", not "exit": stdout may still hold data when the process has exited.
  const [code] = (await once(child, "close")) as [number | null];
  if (code !== 0) throw new Error(`gitops-health exited ${code}: ${stderr}`);
  return JSON.parse(stdout) as GitOpsVerdict[];
}
