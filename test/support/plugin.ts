/** kubectl-whatsapp as a user runs it: a separate process, with the test cluster's kubeconfig. */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { kubeconfigPath, REPO } from "./kube.ts";

export const PLUGIN = path.join(REPO, "src", "cli", "kubectl-whatsapp.ts");

export const pluginEnv = (): NodeJS.ProcessEnv => ({ ...process.env, KUBECONFIG: kubeconfigPath() });

export interface FollowedPlugin {
  /** stdout so far. */
  output(): string;
  /** stderr so far. */
  errors(): string;
  readonly exited: Promise<number | null>;
}

const running = new Set<ChildProcess>();

/** Starts `kubectl-whatsapp ARGS`, collecting its output as it comes. */
export function followPlugin(args: readonly string[], cwd?: string): FollowedPlugin {
  const child = spawn(process.execPath, [PLUGIN, ...args], { env: pluginEnv(), cwd, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  return { output: () => stdout, errors: () => stderr, exited };
}

/** Kills every plugin process followPlugin started that is still running. */
export function killPlugins(): void {
  for (const child of running) child.kill("SIGKILL");
}
